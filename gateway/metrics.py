"""Prometheus metrics for the daemon, served by the HTTP front end at ``/metrics``.

One ``Metrics`` object per daemon, with its own ``CollectorRegistry`` (never the
process-global one, so tests and several daemons in one process do not mix).
Metric names and labels are a contract with dashboards and alert rules:

=================================  =======================  ==================================
metric                             labels                   what
=================================  =======================  ==================================
``sekisho_jobs_total``             origin, verdict          jobs through the pipeline (counter)
``sekisho_findings_total``         kind                     findings in those jobs' reports
``sekisho_stage_seconds``          stage                    time per report item (histogram)
``sekisho_queue_depth``            queue                    ``file_jobs`` (accepted, not yet
                                                            through), ``file_jobs_running``,
                                                            ``smtp_backlog``, ``smtp_deferred``
``sekisho_http_requests_total``    method, route, status    HTTP requests answered
``sekisho_http_request_seconds``   route                    HTTP answer latency (histogram)
``sekisho_admin_actions_total``    action                   quarantine releases and deletions
=================================  =======================  ==================================

``origin`` is ``http``, ``folder`` or ``smtp``; ``verdict`` is the job's final
verdict (``clean``, ``disarmed``, ``blocked``, ``failed``); ``route`` is the
route template (``/v1/jobs/{id}``), never the raw path, so ids do not explode
the label space. File jobs are counted through ``JobService.add_listener``
(``job_listener``), SMTP messages through the relay processor's ``on_report``
hook (``report_listener``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from gateway.jobs.service import JobService
from gateway.models import Report
from gateway.relay.queue import QueueManager

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"

#: pipeline stages take milliseconds to minutes
STAGE_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0,
                 120.0, 300.0)
HTTP_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)

DepthSource = Callable[[], Mapping[str, int]]


class _QueueDepth(Collector):
    """Reads queue depths when scraped (no bookkeeping in the hot path)."""

    def __init__(self) -> None:
        self.sources: list[DepthSource] = []

    def collect(self) -> Iterable[GaugeMetricFamily]:
        family = GaugeMetricFamily("sekisho_queue_depth",
                                   "Work waiting or running, by queue", labels=["queue"])
        for source in self.sources:
            try:
                depths = source()
            except Exception:  # a broken source must not break the scrape  # noqa: S112
                continue
            for queue, value in depths.items():
                family.add_metric([queue], float(value))
        yield family


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.jobs = Counter("sekisho_jobs", "Jobs through the pipeline, by origin and verdict",
                            ["origin", "verdict"], registry=r)
        self.findings = Counter("sekisho_findings", "Findings in job reports, by kind",
                                ["kind"], registry=r)
        self.stage_seconds = Histogram("sekisho_stage_seconds",
                                       "Time spent per report item, by pipeline stage",
                                       ["stage"], buckets=STAGE_BUCKETS, registry=r)
        self.http_requests = Counter("sekisho_http_requests",
                                     "HTTP requests answered, by method, route and status",
                                     ["method", "route", "status"], registry=r)
        self.http_seconds = Histogram("sekisho_http_request_seconds",
                                      "HTTP answer latency, by route", ["route"],
                                      buckets=HTTP_BUCKETS, registry=r)
        self.admin_actions = Counter("sekisho_admin_actions",
                                     "Quarantine releases and deletions", ["action"],
                                     registry=r)
        self._depth = _QueueDepth()
        r.register(self._depth)

    # ------------------------------------------------------------------ feeding

    def observe_report(self, origin: str, verdict: str, report: Report | Mapping[str, Any]
                       ) -> None:
        """Count one finished job: its verdict, its findings and its stages' time."""
        self.jobs.labels(origin=origin, verdict=verdict).inc()
        data = report.to_dict() if isinstance(report, Report) else report
        for item in data.get("items") or ():
            stage = str(item.get("stage") or "unknown")
            elapsed = item.get("elapsed_ms")
            if isinstance(elapsed, int | float) and elapsed >= 0:
                self.stage_seconds.labels(stage=stage).observe(elapsed / 1000.0)
            for finding in item.get("findings") or ():
                self.findings.labels(kind=str(finding.get("kind") or "unknown")).inc()

    def job_listener(self, record: Any, report: Report) -> None:
        """For ``JobService.add_listener``: ``record`` is the finished JobRecord."""
        self.observe_report(str(record.origin), str(record.verdict or report.verdict.value),
                            report)

    def report_listener(self, report: Report, verdict: str) -> None:
        """For the SMTP relay's ``Processor.on_report``: the verdict after its own judgment."""
        self.observe_report(report.source or "smtp", verdict, report)

    def add_depth_source(self, source: DepthSource) -> None:
        self._depth.sources.append(source)

    def watch_jobs(self, jobs: JobService) -> None:
        """Count every finished file job and report the file-job queue depth."""
        jobs.add_listener(self.job_listener)
        self.add_depth_source(lambda: {"file_jobs": jobs.pending,
                                       "file_jobs_running": jobs.running})

    def watch_relay(self, queue: QueueManager) -> None:
        """Report the SMTP queue depth (messages not yet sanitized, deferred ones)."""
        self.add_depth_source(lambda: {"smtp_backlog": queue.backlog,
                                       "smtp_deferred": queue.deferred_count})

    def observe_http(self, method: str, route: str, status: int, seconds: float) -> None:
        self.http_requests.labels(method=method, route=route, status=str(status)).inc()
        self.http_seconds.labels(route=route).observe(seconds)

    def observe_admin(self, action: str) -> None:
        self.admin_actions.labels(action=action).inc()

    # ------------------------------------------------------------------ reading

    def render(self) -> bytes:
        return generate_latest(self.registry)

"""What becomes of a received message's original once the pipeline has judged it.

``settle`` decides the relay's verdict (``judge``: the pipeline's, failing closed
when the result is not a mail message), quarantines the original with its report
when ``quarantine.keep`` says so, and writes the audit line. It runs where the
message was sanitized: ``Custody`` is the follow-up (``WorkerPool.submit_then``)
that does it in the worker process, right after the pipeline, so that sealing
the original (AES-GCM, one fsynced file) and the audit fsync are spread over
the workers instead of queueing in the daemon, whose one GIL also serves every
SMTP session. When the worker could not get that far (a timeout, a crash: the
parent wrote a "failed" report), the daemon calls ``settle`` itself.

The worker holds the quarantine key while it seals. That adds no exposure: the
workers run as the daemon's user and could read the key file anyway; the key is
never logged (``Custody`` keeps it out of its repr).

A quarantine or audit failure is not a verdict: it raises (in the worker it comes
back as ``Done.error``), the message is not delivered and is tried again later.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gateway.models import Report, Verdict
from gateway.pipeline.workers import JobSpec
from gateway.store.audit import AuditLog
from gateway.store.quarantine import Quarantine
from gateway.store.sealed import Keyring

MAIL_TYPE = "mail.eml"


@dataclass(frozen=True, slots=True)
class Settled:
    verdict: Verdict
    reason: str
    quarantined: bool


def judge(report: Report) -> tuple[Verdict, str]:
    """The pipeline's verdict, failing closed when the result is not a mail message."""
    if not report.verdict.delivered:
        return report.verdict, report.reason or f"verdict {report.verdict.value}"
    if report.input.type != MAIL_TYPE or report.output is None \
            or report.output.type != MAIL_TYPE:
        return Verdict.BLOCKED, (f"not readable as a mail message "
                                 f"(content is {report.input.type})")
    return report.verdict, ""


def settle(report: Report, original: Path, *, keep: str, meta: dict[str, Any],
           quarantine: Quarantine, audit: AuditLog | None) -> Settled:
    """Judge, quarantine (by ``keep``) and audit one sanitized message.

    ``meta``: the quarantine metadata without verdict and reason (origin smtp, qid,
    job_id, policy, sender, recipients, client, helo, received, size).
    """
    verdict, reason = judge(report)
    kept = verdict.quarantined_under(keep)
    job_id = str(meta["job_id"])
    if kept:
        quarantine.put(job_id, original, report.to_dict(),
                       {**meta, "verdict": verdict.value, "reason": reason})
    if audit is not None:
        audit.record("job", job_id=job_id, origin="smtp", qid=meta.get("qid"),
                     policy=meta.get("policy"), verdict=verdict.value, reason=reason,
                     findings=report.kind_counts(),
                     sha256=report.input.sha256, size=report.input.size, quarantined=kept)
    return Settled(verdict, reason, kept)


@dataclass(frozen=True, slots=True)
class Custody:
    """``settle`` as a worker follow-up: everything it needs travels with the job."""

    quarantine: Path                   # the quarantine root
    keys: Keyring = field(repr=False)
    retention: float
    keep: str
    audit: Path | None
    meta: dict[str, Any]

    def __call__(self, report: Report, spec: JobSpec) -> Settled:
        return settle(report, spec.src, keep=self.keep, meta=self.meta,
                      quarantine=_quarantine(self), audit=_audit(self.audit))


# One quarantine writer and one audit log per worker process, opened on first use.
_quarantines: dict[Path, Quarantine] = {}
_audits: dict[Path, AuditLog] = {}


def _quarantine(c: Custody) -> Quarantine:
    q = _quarantines.get(c.quarantine)
    if q is None or q.keys != c.keys or q.retention != c.retention:
        if q is not None:
            q.close()
        q = _quarantines[c.quarantine] = Quarantine(c.quarantine, c.keys,
                                                    retention=c.retention, maintain=False)
    return q


def _audit(path: Path | None) -> AuditLog | None:
    if path is None:
        return None
    log = _audits.get(path)
    if log is None:
        log = _audits[path] = AuditLog(path)
    return log

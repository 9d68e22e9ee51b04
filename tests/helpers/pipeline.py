"""Run the real pipeline on bytes written to a real file, as the stage tests all do."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from gateway.models import Report
from gateway.pipeline.run import process_file
from gateway.policy import Policy, load
from tests.conftest import check_report_schema

DEFAULT = load("default")


def run(tmp_path: Path, data: bytes, name: str, policy: Policy = DEFAULT) -> tuple[Report, Path]:
    """Disarm ``data`` saved as ``name``; the report (schema-checked) and the output path."""
    src, out = tmp_path / name, tmp_path / ("out-" + name)
    src.write_bytes(data)
    report = process_file(src, out, policy=policy)
    check_report_schema(report)
    return report, out


def keys(report: Report, index: int = 0) -> set[tuple[str, str]]:
    """The (kind, location) pairs of one item's findings (the root item by default)."""
    return {(f.kind, f.location) for f in report.items[index].findings}


def run_in_worker(tmp_path: Path, data: bytes, name: str, policy: Policy = DEFAULT, *,
                  max_cpu: float = 5.0) -> tuple[Report, Path]:
    """Disarm ``data`` in a worker process held to ``max_cpu`` seconds of CPU, as the
    daemon runs a job: input that makes a parser take quadratic time ends as a failed
    job (CPU limit) instead of a verdict. No wall-clock timing: a slow CI machine
    passes as long as the work stays far inside the allowance."""
    from gateway.pipeline.workers import JobSpec, WorkerPool

    limited = replace(policy, limits=replace(policy.limits, max_cpu=max_cpu, timeout=300.0))
    src, out = tmp_path / name, tmp_path / ("out-" + name)
    src.write_bytes(data)
    with WorkerPool(1) as pool:
        report = pool.run(JobSpec(f"job-{len(data)}", src, out, name), limited)
    return report, out

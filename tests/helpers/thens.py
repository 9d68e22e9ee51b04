"""Worker follow-ups (``WorkerPool.submit_then``) for the tests: picklable, module-level."""

from __future__ import annotations

import gc
import os
import signal
from dataclasses import dataclass

from gateway.models import Report
from gateway.pipeline.workers import JobSpec


@dataclass(frozen=True)
class WhereAmI:
    """Returns the process it ran in and what it saw of the job."""

    def __call__(self, report: Report, spec: JobSpec) -> tuple[int, str, str]:
        return os.getpid(), report.verdict.value, spec.job_id


@dataclass(frozen=True)
class Broken:
    def __call__(self, report: Report, spec: JobSpec) -> None:
        raise OSError(28, "No space left on device")


@dataclass(frozen=True)
class Dies:
    """The worker dies while its follow-up runs (a crash in native code)."""

    def __call__(self, report: Report, spec: JobSpec) -> None:
        os.kill(os.getpid(), signal.SIGABRT)


@dataclass(frozen=True)
class Niceness:
    """Returns the nice value of the process it ran in."""

    def __call__(self, report: Report, spec: JobSpec) -> int:
        return os.getpriority(os.PRIO_PROCESS, 0)


@dataclass(frozen=True)
class Collector:
    """Returns the garbage collector's threshold and frozen object count where it ran."""

    def __call__(self, report: Report, spec: JobSpec) -> tuple[tuple[int, int, int], int]:
        return gc.get_threshold(), gc.get_freeze_count()

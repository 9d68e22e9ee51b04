"""One CPU kept busy, for the tests of time spent waiting for a CPU (jobclock)."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager


def spin(seconds: float, cpu: int) -> str:
    """Python code that computes ``seconds`` of CPU time on ``cpu`` (for ``-c``)."""
    return (f"import os, time; os.sched_setaffinity(0, {{{cpu}}}); "
            f"end = time.process_time() + {seconds}\n"
            "while time.process_time() < end: pass")


@contextmanager
def busy(cpu: int) -> Iterator[None]:
    """A process at the default priority computing on ``cpu`` while the block runs."""
    hog = subprocess.Popen([sys.executable, "-c", spin(10**9, cpu)])
    try:
        time.sleep(0.5)  # up and pinned
        yield
    finally:
        hog.kill()
        hog.wait()

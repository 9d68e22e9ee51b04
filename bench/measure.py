"""Timing and memory probes for child processes (Linux).

Peak RSS is read as ``VmHWM`` from /proc/PID/status, never from ``ru_maxrss``: on
Linux a child's ``ru_maxrss`` (from ``wait4`` or ``RUSAGE_CHILDREN``) starts at the
*parent's* peak RSS, because the hiwater mark of the address space it leaves at exec
is carried over (a ``/bin/true`` started from a 400 MB parent reports 400 MB). Also,
neither sees pool workers that are not our direct children (a daemon's forkserver).
So a child's peak is either reported by the child itself
(``VmHWM`` of /proc/self/status just before it exits — exact) or sampled from /proc
every ``SAMPLE_INTERVAL`` for the child and all its descendants while it runs
(``VmHWM`` only grows, so a sample misses at most a peak in the last interval).
"""

from __future__ import annotations

import os
import subprocess
import tempfile
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

SAMPLE_INTERVAL = 0.01  # seconds between /proc samples


@dataclass(frozen=True, slots=True)
class Run:
    argv: tuple[str, ...]
    seconds: float
    returncode: int
    stdout: str
    stderr: str
    #: with sample=True: the last VmHWM (KiB) seen of the child and each descendant, by pid
    hwm_kib: dict[int, int] = field(default_factory=dict)

    @property
    def peak_kib(self) -> int:
        """Largest peak RSS of any single process in the tree (0 if not sampled)."""
        return max(self.hwm_kib.values(), default=0)

    def check(self, ok: Sequence[int] = (0,)) -> Run:
        if self.returncode not in ok:
            cmd = " ".join(self.argv)
            cmd = cmd if len(cmd) < 300 else cmd[:300] + " …"
            raise RuntimeError(f"{cmd}: exit {self.returncode}\n{self.stderr[-2000:]}")
        return self


def run(argv: Sequence[str], *, sample: bool = False, cwd: Path | None = None) -> Run:
    """Run ``argv`` to completion: wall time, exit code, output, and with ``sample``
    the peak RSS of the child and its descendants (sampling costs a little CPU)."""
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        started = time.perf_counter()
        proc = subprocess.Popen(list(argv), stdin=subprocess.DEVNULL, stdout=out, stderr=err,
                                cwd=cwd)
        hwm: dict[int, int] = {}
        status = _wait(proc.pid, hwm if sample else None)
        seconds = time.perf_counter() - started
        proc.returncode = os.waitstatus_to_exitcode(status)  # reaped by wait4, not Popen
        out.seek(0)
        err.seek(0)
        return Run(tuple(argv), seconds, proc.returncode, out.read().decode(errors="replace"),
                   err.read().decode(errors="replace"), hwm)


def _wait(pid: int, hwm: dict[int, int] | None) -> int:
    if hwm is None:
        return os.waitpid(pid, 0)[1]
    while True:
        for member in (pid, *descendants(pid)):
            peak = vm_hwm_kib(member)  # None once it has exited (or is a zombie)
            if peak is not None:
                hwm[member] = max(peak, hwm.get(member, 0))
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            return status
        time.sleep(SAMPLE_INTERVAL)


def descendants(root: int) -> list[int]:
    """All live descendants of ``root`` (found by parent pid in /proc/*/stat)."""
    children: dict[int, list[int]] = {}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            stat = Path(entry.path, "stat").read_text()
        except OSError:
            continue
        ppid = int(stat.rpartition(")")[2].split()[1])
        children.setdefault(ppid, []).append(int(entry.name))
    found, todo = [], list(children.get(root, ()))
    while todo:
        pid = todo.pop()
        found.append(pid)
        todo.extend(children.get(pid, ()))
    return found


def vm_hwm_kib(pid: int) -> int | None:
    """Peak resident set size of a live process, KiB (None if it is gone)."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return None
    for line in status.splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    return None


@contextmanager
def one_core() -> Iterator[int]:
    """Pin this process (and children started meanwhile) to its lowest allowed CPU."""
    allowed = os.sched_getaffinity(0)
    cpu = min(allowed)
    os.sched_setaffinity(0, {cpu})
    try:
        yield cpu
    finally:
        os.sched_setaffinity(0, allowed)


def warm_cache(paths: Sequence[Path]) -> None:
    """Read every input once so no tool pays for the first read from disk."""
    for path in paths:
        with open(path, "rb") as f:
            while f.read(1 << 20):
                pass

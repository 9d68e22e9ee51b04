"""A job's own time: what the time limit of a job is measured against.

``limits.timeout`` stops a job that hangs or loops. On a busy machine a job also
waits for a CPU, more so when the workers run at a lower priority than the
daemon (``worker_nice``), and that wait is not the document's doing: counted
against it, load alone would turn documents into "failed". So a job's time is
what its process spends computing (its CPU time, /proc/PID/stat) plus what it
spends asleep in a system call (a hang, waiting for a program it runs): the
watchdog looks at the process a few times a second, and an interval in which it
was found sleeping counts whole. Ready to run but waiting for a CPU does not
count. Only /proc/PID/stat is read (no scheduler statistics are needed); where it
cannot be read, the job's time is the wall time, as before. A job kept waiting
more than ten times its limit is still ended by the pool's wall clock (workers.BACKSTOP).

A program the job runs (7-Zip, unar) is timed the same way by its runner, which
also ``credit``s the job with the program's waits for a CPU: the job sleeps
meanwhile, and that sleep would otherwise count.

Each worker process holds a slot in a small array in shared memory: its pid,
the token of the job it runs (0: none), when that job started (CLOCK_MONOTONIC,
the same clock in every process), its CPU time then, and the credit. The
parent's watchdog (gateway/pipeline/workers.py) reads the slots and each running
worker's /proc entry a few times a second; no message per job crosses a pipe, so
the daemon's event loop pays nothing for it.
"""

from __future__ import annotations

import itertools
import os
import threading
import time
from concurrent.futures import Future
from dataclasses import dataclass, field
from multiprocessing.context import BaseContext
from typing import Any

import structlog

log = structlog.get_logger("sekisho.workers")

#: pid, token, started (monotonic ns), CPU time then (ns; -1: unknown), and the time a
#: program the job runs has waited for a CPU meanwhile (ns; see ``credit``)
_FIELDS = 5
_TICK_NS = 1_000_000_000 // (os.sysconf("SC_CLK_TCK") or 100)
_SLEEPING = frozenset("SDTtWPI")  # asleep, in disk wait, stopped, idle: not ready to run


def sample(pid: int) -> tuple[str, int] | None:
    """The state of process ``pid`` (its main thread: "R" ready or running, "S"
    asleep…) and the CPU time of all its threads in ns; None where not known."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            fields = f.read().rsplit(b")", 1)[1].split()
        return (fields[0].decode("ascii", "replace"),
                (int(fields[11]) + int(fields[12])) * _TICK_NS)
    except (OSError, ValueError, IndexError):
        return None


@dataclass(slots=True)
class Clock:
    """The own time of one process, advanced by ``look`` a few times a second."""

    pid: int
    cpu0: int           # CPU time at the start (ns; -1: unknown, and then ``lost``)
    last: int           # when it was last looked at (monotonic ns)
    #: /proc could not be read: every interval counts whole from then
    lost: bool = field(init=False)
    cpu: int = field(init=False)  # CPU time at the last look (ns)
    slept: int = field(init=False, default=0)  # counted whole: asleep, /proc unreadable

    def __post_init__(self) -> None:
        self.cpu = self.cpu0
        self.lost = self.cpu0 < 0

    @classmethod
    def of(cls, pid: int, now: int) -> Clock:
        """A clock for process ``pid`` starting ``now``."""
        seen = sample(pid)
        return cls(pid, -1 if seen is None else seen[1], now)

    def look(self, now: int) -> tuple[int, int]:
        """(own time so far, time it was ready to run but not running since the last
        look), in ns. The interval since the last look counts whole (asleep, or /proc
        unreadable) or not by what is seen now; ready-to-run time is the interval less
        the CPU time used."""
        interval, self.last = now - self.last, now
        seen = None if self.lost else sample(self.pid)
        waiting = 0
        if seen is None:
            self.lost = True
            self.slept += interval
        else:
            used, self.cpu = seen[1] - self.cpu, seen[1]
            if seen[0] in _SLEEPING:
                self.slept += interval
            else:
                waiting = max(0, interval - used)
        return self.cpu - self.cpu0 + self.slept, waiting


@dataclass(frozen=True, slots=True)
class Running:
    """A job a worker reports running."""

    pid: int
    token: int
    started_ns: int
    cpu_ns: int         # the worker's CPU time when the job started; -1: unknown
    credit_ns: int = 0  # what programs it ran waited for a CPU


_worker_slots: Slots | None = None  # in a worker: the slots ``credit`` reports through


def job_started(token: int) -> None:
    """In a worker: the job ``token`` starts (no-op outside a pool's worker)."""
    if _worker_slots is not None:
        _worker_slots.start(token)


def job_ended() -> None:
    if _worker_slots is not None:
        _worker_slots.stop()


def credit(seconds: float) -> None:
    """In a worker: a program the running job started (7-Zip, unar) waited this long
    for a CPU while the job waited for it; not held against the job's time limit."""
    if _worker_slots is not None and seconds > 0:
        _worker_slots.add_credit(int(seconds * 1e9))


class Slots:
    """The shared array: one slot per worker process (made by the parent, inherited by
    the workers through the pool's initializer)."""

    def __init__(self, ctx: BaseContext, count: int) -> None:
        self.count = count
        self._array: Any = ctx.Array("q", count * _FIELDS)
        self._mine = -1  # in a worker: the slot it claimed

    # -- worker side

    def claim(self) -> None:
        """Take a free slot for this process: an empty one, or one whose process is gone."""
        pid = os.getpid()
        with self._array.get_lock():
            for i in range(self.count):
                owner = self._array[i * _FIELDS]
                if owner in (0, pid) or not _alive(owner):
                    self._array[i * _FIELDS:(i + 1) * _FIELDS] = [pid, 0, 0, 0, 0]
                    self._mine = i
                    global _worker_slots  # noqa: PLW0603 - one per worker process
                    _worker_slots = self
                    return
        # every slot taken by a live process (cannot happen with enough slots): this
        # worker's jobs are timed by the pool's wall-clock backstop alone

    def start(self, token: int) -> None:
        if self._mine < 0:
            return
        seen = sample(os.getpid())
        base = self._mine * _FIELDS
        with self._array.get_lock():
            self._array[base + 1:base + _FIELDS] = [token, time.monotonic_ns(),
                                                    -1 if seen is None else seen[1], 0]

    def add_credit(self, ns: int) -> None:
        if self._mine >= 0:
            with self._array.get_lock():
                self._array[self._mine * _FIELDS + 4] += ns

    def stop(self) -> None:
        if self._mine >= 0:
            with self._array.get_lock():
                self._array[self._mine * _FIELDS + 1] = 0

    # -- parent side

    def running(self) -> dict[int, Running]:
        """The jobs workers report running, by token."""
        with self._array.get_lock():
            raw = self._array[:]
        out = {}
        for i in range(self.count):
            pid, token, started, cpu, credited = raw[i * _FIELDS:(i + 1) * _FIELDS]
            if pid and token:
                out[token] = Running(pid, token, started, cpu, credited)
        return out


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class Watchdog:
    """Ends a job whose own time passes its limit: cancelling a running pebble future
    kills the worker process running it (the pool starts a new one)."""

    TICK = 0.2  # seconds between looks while jobs run

    def __init__(self, slots: Slots) -> None:
        self.slots = slots
        self._jobs: dict[int, tuple[Future[Any], float]] = {}
        self._clocks: dict[int, Clock] = {}  # by token, once its worker reports it
        self._expired: set[int] = set()
        self._tokens = itertools.count(1)
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._closed = False
        self._thread: threading.Thread | None = None

    def token(self) -> int:
        """A new job's token (handed to the worker with the job)."""
        return next(self._tokens)

    def watch(self, token: int, future: Future[Any], limit: float) -> None:
        with self._lock:
            idle = not self._jobs  # only then is the watchdog waiting to be woken
            self._jobs[token] = (future, limit)
            if self._thread is None:
                self._thread = threading.Thread(target=self._loop, name="job-watchdog",
                                                daemon=True)
                self._thread.start()
        if idle:  # a busy pool does not wake it for every job: it looks every TICK
            self._wake.set()

    def forget(self, token: int) -> bool:
        """Stop watching ``token``; True when the watchdog ended it (its time ran out)."""
        with self._lock:
            self._jobs.pop(token, None)
            self._clocks.pop(token, None)
            if token in self._expired:
                self._expired.discard(token)
                return True
        return False

    def close(self) -> None:
        self._closed = True
        self._wake.set()

    def check(self) -> None:
        """One look: cancel every running job whose own time is past its limit."""
        running = self.slots.running()
        now = time.monotonic_ns()
        with self._lock:
            jobs = list(self._jobs.items())
        for token, (future, limit) in jobs:
            job = running.get(token)
            if job is None:
                continue  # still queued in the pool
            with self._lock:
                if token not in self._jobs:
                    continue  # finished meanwhile
                clock = self._clocks.get(token)
                if clock is None or clock.pid != job.pid:
                    clock = self._clocks[token] = Clock(job.pid, job.cpu_ns, job.started_ns)
            own, _ = clock.look(now)
            if (own - job.credit_ns) / 1e9 <= limit:
                continue  # within its time
            with self._lock:
                self._expired.add(token)
            if not future.cancel():  # it finished meanwhile: its own result stands
                with self._lock:
                    self._expired.discard(token)

    def _loop(self) -> None:
        while not self._closed:
            with self._lock:
                idle = not self._jobs
            if idle:
                self._wake.wait()
                self._wake.clear()
                continue
            self._wake.wait(self.TICK)
            self._wake.clear()
            try:
                self.check()
            except Exception:  # never let the watchdog die: the pool's backstop remains
                log.exception("job.watchdog_error")

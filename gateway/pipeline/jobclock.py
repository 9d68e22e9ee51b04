"""A job's own time: what the wall-clock limit of a job is measured against.

``limits.timeout`` stops a job that hangs or loops. On a busy machine a job also
waits for a CPU, more so when the workers run at a lower priority than the
daemon (``worker_nice``), and that wait is not the document's doing: counted
against it, load alone would turn documents into "failed". So a job's time is
the wall time since it started minus the time its process was ready to run but
waiting for a CPU (Linux ``/proc/PID/schedstat``, second field: run-queue wait
in nanoseconds). Sleeping in a system call (a hang) counts, computing counts,
queueing for a CPU does not. Where schedstat cannot be read, the job's time is
the wall time, as before.

Each worker process holds a slot in a small array in shared memory: its pid,
the token of the job it runs (0: none), when that job started (CLOCK_MONOTONIC,
the same clock in every process) and its run-queue wait at that moment. The
parent's watchdog (gateway/pipeline/workers.py) reads the slots and each running
worker's schedstat a few times a second; no message per job crosses a pipe, so
the daemon's event loop pays nothing for it.
"""

from __future__ import annotations

import itertools
import os
import threading
import time
from concurrent.futures import Future
from dataclasses import dataclass
from multiprocessing.context import BaseContext
from typing import Any

import structlog

log = structlog.get_logger("sekisho.workers")

_FIELDS = 4  # pid, token, started (monotonic ns), run-queue wait at start (ns; -1: unknown)


def run_queue_wait(pid: int) -> int | None:
    """Nanoseconds the process ``pid`` (its main thread) has waited for a CPU so far;
    None where the kernel does not say (no schedstat, process gone)."""
    try:
        with open(f"/proc/{pid}/schedstat", "rb") as f:
            return int(f.read().split()[1])
    except (OSError, ValueError, IndexError):
        return None


@dataclass(frozen=True, slots=True)
class Running:
    """A job a worker reports running."""

    pid: int
    token: int
    started_ns: int
    wait_ns: int | None

    def own_seconds(self, now_ns: int) -> float:
        """Seconds of the job's own time: wall time since it started, less the time
        its process has since waited for a CPU."""
        wall = (now_ns - self.started_ns) / 1e9
        if self.wait_ns is None:
            return wall
        now_wait = run_queue_wait(self.pid)
        if now_wait is None or now_wait < self.wait_ns:
            return wall
        return wall - (now_wait - self.wait_ns) / 1e9


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
                    self._array[i * _FIELDS:(i + 1) * _FIELDS] = [pid, 0, 0, 0]
                    self._mine = i
                    return
        # every slot taken by a live process (cannot happen with enough slots): this
        # worker's jobs are timed by the pool's wall-clock backstop alone

    def start(self, token: int) -> None:
        if self._mine < 0:
            return
        wait = run_queue_wait(os.getpid())
        base = self._mine * _FIELDS
        with self._array.get_lock():
            self._array[base + 1:base + _FIELDS] = [token, time.monotonic_ns(),
                                                    -1 if wait is None else wait]

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
            pid, token, started, wait = raw[i * _FIELDS:(i + 1) * _FIELDS]
            if pid and token:
                out[token] = Running(pid, token, started, None if wait < 0 else wait)
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
            self._jobs[token] = (future, limit)
            if self._thread is None:
                self._thread = threading.Thread(target=self._loop, name="job-watchdog",
                                                daemon=True)
                self._thread.start()
        self._wake.set()

    def forget(self, token: int) -> bool:
        """Stop watching ``token``; True when the watchdog ended it (its time ran out)."""
        with self._lock:
            self._jobs.pop(token, None)
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
            if job is None or job.own_seconds(now) <= limit:
                continue  # still queued in the pool, or within its time
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

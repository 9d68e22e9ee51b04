"""The job clock's bookkeeping, in one process standing in for a worker."""

from __future__ import annotations

import multiprocessing
import os
import subprocess
import sys
import time

import pytest

from gateway.pipeline import jobclock


def test_a_program_s_wait_is_credited_to_the_running_job(monkeypatch: pytest.MonkeyPatch
                                                         ) -> None:
    monkeypatch.setattr(jobclock, "_worker_slots", None)  # claim() sets it: undone after
    slots = jobclock.Slots(multiprocessing.get_context("fork"), 2)
    slots.claim()
    slots.start(7)
    (job,) = slots.running().values()
    assert (job.pid, job.token, job.credit_ns) == (os.getpid(), 7, 0) and job.cpu_ns >= 0
    jobclock.credit(0.5)  # 7-Zip waited half a second for a CPU meanwhile
    assert slots.running()[7].credit_ns == 500_000_000
    slots.stop()
    assert slots.running() == {}
    slots.start(8)  # a new job starts with no credit
    assert slots.running()[8].credit_ns == 0


def test_clock_counts_computing_and_sleeping_not_waiting() -> None:
    sleeper = subprocess.Popen(["sleep", "30"])
    spinner = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    # a second spinner on the same CPU: the first one waits for it about half the time
    rival = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    for pid in (spinner.pid, rival.pid):
        os.sched_setaffinity(pid, {min(os.sched_getaffinity(0))})
    try:
        time.sleep(0.3)
        clocks = {}
        for name, proc in (("sleep", sleeper), ("spin", spinner)):
            seen = jobclock.sample(proc.pid)
            assert seen is not None
            clocks[name] = jobclock.Clock(proc.pid, seen[1], time.monotonic_ns())
        time.sleep(0.5)
        now = time.monotonic_ns()
        slept, _ = clocks["sleep"].look(now)
        spun, waited = clocks["spin"].look(now)
    finally:
        for proc in (sleeper, spinner, rival):
            proc.kill()
            proc.wait()
    assert 0.45e9 < slept < 0.6e9  # asleep all along: the whole interval counts
    # computing: its CPU time counts, the time it waited for the CPU it shares does not
    # (how the two split depends on the machine's load: no fixed share is assumed)
    assert 0.02e9 < spun < 0.4e9 and waited > 0.1e9 and 0.45e9 < spun + waited < 0.6e9
    gone = jobclock.Clock(sleeper.pid, 0, now)
    own, waiting = gone.look(now + 10**9)  # /proc unreadable: wall time from then on
    assert (own, waiting, gone.lost) == (10**9, 0, True)

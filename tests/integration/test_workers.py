"""The worker pool against stages that really hang, spin, allocate, abort and segfault."""

from __future__ import annotations

import gc
import os
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from gateway.models import Verdict
from gateway.pipeline.workers import JobSpec, WorkerPool
from gateway.policy import FormatPolicy, Limits, Policy
from tests.helpers import cpu as cpu_load
from tests.helpers import evil_stages as evil
from tests.helpers.thens import Broken, Collector, Dies, Niceness, WhereAmI

PLUGIN = "tests.helpers.evil_stages"
FAST = Policy(name="fast", limits=Limits(timeout=3, max_cpu=2, max_memory=512 * 1024**2),
              formats={"testonly": FormatPolicy("disarm")})

pytestmark = pytest.mark.xdist_group("workers")


@pytest.fixture(scope="module")
def pool() -> Iterator[WorkerPool]:
    with WorkerPool(2, max_tasks_per_child=5, retries=1, plugins=[PLUGIN]) as p:
        yield p


def job(tmp_path: Path, behaviour: str, n: int = 0) -> JobSpec:
    src = tmp_path / f"{behaviour}{n}.bin"
    src.write_bytes(evil.make(behaviour))
    return JobSpec(f"job-{behaviour}-{n}", src, tmp_path / f"{behaviour}{n}.out", src.name)


def ok_after(pool: WorkerPool, tmp_path: Path) -> None:
    report = pool.run(job(tmp_path, "active", 99), FAST)
    assert report.verdict is Verdict.DISARMED


def test_ok_job(pool: WorkerPool, tmp_path: Path) -> None:
    spec = job(tmp_path, "ok")
    report = pool.run(spec, FAST)
    assert report.verdict is Verdict.CLEAN
    assert spec.out is not None and spec.out.read_bytes() == evil.make("ok")


def test_hang_times_out_and_pool_recovers(pool: WorkerPool, tmp_path: Path) -> None:
    spec = job(tmp_path, "hang")
    started = time.monotonic()
    report = pool.run(spec, FAST)
    assert time.monotonic() - started < 15
    assert report.verdict is Verdict.FAILED
    assert [(f.kind, f.action) for f in report.findings] == [("fail.timeout", "failed")]
    assert report.reason == "processing took longer than 3 s"
    assert report.output is None and spec.out is not None and not spec.out.exists()
    ok_after(pool, tmp_path)


def test_cpu_spin_hits_cpu_limit(pool: WorkerPool, tmp_path: Path) -> None:
    pol = Policy(name="cpu", limits=Limits(timeout=30, max_cpu=1),
                 formats={"testonly": FormatPolicy("disarm")})
    started = time.monotonic()
    report = pool.run(job(tmp_path, "spin"), pol)
    assert time.monotonic() - started < 20  # two attempts of ~1-2 s CPU, not the 30 s timeout
    assert report.verdict is Verdict.FAILED
    assert [f.kind for f in report.findings] == ["fail.crash"]
    assert report.reason == "worker process exceeded its CPU time limit (2 attempts)"
    ok_after(pool, tmp_path)


def test_memory_hog_fails_with_memory_reason(pool: WorkerPool, tmp_path: Path) -> None:
    report = pool.run(job(tmp_path, "alloc"), FAST)
    assert report.verdict is Verdict.FAILED
    assert [f.kind for f in report.findings] == ["fail.memory"]
    ok_after(pool, tmp_path)


@pytest.mark.parametrize(("behaviour", "signame"), [("abort", "SIGABRT"), ("segv", "SIGSEGV")])
def test_dying_worker_is_retried_then_fails(pool: WorkerPool, tmp_path: Path, behaviour: str,
                                            signame: str) -> None:
    report = pool.run(job(tmp_path, behaviour), FAST)
    assert report.verdict is Verdict.FAILED
    assert [f.kind for f in report.findings] == ["fail.crash"]
    assert report.reason == f"worker process was killed by {signame} (2 attempts)"
    assert report.input.size == len(evil.make(behaviour))
    ok_after(pool, tmp_path)


def test_many_jobs_with_crashes_mixed_in(pool: WorkerPool, tmp_path: Path) -> None:
    kinds = ["ok", "abort", "active", "raise", "ok", "segv", "ok"] * 3
    futures = [pool.submit(job(tmp_path, b, i), FAST) for i, b in enumerate(kinds)]
    verdicts = [f.result(timeout=120).verdict for f in futures]
    expected = {"ok": Verdict.CLEAN, "active": Verdict.DISARMED, "abort": Verdict.FAILED,
                "segv": Verdict.FAILED, "raise": Verdict.FAILED}
    assert verdicts == [expected[b] for b in kinds]


# ------------------------------------------------------------------ follow-ups


def test_workers_collect_garbage_less_often(pool: WorkerPool, tmp_path: Path) -> None:
    """What a worker starts with is frozen out of collections and the youngest
    generation waits for 100,000 allocations (the parent process keeps the defaults)."""
    done = pool.submit_then(job(tmp_path, "ok", 8), FAST, Collector()).result()
    (young, _, _), frozen = done.after
    assert young == 100_000 and frozen > 10_000
    assert gc.get_threshold()[0] == 700


def test_follow_up_runs_in_the_worker_after_the_pipeline(pool: WorkerPool,
                                                         tmp_path: Path) -> None:
    spec = job(tmp_path, "active", 7)
    done = pool.submit_then(spec, FAST, WhereAmI()).result()
    assert done.report.verdict is Verdict.DISARMED and done.error == ""
    pid, verdict, job_id = done.after
    assert pid != os.getpid() and (verdict, job_id) == ("disarmed", spec.job_id)


def test_follow_up_error_comes_back_with_the_report(pool: WorkerPool, tmp_path: Path) -> None:
    spec = job(tmp_path, "ok", 8)
    done = pool.submit_then(spec, FAST, Broken()).result()
    assert done.report.verdict is Verdict.CLEAN and done.after is None
    assert done.error == "OSError: [Errno 28] No space left on device"
    ok_after(pool, tmp_path)


def test_follow_up_not_run_when_the_job_times_out(pool: WorkerPool, tmp_path: Path) -> None:
    done = pool.submit_then(job(tmp_path, "hang", 9), FAST, WhereAmI()).result()
    assert done.report.verdict is Verdict.FAILED and done.after is None and done.error == ""
    ok_after(pool, tmp_path)


def test_worker_killed_during_follow_up_is_retried_then_fails_without_it(
        pool: WorkerPool, tmp_path: Path) -> None:
    spec = job(tmp_path, "ok", 10)
    done = pool.submit_then(spec, FAST, Dies()).result()
    assert done.after is None and done.error == ""  # the caller settles the job itself
    assert done.report.verdict is Verdict.FAILED
    assert [(f.kind, f.action) for f in done.report.findings] == [("fail.crash", "failed")]
    assert done.report.reason == "worker process was killed by SIGABRT (2 attempts)"
    assert spec.out is not None and not spec.out.exists()
    ok_after(pool, tmp_path)


# ------------------------------------------------------------------ job time


def test_waiting_for_a_cpu_does_not_count_against_the_time_limit(tmp_path: Path) -> None:
    """Workers at nice 19 share one CPU with a busy process at nice 0: a job needing
    0.15 s of CPU takes about ten seconds of wall time, far past its 2 s limit, and is
    not failed for it (the limit is on the job's own time: jobclock). A job that hangs
    for real is still stopped at its limit (test_hang_times_out_and_pool_recovers).
    (Busier still, past ten times the limit, the pool's wall-clock backstop ends it.)"""
    cpu = min(os.sched_getaffinity(0))
    limits = Policy(name="slow-cpu", limits=Limits(timeout=2, max_cpu=30),
                    formats={"testonly": FormatPolicy("disarm")})
    src = tmp_path / "busy.bin"
    src.write_bytes(evil.make("busy", f"0.15 {cpu}".encode()))
    with cpu_load.busy(cpu), WorkerPool(1, nice=19, plugins=[PLUGIN]) as pool:
        assert pool.submit_then(job(tmp_path, "ok"), limits, Niceness()).result().after >= 19
        started = time.monotonic()
        spec = JobSpec("job-busy", src, tmp_path / "busy.out", src.name)
        report = pool.run(spec, limits)
        took = time.monotonic() - started
    assert report.verdict is Verdict.CLEAN, report.reason
    assert took > 3, f"the job was not kept waiting for a CPU ({took:.2f} s): no test"
    assert spec.out is not None and spec.out.read_bytes() == evil.make("ok",
                                                                      f"0.15 {cpu}".encode())


def test_replaced_workers_keep_their_jobs_timed(tmp_path: Path) -> None:
    """Every new worker claims a slot in the job clock's array (a dead one's slot is
    taken over): after many replacements a hang still ends at its limit, not at the
    pool's 10x wall-clock backstop."""
    with WorkerPool(2, max_tasks_per_child=1, plugins=[PLUGIN]) as pool:
        oks = [pool.submit(job(tmp_path, "ok", i), FAST) for i in range(16)]
        assert [f.result().verdict for f in oks] == [Verdict.CLEAN] * 16
        started = time.monotonic()
        report = pool.run(job(tmp_path, "hang", 99), FAST)
        took = time.monotonic() - started
    assert [f.kind for f in report.findings] == ["fail.timeout"]
    assert took < 3 * FAST.limits.timeout, f"ended after {took:.1f} s"

"""The file-job service with a real worker pool, real quarantine and real files."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from gateway.jobs.service import Busy, JobService, UnknownPolicy
from gateway.jobs.store import DELIVERED, DONE, INPUT, QUEUED, RESULT, RUNNING, JobRecord, JobStore
from gateway.pipeline.workers import WorkerPool
from gateway.policy import load
from gateway.store.quarantine import Quarantine

pytestmark = pytest.mark.xdist_group("workers")

POLICIES = {"default": load("default"), "strict": load("strict")}
HTML = b"<html><body><p>hello</p><script>alert(1)</script></body></html>"
EXE = b"MZ" + b"\x90" * 58 + b"\x80\x00\x00\x00" + b"\x00" * 64 + b"PE\x00\x00" + b"\x00" * 200


@pytest.fixture(scope="module")
def pool() -> Iterator[WorkerPool]:
    with WorkerPool(2, start_method="fork") as p:
        yield p


class Env:
    def __init__(self, root: Path, pool: WorkerPool) -> None:
        self.root = root
        self.pool = pool
        self.store = JobStore(root / "jobs")
        self.quarantine = Quarantine(root / "quarantine")
        self.handed: list[str] = []
        self.fail_sink = False

    def service(self, **kw: object) -> JobService:
        svc = JobService(self.store, self.pool, POLICIES, default_policy="default",
                         quarantine=self.quarantine, retry_delay=0.05, **kw)  # type: ignore[arg-type]

        async def sink(rec: JobRecord) -> None:
            if self.fail_sink:
                raise OSError("outbox unwritable")
            self.handed.append(rec.job_id)

        svc.register_sink("test", sink)
        return svc

    def file(self, name: str, data: bytes) -> Path:
        p = self.root / name
        p.write_bytes(data)
        return p


@pytest.fixture
async def env(tmp_path: Path, pool: WorkerPool) -> AsyncIterator[Env]:
    yield Env(tmp_path, pool)


async def test_clean_disarmed_and_blocked(env: Env) -> None:
    svc = env.service()
    await svc.start()
    txt = await svc.submit(env.file("a.txt", b"plain text\n"), name="a.txt", origin="test")
    html = await svc.submit(env.file("b.html", HTML), name="b.html", origin="test", move=True)
    exe = await svc.submit(env.file("c.exe", EXE), name="c.exe", origin="test")
    assert not (env.root / "b.html").exists()  # moved into the job
    assert (env.root / "a.txt").exists()
    done = {r.job_id: await svc.wait(r.job_id, 60) for r in (txt, html, exe)}
    for rec in done.values():
        assert rec is not None and rec.state == DELIVERED
    assert done[txt.job_id].verdict == "clean"  # type: ignore[union-attr]
    assert (env.store.path(txt.job_id, RESULT)).read_bytes() == b"plain text\n"
    assert done[html.job_id].verdict == "disarmed"  # type: ignore[union-attr]
    out = svc.result_path(html.job_id)
    assert out is not None and b"<script" not in out.read_bytes() and b"hello" in out.read_bytes()
    report = env.store.report(html.job_id)
    assert report is not None
    assert [(f["kind"], f["location"]) for i in report["items"] for f in i["findings"]] == [
        ("html.script", "script[0]")]
    blocked = done[exe.job_id]
    assert blocked is not None and blocked.verdict == "blocked" and blocked.output_name is None
    assert svc.result_path(exe.job_id) is None
    assert not env.store.path(exe.job_id, RESULT).exists()
    for rec in (txt, html, exe):  # every original is in quarantine, none left in the job
        assert (env.root / "quarantine" / rec.job_id).is_dir()
        assert not env.store.path(rec.job_id, INPUT).exists()
    assert sorted(env.handed) == sorted([txt.job_id, html.job_id, exe.job_id])
    assert svc.pending == 0
    await svc.stop(1)


async def test_restart_runs_what_a_crash_left(env: Env) -> None:
    svc = env.service()
    # a job the previous process accepted and was running when it died
    rec = JobRecord(job_id="20261126-000000-crashed0001", name="x.html", origin="test",
                    policy="default", size=len(HTML), sha256="0" * 64,
                    submitted="2026-11-26T00:00:00Z", state=RUNNING)
    env.store.create(rec, env.file("x.html", HTML), move=True)
    # and one it finished but never handed to its sink
    rec2 = JobRecord(job_id="20261126-000000-crashed0002", name="y.txt", origin="test",
                     policy="default", size=2, sha256="0" * 64,
                     submitted="2026-11-26T00:00:00Z", state=QUEUED)
    env.store.create(rec2, env.file("y.txt", b"ok"), move=True)
    env.store.path(rec2.job_id, INPUT).replace(env.store.path(rec2.job_id, RESULT))
    rec2.state, rec2.verdict, rec2.output_name = DONE, "clean", "y.txt"
    env.store.save(rec2)
    await svc.start()
    got = await svc.wait(rec.job_id, 60)
    assert got is not None and got.state == DELIVERED and got.verdict == "disarmed"
    for _ in range(100):
        if rec2.job_id in env.handed:
            break
        await asyncio.sleep(0.05)
    assert sorted(env.handed) == sorted([rec.job_id, rec2.job_id])
    assert env.store.load(rec2.job_id).state == DELIVERED  # type: ignore[union-attr]
    await svc.stop(1)


async def test_sink_failure_keeps_job_done_for_the_next_start(env: Env) -> None:
    env.fail_sink = True
    svc = env.service()
    await svc.start()
    rec = await svc.submit(env.file("a.txt", b"text\n"), name="a.txt", origin="test")
    got = await svc.wait(rec.job_id, 60)
    assert got is not None and got.state == DONE and env.handed == []
    await svc.stop(1)
    env.fail_sink = False
    svc2 = env.service()
    await svc2.start()
    for _ in range(100):
        if env.handed:
            break
        await asyncio.sleep(0.05)
    assert env.handed == [rec.job_id]
    assert env.store.load(rec.job_id).state == DELIVERED  # type: ignore[union-attr]
    await svc2.stop(1)


async def test_backpressure_and_unknown_policy(env: Env) -> None:
    svc = env.service(max_pending=0)
    with pytest.raises(Busy):
        await svc.submit(env.file("a.txt", b"x"), name="a.txt", origin="test")
    svc2 = env.service()
    with pytest.raises(UnknownPolicy):
        await svc2.submit(env.file("a.txt", b"x"), name="a.txt", origin="test", policy="nope")
    assert list(env.store.all()) == []  # nothing half-accepted


async def test_quarantine_failure_is_retried_and_never_delivers(env: Env) -> None:
    svc = env.service()

    class Broken:
        calls = 0

        def put(self, *a: object, **k: object) -> Path:
            Broken.calls += 1
            raise OSError("disk full")

    svc.quarantine = Broken()
    await svc.start()
    rec = await svc.submit(env.file("b.html", HTML), name="b.html", origin="test")
    got = await svc.wait(rec.job_id, 60)
    assert got is not None and got.verdict == "failed"
    assert got.reason == "internal error: OSError"
    assert Broken.calls == 5
    assert svc.result_path(rec.job_id) is None
    assert env.store.path(rec.job_id, INPUT).read_bytes() == HTML  # the original is kept
    await svc.stop(1)

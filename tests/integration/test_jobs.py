"""The file-job service with a real worker pool, real quarantine and real files."""

from __future__ import annotations

import asyncio
import hashlib
import time
import zipfile
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import olefile
import pytest

from gateway.jobs.service import Busy, JobService, NotHeld, UnknownPolicy
from gateway.jobs.store import (
    DELIVERED,
    DONE,
    HELD,
    INPUT,
    QUEUED,
    RESULT,
    RUNNING,
    JobRecord,
    JobStore,
)
from gateway.pipeline.workers import WorkerPool
from gateway.policy import load
from gateway.store.quarantine import Quarantine
from tests.conftest import ROOT
from tests.helpers.archivegen import PASSWORD, encrypted_zip
from tests.helpers.jobs import EXE, HTML, POLICIES
from tests.helpers.xlscrypt import rekey_xls

pytestmark = pytest.mark.xdist_group("workers")


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
        assert (env.root / "quarantine" / rec.job_id).is_file()
        assert not env.store.path(rec.job_id, INPUT).exists()
    assert sorted(env.handed) == sorted([txt.job_id, html.job_id, exe.job_id])
    assert svc.pending == 0
    await svc.stop(1)


async def test_restart_runs_what_a_crash_left(env: Env) -> None:
    svc = env.service()
    # a job the previous process accepted and was running when it died
    rec = JobRecord(job_id="20261126-000000-crashed0001", name="x.html", origin="test",
                    policy="default", size=len(HTML), sha256=hashlib.sha256(HTML).hexdigest(),
                    submitted="2026-11-26T00:00:00Z", state=RUNNING)
    env.store.create(rec, env.file("x.html", HTML), move=True)
    # and one it finished but never handed to its sink
    rec2 = JobRecord(job_id="20261126-000000-crashed0002", name="y.txt", origin="test",
                     policy="default", size=2, sha256=hashlib.sha256(b"ok").hexdigest(),
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
    assert Broken.calls == 6  # five runs, then one more try when giving up
    assert svc.result_path(rec.job_id) is None
    assert env.store.path(rec.job_id, INPUT).read_bytes() == HTML  # the original is kept
    # and the purge leaves it alone: it is the only copy
    assert env.store.expired(time.time() + 10**6) == []
    assert await svc.purge(-10**6) == 0 and env.store.path(rec.job_id, INPUT).exists()
    await svc.stop(1)


async def test_a_job_given_up_on_puts_its_original_in_quarantine(env: Env) -> None:
    svc = env.service()
    real = env.quarantine

    class Flaky:
        calls = 0

        def put(self, *a: Any, **k: Any) -> Path:
            Flaky.calls += 1
            if Flaky.calls <= 5:  # every pipeline run fails at the quarantine step
                raise OSError("disk full")
            return real.put(*a, **k)

    svc.quarantine = Flaky()
    await svc.start()
    rec = await svc.submit(env.file("b.html", HTML), name="b.html", origin="test")
    got = await svc.wait(rec.job_id, 60)
    assert got is not None and (got.state, got.verdict) == (DELIVERED, "failed")
    entry = real.get(rec.job_id)
    assert (entry.verdict, entry.reason, entry.name) == (
        "failed", "internal error: OSError", "b.html")
    assert hashlib.sha256(HTML).hexdigest() == entry.sha256
    assert not env.store.path(rec.job_id, INPUT).exists()
    assert env.store.expired(time.time() + 10**6) == [rec.job_id]  # purgeable now
    await svc.stop(1)


async def test_password_zip_is_held_then_unlocked(env: Env) -> None:
    svc = env.service(max_password_attempts=3)
    await svc.start()
    data = encrypted_zip("aes256", {"見積書.html": HTML, "memo.txt": b"memo"})
    rec = await svc.submit(env.file("見積.zip", data), name="見積.zip", origin="test")
    held = await svc.wait(rec.job_id, 60)
    assert held is not None and held.state == HELD and held.verdict == "blocked"
    assert held.reason == "zip archive is password-protected"
    assert env.handed == [rec.job_id]  # the sink heard once that a password is needed
    assert env.store.load(rec.job_id).notified  # type: ignore[union-attr]
    assert (env.root / "quarantine" / rec.job_id).is_file()  # the original is kept
    assert svc.result_path(rec.job_id) is None
    wrong = await svc.unlock(rec.job_id, "guess")
    assert (wrong.state, wrong.reason, wrong.password_attempts) == (
        HELD, "the password is not correct", 1)
    done = await svc.unlock(rec.job_id, PASSWORD)
    assert (done.state, done.verdict) == (DELIVERED, "disarmed")
    out = svc.result_path(rec.job_id)
    assert out is not None and done.output_name == "見積.zip"
    with zipfile.ZipFile(out) as zf:
        assert sorted(zf.namelist()) == ["memo.txt", "見積書.html"]
        assert b"<script" not in zf.read("見積書.html")
        assert not any(i.flag_bits & 1 for i in zf.infolist())
    assert env.handed == [rec.job_id, rec.job_id]
    assert not env.store.path(rec.job_id, INPUT).exists()
    with pytest.raises(NotHeld):
        await svc.unlock(rec.job_id, PASSWORD)
    await svc.stop(1)


async def held_then_unlocked(env: Env, svc: JobService, name: str, data: bytes, reason: str,
                             password: str) -> JobRecord:
    """Submit ``data``: it is held for ``reason``; a wrong password keeps it held, the
    right one finishes it. The finished record."""
    rec = await svc.submit(env.file(name, data), name=name, origin="test")
    held = await svc.wait(rec.job_id, 60)
    assert held is not None and (held.state, held.reason) == (HELD, reason)
    wrong = await svc.unlock(rec.job_id, "guess")
    assert (wrong.state, wrong.reason) == (HELD, "the password is not correct")
    return await svc.unlock(rec.job_id, password)


async def test_password_rar_is_held_then_unlocked(env: Env) -> None:
    """RAR is holdable too: unar decrypts it (samples/archive/rarfile-rar5-hpsw.rar, headers
    encrypted with the password "password")."""
    svc = env.service(max_password_attempts=3)
    await svc.start()
    data = (ROOT / "samples" / "archive" / "rarfile-rar5-hpsw.rar").read_bytes()
    done = await held_then_unlocked(env, svc, "資料.rar", data,
                                    "archive is password-protected", "password")
    assert (done.state, done.verdict) == (DELIVERED, "clean")
    out = svc.result_path(done.job_id)
    assert out is not None and done.output_name == "資料.zip"
    with zipfile.ZipFile(out) as zf:
        assert sorted(zf.namelist()) == ["stest1.txt", "stest2.txt"]
    await svc.stop(1)


async def test_password_xls_is_held_then_unlocked(env: Env) -> None:
    import msoffcrypto

    svc = env.service(max_password_attempts=3)
    await svc.start()
    sample = (ROOT / "samples" / "office" / "oletools-autostart-velvetsweatshop.xls").read_bytes()
    locked = rekey_xls(sample, "VelvetSweatshop", "見積2026")
    done = await held_then_unlocked(env, svc, "見積.xls", locked,
                                    "the Excel workbook is encrypted", "見積2026")
    assert (done.state, done.verdict, done.output_name) == (DELIVERED, "disarmed", "見積.xls")
    out = svc.result_path(done.job_id)
    assert out is not None
    with out.open("rb") as fh:
        assert not msoffcrypto.OfficeFile(fh).is_encrypted()
    with olefile.OleFileIO(str(out)) as ole:
        assert not ole.exists("_VBA_PROJECT_CUR")
    await svc.stop(1)


async def test_wrong_passwords_lock_the_job_out(env: Env) -> None:
    svc = env.service(max_password_attempts=2)
    await svc.start()
    data = encrypted_zip("zipcrypt", {"a.txt": b"secret"})
    rec = await svc.submit(env.file("a.zip", data), name="a.zip", origin="test")
    await svc.wait(rec.job_id, 60)
    assert (await svc.unlock(rec.job_id, "one")).state == HELD
    last = await svc.unlock(rec.job_id, "two")
    assert (last.state, last.verdict, last.reason) == (DELIVERED, "blocked",
                                                      "too many wrong passwords")
    assert svc.result_path(rec.job_id) is None
    assert not env.store.path(rec.job_id, INPUT).exists()  # the original is in quarantine
    assert (env.root / "quarantine" / rec.job_id).is_file()
    with pytest.raises(NotHeld):
        await svc.unlock(rec.job_id, PASSWORD)
    with pytest.raises(KeyError):
        await svc.unlock("20261126-000000-nosuchjob000", PASSWORD)
    await svc.stop(1)


async def test_block_policy_does_not_hold(env: Env, tmp_path: Path) -> None:
    text = (Path(load("default").source).read_text(encoding="utf-8")
            .replace("archive: {action: disarm, encrypted: quarantine",
                     "archive: {action: disarm, encrypted: block")
            .replace("name: default", "name: noppap"))
    assert "encrypted: block" in text
    (tmp_path / "noppap.yaml").write_text(text, encoding="utf-8")
    svc = JobService(env.store, env.pool, {"noppap": load(str(tmp_path / "noppap.yaml"))},
                     default_policy="noppap", quarantine=env.quarantine)
    await svc.start()
    rec = await svc.submit(env.file("a.zip", encrypted_zip("zipcrypt", {"a.txt": b"x"})),
                           name="a.zip", origin="test")
    got = await svc.wait(rec.job_id, 60)
    assert got is not None and (got.state, got.verdict) == (DELIVERED, "blocked")
    await svc.stop(1)


async def test_password_docx_is_held_then_unlocked(env: Env) -> None:
    from tests.helpers import ooxmlgen

    svc = env.service()
    await svc.start()
    data = ooxmlgen.encrypt(ooxmlgen.docm(), "課長のパスワード")
    rec = await svc.submit(env.file("報告.docm", data), name="報告.docm", origin="test")
    held = await svc.wait(rec.job_id, 60)
    assert held is not None and (held.state, held.reason) == (
        HELD, "document is password-protected")
    done = await svc.unlock(rec.job_id, "課長のパスワード")
    assert (done.state, done.verdict, done.output_name) == (DELIVERED, "disarmed", "報告.docx")
    out = svc.result_path(rec.job_id)
    assert out is not None and out.read_bytes().startswith(b"PK")
    with zipfile.ZipFile(out) as zf:
        assert not [n for n in zf.namelist() if "vbaProject" in n]
    await svc.stop(1)


async def test_follow_up_work_is_not_refused_for_the_backlog(env: Env) -> None:
    svc = env.service(max_pending=0)
    await svc.start()
    with pytest.raises(Busy):
        await svc.submit(env.file("a.txt", b"x"), name="a.txt", origin="test")
    rec = await svc.submit(env.file("b.txt", b"plain text\n"), name="b.txt", origin="test",
                           follow_up=True)
    got = await svc.wait(rec.job_id, 60)
    assert got is not None and got.verdict == "clean"
    await svc.stop(1)


async def test_a_waiter_arriving_while_the_sink_runs_is_woken(env: Env) -> None:
    """A job is ``done`` while its sink runs; whoever starts waiting then is woken when
    the hand-over ends, not at its timeout."""
    svc = env.service()
    in_sink, go_on = asyncio.Event(), asyncio.Event()

    async def slow_sink(rec: JobRecord) -> None:
        in_sink.set()
        await go_on.wait()

    svc.register_sink("test", slow_sink)
    await svc.start()
    rec = await svc.submit(env.file("a.txt", b"plain text\n"), name="a.txt", origin="test")
    await asyncio.wait_for(in_sink.wait(), 60)
    waiter = asyncio.create_task(svc.wait(rec.job_id, 30))
    await asyncio.sleep(0.1)  # the waiter sees "done" and waits
    assert not waiter.done()
    go_on.set()
    done = await asyncio.wait_for(waiter, 5)
    assert done is not None and done.state == DELIVERED

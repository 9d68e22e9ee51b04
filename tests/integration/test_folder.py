"""The drop folder with a real worker pool, job service, quarantine and files on disk."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import time
import zipfile
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
from structlog.testing import capture_logs

from gateway.config import FolderPair
from gateway.ingress.folder import FolderFrontEnd, ignored
from gateway.ingress.folder_inbox import stat_key
from gateway.jobs.service import JobService
from gateway.jobs.store import JobStore
from gateway.pipeline.workers import WorkerPool
from gateway.store.quarantine import Quarantine
from tests.conftest import check_report_schema
from tests.helpers import archivegen, ooxmlgen, pdfgen
from tests.helpers.jobs import EXE, HTML, POLICIES

pytestmark = pytest.mark.xdist_group("workers")


class Env:
    def __init__(self, root: Path, pool: WorkerPool) -> None:
        self.root = root
        self.pool = pool
        self.store = JobStore(root / "var" / "jobs")
        self.quarantine = Quarantine(root / "var" / "quarantine")
        self.svc: JobService | None = None
        self.front: FolderFrontEnd | None = None

    def pair(self, name: str = "default", policy: str = "", stable: float = 0.6) -> FolderPair:
        return FolderPair(name=name, inbox=self.root / name / "inbox",
                          outbox=self.root / name / "outbox", policy=policy, stable=stable)

    async def start(self, *pairs: FolderPair, rescan: float = 2.0,
                    **kw: object) -> FolderFrontEnd:
        self.svc = JobService(self.store, self.pool, POLICIES, default_policy="default",
                              quarantine=self.quarantine, retry_delay=0.05,
                              **kw)  # type: ignore[arg-type]
        self.front = FolderFrontEnd(pairs or (self.pair(),), self.svc,
                                    work_dir=self.root / "var" / "folders", rescan=rescan)
        await self.svc.start()
        await self.front.start()
        return self.front

    async def stop(self) -> None:
        if self.front is not None:
            await self.front.stop()
        if self.svc is not None:
            await self.svc.stop(5)
        self.front = self.svc = None


@pytest.fixture
async def env(tmp_path: Path, pool: WorkerPool) -> AsyncIterator[Env]:
    e = Env(tmp_path, pool)
    yield e
    await e.stop()


def drop(inbox: Path, rel: str, data: bytes) -> Path:
    """Write a file beside the inbox and rename it in (as well-behaved senders do)."""
    target = inbox / rel
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(target.name + ".part")
    tmp.write_bytes(data)
    os.rename(tmp, target)
    return target


def reports(outbox: Path) -> dict[str, dict[str, object]]:
    """Every report in the outbox, by its path relative to the outbox."""
    return {p.relative_to(outbox).as_posix(): json.loads(p.read_text("utf-8"))
            for p in outbox.rglob("*.report.json")}


async def until(pred: Callable[[], object], timeout: float = 60.0, what: str = "") -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pred():
            return
        await asyncio.sleep(0.1)
    raise AssertionError(f"timed out after {timeout} s waiting for {what or pred}")


def visible(d: Path) -> list[str]:
    return sorted(p.relative_to(d).as_posix() for p in d.rglob("*")
                  if p.is_file() and not any(x.startswith(".") for x in p.relative_to(d).parts))


# ----------------------------------------------------------------------------- basics


def test_ignored_names() -> None:
    for rel in ("a.part", "x.docx.tmp", "~$報告.docx", ".~lock.a.odt#", ".hidden",
                "sub/.git/config", ".sekisho/claim/x/a.txt", "Thumbs.db", "b.crdownload"):
        assert ignored(rel), rel
    for rel in ("a.txt", "課/見積書.docx", "part.pdf", "tmp/a.txt"):
        assert not ignored(rel), rel


async def test_clean_disarmed_and_blocked(env: Env) -> None:
    pair = env.pair()
    await env.start(pair)
    drop(pair.inbox, "memo.txt", "連絡メモ\n".encode())
    drop(pair.inbox, "page.html", HTML)
    drop(pair.inbox, "請求書.pdf.exe", EXE)
    drop(pair.inbox, "macro.docm", ooxmlgen.docm())
    await until(lambda: len(reports(pair.outbox)) == 4, what="four reports")
    out = pair.outbox
    assert (out / "memo.txt").read_bytes() == "連絡メモ\n".encode()
    assert reports(out)["memo.txt.report.json"]["verdict"] == "clean"
    html = (out / "page.html").read_bytes()
    assert b"<script" not in html and b"hello" in html
    assert reports(out)["page.html.report.json"]["verdict"] == "disarmed"
    # a macro-enabled document arrives as .docx, without its VBA project
    assert reports(out)["macro.docx.report.json"]["verdict"] == "disarmed"
    with zipfile.ZipFile(out / "macro.docx") as zf:
        assert not any("vbaProject" in n for n in zf.namelist())
    # blocked: a report and a notice, no output
    blocked = reports(out)["請求書.pdf.exe.report.json"]
    assert blocked["verdict"] == "blocked" and blocked["output"] is None
    notice = (out / "請求書.pdf.exe.blocked.txt").read_text("utf-8-sig")
    job_id = str(blocked["job_id"])
    assert job_id in notice and "原本は隔離されています" in notice
    assert "ポリシーによりブロック" in notice and "held in quarantine" in notice
    assert visible(out) == sorted(["memo.txt", "memo.txt.report.json", "page.html",
                                   "page.html.report.json", "macro.docx",
                                   "macro.docx.report.json", "請求書.pdf.exe.report.json",
                                   "請求書.pdf.exe.blocked.txt"])
    for rep in reports(out).values():
        check_report_schema(rep)
        assert rep["source"] == "folder"
        assert (env.root / "var" / "quarantine" / str(rep["job_id"])).is_file()  # originals
    assert visible(pair.inbox) == []
    assert not list(out.rglob(".sekisho-*"))  # no temporary left


async def test_slowly_written_file_waits_until_stable(env: Env) -> None:
    pair = env.pair(stable=1.5)
    await env.start(pair)
    pieces = [f"line {i} ".encode() * 200 + b"\n" for i in range(12)]
    with open(pair.inbox / "slow.txt", "wb") as fh:
        for piece in pieces:
            fh.write(piece)
            fh.flush()
            await asyncio.sleep(0.4)  # 4.8 s in all, never quiet for 1.5 s
            assert not (pair.outbox / "slow.txt.report.json").exists()
            assert (pair.inbox / "slow.txt").exists()
    await until(lambda: (pair.outbox / "slow.txt.report.json").exists(), what="the report")
    assert (pair.outbox / "slow.txt").read_bytes() == b"".join(pieces)


async def test_part_file_then_renamed_is_taken_at_once(env: Env) -> None:
    pair = env.pair(stable=30.0)  # only the rename rule can take it this quickly
    await env.start(pair)
    part = pair.inbox / "report.pdf.part"
    part.write_bytes(pdfgen.plain(1))
    await asyncio.sleep(1.5)
    assert part.exists() and visible(pair.outbox) == []  # .part is never taken
    os.rename(part, pair.inbox / "report.pdf")
    started = time.monotonic()
    await until(lambda: (pair.outbox / "report.pdf.report.json").exists(), 20, "the report")
    assert time.monotonic() - started < 10
    assert (pair.outbox / "report.pdf").read_bytes().startswith(b"%PDF")


async def test_vanishing_file_is_skipped_and_the_watcher_survives(env: Env) -> None:
    pair = env.pair(stable=1.0)
    front = await env.start(pair)
    gone = pair.inbox / "gone.txt"
    gone.write_bytes(b"here for a moment\n")
    await asyncio.sleep(0.4)
    gone.unlink()
    # a file that changes after it was found stable, between stat and claim
    box = front.watches[0].box
    changing = pair.inbox / "changing.txt"
    changing.write_bytes(b"v1\n")
    stale = stat_key(os.stat(changing))
    changing.write_bytes(b"v2, longer\n")
    assert box.claim("changing.txt", stale) == "changed"
    assert box.claim("missing.txt", stale) == "gone"
    assert changing.read_bytes() == b"v2, longer\n"  # left in place
    drop(pair.inbox, "after.txt", b"still watching\n")
    await until(lambda: {"after.txt.report.json", "changing.txt.report.json"}
                <= set(reports(pair.outbox)), what="later files")
    assert (pair.outbox / "changing.txt").read_bytes() == b"v2, longer\n"
    assert not (pair.outbox / "gone.txt.report.json").exists()


async def test_changed_while_being_copied_goes_back_and_comes_again(
        env: Env, monkeypatch: pytest.MonkeyPatch) -> None:
    pair = env.pair(stable=0.5)
    real_copy = shutil.copyfileobj
    grown: list[str] = []

    def copy_and_grow(src: Any, dst: Any, length: int = 0) -> None:
        if str(getattr(src, "name", "")).endswith("grow.txt") and not grown:
            grown.append(src.name)
            with open(src.name, "ab") as fh:  # a writer that was not done after all
                fh.write(b"second half\n")
        real_copy(src, dst, length)

    monkeypatch.setattr(shutil, "copyfileobj", copy_and_grow)
    with capture_logs() as logs:
        await env.start(pair)
        drop(pair.inbox, "grow.txt", b"first half\n")
        await until(lambda: (pair.outbox / "grow.txt.report.json").exists(), what="grow.txt")
    assert grown
    assert (pair.outbox / "grow.txt").read_bytes() == b"first half\nsecond half\n"
    assert [e for e in logs if e["event"] == "folder.changed_while_read"]
    assert len(reports(pair.outbox)) == 1


async def test_unreadable_file_is_logged_once_and_left_in_place(
        env: Env, monkeypatch: pytest.MonkeyPatch) -> None:
    pair = env.pair(stable=0.3)
    real_open = os.open
    locked = [True]

    def open_(path: Any, flags: int, mode: int = 0o777, **kw: Any) -> int:
        if locked[0] and str(path).endswith("secret.txt"):  # as for a file mode 000 (we
            raise PermissionError(13, "Permission denied", str(path))  # may run as root)
        return real_open(path, flags, mode, **kw)

    monkeypatch.setattr(os, "open", open_)
    with capture_logs() as logs:
        await env.start(pair, rescan=0.5)
        (pair.inbox / "secret.txt").write_bytes(b"no access\n")
        drop(pair.inbox, "ok.txt", b"fine\n")
        await until(lambda: (pair.outbox / "ok.txt.report.json").exists(), what="ok.txt")
        await asyncio.sleep(2.5)  # several rescans
        assert (pair.inbox / "secret.txt").exists()
        assert not (pair.outbox / "secret.txt.report.json").exists()
        warned = [e for e in logs if e["event"] == "folder.unreadable"]
        assert len(warned) == 1 and warned[0]["path"] == "secret.txt"
        locked[0] = False  # the administrator fixed the permissions
        await until(lambda: (pair.outbox / "secret.txt.report.json").exists(), what="later")


async def test_two_pairs_two_policies(env: Env) -> None:
    normal = env.pair("normal")
    strict = env.pair("strict", policy="strict")
    await env.start(normal, strict)
    # a PDF whose name says Word: the default policy reports the mismatch, strict blocks it
    data = pdfgen.plain(1)
    drop(normal.inbox, "lying.docx", data)
    drop(strict.inbox, "lying.docx", data)
    await until(lambda: reports(normal.outbox) and reports(strict.outbox), what="both reports")
    got_normal = next(iter(reports(normal.outbox).values()))
    got_strict = next(iter(reports(strict.outbox).values()))
    assert got_normal["policy"] == "default" and got_normal["verdict"] in ("clean", "disarmed")
    assert got_strict["policy"] == "strict" and got_strict["verdict"] == "blocked"
    assert (strict.outbox / "lying.docx.blocked.txt").exists()
    assert not (strict.outbox / "lying.docx").exists()


async def test_name_collisions_never_overwrite(env: Env) -> None:
    pair = env.pair()
    pair.outbox.mkdir(parents=True)
    (pair.outbox / "a.txt").write_bytes(b"staff's own file\n")
    await env.start(pair)
    drop(pair.inbox, "a.txt", b"first\n")
    await until(lambda: (pair.outbox / "a (2).txt.report.json").exists(), what="a (2)")
    drop(pair.inbox, "a.txt", b"second\n")
    await until(lambda: (pair.outbox / "a (3).txt.report.json").exists(), what="a (3)")
    assert (pair.outbox / "a.txt").read_bytes() == b"staff's own file\n"
    assert (pair.outbox / "a (2).txt").read_bytes() == b"first\n"
    assert (pair.outbox / "a (3).txt").read_bytes() == b"second\n"
    # a macro document whose delivery name (.docx) is taken
    drop(pair.inbox, "m.docx", ooxmlgen.base_docx())
    await until(lambda: (pair.outbox / "m.docx.report.json").exists(), what="m.docx")
    drop(pair.inbox, "m.docm", ooxmlgen.docm())
    await until(lambda: (pair.outbox / "m (2).docx.report.json").exists(), what="m (2).docx")


async def test_nested_subdirectories_keep_their_path(env: Env) -> None:
    pair = env.pair()
    await env.start(pair)
    drop(pair.inbox, "総務課/2026/見積.html", HTML)
    (pair.inbox / "企画課" / "深い" / "階層").mkdir(parents=True)
    drop(pair.inbox, "企画課/深い/階層/memo.txt", b"memo\n")
    (pair.inbox / "企画課" / ".hidden").mkdir()
    (pair.inbox / "企画課" / ".hidden" / "x.txt").write_bytes(b"ignored\n")
    await until(lambda: len(reports(pair.outbox)) == 2, what="two reports")
    assert set(reports(pair.outbox)) == {"総務課/2026/見積.html.report.json",
                                         "企画課/深い/階層/memo.txt.report.json"}
    assert b"<script" not in (pair.outbox / "総務課/2026/見積.html").read_bytes()
    assert (pair.inbox / "企画課" / ".hidden" / "x.txt").exists()
    assert visible(pair.inbox) == []
    assert (pair.inbox / "総務課" / "2026").is_dir()  # directories stay


async def test_files_present_at_start_and_claims_left_by_a_crash(env: Env) -> None:
    pair = env.pair()
    pair.inbox.mkdir(parents=True)
    (pair.inbox / "waiting.txt").write_bytes(b"dropped while the daemon was down\n")
    # a claim a crashed run made (no job for it): goes back and is taken
    claim = pair.inbox / ".sekisho" / "claim" / "20260101-000000-abcdefabcdef" / "課"
    claim.mkdir(parents=True)
    (claim / "claimed.txt").write_bytes(b"claimed before the crash\n")
    await env.start(pair)
    await until(lambda: len(reports(pair.outbox)) == 2, what="two reports")
    assert set(reports(pair.outbox)) == {"waiting.txt.report.json",
                                         "課/claimed.txt.report.json"}
    assert not any((pair.inbox / ".sekisho" / "claim").iterdir())


async def test_backlog_waits_and_drops_nothing(env: Env) -> None:
    pair = env.pair(stable=0.3)
    await env.start(pair, max_pending=2, max_active=1)
    for i in range(12):
        drop(pair.inbox, f"f{i:02d}.html", HTML + str(i).encode())
    await until(lambda: len(reports(pair.outbox)) == 12, 120, "twelve reports")
    assert visible(pair.inbox) == []
    for i in range(12):
        assert str(i).encode() in (pair.outbox / f"f{i:02d}.html").read_bytes()


async def test_sink_is_idempotent(env: Env) -> None:
    pair = env.pair()
    await env.start(pair)
    drop(pair.inbox, "once.txt", b"one\n")
    drop(pair.inbox, "bad.exe", EXE)
    await until(lambda: len(reports(pair.outbox)) == 2, what="two reports")
    before = visible(pair.outbox)
    assert env.front is not None
    for rec in env.store.all():
        env.front.egress.deliver(rec)  # what a restart after a crash does
    assert visible(pair.outbox) == before


async def test_password_protected_zip_is_held_then_delivered_after_unlock(env: Env) -> None:
    pair = env.pair()
    await env.start(pair)
    drop(pair.inbox, "ppap.zip", archivegen.encrypted_zip("zipcrypt", {"memo.txt": b"memo\n"}))
    await until(lambda: (pair.outbox / "ppap.zip.report.json").exists(), what="the report")
    held = reports(pair.outbox)["ppap.zip.report.json"]
    assert held["verdict"] == "blocked" and held["output"] is None
    notice = (pair.outbox / "ppap.zip.blocked.txt").read_text("utf-8-sig")
    assert "パスワード" in notice and str(held["job_id"]) in notice and "password" in notice
    assert env.svc is not None
    rec = await env.svc.unlock(str(held["job_id"]), archivegen.PASSWORD)
    assert rec.verdict in ("clean", "disarmed")
    # the hold notice and report make way for the file and its own report
    assert visible(pair.outbox) == ["ppap.zip", "ppap.zip.report.json"]
    assert reports(pair.outbox)["ppap.zip.report.json"]["verdict"] == rec.verdict
    with zipfile.ZipFile(pair.outbox / "ppap.zip") as zf:
        assert zf.read("memo.txt") == b"memo\n"


async def test_name_that_is_not_utf8(env: Env) -> None:
    pair = env.pair()
    await env.start(pair)
    raw = os.fsdecode("テスト".encode("cp932") + b".txt")  # an old tool's Shift_JIS name
    drop(pair.inbox, raw, b"sjis name\n")
    await until(lambda: len(reports(pair.outbox)) == 1, what="the report")
    name = next(iter(reports(pair.outbox).values()))["input"]["name"]
    assert isinstance(name, str) and name.endswith(".txt") and "\ufffd" in name
    assert (pair.outbox / name).read_bytes() == b"sjis name\n"
    assert visible(pair.inbox) == []

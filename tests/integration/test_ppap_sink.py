"""The PPAP sink with the real job service, worker pool and quarantine: what each
recipient is mailed for every way a PPAP job can end, including the ones where no
password was ever asked for."""

from __future__ import annotations

import io
import json
import zipfile
from email import message_from_bytes
from email import policy as email_policy
from email.message import EmailMessage
from pathlib import Path

import pytest

from gateway.jobs.service import JobService
from gateway.jobs.store import DELIVERED, HELD, JobStore
from gateway.pipeline.workers import WorkerPool
from gateway.relay.ppap import ORIGIN, PPAP
from gateway.store.quarantine import Quarantine
from tests.helpers.archivegen import PASSWORD, encrypted_zip
from tests.helpers.jobs import EXE, HTML, POLICIES

pytestmark = pytest.mark.xdist_group("workers")

RCPTS = ["staff@city.example.lg.jp", "boss@city.example.lg.jp"]


class Setup:
    def __init__(self, root: Path, pool: WorkerPool) -> None:
        self.root = root
        self.quarantine = Quarantine(root / "quarantine")
        self.jobs = JobService(JobStore(root / "jobs"), pool, POLICIES,
                               default_policy="default", quarantine=self.quarantine,
                               retry_delay=0.05)
        self.sent: list[tuple[str, EmailMessage]] = []

        async def inject(rcpt: str, data: bytes) -> None:
            msg = message_from_bytes(data, policy=email_policy.default)
            assert isinstance(msg, EmailMessage)
            self.sent.append((rcpt, msg))

        self.ppap = PPAP(self.jobs, inject, secret=b"k" * 32,
                         public_url="https://sekisho.city.example.lg.jp",
                         hostname="sekisho.city.example.lg.jp", max_attempts=3)

    async def submit(self, name: str, data: bytes) -> str:
        src = self.root / "attachment"
        src.write_bytes(data)
        extra = {"sender": "sender@example.com", "recipients": json.dumps(RCPTS),
                 "subject": "見積書の送付", "mail_job": "mail-1"}
        rec = await self.jobs.submit(src, name=name, origin=ORIGIN, policy="default",
                                     requester="sender@example.com", extra=extra, move=True,
                                     follow_up=True)
        return rec.job_id


def text(msg: EmailMessage) -> str:
    body = msg.get_body(("plain",))
    assert body is not None
    return str(body.get_content())


def attachment(msg: EmailMessage) -> tuple[str, bytes]:
    (att,) = list(msg.iter_attachments())
    data = att.get_payload(decode=True)
    assert isinstance(data, bytes)
    return str(att.get_filename()), data


async def test_an_attachment_that_needs_no_password_alone_is_mailed_disarmed(
        tmp_path: Path, pool: WorkerPool) -> None:
    """The message said the attachment was taken off as encrypted; if checked on its
    own it opens without a password, the recipients must still get it (they did not
    before: the sink said nothing, and the document was lost to them)."""
    s = Setup(tmp_path, pool)
    await s.jobs.start()
    job_id = await s.submit("案内.html", HTML)
    rec = await s.jobs.wait(job_id, 60)
    assert rec is not None and (rec.state, rec.verdict, rec.password_attempts) == (
        DELIVERED, "disarmed", 0)
    assert [r for r, _ in s.sent] == RCPTS
    for _, msg in s.sent:
        assert "添付ファイルを無害化しました: 案内.html" in str(msg["Subject"])
        assert "Your attachment, disarmed" in str(msg["Subject"])
        body = text(msg)
        assert "パスワードの入力は不要です" in body and "No password is needed" in body
        assert job_id in body and "見積書の送付" in body
        name, data = attachment(msg)
        assert name == "案内.html" and b"<script" not in data and b"hello" in data
    await s.jobs.stop(1)


async def test_a_blocked_attachment_that_never_asked_for_a_password_gets_a_notice(
        tmp_path: Path, pool: WorkerPool) -> None:
    s = Setup(tmp_path, pool)
    await s.jobs.start()
    job_id = await s.submit("setup.zip", EXE)
    rec = await s.jobs.wait(job_id, 60)
    assert rec is not None and (rec.state, rec.verdict) == (DELIVERED, "blocked")
    assert [r for r, _ in s.sent] == RCPTS
    for _, msg in s.sent:
        assert "お届けできません" in str(msg["Subject"])
        assert not list(msg.iter_attachments())
        assert job_id in text(msg) and "setup.zip" in text(msg)
    assert s.quarantine.get(job_id).verdict == "blocked"  # the original is kept
    await s.jobs.stop(1)


async def test_a_held_attachment_gets_a_link_then_the_file(tmp_path: Path,
                                                           pool: WorkerPool) -> None:
    s = Setup(tmp_path, pool)
    await s.jobs.start()
    data = encrypted_zip("zipcrypt", {"見積書.html": HTML, "memo.txt": b"memo"})
    job_id = await s.submit("見積書.zip", data)
    rec = await s.jobs.wait(job_id, 60)
    assert rec is not None and rec.state == HELD
    assert [r for r, _ in s.sent] == RCPTS
    assert s.ppap.link(job_id) in text(s.sent[0][1])
    s.sent.clear()
    await s.jobs.unlock(job_id, PASSWORD)
    assert [r for r, _ in s.sent] == RCPTS
    msg = s.sent[0][1]
    assert "パスワード付きファイルを無害化しました: 見積書.zip" in str(msg["Subject"])
    name, out = attachment(msg)
    assert name == "見積書.zip"
    with zipfile.ZipFile(io.BytesIO(out)) as zf:
        assert sorted(zf.namelist()) == ["memo.txt", "見積書.html"]
        assert b"<script" not in zf.read("見積書.html")
    await s.jobs.stop(1)

"""What becomes of a sanitized message's original: verdict, quarantine by keep, audit line."""

from __future__ import annotations

import hashlib
import json
import pickle
import secrets
from pathlib import Path

import pytest

from gateway.models import FileInfo, Finding, ItemReport, Report, Verdict
from gateway.pipeline.workers import JobSpec
from gateway.relay import custody
from gateway.relay.custody import Custody, Settled, judge, settle
from gateway.store.audit import AuditLog, verify
from gateway.store.quarantine import NotFound, Quarantine
from gateway.store.sealed import Keyring

MAIL = b"From: a@example.com\r\nTo: b@localhost\r\nSubject: hi\r\n\r\nbody\r\n"


def report(original: Path, verdict: Verdict, *, out_type: str | None = "mail.eml",
           in_type: str = "mail.eml", job_id: str = "job-1") -> Report:
    data = original.read_bytes()
    info = FileInfo("message.eml", hashlib.sha256(data).hexdigest(), len(data), in_type)
    findings = [Finding(kind="mail.attachment_blocked", action="removed", location="a.exe")] \
        if verdict is Verdict.DISARMED else []
    item = ItemReport(stage="mail", location="message.eml", verdict=verdict, findings=findings,
                      error="blocked by rule" if verdict is Verdict.BLOCKED else None)
    out = FileInfo("message.eml", "0" * 64, 10, out_type) if out_type else None
    return Report(job_id, "smtp", "default", info, verdict, out, [item])


def meta(job_id: str = "job-1") -> dict[str, object]:
    return {"origin": "smtp", "qid": "Q1", "job_id": job_id, "policy": "default",
            "sender": "a@example.com", "recipients": ["b@localhost"], "client": "127.0.0.1",
            "helo": "h", "received": 1.0, "size": len(MAIL)}


@pytest.fixture
def parts(tmp_path: Path) -> tuple[Path, Quarantine, AuditLog]:
    original = tmp_path / "message.eml"
    original.write_bytes(MAIL)
    q = Quarantine(tmp_path / "q", Keyring(secrets.token_bytes(32)))
    return original, q, AuditLog(tmp_path / "audit.log")


def audit_lines(log: AuditLog) -> list[dict[str, object]]:
    return [json.loads(x) for x in log.path.read_text().splitlines()]


@pytest.mark.parametrize(("keep", "verdict", "kept"), [
    ("all", Verdict.CLEAN, True), ("changed", Verdict.CLEAN, False),
    ("changed", Verdict.DISARMED, True), ("blocked", Verdict.DISARMED, False),
    ("blocked", Verdict.BLOCKED, True), ("changed", Verdict.FAILED, True)])
def test_keep_decides_what_is_quarantined(parts: tuple[Path, Quarantine, AuditLog],
                                          keep: str, verdict: Verdict, kept: bool) -> None:
    original, q, log = parts
    done = settle(report(original, verdict), original, keep=keep, meta=meta(),
                  quarantine=q, audit=log)
    assert done == Settled(verdict, "blocked by rule" if verdict is Verdict.BLOCKED else
                           "verdict failed" if verdict is Verdict.FAILED else "", kept)
    if kept:
        entry = q.get("job-1")
        assert (entry.verdict, entry.origin, entry.state) == (verdict.value, "smtp", "held")
        assert entry.destination == {"sender": "a@example.com", "recipients": ["b@localhost"]}
        assert entry.extra == {"qid": "Q1", "client": "127.0.0.1", "helo": "h",
                               "received": 1.0}
        assert entry.size == len(MAIL)
    else:
        with pytest.raises(NotFound):
            q.get("job-1")
    [line] = audit_lines(log)
    assert (line["event"], line["job_id"], line["verdict"], line["quarantined"]) == (
        "job", "job-1", verdict.value, kept)
    assert line["findings"] == ({"mail.attachment_blocked": 1} if verdict is Verdict.DISARMED
                                else {})
    assert verify(log.path) == []


@pytest.mark.parametrize(("in_type", "out_type"), [("text.plain", "text.plain"),
                                                   ("mail.eml", None)])
def test_a_result_that_is_not_a_mail_message_is_blocked(tmp_path: Path, in_type: str,
                                                        out_type: str | None) -> None:
    original = tmp_path / "m"
    original.write_bytes(MAIL)
    verdict, reason = judge(report(original, Verdict.CLEAN, in_type=in_type,
                                   out_type=out_type))
    assert verdict is Verdict.BLOCKED
    assert reason == f"not readable as a mail message (content is {in_type})"


def test_custody_is_picklable_keeps_the_key_out_of_its_repr_and_reuses_its_writers(
        parts: tuple[Path, Quarantine, AuditLog]) -> None:
    original, q, log = parts
    c = Custody(q.root, q.keys, q.retention, "all", log.path, meta("job-2"))
    assert q.keys.current.hex() not in repr(c) and repr(q.keys.current) not in repr(c)
    c = pickle.loads(pickle.dumps(c))
    spec = JobSpec("job-2", original, None, "message.eml", "smtp")
    try:
        assert c(report(original, Verdict.CLEAN, job_id="job-2"), spec).quarantined
        writer = custody._quarantines[q.root]
        c2 = Custody(q.root, q.keys, q.retention, "all", log.path, meta("job-3"))
        assert c2(report(original, Verdict.CLEAN, job_id="job-3"), spec).quarantined
        assert custody._quarantines[q.root] is writer  # one writer per process
    finally:
        for w in custody._quarantines.values():
            w.close()
        custody._quarantines.clear()
        custody._audits.clear()
    assert q.get("job-2").state == q.get("job-3").state == "held"
    assert [e["job_id"] for e in audit_lines(log)] == ["job-2", "job-3"]
    assert verify(log.path) == []

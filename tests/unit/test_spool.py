"""Spool, envelope, quarantine: durable entries, claim by rename, recovery by state."""

from __future__ import annotations

import errno
import json
import time
from pathlib import Path

import pytest

from gateway.store import durable
from gateway.store.envelope import Envelope, Group, RcptStatus, Recipient, State
from gateway.store.quarantine import Quarantine
from gateway.store.spool import ACTIVE, DEFERRED, INCOMING, Spool, SpoolFull, new_qid


def env(mode: str = "queue", **kw: object) -> Envelope:
    return Envelope(qid=new_qid(), sender="a@example.com",
                    recipients=[Recipient("u@localhost"), Recipient("v@localhost")],
                    received=time.time(), job_id="job-1", mode=mode, **kw)  # type: ignore[arg-type]


def test_envelope_round_trip() -> None:
    e = env(state=State.SANITIZED, groups=[Group("default", "job-1", "out-0.eml", "clean",
                                                  "a@example.com")])
    e.recipients[0].status = RcptStatus.SENT
    back = Envelope.from_json(e.to_json())
    assert back == e and back.recipients[0].status is RcptStatus.SENT
    assert json.loads(e.to_json())["version"] == 1


def test_create_claim_and_remove(tmp_path: Path) -> None:
    spool = Spool(tmp_path)
    e = env()
    entry = spool.create(e, (b"Received: x\r\n", b"Subject: s\r\n\r\nbody\r\n"))
    assert entry == tmp_path / INCOMING / e.qid
    assert (entry / "message.eml").read_bytes().startswith(b"Received: x\r\nSubject")
    assert spool.load(entry) == e
    assert spool.used > 0
    claimed = spool.move(e.qid, INCOMING, ACTIVE)
    assert claimed is not None and spool.move(e.qid, INCOMING, ACTIVE) is None
    spool.remove(e.qid, ACTIVE)
    assert not claimed.exists() and spool.used == 0
    assert list((tmp_path / "tmp").iterdir()) == []


def test_recover_puts_active_back_by_state(tmp_path: Path) -> None:
    spool = Spool(tmp_path)
    received, sanitized, through = env(), env(state=State.SANITIZED), env("through",
                                                                        accepted=False)
    sanitized.next_attempt = 123.0
    for e in (received, sanitized, through):
        spool.create(e, b"Subject: x\r\n\r\nbody\r\n", ACTIVE)
    (tmp_path / "tmp" / "half-written").mkdir()
    incoming, deferred = Spool(tmp_path).recover()
    assert incoming == [received.qid]
    assert deferred == [(123.0, sanitized.qid)]
    assert not (tmp_path / ACTIVE / through.qid).exists()  # never acknowledged: dropped
    assert list((tmp_path / "tmp").iterdir()) == []
    assert (tmp_path / DEFERRED / sanitized.qid).is_dir()


def test_corrupt_entry_is_set_aside_not_deleted(tmp_path: Path) -> None:
    spool = Spool(tmp_path)
    bad = tmp_path / INCOMING / "BROKEN"
    bad.mkdir()
    (bad / "envelope.json").write_text("{not json")
    assert spool.recover() == ([], [])
    [kept] = list((tmp_path / "corrupt").iterdir())
    assert kept.name.startswith("BROKEN.")


def test_quota_and_free_space(tmp_path: Path) -> None:
    spool = Spool(tmp_path, quota=3000)
    spool.create(env(), b"x" * 1000)
    with pytest.raises(SpoolFull) as full:
        spool.create(env(), b"x" * 1000)
    assert full.value.reply.startswith("452 4.3.1")
    assert Spool(tmp_path, min_free=1 << 62).space_problem(1) is not None


def test_failed_write_leaves_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    spool = Spool(tmp_path)

    def full(fd: int) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr("os.fsync", full)
    with pytest.raises(OSError):
        spool.create(env(), b"Subject: x\r\n\r\nbody\r\n")
    for q in ("tmp", INCOMING, ACTIVE, DEFERRED):
        assert list((tmp_path / q).iterdir()) == []


def test_durable_replace(tmp_path: Path) -> None:
    target = tmp_path / "f.json"
    durable.replace(target, b"one")
    durable.replace(target, b"two")
    assert target.read_bytes() == b"two" and [p.name for p in tmp_path.iterdir()] == ["f.json"]


def test_quarantine_put_seals_and_replaces(tmp_path: Path) -> None:
    original = tmp_path / "m.eml"
    original.write_bytes(b"Subject: x\r\n\r\nbody\r\n")
    q = Quarantine(tmp_path / "q")
    meta = {"origin": "smtp", "sender": "a@example.com", "recipients": ["u@localhost"]}
    first = q.put("job-1", original, {"verdict": "blocked"}, {**meta, "reason": "r1"})
    assert first.is_file() and b"body" not in first.read_bytes()  # encrypted at rest
    q.read_original("job-1", tmp_path / "back.eml")
    assert (tmp_path / "back.eml").read_bytes() == original.read_bytes()
    q.put("job-1", original, {"verdict": "failed"}, {**meta, "reason": "r2"})
    assert q.get("job-1").reason == "r2" and q.read_report("job-1") == {"verdict": "failed"}
    assert [p.name for p in (tmp_path / "q").iterdir() if not p.name.startswith(".")] == \
        ["job-1"]
    with pytest.raises(ValueError, match="bad job id"):
        q.put("../x", original, {}, meta)

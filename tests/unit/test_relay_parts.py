"""Relay pieces: the RFC 3464 bounce, the block notice, routing, backoff, acceptor errors."""

from __future__ import annotations

import asyncio
import email
import errno
import time
from email.message import Message
from pathlib import Path

import pytest

from gateway.config import QueueConfig
from gateway.egress import Reply
from gateway.ingress import Incoming
from gateway.policy import Policy, Rule
from gateway.relay import notices
from gateway.relay.accept import RelayAcceptor
from gateway.relay.process import Processor
from gateway.relay.routing import Router
from gateway.store.spool import Spool


def test_bounce_is_rfc3464(tmp_path: Path) -> None:
    copy = tmp_path / "out.eml"
    copy.write_bytes(b"From: a@example.com\r\nSubject: hi\r\nMessage-ID: <m@t>\r\n\r\nbody\r\n")
    raw = notices.bounce(hostname="gw.test", qid="Q1", sender="a@example.com",
                         received=time.time(), remote="smtp:mx.test:25",
                         failed=[("x@city.test", Reply(550, "5.1.1 No such user"))],
                         original=copy)
    msg = email.message_from_bytes(raw)
    assert msg.get_content_type() == "multipart/report"
    assert msg.get_param("report-type") == "delivery-status"
    assert msg["Auto-Submitted"] == "auto-replied" and msg["To"] == "<a@example.com>"
    parts = msg.get_payload()
    assert isinstance(parts, list)
    assert [p.get_content_type() for p in parts] == [
        "text/plain", "message/delivery-status", "text/rfc822-headers"]
    status = parts[1].get_payload()
    assert isinstance(status, list)  # the email package parses the status groups
    per_msg, per_rcpt = status[0], status[1]
    assert isinstance(per_msg, Message) and isinstance(per_rcpt, Message)
    assert per_msg["Reporting-MTA"] == "dns; gw.test"
    assert per_rcpt["Final-Recipient"] == "rfc822; x@city.test"
    assert per_rcpt["Action"] == "failed" and per_rcpt["Status"] == "5.1.1"
    assert per_rcpt["Remote-MTA"] == "dns; mx.test"
    assert "550 5.1.1 No such user" in per_rcpt["Diagnostic-Code"]
    assert "Message-ID: <m@t>" in str(parts[2].get_payload())
    assert b"body" not in raw.split(b"text/rfc822-headers")[1]
    assert raw.isascii()


def test_block_notice_uses_envelope_only() -> None:
    raw = notices.block_notice(hostname="gw.test", job_id="J-1", sender="s@example.com",
                               received=time.time(), size=1234, reason="macro found",
                               langs=("ja", "en"))
    assert raw.isascii()
    msg = email.message_from_bytes(raw)
    text = msg.get_payload(decode=True)
    assert isinstance(text, bytes)
    body = text.decode()
    assert body.index("受付番号 J-1") < body.index("reference J-1")
    assert "macro found" in body and "s@example.com" in body
    assert msg["To"] == "undisclosed-recipients:;"  # never reveals the other recipients
    assert "verdict=blocked; job=J-1" in msg["X-Sekisho"]


def test_reply_status_and_detail() -> None:
    assert Reply(550, "5.1.1 No such user").status() == "5.1.1"
    assert Reply(550, "No such user").status() == "5.0.0"
    assert Reply(450, "5.1.1 mismatched").status() == "4.0.0"
    assert Reply(250, "2.0.0 Ok: queued").detail() == "Ok: queued"
    assert Reply.of(250, "line1\nline2\x00").text == "line1 line2?"


def test_router_groups_by_rule() -> None:
    strict = Policy(name="strict")
    base = Policy(name="default", rules=(
        Rule(match={"recipient_domain": "kikaku.city.test"}, policy="strict"),
        Rule(match={"sender": "boss@example.com", "recipient": "a@city.test"},
             policy="strict"),))
    router = Router(base, {"strict": strict})
    groups = router.groups("x@example.com", ["a@city.test", "b@KIKAKU.city.test",
                                             "c@city.test"])
    assert [(p.name, idx) for p, idx in groups] == [("default", [0, 2]), ("strict", [1])]
    assert router.policy_for("boss@example.com", "a@city.test").name == "strict"
    assert router.policy_for("boss@example.com", "c@city.test").name == "default"


def test_router_loads_rule_policies_and_names_missing(tmp_path: Path) -> None:
    (tmp_path / "base.yaml").write_text(
        "name: base\nrules:\n  - match: {recipient: a@x.test}\n    policy: nosuch\n")
    from gateway.errors import ConfigError
    with pytest.raises(ConfigError, match=r"rules\[0\]\.policy: 'nosuch'"):
        Router.load(str(tmp_path / "base.yaml"))
    (tmp_path / "nosuch.yaml").write_text("name: nosuch\n")
    assert set(Router.load(str(tmp_path / "base.yaml")).policies) == {"base", "nosuch"}


def test_router_refuses_mail_pass(tmp_path: Path) -> None:
    from gateway.errors import ConfigError

    (tmp_path / "open.yaml").write_text("name: open\nformats:\n  mail: {action: pass}\n")
    with pytest.raises(ConfigError, match=r"formats\.mail\.action: 'pass'"):
        Router.load(str(tmp_path / "open.yaml"))


def test_backoff_doubles_to_the_cap() -> None:
    proc = Processor.__new__(Processor)
    proc.queue = QueueConfig(retry_min=300, retry_max=3600)
    got = [proc.backoff(n) for n in range(1, 8)]
    for n, (lo, val) in enumerate(zip([300, 600, 1200, 2400, 3600, 3600, 3600], got,
                                      strict=True)):
        assert lo <= val <= lo * 1.1, (n, val)


class _Queue:
    backlog = 0

    def enqueue(self, qid: str, env: object = None) -> None:
        raise AssertionError("must not be queued")


def test_disk_full_while_writing_answers_452(tmp_path: Path,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    spool = Spool(tmp_path)

    def create(*a: object, **k: object) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(spool, "create", create)
    acc = RelayAcceptor(mode="queue", spool=spool, processor=None,  # type: ignore[arg-type]
                        queue=_Queue(), max_backlog=10,  # type: ignore[arg-type]
                        reply_deadline=60)
    draft = spool.draft("Q")
    draft.write(b"Subject: x\r\n\r\nbody\r\n")
    msg = Incoming(qid="Q", sender="a@x.test", recipients=("u@localhost",), header=b"",
                   body=draft, client="127.0.0.1", helo="h", smtputf8=False, tls=False)
    assert asyncio.run(acc.accept(msg)).startswith("452 4.3.1")

    def broken(*a: object, **k: object) -> None:
        raise OSError(errno.EIO, "I/O error")

    monkeypatch.setattr(spool, "create", broken)
    assert asyncio.run(acc.accept(msg)).startswith("451 4.3.0")
    assert acc.in_flight == 0

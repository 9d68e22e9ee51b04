"""SMTP smuggling probes: a fake end-of-data inside DATA never splits one message into two.

Each probe is one transaction whose body hides a second transaction behind a
non-standard end-of-data sequence (bare LF, bare CR, mixed). The front end must
take it as one message, and what reaches the downstream (smtp-sink) must be one
message with no smuggled sender.
"""

from __future__ import annotations

import re
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.helpers.smtppeers import Daemon, Sink, sink, wait_for

pytestmark = pytest.mark.xdist_group("smtp")

PROBES = {
    "lf-dot-lf": b"\n.\n",
    "cr-dot-cr": b"\r.\r",
    "crlf-dot-lf": b"\r\n.\n",
    "lf-dot-crlf": b"\n.\r\n",
    "cr-dot-crlf": b"\r.\r\n",
    "crlf-dot-cr": b"\r\n.\r",
    "lf-dot-cr": b"\n.\r",
}


@pytest.fixture(scope="module")
def peers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Daemon, Sink]]:
    work = tmp_path_factory.mktemp("smuggling")
    with sink(work / "sink") as s:
        d = Daemon(work / "d", {"delivery": {"mode": "queue", "target": "smtp",
                                             "smtp": {"port": s.port, "starttls": "no"}}})
        d.start()
        yield d, s
        d.stop()


def converse(port: int, payload: bytes) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
        sock.sendall(payload)  # no half-close: a real client waits for its replies
        got = b""
        while not re.search(rb"(?m)^221 ", got):
            chunk = sock.recv(65536)
            if not chunk:
                break
            got += chunk
        return got


@pytest.mark.parametrize("probe", list(PROBES), ids=list(PROBES))
def test_fake_end_of_data_does_not_split(peers: tuple[Daemon, Sink], probe: str) -> None:
    d, s = peers
    before = len(s.messages())
    tag = f"probe-{probe}"
    payload = (
        b"EHLO attacker.test\r\n"
        b"MAIL FROM:<sender@example.com>\r\n"
        b"RCPT TO:<victim@localhost>\r\n"
        b"DATA\r\n"
        b"From: sender@example.com\r\nTo: victim@localhost\r\n"
        b"Message-ID: <" + tag.encode() + b"@test>\r\nSubject: harmless\r\n\r\n"
        b"first part" + PROBES[probe]
        + b"MAIL FROM:<evil@attacker.test>\r\n"
        b"RCPT TO:<victim@localhost>\r\n"
        b"DATA\r\n"
        b"From: ceo@localhost\r\nSubject: smuggled\r\n\r\nsmuggled body\r\n"
        b".\r\n"
        b"QUIT\r\n")
    reply = converse(d.port, payload)
    codes = re.findall(rb"(?m)^(\d{3})[ -]", reply)
    # 220, EHLO (multi-line), MAIL 250, RCPT 250, 354, one DATA reply, 221: nothing more
    assert codes.count(b"354") == 1, reply
    assert reply.count(b"queued as") == 1, reply
    assert codes[-1] == b"221" and b"503" not in codes, reply
    wait_for(lambda: len(s.messages()) > before, 20, "the message at the sink")
    time.sleep(0.5)  # a second (smuggled) message would arrive now
    after = s.messages()
    assert len(after) == before + 1
    [mine] = [m for m in after
              if re.search(rb"(?im)^message-id:\s*<" + tag.encode() + rb"@test>", m)]
    assert b"evil@attacker.test" not in mine.split(b"Received:")[0]  # not an envelope
    assert not re.search(rb"(?m)^\.\r?$", mine)  # no lone dot line survives
    assert all(b"X-Mail-Args: <evil@attacker.test>" not in m for m in after)


def test_pipelined_real_transactions_still_work(peers: tuple[Daemon, Sink], tmp_path: Path) -> None:
    d, s = peers
    before = len(s.messages())
    one = (b"MAIL FROM:<a@example.com>\r\nRCPT TO:<u@localhost>\r\nDATA\r\n"
           b"Subject: n\r\n\r\nbody\r\n.\r\n")
    reply = converse(d.port, b"EHLO client.test\r\n" + one + one + b"QUIT\r\n")
    assert reply.count(b"queued as") == 2, reply
    wait_for(lambda: len(s.messages()) >= before + 2, 20, "two messages")

"""The SMTP front end in-process, with a stub acceptor: timeouts, 451 on internal errors.

A slowly sent message and a slow hand-over must not end in a silent disconnect;
an exception anywhere answers 451 4.3.0, never 500.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator

import pytest

from gateway.config import SMTPInConfig
from gateway.ingress import Incoming
from gateway.ingress.smtp import SMTPFrontEnd, count_hops


class StubAcceptor:
    def __init__(self) -> None:
        self.delay = 0.0
        self.fail = False
        self.busy: str | None = None
        self.got: list[Incoming] = []

    def refuse(self, size: int) -> str | None:
        return self.busy

    async def accept(self, msg: Incoming) -> str:
        await asyncio.sleep(self.delay)
        if self.fail:
            raise RuntimeError("boom")
        self.got.append(msg)
        return f"250 2.0.0 Ok: queued as {msg.qid}"


@pytest.fixture
async def front() -> AsyncIterator[tuple[SMTPFrontEnd, StubAcceptor]]:
    stub = StubAcceptor()
    cfg = SMTPInConfig(host="127.0.0.1", port=0, timeout=1.0, max_sessions=3)
    fe = SMTPFrontEnd(cfg, stub, "front.test", None)
    await fe.start()
    yield fe, stub
    await fe.stop(1.0)


async def talk(port: int) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    assert (await reader.readline()).startswith(b"220")
    return reader, writer


async def reply(reader: asyncio.StreamReader) -> bytes:
    while True:
        line = await asyncio.wait_for(reader.readline(), 10)
        if line[3:4] != b"-":
            return line


async def envelope(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    for cmd in (b"EHLO c.test", b"MAIL FROM:<a@example.com>", b"RCPT TO:<u@localhost>",
                b"DATA"):
        writer.write(cmd + b"\r\n")
        line = await reply(reader)
        assert line[:1] in (b"2", b"3"), (cmd, line)


async def test_slow_sender_is_not_cut_off(front: tuple[SMTPFrontEnd, StubAcceptor]) -> None:
    fe, stub = front
    reader, writer = await talk(fe.port)
    await envelope(reader, writer)
    writer.write(b"Subject: slow\r\n\r\n")
    for i in range(8):  # 8 x 0.4 s = 3.2 s, more than three idle timeouts
        writer.write(f"line {i}\r\n".encode())
        await writer.drain()
        await asyncio.sleep(0.4)
    writer.write(b".\r\n")
    assert (await reply(reader)).startswith(b"250 2.0.0")
    assert b"line 7" in stub.got[0].body
    writer.close()


async def test_slow_handover_is_not_cut_off(front: tuple[SMTPFrontEnd, StubAcceptor]) -> None:
    fe, stub = front
    stub.delay = 2.5  # longer than the 1 s idle timeout: the client is waiting for us
    reader, writer = await talk(fe.port)
    await envelope(reader, writer)
    writer.write(b"Subject: x\r\n\r\nbody\r\n.\r\n")
    assert (await reply(reader)).startswith(b"250 2.0.0")
    writer.close()


async def test_idle_client_times_out(front: tuple[SMTPFrontEnd, StubAcceptor]) -> None:
    fe, _ = front
    reader, writer = await talk(fe.port)
    assert await asyncio.wait_for(reader.read(), 5) == b""  # closed after ~1 s
    writer.close()


async def test_internal_error_is_451(front: tuple[SMTPFrontEnd, StubAcceptor]) -> None:
    fe, stub = front
    stub.fail = True
    reader, writer = await talk(fe.port)
    await envelope(reader, writer)
    writer.write(b"Subject: x\r\n\r\nbody\r\n.\r\n")
    assert (await reply(reader)).startswith(b"451 4.3.0")
    writer.close()


async def test_backpressure_at_mail(front: tuple[SMTPFrontEnd, StubAcceptor]) -> None:
    fe, stub = front
    stub.busy = "451 4.3.2 Too many messages in progress, try again later"
    reader, writer = await talk(fe.port)
    writer.write(b"EHLO c.test\r\n")
    await reply(reader)
    writer.write(b"MAIL FROM:<a@example.com>\r\n")
    assert (await reply(reader)).startswith(b"451 4.3.2")
    writer.close()


async def test_session_limit_421(front: tuple[SMTPFrontEnd, StubAcceptor]) -> None:
    fe, _ = front
    conns = [await talk(fe.port) for _ in range(3)]
    reader, writer = await asyncio.open_connection("127.0.0.1", fe.port)
    assert (await reader.readline()).startswith(b"421 4.7.0")
    writer.close()
    for _, w in conns:
        w.close()


async def test_received_header_and_null_sender(front: tuple[SMTPFrontEnd,
                                                            StubAcceptor]) -> None:
    fe, stub = front
    reader, writer = await talk(fe.port)
    for cmd in (b"EHLO c.test", b"MAIL FROM:<>", b"RCPT TO:<u@localhost>", b"DATA"):
        writer.write(cmd + b"\r\n")
        await reply(reader)
    writer.write(b"Subject: x\r\n\r\nbody\r\n.\r\n")
    assert (await reply(reader)).startswith(b"250")
    msg = stub.got[0]
    assert msg.sender == ""
    assert re.match(rb"Received: from c\.test \(\[127\.0\.0\.1\]\)\r\n\tby front\.test "
                    rb"\(Sekisho\) with ESMTP id " + msg.qid.encode()
                    + rb"\r\n\tfor <u@localhost>;", msg.header)
    writer.close()


def test_count_hops_only_in_header() -> None:
    head = b"Received: a\r\nreceived : b\r\nSubject: x\r\n"
    assert count_hops(head + b"\r\nReceived: in the body\r\n") == 2
    assert count_hops(b"Subject: x\n\nReceived: body\n") == 0

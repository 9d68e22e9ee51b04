"""The SMTP front end in-process, with a stub acceptor: timeouts, 451 on internal errors.

A slowly sent message and a slow hand-over must not end in a silent disconnect;
an exception anywhere answers 451 4.3.0, never 500.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest

from gateway.config import SMTPInConfig
from gateway.ingress import Incoming
from gateway.ingress.smtp import SMTPFrontEnd, count_hops
from gateway.store.spool import Draft


class StubAcceptor:
    def __init__(self, tmp: Path) -> None:
        self.tmp = tmp
        self.delay = 0.0
        self.fail = False
        self.busy: str | None = None
        self.got: list[Incoming] = []

    def refuse(self, size: int) -> str | None:
        return self.busy

    def draft(self, qid: str) -> Draft:
        return Draft(self.tmp, qid)

    async def accept(self, msg: Incoming) -> str:
        await asyncio.sleep(self.delay)
        if self.fail:
            raise RuntimeError("boom")
        self.got.append(msg)
        return f"250 2.0.0 Ok: queued as {msg.qid}"


@pytest.fixture
async def front(tmp_path: Path) -> AsyncIterator[tuple[SMTPFrontEnd, StubAcceptor]]:
    stub = StubAcceptor(tmp_path)
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
    body = stub.got[0].body
    assert isinstance(body, Draft) and b"line 7" in body.read()
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


# ------------------------------------------------------------------- the DATA reader


def aiosmtpd_data(stream: bytes, limit: int) -> tuple[bytes, str | None, int]:
    """aiosmtpd 1.4.6's DATA semantics, line by line: (content, problem, bytes used)."""
    lines: list[bytes] = []
    pos = total = 0
    problem: str | None = None
    while True:
        i = stream.index(b"\r\n", pos)
        line, pos = stream[pos:i + 2], i + 2
        if line == b".\r\n":
            return b"".join(lines), problem, pos
        total += len(line)
        if problem is None and len(line) > 1001:
            problem = "500"
        if problem is None and total > limit:
            problem = "552"
        lines.append(line[1:] if line.startswith(b".") else line)


TOKENS = [b"a", b"bc", b".", b"..", b"\r", b"\n", b"\r\n", b"\r\n.", b"\n.\n", b"\r.\r",
          b"\r\n..\r\n", b"\r\n.x", b"x" * 700]


async def test_data_reader_matches_aiosmtpd_on_random_input(
        front: tuple[SMTPFrontEnd, StubAcceptor]) -> None:
    """Random bodies full of CR, LF and dots, sent in random pieces: same message as aiosmtpd."""
    import random

    fe, stub = front
    rng = random.Random(5)
    reader, writer = await talk(fe.port)
    writer.write(b"EHLO c.test\r\n")
    await reply(reader)
    checked = 0
    while checked < 150:
        body = b"".join(rng.choice(TOKENS) for _ in range(rng.randrange(0, 60)))
        stream = body + b"\r\n.\r\nNOOP\r\n"
        content, problem, used = aiosmtpd_data(stream, 1 << 30)
        if used != len(body) + 5:
            continue  # the random body ended DATA early: not this test's case
        for cmd in (b"MAIL FROM:<a@example.com>", b"RCPT TO:<u@localhost>", b"DATA"):
            writer.write(cmd + b"\r\n")
            assert (await reply(reader))[:1] in (b"2", b"3")
        cuts = sorted(rng.sample(range(1, len(stream)), min(4, len(stream) - 1)))
        for a, b in zip([0, *cuts], [*cuts, len(stream)], strict=True):
            writer.write(stream[a:b])
            await writer.drain()
            await asyncio.sleep(0.002)
        got = await reply(reader)
        if problem:
            assert got.startswith(problem.encode()), (body, got)
        else:
            assert got.startswith(b"250 2.0.0"), (body, got)
            msg = stub.got[-1]
            assert isinstance(msg.body, Draft)
            assert msg.body.read() == msg.header + content, body
        assert (await reply(reader)).startswith(b"250"), body  # the NOOP after the dot
        checked += 1
    writer.close()


async def test_data_reader_long_line_and_size(tmp_path: Path) -> None:
    stub = StubAcceptor(tmp_path)
    fe = SMTPFrontEnd(SMTPInConfig(host="127.0.0.1", port=0, max_message_size=10_000), stub,
                      "front.test", None)
    await fe.start()
    try:
        reader, writer = await talk(fe.port)
        cases = [(b"ok " * 333 + b"\r\n", b"250"),          # 1001 bytes with CRLF: fine
                 (b"x" * 1000 + b"\r\n", b"500"),           # 1002: too long
                 (b"y" * 5000 + b"\r\nmore\r\n", b"500"),
                 ((b"z" * 98 + b"\r\n") * 101, b"552"),     # 10100 bytes > 10000
                 ((b"z" * 98 + b"\r\n") * 100, b"250")]     # exactly 10000
        writer.write(b"EHLO c.test\r\n")
        await reply(reader)
        for data, code in cases:
            await envelope_again(reader, writer)
            writer.write(data + b".\r\n")
            assert (await reply(reader)).startswith(code), (len(data), code)
        writer.write(b"NOOP\r\n")
        assert (await reply(reader)).startswith(b"250")
        assert len(stub.got) == 2
        assert list(tmp_path.iterdir()) == []  # nothing spilled, nothing left behind
        writer.close()
    finally:
        await fe.stop(1.0)


async def envelope_again(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    for cmd in (b"MAIL FROM:<a@example.com>", b"RCPT TO:<u@localhost>", b"DATA"):
        writer.write(cmd + b"\r\n")
        assert (await reply(reader))[:1] in (b"2", b"3"), cmd


async def test_large_draft_spills_and_abort_leaves_nothing(tmp_path: Path) -> None:
    stub = StubAcceptor(tmp_path)
    fe = SMTPFrontEnd(SMTPInConfig(host="127.0.0.1", port=0, max_message_size=2_000_000),
                      stub, "front.test", None)
    await fe.start()
    try:
        reader, writer = await talk(fe.port)
        writer.write(b"EHLO c.test\r\n")
        await reply(reader)
        await envelope_again(reader, writer)
        writer.write((b"a" * 98 + b"\r\n") * 5000)  # 500 kB: past the in-memory part
        await writer.drain()
        await asyncio.sleep(0.2)
        [spilled] = list(tmp_path.iterdir())
        assert (spilled / "message.eml").stat().st_size > 256 * 1024
        writer.close()  # the client goes away mid-DATA
        await asyncio.sleep(0.3)
        assert list(tmp_path.iterdir()) == []
        assert stub.got == []
    finally:
        await fe.stop(1.0)


def test_address_fast_path_agrees_with_aiosmtpd() -> None:
    """The plain-<local@domain> shortcut gives what aiosmtpd's RFC 5322 parser gives."""
    import random

    from aiosmtpd.smtp import SMTP

    from gateway.ingress.smtp import _Server

    server = _Server.__new__(_Server)  # only _getaddr is used: no connection needed
    server.local_part_limit = 0
    rng = random.Random(3)
    alphabet = [*"ab.@<> \t()\"%+-:[]=Z,;", "SIZE=1", "xy", "a@b.c", "é"]
    samples = ["<a@b.c> SIZE=5", "<a.b+c@x-y.example.com>  BODY=8BITMIME", "<a@b.c>x",
               "<a@b.c> (comment) X=1", "<a..b@c.d>", "<a@b.c.>", "<@route:a@b.c>",
               "<user%example.com@localhost>", "<a@[1.2.3.4]>", "<\"q r\"@b.c>"]
    samples += ["<" + "".join(rng.choice(alphabet) for _ in range(rng.randrange(1, 14)))
                for _ in range(20000)]

    def outcome(parse: Callable[[str], object], arg: str) -> object:
        try:
            return parse(arg)
        except Exception as exc:  # aiosmtpd's parser raises on some junk
            return type(exc)

    for arg in samples:
        assert outcome(server._getaddr, arg) == \
            outcome(lambda a: SMTP._getaddr(server, a), arg), arg


async def test_pipelining(front: tuple[SMTPFrontEnd, StubAcceptor]) -> None:
    """PIPELINING is advertised; MAIL, RCPT and DATA in one packet get their replies in order."""
    fe, stub = front
    reader, writer = await talk(fe.port)
    writer.write(b"EHLO c.test\r\n")
    ehlo = []
    while not ehlo or ehlo[-1][3:4] == b"-":
        ehlo.append(await asyncio.wait_for(reader.readline(), 10))
    assert b"250-PIPELINING\r\n" in ehlo
    writer.write(b"MAIL FROM:<a@example.com>\r\nRCPT TO:<u@localhost>\r\n"
                 b"RCPT TO:<x@elsewhere.test>\r\nDATA\r\n")
    codes = [(await reply(reader))[:3] for _ in range(4)]
    assert codes == [b"250", b"250", b"550", b"354"]
    writer.write(b"Subject: p\r\n\r\nbody\r\n.\r\nMAIL FROM:<b@example.com>\r\n"
                 b"RCPT TO:<v@localhost>\r\nDATA\r\n")
    codes = [(await reply(reader))[:3] for _ in range(4)]
    assert codes == [b"250", b"250", b"250", b"354"]
    writer.write(b"second\r\n.\r\nQUIT\r\n")
    assert (await reply(reader)).startswith(b"250")
    assert (await reply(reader)).startswith(b"221")
    assert [m.recipients for m in stub.got] == [("u@localhost",), ("v@localhost",)]
    writer.close()


async def test_replies_are_not_held_for_an_incomplete_command(
        front: tuple[SMTPFrontEnd, StubAcceptor]) -> None:
    """Replies wait for pipelined commands only when a whole one is already buffered."""
    fe, _ = front
    reader, writer = await talk(fe.port)
    writer.write(b"EHLO c.test\r\n")
    await reply(reader)
    writer.write(b"MAIL FROM:<a@example.com>\r\nRCPT TO:<u@loc")  # the RCPT is unfinished
    assert (await reply(reader)).startswith(b"250 2.1.0")
    writer.write(b"alhost>\r\nNOOP\r\n")
    assert (await reply(reader)).startswith(b"250 2.1.5")
    assert (await reply(reader)).startswith(b"250")
    writer.close()

"""Memory stays bounded however large a message is: DATA is streamed into the spool.

aiosmtpd alone keeps a whole message in memory until the final dot (as a list
of lines, then joined: about twice its size). The front end reads DATA in
chunks and writes everything past the first 256 KiB on to the spool file, so
a 30 MB message costs the daemon a few MiB at most, in-process (tracemalloc
peak, real spool, real acceptor) and as a process (its RSS, sampled while the
message is being sent).
"""

from __future__ import annotations

import asyncio
import hashlib
import socket
import threading
import time
import tracemalloc
from collections.abc import Iterator
from pathlib import Path

import pytest

from gateway.config import SMTPInConfig
from gateway.ingress.smtp import SMTPFrontEnd
from gateway.relay.accept import RelayAcceptor
from gateway.store.spool import INCOMING, MESSAGE, Spool
from tests.helpers.smtppeers import Daemon, running

pytestmark = pytest.mark.xdist_group("smtp")

MIB = 1024 * 1024
SIZE = 30 * MIB
HEAD = (b"From: big@example.com\r\nTo: u@localhost\r\nSubject: thirty megabytes\r\n"
        b"Message-ID: <big@test>\r\n\r\n")


def body_chunks(total: int) -> Iterator[tuple[bytes, bytes]]:
    """(as sent, as meant) in 64 KiB pieces; every fifth line needs dot-stuffing."""
    sent, meant = [], []
    n = size = 0
    while size < total:
        text = b"%07d the quick brown fox jumps over the lazy dog 0123456789 abcdef" % n
        line = (b"." + text) if n % 5 == 0 else text
        sent.append((b"." + line if line.startswith(b".") else line) + b"\r\n")
        meant.append(line + b"\r\n")
        size += len(sent[-1])
        n += 1
        if len(sent) == 800:
            yield b"".join(sent), b"".join(meant)
            sent, meant = [], []
    if sent:
        yield b"".join(sent), b"".join(meant)


class _Queue:
    backlog = 0

    def __init__(self) -> None:
        self.queued: list[str] = []

    def enqueue(self, qid: str, env: object = None) -> None:
        self.queued.append(qid)


async def _command(reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                   line: bytes) -> bytes:
    writer.write(line + b"\r\n")
    while True:
        got = await asyncio.wait_for(reader.readline(), 60)
        if got[3:4] != b"-":
            return got


async def test_30mb_message_streams_to_disk_in_process(tmp_path: Path) -> None:
    spool = Spool(tmp_path / "spool")
    queue = _Queue()
    acceptor = RelayAcceptor(mode="queue", spool=spool, processor=None,  # type: ignore[arg-type]
                             queue=queue, max_backlog=10,  # type: ignore[arg-type]
                             reply_deadline=60)
    front = SMTPFrontEnd(SMTPInConfig(host="127.0.0.1", port=0, max_message_size=40 * MIB),
                         acceptor, "front.test", None)
    await front.start()
    try:
        reader, writer = await asyncio.open_connection("127.0.0.1", front.port)
        assert (await reader.readline()).startswith(b"220")
        for cmd in (b"EHLO c.test", b"MAIL FROM:<big@example.com>", b"RCPT TO:<u@localhost>"):
            assert (await _command(reader, writer, cmd)).startswith(b"250")
        assert (await _command(reader, writer, b"DATA")).startswith(b"354")
        meant = hashlib.sha256(HEAD)
        sent = len(HEAD)
        tracemalloc.start()
        try:
            writer.write(HEAD)
            for raw, text in body_chunks(SIZE):
                writer.write(raw)
                meant.update(text)
                sent += len(raw)
                await writer.drain()
            reply = await _command(reader, writer, b".")
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
        assert reply.startswith(b"250 2.0.0 Ok: queued as"), reply
        writer.close()
    finally:
        await front.stop(5)
    assert sent > SIZE
    # the whole process, client included, allocated a small fraction of the message
    assert peak < 6 * MIB, f"peak {peak / MIB:.1f} MiB for a {sent / MIB:.0f} MiB message"
    [qid] = queue.queued
    stored = (spool.root / INCOMING / qid / MESSAGE).read_bytes()
    assert stored.startswith(b"Received: from c.test")
    assert hashlib.sha256(stored[stored.index(b"From: big@"):]).digest() == meant.digest()
    assert list((spool.root / "tmp").iterdir()) == []


def _rss(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise AssertionError("no VmRSS")


def test_30mb_message_keeps_daemon_rss_flat(tmp_path: Path) -> None:
    d = Daemon(tmp_path / "d", {"queue": {"retry_min": "1s"}})
    with running(d), socket.create_connection(("127.0.0.1", d.port), timeout=60) as sock:
        assert d.proc is not None
        pid = d.proc.pid
        f = sock.makefile("rb")

        def command(line: bytes) -> bytes:
            sock.sendall(line + b"\r\n")
            while True:
                got = f.readline()
                if got[3:4] != b"-":
                    return got

        assert f.readline().startswith(b"220")
        for cmd in (b"EHLO c.test", b"MAIL FROM:<big@example.com>", b"RCPT TO:<u@localhost>"):
            assert command(cmd).startswith(b"250")
        assert command(b"DATA").startswith(b"354")
        baseline = _rss(pid)
        peak = baseline
        stop = threading.Event()

        def sample() -> None:
            nonlocal peak
            while not stop.is_set():
                peak = max(peak, _rss(pid))
                time.sleep(0.01)

        sampler = threading.Thread(target=sample)
        sampler.start()
        try:
            sock.sendall(HEAD)
            for raw, _ in body_chunks(SIZE):
                sock.sendall(raw)
            time.sleep(0.3)  # the daemon has read (almost) everything by now
        finally:
            stop.set()
            sampler.join()
        reply = command(b".")
        assert reply.startswith(b"250 2.0.0 Ok: queued as"), reply
        command(b"QUIT")
    grew = peak - baseline
    assert grew < 12 * MIB, f"daemon RSS grew {grew / MIB:.1f} MiB during a 30 MiB DATA"

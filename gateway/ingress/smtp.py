"""The SMTP front end (aiosmtpd): accept, check, persist, hand on (DESIGN.md §5).

What it enforces before anything reaches the spool:

- recipients only in the allowed domains: 550 5.7.1 at RCPT for everything
  else, relay tricks included (gateway/addresses.py); 452 4.5.3 past
  ``max_recipients``;
- size: SIZE is advertised; a larger SIZE= at MAIL or a larger DATA gets 552;
- 8BITMIME and SMTPUTF8 are advertised; a non-ASCII address without the
  SMTPUTF8 parameter gets 553 5.6.7;
- PIPELINING is advertised (RFC 2920): a client sends MAIL, RCPT and DATA
  in one packet and waits once;
- hop count: ``max_hops`` or more Received: headers is a loop, 554 5.4.6;
- STARTTLS when a certificate is configured (optionally required);
- backpressure and disk space: 451 4.3.2 / 452 4.3.1 at MAIL (and again at DATA);
- our own Received: header on top of the message;
- internal errors answer 451 4.3.0, never 500.

Timeouts: aiosmtpd's idle timer only restarts on commands, so a large message
sent slowly would be cut off mid-DATA, and a slow pipeline (through mode) would
be cut off while the client waits for the final reply. Here the timer restarts
on every byte received and is held while a message is being handed over.

DATA is read here, not by aiosmtpd (which reads it line by line and keeps it
all in memory until the final dot): chunks of up to ``CHUNK`` bytes are
scanned for the end of data, dot-unstuffed and streamed into a spool draft,
with aiosmtpd's semantics kept: only <CRLF>.<CRLF> ends DATA (a bare LF or CR
never does: SMTP smuggling), a line longer than 1001 bytes answers 500, more
than ``max_message_size`` bytes answers 552, both after the final dot;
commands pipelined after the dot are left for the command loop.

Memory: per session at most what one read returns (the transport's read
buffer, 256 KiB, and ``CHUNK``) plus its transient copies while it is
scanned, a partial line, and a draft's first ``spool.SPILL`` bytes (256 KiB);
a larger message goes on to ``spool/tmp/<qid>/message.eml`` as it arrives and
is committed by renaming it into place. Worst case about 1 MiB per session
(``max_sessions`` x 1 MiB), whatever ``max_message_size`` is: the size limit
only bounds the disk a message takes. A 30 MB message raises the daemon's RSS
by about 2 MiB (tests/integration/test_smtp_memory.py).

Replies: the idle timer is re-armed lazily; PIPELINING is advertised and the
replies to pipelined commands leave in one send (``_Server.push``).
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import re
import ssl
import time
from email.utils import formatdate
from typing import Any

import structlog
from aiosmtpd.smtp import SMTP, Envelope, Session

from gateway import addresses
from gateway.config import SMTPInConfig
from gateway.ingress import Acceptor, Incoming
from gateway.store.spool import Draft, new_qid

log = structlog.get_logger("sekisho.smtp")

_RECEIVED = re.compile(rb"(?im)^received[ \t]*:")
_HEADER_END = re.compile(rb"\r?\n\r?\n")
INTERNAL_ERROR = "451 4.3.0 Internal error, try again later"
CHUNK = 256 * 1024           # bytes taken from the connection at a time during DATA
LINE_LIMIT = 1001            # aiosmtpd's: 998 + CRLF + a transparency dot
HOP_SCAN = 1024 * 1024       # Received: headers are counted in this much of the message
TOO_LONG = "500 Line too long (see RFC5321 4.5.3.1.6)"
TOO_MUCH = "552 5.3.4 Message too big"
_ATOM = r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+"
#: <local@domain> with dot-atoms only: what nearly every client sends. aiosmtpd parses
#: it with the email package's RFC 5322 parser, which costs more than the rest of the
#: command; for this form the parser's result is the text between the brackets.
_SIMPLE_PATH = re.compile(rf"<({_ATOM}(?:\.{_ATOM})*@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*)>")


def count_hops(data: bytes) -> int:
    """Received: fields in the header section (the first 1 MiB at most)."""
    head = data[:HOP_SCAN]
    m = _HEADER_END.search(head)
    if m:
        head = head[: m.start()]
    return len(_RECEIVED.findall(head))


class _Server(SMTP):
    """aiosmtpd's SMTP with an idle timer that counts DATA bytes and spares busy sessions,
    and a DATA reader that streams to disk."""

    busy = 0
    front: SMTPFrontEnd | None = None

    def connection_lost(self, error: Exception | None) -> None:
        if self.front is not None:
            self.front.forget(self)
        super().connection_lost(error)

    _last_data = 0.0  # loop time of the last bytes received

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._held: list[bytes] = []  # replies waiting for the next one (see push)
        super().connection_made(transport)

    def data_received(self, data: bytes) -> None:
        # the idle timer counts every byte, not just commands; it is re-armed lazily
        # (in _timeout_cb) rather than replaced on each of a large message's chunks
        self._last_data = self.loop.time()
        super().data_received(data)

    def _timeout_cb(self) -> None:
        if self.busy:
            self._reset_timeout()  # the client is waiting for our reply: not idle
            return
        idle = self.loop.time() - self._last_data
        if idle < self._timeout_duration:
            self._reset_timeout(self._timeout_duration - idle)
            return
        super()._timeout_cb()  # type: ignore[no-untyped-call]

    async def push(self, status: str | bytes) -> None:
        """aiosmtpd's push, sending the replies to pipelined commands together (RFC 2920).

        A 250 (or a line of a multi-line reply) is held back while a complete command
        is waiting in the input buffer: the reply to that command goes out with it.
        Anything else (354, 220 before TLS, 221, 4xx, 5xx) sends what is held at once,
        and nothing is held while we wait for the client.
        """
        line = (status.encode("utf-8" if self.enable_SMTPUTF8 else "ascii")
                if isinstance(status, str) else status) + b"\r\n"
        more = line[3:4] == b"-" or (
            line.startswith(b"250 ") and b"\n" in self._reader._buffer)  # type: ignore[attr-defined]
        if more:
            self._held.append(line)
            return
        if self._held:
            line = b"".join(self._held) + line
            self._held.clear()
        self._writer.write(line)
        await self._writer.drain()

    def _getaddr(self, arg: str) -> tuple[str | None, str | None]:
        """aiosmtpd's address parsing, with a fast path for a plain <local@domain>."""
        m = _SIMPLE_PATH.match(arg)
        if m and not self.local_part_limit:
            rest = arg[m.end():]
            if not rest:
                return m.group(1), ""
            if rest[0] in " \t":
                rest = rest.lstrip(" \t")
                if not rest.startswith("("):  # a comment: leave it to the full parser
                    return m.group(1), rest
        return super()._getaddr(arg)

    async def smtp_DATA(self, arg: str) -> None:
        """aiosmtpd's DATA command, with the body streamed into a spool draft."""
        if await self.check_helo_needed():
            return
        if await self.check_auth_needed("DATA"):
            return
        assert self.envelope is not None and self.session is not None
        if not self.envelope.rcpt_tos:
            await self.push("503 Error: need RCPT command")
            return
        if arg:
            await self.push("501 Syntax: DATA")
            return
        assert self.front is not None
        handler = self.front.handler
        qid = new_qid()
        draft: Draft | None = None
        try:
            draft = self.front.acceptor.draft(qid)
            header = handler.received(self.session, self.envelope, qid)
            draft.write(header)
        except Exception:
            log.exception("smtp.draft_error", qid=qid)
            if draft is not None:
                draft.discard()
            await self.push(INTERNAL_ERROR)
            return
        handed = False
        try:
            await self.push("354 End data with <CR><LF>.<CR><LF>")
            problem = await self._read_data(draft)
            if problem:  # the draft is discarded below
                log.info("smtp.reject", stage="DATA", peer=_peer(self.session), qid=qid,
                         reply=problem, size=draft.size)
                status = problem
            else:
                handed = True  # from here on the acceptor owns (and cleans up) the draft
                status = await handler.data(self, self.session, self.envelope, qid, header,
                                            draft)
        finally:
            if not handed:
                draft.discard()
            self._set_post_data_state()  # type: ignore[no-untyped-call]
        await self.push(status)

    async def _read_data(self, draft: Draft) -> str | None:
        """Read DATA up to the final dot into ``draft``; a reply when it cannot be taken."""
        scan = DataScanner(self.data_size_limit or 0)
        while True:
            chunk = await self._reader.read(CHUNK)
            if not chunk:  # EOF: aiosmtpd cancels this session's handler right away
                raise ConnectionResetError("connection closed during DATA")
            data, rest = scan.feed(chunk)
            if data and scan.problem is None:
                try:
                    draft.write(data)
                except OSError as exc:
                    log.error("smtp.draft_write_failed", qid=draft.qid, error=exc.strerror)
                    scan.problem = ("452 4.3.1 Insufficient system storage, try again later"
                                    if exc.errno in (errno.ENOSPC, errno.EDQUOT) else
                                    "451 4.3.0 Could not store the message, try again later")
                    draft.discard()  # free the disk now; the rest of DATA is only scanned
            if rest is not None:
                if rest:  # pipelined commands after the dot: back to the command loop
                    self._reader._buffer[0:0] = rest  # type: ignore[attr-defined]
                return scan.problem


class DataScanner:
    """The DATA stream, chunk by chunk, with aiosmtpd 1.4.6's semantics.

    Lines are delimited by CRLF only (a bare CR or LF is data). DATA ends at the
    first line that is exactly ".": CRLF "." CRLF, or "." CRLF right at the start.
    A line-initial dot is removed (RFC 5321 4.5.2). A line of more than
    ``LINE_LIMIT`` bytes (CRLF included) makes ``problem`` 500, more than
    ``limit`` bytes of DATA (as sent, the final dot not counted) 552; the rest is
    still scanned for the end, and nothing more is returned.
    """

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.problem: str | None = None
        self.total = 0            # DATA bytes so far, as sent
        self._carry = b""         # the current line, incomplete
        self._at_bol = True       # _carry starts at the beginning of a line

    def feed(self, chunk: bytes) -> tuple[bytes, bytes | None]:
        """(the message bytes this chunk completes, what follows the final dot or None)."""
        buf = self._carry + chunk if self._carry else chunk
        if self._at_bol and buf.startswith(b".\r\n"):
            end = 0
        else:
            end = buf.find(b"\r\n.\r\n")
            if end >= 0:
                end += 2
        if end >= 0:
            lines, rest = buf[:end], buf[end + 3:]
        else:
            cut = buf.rfind(b"\r\n")
            cut = cut + 2 if cut >= 0 else 0
            lines, rest = buf[:cut], buf[cut:]
        out = b""
        if lines:
            self.total += len(lines)
            if self.problem is None:
                if len(lines) > LINE_LIMIT and \
                        max(map(len, lines.split(b"\r\n"))) > LINE_LIMIT - 2:
                    self.problem = TOO_LONG
                elif self.limit and self.total > self.limit:
                    self.problem = TOO_MUCH
            if self.problem is None:
                if self._at_bol and lines[:1] == b".":
                    lines = lines[1:]
                out = lines.replace(b"\r\n.", b"\r\n")
            self._at_bol = True
        if end >= 0:
            self._carry = b""
            return out, rest
        self._carry = rest
        if len(rest) > LINE_LIMIT:  # too long however it ends: keep only the last byte,
            self.problem = self.problem or TOO_LONG  # a CR that a LF may follow
            self.total += len(rest) - 1
            self._carry, self._at_bol = rest[-1:], False
        return out, None


class _Refuse(asyncio.Protocol):
    """Greets with 421 and hangs up: too many sessions."""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        transport.write(b"421 4.7.0 Too many connections, try again later\r\n")
        transport.close()


class SMTPFrontEnd:
    def __init__(self, cfg: SMTPInConfig, acceptor: Acceptor, hostname: str,
                 tls: ssl.SSLContext | None) -> None:
        self.cfg = cfg
        self.acceptor = acceptor
        self.hostname = hostname
        self.tls = tls
        self.sessions: set[_Server] = set()
        self._server: asyncio.Server | None = None
        self.handler = _Handler(self)

    @property
    def port(self) -> int:
        assert self._server is not None
        return int(self._server.sockets[0].getsockname()[1])

    def _protocol(self) -> asyncio.BaseProtocol:
        if len(self.sessions) >= self.cfg.max_sessions:
            return _Refuse()
        server = _Server(self.handler, data_size_limit=self.cfg.max_message_size,
                         enable_SMTPUTF8=True, decode_data=False, hostname=self.hostname,
                         ident="Sekisho ESMTP", tls_context=self.tls,
                         require_starttls=self.cfg.tls.require, timeout=self.cfg.timeout,
                         auth_require_tls=True)
        server.front = self
        self.sessions.add(server)
        return server

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(self._protocol, host=self.cfg.host,
                                                port=self.cfg.port, reuse_address=True)
        log.info("smtp.listening", host=self.cfg.host, port=self.port,
                 tls=self.tls is not None, max_size=self.cfg.max_message_size)

    def forget(self, server: _Server) -> None:
        self.sessions.discard(server)

    async def stop(self, grace: float = 30.0) -> None:
        """Stop listening, let messages being handed over finish, then close sessions."""
        if self._server is not None:
            self._server.close()
        deadline = time.monotonic() + grace
        while any(s.busy for s in self.sessions) and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        for s in list(self.sessions):
            transport = s.transport
            if isinstance(transport, asyncio.WriteTransport):
                with contextlib.suppress(RuntimeError, OSError):
                    transport.write(b"421 4.3.2 Service shutting down\r\n")
            if transport is not None:
                transport.close()
        self.sessions.clear()
        if self._server is not None:
            await self._server.wait_closed()


class _Handler:
    """aiosmtpd hooks; every reply has an enhanced status code."""

    def __init__(self, front: SMTPFrontEnd) -> None:
        self.front = front
        self.cfg = front.cfg

    async def handle_EHLO(self, server: SMTP, session: Session, envelope: Envelope,
                          hostname: str, responses: list[str]) -> list[str]:
        session.host_name = hostname
        kept = [r for r in responses if not r[4:].startswith("AUTH")]
        # RFC 2920: the command loop takes pipelined commands from its buffer in order,
        # DATA reads only its own bytes, and STARTTLS drops whatever followed it
        return [*kept[:-1], "250-PIPELINING", *kept[-1:]]

    async def handle_MAIL(self, server: SMTP, session: Session, envelope: Envelope,
                          address: str, mail_options: list[str]) -> str:
        size = 0
        for opt in mail_options:
            if opt.startswith("SIZE=") and opt[5:].isdigit():
                size = int(opt[5:])
        refusal = self.front.acceptor.refuse(size)
        if refusal:
            log.info("smtp.reject", stage="MAIL", peer=_peer(session), reply=refusal)
            return refusal
        if not address.isascii() and not envelope.smtp_utf8:
            return "553 5.6.7 Non-ASCII address needs the SMTPUTF8 parameter"
        envelope.mail_from = address  # "<>" for the null sender (aiosmtpd needs it truthy)
        envelope.mail_options.extend(mail_options)
        return "250 2.1.0 Ok"

    async def handle_RCPT(self, server: SMTP, session: Session, envelope: Envelope,
                          address: str, rcpt_options: list[str]) -> str:
        if len(envelope.rcpt_tos) >= self.cfg.max_recipients:
            return "452 4.5.3 Too many recipients"
        problem = addresses.relay_problem(address, self.cfg.domains)
        if problem:
            log.info("smtp.reject", stage="RCPT", peer=_peer(session), rcpt=address[:200],
                     reply=problem)
            return f"550 {problem}"
        if not address.isascii() and not envelope.smtp_utf8:
            return "553 5.6.7 Non-ASCII address needs the SMTPUTF8 parameter"
        envelope.rcpt_tos.append(address)
        envelope.rcpt_options.extend(rcpt_options)
        return "250 2.1.5 Ok"

    async def data(self, server: _Server, session: Session, envelope: Envelope, qid: str,
                   header: bytes, draft: Draft) -> str:
        """The reply to a complete DATA: hop check, then hand the draft to the acceptor."""
        started = time.monotonic()
        size = draft.size - len(header)
        tls = session.ssl is not None
        reply: str
        if count_hops(draft.head(len(header) + HOP_SCAN)[len(header):]) >= self.cfg.max_hops:
            draft.discard()
            reply = f"554 5.4.6 Too many hops ({self.cfg.max_hops} or more Received: headers)"
        else:
            sender = envelope.mail_from or ""
            msg = Incoming(qid=qid, sender="" if sender == "<>" else sender,
                           recipients=tuple(envelope.rcpt_tos), header=header, body=draft,
                           client=_peer(session), helo=str(session.host_name or ""),
                           smtputf8=bool(envelope.smtp_utf8), tls=tls)
            server.busy += 1
            # shielded: once the data is complete, a client that hangs up (aiosmtpd then
            # cancels this handler) must not leave a half-handled message behind
            task = asyncio.ensure_future(self.front.acceptor.accept(msg))
            try:
                reply = await asyncio.shield(task)
            except asyncio.CancelledError:
                log.info("smtp.client_gone", qid=qid, peer=_peer(session))
                raise
            except Exception:
                log.exception("smtp.accept_error", qid=qid)
                reply = INTERNAL_ERROR
            finally:
                server.busy -= 1
        log.info("smtp.transaction", qid=qid, peer=_peer(session),
                 helo=str(session.host_name or "")[:100], tls=tls,
                 sender=envelope.mail_from, recipients=len(envelope.rcpt_tos),
                 size=size, reply=reply[:200],
                 elapsed_ms=int((time.monotonic() - started) * 1000))
        return reply

    async def handle_exception(self, error: Exception) -> str:
        log.error("smtp.internal_error", error=type(error).__name__, detail=str(error)[:200])
        return INTERNAL_ERROR

    def received(self, session: Session, envelope: Envelope, qid: str) -> bytes:
        """Our Received: header for the message ``qid`` (stamped when DATA starts)."""
        tls = session.ssl is not None
        helo = _printable(str(session.host_name or "unknown"))[:100].encode(
            "ascii", "replace").decode()
        peer = _peer(session)
        proto = ("UTF8SMTP" if envelope.smtp_utf8 else
                 "ESMTP" if session.extended_smtp else "SMTP") + ("S" if tls else "")
        rcpts = envelope.rcpt_tos
        # "for" only for one ASCII recipient: the header stays ASCII, whatever the envelope
        for_clause = (f"\r\n\tfor <{_printable(rcpts[0])}>"
                      if len(rcpts) == 1 and rcpts[0].isascii() else "")
        line = (f"Received: from {helo} ([{peer}])\r\n\tby {self.front.hostname} (Sekisho) "
                f"with {proto} id {qid}{for_clause};\r\n\t{formatdate(localtime=True)}\r\n")
        return line.encode("utf-8", "surrogateescape")


def _peer(session: Session) -> str:
    peer: Any = session.peer
    if isinstance(peer, tuple) and peer:
        return str(peer[0])
    return str(peer or "unknown")


def _printable(text: str) -> str:
    return "".join(ch if ch.isprintable() and ch not in "<>()[];\\" else "?" for ch in text)

"""The SMTP front end (aiosmtpd): accept, check, persist, hand on (DESIGN.md §5).

What it enforces before anything reaches the spool:

- recipients only in the allowed domains: 550 5.7.1 at RCPT for everything
  else, relay tricks included (gateway/addresses.py); 452 4.5.3 past
  ``max_recipients``;
- size: SIZE is advertised; a larger SIZE= at MAIL or a larger DATA gets 552;
- 8BITMIME and SMTPUTF8 are advertised; a non-ASCII address without the
  SMTPUTF8 parameter gets 553 5.6.7;
- hop count: ``max_hops`` or more Received: headers is a loop, 554 5.4.6;
- STARTTLS when a certificate is configured (optionally required);
- backpressure and disk space: 451 4.3.2 / 452 4.3.1 at MAIL (and again at DATA);
- our own Received: header on top of the message;
- internal errors answer 451 4.3.0, never 500.

Timeouts: aiosmtpd's idle timer only restarts on commands, so a large message
sent slowly would be cut off mid-DATA, and a slow pipeline (through mode) would
be cut off while the client waits for the final reply. Here the timer restarts
on every byte received and is held while a message is being handed over.

Memory: aiosmtpd keeps DATA in memory until the final dot; the size limit bounds
each message and the body is written to disk and dropped as soon as it is
complete. Worst case is about ``max_sessions`` x ``max_message_size``.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import ssl
import time
from email.utils import formatdate
from typing import Any, cast

import structlog
from aiosmtpd.smtp import SMTP, Envelope, Session

from gateway import addresses
from gateway.config import SMTPInConfig
from gateway.ingress import Acceptor, Incoming
from gateway.store.spool import new_qid

log = structlog.get_logger("sekisho.smtp")

_RECEIVED = re.compile(rb"(?im)^received[ \t]*:")
_HEADER_END = re.compile(rb"\r?\n\r?\n")
INTERNAL_ERROR = "451 4.3.0 Internal error, try again later"


def count_hops(data: bytes) -> int:
    """Received: fields in the header section (the first 1 MiB at most)."""
    head = data[: 1024 * 1024]
    m = _HEADER_END.search(head)
    if m:
        head = head[: m.start()]
    return len(_RECEIVED.findall(head))


class _Server(SMTP):
    """aiosmtpd's SMTP with an idle timer that counts DATA bytes and spares busy sessions."""

    busy = 0
    front: SMTPFrontEnd | None = None

    def connection_lost(self, error: Exception | None) -> None:
        if self.front is not None:
            self.front.forget(self)
        super().connection_lost(error)

    def data_received(self, data: bytes) -> None:
        if self._timeout_handle is not None:
            self._reset_timeout()
        super().data_received(data)

    def _timeout_cb(self) -> None:
        if self.busy:
            self._reset_timeout()  # the client is waiting for our reply: not idle
            return
        super()._timeout_cb()  # type: ignore[no-untyped-call]


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
        return [r for r in responses if not r[4:].startswith("AUTH")]

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

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        started = time.monotonic()
        body = envelope.original_content or b""
        size = len(body)
        envelope.original_content = envelope.content = None  # the spool holds it from here
        qid = new_qid()
        tls = session.ssl is not None
        reply: str
        if count_hops(body) >= self.cfg.max_hops:
            reply = f"554 5.4.6 Too many hops ({self.cfg.max_hops} or more Received: headers)"
        else:
            header = self._received(session, envelope, qid, tls)
            sender = envelope.mail_from or ""
            msg = Incoming(qid=qid, sender="" if sender == "<>" else sender,
                           recipients=tuple(envelope.rcpt_tos), header=header, body=body,
                           client=_peer(session), helo=str(session.host_name or ""),
                           smtputf8=bool(envelope.smtp_utf8), tls=tls)
            del body
            srv = cast(_Server, server)
            srv.busy += 1
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
                srv.busy -= 1
        log.info("smtp.transaction", qid=qid, peer=_peer(session),
                 helo=str(session.host_name or "")[:100], tls=tls,
                 sender=envelope.mail_from, recipients=len(envelope.rcpt_tos),
                 size=size, reply=reply[:200],
                 elapsed_ms=int((time.monotonic() - started) * 1000))
        return reply

    async def handle_exception(self, error: Exception) -> str:
        log.error("smtp.internal_error", error=type(error).__name__, detail=str(error)[:200])
        return INTERNAL_ERROR

    def _received(self, session: Session, envelope: Envelope, qid: str, tls: bool) -> bytes:
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

"""Deliver to the downstream MTA over SMTP (aiosmtplib).

One transaction per delivery: MAIL, one RCPT per recipient, DATA for those
accepted. A connection that ended its transaction cleanly is kept idle for
``IDLE_SECONDS`` and reused (up to ``MAX_USES`` times); one found dead when the
next MAIL is sent is replaced, which is safe because nothing was sent yet.
Every recipient comes back with a Reply: its RCPT refusal, or the DATA reply.
Anything that goes wrong on the way (no connection, timeout, a dropped
connection, a refused greeting or EHLO) is a temporary failure, 451 4.4.1, so
the message waits and is retried. A drop after the message was sent
but before the final reply is counted as a failure too: the downstream may have
kept it, which is the (documented) duplicate window of every SMTP relay.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import ssl
import time
from collections.abc import Sequence
from pathlib import Path

import aiosmtplib
import structlog

from gateway.config import DownstreamConfig
from gateway.egress import Reply

log = structlog.get_logger("sekisho.egress.smtp")

IDLE_SECONDS = 10.0   # an idle connection is reused within this time, then closed
MAX_USES = 100        # transactions per connection
MAX_IDLE = 50         # idle connections kept
SMALL = 256 * 1024    # messages up to this size are read without a thread


class SMTPEgress:
    def __init__(self, cfg: DownstreamConfig, helo: str) -> None:
        self.cfg = cfg
        self.helo = cfg.helo or helo
        self.name = f"smtp:{cfg.host}:{cfg.port}"
        self._idle: list[tuple[aiosmtplib.SMTP, float, int]] = []

    def _tls(self) -> ssl.SSLContext | None:
        if self.cfg.starttls == "no":
            return None
        ctx = ssl.create_default_context(cafile=str(self.cfg.cafile) if self.cfg.cafile
                                         else None)
        if not self.cfg.verify_cert:
            ctx.check_hostname = False
            ctx.verify_mode = ssl.CERT_NONE
        return ctx

    async def send(self, sender: str, recipients: Sequence[str], message: Path, *,
                   smtputf8: bool = False) -> dict[str, Reply]:
        try:
            data = await _read(message)
        except OSError as exc:
            return dict.fromkeys(recipients, Reply(451, f"4.3.0 cannot read message: "
                                                  f"{exc.strerror}"))
        reused = self._take()
        if reused is not None:
            client, uses = reused
            out, fit = await self._attempt(client, sender, recipients, data, smtputf8,
                                           fresh=False)
            if out is not None:
                await self._finish(client, fit, uses + 1)
                return out
            # the idle connection had died before anything was sent: start afresh
        client = self._client()
        out, fit = await self._attempt(client, sender, recipients, data, smtputf8, fresh=True)
        await self._finish(client, fit, 1)
        assert out is not None
        return out

    async def _attempt(self, client: aiosmtplib.SMTP, sender: str, recipients: Sequence[str],
                       data: bytes, smtputf8: bool, *,
                       fresh: bool) -> tuple[dict[str, Reply] | None, bool]:
        """Replies per recipient and whether the connection can be reused; (None, False)
        when a reused connection turned out dead before the transaction started."""
        out: dict[str, Reply] = {}
        try:
            if fresh:
                await client.connect()
            return out, await self._transaction(client, sender, recipients, data, smtputf8,
                                                out)
        except _Stale as exc:
            if not fresh:
                client.close()
                return None, False
            reply = Reply.of(451, f"4.4.1 {self.name} lost the connection: {exc}")
        except aiosmtplib.SMTPResponseException as exc:
            reply = Reply.of(exc.code, exc.message)
            if not reply.temporary:  # a refused greeting/EHLO: try again later
                reply = Reply.of(451, f"4.4.1 {self.name} refused the session: {reply}")
        except (aiosmtplib.SMTPException, OSError, TimeoutError) as exc:
            why = str(exc) or type(exc).__name__
            reply = Reply.of(451, f"4.4.1 {self.name} unreachable or lost: {why}")
        except BaseException:
            client.close()
            raise
        for rcpt in recipients:
            out.setdefault(rcpt, reply)
        return out, False

    async def _finish(self, client: aiosmtplib.SMTP, fit: bool, uses: int) -> None:
        if fit:
            self._give(client, uses)
        else:
            await _quit(client)

    # -- connection reuse: a transaction that ended cleanly leaves its connection idle

    def _client(self) -> aiosmtplib.SMTP:
        start_tls = {"no": False, "opportunistic": None, "require": True}[self.cfg.starttls]
        return aiosmtplib.SMTP(hostname=self.cfg.host, port=self.cfg.port,
                               timeout=self.cfg.timeout, local_hostname=self.helo,
                               start_tls=start_tls, tls_context=self._tls(),
                               validate_certs=self.cfg.verify_cert)

    def _take(self) -> tuple[aiosmtplib.SMTP, int] | None:
        now = time.monotonic()
        while self._idle:
            client, since, uses = self._idle.pop()
            if client.is_connected and now - since < IDLE_SECONDS:
                return client, uses
            client.close()
        return None

    def _give(self, client: aiosmtplib.SMTP, uses: int) -> None:
        if uses >= MAX_USES or len(self._idle) >= MAX_IDLE or not client.is_connected:
            client.close()
            return
        self._idle.append((client, time.monotonic(), uses))

    async def close(self) -> None:
        idle, self._idle = self._idle, []
        for client, _, _ in idle:
            await _quit(client)

    async def _transaction(self, client: aiosmtplib.SMTP, sender: str,
                           recipients: Sequence[str], data: bytes, smtputf8: bool,
                           out: dict[str, Reply]) -> bool:
        """One transaction; True when the connection is fit for the next one.

        Raises _Stale when the connection turns out dead at MAIL (nothing sent yet)."""
        options = ["SMTPUTF8"] if smtputf8 else []
        encoding = "utf-8" if smtputf8 else "ascii"
        try:
            await client.mail(sender, options=options, encoding=encoding)
        except aiosmtplib.SMTPSenderRefused as exc:
            reply = Reply.of(exc.code, exc.message)
            if exc.code == 421:
                raise _Stale(reply.text) from exc
            for rcpt in recipients:
                out[rcpt] = reply
            return False
        except (aiosmtplib.SMTPServerDisconnected, ConnectionError) as exc:
            raise _Stale(str(exc)) from exc
        accepted = []
        for rcpt in recipients:
            try:
                await client.rcpt(rcpt, encoding=encoding)
            except aiosmtplib.SMTPRecipientRefused as exc:
                out[rcpt] = Reply.of(exc.code, exc.message)
            else:
                accepted.append(rcpt)
        if not accepted:
            await client.rset()
            return all(r.code != 421 for r in out.values())
        try:
            resp = await client.data(data)
            reply = Reply.of(resp.code, resp.message)
        except aiosmtplib.SMTPDataError as exc:
            reply = Reply.of(exc.code, exc.message)
        for rcpt in accepted:
            out[rcpt] = reply
        return reply.code != 421


async def _read(path: Path) -> bytes:
    """The message's bytes; a small one is read in the loop (a page-cache read of a
    file just written costs less than handing it to a thread and back)."""
    with open(path, "rb") as f:
        if os.fstat(f.fileno()).st_size <= SMALL:
            return f.read()
    return await asyncio.to_thread(path.read_bytes)


class _Stale(Exception):
    """A reused connection was gone before the transaction started."""


async def _quit(client: aiosmtplib.SMTP) -> None:
    # the transaction's outcome is already known: a failing QUIT changes nothing
    if client.is_connected:
        with contextlib.suppress(aiosmtplib.SMTPException, OSError, TimeoutError):
            await client.quit()
    client.close()

"""Deliver into one Maildir per recipient: ``<root>/<address>/{tmp,new,cur}``.

The embedded default's next hop, so that Sekisho works with no other server.
Each message is written into ``tmp/`` and fsynced, then linked into ``new/``
and ``new/`` fsynced (the Maildir protocol, made durable). ``Return-Path:`` and
``Delivered-To:`` are added on top, as a local delivery agent does. Recipients
outside the configured domains (a bounce to an internet sender, say) have no
mailbox here and fail permanently.
"""

from __future__ import annotations

import asyncio
import itertools
import os
import secrets
import time
from collections.abc import Sequence
from pathlib import Path

from gateway import addresses
from gateway.egress import Reply
from gateway.store import durable

_counter = itertools.count()


class MaildirEgress:
    def __init__(self, root: Path, domains: Sequence[str], hostname: str) -> None:
        self.root = root
        self.domains = tuple(domains)
        self.hostname = hostname.replace("/", "_").replace(":", "_") or "localhost"
        self.name = f"maildir:{root}"
        root.mkdir(parents=True, exist_ok=True)

    def routes(self, recipient: str) -> bool:
        parts = addresses.split(recipient)
        dom = addresses.ascii_domain(parts[1]) if parts else None
        return dom is not None and addresses.domain_allowed(dom, self.domains)

    async def close(self) -> None:
        return None

    async def send(self, sender: str, recipients: Sequence[str], message: Path, *,
                   smtputf8: bool = False) -> dict[str, Reply]:
        return await asyncio.to_thread(self._deliver, sender, recipients, message)

    def _deliver(self, sender: str, recipients: Sequence[str],
                 message: Path) -> dict[str, Reply]:
        try:
            body = message.read_bytes()
        except OSError as exc:
            return dict.fromkeys(recipients, Reply(451, f"4.3.0 cannot read message: "
                                                  f"{exc.strerror}"))
        out: dict[str, Reply] = {}
        for rcpt in recipients:
            if not self.routes(rcpt):
                out[rcpt] = Reply(550, "5.1.2 No local mailbox for this domain")
                continue
            try:
                name = self._store(rcpt, sender, body)
            except OSError as exc:
                out[rcpt] = Reply(451, f"4.3.0 Maildir delivery failed: {exc.strerror}")
            else:
                out[rcpt] = Reply(250, f"2.0.0 Delivered to maildir as {name}")
        return out

    def _store(self, rcpt: str, sender: str, body: bytes) -> str:
        box = self.root / addresses.mailbox_name(rcpt)
        for sub in ("tmp", "new", "cur"):
            (box / sub).mkdir(parents=True, exist_ok=True)
        head = (f"Return-Path: <{sender}>\r\nDelivered-To: {rcpt}\r\n"
                .encode("utf-8", "surrogateescape"))
        data = head + body
        now = time.time()
        unique = (f"{int(now)}.M{int(now * 1e6) % 1_000_000}P{os.getpid()}"
                  f"Q{next(_counter)}R{secrets.token_hex(4)}.{self.hostname}")
        name = f"{unique},S={len(data)}"
        tmp = box / "tmp" / name
        durable.write(tmp, data)
        try:
            os.link(tmp, box / "new" / name)
        finally:
            tmp.unlink(missing_ok=True)
        durable.fsync_dir(box / "new")
        return name

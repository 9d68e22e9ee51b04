"""Release handlers for mail (gateway/admin.py calls them after the release is audited).

- ``smtp``: the released message (the original as received, or its re-run under
  another policy) is queued, as it is, to the recipients it was addressed to, with
  the original envelope sender. It is never bounced back to the internet sender.
- ``ppap``: a password-protected attachment the recipient could not open (or one an
  administrator decided to hand over as it is): it is mailed to the recipients as
  an attachment of a message from Sekisho saying an administrator released it.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from gateway.admin import Release, ReleaseHandler, ReleaseRefused
from gateway.jobs.store import JobRecord
from gateway.relay import ppap_mail

if TYPE_CHECKING:
    from gateway.relay.process import Processor


def _recipients(value: Any) -> list[str]:
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError:
            value = [value]
    if not isinstance(value, list) or not all(isinstance(r, str) and r for r in value):
        return []
    return list(value)


def smtp_release(processor: Processor) -> ReleaseHandler:
    async def handler(release: Release) -> str:
        dest = release.entry.destination
        rcpts = _recipients(dest.get("recipients"))
        if not rcpts:
            raise ReleaseRefused("the entry does not say who the message was for")
        sender = str(dest.get("sender") or "")
        data = await asyncio.to_thread(release.path.read_bytes)
        utf8 = not all(a.isascii() for a in [sender, *rcpts])
        qid = await processor.queue_message(sender, rcpts, data, smtputf8=utf8,
                                            origin="release",
                                            job_id=f"{release.entry.job_id}-r")
        return f"queued as {qid} to {len(rcpts)} recipient(s)"
    return handler


def ppap_release(inject: Callable[[str, bytes], Awaitable[object]], hostname: str,
                 langs: tuple[str, ...]) -> ReleaseHandler:
    async def handler(release: Release) -> str:
        extra: dict[str, Any] = release.entry.extra or {}
        nested = extra.get("extra")
        inner: dict[str, Any] = nested if isinstance(nested, dict) else extra
        rcpts = _recipients(inner.get("recipients"))
        if not rcpts:
            raise ReleaseRefused("the entry does not say who the file was for")
        data = await asyncio.to_thread(release.path.read_bytes)
        rec = JobRecord(job_id=release.entry.job_id, name=release.entry.name,
                        origin="ppap", policy=release.entry.policy, size=len(data),
                        sha256=release.entry.sha256, submitted=release.entry.created,
                        extra={k: str(v) for k, v in inner.items()},
                        output_name=release.name)
        message = ppap_mail.released_mail(hostname=hostname, rec=rec, data=data,
                                          approver=release.approver, langs=langs)
        for rcpt in rcpts:
            await inject(rcpt, message)
        return f"mailed to {len(rcpts)} recipient(s)"
    return handler

"""Ingress: front ends that accept, persist and hand a job on (DESIGN.md §1, §5)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True, slots=True)
class Incoming:
    """One message as the SMTP front end received it, not yet on disk."""

    qid: str
    sender: str
    recipients: tuple[str, ...]
    header: bytes              # our Received: line(s), prepended to body
    body: bytes                # the DATA as sent (dot-unstuffed, CRLF line ends)
    client: str
    helo: str
    smtputf8: bool
    tls: bool


class Acceptor(Protocol):
    """What the SMTP front end hands messages to (wired in gateway/app.py)."""

    def refuse(self, size: int) -> str | None:
        """A 4xx reply when no new message can be taken now (backpressure, disk), or None."""
        ...

    async def accept(self, msg: Incoming) -> str:
        """Persist and process ``msg``; the reply line for the client's DATA."""
        ...

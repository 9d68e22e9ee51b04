"""Ingress: front ends that accept, persist and hand a job on (DESIGN.md §1, §5)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from gateway.store.spool import Draft


@dataclass(frozen=True, slots=True)
class Incoming:
    """One message as the SMTP front end received it.

    ``body`` is the ``Draft`` the front end streamed the message into; it already
    starts with ``header``. Large messages arrive on disk, never whole in memory.
    """

    qid: str
    sender: str
    recipients: tuple[str, ...]
    header: bytes              # our Received: line(s), on top of the message
    body: Draft                # header + the DATA as sent (dot-unstuffed, CRLF line ends)
    client: str
    helo: str
    smtputf8: bool
    tls: bool

    @property
    def size(self) -> int:
        """Bytes of the whole message as it will be stored (header included)."""
        return self.body.size


class Acceptor(Protocol):
    """What the SMTP front end hands messages to (wired in gateway/app.py)."""

    def refuse(self, size: int) -> str | None:
        """A 4xx reply when no new message can be taken now (backpressure, disk), or None."""
        ...

    def draft(self, qid: str) -> Draft:
        """Where the front end writes the message ``qid`` while it arrives."""
        ...

    async def accept(self, msg: Incoming) -> str:
        """Persist and process ``msg`` (and own its draft from now on); the reply line."""
        ...

"""The JSON envelope kept beside each spooled message.

One file, ``envelope.json``, replaced atomically on every change. It carries the
SMTP envelope, what the pipeline made of the message (one group per policy:
recipients whose rules chose different policies get separately sanitized
copies), and per recipient where delivery stands.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from enum import StrEnum
from typing import Any

VERSION = 1


class State(StrEnum):
    RECEIVED = "received"     # message.eml is the message as received
    SANITIZED = "sanitized"   # out-N.eml are ready to deliver; the original is in quarantine


class RcptStatus(StrEnum):
    PENDING = "pending"       # not delivered yet (never tried, or a temporary failure)
    SENT = "sent"             # the next hop took it
    FAILED = "failed"         # permanent failure (5xx, or the queue lifetime ran out)


@dataclass(slots=True)
class Recipient:
    addr: str
    status: RcptStatus = RcptStatus.PENDING
    group: int = -1           # index into Envelope.groups once sanitized
    code: int = 0             # last reply code
    reply: str = ""           # last reply text (for the DSN and the logs)
    bounced: bool = False     # a DSN was written for this failure


@dataclass(slots=True)
class Group:
    policy: str
    job_id: str
    file: str                 # out-N.eml inside the entry directory
    verdict: str              # the pipeline's verdict; blocked/failed: file is a notice
    sender: str               # envelope sender for this copy ("" for a notice)
    reason: str = ""


@dataclass(slots=True)
class Envelope:
    qid: str
    sender: str
    recipients: list[Recipient]
    received: float
    job_id: str                          # base job id; one per group when split
    mode: str = "queue"                  # queue | through
    client: str = ""                     # peer address
    helo: str = ""
    smtputf8: bool = False
    size: int = 0
    state: State = State.RECEIVED
    groups: list[Group] = field(default_factory=list)
    attempts: int = 0
    next_attempt: float = 0.0
    #: through mode: False until the client has been (or is about to be) told 250;
    #: an unaccepted entry found after a crash is dropped (the client retries)
    accepted: bool = True
    generated: bool = False              # a bounce or notice we wrote (never bounced)

    def pending(self) -> list[Recipient]:
        return [r for r in self.recipients if r.status is RcptStatus.PENDING]

    def done(self) -> bool:
        """Every recipient delivered (nothing to retry, nothing to bounce)."""
        return all(r.status is RcptStatus.SENT for r in self.recipients)

    def to_json(self) -> bytes:
        data = asdict(self)
        data["version"] = VERSION
        return json.dumps(data, ensure_ascii=False, separators=(",", ":")).encode()

    @classmethod
    def from_json(cls, raw: bytes) -> Envelope:
        data: dict[str, Any] = json.loads(raw)
        if data.pop("version", None) != VERSION:
            raise ValueError("unknown envelope version")
        rcpts = [Recipient(**{**r, "status": RcptStatus(r["status"])})
                 for r in data.pop("recipients")]
        groups = [Group(**g) for g in data.pop("groups")]
        state = State(data.pop("state"))
        return cls(recipients=rcpts, groups=groups, state=state, **data)

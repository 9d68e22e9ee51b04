"""What the quarantine keeps about an entry (sealed as ``meta.sealed``), and its errors."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from gateway.errors import SekishoError


class QuarantineError(SekishoError):
    """A quarantine operation cannot be done (no such entry, wrong state)."""


class NotFound(QuarantineError):
    pass


class WrongState(QuarantineError):
    pass


@dataclass(frozen=True, slots=True)
class Action:
    action: str        # release | export | delete | purge
    actor: str
    reason: str
    at: str

    def to_dict(self) -> dict[str, str]:
        return {"action": self.action, "actor": self.actor, "reason": self.reason,
                "at": self.at}


@dataclass(frozen=True, slots=True)
class QuarantineEntry:
    job_id: str
    created: str
    origin: str
    destination: dict[str, Any]
    policy: str
    verdict: str
    reason: str
    name: str
    size: int
    sha256: str
    expires: str
    state: str
    history: tuple[Action, ...] = ()
    extra: dict[str, Any] | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"version": 1, "job_id": self.job_id, "created": self.created,
                "origin": self.origin, "destination": self.destination,
                "policy": self.policy, "verdict": self.verdict, "reason": self.reason,
                "name": self.name, "size": self.size, "sha256": self.sha256,
                "expires": self.expires, "state": self.state,
                "history": [a.to_dict() for a in self.history], "extra": self.extra or {}}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> QuarantineEntry:
        return cls(job_id=str(d["job_id"]), created=str(d["created"]), origin=str(d["origin"]),
                   destination=dict(d.get("destination") or {}), policy=str(d["policy"]),
                   verdict=str(d["verdict"]), reason=str(d.get("reason") or ""),
                   name=str(d.get("name") or ""), size=int(d["size"]), sha256=str(d["sha256"]),
                   expires=str(d["expires"]), state=str(d["state"]),
                   history=tuple(Action(**a) for a in d.get("history", [])),
                   extra=dict(d.get("extra") or {}))


def iso(t: datetime) -> str:
    return t.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")

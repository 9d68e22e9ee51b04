"""Report model, JSON schema v1 (DESIGN.md §3). Extend, never break."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from gateway import kinds

SCHEMA_VERSION = 1


class Verdict(StrEnum):
    CLEAN = "clean"
    DISARMED = "disarmed"
    BLOCKED = "blocked"
    FAILED = "failed"

    @property
    def delivered(self) -> bool:
        return self in (Verdict.CLEAN, Verdict.DISARMED)

    def quarantined_under(self, keep: str) -> bool:
        """Whether ``quarantine.keep`` (all | changed | blocked) keeps the original of a
        job with this verdict: what is not delivered is always kept."""
        if keep == "all" or not self.delivered:
            return True
        return keep == "changed" and self is Verdict.DISARMED


@dataclass(slots=True)
class Finding:
    kind: str
    action: str
    location: str
    detail: str = ""
    severity: str = ""

    def __post_init__(self) -> None:
        meta = kinds.info(self.kind)  # raises on an unlisted kind
        if not self.severity:
            self.severity = meta.severity.value
        kinds.Action(self.action)  # raises on an unknown action
        # detail is short and never carries payload bytes
        self.detail = _clip(self.detail, 300)

    def key(self) -> tuple[str, str]:
        return (self.kind, self.location)

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "action": self.action, "location": self.location,
                "severity": self.severity, "detail": self.detail}


@dataclass(slots=True)
class ItemReport:
    stage: str
    location: str
    verdict: Verdict
    elapsed_ms: int = 0
    findings: list[Finding] = field(default_factory=list)
    error: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"stage": self.stage, "location": self.location, "verdict": self.verdict.value,
                "elapsed_ms": self.elapsed_ms,
                "findings": [f.to_dict() for f in self.findings], "error": self.error}


@dataclass(frozen=True, slots=True)
class FileInfo:
    name: str
    sha256: str
    size: int
    type: str

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "sha256": self.sha256, "size": self.size, "type": self.type}


@dataclass(slots=True)
class Report:
    job_id: str
    source: str
    policy: str
    input: FileInfo
    verdict: Verdict
    output: FileInfo | None = None
    items: list[ItemReport] = field(default_factory=list)

    @property
    def findings(self) -> list[Finding]:
        return [f for item in self.items for f in item.findings]

    def kind_counts(self) -> dict[str, int]:
        """How many findings of each kind (the audit log's summary of a job)."""
        return dict(Counter(f.kind for f in self.findings))

    @property
    def reason(self) -> str | None:
        """Why the job was blocked or failed: the root item's error (an embedded item that
        was blocked inside a delivered file is not the job's reason)."""
        return self.items[0].error if self.items else None

    def to_dict(self) -> dict[str, Any]:
        return {
            "schema": SCHEMA_VERSION,
            "job_id": self.job_id,
            "source": self.source,
            "policy": self.policy,
            "input": self.input.to_dict(),
            "output": self.output.to_dict() if self.output else None,
            "verdict": self.verdict.value,
            "items": [i.to_dict() for i in self.items],
        }


def _clip(text: str, limit: int) -> str:
    text = "".join(ch if ch.isprintable() else "?" for ch in text)
    return text if len(text) <= limit else text[: limit - 1] + "…"

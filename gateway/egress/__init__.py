"""Egress: hand sanitized messages to the next hop (downstream MTA or Maildir)."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from gateway.text import one_line

_ENHANCED = re.compile(r"^[245]\.\d{1,3}\.\d{1,3}\b")


@dataclass(frozen=True, slots=True)
class Reply:
    """One SMTP reply (or its equivalent from a local delivery)."""

    code: int
    text: str

    @classmethod
    def of(cls, code: int, text: str) -> Reply:
        """A reply with its text made safe to log and to pass on: one line, printable."""
        return cls(code, one_line(text, 400))

    @property
    def ok(self) -> bool:
        return 200 <= self.code < 300

    @property
    def temporary(self) -> bool:
        return not self.ok and not self.permanent

    @property
    def permanent(self) -> bool:
        return 500 <= self.code < 600

    def status(self) -> str:
        """The enhanced status code (RFC 3463), from the text or derived from the code."""
        m = _ENHANCED.match(self.text)
        if m and m.group(0)[0] == str(self.code)[0]:
            return m.group(0)
        return f"{str(self.code)[0]}.0.0"

    def detail(self) -> str:
        """The text without its enhanced status code."""
        return _ENHANCED.sub("", self.text, count=1).strip()

    def __str__(self) -> str:
        return f"{self.code} {self.text}"


class Egress(Protocol):
    """A next hop. ``send`` never raises for delivery problems: every recipient gets a Reply."""

    name: str

    async def send(self, sender: str, recipients: Sequence[str], message: Path, *,
                   smtputf8: bool = False) -> dict[str, Reply]: ...

    async def close(self) -> None:
        """Let go of idle connections (at shutdown)."""
        ...

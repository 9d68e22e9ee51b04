"""Job-wide limits, enforced in one place for every level of nesting.

Two kinds of limit:
- per item (nesting depth, size of one embedded item): that item is blocked and
  its container goes on without it;
- per job (number of embedded items, total expansion ratio): the job is hostile
  or absurd, so the whole job is blocked. ``exhausted`` remembers it, so a stage
  that swallowed the exception cannot deliver anyway.
"""

from __future__ import annotations

from dataclasses import dataclass

from gateway.errors import LimitExceeded
from gateway.policy import Limits

#: below this many expanded bytes the ratio limit does not apply (small inputs
#: legitimately expand by large factors: a 2 KB PDF holding a 300 KB image, a 100 KB
#: spreadsheet of repeated rows holding 12 MB of XML, LibreOffice's tdf136551.ods);
#: a worker's memory limit (2 GiB by default) bounds what is read below it
RATIO_FLOOR = 32 * 1024 * 1024


class JobLimitExceeded(LimitExceeded):
    """A limit that blocks the whole job, not just one embedded item."""


@dataclass(slots=True)
class Budget:
    limits: Limits
    input_size: int
    members: int = 0
    expanded: int = 0
    exhausted: str | None = None

    def enter(self, depth: int, size: int) -> str | None:
        """Account one embedded item at ``depth`` holding ``size`` bytes.

        Returns a reason to block just that item, or None; raises
        JobLimitExceeded when the whole job must stop.
        """
        self.check()
        self.members += 1
        if self.members > self.limits.max_members:
            self._exhaust(f"more than {self.limits.max_members} embedded items")
        if depth > self.limits.max_depth:
            return f"nesting deeper than {self.limits.max_depth} levels"
        if size > self.limits.max_size:
            return f"embedded item larger than {self.limits.max_size} bytes"
        self.account(size)
        return None

    def account(self, nbytes: int) -> None:
        """Count expanded bytes against the expansion-ratio limit."""
        self.expanded += nbytes
        allowed = max(RATIO_FLOOR, int(self.input_size * self.limits.max_ratio))
        if self.expanded > allowed:
            self._exhaust(
                f"content expands more than {self.limits.max_ratio:g}x the input size")

    def check(self) -> None:
        if self.exhausted:
            raise JobLimitExceeded(self.exhausted)

    def _exhaust(self, reason: str) -> None:
        self.exhausted = self.exhausted or reason
        raise JobLimitExceeded(self.exhausted)

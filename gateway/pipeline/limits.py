"""Job-wide limits, enforced in one place for every level of nesting."""

from __future__ import annotations

from dataclasses import dataclass

from gateway.errors import LimitExceeded
from gateway.policy import Limits

#: below this many expanded bytes the ratio limit does not apply (tiny inputs
#: legitimately expand by large factors: a 2 KB PDF holding a 300 KB image)
RATIO_FLOOR = 8 * 1024 * 1024


@dataclass(slots=True)
class Budget:
    limits: Limits
    input_size: int
    members: int = 0
    expanded: int = 0

    def enter(self, depth: int, size: int) -> None:
        """Account one embedded item at ``depth`` holding ``size`` bytes."""
        if depth > self.limits.max_depth:
            raise LimitExceeded(f"nesting deeper than {self.limits.max_depth} levels")
        self.members += 1
        if self.members > self.limits.max_members:
            raise LimitExceeded(f"more than {self.limits.max_members} embedded items")
        if size > self.limits.max_size:
            raise LimitExceeded(f"embedded item larger than {self.limits.max_size} bytes")
        self.account(size)

    def account(self, nbytes: int) -> None:
        """Count expanded bytes against the expansion-ratio limit."""
        self.expanded += nbytes
        allowed = max(RATIO_FLOOR, int(self.input_size * self.limits.max_ratio))
        if self.expanded > allowed:
            raise LimitExceeded(
                f"content expands more than {self.limits.max_ratio:g}x the input size")

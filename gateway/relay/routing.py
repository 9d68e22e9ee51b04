"""Per-recipient policy choice: the configured policy's ``rules`` (first match wins).

A rule matches when all its conditions hold: ``sender``, ``sender_domain``,
``recipient``, ``recipient_domain`` (exact, lowercase). Recipients whose rules
pick different policies are split into groups; each group gets its own
sanitized copy and its own job id. The policies rules name are loaded at
start-up, so a rule naming a missing policy stops the daemon, not a message; so
does a policy that would pass mail through unchanged (``mail: {action: pass}``).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from gateway import addresses
from gateway import policy as policy_mod
from gateway.errors import ConfigError
from gateway.policy import Policy, Rule


class Router:
    def __init__(self, base: Policy, others: dict[str, Policy]) -> None:
        self.base = base
        self.policies = {base.name: base, **others}

    @classmethod
    def load(cls, ref: str) -> Router:
        base = policy_mod.load(ref)
        others: dict[str, Policy] = {}
        for i, rule in enumerate(base.rules):
            if rule.policy in others or rule.policy == base.name:
                continue
            path = Path(base.source).parent / f"{rule.policy}.yaml"
            try:
                others[rule.policy] = (policy_mod.load_file(path) if path.is_file()
                                       else policy_mod.load(rule.policy))
            except ConfigError as exc:
                raise ConfigError(f"{base.source}: rules[{i}].policy: {rule.policy!r}: "
                                  f"{exc}") from None
        for pol in (base, *others.values()):
            if pol.format("mail").action == "pass":
                raise ConfigError(f"{pol.source}: formats.mail.action: 'pass' is not allowed "
                                  "for the SMTP relay: every message is rebuilt")
        return cls(base, others)

    def policy_for(self, sender: str, recipient: str) -> Policy:
        for rule in self.base.rules:
            if _matches(rule, sender.lower(), recipient.lower()):
                return self.policies[rule.policy]
        return self.base

    def groups(self, sender: str, recipients: Sequence[str]) -> list[tuple[Policy, list[int]]]:
        """Recipient indices grouped by policy, in order of first appearance."""
        out: dict[str, tuple[Policy, list[int]]] = {}
        for i, rcpt in enumerate(recipients):
            pol = self.policy_for(sender, rcpt)
            out.setdefault(pol.name, (pol, []))[1].append(i)
        return list(out.values())


def _domain(addr: str) -> str:
    parts = addresses.split(addr)
    if parts is None:
        return ""
    return addresses.ascii_domain(parts[1]) or parts[1]


def _matches(rule: Rule, sender: str, recipient: str) -> bool:
    checks = {"sender": sender, "sender_domain": _domain(sender),
              "recipient": recipient, "recipient_domain": _domain(recipient)}
    return all(checks[key] == want for key, want in rule.match.items())

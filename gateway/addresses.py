"""Mail addresses and the recipient-domain allow-list (shared by ingress and egress).

An address is accepted for relay only in its plain ``local@domain`` form, with
the domain matching the allow-list exactly (or as a subdomain of an entry that
starts with a dot). Everything else is refused — the tricks that turned old
MTAs into open relays: ``user%other@ours`` (percent hack), ``other!user@ours``
(bang path), ``@ours:user@other`` (source route), a quoted local part hiding an
``@``, a trailing dot, an address literal, a Unicode look-alike of our domain
(compared as IDNA A-labels, so Cyrillic "о" never equals Latin "o").
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable

_LOCAL = re.compile(r"^[A-Za-z0-9!#$&'*+/=?^_`{|}~.-]{1,64}$")  # dot-atom, no % or !
_LABEL = re.compile(r"^(?!-)[a-z0-9-]{1,63}(?<!-)$")


def split(addr: str) -> tuple[str, str] | None:
    """(local, domain) of a plain address, or None for anything unusual."""
    if addr.count("@") != 1:
        return None
    local, domain = addr.rsplit("@", 1)
    return (local, domain) if local and domain else None


@functools.lru_cache(maxsize=4096)  # the idna codec is slow and a relay sees few domains
def ascii_domain(domain: str) -> str | None:
    """The lowercase A-label form of ``domain``, or None when it is not a host name."""
    if not domain or domain.endswith(".") or domain.startswith((".", "[")):
        return None
    try:
        text = domain.lower().encode("idna").decode("ascii")
    except UnicodeError:
        return None
    labels = text.split(".")
    if len(text) > 253 or not all(_LABEL.match(lb) for lb in labels):
        return None
    return text


def domain_allowed(domain: str, allowed: Iterable[str]) -> bool:
    """Exact match, or a subdomain of an entry written with a leading dot."""
    for entry in allowed:
        if entry.startswith("."):
            if domain.endswith(entry) and len(domain) > len(entry):
                return True
        elif domain == entry:
            return True
    return False


def relay_problem(addr: str, allowed: Iterable[str]) -> str | None:
    """Why we refuse to take mail for ``addr`` (a 550 5.7.1 text), or None."""
    parts = split(addr)
    if parts is None:
        return "5.7.1 Relay access denied: not a plain local@domain address"
    local, domain = parts
    if ":" in addr or "," in addr:
        return "5.7.1 Relay access denied: source routes are not accepted"
    if "%" in local or "!" in local:
        return "5.7.1 Relay access denied: percent hack and bang paths are not accepted"
    if not (_LOCAL.match(local) or (local.isprintable() and not local.isascii()
                                    and all(c not in local for c in '"\\ %!@'))):
        return "5.7.1 Relay access denied: unusual local part"
    if local.startswith(".") or local.endswith(".") or ".." in local:
        return "5.7.1 Relay access denied: unusual local part"
    dom = ascii_domain(domain)
    if dom is None:
        return "5.7.1 Relay access denied: not a valid domain name"
    if not domain_allowed(dom, allowed):
        return f"5.7.1 Relay access denied: we do not accept mail for {dom}"
    return None


def mailbox_name(addr: str) -> str:
    """A safe directory name for ``addr``: lowercase, anything unusual percent-encoded."""
    out = []
    for i, ch in enumerate(addr.lower()):
        if (ch.isascii() and (ch.isalnum() or ch in "@+-_=")) or (ch == "." and i > 0):
            out.append(ch)
        else:
            out.extend(f"%{b:02X}" for b in ch.encode("utf-8"))
    return "".join(out)[:255]

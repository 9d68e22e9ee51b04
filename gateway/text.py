"""Text from outside (names, addresses, reasons, SMTP replies) made safe to put in a
notice, a log line or a reply: one line, printable, bounded."""

from __future__ import annotations


def one_line(text: str, limit: int = 300) -> str:
    """``text`` on one line (runs of white space become one space), every character
    that is not printable (controls, bidi overrides, line breaks) replaced by "?",
    at most ``limit`` characters."""
    text = " ".join(text.split())
    return "".join(ch if ch.isprintable() else "?" for ch in text)[:limit]

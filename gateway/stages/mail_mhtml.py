"""Saved web pages (.mht/.mhtml): the page's pictures stay pictures.

A saved page refers to its pictures by the address each came from
(``<img src="https://www.city.example.lg.jp/logo.png">``), and the picture's part
says which address it stands for (``Content-Location``). A browser opening the
page takes such a reference from the archive and fetches nothing; our HTML
cleaner, which never lets a page load from elsewhere, took them for remote
pictures and removed them, so a rebuilt page showed its text only.

Before the page is cleaned, each reference to an address one of the archive's
parts stands for is rewritten to that part's Content-ID (``cid:``, RFC 2557),
which the cleaner keeps and Chromium and Word resolve inside the archive; a part
without a Content-ID is given one. A reference to anything else is still
removed. Relative references are resolved against the page's own address first.
"""

from __future__ import annotations

import hashlib
import html
import re
from email.message import Message
from urllib.parse import urljoin

from gateway.stages.mail_parts import content_id

#: attributes that load a picture into the page
_SOURCE = re.compile(r"""(?i)(\b(?:src|background|poster)\s*=\s*)"""
                     r"""(?:"([^"]*)"|'([^']*)'|([^\s"'>]+))""")
_MAX_PARTS = 10_000


def content_ids(msg: Message) -> dict[str, str]:
    """Address -> Content-ID (without brackets) for the archive's parts that stand for
    an address; parts without a Content-ID are given one."""
    out: dict[str, str] = {}
    for index, part in enumerate(msg.walk()):
        if index > _MAX_PARTS:
            break
        if part.is_multipart() or part.get_content_type() == "text/html":
            continue
        address = location(part)
        if not address:
            continue
        cid = content_id(part)  # as the part is written back
        if cid is None:
            digest = hashlib.sha256(address.encode()).hexdigest()[:16]
            cid = f"<mhtml-{digest}@sekisho.invalid>"
            del part["Content-ID"]
            part["Content-ID"] = cid
        out.setdefault(address, cid[1:-1])
    return out


def resolve(page: str, base: str, ids: dict[str, str]) -> str:
    """``page`` with every picture reference to an archived address turned into the
    ``cid:`` of its part."""
    def swap(m: re.Match[str]) -> str:
        raw = m.group(2) if m.group(2) is not None else (
            m.group(3) if m.group(3) is not None else m.group(4))
        value = html.unescape(raw).strip()
        address = urljoin(base, value) if base else value
        cid = ids.get(value) or ids.get(address)
        return f'{m.group(1)}"cid:{html.escape(cid)}"' if cid else m.group(0)

    return _SOURCE.sub(swap, page) if ids else page


def location(part: Message, header: str = "content-location") -> str:
    """The address a part stands for (or the page was saved from), "" when none."""
    value = part.get(header)
    if value is None:
        return ""
    text = re.sub(r"\s+", "", str(value))  # folded long addresses
    return text if text.isascii() and len(text) <= 2000 else ""

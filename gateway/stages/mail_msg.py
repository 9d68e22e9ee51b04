"""Outlook .msg (an OLE compound file of MAPI properties) read into a message.

Read with olefile (already a dependency of the OLE stage) rather than
extract-msg, which pulls in a dozen packages (RTF de-encapsulation, HTML
parsing, chardet…) for what is a small, well documented format (MS-OXMSG):
``__substg1.0_IIIITTTT`` streams hold variable-size properties, the
``__properties_version1.0`` stream the fixed-size ones, and
``__recip_version1.0_#N`` / ``__attach_version1.0_#N`` storages the recipients
and attachments; an attached message is a nested storage ``__substg1.0_3701000D``,
and so is an OLE object (attach method 6: a picture or document pasted into an RTF
mail), handed on as a compound file of its own or as its bitmap
(``mail_mapi.ole_object``).

The Internet headers Outlook kept (PR_TRANSPORT_MESSAGE_HEADERS) give From, To,
Date and Message-ID when present; otherwise they are built from properties.
"""

from __future__ import annotations

import io
import struct
from email.message import Message

import olefile

from gateway.errors import LimitExceeded, Malformed
from gateway.pipeline.api import StageContext
from gateway.stages import cfb_writer
from gateway.stages import mail_mapi as mp

MAX_EMBEDDED = 3
MAX_ATTACHMENTS = 500
_SUBSTG = "__substg1.0_"
_ATTACH = "__attach_version1.0_#"
_RECIP = "__recip_version1.0_#"
_PROPS = "__properties_version1.0"


def msg_message(data: bytes, ctx: StageContext) -> Message:
    try:
        ole = olefile.OleFileIO(io.BytesIO(data))
    except Exception as exc:  # olefile raises many types on damaged files
        raise Malformed(f"Outlook .msg cannot be opened ({type(exc).__name__})") from None
    try:
        with ole:
            entries = [tuple(p) for p in ole.listdir(streams=True, storages=True)]
            mapped = _read(ole, entries, (), 0)
    except (Malformed, LimitExceeded):
        raise
    except Exception as exc:
        raise Malformed(f"Outlook .msg cannot be read ({type(exc).__name__})") from None
    return mp.to_message(mapped)


class _Props:
    """The properties of one object (message, recipient or attachment) in the file."""

    def __init__(self, ole: olefile.OleFileIO, entries: list[tuple[str, ...]],
                 prefix: tuple[str, ...], header: int) -> None:
        self.ole, self.prefix = ole, prefix
        self.streams: dict[int, tuple[int, tuple[str, ...]]] = {}
        for path in entries:
            if len(path) == len(prefix) + 1 and path[: len(prefix)] == prefix \
                    and path[-1].startswith(_SUBSTG) and len(path[-1]) == 20:
                try:
                    tag = int(path[-1][12:], 16)
                except ValueError:
                    continue
                self.streams.setdefault(tag >> 16, (tag & 0xFFFF, path))
        self.fixed: dict[int, bytes] = {}
        props_path = [*prefix, _PROPS]
        if ole.exists("/".join(props_path)):
            raw = ole.openstream(props_path).read()
            for off in range(header, len(raw) - 15, 16):
                tag = struct.unpack_from("<I", raw, off)[0]
                self.fixed.setdefault(tag >> 16, raw[off + 8:off + 16])

    def raw(self, pid: int) -> tuple[int, bytes] | None:
        found = self.streams.get(pid)
        if found is None:
            return None
        ptype, path = found
        if ptype == 0x000D:
            return None
        return ptype, self.ole.openstream(list(path)).read()

    def text(self, pid: int, codepage: str) -> str:
        found = self.raw(pid)
        if found is None:
            return ""
        ptype, data = found
        return mp.unicode_value(data) if ptype == 0x001F else mp.text_value(data, codepage)

    def long(self, pid: int) -> int | None:
        value = self.fixed.get(pid)
        return struct.unpack_from("<I", value)[0] if value and len(value) >= 4 else None


def _read(ole: olefile.OleFileIO, entries: list[tuple[str, ...]], prefix: tuple[str, ...],
          depth: int) -> mp.Mapped:
    p = _Props(ole, entries, prefix, 32 if not prefix else 24)
    cp = mp.codepage_name(p.long(mp.MESSAGE_CPID) or p.long(mp.INTERNET_CPID))
    m = mp.Mapped(subject=p.text(mp.SUBJECT, cp), body=p.text(mp.BODY, cp),
                  message_id=p.text(mp.MESSAGE_ID, cp),
                  transport_headers=p.text(mp.HEADERS, cp))
    html = p.raw(mp.HTML)
    if html is not None:
        m.html = mp.unicode_value(html[1]) if html[0] == 0x001F else html[1]
        m.html_charset = mp.codepage_name(p.long(mp.INTERNET_CPID)) if p.long(
            mp.INTERNET_CPID) else cp
    rtf = p.raw(mp.RTF)
    if rtf is not None and not (m.body or m.html):
        m.rtf = mp.decompress_rtf(rtf[1])
    m.sender = (p.text(mp.SENDER_NAME, cp) or p.text(mp.REPR_NAME, cp),
                p.text(mp.SENDER_SMTP, cp) or p.text(mp.REPR_SMTP, cp)
                or p.text(mp.SENDER_EMAIL, cp))
    when = p.fixed.get(mp.SUBMIT_TIME) or p.fixed.get(mp.DELIVERY_TIME)
    m.date = mp.filetime(when) if when else None
    children = sorted({path[len(prefix)] for path in entries
                       if len(path) > len(prefix) and path[: len(prefix)] == prefix})
    for child in children:
        if child.startswith(_RECIP):
            r = _Props(ole, entries, (*prefix, child), 8)
            who = (r.text(mp.DISPLAY_NAME, cp),
                   r.text(mp.SMTP_ADDRESS, cp) or r.text(mp.EMAIL_ADDRESS, cp))
            (m.cc if r.long(mp.RECIPIENT_TYPE) == 2 else m.to if r.long(
                mp.RECIPIENT_TYPE) in (None, 1) else []).append(who)
        elif child.startswith(_ATTACH):
            if len(m.attachments) >= MAX_ATTACHMENTS:
                raise LimitExceeded(f"Outlook .msg has more than {MAX_ATTACHMENTS} attachments")
            m.attachments.append(_attachment(ole, entries, (*prefix, child), cp, depth))
    return m


def _attachment(ole: olefile.OleFileIO, entries: list[tuple[str, ...]],
                prefix: tuple[str, ...], cp: str, depth: int) -> mp.Attachment:
    a = _Props(ole, entries, prefix, 8)
    att = mp.Attachment(name=a.text(mp.ATTACH_LONG_FILENAME, cp) or a.text(
        mp.ATTACH_FILENAME, cp) or a.text(mp.DISPLAY_NAME, cp),
        mime=a.text(mp.ATTACH_MIME_TAG, cp), cid=a.text(mp.ATTACH_CONTENT_ID, cp))
    inner = (*prefix, f"{_SUBSTG}3701000D")
    if any(path[: len(inner)] == inner for path in entries):
        if a.long(mp.ATTACH_METHOD) == _ATTACH_OLE:  # an OLE object, not a message
            mp.ole_object(att, _storage(ole, inner))
            return att
        if depth >= MAX_EMBEDDED:
            raise LimitExceeded("Outlook messages nested too deeply")
        nested = _read(ole, entries, inner, depth + 1)
        att.embedded = mp.to_message(nested)
        att.name = (att.name or nested.subject[:60] or "message") + ".eml"
        return att
    data = a.raw(mp.ATTACH_DATA)
    att.data = data[1] if data is not None else None
    return att


_ATTACH_OLE = 6


def _storage(ole: olefile.OleFileIO, inner: tuple[str, ...]) -> bytes:
    """The storage at ``inner`` as a compound file of its own."""
    return cfb_writer.write(cfb_writer.read_storage(ole, inner))

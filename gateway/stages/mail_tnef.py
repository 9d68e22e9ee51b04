"""TNEF (winmail.dat, application/ms-tnef): read into a message of ordinary MIME parts.

Our own reader of MS-OXTNEF rather than tnefparse: that library decodes 8-bit
strings and HTML bodies with cp1252 whatever the message's code page says
(Japanese Outlook mail fails with UnicodeDecodeError), strips trailing NUL bytes
from attachment data, and raises NameError/IndexError/struct.error on damaged
input. Here every read is bounds-checked and any damage is Malformed.

The RTF body (compressed RTF) is used only when the message has neither a
plain-text nor an HTML body; it then becomes an attachment ``message-body.rtf``
that goes through the pipeline like any other RTF file.

An OLE object attachment (a picture or a document pasted into an RTF mail:
``PR_ATTACH_DATA_OBJ`` holding IID_IStorage and a compound file) is handed on as
its compound file, or as the bitmap of a static picture (``mail_mapi.ole_object``).
"""

from __future__ import annotations

import struct
from email.message import Message

from gateway.errors import LimitExceeded, Malformed
from gateway.kinds import Action
from gateway.pipeline.api import StageContext
from gateway.stages import mail_mapi as mp

SIGNATURE = 0x223E9F78
MAX_EMBEDDED = 3  # messages attached inside a TNEF, nested
MAX_ATTRIBUTES = 100_000
# attribute ids (low 16 bits)
_SUBJECT, _BODY, _MESSAGE_ID, _FROM, _DATE_SENT = 0x8004, 0x800C, 0x8009, 0x8000, 0x8005
_ATT_DATA, _ATT_TITLE, _ATT_REND, _ATT_PROPS, _MSG_PROPS, _OEM_CP = (
    0x800F, 0x8010, 0x9002, 0x9005, 0x9003, 0x9007)
_FIXED = {0x0002: 4, 0x0003: 4, 0x0004: 4, 0x0005: 8, 0x0006: 8, 0x0007: 8, 0x000A: 4,
          0x000B: 4, 0x0014: 8, 0x0040: 8, 0x0048: 16, 0x0001: 0}
_VARIABLE = frozenset({0x001E, 0x001F, 0x0102, 0x000D})
_IID_IMESSAGE = bytes.fromhex("0703020000000000c000000000000046")
_IID_ISTORAGE = bytes.fromhex("0b00000000000000c000000000000046")


def tnef_message(data: bytes, ctx: StageContext) -> Message:
    """The TNEF stream as a compat32 multipart/mixed message."""
    try:
        mapped = read(data, ctx, 0)
    except (struct.error, IndexError, ValueError, UnicodeError, OverflowError) as exc:
        raise Malformed(f"TNEF cannot be read ({type(exc).__name__})") from None
    return mp.to_message(mapped)


def read(data: bytes, ctx: StageContext, depth: int) -> mp.Mapped:
    if len(data) < 6 or struct.unpack_from("<I", data)[0] != SIGNATURE:
        raise Malformed("not a TNEF stream (bad signature)")
    m = mp.Mapped()
    codepage = "cp1252"
    internet_cp: str | None = None
    pos = 6
    current: mp.Attachment | None = None
    count = 0
    while pos + 9 <= len(data):
        count += 1
        if count > MAX_ATTRIBUTES:
            raise LimitExceeded("TNEF has too many attributes")
        level, attr_id, length = struct.unpack_from("<BII", data, pos)
        start = pos + 9
        if start + length > len(data):  # truncated stream: keep what is there, stop
            ctx.record("mail.defect", "tnef", action=Action.REPAIRED,
                       detail="TNEF stream is truncated")
            length = len(data) - start
        value = data[start:start + length]
        pos = start + length + 2  # checksum
        name = attr_id & 0xFFFF
        if name == _OEM_CP and len(value) >= 4:
            codepage = mp.codepage_name(struct.unpack_from("<I", value)[0])
        elif name == _ATT_REND:
            current = mp.Attachment()
            m.attachments.append(current)
        elif level == 2 and current is not None:
            if name == _ATT_DATA:
                current.data = value
            elif name == _ATT_TITLE and not current.name:
                current.name = mp.text_value(value, codepage)
            elif name == _ATT_PROPS:
                _attachment_props(current, props(value), codepage, ctx, depth)
        elif name == _SUBJECT and not m.subject:
            m.subject = mp.text_value(value, codepage)
        elif name == _BODY and not m.body:
            m.body = mp.text_value(value, codepage)
        elif name == _MESSAGE_ID and not m.message_id:
            m.message_id = ""  # attMessageID is a MAPI entry id, not an Internet id
        elif name == _MSG_PROPS:
            found = props(value)
            cp = found.get(mp.INTERNET_CPID)
            if isinstance(cp, bytes) and len(cp) >= 4:
                internet_cp = mp.codepage_name(struct.unpack_from("<I", cp)[0])
            _message_props(m, found, internet_cp or codepage)
    if depth == 0 and count == 0:
        raise Malformed("TNEF cannot be read (it holds no attributes)")
    # no body and no attachment is a message all the same: a read receipt, an
    # appointment (tnefparse's garbage-at-end and multi-name-property examples)
    return m


def _message_props(m: mp.Mapped, found: dict[int, bytes | str], cp: str) -> None:
    for pid, attr in ((mp.SUBJECT, "subject"), (mp.BODY, "body"),
                      (mp.MESSAGE_ID, "message_id")):
        if pid in found:
            setattr(m, attr, mp.text_value(found[pid], cp))
    if mp.HTML in found:
        m.html, m.html_charset = found[mp.HTML], cp
    if mp.RTF in found and isinstance(found[mp.RTF], bytes):
        m.rtf = mp.decompress_rtf(found[mp.RTF])  # type: ignore[arg-type]
    name = mp.text_value(found.get(mp.SENDER_NAME) or found.get(mp.REPR_NAME), cp)
    email = mp.text_value(found.get(mp.SENDER_SMTP) or found.get(mp.REPR_SMTP)
                          or found.get(mp.SENDER_EMAIL), cp)
    if name or email:
        m.sender = (name, email)
    if mp.SUBMIT_TIME in found and isinstance(found[mp.SUBMIT_TIME], bytes):
        m.date = mp.filetime(found[mp.SUBMIT_TIME])  # type: ignore[arg-type]


def _attachment_props(att: mp.Attachment, found: dict[int, bytes | str], cp: str,
                      ctx: StageContext, depth: int) -> None:
    for pid in (mp.ATTACH_LONG_FILENAME, mp.ATTACH_FILENAME, mp.DISPLAY_NAME):
        if pid in found:
            att.name = mp.text_value(found[pid], cp) or att.name
            break
    att.mime = mp.text_value(found.get(mp.ATTACH_MIME_TAG), cp)
    att.cid = mp.text_value(found.get(mp.ATTACH_CONTENT_ID), cp)
    obj = found.get(mp.ATTACH_DATA)
    if isinstance(obj, bytes):
        if obj.startswith(_IID_IMESSAGE):
            if depth >= MAX_EMBEDDED:
                raise LimitExceeded("TNEF messages nested too deeply")
            inner = read(obj[16:], ctx, depth + 1)
            att.embedded = mp.to_message(inner)
            att.name = att.name or (inner.subject[:60] or "message") + ".eml"
        elif obj.startswith(_IID_ISTORAGE):
            mp.ole_object(att, obj[16:])
        else:
            att.data = obj


def props(block: bytes) -> dict[int, bytes | str]:
    """MAPI property list (attMsgProps / attAttachment): id -> raw value (first value)."""
    out: dict[int, bytes | str] = {}
    (count,) = struct.unpack_from("<I", block)
    if count > 10_000:
        raise LimitExceeded("TNEF property list is too long")
    pos = 4
    for _ in range(count):
        ptype, pid = struct.unpack_from("<HH", block, pos)
        pos += 4
        if pid >= 0x8000:  # named property: GUID, kind, id or name
            kind = struct.unpack_from("<I", block, pos + 16)[0]
            pos += 20
            if kind == 0:
                pos += 4
            else:
                (nlen,) = struct.unpack_from("<I", block, pos)
                pos += 4 + nlen + (-nlen % 4)
        multi = bool(ptype & 0x1000)
        base = ptype & ~0x1000
        values = 1
        if multi or base in _VARIABLE:
            (values,) = struct.unpack_from("<I", block, pos)
            pos += 4
            if values > 100_000:
                raise Malformed("TNEF property has too many values")
        first: bytes | str | None = None
        for _ in range(values):
            if base in _VARIABLE:
                (size,) = struct.unpack_from("<I", block, pos)
                pos += 4
                if pos + size > len(block):
                    raise Malformed("TNEF property runs past the end")
                raw = block[pos:pos + size]
                pos += size + (-size % 4)
                value: bytes | str = mp.unicode_value(raw) if base == 0x001F else raw
            elif base in _FIXED:
                size = _FIXED[base]
                value = block[pos:pos + size]
                pos += size
            else:
                raise Malformed(f"TNEF property of unknown type {base:#06x}")
            if first is None:
                first = value
        if first is not None and pid not in out:
            out[pid] = first
    return out

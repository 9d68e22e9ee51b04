"""MAPI properties shared by TNEF (winmail.dat) and Outlook .msg, and compressed RTF.

Only what a message needs is read: subject, sender, recipients, date, message
id, bodies (plain, HTML, compressed RTF) and attachments (name, data, MIME
tag, content id, embedded messages). Strings in 8-bit properties are decoded
with the message's code page (932 → CP932, 5022x → ISO-2022-JP as CP932 does).
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email.header import Header
from email.message import Message
from email.mime.base import MIMEBase
from email.mime.multipart import MIMEMultipart
from email.mime.text import MIMEText
from email.utils import format_datetime, formataddr

from gateway.errors import LimitExceeded, Malformed
from gateway.stages.mail_charset import decode_bytes

# property ids
SUBJECT, MESSAGE_ID, BODY, HTML, RTF = 0x0037, 0x1035, 0x1000, 0x1013, 0x1009
SENDER_NAME, SENDER_EMAIL, SENDER_SMTP = 0x0C1A, 0x0C1F, 0x5D01
REPR_NAME, REPR_EMAIL, REPR_SMTP = 0x0042, 0x0065, 0x5D02
SUBMIT_TIME, DELIVERY_TIME, HEADERS = 0x0039, 0x0E06, 0x007D
INTERNET_CPID, MESSAGE_CPID = 0x3FDE, 0x3FFD
DISPLAY_NAME, EMAIL_ADDRESS, SMTP_ADDRESS, RECIPIENT_TYPE = 0x3001, 0x3003, 0x39FE, 0x0C15
ATTACH_DATA, ATTACH_FILENAME, ATTACH_LONG_FILENAME = 0x3701, 0x3704, 0x3707
ATTACH_METHOD, ATTACH_MIME_TAG, ATTACH_CONTENT_ID = 0x3705, 0x370E, 0x3712
DISPLAY_TO, DISPLAY_CC = 0x0E04, 0x0E03

MAX_RTF = 32 * 1024 * 1024
#: Windows code page identifiers Python knows by another name ("cp20866" is no codec:
#: a KOI8-R HTML body was guessed, and came out as katakana)
_CODEPAGES = {932: "cp932", 50220: "iso-2022-jp", 50221: "iso-2022-jp", 50222: "iso-2022-jp",
              51932: "euc-jp", 20932: "euc-jp", 65001: "utf-8", 20127: "ascii",
              28591: "latin-1", 1200: "utf-16-le", 1201: "utf-16-be", 12000: "utf-32-le",
              12001: "utf-32-be", 65000: "utf-7", 20866: "koi8-r", 21866: "koi8-u",
              28592: "iso8859-2", 28593: "iso8859-3", 28594: "iso8859-4", 28595: "iso8859-5",
              28596: "iso8859-6", 28597: "iso8859-7", 28598: "iso8859-8", 38598: "iso8859-8",
              28599: "iso8859-9", 28603: "iso8859-13", 28605: "iso8859-15", 54936: "gb18030",
              20936: "gb2312", 51936: "gb2312", 52936: "hz", 51949: "euc-kr", 50225: "iso-2022-kr",
              10000: "mac-roman", 10006: "mac-greek", 10007: "mac-cyrillic", 10029: "mac-latin2",
              10079: "mac-iceland", 10081: "mac-turkish", 10001: "shift_jis"}


def codepage_name(cp: int | None) -> str:
    if cp is None:
        return "cp1252"
    return _CODEPAGES.get(cp, f"cp{cp}")


def text_value(value: bytes | str | None, codepage: str) -> str:
    if value is None:
        return ""
    if isinstance(value, str):
        return value.split("\x00", 1)[0]
    return decode_bytes(value.split(b"\x00", 1)[0], codepage)[0]


def unicode_value(data: bytes) -> str:
    return data.decode("utf-16-le", "replace").split("\x00", 1)[0]


def filetime(data: bytes) -> datetime | None:
    if len(data) < 8:
        return None
    ticks = struct.unpack_from("<Q", data)[0]
    try:
        return datetime(1601, 1, 1, tzinfo=UTC) + timedelta(microseconds=ticks // 10)
    except OverflowError:
        return None


@dataclass(slots=True)
class Attachment:
    name: str = ""
    data: bytes | None = None
    mime: str = ""
    cid: str = ""
    embedded: Message | None = None


@dataclass(slots=True)
class Mapped:
    """A message read from MAPI properties, ready to become MIME."""

    subject: str = ""
    sender: tuple[str, str] = ("", "")
    to: list[tuple[str, str]] = field(default_factory=list)
    cc: list[tuple[str, str]] = field(default_factory=list)
    date: datetime | None = None
    message_id: str = ""
    transport_headers: str = ""
    body: str = ""
    html: bytes | str = b""
    html_charset: str = ""
    rtf: bytes = b""
    attachments: list[Attachment] = field(default_factory=list)


def to_message(m: Mapped) -> Message:
    """A compat32 message (headers as text) that the mail walker treats like any other."""
    top = MIMEMultipart("mixed")
    del top["MIME-Version"]
    names = ("from", "to", "cc", "date", "message-id", "received", "reply-to", "in-reply-to",
             "references", "sender")
    if m.transport_headers:
        from email.parser import Parser  # noqa: PLC0415
        from email.policy import compat32  # noqa: PLC0415

        parsed = Parser(policy=compat32).parsestr(m.transport_headers + "\n\n",
                                                  headersonly=True)
        for key, value in parsed.raw_items():
            if key.strip().lower() in names:
                top[key] = value
    if "from" not in top and _addr(m.sender):
        top["From"] = _addr(m.sender)
    for key, people in (("To", m.to), ("Cc", m.cc)):
        listed = ", ".join(a for a in map(_addr, people) if a)
        if key.lower() not in top and listed:
            top[key] = listed
    if "date" not in top and m.date is not None:
        top["Date"] = format_datetime(m.date)
    if "message-id" not in top and m.message_id:
        top["Message-ID"] = m.message_id
    top["Subject"] = m.subject
    bodies: list[Message] = []
    if m.body:
        bodies.append(MIMEText(m.body, "plain", "utf-8"))
    if m.html:
        html = m.html if isinstance(m.html, str) else decode_bytes(m.html, m.html_charset)[0]
        bodies.append(MIMEText(html, "html", "utf-8"))
    if len(bodies) == 2:
        alt = MIMEMultipart("alternative")
        for b in bodies:
            alt.attach(b)
        top.attach(alt)
    elif bodies:
        top.attach(bodies[0])
    elif m.rtf:
        top.attach(_file(m.rtf, "message-body.rtf", "application/rtf", ""))
    for att in m.attachments:
        if att.embedded is not None:
            part = MIMEBase("message", "rfc822")
            part.set_payload([att.embedded])
            part["Content-Disposition"] = _disposition(att.name or "message.eml")
            top.attach(part)
        elif att.data is not None:
            top.attach(_file(att.data, att.name or "attachment.bin", att.mime, att.cid))
    for part in top.walk():
        if part is not top:
            del part["MIME-Version"]
    return top


def _addr(pair: tuple[str, str]) -> str:
    name, email = pair
    if "@" not in email or not email.isascii() or any(c.isspace() for c in email):
        return ""  # an Exchange DN (or damage) is no address: the rebuilt header omits it
    return formataddr((name, email)) if name.isascii() else (
        f"{Header(name, 'utf-8').encode(maxlinelen=0)} <{email}>")


def _disposition(name: str) -> str:
    escaped = name.replace("\\", "").replace('"', "'").replace("\r", "").replace("\n", "")
    return f'attachment; filename="{escaped}"'


def _file(data: bytes, name: str, mime: str, cid: str) -> Message:
    main, _, sub = (mime.lower() if "/" in mime else "application/octet-stream").partition("/")
    if main.strip() == "multipart":
        entity = _entity(data)
        if entity is not None:
            return entity
    part = MIMEBase(main.strip() or "application", sub.strip() or "octet-stream")
    part.set_payload(data)
    from email import encoders  # noqa: PLC0415

    encoders.encode_base64(part)
    part["Content-Disposition"] = _disposition(name)
    if cid:
        part["Content-ID"] = f"<{cid.strip('<>')}>"
    return part


def _entity(data: bytes) -> Message | None:
    """A MIME entity Outlook keeps whole as an attachment: a signed message saved as
    .msg (IPM.Note.SMIME.MultipartSigned) holds its multipart/signed body, headers and
    all, as one attachment typed multipart/signed. Parsed, the walker opens it like any
    multipart (the signature goes, the signed parts are disarmed); None when the data
    is not such an entity (it stays a file). Parsed as the mail stage parses a message,
    with its guard on the number of multipart containers."""
    from gateway.stages.mail import parse  # noqa: PLC0415 - mail imports this module

    try:
        entity = parse(data)
    except Malformed:  # the parser's own failures: the bytes stay an attachment
        return None
    return entity if entity.is_multipart() else None


# ---------------------------------------------------------------------------- compressed RTF

_RTF_PREBUF = (b"{\\rtf1\\ansi\\mac\\deff0\\deftab720{\\fonttbl;}{\\f0\\fnil \\froman \\fswiss "
               b"\\fmodern \\fscript \\fdecor MS Sans SerifSymbolArialTimes New RomanCourier"
               b"{\\colortbl\\red0\\green0\\blue0\r\n\\par \\pard\\plain\\f0\\fs20\\b\\i\\u\\tab"
               b"\\tx")


def decompress_rtf(data: bytes) -> bytes:
    """MS-OXRTFCP: LZFu-compressed (or MELA-stored) RTF."""
    if len(data) < 16:
        raise Malformed("compressed RTF is truncated")
    comp_size, raw_size, kind = struct.unpack_from("<III", data)
    if raw_size > MAX_RTF:
        raise LimitExceeded(f"RTF body expands beyond {MAX_RTF} bytes")
    body = data[16:4 + comp_size] if comp_size >= 12 else data[16:]
    if kind == 0x414C454D:  # "MELA": stored
        return body[:raw_size]
    if kind != 0x75465A4C:  # "LZFu"
        raise Malformed("unknown compressed RTF format")
    window = bytearray(4096)
    window[: len(_RTF_PREBUF)] = _RTF_PREBUF
    wpos = len(_RTF_PREBUF)
    out = bytearray()
    pos = 0
    while pos < len(body) and len(out) < raw_size:
        control = body[pos]
        pos += 1
        for bit in range(8):
            if pos >= len(body) or len(out) >= raw_size:
                break
            if not control & (1 << bit):
                byte = body[pos]
                pos += 1
                out.append(byte)
                window[wpos] = byte
                wpos = (wpos + 1) % 4096
                continue
            if pos + 1 >= len(body):
                return bytes(out)
            ref = (body[pos] << 8) | body[pos + 1]
            pos += 2
            offset, length = ref >> 4, (ref & 0xF) + 2
            if offset == wpos:
                return bytes(out)
            for i in range(length):
                byte = window[(offset + i) % 4096]
                out.append(byte)
                window[wpos] = byte
                wpos = (wpos + 1) % 4096
    return bytes(out[:raw_size])


# ----------------------------------------------------------------------- OLE objects

_CLSID_STATIC_DIB = "00000316-0000-0000-C000-000000000046"
_PICTURE, _NATIVE = "CONTENTS", "\x01Ole10Native"


def ole_object(att: Attachment, storage: bytes) -> None:
    """An OLE object attachment (ATTACH_OLE: a picture, file or document pasted into an
    RTF mail) as what the pipeline can read: a static picture (CLSID StaticDib,
    Outlook's "Picture (Device Independent Bitmap)") as the bitmap in its ``CONTENTS``
    stream, a ``.bmp`` the image stage rebuilds; an OLE Package (a file shown as an icon)
    as the file it holds, under its own name; any other object as its compound file,
    which the pipeline reads like a .doc/.xls/.ppt (or blocks)."""
    att.data = storage
    clsid, streams = _object_streams(storage)
    picture = _bitmap(streams[_PICTURE]) if clsid == _CLSID_STATIC_DIB and \
        _PICTURE in streams else None
    if picture is not None:
        att.data, att.mime = picture, "image/bmp"
        if "." not in att.name:
            att.name = (att.name or "picture") + ".bmp"
        return
    packaged = _package(streams[_NATIVE]) if _NATIVE in streams else None
    if packaged is not None:     # a file pasted as an icon: the file itself, sniffed as usual
        name, att.data = packaged
        att.name, att.mime = name or att.name, ""


def _object_streams(storage: bytes) -> tuple[str, dict[str, bytes]]:
    """The root CLSID of the compound file ``storage`` and those of its streams that
    say what the object is (picture, package); nothing for a damaged file."""
    import io  # noqa: PLC0415 - only for OLE object attachments

    import olefile  # noqa: PLC0415

    try:
        ole = olefile.OleFileIO(io.BytesIO(storage))
        try:
            streams = {name: ole.openstream(name).read()
                       for name in (_PICTURE, _NATIVE) if ole.exists(name)}
            return str(ole.root.clsid or ""), streams
        finally:
            ole.close()
    except (OSError, ValueError, IndexError, struct.error):
        return "", {}


def _bitmap(dib: bytes) -> bytes | None:
    """A static picture's BMP file (its file header added when the stream holds only
    the DIB); None when it is no bitmap."""
    if dib.startswith(b"BM"):
        return dib
    if len(dib) < 40:
        return None
    header, bits, compression, colors = struct.unpack_from("<I10xHI16xI", dib)
    if header < 40:
        return None
    palette = colors or (1 << bits if bits <= 8 else 0)
    masks = 12 if compression == 3 and header == 40 else 0
    offset = 14 + header + masks + 4 * palette
    return struct.pack("<2sIHHI", b"BM", 14 + len(dib), 0, 0, offset) + dib


def _package(native: bytes) -> tuple[str, bytes] | None:
    """(file name, bytes) of an OLE Package's ``\\x01Ole10Native`` stream (MS-OLEDS
    2.3.6: size, type, label, source path, two longs, temporary path, data size, data);
    None when it does not parse."""
    import posixpath  # noqa: PLC0415

    try:
        pos = 6                                           # native size, type
        label, pos = _cstr(native, pos)
        source, pos = _cstr(native, pos)
        _, pos = _cstr(native, pos + 8)                   # two longs, the temporary path
        (size,) = struct.unpack_from("<I", native, pos)
    except (struct.error, ValueError):
        return None
    data = native[pos + 4:pos + 4 + size]
    if len(data) != size:
        return None
    name = posixpath.basename((label or source).replace("\\", "/"))
    return name, data


def _cstr(data: bytes, pos: int) -> tuple[str, int]:
    end = data.index(b"\x00", pos)                         # ValueError when unterminated
    return data[pos:end].decode("cp1252", "replace"), end + 1

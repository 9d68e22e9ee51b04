"""Hostile and Japanese mail fixtures, built byte by byte (no help from our own code)."""

from __future__ import annotations

import base64
import io
import struct
import zipfile
from collections.abc import Sequence

EXE = b"MZ\x90\x00\x03\x00\x00\x00" + b"\x00" * 248
CRLF = b"\r\n"


def entity(ctype: str, body: bytes, *, cte: str | None = None,
           headers: list[tuple[str, str | bytes]] | None = None) -> bytes:
    """One MIME entity: its headers, a blank line and the body (already encoded)."""
    lines: list[bytes] = [f"Content-Type: {ctype}".encode()]
    if cte:
        lines.append(f"Content-Transfer-Encoding: {cte}".encode())
    for name, value in headers or []:
        lines.append(name.encode() + b": " + (value if isinstance(value, bytes)
                                                  else value.encode()))
    return CRLF.join(lines) + CRLF + CRLF + body


def b64(data: bytes) -> bytes:
    text = base64.b64encode(data)
    return CRLF.join(text[i:i + 76] for i in range(0, len(text), 76)) + CRLF


def text(body: str, *, charset: str = "utf-8", subtype: str = "plain") -> bytes:
    return entity(f"text/{subtype}; charset={charset}", b64(body.encode(charset)), cte="base64")


def attachment(name: str | bytes, data: bytes, ctype: str = "application/octet-stream",
               *, param: bytes | None = None) -> bytes:
    """An attachment; ``param`` replaces the filename parameter (for encoding tricks)."""
    raw = name if isinstance(name, bytes) else name.encode()
    disposition = b"attachment; " + (param if param is not None else b'filename="' + raw + b'"')
    return entity(ctype, b64(data), cte="base64", headers=[("Content-Disposition", disposition)])


def multipart(subtype: str, *parts: bytes, boundary: str = "", params: str = "") -> bytes:
    boundary = boundary or f"b-{subtype}-{len(parts)}-{sum(map(len, parts))}"
    body = b"".join(b"--" + boundary.encode() + CRLF + p + CRLF for p in parts)
    body += b"--" + boundary.encode() + b"--" + CRLF
    return entity(f'multipart/{subtype}; boundary="{boundary}"{params}', b"preamble" + CRLF
                  + body)


def message(content: bytes, *, subject: str | bytes = "test", extra: list[tuple[str, bytes]]
            | None = None, sender: bytes = b"Sender <sender@example.com>") -> bytes:
    """A top-level message: our headers, then ``content`` (an entity from above)."""
    subj = subject if isinstance(subject, bytes) else subject.encode()
    head = [b"Received: from mx.example.com by gw.example.lg.jp; Thu, 26 Nov 2026 10:00:00 +0900",
            b"From: " + sender, b"To: staff@city.example.lg.jp", b"Subject: " + subj,
            b"Date: Thu, 26 Nov 2026 10:00:00 +0900",
            b"Message-ID: <msg-1@example.com>", b"MIME-Version: 1.0"]
    head += [name.encode() + b": " + value for name, value in extra or []]
    return CRLF.join(head) + CRLF + content


def encoded_word(text: str, charset: str = "utf-8") -> str:
    return f"=?{charset}?B?{base64.b64encode(text.encode(charset)).decode()}?="


# ---------------------------------------------------------------------------- Japanese


def _sjis_to_jis(s1: int, s2: int) -> tuple[int, int]:
    row = (s1 - 0x70 if s1 <= 0x9F else s1 - 0xB0) * 2
    if s2 >= 0x9F:
        return row, s2 - 0x7E
    return row - 1, s2 - 0x1F - (1 if s2 >= 0x80 else 0)


def iso2022jp(text: str) -> bytes:
    """ISO-2022-JP as Windows writes it (CP50221): CP932 code points, kana via ESC ( I."""
    out = bytearray()
    mode = "ascii"
    for ch in text:
        raw = ch.encode("cp932")
        want = "ascii" if len(raw) == 1 and raw[0] < 0x80 else "kana" if len(raw) == 1 \
            else "jis"
        if want != mode:
            out += {"ascii": b"\x1b(B", "kana": b"\x1b(I", "jis": b"\x1b$B"}[want]
            mode = want
        if want == "ascii":
            out += raw
        elif want == "kana":
            out.append(raw[0] - 0x80)
        else:
            out += bytes(_sjis_to_jis(raw[0], raw[1]))
    if mode != "ascii":
        out += b"\x1b(B"
    return bytes(out)


# ---------------------------------------------------------------------------- files


def _der(tag: int, body: bytes, *, indefinite: bool = False) -> bytes:
    if indefinite:
        return bytes([tag, 0x80]) + body + b"\x00\x00"
    n = len(body)
    size = bytes([n]) if n < 128 else (
        bytes([0x80 | ((n.bit_length() + 7) // 8)]) + n.to_bytes((n.bit_length() + 7) // 8, "big"))
    return bytes([tag]) + size + body


def cms_signed(content: bytes, *, ber: bool = False) -> bytes:
    """A CMS SignedData (RFC 5652) carrying ``content``, as S/MIME opaque signing wraps a
    MIME entity (no signer: nothing here checks signatures). ``ber``: indefinite lengths
    and the content as a constructed OCTET STRING in two pieces, as Outlook writes it."""
    oid_data = _der(0x06, bytes.fromhex("2a864886f70d010701"))
    oid_signed = _der(0x06, bytes.fromhex("2a864886f70d010702"))
    sha256 = _der(0x31, _der(0x30, _der(0x06, bytes.fromhex("608648016503040201")) + b"\x05\x00"))
    if ber:
        half = len(content) // 2
        octets = _der(0x24, _der(0x04, content[:half]) + _der(0x04, content[half:]),
                      indefinite=True)
    else:
        octets = _der(0x04, content)
    encap = _der(0x30, oid_data + _der(0xA0, octets, indefinite=ber), indefinite=ber)
    signed = _der(0x30, _der(0x02, b"\x01") + sha256 + encap + _der(0x31, b""), indefinite=ber)
    return _der(0x30, oid_signed + _der(0xA0, signed, indefinite=ber), indefinite=ber)


def zip_of(members: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return buf.getvalue()


def png_with_metadata() -> bytes:
    from PIL import Image, PngImagePlugin

    info = PngImagePlugin.PngInfo()
    info.add_text("Comment", "GPS 35.6895N 139.6917E secret")
    buf = io.BytesIO()
    Image.new("RGB", (8, 8), (200, 30, 30)).save(buf, "PNG", pnginfo=info)
    return buf.getvalue()


HOSTILE_HTML = (
    "<html><head><script>steal()</script></head>"
    "<body onload=\"track()\"><p>お見積りをお送りします。</p>"
    "<form action=\"https://phish.example.net/login\"><input name=\"pw\"></form>"
    "<img src=\"https://tracker.example.net/pixel.gif\" width=\"1\" height=\"1\">"
    "<a href=\"javascript:alert(1)\">開く</a> "
    "<a href=\"https://example.com/path?q=1\">詳細はこちら</a></body></html>")


# ---------------------------------------------------------------------------- TNEF


def _tnef_attr(level: int, attr: int, data: bytes) -> bytes:
    return struct.pack("<BII", level, attr, len(data)) + data + struct.pack(
        "<H", sum(data) & 0xFFFF)


def _mapi_unicode(pid: int, text: str) -> bytes:
    raw = text.encode("utf-16-le") + b"\x00\x00"
    return struct.pack("<HHII", 0x001F, pid, 1, len(raw)) + raw + b"\x00" * (-len(raw) % 4)


def _mapi_object(pid: int, data: bytes) -> bytes:
    return struct.pack("<HHII", 0x000D, pid, 1, len(data)) + data + b"\x00" * (-len(data) % 4)


def tnef_ole_object(title: str, storage: bytes) -> tuple[str, bytes, bytes]:
    """An OLE object attachment of ``tnef``: what Outlook writes for a picture or a
    document pasted into an RTF mail (PR_ATTACH_DATA_OBJ = IID_IStorage + the storage)."""
    iid_istorage = bytes.fromhex("0b00000000000000c000000000000046")
    return title, b"", _mapi_object(0x3701, iid_istorage + storage)


def tnef(subject: str, body: str, files: list[tuple[str, bytes]],
         objects: Sequence[tuple[str, bytes, bytes]] = (), *, codepage: int = 932,
         html: bytes | None = None) -> bytes:
    """A winmail.dat: subject and plain body in MAPI properties, files as attachments;
    ``objects`` (from ``tnef_ole_object``) as OLE object attachments; ``html``: an HTML
    body in the message's code page (PR_HTML, binary)."""
    out = struct.pack("<IH", 0x223E9F78, 0x1234)
    out += _tnef_attr(1, 0x00089006, struct.pack("<I", 0x00010000))      # version
    out += _tnef_attr(1, 0x00069007, struct.pack("<II", codepage, 0))    # OEM code page
    props = _mapi_unicode(0x0037, subject) + _mapi_unicode(0x1000, body)
    count = 2
    if html is not None:
        props += struct.pack("<HHII", 0x0102, 0x1013, 1, len(html)) + html \
            + b"\x00" * (-len(html) % 4)
        count += 1
    out += _tnef_attr(1, 0x00069003, struct.pack("<I", count) + props)   # attMsgProps
    for name, data in files:
        out += _tnef_attr(2, 0x00069002, b"\x01\x00\xff\xff\xff\xff" + b"\x00" * 8)  # rend
        out += _tnef_attr(2, 0x00018010, name.encode("cp932") + b"\x00")             # title
        out += _tnef_attr(2, 0x0006800F, data)                                       # data
        out += _tnef_attr(2, 0x00069005, struct.pack("<I", 1) + _mapi_unicode(0x3707, name))
    for title, _, prop in objects:
        out += _tnef_attr(2, 0x00069002, b"\x02\x00\xff\xff\xff\xff" + b"\x00" * 8)  # rend: OLE
        out += _tnef_attr(2, 0x00018010, title.encode("cp932") + b"\x00")
        out += _tnef_attr(2, 0x00069005, struct.pack("<I", 1) + prop)
    return out


def deep(levels: int) -> bytes:
    """``levels`` multiparts nested inside each other."""
    inner = text("bottom")
    for i in range(levels):
        inner = multipart("mixed", inner, boundary=f"d{i}")
    return message(inner, subject="deep")

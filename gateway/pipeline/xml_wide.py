"""XML stored in an encoding that does not write ASCII as ASCII, read as UTF-8.

XML may be stored in UTF-16 (OPC parts too), and browsers, Office and LibreOffice
read it; LibreOffice (libxml2 with iconv) also reads a part declared in UTF-7 or
an EBCDIC code page. Byte-level checks look for ASCII tokens (a namespace, a
field instruction, a markup declaration), which such an encoding writes as other
bytes: a DDEAUTO field in a UTF-16 or EBCDIC document.xml went through unseen.
So a document in one is turned into UTF-8 first, checked, and delivered that way
(what the recipient opens is what was checked). Encodings that write every ASCII
character as itself (Shift_JIS, EUC-JP, ISO-2022-JP, ISO-8859-*) are left alone.
"""

from __future__ import annotations

import codecs
import functools
import re

from gateway.errors import Malformed

#: byte order marks and first bytes of an XML document (XML 1.0 appendix F) in encodings
#: that are not ASCII-compatible, longest first
_WIDE = ((b"\xff\xfe\x00\x00", "utf-32-le"), (b"\x00\x00\xfe\xff", "utf-32-be"),
         (b"\x3c\x00\x00\x00", "utf-32-le"), (b"\x00\x00\x00\x3c", "utf-32-be"),
         (b"\xff\xfe", "utf-16-le"), (b"\xfe\xff", "utf-16-be"),
         (b"\x3c\x00", "utf-16-le"), (b"\x00\x3c", "utf-16-be"))
_EBCDIC = b"\x4c\x6f\xa7\x94"   # "<?xm" in an EBCDIC code page (appendix F)
_ENCODING_DECL = re.compile(r"""^(\s*<\?xml\b[^>]*?\bencoding\s*=\s*)(["'])([^"']*)\2""")
_ASCII = "".join(map(chr, range(0x20, 0x7F))) + "\t\r\n"


@functools.cache
def _writes_ascii_as_ascii(codec: str) -> bool:
    try:
        return _ASCII.encode(codec) == _ASCII.encode("ascii")
    except UnicodeError:
        return False


def _declared(data: bytes) -> str | None:
    """The encoding the XML declaration names (read in EBCDIC when it is written so)."""
    head = data[:512]
    text = head.decode("cp037" if head.startswith(_EBCDIC) else "latin-1")
    m = _ENCODING_DECL.match(text)
    return m.group(3).strip() if m else None


def as_utf8(data: bytes, part: str, errors: str = "strict") -> bytes | None:
    """``data`` as UTF-8 with a declaration that says so when it is stored in UTF-16,
    UTF-32 (detected as XML 1.0 appendix F does) or a declared encoding that does not
    write ASCII as ASCII (UTF-7, EBCDIC); None when the byte-level checks can read it
    as it is. ``part`` names the document in the error for one that cannot be read;
    ``errors`` is the decoding's (the sniffer reads a head that may end mid-sequence)."""
    codec = next((c for prefix, c in _WIDE if data.startswith(prefix)), None)
    if codec is None:
        label = _declared(data)
        if label is None and data.startswith(_EBCDIC):
            raise Malformed(f"{part} is in EBCDIC without naming its code page")
        if label is None or data.startswith(codecs.BOM_UTF8):
            return None
        try:
            info = codecs.lookup(label)
        except (LookupError, ValueError):  # ValueError: a name holding a NUL byte
            if not data.startswith(_EBCDIC):
                return None  # a name no reader knows either: read as it is (UTF-8)
            raise Malformed(f"{part} declares an encoding that cannot be read "
                            f"({label[:40]!r})") from None
        if not getattr(info, "_is_text_encoding", True):
            raise Malformed(f"{part} declares an encoding that is no text encoding "
                            f"({label[:40]!r})")
        if info.name.startswith(("utf-16", "utf-32")):
            return None  # labelled wide, written in ASCII bytes: readers go by the bytes
        if _writes_ascii_as_ascii(info.name) and not data.startswith(_EBCDIC):
            return None
        codec = info.name
    try:
        text = data.decode(codec, errors).lstrip("\ufeff")
    except (UnicodeError, ValueError):  # punycode, idna, "undefined" raise UnicodeError
        raise Malformed(f"{part} is not valid {codec} text") from None
    text = _ENCODING_DECL.sub(r"\1\2UTF-8\2", text, count=1)
    return text.encode("utf-8")

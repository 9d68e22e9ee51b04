"""XML stored in UTF-16 or UTF-32, read as UTF-8.

XML may be stored in UTF-16 (OPC parts too), and browsers, Office and LibreOffice
read it. Byte-level checks look for ASCII tokens (a namespace, a field
instruction, a markup declaration), which a wide encoding spreads over NUL
bytes, so a document in one is first turned into UTF-8, checked, and delivered
that way.
"""

from __future__ import annotations

import re

from gateway.errors import Malformed

#: byte order marks and first bytes of an XML document (XML 1.0 appendix F) in encodings
#: that are not ASCII-compatible, longest first
_WIDE = ((b"\xff\xfe\x00\x00", "utf-32-le"), (b"\x00\x00\xfe\xff", "utf-32-be"),
         (b"\x3c\x00\x00\x00", "utf-32-le"), (b"\x00\x00\x00\x3c", "utf-32-be"),
         (b"\xff\xfe", "utf-16-le"), (b"\xfe\xff", "utf-16-be"),
         (b"\x3c\x00", "utf-16-le"), (b"\x00\x3c", "utf-16-be"))
_ENCODING_DECL = re.compile(r"""^(\s*<\?xml\b[^>]*?\bencoding\s*=\s*)(["'])[^"']*\2""")


def as_utf8(data: bytes, part: str) -> bytes | None:
    """``data`` as UTF-8 with a declaration that says so when it is stored in UTF-16 or
    UTF-32 (detected as XML 1.0 appendix F does); None for an ASCII-compatible
    encoding. ``part`` names the document in the error for one that does not decode."""
    codec = next((c for prefix, c in _WIDE if data.startswith(prefix)), None)
    if codec is None:
        return None
    try:
        text = data.decode(codec).lstrip("\ufeff")
    except UnicodeDecodeError:
        raise Malformed(f"{part} is not valid {codec.upper()[:6]} text") from None
    text = _ENCODING_DECL.sub(r"\1\2UTF-8\2", text, count=1)
    return text.encode("utf-8")

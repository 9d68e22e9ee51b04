"""Text decoding for mail: Japanese charsets the way real mailers write them.

Japanese mail labelled ``ISO-2022-JP`` routinely carries the CP932 extensions
(NEC row 13: ①, ㈱; NEC-selected IBM extensions: 髙) that Python's strict
``iso2022_jp`` codec refuses, and ``Shift_JIS``/``EUC-JP`` labels carry the same.
Browsers solved this in the WHATWG Encoding Standard: JIS X 0208 code points
are read with the Windows (CP932) mapping. We do the same: a JIS X 0208 pair is
turned into its Shift_JIS bytes arithmetically and decoded as CP932, so
``～`` stays U+FF5E FULLWIDTH TILDE (not U+301C WAVE DASH) and ① ㈱ 髙 survive.

Every function returns text; none raises on bad input (undecodable bytes
become U+FFFD and the caller is told, so it can record a defect).
"""

from __future__ import annotations

import codecs
import re
from collections.abc import Callable

_Decoder = Callable[[bytes, str], str]

#: labels decoded as CP932 (what Windows means by Shift_JIS)
_SJIS = frozenset({"shift_jis", "shift-jis", "sjis", "x-sjis", "ms_kanji", "csshiftjis",
                   "windows-31j", "cp932", "ms932", "x-ms-cp932", "shift_jisx0213"})
_EUC = frozenset({"euc-jp", "euc_jp", "eucjp", "x-euc-jp", "x-euc", "cseucpkdfmtjapanese",
                  "eucjp-ms", "cp51932", "ujis"})
_JIS = frozenset({"iso-2022-jp", "iso2022jp", "iso2022_jp", "csiso2022jp", "iso-2022-jp-ms",
                  "iso-2022-jp-1", "iso-2022-jp-2", "iso-2022-jp-3", "iso-2022-jp-2004",
                  "cp50220", "cp50221", "cp50222", "jis", "x-jis"})
_UTF8 = frozenset({"utf-8", "utf8", "unicode-1-1-utf-8", "x-unicode20utf8"})
_ASCII = frozenset({"us-ascii", "ascii", "ansi_x3.4-1968", "iso646-us", "us"})
#: what mail clients and browsers read a label as (WHATWG Encoding Standard): the
#: Windows superset of a charset, since text written on Windows carries its extra
#: characters under the plain label (a GBK-only hanzi under "gb2312", cp949 hangul
#: under "euc-kr", curly quotes from cp1252 under "iso-8859-1")
_SUPERSET = {"gb2312": "gb18030", "gbk": "gb18030", "euc_kr": "cp949", "big5": "cp950",
             "iso8859-1": "cp1252", "tis-620": "cp874", "iso8859-11": "cp874",
             "iso8859-9": "cp1254"}
#: labels WHATWG knows and Python's codec registry does not
_LABELS = {"windows-874": "cp874", "x-gbk": "gb18030", "cn-gb": "gb18030",
           "gb_2312-80": "gb18030", "csgb2312": "gb18030", "x-cp1252": "cp1252",
           "x-mac-roman": "mac_roman", "macintosh": "mac_roman"}
#: multibyte charsets whose bytes other East Asian decoders also accept (no guessing)
_CJK = frozenset({"gb18030", "cp949", "cp950"})
#: text codecs that interpret escapes instead of decoding a charset
_REFUSED = frozenset({"unicode_escape", "raw_unicode_escape", "punycode", "idna", "undefined"})


def normalize_label(label: str | None) -> str:
    if not label:
        return ""
    label = label.strip().strip("\"'").lower()
    return label.split("*", 1)[0]  # RFC 2231 language suffix in encoded words: utf-8*ja


def decode_bytes(data: bytes, label: str | None) -> tuple[str, bool]:
    """``data`` as text under the declared ``label``; (text, decoded cleanly)."""
    name = normalize_label(label)
    if name in _ASCII or not name:
        if data.isascii():
            if b"\x1b$" in data or b"\x1b(" in data:
                return _try(data, (decode_jis,))  # raw ISO-2022-JP, unlabelled
            return data.decode("ascii"), True
        return guess(data)
    if name in _UTF8:
        return _try(data, (_utf8, decode_cp932, decode_euc))
    if name in _SJIS:
        return _try(data, (decode_cp932, _utf8))
    if name in _EUC:
        return _try(data, (decode_euc, decode_cp932, _utf8))
    if name in _JIS:
        fallbacks = (decode_jis, _codec("iso2022_jp_2004"), _codec("iso2022_jp_2"),
                     decode_cp932, _utf8)
        return _try(data, fallbacks)
    try:
        info = codecs.lookup(_LABELS.get(name, name))
    except (LookupError, UnicodeError, ValueError):
        # UnicodeError: a label with raw 8-bit bytes in it; ValueError: one with a NUL
        return guess(data)
    if info.name in _REFUSED or not getattr(info, "_is_text_encoding", True):
        return guess(data)
    codec = _SUPERSET.get(info.name, info.name)
    try:
        return data.decode(codec), True
    except UnicodeDecodeError:
        pass
    if codec == "cp1252":  # the five bytes cp1252 leaves out: as ISO-8859-1 (WHATWG)
        return data.decode("latin-1"), True
    if codec in _CJK:  # Hong Kong's Big5, mislabelled UTF-8, else U+FFFD
        alternatives = (_codec("big5hkscs"), _utf8) if codec == "cp950" else (_utf8,)
        for fn in alternatives:
            try:
                return fn(data, "strict"), False
            except UnicodeDecodeError:
                continue
        return data.decode(codec, "replace"), False
    text, _ = guess(data)
    return text, False


def multibyte(label: str) -> bool:
    """Whether ``label`` names UTF-8 or a multibyte East Asian charset: one whose
    decoder refuses most text written in another (single-byte charsets accept any
    bytes, so they say nothing about raw 8-bit text elsewhere in a message)."""
    name = normalize_label(label)
    if name in _UTF8 or name in _SJIS or name in _EUC or name in _JIS:
        return True
    try:
        codec = codecs.lookup(_LABELS.get(name, name)).name
    except (LookupError, UnicodeError, ValueError):
        return False
    return _SUPERSET.get(codec, codec) in _CJK or codec in {"gb18030", "big5hkscs"}


def guess(data: bytes) -> tuple[str, bool]:
    """Undeclared or wrongly declared bytes: UTF-8, ISO-2022-JP, CP932, EUC-JP, then Latin-1."""
    if data.isascii() and b"\x1b" not in data:
        return data.decode("ascii"), True
    order = (_utf8, decode_jis, decode_cp932, decode_euc) if b"\x1b$" in data else (
        _utf8, decode_cp932, decode_euc)
    for fn in order:
        try:
            return fn(data, "strict"), True
        except UnicodeDecodeError:
            continue
    return data.decode("cp1252", "replace"), False


def _try(data: bytes, decoders: tuple[_Decoder, ...]) -> tuple[str, bool]:
    for fn in decoders:
        try:
            return fn(data, "strict"), True
        except UnicodeDecodeError:
            continue
    return decoders[0](data, "replace"), False


def _utf8(data: bytes, errors: str) -> str:
    return data.decode("utf-8", errors).removeprefix("\ufeff")


def _codec(name: str) -> _Decoder:
    def decode(data: bytes, errors: str) -> str:
        return data.decode(name, errors)
    return decode


def decode_cp932(data: bytes, errors: str = "strict") -> str:
    return data.decode("cp932", errors)


def _jis_to_sjis(j1: int, j2: int) -> bytes:
    """A JIS X 0208 code point (0x21..0x7E each) as Shift_JIS bytes (CP932 extends rows)."""
    s1 = ((j1 + 1) >> 1) + (0x70 if j1 <= 0x5E else 0xB0)
    s2 = j2 + (0x1F if j1 & 1 else 0x7E)
    if j1 & 1 and s2 >= 0x7F:
        s2 += 1
    return bytes((s1, s2))


_ESCAPES = {b"\x1b(B": "ascii", b"\x1b(J": "ascii", b"\x1b(I": "kana", b"\x1b$@": "jis",
            b"\x1b$B": "jis", b"\x1b$(D": "jis0212", b"\x1b$(B": "jis", b"\x1b&@\x1b$B": "jis"}
_ESC_RE = re.compile(rb"\x1b(?:&@\x1b\$B|\$\(D|\$\(B|\$@|\$B|\(B|\(J|\(I)")


def decode_jis(data: bytes, errors: str = "strict") -> str:
    """ISO-2022-JP (and CP5022x) with JIS X 0208 read through CP932 (WHATWG)."""
    out: list[str] = []
    mode = "ascii"
    pos = 0
    shifted = False  # SO/SI half-width katakana (CP50222)
    while pos < len(data):
        if data[pos] == 0x1B:
            m = _ESC_RE.match(data, pos)
            if not m:
                if errors == "strict":
                    raise UnicodeDecodeError("iso-2022-jp", data, pos, pos + 1,
                                             "unsupported escape sequence")
                out.append("\ufffd")
                pos += 1
                continue
            mode = _ESCAPES[m.group(0)]
            pos = m.end()
            continue
        byte = data[pos]
        if byte in (0x0E, 0x0F):
            shifted = byte == 0x0E
            pos += 1
            continue
        if byte in (0x0A, 0x0D) and mode != "ascii":
            mode = "ascii"  # a line end resets to ASCII in lenient decoders
        if (shifted or mode == "kana") and 0x21 <= byte <= 0x5F:
            out.append(bytes((byte + 0x80,)).decode("cp932"))
            pos += 1
            continue
        if mode in ("jis", "jis0212") and 0x21 <= byte <= 0x7E:
            if pos + 1 >= len(data) or not 0x21 <= data[pos + 1] <= 0x7E:
                if errors == "strict":
                    raise UnicodeDecodeError("iso-2022-jp", data, pos, pos + 1,
                                             "truncated double-byte character")
                out.append("\ufffd")
                pos += 1
                continue
            j1, j2 = byte, data[pos + 1]
            if mode == "jis":
                raw = _jis_to_sjis(j1, j2)
                try:
                    out.append(raw.decode("cp932"))
                except UnicodeDecodeError:
                    if errors == "strict":
                        raise UnicodeDecodeError("iso-2022-jp", data, pos, pos + 2,
                                                 "undefined JIS X 0208 code point") from None
                    out.append("\ufffd")
            else:
                out.append(bytes((0x8F, j1 | 0x80, j2 | 0x80)).decode("euc_jp", errors))
            pos += 2
            continue
        if byte >= 0x80:
            if errors == "strict":
                raise UnicodeDecodeError("iso-2022-jp", data, pos, pos + 1, "8-bit byte")
            out.append("\ufffd")
        else:
            out.append(chr(byte))
        pos += 1
    return "".join(out)


def decode_euc(data: bytes, errors: str = "strict") -> str:
    """EUC-JP with JIS X 0208 read through CP932 (WHATWG); JIS X 0212 via 0x8F."""
    out: list[str] = []
    pos = 0
    size = len(data)
    while pos < size:
        byte = data[pos]
        if byte < 0x80:
            out.append(chr(byte))
            pos += 1
            continue
        try:
            if byte == 0x8E and pos + 1 < size and 0xA1 <= data[pos + 1] <= 0xDF:
                out.append(data[pos + 1:pos + 2].decode("cp932"))
                pos += 2
                continue
            if byte == 0x8F and pos + 2 < size:
                out.append(data[pos:pos + 3].decode("euc_jp"))
                pos += 3
                continue
            if 0xA1 <= byte <= 0xFE and pos + 1 < size and 0xA1 <= data[pos + 1] <= 0xFE:
                out.append(_jis_to_sjis(byte - 0x80, data[pos + 1] - 0x80).decode("cp932"))
                pos += 2
                continue
            raise UnicodeDecodeError("euc-jp", data, pos, pos + 1, "invalid byte")
        except UnicodeDecodeError:
            if errors == "strict":
                raise UnicodeDecodeError("euc-jp", data, pos, pos + 1, "invalid sequence") from None
            out.append("\ufffd")
            pos += 1
    return "".join(out)

"""What an RTF field instruction or embedded object is (helpers of :mod:`gateway.stages.rtf`).

Field instructions are read twice: once the way Word reads them (text of
``{\\*\\…}`` groups ignored, ``\\uN`` fallback characters skipped) and once raw
(every text byte, fallbacks kept); a finding in either reading counts, so a
reader quirk we got wrong can't hide a DDE field. Objects are classified from
the OLE1 header of ``\\objdata`` (the class Word instantiates), the CLSID of an
embedded compound file, the ``\\*\\objclass`` text and the link flags.
Details never carry payload bytes: class names and file names are clipped to
printable ASCII.
"""

from __future__ import annotations

import re
import struct
from dataclasses import dataclass

from gateway.stages.links import describe_target, hyperlink_target, is_web, shown_address

_CAP = 4096  # characters of an instruction kept after leading blanks

_FIELD_KIND = {"DDE": "rtf.dde", "DDEAUTO": "rtf.dde",
               "INCLUDEPICTURE": "rtf.include_field", "INCLUDETEXT": "rtf.include_field",
               "INCLUDE": "rtf.include_field", "IMPORT": "rtf.include_field",
               "LINK": "rtf.include_field", "DATABASE": "rtf.include_field",
               "RD": "rtf.include_field", "HYPERLINK": "rtf.hyperlink",
               "MACROBUTTON": "rtf.macro_field"}
_RANK = {"rtf.dde": 4, "rtf.obfuscated_field": 4, "rtf.include_field": 3,
         "rtf.macro_field": 2, "rtf.hyperlink": 1}
_BLANKS = " \t\r\n\"'\u00a0"
_KEYWORD = re.compile(r"([A-Za-z]+)(.?)", re.S)
_ARG = re.compile(r'\s*(?:"([^"]*)"?|(\S+))')
_PRINTABLE = re.compile(r"[^\x20-\x7e]+")


class FieldText:
    """The text of one ``\\fldinst``, in the Word reading (0) and the raw reading (1)."""

    __slots__ = ("_texts", "tainted")

    def __init__(self) -> None:
        self._texts = ["", ""]
        self.tainted = False  # holds something that is cut (object, data store…)

    def word(self, text: str) -> None:
        """Text only the Word reading gets (a \\uN character; the raw reading keeps its
        fallback instead)."""
        self._add(0, text)

    def add(self, text: str, word: bool, skip: int) -> None:
        """Raw reading gets all of ``text``; the Word reading (if ``word``) skips the
        first ``skip`` characters (\\uN fallbacks)."""
        if text:
            self._add(1, text)
            if word:
                self._add(0, text[skip:])

    def nested(self) -> None:
        """A nested field stands here (its result is computed when Word updates it)."""
        self._add(0, "\x00")
        self._add(1, "\x00")

    def readings(self) -> tuple[str, str]:
        return self._texts[0], self._texts[1]

    def _add(self, which: int, text: str) -> None:
        current = self._texts[which]
        if len(current) >= _CAP:
            return
        if not current:  # leading blanks are skipped by Word; they never fill the buffer
            text = text.lstrip(_BLANKS)
        if text:
            self._texts[which] = (current + text)[:_CAP]


@dataclass(frozen=True, slots=True)
class FieldVerdict:
    kind: str
    detail: str
    #: a hyperlink the policy may keep: to a web or mail address (gateway/stages/links.py)
    keepable: bool = False


def classify_field(insts: list[FieldText]) -> FieldVerdict | None:
    """The most dangerous reading of a field's instruction(s), or None if harmless."""
    texts: list[str] = []
    for reading in (0, 1):
        parts = [inst.readings()[reading] for inst in insts]
        texts.extend(parts)
        if len(parts) > 1:
            texts.append("".join(parts))
    best: FieldVerdict | None = None
    for text in texts:
        verdict = _classify(text)
        if verdict and (best is None or _rank(verdict) > _rank(best)):
            best = verdict
    if any(inst.tainted for inst in insts) and (best is None or _RANK[best.kind] < 4):
        best = FieldVerdict("rtf.obfuscated_field", "field instruction holds embedded content")
    return best


def _rank(v: FieldVerdict) -> tuple[int, bool]:
    return _RANK[v.kind], not v.keepable  # of two readings, the link that may not stay


def _classify(text: str) -> FieldVerdict | None:
    text = text.lstrip(_BLANKS)
    if text.startswith("\x00"):
        return FieldVerdict("rtf.obfuscated_field", "field type computed by a nested field")
    m = _KEYWORD.match(text)
    if m is None:
        return None
    if m.group(2) == "\x00":
        return FieldVerdict("rtf.obfuscated_field", "field type completed by a nested field")
    if m.group(2) and (m.group(2).isalnum() or m.group(2) == "_"):
        return None
    keyword = m.group(1).upper()
    kind = _FIELD_KIND.get(keyword)
    if kind is None:
        return None
    if kind == "rtf.include_field":
        return FieldVerdict(kind, f"{keyword} field ({_target(text[m.end(1):])})")
    if kind == "rtf.hyperlink":
        return _hyperlink(text)
    return FieldVerdict(kind, f"{keyword} field")


def _hyperlink(text: str) -> FieldVerdict | None:
    """None for a jump inside the document (HYPERLINK \\l "bookmark", TOC entries); a
    link the policy may keep when it opens a web or mail address; else one that goes
    whatever the policy says (javascript:, file:, a share or path, or a target a
    nested field computes)."""
    if "\x00" in text:
        return FieldVerdict("rtf.hyperlink", "HYPERLINK field whose address a nested field "
                            "computes")
    target = hyperlink_target(text)
    if target is None:
        return None
    if is_web(target):
        return FieldVerdict("rtf.hyperlink", f"HYPERLINK field to {shown_address(target)}",
                            keepable=True)
    return FieldVerdict("rtf.hyperlink", f"HYPERLINK field to a {describe_target(target)}")


def _target(rest: str) -> str:
    """What the first argument of an INCLUDE field names (the rule of every format)."""
    m = _ARG.match(rest)
    arg = (m.group(1) if m and m.group(1) is not None else (m.group(2) if m else "")) or ""
    return describe_target(arg)


# ------------------------------------------------------------------------- objects

_HEX_CAP = 4 * 1024 * 1024   # hex digits of one \\objdata kept to classify the object
_NONHEX = re.compile(rb"[^0-9A-Fa-f]+")


class ObjectData:
    """Object data as Word reads it: hex digits, anything else ignored, \\bin bytes added."""

    __slots__ = ("count", "digits")

    def __init__(self) -> None:
        self.digits = bytearray()
        self.count = 0

    def text(self, chunk: bytes) -> None:
        digits = _NONHEX.sub(b"", chunk)
        self.count += len(digits)
        if len(self.digits) < _HEX_CAP:
            self.digits += digits[:_HEX_CAP - len(self.digits)]

    def binary(self, raw: bytes) -> None:
        room = max(_HEX_CAP - len(self.digits), 0)
        self.digits += raw[:room // 2 + 1].hex().encode()[:room]
        self.count += 2 * len(raw)

    def quote(self) -> None:
        # Word drops a pending odd hex digit when it meets \' (rtfobj emulates this)
        if self.count & 1:
            self.count -= 1
            del self.digits[self.count:]

    def decoded(self) -> bytes:
        return bytes.fromhex(self.digits[:len(self.digits) & ~1].decode())


_CFB = bytes.fromhex("D0CF11E0A1B11AE1")
_CLSID_CLASS = {"0002CE02-0000-0000-C000-000000000046": "Equation.3",
                "0002CE03-0000-0000-C000-000000000046": "Equation.DSMT",
                "00021700-0000-0000-C000-000000000046": "Equation.2",
                "0003000B-0000-0000-C000-000000000046": "Equation",
                "0004A6B0-0000-0000-C000-000000000046": "Equation.2",
                "00000300-0000-0000-C000-000000000046": "OLE2Link",
                "00020C01-0000-0000-C000-000000000046": "Package",
                "0003000C-0000-0000-C000-000000000046": "Package",
                "F20DA720-C02F-11CE-927B-0800095AE340": "Package"}


@dataclass(frozen=True, slots=True)
class ObjectInfo:
    kind: str
    detail: str


def classify_object(data: bytes, size: int, classes: list[str],
                    flags: set[bytes]) -> ObjectInfo:
    """Kind and detail of an embedded object from its decoded data and RTF attributes."""
    names: list[str] = []
    notes: list[str] = []
    linked = bool(flags & {b"objautlink", b"objlink"})
    header = _ole1(data)
    if header is not None:
        fmt, cls, native = header
        if cls:
            names.append(cls)
        if fmt == 1:
            linked = True
            notes.append("linked")
        if cls.lower() == "package" and native:
            filename = _package_name(native)
            if filename:
                notes.append(f"file {filename}")
        clsid = _cfb_clsid(native)
        if clsid:
            names.append(_CLSID_CLASS.get(clsid, ""))
            notes.append(f"CLSID {clsid}")
    declared = _clip("".join(classes).strip(" ;\t\r\n\x00"))
    if declared:
        names.append(declared)
    lowered = [n.lower() for n in names if n]
    if any(n.startswith("equation") for n in lowered):
        kind = "rtf.equation"
    elif "package" in lowered:
        kind = "rtf.package"
    elif linked or "ole2link" in lowered:
        kind = "rtf.ole_link"
    else:
        kind = "rtf.object"
    cls_name = next((n for n in names if n), "unknown class")
    flag_text = ", ".join("\\" + f.decode() for f in sorted(flags))
    parts = [f"class {cls_name}", f"{size} bytes of object data", *notes]
    if flag_text:
        parts.append(flag_text)
    return ObjectInfo(kind, "; ".join(parts))


def _ole1(data: bytes) -> tuple[int, str, bytes] | None:
    """(format id, class name, native data) of an OLE1 ObjectHeader, if data is one."""
    try:
        _version, fmt = struct.unpack_from("<II", data, 0)
        if fmt not in (1, 2):
            return None
        cls, pos = _lpstr(data, 8)
        _topic, pos = _lpstr(data, pos)
        _item, pos = _lpstr(data, pos)
        native = b""
        if fmt == 2:
            (count,) = struct.unpack_from("<I", data, pos)
            native = data[pos + 4:pos + 4 + count]
    except struct.error:
        return None
    return fmt, cls, native


def _lpstr(data: bytes, pos: int) -> tuple[str, int]:
    (count,) = struct.unpack_from("<I", data, pos)
    raw = data[pos + 4:pos + 4 + count]
    if len(raw) < count:
        raise struct.error("truncated")
    return _clip(raw.split(b"\x00", 1)[0].decode("latin-1")), pos + 4 + count


def _package_name(native: bytes) -> str:
    # OLE Package native data: u16 type, then the file name, NUL-terminated
    return _clip(native[2:2 + 512].split(b"\x00", 1)[0].decode("latin-1"))


def _cfb_clsid(native: bytes) -> str:
    """CLSID of the root storage of a compound file (first directory sector only)."""
    if not native.startswith(_CFB) or len(native) < 512:
        return ""
    shift, = struct.unpack_from("<H", native, 0x1E)
    first_dir, = struct.unpack_from("<I", native, 0x30)
    if not 7 <= shift <= 16 or first_dir >= 0xFFFFFFFA:
        return ""
    offset = (first_dir + 1) * (1 << shift) + 0x50
    raw = native[offset:offset + 16]
    if len(raw) < 16:
        return ""
    d1, d2, d3 = struct.unpack_from("<IHH", raw, 0)
    return f"{d1:08X}-{d2:04X}-{d3:04X}-{raw[8:10].hex().upper()}-{raw[10:16].hex().upper()}"


def _clip(text: str, limit: int = 60) -> str:
    return _PRINTABLE.sub("?", text)[:limit]

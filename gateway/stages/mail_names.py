"""Attachment names: found however they were encoded, cleaned of every display trick.

A name comes from Content-Disposition ``filename`` or Content-Type ``name``, as
plain text, raw 8-bit bytes (Japanese mailers write raw Shift_JIS), RFC 2231
(``filename*=utf-8''%E8%A6%8B...``, with continuations) or an RFC 2047 encoded
word inside the quoted string (not allowed, written by Outlook and Gmail and
read by every client, so attackers use it too). Two different names for one
part (``filename="a.pdf"`` and ``name="a.exe"``) are ambiguous.

Cleaning: bidirectional overrides (RTLO ``\u202e`` turns ``report\u202etxt.exe``
into "reportexe.txt" on screen), zero-width and control characters, path
parts, leading dots, trailing dots and spaces (Windows drops them), runs of
whitespace, Windows device names, overlong names; a deceptive double extension
(``invoice.pdf.exe``, ``photo.jpg   .html``) loses its inner dot. The real type
still decides the final extension: the pipeline renames a file whose content
differs from its name.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from email.message import Message

from gateway.pipeline.sniff import declared_family
from gateway.stages.mail_charset import decode_bytes
from gateway.stages.mail_headers import decode_value, raw_text, unfold

MAX_LEN = 120
_INVISIBLE = re.compile("[\u200b-\u200f\u202a-\u202e\u2060-\u2069\u061c\ufeff\u180e\u00ad]")
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")
_RESERVED = re.compile(r'[<>"|?*]')
#: Unicode categories with no glyph: control, format, surrogate, private use,
#: unassigned, line and paragraph separators
_UNSHOWN = frozenset({"Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp"})
_DEVICES = frozenset({"con", "prn", "aux", "nul", *(f"com{i}" for i in range(10)),
                      *(f"lpt{i}" for i in range(10))})


@dataclass(frozen=True, slots=True)
class RawName:
    name: str | None       # decoded, not yet cleaned
    conflict: str = ""     # why the declared names are ambiguous ("" when they are not)


def part_name(part: Message) -> RawName:
    """The declared name of a part (filename preferred over name), decoded."""
    found: list[str] = []
    for header, param in (("content-disposition", "filename"), ("content-type", "name")):
        found.extend(_params(part, header, param))
    names = [n for n in found if n.strip()]
    if not names:
        return RawName(None)
    distinct = list(dict.fromkeys(names))
    conflict = ""
    if len(distinct) > 1:
        conflict = "the part declares different names: " + ", ".join(
            repr(n[:60]) for n in distinct[:3])
    return RawName(names[0], conflict)


def _params(part: Message, header: str, wanted: str) -> list[str]:
    out: list[str] = []
    for key, raw in part.raw_items():
        if key.strip().lower() != header:
            continue
        # raw 8-bit (surrogates) decoded first: compat32 would turn it into "?"
        view = Message()
        view[header] = raw_text(unfold(str(raw)))
        try:
            params = view.get_params(header=header, unquote=False) or []
        except (ValueError, IndexError, TypeError, LookupError):
            continue
        for pkey, pvalue in params[1:]:
            if str(pkey).strip().lower().split("*", 1)[0] != wanted:
                continue
            value: object = pvalue  # compat32 gives a tuple for RFC 2231 values
            if isinstance(value, tuple):  # RFC 2231: (charset, language, %-decoded latin-1)
                charset, _lang, text = value
                text = _unquote(str(text))
                data = text.encode("latin-1") if _latin(text) else text.encode("utf-8")
                out.append(decode_bytes(data, charset or "utf-8")[0])
            else:
                out.append(decode_value(_unquote(str(value)))[0])
    return out


def _unquote(text: str) -> str:
    if len(text) >= 2 and text[0] == text[-1] == '"':
        return re.sub(r"\\(.)", r"\1", text[1:-1])
    return text


def _latin(text: str) -> bool:
    return all(ord(ch) < 256 for ch in text)


def clean_name(raw: str) -> tuple[str, list[str]]:
    """A safe display and file name; (name, what was changed)."""
    changes: list[str] = []
    name = unicodedata.normalize("NFC", raw)
    if _INVISIBLE.search(name):
        changes.append("bidirectional or invisible characters removed")
        name = _INVISIBLE.sub("", name)
    if _CONTROL.search(name):
        changes.append("control characters removed")
        name = _CONTROL.sub("", name)
    if "/" in name or "\\" in name or ":" in name:
        changes.append("path removed")
        name = re.split(r"[/\\:]", name)[-1]
    if _RESERVED.search(name):
        changes.append("characters Windows does not allow replaced")
        name = _RESERVED.sub("_", name)
    collapsed = re.sub(r"\s+", " ", name).strip(" .")
    if collapsed != name:
        if collapsed.strip() != name.strip():
            changes.append("whitespace or dots at the ends removed")
        name = collapsed
    name = re.sub(r"\s*\.\s*", ".", name)
    name, double = _double_extension(name)
    if double:
        changes.append(f"double extension {double}")
    if _device(name):
        name = "_" + name
        changes.append("device name")
    if len(name) > MAX_LEN:
        stem, dot, ext = name.rpartition(".")
        ext = ext[:16] if dot and stem else ""
        name = (stem if dot and stem else name)[: MAX_LEN - len(ext) - 1] + (
            "." + ext if ext else "")
        changes.append("name shortened")
    return name or "attachment", changes


def windows_part(part: str) -> str:
    """One component of a path as Windows can create it ("" when nothing is left).

    Invisible, bidirectional, control and other characters without a glyph go (a
    full-width space stays inside a name, as Japanese names have it); the characters Windows does
    not allow in names (``<>:"|?*``: a colon would also name an NTFS alternate data
    stream) become ``_``; trailing dots and spaces, which Windows drops when it
    creates the file (``run.bat.`` becomes ``run.bat``), and surrounding whitespace
    go; a device name (``CON``, ``NUL.txt``: no file can be made under it) gets a
    ``_`` in front.
    """
    part = "".join(ch for ch in _INVISIBLE.sub("", part)
                   if unicodedata.category(ch) not in _UNSHOWN)
    part = re.sub(r'[<>:"|?*]', "_", part).strip().rstrip(" .").strip()
    if _device(part):
        part = "_" + part
    return part


def _device(name: str) -> bool:
    """A Windows device name (``CON``, ``nul.txt``, ``COM1 .log``): no file can have it."""
    return name.split(".", 1)[0].strip().lower() in _DEVICES


def _double_extension(name: str) -> tuple[str, str]:
    """``a.pdf.exe`` -> ``a_pdf.exe``: an inner known extension of another family."""
    parts = name.split(".")
    if len(parts) < 3 or not parts[0]:
        return name, ""
    last, inner = parts[-1].lower(), parts[-2].lower()
    last_family = declared_family("x." + last)
    inner_family = declared_family("x." + inner)
    if inner_family is None or last_family == inner_family:
        return name, ""
    if last_family is None:
        return name, ""
    fixed = ".".join(parts[:-2]) + "_" + parts[-2] + "." + parts[-1]
    return fixed, f".{inner}.{last}"


def unique(name: str, taken: set[str]) -> str:
    """``name``, or ``name (2)`` … when another attachment already has it."""
    candidate = name
    stem, dot, ext = name.rpartition(".")
    if not dot or not stem:
        stem, ext = name, ""
    n = 1
    while candidate.lower() in taken:
        n += 1
        candidate = f"{stem} ({n})" + (f".{ext}" if ext else "")
    taken.add(candidate.lower())
    return candidate

"""Cutting the DTD out of an XML document so the document itself can be kept.

A DTD is where XML attacks live: an external entity (XXE) makes the reader fetch a
file or a URL, nested internal entities expand a few bytes into gigabytes ("billion
laughs"). Office never writes a DTD, and SVG carries one mostly by habit (Adobe
Illustrator declares its namespace URIs as entities). Refusing such a document costs
the recipient the whole file for a few declarations, so :func:`scrub` removes the
``<!DOCTYPE …>`` and resolves every entity reference itself, by text substitution, so
that no XML parser ever sees an entity:

* a reference to an internal entity whose value is plain text (no markup, no
  reference, at most ``MAX_VALUE`` characters) is replaced by that value, escaped;
* any other reference (an external entity, a value holding markup or further
  references, an undeclared name) is removed;
* references inside comments, CDATA sections and processing instructions are text
  and stay as they are.

The DTD is read by expat only up to the root element, with parameter entities never
fetched, so nothing is expanded or loaded while finding it. The result must still be
parsed by the caller's (defused) parser; ``scrub`` returns None for anything it does
not handle (a prolog that is not well-formed, UTF-16, growth beyond ``MAX_GROWTH``),
and the caller refuses the document as before. A DTD that declares no entity is not
an attack and is left alone: it is None too (an XHTML ``<!DOCTYPE html>`` stays for
the HTML stage; the OOXML parser still refuses one in an Office part).
"""

from __future__ import annotations

import html.entities
import pyexpat
import re
from dataclasses import dataclass

#: longest entity value substituted; longer ones are removed like external ones
MAX_VALUE = 1024
#: substitution may add at most this many bytes (plus the input's own size)
MAX_GROWTH = 64 * 1024
_PREDEFINED = frozenset({b"lt", b"gt", b"amp", b"quot", b"apos"})
_BOM = b"\xef\xbb\xbf"
_DOCTYPE = b"<!DOCTYPE"
#: where an entity reference, a comment, a CDATA section or a PI starts; the last three
#: are text up to their end (a reference in them is not one)
_NEXT = re.compile(rb"&|<!--|<!\[CDATA\[|<\?")
_CLOSERS = {b"<!--": b"-->", b"<![CDATA[": b"]]>", b"<?": b"?>"}
_REFERENCE = re.compile(rb"&([^\s&;<>\"'#][^\s&;<>\"']{0,200});")
_EXTERNAL_ID = re.compile(rb"\s(SYSTEM|PUBLIC)\s")
_LITERAL = re.compile(rb"\"[^\"]*\"|'[^']*'")
_STANDARD_DTD = re.compile(r"^https?://www\.w3\.org/(TR|Graphics|Math)/[\w./-]+\.dtd$")
_ENCODING = re.compile(rb"""^<\?xml[^>]*?\sencoding\s*=\s*["']([A-Za-z0-9._-]+)["']""")


@dataclass(frozen=True, slots=True)
class Scrubbed:
    data: bytes
    reason: str        # what the DTD declared, for the report
    replaced: int      # references replaced by their plain-text value
    removed: int       # references removed

    @property
    def detail(self) -> str:
        parts = [self.reason]
        if self.replaced:
            parts.append(f"{self.replaced} entity reference(s) replaced by their text")
        if self.removed:
            parts.append(f"{self.removed} entity reference(s) removed")
        return "; ".join(parts)


def declares_entities(data: bytes) -> bool:
    """Cheap test: an XML document (it starts with markup) with a DTD declaring entities."""
    start = len(_BOM) if data[:len(_BOM)] == _BOM else 0
    head = data[start:start + 64].lstrip()
    return head[:1] == b"<" and data.find(_DOCTYPE) >= 0 and data.find(b"<!ENTITY") >= 0


class _Root(Exception):
    """Raised from expat's handler at the root element: the prolog is all we read."""


def scrub(data: bytes) -> Scrubbed | None:
    """``data`` without its DTD and with every entity reference resolved (see module
    docstring); None when there is no DTD or the document is not handled here."""
    if b"\x00" in data[:4] or not declares_entities(data):
        return None
    found = _prolog(data)
    if found is None or not found[4]:
        return None  # a DTD without entities: not an attack (see the module docstring)
    return _substitute(data, *found)


def external_subset(data: bytes) -> Scrubbed | None:
    """``data`` without a DOCTYPE that declares no entity but names an external DTD
    (``SYSTEM "http://…"``, ``PUBLIC … "file:///…"``), which a validating parser
    fetches (out-of-band XXE); the W3C's own DTDs (XHTML, SVG, MathML) stay. References
    to the entities the HTML/XHTML DTDs define
    (``&nbsp;``) become their characters; any other goes. None when there is no such
    DOCTYPE or the prolog does not parse."""
    if b"\x00" in data[:4] or data.find(_DOCTYPE) < 0:
        return None
    found = _prolog(data)
    if found is None or found[4]:
        return None
    start, end, root = found[:3]
    subset = data.find(b"[", start, end)
    head = data[start:subset if subset >= 0 else end]
    if not _EXTERNAL_ID.search(head):
        return None
    literals = _LITERAL.findall(head)
    if literals and standard_dtd(literals[-1][1:-1].decode("ascii", "replace")):
        return None  # the W3C's own XHTML/SVG/MathML DTDs: what XHTML pages name
    return _substitute(data, start, end, root, _HTML_ENTITIES,
                       "names an external DTD (a validating parser fetches it)")


def no_doctype(data: bytes) -> bool:
    """Whether expat reads ``data`` up to its root element without meeting a DOCTYPE
    (``<!DOCTYPE`` and ``<!ENTITY`` inside a CDATA section or a comment are text);
    False when it cannot tell (the prolog does not parse)."""
    parser = pyexpat.ParserCreate()
    parser.SetParamEntityParsing(pyexpat.XML_PARAM_ENTITY_PARSING_NEVER)
    seen: list[str] = []

    def doctype(*_: object) -> None:
        seen.append("doctype")
        raise _Root

    def element(*_: object) -> None:
        raise _Root

    parser.StartDoctypeDeclHandler = doctype
    parser.StartElementHandler = element
    try:
        parser.Parse(data, True)
    except _Root:
        return not seen
    except (pyexpat.ExpatError, ValueError, UnicodeError, RecursionError, LookupError):
        return False
    return False


def attribute_defaults(data: bytes) -> Scrubbed | None:
    """``data`` without a DOCTYPE that declares no entity but gives attributes default
    values (``<!ATTLIST img onerror CDATA "alert(1)">``): a browser reading the
    document as XML puts them on every such element, so a script or a link hides in
    the DTD. References to the entities the HTML/XHTML DTDs define become their
    characters, any other goes. None when there is no such DOCTYPE or the prolog does
    not parse."""
    if b"\x00" in data[:4] or data.find(_DOCTYPE) < 0 or data.find(b"<!ATTLIST") < 0:
        return None
    found = _prolog(data)
    if found is None or found[4]:
        return None
    start, end, root = found[:3]
    defaults: list[str] = []
    parser = pyexpat.ParserCreate()
    parser.SetParamEntityParsing(pyexpat.XML_PARAM_ENTITY_PARSING_NEVER)

    def attlist(element: str, attribute: str, _type: str, default: str | None,
                _required: int) -> None:
        if default is not None:
            defaults.append(f"{element}/@{attribute}")

    parser.AttlistDeclHandler = attlist
    try:
        parser.Parse(data[:root], False)
    except (pyexpat.ExpatError, ValueError, UnicodeError, RecursionError, LookupError):
        return None
    if not defaults:
        return None
    shown = ", ".join(defaults[:3]) + (" …" if len(defaults) > 3 else "")
    return _substitute(data, start, end, root, _HTML_ENTITIES,
                       f"gives attributes default values ({shown}): a browser adds them "
                       "to the elements")


def standard_dtd(system_id: str) -> bool:
    """Whether a DOCTYPE's system identifier is one of the W3C's own DTDs."""
    return _STANDARD_DTD.match(system_id.strip()) is not None


def _substitute(data: bytes, start: int, end: int, root: int, entities: dict[bytes, bytes],
                why: str) -> Scrubbed | None:
    match = _ENCODING.match(data[len(_BOM):] if data.startswith(_BOM) else data)
    utf8 = match is None or match.group(1).lower() in (b"utf-8", b"utf8")
    out: list[bytes] = []
    replaced = removed = 0
    room = len(data) + MAX_GROWTH  # bytes substitution may still add
    pos = done = root
    while (m := _NEXT.search(data, pos)) is not None:
        opener = m.group(0)
        if opener != b"&":  # a comment, CDATA section or PI: text up to its end
            close = data.find(_CLOSERS[opener], m.end())
            if close < 0:
                return None
            pos = close + len(_CLOSERS[opener])
            continue
        ref = _REFERENCE.match(data, m.start())
        pos = m.end()
        if ref is None or ref.group(1) in _PREDEFINED:
            continue
        value = entities.get(ref.group(1))
        if value is None or not (utf8 or value.isascii()):
            value = b""
            removed += 1
        else:
            replaced += 1
            room -= len(value)
            if room < 0:
                return None  # expansion: refused
        out += (data[done:ref.start()], value)
        pos = done = ref.end()
    out.append(data[done:])
    body = b"".join(out)
    head = data[:start] + data[end:root]
    return Scrubbed(head + body, why, replaced, removed)


def without_doctype(data: bytes) -> bytes | None:
    """``data`` without a DOCTYPE that declares no entity (OpenOffice.org wrote one in
    every ODF manifest), for a parser that refuses DTDs; None when there is none or it
    declares entities (that is ``scrub``'s work) or the prolog does not parse."""
    if b"\x00" in data[:4] or data.find(_DOCTYPE) < 0:
        return None
    found = _prolog(data)
    if found is None or found[4]:
        return None
    start, end = found[0], found[1]
    return data[:start] + data[end:]


def _prolog(data: bytes) -> tuple[int, int, int, dict[bytes, bytes], str] | None:
    """(start and end of the DOCTYPE, start of the root element, the substitutable
    entities as escaped bytes, what the DTD declares: "" for no entity) or None when
    expat cannot read the prolog."""
    parser = pyexpat.ParserCreate()
    parser.SetParamEntityParsing(pyexpat.XML_PARAM_ENTITY_PARSING_NEVER)
    marks: dict[str, int] = {}
    entities: dict[bytes, bytes] = {}
    declared: set[str] = set()
    seen: set[str] = set()  # "external", "nested", "internal"

    def doctype_start(*_: object) -> None:
        marks.setdefault("doctype", parser.CurrentByteIndex)

    def doctype_end() -> None:
        marks.setdefault("doctype_end", parser.CurrentByteIndex)

    def entity(name: str, is_parameter: int, value: str | None, *_: object) -> None:
        seen.add("external" if value is None else "nested" if "&" in value or "%" in value
                 else "internal")
        if is_parameter or name in declared:
            return  # parameter entities are never used; the first declaration binds
        declared.add(name)
        if value is not None and len(value) <= MAX_VALUE and not set(value) & {"<", "&"}:
            entities[name.encode()] = _escape(value)

    def element(*_: object) -> None:
        marks["root"] = parser.CurrentByteIndex
        raise _Root

    parser.StartDoctypeDeclHandler = doctype_start
    parser.EndDoctypeDeclHandler = doctype_end
    parser.EntityDeclHandler = entity
    parser.StartElementHandler = element
    try:
        parser.Parse(data, True)
    except _Root:
        pass
    except (pyexpat.ExpatError, ValueError, UnicodeError, RecursionError, LookupError):
        # LookupError: a DOCTYPE beside an encoding Python does not know (fuzzing)
        return _unreadable(data)
    if not {"doctype", "doctype_end", "root"} <= marks.keys():
        return None
    start = data.rfind(_DOCTYPE, 0, marks["doctype"] + 1)
    close = data.find(b">", marks["doctype_end"])
    if start < 0 or close < 0 or not start < close < marks["root"]:
        return None
    if not seen:
        return start, close + 1, marks["root"], entities, ""
    why = ("declares an external XML entity (XXE: reads files or URLs)" if "external" in seen
           else "declares nested XML entities (entity expansion, 'billion laughs')"
           if "nested" in seen else "declares XML entities")
    return start, close + 1, marks["root"], entities, why


_SKIP = re.compile(rb"\s+|<!--.*?-->|<\?.*?\?>", re.S)


def _unreadable(data: bytes) -> tuple[int, int, int, dict[bytes, bytes], str] | None:
    """The DOCTYPE of a prolog expat cannot read (``<!ELEMENT data (#ANY)>`` in
    PayloadsAllTheThings' XXE files), found by its brackets and quotes: no entity is
    substituted (every reference goes). None when it declares no entity or its end or
    the root element is not found."""
    span = doctype_span(data)
    if span is None or b"<!ENTITY" not in data[span[0]:span[1]]:
        return None
    return (*span, {}, "declares XML entities in a DTD that does not parse (XXE)")


def doctype_span(data: bytes) -> tuple[int, int, int] | None:
    """Where the DOCTYPE starts and ends and the root element starts, found by brackets,
    quotes and comments only (for prologs no parser reads); None when not found."""
    pos = len(_BOM) if data.startswith(_BOM) else 0
    while (m := _SKIP.match(data, pos)) is not None:  # declaration, comments, PIs
        pos = m.end()
    if not data.startswith(_DOCTYPE, pos):
        return None
    start, i, depth, quote = pos, pos + len(_DOCTYPE), 0, 0
    while i < len(data):
        c = data[i]
        if quote:
            quote = 0 if c == quote else quote
        elif c in b"\"'":
            quote = c
        elif data.startswith(b"<!--", i):
            i = data.find(b"-->", i)
            if i < 0:
                return None
            i += 2
        elif c == ord("["):
            depth += 1
        elif c == ord("]"):
            depth -= 1
        elif c == ord(">") and depth <= 0:
            break
        i += 1
    else:
        return None
    end = pos = i + 1
    while (m := _SKIP.match(data, pos)) is not None:
        pos = m.end()
    if not data.startswith(b"<", pos) or data.startswith(b"<!", pos):
        return None
    return start, end, pos


def _escape(value: str) -> bytes:
    """An entity's value as it may stand in content or in a quoted attribute value."""
    return (value.replace(">", "&gt;").replace('"', "&quot;").replace("'", "&apos;")
            .encode("utf-8"))


#: the entities of the HTML 4 / XHTML 1.0 DTDs (&nbsp; …), as escaped text
_HTML_ENTITIES = {name.encode(): _escape(chr(code))
                  for name, code in html.entities.name2codepoint.items()}


def html_entity(name: str) -> str | None:
    """The character an HTML 4 / XHTML 1.0 DTD defines for ``name`` (``nbsp``)."""
    code = html.entities.name2codepoint.get(name)
    return chr(code) if code is not None else None

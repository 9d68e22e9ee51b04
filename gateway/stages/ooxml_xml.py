"""XML for the OOXML stage: defused parsing that keeps namespace prefixes, and writing back.

Every XML part Sekisho reads goes through :func:`parse` (defusedxml, DTDs refused).
ElementTree forgets where namespaces were declared and renames prefixes on output
(``ns0:``), which breaks ``mc:Ignorable="w14 wp14"`` and makes Word refuse the file.
So the parser records each element's own ``xmlns`` declarations and :func:`serialize`
writes them back in place, with the original prefixes.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from xml.etree.ElementTree import Element

import defusedxml.ElementTree as DET
from defusedxml import DefusedXmlException, DTDForbidden, EntitiesForbidden

from gateway.errors import Malformed
from gateway.pipeline import xml_wide

# ------------------------------------------------------------------------- namespaces

R_NS = frozenset({"http://schemas.openxmlformats.org/officeDocument/2006/relationships",
                  "http://purl.oclc.org/ooxml/officeDocument/relationships"})
R_TRANSITIONAL = "http://schemas.openxmlformats.org/officeDocument/2006/relationships"
PKG_RELS_NS = "http://schemas.openxmlformats.org/package/2006/relationships"
CT_NS = "http://schemas.openxmlformats.org/package/2006/content-types"
MC_NS = "http://schemas.openxmlformats.org/markup-compatibility/2006"
O_NS = "urn:schemas-microsoft-com:office:office"
V_NS = "urn:schemas-microsoft-com:vml"
A_NS = "http://schemas.openxmlformats.org/drawingml/2006/main"
XML_NS = "http://www.w3.org/XML/1998/namespace"
XML_SPACE = f"{{{XML_NS}}}space"  # xml:space, as ElementTree names it

#: prefixes used when we must declare a namespace the input never declared
_PREFERRED = {
    "http://schemas.openxmlformats.org/wordprocessingml/2006/main": "w",
    R_TRANSITIONAL: "r", MC_NS: "mc", O_NS: "o", V_NS: "v", A_NS: "a",
    "http://schemas.openxmlformats.org/presentationml/2006/main": "p",
    "http://schemas.openxmlformats.org/spreadsheetml/2006/main": "x",
}

XML_DECL = b'<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\r\n'


def local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1] if tag[:1] == "{" else tag


def ns(tag: str) -> str:
    return tag[1:].split("}", 1)[0] if tag[:1] == "{" else ""


def is_rel_attr(name: str) -> bool:
    """An attribute holding a relationship id (``r:id``, ``r:embed``, ``o:relid``…)."""
    if name[:1] != "{":
        return False
    uri, _, lname = name[1:].partition("}")
    return uri in R_NS or (uri == O_NS and lname == "relid")


# ------------------------------------------------------------------------------ parse


class NotWellFormed(Malformed):
    """A syntax error (as opposed to a DTD or entity attack, which is always blocked)."""


@dataclass(slots=True)
class XmlDoc:
    root: Element
    nsdecls: dict[Element, list[tuple[str, str]]] = field(default_factory=dict)

    def parents(self) -> dict[Element, Element]:
        return {child: parent for parent in self.root.iter() for child in parent}


class _Builder(ET.TreeBuilder):
    def __init__(self) -> None:
        super().__init__()
        self.pending: list[tuple[str, str]] = []
        self.decls: dict[Element, list[tuple[str, str]]] = {}

    def start_ns(self, prefix: str, uri: str) -> None:
        self.pending.append((prefix or "", uri))

    def start(self, tag: str, attrs: dict[str, str]) -> Element:
        el = super().start(tag, attrs)
        if self.pending:
            self.decls[el] = self.pending
            self.pending = []
        return el


def parse(data: bytes, part: str) -> XmlDoc:
    """Parse one XML part; DTDs, entities and external references are refused. A part
    in UTF-7 or EBCDIC (which the parser cannot read, LibreOffice can) is read as UTF-8."""
    data = xml_wide.as_utf8(data, part) or data
    builder = _Builder()
    parser = DET.DefusedXMLParser(target=builder, forbid_dtd=True)
    try:
        parser.feed(data)
        root = parser.close()
    except (DTDForbidden, EntitiesForbidden):
        raise Malformed(f"{part} {_dtd_reason(data)}") from None
    except DefusedXmlException:
        raise Malformed(f"{part} refers to an external XML entity (XXE)") from None
    except (ET.ParseError, ValueError, UnicodeError, LookupError) as exc:
        raise NotWellFormed(f"{part} is not well-formed XML ({_short(exc)})") from None
    return XmlDoc(root, builder.decls)


_EXTERNAL_ENTITY = re.compile(rb"<!ENTITY\s+(%\s*)?[^\s>]+\s+(SYSTEM|PUBLIC)\b")
_ENTITY = re.compile(rb"<!ENTITY\b")


def _dtd_reason(data: bytes) -> str:
    """Why a DTD is refused, in words an admin can act on (Office never writes one)."""
    if _EXTERNAL_ENTITY.search(data):
        return "declares an external XML entity (XXE: reads files or URLs)"
    if _ENTITY.search(data):
        return "declares XML entities (entity expansion, 'billion laughs')"
    return "has a DTD (<!DOCTYPE>), which Office documents never have"


def _short(exc: Exception) -> str:
    return str(exc).split("\n", 1)[0][:80]


_DECLARATION = re.compile(rb"(\xef\xbb\xbf)?\s*<\?xml\s")


def needs_full_parse(data: bytes) -> bool:
    """True when a part must be parsed even if nothing in it looks active.

    A DTD (``<!DOCTYPE``: XXE, entity bombs) must be refused wherever it is, and
    comments, CDATA (``<!``), processing instructions or an encoding that is not
    ASCII-compatible can hide text from byte-level checks. Character references
    (``&#``) hide text too, but only inside content: callers that look for content
    treat them as a reason to parse (element and attribute names cannot use them).
    """
    head = data[:4]
    if b"\x00" in head or head[:2] in (b"\xff\xfe", b"\xfe\xff") or _after(data, b"!"):
        return True
    declaration = _DECLARATION.match(data)
    return _after(data, b"?", declaration.end() if declaration else 0)


def _after(data: bytes, char: bytes, start: int = 0) -> bool:
    """Whether ``<`` + ``char`` occurs (searching the rare second byte is much faster
    than searching ``<``, which is everywhere in XML)."""
    i = data.find(char, max(start, 1))
    while i >= 0:
        if data[i - 1] == 0x3C:
            return True
        i = data.find(char, i + 1)
    return False


# -------------------------------------------------------------------------- serialize


def serialize(doc: XmlDoc, *, declaration: bool = True) -> bytes:
    out: list[str] = []
    _write(out, doc.root, doc.nsdecls, {"xml": XML_NS}, {XML_NS: "xml"})
    body = "".join(out).encode("utf-8")
    return XML_DECL + body if declaration else body


def _write(out: list[str], el: Element, decls: dict[Element, list[tuple[str, str]]],
           p2u: dict[str, str], u2p: dict[str, str]) -> None:
    own = decls.get(el)
    new_decls: list[tuple[str, str]] = []
    if own:
        p2u = dict(p2u)
        u2p = dict(u2p)
        for prefix, uri in own:
            new_decls.append((prefix, uri))
            p2u[prefix] = uri
        for prefix, uri in own:   # later declarations of the same uri win
            u2p[uri] = prefix

    def qname(name: str, attr: bool) -> str:
        nonlocal p2u, u2p
        if name[:1] != "{":
            if not attr and p2u.get("", "") != "":
                p2u = {**p2u, "": ""}
                new_decls.append(("", ""))
            return name
        uri, lname = name[1:].split("}", 1)
        prefix = u2p.get(uri)
        if prefix is None or p2u.get(prefix) != uri or (attr and prefix == ""):
            bound = [p for p, u in p2u.items() if u == uri and (p or not attr)]
            if bound:
                prefix = bound[-1]
            else:
                prefix = _free_prefix(uri, p2u)
                p2u = {**p2u, prefix: uri}
                u2p = {**u2p, uri: prefix}
                new_decls.append((prefix, uri))
        return f"{prefix}:{lname}" if prefix else lname

    tag = qname(el.tag, attr=False)
    attrs = [(qname(k, attr=True), v) for k, v in el.attrib.items()]
    parts = [f"<{tag}"]
    for prefix, uri in new_decls:
        parts.append(f' xmlns:{prefix}="{_attr(uri)}"' if prefix else f' xmlns="{_attr(uri)}"')
    parts.extend(f' {k}="{_attr(v)}"' for k, v in attrs)
    out.append("".join(parts))
    if el.text or len(el):
        out.append(">")
        if el.text:
            out.append(_text(el.text))
        for child in el:
            _write(out, child, decls, p2u, u2p)
            if child.tail:
                out.append(_text(child.tail))
        out.append(f"</{tag}>")
    else:
        out.append("/>")


def _free_prefix(uri: str, p2u: dict[str, str]) -> str:
    want = _PREFERRED.get(uri)
    if want and want not in p2u:
        return want
    n = 0
    while f"ns{n}" in p2u:
        n += 1
    return f"ns{n}"


def _text(s: str) -> str:
    if "&" in s:
        s = s.replace("&", "&amp;")
    if "<" in s:
        s = s.replace("<", "&lt;")
    if ">" in s:
        s = s.replace(">", "&gt;")
    if "\r" in s:
        s = s.replace("\r", "&#13;")
    return s


def _attr(s: str) -> str:
    s = _text(s)
    if '"' in s:
        s = s.replace('"', "&quot;")
    if "\n" in s:
        s = s.replace("\n", "&#10;")
    if "\t" in s:
        s = s.replace("\t", "&#9;")
    return s


# ------------------------------------------------------------------------------ edits


def remove(parents: dict[Element, Element], el: Element) -> None:
    """Remove ``el`` from its parent, keeping the text that followed it.

    The search for ``el`` among its siblings runs in C (``Element.remove``, list.index):
    a Python loop over the siblings for every removal took 5 s for 10,000 DDE fields in
    one paragraph (two runs of each removed, and every removal scanned the paragraph)."""
    parent = parents.get(el)
    if parent is None:
        return
    if el.tail:
        try:
            index = _index(parent, el)
        except ValueError:
            return
        _append_text(parent, index, el.tail)
    try:
        parent.remove(el)
    except ValueError:
        return   # no longer its child (moved or removed with an ancestor)


def remove_all(parents: dict[Element, Element], els: Iterable[Element]) -> None:
    """Remove many elements: each parent's children are rebuilt in one pass (a removal
    at a time scans the siblings each time, quadratic for thousands of runs in one
    paragraph); the text that followed a removed element stays, as with ``remove``."""
    doomed: dict[Element, set[int]] = {}
    for el in els:
        parent = parents.get(el)
        if parent is not None:
            doomed.setdefault(parent, set()).add(id(el))
    for parent, ids in doomed.items():
        head: list[str] = [parent.text or ""]
        kept: list[tuple[Element, list[str]]] = []
        for child in parent:
            if id(child) not in ids:
                kept.append((child, [child.tail or ""]))
            elif child.tail:
                (kept[-1][1] if kept else head).append(child.tail)
        if len(kept) != len(parent):
            _set_children(parent, head, kept)


def unwrap_all(parents: dict[Element, Element], els: Iterable[Element]) -> None:
    """Replace many elements by their content, nested ones included, each parent rebuilt
    once with its text joined once (one ``unwrap`` at a time appends every link's text
    to a growing string: 30,000 links in one paragraph took 12 s and 2.6 GB)."""
    targets = {id(el): el for el in els}
    groups: dict[Element, None] = {}
    for el in targets.values():
        parent = parents.get(el)
        if parent is not None and id(parent) not in targets:
            groups.setdefault(parent, None)
    for parent in groups:
        _flatten(parents, parent, targets)


def _flatten(parents: dict[Element, Element], parent: Element,
             targets: dict[int, Element]) -> None:
    """``parent``'s children with every target replaced by its content, in order; an
    explicit stack, not recursion: hostile markup nests links thousands deep."""
    head: list[str] = [parent.text or ""]
    kept: list[tuple[Element, list[str]]] = []
    # items: an element to place, or the text (a target's tail) that follows its content
    todo: list[Element | str] = list(reversed(list(parent)))
    while todo:
        item = todo.pop()
        sink = kept[-1][1] if kept else head
        if isinstance(item, str):
            sink.append(item)
        elif id(item) in targets:
            sink.append(item.text or "")
            todo.append(item.tail or "")
            todo.extend(reversed(list(item)))
        else:
            kept.append((item, [item.tail or ""]))
    _set_children(parent, head, kept)
    for child, _ in kept:
        parents[child] = parent


def _set_children(parent: Element, head: list[str],
                  kept: list[tuple[Element, list[str]]]) -> None:
    """``parent`` with the children ``kept``, each followed by the text pieces listed
    with it, and ``head`` before the first: every text joined once."""
    parent.text = "".join(head) or None
    parent[:] = [child for child, _ in kept]
    for child, tail in kept:
        child.tail = "".join(tail) or None


def unwrap(parents: dict[Element, Element], el: Element) -> None:
    """Replace ``el`` by its children (a hyperlink by its runs)."""
    parent = parents.get(el)
    if parent is None:
        return
    try:
        index = _index(parent, el)
    except ValueError:
        return   # no longer its child
    children = list(el)
    if el.text:
        _append_text(parent, index, el.text)
    tail = el.tail
    parent.remove(el)
    for offset, child in enumerate(children):
        parent.insert(index + offset, child)
        parents[child] = parent
    if tail:
        last = index + len(children) - 1
        if last >= index:
            parent[last].tail = (parent[last].tail or "") + tail
        else:
            _append_text(parent, index, tail)


def _index(parent: Element, el: Element) -> int:
    """Where ``el`` is among ``parent``'s children (ValueError: not there); Element
    equality is identity, so list.index finds this very element, in C."""
    return list(parent).index(el)


def _append_text(parent: Element, index: int, text: str) -> None:
    if index == 0:
        parent.text = (parent.text or "") + text
    else:
        prev = parent[index - 1]
        prev.tail = (prev.tail or "") + text


def iter_local(root: Element, name: str) -> Iterator[Element]:
    for el in root.iter():
        if local(el.tag) == name:
            yield el

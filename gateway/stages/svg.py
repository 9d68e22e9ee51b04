"""SVG images: parsed with defusedxml, active parts removed, re-serialized.

Removed: <script>, <foreignObject> (embedded HTML: the text it shows stays, as a
drawing <text> where it was) and every element in the XHTML
namespace (a browser builds ``<frame xmlns="http://www.w3.org/1999/xhtml"
src="javascript:…">`` inside a drawing as HTML and runs it; likewise forms, a
refreshing meta, pictures that load from elsewhere), <handler>/<listener>,
iframe/embed/object, event-handler attributes (on…), ``ping`` on links, javascript:/data: URLs
(a data:image/… picture in <image> or <feImage> stays; an SVG one is disarmed as an
SVG of its own), references to anything outside the document
(external <image>/<use>, xlink:href to files, CSS url()/@import, the
xml-stylesheet processing instruction), and animations (<set>, <animate>)
that rewrite a link or a handler. Hyperlinks on <a> stay by policy.
A DTD declaring entities (XXE, billion laughs; Illustrator's namespace entities) is
cut out and the references resolved as text (gateway/stages/xml_dtd.py); the output
never has a DTD (ElementTree writes none).

An SVG that is not well-formed XML (unclosed or mismatched tags, CDATA that
"closes" an element: PayloadsAllTheThings' SVG_XSS*.svg) is read as libxml2's
recovery mode reads it (lxml), written out well-formed and then cleaned like any
other (``svg.repaired``): no viewer shows the original, the rebuilt one opens. A
recovered document must still have <svg> as its root, and one with a DTD is not
recovered (refused as before) unless the DTD declares no entity (it is left out).

Locations are ``name[n]`` (the n-th element with that local name, from 0),
with ``@attribute`` for a removed attribute; ``?xml-stylesheet`` for the
processing instruction.
"""

from __future__ import annotations

import base64
import binascii
import re
import xml.etree.ElementTree as ET
from collections import Counter
from typing import BinaryIO, ClassVar
from urllib.parse import unquote_to_bytes

import defusedxml
import defusedxml.ElementTree as DET
import lxml.etree

from gateway.errors import LimitExceeded, Malformed
from gateway.kinds import Action
from gateway.models import Verdict
from gateway.pipeline import registry, xml_wide
from gateway.pipeline.api import StageContext
from gateway.stages import links, xml_doc, xml_dtd

SVG_NS = "http://www.w3.org/2000/svg"
XLINK_NS = "http://www.w3.org/1999/xlink"
_HTML_PREFIX = "{" + xml_doc.XHTML + "}"
ET.register_namespace("", SVG_NS)
ET.register_namespace("xlink", XLINK_NS)

_DROP = {"script": "svg.script", "handler": "svg.script", "listener": "svg.script",
         "foreignObject": "svg.foreign_object", "iframe": "svg.foreign_object",
         "embed": "svg.foreign_object", "object": "svg.foreign_object",
         "link": "svg.external_reference"}
_LINK_URL = re.compile(r"^\s*(https?|mailto)\s*:", re.I)
_SVG_DATA_URL = re.compile(r"^\s*data:image/svg\+xml(;[^,]*)?,", re.I)
_PI = re.compile(rb"<\?xml-stylesheet", re.I)
#: librsvg's limit too (its bug 515: a 40 kB .svgz of two million <rect/> took 20 s here)
MAX_ELEMENTS = 1_000_000


class SvgStage:
    name: ClassVar[str] = "svg"
    formats: ClassVar[frozenset[str]] = frozenset({"svg"})

    def scan(self, src: BinaryIO, ctx: StageContext) -> None:
        data = _utf8(src.read())
        _clean(_parse(data, ctx), data, ctx)

    def disarm(self, src: BinaryIO, dst: BinaryIO, ctx: StageContext) -> None:
        data = _utf8(src.read())
        root = _parse(data, ctx)
        _clean(root, data, ctx)
        dst.write(b'<?xml version="1.0" encoding="UTF-8"?>\n')
        dst.write(ET.tostring(root, encoding="utf-8", xml_declaration=False))
        dst.write(b"\n")


def _utf8(data: bytes) -> bytes:
    """UTF-16, UTF-7 or EBCDIC read as UTF-8 (the parser reads no multi-byte encoding
    but UTF-8 and UTF-16, and the DTD checks look at bytes); the output is UTF-8."""
    return xml_wide.as_utf8(data, "SVG") or data


def _parse(data: bytes, ctx: StageContext) -> ET.Element:
    try:
        return _defused(data)
    except _Entities:
        pass
    except _NotWellFormed as exc:
        recovered = _recover(data)
        if recovered is None:
            raise
        ctx.record("svg.repaired", "", action=Action.REPAIRED,
                   detail=f"{exc.args[0].removeprefix('SVG is ')}; rebuilt as an XML parser "
                          "in recovery mode reads it")
        return _defused(recovered)
    scrubbed = xml_dtd.scrub(data)
    if scrubbed is None:
        raise Malformed("SVG declares XML entities (XXE or entity expansion)")
    ctx.record("xml.dtd", "!DOCTYPE", action=Action.REMOVED, detail=scrubbed.detail)
    try:
        return _defused(scrubbed.data)
    except _Entities:
        raise Malformed("SVG declares XML entities (XXE or entity expansion)") from None


class _Entities(Exception):
    """The document declares entities (handled by cutting out its DTD)."""


class _NotWellFormed(Malformed):
    """Not well-formed XML (perhaps recovered)."""


_DTD = re.compile(rb"<!DOCTYPE|<!ENTITY", re.I)


def _recover(data: bytes) -> bytes | None:
    """The document as libxml2's recovery mode reads it, well-formed; None when that
    gives no <svg> root. No DTD, entity or network access is ever involved."""
    if _DTD.search(data):
        bare = xml_dtd.without_doctype(data)  # <!DOCTYPE svg PUBLIC …>, no entities
        if bare is None or _DTD.search(bare):
            return None
        data = bare
    root = xml_doc.recover(data)
    if root is None or _local(str(root.tag)) != "svg":
        return None
    return bytes(lxml.etree.tostring(root, encoding="utf-8"))


def _defused(data: bytes) -> ET.Element:
    try:
        return DET.fromstring(data, forbid_dtd=False, forbid_entities=True,
                              forbid_external=True)
    except defusedxml.DTDForbidden:
        raise Malformed("SVG with a DTD is not accepted") from None
    except (defusedxml.EntitiesForbidden, defusedxml.ExternalReferenceForbidden):
        raise _Entities from None
    except (ET.ParseError, ValueError) as exc:  # ValueError: an encoding expat lacks
        raise _NotWellFormed(f"SVG is not well-formed XML ({exc})") from None
    except LookupError as exc:  # an encoding Python does not know
        raise Malformed(f"SVG declares an unknown encoding ({exc})") from None


def _local(name: str) -> str:
    return name.rsplit("}", 1)[-1]


def _clean(root: ET.Element, data: bytes, ctx: StageContext) -> None:
    """Record and (in DISARM mode) remove every active part; edits ``root`` in place."""
    space = root.tag[1:].partition("}")[0] if root.tag.startswith("{") else ""
    if space not in ("", SVG_NS):
        # <svg xmlns="http://www.w3.org/1999/xhtml"> is an XHTML page whose children
        # a browser runs as HTML, not a drawing
        raise Malformed(f"not an SVG drawing: its root element is in the namespace "
                        f"{space[:80]!r}")
    if _PI.search(data):
        ctx.record("svg.processing_instruction", "?xml-stylesheet")
    counts: Counter[str] = Counter()
    keep_links = ctx.keeps("hyperlinks")
    stack: list[ET.Element] = [root]
    seen = 0
    while stack:
        parent = stack.pop()
        seen += len(parent)
        if seen > MAX_ELEMENTS:
            raise LimitExceeded(f"SVG drawing of more than {MAX_ELEMENTS:,} elements "
                                "(librsvg refuses to draw it)")
        kept: list[ET.Element] = []   # the children that stay, in order
        children = list(parent)       # the parser drops comments and PIs: all are elements
        for child in children:
            name = _local(child.tag)
            where = f"{name}[{counts[name]}]"
            counts[name] += 1
            kind = _element_kind(child, name)
            if kind:
                words = _shown(child) if name == "foreignObject" else ""
                ctx.record(kind, where, detail="HTML in the drawing; its text is kept"
                           if words else "")
                if words:  # what a browser showed there, as drawing text in its place
                    text = ET.Element(f"{{{space}}}text" if space else "text",
                                      {"x": child.get("x", "0"), "y": child.get("y", "0"),
                                       "dy": "1em"})
                    text.text = words
                    kept.append(text)
                continue
            kept.append(child)
            _attributes(child, name, where, ctx, keep_links)
            stack.append(child)
        if len(kept) != len(children) or any(
                a is not b for a, b in zip(kept, children, strict=True)):
            parent[:] = kept  # one rewrite of the list (the output is only written in DISARM
            #                   mode); removing children one by one was quadratic
    name = _local(root.tag)
    _attributes(root, name, f"{name}[root]", ctx, keep_links)


#: HTML elements whose text a browser does not show
_UNSHOWN = frozenset({"script", "style", "title", "head", "textarea", "select", "noscript",
                      "template", "option"})


def _shown(el: ET.Element) -> str:
    """The text a foreignObject's HTML elements show, whitespace collapsed (text right
    inside the foreignObject is no HTML: a CDATA trick, not part of the drawing)."""
    def text(node: ET.Element) -> str:
        parts = [node.text or ""]
        for child in node:
            if _local(child.tag).lower() not in _UNSHOWN:
                parts.append(" " + text(child) + " ")
            parts.append(child.tail or "")
        return "".join(parts)

    words = " ".join(" ".join(text(child) for child in el
                              if _local(child.tag).lower() not in _UNSHOWN).split())
    return "" if links.SCRIPT_TEXT.search(words) else words


def _element_kind(el: ET.Element, name: str) -> str | None:
    if el.tag.startswith(_HTML_PREFIX):
        return "svg.foreign_object"  # HTML in the drawing, with or without foreignObject
    if name in _DROP:
        return _DROP[name]
    if name.lower() in links.SVG_ANIMATIONS:
        values = " ".join(el.get(a, "") for a in ("to", "from", "values", "by"))
        if links.svg_animation_problem(el.get("attributeName"), values):
            return "svg.animation"
    if name == "style" and links.css_loads("".join(el.itertext())):
        return "svg.stylesheet"
    return None


def _attributes(el: ET.Element, name: str, where: str, ctx: StageContext,
                keep_links: bool) -> None:
    for key in list(el.attrib):
        value = el.attrib[key]
        attr = _local(key)
        shown = "xlink:href" if key == f"{{{XLINK_NS}}}href" else attr
        loc = f"{where}@{shown}"
        kind: str | None = None
        action = "removed"
        detail = ""
        if attr.lower().startswith("on"):
            kind = "svg.event_handler"
        elif attr == "ping":  # SVG 2 <a ping="URL">: a request when the link is followed
            kind = "svg.external_reference"
        elif attr == "href":
            if value.startswith("#"):
                continue
            if name in ("image", "feImage") and links.IMAGE_DATA_URL.match(value):
                continue  # a picture, in the drawing or in a filter
            if name == "image" and _SVG_DATA_URL.match(value):
                nested = _nested_svg(value, ctx)
                if nested == value:
                    continue
                if nested is not None:
                    el.attrib[key] = nested
                    ctx.record("svg.embedded_picture", loc, action=Action.DISARMED)
                    continue
            if links.SCRIPT_URL.match(value):
                kind = "svg.javascript_url"
            elif name == "a" and _LINK_URL.match(value):
                kind, action = "svg.hyperlink", "kept" if keep_links else "removed"
                detail = links.link_detail(value, keep_links)
            else:
                kind = "svg.external_reference"
        elif attr == "style" and links.css_loads(value):
            kind = "svg.stylesheet"
        elif links.presentation_loads(value):
            kind = "svg.external_reference"
        if kind is None:
            continue
        ctx.record(kind, loc, action=action, detail=detail)
        if action == "removed":
            del el.attrib[key]


def _nested_svg(url: str, ctx: StageContext) -> str | None:
    """An SVG drawn as a picture (<image href="data:image/svg+xml,...">; browsers draw it
    with nothing active, other renderers may not): disarmed as an SVG of its own. The
    URL as it is when the drawing is clean, a new one holding the disarmed drawing, or
    None when it cannot be made safe (or is not an SVG)."""
    head, _, payload = url.strip().partition(",")
    try:
        data = (base64.b64decode(re.sub(r"\s+", "", payload), validate=True)
                if head.lower().endswith(";base64") else unquote_to_bytes(payload))
    except (ValueError, binascii.Error):
        return None
    got = ctx.recurse(data, "picture.svg")
    if got.type != "svg" or not got.verdict.delivered:
        return None
    if got.verdict is Verdict.CLEAN or got.data is None:  # scan and verify: nothing written
        return url if not got.residual else None
    return "data:image/svg+xml;base64," + base64.b64encode(got.data).decode("ascii")


registry.register(SvgStage())

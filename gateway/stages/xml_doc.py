"""Generic XML documents (``text.xml``): data files, XSLT stylesheets, XHTML inside XML.

A browser opens a ``.xml`` file as XML: an element in the XHTML namespace runs as
HTML (``<x:script xmlns:x="http://www.w3.org/1999/xhtml">`` — PayloadsAllTheThings'
xss.xml), SVG elements run as SVG, and an ``xml-stylesheet`` processing instruction
fetches an XSLT stylesheet whose output may carry script. Other programs resolve the
DTD's entities (XXE: read files, call URLs; entity expansion). So the stage removes:

* a DTD declaring entities (``xml.dtd``; references become their text, see
  gateway/stages/xml_dtd.py), and a DOCTYPE naming an external DTD, which a validating
  parser fetches (``xml.dtd``; ``&nbsp;`` and the other XHTML entities become their
  characters);
* ``xml-stylesheet`` processing instructions (``xml.stylesheet``), and the
  ``mso-infoPathSolution`` one by which an InfoPath data file names its form template
  (a URL or UNC path InfoPath fetches: ``xml.remote_resource``);
* ``xml:base`` pointing elsewhere (``xml.remote_resource``: every relative link below
  it would load from there); links in MathML (``href`` on any element, an ``mglyph``'s
  picture) and in an e-book's NCX table of contents, judged as in XHTML;
* in XHTML and SVG elements — and in elements without a namespace when the root is
  ``<html>`` or an XSLT stylesheet, whose literal result elements become HTML —
  scripts (``xml.script``), frames, objects, embeds, applets and foreignObject
  (``xml.frame``), event-handler attributes (``xml.event_handler``), javascript:,
  vbscript: and data: URLs (``xml.javascript_url``, a data: image stays), references
  that load something from elsewhere: ``base``, ``link``, a refreshing ``meta``, remote
  stylesheets, remote pictures, a link's ``ping``, SVG presentation attributes that
  load (``fill="url(http://...)"``, ``mask="image-set(...)"``) (``xml.remote_resource``);
  SVG animations that set a link or handler or a script URL (``xml.javascript_url``)
  or load (``xml.remote_resource``), judged as the SVG stage judges them
  (``links.svg_animation_problem``); hyperlinks (``a``) to web or mail addresses follow
  the policy (``xml.hyperlink``), others go;
* XInclude elements (``xml.remote_resource``) and msxsl:script (``xml.script``: C# or
  JScript run by .NET and MSXML transformations).

Everything else stays as it was written: comments, CDATA sections, other processing
instructions, namespace prefixes, the encoding and the XML declaration. A document
with nothing to remove is delivered byte for byte, also when it is not well-formed (no
reader runs anything from it). One that is not well-formed and has something to remove
is read as libxml2's recovery mode reads it and rebuilt (``xml.repaired``), like SVG;
one that gives no element at all is refused.

Elements without a namespace in ordinary data (``<script>`` in a film database,
``online="yes"`` attributes) are data and stay.

Locations are ``name[n]`` (the n-th element with that local name, from 0, in document
order) with ``@attribute`` for an attribute, ``?xml-stylesheet[n]`` and
``?mso-infoPathSolution[n]`` for the processing instructions and ``!DOCTYPE`` for the
DTD. Documents without any of the namespaces above (and without an ``<html>`` or XSLT
root) skip the element walk: a large data file costs one parse.
"""

from __future__ import annotations

import copy
import re
from collections import Counter

from lxml import etree

from gateway.errors import Malformed
from gateway.kinds import Action
from gateway.pipeline import xml_wide
from gateway.pipeline.api import StageContext
from gateway.stages import links, xml_dtd

XHTML = "http://www.w3.org/1999/xhtml"
SVG = "http://www.w3.org/2000/svg"
XSLT = "http://www.w3.org/1999/XSL/Transform"
MSXSL = "urn:schemas-microsoft-com:xslt"
XINCLUDE = frozenset({"http://www.w3.org/2001/XInclude", "http://www.w3.org/2003/XInclude"})
MATHML = "http://www.w3.org/1998/Math/MathML"
#: an e-book's table of contents (EPUB 2): reading systems follow its links
NCX = "http://www.daisy.org/z3986/2005/ncx/"
XML_BASE = "{http://www.w3.org/XML/1998/namespace}base"

#: namespaces whose elements the walk acts on (XHTML, SVG, MathML, NCX, XInclude, msxsl),
#: and xml:base, which moves where every relative link below it points
_MARKUP_NS = re.compile(rb"http://www\.w3\.org/1999/xhtml|http://www\.w3\.org/2000/svg|"
                        rb"http://www\.w3\.org/1998/Math/MathML|"
                        rb"http://www\.daisy\.org/z3986/2005/ncx/|xml:base|"
                        rb"http://www\.w3\.org/200[13]/XInclude|urn:schemas-microsoft-com:xslt",
                        re.I)
#: namespaces whose links (href, src: MathML's on any element, mglyph's picture; NCX's
#: content) are judged like an XHTML page's
_LINKING = frozenset({MATHML, NCX})
_SVG_PREFIX = "{" + SVG + "}"
_SCRIPTS = frozenset({"script", "handler", "listener"})
_FRAMES = frozenset({"iframe", "frame", "frameset", "object", "embed", "applet",
                     "foreignobject", "portal"})
_URL_ATTRS = frozenset({"href", "src", "action", "formaction", "data", "background", "poster",
                        "lowsrc", "dynsrc", "codebase", "cite", "longdesc", "usemap",
                        "manifest", "icon", "srcset"})


def process(data: bytes, ctx: StageContext) -> bytes:
    """The disarmed document (``data`` itself when nothing had to change)."""
    try:
        return _process(data, ctx)
    except (ValueError, LookupError, etree.Error) as exc:  # what lxml refuses to write
        raise Malformed(f"XML cannot be rebuilt ({type(exc).__name__}: "
                        f"{str(exc)[:100]})") from None


def _process(data: bytes, ctx: StageContext) -> bytes:
    # read, checked and delivered as UTF-8: the checks below that decide whether the
    # walk runs look for namespaces in the bytes, which UTF-16 spreads over NULs
    data = xml_wide.as_utf8(data, "XML") or data
    text = _without_entities(data, ctx)
    tree, problem, cut = _parse(text, ctx)
    encoding = tree.docinfo.encoding or "UTF-8"
    if _dtd_left(tree):  # a prolog the byte-level cut could not read (damaged, unusual)
        tree = _without_dtd(tree, ctx, recorded=text is not data or cut)
        cut = True
    changed = _stylesheets(tree, ctx)
    walk = _Walk(ctx, tree.getroot())
    # without these namespaces no element falls under the walk's rules (a namespace
    # written with character references is read as such: the walk runs then too)
    if walk.html_mode or b"&#" in text or _MARKUP_NS.search(text):
        changed = walk.run() or changed
        if walk.root_removed:
            tree._setroot(etree.Element("removed"))
    if not (changed or cut) and text is data:
        # nothing to remove; one that is not well-formed too: no reader runs anything
        # from it, and rebuilding it would lose what the recovery skips
        return data
    if problem is not None:
        ctx.record("xml.repaired", "", action=Action.REPAIRED,
                   detail=f"not well-formed ({problem}); rebuilt as an XML parser in "
                          "recovery mode reads it")
    head = data[:200].lstrip(b"\xef\xbb\xbf")
    declared = head.startswith(b"<?xml")
    standalone = tree.docinfo.standalone if b"standalone" in head.split(b"?>", 1)[0] else None
    if standalone is None:
        out = etree.tostring(tree, encoding=encoding, xml_declaration=declared)
    else:
        out = etree.tostring(tree, encoding=encoding, xml_declaration=declared,
                             standalone=standalone)
    assert isinstance(out, bytes)
    return out + (b"\n" if data.endswith(b"\n") else b"")


def _without_entities(data: bytes, ctx: StageContext) -> bytes:
    if not xml_dtd.declares_entities(data):
        external = xml_dtd.external_subset(data)
        defaults = None if external is not None else xml_dtd.attribute_defaults(data)
        cut = external or defaults
        if cut is None:
            return data
        ctx.record("xml.dtd", "!DOCTYPE", action=Action.REMOVED, detail=cut.detail)
        if defaults is not None:
            return _default_namespaces(data) or defaults.data
        return cut.data
    scrubbed = xml_dtd.scrub(data)
    if scrubbed is None and xml_dtd.no_doctype(data):
        return data     # "<!DOCTYPE … <!ENTITY" only as text (a CDATA section, a comment)
    if scrubbed is None or xml_dtd.declares_entities(scrubbed.data):
        raise Malformed("XML declares entities in a DTD that cannot be read safely")
    ctx.record("xml.dtd", "!DOCTYPE", action=Action.REMOVED, detail=scrubbed.detail)
    return scrubbed.data


def _default_namespaces(data: bytes) -> bytes | None:
    """The document without its DTD but with the namespace declarations the DTD gives
    by default written out (``<!ATTLIST x xmlns CDATA "http://www.w3.org/1999/xhtml">``
    puts <x> and what it holds in XHTML, which a browser then runs), so that what is in
    XHTML or SVG is judged as such. libxml2 applies a DTD's namespace defaults even when
    it applies no other default attribute, so the document as this stage's parser reads
    it is that document; the other defaults go with their DTD. None when it does not
    parse."""
    try:
        root = etree.fromstring(data, _parser())
    except etree.XMLSyntaxError:
        return None
    out = etree.tostring(root, encoding="utf-8", xml_declaration=True)
    assert isinstance(out, bytes)
    return out


def _dtd_left(tree: etree._ElementTree) -> bool:
    """A DOCTYPE declaring entities or attribute defaults, or naming an external DTD
    other than the W3C's own (XHTML pages name theirs), is still there."""
    info = tree.docinfo
    entities = getattr(info.internalDTD, "iterentities", None)
    if entities is not None and any(True for _ in entities()):
        return True
    elements = getattr(info.internalDTD, "iterelements", None)
    if elements is not None and any(attr.default_value is not None for el in elements()
                                    for attr in el.iterattributes()):
        return True     # attribute defaults a browser puts on the elements
    system = getattr(info, "system_url", None)
    return bool(system) and not xml_dtd.standard_dtd(str(system))


def _without_dtd(tree: etree._ElementTree, ctx: StageContext, *,
                 recorded: bool) -> etree._ElementTree:
    """The document rebuilt without its DOCTYPE; entity references it left unresolved
    become the character an XHTML DTD gives them, or nothing."""
    if not recorded:
        ctx.record("xml.dtd", "!DOCTYPE", action=Action.REMOVED,
                   detail="declares entities or names an external DTD; removed with the "
                          "entity references")
    root = tree.getroot()
    for ref in list(root.iter(etree.Entity)):
        ref.tail = (xml_dtd.html_entity(str(getattr(ref, "name", ""))) or "") + (ref.tail or "")
        _remove(ref)
    before = list(reversed(list(root.itersiblings(preceding=True))))
    after = list(root.itersiblings())
    fresh = etree.fromstring(etree.tostring(root, encoding="utf-8"), _parser())
    for node in before:
        fresh.addprevious(copy.copy(node))
    for node in reversed(after):
        fresh.addnext(copy.copy(node))
    return etree.ElementTree(fresh)


def _parse(data: bytes, ctx: StageContext) -> tuple[etree._ElementTree, str | None, bool]:
    """The tree; why it is not well-formed (None when it is); whether a DTD no parser
    reads had to be cut out first."""
    try:
        return etree.ElementTree(etree.fromstring(data, _parser())), None, False
    except etree.XMLSyntaxError as exc:
        problem = str(exc)[:120]
    root = recover(data)
    cut = False
    if root is None and (span := xml_dtd.doctype_span(data)) is not None:
        cut = True
        # a DOCTYPE libxml2 gives up on: the document without it, references dropped
        ctx.record("xml.dtd", "!DOCTYPE", action=Action.REMOVED,
                   detail="a DTD no parser reads; removed")
        root = recover(data[:span[0]] + data[span[1]:])
    if root is None:
        raise Malformed(f"XML is not well-formed and cannot be recovered ({problem})")
    return etree.ElementTree(root), problem, cut


def _parser(*, recover: bool = False) -> etree.XMLParser:
    """The one parser set-up of this stage: no DTD loaded, no entity resolved, no network,
    CDATA sections kept as written; ``recover``: libxml2's recovery mode."""
    return etree.XMLParser(recover=recover, resolve_entities=False, no_network=True,
                           load_dtd=False, huge_tree=False, strip_cdata=False)


def recover(data: bytes) -> etree._Element | None:
    """The root element as libxml2's recovery mode reads ``data`` (no DTD loaded, no
    entity resolved, no network); None when that gives no element."""
    try:
        root = etree.fromstring(data, _parser(recover=True))
    except etree.Error:
        return None
    return root if root is not None and isinstance(root.tag, str) else None


_PI_TARGET = re.compile(r"^[A-Za-z_][\w.-]*$")


def _stylesheets(tree: etree._ElementTree, ctx: StageContext) -> bool:
    """Remove xml-stylesheet processing instructions, wherever they are (recorded), and
    ones no XML parser accepts (a broken declaration recovered as ``<?xml}``)."""
    root = tree.getroot()
    before = list(reversed(list(root.itersiblings(preceding=True))))
    after = list(root.itersiblings())
    pis = [n for n in (*before, *after, *root.iter(etree.ProcessingInstruction))
           if isinstance(n, etree._ProcessingInstruction)]
    found = [n for n in pis if n.target == "xml-stylesheet"]
    invalid = [n for n in pis if not _PI_TARGET.match(str(n.target))
               or str(n.target).lower() == "xml"]
    for i, node in enumerate(found):
        ctx.record("xml.stylesheet", f"?xml-stylesheet[{i}]",
                   detail=f"loads a stylesheet from {links.describe_target(node.get('href'))}")
    # an InfoPath form's data file names its form template (code, data connections) by
    # URL or UNC path; InfoPath fetches it on open
    forms = [n for n in pis if str(n.target).lower() == "mso-infopathsolution"]
    for i, node in enumerate(forms):
        ctx.record("xml.remote_resource", f"?mso-infoPathSolution[{i}]",
                   detail=f"InfoPath form template from {links.describe_target(node.get('href'))}"
                          "; the file opens as plain XML")
    if forms:  # and what makes Windows hand the file to InfoPath
        forms += [n for n in pis if str(n.target).lower() == "mso-application"
                  and "infopath" in (n.text or "").lower()]
    gone = found + invalid + forms
    if not gone:
        return False
    for node in gone:
        _remove(node)  # those inside the root element
    if any(n in gone for n in (*before, *after)):
        def others(nodes: list[etree._Element]) -> list[tuple[str, str | None]]:
            return [(str(n.target), n.text) for n in nodes
                    if isinstance(n, etree._ProcessingInstruction) and n not in gone]
        keep_before, keep_after = others(before), others(after)
        # lxml removes a sibling of the root only with all processing instructions there
        etree.strip_elements(tree, etree.ProcessingInstruction, with_tail=False)
        for target, text in keep_before:
            root.addprevious(etree.ProcessingInstruction(target, text or ""))
        for target, text in reversed(keep_after):
            root.addnext(etree.ProcessingInstruction(target, text or ""))
    return True


#: XHTML elements that are nothing without their src
_NEEDS_SRC = frozenset({"img", "source", "track"})
#: elements whose content is what a reader shows in their place (HTML's fallback
#: content), and HTML's empty elements, which hold content only when a page that is
#: not well-formed was read in recovery mode (an unclosed <LINK ...> held the rest of
#: the page, and the page went with it)
_FALLBACK = frozenset({"object", "applet", "link", "base", "meta", "embed", "frame"})
_NOT_FALLBACK = frozenset({"param"})


def _unwrap(node: etree._Element) -> list[etree._Element]:
    """Replace ``node`` by its content but its parameters; the elements moved up."""
    for param in [c for c in node if isinstance(c.tag, str)
                  and _split(c.tag)[1].lower() in _NOT_FALLBACK]:
        _remove(param)
    parent = node.getparent()
    if parent is None:
        return []
    moved = [c for c in node if isinstance(c.tag, str)]
    index = parent.index(node)
    text = node.text or ""
    if text:
        prev = node.getprevious()
        if prev is not None:
            prev.tail = (prev.tail or "") + text
        else:
            parent.text = (parent.text or "") + text
    for offset, child in enumerate(list(node)):
        parent.insert(index + offset, child)
    _remove(node)
    return moved


def _remove(node: etree._Element) -> None:
    """Remove ``node``, keeping the text that follows it."""
    parent = node.getparent()
    if parent is None:
        return
    if node.tail:
        prev = node.getprevious()
        if prev is not None:
            prev.tail = (prev.tail or "") + node.tail
        else:
            parent.text = (parent.text or "") + node.tail
    parent.remove(node)


class _Walk:
    def __init__(self, ctx: StageContext, root: etree._Element) -> None:
        self.ctx = ctx
        self.root = root
        self.keep_links = ctx.keeps("hyperlinks")
        ns, name = _split(root.tag)
        # no-namespace elements are HTML when the root says so (or an XSLT stylesheet
        # writes them out as HTML)
        self.html_mode = (ns == "" and name.lower() == "html") or ns == XSLT
        self.xslt = ns == XSLT
        self.counts: Counter[str] = Counter()
        self.changed = False
        #: the root itself went (a document that is one XHTML script: xss.mno); a
        #: document needs a root, so an empty one without a namespace takes its place
        self.root_removed = False

    def run(self) -> bool:
        """Visit the elements in document order (so ``name[n]`` counts as read)."""
        ns, name = _split(str(self.root.tag))
        kind = self._element_kind(ns, name, self.root)
        if kind is not None:   # the document is nothing but a script or a frame
            self.ctx.record(kind[0], f"{name}[0]", detail=kind[1])
            self.root_removed = self.changed = True
            return True
        self._element(self.root, f"{name}[root]")
        stack = list(reversed(self.root))
        while stack:
            child = stack.pop()
            tag: object = child.tag
            if not isinstance(tag, str):
                continue  # comments, processing instructions, entities
            ns, name = _split(tag)
            where = f"{name}[{self.counts[name]}]"
            self.counts[name] += 1
            kind = self._element_kind(ns, name, child)
            if kind is not None:
                self.ctx.record(kind[0], where, detail=kind[1])
                if name.lower() in _FALLBACK and (len(child) or (child.text or "").strip()):
                    # what a reader shows when it cannot show the object stays (it is
                    # walked like the rest)
                    stack.extend(reversed(_unwrap(child)))
                else:
                    _remove(child)
                self.changed = True
                continue
            self._element(child, where)
            stack.extend(reversed(child))
        return self.changed

    def _markup(self, ns: str) -> bool:
        return ns in (XHTML, SVG) or (ns == "" and self.html_mode)

    def _element_kind(self, ns: str, name: str,
                      el: etree._Element) -> tuple[str, str] | None:
        if ns in XINCLUDE:
            return "xml.remote_resource", f"XInclude of {links.describe_target(el.get('href'))}"
        if ns == MSXSL and name == "script":
            return "xml.script", f"{el.get('language') or 'script'} run by the transformation"
        if not self._markup(ns):
            return None
        low = name.lower()
        if low in _SCRIPTS:
            return "xml.script", ""
        if low in _FRAMES:
            return "xml.frame", ""
        href = el.get("href") or ""
        if low == "base" or (low == "link" and not (href.startswith("#")
                                                   or self.ctx.in_package(href))):
            return "xml.remote_resource", f"<{name}> loads from elsewhere"
        if low == "meta" and (el.get("http-equiv") or "").strip().lower() == "refresh":
            return "xml.remote_resource", "automatic redirect"
        if low == "style" and links.css_loads("".join(map(str, el.itertext()))):
            return "xml.remote_resource", "stylesheet with @import or url()"
        if ns == SVG and low in links.SVG_ANIMATIONS:
            values = " ".join(str(el.get(a, "")) for a in ("to", "from", "values", "by"))
            problem = links.svg_animation_problem(el.get("attributeName"), values)
            if problem == "script":
                return "xml.javascript_url", "animation setting a link or event handler"
            if problem == "load":
                return "xml.remote_resource", "animation loading from elsewhere"
        return None

    def _element(self, el: etree._Element, where: str) -> None:
        ns, name = _split(el.tag)
        base = el.get(XML_BASE)
        if base is not None and not self._inside(base.strip()):
            # every relative link below now points there (an e-book's local picture
            # fetched from another host)
            self._drop(el, XML_BASE, "xml.remote_resource", f"{where}@xml:base",
                       links.describe_target(base))
        if ns in _LINKING:
            for key in [k for k in map(str, el.attrib) if _split(k)[1].lower() in
                        ("href", "src")]:
                self._url(el, key, name.lower(), _split(key)[1].lower(),
                          str(el.attrib[key]), f"{where}@{_split(key)[1]}")
            return
        if not self._markup(ns):
            return
        had_src = el.get("src") is not None
        self._attributes(el, where, name)
        low = name.lower()
        if ns == XHTML and had_src and el.get("src") is None and low in _NEEDS_SRC:
            # a picture or media source with nothing to show: an e-book checker calls
            # it broken (epubcheck RSC-005); a picture leaves its description
            alt = (el.get("alt") or "").strip() if low == "img" else ""
            if alt:
                el.tail = f"[{alt}]" + (el.tail or "")
            _remove(el)

    def _attributes(self, el: etree._Element, where: str, name: str) -> None:
        for raw in list(el.attrib):
            key = str(raw)
            attr_ns, attr = _split(key)
            low = attr.lower()
            value = str(el.attrib[key])
            loc = f"{where}@{attr}"
            if low.startswith("on") and not attr_ns:
                self._drop(el, key, "xml.event_handler", loc)
            elif low == "srcdoc":
                self._drop(el, key, "xml.frame", loc)
            elif low == "style" and links.css_loads(value):
                self._drop(el, key, "xml.remote_resource", loc, "style with url()")
            elif low == "ping":   # a request to that address when the link is followed
                self._drop(el, key, "xml.remote_resource", loc, "link ping")
            elif el.tag.startswith(_SVG_PREFIX) and not attr_ns \
                    and links.presentation_loads(value):
                self._drop(el, key, "xml.remote_resource", loc, f"{attr} loading from elsewhere")
            elif low in _URL_ATTRS:
                self._url(el, key, name.lower(), low, value, loc)

    def _inside(self, target: str) -> bool:
        """Whether a link stays in the document (or the e-book holding it)."""
        return not target or target.startswith("#") or self.ctx.in_package(target)

    def _url(self, el: etree._Element, key: str, name: str, attr: str, value: str,
             loc: str) -> None:
        target = value.strip()
        if self._inside(target):
            return  # a place inside the document (an e-book's next chapter, its pictures)
        if self.xslt and "{" in target:
            return  # an attribute value template: the transformation computes it
        if name in ("img", "image") and links.IMAGE_DATA_URL.match(target):
            return
        if links.SCRIPT_URL.match(target):
            self._drop(el, key, "xml.javascript_url", loc)
        elif name == "a" and attr == "href" and links.is_web(target):
            action = Action.KEPT if self.keep_links else Action.REMOVED
            self.ctx.record("xml.hyperlink", loc, action=action,
                            detail=links.link_detail(target, self.keep_links))
            if not self.keep_links:
                del el.attrib[key]
                self.changed = True
        else:
            self._drop(el, key, "xml.remote_resource", loc, links.describe_target(target))

    def _drop(self, el: etree._Element, key: str, kind: str, loc: str, detail: str = "") -> None:
        self.ctx.record(kind, loc, detail=detail)
        del el.attrib[key]
        self.changed = True


def _split(tag: str) -> tuple[str, str]:
    if tag.startswith("{"):
        ns, _, name = tag[1:].partition("}")
        return ns, name
    return "", tag

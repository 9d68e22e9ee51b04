"""Independent checks for HTML, SVG and XML outputs, with lxml (not our scanner)."""

from __future__ import annotations

import re
from pathlib import Path

import lxml.etree
import lxml.html

_BAD_TAGS = {"script", "iframe", "frame", "frameset", "object", "embed", "applet", "form",
             "foreignobject", "handler", "listener", "base", "link", "meta", "style"}
_SCRIPT_URL = re.compile(r"^\s*(javascript|vbscript|data)\s*:", re.I)
_SAFE_DATA = re.compile(r"^\s*data:image/(png|jpe?g|gif|webp)", re.I)
_REMOTE = re.compile(r"^\s*(https?:|//|file:|ftp:|\\\\)", re.I)


def _problems(root: lxml.etree._Element, *, allow_links: bool) -> list[str]:
    found = []
    for el in root.iter():
        if not isinstance(el.tag, str):
            if isinstance(el, lxml.etree._ProcessingInstruction):
                found.append(f"processing instruction {el.target}")
            continue
        tag = lxml.etree.QName(el).localname.lower()
        if tag in _BAD_TAGS and not (tag == "meta" and el.get("charset")):
            found.append(f"<{tag}>")
        for key, value in el.attrib.items():
            attr = lxml.etree.QName(key).localname.lower()
            if attr.startswith("on"):
                found.append(f"<{tag} {attr}>")
            if attr in ("href", "src", "action", "background", "poster", "data", "srcset"):
                if _SCRIPT_URL.match(value) and not _SAFE_DATA.match(value):
                    found.append(f"<{tag} {attr}={value[:20]!r}>")
                elif _REMOTE.match(value) and not (allow_links and tag == "a"):
                    found.append(f"<{tag} {attr}={value[:30]!r}>")
            if "url(" in value.replace(" ", "") and "url(#" not in value.replace(" ", ""):
                found.append(f"<{tag} {attr} url()>")
            if "image-set(" in value.replace(" ", "").lower():
                found.append(f"<{tag} {attr} image-set()>")
            if attr == "ping":
                found.append(f"<{tag} ping>")
        if tag == "style" and "image-set(" in (el.text or "").replace(" ", "").lower():
            found.append("<style> image-set()")
    return found


def html_problems(path: Path, *, allow_links: bool = True) -> list[str]:
    return _problems(lxml.html.parse(str(path)).getroot(), allow_links=allow_links)


def svg_problems(path: Path, *, allow_links: bool = False) -> list[str]:
    parser = lxml.etree.XMLParser(resolve_entities=False, no_network=True)
    return _problems(lxml.etree.parse(str(path), parser).getroot(), allow_links=allow_links)


def html_text(path: Path) -> str:
    root = lxml.html.parse(str(path)).getroot()
    for bad in root.xpath("//script|//style|//head|//noscript"):
        bad.drop_tree()
    return " ".join(root.text_content().split())


XHTML = "http://www.w3.org/1999/xhtml"
SVG = "http://www.w3.org/2000/svg"


def xml_problems(path: Path) -> list[str]:
    """What a browser opening the file as XML, or a DTD-reading parser, would act on."""
    data = path.read_bytes()
    parser = lxml.etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False)
    tree = lxml.etree.ElementTree(lxml.etree.fromstring(data, parser))  # well-formed
    problems = []
    if b"<!ENTITY" in data or tree.docinfo.system_url:
        problems.append("DTD")
    for node in tree.getroot().itersiblings(preceding=True):
        if isinstance(node, lxml.etree._ProcessingInstruction) and \
                node.target == "xml-stylesheet":
            problems.append("xml-stylesheet")
    for el in tree.getroot().iter():
        if not isinstance(el.tag, str):
            continue
        qname = lxml.etree.QName(el)
        if qname.namespace in (XHTML, SVG):
            if qname.localname.lower() in ("script", "iframe", "object", "embed",
                                           "foreignobject"):
                problems.append(qname.localname)
            for attr, value in el.attrib.items():
                name = lxml.etree.QName(attr).localname.lower()
                if name.startswith("on"):
                    problems.append("@" + name)
                if value.strip().lower().startswith(("javascript:", "vbscript:")):
                    problems.append("url:" + name)
                if name == "ping":
                    problems.append("@ping")
                squeezed = value.replace(" ", "").lower()
                if qname.namespace == SVG and ("image-set(" in squeezed or (
                        "url(" in squeezed and "url(#" not in squeezed)):
                    problems.append("loads:" + name)
            if qname.namespace == SVG and qname.localname.lower() in (
                    "set", "animate", "animatetransform", "animatemotion", "animatecolor"):
                target = (el.get("attributeName") or "").lower().rpartition(":")[2]
                values = " ".join(el.get(a, "") for a in ("to", "from", "values", "by"))
                if target == "href" or target.startswith("on") or re.search(
                        r"(javascript|vbscript)\s*:", values.replace("\t", ""), re.I):
                    problems.append("animation:" + target)
        if qname.namespace == "urn:schemas-microsoft-com:xslt" and qname.localname == "script":
            problems.append("msxsl:script")
    return problems

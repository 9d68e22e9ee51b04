"""XPS documents (.xps; OpenXPS .oxps): what Windows' "Microsoft XPS Document Writer"
prints to. An OPC package like Office's, so the same engine reads it (:mod:`ooxml_plan`:
external relationships, parts of macro or OLE content, signatures, dangling references).

What differs from Office:

* the main part, a FixedDocumentSequence, is named by a ``fixedrepresentation``
  relationship; it names its documents, and each document its pages, by ``Source``
  attributes, not by relationships, and a page names its fonts, pictures, colour
  profiles and resource dictionaries by attributes too (``FontUri``, ``ImageSource``,
  ``Source``, a colour's profile). :func:`references` gives the engine those edges, so a
  part a page draws with is never taken for an unreferenced one;
* nothing in XPS runs. What leads out of the document is a hyperlink, the
  ``FixedPage.NavigateUri`` attribute of a Canvas, Path or Glyphs: links inside the
  document (``#name``, or one of its parts) stay; web links stay when the policy keeps
  hyperlinks; any other target goes (``ooxml.hyperlink``, location
  ``Documents/1/Pages/1.fpage#NavigateUri[1]``, numbered in document order per part);
* a resource named outside the package (``FontUri="\\\\server\\f.odttf"``,
  ``ImageSource="http://…"``): XPS allows only parts of the package there, but a viewer
  that follows one fetches it from the network (a tracking request, an NTLM
  authentication to a share). The element that draws with it goes, and the property
  element left empty with it (``ooxml.external_relationship``, ``…fpage#FontUri[1]``).
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from gateway.errors import Malformed
from gateway.kinds import Action
from gateway.pipeline import xml_wide
from gateway.stages import ooxml_xml as X
from gateway.stages.links import describe_target, is_web, link_detail

if TYPE_CHECKING:
    from gateway.stages.ooxml_package import Package
    from gateway.stages.ooxml_plan import Engine

#: content types of the markup parts (sequence, document, page, resource dictionary…)
CT_PREFIX = "application/vnd.ms-package.xps-"
_NAVIGATE = "FixedPage.NavigateUri"
_RESOURCE_ATTRS = ("FontUri", "ImageSource", "Source", "Color", "ColorProfile")
#: a token of an attribute value that may name a part (markup extensions such as
#: ``{ColorConvertedBitmap /Resources/a.jpg /Resources/b.icc}`` and ``sc#`` colours hold
#: several, separated by blanks, braces and commas)
_TOKEN = re.compile(r"[^\s{},]+")
#: a token that may be a part name: a letter in it (path data and coordinates, thousands
#: of numbers in a drawing's page, are looked up no more)
_NAME_TOKEN = re.compile(r"[^\s{},]*[A-Za-z][^\s{},]*")
_SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]+:")
#: bytes of a part that may hold either: a hyperlink, or a resource attribute whose value
#: has a scheme or a network path in it (entities and CDATA make a full parse anyway)
_QUICK = re.compile(rb"NavigateUri|(?:Uri|Source|Color|Profile)\s*=\s*[\"'][^\"']*"
                    rb"(?:[A-Za-z][A-Za-z0-9+.-]+:|\\\\|//|[A-Za-z]:)")


def references(pkg: Package) -> dict[str, set[str]]:
    """The parts each markup part names by attribute: edges the engine follows besides
    relationships."""
    out: dict[str, set[str]] = {}
    for name in pkg.parts:
        if not pkg.ct.get(name).lower().startswith(CT_PREFIX):
            continue
        data = pkg.read(name)
        try:
            doc = X.parse(xml_wide.as_utf8(data, name) or data, name)
        except Malformed:
            continue        # a page that is not XML draws nothing; its parts go unused
        found: set[str] = set()
        for el in doc.root.iter():
            for value in el.attrib.values():
                if "/" not in value and "." not in value:
                    continue
                for token in _NAME_TOKEN.findall(value):
                    part = pkg.resolve(name, token)
                    if part is not None and part != name:
                        found.add(part)
        if found:
            out[name] = found
    return out


def quick_check(data: bytes) -> bool:
    """Whether a markup part may hold a hyperlink or a reference outside the package."""
    return _QUICK.search(data) is not None


def page(eng: Engine, part: str, doc: X.XmlDoc) -> bool:
    """Remove hyperlinks that lead out of the document and drawings whose resources lie
    outside the package."""
    keep_links = eng.ctx.keeps("hyperlinks")
    parents = doc.parents()
    changed = False
    links = kept = 0
    outside: dict[str, int] = {}
    doomed = []
    for el in doc.root.iter():
        target = el.get(_NAVIGATE)
        if target is not None:
            target = target.strip()
            if _inside(eng.pkg, part, target):
                pass
            elif keep_links and is_web(target):
                kept += 1
            else:
                links += 1
                what = link_detail(target, False) if is_web(target) else \
                    f"hyperlink to a {describe_target(target)}"
                eng.record("ooxml.hyperlink", f"{part}#NavigateUri[{links}]",
                           Action.REMOVED, what)
                del el.attrib[_NAVIGATE]
                changed = True
        for attr in _RESOURCE_ATTRS:
            value = el.get(attr)
            far = next((t for t in _TOKEN.findall(value or "") if _outside(t)), None)
            if far is None:
                continue
            outside[attr] = outside.get(attr, 0) + 1
            eng.record("ooxml.external_relationship", f"{part}#{attr}[{outside[attr]}]",
                       Action.REMOVED, f"{X.local(el.tag)} drawn with a resource outside "
                       f"the document ({describe_target(far)}): removed")
            doomed.append(el)
            break
    for el in doomed:
        holder = parents.get(el)
        X.remove(parents, el)
        # a property element (Path.Fill, Canvas.Resources) left empty goes with it
        if holder is not None and "." in X.local(holder.tag) and len(holder) == 0:
            X.remove(parents, holder)
        changed = True
    if kept:
        eng.record("ooxml.hyperlink", part, Action.KEPT,
                   f"{kept} web link{'s' if kept > 1 else ''} kept by policy")
    return changed


def _inside(pkg: Package, part: str, target: str) -> bool:
    """A link to a place in the document: a named element, or one of its parts."""
    path = target.split("#", 1)[0]
    if not path:
        return True
    return pkg.resolve(part, path) is not None


def _outside(token: str) -> bool:
    """A resource named by an address that is not a part of the package (a URI with a
    scheme, or a network path); ``sc#``/``#`` colours and relative names are not."""
    if token.startswith(("\\\\", "//")) or re.match(r"^[A-Za-z]:[\\/]", token):
        return True
    return bool(_SCHEME.match(token)) and not token.lower().startswith("pack:")

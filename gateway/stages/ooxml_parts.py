"""Edits inside XML parts: references to removed relationships, and the active content
that lives in markup rather than in parts (fields, DDE formulas, frames, mail merge,
data connections, PowerPoint program actions).

A part is parsed only when it must change or when its bytes cannot be trusted to a
cheap look (see :func:`ooxml_xml.needs_full_parse`); other parts are copied as they
are. References to a removed relationship are resolved per element so the document
opens without a repair prompt:

* ``w:hyperlink`` is unwrapped (its runs stay); other hyperlink elements go;
* ``o:OLEObject`` / ``w:control`` go and their ``w:object`` becomes a ``w:pict`` that
  keeps the VML preview picture;
* a PowerPoint ``p:oleObj`` frame is replaced by its fallback preview ``p:pic``;
  a ``p:control`` leaves its preview picture on the slide;
* ``a:blip`` / ``v:imagedata`` lose the attribute (a linked picture shows nothing);
* anything else that refers to a removed relationship goes, and containers left empty
  (``oleObjects``, ``controls``, ``hyperlinks``, ``externalReferences``, ``mc:`` blocks)
  go with it.

Locations: ``word/settings.xml#mailMerge``, ``word/webSettings.xml#frameset``,
``ppt/slides/slide1.xml#action[2]`` (a program-launch click action).
"""

from __future__ import annotations

import copy
import re
from collections.abc import Callable
from typing import TYPE_CHECKING
from xml.etree.ElementTree import Element

from gateway.kinds import Action
from gateway.pipeline import xml_wide
from gateway.stages import ooxml_excel as XL
from gateway.stages import ooxml_fields as F
from gateway.stages import ooxml_visio as VI
from gateway.stages import ooxml_xml as X
from gateway.stages import ooxml_xps as XPS

if TYPE_CHECKING:
    from gateway.stages.ooxml_plan import Engine

Task = Callable[["Engine", str, X.XmlDoc], bool]

#: the end of a formula's text: the text runs from the last "<" before it (CDATA and
#: comments make the part a full parse anyway)
_FORMULA_END = re.compile(rb"</(?:[\w.-]+:)?f>")


def _in_formula(data: bytes, hint: re.Pattern[bytes]) -> bool:
    """Whether ``hint`` matches in the text just before a closing </f> (no "<" between).
    Each such text runs from the "<" before it, so the scan is linear: the pattern
    "c[^<]*</f>" was tried from every c and rescanned the rest (60,000 "&#x41;" in one
    attribute took over 10 s, a fuzzed 16 kB sheet the job's whole time)."""
    for m in _FORMULA_END.finditer(data):
        start = data.rfind(b"<", 0, m.start()) + 1
        if hint.search(data, start, m.start()) is not None:
            return True
    return False


#: what a formula XL.formulas may change holds: DDE (``|``), another workbook (``[``),
#: a function that fetches or starts something or a HYPERLINK, or a character
#: reference that could spell any of them
_FORMULA_HINT = re.compile(rb"[|\[]|&#|hyperlink|webservice|image|rtd|call|register|exec",
                           re.IGNORECASE)


def _formula_check(data: bytes, full: bool) -> bool:
    """Whether a formula of the part may be one XL.formulas turns into its value."""
    if full:
        return True
    return _in_formula(data, _FORMULA_HINT)


#: an attribute value short enough to be a relationship id
_ATTR_VALUE = re.compile(rb"""=\s*["']([^"'<>]{1,255})["']""")


def _mentions(data: bytes, ids: set[str]) -> bool:
    """Whether any of the relationship ids appears as an attribute value in ``data``: one
    pass over the part (a search per id took ids x size: 20,000 removed links and a 2 MB
    document, 8.6 s)."""
    if not ids:
        return False
    wanted = {i.encode() for i in ids}
    return any(m.group(1) in wanted for m in _ATTR_VALUE.finditer(data))

_ATTR_ONLY = {"blip", "imagedata", "fill", "stroke", "textpath", "background"}
_MEDIA = {"videoFile", "audioFile", "quickTimeFile", "wavAudioFile", "media"}
_UNWRAP = {"hyperlink"}
_OBJECT_CHILDREN = {"OLEObject", "control", "objectEmbed", "objectLink", "movie"}
_CONTAINERS = {"oleObjects", "controls", "externalReferences", "hyperlinks"}
_PROGIDS = {
    "Word.DocumentMacroEnabled.12": "Word.Document.12",
    "Word.TemplateMacroEnabled.12": "Word.Template.12",
    "Excel.SheetMacroEnabled.12": "Excel.Sheet.12",
    "Excel.TemplateMacroEnabled": "Excel.Template",
    "PowerPoint.ShowMacroEnabled.12": "PowerPoint.Show.12",
    "PowerPoint.SlideShowMacroEnabled.12": "PowerPoint.SlideShow.12",
}


def is_xml(ct: str, name: str) -> bool:
    return ct.endswith(("+xml", "/xml")) or name.lower().endswith((".xml", ".vml"))


def process_parts(eng: Engine) -> None:
    pkg, e = eng.pkg, eng.e
    keep_links = eng.ctx.keeps("hyperlinks")
    family = eng.family()
    for name in pkg.parts:
        if name in e.removed or name in e.replaced:
            continue
        ct = eng.ct(name)
        roles = eng.incoming.get(name, set())
        if not is_xml(ct, name):
            if name == pkg.main and family == "excel":
                new = XL.workbook_bin(eng, name, pkg.read(name))
                if new is not None:
                    e.replaced[name] = new
            continue
        data = pkg.read(name)  # UTF-16, UTF-7, EBCDIC: as UTF-8 (ooxml_zip, xml_wide)...
        # ...when a zip entry named .xml; here for one typed XML under another name, and
        # for a Flat OPC part (MemorySource: a pkg:binaryData part is read as stored)
        wide = xml_wide.as_utf8(data, name)
        if wide is not None:
            data = wide
            if eng.writing:
                e.replaced[name] = data
        if family == "excel" and b"FmlaMacro" in data:
            data = _button_macros(eng, name, data)
        full = X.needs_full_parse(data)
        hidden = full or b"&#" in data          # content a byte search could miss
        tasks: list[Task] = []
        if family == "excel" and (b"macro=" in data or b"textlink=" in data or hidden):
            tasks.append(_macro_attributes)
        if name == pkg.main and family == "excel":
            tasks.append(XL.workbook)
        if "worksheet" in roles and _formula_check(data, full):
            tasks.append(XL.formulas)
        if "worksheet" in roles and b"oleObject" in data and (b"link=" in data or hidden):
            tasks.append(_linked_objects)
        if "connections" in roles:
            tasks.append(XL.connections)
        if "settings" in roles and family == "word":
            tasks.append(_settings)
        if "webSettings" in roles:
            tasks.append(_web_settings)
        if family in ("powerpoint", "other") and b"action" in data and (
                b"ppaction" in data or hidden):
            tasks.append(_actions)
        if family in ("word", "other") and (b"fldSimple" in data or b"nstrText" in data) and (
                hidden or F.quick_check(data, keep_links)):
            tasks.append(_fields)
        if family == "visio" and ct.startswith(VI.CT_PREFIX) and (
                hidden or VI.quick_check(data)):
            tasks.append(VI.shapesheet)
        if family == "xps" and ct.startswith(XPS.CT_PREFIX) and (
                hidden or XPS.quick_check(data)):
            tasks.append(XPS.page)
        dead, demote = e.dead.get(name, set()), e.demote.get(name, set())
        if not hidden and not _mentions(data, dead | demote):
            dead = demote = set()     # nothing in the part refers to them
        if not (tasks or dead or demote or full):
            continue
        try:
            doc = X.parse(data, name)
        except X.NotWellFormed:
            if tasks or dead or demote:
                raise
            continue                  # not ours to fix; Office ignores or rejects it
        changed = False
        for task in tasks:
            changed |= task(eng, name, doc)
        if dead or demote or e.dead.get(name, set()) - dead:
            changed |= fix_references(doc, e.dead.get(name, set()), e.demote.get(name, set()))
        if changed and eng.writing:
            e.replaced[name] = X.serialize(doc)


# ------------------------------------------------------------------------- references


def fix_references(doc: X.XmlDoc, dead: set[str], demote: set[str]) -> bool:
    hits: list[tuple[Element, str]] = []
    changed = False
    for el in doc.root.iter():
        for key, value in el.attrib.items():
            if not X.is_rel_attr(key):
                continue
            if value in dead:
                hits.append((el, key))
            elif value in demote:
                for pkey in ("progId", "ProgID"):
                    old = el.get(pkey, "")
                    if old in _PROGIDS:
                        el.set(pkey, _PROGIDS[old])
                        changed = True
    if not hits:
        return changed
    parents = doc.parents()
    objects: list[Element] = []
    frames: set[Element] = set()
    for el, key in hits:
        name = X.local(el.tag)
        if name in _MEDIA:
            X.remove(parents, el)          # linked audio/video: the picture stays
        elif name in _ATTR_ONLY or X.local(key) == "link":
            el.attrib.pop(key, None)
        elif name in _UNWRAP:
            X.unwrap(parents, el)
        elif name == "oleObj":
            frame = _ancestor(parents, el, "graphicFrame")
            if frame is None:
                X.remove(parents, el)
            elif frame not in frames:
                frames.add(frame)
                _replace_frame(parents, frame)
        else:
            parent = parents.get(el)
            if name == "control" and any(X.local(c.tag) == "pic" for c in el):
                _keep_control_picture(doc.root, el)
            X.remove(parents, el)
            if parent is not None and X.local(parent.tag) in ("object", "pict"):
                objects.append(parent)
    for obj in objects:
        _object_to_picture(parents, obj)
    _drop_empty(doc.root, parents)
    return True


def _ancestor(parents: dict[Element, Element], el: Element, name: str) -> Element | None:
    cur = parents.get(el)
    while cur is not None and X.local(cur.tag) != name:
        cur = parents.get(cur)
    return cur


def _object_to_picture(parents: dict[Element, Element], obj: Element) -> None:
    """A ``w:object`` whose OLE object or control is gone keeps its picture: a VML
    preview becomes a ``w:pict``; a DrawingML preview (``w:drawing``, Word 2010+
    ``w:objectEmbed``) moves up into the run."""
    for shape in obj.iter():
        shape.attrib.pop(f"{{{X.O_NS}}}ole", None)
    if X.local(obj.tag) != "object":
        return
    if any(X.local(c.tag) in _OBJECT_CHILDREN for c in obj):
        return
    if any(X.local(c.tag) == "drawing" for c in obj):
        X.unwrap(parents, obj)
        return
    obj.tag = f"{{{X.ns(obj.tag)}}}pict"
    obj.attrib.clear()


def _replace_frame(parents: dict[Element, Element], frame: Element) -> None:
    """PowerPoint: an OLE object's graphic frame becomes its preview picture."""
    pics = [p for p in frame.iter() if X.local(p.tag) == "pic"]
    parent = parents.get(frame)
    if parent is None:
        return
    if not pics:
        X.remove(parents, frame)
        return
    pic = copy.deepcopy(pics[-1])
    frame_c = next((c for c in frame.iter() if X.local(c.tag) == "cNvPr"), None)
    pic_c = next((c for c in pic.iter() if X.local(c.tag) == "cNvPr"), None)
    if frame_c is not None and pic_c is not None:
        for attr in ("id", "name"):
            if frame_c.get(attr) is not None:
                pic_c.set(attr, frame_c.get(attr, ""))
    xfrm = next((c for c in frame if X.local(c.tag) == "xfrm"), None)
    sp_pr = next((c for c in pic if X.local(c.tag) == "spPr"), None)
    if xfrm is not None and sp_pr is not None and \
            not any(X.local(c.tag) == "xfrm" for c in sp_pr):
        new = Element(f"{{{X.A_NS}}}xfrm", dict(xfrm.attrib))
        for c in xfrm:
            new.append(Element(f"{{{X.A_NS}}}{X.local(c.tag)}", dict(c.attrib)))
        sp_pr.insert(0, new)
    index = next(i for i, c in enumerate(parent) if c is frame)
    pic.tail = frame.tail
    parent.remove(frame)
    parent.insert(index, pic)
    parents[pic] = parent


def _keep_control_picture(root: Element, control: Element) -> None:
    tree = next((t for t in root.iter() if X.local(t.tag) == "spTree"), None)
    pic = next((c for c in control if X.local(c.tag) == "pic"), None)
    if tree is not None and pic is not None:
        tree.append(copy.deepcopy(pic))


def _drop_empty(root: Element, parents: dict[Element, Element]) -> None:
    for el in reversed(list(root.iter())):
        name = X.local(el.tag)
        mc = X.ns(el.tag) == X.MC_NS
        if len(el) == 0 and (name in _CONTAINERS or (mc and name in ("Choice", "Fallback"))):
            X.remove(parents, el)
        elif mc and name == "AlternateContent":
            if any(X.local(c.tag) == "Choice" for c in el):
                continue
            fallback = next((c for c in el if X.local(c.tag) == "Fallback"), None)
            if fallback is not None and len(fallback):
                for child in list(fallback):
                    parents[child] = fallback
                X.unwrap(parents, fallback)
                X.unwrap(parents, el)
            else:
                X.remove(parents, el)


# ----------------------------------------------------------------------- markup tasks


def _linked_objects(eng: Engine, part: str, doc: X.XmlDoc) -> bool:
    """A worksheet's linked OLE object (``oleObject link="[1]!''" oleUpdate=...``): its
    link names an external reference, which goes with the other links to other files;
    left behind it pointed at nothing and Excel offers to repair the workbook (oletools'
    sample_with_external_link_to_doc.xlsx). Its picture stays a drawing shape."""
    found = [el for el in doc.root.iter()
             if X.local(el.tag) == "oleObject" and el.get("link") is not None]
    if not found:
        return False
    parents = doc.parents()
    for el in found:
        eng.record("ooxml.external_link", f"{part}#oleObject[{el.get('shapeId', '?')}]",
                   Action.REMOVED, f"linked object {el.get('progId', '')[:40]!r}, "
                   f"updated from another file ({el.get('oleUpdate', 'on request')})")
        X.remove(parents, el)
    _drop_empty(doc.root, parents)
    return True


def _fields(eng: Engine, part: str, doc: X.XmlDoc) -> bool:
    def record(kind: str, location: str, detail: str) -> None:
        eng.record(kind, location, Action.NEUTRALIZED, detail)

    return F.neutralize(doc, part, eng.ctx.keeps("hyperlinks"), record)


def _settings(eng: Engine, part: str, doc: X.XmlDoc) -> bool:
    changed = False
    for el in [c for c in doc.root if X.local(c.tag) == "mailMerge"]:
        kind = next((c.get(f"{{{X.ns(c.tag)}}}val", "") for c in el
                     if X.local(c.tag) == "dataType"), "")
        doc.root.remove(el)
        eng.record("ooxml.external_data", f"{part}#mailMerge", Action.REMOVED,
                   f"mail merge data source{f' ({kind[:30]})' if kind else ''}")
        changed = True
    return changed


def _web_settings(eng: Engine, part: str, doc: X.XmlDoc) -> bool:
    changed = False
    for el in [c for c in doc.root if X.local(c.tag) == "frameset"]:
        frames = sum(1 for f in el.iter() if X.local(f.tag) == "frame")
        doc.root.remove(el)
        eng.record("ooxml.external_relationship", f"{part}#frameset", Action.REMOVED,
                   f"frameset loading {frames} frame{'s' if frames != 1 else ''}")
        changed = True
    return changed


# ----------------------------------------------------------------- Excel macro buttons
#
# A macro assigned to a form button (VML ``x:FmlaMacro``, x14 ``controlPr macro``) or a
# drawing shape (``xdr:sp macro``) runs on a click; one named in another workbook
# (``'C:\\x\\evil.xlsm'!Auto``, ``\\\\host\\s\\[evil.xlsm]Sheet1!M``) makes Excel open that
# workbook to run it. The VBA goes with the macro-enabled type; the assignments went
# nowhere and stayed (XlsxWriter's macros.xlsm example). A shape's text linked to a cell
# of another workbook (``textlink``) is an external link.

_FMLA_MACRO = re.compile(rb"<((?:[\w.-]+:)?)FmlaMacro\b[^>]*>([^<]*)</\1FmlaMacro\s*>")


def _button_macros(eng: Engine, part: str, data: bytes) -> bytes:
    """A legacy (VML) drawing's button macros, taken out by bytes (VML need not be
    well-formed XML)."""
    count = 0

    def drop(m: re.Match[bytes]) -> bytes:
        nonlocal count
        count += 1
        macro = m.group(2).decode("utf-8", "replace").strip()
        eng.record("ooxml.macro_assignment", f"{part}#FmlaMacro[{count}]", Action.REMOVED,
                   f"macro {macro[:80]!r} run by a click on a form control")
        return b""

    edited = _FMLA_MACRO.sub(drop, data)
    if count and eng.writing:
        eng.e.replaced[part] = edited
    return edited


def _macro_attributes(eng: Engine, part: str, doc: X.XmlDoc) -> bool:
    """Shapes' and controls' ``macro`` (any non-empty one) and ``textlink`` (one into
    another workbook) attributes; location: the element's name and its number among
    the part's elements that have either attribute."""
    changed = False
    count = 0
    for el in doc.root.iter():
        if "macro" not in el.attrib and "textlink" not in el.attrib:
            continue
        count += 1
        where = f"{part}#{X.local(el.tag)}[{count}]"
        macro = el.attrib.get("macro", "").strip()
        if macro:
            eng.record("ooxml.macro_assignment", where, Action.REMOVED,
                       f"macro {macro[:80]!r} run by a click on a shape or control")
            del el.attrib["macro"]
            changed = True
        link = el.attrib.get("textlink", "")
        if link and XL.names_other_workbook(link, eng.ext_links_removed):
            eng.record("ooxml.external_link", where, Action.REMOVED,
                       "shape text linked to a cell of another workbook")
            del el.attrib["textlink"]
            changed = True
    return changed


def _actions(eng: Engine, part: str, doc: X.XmlDoc) -> bool:
    """PowerPoint click/hover actions that start programs or OLE verbs."""
    parents = doc.parents()
    count, changed = 0, False
    for el in list(doc.root.iter()):
        action = el.get("action", "")
        if not action.startswith("ppaction://"):
            continue
        count += 1
        verb = action[len("ppaction://"):].split("?", 1)[0].lower()
        if verb not in ("program", "ole", "macro"):
            continue
        for key, value in el.attrib.items():
            if X.is_rel_attr(key) and value:
                eng.e.dead[part].add(value)
        X.remove(parents, el)
        eng.record("ooxml.external_relationship", f"{part}#action[{count}]", Action.REMOVED,
                   f"click action {verb!r}")
        changed = True
    return changed

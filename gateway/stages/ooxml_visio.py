"""Visio drawings (.vsdx, .vsdm, templates .vstx/.vstm, stencils .vssx/.vssm): the
ShapeSheet cells of pages, masters and the document part.

The package parts (VBA project, embedded objects, external relationships, data
connections) go like in any OPC package (:mod:`ooxml_plan`). What runs lives in cell
formulas (``<Cell N="EventDblClick" V="0" F="RUNADDON(&quot;…&quot;)"/>``: on a
double-click, drop, open, a right-click menu action…) and in the Hyperlink section:

* a formula calling RUNADDON, RUNADDONWARGS (an add-on or a macro, by name),
  RUNMACRO, CALLTHIS (VBA), PLAYSOUND (a sound file: a path on a share is fetched)
  or HYPERLINK (opens an address) loses its ``F`` attribute; the cell keeps its
  last value, which for an event cell is inert (``ooxml.visio_action``, location
  ``visio/pages/page1.xml#EventDblClick[1]``, numbered in document order per part);
* a Hyperlink row's Address is blanked, its description and sub-address (a page of
  the drawing) stay; web addresses stay when the policy keeps hyperlinks
  (``ooxml.hyperlink``, ``visio/pages/page1.xml#Hyperlink[1]``).
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from gateway.kinds import Action
from gateway.stages import ooxml_xml as X
from gateway.stages.links import describe_target, is_web, link_detail

if TYPE_CHECKING:
    from gateway.stages.ooxml_plan import Engine

NS = "http://schemas.microsoft.com/office/visio/2012/main"
CT_PREFIX = "application/vnd.ms-visio."
_CALLS = re.compile(r"\b(RUNADDONWARGS|RUNADDON|RUNMACRO|CALLTHIS|PLAYSOUND|HYPERLINK)\s*\(",
                    re.IGNORECASE)
#: bytes of a part that may hold either (case-insensitive; entities make a full parse)
_QUICK = re.compile(rb"runaddon|runmacro|callthis|playsound|hyperlink", re.IGNORECASE)


def quick_check(data: bytes) -> bool:
    return _QUICK.search(data) is not None


def shapesheet(eng: Engine, part: str, doc: X.XmlDoc) -> bool:
    """Neutralize the formulas that run something and the hyperlink addresses."""
    keep_links = eng.ctx.keeps("hyperlinks")
    changed = False
    links = 0
    for section in doc.root.iter(f"{{{NS}}}Section"):
        if section.get("N") != "Hyperlink":
            continue
        for cell in section.iter(f"{{{NS}}}Cell"):
            if cell.get("N") != "Address":
                continue
            target = (cell.get("V") or "").strip()
            formula = cell.get("F")
            if not target and not formula:
                continue
            web = is_web(target)
            if keep_links and web and not formula:
                continue
            links += 1
            what = link_detail(target, False) if web else (
                f"hyperlink to a {describe_target(target)}" if target
                else "hyperlink to an address a formula computes")
            eng.record("ooxml.hyperlink", f"{part}#Hyperlink[{links}]", Action.REMOVED,
                       f"{what}: address blanked, text kept")
            cell.set("V", "")
            cell.attrib.pop("F", None)
            changed = True
    actions = 0
    for cell in doc.root.iter(f"{{{NS}}}Cell"):
        formula = cell.get("F")
        found = _CALLS.search(formula) if formula else None
        if found is None:
            continue
        actions += 1
        eng.record("ooxml.visio_action", f"{part}#{cell.get('N') or 'Cell'}[{actions}]",
                   Action.NEUTRALIZED,
                   f"formula calling {found.group(1).upper()} removed, last value kept")
        del cell.attrib["F"]
        changed = True
    return changed

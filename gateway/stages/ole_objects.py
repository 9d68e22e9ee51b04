"""Storage-level findings shared by Word, Excel and PowerPoint files.

VBA projects (MS-OVBA 2.2.1): any storage holding a ``VBA`` storage is a project
root (``Macros`` in Word, ``_VBA_PROJECT_CUR`` in Excel 97+, ``_VBA_PROJECT`` in
Excel 5); the whole root storage is removed. Storages with those three names
are removed even when incomplete.

Embedded objects (MS-OLEDS) live in ``ObjectPool/_<id>`` (Word) and
``MBD<8 hex>`` (Excel); any other storage holding an ``\\x01Ole10Native`` or
``Equation Native`` stream is treated the same. What happens to each:

* OLE Package (``\\x01Ole10Native``, ``ole.package``): removed. A package is a
  file launcher, opened by its extension's handler; oleobj flags every one.
* Equation Editor (CLSID 0002CE02/0002CE03 or ``Equation Native``,
  ``ole.equation``): removed (CVE-2017-11882 and friends).
* ActiveX controls (``\\x03OCXNAME``, ``ole.activex``): removed.
* An embedded Word/Excel/PowerPoint document, or an OOXML ``Package`` stream
  (``ole.object``): with ``embedded: disarm`` it is run through the pipeline
  (``ctx.recurse``) and the rebuilt copy replaces the original; blocked ones
  and everything under ``embedded: remove`` are removed.
* Anything else (links, Paintbrush, unknown servers; ``ole.object``): removed.

The document keeps the object's cached picture (Word: the EMBED field's
picture result in the ``Data`` stream; Excel: the drawing's BLIP), so the page
looks the same; only activation is gone.
"""

from __future__ import annotations

import re

from gateway.kinds import Action
from gateway.models import Verdict
from gateway.pipeline.api import Embedded, StageContext
from gateway.stages import cfb_writer
from gateway.stages.cfb_writer import Node, printable

VBA_ROOTS = frozenset({"MACROS", "_VBA_PROJECT_CUR", "_VBA_PROJECT"})
VBA_ROOT_STREAMS = frozenset({"PROJECT", "PROJECTWM", "PROJECTLK"})
EQUATION_CLSIDS = frozenset({"0002CE02-0000-0000-C000-000000000046",
                             "0002CE03-0000-0000-C000-000000000046"})
_MBD = re.compile(r"^MBD[0-9A-F]{8}$", re.IGNORECASE)
DOC_STREAMS = {"WORDDOCUMENT": "doc", "WORKBOOK": "xls", "BOOK": "xls",
               "POWERPOINT DOCUMENT": "ppt"}


def is_vba_root(node: Node) -> bool:
    vba = node.child("VBA")
    return vba is not None and vba.is_storage


def classify(node: Node) -> tuple[str, str]:
    """(kind, detail) of the object stored in ``node`` (a storage)."""
    names = {c.name.upper() for c in node.children}
    if "\x01OLE10NATIVE" in names:
        return "ole.package", "embedded file (OLE Package)"
    if node.clsid_str in EQUATION_CLSIDS or "EQUATION NATIVE" in names:
        return "ole.equation", "Equation Editor object"
    if "\x03OCXNAME" in names or "\x03OCXDATA" in names:
        return "ole.activex", "ActiveX control"
    if is_vba_root(node):
        return "ole.vba", "VBA project"
    for stream, ext in DOC_STREAMS.items():
        if stream in names:
            return "ole.object", f"embedded .{ext} document"
    if "PACKAGE" in names:
        return "ole.object", "embedded Office Open XML document"
    if _is_link(node):
        return "ole.object", "linked object (OLE link to a file or URL)"
    return "ole.object", "embedded OLE object"


def _is_link(node: Node) -> bool:
    ole = node.child("\x01Ole")
    # MS-OLEDS 2.3.3 OLEStream: flags bit 0 (OLEStream_Link)
    return (ole is not None and not ole.is_storage and len(ole.data) >= 8
            and bool(ole.data[4] & 1))


def object_storages(root: Node) -> list[tuple[tuple[str, ...], Node, Node]]:
    """(path, storage, parent) of every embedded object storage, outermost only."""
    found: list[tuple[tuple[str, ...], Node, Node]] = []
    pool = root.child("ObjectPool")
    taken: set[int] = set()
    if pool is not None and pool.is_storage:
        for c in pool.children:
            if c.is_storage:
                found.append((("ObjectPool", c.name), c, pool))
                taken.add(id(c))
    for c in root.children:
        if c.is_storage and _MBD.match(c.name):
            found.append(((c.name,), c, root))
            taken.add(id(c))

    def visit(node: Node, path: tuple[str, ...]) -> None:
        for c in node.children:
            if not c.is_storage or id(c) in taken:
                continue
            here = (*path, c.name)
            names = {x.name.upper() for x in c.children}
            if names & {"\x01OLE10NATIVE", "EQUATION NATIVE"}:
                found.append((here, c, node))
            elif c.name.upper() not in VBA_ROOTS:
                visit(c, here)

    visit(root, ())
    return found


def handle_objects(root: Node, ctx: StageContext, apply: bool) -> None:
    for path, node, parent in object_storages(root):
        handle_object(path, node, parent, ctx, apply)


def handle_object(path: tuple[str, ...], node: Node, parent: Node, ctx: StageContext,
                  apply: bool) -> None:
    kind, detail = classify(node)
    where = printable(path)
    if kind == "ole.object" and ctx.option("embedded", "disarm") == "disarm":
        kept = _recurse_document(node, where, detail, ctx, apply)
        if kept is not None:
            if not kept and apply:
                parent.remove(node)
            return
    ctx.record(kind, where, action=Action.REMOVED, detail=detail)
    if apply:
        parent.remove(node)


def _recurse_document(node: Node, where: str, detail: str, ctx: StageContext,
                      apply: bool) -> bool | None:
    """Recurse an embedded document: None if it is none, else whether it is kept."""
    emb = recurse_embedded(node, ctx, apply)
    if emb is None:
        return None
    record_outcome(emb, where, detail, ctx)
    return emb.verdict.delivered


def recurse_embedded(node: Node, ctx: StageContext, apply: bool,
                     name: str | None = None) -> Embedded | None:
    """Run the document stored in ``node`` through the pipeline.

    None when ``node`` holds no document we can hand over (a Word/Excel/PowerPoint
    storage, or an OOXML ``Package`` stream). With ``apply`` and a delivered
    result, ``node`` is changed in place to hold the disarmed copy.
    """
    names = {c.name.upper(): c for c in node.children}
    package = names.get("PACKAGE")
    doc_ext = next((e for s, e in DOC_STREAMS.items() if s in names), None)
    stem = name or printable([node.name])
    if doc_ext is not None:
        inner = Node("Root Entry", True, clsid=node.clsid, state=node.state,
                     children=list(node.children))
        emb = ctx.recurse(cfb_writer.write(inner), f"{stem}.{doc_ext}")
    elif package is not None and not package.is_storage and package.data[:2] == b"PK":
        emb = ctx.recurse(package.data, f"{stem}.package")
    else:
        return None
    if apply and emb.verdict.delivered:
        if emb.data is None:
            raise AssertionError("delivered embedded item without data")
        if doc_ext is None and package is not None:
            package.data = emb.data
        else:
            cleaned = cfb_writer.read_tree(cfb_writer.open_ole(emb.data), len(emb.data))
            node.children = cleaned.children
    return emb


def record_outcome(emb: Embedded, where: str, detail: str, ctx: StageContext) -> None:
    if not emb.verdict.delivered:
        ctx.record("ole.object", where, action=Action.REMOVED,
                   detail=f"{detail}, blocked inside: {emb.reason or emb.verdict}")
    elif emb.verdict is Verdict.CLEAN and not emb.residual:
        ctx.record("ole.object", where, action=Action.KEPT, detail=f"{detail}, clean")
    else:
        ctx.record("ole.object", where, action=Action.DISARMED,
                   detail=f"{detail}, disarmed recursively")


_SUMMARY = "\x05DocumentSummaryInformation"


def blank_summary_links(root: Node, targets: list[str]) -> None:
    """Zero the copies of neutralized hyperlink targets that Office keeps in the
    document summary's hyperlink list (the _PID_HLINKS property): same length, so the
    property set stays valid, and no copy of the target is left in the file."""
    node = root.child(_SUMMARY)
    if node is None or node.is_storage or not targets:
        return
    data = bytearray(node.data)
    for target in targets:
        for needle in {target.encode("utf-16-le"), target.encode("latin-1", "replace")}:
            if len(needle) < 4:
                continue
            at = data.find(needle)
            while at >= 0:
                data[at:at + len(needle)] = bytes(len(needle))
                at = data.find(needle, at + len(needle))
    node.data = bytes(data)


def handle_vba(root: Node, ctx: StageContext, apply: bool) -> None:
    """Remove every VBA project storage (and a project stored at the root).

    Embedded object storages are skipped: ``handle_objects`` owns them.
    """
    objects = {id(n) for _, n, _ in object_storages(root)}

    def visit(node: Node, path: tuple[str, ...]) -> None:
        for c in list(node.children):
            if not c.is_storage or id(c) in objects:
                continue
            here = (*path, c.name)
            if c.name.upper() in VBA_ROOTS or is_vba_root(c):
                ctx.record("ole.vba", printable(here), action=Action.REMOVED,
                           detail=_vba_detail(c))
                if apply:
                    node.remove(c)
            else:
                visit(c, here)

    visit(root, ())
    if is_vba_root(root):
        for c in list(root.children):
            if c.name.upper() == "VBA" or c.name.upper() in VBA_ROOT_STREAMS:
                ctx.record("ole.vba", printable([c.name]), action=Action.REMOVED,
                           detail="VBA project at the root")
                if apply:
                    root.remove(c)


def _vba_detail(node: Node) -> str:
    vba = node.child("VBA")
    if vba is None:
        return "VBA project storage"
    modules = [c for c in vba.children
               if not c.is_storage and c.name.upper() not in {"DIR", "_VBA_PROJECT"}
               and not c.name.upper().startswith("__SRP_")]
    return f"VBA project, {len(modules)} module(s)"

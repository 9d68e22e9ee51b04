"""Writing a disarmed package: relationships parts rebuilt, parts in order, zip out."""

from __future__ import annotations

from typing import BinaryIO

from gateway.stages import ooxml_xml as X
from gateway.stages.ooxml_package import CT_PART, Package, rels_name, rels_source
from gateway.stages.ooxml_plan import Edits
from gateway.stages.ooxml_zip import ZipIn, ZipOut


def rels_bytes(pkg: Package, source: str, e: Edits) -> bytes | None:
    """The rebuilt relationships part of ``source``, or None when it is unchanged."""
    rp = pkg.rels[source]
    dead = e.dead.get(source, set())
    retarget = e.retarget.get(source, {})
    retype = e.retype.get(source, {})
    internal = e.internal.get(source, set())
    if not (dead & {r.id for r in rp.rels} or retarget or retype or internal):
        return None
    for rel in rp.rels:
        if rel.id in dead:
            rp.doc.root.remove(rel.element)
        else:
            if rel.id in internal:
                rel.element.attrib.pop("TargetMode", None)
            if rel.id in retarget:
                rel.element.set("Target", retarget[rel.id])
            if rel.id in retype:
                rel.element.set("Type", retype[rel.id])
    return X.serialize(rp.doc)


def final_parts(pkg: Package, e: Edits) -> list[tuple[str, str | None, bytes | None]]:
    """(output name, input name or None, new bytes or None = unchanged), in order."""
    out: list[tuple[str, str | None, bytes | None]] = []
    for name in pkg.names:
        src = rels_source(name)
        if src is not None:
            key = (pkg.find(src) or src) if src else ""
            if key not in pkg.rels or pkg.rels[key].name != name:
                continue
            if key and (key in e.removed or pkg.find(key) is None):
                continue
            out_name = rels_name(e.renamed[key]) if key in e.renamed else name
            out.append((out_name, name, rels_bytes(pkg, key, e)))
        elif name not in e.removed:
            out.append((e.renamed.get(name, name), name, e.replaced.get(name)))
    out.extend((name, None, data) for name, data in e.added.items())
    return out


def write_zip(pkg: Package, zin: ZipIn, e: Edits, dst: BinaryIO) -> None:
    parts = final_parts(pkg, e)
    zout = ZipOut(dst)
    if pkg.ct.changed or e.removed or e.renamed or e.added:
        zout.add(CT_PART, pkg.ct.serialize({n.lower(): n for n, _, _ in parts}))
    else:
        zout.copy(zin, CT_PART)  # as read: transcoded to UTF-8 if it had to be
    for out_name, in_name, data in parts:
        if in_name is None:
            zout.add(out_name, data or b"")
        elif data is None:
            zout.copy(zin, in_name, out_name)
        else:
            zout.add(out_name, data, zin.entries[in_name].info.date_time)
    zout.close()

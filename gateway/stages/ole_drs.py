"""Small OPC packages that Office 2007 and later keep inside legacy binary streams.

An .xls/.ppt/.doc saved by Office 2007+ carries, inside its drawing records
(OfficeArt), a zip with a DrawingML copy of each shape (``drs/shapexml.xml``, read
back by Office 2007+ instead of the binary shape), and a theme package in Excel's
THEME record. Their relationships may point outside the file: a shape's hyperlink
(``drs/_rels/shapexml.xml.rels``: a click on the picture opens the address), a
linked picture. oleobj reports them like those of a .docx.

Each zip found in a stream (local header to end-of-central-directory, readable by
zipfile) that is a package (``[Content_Types].xml``) loses its external
relationships: a hyperlink (``ole.hyperlink``) unless it is a web address the policy
keeps, anything else (``ole.external_link``). The zip is written again with the
same entries and padded with an archive comment to its old length, so no record
or offset around it moves; when it would not fit, its signatures are zeroed
(Office then reads the binary shape). Location ``<stream>#package@0x<offset>/<rels
part>#<relationship id>``. A zip split over several records (CONTINUE) is not
contiguous in the stream and is not seen here. More than 4096 zip end records, or
64 MiB of packages, in one stream: the file is refused (LimitExceeded).
"""

from __future__ import annotations

import io
import struct
import zipfile
import zlib
from xml.etree.ElementTree import Element

from gateway.errors import LimitExceeded
from gateway.kinds import Action
from gateway.pipeline.api import StageContext
from gateway.stages import ooxml_xml as X
from gateway.stages.links import describe_target, is_web, link_detail
from gateway.stages.ooxml_package import rels_source

_LOCAL, _CENTRAL, _END = b"PK\x03\x04", b"PK\x01\x02", b"PK\x05\x06"
#: packages bigger than this are not what Office keeps beside a shape or a theme
_MAX_PACKAGE = 1024 * 1024
#: end records in one stream, and bytes of packages read from it: a drawing past these is
#: absurd, and the file is refused rather than left partly unread
_MAX_PACKAGES = 4096
_MAX_READ = 64 * 1024 * 1024


def clean_stream(data: bytearray, stream: str, ctx: StageContext, apply: bool) -> bool:
    """Clean the packages inside one stream's bytes (in place); whether any changed.

    Packages are found from their end record: its central directory size and offset
    say where the zip starts (one look per end record, however many local-header
    signatures the bytes hold)."""
    changed = False
    looked = read = 0
    eocd = data.find(_END)
    while eocd >= 0:
        looked += 1
        if looked > _MAX_PACKAGES:
            raise LimitExceeded(f"more than {_MAX_PACKAGES} zip end records in one stream")
        if eocd + 22 <= len(data):
            cd_size, cd_offset = struct.unpack_from("<II", data, eocd + 12)
            end = eocd + 22 + struct.unpack_from("<H", data, eocd + 20)[0]
            start = eocd - cd_size - cd_offset
            if 0 <= start < eocd and end <= len(data) and end - start <= _MAX_PACKAGE \
                    and data[start:start + 4] == _LOCAL:
                read += end - start
                if read > _MAX_READ:
                    raise LimitExceeded("the packages in one stream are too large")
                new = _clean_package(bytes(data[start:end]), f"{stream}#package@0x{start:x}",
                                     ctx, apply)
                if new is not None:
                    data[start:end] = new    # the same length: later positions hold
                    changed = True
        eocd = data.find(_END, eocd + 4)
    return changed


#: what zipfile raises on a package or member it cannot read (RuntimeError: encrypted)
_UNREADABLE = (zipfile.BadZipFile, OSError, EOFError, ValueError, NotImplementedError,
               RuntimeError, zlib.error)


def _clean_package(blob: bytes, where: str, ctx: StageContext, apply: bool) -> bytes | None:
    try:
        zin = zipfile.ZipFile(io.BytesIO(blob))
        infos = zin.infolist()
    except _UNREADABLE:
        return None     # not a zip zipfile reads: not one oleobj or we can judge
    # OPC part names compare without regard to case (as the sniffer reads a package)
    if "[content_types].xml" not in {i.filename.lower() for i in infos}:
        return None
    parts: dict[str, bytes] = {}
    broken = False      # a member that does not read: the package cannot be written again
    for info in infos:
        try:
            parts[info.filename] = zin.read(info)
        except _UNREADABLE:
            broken = True
    keep_links = ctx.keeps("hyperlinks")
    edited: dict[str, bytes] = {}
    for name, raw in parts.items():
        if not name.lower().endswith(".rels") or b"external" not in raw.lower():
            continue
        try:
            doc = X.parse(raw, name)
        except X.NotWellFormed:
            continue
        root = doc.root
        gone = [(rel, kind) for rel in root
                if _drop(rel, kind := _kind(rel), keep_links)]
        for rel, kind in gone:
            target = rel.get("Target", "")
            if kind == "hyperlink":
                what = link_detail(target, False) if is_web(target) \
                    else f"hyperlink to a {describe_target(target)}"
                ctx.record("ole.hyperlink", f"{where}/{name}#{rel.get('Id', '')}",
                           action=Action.REMOVED, detail=f"{what} (shape copy for Office 2007+)")
            else:
                ctx.record("ole.external_link", f"{where}/{name}#{rel.get('Id', '')}",
                           action=Action.REMOVED,
                           detail=f"{kind} relationship to a {describe_target(target)}")
            root.remove(rel)
        if gone:
            edited[name] = X.serialize(doc)
            source = rels_source(name)
            if source in parts:
                fixed = _unreference(parts[source], {rel.get("Id", "") for rel, _ in gone})
                if fixed is not None:
                    edited[source] = fixed
    if not edited or not apply:
        return None
    if broken:      # the links must go, the damaged member cannot be copied: no package
        return _unreadable(blob)
    return _rewrite(infos, {**parts, **edited}, blob)


def _unreference(raw: bytes, ids: set[str]) -> bytes | None:
    """The part without the elements that name a removed relationship (``a:hlinkClick
    r:id="rId1"``), so Office's reader finds no dangling reference."""
    try:
        doc = X.parse(raw, "shape")
    except X.NotWellFormed:
        return None
    doomed = [el for el in doc.root.iter()
              if any(X.is_rel_attr(k) and v in ids for k, v in el.attrib.items())]
    X.remove_all(doc.parents(), doomed)
    return X.serialize(doc) if doomed else None


def _kind(rel: Element) -> str:
    """A relationship's type by its last segment, as ``ooxml_package.Rel.kind``."""
    return rel.get("Type", "").rstrip("/").rsplit("/", 1)[-1]


def _drop(rel: Element, kind: str, keep_links: bool) -> bool:
    if rel.get("TargetMode", "").lower() != "external":   # as ooxml_package reads it
        return False
    return not (kind == "hyperlink" and keep_links and is_web(rel.get("Target", "")))


def _rewrite(infos: list[zipfile.ZipInfo], parts: dict[str, bytes], blob: bytes) -> bytes:
    """The package again, padded to the old size with its comment; when it does not
    fit, the old bytes made unreadable."""
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as zout:
        for info in infos:
            new = zipfile.ZipInfo(info.filename, info.date_time)
            new.compress_type = zipfile.ZIP_DEFLATED
            zout.writestr(new, parts[info.filename])
    bare = out.getvalue()      # ends with its 22-byte end record, comment length 0
    pad = len(blob) - len(bare)
    if 0 <= pad <= 0xFFFF:
        return bare[:-2] + struct.pack("<H", pad) + b" " * pad
    return _unreadable(blob)


def _unreadable(blob: bytes) -> bytes:
    """``blob`` with every zip signature zeroed: no reader finds a package in it
    (Office then reads the binary shape)."""
    out = bytearray(blob)
    for sig in (_LOCAL, _CENTRAL, _END):
        at = out.find(sig)
        while at >= 0:
            out[at:at + 4] = bytes(4)
            at = out.find(sig, at + 4)
    return bytes(out)

"""Linked pictures in the OfficeArt shapes of legacy Office files (.doc, .xls, .ppt).

A picture, a picture fill or a line's picture fill of a drawing shape may name a
file or an address to load it from instead of holding it: the shape's property
table (OfficeArtFOPT, and the secondary and tertiary tables) has a name property
(``pibName`` and its kin, a UTF-16 string among the table's complex data) and a
flags property saying how to read the name (MS-ODRAW MSOBLIPFLAGS: a comment, a
file, a URL, linked to the file). Word and LibreOffice load a linked picture when
the document opens: a web address tracks the reader, a share (``\\\\host\\pic.png``,
``file://host/...``) sends the Windows logon to that host (forced authentication).
LibreOffice writes such a .doc for a floating linked picture.

A shape's hyperlink (``pihlShape``) to a script, file or share, or to a web or
mail address unless the policy keeps hyperlinks, loses its target: finding
``ole.hyperlink`` at ``<stream>#shape@0x<table offset>/pihlShape``.

A name that links the picture (the flags say linked, or not saved in the file) to
a place on another host (a web address, a share) loses its text (NUL characters,
same length: no record or offset around it moves) and its flags become "comment":
the shape keeps its place and any picture it holds. A name that only records where
an embedded picture came from (Word marks even a local file name "URL"), or a
local or relative path, is left alone, as in RTF. Finding ``ole.external_link`` at
``<stream>#shape@0x<table offset>/<property>``.

The tables are found by their record header in the streams that hold drawings
(Word's table and data streams, Excel's workbook, PowerPoint's document), each
checked whole: the property count must fit the record and the complex data the
record's remaining bytes exactly. A table split by an Excel CONTINUE record is not
contiguous and is not seen.
"""

from __future__ import annotations

import struct

from gateway.errors import LimitExceeded
from gateway.kinds import Action
from gateway.pipeline.api import StageContext
from gateway.stages.links import describe_target, is_elsewhere
from gateway.stages.ole_excel import hlink_problem

#: OfficeArtFOPT, OfficeArtSecondaryFOPT, OfficeArtTertiaryFOPT
_TABLES = (0xF00B, 0xF121, 0xF122)
#: a picture's name property -> the property saying how to read the name
_NAMES = {0x0105: 0x0106,   # pibName, pibFlags: the shape's picture
          0x0110: 0x0111,   # pibPrintName, pibPrintFlags: the picture printed instead
          0x0187: 0x0188,   # fillBlipName, fillBlipFlags: a picture fill
          0x01C6: 0x01C7,   # lineFillBlipName, lineFillBlipFlags
          0x0546: 0x0547, 0x0586: 0x0587, 0x05C6: 0x05C7, 0x0606: 0x0607}  # table borders
_PROPERTY_NAMES = {0x0105: "pibName", 0x0110: "pibPrintName", 0x0187: "fillBlipName",
                   0x01C6: "lineFillBlipName", 0x0546: "lineLeftFillBlipName",
                   0x0586: "lineTopFillBlipName", 0x05C6: "lineRightFillBlipName",
                   0x0606: "lineBottomFillBlipName"}
#: pihlShape: the hyperlink a click on the shape opens (a class id, then MS-OSHARED's
#: Hyperlink Object: version, flags, and the moniker that names the target)
_HYPERLINK = 0x0382
#: MSOBLIPFLAGS: the picture is not saved in the file, or is linked to the name (the
#: low bits only say whether the name is a comment, a file name or a URL: Word records
#: the file an embedded picture came from as a "URL" too)
_LINKED = 0x4 | 0x8
_COMPLEX = 0x8000


def clean_stream(data: bytearray, stream: str, ctx: StageContext, apply: bool) -> bool:
    """Unlink the linked pictures of every property table in one stream's bytes (in
    place when ``apply``); whether any was found."""
    found = False
    # property entries a stream's candidate tables may make us read: a table is checked
    # entry by entry, and candidates may overlap (a stream of crafted headers, each
    # claiming 4,095 entries, took 12 s per 200 kB); real drawings read a fraction
    budget = len(data) // 6 + _SPARE_ENTRIES
    for kind in _TABLES:
        marker = struct.pack("<H", kind)
        at = data.find(marker)
        while at >= 0:
            if at >= 2:
                count = _table(data, at - 2)
                budget -= abs(count)
                if budget < 0:
                    raise LimitExceeded(f"{stream}: too many drawing property tables to "
                                        "check (a crafted stream)")
                if count > 0:
                    found |= _unlink(data, at - 2, stream, ctx, apply)
            at = data.find(marker, at + 1)
    return found


#: entries beyond one per six bytes of a stream that its tables may have
_SPARE_ENTRIES = 65_536


def _table(data: bytearray, start: int) -> int:
    """The number of properties of the table whose header is at ``start`` (version 3,
    its properties within the record and their complex data filling the rest exactly);
    0 when there is none, minus the entries read to find out when that took reading."""
    if start + 8 > len(data):
        return 0
    head, kind, length = struct.unpack_from("<HHI", data, start)
    count, length = int(head) >> 4, int(length)
    if head & 0xF != 3 or kind not in _TABLES or not count \
            or 6 * count > length or start + 8 + length > len(data):
        return 0
    extra = 0
    for i in range(count):
        opid, value = struct.unpack_from("<HI", data, start + 8 + 6 * i)
        if opid & _COMPLEX:
            extra += value
    return count if 6 * count + extra == length else -count


def _unlink(data: bytearray, start: int, stream: str, ctx: StageContext, apply: bool) -> bool:
    count = struct.unpack_from("<H", data, start)[0] >> 4
    entries = start + 8
    values: dict[int, tuple[int, int]] = {}   # property id -> (entry offset, value)
    complex_at: dict[int, tuple[int, int]] = {}  # property id -> (data offset, length)
    pos = entries + 6 * count
    for i in range(count):
        opid, value = struct.unpack_from("<HI", data, entries + 6 * i)
        pid = opid & 0x3FFF
        values.setdefault(pid, (entries + 6 * i, value))
        if opid & _COMPLEX:
            complex_at.setdefault(pid, (pos, value))
            pos += value
    found = False
    for name, flags in _NAMES.items():
        if name not in complex_at or not values.get(flags, (0, 0))[1] & _LINKED:
            continue
        where, length = complex_at[name]
        target = bytes(data[where:where + length]).decode("utf-16-le", "replace") \
            .split("\0", 1)[0].strip()
        if not is_elsewhere(target):
            continue   # a file name or a local path: nothing fetched from another host
        ctx.record("ole.external_link", f"{stream}#shape@0x{start:x}/{_PROPERTY_NAMES[name]}",
                   action=Action.REMOVED,
                   detail=f"linked picture loaded from a {describe_target(target)} when the "
                          "document opens; the link was removed")
        found = True
        if apply:
            data[where:where + length] = bytes(length)
            flag_entry = values[flags][0]
            data[flag_entry + 2:flag_entry + 6] = bytes(4)   # msoblipflagComment
    if _HYPERLINK in complex_at:
        found |= _hyperlink(data, complex_at[_HYPERLINK], f"{stream}#shape@0x{start:x}", ctx,
                            apply)
    return found


def _hyperlink(data: bytearray, blob: tuple[int, int], where: str, ctx: StageContext,
               apply: bool) -> bool:
    """A shape's hyperlink to a script, file or share (a web or mail address unless the
    policy keeps hyperlinks) loses its target: the hyperlink object keeps its class id
    and version, its flags say it has no target, and the rest is zeroed (same length)."""
    at, length = blob
    hyperlink = bytes(data[at:at + length])
    why = hlink_problem(hyperlink, ctx.keeps("hyperlinks"), at=0) if length >= 24 \
        else "damaged hyperlink"
    if why is None:
        return False
    ctx.record("ole.hyperlink", f"{where}/pihlShape", action=Action.REMOVED,
               detail=f"hyperlink on a shape to a {why} removed, the shape kept")
    if apply and length >= 24:
        data[at + 20:at + length] = bytes(length - 20)
    return True

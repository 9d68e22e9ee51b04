"""Excel 97-2003 / Excel 5 (.xls/.xlt): the ``Workbook`` / ``Book`` BIFF stream (MS-XLS).

The stream is parsed into records and written again, so records may be dropped
or change length; every absolute stream position in it is then re-mapped (the
position of a byte inside a record moves with its record): BOUNDSHEET
``lbPlyPos``, INDEX ``ibXF``/``rgibRw`` and EXTSST ``ib``. Other offsets in the
format are relative to a record and do not move.

* ``OBPROJ`` (0x00D3, "this file has a VBA project") is dropped (``ole.vba``,
  ``Workbook#OBPROJ``); the project storage itself goes in ``ole_objects``.
* XLM macro sheets (BOUNDSHEET dt=1 or BOF dt=0x40, ``ole.xlm_macro``) become
  worksheets of their cell values (each FORMULA record becomes the record of its
  cached value: NUMBER, LABEL, BOOLERR or BLANK; everything but column widths, rows,
  cells, merged ranges and the window goes), so text typed on a macro sheet stays
  readable; Excel 5 VBA module sheets (dt=6, ``ole.vba``) become empty worksheets.
  Both keep their name and visibility, so sheet indices used by formulas and names
  stay valid. Location ``Workbook#sheet[<name>]``.
* Auto-run names (built-in Auto_Open/Auto_Close/Auto_Activate/Auto_Deactivate,
  or any name starting with ``auto_open`` etc., ``ole.auto_action``) are renamed
  ``_disarmed_<name>`` and their formula becomes ``#REF!``; names are referred to
  by index, so nothing else moves. Location ``Workbook#NAME[<name>]``.
* SUPBOOK links to a DDE/OLE server (``ole.dde``) or another workbook
  (``ole.external_link``) become "unused" links (virtPath ``" "``, MS-XLS
  2.4.271), keeping their sheet count and names; cells keep their cached values.
  Location ``Workbook#SUPBOOK[<n>]``.
* HLINK records (cell hyperlinks) whose target is not an http, https or mailto
  address, nor a place in the workbook (``ole.hyperlink``: a file or share path held
  in a file moniker, javascript:, file: and other URLs) are dropped with their
  tooltip record; the cell keeps its text. Location ``Workbook#HLINK[<n>]``, n
  counting HLINK records in stream order.
* Cell formulas of BIFF8 worksheets that fetch, start or open something
  (``ole_formula.problem``: WEBSERVICE, IMAGE, RTD, CALL, REGISTER, EXEC, HYPERLINK
  the policy would not keep) become the records of their cached values, like the
  formulas of a macro sheet; a shared or array formula that does goes with every
  cell using it. Location ``Workbook#sheet[<name>]!<cell>``. DBCELL offsets into
  the cell block follow the records that changed length.
* ``Ctls`` (ActiveX control data, ``ole.activex``) is removed.
* FILEPASS (any encryption, including the VelvetSweatshop default password)
  raises EncryptedContent.
"""

from __future__ import annotations

import bisect
import struct
from bisect import bisect_right
from collections.abc import Callable
from dataclasses import dataclass

from gateway.errors import EncryptedContent, Malformed
from gateway.kinds import Action
from gateway.pipeline.api import StageContext
from gateway.stages import ole_formula
from gateway.stages.cfb_writer import Node
from gateway.stages.links import describe_target, is_web, shown_address

BOF, EOF, BOUNDSHEET, NAME, OBPROJ, INDEX, EXTSST = 0x0809, 0x000A, 0x0085, 0x0018, 0x00D3, \
    0x020B, 0x00FF
FILEPASS, SUPBOOK, DIMENSIONS, WINDOW2, DBCELL = 0x002F, 0x01AE, 0x0200, 0x023E, 0x00D7
HLINK, HLINKTOOLTIP = 0x01B8, 0x0800
#: MS-OSHARED 2.3.7.1 Hyperlink Object flags, and the URL moniker's CLSID
_HAS_MONIKER, _HAS_LOCATION, _HAS_DISPLAY, _HAS_FRAME, _MONIKER_AS_STR = \
    0x01, 0x08, 0x10, 0x80, 0x100
_URL_MONIKER = bytes.fromhex("e0c9ea79f9bace118c8200aa004ba90b")
AUTO_BUILTIN = {0x01: "Auto_Open", 0x02: "Auto_Close", 0x0A: "Auto_Activate",
                 0x0B: "Auto_Deactivate"}
AUTO_PREFIX = ("auto_open", "auto_close", "auto_activate", "auto_deactivate")
_SHEET_DT = {1: ("ole.xlm_macro", "Excel 4.0 macro sheet: formulas removed, its values "
                                   "kept as a worksheet"),
             6: ("ole.vba", "VBA module sheet emptied")}
#: BOF dt of macro sheets and VBA modules -> BOUNDSHEET dt
_BOF_DT = {0x0040: 1, 0x0006: 6}


@dataclass(slots=True)
class Rec:
    type: int
    data: bytes
    pos: int = -1          # position in the original stream (-1: new record)


def _stream(root: Node) -> Node:
    for name in ("Workbook", "Book"):
        node = root.child(name)
        if node is not None and not node.is_storage:
            return node
    raise Malformed("no Workbook stream")


_HEADER = struct.Struct("<HH")  # record type, length


def records(data: bytes, repairs: list[str] | None = None) -> list[Rec]:
    """The records of a workbook stream.

    A record whose length runs past the end of the stream is refused, unless
    ``repairs`` is given and the workbook globals (with their BOUNDSHEET records) are
    complete: then the damaged sheet ends there (an EOF record is put in) and reading
    goes on at the next sheet's BOUNDSHEET offset, as Excel and LibreOffice read each
    sheet from its offset; what lies between is dropped and the repair noted. A stream
    that ends inside a sheet gets that sheet's EOF the same way.
    """
    out: list[Rec] = []
    sheets: list[int] = []      # BOUNDSHEET offsets of the globals
    globals_done = False        # the globals' EOF has been read
    pos, n = 0, len(data)
    header, append = _HEADER.unpack_from, out.append  # the loop runs once per record
    while pos + 4 <= n:
        rtype, size = header(data, pos)
        end = pos + 4 + size
        if end > n:
            if any(r.type == EOF for r in out[-1:]) or rtype == 0:
                break   # junk after the last EOF is dropped
            if repairs is None or not globals_done:
                raise Malformed(f"Excel record at 0x{pos:x} runs past the end of the stream")
            out.append(Rec(EOF, b"", pos))
            sheets.sort()  # the globals are complete: no offset is added any more
            at = bisect.bisect_right(sheets, pos)
            nxt = sheets[at] if at < len(sheets) else None
            repairs.append(f"Excel record at 0x{pos:x} runs past the end of the stream: "
                           + (f"its sheet ends there, reading goes on at 0x{nxt:x}"
                              if nxt is not None else "its sheet ends there"))
            if nxt is None:
                break
            pos = nxt
            continue
        if not globals_done:
            if rtype == BOUNDSHEET and size >= 4:
                sheets.append(struct.unpack_from("<I", data, pos + 4)[0])
            elif rtype == EOF:
                globals_done = True
        append(Rec(rtype, data[pos + 4:end], pos))
        pos = end
    if not out or out[0].type != BOF:
        raise Malformed("the Excel stream does not start with a BOF record")
    if repairs is not None and globals_done:
        _close_open_sheet(out, repairs)
    return out


def _close_open_sheet(out: list[Rec], repairs: list[str]) -> None:
    """A stream that ends inside a sheet (cut off at a record boundary): the sheet ends
    there, as Excel and LibreOffice read it, with the EOF records it lacks."""
    glob_end = next(i for i, r in enumerate(out) if r.type == EOF)
    depth = 0
    for rec in out[glob_end + 1:]:
        if rec.type == BOF:
            depth += 1
        elif rec.type == EOF:
            depth = max(0, depth - 1)
    if depth:
        out.extend(Rec(EOF, b"", -1) for _ in range(depth))
        repairs.append("the stream ends inside a sheet: the sheet ends there")


def check_encryption(root: Node) -> None:
    """FILEPASS sits in the workbook globals, before their EOF: walk only that far
    (parsing the whole stream here doubled the time of large workbooks)."""
    data = _stream(root).data
    pos = 0
    while pos + 4 <= len(data):
        rtype, size = struct.unpack_from("<HH", data, pos)
        if rtype == FILEPASS:
            raise EncryptedContent("the Excel workbook is encrypted")
        if rtype == EOF:
            return
        pos += 4 + size


def _biff8(recs: list[Rec]) -> bool:
    return len(recs[0].data) >= 2 and struct.unpack_from("<H", recs[0].data, 0)[0] == 0x0600


def _sheet_name(data: bytes, biff8: bool) -> str:
    if len(data) < 7:
        return "?"
    cch = data[6]
    if biff8 and len(data) >= 8:
        raw = data[8:8 + cch * (2 if data[7] & 1 else 1)]
        return raw.decode("utf-16-le", "replace") if data[7] & 1 else raw.decode("latin-1")
    return data[7:7 + cch].decode("latin-1")


def process(root: Node, ctx: StageContext, apply: bool) -> None:
    node = _stream(root)
    sname = node.name
    repairs: list[str] = []
    recs = records(node.data, repairs)
    for repair in repairs:
        ctx.record("ole.repaired", sname, action=Action.REPAIRED, detail=repair)
    biff8 = _biff8(recs)
    by_pos = {r.pos: i for i, r in enumerate(recs) if r.type == BOF}  # sheets start at one
    out = list(recs)
    replaced: dict[int, tuple[int, list[Rec]]] = {}   # BOF index -> (EOF index, new records)
    glob_end = next((i for i, r in enumerate(recs) if r.type == EOF), len(recs) - 1)
    supbooks = 0
    sheets: list[tuple[int, str]] = []   # (BOF index, name) of the sheets that stay
    for i, rec in enumerate(recs[:glob_end]):
        if rec.type == OBPROJ:
            ctx.record("ole.vba", f"{sname}#OBPROJ", action=Action.REMOVED,
                       detail="VBA project marker record")
            out[i] = Rec(-1, b"")
        elif rec.type == BOUNDSHEET and len(rec.data) >= 6:
            ply, dt = struct.unpack_from("<I", rec.data, 0)[0], rec.data[5]
            start = by_pos.get(ply)
            bof_dt = (struct.unpack_from("<H", recs[start].data, 2)[0]
                      if start is not None and len(recs[start].data) >= 4 else None)
            dt = _BOF_DT.get(bof_dt or -1, dt)
            if dt in _SHEET_DT:
                kind, detail = _SHEET_DT[dt]
                name = _sheet_name(rec.data, biff8)
                ctx.record(kind, f"{sname}#sheet[{name}]", action=Action.REMOVED, detail=detail)
                out[i] = Rec(rec.type, rec.data[:5] + b"\x00" + rec.data[6:], rec.pos)
                if start is not None:
                    end = _substream_end(recs, start)
                    replaced[start] = (end, _neutral_sheet(recs[start:end + 1], dt, biff8))
            elif start is not None:
                sheets.append((start, _sheet_name(rec.data, biff8)))
        elif rec.type == NAME:
            new = _name(rec, biff8, sname, ctx)
            if new is not None:
                out[i] = new
        elif rec.type == SUPBOOK and biff8:
            new = _supbook(rec, supbooks, sname, ctx)
            supbooks += 1
            if new is not None:
                out[i] = new
    _orphan_sheets(recs, glob_end, replaced, sname, biff8, ctx)
    if biff8:
        names = ole_formula.NameTable((r.type, r.data) for r in recs[:glob_end])
        judged = [False] * len(recs)
        for first, (last, _new) in replaced.items():
            judged[first:last + 1] = [True] * (last + 1 - first)
        for start, name in sheets:
            if start not in replaced:
                _cell_formulas(recs, out, start, _sheet_end(recs, start),
                               f"{sname}#sheet[{name}]", names, ctx, judged)
        # formulas no sheet entry leads to (a damaged BOUNDSHEET offset or BOF record):
        # a reader that finds them anyway must not find them live
        _cell_formulas(recs, out, glob_end, len(recs), f"{sname}#sheet[?]", names, ctx,
                       judged)
    _hyperlinks(recs, out, sname, ctx, ctx.keeps("hyperlinks"))
    ctls = root.child("Ctls")
    if ctls is not None:
        ctx.record("ole.activex", "Ctls", action=Action.REMOVED, detail="ActiveX control data")
        if apply:
            root.remove(ctls)
    if apply and (replaced or repairs or any(a is not b for a, b in zip(out, recs, strict=True))
                  or not _only_padding_after(recs, node.data)):
        final: list[Rec] = []
        i = 0
        while i < len(out):
            if i in replaced:
                end, new_recs = replaced[i]
                final.extend(new_recs)
                i = end + 1
                continue
            if out[i].type != -1:
                final.append(out[i])
            i += 1
        node.data = serialize(recs, final, biff8)


def _sheet_end(recs: list[Rec], start: int) -> int:
    try:
        return _substream_end(recs, start)
    except Malformed:          # a sheet whose EOF is missing: judge every formula after it
        return len(recs)


def _cell_formulas(recs: list[Rec], out: list[Rec], start: int, end: int, where: str,
                   names: ole_formula.NameTable, ctx: StageContext,
                   judged: list[bool]) -> None:
    """Formulas between ``recs[start]`` and ``recs[end]`` (a sheet's BOF and EOF) that
    fetch, start or open something (``ole_formula.problem``) become the records of their
    cached values; a shared or array formula that does takes every cell using it along,
    and goes. Records already ``judged`` are skipped, the others marked."""
    keep_links = ctx.keeps("hyperlinks")
    bad_shared: dict[tuple[int, int], tuple[str, str]] = {}
    for j in range(start + 1, end):
        rec = recs[j]
        if judged[j]:
            continue
        if rec.type not in (SHRFMLA, ARRAY) or recs[j - 1].type != FORMULA:
            continue
        at = 8 if rec.type == SHRFMLA else 12        # RefU, then the formula's cce
        if len(rec.data) < at + 2 or len(recs[j - 1].data) < 4:
            continue
        cce = struct.unpack_from("<H", rec.data, at)[0]
        why = ole_formula.problem(rec.data[at + 2:at + 2 + cce], names, keep_links)
        if why is not None:
            row, col = struct.unpack_from("<HH", recs[j - 1].data, 0)
            bad_shared[(row, col)] = why
            out[j] = Rec(-1, b"")
    for i in range(start + 1, end):
        rec = recs[i]
        if judged[i]:
            continue
        judged[i] = True
        if rec.type != FORMULA or len(rec.data) < 22:
            continue
        cce = struct.unpack_from("<H", rec.data, 20)[0]
        rgce = rec.data[22:22 + cce]
        master = ole_formula.shared_master(rgce)
        why = (bad_shared.get(master) if master is not None
               else ole_formula.problem(rgce, names, keep_links))
        if why is None:
            continue
        row, col = struct.unpack_from("<HH", rec.data, 0)
        kind, detail = why
        ctx.record(kind, f"{where}!{_cell_ref(row, col)}", action=Action.NEUTRALIZED,
                   detail=detail)
        out[i] = _formula_value(rec, recs, i)
        j = i + 1
        while j < end and recs[j].type in _FORMULA_EXTRA:
            j += 1
        while j < end and recs[j].type in (STRING, CONTINUE):   # the cached string
            out[j] = Rec(-1, b"")
            j += 1


def _cell_ref(row: int, col: int) -> str:
    letters = ""
    col += 1
    while col:
        col, rem = divmod(col - 1, 26)
        letters = chr(65 + rem) + letters
    return f"{letters}{row + 1}"


def _hyperlinks(recs: list[Rec], out: list[Rec], sname: str, ctx: StageContext,
                keep_web: bool) -> None:
    """Drop HLINK records (and their tooltips) that open anything but a place in the
    workbook, or a web or mail address when the policy keeps hyperlinks."""
    n = 0
    for i, rec in enumerate(recs):
        if rec.type != HLINK:
            continue
        why = hlink_problem(rec.data, keep_web)
        if why is not None:
            ctx.record("ole.hyperlink", f"{sname}#HLINK[{n}]", action=Action.REMOVED,
                       detail=f"hyperlink to a {why} removed, cell text kept")
            out[i] = Rec(-1, b"")
            if i + 1 < len(recs) and recs[i + 1].type == HLINKTOOLTIP:
                out[i + 1] = Rec(-1, b"")
        n += 1


def hlink_problem(data: bytes, keep_web: bool, *, at: int = 8) -> str | None:
    """What kind of place a hyperlink object (MS-OSHARED 2.3.7.1, with its class id)
    opens, when it may not stay; ``at``: where it starts in ``data`` (an HLINK record's
    after its cell range, a shape's pihlShape at 0)."""
    try:
        flags = struct.unpack_from("<I", data, at + 20)[0]  # after the CLSID, version
        pos = at + 24
        for present in (_HAS_DISPLAY, _HAS_FRAME):
            if flags & present:
                pos = _string(data, pos)[1]
        if not flags & _HAS_MONIKER:
            return None  # only a location in this workbook
        if flags & _MONIKER_AS_STR:
            target, _ = _string(data, pos)
        elif data[pos:pos + 16] == _URL_MONIKER:
            size = struct.unpack_from("<I", data, pos + 16)[0]
            raw = data[pos + 20:pos + 20 + size]
            target = raw.decode("utf-16-le", "replace").split("\x00", 1)[0]
        else:
            return "file or share path"  # a file moniker, or another kind
    except (struct.error, IndexError):
        return "damaged hyperlink"
    if is_web(target):
        return None if keep_web else f"web or mail address ({shown_address(target)}, by policy)"
    return describe_target(target)


def _string(data: bytes, pos: int) -> tuple[str, int]:
    """A HyperlinkString (character count with the NUL, then UTF-16) and what follows."""
    count = struct.unpack_from("<I", data, pos)[0]
    end = pos + 4 + 2 * count
    if end > len(data):
        raise IndexError("hyperlink string overruns its record")
    return data[pos + 4:end].decode("utf-16-le", "replace").rstrip("\x00"), end


def _orphan_sheets(recs: list[Rec], glob_end: int, replaced: dict[int, tuple[int, list[Rec]]],
                   sname: str, biff8: bool, ctx: StageContext) -> None:
    """Macro/module substreams no BOUNDSHEET points at are emptied as well."""
    i = glob_end + 1
    while i < len(recs):
        if recs[i].type != BOF:
            i += 1
            continue
        end = _substream_end(recs, i)
        dt = struct.unpack_from("<H", recs[i].data, 2)[0] if len(recs[i].data) >= 4 else 0
        if i not in replaced and dt in _BOF_DT:
            kind, detail = _SHEET_DT[_BOF_DT[dt]]
            ctx.record(kind, f"{sname}#sheet@0x{recs[i].pos:x}", action=Action.REMOVED,
                       detail=detail + " (not listed in the workbook)")
            replaced[i] = (end, _neutral_sheet(recs[i:end + 1], _BOF_DT[dt], biff8))
        i = end + 1


def _substream_end(recs: list[Rec], start: int) -> int:
    depth = 0
    for j in range(start, len(recs)):
        if recs[j].type == BOF:
            depth += 1
        elif recs[j].type == EOF:
            depth -= 1
            if depth == 0:
                return j
    raise Malformed("an Excel sheet has no EOF record")


FORMULA, STRING, CONTINUE, SHRFMLA, ARRAY = 0x0006, 0x0207, 0x003C, 0x04BC, 0x0221
NUMBER, LABEL, BOOLERR, BLANK = 0x0203, 0x0204, 0x0205, 0x0201
#: kept from a macro sheet, in this order around the cells: before DIMENSIONS
#: (DEFAULTROWHEIGHT, DEFCOLWIDTH, COLINFO), the cells (ROW, BLANK, MULBLANK, NUMBER,
#: LABEL, BOOLERR, RK, MULRK, LABELSST, RSTRING), after WINDOW2 (MERGECELLS)
_BEFORE_DIMS = frozenset({0x0225, 0x0055, 0x007D})
_CELLS = frozenset({0x0208, BLANK, 0x00BE, NUMBER, LABEL, BOOLERR, 0x027E, 0x00BD, 0x00FD,
                    0x00D6})
_AFTER_WINDOW = frozenset({0x00E5})
#: records that may stand between a FORMULA and the STRING holding its value
_FORMULA_EXTRA = frozenset({SHRFMLA, ARRAY, 0x0236})


def _neutral_sheet(sub: list[Rec], dt: int, biff8: bool) -> list[Rec]:
    """What replaces a macro sheet (dt 1: its values) or a VBA module sheet (empty)."""
    return _values_sheet(sub, biff8) if dt == 1 else _empty_sheet(sub[0], biff8)


def _values_sheet(sub: list[Rec], biff8: bool) -> list[Rec]:
    """A worksheet holding the cell values of the macro sheet ``sub`` (BOF to EOF):
    allow-listed records only, each formula replaced by its cached value. Nested
    substreams (charts) go."""
    empty = _empty_sheet(sub[0], biff8)
    before: list[Rec] = []
    cells: list[Rec] = []
    after: list[Rec] = []
    dims, window = empty[1], empty[2]
    depth = 0
    for i, rec in enumerate(sub[1:-1], 1):
        if rec.type == BOF:
            depth += 1
        elif rec.type == EOF and depth:
            depth -= 1
        elif depth:
            continue
        elif rec.type == DIMENSIONS:
            dims = rec
        elif rec.type == WINDOW2:
            window = rec
        elif rec.type in _BEFORE_DIMS:
            before.append(rec)
        elif rec.type in _CELLS:
            cells.append(rec)
        elif rec.type in _AFTER_WINDOW:
            after.append(rec)
        elif rec.type == FORMULA and len(rec.data) >= 14:
            cells.append(_formula_value(rec, sub, i))
    return [empty[0], *before, dims, *cells, window, *after, empty[-1]]


def _formula_value(rec: Rec, sub: list[Rec], i: int) -> Rec:
    """The record of a FORMULA's cached value (MS-XLS 2.5.133 FormulaValue)."""
    head, value = rec.data[:6], rec.data[6:14]
    if value[6:8] != b"\xff\xff":
        return Rec(NUMBER, head + value, rec.pos)
    kind = value[0]
    if kind in (1, 2):                       # boolean, error
        return Rec(BOOLERR, head + bytes([value[2], kind - 1]), rec.pos)
    if kind == 0:                            # a string, held by the STRING record after it
        j = i + 1
        while j < len(sub) - 1 and sub[j].type in _FORMULA_EXTRA:
            j += 1
        if j + 1 < len(sub) and sub[j].type == STRING and sub[j + 1].type != CONTINUE:
            # LABEL's string has the layout of STRING's
            return Rec(LABEL, head + sub[j].data, rec.pos)
    return Rec(BLANK, head, rec.pos)         # an empty string, or a value not found


def _empty_sheet(bof: Rec, biff8: bool) -> list[Rec]:
    data = bytearray(bof.data)
    if len(data) >= 4:
        struct.pack_into("<H", data, 2, 0x0010)
    if biff8:
        dims = struct.pack("<IIHHH", 0, 0, 0, 0, 0)
        win = struct.pack("<HHHIHHI", 0x06B6, 0, 0, 64, 0, 0, 0)
    else:
        dims = struct.pack("<HHHHH", 0, 0, 0, 0, 0)
        win = struct.pack("<HHHI", 0x00B6, 0, 0, 0)
    return [Rec(BOF, bytes(data), bof.pos), Rec(DIMENSIONS, dims), Rec(WINDOW2, win), Rec(EOF, b"")]


def _name(rec: Rec, biff8: bool, sname: str, ctx: StageContext) -> Rec | None:
    d = rec.data
    if len(d) < 15:
        return None
    grbit, _key, cch, _cce = struct.unpack_from("<HBBH", d, 0)
    name = ole_formula.defined_name(d) if biff8 else d[14:14 + cch].decode("latin-1")
    if grbit & 0x0020:
        label = AUTO_BUILTIN.get(ord(name[0]) if name else -1)
        if label is None:
            return None
    elif name.lower().startswith(AUTO_PREFIX):
        label = name
    else:
        return None
    ctx.record("ole.auto_action", f"{sname}#NAME[{label}]", action=Action.NEUTRALIZED,
               detail="auto-run name renamed, formula set to #REF!")
    new_name = ("_disarmed_" + label)[:255]
    grbit &= ~(0x0002 | 0x0004 | 0x0008 | 0x0020)
    rgce = b"\x1c\x17"      # PtgErr #REF!
    head = struct.pack("<HBBH", grbit, 0, len(new_name), len(rgce)) + d[6:10] + b"\0\0\0\0"
    if biff8:
        try:
            body = b"\x00" + new_name.encode("latin-1")
        except UnicodeEncodeError:
            body = b"\x01" + new_name.encode("utf-16-le")
    else:
        body = new_name.encode("latin-1", "replace")
    return Rec(NAME, head + body + rgce, rec.pos)


def _supbook(rec: Rec, n: int, sname: str, ctx: StageContext) -> Rec | None:
    d = rec.data
    if len(d) < 5:
        return None
    ctab, cch = struct.unpack_from("<HH", d, 0)
    if cch in (0x0401, 0x3A01) or cch == 0:
        return None
    high = d[4] & 1
    end = 5 + cch * (2 if high else 1)
    raw = d[5:end]
    path = raw.decode("utf-16-le", "replace") if high else raw.decode("latin-1")
    if path in (" ", "\x00"):
        return None
    if ctab == 0:
        kind, detail = "ole.dde", "DDE/OLE link made unused"
    else:
        kind, detail = "ole.external_link", "link to another workbook made unused"
    ctx.record(kind, f"{sname}#SUPBOOK[{n}]", action=Action.NEUTRALIZED, detail=detail)
    # only the path goes: the sheet count and names stay, which EXTERNSHEET, the cached
    # values (XCT/CRN) and every formula through them rely on (without them LibreOffice
    # showed neither the cached data nor some cells computed from it)
    return Rec(SUPBOOK, struct.pack("<HH", ctab, 1) + b"\x00 " + d[end:], rec.pos)


def _only_padding_after(recs: list[Rec], data: bytes) -> bool:
    """Whether the records span the stream from its start and only zero bytes follow
    them (the padding Excel leaves to a sector's end): then an unchanged stream is kept
    as it is. Anything else after the last record goes with a rewrite."""
    end = _covered(recs)
    return end >= 0 and not data[end:].strip(b"\x00")


def _covered(recs: list[Rec]) -> int:
    """Bytes of the stream the records span end to end from its start (-1: not so);
    a stream they span whole and nothing changed is kept as it is (writing it again
    would give the same bytes)."""
    pos = 0
    for rec in recs:
        if rec.pos != pos:
            return -1
        pos += 4 + len(rec.data)
    return pos


def serialize(orig: list[Rec], final: list[Rec], biff8: bool) -> bytes:
    """Write ``final`` and re-map absolute positions from the ``orig`` layout."""
    new_pos: dict[int, int] = {}
    pos = 0
    for rec in final:
        if rec.pos >= 0:
            new_pos[rec.pos] = pos
        pos += 4 + len(rec.data)
    starts = [r.pos for r in orig]

    def remap(old: int) -> int:
        k = bisect_right(starts, old) - 1
        if k < 0:
            return old
        base = orig[k].pos
        if base in new_pos:
            return new_pos[base] + (old - base)
        return old

    out = bytearray()
    for rec in final:
        data = rec.data
        if rec.type == BOUNDSHEET and len(data) >= 4:
            data = struct.pack("<I", remap(struct.unpack_from("<I", data, 0)[0])) + data[4:]
        elif rec.type == INDEX:
            data = _fix_index(data, biff8, remap)
        elif rec.type == DBCELL and rec.pos >= 0:
            data = _fix_dbcell(data, rec.pos, len(out), remap)
        elif rec.type == EXTSST and len(data) >= 2:
            buf = bytearray(data)
            for p in range(2, len(buf) - 7, 8):
                struct.pack_into("<I", buf, p, remap(struct.unpack_from("<I", buf, p)[0]))
            data = bytes(buf)
        out += struct.pack("<HH", rec.type, len(data)) + data
    return bytes(out)


def _fix_dbcell(data: bytes, old_at: int, new_at: int, remap: Callable[[int], int]) -> bytes:
    """DBCELL (MS-XLS 2.4.78): the offset back to the block's first ROW record, and
    the offsets, each from the one before and the first from the second ROW record
    (ROW records are 20 bytes), to the first cell of each row; cells may have changed
    length (formulas that became values)."""
    if len(data) < 4:
        return data
    back = struct.unpack_from("<I", data, 0)[0]
    first_row = old_at - back
    if back == 0 or first_row < 0:
        return data
    buf = bytearray(data)
    new_row = remap(first_row)
    struct.pack_into("<I", buf, 0, max(new_at - new_row, 0))
    old_prev = first_row + 20
    new_prev = new_row + 20
    for p in range(4, len(buf) - 1, 2):
        old_cell = old_prev + struct.unpack_from("<H", buf, p)[0]
        new_cell = remap(old_cell)
        struct.pack_into("<H", buf, p, min(max(new_cell - new_prev, 0), 0xFFFF))
        old_prev, new_prev = old_cell, new_cell
    return bytes(buf)


def _fix_index(data: bytes, biff8: bool, remap: Callable[[int], int]) -> bytes:
    first = 16 if biff8 else 12      # reserved, rwMic, rwMac, ibXF
    xf_at = 12 if biff8 else 8
    if len(data) < first:
        return data
    buf = bytearray(data)
    for p in [xf_at, *range(first, len(buf) - 3, 4)]:
        old = struct.unpack_from("<I", buf, p)[0]
        if old:
            struct.pack_into("<I", buf, p, remap(old))
    return bytes(buf)

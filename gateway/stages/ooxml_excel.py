"""SpreadsheetML specifics: macro sheets, auto-run names, external links, DDE formulas,
data connections, and the binary workbook (xlsb).

Locations: ``xl/workbook.xml#definedName[_xlnm.Auto_Open]``,
``xl/worksheets/sheet1.xml#cell[B2]`` (a DDE formula), ``xl/connections.xml#connection[1]``.

xlsx/xlsm: a macro sheet is replaced by a worksheet of its cell values under the same
relationship id and ``<sheet>`` entry (name and visibility kept, so sheet indices stay
valid and text typed on it stays readable): formulas go, a formula's cached string
becomes an inline string, and only sheet properties, views, column widths, cells,
merged ranges and margins are carried over. A macro sheet that cannot be read goes
with its ``<sheet>`` entry; defined names local to it or pointing into it go then, and
``localSheetId`` and the active tab are renumbered. Defined names that auto-run
(Auto_Open, Auto_Close, Auto_Activate, Auto_Deactivate and their suffixed variants)
always go. Formulas that refer to removed external workbooks
(``[1]Sheet1!A1``) or are DDE calls (``cmd|' /c calc'!A0``) become their cached value,
and ``calcChain.xml`` is dropped so Excel rebuilds it.

xlsb: the workbook is binary (BIFF12 records). Sheet entries refer to sheets by
relationship id and other records refer to sheets by index, so a macro sheet is
replaced under the same relationship id (indices stay valid) by a worksheet of its
values (formula cells become value cells with their cached values), or an empty one
when it cannot be read;
auto-run names are renamed ``Disabled_…`` in place (name indices stay valid).
"""

from __future__ import annotations

import posixpath
import re
import struct
from typing import TYPE_CHECKING
from xml.etree.ElementTree import Element

from gateway.errors import Malformed
from gateway.kinds import Action
from gateway.stages import ooxml_xml as X
from gateway.stages.links import formula_link_problem
from gateway.stages.ooxml_package import Package, relative_target

if TYPE_CHECKING:
    from gateway.stages.ooxml_plan import Engine

AUTO_NAME = re.compile(r"^(_xlnm\.)?auto_(open|close|activate|deactivate)", re.IGNORECASE)
_EXTREF = re.compile(r"(?:^|[^A-Za-z0-9_.\]\[])'?\[\d+\]")
#: a DDE call in a formula: application|topic!item (``cmd|' /c calc'!A0``)
#: (possessive and anchored at a name's start: tried at every letter of a long formula and
#: backtracking, the plain pattern took quadratic time, 0.2 s for 20 kB)
DDE = re.compile(r"(?<![A-Za-z0-9_.$-])[A-Za-z0-9_.$-]++\|\s*+(?:'[^']*+'|[A-Za-z0-9_.$ -]++)"
                 r"\s*+!")
#: a workbook named by its file, with or without a path, in a formula or a name
#: ('C:\\data\\[book.xlsx]Sheet1'!A1, [book.xlsx]Sheet1!A1): LibreOffice (and Excel)
#: read it as a link to that file; only "[1]" through an externalLink part was seen
_PATH_REF = re.compile(r"\[[^\[\]\"]{1,255}\.(?:xl[a-z]{1,2}|xls|ods|csv)\]", re.IGNORECASE)
#: functions that fetch from the network (WEBSERVICE, IMAGE), start a COM server (RTD)
#: or call into a DLL or a program (Excel 4.0's CALL, REGISTER, EXEC)
_ACTIVE_FN = re.compile(r"(?<![A-Za-z0-9_.])(?:_xlfn\.)?(WEBSERVICE|IMAGE|RTD|CALL|REGISTER"
                        r"(?:\.ID)?|EXEC)\s*\(", re.IGNORECASE)
_FN_KIND = {"webservice": ("ooxml.external_data", "WEBSERVICE formula (fetches a web address)"),
            "image": ("ooxml.external_data", "IMAGE formula (loads a picture from the web)"),
            "rtd": ("ooxml.dde", "RTD formula (starts a real-time data COM server)"),
            "call": ("ooxml.xlm_macro", "CALL formula (calls into a DLL)"),
            "register": ("ooxml.xlm_macro", "REGISTER formula (registers a DLL function)"),
            "register.id": ("ooxml.xlm_macro", "REGISTER.ID formula (a DLL function)"),
            "exec": ("ooxml.xlm_macro", "EXEC formula (starts a program)")}
#: Excel 4.0 macro functions, which a name in a workbook without macro sheets has no
#: use for (GET.WORKBOOK, EVALUATE, FOPEN...)
_XLM_FN = re.compile(r"(?<![A-Za-z0-9_.])(?:CALL|REGISTER(?:\.ID)?|EXEC|EVALUATE|RUN|FOPEN|"
                     r"FWRITE(?:LN)?|FREAD(?:LN)?|FCLOSE|FILES|FORMULA(?:\.[A-Z]+)?|HALT|ALERT|"
                     r"SET\.(?:VALUE|NAME)|GET\.[A-Z.]+)\s*\(", re.IGNORECASE)
#: HYPERLINK( and its first argument when that is a string
_HYPERLINK = re.compile(r'(?<![A-Za-z0-9_.])HYPERLINK\s*\(\s*("(?:[^"]|"")*")?', re.IGNORECASE)
_STRING = re.compile(r'"(?:[^"]|"")*"')
WORKSHEET_REL = "http://schemas.openxmlformats.org/officeDocument/2006/relationships/worksheet"
WORKSHEET_BIN_CT = "application/vnd.ms-excel.worksheet"
WORKSHEET_CT = "application/vnd.openxmlformats-officedocument.spreadsheetml.worksheet+xml"
SML_NS = "http://schemas.openxmlformats.org/spreadsheetml/2006/main"


def external_link_kind(pkg: Package, name: str) -> tuple[str, str]:
    """(kind, detail) for an externalLink part: DDE link, OLE link or another workbook."""
    if not name.lower().endswith(".xml"):
        return "ooxml.external_link", "link to another workbook (binary)"
    try:
        doc = X.parse(pkg.read(name), name)
    except X.NotWellFormed:
        return "ooxml.external_link", "unreadable external link"
    for el in doc.root:
        what = X.local(el.tag)
        if what == "ddeLink":
            return "ooxml.dde", f"DDE link (service {el.get('ddeService', '?')[:40]})"
        if what == "oleLink":
            return "ooxml.external_link", f"OLE link ({el.get('progId', '?')[:40]})"
    targets = [r.target for r in pkg.rels_of(name) if r.external]
    where = f": {targets[0][:100]}" if targets else ""
    return "ooxml.external_link", f"link to another workbook{where}"


def _rid(el: Element) -> str:
    for k, v in el.attrib.items():
        if X.is_rel_attr(k) and X.local(k) == "id":
            return str(v)
    return ""


def _child(el: Element, name: str) -> Element | None:
    for c in el:
        if X.local(c.tag) == name:
            return c
    return None


def workbook(eng: Engine, part: str, doc: X.XmlDoc) -> bool:
    dead = eng.e.dead.get(part, set())
    root = doc.root
    sheets_el = _child(root, "sheets")
    sheets = [s for s in sheets_el if X.local(str(s.tag)) == "sheet"] \
        if sheets_el is not None else []
    gone = [i for i, s in enumerate(sheets) if _rid(s) in dead]
    if sheets and len(gone) == len(sheets):
        raise Malformed("the workbook holds nothing but macro sheets")
    gone_names = [sheets[i].get("name", "") for i in gone]
    changed = False
    names_el = _child(root, "definedNames")
    for d in list(names_el) if names_el is not None else []:
        name = d.get("name", "")
        text = d.text or ""
        local_id = d.get("localSheetId")
        why, kind = None, "ooxml.xlm_macro"
        if AUTO_NAME.match(name):
            why = "auto-run name"
        elif local_id is not None and local_id.isdigit() and int(local_id) in gone:
            why = "name local to a removed macro sheet"
        elif any(_refers_to(text, s) for s in gone_names):
            why = "name pointing into a removed macro sheet"
        elif names_other_workbook(text, eng.ext_links_removed):
            why, kind = "name referring to another workbook", "ooxml.external_link"
        elif _XLM_FN.search(code := _STRING.sub('""', text)) or _ACTIVE_FN.search(code):
            why = "name calling Excel 4.0 macro functions or fetching data"
        if why:
            names_el.remove(d)                          # type: ignore[union-attr]
            eng.record(kind, f"{part}#definedName[{name[:60]}]", Action.REMOVED, why)
            changed = True
        elif local_id is not None and local_id.isdigit() and gone:
            d.set("localSheetId", str(_shift(int(local_id), gone)))
            changed = True
    if names_el is not None and len(names_el) == 0:
        root.remove(names_el)
    if gone:
        left = len(sheets) - len(gone)
        for view in X.iter_local(root, "workbookView"):
            for attr in ("activeTab", "firstSheet"):
                value = view.get(attr)
                if value is not None and value.isdigit():
                    n = int(value)
                    n = 0 if n in gone else min(_shift(n, gone), left - 1)
                    view.set(attr, str(n))
        changed = True
    return changed


def _shift(index: int, gone: list[int]) -> int:
    return index - sum(1 for g in gone if g < index)


def _refers_to(formula: str, sheet: str) -> bool:
    if not sheet:
        return False
    low = formula.lower()
    quoted = "'" + sheet.replace("'", "''").lower() + "'!"
    return quoted in low or re.search(r"(?:^|[^A-Za-z0-9_.'])" + re.escape(sheet.lower()) + "!",
                                      low) is not None


def formulas(eng: Engine, part: str, doc: X.XmlDoc) -> bool:
    """Turn into their cached values: DDE formulas, formulas into other workbooks
    (removed external links, or a workbook named by its file), formulas that fetch or
    start something (WEBSERVICE, IMAGE, RTD, CALL, REGISTER, EXEC), and HYPERLINK
    formulas the policy would not keep as a link (one to a file, a share or a script
    always; to a web or mail address unless ``keep: [hyperlinks]``; a jump within the
    workbook stays)."""
    external = 0
    shared: set[str] = set()
    changed = False
    keep_links = eng.ctx.keeps("hyperlinks")
    for cell in X.iter_local(doc.root, "c"):
        f = _child(cell, "f")
        if f is None:
            continue
        text = f.text or ""
        where = f"{part}#cell[{cell.get('r', '?')}]"
        code = _STRING.sub('""', text)     # the formula without its string constants
        active = _ACTIVE_FN.search(code)
        link = _hyperlink_problem(text, keep_links)
        if "|" in text and DDE.search(text):
            eng.record("ooxml.dde", where, Action.NEUTRALIZED,
                       "DDE formula replaced by its last value")
        elif (eng.ext_links_removed and _EXTREF.search(text)) or _PATH_REF.search(code):
            external += 1
        elif active is not None:
            kind, what = _FN_KIND[active.group(1).lower()]
            eng.record(kind, where, Action.NEUTRALIZED, f"{what} replaced by its last value")
        elif link is not None:
            eng.record("ooxml.hyperlink", where, Action.NEUTRALIZED,
                       f"HYPERLINK formula to {link} replaced by its last value")
        else:
            continue
        if f.get("t") == "shared" and f.get("si") is not None:
            shared.add(f.get("si", ""))
        cell.remove(f)
        changed = True
    if shared:   # cells sharing a removed master formula lose theirs too
        for cell in X.iter_local(doc.root, "c"):
            f = _child(cell, "f")
            if f is not None and f.get("t") == "shared" and f.get("si") in shared:
                cell.remove(f)
    if external:
        eng.record("ooxml.external_link", part, Action.NEUTRALIZED,
                   f"{external} formula{'s' if external > 1 else ''} referring to other "
                   "workbooks replaced by their last values")
    if changed:
        eng.formulas_removed = True
    return changed


def names_other_workbook(formula: str, ext_links_removed: bool) -> bool:
    """Whether a formula reads a cell of another workbook: one named by its file, or an
    external link that was removed."""
    return bool(_PATH_REF.search(_STRING.sub('""', formula))
                or (ext_links_removed and _EXTREF.search(formula)))


def _hyperlink_problem(formula: str, keep_links: bool) -> str | None:
    """What a HYPERLINK call in ``formula`` opens, when it may not stay a link: each call
    is judged by its first argument (a string; anything computed is judged by the
    string it starts with, and is not kept when it starts with none)."""
    for m in _HYPERLINK.finditer(formula):
        if m.group(1) is None:
            return "a computed address"
        why = formula_link_problem(m.group(1)[1:-1].replace('""', '"'), keep_links)
        if why is not None:
            return why
    return None


_CONN_STRINGS = {"connection", "command", "url"}
_CONN_DROP = {"sourceFile", "odcFile", "savePassword", "connectionFile"}


def connections(eng: Engine, part: str, doc: X.XmlDoc) -> bool:
    """Blank every connection string, URL and source file; nothing left to refresh."""
    changed = False
    conns = [c for c in doc.root if X.local(c.tag) == "connection"]
    for index, conn in enumerate(conns, 1):
        hit = False
        for el in conn.iter():
            for key in list(el.attrib):
                name = X.local(key)
                value = el.attrib[key].strip()
                if name in _CONN_STRINGS and value:
                    el.attrib[key] = ""
                    hit = True
                elif (name in _CONN_DROP and value) or (
                        name == "refreshOnLoad" and value.lower() in ("1", "true")):
                    del el.attrib[key]
                    hit = True
        if hit:
            changed = True
            eng.record("ooxml.external_data", f"{part}#connection[{index}]",
                       Action.NEUTRALIZED, f"data connection {conn.get('name', '')[:40]!r}: "
                       "source and refresh-on-open removed")
    return changed


# ------------------------------------------------------------------------------- xlsb


def _rec(rtype: int, body: bytes = b"") -> bytes:
    out = bytearray()
    for number, limit in ((rtype, 2), (len(body), 4)):
        rest = number
        for _ in range(limit):
            byte = rest & 0x7F
            rest >>= 7
            out.append(byte | (0x80 if rest else 0))
            if not rest:
                break
    return bytes(out) + body


#: BrtBeginSheet, BrtWsDim, BrtBeginSheetData, BrtEndSheetData, BrtEndSheet
EMPTY_SHEET_BIN = _rec(129) + _rec(148, bytes(16)) + _rec(145) + _rec(146) + _rec(130)

#: records of a binary macro sheet kept in its values sheet (MS-XLSB 2.3): the sheet's
#: frame, properties, dimension, views and selection, column formats, the cell table
#: (row headers and the cell records of values), print options and margins
_BIN_KEEP = frozenset({129, 130, 147, 148, 133, 134, 137, 138, 152, 485, 390, 391, 60,
                       145, 146, 0, 1, 2, 3, 4, 5, 6, 7, 476, 477})
#: a formula cell (BrtFmlaString/Num/Bool/Error) -> the value cell holding its cached value
#: (BrtCellSt/Real/Bool/Error)
_BIN_FORMULA = {8: 6, 9: 5, 10: 4, 11: 3}
_BIN_FUTURE_BEGIN, _BIN_FUTURE_END = 37, 38   # BrtACBegin/BrtACEnd: extension blocks


def values_sheet_bin(data: bytes) -> bytes:
    """The binary worksheet holding the cell values of the binary macro sheet ``data``:
    allow-listed records only, each formula cell replaced by its cached value."""
    out: list[bytes] = []
    depth = 0
    for rtype, body in _records(data):
        if rtype == _BIN_FUTURE_BEGIN:
            depth += 1
        elif rtype == _BIN_FUTURE_END:
            depth = max(depth - 1, 0)
        elif depth:
            continue
        elif rtype in _BIN_KEEP:
            out.append(_rec(rtype, body))
        elif rtype in _BIN_FORMULA and len(body) >= 9:
            size = 1 if rtype in (10, 11) else 8
            if rtype == 8:                       # XLWideString: cch (4) + UTF-16
                size = 4 + 2 * struct.unpack_from("<I", body, 8)[0] if len(body) >= 12 else 0
            if size and len(body) >= 8 + size:
                out.append(_rec(_BIN_FORMULA[rtype], body[:8 + size]))
    if not out or out[0] != _rec(129) or out[-1] != _rec(130):
        raise Malformed("the binary macro sheet is not a sheet")
    return b"".join(out)


def substitute_macrosheet(eng: Engine, name: str) -> str:
    """Replace a macro sheet by a worksheet under the same relationship: xlsb an empty
    one, xlsx one holding its values (``values_worksheet``). The detail for the report;
    Malformed when an XML macro sheet cannot be read."""
    xlsb = is_xlsb_sheet(name)
    if xlsb:
        try:
            data, detail = values_sheet_bin(eng.pkg.read(name)), \
                "formulas removed, its cell values kept as a worksheet"
        except Malformed:
            data, detail = EMPTY_SHEET_BIN, "unreadable, an empty sheet takes its place"
        ext, ct = "bin", WORKSHEET_BIN_CT
    else:
        data, ext, ct, detail = values_worksheet(eng.pkg.read(name), name), "xml", \
            WORKSHEET_CT, "formulas removed, its cell values kept as a worksheet"
    n = 1
    while eng.pkg.find(new := f"xl/worksheets/sheet{n}.{ext}") is not None \
            or new in eng.e.added:
        n += 1
    eng.e.added[new] = data
    eng.e.substituted[name] = new
    eng.pkg.ct.set(new, ct)
    for rp, rel in eng.pkg.all_rels():
        if rel.part == name:
            eng.e.retarget[rp.source][rel.id] = relative_target(rp.source, new)
            eng.e.retype[rp.source][rel.id] = WORKSHEET_REL
    return detail


#: worksheet children carried over from a macro sheet, in CT_Worksheet order
_SHEET_PARTS = ("sheetPr", "dimension", "sheetViews", "sheetFormatPr", "cols", "sheetData",
                "mergeCells", "printOptions", "pageMargins")


def values_worksheet(data: bytes, name: str) -> bytes:
    """A worksheet holding the cell values of the macro sheet ``data``."""
    doc = X.parse(data, name)
    main = next((X.ns(el.tag) for el in doc.root if X.local(el.tag) == "sheetData"), SML_NS)
    root = Element(f"{{{main}}}worksheet")
    for part in _SHEET_PARTS:
        for el in doc.root:
            if el.tag == f"{{{main}}}{part}":
                root.append(_own(el, main))
    if _child(root, "sheetData") is None:
        data_el = Element(f"{{{main}}}sheetData")
        at = next((i for i, el in enumerate(root) if X.local(el.tag) in _SHEET_PARTS[6:]),
                  len(root))
        root.insert(at, data_el)
    for view in X.iter_local(root, "sheetView"):
        for attr in ("tabSelected", "showFormulas"):  # the workbook's active tab decides
            view.attrib.pop(attr, None)
    for cell in X.iter_local(root, "c"):
        value = _child(cell, "v")
        text = value.text if value is not None else None
        for child in list(cell):
            if X.local(child.tag) not in ("v", "is"):
                cell.remove(child)                      # the formula
        for attr in ("cm", "vm"):                       # metadata this sheet does not have
            cell.attrib.pop(attr, None)
        if cell.get("t") == "str":                      # a formula's string: inline now
            if value is not None:
                cell.remove(value)
            cell.set("t", "inlineStr")
            inline = Element(f"{{{main}}}is")
            t = Element(f"{{{main}}}t", {X.XML_SPACE: "preserve"})
            t.text = text or ""
            inline.append(t)
            cell.append(inline)
    return X.serialize(X.XmlDoc(root, {root: [("", main)]}))


def _own(el: Element, main: str) -> Element:
    """A copy of ``el`` with only SpreadsheetML elements and attributes (no extensions,
    no relationship ids, nothing in another namespace)."""
    copy = Element(el.tag, {k: v for k, v in el.attrib.items()
                            if k[:1] != "{" or k.startswith(f"{{{X.XML_NS}}}")})
    copy.text = el.text
    for child in el:
        if X.ns(child.tag) == main and X.local(child.tag) != "extLst":
            kept = _own(child, main)
            kept.tail = child.tail
            copy.append(kept)
    return copy


def _records(data: bytes) -> list[tuple[int, bytes]]:
    out: list[tuple[int, bytes]] = []
    i = 0
    try:
        while i < len(data):
            values = []
            for limit in (2, 4):
                value = shift = 0
                for _ in range(limit):
                    byte = data[i]
                    i += 1
                    value |= (byte & 0x7F) << shift
                    shift += 7
                    if not byte & 0x80:
                        break
                values.append(value)
            rtype, size = values
            if i + size > len(data):
                raise IndexError
            out.append((rtype, data[i:i + size]))
            i += size
    except IndexError:
        raise Malformed("the binary workbook (xlsb) is truncated") from None
    return out


def workbook_bin(eng: Engine, part: str, data: bytes) -> bytes | None:
    """Rename auto-run defined names (BrtName) in an xlsb workbook."""
    records = _records(data)
    changed = False
    for i, (rtype, body) in enumerate(records):
        if rtype != 39 or len(body) < 13:
            continue
        flags, chkey, itab, cch = struct.unpack_from("<IBII", body)
        end = 13 + 2 * cch
        if cch > 255 or end > len(body):
            continue
        name = body[13:end].decode("utf-16-le", "replace")
        if not AUTO_NAME.match(name):
            continue
        new = "Disabled_" + re.sub(r"^_xlnm\.", "", name, flags=re.IGNORECASE)
        flags &= ~((1 << 1) | (1 << 3) | (1 << 5))     # not a macro, not a built-in name
        records[i] = (rtype, struct.pack("<IBII", flags, chkey, itab, len(new))
                      + new.encode("utf-16-le") + body[end:])
        eng.record("ooxml.xlm_macro", f"{part}#definedName[{name[:60]}]", Action.NEUTRALIZED,
                   f"auto-run name renamed {new[:60]}")
        changed = True
    return b"".join(_rec(t, b) for t, b in records) if changed else None


def is_xlsb_sheet(name: str) -> bool:
    return posixpath.splitext(name)[1].lower() == ".bin"

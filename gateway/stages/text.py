"""Plain text, CSV and SYLK.

Plain text has no active content of its own: its rebuild is its bytes. (Text
that is really a script is sniffed as ``executable.script`` and never reaches
this stage.)

CSV opened in Excel or LibreOffice evaluates cells that start with ``=``, ``+``,
``-`` or ``@``: ``=cmd|' /C calc'!A0`` launches a program through DDE and
``=HYPERLINK(...)``/``=WEBSERVICE(...)`` send data out. With
``csv_formulas: neutralize`` such cells get a leading apostrophe, so the
spreadsheet shows the text instead of running it; ordinary numbers (``-5``) and
harmless formulas are left alone. Only changed rows are rewritten; the file
keeps its encoding (UTF-8 with or without BOM, CP932…) and line endings.

Locations are ``row[r]/col[c]`` (from 1, like a spreadsheet).

SYLK (.slk) is a spreadsheet in text records whose formulas Excel runs as Excel 4.0
macros: it is rebuilt without formulas, names and links (gateway/stages/sylk.py),
whatever ``csv_formulas`` says; ``sylk: block`` blocks it instead (the strict policy).

iCalendar invitations (.ics, text/calendar) lose the files they carry, alarms that
run a program and HTML descriptions that run or fetch (gateway/stages/calendar.py).

XML documents that are no Office, OpenDocument or SVG format (data files, XSLT
stylesheets, XHTML inside XML) lose entity DTDs, stylesheet instructions and the
HTML/SVG parts a browser runs (gateway/stages/xml_doc.py).
"""

from __future__ import annotations

import codecs
import csv
import re
from typing import BinaryIO, ClassVar

from gateway.errors import Malformed, PolicyBlocked
from gateway.kinds import Action
from gateway.pipeline import registry
from gateway.pipeline.api import StageContext
from gateway.stages import calendar, sylk, xml_doc

# a cell as long as the file may be (Python's csv refuses fields over 128 kB by default:
# a CSV with one long text cell was an internal error); the job's size limit bounds it
csv.field_size_limit(2**31 - 1)
_TRIGGER = ("=", "+", "-", "@", "\t", "\r", "\uff1d", "\uff0b", "\uff0d", "\uff20")
#: program names and functions that reach out; a DDE call (``app|topic!item``) is found by
#: _dde_call (the pattern ``\|.*!`` scanned to the line's end from every ``|``: quadratic)
_DANGEROUS = re.compile(
    r"\b(cmd|powershell|pwsh|mshta|rundll32|regsvr32|certutil|bitsadmin|wscript|"
    r"cscript|msexec|msiexec)\b|\b(HYPERLINK|WEBSERVICE|IMPORTXML|IMPORTDATA|IMPORTHTML|"
    r"IMPORTFEED|IMAGE|CALL|REGISTER|EXEC|DDE|DDEAUTO|FILTERXML|INFO|CELL)\s*\(", re.I)
_ENCODINGS = ("utf-8-sig", "utf-8", "cp932", "euc-jp")
#: byte order marks Excel and LibreOffice honour in a CSV (Excel's "Unicode text" export
#: is UTF-16 with its BOM), UTF-32 first: its little-endian BOM starts like UTF-16's
_BOMS = ((codecs.BOM_UTF32_LE, "utf-32-le"), (codecs.BOM_UTF32_BE, "utf-32-be"),
         (codecs.BOM_UTF16_LE, "utf-16-le"), (codecs.BOM_UTF16_BE, "utf-16-be"))


class TextStage:
    name: ClassVar[str] = "text"
    formats: ClassVar[frozenset[str]] = frozenset({"text.plain", "text.csv", "text.sylk",
                                                   "text.xml", "text.calendar",
                                                   "text.vcard"})

    def scan(self, src: BinaryIO, ctx: StageContext) -> None:
        _process(src.read(), ctx)

    def disarm(self, src: BinaryIO, dst: BinaryIO, ctx: StageContext) -> None:
        dst.write(_process(src.read(), ctx))


def _is_csv(ctx: StageContext) -> bool:
    return ctx.type_id == "text.csv" or ctx.location.lower().endswith((".csv", ".tsv"))


def _process(data: bytes, ctx: StageContext) -> bytes:
    if ctx.type_id == "text.sylk":
        if ctx.option("sylk", "disarm") == "block":
            raise PolicyBlocked(f"SYLK (.slk) is blocked by policy {ctx.policy.name}")
        return sylk.process(data, ctx)
    if ctx.type_id == "text.xml":
        return xml_doc.process(data, ctx)
    if ctx.type_id in ("text.calendar", "text.vcard"):
        return calendar.process(data, ctx)  # a vCard is written in the same content lines
    if not _is_csv(ctx) or ctx.option("csv_formulas", "neutralize") == "keep":
        return data
    decoded = _decode(data)
    if decoded is None:
        return data  # not text we can read as CSV: nothing a spreadsheet evaluates either
    text, encoding = decoded
    delimiter = "\t" if ctx.location.lower().endswith(".tsv") else _delimiter(text)
    lines = records(text, delimiter)
    changed = False
    out_lines: list[str] = []
    for row_no, line in enumerate(lines, start=1):
        try:
            cells = next(csv.reader([line.rstrip("\r\n")], delimiter=delimiter), [])
        except csv.Error as exc:  # fail closed: a cell we cannot read could be a formula
            raise Malformed(f"CSV row {row_no} cannot be read ({exc})") from None
        bad = [i for i, cell in enumerate(cells) if _dangerous(cell)]
        if not bad:
            out_lines.append(line)
            continue
        for i in bad:
            ctx.record("text.csv_formula", f"row[{row_no}]/col[{i + 1}]",
                       action=Action.NEUTRALIZED, detail="formula cell turned into text")
            cells[i] = "'" + cells[i]
        ending = line[len(line.rstrip("\r\n")):]
        out_lines.append(_joined(cells, set(bad), delimiter) + ending)
        changed = True
    if not changed:
        return data
    body = "".join(out_lines)
    if encoding == "utf-8-sig":
        return codecs.BOM_UTF8 + body.encode("utf-8")
    bom = next((b for b, enc in _BOMS if enc == encoding), b"")
    return bom + body.encode(encoding, "replace")


def _joined(cells: list[str], quoted: set[int], delimiter: str) -> str:
    """A CSV row: the neutralized cells (``quoted``) always in double quotes, so that no
    reader takes their leading apostrophe for a quote character and sees the formula
    again (oletools' msodde sniffs "'" as the quote of ``'=cmd|'/k calc'!A0``); others
    only when they hold the delimiter, a quote or a line break."""
    out = []
    for i, cell in enumerate(cells):
        if i in quoted or any(c in cell for c in (delimiter, '"', "\r", "\n")):
            out.append('"' + cell.replace('"', '""') + '"')
        else:
            out.append(cell)
    return delimiter.join(out)


_RECORD_BREAK = re.compile(r'"|\r\n|\n|\r')


def records(text: str, delimiter: str) -> list[str]:
    """The rows of a CSV text, each with its line end. A line break (CR, LF or both)
    inside a quoted cell belongs to the cell, as spreadsheets read it; a cell is quoted
    when a quote opens it (a quote inside an unquoted cell is a character), and a
    doubled quote inside it is one quote. Form feeds and the other characters
    ``str.splitlines`` breaks at are text."""
    out: list[str] = []
    start, quoted, skip = 0, False, -1
    for m in _RECORD_BREAK.finditer(text):
        at = m.start()
        if at <= skip:
            continue
        if m.group() == '"':
            if quoted:
                if text.startswith('"', at + 1):
                    skip = at + 1            # "" inside a quoted cell
                else:
                    quoted = False
            elif at == start or text[at - 1] == delimiter:
                quoted = True
        elif not quoted:
            out.append(text[start:m.end()])
            start = m.end()
    if start < len(text):
        out.append(text[start:])
    return out


def _dangerous(cell: str) -> bool:
    stripped = cell.lstrip(" ")
    return stripped.startswith(_TRIGGER) and (_dde_call(stripped)
                                              or bool(_DANGEROUS.search(stripped)))


def _dde_call(text: str) -> bool:
    """A ``|`` with a ``!`` after it on the same line (``cmd|' /C calc'!A0``)."""
    return any(0 <= line.find("|") < line.rfind("!") for line in text.split("\n"))


def _decode(data: bytes) -> tuple[str, str] | None:
    for bom, wide in _BOMS:
        if data.startswith(bom):  # what the spreadsheet reads, even with a broken tail
            return data[len(bom):].decode(wide, "replace"), wide
    for enc in _ENCODINGS:
        if enc == "utf-8-sig" and not data.startswith(codecs.BOM_UTF8):
            continue
        try:
            return data.decode(enc), enc
        except UnicodeDecodeError:
            continue
    return None


def _delimiter(text: str) -> str:
    head = text[:4096]
    return max((",", ";", "\t"), key=head.count)


registry.register(TextStage())

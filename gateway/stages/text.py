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
    text, encoding = _decode(data)
    sep = _SEP_LINE.match(text)   # "sep=;": Excel splits at it, whatever its locale
    primary = (sep.group(1) if sep else
               "\t" if ctx.location.lower().endswith(".tsv") else _delimiter(text))
    # Excel splits a .csv at the list separator of its locale, a comma in Japan, whatever
    # the file holds: a file that looks split at semicolons or tabs is also read split
    # at commas, where a cell that was text may be a formula; those views must come out
    # clean. A semicolon (Europe) or tab split is judged too, in the rows it reads as the
    # main split does (elsewhere its fix could break what the main split reads)
    views = [primary, *([","] if primary != "," else [])]
    body = text
    for delimiter in [*views, *(d for d in (";", "\t") if d not in views)]:
        rows = None if delimiter in views else _row_spans(body, primary)
        body, fixes = _neutralize(body, delimiter, rows, primary)
        for row_no, col in fixes:
            ctx.record("text.csv_formula", f"row[{row_no}]/col[{col}]",
                       action=Action.NEUTRALIZED, detail="formula cell turned into text"
                       + ("" if delimiter == primary else
                          f" (a formula when the file is split at {_NAMES[delimiter]})"))
    if body == text:
        return data   # no view found a formula: nothing to check again
    if any(_neutralize(body, delimiter)[1] for delimiter in views):
        raise Malformed("CSV formula cells could not be turned into text")  # fail closed
    if encoding == "utf-8-sig":
        return codecs.BOM_UTF8 + body.encode("utf-8")
    if encoding == _RAW:
        return body.encode("cp932", "surrogateescape")
    bom = next((b for b, enc in _BOMS if enc == encoding), b"")
    return bom + body.encode(encoding, "replace")


_SEP_LINE = re.compile(r"\ufeff?sep=([,;\t|])\r?\n", re.IGNORECASE)
_NAMES = {",": "commas", ";": "semicolons", "\t": "tabs", "|": "bars"}
#: the encoding of a CSV no encoding reads: CP932 with its stray bytes kept as they are
_RAW = "cp932/surrogateescape"


def _row_spans(text: str, delimiter: str) -> set[tuple[int, int]]:
    spans, pos = set(), 0
    for record in records(text, delimiter):
        spans.add((pos, pos + len(record)))
        pos += len(record)
    return spans


def _neutralize(text: str, delimiter: str, only: set[tuple[int, int]] | None = None,
                primary: str = ",") -> tuple[str, list[tuple[int, int]]]:
    """``text`` with every formula cell, as a spreadsheet splitting rows at
    ``delimiter`` reads them, written as text: an apostrophe in front, the whole cell in
    double quotes, so that no reader takes the apostrophe for a quote character and sees
    the formula again (oletools' msodde sniffs "'" as the quote of ``'=cmd|'/k calc'!A0``).
    Everything else stays byte for byte. Returns the text and the (row, column) of each
    cell changed, from 1."""
    out: list[str] = []
    fixes: list[tuple[int, int]] = []
    at = 0
    for row_no, record in enumerate(records(text, delimiter), start=1):
        span, at = (at, at + len(record)), at + len(record)
        if only is not None and span not in only:
            out.append(record)
            continue
        body = record.rstrip("\r\n")
        parts, pos = [], 0
        plain: list[tuple[int, int]] | None = None
        for col, (start, end, value) in enumerate(_cells(body, delimiter), start=1):
            if not _dangerous(value):
                continue
            if only is not None:
                # a fix for another split starts in an unquoted cell of the main split
                # (in a quoted one, its quotes would end that cell early, and the main
                # split reads the formula as text there anyway)
                if plain is None:
                    plain = [(s0, e0) for s0, e0, _v in _cells(body, primary)
                             if not body.startswith('"', s0)]
                if not any(s0 <= start <= e0 for s0, e0 in plain):
                    continue
            fixes.append((row_no, col))
            parts += [body[pos:start], '"\'' + value.replace('"', '""') + '"']
            pos = end
        out.append("".join(parts) + body[pos:] + record[len(body):] if parts else record)
    return "".join(out), fixes


def _cells(row: str, delimiter: str) -> list[tuple[int, int, str]]:
    """(start, end, value) of each cell of a row, read as Python's csv module and
    spreadsheets read them: a cell a quote opens runs to its closing quote ("" is one
    quote), and whatever follows it up to the delimiter is added."""
    cells: list[tuple[int, int, str]] = []
    i, n = 0, len(row)
    while True:
        start = i
        if i < n and row[i] == '"':
            value, i = [], i + 1
            while True:
                quote = row.find('"', i)
                if quote < 0:                    # never closed: the rest of the row
                    value.append(row[i:])
                    i = n
                    break
                value.append(row[i:quote])
                if row.startswith('"', quote + 1):
                    value.append('"')
                    i = quote + 2
                    continue
                i = quote + 1
                break
            end = row.find(delimiter, i)
            end = n if end < 0 else end
            value.append(row[i:end])
            cells.append((start, end, "".join(value)))
        else:
            end = row.find(delimiter, i)
            end = n if end < 0 else end
            cells.append((start, end, row[i:end]))
        if end >= n:
            return cells
        i = end + 1


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


def _decode(data: bytes) -> tuple[str, str]:
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
    # a byte no encoding reads (a stray one in Shift_JIS): the spreadsheet still splits
    # the rest into cells and runs its formulas, so it is judged all the same, the
    # stray bytes kept as they are
    return data.decode("cp932", "surrogateescape"), _RAW


def _delimiter(text: str) -> str:
    head = text[:4096]
    return max((",", ";", "\t"), key=head.count)


registry.register(TextStage())

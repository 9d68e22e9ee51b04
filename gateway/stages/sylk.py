"""SYLK (.slk), the symbolic link spreadsheet format: a text file of records.

Excel opens SYLK outside Protected View and runs its Excel 4.0 (XLM) formulas: an
``O;E`` record makes the sheet a macro sheet, ``NN;NAuto_Open;ER1C1`` runs it on
open, ``C;…;EEXEC("…")`` is the macro, ``C;…;E=cmd|' /c calc'!A0`` a DDE call. The
rebuilt file keeps what a spreadsheet of values needs and nothing that computes:

* ``C`` (cell) records keep the position, the value (``K``), the comment (``A``)
  and protection flags; the formula (``E``) and shared-formula fields (``S``, ``R``,
  ``C``, ``D``, ``G``, ``M``) go, so a formula cell shows its last value
  (``sylk.formula``, location ``cells``, one finding with the count);
* the ``O`` record loses its macro-sheet flag ``E`` (``sylk.macro_sheet``, ``O``);
* ``NN`` (defined names, which run macros as Auto_Open), ``NE`` (links to other
  files, DDE) and ``NU`` (file name substitutions) records go (``sylk.name``
  ``NN[<name>]``, ``sylk.external_link`` ``NE[<n>]``/``NU[<n>]``);
* ``ID``, ``P``, ``F``, ``B``, ``W`` and ``E`` (layout, formats, fonts, bounds,
  windows, end) stay as they are; any other record goes (``sylk.record``).

Records are lines; fields are separated by ``;`` and ``;;`` is a literal semicolon.
The file is handled as bytes (SYLK is written in the ANSI code page, CP932 on
Japanese Windows, whose second bytes never are ``;``) and keeps its line endings.
"""

from __future__ import annotations

import re

from gateway.kinds import Action
from gateway.pipeline.api import StageContext

#: record types kept as they are
_KEEP = frozenset({b"ID", b"P", b"F", b"B", b"W", b"E"})
#: fields of a C record that are kept: position, value, comment, protection
_CELL_FIELDS = frozenset(b"XYKANPH")
#: fields that make a cell a formula: its own (E) or a shared one (S, D, G, M)
_FORMULA_FIELDS = frozenset(b"ESDGM")
_FIELD = re.compile(rb"(?:[^;]|;;)*")
_LINE = re.compile(rb"[^\r\n]*(?:\r\n|\n|\r|$)")


def process(data: bytes, ctx: StageContext) -> bytes:
    """The SYLK file without formulas, names, links and the macro-sheet flag."""
    out: list[bytes] = []
    formulas = 0
    counts: dict[bytes, int] = {}
    for m in _LINE.finditer(data):
        line = m.group(0)
        if not line:
            continue
        body = line.rstrip(b"\r\n")
        ending = line[len(body):]
        fields = _fields(body)
        rtype = fields[0].strip()
        if rtype == b"C":
            kept = [f for f in fields[1:] if f[:1] and f[0] in _CELL_FIELDS]
            if len(kept) != len(fields) - 1:
                formulas += any(f[:1] and f[0] in _FORMULA_FIELDS for f in fields[1:])
                body = b";".join([fields[0], *kept])
        elif rtype == b"O":
            kept = [f for f in fields[1:] if f.strip() != b"E"]
            if len(kept) != len(fields) - 1:
                ctx.record("sylk.macro_sheet", "O", action=Action.REMOVED,
                           detail="the sheet was marked an Excel 4.0 macro sheet")
                body = b";".join([fields[0], *kept])
        elif rtype in (b"NN", b"NE", b"NU"):
            n = counts[rtype] = counts.get(rtype, 0) + 1
            if rtype == b"NN":
                name = next((f[1:] for f in fields[1:] if f[:1] == b"N"), b"")
                ctx.record("sylk.name", f"NN[{_text(name)}]", action=Action.REMOVED,
                           detail="defined name (Auto_Open and other names run macros)")
            else:
                ctx.record("sylk.external_link", f"{rtype.decode()}[{n}]",
                           action=Action.REMOVED,
                           detail="link to another file or a DDE server" if rtype == b"NE"
                           else "file name substitution for links")
            continue
        elif rtype not in _KEEP:
            n = counts[rtype] = counts.get(rtype, 0) + 1
            ctx.record("sylk.record", f"{_text(rtype)}[{n}]", action=Action.REMOVED,
                       detail="record of a type that is not kept")
            continue
        out.append(body + ending)
    if formulas:
        ctx.record("sylk.formula", "cells", action=Action.REMOVED,
                   detail=f"{formulas} formula{'s' if formulas > 1 else ''} removed, "
                          "the cells keep their last values")
    return b"".join(out)


def _fields(body: bytes) -> list[bytes]:
    """The record's fields (``;;`` stays inside its field, as written)."""
    fields: list[bytes] = []
    pos = 0
    while True:
        m = _FIELD.match(body, pos)
        assert m is not None  # the pattern matches the empty string
        fields.append(m.group(0))
        pos = m.end() + 1
        if pos > len(body):
            return fields


def _text(raw: bytes) -> str:
    return raw[:60].decode("cp1252", "replace")

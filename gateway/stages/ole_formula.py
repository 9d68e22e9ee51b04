"""Excel 97-2003 cell formulas (MS-XLS 2.5.198 Rgce): what a formula calls.

A formula is stored as parsed tokens in reverse Polish order. :func:`calls` walks
them, keeping a model of the operand stack, and yields each function call with its
first argument when that is a string constant (or a concatenation starting with
one: the string it starts with) or a name (a user-defined function
call, tab 255, takes the function's name as its first argument: a defined name, or
an external name such as ``_xlfn.WEBSERVICE``). The walk stops at a token it does
not know (the rest of the formula is not judged); a fixed-arity function whose
argument count is not in the table below leaves the stack unknown, so first
arguments after it are reported as computed.

:func:`problem` says whether a formula may stay: the same rule as for Office Open XML
workbooks (``ooxml_excel.formulas``): formulas that fetch (WEBSERVICE, IMAGE), start
a COM server (RTD) or call into a DLL or program (CALL, REGISTER, REGISTER.ID, EXEC),
and HYPERLINK calls the policy would not keep as links, become their cached values.
"""

from __future__ import annotations

import re
import struct
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from gateway.stages.links import formula_link_problem

HYPERLINK, UDF = 359, 255
#: what ``calls`` yields last when it stops at a token it cannot read
UNREAD = -1
#: built-in functions by their Ftab index: (kind, what)
ACTIVE = {150: ("ole.xlm_macro", "CALL formula (calls into a DLL)"),
          149: ("ole.xlm_macro", "REGISTER formula (registers a DLL function)"),
          267: ("ole.xlm_macro", "REGISTER.ID formula (a DLL function)"),
          110: ("ole.xlm_macro", "EXEC formula (starts a program)"),
          379: ("ole.dde", "RTD formula (starts a real-time data COM server)")}
#: user-defined (add-in) functions by name, without the ``_xlfn.`` prefix
ACTIVE_UDF = {"webservice": ("ole.external_link", "WEBSERVICE formula (fetches a web address)"),
              "image": ("ole.external_link", "IMAGE formula (loads a picture from the web)"),
              "rtd": ACTIVE[379], "call": ACTIVE[150], "register": ACTIVE[149],
              "register.id": ACTIVE[267], "exec": ACTIVE[110]}
#: argument counts of common fixed-arity functions (ptgFunc), by Ftab index
_ARITY = {2: 1, 3: 1, 10: 0, 15: 1, 16: 1, 17: 1, 19: 0, 20: 1, 21: 1, 22: 1, 23: 1,
          24: 1, 25: 1, 26: 1, 27: 2, 30: 2, 31: 3, 32: 1, 33: 1, 34: 0, 35: 0, 38: 1,
          39: 2, 48: 2, 65: 3, 66: 3, 67: 1, 68: 1, 69: 1, 71: 1, 72: 1, 73: 1, 74: 0,
          111: 1, 112: 1, 113: 1, 114: 1, 117: 2, 118: 1, 121: 1, 126: 1, 127: 1, 128: 1,
          129: 1, 130: 1, 131: 1, 140: 1, 141: 1, 162: 1, 184: 1, 190: 1, 198: 1, 221: 0}
#: operand tokens (by their class-independent form) and their sizes after the token byte
_OPERANDS = {0x20: 7, 0x23: 4, 0x24: 4, 0x25: 8, 0x2A: 4, 0x2B: 8, 0x2C: 4, 0x2D: 8,
             0x39: 6, 0x3A: 6, 0x3B: 10, 0x3C: 6, 0x3D: 10}
#: tokens that precede a sub-expression and push nothing themselves
_MEM = {0x26: 6, 0x27: 6, 0x28: 6, 0x29: 2}
EXP = 0x01  # the formula is a shared or array formula held by the record after its master


@dataclass(frozen=True, slots=True)
class Name:
    """A defined name (``index``, 1-based, into the NAME records) or an external name
    (``ixti`` into EXTERNSHEET, ``index`` 1-based among its SUPBOOK's EXTERNNAMEs)."""
    index: int
    ixti: int = -1


@dataclass(frozen=True, slots=True)
class Call:
    func: int                      # Ftab index; 255 for a user-defined function
    first: str | Name | None       # the first argument, when a constant or a name


class _Computed:
    """An operand whose value is only known when the formula is computed."""


_COMPUTED = _Computed()
Operand = str | Name | _Computed


def calls(rgce: bytes) -> Iterator[Call]:
    """The function calls of a formula's tokens, in the order they are evaluated."""
    stack: list[Operand] | None = []
    pos, n = 0, len(rgce)
    while pos < n:
        ptg = rgce[pos]
        base = ptg if ptg < 0x20 else (ptg & 0x1F) | 0x20
        pos += 1
        if base in _OPERANDS:
            size = _OPERANDS[base]
            if base == 0x23 and pos + 2 <= n:
                _push(stack, Name(struct.unpack_from("<H", rgce, pos)[0]))
            elif base == 0x39 and pos + 6 <= n:
                ixti, index = struct.unpack_from("<HI", rgce, pos)
                _push(stack, Name(index, ixti))
            else:
                _push(stack, _COMPUTED)
            pos += size
        elif base in _MEM:
            pos += _MEM[base]
        elif base == 0x08:                    # "&": judged by the string it starts with
            left = stack[-2] if stack is not None and len(stack) >= 2 else _COMPUTED
            stack = _apply(stack, 2, left if isinstance(left, str) else _COMPUTED)
        elif 0x03 <= base <= 0x11:            # other binary operators
            stack = _apply(stack, 2)
        elif 0x12 <= base <= 0x14:            # unary plus, minus, percent
            stack = _apply(stack, 1)
        elif base == 0x15:                    # parentheses
            pass
        elif base == 0x16:                    # a missing argument
            _push(stack, _COMPUTED)
        elif base == 0x17:                    # a string constant
            if pos + 2 > n:
                return
            cch, flags = rgce[pos], rgce[pos + 1]
            width = 2 if flags & 1 else 1
            raw = rgce[pos + 2:pos + 2 + cch * width]
            _push(stack, raw.decode("utf-16-le" if width == 2 else "latin-1", "replace"))
            pos += 2 + cch * width
        elif base == 0x19:                    # ptgAttr: spaces, IF/CHOOSE jumps, SUM
            if pos + 3 > n:
                return
            flags, count = rgce[pos], struct.unpack_from("<H", rgce, pos + 1)[0]
            pos += 3 + (2 * (count + 1) if flags & 0x04 else 0)
            if flags & 0x10:                  # tAttrSum: SUM of one argument
                stack = _apply(stack, 1)
        elif base in (0x1C, 0x1D):            # error, boolean
            _push(stack, _COMPUTED)
            pos += 1
        elif base == 0x1E:                    # integer
            _push(stack, _COMPUTED)
            pos += 2
        elif base == 0x1F:                    # number
            _push(stack, _COMPUTED)
            pos += 8
        elif base == 0x21 and pos + 2 <= n:   # a function of a fixed number of arguments
            func = struct.unpack_from("<H", rgce, pos)[0]
            pos += 2
            arity = _ARITY.get(func)
            first = _first(stack, arity) if arity is not None else None
            yield Call(func, first)
            stack = _apply(stack, arity) if arity is not None else None
        elif base == 0x22 and pos + 3 <= n:   # a function of a variable number of arguments
            count = rgce[pos] & 0x7F
            func = struct.unpack_from("<H", rgce, pos + 1)[0] & 0x7FFF
            pos += 3
            yield Call(func, _first(stack, count))
            stack = _apply(stack, count)
        else:                                 # ptgExp, ptgTbl, ptgExtend, BIFF5 tokens
            if base not in (EXP, 0x02):       # (a shared formula, a data table: alone)
                yield Call(UNREAD, None)
            return


def _push(stack: list[Operand] | None, operand: Operand) -> None:
    if stack is not None:
        stack.append(operand)


def _first(stack: list[Operand] | None, count: int) -> str | Name | None:
    if stack is None or count < 1 or len(stack) < count:
        return None
    first = stack[-count]
    return None if isinstance(first, _Computed) else first


def _apply(stack: list[Operand] | None, count: int,
           result: Operand = _COMPUTED) -> list[Operand] | None:
    """Pop ``count`` operands and push the result."""
    if stack is None or len(stack) < count:
        return None
    del stack[len(stack) - count:]
    stack.append(result)
    return stack


def shared_master(rgce: bytes) -> tuple[int, int] | None:
    """The (row, column) of the master cell when ``rgce`` is only a ptgExp token."""
    if len(rgce) == 5 and rgce[0] == EXP:
        row, col = struct.unpack_from("<HH", rgce, 1)
        return row, col
    return None


def problem(rgce: bytes, name_of: Callable[[Name], str | None],
            keep_links: bool) -> tuple[str, str] | None:
    """Why a formula may not stay (its finding's kind and detail), or None."""
    for call in calls(rgce):
        if call.func in ACTIVE:
            kind, what = ACTIVE[call.func]
            return kind, f"{what} replaced by its last value"
        if call.func == UDF and isinstance(call.first, Name):
            name = (name_of(call.first) or "").lower().removeprefix("_xlfn.")
            if name in ACTIVE_UDF:
                kind, what = ACTIVE_UDF[name]
                return kind, f"{what} replaced by its last value"
        if call.func == HYPERLINK:
            why = _hyperlink_problem(call.first, keep_links)
            if why is not None:
                return "ole.hyperlink", f"HYPERLINK formula to {why} replaced by its last value"
        if call.func == UNREAD and (token := _ACTIVE_TOKEN.search(rgce)) is not None:
            # the rest could not be read: a call to an active function anywhere in its
            # bytes is taken for one (fail closed; a false one only shows the last value)
            kind, what = ACTIVE[int.from_bytes(token.group()[-2:], "little")]
            return kind, f"{what} in a formula not read to its end, replaced by its last value"
    return None


#: a ptgFunc (token, function) or ptgFuncVar (token, argument count, function), of any
#: class, calling one of ``ACTIVE``
_ACTIVE_TOKEN = re.compile(
    rb"(?:[\x21\x41\x61]|[\x22\x42\x62].)(?:"
    + b"|".join(re.escape(func.to_bytes(2, "little")) for func in ACTIVE) + rb")", re.DOTALL)


def _hyperlink_problem(first: str | Name | None, keep_links: bool) -> str | None:
    if not isinstance(first, str):
        return "a computed address"
    return formula_link_problem(first, keep_links)


NAME, SUPBOOK, EXTERNNAME, EXTERNSHEET = 0x0018, 0x01AE, 0x0023, 0x0017


class NameTable:
    """The names a BIFF8 workbook's formulas refer to, read from its globals: NAME
    records (ptgName) and, per SUPBOOK, its EXTERNNAME records reached through the
    EXTERNSHEET table (ptgNameX)."""

    def __init__(self, records: Iterator[tuple[int, bytes]]) -> None:
        self.names: list[str] = []
        self.external: list[list[str]] = []    # per SUPBOOK, its EXTERNNAMEs
        self.xti: list[int] = []                # EXTERNSHEET entry -> SUPBOOK index
        for rtype, data in records:
            if rtype == NAME:
                self.names.append(defined_name(data))
            elif rtype == SUPBOOK:
                self.external.append([])
            elif rtype == EXTERNNAME and self.external:
                self.external[-1].append(_short_string(data, 6))
            elif rtype == EXTERNSHEET and len(data) >= 2:
                count = min(struct.unpack_from("<H", data, 0)[0], (len(data) - 2) // 6)
                self.xti = [struct.unpack_from("<H", data, 2 + 6 * k)[0] for k in range(count)]

    def __call__(self, name: Name) -> str | None:
        if name.ixti < 0:
            table = self.names
        elif name.ixti < len(self.xti) and self.xti[name.ixti] < len(self.external):
            table = self.external[self.xti[name.ixti]]
        else:
            return None
        return table[name.index - 1] if 0 < name.index <= len(table) else None


def _short_string(data: bytes, at: int) -> str:
    """A ShortXLUnicodeString (count, flags, characters) at ``at``."""
    if at + 2 > len(data):
        return ""
    cch, flags = data[at], data[at + 1]
    raw = data[at + 2:at + 2 + cch * (2 if flags & 1 else 1)]
    return raw.decode("utf-16-le" if flags & 1 else "latin-1", "replace")


def defined_name(data: bytes) -> str:
    """A BIFF8 NAME record's name (a built-in name's one-character code stays as it is)."""
    if len(data) < 15:
        return ""
    cch, high = data[3], data[14] & 1
    raw = data[15:15 + cch * (2 if high else 1)]
    return raw.decode("utf-16-le" if high else "latin-1", "replace")

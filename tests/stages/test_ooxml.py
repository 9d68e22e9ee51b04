"""OOXML stage: one hostile fixture per checklist item (DESIGN.md §8), each output checked
by independent tools (olevba, msodde, oleobj, LibreOffice), and the shared corpus.

Findings are asserted exactly as (kind, location). Locations: a part name
("word/vbaProject.bin"), a relationship ("word/_rels/settings.xml.rels#rIdTpl"), or a
place inside a part ("word/document.xml#field[1]").
"""

from __future__ import annotations

import dataclasses
import io
import re
import struct
import zipfile
from collections.abc import Callable
from pathlib import Path
from xml.sax.saxutils import escape

import defusedxml.ElementTree as DET
import lxml.etree
import openpyxl
import pytest
from oletools import msodde
from pptx import Presentation
from pptx.util import Inches

import gateway.stages.ooxml  # noqa: F401 - registers the stage
from gateway.errors import Malformed
from gateway.models import Report, Verdict
from gateway.pipeline.run import process_file, scan_file
from gateway.policy import Policy, load
from tests.conftest import check_report_schema, corpus_dir
from tests.helpers import officecheck as oc
from tests.helpers import ooxmlgen as G
from tests.helpers.markupcheck import svg_problems

DEFAULT = load("default")


def variant(**changes: object) -> Policy:
    fmt = dataclasses.replace(DEFAULT.formats["ooxml"], **changes)  # type: ignore[arg-type]
    return dataclasses.replace(DEFAULT, formats={**DEFAULT.formats, "ooxml": fmt})


NO_LINKS = variant(keep=frozenset())
KEEP_LINKS = variant(keep=frozenset({"hyperlinks"}))  # the default takes web links out
REMOVE_EMBEDDED = variant(options={"embedded": "remove", "encrypted": "quarantine"})


@dataclasses.dataclass
class Run:
    report: Report
    src: Path
    out: Path | None

    def keys(self, item: int = 0) -> set[tuple[str, str]]:
        return {(f.kind, f.location) for f in self.report.items[item].findings}

    def action(self, kind: str, location: str, item: int = 0) -> str:
        found = [f.action for f in self.report.items[item].findings
                 if (f.kind, f.location) == (kind, location)]
        assert len(found) == 1, (kind, location, self.keys(item))
        return found[0]

    def zip(self) -> zipfile.ZipFile:
        assert self.out is not None
        return zipfile.ZipFile(self.out)

    def part(self, name: str) -> str:
        with self.zip() as zf:
            return zf.read(name).decode("utf-8")


def run(tmp_path: Path, data: bytes, name: str, policy: Policy = DEFAULT) -> Run:
    src = tmp_path / name
    src.write_bytes(data)
    out = tmp_path / "out.bin"
    report = process_file(src, out, policy=policy)
    check_report_schema(report)
    if report.output is None:
        assert not out.exists()
        return Run(report, src, None)
    final = tmp_path / "out" / report.output.name
    final.parent.mkdir()
    out.rename(final)
    return Run(report, src, final)


# ------------------------------------------------------------------ independent checks

DANGEROUS_FIELDS = {"DDE", "DDEAUTO", "INCLUDEPICTURE", "INCLUDETEXT", "INCLUDE", "IMPORT", "LINK",
                    "DATABASE", "RD"}


def dde(path: Path) -> list[str]:
    """What msodde reports that is DDE or a remote include.

    For a workbook every line msodde prints is a DDE link ("cmd /c calc.exe"); for a
    Word document it prints every field instruction (one may span lines) not on its
    harmless list, so the field name decides (HYPERLINK, EQ, GREETINGLINE… are fine).
    """
    lines = oc.msodde_findings(path)
    if zipfile.is_zipfile(path):
        with zipfile.ZipFile(path) as zf:
            if any(n.startswith("xl/") for n in zf.namelist()):
                return lines
    out = []
    for line in lines:
        m = re.match(r"\s*([A-Za-z]+)", line)
        if m and m.group(1).upper() in DANGEROUS_FIELDS:
            out.append(line)
    return out


def lo_path(path: Path, tmp: Path) -> Path:
    """LibreOffice reads no Flat OPC: give it the same package as a zip."""
    if path.suffix == ".xml" and b"<pkg:package" in path.read_bytes()[:4096]:
        zipped = tmp / f"{path.stem}-{abs(hash(path))}.docx"
        zipped.write_bytes(G.flat_to_zip(path.read_bytes()))
        return zipped
    return path


def check_output(r: Run, tmp_path: Path, *, hyperlinks: int = 0, text: str | None = None,
                 same_text: bool = True) -> str:
    """What every delivered output must pass; returns LibreOffice's text of it."""
    assert r.out is not None, r.report.items[0].error
    assert oc.olevba_findings(r.out) == []
    assert dde(r.out) == []
    found = oc.oleobj_findings(r.out)
    links = [f for f in found if f.startswith("Found relationship 'hyperlink'")]
    assert len(links) == hyperlinks and len(found) == hyperlinks, found
    if zipfile.is_zipfile(r.out):
        assert oc.xlm_parts(r.out) == []
        assert oc.ooxml_integrity(r.out) == []
    out_text = oc.libreoffice_text(lo_path(r.out, tmp_path))
    if text is not None:
        assert out_text == text
    elif same_text:
        assert out_text == oc.libreoffice_text(lo_path(r.src, tmp_path))
    return out_text


def doc_xml(r: Run, name: str = "word/document.xml") -> str:
    return r.part(name)


def rels(r: Run, name: str) -> dict[str, tuple[str, str]]:
    root = DET.fromstring(r.part(name).encode())
    return {el.get("Id", ""): (el.get("Type", "").rsplit("/", 1)[-1], el.get("Target", ""))
            for el in root}


# ------------------------------------------------------------------------------ macros


def test_vba_project_removed_and_docm_becomes_docx(tmp_path: Path) -> None:
    data = G.docm()
    r = run(tmp_path, data, "見積書.docm")
    assert oc.olevba_findings(r.src)                       # the input really has a macro
    assert r.report.verdict is Verdict.DISARMED
    assert r.keys() == {("ooxml.macro_enabled", "word/document.xml"),
                        ("ooxml.vba", "word/vbaProject.bin")}
    assert r.action("ooxml.vba", "word/vbaProject.bin") == "removed"
    assert r.report.output is not None
    assert (r.report.output.name, r.report.output.type) == ("見積書.docx", "ooxml.docx")
    with r.zip() as zf:
        assert "word/vbaProject.bin" not in zf.namelist()
        types = zf.read("[Content_Types].xml").decode()
    assert "macroEnabled" not in types and "vbaProject" not in types
    assert G.WML_MAIN in types
    assert "vbaProject" not in r.part("word/_rels/document.xml.rels")
    check_output(r, tmp_path)


def _renamed_entries(data: bytes, names: dict[str, str]) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(data)) as zin, zipfile.ZipFile(out, "w") as zout:
        for info in zin.infolist():
            zout.writestr(names.get(info.filename, info.filename), zin.read(info))
    return out.getvalue()


def test_lower_case_content_types_is_still_a_package(tmp_path: Path) -> None:
    """OPC part names compare without regard to case and Office opens a package whose
    "[content_types].xml" a tool wrote in lower case (xlrd's apachepoi_49609.xlsx,
    POI bug 49609). It was taken for a plain zip: delivered as .zip, clean, with its
    macro and every Office rule skipped."""
    data = _renamed_entries(G.docm(), {"[Content_Types].xml": "[content_types].xml"})
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        assert "[Content_Types].xml" not in zf.namelist()
    r = run(tmp_path, data, "見積書.docm")
    assert r.report.verdict is Verdict.DISARMED
    assert r.keys() == {("ooxml.macro_enabled", "word/document.xml"),
                        ("ooxml.vba", "word/vbaProject.bin")}
    assert r.report.output is not None
    assert (r.report.output.name, r.report.output.type) == ("見積書.docx", "ooxml.docx")
    with r.zip() as zf:
        assert "word/vbaProject.bin" not in zf.namelist()
        assert "[Content_Types].xml" in zf.namelist()   # written as OPC spells it
    # LibreOffice opens the output (it refuses the lower-case input) with all the text
    text = check_output(r, tmp_path, same_text=False)
    assert all(line in text for line in G.JA_DOC)


def test_part_names_written_with_backslashes_are_read_as_slashes(tmp_path: Path) -> None:
    """POI bug 49609 (xlrd's apachepoi_49609.xlsx): a tool wrote "xl\\styles.xml" and
    "[content_types].xml"; Excel and POI read it, LibreOffice does not. It was blocked
    as an unsafe member name; it is delivered with "/" names, which LibreOffice opens."""
    src = zipfile.ZipFile(io.BytesIO(G.base_xlsx()))
    names = {n: n.replace("/", "\\") for n in src.namelist() if "/" in n}
    names["[Content_Types].xml"] = "[content_types].xml"
    data = _renamed_entries(G.base_xlsx(), names)
    r = run(tmp_path, data, "report.xlsx")
    assert r.report.verdict.delivered, r.report.reason
    with r.zip() as zf:
        assert "xl/workbook.xml" in zf.namelist() and not any("\\" in n for n in zf.namelist())
    text = check_output(r, tmp_path, same_text=False)
    assert "合計" in text
    # a way out of the package written with backslashes is refused as before
    out_of = _renamed_entries(data, {"xl\\styles.xml": "..\\..\\styles.xml"})
    refused = run(tmp_path, out_of, "out.xlsx")
    assert refused.report.verdict is Verdict.BLOCKED
    assert refused.report.reason == "unsafe zip member name '../../styles.xml'"


def test_vba_signature_removed(tmp_path: Path) -> None:
    r = run(tmp_path, G.docm(signature=True), "signed.docm")
    assert r.keys() == {("ooxml.macro_enabled", "word/document.xml"),
                        ("ooxml.vba", "word/vbaProject.bin"),
                        ("ooxml.vba_signature", "word/vbaProjectSignature.bin")}
    with r.zip() as zf:
        assert not [n for n in zf.namelist() if "vbaProject" in n]
    check_output(r, tmp_path)


def test_vba_data_removed(tmp_path: Path) -> None:
    r = run(tmp_path, G.docm(vba_data=True), "autoopen.docm")
    assert r.keys() == {("ooxml.macro_enabled", "word/document.xml"),
                        ("ooxml.vba", "word/vbaProject.bin"),
                        ("ooxml.vba_data", "word/vbaData.xml")}
    with r.zip() as zf:
        assert "word/vbaData.xml" not in zf.namelist()
        assert "vbaData" not in zf.read("[Content_Types].xml").decode()
    check_output(r, tmp_path)


def test_custom_ui_with_callbacks_removed(tmp_path: Path) -> None:
    r = run(tmp_path, G.docm(custom_ui=True), "ribbon.docm")
    assert any("customUI" in f for f in oc.oleobj_findings(r.src))
    assert r.keys() == {("ooxml.macro_enabled", "word/document.xml"),
                        ("ooxml.vba", "word/vbaProject.bin"),
                        ("ooxml.custom_ui", "customUI/customUI14.xml")}
    detail = [f.detail for f in r.report.items[0].findings if f.kind == "ooxml.custom_ui"]
    assert detail == ["custom ribbon (customUI), callbacks: onAction, onLoad"]
    assert "customUI" not in r.part("_rels/.rels")
    check_output(r, tmp_path)


def test_xlm_macro_sheet_becomes_a_worksheet_of_its_values(tmp_path: Path) -> None:
    """The macros go, the text typed on the sheet stays: every formula is replaced by its
    cached value, under the same <sheet> entry (name, visibility, indices unchanged)."""
    base = tmp_path / "base.xlsx"
    base.write_bytes(G.base_xlsx())
    r = run(tmp_path, G.xlsm_xlm(), "集計.xlsm")
    assert oc.xlm_parts(r.src)
    assert r.keys() == {("ooxml.macro_enabled", "xl/workbook.xml"),
                        ("ooxml.xlm_macro", "xl/macrosheets/sheet1.xml"),
                        ("ooxml.xlm_macro", "xl/workbook.xml#definedName[_xlnm.Auto_Open]")}
    [detail] = [f.detail for f in r.report.items[0].findings
                if (f.kind, f.location) == ("ooxml.xlm_macro", "xl/macrosheets/sheet1.xml")]
    assert detail == ("Excel 4.0 (XLM) macro sheet; formulas removed, its cell values kept "
                      "as a worksheet")
    assert r.report.output is not None and r.report.output.name == "集計.xlsx"
    workbook = r.part("xl/workbook.xml")
    assert "Auto_Open" not in workbook
    assert re.search(r'<sheet [^>]*name="Macro1" sheetId="9" state="hidden"', workbook)
    # nothing moved: the print area of 集計 and the active tab keep index 1
    assert 'localSheetId="1"' in workbook and 'activeTab="1"' in workbook
    rid = re.search(r'name="Macro1"[^>]*r:id="([^"]+)"', workbook)
    assert rid is not None
    kind, target = rels(r, "xl/_rels/workbook.xml.rels")[rid.group(1)]
    assert kind == "worksheet"
    sheet = r.part("xl/" + target)
    root = DET.fromstring(sheet.encode())
    assert root.tag == "{http://schemas.openxmlformats.org/spreadsheetml/2006/main}worksheet"
    assert "<f>" not in sheet and "<f " not in sheet and "drawing" not in sheet
    with r.zip() as zf:
        assert not [n for n in zf.namelist() if "macrosheet" in n.lower()]
    text = check_output(r, tmp_path, same_text=False)
    base_text = oc.libreoffice_text(base)
    assert all(line in text for line in base_text.splitlines())
    assert "実行" in text                          # the formula's cached string, now a value


def test_binary_macro_sheet_becomes_a_sheet_of_its_values() -> None:
    """xlsb: formula cells become value cells with their cached values; extension blocks,
    array formulas and anything not allow-listed go (MS-XLSB record numbers)."""
    from gateway.stages.ooxml_excel import _rec, _records, values_sheet_bin

    def cell(col: int) -> bytes:
        return struct.pack("<II", col, 0)
    text = "実行"
    wide = struct.pack("<I", len(text)) + text.encode("utf-16-le")
    formula = b"\x00\x00" + struct.pack("<I", 3) + b"\x1e\x01\x00" + bytes(4)
    sheet = (_rec(129) + _rec(148, bytes(16)) + _rec(37, b"\x01\x00\x02\x0e\x00\x80")
             + _rec(1045, b"\x08\x00") + _rec(38) + _rec(145) + _rec(0, bytes(25))
             + _rec(9, cell(0) + struct.pack("<d", 2.5) + formula)
             + _rec(8, cell(1) + wide + formula)
             + _rec(10, cell(2) + b"\x01" + formula)
             + _rec(11, cell(3) + b"\x07" + formula)
             + _rec(7, cell(4) + struct.pack("<I", 0))
             + _rec(426, bytes(30)) + _rec(146) + _rec(130))
    assert _records(values_sheet_bin(sheet)) == [
        (129, b""), (148, bytes(16)), (145, b""), (0, bytes(25)),
        (5, cell(0) + struct.pack("<d", 2.5)), (6, cell(1) + wide), (4, cell(2) + b"\x01"),
        (3, cell(3) + b"\x07"), (7, cell(4) + struct.pack("<I", 0)), (146, b""), (130, b"")]
    with pytest.raises(Malformed):
        values_sheet_bin(sheet[:-3])


def test_unreadable_xlm_macro_sheet_goes_with_its_entry(tmp_path: Path) -> None:
    """A macro sheet that cannot be read is removed with its <sheet> entry; indices that
    pointed past it (print area, active tab) follow."""
    base = tmp_path / "base.xlsx"
    base.write_bytes(G.base_xlsx())
    r = run(tmp_path, G.xlsm_xlm(broken=True), "集計.xlsm")
    assert r.keys() == {("ooxml.macro_enabled", "xl/workbook.xml"),
                        ("ooxml.xlm_macro", "xl/macrosheets/sheet1.xml"),
                        ("ooxml.xlm_macro", "xl/workbook.xml#definedName[_xlnm.Auto_Open]")}
    workbook = r.part("xl/workbook.xml")
    assert "Macro1" not in workbook and "Auto_Open" not in workbook
    assert 'localSheetId="0"' in workbook and 'activeTab="0"' in workbook
    check_output(r, tmp_path, text=oc.libreoffice_text(base))


def test_xlsm_vba_removed(tmp_path: Path) -> None:
    r = run(tmp_path, G.xlsm(), "macro.xlsm")
    assert r.keys() == {("ooxml.macro_enabled", "xl/workbook.xml"),
                        ("ooxml.vba", "xl/vbaProject.bin")}
    assert r.report.output is not None and r.report.output.type == "ooxml.xlsx"
    check_output(r, tmp_path)


# ------------------------------------------------------------------ objects and ActiveX


def test_activex_removed_preview_kept(tmp_path: Path) -> None:
    r = run(tmp_path, G.docx_activex(), "form.docx")
    assert r.keys() == {("ooxml.activex", "word/activeX/activeX1.xml"),
                        ("ooxml.activex", "word/activeX/activeX1.bin")}
    xml = doc_xml(r)
    assert "w:control" not in xml and "<w:object" not in xml
    image = re.search(r'<w:pict><v:shape [^>]*><v:imagedata r:id="(\w+)"', xml)
    assert image is not None
    assert rels(r, "word/_rels/document.xml.rels")[image.group(1)] == \
        ("image", "media/preview1.png")
    assert not [k for k, _ in rels(r, "word/_rels/document.xml.rels").values() if k == "control"]
    check_output(r, tmp_path)


EMBED_NAME = "Microsoft_Excel_Macro-Enabled_Worksheet.xlsm"
EMBED_CT = "application/vnd.ms-excel.sheet.macroEnabled.12"


def test_embedded_workbook_with_macro_disarmed_recursively_and_kept(tmp_path: Path) -> None:
    data = G.docx_embedded(G.xlsm(), EMBED_NAME, "Excel.SheetMacroEnabled.12", EMBED_CT)
    r = run(tmp_path, data, "報告書.docx")
    part = f"word/embeddings/{EMBED_NAME}"
    assert r.keys() == {("ooxml.embedded_package", part)}
    assert r.action("ooxml.embedded_package", part) == "disarmed"
    child = r.report.items[1]
    assert child.location == f"報告書.docx/{part}"
    assert r.keys(1) == {("ooxml.macro_enabled", "xl/workbook.xml"),
                         ("ooxml.vba", "xl/vbaProject.bin")}
    new = "word/embeddings/Microsoft_Excel_Macro-Enabled_Worksheet.xlsx"
    with r.zip() as zf:
        assert part not in zf.namelist()
        inner = zf.read(new)
    with zipfile.ZipFile(io.BytesIO(inner)) as zf:
        assert "xl/vbaProject.bin" not in zf.namelist()
    assert ("package", "embeddings/Microsoft_Excel_Macro-Enabled_Worksheet.xlsx") in \
        rels(r, "word/_rels/document.xml.rels").values()
    assert 'ProgID="Excel.Sheet.12"' in doc_xml(r)
    # oleobj reports only OLE files with an Ole10Native stream: an embedded xlsx is a
    # zip, so neither input nor output is reported; olevba looks inside neither.
    assert oc.oleobj_findings(r.src) == []
    check_output(r, tmp_path)


def test_embedded_object_removed_by_policy_keeps_preview(tmp_path: Path) -> None:
    data = G.docx_embedded(G.xlsm(), EMBED_NAME, "Excel.SheetMacroEnabled.12", EMBED_CT)
    r = run(tmp_path, data, "報告書.docx", REMOVE_EMBEDDED)
    part = f"word/embeddings/{EMBED_NAME}"
    assert r.keys() == {("ooxml.embedded_package", part)}
    assert r.action("ooxml.embedded_package", part) == "removed"
    assert len(r.report.items) == 1                      # not recursed into
    xml = doc_xml(r)
    assert "OLEObject" not in xml and "o:ole=" not in xml
    assert re.search(r'<w:pict><v:shape [^>]*><v:imagedata r:id="\w+"', xml)
    with r.zip() as zf:
        assert not [n for n in zf.namelist() if "embeddings" in n]
        assert "word/media/preview1.png" in zf.namelist()
    check_output(r, tmp_path)


def test_embedded_executable_blocked_and_removed(tmp_path: Path) -> None:
    data = G.docx_embedded(b"MZ\x90\x00" + bytes(300), "setup.exe", "Package",
                           "application/octet-stream")
    r = run(tmp_path, data, "請求書.docx")
    assert r.keys() == {("ooxml.embedded_package", "word/embeddings/setup.exe")}
    assert r.action("ooxml.embedded_package", "word/embeddings/setup.exe") == "removed"
    assert r.report.items[1].verdict is Verdict.BLOCKED
    assert r.keys(1) == {("block.policy", "")}
    assert "OLEObject" not in doc_xml(r) and "<w:pict>" in doc_xml(r)
    check_output(r, tmp_path)


def test_pptx_embedded_workbook_disarmed_and_kept(tmp_path: Path) -> None:
    r = run(tmp_path, G.pptx_embedded_xlsx(G.xlsm()), "会議.pptx")
    part = "ppt/embeddings/Microsoft_Excel_Sheet1.xlsx"
    assert r.keys() == {("ooxml.embedded_package", part)}
    assert r.action("ooxml.embedded_package", part) == "disarmed"
    # python-pptx names the xlsm .xlsx: the child reports the lie, the name stays right
    assert r.keys(1) == {("sniff.type_mismatch", ""), ("ooxml.macro_enabled", "xl/workbook.xml"),
                         ("ooxml.vba", "xl/vbaProject.bin")}
    assert "p:oleObj" in r.part("ppt/slides/slide1.xml")
    check_output(r, tmp_path)


def test_pptx_ole_object_removed_by_policy_keeps_preview_picture(tmp_path: Path) -> None:
    r = run(tmp_path, G.pptx_embedded_xlsx(G.base_xlsx()), "会議.pptx", REMOVE_EMBEDDED)
    assert r.keys() == {("ooxml.embedded_package", "ppt/embeddings/Microsoft_Excel_Sheet1.xlsx")}
    slide = r.part("ppt/slides/slide1.xml")
    assert "oleObj" not in slide and "graphicFrame" not in slide
    blip = re.search(r'<p:pic>.*?<a:blip r:embed="(\w+)"', slide)
    assert blip is not None
    assert rels(r, "ppt/slides/_rels/slide1.xml.rels")[blip.group(1)][0] == "image"
    assert "<a:xfrm>" in slide.split("<p:pic>", 1)[1]
    check_output(r, tmp_path)


def test_word2010_object_embed_removed_drawing_kept(tmp_path: Path) -> None:
    r = run(tmp_path, G.docx_object_embed_drawing(G.base_xlsx()), "w14.docx", REMOVE_EMBEDDED)
    assert r.keys() == {("ooxml.embedded_package",
                         "word/embeddings/Microsoft_Excel_Worksheet.xlsx")}
    xml = doc_xml(r)
    assert "w:object" not in xml and "objectEmbed" not in xml
    assert re.search(r"<w:r><w:drawing>.*?<a:blip r:embed=", xml)
    check_output(r, tmp_path)


def test_package_signature_removed_once_changed(tmp_path: Path) -> None:
    r = run(tmp_path, G.signed(G.docm()), "signed.docm")
    assert r.keys() == {("ooxml.macro_enabled", "word/document.xml"),
                        ("ooxml.vba", "word/vbaProject.bin"),
                        ("ooxml.signature_removed", "_rels/.rels#rIdSig")}
    with r.zip() as zf:
        assert not [n for n in zf.namelist() if "xmlsignatures" in n]
    check_output(r, tmp_path)
    (tmp_path / "clean").mkdir()
    clean = run(tmp_path / "clean", G.signed(G.base_docx()), "signed.docx")
    assert clean.report.verdict is Verdict.CLEAN
    with clean.zip() as zf:       # nothing changed: the signature still holds
        assert "_xmlsignatures/sig1.xml" in zf.namelist()


# ---------------------------------------------------------------------- external links


def test_attached_template_removed(tmp_path: Path) -> None:
    r = run(tmp_path, G.docx_attached_template(), "テンプレート.docx")
    assert any("attachedTemplate" in f for f in oc.oleobj_findings(r.src))
    assert r.keys() == {("ooxml.external_relationship", "word/_rels/settings.xml.rels#rIdTpl")}
    assert "attachedTemplate" not in r.part("word/settings.xml")
    assert "rIdTpl" not in r.part("word/_rels/settings.xml.rels")
    check_output(r, tmp_path)


def test_mail_merge_data_source_removed(tmp_path: Path) -> None:
    r = run(tmp_path, G.docx_mail_merge(), "差し込み.docx")
    assert r.keys() == {("ooxml.external_data", "word/settings.xml#mailMerge"),
                        ("ooxml.external_relationship", "word/_rels/settings.xml.rels#rIdMM")}
    assert "mailMerge" not in r.part("word/settings.xml")
    check_output(r, tmp_path)


def test_subdocument_removed(tmp_path: Path) -> None:
    r = run(tmp_path, G.docx_subdocument(), "master.docx")
    assert r.keys() == {("ooxml.external_relationship", "word/_rels/document.xml.rels#rIdSub")}
    assert "subDoc" not in doc_xml(r)
    check_output(r, tmp_path)


def test_frameset_removed(tmp_path: Path) -> None:
    r = run(tmp_path, G.docx_frame(), "frames.docx")
    assert any("'frame'" in f for f in oc.oleobj_findings(r.src))
    assert r.keys() == {("ooxml.external_relationship", "word/_rels/webSettings.xml.rels#rIdFrame"),
                        ("ooxml.external_relationship", "word/webSettings.xml#frameset")}
    assert "frameset" not in r.part("word/webSettings.xml")
    check_output(r, tmp_path)


def test_linked_ole_object_removed_preview_kept(tmp_path: Path) -> None:
    r = run(tmp_path, G.docx_ole_link(), "linked.docx")
    assert any("'oleObject'" in f for f in oc.oleobj_findings(r.src))
    assert r.keys() == {("ooxml.external_relationship", "word/_rels/document.xml.rels#rIdLink")}
    xml = doc_xml(r)
    assert "OLEObject" not in xml and "<w:pict>" in xml and "v:imagedata" in xml
    check_output(r, tmp_path)


def test_external_workbook_link_removed_formula_keeps_value(tmp_path: Path) -> None:
    r = run(tmp_path, G.xlsx_external_link(dde=False), "連結.xlsx")
    assert r.keys() == {("ooxml.external_link", "xl/externalLinks/externalLink1.xml"),
                        ("ooxml.external_link", "xl/worksheets/sheet1.xml")}
    assert r.action("ooxml.external_link", "xl/worksheets/sheet1.xml") == "neutralized"
    with r.zip() as zf:
        names = zf.namelist()
    assert not [n for n in names if "externalLink" in n or "calcChain" in n]
    assert "externalReferences" not in r.part("xl/workbook.xml")
    sheet = r.part("xl/worksheets/sheet1.xml")
    assert '<c r="B4"><v>42</v></c>' in sheet and "[1]" not in sheet
    text = check_output(r, tmp_path, same_text=False)
    assert "42" in text.split("\n") and "合計" in text


def test_formulas_names_and_shapes_that_run_fetch_or_open_things(tmp_path: Path) -> None:
    """XlsxWriter-made and hand-edited workbooks went through as clean with formulas
    that open a program or fetch from the web (HYPERLINK to a file, WEBSERVICE, RTD,
    IMAGE, CALL), a workbook named by its path in a formula and a name, names calling
    Excel 4.0 functions, a shape and a form button running a macro (one of another
    workbook), a shape's text linked to another workbook. Each formula becomes its
    cached value; a jump within the workbook, on a cell or a shape, stays."""
    r = run(tmp_path, G.xlsx_active_cells(), "集計.xlsx")
    sheet, book = "xl/worksheets/sheet1.xml", "xl/workbook.xml"
    assert r.keys() == {
        ("ooxml.hyperlink", f"{sheet}#cell[A10]"), ("ooxml.external_data", f"{sheet}#cell[B10]"),
        ("ooxml.dde", f"{sheet}#cell[C10]"), ("ooxml.external_link", sheet),
        ("ooxml.external_data", f"{sheet}#cell[E10]"), ("ooxml.xlm_macro", f"{sheet}#cell[F10]"),
        ("ooxml.xlm_macro", f"{book}#definedName[XlmName]"),
        ("ooxml.xlm_macro", f"{book}#definedName[CallName]"),
        ("ooxml.external_link", f"{book}#definedName[ExtName]"),
        ("ooxml.macro_assignment", "xl/drawings/drawing1.xml#sp[1]"),
        ("ooxml.external_link", "xl/drawings/drawing1.xml#sp[1]"),
        ("ooxml.macro_assignment", "xl/drawings/vmlDrawing1.vml#FmlaMacro[1]")}
    out = r.part(sheet)
    for ref, (formula, value) in G.ACTIVE_CELLS.items():
        kept = ref in ("G10", "H10")
        assert (f"<f>{escape(formula)}</f>" in out) == kept, ref
        assert f"<v>{escape(value)}</v>" in out, ref       # what the cell showed stays
    names = r.part(book)
    assert "OkName" in names and not any(n in names for n in ("XlmName", "CallName", "ExtName"))
    drawing = r.part("xl/drawings/drawing1.xml")
    assert "evil.xlsm" not in drawing and "textlink" not in drawing and "hlinkClick" in drawing
    assert "#明細!A1" in r.part("xl/drawings/_rels/drawing1.xml.rels")   # the jump stays
    vml = r.part("xl/drawings/vmlDrawing1.vml")
    assert "FmlaMacro" not in vml and 'ObjectType="Button"' in vml
    text = check_output(r, tmp_path, same_text=False)
    assert "calc" in text and "jump" in text and "合計" in text


def test_dde_link_removed(tmp_path: Path) -> None:
    r = run(tmp_path, G.xlsx_external_link(dde=True), "dde.xlsx")
    assert dde(r.src)            # msodde sees it in the input
    assert r.keys() == {("ooxml.dde", "xl/externalLinks/externalLink1.xml"),
                        ("ooxml.external_link", "xl/worksheets/sheet1.xml")}
    check_output(r, tmp_path, same_text=False)


def test_linked_ole_object_goes_with_its_external_link(tmp_path: Path) -> None:
    """A worksheet's linked object (oletools' sample_with_external_link_to_doc.xlsx)
    kept ``oleObject link="[1]!''"`` when its external reference went: a link to
    nothing, which Excel offers to repair."""
    p = G.Pkg(G.xlsx_external_link(dde=True))
    mc = "http://schemas.openxmlformats.org/markup-compatibility/2006"
    obj = ('<oleObject progId="Word.Document.8" link="[1]!&apos;&apos;" '
           'oleUpdate="OLEUPDATE_ALWAYS" shapeId="1025"/>')
    p.sub("xl/worksheets/sheet1.xml", "</worksheet>",
          f'<oleObjects><mc:AlternateContent xmlns:mc="{mc}"><mc:Choice Requires="x14">{obj}'
          f"</mc:Choice><mc:Fallback>{obj}</mc:Fallback></mc:AlternateContent></oleObjects>"
          "</worksheet>")
    r = run(tmp_path, p.build(), "linked.xlsx")
    assert r.keys() == {("ooxml.dde", "xl/externalLinks/externalLink1.xml"),
                        ("ooxml.external_link", "xl/worksheets/sheet1.xml"),
                        ("ooxml.external_link", "xl/worksheets/sheet1.xml#oleObject[1025]")}
    sheet = r.part("xl/worksheets/sheet1.xml")
    assert "oleObject" not in sheet and "AlternateContent" not in sheet and "[1]" not in sheet
    check_output(r, tmp_path, same_text=False)


def test_data_connection_neutralized(tmp_path: Path) -> None:
    r = run(tmp_path, G.xlsx_connections(), "接続.xlsx")
    assert r.keys() == {("ooxml.external_data", "xl/connections.xml#connection[1]")}
    conn = r.part("xl/connections.xml")
    assert "evil" not in conn and "SELECT" not in conn and "refreshOnLoad" not in conn
    assert 'connection=""' in conn and "外部DB" in conn
    check_output(r, tmp_path)


def test_hyperlinks_kept_by_policy(tmp_path: Path) -> None:
    r = run(tmp_path, G.docx_hyperlinks(), "links.docx", KEEP_LINKS)
    assert r.keys() == {("ooxml.hyperlink", "word/_rels/document.xml.rels"),
                        ("ooxml.hyperlink", "word/_rels/document.xml.rels#rIdExe")}
    assert r.action("ooxml.hyperlink", "word/_rels/document.xml.rels") == "kept"
    assert r.action("ooxml.hyperlink", "word/_rels/document.xml.rels#rIdExe") == "removed"
    xml = doc_xml(r)
    assert 'r:id="rIdWeb"' in xml and "rIdExe" not in xml and "電卓" in xml
    check_output(r, tmp_path, hyperlinks=1)


def test_hyperlinks_removed_without_keep(tmp_path: Path) -> None:
    """The default policy: the link text stays, the address is in the report, and
    oletools' oleobj finds no external relationship left (it flags hyperlinks)."""
    assert DEFAULT.formats["ooxml"].keep == NO_LINKS.formats["ooxml"].keep
    r = run(tmp_path, G.docx_hyperlinks(), "links.docx")
    assert r.action("ooxml.hyperlink", "word/_rels/document.xml.rels#rIdWeb") == "removed"
    found = oc.oleobj_findings(r.src)
    assert any("'hyperlink' with external link https://www.example.jp/sekisho" in f
               for f in found), found
    assert r.out is not None and oc.oleobj_findings(r.out) == []
    assert r.keys() == {("ooxml.hyperlink", "word/_rels/document.xml.rels#rIdWeb"),
                        ("ooxml.hyperlink", "word/_rels/document.xml.rels#rIdExe")}
    xml = doc_xml(r)
    assert "w:hyperlink" not in xml and "関所のサイト" in xml and "電卓" in xml
    check_output(r, tmp_path)


def _xlsx_with_links() -> bytes:
    wb = openpyxl.Workbook()
    ws = wb.active
    ws["A1"] = "市のサイト"
    ws["A1"].hyperlink = "https://www.city.example.lg.jp/"
    ws["B1"] = "値"
    buf = io.BytesIO()
    wb.save(buf)
    return buf.getvalue()


def _pptx_with_links() -> bytes:
    prs = Presentation()
    slide = prs.slides.add_slide(prs.slide_layouts[5])
    slide.shapes.title.text = "お知らせ"
    run = slide.shapes.add_textbox(Inches(1), Inches(2), Inches(5), Inches(1)) \
        .text_frame.paragraphs[0].add_run()
    run.text = "市のサイト"
    run.hyperlink.address = "https://www.city.example.lg.jp/"
    shape = slide.shapes.add_textbox(Inches(1), Inches(3), Inches(5), Inches(1))
    shape.text_frame.text = "図形のリンク"
    shape.click_action.hyperlink.address = "https://login.example.invalid/"
    buf = io.BytesIO()
    prs.save(buf)
    return buf.getvalue()


@pytest.mark.parametrize(("build", "name", "links"), [
    (_xlsx_with_links, "links.xlsx", 1), (_pptx_with_links, "links.pptx", 2)])
def test_web_links_go_from_workbooks_and_slides_by_default(
        tmp_path: Path, build: Callable[[], bytes], name: str, links: int) -> None:
    """A cell hyperlink, a text-run link and a shape's click link: oleobj reports each in
    the input and none in the output; the text stays (LibreOffice, check_output)."""
    data = build()
    r = run(tmp_path, data, name)
    found = [f for f in oc.oleobj_findings(r.src) if "'hyperlink'" in f]
    assert len(found) == links, found
    assert {(f.kind, f.action) for f in r.report.items[0].findings} == {
        ("ooxml.hyperlink", "removed")}
    text = check_output(r, tmp_path)
    assert "市のサイト" in text


# ------------------------------------------------------------------------------ fields


@pytest.mark.parametrize("complex_field", [False, True], ids=["fldSimple", "split-instrText"])
def test_ddeauto_field_neutralized_result_kept(tmp_path: Path, complex_field: bool) -> None:
    r = run(tmp_path, G.docx_dde(complex_field), "dde.docx")
    assert [line for line in oc.msodde_findings(r.src) if "DDEAUTO" in line]
    assert r.keys() == {("ooxml.dde", "word/document.xml#field[1]")}
    assert r.action("ooxml.dde", "word/document.xml#field[1]") == "neutralized"
    xml = doc_xml(r)
    assert "DDE" not in xml and "fldChar" not in xml and "fldSimple" not in xml
    result = "最後の表示結果" if complex_field else "単純フィールドの結果"
    assert result in xml
    text = check_output(r, tmp_path)
    assert result in text


def test_word_package_naming_a_visio_main_part_first_is_read_as_word(tmp_path: Path) -> None:
    """A Visio "document" relationship listed before the officeDocument one must not make
    the package a drawing (whose fields nobody reads): the DDE field is found."""
    p = G.Pkg(G.docx_dde(False))
    p.put("visio/document.xml", '<?xml version="1.0"?><VisioDocument xmlns="http://schemas'
                                '.microsoft.com/office/visio/2012/main"/>')
    p.override("visio/document.xml", "application/vnd.ms-visio.drawing.main+xml")
    p.sub("_rels/.rels", "<Relationship ", '<Relationship Id="rIdV" Type="http://schemas.'
          'microsoft.com/visio/2010/relationships/document" Target="visio/document.xml"/>'
          "<Relationship ")
    r = run(tmp_path, p.build(), "two-mains.docx")
    found = r.keys()
    assert ("ooxml.dde", "word/document.xml#field[1]") in found
    assert "DDE" not in doc_xml(r)


def _recode(package: bytes, part: str, codec: str, label: str) -> bytes:
    """``package`` with ``part`` stored in ``codec``, its declaration naming ``label``."""
    src, buf = zipfile.ZipFile(io.BytesIO(package)), io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as out:
        for info in src.infolist():
            data = src.read(info.filename)
            if info.filename == part:
                text = re.sub(r"encoding=(['\"])UTF-8\1", f"encoding='{label}'",
                              data.decode("utf-8"), count=1)
                data = text.encode(codec, "replace")
                if codec == "utf-7":  # letters may be written in base64 blocks too
                    data = data.replace(b"DDEAUTO", b"+AEQARABFAEEAVQBUAE8-")
            out.writestr(info, data)
    return buf.getvalue()


@pytest.mark.parametrize(("codec", "label"), [("utf-16", "UTF-16"), ("utf-16-be", "UTF-16"),
                                              ("cp037", "IBM037"), ("utf-7", "UTF-7")],
                         ids=["utf16-le-bom", "utf16-be-no-bom", "ebcdic", "utf7"])
def test_part_in_another_encoding_is_checked_as_office_reads_it(
        tmp_path: Path, codec: str, label: str) -> None:
    """OPC parts may be stored in UTF-16, which Office reads, and LibreOffice also reads
    a part declared in UTF-7 or an EBCDIC code page. The byte-level checks look for
    ASCII tokens (instrText, fldSimple, ppaction…), which these encodings write as other
    bytes: a DDEAUTO field was delivered as clean. Such a part is checked, and
    delivered, as UTF-8 (LibreOffice's text of the output equals its text of the input)."""
    data = _recode(G.docx_dde(False), "word/document.xml", codec, label)
    raw = zipfile.ZipFile(io.BytesIO(data)).read("word/document.xml")
    assert b"DDEAUTO" not in raw and "DDEAUTO" in raw.decode(codec)
    r = run(tmp_path, data, "encoded.docx")
    assert r.keys() == {("ooxml.dde", "word/document.xml#field[1]")}
    xml = doc_xml(r)
    assert "DDE" not in xml
    assert "単純フィールドの結果" in xml or codec == "cp037"  # EBCDIC has no kanji
    assert r.out is not None
    assert zipfile.ZipFile(r.out).read("word/document.xml").startswith(b"<?xml")
    check_output(r, tmp_path)


@pytest.mark.parametrize(("codec", "label"), [("utf-7", "UTF-7"), ("cp037", "IBM037")])
def test_relationships_in_another_encoding_are_read(tmp_path: Path, codec: str,
                                                    label: str) -> None:
    """Relationship parts declared in UTF-7 or EBCDIC (LibreOffice follows them): the
    parser could not read them and the document was refused. They are read as UTF-8:
    the remote template goes as it does from a UTF-8 package."""
    src, buf = zipfile.ZipFile(io.BytesIO(G.docx_attached_template())), io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as out:
        for info in src.infolist():
            data = src.read(info.filename)
            if info.filename.endswith(".rels"):
                text = re.sub(r"^<\?xml[^>]*\?>", "", data.decode("utf-8").lstrip())
                data = f"<?xml version='1.0' encoding='{label}'?>{text}".encode(codec)
            out.writestr(info, data)
    r = run(tmp_path, buf.getvalue(), "template.docx")
    assert r.report.verdict is Verdict.DISARMED, r.report.reason
    assert r.keys() == {("ooxml.external_relationship", "word/_rels/settings.xml.rels#rIdTpl")}
    # LibreOffice reads UTF-7 relationships, not EBCDIC ones (its package layer has its
    # own parser): the EBCDIC input does not open there, its disarmed copy does
    check_output(r, tmp_path, same_text=codec != "cp037")


def test_utf16_part_under_a_name_that_is_not_xml(tmp_path: Path) -> None:
    """A part's name need not end in .xml: its content type says it is XML. The zip
    reader turns entries into UTF-8 by their name, so the main document stored in UTF-16
    as word/document.bin kept its DDEAUTO field (LibreOffice opens it and shows it);
    XML parts by content type are read as UTF-8 too."""
    src, buf = zipfile.ZipFile(io.BytesIO(G.docx_dde(False))), io.BytesIO()
    renames = {"word/document.xml": "word/document.bin",
               "word/_rels/document.xml.rels": "word/_rels/document.bin.rels"}
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as out:
        for info in src.infolist():
            data = src.read(info.filename)
            if info.filename == "word/document.xml":
                data = re.sub(r"encoding=(['\"])UTF-8\1", "encoding='UTF-16'",
                              data.decode("utf-8"), count=1).encode("utf-16")
            elif info.filename in ("[Content_Types].xml", "_rels/.rels"):
                data = data.replace(b"/document.xml", b"/document.bin")
            out.writestr(renames.get(info.filename, info.filename), data)
    r = run(tmp_path, buf.getvalue(), "renamed.docx")
    assert r.keys() == {("ooxml.dde", "word/document.bin#field[1]")}
    assert r.out is not None
    assert zipfile.ZipFile(r.out).read("word/document.bin").startswith(b"<?xml")
    check_output(r, tmp_path)


def test_flat_opc_in_utf7_is_sniffed_and_disarmed_as_flat_opc(tmp_path: Path) -> None:
    """A Flat OPC document declared in UTF-7 with its markers (<?mso-application?>,
    <pkg:package>) and its field written in base64 blocks: the sniffer, reading bytes,
    took it for plain XML, and the XML stage's UTF-8 copy then sniffed as Flat OPC, so
    the verify step refused it. The sniffer reads the head as the stages read the
    whole document; the field is neutralized."""
    flat = G.zip_to_flat(G.docx_dde(False)).decode("utf-8")
    data = (flat.replace('encoding="UTF-8"', 'encoding="UTF-7"').encode("utf-7")
            .replace(b"pkg:package", b"pkg:+AHA-ackage")
            .replace(b"mso-application", b"mso-+AGE-pplication")
            .replace(b"DDEAUTO", b"+AEQARABFAEEAVQBUAE8-"))
    assert b"pkg:package" not in data and "pkg:package" in data.decode("utf-7")
    r = run(tmp_path, data, "document.xml")
    assert r.report.input.type == "ooxml.flatopc"
    assert r.report.verdict is Verdict.DISARMED, r.report.reason
    assert r.keys() == {("ooxml.dde", "word/document.xml#field[1]")}
    assert r.out is not None and b"AUTO" not in r.out.read_bytes()


@pytest.mark.parametrize("codec", ["utf-8", "utf-16"])
def test_slide_actions_that_start_programs_are_removed(tmp_path: Path, codec: str) -> None:
    """PowerPoint click and hover actions that start a program or an OLE verb go, with the
    relationship to the program; a jump to the next slide stays. Also with the slide
    stored in UTF-16, where the byte search for "ppaction" sees nothing."""
    data = G.pptx_click_actions()
    if codec != "utf-8":
        data = _recode(data, "ppt/slides/slide1.xml", codec, "UTF-16")
    r = run(tmp_path, data, "slides.pptx")
    assert r.keys() == {("ooxml.external_relationship", "ppt/slides/slide1.xml#action[1]"),
                        ("ooxml.external_relationship", "ppt/slides/slide1.xml#action[2]"),
                        ("ooxml.hyperlink", "ppt/slides/_rels/slide1.xml.rels#rId101")}
    slide = r.part("ppt/slides/slide1.xml")
    assert "ppaction://program" not in slide and "ppaction://ole" not in slide
    assert "ppaction://hlinkshowjump?jump=nextslide" in slide
    assert "calc.exe" not in r.part("ppt/slides/_rels/slide1.xml.rels")
    check_output(r, tmp_path)


def test_macrobutton_fields_become_their_display_text(tmp_path: Path) -> None:
    r = run(tmp_path, G.docx_macrobutton(), "template.docx")
    assert [line for line in oc.msodde_findings(r.src) if "MACROBUTTON" in line]
    assert r.keys() == {("ooxml.macro_field", "word/document.xml#field[1]"),
                        ("ooxml.macro_field", "word/document.xml#field[2]")}
    assert r.action("ooxml.macro_field", "word/document.xml#field[1]") == "neutralized"
    xml = doc_xml(r)
    assert "MACROBUTTON" not in xml and "fldChar" not in xml and "fldSimple" not in xml
    assert not oc.msodde_findings(r.out)
    text = check_output(r, tmp_path)
    assert "［ここをクリックして" in text and "氏名を入力］" in text and "資料を開く" in text


def test_deleted_macrobutton_stays_deleted_text(tmp_path: Path) -> None:
    """Inside a tracked deletion the display text must be w:delText (a w:t there is
    invalid WordprocessingML)."""
    r = run(tmp_path, G.docx_deleted_macrobutton(), "tracked.docx")
    assert r.keys() == {("ooxml.macro_field", "word/document.xml#field[1]")}
    xml = doc_xml(r)
    assert "MACROBUTTON" not in xml and "delInstrText" not in xml
    assert re.search(r"<w:del\b[^>]*>\s*<w:r>\s*(<w:rPr/>)?\s*<w:delText[^>]*>削除された案内",
                     xml), xml[-600:]
    check_output(r, tmp_path)


def test_include_fields_neutralized(tmp_path: Path) -> None:
    r = run(tmp_path, G.docx_include_fields(), "include.docx")
    assert r.keys() == {("ooxml.include_field", "word/document.xml#field[1]"),
                        ("ooxml.include_field", "word/document.xml#field[2]"),
                        ("ooxml.include_field", "word/document.xml#field[4]"),
                        ("ooxml.include_field", "word/document.xml#field[5]")}
    xml = doc_xml(r)
    assert "INCLUDE" not in xml and "PAGE" in xml          # the harmless field stays
    assert "DATABASE" not in xml and "evil" not in xml and "RD " not in xml
    assert "画像の代わり" in xml and "取り込まれた文" in xml and "山田太郎" in xml
    assert "索引の参照" in xml
    check_output(r, tmp_path)


def test_svg_picture_is_cleaned_in_place(tmp_path: Path) -> None:
    """An SVG picture's script, event handler and javascript: link were delivered
    untouched (Office draws SVG without running it, but "Save as Picture" hands the file
    to a browser); the part now goes through the SVG stage and stays, cleaned, under the
    default policy and under embedded: remove alike."""
    for n, policy in enumerate((DEFAULT, REMOVE_EMBEDDED)):
        (tmp_path / str(n)).mkdir()
        r = run(tmp_path / str(n), G.docx_svg_picture(), "svg.docx", policy)
        assert r.keys() == {("ooxml.svg_image", "word/media/image1.svg")}
        assert r.action("ooxml.svg_image", "word/media/image1.svg") == "disarmed"
        assert [(f.kind, f.location) for f in r.report.items[1].findings] == [
            ("svg.script", "script[0]"), ("svg.javascript_url", "a[0]@href"),
            ("svg.event_handler", "svg[root]@onload")]
        picture = tmp_path / str(n) / "picture.svg"
        picture.write_bytes(r.part("word/media/image1.svg").encode())
        assert svg_problems(picture) == []
        assert b'fill="#36c"' in picture.read_bytes() and b">SVG</text>" in picture.read_bytes()
        assert "image1.svg" in r.part("word/_rels/document.xml.rels")
        check_output(r, tmp_path / str(n))


def test_plain_svg_picture_stays_as_it_was(tmp_path: Path) -> None:
    data = G.docx_svg_picture(G.SVG_PLAIN)
    r = run(tmp_path, data, "plain.docx")
    assert r.report.verdict is Verdict.CLEAN and r.keys() == set()
    assert r.part("word/media/image1.svg").encode() == G.SVG_PLAIN


def test_hyperlink_fields_kept_only_with_web_targets(tmp_path: Path) -> None:
    """Like hyperlink relationships: javascript:, UNC and computed targets go, web and
    bookmark links stay; without the keep every HYPERLINK field goes."""
    data = G.docx_hyperlink_fields()
    r = run(tmp_path, data, "fields.docx", KEEP_LINKS)
    assert r.keys() == {("ooxml.hyperlink", "word/document.xml#field[1]"),
                        ("ooxml.hyperlink", "word/document.xml#field[2]"),
                        ("ooxml.hyperlink", "word/document.xml#field[5]")}
    assert r.action("ooxml.hyperlink", "word/document.xml#field[1]") == "neutralized"
    xml = doc_xml(r)
    assert "javascript" not in xml and "evil" not in xml and "calc.exe" not in xml
    assert "https://www.example.jp/" in xml and "_Toc1" in xml
    left = {line for line in oc.msodde_findings(r.out) if "HYPERLINK" in line.upper()}
    assert left == {'HYPERLINK "https://www.example.jp/" \\o "案内"', 'HYPERLINK \\l "_Toc1"'}
    text = check_output(r, tmp_path, same_text=False)
    for shown in ("スクリプトのリンク", "共有フォルダ", "関所のサイト", "目次へ",
                  "計算されたリンク"):
        assert shown in text

    nolinks = tmp_path / "nolinks"
    nolinks.mkdir()
    r = run(nolinks, data, "fields.docx", NO_LINKS)
    assert r.keys() == {("ooxml.hyperlink", f"word/document.xml#field[{i}]") for i in range(1, 6)}
    assert [line for line in oc.msodde_findings(r.out) if "HYPERLINK" in line.upper()] == []


def test_alt_chunk_disarmed_recursively(tmp_path: Path) -> None:
    chunk = G.docm()
    r = run(tmp_path, G.docx_alt_chunk(chunk, "afchunk.docm", G.DOCM_MAIN), "chunk.docx")
    assert r.keys() == {("ooxml.alt_chunk", "word/afchunk.docm")}
    assert r.action("ooxml.alt_chunk", "word/afchunk.docm") == "disarmed"
    assert r.keys(1) == {("ooxml.macro_enabled", "word/document.xml"),
                         ("ooxml.vba", "word/vbaProject.bin")}
    with r.zip() as zf:
        assert "word/afchunk.docx" in zf.namelist()
        assert G.WML_MAIN in zf.read("[Content_Types].xml").decode()
    check_output(r, tmp_path)


@pytest.mark.parametrize("name", ["dde-simple", "dde-split", "include", "clean", "links",
                                  "hyperlink-fields", "corpus-45690", "corpus-ddeauto2",
                                  "corpus-instrlink"])
def test_quick_field_check_agrees_with_the_parsed_tree(name: str) -> None:
    """The byte-level pre-check only decides whether to parse; it must never miss."""
    from gateway.stages import ooxml_fields as F
    from gateway.stages import ooxml_xml as X

    corpus = corpus_dir() / "b_ooxml"
    data = {"dde-simple": lambda: G.docx_dde(False), "dde-split": lambda: G.docx_dde(True),
            "include": G.docx_include_fields, "clean": G.base_docx,
            "links": G.docx_hyperlinks, "hyperlink-fields": G.docx_hyperlink_fields,
            "corpus-45690": (corpus / "poi/45690.docm").read_bytes,
            "corpus-ddeauto2": (corpus / "packt-mre2/word_ddeauto2.docx").read_bytes,
            "corpus-instrlink": (corpus / "tika/testInstrLink.docx").read_bytes}[name]()
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        xml = zf.read("word/document.xml")
    for keep in (True, False):
        found: list[str] = []
        F.neutralize(X.parse(xml, "d"), "d", keep, lambda _k, loc, _d, out=found: out.append(loc))
        assert F.quick_check(xml, keep) == bool(found), (keep, found)


def test_alt_chunk_html_goes_through_the_html_stage(tmp_path: Path) -> None:
    html = ("<html><body><p>取り込まれた段落です。<br>二行目</p>"
            "<script>alert('x')</script></body></html>").encode()
    r = run(tmp_path, G.docx_alt_chunk(html, "afchunk.htm", "text/html"), "chunk.docx")
    assert r.keys() == {("ooxml.alt_chunk", "word/afchunk.htm")}
    assert r.report.items[1].stage == "html"
    assert r.action("ooxml.alt_chunk", "word/afchunk.htm") == "disarmed"
    with r.zip() as zf:
        chunk = zf.read("word/afchunk.htm")
    assert b"<script" not in chunk and "二行目".encode() in chunk
    # written with XML syntax: oletools reads every part as XML, and failed an
    # assertion on the HTML stage's unclosed <meta> and <br> (tika's testAltChunkHTML)
    lxml.etree.fromstring(chunk.split(b"\n", 1)[1])
    msodde.process_file(str(r.out), msodde.FIELD_FILTER_DEFAULT)
    check_output(r, tmp_path, same_text=False)


# --------------------------------------------------------------------------- XML attacks


BASE_TEXT = "見積書 第十二号"


def _no_dtd(path: Path) -> None:
    """Independent of the stage: no part of the output declares a DTD or entities."""
    with zipfile.ZipFile(path) as zf:
        for name in zf.namelist():
            data = zf.read(name)
            assert b"<!DOCTYPE" not in data and b"<!ENTITY" not in data, name
            if name.endswith((".xml", ".rels")):
                DET.fromstring(data, forbid_dtd=True)  # parses with DTDs forbidden


@pytest.mark.parametrize(("kind", "detail", "title"), [
    ("xxe", "declares an external XML entity (XXE: reads files or URLs); "
            "1 entity reference(s) removed", ""),
    ("laughs", "declares nested XML entities (entity expansion, 'billion laughs'); "
               "1 entity reference(s) removed", ""),
    ("plain", "declares XML entities; 1 entity reference(s) replaced by their text", BASE_TEXT),
])
def test_dtd_cut_out_and_entities_resolved(tmp_path: Path, kind: str, detail: str,
                                           title: str) -> None:
    """Office never writes a DTD and refuses one: it is cut out, a plain-text entity is
    replaced by its text, anything else (external, nested) by nothing."""
    r = run(tmp_path, G.docx_xxe(kind), "attack.docx")
    assert r.report.verdict is Verdict.DISARMED
    assert r.keys() == {("xml.dtd", "word/document.xml")}
    assert r.action("xml.dtd", "word/document.xml") == "removed"
    [found] = r.report.items[0].findings
    assert found.detail == detail
    assert r.out is not None
    _no_dtd(r.out)
    text = check_output(r, tmp_path, same_text=False)
    assert (BASE_TEXT in text) == bool(title)
    assert "hahaha" not in text and "passwd" not in doc_xml(r)


def test_dtd_in_parts_copied_unchanged_is_cut_out(tmp_path: Path) -> None:
    """Parts nothing else edits (relationships, content types, properties) are copied
    byte for byte: one read without its DTD must be written as read."""
    r = run(tmp_path, G.docx_dtd_everywhere(), "x.docx")
    assert r.report.verdict is Verdict.DISARMED
    assert r.keys() == {("xml.dtd", "_rels/.rels"), ("xml.dtd", "[Content_Types].xml"),
                        ("xml.dtd", "docProps/core.xml")}
    assert r.out is not None
    _no_dtd(r.out)
    check_output(r, tmp_path, text=None, same_text=False)


def test_entity_expansion_beyond_the_limit_is_blocked(tmp_path: Path) -> None:
    """Substituting values may not grow a part by more than its own size + 64 KiB."""
    r = run(tmp_path, G.docx_xxe("growth"), "attack.docx")
    assert r.report.verdict is Verdict.BLOCKED
    assert r.keys() == {("block.malformed", "")}
    assert r.report.items[0].error == ("word/document.xml declares XML entities "
                                       "(entity expansion, 'billion laughs')")


def test_lying_extension_reported_and_renamed(tmp_path: Path) -> None:
    r = run(tmp_path, G.docm(), "普通の文書.docx")
    assert r.keys() == {("sniff.type_mismatch", ""), ("ooxml.macro_enabled", "word/document.xml"),
                        ("ooxml.vba", "word/vbaProject.bin")}
    assert r.report.input.type == "ooxml.docm"
    assert r.report.output is not None
    assert (r.report.output.name, r.report.output.type) == ("普通の文書.docx", "ooxml.docx")
    check_output(r, tmp_path)


# ---------------------------------------------------------------------- single-file XML


def test_flat_opc_disarmed_in_place(tmp_path: Path) -> None:
    src = G.zip_to_flat(G.docm(dde=True))
    r = run(tmp_path, src, "flat.xml")
    assert r.report.input.type == "ooxml.flatopc"
    assert oc.olevba_findings(r.src) and dde(r.src)
    assert r.keys() == {("ooxml.macro_enabled", "word/document.xml"),
                        ("ooxml.vba", "word/vbaProject.bin"),
                        ("ooxml.dde", "word/document.xml#field[1]")}
    assert r.report.output is not None
    assert (r.report.output.name, r.report.output.type) == ("flat.xml", "ooxml.flatopc")
    assert r.out is not None
    out = r.out.read_bytes()
    assert b"vbaProject" not in out and b"DDEAUTO" not in out and b"macroEnabled" not in out
    check_output(r, tmp_path)


def test_flat_opc_dtd_cut_out(tmp_path: Path) -> None:
    """A single-file XML document is rebuilt from its parsed tree: with its DTD cut out
    and the plain-text entity replaced by its text, nothing of the text is lost."""
    flat = G.zip_to_flat(G.base_docx()).decode("utf-8")
    head, rest = flat.split("<pkg:package", 1)
    dtd = ('<!DOCTYPE pkg:package [<!ENTITY t "見積書 第十二号">'
           '<!ENTITY x SYSTEM "file:///etc/passwd">]>')
    assert BASE_TEXT in rest
    rest = rest.replace(BASE_TEXT, "&t;&x;", 1)
    r = run(tmp_path, (head + dtd + "<pkg:package" + rest).encode("utf-8"), "flat.xml")
    assert r.report.input.type == "ooxml.flatopc"
    assert r.keys() == {("xml.dtd", "!DOCTYPE")}
    assert r.report.items[0].findings[0].detail == (
        "declares an external XML entity (XXE: reads files or URLs); "
        "1 entity reference(s) replaced by their text; 1 entity reference(s) removed")
    assert r.out is not None
    out = r.out.read_bytes()
    assert b"<!DOCTYPE" not in out and b"<!ENTITY" not in out and b"passwd" not in out
    DET.fromstring(out, forbid_dtd=True)
    text = check_output(r, tmp_path, same_text=False)
    assert BASE_TEXT in text


XMLSS = """<?xml version="1.0"?>
<?mso-application progid="Excel.Sheet"?>
<Workbook xmlns="urn:schemas-microsoft-com:office:spreadsheet"
 xmlns:ss="urn:schemas-microsoft-com:office:spreadsheet"
 xmlns:x="urn:schemas-microsoft-com:office:excel">
<x:ExcelWorkbook><x:SupBook><x:Path>cmd|/c calc.exe</x:Path><x:ExternName><x:Name>A0</x:Name>
<x:WantAdvise/></x:ExternName></x:SupBook>
<x:SupBook><x:Path>\\\\evil.example\\share\\book.xls</x:Path><x:SheetName>S</x:SheetName>
</x:SupBook><x:WindowHeight>12840</x:WindowHeight></x:ExcelWorkbook>
<Names><NamedRange ss:Name="Auto_Open" ss:RefersTo="=Sheet1!R1C1"/></Names>
<Worksheet ss:Name="集計"><Table>
<Row><Cell><Data ss:Type="String">見積</Data></Cell>
<Cell ss:Formula="=cmd|' /c calc'!A0"><Data ss:Type="Number">0</Data></Cell>
<Cell ss:Formula="='C:\\secret\\[book.xls]Sheet1'!R1C1"><Data ss:Type="Number">7</Data></Cell>
<Cell ss:Formula="=CALL(&quot;kernel32&quot;,&quot;WinExec&quot;,&quot;JCJ&quot;,&quot;c&quot;,0)">
<Data ss:Type="Number">1</Data></Cell>
<Cell ss:Formula="=SUM(R1C2:R1C3)"><Data ss:Type="Number">7</Data></Cell></Row>
<Row><Cell ss:HRef="https://www.city.example.lg.jp/"><Data ss:Type="String">市のサイト</Data></Cell>
<Cell ss:HRef="file://///evil.example/share/x.exe"><Data ss:Type="String">資料</Data></Cell></Row>
</Table>
<x:QueryTable><x:Name>q</x:Name><x:Connection>URL;http://evil.example/q</x:Connection></x:QueryTable>
</Worksheet></Workbook>
"""


def _long_formula_workbook(kind: str) -> tuple[str, bytes]:
    """A workbook with one 200 kB formula of the shape that made the DDE or external
    reference pattern backtrack at every character (no "!" ever closes it)."""
    if kind == "xlsx":
        p = G.Pkg(G.base_xlsx())
        p.sub("xl/worksheets/sheet1.xml", "SUM(B2:B3)", "a" * 200_000 + "|")
        return "long.xlsx", p.build()
    formula = "=" + "[a]" * 70_000
    return "long.xml", XMLSS.replace("=SUM(R1C2:R1C3)", formula).encode()


def test_many_character_references_outside_formulas_cost_linear_time(tmp_path: Path) -> None:
    """Found by fuzzing: whether a sheet may hold a formula spelled with character
    references was "&#[^<]*</f>" tried from every "&#": 60,000 of them in one attribute
    took over 10 s, a 16 kB sheet the job's whole time. Run in a worker held to 5 s of
    CPU; a DDE formula spelled with references is still found."""
    from tests.helpers.pipeline import run_in_worker

    p = G.Pkg(G.base_xlsx())
    p.sub("xl/worksheets/sheet1.xml", "<sheetData>",
          '<sheetProperties codeName="' + "&#x41;" * 200_000 + '"/><sheetData>')
    report, _ = run_in_worker(tmp_path, p.build(), "refs.xlsx")
    assert report.verdict.delivered, report.reason
    p.sub("xl/worksheets/sheet1.xml", "<f>SUM(B2:B3)</f>", "<f>cmd&#124;' /c calc'!A0</f>")
    report, _ = run_in_worker(tmp_path, p.build(), "dde.xlsx")
    assert ("ooxml.dde", "xl/worksheets/sheet1.xml#cell[B4]") in {
        (f.kind, f.location) for f in report.items[0].findings}


@pytest.mark.parametrize("kind", ["xlsx", "xmlss"])
def test_long_formulas_are_read_in_linear_time(tmp_path: Path, kind: str) -> None:
    """The DDE pattern was tried at every letter of a formula and backtracked over the
    rest (0.2 s for 20 kB, about 20 s for this one); the Excel 2003 external reference
    pattern likewise at every "[". Run in a worker held to 5 s of CPU, as the daemon
    runs it: a verdict well inside that."""
    from tests.helpers.pipeline import run_in_worker

    name, data = _long_formula_workbook(kind)
    report, _ = run_in_worker(tmp_path, data, name)
    assert report.verdict.delivered, report.reason


def test_many_removed_links_in_a_long_document_are_handled_in_linear_time(
        tmp_path: Path) -> None:
    """Whether a part still names a removed relationship was one search of the part per
    relationship: 30,000 external links and a 3 MB document.xml took about 20 s. Run in a
    worker held to 5 s of CPU, as the daemon runs it."""
    from tests.helpers.pipeline import run_in_worker

    p = G.Pkg(G.base_docx())
    links = "".join(f'<Relationship Id="rX{i}" Type="{G.R}/hyperlink" '
                    f'Target="http://e.example/{i}" TargetMode="External"/>' for i in range(30_000))
    p.sub("word/_rels/document.xml.rels", "</Relationships>", links + "</Relationships>")
    p.body(("<w:p><w:r><w:t>" + "本文" * 500 + "</w:t></w:r></w:p>") * 1000)
    report, out = run_in_worker(tmp_path, p.build(), "links.docx")
    assert report.verdict is Verdict.DISARMED, report.reason
    assert len(report.items[0].findings) == 30_000
    assert "本文" in zipfile.ZipFile(out).read("word/document.xml").decode()


def test_many_fields_in_one_paragraph_are_neutralized_in_linear_time(tmp_path: Path) -> None:
    """Each neutralized field's runs were removed one at a time, every removal scanning
    the paragraph in Python: 10,000 DDE fields in one paragraph took 5 s, 30,000 about
    45 s. Run in a worker held to 5 s of CPU, as the daemon runs it."""
    from tests.helpers.pipeline import run_in_worker

    def fld(kind: str) -> str:
        return f'<w:r><w:fldChar w:fldCharType="{kind}"/></w:r>'

    field = (fld("begin") + '<w:r><w:instrText xml:space="preserve"> DDEAUTO c:\\x y '
             "</w:instrText></w:r>" + fld("separate") + "<w:r><w:t>結果</w:t></w:r>" + fld("end"))
    p = G.Pkg(G.base_docx())
    p.body("<w:p>" + field * 30_000 + "</w:p>")
    report, out = run_in_worker(tmp_path, p.build(), "fields.docx")
    assert report.verdict is Verdict.DISARMED, report.reason
    assert len(report.items[0].findings) == 30_000
    xml = zipfile.ZipFile(out).read("word/document.xml").decode()
    assert "DDEAUTO" not in xml and xml.count("結果") == 30_000


def test_excel2003_xml_disarmed_in_place(tmp_path: Path) -> None:
    """Excel 2003 XML was sniffed as plain text and delivered with its DDE formula."""
    r = run(tmp_path, XMLSS.encode(), "集計.xml", KEEP_LINKS)
    assert r.report.input.type == "ooxml.xmlss" and r.report.verdict is Verdict.DISARMED
    assert r.keys() == {("ooxml.xlm_macro", "Workbook#NamedRange[Auto_Open]"),
                        # the links themselves (oletools' dde-in-excel2003.xml kept its
                        # "cmd|/c calc.exe" link with the formula gone)
                        ("ooxml.dde", "Workbook#SupBook[1]"),
                        ("ooxml.external_link", "Workbook#SupBook[2]"),
                        ("ooxml.dde", "Workbook#cell[2]"),
                        ("ooxml.external_link", "Workbook#cell[3]"),
                        ("ooxml.xlm_macro", "Workbook#cell[4]"),
                        ("ooxml.hyperlink", "Workbook#cell[6]"),
                        ("ooxml.hyperlink", "Workbook#cell[7]"),
                        ("ooxml.external_data", "Workbook#QueryTable")}
    assert r.action("ooxml.hyperlink", "Workbook#cell[6]") == "kept"
    assert r.action("ooxml.hyperlink", "Workbook#cell[7]") == "removed"
    assert r.out is not None
    out = r.out.read_bytes().decode("utf-8")
    root = DET.fromstring(out.encode(), forbid_dtd=True)
    formulas = [v for el in root.iter() for k, v in el.attrib.items() if k.endswith("}Formula")]
    assert formulas == ["=SUM(R1C2:R1C3)"]                  # the harmless formula stays
    for gone in ("cmd|", "calc", "secret", "CALL", "Auto_Open", "evil.example", "SupBook"):
        assert gone not in out, gone
    assert "12840" in out                                    # the window settings stay
    assert out.startswith('<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\r\n'
                          '<?mso-application progid="Excel.Sheet"?>')
    text = oc.libreoffice_text(r.out, "calc")
    for kept in ("見積", "市のサイト", "資料"):
        assert kept in text, kept


def test_word2003_xml_disarmed_in_place(tmp_path: Path) -> None:
    r = run(tmp_path, G.wordml_2003(), "2003.xml", KEEP_LINKS)
    assert r.report.input.type == "ooxml.wordml"
    assert oc.olevba_findings(r.src) and dde(r.src)
    assert r.keys() == {("ooxml.vba", "wordDocument#docSuppData"),
                        ("ooxml.ole_object", "wordDocument#docOleData"),
                        ("ooxml.ole_object", "wordDocument#OLEObject[1]"),
                        ("ooxml.external_relationship", "wordDocument#attachedTemplate"),
                        ("ooxml.external_relationship", "wordDocument#imagedata[1]"),
                        ("ooxml.dde", "wordDocument#field[1]"),
                        ("ooxml.hyperlink", "wordDocument")}
    assert r.action("ooxml.hyperlink", "wordDocument") == "kept"
    assert r.out is not None
    out = r.out.read_bytes().decode("utf-8")
    for gone in ("editdata.mso", "oledata.mso", "OLEObject", "DDEAUTO", "evil.example.jp"):
        assert gone not in out
    assert "表示された結果" in out and "wordml://03000001.png" in out   # the picture stays
    without_object = tmp_path / "without-object.xml"
    without_object.write_bytes(G.wordml_2003(ole=False))
    check_output(r, tmp_path, text=oc.libreoffice_text(without_object))


# ------------------------------------------------------------------ containers, hygiene


def test_encrypted_document_blocked_for_quarantine(tmp_path: Path) -> None:
    data = (corpus_dir() / "b_ooxml" / "oletools" / "encrypted.docx").read_bytes()
    r = run(tmp_path, data, "秘密.docx")
    assert r.report.input.type == "ooxml.encrypted"
    assert r.report.verdict is Verdict.BLOCKED
    assert r.keys() == {("block.encrypted", "")}
    assert r.report.items[0].error == "document is password-protected"


@pytest.mark.parametrize(("password", "given"), [
    ("VelvetSweatshop", None),   # Office's default: opened without asking anyone
    ("見積-2026", "見積-2026"),   # PPAP: the recipient entered it
])
def test_encrypted_document_is_opened_disarmed_and_delivered_plain(
        tmp_path: Path, password: str, given: str | None) -> None:
    src, out = tmp_path / "予算.xlsm", tmp_path / "out.xlsx"
    src.write_bytes(G.encrypt(G.xlsm(), password))
    report = process_file(src, out, policy=DEFAULT, password=given)
    check_report_schema(report)
    assert report.verdict is Verdict.DISARMED
    assert report.input.type == "ooxml.encrypted"
    assert report.output is not None
    assert (report.output.name, report.output.type) == ("予算.xlsx", "ooxml.xlsx")
    assert {(f.kind, f.location) for f in report.items[0].findings} == {
        ("ooxml.encrypted", "EncryptedPackage"), ("ooxml.macro_enabled", "xl/workbook.xml"),
        ("ooxml.vba", "xl/vbaProject.bin")}
    assert out.read_bytes().startswith(b"PK")  # no encryption left
    assert oc.olevba_findings(out) == []
    assert oc.ooxml_integrity(out) == []
    assert oc.libreoffice_opens(out, "calc")


def test_encrypted_document_wrong_or_no_password(tmp_path: Path) -> None:
    src, out = tmp_path / "a.docx", tmp_path / "out.docx"
    src.write_bytes(G.encrypt(G.base_docx(), "secret"))
    for password, reason in ((None, "document is password-protected"),
                             ("guess", "the password is not correct")):
        report = process_file(src, out, policy=DEFAULT, password=password)
        assert (report.verdict, report.reason) == (Verdict.BLOCKED, reason)
        assert {(f.kind, f.location) for f in report.items[0].findings} == {
            ("block.encrypted", "")}
        assert not out.exists()


@pytest.mark.parametrize(("kind", "block", "reason"), [
    ("traversal", "block.malformed", "unsafe zip member name '../../evil.xml'"),
    ("duplicate", "block.malformed", "the zip holds two entries named 'word/document.xml'"),
    ("encrypted", "block.malformed", "zip entry 'word/secret.xml' is encrypted"),
    ("bomb", "block.limit", "content expands more than 100x the input size"),
])
def test_zip_hygiene(tmp_path: Path, kind: str, block: str, reason: str) -> None:
    r = run(tmp_path, G.docx_zip_tricks(kind), "trick.docx")
    assert r.report.verdict is Verdict.BLOCKED
    assert r.keys() == {(block, "")}
    assert r.report.items[0].error == reason


def test_clean_document_is_clean_and_unchanged_parts_are_copied_raw(tmp_path: Path) -> None:
    data = G.base_docx()
    r = run(tmp_path, data, "clean.docx")
    assert r.report.verdict is Verdict.CLEAN
    assert r.keys() == set()
    with zipfile.ZipFile(io.BytesIO(data)) as zin, r.zip() as zout:
        assert zin.namelist() == zout.namelist()
        for info in zin.infolist():
            out_info = zout.getinfo(info.filename)
            assert (out_info.CRC, out_info.compress_size) == (info.CRC, info.compress_size)
    check_output(r, tmp_path)


def test_ole_file_disguised_as_image_or_custom_xml_removed(tmp_path: Path) -> None:
    """olevba reads every OLE member of the zip, whatever its name or type: a VBA
    project parked in an image or custom XML part must not pass through."""
    r = run(tmp_path, G.docx_ole_disguised(), "disguised.docx")
    assert oc.olevba_findings(r.src) != []
    assert r.keys() == {("ooxml.ole_object", "word/media/image9.png"),
                        ("ooxml.ole_object", "customXml/item9.bin")}
    assert r.action("ooxml.ole_object", "word/media/image9.png") == "removed"
    with r.zip() as zf:
        assert not {"word/media/image9.png", "customXml/item9.bin"} & set(zf.namelist())
    rel_targets = {target for _, target in rels(r, "word/_rels/document.xml.rels").values()}
    assert not {"media/image9.png", "../customXml/item9.bin"} & rel_targets
    check_output(r, tmp_path)


def test_dangling_and_unreferenced_parts(tmp_path: Path) -> None:
    p = G.Pkg(G.base_docx())
    p.rel("word/document.xml", f"{G.R}/image", "media/missing.png", rid="rIdGone")
    p.put("word/stray.bin", b"\x00" * 10)
    r = run(tmp_path, p.build(), "odd.docx")
    assert r.keys() == {("ooxml.dangling_relationship", "word/_rels/document.xml.rels#rIdGone"),
                        ("ooxml.unreferenced_part", "word/stray.bin")}
    assert r.action("ooxml.dangling_relationship",
                    "word/_rels/document.xml.rels#rIdGone") == "repaired"
    check_output(r, tmp_path)


def test_macos_resource_forks_in_the_zip_are_not_parts(tmp_path: Path) -> None:
    """xlsx2csv's skip_empty_lines.xlsx was zipped by the macOS Finder: AppleDouble
    files beside every part, __MACOSX/_rels/._.rels too, which was parsed as the
    relationships of a part and blocked the workbook as "not well-formed XML"."""
    fork = b"\x00\x05\x16\x07\x00\x02\x00\x00Mac OS X        " + b"\x00" * 200
    p = G.Pkg(G.base_xlsx())
    for name in ("__MACOSX/._[Content_Types].xml", "__MACOSX/_rels/._.rels",
                 "__MACOSX/xl/._workbook.xml", "__MACOSX/xl/_rels/._workbook.xml.rels",
                 "xl/._styles.xml"):
        p.put(name, fork)
    r = run(tmp_path, p.build(), "mac.xlsx")
    assert r.report.verdict is Verdict.DISARMED, r.report.reason
    assert r.keys() == {("ooxml.unreferenced_part", n) for n in (
        "__MACOSX/._[Content_Types].xml", "__MACOSX/_rels/._.rels",
        "__MACOSX/xl/._workbook.xml", "__MACOSX/xl/_rels/._workbook.xml.rels",
        "xl/._styles.xml")}
    check_output(r, tmp_path)


SCAN_FIXTURES = {
    "docm": lambda: G.docm(signature=True, vba_data=True, custom_ui=True, dde=True),
    "activex": G.docx_activex,
    "xlm": G.xlsm_xlm,
    "links": G.docx_hyperlinks,
    "extlink": lambda: G.xlsx_external_link(dde=False),
    "connections": G.xlsx_connections,
    "frame": G.docx_frame,
}


@pytest.mark.parametrize("name", sorted(SCAN_FIXTURES))
def test_scan_reports_what_disarm_changes(tmp_path: Path, name: str) -> None:
    data = SCAN_FIXTURES[name]()
    ext = {"xlm": "xlsm", "extlink": "xlsx", "connections": "xlsx"}.get(name, "docx")
    src = tmp_path / f"in.{ext}"
    src.write_bytes(data)
    scanned = scan_file(src, policy=DEFAULT)
    done = process_file(src, tmp_path / "out.bin", policy=DEFAULT)
    assert [(f.kind, f.location, f.action) for f in scanned.findings] == \
        [(f.kind, f.location, f.action) for f in done.findings]
    assert done.verdict is Verdict.DISARMED


@pytest.mark.parametrize(("macros", "type_id"), [(False, "ooxml.vsdx"), (True, "ooxml.vsdm")])
def test_minimal_visio_drawings_are_disarmed(tmp_path: Path, macros: bool, type_id: str) -> None:
    """A minimal .vsdx/.vsdm (MS-VSDX parts only) whose shape runs a program on a
    double-click: delivered as a .vsdx without the formula or the VBA project."""
    r = run(tmp_path, G.vsdx(macros=macros), "配置図." + type_id.split(".")[1])
    assert r.report.verdict is Verdict.DISARMED and r.out is not None
    assert r.report.input.type == type_id
    assert r.keys() == {("ooxml.visio_action", "visio/pages/page1.xml#EventDblClick[1]")} | (
        {("ooxml.macro_enabled", "visio/document.xml"), ("ooxml.vba", "visio/vbaProject.bin")}
        if macros else set())
    assert r.out.name == "配置図.vsdx"
    with zipfile.ZipFile(r.out) as zf:
        page = zf.read("visio/pages/page1.xml").decode()
        assert "RUNADDON" not in page and "庁舎配置図" in page
        assert "visio/vbaProject.bin" not in zf.namelist()
    assert oc.ooxml_integrity(r.out) == []


# ------------------------------------------------------------------------------ corpus

#: corpus samples that are not delivered, and why (everything else must be delivered)
CORPUS_BLOCKED = {
    "oletools/encrypted.docx": "block.encrypted",        # password-protected (ECMA-376)
}
#: not OOXML at all: an empty zip named .xlsx goes to the archive stage
CORPUS_NOT_OOXML = {"poi/invalid.xlsx"}


def _corpus_files() -> list[str]:
    base = corpus_dir() / "b_ooxml"
    return sorted(str(p.relative_to(base)) for p in base.rglob("*") if p.is_file())


@pytest.mark.slow
@pytest.mark.parametrize("rel", _corpus_files())
def test_corpus_sample(tmp_path: Path, rel: str) -> None:
    src = corpus_dir() / "b_ooxml" / rel
    r = run(tmp_path, src.read_bytes(), src.name)
    if rel in CORPUS_NOT_OOXML:
        assert not r.report.input.type.startswith("ooxml")
        return
    assert r.report.input.type.startswith("ooxml")
    if rel in CORPUS_BLOCKED:
        assert r.report.verdict is Verdict.BLOCKED
        assert r.keys() == {(CORPUS_BLOCKED[rel], "")}
        return
    assert r.report.verdict.delivered, r.report.items[0].error
    assert r.out is not None
    assert oc.olevba_findings(r.out) == []
    assert dde(r.out) == []
    kept = [f for f in oc.oleobj_findings(r.out)
            if not f.startswith("Found relationship 'hyperlink' with external link http")]
    assert kept == []
    if zipfile.is_zipfile(r.out):
        assert oc.xlm_parts(r.out) == []
        assert oc.ooxml_integrity(r.out) == [] or oc.ooxml_integrity(src) != []
    if oc.libreoffice_opens(lo_path(src, tmp_path)):
        assert oc.libreoffice_opens(lo_path(r.out, tmp_path))


# ------------------------------------------------------------------------------ Visio

VISIO = Path(__file__).resolve().parents[2] / "samples" / "office" / "poi-visio.vsdx"
_VSD_CT = "application/vnd.ms-visio.drawing."


def _hostile_visio() -> bytes:
    """The POI drawing as a .vsdm: a VBA project (corpus donor), a double-click event that
    runs an add-on, a right-click action calling VBA, a hyperlink to a share and one to
    the web on its first shape."""
    donor = (corpus_dir() / "b_ooxml" / "poi" / "SimpleMacro.xlsm").read_bytes()
    with zipfile.ZipFile(io.BytesIO(donor)) as zf:
        vba = zf.read("xl/vbaProject.bin")
    out = io.BytesIO()
    with zipfile.ZipFile(VISIO) as src, zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as dst:
        for info in src.infolist():
            data = src.read(info)
            if info.filename == "[Content_Types].xml":
                data = data.replace(f"{_VSD_CT}main+xml".encode(),
                                    f"{_VSD_CT}macroEnabled.main+xml".encode())
                data = data.replace(b"</Types>", b'<Override PartName="/visio/vbaProject.bin" '
                                    b'ContentType="application/vnd.ms-office.vbaProject"/></Types>')
            elif info.filename == "visio/_rels/document.xml.rels":
                data = data.replace(b"</Relationships>", b'<Relationship Id="rIdVba" Type="http://'
                                    b'schemas.microsoft.com/office/2006/relationships/vbaProject"'
                                    b' Target="vbaProject.bin"/></Relationships>')
            elif info.filename == "visio/pages/page1.xml":
                old = b"<Cell N='EventDblClick' V='0' F='OPENTEXTWIN()'/>"
                assert old in data
                data = data.replace(old, b"<Cell N='EventDblClick' V='0' F='RUNADDON(\"C:\\"
                                    b"Windows\\System32\\calc.exe\")'/>", 1)
                data = data.replace(b"<Text>", (
                    b"<Section N='Hyperlink'><Row N='Row_1'><Cell N='Description' V='share'/>"
                    b"<Cell N='Address' V='\\\\evil.example\\share\\x.exe'/></Row>"
                    b"<Row N='Row_2'><Cell N='Address' V='https://www.city.example.lg.jp/'/>"
                    b"</Row></Section><Section N='Actions'><Row N='Row_1'>"
                    b"<Cell N='Menu' V='Run'/><Cell N='Action' V='0' "
                    b"F='CALLTHIS(\"Module1.Run\")'/></Row></Section><Text>"), 1)
            dst.writestr(info, data)
        dst.writestr("visio/vbaProject.bin", vba)
    return out.getvalue()


def test_visio_drawing_disarmed(tmp_path: Path) -> None:
    data = _hostile_visio()
    src = tmp_path / "in.vsdm"
    src.write_bytes(data)
    assert oc.olevba_findings(src) != []
    r = run(tmp_path, data, "drawing.vsdm")
    assert r.report.verdict is Verdict.DISARMED and r.out is not None
    page = "visio/pages/page1.xml"
    assert r.keys() == {
        ("ooxml.macro_enabled", "visio/document.xml"),
        ("ooxml.vba", "visio/vbaProject.bin"),
        ("ooxml.visio_action", f"{page}#EventDblClick[1]"),
        ("ooxml.visio_action", f"{page}#Action[2]"),
        ("ooxml.hyperlink", f"{page}#Hyperlink[1]"),
        ("ooxml.hyperlink", f"{page}#Hyperlink[2]"),
    }
    assert r.out.name.endswith(".vsdx") and r.report.output is not None
    assert r.report.output.type == "ooxml.vsdx"
    assert oc.olevba_findings(r.out) == [] and oc.ooxml_integrity(r.out) == []
    with zipfile.ZipFile(r.out) as zf:
        assert "visio/vbaProject.bin" not in zf.namelist()
        body = b"".join(zf.read(n) for n in zf.namelist())
    for gone in (b"RUNADDON", b"CALLTHIS", b"evil.example", b"city.example", b"macroEnabled"):
        assert gone not in body, gone
    assert b"Text here" in body
    base = oc.libreoffice_text(VISIO)
    assert base and oc.libreoffice_text(r.out) == base


def test_visio_keeps_web_links_by_policy_and_clean_drawings_alone(tmp_path: Path) -> None:
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    r = run(tmp_path / "a", _hostile_visio(), "drawing.vsdm", KEEP_LINKS)
    found = r.keys()
    assert ("ooxml.hyperlink", "visio/pages/page1.xml#Hyperlink[1]") in found
    assert ("ooxml.hyperlink", "visio/pages/page1.xml#Hyperlink[2]") not in found
    assert r.out is not None
    with zipfile.ZipFile(r.out) as zf:
        page = zf.read("visio/pages/page1.xml")
    assert b"https://www.city.example.lg.jp/" in page and b"evil.example" not in page
    clean = run(tmp_path / "b", VISIO.read_bytes(), "clean.vsdx")
    assert clean.report.verdict is Verdict.CLEAN and clean.keys() == set()


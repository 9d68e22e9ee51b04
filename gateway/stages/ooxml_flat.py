"""Single-file XML Office documents, disarmed in place as XML.

Flat OPC (``<pkg:package>``, Word/Excel/PowerPoint "XML document"): every
``pkg:part`` becomes a part of the same package model the zip formats use, so the
same engine decides; the output is Flat OPC again. Locations are the part names
("word/document.xml#field[1]", "word/vbaProject.bin").

Word 2003 XML (``<w:wordDocument>``): one tree. Locations start with
``wordDocument``: ``wordDocument#docSuppData`` (the VBA project, editdata.mso),
``wordDocument#docOleData`` (OLE objects; their ``o:OLEObject`` go, previews stay),
``wordDocument#control[1]``, ``wordDocument#attachedTemplate``,
``wordDocument#mailMerge``, ``wordDocument#hlink[2]``, ``wordDocument#imagedata[1]``
(a linked picture), ``wordDocument#field[1]``.
"""

from __future__ import annotations

import base64
import binascii
import re
from typing import BinaryIO
from xml.etree.ElementTree import Element

from gateway.errors import Malformed
from gateway.kinds import Action
from gateway.pipeline.api import Mode, StageContext
from gateway.stages import ooxml_fields as F
from gateway.stages import ooxml_xml as X
from gateway.stages import xml_dtd
from gateway.stages.links import is_web
from gateway.stages.ooxml_excel import AUTO_NAME, DDE
from gateway.stages.ooxml_output import final_parts
from gateway.stages.ooxml_package import ContentTypes, MemorySource, Package
from gateway.stages.ooxml_plan import Engine
from gateway.stages.ooxml_zip import _check_name

PKG_NS = "http://schemas.microsoft.com/office/2006/xmlPackage"
WML2003 = "http://schemas.microsoft.com/office/word/2003/wordml"
XMLSS = "urn:schemas-microsoft-com:office:spreadsheet"
_XL = "urn:schemas-microsoft-com:office:excel"
#: formulas that run code or fetch data when the workbook calculates: DDE
#: (``ooxml_excel.DDE``), a cell in another workbook ('C:\dir\[book.xls]Sheet1'!R1C1),
#: and the functions that call DLLs, run macros or read the web
#: a workbook named in brackets, then its sheet: bounded runs, so a formula of brackets
#: and no "!" costs linear time
_XMLSS_EXTERNAL = re.compile(r"\[[^\]\[]{1,260}+\][^!]{0,260}+!")
_XMLSS_CALLS = re.compile(r"\b(CALL|REGISTER(\.ID)?|EXEC|RUN|WEBSERVICE|FILTERXML|RTD|"
                          r"DDE|DDEAUTO)\s*\(", re.IGNORECASE)
_PROGID = re.compile(rb'<\?mso-application\s+progid="([A-Za-z.]+)"\s*\?>')
_REMOTE = re.compile(r"^([a-z][a-z0-9+.-]+:|\\\\|//)", re.IGNORECASE)


def process(src: BinaryIO, dst: BinaryIO | None, ctx: StageContext) -> None:
    data = src.read()
    scrubbed = xml_dtd.scrub(data)
    if scrubbed is not None:  # the output is written from the parsed tree: no DTD in it
        data = scrubbed.data
        ctx.record("xml.dtd", "!DOCTYPE", action=Action.REMOVED, detail=scrubbed.detail)
    doc = X.parse(data, "the XML document")
    root = doc.root.tag
    m = _PROGID.search(data[:4096])
    progid = m.group(1).decode() if m else "Word.Document"
    if root == f"{{{PKG_NS}}}package":
        out = _flat_opc(doc, ctx, progid)
    elif X.local(root) == "wordDocument" and X.ns(root) == WML2003:
        out = _wordml(doc, ctx, progid)
    elif X.local(root) == "Workbook" and X.ns(root) == XMLSS:
        out = _xmlss(doc, ctx)
    else:
        raise Malformed("neither a Flat OPC package nor a Word 2003 or Excel 2003 XML document")
    if dst is not None and ctx.mode is Mode.DISARM:
        dst.write(out)


def _xmlss(doc: X.XmlDoc, ctx: StageContext) -> bytes:
    """Excel 2003 XML: formulas that run or fetch something lose the formula (the cell keeps
    its last value), cell hyperlinks follow the link rule, auto-run names, links to other
    workbooks and DDE links (SupBook), and web queries go."""
    part = "Workbook"
    parents = doc.parents()
    keep_links = ctx.keeps("hyperlinks")
    cells = links = 0
    gone: list[Element] = []
    for el in doc.root.iter():
        name, uri = X.local(el.tag), X.ns(el.tag)
        if uri == XMLSS and name == "Cell":
            cells += 1
            where = f"{part}#cell[{cells}]"
            formula = el.get(f"{{{XMLSS}}}Formula", "")
            kind = ("ooxml.dde" if DDE.search(formula)
                    else "ooxml.external_link" if _XMLSS_EXTERNAL.search(formula)
                    else "ooxml.xlm_macro" if _XMLSS_CALLS.search(formula) else None)
            if kind:
                del el.attrib[f"{{{XMLSS}}}Formula"]
                ctx.record(kind, where, action=Action.NEUTRALIZED,
                           detail="formula replaced by its last value")
            href = el.get(f"{{{XMLSS}}}HRef")
            if href is not None and not href.startswith("#"):
                keep = keep_links and is_web(href)
                ctx.record("ooxml.hyperlink", where,
                           action=Action.KEPT if keep else Action.REMOVED,
                           detail=f"{href[:100]}")
                if not keep:
                    del el.attrib[f"{{{XMLSS}}}HRef"]
        elif uri == XMLSS and name == "NamedRange" and AUTO_NAME.match(
                el.get(f"{{{XMLSS}}}Name", "")):
            ctx.record("ooxml.xlm_macro", f"{part}#NamedRange[{el.get(f'{{{XMLSS}}}Name')}]",
                       action=Action.REMOVED, detail="auto-run name")
            gone.append(el)
        elif uri == _XL and name == "SupBook":
            # a linked workbook or a DDE/OLE link ("cmd|/c calc.exe"): what the formulas
            # above pointed at, which Excel offers to update when the workbook opens
            links += 1
            path = (el.findtext(f"{{{_XL}}}Path") or "").strip()
            ctx.record("ooxml.dde" if "|" in path else "ooxml.external_link",
                       f"{part}#SupBook[{links}]", action=Action.REMOVED,
                       detail=f"link to {path[:100]}")
            gone.append(el)
        elif uri == _XL and name == "QueryTable":
            ctx.record("ooxml.external_data", f"{part}#QueryTable", action=Action.REMOVED,
                       detail="web or database query refreshed from outside")
            gone.append(el)
    for el in gone:
        X.remove(parents, el)
    return _pi("Excel.Sheet") + X.serialize(doc, declaration=False)


def _pi(progid: str) -> bytes:
    return X.XML_DECL + f'<?mso-application progid="{progid}"?>\r\n'.encode()


# --------------------------------------------------------------------------- flat OPC


def _flat_opc(doc: X.XmlDoc, ctx: StageContext, progid: str) -> bytes:
    parts: dict[str, bytes] = {}
    xml_parts: set[str] = set()
    attrs: dict[str, dict[str, str]] = {}
    ct = ContentTypes()
    inherited = doc.nsdecls.get(doc.root, [])
    for part in doc.root:
        if X.local(part.tag) != "part":
            continue
        name = part.get(f"{{{PKG_NS}}}name", "").lstrip("/")
        _check_name(name)
        if name.lower() in {p.lower() for p in parts}:
            raise Malformed(f"the package holds two parts named {name[:80]!r}")
        ct.overrides[name.lower()] = part.get(f"{{{PKG_NS}}}contentType", "")
        attrs[name] = {k: v for k, v in part.attrib.items()
                       if k not in (f"{{{PKG_NS}}}name", f"{{{PKG_NS}}}contentType")}
        body = next(iter(part), None)
        what = X.local(body.tag) if body is not None else ""
        if what == "xmlData" and body is not None:
            child = next(iter(body), None)
            if child is None:
                raise Malformed(f"part {name[:80]!r} has empty XML data")
            decls = inherited + doc.nsdecls.get(part, []) + doc.nsdecls.get(body, [])
            own = {p for p, _ in doc.nsdecls.get(child, [])}
            sub = X.XmlDoc(child, dict(doc.nsdecls))
            sub.nsdecls[child] = [d for d in decls if d[0] not in own] + \
                doc.nsdecls.get(child, [])
            parts[name] = X.serialize(sub, declaration=False)
            xml_parts.add(name)
        elif what == "binaryData" and body is not None:
            try:
                parts[name] = base64.b64decode("".join((body.text or "").split()),
                                               validate=True)
            except (binascii.Error, ValueError):
                raise Malformed(f"part {name[:80]!r} has damaged base64 data") from None
        else:
            raise Malformed(f"part {name[:80]!r} has no data")
    ctx.account(sum(len(p) for p in parts.values()))
    pkg = Package(MemorySource(parts), ct)
    e = Engine(pkg, ctx).run()
    out = [_pi(progid), f'<pkg:package xmlns:pkg="{PKG_NS}">'.encode()]
    for out_name, in_name, data in final_parts(pkg, e):
        body_bytes = data if data is not None else (parts[in_name] if in_name else b"")
        extra = "".join(f' {_qattr(k)}="{X._attr(v)}"'
                        for k, v in attrs.get(in_name or "", {}).items())
        head = (f'<pkg:part pkg:name="/{X._attr(out_name)}" '
                f'pkg:contentType="{X._attr(pkg.ct.get(out_name))}"{extra}>')
        out.append(head.encode())
        if in_name in xml_parts and (data is None or not _binary(data)):
            if body_bytes.startswith(X.XML_DECL):
                body_bytes = body_bytes[len(X.XML_DECL):]
            out.extend((b"<pkg:xmlData>", body_bytes, b"</pkg:xmlData>"))
        else:
            encoded = base64.encodebytes(body_bytes).replace(b"\n", b"\r\n")
            out.extend((b"<pkg:binaryData>", encoded, b"</pkg:binaryData>"))
        out.append(b"</pkg:part>")
    out.append(b"</pkg:package>")
    return b"".join(out)


def _qattr(key: str) -> str:
    return f"pkg:{X.local(key)}" if X.ns(key) == PKG_NS else X.local(key)


def _binary(data: bytes) -> bool:
    return data.lstrip()[:1] != b"<"


# ------------------------------------------------------------------------ Word 2003 XML


def _wordml(doc: X.XmlDoc, ctx: StageContext, progid: str) -> bytes:
    part = "wordDocument"
    root = doc.root
    parents = doc.parents()
    keep_links = ctx.keeps("hyperlinks")
    counts: dict[str, int] = {}
    kept_links = 0

    def drop(el: Element, kind: str, what: str, detail: str, numbered: bool = False) -> None:
        where = what
        if numbered:
            counts[what] = counts.get(what, 0) + 1
            where = f"{what}[{counts[what]}]"
        ctx.record(kind, f"{part}#{where}", action=Action.REMOVED, detail=detail)
        X.remove(parents, el)

    objects: list[Element] = []
    for el in list(root.iter()):
        name, uri = X.local(el.tag), X.ns(el.tag)
        if uri == WML2003 and name == "docSuppData":
            drop(el, "ooxml.vba", "docSuppData", "VBA project (editdata.mso)")
        elif uri == WML2003 and name == "docOleData":
            drop(el, "ooxml.ole_object", "docOleData", "embedded OLE objects (oledata.mso)")
        elif uri == X.O_NS and name == "OLEObject":
            objects.append(el)
        elif uri == WML2003 and name == "control":
            drop(el, "ooxml.activex", "control", "ActiveX control", numbered=True)
        elif uri == WML2003 and name in ("attachedTemplate", "subDoc"):
            value = el.get(f"{{{WML2003}}}val") or el.get(f"{{{WML2003}}}link") or ""
            if value.strip():
                drop(el, "ooxml.external_relationship", name, f"{name} -> {value[:100]}")
        elif uri == WML2003 and name == "mailMerge":
            drop(el, "ooxml.external_data", "mailMerge", "mail merge data source")
        elif uri == WML2003 and name == "hlink":
            dest = el.get(f"{{{WML2003}}}dest", "")
            if not dest or (keep_links and is_web(dest)):
                kept_links += bool(dest)
                continue
            counts["hlink"] = counts.get("hlink", 0) + 1
            ctx.record("ooxml.hyperlink", f"{part}#hlink[{counts['hlink']}]",
                       action=Action.REMOVED, detail=f"{dest[:100]}")
            X.unwrap(parents, el)
        elif uri == X.V_NS and name == "imagedata":
            src = el.get("src", "")
            if _REMOTE.match(src) and not src.lower().startswith("wordml:"):
                counts["imagedata"] = counts.get("imagedata", 0) + 1
                ctx.record("ooxml.external_relationship",
                           f"{part}#imagedata[{counts['imagedata']}]",
                           action=Action.REMOVED, detail=f"linked picture {src[:100]}")
                del el.attrib["src"]
    for obj in objects:
        parent = parents.get(obj)
        drop(obj, "ooxml.ole_object", "OLEObject", f"OLE object {obj.get('ProgID', '')[:40]}"
             .strip(), numbered=True)
        if parent is not None:
            for shape in parent.iter():
                shape.attrib.pop(f"{{{X.O_NS}}}ole", None)
    if kept_links:
        ctx.record("ooxml.hyperlink", part, action=Action.KEPT,
                   detail=f"{kept_links} web link{'s' if kept_links > 1 else ''} kept by policy")

    def record(kind: str, location: str, detail: str) -> None:
        ctx.record(kind, location, action=Action.NEUTRALIZED, detail=detail)

    F.neutralize(doc, part, keep_links, record)
    return _pi(progid) + X.serialize(doc, declaration=False)

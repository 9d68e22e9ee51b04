"""OpenDocument fixtures built by hand (zipfile and text), not by the code under test."""

from __future__ import annotations

import io
import zipfile

from PIL import Image

from tests.helpers import olegen

NS = {
    "office": "urn:oasis:names:tc:opendocument:xmlns:office:1.0",
    "text": "urn:oasis:names:tc:opendocument:xmlns:text:1.0",
    "draw": "urn:oasis:names:tc:opendocument:xmlns:drawing:1.0",
    "script": "urn:oasis:names:tc:opendocument:xmlns:script:1.0",
    "meta": "urn:oasis:names:tc:opendocument:xmlns:meta:1.0",
    "manifest": "urn:oasis:names:tc:opendocument:xmlns:manifest:1.0",
    "xlink": "http://www.w3.org/1999/xlink",
    "dom": "http://www.w3.org/2001/xml-events",
    "svg": "urn:oasis:names:tc:opendocument:xmlns:svg-compatible:1.0",
}
DECLS = " ".join(f'xmlns:{p}="{u}"' for p, u in NS.items() if p != "manifest")
MACRO = "vnd.sun.star.script:Standard.Module1.Main?language=Basic&amp;location=document"

CONTENT = f"""<?xml version="1.0" encoding="UTF-8"?>
<office:document-content {DECLS} office:version="1.3">
<office:scripts><office:event-listeners>
<script:event-listener script:language="ooo:script" script:event-name="dom:load"
 xlink:href="{MACRO}"/></office:event-listeners></office:scripts>
<office:body><office:text>
<text:dde-connection-decls><text:dde-connection-decl office:name="L1"
 office:dde-application="cmd" office:dde-topic="/c calc" office:dde-item="x"/>
</text:dde-connection-decls>
<text:p>市役所からのお知らせ</text:p>
<text:p><text:a xlink:href="javascript:alert(1)">クリック</text:a>
<text:a xlink:href="https://www.city.example.lg.jp/">詳細</text:a>
<text:a xlink:href="../private/台帳.ods">台帳</text:a>
<text:a xlink:href="#目次">目次へ</text:a></text:p>
<text:section text:name="S1"><text:section-source xlink:href="file:///etc/passwd"/>
<text:p>節の本文</text:p></text:section>
<text:p><text:execute-macro text:name="Main">実行</text:execute-macro>
<text:dde-connection text:connection-name="L1">DDE結果</text:dde-connection></text:p>
<text:p><draw:frame draw:name="O1" svg:width="2cm" svg:height="1cm">
<draw:object-ole xlink:href="./Object 1"/>
<draw:image xlink:href="./ObjectReplacements/Object 1"/></draw:frame>
<draw:frame draw:name="I1" svg:width="1cm" svg:height="1cm">
<draw:image xlink:href="https://tracker.example.net/pixel.png"/></draw:frame>
<draw:frame draw:name="I2" svg:width="1cm" svg:height="1cm">
<draw:image xlink:href="Pictures/logo.png"/></draw:frame></text:p>
</office:text></office:body></office:document-content>
"""
META = f"""<?xml version="1.0" encoding="UTF-8"?>
<office:document-meta {DECLS} office:version="1.3"><office:meta>
<meta:template xlink:href="https://attacker.example.net/t.ott" xlink:title="t"/>
<meta:generator>hand</meta:generator></office:meta></office:document-meta>
"""
STYLES = f"""<?xml version="1.0" encoding="UTF-8"?>
<office:document-styles {DECLS} office:version="1.3"/>
"""
BASIC = {
    "Basic/script-lc.xml": '<?xml version="1.0"?><library:libraries '
                           'xmlns:library="http://openoffice.org/2000/library"/>',
    "Basic/Standard/script-lb.xml": '<?xml version="1.0"?><library:library '
                                    'xmlns:library="http://openoffice.org/2000/library" '
                                    'library:name="Standard"/>',
    "Basic/Standard/Module1.xml": '<?xml version="1.0"?><script:module '
                                  'xmlns:script="http://openoffice.org/2000/script" '
                                  'script:name="Module1">Sub Main\nShell("calc.exe")\n'
                                  'End Sub</script:module>',
}


def _png(color: tuple[int, int, int]) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (4, 4), color).save(buf, "PNG")
    return buf.getvalue()


def _media_type(name: str) -> str:
    if name == "Object 1":
        return "application/vnd.sun.star.oleobject"
    return {".svg": "image/svg+xml", ".png": "image/png"}.get(name[-4:], "text/xml")


def odt(*, encrypted: bool = False, hostile: bool = True, kind: str = "text",
        ooo_doctype: bool = False, extra: dict[str, bytes] | None = None) -> bytes:
    """A text document; ``hostile``: with everything of the module docstring of
    gateway/stages/odf.py; ``encrypted``: its manifest says content.xml is encrypted;
    ``ooo_doctype``: the manifest has OpenOffice.org's DOCTYPE; ``extra``: more files."""
    plain = CONTENT.partition("<office:scripts>")[0] + (
        "<office:body><office:text><text:p>plain</text:p></office:text></office:body>"
        "</office:document-content>")
    files: dict[str, bytes] = {
        "content.xml": (CONTENT if hostile else plain).encode(),
        "styles.xml": STYLES.encode(),
        "meta.xml": META.encode() if hostile else STYLES.encode().replace(
            b"document-styles", b"document-meta"),
        "Pictures/logo.png": _png((0, 90, 160)),
        "Configurations2/accelerator/current.xml": b"",   # as LibreOffice writes it
    }
    files.update(extra or {})
    if hostile:
        files.update({k: v.encode() for k, v in BASIC.items()})
        files["Object 1"] = olegen.static_dib(_png((1, 2, 3)))
        files["ObjectReplacements/Object 1"] = _png((200, 0, 0))
    entries = "".join(
        f'<manifest:file-entry manifest:full-path="{name}" manifest:media-type="'
        f'{_media_type(name)}">'
        + ('<manifest:encryption-data manifest:checksum-type="SHA1/1K" manifest:checksum="x"/>'
           if encrypted and name == "content.xml" else "")
        + "</manifest:file-entry>" for name in files)
    doctype = ('<!DOCTYPE manifest:manifest PUBLIC "-//OpenOffice.org//DTD Manifest 1.0//EN"'
               ' "Manifest.dtd">' if ooo_doctype else "")    # as OpenOffice.org 2/3 wrote it
    manifest = (f'<?xml version="1.0" encoding="UTF-8"?>{doctype}<manifest:manifest '
                f'xmlns:manifest="{NS["manifest"]}" manifest:version="1.3">'
                '<manifest:file-entry manifest:full-path="/" '
                f'manifest:media-type="application/vnd.oasis.opendocument.{kind}"/>'
                f"{entries}</manifest:manifest>")
    out = io.BytesIO()
    when = (2026, 11, 27, 9, 0, 0)                      # the same bytes on every run
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr(zipfile.ZipInfo("mimetype", when),
                    f"application/vnd.oasis.opendocument.{kind}",
                    compress_type=zipfile.ZIP_STORED)
        zf.writestr(zipfile.ZipInfo("META-INF/manifest.xml", when), manifest,
                    compress_type=zipfile.ZIP_DEFLATED)
        for name, data in files.items():
            zf.writestr(zipfile.ZipInfo(name, when), data, compress_type=zipfile.ZIP_DEFLATED)
    return out.getvalue()


def fodt() -> bytes:
    """The hostile text document as a single-file OpenDocument (.fodt): the Basic module
    and the on-open event in office:scripts, the same body as ``odt``'s content.xml."""
    body = CONTENT.split("<office:body>", 1)[1].split("</office:document-content>", 1)[0]
    scripts = ('<office:scripts><office:script script:language="ooo:Basic">'
               '<ooo:libraries><ooo:library-embedded ooo:name="Standard">'
               '<ooo:module ooo:name="Module1"><ooo:source-code>Sub Main\n'
               'Shell("calc.exe")\nEnd Sub</ooo:source-code></ooo:module>'
               "</ooo:library-embedded></ooo:libraries></office:script>"
               '<office:event-listeners><script:event-listener script:language="ooo:script"'
               f' script:event-name="dom:load" xlink:href="{MACRO}"/>'
               "</office:event-listeners></office:scripts>")
    return (f'<?xml version="1.0" encoding="UTF-8"?>\n<office:document {DECLS} '
            'xmlns:ooo="http://openoffice.org/2004/office" office:version="1.3" '
            'office:mimetype="application/vnd.oasis.opendocument.text">'
            f"{scripts}<office:body>{body}</office:document>\n").encode()

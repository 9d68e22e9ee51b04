"""Decide the real type of an input from its content, never from its name.

One ordered table of structural checks runs first (cheap and exact); libmagic
(python-magic) names what the table does not know. The declared name is only
compared afterwards: a mismatch is reported and policy decides.

Type ids are ``family.kind`` ("ooxml.docx", "executable.pe"); the family is what
policies configure.
"""

from __future__ import annotations

import io
import re
import zipfile
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import PurePath
from typing import BinaryIO

import defusedxml.ElementTree as DET

from gateway.errors import Malformed
from gateway.pipeline import xml_wide

HEAD = 64 * 1024


@dataclass(frozen=True, slots=True)
class Sniffed:
    type_id: str
    description: str
    declared_family: str | None = None   # family the name's extension claims

    @property
    def family(self) -> str:
        return self.type_id.split(".", 1)[0]

    @property
    def mismatch(self) -> bool:
        return self.declared_family is not None and self.declared_family != self.family


Check = Callable[[bytes, BinaryIO], str | None]

# ----------------------------------------------------------------------------- checks


#: an object header at the start of a line; the blanks before it stay on that line (with
#: \s, every line start of a run of blank lines scanned the whole run: a text file of
#: 200 kB of line ends took 32 s to sniff)
_PDF_OBJ = re.compile(rb"(?m)^[ \t\f\r]*\d{1,10}\s+\d{1,5}\s+obj\b")


#: a CMS/PKCS #7 ContentInfo's type right after its SEQUENCE header: signed data
#: (1.2.840.113549.1.7.2) or enveloped data (...7.3), DER or BER (indefinite length)
_CMS_TYPE = re.compile(rb"\x30(?:\x80|[\x00-\x7f]|\x81.|\x82..|\x83...|\x84....)"
                       rb"\x06\x09\x2a\x86\x48\x86\xf7\x0d\x01\x07([\x02\x03])", re.S)


def cms_type(head: bytes) -> str | None:
    """"signed" or "enveloped" for a CMS/PKCS #7 file (.p7m), None for anything else."""
    m = _CMS_TYPE.match(head)
    return None if m is None else ("signed" if m.group(1) == b"\x02" else "enveloped")


def _cms(head: bytes, src: BinaryIO) -> str | None:
    """A .p7m file: a signed document (or message) with its signature, or an encrypted
    one. Looked for before PDF: the signed bytes of a PDF sit inside it as they are."""
    return "mail.p7m" if cms_type(head) else None


def _pdf(head: bytes, src: BinaryIO) -> str | None:
    # Readers accept %PDF- anywhere in the first 1024 bytes; Chrome's PDFium a %PDF with
    # no version after it too (corkami's inline-chrome2.pdf, "%PDF01234", shows a page):
    # with a PDF object behind it, that is a PDF, not text to deliver as it is
    if b"%PDF-" in head[:1024]:
        return "pdf"
    return "pdf" if b"%PDF" in head[:1024] and _PDF_OBJ.search(head) else None


def _pdf_structure(head: bytes) -> bool:
    """PDF objects in what libmagic calls text or data: viewers repair a file whose
    header is damaged, so it must not pass as text, scripts and all."""
    return (b"endobj" in head or b"trailer" in head) and bool(_PDF_OBJ.search(head))


_OLE_MAGIC = bytes.fromhex("D0CF11E0A1B11AE1")


#: root CLSIDs of Windows Installer files: package (.msi), transform (.mst), patch (.msp)
_MSI_CLSIDS = frozenset({"000C1084-0000-0000-C000-000000000046",
                         "000C1082-0000-0000-C000-000000000046",
                         "000C1086-0000-0000-C000-000000000046"})


def _ole(head: bytes, src: BinaryIO) -> str | None:
    """OLE compound files by their root entries (read with olefile).

    ``ole.other`` (Visio, Outlook .msg, Ichitaro, Hangul, ...) has no disarm stage:
    under the default ``ole: disarm`` it is blocked as ``block.unsupported``, which
    names the type, rather than as an unknown file.
    """
    if not head.startswith(_OLE_MAGIC):
        return None
    import olefile  # noqa: PLC0415 - only compound files pay for it

    try:
        src.seek(0)
        ole = olefile.OleFileIO(src)
        names = {str(e.name).upper() for e in ole.root.kids}
        clsid = str(ole.root.clsid).upper()
    except Exception:
        # Damaged directory: guess from the names in the head so the stage that
        # owns the type reports a precise reason (it refuses damaged files).
        text = head.decode("utf-16-le", "ignore")
        for needle, type_id in (("EncryptedPackage", "ooxml.encrypted"),
                                ("WordDocument", "ole.doc"), ("Workbook", "ole.xls"),
                                ("PowerPoint Document", "ole.ppt")):
            if needle in text:
                return type_id
        return "ole.other"
    if {"ENCRYPTEDPACKAGE", "ENCRYPTIONINFO"} <= names:
        return "ooxml.encrypted"
    if "__PROPERTIES_VERSION1.0" in names or any(n.startswith("__SUBSTG1.0_") for n in names):
        return "mail.msg"  # Outlook message
    if (clsid in _MSI_CLSIDS or "\x05MSIDIGITALSIGNATUREEX" in names
            or any(n.startswith("\u4840") for n in names)):
        return "executable.msi"
    if "WORDDOCUMENT" in names:
        return "ole.doc"
    if "WORKBOOK" in names or "BOOK" in names:
        return "ole.xls"
    if "POWERPOINT DOCUMENT" in names:
        return "ole.ppt"
    return "ole.other"


_OOXML_MAIN: dict[str, str] = {
    "wordprocessingml.document.main": "ooxml.docx",
    "wordprocessingml.template.main": "ooxml.dotx",
    "ms-word.document.macroEnabled.main": "ooxml.docm",
    "ms-word.template.macroEnabledTemplate.main": "ooxml.dotm",
    "spreadsheetml.sheet.main": "ooxml.xlsx",
    "spreadsheetml.template.main": "ooxml.xltx",
    "ms-excel.sheet.macroEnabled.main": "ooxml.xlsm",
    "ms-excel.template.macroEnabled.main": "ooxml.xltm",
    "ms-excel.addin.macroEnabled.main": "ooxml.xlam",
    "ms-excel.sheet.binary.macroEnabled.main": "ooxml.xlsb",
    "presentationml.presentation.main": "ooxml.pptx",
    "presentationml.template.main": "ooxml.potx",
    "presentationml.slideshow.main": "ooxml.ppsx",
    "ms-powerpoint.presentation.macroEnabled.main": "ooxml.pptm",
    "ms-powerpoint.template.macroEnabled.main": "ooxml.potm",
    "ms-powerpoint.slideshow.macroEnabled.main": "ooxml.ppsm",
    "ms-powerpoint.addin.macroEnabled.main": "ooxml.ppam",
    # Visio 2013+ packages (their ShapeSheet formulas: gateway/stages/ooxml_visio.py)
    "ms-visio.drawing.main": "ooxml.vsdx",
    "ms-visio.drawing.macroEnabled.main": "ooxml.vsdm",
    "ms-visio.template.main": "ooxml.vstx",
    "ms-visio.template.macroEnabled.main": "ooxml.vstm",
    "ms-visio.stencil.main": "ooxml.vssx",
    "ms-visio.stencil.macroEnabled.main": "ooxml.vssm",
    # XPS and OpenXPS print-outs (gateway/stages/ooxml_xps.py)
    "ms-package.xps-fixeddocumentsequence": "ooxml.xps",
}


def _zip(head: bytes, src: BinaryIO) -> str | None:
    if not head.startswith((b"PK\x03\x04", b"PK\x05\x06", b"PK\x07\x08")):
        return None
    try:
        src.seek(0)
        with zipfile.ZipFile(src) as zf:
            names = set(zf.namelist())
            # OPC part names compare without regard to case: Office opens a package
            # whose "[content_types].xml" a tool wrote in lower case (POI bug 49609)
            spelled = {n.lower(): n for n in names}
            if "[content_types].xml" in spelled:
                info = zf.getinfo(spelled["[content_types].xml"])
                if info.file_size > 4 * 1024 * 1024:
                    return "ooxml.unknown"
                try:
                    return _ooxml_kind(zf.read(info), _ooxml_main(zf, spelled))
                except (zipfile.BadZipFile, OSError, ValueError, EOFError, zlib.error,
                        RuntimeError, NotImplementedError):
                    # a damaged package, or its content types encrypted or compressed in
                    # a way zipfile does not read: the OOXML stage refuses it
                    return "ooxml.unknown"
            if "mimetype" in names:
                mimetype = zf.read("mimetype")[:100].decode("ascii", "replace").strip()
                if mimetype.startswith("application/vnd.oasis.opendocument."):
                    return "odf." + mimetype.rsplit(".", 1)[-1]
            elif "content.xml" in names and "META-INF/manifest.xml" in names:
                # an ODF package without "mimetype" (old OpenOffice.org wrote some;
                # LibreOffice opens them): the manifest's entry for the root says what
                found = _odf_root_type(zf)
                if found:
                    return found
            return "archive.zip"
    except (zipfile.BadZipFile, OSError, KeyError, ValueError, EOFError, zlib.error,
            NotImplementedError, RuntimeError):
        # damaged zip, or an entry read here encrypted (RuntimeError): the archive stage
        # decides (blocked, or held for the password)
        return "archive.zip"


_ODF_ROOT = re.compile(rb'full-path="/"[^>]*?media-type="application/vnd\.oasis\.opendocument'
                       rb'\.([a-z-]+)"|media-type="application/vnd\.oasis\.opendocument\.'
                       rb'([a-z-]+)"[^>]*?full-path="/"')


def _odf_root_type(zf: zipfile.ZipFile) -> str | None:
    """The ODF type an ODF package's manifest gives its root ("/"), or None."""
    info = zf.getinfo("META-INF/manifest.xml")
    if info.file_size > 1024 * 1024:
        return None
    m = _ODF_ROOT.search(zf.read(info))
    return f"odf.{(m.group(1) or m.group(2)).decode()}" if m else None


def _ooxml_main(zf: zipfile.ZipFile, spelled: dict[str, str]) -> str | None:
    """The main part's name, from the package relationship of type officeDocument (an
    XPS document's: fixedrepresentation); ``spelled``: lower-case names -> as written."""
    rels = spelled.get("_rels/.rels")
    if rels is None or zf.getinfo(rels).file_size > 1024 * 1024:
        return None
    try:
        root = DET.fromstring(zf.read(rels))
    except Exception:
        return None
    internal = [el for el in root if el.get("TargetMode", "").lower() != "external"]
    for suffix in ("/officeDocument", "/fixedrepresentation"):  # XPS: only without the first
        for el in internal:
            if el.get("Type", "").endswith(suffix):
                return el.get("Target", "").lstrip("/").lower() or None
    return None


def _ooxml_type(ctype: str) -> str | None:
    ctype = ctype.lower()
    for key, type_id in _OOXML_MAIN.items():
        if ctype.endswith((key.lower() + "+xml", key.lower())):
            return type_id
    return None


def _ooxml_kind(xml: bytes, main: str | None = None) -> str:
    """The OOXML kind from the main part's content type (an Override, else the Default
    for its extension: an xlsb's workbook.bin is typed by ``Default Extension="bin"``)."""
    try:
        root = DET.fromstring(xml)
    except Exception:
        return "ooxml.unknown"
    defaults: dict[str, str] = {}
    for el in root:
        if el.tag.endswith("Default"):
            defaults[el.get("Extension", "").lower()] = el.get("ContentType", "")
        elif main and el.tag.endswith("Override") and \
                el.get("PartName", "").lstrip("/").lower() == main:
            return _ooxml_type(el.get("ContentType", "")) or "ooxml.unknown"
    if main and "." in main:
        found = _ooxml_type(defaults.get(main.rsplit(".", 1)[1], ""))
        if found:
            return found
    for el in root:
        if el.tag.endswith("Override") and el.get("PartName", "").count("/") <= 2:
            found = _ooxml_type(el.get("ContentType", ""))
            if found:
                return found
    return "ooxml.unknown"


_SIGNATURES: tuple[tuple[int, bytes, str], ...] = (
    (0, b"{\\rt", "rtf"),
    (0, b"MZ", "executable.pe"),
    (0, b"\x7fELF", "executable.elf"),
    (0, b"\xfe\xed\xfa\xce", "executable.macho"),
    (0, b"\xfe\xed\xfa\xcf", "executable.macho"),
    (0, b"\xce\xfa\xed\xfe", "executable.macho"),
    (0, b"\xcf\xfa\xed\xfe", "executable.macho"),
    (0, b"\xca\xfe\xba\xbe", "executable.macho"),
    (0, bytes.fromhex("4C0000000114020000000000C000000000000046"), "executable.lnk"),
    (0, bytes.fromhex("E4525C7B8CD8A74DAEB15378D02996D3"), "executable.onenote"),
    (0, b"ITSF", "executable.chm"),
    # the EICAR anti-virus test file: a DOS .COM program made of printable characters
    # (it prints its name); mail gateways refuse it, and so does every scanner behind us
    (0, rb"X5O!P%@AP[4\PZX54(P^)7CC)7}$EICAR-STANDARD-ANTIVIRUS-TEST-FILE!$H+H*",
     "executable.com"),
    (0, b"conectix", "archive.vhd"),     # a dynamic VHD's copy of its footer
    (0, b"vhdxfile", "archive.vhdx"),
    (0x8001, b"CD001", "archive.iso"),
    (0x9001, b"CD001", "archive.iso"),
    (0, b"MSWIM\x00\x00\x00", "archive.wim"),
    (0, b"7z\xbc\xaf\x27\x1c", "archive.7z"),
    (0, b"Rar!\x1a\x07", "archive.rar"),
    (7, b"**ACE**", "archive.ace"),      # WinACE: its main header's signature
    (0, b"\x1f\x8b", "archive.gzip"),
    (0, b"BZh", "archive.bzip2"),
    (0, b"\xfd7zXZ\x00", "archive.xz"),
    (0, b"\x28\xb5\x2f\xfd", "archive.zstd"),  # a Zstandard frame (.zst, .tar.zst)
    (0, b"\x04\x22\x4d\x18", "archive.lz4"),   # an LZ4 frame (.lz4, .tar.lz4)
    (0, b"MSCF", "archive.cab"),
    (257, b"ustar", "archive.tar"),
    (0, b"\x89PNG\r\n\x1a\n", "image.png"),
    (0, b"\xff\xd8\xff", "image.jpeg"),
    (0, b"GIF87a", "image.gif"),
    (0, b"GIF89a", "image.gif"),
    (0, b"BM", "image.bmp"),
    (0, b"II*\x00", "image.tiff"),
    (0, b"MM\x00*", "image.tiff"),
    (0, b"DDS |\x00\x00\x00", "image.vnd-ms.dds"),  # DirectDraw Surface (older libmagic:
                                                    # application/octet-stream)
)


_RTF_PREFIX = re.compile(rb"(?:\xef\xbb\xbf)?[ \t\r\n]{0,1024}\{\\rt")


def rtf_start(data: bytes) -> int | None:
    """Where an RTF document's "{\\rt" starts when only a UTF-8 byte order mark and
    blank lines come before it (0: at the start), else None."""
    m = _RTF_PREFIX.match(data)
    return m.end() - 4 if m else None


def _signature(head: bytes, src: BinaryIO) -> str | None:
    for offset, magic, type_id in _SIGNATURES:
        if offset + len(magic) > len(head):
            src.seek(offset)
            window = src.read(len(magic))
        else:
            window = head[offset : offset + len(magic)]
        if window == magic:
            if type_id == "image.bmp" and len(head) < 26:
                continue
            if type_id == "archive.iso" and _udf(head):
                return "archive.udf"  # a UDF bridge: Windows shows its UDF tree
            return type_id
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "image.webp"
    if head[:1] in b"\xef \t\r\n" and rtf_start(head) is not None:
        # a byte order mark or blank lines before {\rt: the RTF stage reads the document
        # after them (as text it went through with its objects and DDE fields)
        return "rtf"
    if re.fullmatch(rb"-l[hz][0-9a-z]-", head[2:7]):  # LHA/LZH, still common in Japan
        return "archive.lzh"
    return None


def _udf(head: bytes) -> bool:
    """UDF's volume recognition sequence (BEA01 ... NSR02/NSR03) from sector 16 on."""
    for sector in range(16, 32):
        ident = head[sector * 2048 + 1 : sector * 2048 + 6]
        if ident in (b"NSR02", b"NSR03"):
            return True
        if ident not in (b"BEA01", b"CD001", b"CDW02", b"BOOT2", b"TEA01"):
            return False
    return False


def _disk_image(head: bytes, src: BinaryIO) -> str | None:
    """UDF without an ISO 9660 tree (libmagic: "data"), an Apple DMG (its "koly"
    trailer is in the last 512 bytes), a fixed VHD (its "conectix" footer too) and ARJ
    (0x60 0xEA, a header of at most 2600)."""
    if _udf(head):
        return "archive.udf"
    if head[:2] == b"\x60\xea" and 0 < int.from_bytes(head[2:4], "little") <= 2600:
        return "archive.arj"
    src.seek(0, 2)
    size = src.tell()
    if size >= 1024:
        src.seek(size - 512)
        trailer = src.read(12)
        if trailer[:8] == b"conectix":  # a fixed VHD: the raw disk, then its footer
            return "archive.vhd"
        if trailer[:4] == b"koly" and trailer[4:8] == b"\x00\x00\x00\x04" and \
                trailer[8:12] == b"\x00\x00\x02\x00":
            return "archive.dmg"
    return None




#: an HTML fragment (a signature, a saved snippet): browsers render it as HTML
_HTML_FRAGMENT = re.compile(rb"<(p|div|table|span|br|a|h[1-6]|ul|ol|meta|title|style|iframe|"
                            rb"img|form|font|center|b|i|u|strong|em|pre|object|embed)[\s>/]")


#: an SVG document: its root element after the XML declaration, comments (Inkscape and
#: other editors put theirs first), processing instructions and the DOCTYPE. Each of
#: those is taken whole and never re-split (atomic group, possessive repeat): a prolog of
#: many ``<?a?>`` that is not followed by <svg> would otherwise be retried in every way
#: its pieces can be joined, exponentially.
_SVG_ROOT = re.compile(rb"(?>\s|<\?.*?\?>|<!--.*?-->|<!doctype[^\[>]*(?:\[.*?\])?\s*>)*+"
                       rb"<(?:[\w.-]+:)?svg[\s>/]", re.S)


#: the root of a single-file OpenDocument (any prefix) and of an Excel 2003 XML workbook
_FLAT_ODF = re.compile(rb"<([\w.-]+:)?document\s[^>]*?([\w.-]+:)?mimetype\s*=\s*"
                       rb"[\"']application/vnd\.oasis\.opendocument\.")
_XMLSS_ROOT = re.compile(rb"<([\w.-]+:)?workbook\s[^>]*urn:schemas-microsoft-com:office:"
                         rb"spreadsheet")


def _xml_head(head: bytes) -> bytes:
    """An XML head declared in an encoding that writes ASCII as other bytes (UTF-7 may
    write the <?mso-application?> or <pkg:package> markers in base64 blocks), in UTF-8;
    the head as it is otherwise. The stages read the whole document the same way."""
    try:  # the head may end inside a multi-byte sequence: what decodes is enough
        return xml_wide.as_utf8(head[:16384], "the document", errors="ignore") or head
    except Malformed:
        return head


_VCARD = re.compile(rb"[\s\x0b\x0c]*begin:vcard\s*(?:\r\n|\n|\r)")
_CALENDAR = re.compile(rb"[\s\x0b\x0c]*begin:v(?:calendar|event|todo|journal|freebusy|"
                       rb"alarm|timezone|availability)\s*(?:\r\n|\n|\r)")


#: a SYLK record after the ID record: its type (C, F, B, P, O, NN, NU, W...), then ";"
#: or the end of the line; E ends the file
_SYLK_RECORD = re.compile(rb"[A-Za-z]{1,2}(?:;|\s*$)")


def _sylk_records(head: bytes) -> bool:
    """Whether the lines after an ``ID;P`` line are SYLK records: a CSV whose first
    column is named "id" (``id;payload``, then ``1;hello``) is a table, not SYLK."""
    lines = head[:4096].splitlines()[1:7]
    if len(head) > 4096:
        lines = lines[:-1]           # the last may be cut off
    return all(_SYLK_RECORD.match(line.strip()) for line in lines if line.strip())


def _textual(head: bytes, src: BinaryIO) -> str | None:
    if head[:2] in (b"\xff\xfe", b"\xfe\xff"):  # UTF-16 with its BOM: browsers read it
        head = head[:16384].decode("utf-16", "ignore").encode("utf-8", "ignore")
    elif head.lstrip(b" \t\r\n").startswith(b"<?xml"):
        head = _xml_head(head)
    sample = head[:8192].lstrip(b"\xef\xbb\xbf \t\r\n").lower()
    if sample.startswith(b"id;p") and _sylk_records(head):
        return "text.sylk"
    # before HTML: an HTML description inside. A component without the VCALENDAR around
    # it, or after a form feed, is read by calendar programs all the same (icalendar's
    # alarm examples, libical)
    if _CALENDAR.match(sample):
        return "text.calendar"
    if _VCARD.match(sample):
        return "text.vcard"  # a contact card: the calendar's content lines, other names
    if sample.startswith(b"web\r\n") or sample.startswith(b"web\n"):
        return "executable.iqy"
    if _SVG_ROOT.match(sample) or (sample.startswith((b"<?", b"<!")) and len(head) > 8192
                                   and _SVG_ROOT.match(head.lstrip(b"\xef\xbb\xbf \t\r\n")
                                                       .lower())):
        return "svg"  # (the second: a prolog of comments or a DTD longer than the sample)
    if sample.startswith((b"<!doctype html", b"<html", b"<head", b"<body", b"<script")) or \
            _HTML_FRAGMENT.match(sample):
        return "html"
    # the XML formats below are looked for inside the first kilobytes, so only in a file
    # that is XML from its first byte: an ar or cpio archive (their signatures come from
    # libmagic, after this check) whose first member is such a document is no document
    if not sample.startswith(b"<"):
        return None
    # Flat OPC first: Word writes the same mso-application PI for both XML formats
    if b"<pkg:package" in sample[:2048]:
        return "ooxml.flatopc"
    if _FLAT_ODF.search(sample) and b"urn:oasis:names:tc:opendocument:xmlns:office:1.0" in sample:
        return "odf.flat"             # .fodt/.fods/.fodp/.fodg: one XML document, macros too
    if b"<?mso-application progid=\"excel.sheet\"?>" in sample[:512] or \
            _XMLSS_ROOT.search(sample[:4096]):
        return "ooxml.xmlss"          # Excel 2003 XML spreadsheet: formulas (DDE), links
    if b"<?mso-application progid=\"word.document\"?>" in sample[:512] or \
            b"<w:worddocument" in sample[:4096]:
        return "ooxml.wordml"
    if _XHTML_PAGE.match(sample):
        return "html"                 # an XHTML page behind its XML declaration
    if sample.startswith(b"<?xml") or (sample.startswith(b"<!doctype") and b"<!entity" in sample):
        return "text.xml"             # data, XSLT, XHTML inside XML (xss.xml), XXE payloads
    if _RUNNING_NS.search(sample) and not sample.startswith(b"<svg"):
        # markup without a declaration that binds the XHTML, SVG or XSLT namespace: a
        # browser opening it as XML runs ``<a:script xmlns:a="…/xhtml">`` whatever the
        # file's name (PayloadsAllTheThings' xss.mno); it was delivered as plain text.
        # The XML stage delivers a file with nothing to remove byte for byte. (An <svg
        # root our check missed, a stray byte in its tag, is left to libmagic: SVG.)
        return "text.xml"
    return None


#: an XML namespace whose elements a browser runs (XHTML, SVG) or turns into HTML (XSLT)
_RUNNING_NS = re.compile(rb"xmlns(?::[\w.-]+)?\s*=\s*[\"']\s*http://www\.w3\.org/"
                         rb"(?:1999/xhtml|2000/svg|1999/xsl/transform)")


#: an XHTML page behind its XML declaration: HTML for the html stage (libmagic calls it
#: text/xml, and it was delivered as plain text, scripts and all)
_XHTML_PAGE = re.compile(rb"<\?xml[^>]*>(?:\s|<!--.*?-->|<\?.*?\?>)*(?:<!doctype\s+html|<html)",
                         re.S)


#: extra checks registered by plugins (tests, site-specific types); run first
EXTRA_CHECKS: list[Check] = []



_MIME_TYPES: dict[str, str] = {
    "application/x-tar": "archive.tar",
    # text that is data, not a program: JSON (a MimeKit test's .json was blocked as an
    # unknown type; no program runs it: a .js name still makes it a script, sniff()),
    # armored OpenPGP keys and signatures (an encrypted PGP message stays unknown)
    "application/json": "text.plain",
    "application/x-ndjson": "text.plain",
    "application/pgp-keys": "text.plain",
    "application/pgp-signature": "text.plain",
    "application/x-archive": "archive.ar",      # Unix ar (a .deb is named apart: blocked)
    "application/x-cpio": "archive.cpio",
    "application/x-lzma": "archive.lzma",
    "application/zip": "archive.zip",
    "application/gzip": "archive.gzip",
    "application/x-7z-compressed": "archive.7z",
    "application/x-rar": "archive.rar",
    "application/vnd.rar": "archive.rar",
    "application/vnd.ms-tnef": "mail.tnef",
    "application/x-ms-wim": "archive.wim",
    "application/x-arj": "archive.arj",
    "application/x-arc": "archive.arc",      # SEA ARC / PKARC, read by unar
    # ImageMagick's drawing scripts (ImageTragick: "fill 'url(https://…\";curl …)'"),
    # which ImageMagick recognises by content whatever the name: a script, not a picture
    "image/x-mvg": "executable.script",
    "application/vnd.ms-cab-compressed": "archive.cab",
    "application/x-iso9660-image": "archive.iso",
    # SVG our own root check missed (a root it cannot match, a prolog past its reach):
    # the SVG stage reads it, or refuses it with a reason, not "no stage for this type"
    "image/svg+xml": "svg",
}

_HEADER_LINE = re.compile(rb"^[!-9;-~]{1,76}:[ \t]?[^\r\n]*\r?$")
_MAIL_HEADERS = (b"from", b"to", b"subject", b"date", b"received", b"message-id",
                 b"mime-version", b"return-path", b"content-type", b"delivered-to", b"reply-to",
                 b"x-mailer", b"sender", b"cc")


def _mail(head: bytes, src: BinaryIO) -> str | None:
    """RFC 5322 header block at the top (or an mbox "From " line)."""
    text = head[:16384]
    if text.startswith(b"From ") and b"\n" in text:
        first, _, rest = text.partition(b"\n")
        if re.search(rb"\d{4}\s*$", first.rstrip(b"\r")) or _looks_like_headers(rest) or (
                MBOX_SENDER.match(first) and _HEADER_LINE.match(rest.partition(b"\n")[0])):
            return "mail.mbox"  # (the last: Gmail Takeout's "From <id>@xxx", any header)
    count = _EMLX_COUNT.match(text)
    if count and _looks_like_headers(text[count.end():]):
        return "mail.emlx"  # Apple Mail: the message's length, the message, a plist
    return "mail.eml" if _looks_like_headers(text) else None


#: an mbox From_ line of an address alone, no date (Gmail Takeout: "From 18443...@xxx")
MBOX_SENDER = re.compile(rb"From [^\s@]{1,200}@[^\s@]{1,200}\s*$")
_EMLX_COUNT = re.compile(rb"\s{0,8}\d{1,12}[ \t]*\r?\n")


def _looks_like_headers(text: bytes, *, named_as_mail: bool = False) -> bool:
    """A header block: two known mail headers; or a MIME structure declared by one
    Content-Type (multipart/…, message/…: mail clients open such a file as a message);
    or, for a file named as a mail (.eml), any header line."""
    known = 0
    lines = 0
    mime = False
    for line in text.split(b"\n")[:200]:
        if not line.strip(b"\r"):
            break  # end of the header block
        if line[:1] in (b" ", b"\t"):
            continue  # folded continuation
        if not _HEADER_LINE.match(line):
            if named_as_mail and lines:
                break  # where a mail client ends the header block it cannot read on
            return False
        lines += 1
        name, _, value = line.partition(b":")
        if name.strip().lower() in _MAIL_HEADERS:
            known += 1
            if name.strip().lower() == b"content-type" and \
                    value.strip().lower().startswith((b"multipart/", b"message/")):
                mime = True
    return (lines >= 2 and known >= 2) or mime or (named_as_mail and lines >= 1)


def _libmagic(head: bytes) -> str:
    import magic  # noqa: PLC0415 - libmagic loads its database on first use only

    mime = magic.from_buffer(head, mime=True)
    if (mime.startswith("text/") or mime == "application/octet-stream") and \
            _pdf_structure(head):
        return "pdf"
    if mime.startswith("text/"):
        if mime == "text/html":
            return "html"
        if mime in ("text/x-shellscript", "text/x-python", "text/x-perl", "text/x-php",
                    "text/x-msdos-batch"):
            return "executable.script"
        if mime == "text/calendar":
            return "text.calendar"
        if mime in ("text/vcard", "text/x-vcard"):
            return "text.vcard"
        return "text.csv" if mime == "text/csv" else "text.plain"
    if mime in ("message/rfc822", "message/news"):
        return "mail.eml"
    if mime in _MIME_TYPES:
        return _MIME_TYPES[mime]
    if mime in ("application/x-dosexec", "application/x-executable",
                "application/x-sharedlib", "application/x-mach-binary"):
        return "executable.binary"
    if mime.startswith("image/"):
        return "image." + mime.split("/", 1)[1]
    return "unknown." + mime.replace("/", "-")


#: BOF record types of BIFF2, BIFF3, BIFF4 and BIFF5/8
BIFF_BOFS = (0x0009, 0x0209, 0x0409, 0x0809)


def is_biff(head: bytes) -> bool:
    """Records from the first byte: a BOF of a known version, sized as one (4-20 bytes)."""
    if len(head) < 8:
        return False
    rtype, size = int.from_bytes(head[0:2], "little"), int.from_bytes(head[2:4], "little")
    return rtype in BIFF_BOFS and 4 <= size <= 20 and len(head) >= 4 + size


def _biff(head: bytes, src: BinaryIO) -> str | None:
    """An Excel 2.x-4.0 file (or BIFF5/8 records written without a compound file)."""
    return "ole.biff" if is_biff(head) else None


#: the ordered table: first match wins (disk images last: their check reads the file's
#: end, which text, the most common input, need not pay for)
TABLE: tuple[Check, ...] = (_cms, _pdf, _ole, _zip, _signature, _biff, _textual, _mail,
                           _disk_image)


def sniff(src: BinaryIO, declared_name: str | None = None) -> Sniffed:
    """Real type of ``src`` (seekable); position is left at 0."""
    src.seek(0)
    head = src.read(HEAD)
    try:
        type_id = _sniff_head(head, src)
    finally:
        src.seek(0)
    if type_id in ("text.plain", "html") and xml_name(declared_name) and \
            head.lstrip(b"\xef\xbb\xbf \t\r\n").startswith(b"<"):
        type_id = "text.xml"  # a browser reads a .xml file as XML, whatever its root
    elif declared_family(declared_name) == "html" and (
            type_id.startswith("text.") or type_id == "unknown.application-javascript" or
            (type_id == _OCTETS and _mostly_text(head) and b"<" in head)):
        # and a .html file as HTML, whatever libmagic calls its text (plain text with a
        # tag in it, CSV, XML, a template it takes for JavaScript; "data" for a page with
        # a stray control byte, which a browser shows all the same): <img onerror> runs
        type_id = "html"
    elif declared_family(declared_name) == "svg" and type_id == _OCTETS and \
            _mostly_text(head) and b"<svg" in head.lower():
        type_id = "svg"  # the same for an SVG drawing with a stray byte
    if (type_id.startswith("text.") or type_id == "html" or
            (type_id == _OCTETS and _mostly_text(head))) and \
            _mail_name(declared_name) and _looks_like_headers(head[:16384], named_as_mail=True):
        # a mail client opens it as a message, whatever few headers, and whatever stray
        # bytes made libmagic call it data (binary data behind a header block is no message);
        # an HTML body behind a header block libmagic does not know (Comments:,
        # X-Mozilla-Status:) made it "HTML document"
        type_id = "mail.eml"
    if type_id in ("mail.eml", "mail.mbox") and (declared_name or "").lower().endswith(".txt"):
        # a .txt file opens as text whatever it holds (a bounce's "message-header.txt",
        # the returned message's header block): as a message it was rebuilt, header lines
        # and text lost, and renamed .eml
        type_id = "text.plain"
    # script code in a SYLK file is in its formulas, which the text stage removes; in
    # XML, in script elements the XML stage removes (msxsl:script calling WScript.Shell).
    # A file named as text (.txt, .csv, .log) opens in an editor, which runs nothing: the
    # IoC list of a security advisory, a CSV cell "IEX(...)" are text
    if type_id.startswith("text.") and (script_name(declared_name) or (
            type_id not in ("text.sylk", "text.xml") and declared_family(declared_name) != "text"
            and _SCRIPT.search(head))):
        type_id = "executable.script"
    description = type_id
    return Sniffed(type_id=type_id, description=description,
                   declared_family=declared_family(declared_name))


#: Windows runs these by their extension: text with such a name *is* a script, or a
#: file the shell acts on: rogue RDP connections (.rdp), MMC consoles (.msc,
#: "GrimResource"), settings shortcuts that run a command (.settingcontent-ms), library
#: and search connectors that open a remote share (.library-ms, .searchconnector-ms),
#: ClickOnce and Java Web Start launchers, themes that load remote files, Excel web,
#: database and OLAP queries; and the text types of Outlook's Level 1 blocked attachment
#: list (Windows Sandbox configurations, HTML components, shell, Perl and Python scripts…)
SCRIPT_EXTENSIONS = frozenset({"js", "jse", "vbs", "vbe", "wsf", "wsh", "wsc", "ps1", "psm1",
                               "psd1", "psc1", "bat", "cmd", "sct", "reg", "inf", "scf", "url",
                               "desktop", "sh", "command", "applescript", "rdp", "msc",
                               "settingcontent-ms", "library-ms", "searchconnector-ms",
                               "search-ms", "appref-ms", "application", "jnlp", "website",
                               "theme", "iqy", "dqy", "oqy", "rqy", "ins", "isp", "xbap",
                               "py", "pyw", "pyz", "pyzw", "pl", "csh", "ksh", "bas", "vb",
                               "vbp", "vsmacros", "ws", "wsb", "htc", "msh", "msh1", "msh2",
                               "mshxml", "msh1xml", "msh2xml", "ps1xml", "ps2xml", "psc2",
                               "psdm1", "prf", "xnk", "mcf", "osd", "hpj", "cnt", "grp",
                               # XML that installs software from a URL on a double click:
                               # App Installer (Emotet, 2021) and Office VSTO add-ins
                               "appinstaller", "vsto"})
#: unmistakable script code in text, whatever the name
_SCRIPT = re.compile(
    rb"WScript\.Shell|Scripting\.FileSystemObject|new\s+ActiveXObject\s*\(|"
    rb"CreateObject\s*\(\s*\"(WScript|Shell\.Application|MSXML2|ADODB)|"
    rb"(?i:Invoke-Expression|\bIEX\s*\(|DownloadString\s*\(|-EncodedCommand\b|"
    rb"FromBase64String\s*\(|Start-Process\b)")


def xml_name(name: str | None) -> bool:
    """Files a browser reads as XML by their name (.xhtml: XHTML parsed as XML)."""
    return bool(name) and PurePath(name or "").suffix.lower() in (".xml", ".xsl", ".xslt",
                                                                   ".xhtml", ".xht")


_OCTETS = "unknown.application-octet-stream"   # libmagic's "data"
#: bytes below 0x20 that text holds (tab, line ends, form feed, escape: ISO-2022-JP)
_TEXT_CONTROLS = frozenset(b"\t\n\r\f\x1b")


def _mostly_text(head: bytes) -> bool:
    """At most one byte in twenty of the first 8 KiB a control character text never
    holds: text with stray bytes, not a binary format libmagic does not know."""
    sample = head[:8192]
    stray = sum(1 for b in sample if b < 0x20 and b not in _TEXT_CONTROLS)
    return bool(sample) and stray * 20 <= len(sample)


def _mail_name(name: str | None) -> bool:
    return bool(name) and PurePath(name or "").suffix.lower() in (".eml", ".mht", ".mhtml")


def script_name(name: str | None) -> bool:
    """Whether ``name`` is one the Windows shell runs or acts on as a script."""
    return bool(name) and PurePath(name or "").suffix.lower().lstrip(".") in SCRIPT_EXTENSIONS


def _sniff_head(head: bytes, src: BinaryIO) -> str:
    if not head:
        return "unknown.empty"
    for check in (*EXTRA_CHECKS, *TABLE):
        type_id = check(head, src)
        if type_id:
            return type_id
    found = _libmagic(head)
    if found == _OCTETS and len(head) == 1 and (0x20 <= head[0] < 0x7F or
                                                head[0] in _TEXT_CONTROLS):
        return "text.plain"  # libmagic names no single byte; a printable one is text
    if found == "unknown.application-octet-stream" and len(head) < HEAD and \
            head.endswith(b"\x00"):
        # text padded with NUL bytes to a record or block size (TNEF and MAPI
        # attachments, fixed-size exports): libmagic calls any NUL binary
        text = head.rstrip(b"\x00")
        if text and b"\x00" not in text:
            inner = _libmagic(text)
            if inner.startswith("text.") or inner == "html":
                return inner
    return found


def sniff_bytes(data: bytes, declared_name: str | None = None) -> Sniffed:
    return sniff(io.BytesIO(data), declared_name)


# ------------------------------------------------------------------- declared types

EXTENSIONS: dict[str, str] = {}
for _fam, _exts in {
    "pdf": "pdf",
    "ooxml": "docx docm dotx dotm xlsx xlsm xltx xltm xlam xlsb pptx pptm potx potm ppsx ppsm ppam",
    "ole": "doc dot xls xlt ppt pot pps",
    "rtf": "rtf",
    "odf": "odt ods odp odg ott ots otp otg fodt fods fodp fodg",
    "archive": "zip 7z rar gz tgz tar bz2 xz zst tzst lz4 cab lzh lzma a ar cpio iso img udf "
               "wim dmg arj arc ace "
               "vhd vhdx",
    "image": "png jpg jpeg jpe gif bmp dib tif tiff webp ico icns tga ppm pgm pbm pnm pcx jp2 "
             "j2k jpf jpx qoi avif heic heif dds psd cur",
    "html": "html htm",
    "svg": "svg",
    "text": "txt csv tsv log slk xhtml xht",   # .xhtml: XML (text.xml), see sniff()
    "mail": "eml msg",
    "executable": "exe dll scr com pif cpl sys msi lnk one onepkg xll iqy "
                  "chm hta js jse vbs vbe wsf wsh ps1 bat cmd jar",
}.items():
    for _ext in _exts.split():
        EXTENSIONS[_ext] = _fam

#: canonical extension per type id, used to name outputs whose real type differs
CANONICAL_EXT: dict[str, str] = {
    "pdf": "pdf", "rtf": "rtf", "html": "html", "svg": "svg",
    "text.plain": "txt", "text.csv": "csv", "text.calendar": "ics", "text.vcard": "vcf",
    "text.sylk": "slk", "text.xml": "xml",
    "archive.zip": "zip", "mail.eml": "eml",
    "image.png": "png", "image.jpeg": "jpg", "image.gif": "gif", "image.bmp": "bmp",
    "image.tiff": "tif", "image.webp": "webp", "image.vnd.microsoft.icon": "ico",
    "image.x-icns": "icns", "image.x-tga": "tga", "image.x-portable-pixmap": "ppm",
    "image.x-portable-greymap": "pgm", "image.x-portable-bitmap": "pbm", "image.x-pcx": "pcx",
    "image.jp2": "jp2", "image.x-jp2-codestream": "j2k", "image.x-qoi": "qoi",
    "image.avif": "avif", "image.jpx": "jpf", "image.x-ms-bmp": "dib",
    "image.x-portable-graymap": "pgm", "image.vnd-ms.dds": "dds",
    "image.vnd.adobe.photoshop": "psd", "image.x-win-bitmap": "cur", "image.heic": "heic",
    "image.heif": "heif",
    "ole.doc": "doc", "ole.xls": "xls", "ole.ppt": "ppt", "ole.biff": "xls",
    "odf.text": "odt", "odf.spreadsheet": "ods", "odf.presentation": "odp",
    "odf.graphics": "odg", "odf.text-template": "ott", "odf.spreadsheet-template": "ots",
    "odf.presentation-template": "otp", "odf.graphics-template": "otg",
}
for _id in _OOXML_MAIN.values():
    CANONICAL_EXT[_id] = _id.split(".", 1)[1]


def declared_family(name: str | None) -> str | None:
    if not name:
        return None
    suffix = PurePath(name).suffix.lower().lstrip(".")
    return EXTENSIONS.get(suffix)

"""XPS documents built from a harmless base: one page of text in an embedded font and a
picture, the way Windows' XPS Document Writer lays a print-out out (sequence -> document
-> page named by Source attributes; the page's font and picture named by attributes and
by required-resource relationships). Hostile variants add hyperlinks and resources
outside the package to the page markup."""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

from tests.helpers.ooxmlgen import png

FONT = Path("/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf")  # Debian fonts-dejavu-core
NS = "http://schemas.microsoft.com/xps/2005/06"
REL_NS = "http://schemas.openxmlformats.org/package/2006/relationships"
RESOURCE = "http://schemas.microsoft.com/xps/2005/06/required-resource"
PAGE = "Documents/1/Pages/1.fpage"
TEXT = "Notice of the city council meeting"
SECOND = "Agenda and minutes attached"


def _glyphs(text: str, y: int, extra: str = "") -> str:
    return (f'<Glyphs Fill="#FF000000" FontUri="/Resources/font.ttf" FontRenderingEmSize="16"'
            f' OriginX="40" OriginY="{y}" UnicodeString="{text}"{extra}/>')


def page_markup(*, extra: str = "", link: str = "") -> str:
    """The page: two lines of text, a picture; ``link`` adds attributes to the first
    line, ``extra`` adds markup at the end."""
    return (f'<FixedPage xmlns="{NS}" Width="816" Height="1056" xml:lang="en-US">'
            f'<Canvas Name="top">{_glyphs(TEXT, 80, link)}'
            f'{_glyphs(SECOND, 120)}</Canvas>'
            '<Path Data="M 40,160 L 104,160 L 104,224 L 40,224 Z"><Path.Fill>'
            '<ImageBrush ImageSource="/Resources/picture.png" Viewbox="0,0,1,1" '
            'ViewboxUnits="RelativeToBoundingBox" Viewport="40,160,64,64" '
            'ViewportUnits="Absolute"/></Path.Fill></Path>'
            f'{extra}</FixedPage>')


def xps(page: str | None = None, *, page_rels: str = "", utf16: bool = True,
        oxps: bool = False) -> bytes:
    """A one-page XPS document; ``page`` replaces the page markup, ``page_rels`` adds
    relationships of the page. Pages are UTF-16 as the XPS writer saves them."""
    markup = page if page is not None else page_markup()
    main_rel = ("http://schemas.openxps.org/oxps/v1.0/fixedrepresentation" if oxps else
                "http://schemas.microsoft.com/xps/2005/06/fixedrepresentation")
    types = (
        '<?xml version="1.0" encoding="utf-8"?>'
        '<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">'
        '<Default Extension="rels" '
        'ContentType="application/vnd.openxmlformats-package.relationships+xml"/>'
        '<Default Extension="fdseq" '
        'ContentType="application/vnd.ms-package.xps-fixeddocumentsequence+xml"/>'
        '<Default Extension="fdoc" '
        'ContentType="application/vnd.ms-package.xps-fixeddocument+xml"/>'
        '<Default Extension="fpage" '
        'ContentType="application/vnd.ms-package.xps-fixedpage+xml"/>'
        '<Default Extension="ttf" ContentType="application/vnd.ms-opentype"/>'
        '<Default Extension="png" ContentType="image/png"/></Types>')
    parts = {
        "[Content_Types].xml": types.encode(),
        "_rels/.rels": (f'<Relationships xmlns="{REL_NS}"><Relationship Id="R1" '
                        f'Type="{main_rel}" Target="/FixedDocSeq.fdseq"/>'
                        '</Relationships>').encode(),
        "FixedDocSeq.fdseq": (f'<FixedDocumentSequence xmlns="{NS}"><DocumentReference '
                              'Source="/Documents/1/FixedDoc.fdoc"/></FixedDocumentSequence>'
                              ).encode(),
        "Documents/1/FixedDoc.fdoc": (f'<FixedDocument xmlns="{NS}"><PageContent '
                                      'Source="Pages/1.fpage"/></FixedDocument>').encode(),
        PAGE: (b"\xff\xfe" + markup.encode("utf-16-le")) if utf16 else markup.encode(),
        "Documents/1/Pages/_rels/1.fpage.rels": (
            f'<Relationships xmlns="{REL_NS}">'
            f'<Relationship Id="F1" Type="{RESOURCE}" Target="/Resources/font.ttf"/>'
            f'<Relationship Id="P1" Type="{RESOURCE}" Target="/Resources/picture.png"/>'
            f'{page_rels}</Relationships>').encode(),
        "Resources/font.ttf": FONT.read_bytes(),
        "Resources/picture.png": png(),
    }
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in parts.items():
            zf.writestr(name, data)
    return buf.getvalue()

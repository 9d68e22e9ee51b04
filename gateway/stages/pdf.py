"""PDF stage (DESIGN.md §8): take out every action not on an allow-list, rebuild the file.

How it works
------------
The input is opened with pikepdf (qpdf), which repairs damage it can and decodes
hex-escaped names (``/J#61vaScript`` is ``/JavaScript``). When qpdf cannot open a
file at all, ``pdf_salvage`` rebuilds it from the objects found in its bytes and
qpdf gets a second try. A document in which no page is found (script-only proofs of
concept, fuzzed files) gets one blank page, so that every reader opens it. Then:

1. phase 1 (``pdf_walk``) walks the places actions live, by structure: the catalog
   (/OpenAction, /AA), /Names (/JavaScript tree, /EmbeddedFiles tree,
   /AlternatePresentations), /Collection (a portfolio's Flash /Navigator; the whole
   portfolio when no embedded file stays), /AcroForm (/XFA, the field tree through
   /Kids), the page
   tree (page /AA, every annotation's /A, /PA, /AA; RichMedia, 3D, Screen, Movie and
   Sound annotations are taken off the page; FileAttachment annotations follow the
   embedded-file policy) and the outline tree (/First, /Next, /Last, /Prev: each
   item's /A). Loops in the page tree are cut, a page tree without /Kids is rebuilt
   from the page objects;
2. phase 2 (``pdf_sweep``) sweeps every object reachable from the trailer (and the
   trailer itself) and neutralizes anything left anywhere else: a known action type,
   /JS, /AA, /XFA, /EF, embedded-file streams, rich media, and any typed action an
   /A, /PA, /OpenAction or /Next refers to;
3. the file is written with qpdf from the trailer, so only reachable objects are
   written: objects of old revisions and unreferenced objects vanish (``pdf.orphans``),
   object streams are kept as they were (not recompressed), encryption without an
   open password is dropped. A PDF that needs its open (user) password is refused
   (EncryptedContent) unless the job carries the password (entered by the
   recipient): then it is opened with it and written without encryption.

``scan`` runs the same two phases on the document in memory and writes nothing, so
it is exactly as thorough as ``disarm``; the verify step runs it on our own output.

Allowed actions: /GoTo; /Named with NextPage, PrevPage, FirstPage or LastPage;
/URI with an http, https or mailto address where a person clicks (/A, /PA of
annotations and fields, outline items), when the policy keeps hyperlinks. A /URI
run automatically (/OpenAction, /AA) is removed whatever the policy says. Kept
hyperlinks are recorded as ``pdf.uri`` with action ``kept`` in every mode. A /Next
chain keeps its allowed actions in order (rebuilt as one action whose /Next is an
array of the others); its removed actions are recorded one by one. /OpenAction goes
whatever it holds: an action that may stay elsewhere (/GoTo) or a destination array
only sets the page and zoom the document opens at, and is recorded as
``pdf.open_view`` (informational) — a document from which nothing at all runs on open
is what every checker, PDFiD-style key counts included, can confirm.

Finding kinds
-------------
An action removed from /OpenAction is ``pdf.open_action``, from an /AA entry
``pdf.additional_actions`` (the detail names its type); elsewhere the kind follows
the action type: ``pdf.javascript``, ``pdf.launch``, ``pdf.submit_form``,
``pdf.import_data``, ``pdf.remote_goto``, ``pdf.embedded_goto``, ``pdf.sound``,
``pdf.movie``, ``pdf.rich_media``, ``pdf.rendition``, ``pdf.hide``,
``pdf.set_ocg_state``, ``pdf.goto_3d_view``, ``pdf.transition``, ``pdf.uri``,
``pdf.other_action`` (ResetForm, Thread, non-standard named actions…),
``pdf.unknown_action`` (unknown or missing /S). Entries of the /JavaScript name tree
are ``pdf.javascript``. Removed annotations: ``pdf.rich_media`` (RichMedia, 3D),
``pdf.rendition`` (Screen), ``pdf.movie``, ``pdf.sound``. Also: ``pdf.embedded_file``
and ``pdf.file_attachment`` (``disarmed`` whenever a delivered copy is embedded
again in disarm mode; ``kept``/``disarmed`` by the embedded verdict in scan and
verify; ``removed``), ``pdf.xfa``, ``pdf.encrypted``, ``pdf.repaired``,
``pdf.orphans``, ``pdf.foreign_data`` (another file glued before the header, location
``%PDF``, or after the last %%EOF, location ``%%EOF``: a polyglot; the rebuilt output
starts at the header and ends with the document).

Location scheme
---------------
A location is the object path by which the stage reached the object, from the
trailer: dictionary keys as ``/Key``, array elements as ``[i]``, e.g.
``/Root/OpenAction``, ``/Root/Pages/Kids[0]/Annots[2]/A`` (page tree walked through
/Kids, nested trees give ``/Kids[1]/Kids[0]``), ``/Root/AA/WC``,
``/Root/Names/JavaScript/Names[1]`` (the value of the first entry of a name-tree
leaf), ``/Root/Names/EmbeddedFiles/Kids[0]/Names[3]``,
``/Root/AcroForm/Fields[0]/Kids[1]/AA/K``, ``/Root/Outlines/First/Next/A``,
``/Root/Pages/Kids[0]/Annots[0]/A/Next/Next`` (a /Next chain; ``Next[1]`` when
/Next is an array). An object reached twice is named by the first path in the
phase-1 order above. Objects found only by phase 2 are named by their first
reference (breadth-first from the trailer, keys sorted) from the nearest object
phase 1 named, e.g. ``/Root/AF[0]`` or
``/Root/StructTreeRoot/ParentTree/Nums[1][6]/AF[1]`` (an array inside an array);
a key that is not valid text is written ``[N G R]`` (the object referred to), and
trailer keys start at the top (``/OpenAction`` in the trailer). Key characters
outside printable ASCII are written ``#xx``. A run of more than four equal
segments is written once with a count: ``/Root/Outlines/First/Next{7}/A``.
Document-wide findings (``pdf.orphans``, ``pdf.repaired``) have the empty
location; ``pdf.encrypted`` is ``/Encrypt``.

Embedded files (``embedded_files`` policy option): ``remove`` (default) takes them
out; ``disarm`` runs each through the pipeline and re-embeds the delivered copy. A
FileAttachment annotation is treated the same way: it stays with the disarmed file,
or, when its file is removed (also when the name tree removed that file first) or is
not in the document at all (a path outside it), becomes a stamp of its own appearance
(the file's name or "click here" it drew stays on the page) or, without one, is taken
off the page.
Associated files (/AF arrays: PDF 2.0, PDF/A-3, tagged LaTeX output) lose the entries
whose file was removed or is outside the document; an empty /AF goes.

Names that are not UTF-8: pikepdf cannot look such keys up. They are never action
slots, so they are skipped; where script-like names sit inside an object that has
such keys, those keys are deleted (``pdf.repaired``).
"""

from __future__ import annotations

import io
import os
import re
import warnings
from typing import BinaryIO, ClassVar

import pikepdf

from gateway.errors import WRONG_PASSWORD, EncryptedContent, Malformed
from gateway.kinds import Action
from gateway.pipeline import registry
from gateway.pipeline.api import StageContext
from gateway.stages.pdf_actions import is_dictlike
from gateway.stages.pdf_salvage import ENCRYPT, salvage
from gateway.stages.pdf_sweep import Graph, sweep
from gateway.stages.pdf_walk import Walk

_DESCRIPTION = re.compile(r"^\s*(?:stream\s+)?<[^>]*>\s*")
#: libqpdf 12 reads a stream as empty when no ``endstream`` follows its /Length bytes
#: and it cannot find where the stream ends either (no ``endstream`` or ``endobj``
#: further on, as in qpdf's own bad39.pdf); poppler and Acrobat read the /Length bytes
_EMPTIED = re.compile(r"\(object (\d+) (\d+), offset (\d+)\): unable to recover stream "
                      r"data; treating stream as empty")


def _message(exc: object, src: object = None) -> str:
    """qpdf's message without the input's description (a path); short, printable."""
    text = str(exc)
    if src is not None:
        text = text.replace(f"stream {src}", "")
    text = _DESCRIPTION.sub("", text).lstrip(": ").strip()
    text = "".join(ch if ch.isprintable() else " " for ch in text)
    return (text[:160] + "…") if len(text) > 160 else (text or type(exc).__name__)


def _open(src: BinaryIO, password: str | None = None) -> tuple[pikepdf.Pdf, str | None, bool]:
    """The document, why it had to be salvaged (None when qpdf opened it), and whether
    the salvage ignored an /Encrypt that is not a dictionary: its strings and streams
    may be ciphertext whose key is lost."""
    src.seek(0)
    try:
        src.fileno()
        mode = pikepdf.AccessMode.mmap  # much faster than reading through Python
    except (OSError, AttributeError, ValueError):
        mode = pikepdf.AccessMode.default
    try:
        return pikepdf.open(src, password=password or "", inherit_page_attributes=False,
                            suppress_warnings=True, attempt_recovery=True,
                            access_mode=mode), None, False
    except pikepdf.PasswordError:
        opened = None if password else _attachments_only(src)
        if opened is None:
            raise EncryptedContent(WRONG_PASSWORD if password
                                   else "PDF requires a password to open") from None
        return opened, None, False
    except (pikepdf.PdfError, pikepdf.QpdfRuntimeError) as exc:
        error = _message(exc, src)
    src.seek(0)
    data = src.read()
    if "unsupported encryption filter" in error and _PUBLIC_KEY.search(data):
        # encrypted for certificate holders (PDFBox's AESkeylength*.pdf): no password opens
        # it, and it is not damaged
        raise EncryptedContent("PDF is encrypted for certificate holders "
                               "(public-key security); no password opens it")
    ciphertext = ENCRYPT.search(data) is not None  # salvage() refuses real encryption
    first: pikepdf.Pdf | None = None
    for rebuilt in salvage(data):
        try:
            pdf = pikepdf.open(io.BytesIO(rebuilt), inherit_page_attributes=False,
                               suppress_warnings=True)
        except (pikepdf.PdfError, pikepdf.QpdfRuntimeError, pikepdf.PasswordError):
            continue
        if _has_pages(pdf):
            if first is not None:
                first.close()
            return pdf, error, ciphertext
        if first is None:  # kept in case no candidate has a page (a blank one is added)
            first = pdf
        else:
            pdf.close()
    if first is not None:
        return first, error, ciphertext
    raise Malformed(f"PDF is damaged beyond repair: {error}")


_PUBLIC_KEY = re.compile(rb"/Filter\s*/Adobe\.PubSec|/SubFilter\s*/adbe\.pkcs7\.s[345]")
#: a trailer's /Encrypt (by reference or direct), and the key of the same length it is
#: renamed to for ``_attachments_only`` (so no offset in the file moves)
_ENCRYPT_KEY = re.compile(rb"/Encrypt(?=\s*(?:\d+\s+\d+\s+R|<<))")
ATTACHMENTS_ONLY = "/SekEncr"


def _attachments_only(src: BinaryIO) -> pikepdf.Pdf | None:
    """A document encrypted only in its attachments, opened: Acrobat's "encrypt only
    file attachments" (/EFF names a crypt filter, strings and streams use /Identity)
    opens without a password in every viewer, but qpdf asks for the attachments' one
    first (qpdf's encrypted-attachments test files were blocked). Its /Encrypt is
    renamed to ``ATTACHMENTS_ONLY`` and the file read as unencrypted; the attachments,
    still ciphertext, go like any that cannot be read. None for any other encryption."""
    src.seek(0)
    data = src.read()
    renamed = _ENCRYPT_KEY.sub(ATTACHMENTS_ONLY.encode(), data)
    if renamed == data:
        return None
    try:
        pdf = pikepdf.open(io.BytesIO(renamed), inherit_page_attributes=False,
                           suppress_warnings=True)
    except (pikepdf.PdfError, pikepdf.QpdfRuntimeError, pikepdf.PasswordError):
        return None
    enc = pdf.trailer.get(ATTACHMENTS_ONLY)
    identity = pikepdf.Name.Identity
    if (enc is None or not is_dictlike(enc) or enc.get("/Filter") != pikepdf.Name.Standard
            or enc.get("/V") not in (4, 5) or enc.get("/StmF", identity) != identity
            or enc.get("/StrF", identity) != identity
            or enc.get("/EFF", identity) == identity):
        pdf.close()
        return None
    return pdf


def _blank_undecodable(pdf: pikepdf.Pdf) -> int:
    """Empty the page content streams that cannot be decoded; how many there were.

    Only for a file whose /Encrypt was ignored: its streams are ciphertext, which no
    reader can show (poppler draws a blank page) and qpdf --check reports as errors.
    """
    emptied = 0
    for page in pdf.pages:
        contents = page.obj.get("/Contents")
        streams = list(contents) if isinstance(contents, pikepdf.Array) else [contents]
        for stream in streams:
            if not isinstance(stream, pikepdf.Stream):
                continue
            try:
                stream.read_bytes()
            except (pikepdf.PdfError, pikepdf.QpdfRuntimeError, RuntimeError):
                stream.write(b"")
                emptied += 1
    return emptied


def _save(pdf: pikepdf.Pdf, dst: BinaryIO) -> bool:
    """Write ``pdf`` keeping its object streams; False when one of them was too damaged
    for qpdf to write it again (an object stream that turned out to be a plain
    dictionary), and every object was written on its own instead."""
    def write(mode: pikepdf.ObjectStreamMode) -> None:
        pdf.save(dst, encryption=False, fix_metadata_version=False, object_stream_mode=mode,
                 compress_streams=True, recompress_flate=False, linearize=False)

    with warnings.catch_warnings():  # pikepdf's advice about form widgets: not ours
        warnings.simplefilter("ignore", pikepdf.PageCopyWarning)
        start = dst.tell()
        try:
            write(pikepdf.ObjectStreamMode.preserve)
            return True
        except (pikepdf.PdfError, pikepdf.QpdfRuntimeError):
            dst.seek(start)
            dst.truncate()
        write(pikepdf.ObjectStreamMode.disable)
        return False


def _restore_emptied(pdf: pikepdf.Pdf, src: BinaryIO, notes: list[str]) -> list[str]:
    """Give the streams qpdf read as empty (``_EMPTIED``) their /Length bytes back.

    ``notes``: qpdf's warnings since the objects were parsed; the offset in such a
    warning is where the stream's data starts in ``src``. Only a direct or indirect
    integer /Length that stays inside the file is trusted; what the bytes hold goes
    through the same walk as any other stream. Returns what was restored, as notes.
    """
    restored: list[str] = []
    size = src.seek(0, io.SEEK_END)
    for note in notes:
        m = _EMPTIED.search(str(note))
        if m is None:
            continue
        num, gen, offset = (int(g) for g in m.groups())
        try:
            stream = pdf.get_object((num, gen))
            if not isinstance(stream, pikepdf.Stream) or stream.read_raw_bytes():
                continue
            length = _integer(stream.get("/Length"))
            if length is None or not 0 < length <= size - offset:
                continue
            filters, parms = stream.get("/Filter"), stream.get("/DecodeParms")
            if not isinstance(filters, pikepdf.Name | pikepdf.Array | None) or \
                    not isinstance(parms, pikepdf.Dictionary | pikepdf.Array | None):
                continue
            src.seek(offset)
            stream.write(src.read(length), filter=filters, decode_parms=parms)  # as encoded
        except (pikepdf.PdfError, pikepdf.QpdfRuntimeError, ValueError, TypeError):
            continue
        restored.append(f"object {num} {gen}: stream read by its /Length ({length} bytes), "
                        "no endstream after it")
    return restored


#: what another format's first bytes say it is (data glued around a PDF)
_MAGIC = ((b"MZ", "a Windows executable"), (b"\x7fELF", "a Linux executable"),
          (b"PK\x03\x04", "a ZIP archive"), (b"Rar!", "a RAR archive"),
          (b"7z\xbc\xaf", "a 7-Zip archive"), (b"\xd0\xcf\x11\xe0", "an Office document"),
          (b"{\\rtf", "an RTF document"), (b"\xff\xd8\xff", "a JPEG image"),
          (b"\x89PNG", "a PNG image"), (b"GIF8", "a GIF image"), (b"%!PS", "PostScript"))
_TAIL = 1 << 20    # how far from the end the last %%EOF is looked for


def _what(data: bytes) -> str | None:
    head = data.lstrip(b" \t\r\n\f\x00")
    for magic, what in _MAGIC:
        if head.startswith(magic):
            return what
    low = head[:4096].lower()
    if b"<script" in low or b"<html" in low or b"<svg" in low:
        return "HTML or SVG markup"
    return None


def _foreign_data(src: BinaryIO) -> list[tuple[str, str]]:
    """A file of one of the formats in ``_MAGIC`` glued before the %PDF header or after
    the last %%EOF (comments, stray text and incremental updates are no such file):
    (where, detail) for each. The rebuilt output holds neither."""
    found: list[tuple[str, str]] = []
    src.seek(0)
    head = src.read(1024)
    at = head.find(b"%PDF")
    what = _what(head[:at]) if at > 0 else None
    if what is not None:
        found.append(("%PDF", f"{at} bytes before the PDF header ({what}) removed"))
    size = src.seek(0, os.SEEK_END)
    src.seek(max(size - _TAIL, 0))
    tail = src.read()
    end = tail.rfind(b"%%EOF")
    if end >= 0:
        rest = tail[end + 5:]
        what = _what(rest)
        if what is not None:
            found.append(("%%EOF", f"{len(rest)} bytes after the end of the PDF ({what}) "
                                 "removed"))
    src.seek(0)
    return found


def _integer(obj: object) -> int | None:
    """A PDF integer (pikepdf gives it as an int, a direct or an indirect one alike)."""
    return obj if isinstance(obj, int) and not isinstance(obj, bool) else None


def _has_pages(pdf: pikepdf.Pdf) -> bool:
    try:
        return len(pdf.pages) > 0
    except (pikepdf.PdfError, pikepdf.QpdfRuntimeError, RuntimeError, ValueError):
        return False


class PdfStage:
    name: ClassVar[str] = "pdf"
    formats: ClassVar[frozenset[str]] = frozenset({"pdf"})

    def scan(self, src: BinaryIO, ctx: StageContext) -> None:
        self._run(src, None, ctx)

    def disarm(self, src: BinaryIO, dst: BinaryIO, ctx: StageContext) -> None:
        self._run(src, dst, ctx)

    def _run(self, src: BinaryIO, dst: BinaryIO | None, ctx: StageContext) -> None:
        for where, detail in _foreign_data(src):
            ctx.record("pdf.foreign_data", where, action=Action.REMOVED, detail=detail)
        pdf, salvaged, ciphertext = _open(src, ctx.password)
        try:
            with pdf:
                self._rebuild(pdf, src, dst, ctx, salvaged, ciphertext)
        except pikepdf.PasswordError:
            raise EncryptedContent("PDF requires a password to open") from None
        except (pikepdf.PdfError, pikepdf.QpdfRuntimeError) as exc:
            raise Malformed(f"PDF is damaged beyond repair: {_message(exc, src)}") from None

    @staticmethod
    def _rebuild(pdf: pikepdf.Pdf, src: BinaryIO, dst: BinaryIO | None,
                 ctx: StageContext, salvaged: str | None, ciphertext: bool = False) -> None:
        notes = list(pdf.get_warnings())
        if ATTACHMENTS_ONLY in pdf.trailer:
            del pdf.trailer[ATTACHMENTS_ONLY]
            ctx.record("pdf.encrypted", "/Encrypt", action=Action.REMOVED,
                       detail="only the attachments were encrypted (the document opens "
                              "without a password); they cannot be read and are removed")
        if salvaged is not None:
            notes.insert(0, f"rebuilt from the objects of a damaged file ({salvaged})")
        emptied = _blank_undecodable(pdf) if ciphertext else 0
        root = pdf.trailer.get("/Root")
        if root is None or not is_dictlike(root):
            raise Malformed("PDF has no document catalog")
        if not root.is_indirect:  # written into the trailer: most readers need a reference
            root = pdf.trailer["/Root"] = pdf.make_indirect(root)
            notes.append("document catalog written into the trailer")
        orphans = Graph(pdf, suspects=False).orphans()  # parses every reachable object
        parsed = [str(w) for w in pdf.get_warnings()]
        if salvaged is None:  # a salvaged file's offsets are those of the rebuilt bytes
            notes.extend(_restore_emptied(pdf, src, parsed))
        notes.extend(parsed)
        walk = Walk(pdf, ctx)
        walk.run(root)
        if walk.page_count == 0:
            walk.blank_page(root)
        sweep(walk)
        if dst is not None:
            if "/Size" not in pdf.trailer:
                pdf.trailer["/Size"] = 0  # qpdf writes the true size, but only if the key exists
            if not _save(pdf, dst):
                walk.repairs.append("a damaged object stream: objects written one by one")
        notes.extend(pdf.get_warnings())
        if pdf.is_encrypted:
            ctx.record("pdf.encrypted", "/Encrypt", action=Action.REMOVED,
                       detail="opened with the password given; encryption removed"
                       if ctx.password else "no password needed to open; encryption removed")
        if orphans:
            ctx.record("pdf.orphans", "", action=Action.REMOVED,
                       detail=f"{orphans} unreferenced objects dropped "
                              "(earlier revisions or hidden data)")
        problems = [_message(w, src) for w in notes[:1]] + walk.repairs + \
            [_message(w, src) for w in notes[1:]]
        if walk.blanked:  # first, as the one a recipient of a blank document needs to read
            problems.insert(0, "no page found: one blank page added so that the document opens")
        if emptied:  # the same: pages that show nothing
            problems.insert(0, f"{emptied} page content streams were encrypted with a key "
                               "the file no longer holds: left empty")
        if problems:
            ctx.record("pdf.repaired", "", action=Action.REPAIRED,
                       detail=f"{len(problems)} structural problems repaired; "
                              f"first: {problems[0]}")


registry.register(PdfStage())

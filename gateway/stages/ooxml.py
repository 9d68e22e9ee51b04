"""OOXML stage: docx/xlsx/pptx, their macro-enabled and template variants, xlsb, Flat OPC
and Word 2003 XML (DESIGN.md §8).

The package is read into a model (:mod:`ooxml_package`), one engine decides what goes
(:mod:`ooxml_plan`) for scan, disarm and verify alike, and a new zip is written:
unchanged parts are copied as compressed bytes, rebuilt parts are deflated. Flat OPC
is read into the same model and written back as Flat OPC; Word 2003 XML is disarmed
as one XML tree (:mod:`ooxml_flat`). Encrypted OOXML (an OLE container holding an
``EncryptedPackage``) is refused with :class:`EncryptedContent`: blocked, original
quarantined.

See :mod:`ooxml_plan` for the order of decisions and the finding locations.

Decisions worth knowing:

* zip: unchanged parts keep their compressed bytes (each is inflated once to check its
  CRC and count it against the expansion budget); rebuilt parts are deflated at zlib
  level 6. Encrypted entries, unsafe or duplicate names, overlapping entries and
  impossible compression ratios are refused (:mod:`ooxml_zip`).
* XML is parsed with defusedxml, DTDs refused; a part is parsed only when it must
  change or when cheap byte checks cannot be trusted on it (:mod:`ooxml_parts`).
* customUI parts are always removed (callbacks or not: a ribbon without macros does
  nothing); the finding's detail lists the callbacks.
* altChunk (imported HTML/RTF/docx) goes through the pipeline like an embedded object
  and stays if delivered: it is document text, so ``embedded: remove`` does not drop it.
* hyperlinks: kept by policy only with http/https/mailto targets; file:, UNC and
  relative targets (which open local files) go.
* xl/connections.xml is neutralized in place (connection strings, URLs, source files
  and refresh-on-open blanked) so query tables and pivot caches stay consistent.
* xlsb: a macro sheet becomes an empty worksheet under the same relationship (the
  binary workbook refers to sheets by index); auto-run names are renamed in place.
  DDE formulas and references to removed objects inside binary sheets are not
  rewritten (the parts and relationships go; Excel may offer a repair).
* a package signature is removed once anything changed (it would show as invalid).
"""

from __future__ import annotations

import io
from pathlib import PurePath
from typing import BinaryIO, ClassVar

from gateway.errors import EncryptedContent, Malformed
from gateway.kinds import Action
from gateway.pipeline import registry
from gateway.pipeline.api import StageContext
from gateway.pipeline.sniff import sniff
from gateway.stages import office_crypto, ooxml_flat
from gateway.stages.ooxml_output import write_zip
from gateway.stages.ooxml_package import CT_PART, ContentTypes, Package
from gateway.stages.ooxml_plan import Engine
from gateway.stages.ooxml_zip import ZipIn

OOXML_TYPES = frozenset({
    "ooxml.docx", "ooxml.docm", "ooxml.dotx", "ooxml.dotm",
    "ooxml.xlsx", "ooxml.xlsm", "ooxml.xltx", "ooxml.xltm", "ooxml.xlam", "ooxml.xlsb",
    "ooxml.pptx", "ooxml.pptm", "ooxml.potx", "ooxml.potm", "ooxml.ppsx", "ooxml.ppsm",
    "ooxml.ppam", "ooxml.vsdx", "ooxml.vsdm", "ooxml.vstx", "ooxml.vstm", "ooxml.vssx",
    "ooxml.vssm", "ooxml.xps", "ooxml.unknown", "ooxml.flatopc", "ooxml.wordml", "ooxml.xmlss",
    "ooxml.encrypted",
})
_ZIP_TYPES = OOXML_TYPES - {"ooxml.unknown", "ooxml.flatopc", "ooxml.wordml", "ooxml.xmlss",
                            "ooxml.encrypted"}
#: encrypted documents are decrypted in memory: larger ones stay refused
MAX_ENCRYPTED = 100 * 1024 * 1024
_OLE_MAGIC = bytes.fromhex("D0CF11E0A1B11AE1")


class OoxmlStage:
    name: ClassVar[str] = "ooxml"
    formats: ClassVar[frozenset[str]] = OOXML_TYPES

    def scan(self, src: BinaryIO, ctx: StageContext) -> None:
        self._run(src, None, ctx)

    def disarm(self, src: BinaryIO, dst: BinaryIO, ctx: StageContext) -> None:
        self._run(src, dst, ctx)

    def _run(self, src: BinaryIO, dst: BinaryIO | None, ctx: StageContext) -> None:
        src.seek(0)
        head = src.read(8)
        src.seek(0)
        if ctx.type_id == "ooxml.encrypted" or head.startswith(_OLE_MAGIC):
            src = _decrypted(src, ctx)
            head = b"PK"
        if head.startswith(b"PK"):
            _package(src, dst, ctx)
        else:
            ooxml_flat.process(src, dst, ctx)


def _decrypted(src: BinaryIO, ctx: StageContext) -> BinaryIO:
    """An encrypted package, opened with the job's password or Office's default one
    (gateway/stages/office_crypto.py); EncryptedContent when neither opens it."""
    data = src.read(MAX_ENCRYPTED + 1)
    if len(data) > MAX_ENCRYPTED:
        raise EncryptedContent("document is password-protected (too large to open here)")
    plain, given = office_crypto.decrypt(data, ctx.password)
    ctx.account(len(plain))
    opened = io.BytesIO(plain)
    real = sniff(opened, None).type_id
    if real not in _ZIP_TYPES:
        raise Malformed(f"the decrypted document is not an Office document ({real})")
    ctx.record("ooxml.encrypted", "EncryptedPackage", action=Action.REMOVED,
               detail="opened with the password given" if given
               else "opened with Office's default password (VelvetSweatshop)")
    ctx.type_id = real  # from here on the document is what it really is (docm, xlsx…)
    ctx.output_type = (real, real.split(".", 1)[1])
    opened.seek(0)
    return opened


def _package(src: BinaryIO, dst: BinaryIO | None, ctx: StageContext) -> None:
    zin = ZipIn(src, ctx.account)
    ct_name = next((n for n in zin.names if n.lower() == CT_PART.lower()), None)
    if ct_name is None:
        raise Malformed("the package has no [Content_Types].xml")
    content_types = ContentTypes.parse(zin.read(ct_name))
    if ct_name != CT_PART or ct_name in zin.scrubbed or ct_name in zin.transcoded:
        content_types.changed = True
    zin.names.remove(ct_name)
    pkg = Package(zin, content_types)
    lying = _lying_name(ctx)
    edits = Engine(pkg, ctx).run()
    for name, scrubbed in zin.scrubbed.items():
        ctx.record("xml.dtd", name, action=Action.REMOVED, detail=scrubbed.detail)
    if dst is not None:
        write_zip(pkg, zin, edits, dst)
        if edits.output_type is not None:
            ctx.output_type = edits.output_type
        elif lying:
            ctx.output_type = (ctx.type_id, ctx.type_id.split(".", 1)[1])


def _lying_name(ctx: StageContext) -> bool:
    """A name claiming another OOXML type than the content (docm content named .docx).

    Sniff only compares families, so the stage reports this one; the delivered file
    gets the extension of what it really is (after conversion: .docx)."""
    ext = PurePath(ctx.location.rsplit("/", 1)[-1]).suffix.lower().lstrip(".")
    claimed = f"ooxml.{ext}"
    if claimed in _ZIP_TYPES and ctx.type_id in _ZIP_TYPES and claimed != ctx.type_id:
        ctx.record("sniff.type_mismatch", "", action=Action.REPORTED,
                   detail=f"named .{ext}, content is {ctx.type_id}")
        return True
    return False


registry.register(OoxmlStage())

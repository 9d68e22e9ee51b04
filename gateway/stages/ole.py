"""Legacy Office (Word .doc, Excel .xls, PowerPoint .ppt) disarm stage (DESIGN.md §8).

The compound file is read into a tree (olefile), the active parts are taken out
of the tree, and a new compound file is written from it (``cfb_writer``): the
output never shares a sector layout with the input, orphaned and unreachable
directory entries vanish, and every kept stream is byte-identical unless it
was edited on purpose.

What goes, per format (details in each module):

* all: VBA projects (``ole.vba``) and embedded objects — ObjectPool / MBD
  storages, OLE packages, Equation Editor, ActiveX (``ole_objects``);
* Word: DDE / INCLUDE* / LINK fields, remote attached template (``ole_word``);
* Excel: OBPROJ, XLM macro sheets, VBA module sheets, auto-run names, DDE and
  external workbook links (``ole_excel``);
* PowerPoint: the VBA storage in ``PowerPoint Document``, embedded object
  storages there, run-program / macro click actions (``ole_ppt``).

Locations: storage paths are '/'-joined entry names with control characters
written ``\\xNN`` (``Macros``, ``ObjectPool/_1234567890``, ``MBD0001A2B3``);
things inside a stream are ``<stream>#<what>`` (``Workbook#OBPROJ``,
``Workbook#sheet[Macro1]``, ``Workbook#NAME[Auto_Open]``,
``WordDocument#field[2]``, ``PowerPoint Document#ExOleObjStg@0x1a2b``).

Policy ``ole: {legacy: convert}`` (default ``keep``) also converts: the disarmed
legacy file is turned into OOXML by LibreOffice headless (``ole_convert``) and
run through the pipeline like an embedded item; the OOXML stage disarms it and
its copy becomes the output (``ole.converted``, output type ooxml.*).

``ole.other`` (a compound file that is no Word/Excel/PowerPoint file) is routed
here only to be refused with a precise reason: block.malformed when olefile
cannot read it, block.unsupported otherwise.
"""

from __future__ import annotations

from typing import BinaryIO, ClassVar

from gateway.errors import EncryptedContent, LimitExceeded, Malformed, Unsupported
from gateway.kinds import Action
from gateway.pipeline import registry
from gateway.pipeline.api import StageContext
from gateway.stages import (
    cfb_writer,
    office_crypto,
    ole_art,
    ole_biff,
    ole_convert,
    ole_drs,
    ole_excel,
    ole_objects,
    ole_ppt,
    ole_word,
)
from gateway.stages.cfb_writer import Node

#: a compound file is read whole; the pipeline's max_size bounds the input
MAX_INPUT = 256 * 1024 * 1024
_PK_END = b"PK\x05\x06"


def _other_product(root: Node) -> str | None:
    """What an ``ole.other`` file is, where its root entries say so for certain: the
    refusal then names the program, which tells the administrator (and, through the
    notice, the recipient) what to ask the sender for instead."""
    if (visio := root.child("VisioDocument")) is not None and not visio.is_storage:
        return "a Visio drawing (.vsd)"
    if (quill := root.child("Quill")) is not None and quill.is_storage:
        return "a Publisher document (.pub)"
    header = root.child("FileHeader")
    if header is not None and header.data.startswith(b"HWP Document File"):
        return "a Hangul (HWP) document"
    return None


class OleStage:
    name: ClassVar[str] = "ole"
    #: ole.other is accepted only to name the reason it is refused: damaged
    #: (block.malformed) or a kind we do not disarm (block.unsupported)
    formats: ClassVar[frozenset[str]] = frozenset({"ole.doc", "ole.xls", "ole.ppt", "ole.other"})

    def scan(self, src: BinaryIO, ctx: StageContext) -> None:
        self._run(src, ctx, apply=False)

    def disarm(self, src: BinaryIO, dst: BinaryIO, ctx: StageContext) -> None:
        root = self._run(src, ctx, apply=True)
        rebuilt = cfb_writer.write(root)
        if ctx.option("legacy", "keep") == "convert":
            rebuilt = ole_convert.convert(rebuilt, ctx)
        dst.write(rebuilt)

    def _run(self, src: BinaryIO, ctx: StageContext, apply: bool) -> Node:
        src.seek(0)
        data = src.read(MAX_INPUT + 1)
        if len(data) > MAX_INPUT:
            raise LimitExceeded("the compound file is too large")
        ole = cfb_writer.open_ole(data)
        root = cfb_writer.read_tree(ole, len(data))
        for repair in root.repairs:
            ctx.record("ole.repaired", "", action=Action.REPAIRED, detail=repair)
        kind = ctx.type_id
        if kind not in ("ole.doc", "ole.xls", "ole.ppt"):
            what = _other_product(root)
            if what is None:
                raise Unsupported("this OLE compound file is not a Word, Excel or "
                                  "PowerPoint file")
            raise Unsupported(f"{what}: only Word, Excel and PowerPoint compound files "
                              "are disarmed")
        # encryption first: nothing else can be judged in an encrypted file
        if kind == "ole.doc":
            ole_word.check_encryption(root)
        elif kind == "ole.xls":
            try:
                ole_excel.check_encryption(root)
            except EncryptedContent:
                root = _decrypted_workbook(data, ctx)
        elif kind == "ole.ppt":
            ole_ppt.check_encryption(root)
        ole_objects.handle_objects(root, ctx, apply)
        ole_objects.handle_vba(root, ctx, apply)
        _stream_links(root, ctx, apply)
        if kind == "ole.doc":
            ole_word.process(root, ctx, apply)
        elif kind == "ole.xls":
            ole_excel.process(root, ctx, apply)
        elif kind == "ole.ppt":
            ole_ppt.process(root, ctx, apply)
        return root


#: the streams whose records hold drawings: Word's table and data streams, Excel's
#: workbook, PowerPoint's document
_DRAWINGS = frozenset({"1Table", "0Table", "Data", "Workbook", "Book", "PowerPoint Document"})


def _stream_links(root: Node, ctx: StageContext, apply: bool) -> None:
    """Links kept inside the document's own streams, cleaned with same-length edits
    before the format's own pass re-reads the streams: the external relationships of
    the OPC packages (shape copies, themes) Office 2007+ keeps there (``ole_drs``), and
    pictures of drawing shapes loaded from a file or an address (``ole_art``)."""
    for node in root.children:
        if node.is_storage:
            continue
        packages, drawings = _PK_END in node.data, node.name in _DRAWINGS
        if not (packages or drawings):
            continue
        data = bytearray(node.data)
        changed = packages and ole_drs.clean_stream(data, cfb_writer.printable([node.name]),
                                                    ctx, apply)
        changed |= drawings and ole_art.clean_stream(data, node.name, ctx, apply)
        if changed and apply:
            node.data = bytes(data)


def _decrypted_workbook(data: bytes, ctx: StageContext) -> Node:
    """An encrypted workbook opened with the job's password or Excel's default one
    (gateway/stages/office_crypto.py); EncryptedContent when neither opens it. The
    output is written from this decrypted tree, so it opens without a password."""
    plain, given = office_crypto.decrypt_legacy(data, ctx.password,
                                                "the Excel workbook is encrypted")
    ctx.account(len(plain))
    root = cfb_writer.read_tree(cfb_writer.open_ole(plain), len(plain))
    try:
        ole_excel.check_encryption(root)
    except EncryptedContent:
        raise Malformed("the workbook is still encrypted after decryption") from None
    ctx.record("ole.encrypted", "Workbook#FILEPASS", action=Action.REMOVED,
               detail="opened with the password given" if given
               else "opened with Excel's default password (VelvetSweatshop)")
    return root


registry.register(OleStage())
registry.register(ole_biff.BiffStage())

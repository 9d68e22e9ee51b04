"""PowerPoint 97-2003 (.ppt/.pps/.pot): the ``PowerPoint Document`` stream (MS-PPT).

PowerPoint keeps VBA projects, embedded objects and ActiveX controls as whole
compound files inside ``ExOleObjStg`` records (type 0x1011; instance 1 =
zlib-compressed with a 4-byte size prefix), found through a persist directory
of absolute stream offsets. Every edit here keeps the record's length, so no
offset (persist directory, UserEditAtom, Current User) has to move:

* each ``ExOleObjStg`` whose body is a compound file is classified like any
  other object storage (``ole_objects.classify``): VBA project ``ole.vba``,
  OLE package ``ole.package``, Equation ``ole.equation``, ActiveX
  ``ole.activex``, anything else ``ole.object``. Its body is replaced by an
  empty compound file (compressed, zero-padded to the old length); the slide
  keeps the object's picture. Like olevba we search the whole stream for the
  record header, so records outside the top-level chain are found too.
  An embedded Word/Excel/PowerPoint document under ``embedded: disarm`` is
  disarmed recursively and re-embedded when its compressed copy fits in the
  old record; otherwise it is removed. The VBAInfoAtom's fHasMacros is cleared.
  Location ``PowerPoint Document#ExOleObjStg@0x<offset>``.
* InteractiveInfoAtom click/hover actions "run macro" (1) and "run program" (2)
  become "no action" (``ole.auto_action``,
  ``PowerPoint Document#InteractiveInfo@0x<offset>``).
* ExHyperlinkContainer records (type 0x0FD7) whose target is not an http, https or
  mailto address (javascript:, file: paths, shares; an empty target is a jump inside
  the presentation) get their target and friendly-name strings zeroed in place
  (``ole.hyperlink``, ``PowerPoint Document#ExHyperlink@0x<offset>``): the text
  stays, a click opens nothing. Where the document summary's hyperlink list (an
  inert cache) repeats a target verbatim, that copy is zeroed too; a copy written in
  another form (a relative path) stays there, unused.
* An encrypted ``Current User`` token, ``EncryptedSummary`` or a
  CryptSession10Container raise EncryptedContent.
"""

from __future__ import annotations

import re
import struct
import zlib

from gateway.errors import EncryptedContent, LimitExceeded, Malformed
from gateway.kinds import Action
from gateway.pipeline.api import StageContext
from gateway.stages import cfb_writer, ole_objects
from gateway.stages.cfb_writer import Node
from gateway.stages.links import describe_target, is_web, shown_address

STREAM = "PowerPoint Document"
_EX_OLE_OBJ_STG = re.compile(rb"[\x00\x10]\x00\x11\x10", re.DOTALL)
_INTERACTIVE = b"\x00\x00\xf3\x0f\x10\x00\x00\x00"
#: VBAInfoContainer type and length + VBAInfoAtom header (the container's instance varies)
_VBA_INFO = b"\xff\x03\x14\x00\x00\x00\x02\x00\x00\x04\x0c\x00\x00\x00"
_ENCRYPTED_TOKEN = 0xF3D1C4DF
_CRYPT_SESSION = b"\x0f\x00\x14\x2f"
_EX_HYPERLINK = b"\x0f\x00\xd7\x0f"   # container header: recVer 0xF, type 0x0FD7
_CSTRING = 0x0FBA
_TARGET, _LOCATION = 1, 3                  # CString recInstance inside it
_MAX_INFLATE = 512 * 1024 * 1024
_ACTIONS = {1: "click action runs a macro", 2: "click action runs a program"}


def _empty_storage() -> bytes:
    return cfb_writer.write(Node("Root Entry", True))


def check_encryption(root: Node) -> None:
    if root.child("EncryptedSummary") is not None:
        raise EncryptedContent("the PowerPoint presentation is encrypted")
    user = root.child("Current User")
    if (user is not None and not user.is_storage and len(user.data) >= 16
            and struct.unpack_from("<I", user.data, 12)[0] == _ENCRYPTED_TOKEN):
        raise EncryptedContent("the PowerPoint presentation is encrypted")
    doc = root.child(STREAM)
    if doc is None or doc.is_storage:
        raise Malformed("no PowerPoint Document stream")
    pos = doc.data.find(_CRYPT_SESSION)
    while pos >= 0:
        if pos + 8 <= len(doc.data):
            size = struct.unpack_from("<I", doc.data, pos + 4)[0]
            if pos + 8 + size <= len(doc.data):
                raise EncryptedContent("the PowerPoint presentation is encrypted")
        pos = doc.data.find(_CRYPT_SESSION, pos + 1)


def _inflate(body: bytes, ctx: StageContext) -> bytes | None:
    if len(body) < 4:
        return None
    size = struct.unpack_from("<I", body, 0)[0]
    if size > _MAX_INFLATE:
        raise LimitExceeded("an embedded PowerPoint storage is too large")
    d = zlib.decompressobj()
    try:
        out = d.decompress(body[4:], size + 1)
    except zlib.error:
        return None
    ctx.account(len(out))
    return out


def _storage_at(data: bytes, pos: int, ctx: StageContext) -> tuple[int, bool, Node] | None:
    """(record length, compressed, tree) when an ExOleObjStg at ``pos`` holds a CFB."""
    if pos + 8 > len(data):
        return None
    ver_inst, _rtype, size = struct.unpack_from("<HHI", data, pos)
    if ver_inst & 0x0F != 0 or pos + 8 + size > len(data):
        return None
    compressed = ver_inst >> 4 == 1
    body = data[pos + 8:pos + 8 + size]
    inner = _inflate(body, ctx) if compressed else body
    if not inner or not inner.startswith(cfb_writer.MAGIC):
        return None
    try:
        tree = cfb_writer.read_tree(cfb_writer.open_ole(inner), len(inner))
    except Malformed:
        # an unreadable storage is still a storage: replace it, report it as an object
        return size, compressed, Node("Root Entry", True, children=[Node("?", False)])
    if not tree.children:
        return None     # an empty storage (what we leave behind) holds nothing
    return size, compressed, tree


def process(root: Node, ctx: StageContext, apply: bool) -> None:
    doc = root.child(STREAM)
    if doc is None or doc.is_storage:
        raise Malformed("no PowerPoint Document stream")
    data = bytearray(doc.data)
    done_until = -1
    for m in _EX_OLE_OBJ_STG.finditer(bytes(data)):
        pos = m.start()
        if pos < done_until:
            continue
        found = _storage_at(bytes(data), pos, ctx)
        if found is None:
            continue
        size, _compressed, tree = found
        done_until = pos + 8 + size
        _object(data, pos, size, tree, ctx, apply)
    if apply:
        pos = data.find(_VBA_INFO)
        while pos >= 0:
            if pos >= 2 and data[pos - 2] & 0x0F == 0x0F and pos + 26 <= len(data):
                struct.pack_into("<I", data, pos + 18, 0)   # VBAInfoAtom.fHasMacros
            pos = data.find(_VBA_INFO, pos + 1)
    pos = data.find(_INTERACTIVE)
    while pos >= 0:
        if pos + 24 <= len(data) and data[pos + 16] in _ACTIONS:
            ctx.record("ole.auto_action", f"{STREAM}#InteractiveInfo@0x{pos:x}",
                       action=Action.NEUTRALIZED, detail=_ACTIONS[data[pos + 16]])
            if apply:
                data[pos + 16] = 0
        pos = data.find(_INTERACTIVE, pos + 1)
    blanked = _hyperlinks(data, ctx, apply)
    if apply:
        doc.data = bytes(data)
        ole_objects.blank_summary_links(root, blanked)


def _hyperlinks(data: bytearray, ctx: StageContext, apply: bool) -> list[str]:
    """Neutralize the hyperlinks that may not stay (web and mail ones too unless the
    policy keeps hyperlinks); their targets."""
    keep_web = ctx.keeps("hyperlinks")
    blanked: list[str] = []
    pos = data.find(_EX_HYPERLINK)
    while pos >= 0:
        if pos + 8 <= len(data):
            end = min(len(data), pos + 8 + struct.unpack_from("<I", data, pos + 4)[0])
            strings: dict[int, tuple[int, int]] = {}   # recInstance -> (start, end)
            at = pos + 8
            while at + 8 <= end:
                ver_inst, rtype, size = struct.unpack_from("<HHI", data, at)
                if rtype == _CSTRING and at + 8 + size <= end:
                    strings.setdefault(ver_inst >> 4, (at + 8, at + 8 + size))
                at += 8 + size
            span = strings.get(_TARGET)
            target = data[span[0]:span[1]].decode("utf-16-le", "replace").strip("\x00 ") \
                if span else ""
            web = is_web(target)
            if target and not (web and keep_web):
                what = f"{shown_address(target)} (removed by policy)" if web \
                    else f"a {describe_target(target)}"
                ctx.record("ole.hyperlink", f"{STREAM}#ExHyperlink@0x{pos:x}",
                           action=Action.NEUTRALIZED,
                           detail=f"hyperlink to {what}: target blanked, text kept")
                blanked.append(target)
                if apply:
                    for instance, (lo, hi) in strings.items():
                        if instance != _LOCATION:
                            data[lo:hi] = bytes(hi - lo)
        pos = data.find(_EX_HYPERLINK, pos + 1)
    return blanked


def _object(data: bytearray, pos: int, size: int, tree: Node, ctx: StageContext,
            apply: bool) -> None:
    where = f"{STREAM}#ExOleObjStg@0x{pos:x}"
    kind, detail = ole_objects.classify(tree)
    if kind == "ole.object" and ctx.option("embedded", "disarm") == "disarm":
        emb = ole_objects.recurse_embedded(tree, ctx, apply, name=f"object@0x{pos:x}")
        if emb is not None and emb.verdict.delivered:
            if not apply or _put(data, pos, size, cfb_writer.write(tree)):
                ole_objects.record_outcome(emb, where, detail, ctx)
                return
            detail += ", too large to re-embed"
        elif emb is not None:
            detail += f", blocked inside: {emb.reason or emb.verdict}"
    ctx.record(kind, where, action=Action.REMOVED, detail=detail)
    if apply:
        _put(data, pos, size, _empty_storage())


def _put(data: bytearray, pos: int, size: int, storage: bytes) -> bool:
    """Write ``storage`` compressed into the record at ``pos``; False if it does not fit."""
    packed = struct.pack("<I", len(storage)) + zlib.compress(storage, 9)
    if len(packed) > size:
        if storage == _empty_storage():
            data[pos + 8:pos + 8 + size] = bytes(size)
            return True
        return False
    ver_inst = struct.unpack_from("<H", data, pos)[0]
    struct.pack_into("<H", data, pos, (ver_inst & 0x000F) | 0x0010)
    data[pos + 8:pos + 8 + size] = packed + bytes(size - len(packed))
    return True

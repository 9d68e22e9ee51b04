"""Archives: every member goes back through the pipeline; the output is a new zip.

zip, tar (plain, .gz, .bz2, .xz), single-file gzip/bzip2/xz/lzma, 7z, RAR, CAB, LZH,
ar and cpio are read (a single compressed file keeps its name without the suffix),
and disk images (ISO 9660, UDF, WIM, DMG) and ARJ through 7-Zip (archive_external.py);
the output is always a zip (Windows opens it without extra software). A member
that is blocked (an executable, a password-protected document…) is replaced by
a short note file in Japanese and English, so the recipient sees what was
taken out. Member names are cleaned before members are judged: absolute paths,
drive letters, ``..`` components and control characters are removed and every part
is made as Windows would create it (``:`` and other characters it refuses become
``_``, device names get a ``_``, trailing dots and spaces go: ``run.bat.`` is
judged as ``run.bat``), Japanese zips written without the UTF-8 flag
are decoded as CP932, symlinks/hardlinks/devices are dropped, and duplicate
names keep only the first member. Encrypted archives are refused
(EncryptedContent: held for quarantine by policy) unless the job carries the
password (the PPAP flow: the recipient enters it on the web page): then zip
(ZipCrypto and WinZip AES, through libarchive), 7z (py7zr) and RAR (unar:
libarchive does not implement RAR encryption) are decrypted and the output is a
plain zip of disarmed members. A wrong password is still EncryptedContent,
saying so.

Locations are member paths inside the archive, e.g. ``docs/見積書.docm``.
"""

from __future__ import annotations

import bz2
import functools
import gzip
import io
import itertools
import lzma
import re
import stat
import struct
import time
import weakref
import zipfile
import zlib
from collections.abc import Callable, Generator, Iterator
from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import IO, BinaryIO, ClassVar, Protocol

from gateway.errors import (
    WRONG_PASSWORD,
    EncryptedContent,
    LimitExceeded,
    Malformed,
    PolicyBlocked,
    Unsupported,
)
from gateway.kinds import Action
from gateway.models import Verdict
from gateway.pipeline import registry
from gateway.pipeline.api import Embedded, Mode, StageContext, package_path
from gateway.stages import archive_external, links
from gateway.stages.mail_names import windows_part

_TYPES = ("archive.zip", "archive.tar", "archive.gzip", "archive.bzip2", "archive.xz",
          "archive.zstd", "archive.lz4", "archive.lzma", "archive.7z", "archive.rar",
          "archive.cab", "archive.lzh", "archive.arc", "archive.ace",
          "archive.ar", "archive.cpio", *archive_external.FORMATS)
#: bytes of RAR members held back while libarchive may still fail (see _rar_members)
RAR_HOLD = 64 * 1024 * 1024
#: what a single compressed file is called without its compression suffix
_COMPRESSED_SUFFIXES = (".gz", ".gzip", ".z", ".bz2", ".bz", ".xz", ".lzma", ".zst", ".lz4")
#: single compressed files Python has no decoder for: libarchive's filters read them
_LIBARCHIVE_FILTERED = ("archive.zstd", "archive.lz4")
NOTE_SUFFIX = ".removed.txt"


class _Readable(Protocol):
    def read(self, size: int = -1, /) -> bytes: ...


@dataclass(frozen=True, slots=True)
class Member:
    name: str            # cleaned path inside the archive
    data: bytes | None   # None: dropped (link, device)
    date_time: tuple[int, int, int, int, int, int] = (1980, 1, 1, 0, 0, 0)
    problem: str = ""    # finding kind for a dropped or renamed member
    detail: str = ""


class ArchiveStage:
    name: ClassVar[str] = "archive"
    formats: ClassVar[frozenset[str]] = frozenset(_TYPES)

    def scan(self, src: BinaryIO, ctx: StageContext) -> None:
        epub = _declare_epub(src, ctx)
        for member in _members(src, ctx):
            if not (epub and member.name == "mimetype"):
                self._member(member, None, ctx, epub=epub)

    def disarm(self, src: BinaryIO, dst: BinaryIO, ctx: StageContext) -> None:
        if ctx.type_id == "archive.gzip" and ctx.location.lower().endswith(".svgz") \
                and self._one_file(src, dst, ctx):
            return
        epub = _declare_epub(src, ctx)
        with zipfile.ZipFile(dst, "w", zipfile.ZIP_DEFLATED, compresslevel=6) as out:
            if epub:  # OCF: "mimetype" first, stored, saying what it is
                out.writestr(zipfile.ZipInfo("mimetype", (1980, 1, 1, 0, 0, 0)), EPUB_MIMETYPE)
                _books[out] = _Book()
            for member in _members(src, ctx):
                if not (epub and member.name == "mimetype"):
                    self._member(member, out, ctx, epub=epub)
            if epub:
                _books[out].finish(out, ctx)
        if ctx.type_id != "archive.zip":
            ctx.output_type = ("archive.zip", "zip")

    def _one_file(self, src: BinaryIO, dst: BinaryIO, ctx: StageContext) -> bool:
        """A compressed SVG (drawing.svgz) whose content is delivered: gzipped again
        under its own name, since what opens it is an SVG viewer, not an archiver (other
        compressed files become zips, which Windows opens); content that is blocked
        leaves its note in a zip, as any member does. False: not one plain file (the
        zip way, from the start)."""
        found = _members(src, ctx)
        first, second = next(found, None), next(found, None)  # a .tar.gz: not read whole
        found.close()
        src.seek(0)
        if first is None or second is not None or first.data is None or first.problem:
            return False
        got = ctx.recurse(first.data, first.name)
        if got.delivered and got.data is not None:
            if got.verdict is Verdict.DISARMED:
                ctx.record("archive.member_active", first.name, action=Action.DISARMED)
            dst.write(gzip.compress(got.data, compresslevel=6, mtime=0))
            return True
        with zipfile.ZipFile(dst, "w", zipfile.ZIP_DEFLATED, compresslevel=6) as out:
            _place(first, got, out, ctx, epub=False)  # what the pipeline said, not run twice
        ctx.output_type = ("archive.zip", "zip")
        return True

    def _member(self, member: Member, out: zipfile.ZipFile | None, ctx: StageContext, *,
                epub: bool = False) -> None:
        """``epub``: every member keeps its name whatever its content turned out to be
        (an EPUB's documents refer to each other by name), and stylesheets may not load
        anything from outside the book."""
        if member.problem:
            ctx.record(member.problem, member.name,
                       action=Action.REMOVED if member.data is None else Action.NEUTRALIZED,
                       detail=member.detail)
        if member.data is None:
            if epub and out is not None:
                _books[out].removed.add(member.name)
            return
        if member.name.endswith("/"):
            if out is not None:
                out.writestr(zipfile.ZipInfo(member.name, member.date_time), b"")
            return
        data = member.data
        if epub and member.name.lower().endswith(".css") \
                and _loads_from_elsewhere(data, member.name, ctx):
            ctx.record("archive.stylesheet_loads", member.name,
                       action=Action.NEUTRALIZED if out is not None else Action.REMOVED)
            data = b"/* emptied by Sekisho */\n"
        got = ctx.recurse(data, member.name)
        if ctx.mode is not Mode.DISARM:
            if not got.verdict.delivered:
                ctx.record("archive.member_blocked", member.name, detail=got.reason or "")
            elif got.residual:
                ctx.record("archive.member_active", member.name, action=Action.DISARMED)
            return
        assert out is not None
        _place(member, got, out, ctx, epub=epub)


def _place(member: Member, got: Embedded, out: zipfile.ZipFile, ctx: StageContext, *,
           epub: bool) -> None:
    """Write what the pipeline gave for ``member``: its clean copy, or a note saying why
    it was taken out."""
    if got.delivered and got.data is not None:
        if got.verdict is Verdict.DISARMED:
            ctx.record("archive.member_active", member.name, action=Action.DISARMED)
        parent = str(PurePosixPath(member.name).parent)
        prefix = "" if parent == "." else parent + "/"
        name = member.name if epub else _unused(out, prefix + got.name, member.name, ctx)
        if epub and name.lower().endswith(".opf"):
            _books[out].packages.append((name, member.date_time, got.data))
            return   # written last, without what was removed from the book
        out.writestr(_info(name, member.date_time), got.data)
    elif epub:  # no note in the book: its manifest would not name it (the report does)
        ctx.record("archive.member_blocked", member.name, detail=got.reason or "")
        _books[out].removed.add(member.name)
    else:
        ctx.record("archive.member_blocked", member.name, detail=got.reason or "")
        note = _unused(out, member.name + NOTE_SUFFIX, member.name, ctx)
        out.writestr(_info(note, member.date_time),
                     _note(member.name, got.reason or "").encode("utf-8"))


OPF = "http://www.idpf.org/2007/opf"
#: manifest properties that no longer hold once the book is disarmed (its scripts and
#: what it loaded from elsewhere are gone): epubcheck's OPF-015 and OPF-018 otherwise
_GONE_PROPERTIES = frozenset({"scripted", "remote-resources"})


class _Book:
    """An e-book being written: the members taken out of it, and its package documents
    (.opf), held back to be written last without them."""

    def __init__(self) -> None:
        self.removed: set[str] = set()
        self.packages: list[tuple[str, tuple[int, int, int, int, int, int], bytes]] = []

    def finish(self, out: zipfile.ZipFile, ctx: StageContext) -> None:
        for name, when, data in self.packages:
            remote: list[str] = []
            out.writestr(_info(name, when), _without(data, name, self.removed, remote))
            for href in remote:
                ctx.record("archive.remote_item", name, action=Action.REMOVED,
                           detail=f"manifest item at {href[:100]}")


def _without(data: bytes, name: str, removed: set[str], remote: list[str]) -> bytes:
    """The package document without manifest items (and their spine entries) for
    members that were removed or that lie elsewhere (their addresses added to
    ``remote``), and without the properties no longer true; as it was when it does not
    parse."""
    from lxml import etree  # noqa: PLC0415 - only for e-books

    parser = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False)
    try:
        root = etree.fromstring(data, parser)
    except etree.XMLSyntaxError:
        return data
    gone: set[str] = set()
    changed = False
    for item in list(root.iter(f"{{{OPF}}}item")):
        href = item.get("href", "").strip()
        target = package_path(name, href)
        parent = item.getparent()
        if href and parent is not None and (target is None or target in removed):
            if target is None:  # an EPUB 3 "remote resource": fetched when the book opens
                remote.append(href)
            gone.add(item.get("id", ""))
            parent.remove(item)
            changed = True
            continue
        props = (item.get("properties") or "").split()
        if _GONE_PROPERTIES & set(props):
            kept = [p for p in props if p not in _GONE_PROPERTIES]
            if kept:
                item.set("properties", " ".join(kept))
            else:
                del item.attrib["properties"]
            changed = True
    for ref in list(root.iter(f"{{{OPF}}}itemref")):
        spine = ref.getparent()
        if ref.get("idref") in gone and spine is not None:
            spine.remove(ref)
            changed = True
    if not changed:
        return data
    return bytes(etree.tostring(root, xml_declaration=True, encoding="utf-8"))


#: what is known of each output zip being written: an e-book's book (members taken out,
#: package documents held back), and the names written so far (lower case; from the
#: zip's own list at first use)
_books: weakref.WeakKeyDictionary[zipfile.ZipFile, _Book] = weakref.WeakKeyDictionary()
_written: weakref.WeakKeyDictionary[zipfile.ZipFile, set[str]] = weakref.WeakKeyDictionary()


def _unused(out: zipfile.ZipFile, name: str, member: str, ctx: StageContext) -> str:
    """``name``, or a free one when the output already holds it (letter case aside): a
    member's clean copy may be named otherwise ("a" becomes "a.txt", "b.xlsm" "b.xlsx")
    and meet a member that had that name."""
    taken = _written.setdefault(out, {n.lower() for n in out.NameToInfo})
    if name.lower() in taken:
        free = _free_name(name, taken)
        ctx.record("archive.duplicate", free, action=Action.NEUTRALIZED,
                   detail=f"{member[:100]!r} is written as {free[:100]!r}: the name it "
                          f"would have, {name[:100]!r}, was taken")
        name = free
    taken.add(name.lower())
    return name


EPUB_MIMETYPE = b"application/epub+zip"
_CSS_REFERENCE = re.compile(
    r"""@import\s*(?:url\(\s*)?(['"]?)([^'"\s;)]*)|url\(\s*(['"]?)([^'")]*)""", re.I)
_CSS_RUNS = re.compile(r"expression\s*\(|behavio(?:u)?r\s*:|-moz-binding|\\", re.I)


def _declare_epub(src: BinaryIO, ctx: StageContext) -> bool:
    """Whether ``src`` is an EPUB (an OCF zip whose first member, "mimetype", says so);
    then its member names are declared a package, so references between its documents
    count as places inside the book (``StageContext.in_package``). Its documents are
    disarmed as any member is (XHTML as XML); the container keeps its shape and names,
    so e-book readers still open it."""
    if ctx.type_id != "archive.zip" or ctx.password is not None:
        return False
    # OCF puts "mimetype" in the file's first local header: any other zip is told apart
    # by 38 bytes, not by reading its directory a second time
    head = src.read(38)
    src.seek(0)
    if head[:4] != b"PK\x03\x04" or head[30:38] != b"mimetype":
        return False
    try:
        with zipfile.ZipFile(src) as z:
            infos = z.infolist()
            if not infos or infos[0].filename != "mimetype" or infos[0].file_size > 100:
                return False
            if z.read(infos[0]).strip() != EPUB_MIMETYPE:
                return False
            names = frozenset(i.filename for i in infos if not _is_dir(i))
    except (zipfile.BadZipFile, OSError, ValueError, NotImplementedError, RuntimeError):
        return False  # the member reader says what is wrong with it
    finally:
        src.seek(0)
    ctx.packages[ctx.location] = names
    return True


def _loads_from_elsewhere(data: bytes, name: str, ctx: StageContext) -> bool:
    """Whether an e-book stylesheet loads anything but the book's own members (fonts,
    pictures, other stylesheets) or runs code (old IE expressions and behaviours,
    Firefox bindings); escapes (which can spell "url(") count as such too."""
    text = data.decode("utf-8", "replace")
    if _CSS_RUNS.search(text):
        return True
    for m in _CSS_REFERENCE.finditer(text):
        target = m.group(2) if m.group(2) is not None else (m.group(4) or "")
        if target.startswith("#") or links.IMAGE_DATA_URL.match(target) \
                or target.lower().startswith(("data:font/", "data:application/font")):
            continue
        # a place in the book, there or not: a font that was removed leaves its
        # @font-face pointing at nothing (the reader uses another font), and the book
        # was blocked as loading from elsewhere
        if package_path(name, target) is None:
            return True
    return False


def _info(name: str, date_time: tuple[int, int, int, int, int, int]) -> zipfile.ZipInfo:
    info = zipfile.ZipInfo(name, date_time)
    info.compress_type = zipfile.ZIP_DEFLATED
    info.external_attr = 0o644 << 16
    return info


def _note(name: str, reason: str) -> str:
    return (f"Sekisho（関所）: 「{name}」は安全にできないため取り除きました。\r\n"
            f"理由: {reason}\r\n原本が必要な場合は管理者にお問い合わせください。\r\n\r\n"
            f"Sekisho removed \"{name}\" because it could not be made safe.\r\n"
            f"Reason: {reason}\r\nAsk your administrator if you need the original.\r\n")


# ---------------------------------------------------------------------------- readers


def _members(src: BinaryIO, ctx: StageContext) -> Generator[Member, None, None]:
    limit = ctx.policy.limits.max_size
    seen: set[str] = set()
    readers = {"archive.tar": _libarchive_members,
               "archive.cab": _libarchive_members,
               "archive.ar": _libarchive_members, "archive.cpio": _libarchive_members}
    reader = readers.get(ctx.type_id)
    if ctx.type_id in archive_external.FORMATS:
        raw = _image_members(src, ctx)
    elif ctx.type_id == "archive.rar":
        raw = _rar_members(src, ctx)
    elif ctx.type_id == "archive.zip" and ctx.password is None:
        raw = _plain_zip(src, ctx, limit)
    elif ctx.password is not None and ctx.type_id in ("archive.zip", "archive.7z"):
        raw = _with_password(src, ctx.type_id, limit, ctx.password)
    elif ctx.type_id == "archive.7z":
        raw = _7z_any(src, ctx, limit)
    elif ctx.type_id == "archive.lzh":
        raw = _lzh_members(src, ctx)
    elif ctx.type_id == "archive.ace":
        raw = _ace_members(src, limit)
    elif ctx.type_id == "archive.arc":   # SEA ARC / PKARC: only unar reads it
        limits = ctx.policy.limits
        raw = _external(archive_external.rar_entries(
            src, limits.max_size, limits.max_members, _external_timeout(ctx),
            what="ARC archive", garbled=True))
    else:
        raw = reader(src, limit) if reader else _single(src, ctx, limit,
                                                        _inner_name(ctx.location))
    try:
        yield from _unique_members(raw, seen)
    except _DAMAGE as exc:  # decoders raise many things on damaged input
        raise Malformed(f"archive is damaged ({type(exc).__name__})") from None


#: what archive decoders raise on damaged input (ItemError subclasses pass through)
_DAMAGE = (zipfile.BadZipFile, OSError, EOFError, ValueError,
           lzma.LZMAError, zlib.error, NotImplementedError, struct.error, IndexError,
           KeyError, UnicodeDecodeError)


def _image_members(src: BinaryIO, ctx: StageContext) -> Iterator[Member]:
    if ctx.option("disk_images", "disarm") == "block":
        raise PolicyBlocked("disk images are blocked by policy")
    limits = ctx.policy.limits
    yield from _external(archive_external.image_entries(
        src, ctx.type_id, limits.max_size, limits.max_members, _external_timeout(ctx)))


def _rar_members(src: BinaryIO, ctx: StageContext) -> Iterator[Member]:
    """RAR through libarchive; what libarchive cannot read (solid RAR 4, RAR 1.5-2.x)
    through unar. libarchive fails on those early (a solid archive at its second file),
    so its members are held back up to RAR_HOLD bytes: a failure in that stretch hands
    the archive to unar without delivering anything twice. Past it the rest streams as
    before, and a later failure blocks the archive. With a password (PPAP) unar reads
    it directly: libarchive cannot decrypt RAR."""
    limits = ctx.policy.limits
    if ctx.password is not None:
        yield from _external(archive_external.rar_entries(
            src, limits.max_size, limits.max_members, _external_timeout(ctx), ctx.password))
        return
    try:
        held, rest = _libarchive_held(src, limits.max_size)
    except Malformed:
        if archive_external.unar() is None:
            raise
        yield from _external(archive_external.rar_entries(
            src, limits.max_size, limits.max_members, _external_timeout(ctx)))
        return
    yield from held
    yield from rest


def _libarchive_held(src: BinaryIO, limit: int) -> tuple[list[Member], Iterator[Member]]:
    """libarchive's first members, up to RAR_HOLD bytes, and the rest of them: a
    failure in that stretch raises before anything is delivered (the caller tries
    another reader)."""
    reader = _libarchive_members(src, limit)
    held: list[Member] = []
    size = 0
    for member in reader:
        held.append(member)
        size += len(member.data or b"")
        if size > RAR_HOLD:
            break
    return held, reader


def _lzh_members(src: BinaryIO, ctx: StageContext) -> Iterator[Member]:
    """LZH through libarchive; what it refuses (the headers of Amiga, X68000, Atari and
    OS-9 LHA versions, the -lh1- and -lh4- methods: lhasa's test archives) through
    7-Zip, then unar (-lh1-, which 7-Zip unpacks as empty files). As for RAR, members
    are held back up to RAR_HOLD bytes so nothing is delivered twice."""
    limits = ctx.policy.limits
    try:
        held, rest = _libarchive_held(src, limits.max_size)
    except Malformed as first:
        try:
            yield from _external(archive_external.lzh_entries(
                src, limits.max_size, limits.max_members, _external_timeout(ctx)))
        except (Malformed, Unsupported):
            if archive_external.unar() is None:
                raise first from None
            yield from _external(archive_external.rar_entries(
                src, limits.max_size, limits.max_members, _external_timeout(ctx),
                what="LZH archive"))
        return
    yield from held
    yield from rest


def _local_entries(src: BinaryIO, limit: int) -> Iterator[Member]:
    """The entries of a zip without a central directory, read front to back from their
    local headers (APPNOTE 4.3.7). An entry must be whole and match its CRC; one whose
    sizes follow its data (flag bit 3) or that is cut off makes the archive Malformed."""
    data = _read_capped(src, limit, "zip archive")
    pos = 0
    while data.startswith(b"PK\x03\x04", pos) and pos + 30 <= len(data):
        (flag, method, mtime, mdate, crc, csize, usize, nlen, elen) = struct.unpack_from(
            "<2xHHHHIIIHH", data, pos + 4)
        raw_name = data[pos + 30:pos + 30 + nlen]
        start = pos + 30 + nlen + elen
        if flag & 0x1:
            raise EncryptedContent("zip archive is password-protected")
        if flag & 0x8 or 0xFFFFFFFF in (csize, usize):
            raise Malformed("zip archive without its central directory cannot be read (an "
                            "entry keeps its sizes elsewhere)")
        if start + csize > len(data):
            raise Malformed("zip archive is cut off inside an entry")
        if usize > limit:
            raise LimitExceeded(f"zip member is larger than {limit} bytes")
        try:
            content = _inflate(method, data[start:start + csize], usize)
        except (zlib.error, OSError, EOFError, ValueError):
            raise Malformed("zip member cannot be decompressed") from None
        if len(content) != usize or zlib.crc32(content) != crc:
            raise Malformed("zip member does not match its CRC")
        name = _entry_name(raw_name)  # UTF-8 (flagged or not), else CP932
        when = ((mdate >> 9) + 1980, min(max(1, (mdate >> 5) & 15), 12), max(1, mdate & 31),
                min((mtime >> 11) & 31, 23), min((mtime >> 5) & 63, 59), min((mtime & 31) * 2, 58))
        if name.endswith("/"):
            yield Member(name, b"", when)
        else:
            yield Member(name, content, when)
        pos = start + csize
    if data[pos:] and not data.startswith((b"PK\x01\x02", b"PK\x06\x06"), pos):
        # not the start of a central directory: an entry we could not read, which must
        # not go missing without a word
        raise Malformed("zip archive without its central directory has unreadable data "
                        f"at byte {pos}")


def _inflate(method: int, packed: bytes, size: int) -> bytes:
    """A zip member's bytes; at most ``size + 1`` are produced (a member that expands past
    its stated size is damage, or a bomb)."""
    if method == 0:
        return packed
    if method == 8:
        inflater = zlib.decompressobj(-15)
        return inflater.decompress(packed, size + 1)
    if method == 12:
        return bz2.BZ2Decompressor().decompress(packed, size + 1)
    if method in _OTHER_METHODS:
        return _OTHER_METHODS[method][1](packed, size)
    raise Unsupported(f"zip compression method {_method_name(method)} is not supported")


def _deflate64(packed: bytes, size: int) -> bytes:
    """Deflate64 (method 9: Windows Explorer's zips of large files) through inflate64,
    the decoder py7zr uses; fed in small pieces so a bomb stops at ``size``."""
    import inflate64  # noqa: PLC0415 - only zips that use it

    inflater, out, total = inflate64.Inflater(), [], 0
    for at in range(0, len(packed), 4096):
        piece = inflater.inflate(packed[at:at + 4096])
        total += len(piece)
        out.append(piece)
        if total > size or inflater.eof:
            break
    return b"".join(out)


def _ppmd(packed: bytes, size: int) -> bytes:
    """PPMd variant I (method 98: WinZip's and 7-Zip's best compression) through pyppmd;
    two bytes of parameters first (APPNOTE 5.10): order, memory in MB, restore method."""
    import pyppmd  # noqa: PLC0415 - only zips that use it

    if len(packed) < 2:
        raise ValueError("PPMd member without its parameters")
    value = int.from_bytes(packed[:2], "little")
    order, memory, restore = (value & 0xF) + 1, ((value >> 4) & 0xFF) + 1, value >> 12
    if order < 2 or restore > 1:
        raise ValueError("PPMd member with impossible parameters")
    try:
        return bytes(pyppmd.Ppmd8Decoder(order, memory << 20, restore).decode(packed[2:], size))
    except pyppmd.PpmdError as exc:  # its own errors (damaged data raises ValueError)
        raise ValueError(str(exc)) from None


#: zip compression methods zipfile does not read: method -> (name, decoder)
_OTHER_METHODS: dict[int, tuple[str, Callable[[bytes, int], bytes]]] = {
    9: ("Deflate64", _deflate64), 98: ("PPMd", _ppmd)}
_METHOD_NAMES = {1: "Shrink", 6: "Implode", 10: "PKWARE DCL Implode", 14: "LZMA", 95: "XZ",
                 93: "Zstandard", 96: "JPEG", 97: "WavPack", 99: "AE-x encryption"}


def _method_name(method: int) -> str:
    return _METHOD_NAMES.get(method) or _OTHER_METHODS.get(method, (str(method),))[0]


def _raw_member(zf: zipfile.ZipFile, info: zipfile.ZipInfo, limit: int) -> bytes:
    """A member zipfile will not read (a compression method it lacks, a local header
    naming it differently), read from its local header and decoded here; its size and
    CRC must match the central directory."""
    fp = zf.fp
    lengths = _local_header(fp, info.header_offset)
    if fp is None or lengths is None:
        raise Malformed(f"zip member {info.filename[:60]!r} has no local header")
    fp.seek(info.header_offset + 30 + sum(lengths))
    packed = fp.read(info.compress_size)
    if len(packed) != info.compress_size:
        raise Malformed(f"zip member {info.filename[:60]!r} is cut off")
    try:
        data = _inflate(info.compress_type, packed, min(info.file_size, limit))
    except (ValueError, EOFError, OSError) as exc:
        raise Malformed(f"zip member {info.filename[:60]!r} cannot be decompressed "
                        f"({type(exc).__name__})") from None
    if len(data) > limit:
        raise LimitExceeded(f"zip member expands beyond {limit} bytes")
    if len(data) != info.file_size or zlib.crc32(data) != info.CRC:
        raise Malformed(f"zip member {info.filename[:60]!r} does not match its CRC")
    return data


def _headless_zip(src: BinaryIO) -> bool:
    """Whether a zip zipfile refused starts with an entry but has no end-of-central-
    directory record: the first part of a split zip (volume.zip.001), a download cut
    off. Explorer refuses it; 7-Zip and libarchive read the entries that are complete."""
    src.seek(0)
    head = src.read(4)
    src.seek(0)
    if head != b"PK\x03\x04":
        return False
    try:
        found = zipfile.is_zipfile(src)
    except zipfile.BadZipFile:  # a damaged zip64 end record: there is one, damaged
        found = True
    src.seek(0)
    return not found


def _external_timeout(ctx: StageContext) -> float:
    return max(5.0, ctx.policy.limits.timeout * 0.8)


def _external(entries: Iterator[archive_external.Entry]) -> Iterator[Member]:
    for entry in entries:
        when = _tar_time(entry.mtime)
        if entry.data is None:
            yield Member(entry.path, None, when, "archive.link", "link or special file")
        else:
            yield Member(entry.path, entry.data, when)


def _unique_members(raw: Iterator[Member], seen: set[str]) -> Iterator[Member]:
    """Members under names no two of which Windows takes for one: a file whose name
    (letter case aside) came earlier is kept under a free name, "a (2).txt"."""
    for item in raw:
        name, problem = _clean_name(item.name)
        if name.lower() in seen:
            if item.data is None or name.endswith("/"):
                yield Member(name, None, item.date_time, item.problem or "archive.duplicate",
                             item.detail or "a member with the same name came earlier")
                continue
            free = _free_name(name, seen)
            seen.add(free.lower())
            yield Member(free, item.data, item.date_time, "archive.duplicate",
                         f"renamed from {name[:100]!r}: a member with the same name "
                         "(letter case aside) came earlier")
            continue
        seen.add(name.lower())
        if problem and not item.problem:
            yield Member(name, item.data, item.date_time, "archive.path_cleaned", problem)
        else:
            yield Member(name, item.data, item.date_time, item.problem, item.detail)


def _free_name(name: str, seen: set[str]) -> str:
    """``name`` with " (2)", " (3)" ... before its extension, the first not in ``seen``."""
    folder, _, leaf = name.rpartition("/")
    stem, dot, ext = leaf.rpartition(".")
    if not stem:  # no extension (or a leading dot only)
        stem, dot, ext = leaf, "", ""
    n = 2
    while True:
        candidate = f"{folder}/" * bool(folder) + f"{stem} ({n}){dot}{ext}"
        if candidate.lower() not in seen:
            return candidate
        n += 1


def _clean_name(raw: str) -> tuple[str, str]:
    """A member name every unzip tool, Windows Explorer included, extracts where it
    says: no absolute path or drive letter, no ``..``, each part as Windows can create
    it (``mail_names.windows_part``); what was changed, or ""."""
    name = raw.replace("\\", "/")
    is_dir = name.endswith("/")
    parts = [p for p in re.sub(r"^[A-Za-z]:", "", name).split("/") if p not in ("", ".", "..")]
    parts = [windows_part(p) or "_" for p in parts]
    cleaned = "/".join(parts) or "unnamed"
    cleaned += "/" if is_dir else ""
    if cleaned.rstrip("/") != name.rstrip("/"):
        return cleaned, f"name changed from {raw[:80]!r}"
    return cleaned, ""


def _read_capped(f: _Readable, limit: int, what: str) -> bytes:
    data = f.read(limit + 1)
    if len(data) > limit:
        raise LimitExceeded(f"{what} expands beyond {limit} bytes")
    return data


def _open_zip(src: BinaryIO) -> zipfile.ZipFile:
    try:
        return zipfile.ZipFile(src)
    except (zipfile.BadZipFile, OSError, ValueError, EOFError) as exc:
        raise Malformed(f"zip archive is damaged ({exc})") from None


def _plain_zip(src: BinaryIO, ctx: StageContext, limit: int) -> Iterator[Member]:
    """A zip without a password: as zipfile reads it, or, when it has no end of central
    directory at all, from its entries' own headers (reported as archive.repaired)."""
    try:
        zf = _open_zip(src)
    except Malformed:
        if not _headless_zip(src):
            raise
        ctx.record("archive.repaired", "", action=Action.REPAIRED,
                   detail="no central directory: the entries read from their own headers")
        yield from _local_entries(src, limit)
        return
    yield from _zip_entries(zf, limit)


_DOS_DIRECTORY = 0x10  # FILE_ATTRIBUTE_DIRECTORY, in the low byte of a zip's external_attr


def _is_dir(info: zipfile.ZipInfo) -> bool:
    """ZipInfo.is_dir() without its IndexError on an empty name (a name of NUL bytes,
    which zipfile cuts at the first)."""
    return info.filename.endswith("/")


def _zip_entries(zf: zipfile.ZipFile, limit: int) -> Iterator[Member]:
    with zf:
        infos = zf.infolist()
        _check_overlap(infos, zf.fp)
        for info in infos:
            if info.flag_bits & 0x1:
                raise EncryptedContent("zip archive is password-protected")
            name = info.filename
            if not info.flag_bits & 0x800:
                name = _japanese_name(name)
            mode = info.external_attr >> 16
            if stat.S_ISLNK(mode):
                yield Member(name, None, info.date_time, "archive.link", "symbolic link")
                continue
            # a folder marked only by its MS-DOS attribute (old DOS and Windows tools
            # wrote no "/"): as a file it clashed with the files inside it on extraction
            if _is_dir(info) or (info.external_attr & _DOS_DIRECTORY and not info.file_size):
                yield Member(name if name.endswith("/") else name + "/", b"", info.date_time)
                continue
            if info.file_size > limit:
                raise LimitExceeded(f"member {name[:60]!r} is larger than {limit} bytes")
            if info.compress_type in _OTHER_METHODS:
                yield Member(name, _raw_member(zf, info, limit), info.date_time)
                continue
            if info.compress_type not in (0, 8, 12, 14):  # what zipfile decompresses
                raise Unsupported(f"zip member {name[:60]!r} is compressed with "
                                  f"{_method_name(info.compress_type)}, which is not supported")
            try:
                with zf.open(info) as f:
                    data = _read_capped(f, limit, "zip member")
            except NotImplementedError as exc:  # (a RuntimeError too: caught first)
                raise Unsupported(f"zip member {name[:60]!r} cannot be read ({exc})") from None
            except RuntimeError as exc:  # encrypted without the flag we checked
                raise EncryptedContent(f"zip member is encrypted ({exc})") from None
            except zipfile.BadZipFile as exc:
                if not str(exc).startswith("File name in directory"):
                    raise Malformed(f"zip member {name[:60]!r} cannot be read ({exc})") \
                        from None
                # the entry's own header names it otherwise (corkami's minimized zip has
                # no name there): Explorer, 7-Zip and unzip take the directory's name,
                # and so does the rebuilt zip, so no reader sees two names any more
                yield Member(name, _raw_member(zf, info, limit), info.date_time,
                             "archive.path_cleaned", "the entry's own header names it "
                             f"{_local_name(zf, info)!r}: the directory's name is kept")
                continue
            except (OSError, ValueError, EOFError, lzma.LZMAError, zlib.error) as exc:
                raise Malformed(f"zip member {name[:60]!r} cannot be read ({exc})") from None
            yield Member(name, data, info.date_time)


def _local_header(fp: IO[bytes] | None, offset: int) -> tuple[int, int] | None:
    """(name length, extra field length) of the local header at ``offset``; None where
    there is none."""
    if fp is None:
        return None
    fp.seek(offset)
    header = fp.read(30)
    if len(header) < 30 or not header.startswith(b"PK\x03\x04"):
        return None
    nlen, elen = struct.unpack_from("<HH", header, 26)
    return int(nlen), int(elen)


def _local_name(zf: zipfile.ZipFile, info: zipfile.ZipInfo) -> str:
    """The name an entry's local header gives (its first 200 bytes)."""
    lengths = _local_header(zf.fp, info.header_offset)
    if zf.fp is None or lengths is None:
        return ""
    return zf.fp.read(min(lengths[0], 200)).decode("utf-8", "replace")


def _check_overlap(infos: list[zipfile.ZipInfo], fp: IO[bytes] | None) -> None:
    """Overlapping entries (a classic zip bomb and parser-confusion trick) are refused.
    An entry's data starts after the name in its own header (which may differ from the
    directory's: none at all in corkami's minimized zip)."""
    spans = sorted((i.header_offset, i.header_offset + 30 + _local_name_length(i, fp)
                    + i.compress_size) for i in infos if not _is_dir(i))
    for (_, end), (start, _) in itertools.pairwise(spans):
        if start < end:
            raise Malformed("zip entries overlap (zip bomb or ambiguous archive)")


def _local_name_length(info: zipfile.ZipInfo, fp: IO[bytes] | None) -> int:
    """The name length the entry's local header gives, else the directory's."""
    lengths = _local_header(fp, info.header_offset)
    return lengths[0] if lengths is not None else _raw_name_length(info)


def _raw_name_length(info: zipfile.ZipInfo) -> int:
    """Bytes of the name as stored: zipfile decoded it as UTF-8 when flag bit 11 is set,
    else as CP437 (a Japanese Windows zip's CP932 names), which encodes back exactly.
    Counting CP437-decoded names in UTF-8 made every Japanese zip of two or more files
    look like overlapping entries."""
    encoding = "utf-8" if info.flag_bits & 0x800 else "cp437"
    return len(info.orig_filename.encode(encoding, "replace"))


def _japanese_name(name: str) -> str:
    """Names without the UTF-8 flag were decoded as CP437; Japanese Windows wrote CP932."""
    try:
        raw = name.encode("cp437")
    except UnicodeEncodeError:
        return name
    if raw.isascii():
        return name
    for enc in ("utf-8", "cp932"):
        try:
            return raw.decode(enc)
        except UnicodeDecodeError:
            continue
    return name


def _tar_time(mtime: float) -> tuple[int, int, int, int, int, int]:
    t = time.gmtime(max(315532800, min(int(mtime), 4354819199)))  # zip: 1980..2107
    return (t.tm_year, t.tm_mon, t.tm_mday, t.tm_hour, t.tm_min, t.tm_sec)


def _inner_name(location: str) -> str:
    """``report.txt`` for ``mail/2/report.txt.bz2``; "content" when nothing is left."""
    name = location.replace("\\", "/").rsplit("/", 1)[-1]
    for suffix in _COMPRESSED_SUFFIXES:
        if name.lower().endswith(suffix) and len(name) > len(suffix):
            return name[: -len(suffix)]
    return "content"


def _single(src: BinaryIO, ctx: StageContext, limit: int, name: str) -> Iterator[Member]:
    type_id = ctx.type_id
    try:
        if type_id in _LIBARCHIVE_FILTERED:
            data = _filtered(src, limit)
        elif type_id == "archive.gzip":
            data, trailing = _gunzip(src, limit)
            if trailing:
                ctx.record("archive.trailing_data", name, action=Action.REMOVED,
                           detail=f"{trailing} bytes after the end of the gzip data, which "
                                  "no tool reads")
        else:
            with _decompressor(type_id, src) as f:
                data = _read_capped(f, limit, "compressed file")
        if type_id == "archive.gzip":
            src.seek(0)
            name = _gzip_name(src.read(1024)) or name
    except (OSError, EOFError, lzma.LZMAError, ValueError) as exc:
        raise Malformed(f"compressed file is damaged ({exc})") from None
    if _looks_like_tar(data):  # .tar.gz and friends: the members, not the tar
        yield from _libarchive_members(io.BytesIO(data), limit)
        return
    yield Member(name, data)


_CHUNK = 1 << 20


def _gunzip(src: BinaryIO, limit: int) -> tuple[bytes, int]:
    """The data of a gzip file, every member of it, and how many bytes follow the last
    one. gzip(1) reads a file with something other than another member or zeros after
    its end ("trailing garbage ignored"); Python's gzip module refused it as "Not a
    gzipped file". A file cut off inside a member is Malformed."""
    src.seek(0)
    out = bytearray()
    pending = src.read(_CHUNK)
    if not pending.startswith(b"\x1f\x8b"):
        raise Malformed("compressed file is damaged (not gzip data)")
    while pending.startswith(b"\x1f\x8b"):
        d = zlib.decompressobj(16 + zlib.MAX_WBITS)
        while not d.eof:
            if not pending:
                pending = src.read(_CHUNK)
                if not pending:
                    raise Malformed("compressed file is damaged (it ends inside the data)")
            try:
                out += d.decompress(pending, limit + 1 - len(out))
            except zlib.error as exc:
                raise Malformed(f"compressed file is damaged ({exc})") from None
            pending = d.unconsumed_tail
            if len(out) > limit:
                raise LimitExceeded(f"compressed file expands beyond {limit} bytes")
        pending = d.unused_data + pending
        if len(pending) < 2:
            pending += src.read(_CHUNK)
    tail = pending + src.read()
    return bytes(out), len(tail) if tail.strip(b"\0") else 0  # zeros: padding gzip skips


def _looks_like_tar(data: bytes) -> bool:
    """Whether ``data`` starts with a tar header: the POSIX magic, or an old-style
    header whose checksum adds up (a byte sum with the checksum field as spaces)."""
    if len(data) < 512:
        return False
    if data[257:262] == b"ustar":
        return True
    field = data[148:156].split(b"\0", 1)[0].strip()
    if not field or any(c not in b"01234567" for c in field):
        return False
    return int(field, 8) == sum(data[:148]) + 8 * 32 + sum(data[156:512])


def _filtered(src: BinaryIO, limit: int) -> bytes:
    """The one stream of a Zstandard or LZ4 file, through libarchive's filters (its "raw"
    format: the decompressed bytes as a single entry)."""
    import libarchive  # noqa: PLC0415 - only needed for these formats
    import libarchive.exception  # noqa: PLC0415

    src.seek(0)
    packed = _read_capped(src, limit, "compressed file")
    out = bytearray()
    try:
        with libarchive.memory_reader(packed, format_name="raw", filter_name="all") as archive:
            for entry in archive:
                for block in entry.get_blocks():
                    out += block
                    if len(out) > limit:
                        raise LimitExceeded(f"compressed file expands beyond {limit} bytes")
                break
    except libarchive.exception.ArchiveError as exc:
        raise Malformed("compressed file is damaged "
                        f"({str(exc).split(' (errno')[0]})") from None
    return bytes(out)


def _decompressor(type_id: str, src: BinaryIO) -> BinaryIO:
    if type_id == "archive.gzip":
        return gzip.GzipFile(fileobj=src)  # type: ignore[return-value]
    if type_id == "archive.bzip2":
        return bz2.BZ2File(src)  # type: ignore[return-value]
    if type_id == "archive.lzma":  # the legacy .lzma ("alone") format of LZMA Utils
        return lzma.LZMAFile(src, format=lzma.FORMAT_ALONE)  # type: ignore[return-value]
    return lzma.LZMAFile(src)  # type: ignore[return-value]


def _gzip_name(head: bytes) -> str | None:
    if len(head) < 10 or not head[3] & 0x08:
        return None
    pos = 10
    if head[3] & 0x04:  # FEXTRA
        pos += 2 + int.from_bytes(head[10:12], "little")
    end = head.find(b"\x00", pos)
    if end < 0:
        return None
    return head[pos:end].decode("latin-1") or None


def _entry_name(raw: str | bytes | None) -> str:
    """libarchive gives bytes when the locale can't decode a name: UTF-8 or, from a
    Japanese Windows zip without the UTF-8 flag, CP932."""
    if not raw:
        return "unnamed"
    if isinstance(raw, str):
        return raw
    for enc in ("utf-8", "cp932"):
        try:
            return raw.decode(enc)
        except UnicodeDecodeError:
            continue
    return raw.decode("latin-1")


class _NeedsSevenZip(Exception):
    """py7zr has no decoder for a coder the 7z archive uses."""


def _7z_any(src: BinaryIO, ctx: StageContext, limit: int) -> Iterator[Member]:
    """A 7z archive through py7zr, or through 7-Zip when py7zr lacks one of its coders
    (BCJ2: 7-Zip applies it to executables at -mx=9, so without this an archive of a
    program and its manual lost the manual too)."""
    members = _7z_members(src, limit)
    try:
        first = next(members, None)  # py7zr unpacks everything before the first one
    except _NeedsSevenZip:
        limits = ctx.policy.limits
        yield from _external(archive_external.sevenz_entries(
            src, limits.max_size, limits.max_members, _external_timeout(ctx)))
        return
    if first is not None:
        yield first
        yield from members


def _7z_members(src: BinaryIO, limit: int, password: str | None = None) -> Iterator[Member]:
    import py7zr  # noqa: PLC0415 - only needed for 7z input
    import py7zr.exceptions  # noqa: PLC0415
    import py7zr.io  # noqa: PLC0415

    try:
        archive = py7zr.SevenZipFile(src, mode="r", password=password)
    except py7zr.exceptions.PasswordRequired:
        raise EncryptedContent("7z archive is password-protected") from None
    except (py7zr.exceptions.ArchiveError, OSError, EOFError, ValueError, lzma.LZMAError) as exc:
        if password is not None:  # encrypted headers decrypted with the wrong key
            raise EncryptedContent(WRONG_PASSWORD) from None
        raise Malformed(f"7z archive is damaged ({type(exc).__name__})") from None
    except (TypeError, KeyError, IndexError, struct.error):
        if password is not None:  # py7zr parses the garbage a wrong key decrypts to
            raise EncryptedContent(WRONG_PASSWORD) from None
        raise
    with archive:
        if archive.needs_password() and password is None:
            raise EncryptedContent("7z archive is password-protected")
        encrypted = archive.needs_password()
        infos = archive.list()
        total = sum(i.uncompressed or 0 for i in infos)
        if total > limit:
            raise LimitExceeded(f"7z archive expands to {total} bytes")
        factory = py7zr.io.BytesIOFactory(limit + 1)
        try:
            archive.extractall(factory=factory)  # into memory, never to disk
        except py7zr.exceptions.UnsupportedCompressionMethodError:
            if password is not None:  # 7-Zip would take the password on its command line
                raise Unsupported("this encrypted 7z archive uses a compression py7zr "
                                  "cannot read (BCJ2)") from None
            raise _NeedsSevenZip from None
        except (py7zr.exceptions.ArchiveError, OSError, EOFError, ValueError,
                lzma.LZMAError) as exc:
            if encrypted:  # a wrong key decrypts to garbage the decoder refuses
                raise EncryptedContent(WRONG_PASSWORD) from None
            raise Malformed(f"7z archive cannot be read ({type(exc).__name__})") from None
        for info in infos:
            if info.is_directory:
                yield Member(info.filename.rstrip("/") + "/", b"")
            elif info.is_symlink:
                yield Member(info.filename, None, problem="archive.link", detail="symbolic link")
            else:
                # py7zr keys what it unpacked by the name made relative ("/a/b.txt" is
                # "a/b.txt"): looked up by the listed name alone, such a member was
                # delivered empty
                product = factory.products.get(info.filename)
                if product is None:
                    product = factory.products.get(_7z_relative(info.filename))
                if product is None:
                    if info.uncompressed:
                        yield Member(info.filename, None, problem="archive.member_blocked",
                                     detail="its data could not be read")
                    else:
                        yield Member(info.filename, b"")
                    continue
                product.seek(0)
                yield Member(info.filename, _read_capped(product, limit, "7z member"))


def _7z_relative(name: str) -> str:
    """A 7z member's name as py7zr writes it out: "/" separated, no leading "/" or
    drive."""
    name = name.replace("\\", "/")
    if len(name) > 1 and name[1] == ":":
        name = name[2:]
    return name.lstrip("/")


def _with_password(src: BinaryIO, type_id: str, limit: int, password: str) -> Iterator[Member]:
    """Members of an archive the submitter gave the password for. An archive that
    turns out not to be encrypted is read as usual (the password is not needed)."""
    src.seek(0)
    if type_id == "archive.7z":
        yield from _7z_members(src, limit, password)
        return
    if type_id == "archive.zip":
        zf = _open_zip(src)
        if not any(i.flag_bits & 0x1 for i in zf.infolist()):
            yield from _zip_entries(zf, limit)  # read as it is (it closes zf)
            return
        zf.close()
        src.seek(0)
    yield from _libarchive_members(src, limit, password)


def _ace_members(src: BinaryIO, limit: int) -> Iterator[Member]:
    """ACE 1.0/2.0 (WinACE) through acefile. A self-extracting ACE is an executable and
    is never looked into (no search for the header past its start); a multi-volume
    part alone is not readable; an encrypted member makes the archive encrypted. Each
    member's declared size is checked against the limit before it is decompressed."""
    import acefile  # noqa: PLC0415 - only needed for this format

    src.seek(0)
    data = _read_capped(src, limit, "archive")
    try:
        archive = acefile.open(io.BytesIO(data), search=0)
    except acefile.AceError as exc:
        raise Malformed(f"ACE archive cannot be read ({exc})") from None
    with archive:
        if archive.is_multivolume():
            raise Malformed("one part of a multi-volume ACE archive cannot be read alone")
        total = 0
        for member in archive:
            name = _entry_name(member.raw_filename)
            when = _tar_time(member.datetime.timestamp())
            if member.is_dir():
                yield Member(name.rstrip("/") + "/", b"", when)
                continue
            if member.is_enc():
                raise EncryptedContent("archive is password-protected")
            total += member.size
            if total > limit:
                raise LimitExceeded(f"archive expands beyond {limit} bytes")
            try:
                payload = archive.read(member)
            except acefile.AceError as exc:
                raise Malformed(f"ACE archive is damaged ({exc})") from None
            yield Member(name, payload, when)


def _libarchive_members(src: BinaryIO, limit: int,
                        password: str | None = None) -> Iterator[Member]:
    """tar, RAR (4 and 5), CAB, LZH, ar, cpio and encrypted zip through libarchive
    (libarchive-c binds the system library Debian ships as libarchive13): read-only,
    which is all we need. tar too: Python's tarfile before 3.11.14 loops for ever on a
    header with a negative size (CVE-2025-8194) and backtracks quadratically on a long
    number in a pax header (CVE-2024-6232): 80 kB of digits took 3.7 s, a megabyte the
    job's whole time."""
    import libarchive  # noqa: PLC0415 - only needed for these formats
    import libarchive.exception  # noqa: PLC0415

    src.seek(0)
    data = _read_capped(src, limit, "archive")
    if _rar5_encrypted(data) or _rar4_encrypted(data):
        # libarchive would hand out RAR5 ciphertext as the content, and calls some
        # encrypted RAR 2.x-4.x archives damaged ("solid archive support unavailable")
        raise EncryptedContent("archive is password-protected")
    sealed = False  # the entry being read is encrypted
    kept: dict[str, bytes] = {}  # what a hard link may name (up to HARDLINK_MEMORY bytes)
    held = 0
    try:
        with libarchive.memory_reader(data, passphrase=password) as archive:
            for entry in archive:
                sealed = _data_encrypted(entry)
                name = _entry_name(entry.pathname)
                when = _tar_time(entry.mtime or 0)
                if entry.isdir:
                    yield Member(name.rstrip("/") + "/", b"", when)
                    continue
                if entry.islnk:  # a hard link (tar, cpio, RAR5): the file it names, again
                    target = kept.get(_entry_name(entry.linkpath or ""))
                    if target is None:
                        yield Member(name, None, when, "archive.link",
                                     "hard link to a file not read before it")
                    else:
                        yield Member(name, target, when)
                    continue
                # ar members carry no file type (0): plain files all the same
                plain = entry.isreg or (entry.filetype == 0 and not entry.issym
                                        and not entry.islnk)
                if not plain:
                    yield Member(name, None, when, "archive.link", "link or special file")
                    continue
                if (entry.size or 0) > limit:
                    raise LimitExceeded(f"member {name[:60]!r} is larger than {limit} bytes")
                content = _entry_data(entry, limit, name)
                if not content and entry.size is None:
                    # RAR5 "file copy" entries: libarchive hands out nothing for them (the
                    # RAR reader falls back to unar on this)
                    raise Malformed(f"member {name[:60]!r} cannot be read (its size is "
                                    "unknown and no data came)")
                if held + len(content) <= HARDLINK_MEMORY:
                    kept[name] = content
                    held += len(content)
                yield Member(name, content, when)
    except libarchive.exception.ArchiveError as exc:
        text = str(exc).split(" (errno")[0]
        if password is not None and ("ncorrect passphrase" in text or sealed):
            # ZipCrypto checks a password against one byte only, so 1 wrong password in
            # 256 gets past it and fails later as a decompression or CRC error (WinZip
            # AES: 1 in 65536, then the authentication code). With a password given,
            # an encrypted entry that does not decode is a wrong password.
            raise EncryptedContent(WRONG_PASSWORD) from None
        if "ncrypt" in text or "assphrase" in text or "password" in text.lower():
            raise EncryptedContent("archive is password-protected") from None
        if text in ("", "None"):  # libarchive failed without saying why
            text = "damaged, the reader gives no reason"
        raise Malformed(f"archive cannot be read ({text[:80]})") from None


_BLOCK = 64 * 1024
#: bytes of members kept for hard links that name them (beyond: such a link is reported)
HARDLINK_MEMORY = 64 * 1024 * 1024


def _entry_data(entry: object, limit: int, name: str) -> bytes:
    """The bytes of the entry libarchive is at, at most ``limit``.

    libarchive-c's ``get_blocks`` takes a warning (ARCHIVE_WARN: a CRC or an
    authentication code that does not match) for a length: it hands out stale buffer
    bytes and reads on. Here a warning is an error, so a damaged member, or the
    garbage a wrong password that got past ZipCrypto's one-byte check decodes to, is
    never judged as the member's content.
    """
    import ctypes  # noqa: PLC0415

    import libarchive.exception  # noqa: PLC0415
    import libarchive.ffi  # noqa: PLC0415

    archive_p = entry._archive_p  # type: ignore[attr-defined]
    buf = ctypes.create_string_buffer(_BLOCK)
    chunks, size = [], 0
    while (n := libarchive.ffi.read_data(archive_p, buf, _BLOCK)) != 0:
        if n < 0:
            why = libarchive.ffi.error_string(archive_p) or b"damaged data"
            raise libarchive.exception.ArchiveError(why.decode("utf-8", "replace"))
        size += n
        if size > limit:
            raise LimitExceeded(f"member {name[:60]!r} expands beyond {limit}")
        chunks.append(buf.raw[:n])
    return b"".join(chunks)


_RAR5 = b"Rar!\x1a\x07\x01\x00"


def _rar5_encrypted(data: bytes) -> bool:
    """Whether a RAR5 archive holds a file whose data is encrypted (a file header with
    an encryption record in its extra area). libarchive cannot decrypt RAR5 and does not
    say so: it returns a stored file's ciphertext as its content, and a compressed one
    fails as a checksum error."""
    if not data.startswith(_RAR5):
        return False
    pos = len(_RAR5)
    try:
        while pos < len(data):  # blocks: CRC32, size, type, flags[, extra size][, data size]
            size, start = _vint(data, pos + 4)
            htype, at = _vint(data, start)
            flags, at = _vint(data, at)
            extra = data_size = 0
            if flags & 1:
                extra, at = _vint(data, at)
            if flags & 2:
                data_size, at = _vint(data, at)
            end = start + size
            if htype == 4:  # archive encryption header: everything is encrypted
                return True
            if htype == 2 and extra:
                rec = max(at, end - extra)  # a bad size never reads outside the header
                while rec < end:
                    rsize, after = _vint(data, rec)
                    if _vint(data, after)[0] == 1:  # the encryption record
                        return True
                    rec = after + rsize
            if htype == 5 or end + data_size >= len(data):  # end of archive
                return False
            pos = end + data_size
    except IndexError:
        return False
    return False


_RAR4 = b"Rar!\x1a\x07\x00"


def _rar4_encrypted(data: bytes) -> bool:
    """Whether a RAR 1.5-4.x archive is encrypted: its headers (main header flag 0x80,
    MHD_PASSWORD) or the data of a file (file header flag 0x04, LHD_PASSWORD).

    Blocks: CRC16, type, flags, header size (2 bytes each but the type), then 4 bytes
    more of data size when flags has 0x8000 (always for file and service headers)."""
    if not data.startswith(_RAR4):
        return False
    pos = len(_RAR4)
    while pos + 7 <= len(data):
        htype = data[pos + 2]
        flags, size = struct.unpack_from("<HH", data, pos + 3)
        if size < 7:
            return False  # damaged: libarchive will say so
        if htype == 0x73 and flags & 0x80:
            return True
        if htype == 0x74 and flags & 0x04:
            return True
        if htype == 0x7B:  # end of archive
            return False
        added = 0
        if flags & 0x8000 or htype in (0x74, 0x7A):
            if pos + 11 > len(data):
                return False
            added = struct.unpack_from("<I", data, pos + 7)[0]
        pos += size + added
    return False


def _vint(data: bytes, pos: int) -> tuple[int, int]:
    """A RAR5 variable-length integer at ``pos`` and the position after it."""
    value = shift = 0
    for _ in range(10):
        byte = data[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        shift += 7
        if not byte & 0x80:
            return value, pos
    raise IndexError("vint too long")


@functools.cache
def _encryption_probe() -> Callable[[object], int]:
    import ctypes  # noqa: PLC0415

    import libarchive.ffi  # noqa: PLC0415

    probe = libarchive.ffi.libarchive.archive_entry_is_data_encrypted
    probe.argtypes, probe.restype = [ctypes.c_void_p], ctypes.c_int
    return probe  # type: ignore[no-any-return]


def _data_encrypted(entry: object) -> bool:
    """libarchive's archive_entry_is_data_encrypted, which libarchive-c does not wrap."""
    return bool(_encryption_probe()(entry._entry_p))  # type: ignore[attr-defined]


registry.register(ArchiveStage())

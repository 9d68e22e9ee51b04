"""ZIP reading and writing for OPC packages, with the hygiene a hostile zip needs.

Reading refuses what Office itself would trip on or what hides content from us:
encrypted entries, compression methods other than stored/deflate, unsafe or duplicate
names (OPC part names are case-insensitive), entries that overlap, and declared sizes
beyond the job's expansion budget (checked before anything is inflated; zipfile then
holds every entry to its declared size and CRC).

Writing copies unchanged entries' compressed bytes as they are (after their CRC was
checked by inflating them once) and deflates only rebuilt parts, at zlib level 6 like
zipfile's default. Headers are written from scratch: no extra fields, no comments, no
data descriptors.
"""

from __future__ import annotations

import itertools
import posixpath
import struct
import zipfile
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import BinaryIO

from gateway.errors import LimitExceeded, Malformed
from gateway.pipeline import xml_wide
from gateway.stages import xml_dtd

MAX_ENTRIES = 10_000
#: deflate cannot expand by more than ~1032:1; more than this is a lie or a bomb
MAX_ENTRY_RATIO = 1100
_CHUNK = 1 << 20
#: entries read as XML by their name (parts, relationships, VML drawings)
_XML_SUFFIXES = (".xml", ".rels", ".vml")
_ZIP_ERRORS = (zipfile.BadZipFile, zipfile.LargeZipFile, EOFError, zlib.error, OSError,
               ValueError, NotImplementedError, RuntimeError, struct.error)


@dataclass(frozen=True, slots=True)
class Entry:
    name: str
    info: zipfile.ZipInfo
    data_offset: int


class ZipIn:
    """A validated view of one zip; ``account`` is charged with all declared sizes."""

    def __init__(self, src: BinaryIO, account: Callable[[int], None]) -> None:
        self._src = src
        try:
            src.seek(0)
            self._zf = zipfile.ZipFile(src)
            infos = self._zf.infolist()
        except _ZIP_ERRORS as exc:
            raise Malformed(f"the zip container is damaged ({_short(exc)})") from None
        if len(infos) > MAX_ENTRIES:
            raise LimitExceeded(f"more than {MAX_ENTRIES} zip entries")
        self.entries: dict[str, Entry] = {}
        self.names: list[str] = []
        #: entries that are XML with a DTD, as read: DTD cut out, entities resolved
        self.scrubbed: dict[str, xml_dtd.Scrubbed] = {}
        #: XML entries stored in UTF-16, UTF-7 or EBCDIC, as read: in UTF-8 (xml_wide),
        #: so every check sees ASCII as ASCII and the writer copies what was checked
        self.transcoded: dict[str, bytes] = {}
        self._verified: set[str] = set()   # inflated whole once: size and CRC proven
        seen: set[str] = set()
        total = 0
        for info in infos:
            # some tools write part names with backslashes (POI bug 49609: xlrd's
            # apachepoi_49609.xlsx); Excel and POI read them as "/", and so do we: the
            # output names them with "/", and names that lead out are refused as before
            name = info.filename.replace("\\", "/")
            if name.endswith("/") and info.file_size == 0:
                continue                       # directory entries are not parts
            _check_name(name)
            key = name.lower()
            if key in seen:
                raise Malformed(f"the zip holds two entries named {name[:80]!r}")
            seen.add(key)
            if info.flag_bits & 0x1:
                raise Malformed(f"zip entry {name[:80]!r} is encrypted")
            if info.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
                raise Malformed(f"zip entry {name[:80]!r} uses an unsupported compression")
            if info.compress_type == zipfile.ZIP_STORED and info.compress_size != info.file_size:
                raise Malformed(f"zip entry {name[:80]!r} has inconsistent sizes")
            if info.file_size > (1 << 20) and \
                    info.file_size > MAX_ENTRY_RATIO * max(info.compress_size, 1):
                raise LimitExceeded(f"zip entry {name[:80]!r} has an impossible "
                                    "compression ratio (zip bomb)")
            total += info.file_size
            self.entries[name] = Entry(name, info, self._data_offset(info))
            self.names.append(name)
        self._check_overlap()
        account(total)

    def _data_offset(self, info: zipfile.ZipInfo) -> int:
        try:
            self._src.seek(info.header_offset)
            head = self._src.read(30)
            sig, *_, nlen, xlen = struct.unpack("<IHHHHHIIIHH", head)
        except (struct.error, OSError, ValueError):
            raise Malformed(f"zip entry {info.filename[:80]!r} has no local header") from None
        if sig != 0x04034B50:
            raise Malformed(f"zip entry {info.filename[:80]!r} has no local header")
        raw_name = self._src.read(nlen)
        central = info.orig_filename.encode("utf-8" if info.flag_bits & 0x800 else "cp437")
        if raw_name != central:
            raise Malformed(f"zip entry {info.filename[:80]!r}: local and central names differ")
        return int(info.header_offset) + 30 + int(nlen) + int(xlen)

    def _check_overlap(self) -> None:
        spans = sorted((e.info.header_offset, e.data_offset + e.info.compress_size, e.name)
                       for e in self.entries.values())
        end_of_data = getattr(self._zf, "start_dir", None)
        for (_, end, name), (start, _, _) in itertools.pairwise(spans):
            if end > start:
                raise Malformed(f"zip entry {name[:80]!r} overlaps another entry")
        if spans and isinstance(end_of_data, int) and spans[-1][1] > end_of_data:
            raise Malformed("zip entries overlap the central directory")

    def read(self, name: str) -> bytes:
        """The inflated bytes of one entry (size and CRC checked). An XML entry with a
        DTD is handed out without it (``xml_dtd.scrub``, kept in ``scrubbed`` so the
        writer never copies the original); no XML parser here ever sees an entity."""
        if name in self.scrubbed:
            return self.scrubbed[name].data
        if name in self.transcoded:
            return self.transcoded[name]
        info = self.entries[name].info
        try:
            with self._zf.open(info) as f:
                data = f.read(info.file_size + 1)
        except _ZIP_ERRORS as exc:
            raise Malformed(f"zip entry {name[:80]!r} is damaged ({_short(exc)})") from None
        if len(data) != info.file_size:
            raise Malformed(f"zip entry {name[:80]!r} is damaged (size)")
        self._verified.add(name)
        if name.lower().endswith(_XML_SUFFIXES):
            wide = xml_wide.as_utf8(data, name)
            if wide is not None:
                data = self.transcoded[name] = wide
        scrubbed = xml_dtd.scrub(data)
        if scrubbed is None:
            return data
        self.scrubbed[name] = scrubbed
        return scrubbed.data

    def head(self, name: str, n: int) -> bytes:
        """The first ``n`` inflated bytes of one entry."""
        try:
            with self._zf.open(self.entries[name].info) as f:
                return f.read(n)
        except _ZIP_ERRORS as exc:
            raise Malformed(f"zip entry {name[:80]!r} is damaged ({_short(exc)})") from None

    def check(self, name: str) -> None:
        """Inflate one entry and throw the bytes away: proves its CRC before a raw copy
        (once: an entry already read whole was proven then)."""
        if name in self._verified:
            return
        info = self.entries[name].info
        try:
            with self._zf.open(info) as f:
                while f.read(_CHUNK):
                    pass
        except _ZIP_ERRORS as exc:
            raise Malformed(f"zip entry {name[:80]!r} is damaged ({_short(exc)})") from None
        self._verified.add(name)

    def raw(self, name: str) -> tuple[zipfile.ZipInfo, bytes]:
        entry = self.entries[name]
        self._src.seek(entry.data_offset)
        data = self._src.read(entry.info.compress_size)
        if len(data) != entry.info.compress_size:
            raise Malformed(f"zip entry {name[:80]!r} is truncated")
        return entry.info, data

    def size(self, name: str) -> int:
        return int(self.entries[name].info.file_size)


def _check_name(name: str) -> None:
    bad = (not name or "\x00" in name or "\\" in name or name.startswith("/")
           or (len(name) > 1 and name[1] == ":"))
    if not bad:
        segments = name.split("/")
        bad = any(s in ("", ".", "..") for s in segments)
    if bad or posixpath.normpath(name) != name:
        raise Malformed(f"unsafe zip member name {name[:80]!r}")


def _short(exc: BaseException) -> str:
    return (str(exc) or type(exc).__name__).split("\n", 1)[0][:80]


# ------------------------------------------------------------------------------ write


class ZipOut:
    def __init__(self, dst: BinaryIO) -> None:
        self._dst = dst
        self._central: list[bytes] = []
        self._offset = 0
        self._names: set[str] = set()

    def add(self, name: str, data: bytes, date_time: tuple[int, ...] = (1980, 1, 1, 0, 0, 0)
            ) -> None:
        comp = zlib.compressobj(6, zlib.DEFLATED, -15)
        packed = comp.compress(data) + comp.flush()
        self._entry(name, zipfile.ZIP_DEFLATED, zlib.crc32(data), len(data), packed, date_time)

    def add_stored(self, name: str, data: bytes,
                   date_time: tuple[int, ...] = (1980, 1, 1, 0, 0, 0)) -> None:
        """An uncompressed entry (ODF's ``mimetype`` must be one, and first)."""
        self._entry(name, zipfile.ZIP_STORED, zlib.crc32(data), len(data), data, date_time)

    def copy(self, zin: ZipIn, name: str, out_name: str | None = None) -> None:
        """Entry ``name`` of ``zin`` as the reader handed it out: its scrubbed bytes when
        a DTD was cut out, else its compressed bytes as they are (CRC proven first)."""
        info = zin.entries[name].info
        if name in zin.scrubbed:
            self.add(out_name or name, zin.scrubbed[name].data, info.date_time)
            return
        if name in zin.transcoded:
            self.add(out_name or name, zin.transcoded[name], info.date_time)
            return
        zin.check(name)
        _, raw = zin.raw(name)
        self.add_raw(out_name or name, info, raw)

    def add_raw(self, name: str, info: zipfile.ZipInfo, raw: bytes) -> None:
        self._entry(name, info.compress_type, info.CRC, info.file_size, raw, info.date_time)

    def _entry(self, name: str, method: int, crc: int, size: int, packed: bytes,
               date_time: tuple[int, ...]) -> None:
        if name.lower() in self._names:
            raise Malformed(f"two parts named {name[:80]!r} in the output")
        self._names.add(name.lower())
        if name.isascii():
            bname, flags = name.encode("ascii"), 0
        else:
            bname, flags = name.encode("utf-8"), 0x800
        if self._offset + len(packed) > 0xFFFF_FFFF or size > 0xFFFF_FFFF:
            raise LimitExceeded("the rebuilt document is larger than 4 GiB")
        dtime, ddate = _dos_time(date_time)
        header = struct.pack("<IHHHHHIIIHH", 0x04034B50, 20, flags, method, dtime, ddate,
                             crc & 0xFFFF_FFFF, len(packed), size, len(bname), 0)
        self._central.append(struct.pack(
            "<IHHHHHHIIIHHHHHII", 0x02014B50, 20, 20, flags, method, dtime, ddate,
            crc & 0xFFFF_FFFF, len(packed), size, len(bname), 0, 0, 0, 0, 0,
            self._offset) + bname)
        self._dst.write(header)
        self._dst.write(bname)
        self._dst.write(packed)
        self._offset += len(header) + len(bname) + len(packed)

    def close(self) -> None:
        if len(self._central) > 0xFFFF:
            raise LimitExceeded("the rebuilt document has too many parts")
        start = self._offset
        cd = b"".join(self._central)
        self._dst.write(cd)
        self._dst.write(struct.pack("<IHHHHIIH", 0x06054B50, 0, 0, len(self._central),
                                    len(self._central), len(cd), start, 0))


def _dos_time(dt: tuple[int, ...]) -> tuple[int, int]:
    year, month, day, hour, minute, second = (list(dt) + [0] * 6)[:6]
    if year < 1980:
        year, month, day, hour, minute, second = 1980, 1, 1, 0, 0, 0
    year = min(year, 2107)
    return ((hour << 11) | (minute << 5) | (second // 2),
            ((year - 1980) << 9) | (month << 5) | day)

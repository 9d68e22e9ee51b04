"""One quarantine entry in one file: the original, its report and its metadata, sealed.

Format (integers big-endian)::

    header   "SKQE" | version u8 (1) | 3 reserved bytes |
             offset and length (u64 each) of the original, the report, the metadata |
             CRC-32 of everything before it                                  = 60 bytes
    then     three sealed documents (gateway/store/sealed.py), each self-contained:
             the original (none once deleted), the report, the metadata

Why one file and not a directory of three: every file created costs an inode, and on
a file system that skips recently freed inodes when it allocates one (ext4 without a
journal) creating files next to a busy spool was the largest share of the relay's
CPU per message: four inodes per quarantined message became one (bench/RESULTS.md,
session 15). An entry of the earlier layout (a directory holding ``original.sealed``,
``report.sealed`` and ``meta.sealed``) is still read and changed in place; new entries
are always single files.

Changes, all under the quarantine's lock:

- new metadata (release, export) is appended after the sections and the header is
  rewritten to point at it (it lies within the first 512-byte sector, written in one
  ``pwrite``), each step fsynced: a crash leaves the old metadata or the new one. The
  old metadata stays in the file, sealed; a reader that raced the header write sees a
  CRC mismatch and reads again.
- dropping the original (delete, purge) overwrites its sealed header (salt and nonce
  prefix: without them its key cannot be derived, as ``sealed.shred`` does), then
  replaces the file by a copy without it, which frees the space.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import struct
import time
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from gateway.store import durable, sealed
from gateway.store.sealed import HEADER_SIZE as SEALED_HEADER
from gateway.store.sealed import Keyring, Readable, SealError

MAGIC = b"SKQE"
VERSION = 1
_HEAD = struct.Struct(">4sB3s6Q")
_CRC = struct.Struct(">I")
HEADER = _HEAD.size + _CRC.size
# the directory layout before single files
ORIGINAL, REPORT, META = "original.sealed", "report.sealed", "meta.sealed"


@dataclass(frozen=True, slots=True)
class Layout:
    """Where each sealed section lies in an entry file (length 0: none)."""

    original: tuple[int, int]
    report: tuple[int, int]
    meta: tuple[int, int]

    def pack(self) -> bytes:
        head = _HEAD.pack(MAGIC, VERSION, b"\0\0\0", *self.original, *self.report, *self.meta)
        return head + _CRC.pack(zlib.crc32(head))


def _unpack(data: bytes, name: str) -> Layout:
    if len(data) < HEADER or data[:4] != MAGIC:
        raise SealError(f"{name}: not a quarantine entry (bad or missing header)")
    head, (crc,) = data[:_HEAD.size], _CRC.unpack_from(data, _HEAD.size)
    if zlib.crc32(head) != crc:
        raise SealError(f"{name}: damaged entry header")
    _, version, _, *where = _HEAD.unpack(head)
    if version != VERSION:
        raise SealError(f"{name}: unsupported quarantine entry (version {version})")
    return Layout((where[0], where[1]), (where[2], where[3]), (where[4], where[5]))


def read_layout(fd: int, name: str) -> Layout:
    """The header, read again once should it be caught half rewritten."""
    for attempt in range(2):
        try:
            return _unpack(os.pread(fd, HEADER, 0), name)
        except SealError:
            if attempt:
                raise
            time.sleep(0.01)
    raise AssertionError("unreachable")


class _Slice:
    """A file read from ``offset`` for ``length`` bytes, as if that were all of it."""

    def __init__(self, f: BinaryIO, offset: int, length: int) -> None:
        f.seek(offset)
        self._f = f
        self._left = length

    def read(self, n: int = -1) -> bytes:
        if n < 0 or n > self._left:
            n = self._left
        data = self._f.read(n)
        self._left -= len(data)
        return data


# ------------------------------------------------------------------------ writing


def write(dst: Path, original: Path, keys: Keyring, job_id: str, report: bytes,
          meta: Callable[[sealed.Sealed], bytes]) -> sealed.Sealed:
    """Create the entry file ``dst`` (mode 0600, fsynced; the directory is not):
    ``original`` sealed as it streams, then ``report``, then ``meta(original's
    size and digest)``, all sealed."""
    with durable.created(dst, mode=0o600) as fd:
        with os.fdopen(fd, "wb", closefd=False) as out, open(original, "rb") as src:
            out.write(bytes(HEADER))
            info = sealed.seal_stream(src, out, keys, "original", job_id)
            start = out.tell()
            out.write(sealed.seal(report, keys, "report", job_id))
            middle = out.tell()
            out.write(sealed.seal(meta(info), keys, "meta", job_id))
            end = out.tell()
        layout = Layout((HEADER, start - HEADER), (start, middle - start),
                        (middle, end - middle))
        os.pwrite(fd, layout.pack(), 0)
    return info


# ------------------------------------------------------------------------ reading


def _section(path: Path, which: str, limit: int = 64 * 1024 * 1024) -> bytes:
    fd = os.open(path, os.O_RDONLY)
    try:
        offset, length = getattr(read_layout(fd, path.name), which)
        if length > limit:
            raise SealError(f"{path.name}: {which} larger than {limit} bytes")
        data = os.pread(fd, length, offset)
    finally:
        os.close(fd)
    if len(data) != length:
        raise sealed.Tampered(f"{path.name}: truncated: the {which} is cut off")
    return data


def read_sealed(entry: Path, which: str) -> bytes:
    """The sealed ``which`` ("report" or "meta") of an entry of either layout."""
    if entry.is_dir():
        return (entry / {"report": REPORT, "meta": META}[which]).read_bytes()
    return _section(entry, which)


def has_original(entry: Path) -> bool:
    if entry.is_dir():
        return (entry / ORIGINAL).exists()
    fd = os.open(entry, os.O_RDONLY)
    try:
        return read_layout(fd, entry.name).original[1] > 0
    finally:
        os.close(fd)


@contextlib.contextmanager
def open_original(entry: Path) -> Iterator[Readable]:
    """The sealed original of an entry of either layout, as a stream."""
    if entry.is_dir():
        with open(entry / ORIGINAL, "rb") as f:
            yield f
        return
    with open(entry, "rb") as f:
        offset, length = read_layout(f.fileno(), entry.name).original
        if not length:
            raise FileNotFoundError(f"{entry.name}: the original was deleted")
        yield _Slice(f, offset, length)


def stamp_path(entry: Path) -> Path:
    """The file whose stat tells that an entry changed (the index's stamp)."""
    return entry / META if entry.is_dir() else entry


def is_entry(path: Path) -> bool:
    return (path / META).is_file() if path.is_dir() else path.is_file()


# ------------------------------------------------------------------------ changing


def replace_meta(entry: Path, data: bytes) -> None:
    """Make the sealed ``data`` the entry's metadata (crash-safe, see module doc)."""
    if entry.is_dir():
        durable.replace(entry / META, data, mode=0o600)
        return
    fd = os.open(entry, os.O_RDWR)
    try:
        layout = read_layout(fd, entry.name)
        end = os.fstat(fd).st_size
        _pwrite_all(fd, data, end)
        os.fsync(fd)
        new = Layout(layout.original, layout.report, (end, len(data)))
        os.pwrite(fd, new.pack(), 0)
        os.fsync(fd)
    finally:
        os.close(fd)


def drop_original(entry: Path, meta: bytes, tmp: Path) -> None:
    """Destroy the entry's original and make the sealed ``meta`` its metadata.
    ``tmp``: a directory on the same file system for the rewritten file."""
    if entry.is_dir():
        sealed.shred(entry / ORIGINAL)
        durable.replace(entry / META, meta, mode=0o600)
        return
    report = _section(entry, "report")
    new = tmp / f"{os.getpid()}.{entry.name[:100]}.{secrets.token_hex(3)}"
    layout = Layout((HEADER, 0), (HEADER, len(report)),
                    (HEADER + len(report), len(meta)))
    durable.write(new, [layout.pack(), report, meta], mode=0o600)
    try:
        shred(entry)
        os.rename(new, entry)
    except BaseException:
        new.unlink(missing_ok=True)
        raise
    durable.fsync_dir(entry.parent)


def shred(entry: Path) -> None:
    """Overwrite the sealed header of the original in an entry file (salt, nonce
    prefix), fsynced; the file stays."""
    fd = os.open(entry, os.O_RDWR)
    try:
        offset, length = read_layout(fd, entry.name).original
        if length:
            os.pwrite(fd, secrets.token_bytes(min(length, SEALED_HEADER)), offset)
            os.fsync(fd)
    finally:
        os.close(fd)


def discard(entry: Path) -> None:
    """Remove an entry of either layout, its original shredded first."""
    if entry.is_dir():
        sealed.shred(entry / ORIGINAL)
        shutil.rmtree(entry, ignore_errors=True)
        return
    with contextlib.suppress(OSError, SealError):
        shred(entry)
    entry.unlink(missing_ok=True)


def _pwrite_all(fd: int, data: bytes, offset: int) -> None:
    view = memoryview(data)
    while view:
        n = os.pwrite(fd, view, offset)
        view, offset = view[n:], offset + n

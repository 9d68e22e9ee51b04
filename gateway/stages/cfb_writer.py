"""A small, strict MS-CFB (compound file) reader front end and version-3 writer.

Why our own writer. The legacy Office stage must *remove* storages and streams
and sometimes change a stream's length (an Excel ``Workbook`` without its macro
sheet, a re-embedded disarmed object). ``olefile`` reads compound files well but
can only overwrite an existing stream with data of the same length; it cannot
delete entries. The Python writers we looked at do not fit a security gateway:
``compoundfiles`` is read-only, ``msoffcrypto-tool`` writes only the fixed
layout of an ``EncryptedPackage`` file, ``cfb`` is read-only, and ``cfbwrite``
is AGPL-3.0 (incompatible with this Apache-2.0 project); the rest are
unmaintained or single-purpose. A v3 writer is short when it does only what the
spec requires, so we write the whole file from a tree instead of patching one:

* version 3, 512-byte sectors, 64-byte mini sectors, cut-off 4096 bytes;
* streams shorter than the cut-off live in the mini stream (MiniFAT), the rest
  in regular sectors (FAT); the FAT and, for files beyond 109 FAT sectors, the
  DIFAT chain are sized by fixed-point iteration;
* each storage's children form a red-black tree ordered as MS-CFB 2.6.4 says
  (UTF-16 length first, then code units upper-cased). We build a balanced tree
  by median split and colour red exactly the nodes of the last, incomplete
  level: every root-to-leaf path then has the same number of black nodes, no
  red node has a red child, the root is black — a valid red-black tree;
* every kept storage and stream keeps its exact name (raw UTF-16), CLSID and
  state bits; storages keep their timestamps; streams get zero timestamps and
  the root a zero creation time, as MS-CFB 2.6.3 requires.

Reading goes through olefile (mature, defect-aware). ``read_tree`` turns its
directory into :class:`Node` objects and refuses what cannot be rebuilt
faithfully: duplicate names in one storage, entries of unknown type, or stream
sizes that add up to more than the file (cross-linked sector chains, which
would otherwise amplify memory use).
"""

from __future__ import annotations

import contextlib
import io
import itertools
import struct
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import olefile

from gateway.errors import Malformed

SECTOR = 512
MINI_SECTOR = 64
CUTOFF = 4096
FREESECT, ENDOFCHAIN, FATSECT, DIFSECT = 0xFFFFFFFF, 0xFFFFFFFE, 0xFFFFFFFD, 0xFFFFFFFC
NOSTREAM = 0xFFFFFFFF
MAGIC = bytes.fromhex("D0CF11E0A1B11AE1")
_UNALLOCATED, _STORAGE, _STREAM, _ROOT = 0, 1, 2, 5
_PROPERTY_SET = "\x05"   # SummaryInformation, DocumentSummaryInformation
_RED, _BLACK = 0, 1
_PER_SECTOR = SECTOR // 4     # FAT entries in one sector
_HEADER_DIFAT = 109


@dataclass(eq=False)
class Node:
    """One storage or stream. The root is a storage named ``Root Entry``."""

    name: str
    is_storage: bool
    data: bytes = b""
    clsid: bytes = bytes(16)
    state: int = 0
    ctime: int = 0
    mtime: int = 0
    children: list[Node] = field(default_factory=list)
    #: on a tree's root: the damage reading it worked around (truncated streams, entries
    #: of unknown type)
    repairs: list[str] = field(default_factory=list)

    def child(self, name: str) -> Node | None:
        """The child called ``name`` (CFB names are case-insensitive)."""
        key = name.upper()
        for c in self.children:
            if c.name.upper() == key:
                return c
        return None

    def remove(self, node: Node) -> None:
        self.children = [c for c in self.children if c is not node]

    def walk(self, prefix: tuple[str, ...] = ()) -> Iterator[tuple[tuple[str, ...], Node]]:
        """(path, node) for every descendant, parents before children."""
        for c in self.children:
            path = (*prefix, c.name)
            yield path, c
            if c.is_storage:
                yield from c.walk(path)

    @property
    def clsid_str(self) -> str:
        return str(uuid.UUID(bytes_le=self.clsid)).upper()


def printable(path: tuple[str, ...] | list[str]) -> str:
    """A storage path for reports: '/'-joined, control characters as \\xNN."""
    return "/".join("".join(f"\\x{ord(ch):02x}" if ord(ch) < 0x20 else ch for ch in part)
                    for part in path)


def _short(name: str) -> str:
    text = printable([name])
    return text if len(text) <= 40 else text[:37] + "..."


# ------------------------------------------------------------------------------ reading


def open_ole(data: bytes) -> Any:
    """olefile over ``data``; Malformed when it is not a compound file."""
    if len(data) < 3 * SECTOR or not data.startswith(MAGIC):
        raise Malformed("not an OLE compound file (too short or wrong signature)")
    try:
        return olefile.OleFileIO(io.BytesIO(data))
    except Exception as exc:  # olefile raises OSError, struct.error, IndexError, ...
        raise Malformed(f"damaged OLE compound file ({_why(exc)})") from None


def _why(exc: Exception) -> str:
    text = str(exc).splitlines()[0][:80] if str(exc) else ""
    return text or type(exc).__name__


class _Budget:
    """Bytes every stream read may add up to: twice the file. Entries whose sector
    chains are shared (each claiming the whole file) would otherwise multiply it; a
    file cut short, whose streams declare more than is left, stays well inside."""

    def __init__(self, file_size: int) -> None:
        self.left = 2 * file_size + 64 * 1024

    def spend(self, nbytes: int) -> None:
        self.left -= nbytes
        if self.left < 0:
            raise Malformed("OLE streams overlap (what they hold adds up to more than "
                            "twice the file)")


def read_tree(ole: Any, file_size: int) -> Node:
    """The whole directory of ``ole`` as a Node tree with every stream's bytes."""
    with _damage():
        root_entry = ole.root
        root = Node(name=_name(root_entry), is_storage=True, clsid=_clsid(root_entry.clsid),
                    state=root_entry.dwUserFlags, mtime=root_entry.modifyTime)
        _read_children(ole, root_entry, root, depth=0, repairs=root.repairs,
                       budget=_Budget(file_size))
    return root


def read_storage(ole: Any, path: Sequence[str]) -> Node:
    """The storage at ``path`` of ``ole`` as the root of a tree of its own (an object
    kept inside another file, to be written as a compound file of its own)."""
    with _damage():
        entry = ole.direntries[ole._find(list(path))]
        if entry is None or entry.entry_type != _STORAGE:
            raise Malformed(f"OLE entry {_short('/'.join(path))!r} is not a storage")
        root = Node(name="Root Entry", is_storage=True, clsid=_clsid(entry.clsid),
                    state=entry.dwUserFlags, mtime=entry.modifyTime)
        _read_children(ole, entry, root, depth=0, repairs=root.repairs,
                       budget=_Budget(ole._filesize))
    return root


@contextlib.contextmanager
def _damage() -> Iterator[None]:
    """Whatever olefile raises on a damaged file, as Malformed."""
    try:
        yield
    except Malformed:
        raise
    except RecursionError:
        raise Malformed("OLE storages nested too deeply") from None
    except Exception as exc:
        raise Malformed(f"damaged OLE compound file ({_why(exc)})") from None


def _read_children(ole: Any, entry: Any, node: Node, depth: int, repairs: list[str],
                   budget: _Budget) -> None:
    if depth > 64:
        raise Malformed("OLE storages nested too deeply")
    seen: set[str] = set()
    for kid in entry.kids:
        if kid.entry_type in (_UNALLOCATED, _ROOT):
            # a free directory slot, or the root again, that a damaged tree points to:
            # no content of its own; Office and LibreOffice skip them too
            continue
        name = _name(kid)
        if name.upper() in seen:
            raise Malformed(f"duplicate entry name {_short(name)!r} in one OLE storage")
        seen.add(name.upper())
        if kid.entry_type == _STORAGE:
            child = Node(name=name, is_storage=True, clsid=_clsid(kid.clsid),
                         state=kid.dwUserFlags, ctime=kid.createTime, mtime=kid.modifyTime)
            _read_children(ole, kid, child, depth + 1, repairs, budget)
        elif kid.entry_type == _STREAM:
            data = ole._open(kid.isectStart, kid.size).read() if kid.size else b""
            budget.spend(len(data))
            if len(data) != kid.size:
                if name.startswith(_PROPERTY_SET):
                    # document properties (title, author…): Office and LibreOffice open
                    # the document without them; nothing of its content is lost
                    repairs.append(f"document-properties stream '{_short(name[1:])}' is "
                                   "truncated: left out")
                    continue
                # LibreOffice reads what the sector chain holds; so do the stages after
                # this one (a content stream too damaged for them is refused there)
                repairs.append(f"stream '{_short(name)}' is truncated: its {len(data)} "
                               "readable bytes kept")
            child = Node(name=name, is_storage=False, data=data, clsid=_clsid(kid.clsid),
                         state=kid.dwUserFlags)
        else:
            # a damaged type byte: LibreOffice skips the entry; its content is not delivered
            repairs.append(f"entry '{_short(name)}' of unknown type {kid.entry_type} left out")
            continue
        node.children.append(child)


def _name(entry: Any) -> str:
    raw: bytes = entry.name_utf16
    return raw.decode("utf-16-le", "surrogatepass")


def _clsid(text: str) -> bytes:
    return uuid.UUID(text).bytes_le if text else bytes(16)


# ------------------------------------------------------------------------------ writing


def _key(name: str) -> tuple[int, list[int]]:
    units = name.encode("utf-16-le", "surrogatepass")
    upper = "".join(ch.upper() if len(ch.upper()) == 1 else ch for ch in name)
    up = upper.encode("utf-16-le", "surrogatepass")
    if len(up) != len(units):
        up = units
    return len(units), list(struct.unpack(f"<{len(up) // 2}H", up))


@dataclass(eq=False)
class _Dir:
    node: Node
    left: int = NOSTREAM
    right: int = NOSTREAM
    child: int = NOSTREAM
    color: int = _BLACK
    start: int = ENDOFCHAIN
    size: int = 0


def _tree(ids: list[int], dirs: list[_Dir], red_depth: int, depth: int = 0) -> int:
    """Balanced tree over sorted ``ids``; returns the root id."""
    if not ids:
        return NOSTREAM
    mid = (len(ids) - 1) // 2
    me = dirs[ids[mid]]
    me.color = _RED if depth == red_depth else _BLACK
    me.left = _tree(ids[:mid], dirs, red_depth, depth + 1)
    me.right = _tree(ids[mid + 1:], dirs, red_depth, depth + 1)
    return ids[mid]


def _flatten(root: Node) -> list[_Dir]:
    dirs = [_Dir(root)]
    todo = [0]
    while todo:
        parent = dirs[todo.pop(0)]
        kids = sorted(parent.node.children, key=lambda n: _key(n.name))
        for a, b in itertools.pairwise(kids):
            if _key(a.name) == _key(b.name):
                raise ValueError(f"duplicate name {a.name!r} in one storage")
        ids = []
        for kid in kids:
            if len(kid.name.encode("utf-16-le", "surrogatepass")) > 62 or not kid.name:
                raise ValueError(f"invalid entry name {kid.name!r}")
            dirs.append(_Dir(kid))
            ids.append(len(dirs) - 1)
            if kid.is_storage:
                todo.append(len(dirs) - 1)
        n = len(ids)
        # nodes at depth floor(log2(n+1)) form the incomplete last level -> red
        parent.child = _tree(ids, dirs, red_depth=(n + 1).bit_length() - 1)
    return dirs


def _chain(fat: list[int], start: int, count: int) -> None:
    for i in range(count - 1):
        fat[start + i] = start + i + 1
    fat[start + count - 1] = ENDOFCHAIN


def write(root: Node) -> bytes:
    """Serialize the tree as a version-3 compound file."""
    dirs = _flatten(root)
    # mini stream: every stream below the cut-off, 64-byte aligned
    mini = bytearray()
    minifat: list[int] = []
    big: list[_Dir] = []
    for d in dirs[1:]:
        if d.node.is_storage:
            d.start = 0
            continue
        size = len(d.node.data)
        d.size = size
        if size == 0:
            d.start = ENDOFCHAIN
        elif size < CUTOFF:
            count = -(-size // MINI_SECTOR)
            d.start = len(minifat)
            minifat.extend([0] * count)
            _chain(minifat, d.start, count)
            mini += d.node.data + bytes(count * MINI_SECTOR - size)
        else:
            big.append(d)
    n_mini = -(-len(mini) // SECTOR)
    n_dir = -(-len(dirs) // 4)
    n_minifat = -(-len(minifat) // _PER_SECTOR)
    n_data = n_mini + sum(-(-d.size // SECTOR) for d in big) + n_dir + n_minifat
    n_fat, n_difat = 1, 0
    while True:
        n_difat = max(0, -(-(n_fat - _HEADER_DIFAT) // (_PER_SECTOR - 1)))
        need = -(-(n_data + n_fat + n_difat) // _PER_SECTOR)
        if need <= n_fat:
            break
        n_fat = need
    total = n_data + n_fat + n_difat
    fat = [FREESECT] * (n_fat * _PER_SECTOR)
    body: list[bytes] = []
    pos = 0

    def place(blob: bytes, count: int) -> int:
        nonlocal pos
        start = pos
        if count:
            _chain(fat, start, count)
            body.append(blob + bytes(count * SECTOR - len(blob)))
            pos += count
        return start if count else ENDOFCHAIN

    root_dir = dirs[0]
    root_dir.start = place(bytes(mini), n_mini)
    root_dir.size = len(mini)
    for d in big:
        d.start = place(d.node.data, -(-d.size // SECTOR))
    dir_start = pos
    dir_bytes = b"".join(_entry(d, i == 0) for i, d in enumerate(dirs))
    dir_bytes += _empty_entry() * (n_dir * 4 - len(dirs))
    place(dir_bytes, n_dir)
    minifat_start = place(_u32s(minifat + [FREESECT] * (n_minifat * _PER_SECTOR - len(minifat))),
                          n_minifat)
    fat_sectors = list(range(pos, pos + n_fat))
    for s in fat_sectors:
        fat[s] = FATSECT
    difat_sectors = list(range(pos + n_fat, pos + n_fat + n_difat))
    for s in difat_sectors:
        fat[s] = DIFSECT
    body.append(_u32s(fat))
    rest = fat_sectors[_HEADER_DIFAT:]
    for i, _ in enumerate(difat_sectors):
        part = rest[i * (_PER_SECTOR - 1):(i + 1) * (_PER_SECTOR - 1)]
        part += [FREESECT] * (_PER_SECTOR - 1 - len(part))
        nxt = difat_sectors[i + 1] if i + 1 < len(difat_sectors) else ENDOFCHAIN
        body.append(_u32s([*part, nxt]))
    head_difat = fat_sectors[:_HEADER_DIFAT]
    head_difat += [FREESECT] * (_HEADER_DIFAT - len(head_difat))
    header = (MAGIC + bytes(16) + struct.pack("<HHHHH", 0x3E, 3, 0xFFFE, 9, 6) + bytes(6)
              + struct.pack("<IIIIIIIII", 0, n_fat, dir_start, 0, CUTOFF,
                            minifat_start if n_minifat else ENDOFCHAIN, n_minifat,
                            difat_sectors[0] if difat_sectors else ENDOFCHAIN, n_difat)
              + _u32s(head_difat))
    out = header + b"".join(body)
    if len(out) != SECTOR * (1 + total):
        raise AssertionError("compound file layout is inconsistent")
    return out


def _u32s(values: list[int]) -> bytes:
    return struct.pack(f"<{len(values)}I", *values)


def _entry(d: _Dir, is_root: bool) -> bytes:
    node = d.node
    raw = node.name.encode("utf-16-le", "surrogatepass")
    kind = _ROOT if is_root else (_STORAGE if node.is_storage else _STREAM)
    if is_root:
        ctime, mtime = 0, node.mtime
    elif node.is_storage:
        ctime, mtime = node.ctime, node.mtime
    else:
        ctime = mtime = 0
    clsid = node.clsid if node.is_storage else bytes(16)
    return struct.pack("<64sHBBIII16sIQQIII", raw + b"\0\0", len(raw) + 2, kind, d.color,
                       d.left, d.right, d.child if node.is_storage else NOSTREAM, clsid,
                       node.state, ctime, mtime, d.start, d.size, 0)


def _empty_entry() -> bytes:
    return struct.pack("<64sHBBIII16sIQQIII", b"", 0, 0, 0, NOSTREAM, NOSTREAM, NOSTREAM,
                       bytes(16), 0, 0, 0, 0, 0, 0)

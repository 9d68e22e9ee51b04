"""Sealed files: AES-256-GCM in segments, for quarantined originals and their metadata.

Format (all integers big-endian)::

    header   "SKSL" | version u8 (1) | reserved u8 (0) | segment size u32 |
             key id (8 bytes) | salt (16 bytes) | nonce prefix (8 bytes)      = 42 bytes
    segment  AES-GCM(ciphertext of up to `segment size` plaintext bytes) + 16-byte tag
    ...      every segment but the last holds exactly `segment size` bytes

- Each file gets its own AES key, HKDF-SHA256(master key, salt, info = purpose + job id),
  so nonces never repeat across files however many files one master key seals, and a
  file sealed for one entry or purpose (original, meta, report) cannot be opened as
  another (swapping files between entries is detected).
- Segment ``i`` uses nonce = prefix | i (u32); its associated data is the whole header,
  the purpose, the job id, ``i`` and a final-segment flag. Reordered, dropped, duplicated
  or modified segments fail authentication, and so does a file cut at a segment boundary
  (its new last segment was not sealed as final).
- The key id is the first 8 bytes of SHA-256 over a label and the key: it tells which
  key sealed a file without revealing it. Rotation: create a new ``key_file``, keep the
  previous one and list it under ``old_keys`` (see gateway/config.py); files are opened
  with whichever key matches their header, and everything written (new entries, updated
  metadata) uses the current key.
- Streaming: sealing and opening read and write one segment at a time (1 MiB by default),
  so a 50 MB original is never held in memory. ``open_into`` writes the plaintext beside
  its destination and renames it into place only once every segment authenticated: a
  tampered file never yields partial plaintext.

Key files hold exactly 32 random bytes. ``load_keyring`` creates a missing one (mode 0600,
O_EXCL, fsynced) when asked to, and refuses, with a configuration error naming the file,
one that group or others may access, that is not a regular file or has the wrong length.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import os
import secrets
import stat
import struct
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Protocol

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from gateway.errors import ConfigError, SekishoError
from gateway.store import durable

MAGIC = b"SKSL"
VERSION = 1
KEY_SIZE = 32
TAG = 16
SEGMENT = 1024 * 1024
_HEADER = struct.Struct(">4sBBI8s16s8s")
HEADER_SIZE = _HEADER.size


class KeyFileError(ConfigError):
    """The key file is missing, unsafe or malformed (the daemon refuses to start)."""


class SealError(SekishoError):
    """A sealed file cannot be opened: unknown key, not sealed, or failed authentication."""


class UnknownKey(SealError):
    pass


class Tampered(SealError):
    pass


def key_id(key: bytes) -> str:
    return hashlib.sha256(b"sekisho quarantine key id\0" + key).hexdigest()[:16]


@dataclass(frozen=True, slots=True)
class Keyring:
    """The current key (seals everything new) and older keys (still open old files)."""

    current: bytes
    old: tuple[bytes, ...] = ()

    def __post_init__(self) -> None:
        for k in (self.current, *self.old):
            if len(k) != KEY_SIZE:
                raise ValueError("keys are 32 bytes")

    @property
    def current_id(self) -> str:
        return key_id(self.current)

    def find(self, kid: str) -> bytes | None:
        for k in (self.current, *self.old):
            if key_id(k) == kid:
                return k
        return None


def load_keyring(key_file: Path, old_keys: Sequence[Path] = (), *,
                 create: bool = False) -> Keyring:
    """Read ``key_file`` (creating it when ``create`` and missing) and the ``old_keys``."""
    if create and not key_file.exists():
        _create_key(key_file)
    return Keyring(_read_key(key_file), tuple(_read_key(p) for p in old_keys))


def _create_key(path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        durable.write(path, secrets.token_bytes(KEY_SIZE), mode=0o600)
    except FileExistsError:
        return  # another process created it first; _read_key checks it
    except OSError as exc:
        raise KeyFileError(f"{path}: cannot create the key file ({exc.strerror})") from None
    durable.fsync_dir(path.parent)


def _read_key(path: Path) -> bytes:
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
    except FileNotFoundError:
        raise KeyFileError(f"{path}: key file does not exist (`sekisho serve` creates "
                           "it on first start)") from None
    except OSError as exc:
        raise KeyFileError(f"{path}: cannot read the key file ({exc.strerror})") from None
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise KeyFileError(f"{path}: key file is not a regular file")
        if st.st_mode & 0o077:
            raise KeyFileError(f"{path}: key file is accessible by group or others (mode "
                               f"{stat.S_IMODE(st.st_mode):04o}); run chmod 600 on it")
        data = os.read(fd, KEY_SIZE + 1)
    finally:
        os.close(fd)
    if len(data) != KEY_SIZE:
        raise KeyFileError(f"{path}: key file must hold exactly {KEY_SIZE} bytes "
                           f"(it holds {st.st_size})")
    return data


# ------------------------------------------------------------------------ sealing


class Readable(Protocol):
    """What opening reads from: a file, or a part of one."""

    def read(self, n: int = -1, /) -> bytes: ...


@dataclass(frozen=True, slots=True)
class Sealed:
    """What sealing learnt about the plaintext on the way."""

    size: int
    sha256: str


class _Cipher:
    def __init__(self, header: bytes, master: bytes, purpose: str, job_id: str) -> None:
        _, _, _, self.segment, _, salt, self.prefix = _HEADER.unpack(header)
        context = f"{purpose}\0{job_id}".encode()
        sub = HKDF(algorithm=hashes.SHA256(), length=KEY_SIZE, salt=salt,
                   info=b"sekisho sealed v1\0" + context).derive(master)
        self.aead = AESGCM(sub)
        self.bound = header + b"\0" + context

    def _nonce_aad(self, index: int, final: bool) -> tuple[bytes, bytes]:
        if index >= 2**32:
            raise SealError("sealed file has too many segments")
        return (self.prefix + struct.pack(">I", index),
                self.bound + struct.pack(">IB", index, 1 if final else 0))

    def seal(self, index: int, final: bool, data: bytes) -> bytes:
        nonce, aad = self._nonce_aad(index, final)
        return self.aead.encrypt(nonce, data, aad)

    def open(self, index: int, final: bool, data: bytes) -> bytes | None:
        nonce, aad = self._nonce_aad(index, final)
        try:
            return self.aead.decrypt(nonce, data, aad)
        except InvalidTag:
            return None


def _new_header(kid: str, segment: int) -> bytes:
    return _HEADER.pack(MAGIC, VERSION, 0, segment, bytes.fromhex(kid),
                        secrets.token_bytes(16), secrets.token_bytes(8))


def seal_stream(src: BinaryIO, dst: BinaryIO, keys: Keyring, purpose: str, job_id: str,
                *, segment: int = SEGMENT) -> Sealed:
    """Seal everything ``src`` yields into ``dst``; one segment in memory at a time."""
    header = _new_header(keys.current_id, segment)
    cipher = _Cipher(header, keys.current, purpose, job_id)
    dst.write(header)
    digest, size, index = hashlib.sha256(), 0, 0
    chunk = src.read(segment)
    while True:
        nxt = src.read(segment) if len(chunk) == segment else b""
        final = not nxt
        digest.update(chunk)
        size += len(chunk)
        dst.write(cipher.seal(index, final, chunk))
        if final:
            return Sealed(size, digest.hexdigest())
        chunk, index = nxt, index + 1


def seal_file(src: Path, dst: Path, keys: Keyring, purpose: str, job_id: str,
              *, segment: int = SEGMENT) -> Sealed:
    """Seal ``src`` into a new file ``dst`` (mode 0600, fsynced; the directory is not)."""
    with open(src, "rb") as fin:
        return _seal_into(fin, dst, keys, purpose, job_id, segment)


def seal(data: bytes, keys: Keyring, purpose: str, job_id: str) -> bytes:
    """The sealed form of a small document (metadata, report), in memory."""
    out = io.BytesIO()
    seal_stream(io.BytesIO(data), out, keys, purpose, job_id)
    return out.getvalue()


def _seal_into(src: BinaryIO, dst: Path, keys: Keyring, purpose: str, job_id: str,
               segment: int) -> Sealed:
    with durable.created(dst, mode=0o600) as fd, \
            os.fdopen(fd, "wb", closefd=False) as fout:
        return seal_stream(src, fout, keys, purpose, job_id, segment=segment)


def open_stream(src: Readable, keys: Keyring, purpose: str, job_id: str,
                *, name: str = "sealed file") -> Iterator[bytes]:
    """Yield the plaintext of ``src`` segment by segment, each one authenticated.

    Raises SealError naming the first segment that fails. A caller that writes the
    pieces out must discard them on error (``open_into`` does).
    """
    header = src.read(HEADER_SIZE)
    if len(header) < HEADER_SIZE or header[:4] != MAGIC:
        raise SealError(f"{name}: not a sealed file (bad or missing header)")
    _, version, _, segment, kid_raw, _, _ = _HEADER.unpack(header)
    if version != VERSION or not 0 < segment <= 64 * 1024 * 1024:
        raise SealError(f"{name}: unsupported sealed file (version {version})")
    kid = kid_raw.hex()
    master = keys.find(kid)
    if master is None:
        raise UnknownKey(f"{name}: sealed with key {kid}, which is neither key_file "
                         f"({keys.current_id}) nor one of old_keys (wrong key file?)")
    cipher = _Cipher(header, master, purpose, job_id)
    size = segment + TAG
    chunk = src.read(size)
    if not chunk:
        raise Tampered(f"{name}: truncated: no data after the header")
    index = 0
    while True:
        nxt = src.read(size) if len(chunk) == size else b""
        final = not nxt
        plain = cipher.open(index, final, chunk)
        if plain is None:
            raise Tampered(_why(cipher, index, final, chunk, name, purpose, job_id))
        yield plain
        if final:
            return
        chunk, index = nxt, index + 1


def _why(cipher: _Cipher, index: int, final: bool, chunk: bytes, name: str,
         purpose: str, job_id: str) -> str:
    if final and cipher.open(index, False, chunk) is not None:
        return f"{name}: truncated after segment {index} (the last segment is missing)"
    if index == 0:
        return (f"{name}: segment 0 fails authentication: modified, or not the {purpose} "
                f"of {job_id} (swapped between entries?)")
    return (f"{name}: segment {index} fails authentication: modified, reordered or "
            "truncated")


def open_into(fin: Readable, dest: Path, keys: Keyring, purpose: str, job_id: str,
              *, name: str = "sealed file") -> Sealed:
    """Decrypt the sealed document read from ``fin`` (to its end) to ``dest`` (mode
    0600); ``dest`` appears only if all is authentic, replacing an existing one.
    Returns the plaintext's size and sha256."""
    tmp = dest.with_name(f".{dest.name[:60]}.{secrets.token_hex(4)}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    size, digest = 0, hashlib.sha256()
    try:
        with os.fdopen(fd, "wb", closefd=False) as fout:
            for piece in open_stream(fin, keys, purpose, job_id, name=name):
                fout.write(piece)
                digest.update(piece)
                size += len(piece)
            fout.flush()
        os.fsync(fd)
        os.close(fd)
        fd = -1
        os.replace(tmp, dest)
    except BaseException:
        if fd >= 0:
            os.close(fd)
        tmp.unlink(missing_ok=True)
        raise
    return Sealed(size, digest.hexdigest())


def open_data(data: bytes, keys: Keyring, purpose: str, job_id: str, *,
              name: str = "sealed document", limit: int = 64 * 1024 * 1024) -> bytes:
    """Decrypt a small sealed document (metadata, report) held in memory."""
    out = bytearray()
    for piece in open_stream(io.BytesIO(data), keys, purpose, job_id, name=name):
        out += piece
        if len(out) > limit:
            raise SealError(f"{name}: larger than {limit} bytes")
    return bytes(out)


def shred(path: Path) -> None:
    """Remove a sealed file: overwrite its header (salt, nonce prefix) first, then unlink.

    Without the salt the per-file key cannot be derived, even with the master key, from
    whatever blocks of the old file survive on a file system that overwrites in place.
    Copy-on-write file systems, SSD remapping and backups keep old blocks: there the
    guarantee rests on the master key alone.
    """
    with contextlib.suppress(FileNotFoundError):
        fd = os.open(path, os.O_WRONLY)
        try:
            os.write(fd, secrets.token_bytes(HEADER_SIZE))
            os.fsync(fd)
        finally:
            os.close(fd)
    path.unlink(missing_ok=True)

"""Durable file writes: data and directory entries reach the disk before we say so.

``write`` creates a file and fsyncs it; ``replace`` writes beside the target and
renames over it; ``exchange`` swaps two names (a directory replaced without a moment
where it is missing); ``fsync_dir`` makes creations, renames and removals inside a
directory durable. Every promise Sekisho makes to an SMTP client ("250") or to
an auditor (quarantine) rests on these.

``GroupSync`` is the group commit of one directory: threads that renamed
something into it at about the same time share one fsync of it, and each still
returns only after an fsync that *started* after its own rename.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import functools
import os
import threading
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

_AT_FDCWD = -100
_RENAME_EXCHANGE = 2


def fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class NoExchange(OSError):
    """The system or file system cannot swap two names atomically."""


@functools.cache
def _renameat2() -> Callable[..., int] | None:
    try:
        fn = ctypes.CDLL(None, use_errno=True).renameat2
    except (AttributeError, OSError):
        return None
    fn.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p,
                   ctypes.c_uint]
    fn.restype = ctypes.c_int
    return fn


def exchange(a: Path, b: Path) -> None:
    """Swap the names ``a`` and ``b`` in one step (Linux renameat2 RENAME_EXCHANGE):
    at no moment is either name missing. Raises NoExchange where that is not
    supported (the caller falls back to two renames), OSError otherwise. Not durable
    until the directory is fsynced."""
    fn = _renameat2()
    if fn is None:
        raise NoExchange(errno.ENOSYS, "renameat2 is not available")
    if fn(_AT_FDCWD, os.fsencode(a), _AT_FDCWD, os.fsencode(b), _RENAME_EXCHANGE) == 0:
        return
    err = ctypes.get_errno()
    if err in (errno.ENOSYS, errno.EINVAL, errno.EOPNOTSUPP):
        raise NoExchange(err, os.strerror(err), str(a))
    raise OSError(err, os.strerror(err), str(a))


def fsync_file(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


@contextlib.contextmanager
def created(path: Path, *, mode: int = 0o640) -> Iterator[int]:
    """A new file at ``path`` (it must not exist), open for reading and writing: its
    descriptor, fsynced and closed when the block ends; on an error, gone. The
    directory is not fsynced."""
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_EXCL, mode)
    try:
        yield fd
        os.fsync(fd)
    except BaseException:
        os.close(fd)
        path.unlink(missing_ok=True)
        raise
    os.close(fd)


def write(path: Path, data: bytes | Sequence[bytes], *, mode: int = 0o640) -> None:
    """Create ``path`` (it must not exist) with ``data``, fsynced. The directory is not."""
    with created(path, mode=mode) as fd:
        for chunk in (data,) if isinstance(data, bytes) else data:
            view = memoryview(chunk)
            while view:
                n = os.write(fd, view)
                view = view[n:]


def replace(path: Path, data: bytes, *, mode: int = 0o640) -> None:
    """Atomically replace ``path`` with ``data``: tmp -> fsync -> rename -> fsync dir."""
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.unlink(missing_ok=True)
    write(tmp, data, mode=mode)
    os.replace(tmp, path)
    fsync_dir(path.parent)


class GroupSync:
    """fsync of one directory, shared by the threads that ask for it at the same time.

    A caller's changes are durable when ``sync`` returns: it waits for an fsync
    that began after it called ``sync`` (a running one may have missed its
    rename), and while one fsync runs, every caller arriving meanwhile is
    served by the next one.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self._cond = threading.Condition()
        self._asked = 0      # tickets handed out
        self._synced = 0     # every ticket up to this one is durable
        self._running = False
        self.fsyncs = 0      # for tests and the benchmark: how many were needed

    def sync(self) -> None:
        with self._cond:
            self._asked += 1
            ticket = self._asked
            while self._synced < ticket:
                if self._running:
                    self._cond.wait()
                    continue
                self._running = True
                covered = self._asked  # everyone who asked before this fsync starts
                ok = False
                self._cond.release()
                try:
                    fsync_dir(self.path)
                    ok = True
                finally:
                    self._cond.acquire()
                    self._running = False
                    if ok:
                        self._synced = max(self._synced, covered)
                        self.fsyncs += 1
                    self._cond.notify_all()

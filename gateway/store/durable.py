"""Durable file writes: data and directory entries reach the disk before we say so.

``write`` creates a file and fsyncs it; ``replace`` writes beside the target and
renames over it; ``fsync_dir`` makes creations, renames and removals inside a
directory durable. Every promise Sekisho makes to an SMTP client ("250") or to
an auditor (quarantine) rests on these.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path


def fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def fsync_file(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write(path: Path, data: bytes | Sequence[bytes]) -> None:
    """Create ``path`` (it must not exist) with ``data``, fsynced. The directory is not."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o640)
    try:
        for chunk in (data,) if isinstance(data, bytes) else data:
            view = memoryview(chunk)
            while view:
                n = os.write(fd, view)
                view = view[n:]
        os.fsync(fd)
    except BaseException:
        os.close(fd)
        path.unlink(missing_ok=True)
        raise
    os.close(fd)


def replace(path: Path, data: bytes) -> None:
    """Atomically replace ``path`` with ``data``: tmp -> fsync -> rename -> fsync dir."""
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.unlink(missing_ok=True)
    write(tmp, data)
    os.replace(tmp, path)
    fsync_dir(path.parent)

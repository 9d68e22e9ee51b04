"""The spool: messages between "250" and delivery (DESIGN.md §6).

One directory per message, holding ``message.eml`` (as received, with our
``Received:`` on top), ``envelope.json`` and, once sanitized, ``out-N.eml``::

    spool/tmp/<qid>/        being written; cleared at start-up
    spool/incoming/<qid>/   received (queue mode), waiting for the pipeline
    spool/active/<qid>/     claimed: being sanitized or delivered
    spool/deferred/<qid>/   waiting for the next delivery attempt

A message enters by being written in ``tmp/`` (each file fsynced, then the
directory), renamed into place, and the destination directory fsynced: only
then does the client get 250. Claiming is a rename (Mailman's switchboard);
moves between ``incoming``, ``active`` and ``deferred`` are not fsynced because
start-up recovery puts whatever it finds in ``active/`` back by its envelope
state. Removal is a rename into ``tmp/`` and an fsync, so a delivered message
does not come back after a power cut.

A message being received is a ``Draft``: its bytes are kept in memory up to
``SPILL`` bytes, then written on to ``tmp/<qid>/message.eml`` as they arrive,
so a large message never sits in memory. ``create`` takes the draft where it
is: a spilled draft's file is fsynced and renamed with its directory, not
copied. Concurrent ``create`` and ``remove`` calls share the fsync of their
destination (or source) directory (``durable.GroupSync``): each still returns
only once its own rename is durable.

Methods are blocking (fsync): the asyncio side calls them through
``asyncio.to_thread``. A draft's ``write`` is not: it only appends to the page
cache, and is called from the event loop while DATA arrives.
"""

from __future__ import annotations

import os
import random
import secrets
import shutil
import threading
import time
from collections.abc import Sequence
from pathlib import Path

import structlog

from gateway.store import durable
from gateway.store.envelope import Envelope, State

log = structlog.get_logger("sekisho.spool")

TMP, INCOMING, ACTIVE, DEFERRED, CORRUPT = "tmp", "incoming", "active", "deferred", "corrupt"
MESSAGE, ENVELOPE = "message.eml", "envelope.json"
FREE_TTL = 0.5  # seconds a statvfs reading is trusted (adjusted by what we write meanwhile)
SPILL = 256 * 1024  # a draft larger than this goes to disk while it is being received


class SpoolFull(Exception):
    """No room for a message: the reply says why (452 4.3.1)."""

    def __init__(self, reply: str) -> None:
        super().__init__(reply)
        self.reply = reply


class Draft:
    """A message as it arrives: in memory up to ``spill`` bytes, then in its spool file.

    The file is ``<tmp>/<qid>/message.eml``, the entry's own directory in ``tmp/``.

    ``write`` appends; ``create`` (of the spool that made the draft) commits it;
    ``discard`` removes whatever was written unless it was committed. Not
    thread-safe: one writer, then one committer.
    """

    def __init__(self, tmp: Path, qid: str, spill: int = SPILL) -> None:
        self.qid = qid
        self.size = 0
        self.dir = tmp / qid
        self._spill = spill
        self._chunks: list[bytes] | None = []
        self._fd = -1
        self.committed = False

    @property
    def spilled(self) -> bool:
        return self._chunks is None

    def write(self, data: bytes) -> None:
        """Append ``data``; OSError (disk full) when it cannot be written."""
        if not data:
            return
        self.size += len(data)
        if self._chunks is not None:
            self._chunks.append(data)
            if self.size <= self._spill:
                return
            chunks, self._chunks = self._chunks, None
            self.dir.mkdir()
            self._fd = os.open(self.dir / MESSAGE, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o640)
        else:
            chunks = [data]
        for chunk in chunks:
            view = memoryview(chunk)
            while view:
                view = view[os.write(self._fd, view):]

    def chunks(self) -> list[bytes]:
        """The bytes of a draft still in memory."""
        assert self._chunks is not None, "spilled to disk"
        return self._chunks

    def head(self, n: int) -> bytes:
        """The first ``n`` bytes (read back from disk when spilled)."""
        if self._chunks is not None:
            return b"".join(self._chunks)[:n]
        return os.pread(self._fd, n, 0)

    def read(self) -> bytes:
        """Everything written (for tests and small drafts)."""
        return self.head(self.size)

    def finish(self) -> None:
        """fsync and close a spilled draft's file (called by the committer)."""
        if self._fd >= 0:
            os.fsync(self._fd)
            os.close(self._fd)
            self._fd = -1

    def discard(self) -> None:
        """Drop what was written, unless it was committed; safe to call twice."""
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1
        if self._chunks is not None:
            self._chunks.clear()
        elif not self.committed:
            shutil.rmtree(self.dir, ignore_errors=True)


_qid_random = random.Random(secrets.randbits(64))  # noqa: S311 - unique, not secret


def new_qid() -> str:
    """A queue id: sortable by arrival time, unique within the spool."""
    return f"{time.time_ns() // 1000:014X}{_qid_random.getrandbits(24):06X}"


class Spool:
    def __init__(self, root: Path, *, quota: int = 0, min_free: int = 0) -> None:
        self.root = root
        self.quota = quota
        self.min_free = min_free
        for d in (TMP, INCOMING, ACTIVE, DEFERRED, CORRUPT):
            (root / d).mkdir(parents=True, exist_ok=True)
        self._dir_sync = {d: durable.GroupSync(root / d) for d in (INCOMING, ACTIVE, DEFERRED)}
        self._sizes: dict[str, int] = {}
        self._used = 0
        self._lock = threading.Lock()
        self._free_bytes = self._written = 0
        self._free_at = -FREE_TTL - 1.0

    # ------------------------------------------------------------------ capacity

    @property
    def used(self) -> int:
        return self._used

    def space_problem(self, size: int) -> str | None:
        """Why a message of ``size`` bytes cannot be taken now, or None."""
        if self.quota and self._used + size > self.quota:
            return "452 4.3.1 Spool quota exceeded, try again later"
        if self._free() - size < self.min_free:
            return "452 4.3.1 Insufficient system storage, try again later"
        return None

    def _free(self) -> int:
        """Free bytes for us, from statvfs at most every FREE_TTL s, minus what we wrote since."""
        now = time.monotonic()
        with self._lock:
            if now - self._free_at > FREE_TTL:
                st = os.statvfs(self.root)
                self._free_bytes, self._free_at, self._written = \
                    st.f_bavail * st.f_frsize, now, 0
            return self._free_bytes - self._written

    def _account(self, qid: str, size: int | None) -> None:
        with self._lock:
            self._used -= self._sizes.pop(qid, 0)
            if size is not None:
                self._sizes[qid] = size
                self._used += size
                self._written += size

    def measure(self, qid: str, where: str = ACTIVE) -> None:
        """Re-count an entry's bytes (after sanitizing wrote its outputs)."""
        self._account(qid, _du(self.root / where / qid))

    # ------------------------------------------------------------------ entries

    def path(self, qid: str, where: str) -> Path:
        return self.root / where / qid

    def draft(self, qid: str, spill: int = SPILL) -> Draft:
        """A new message to be written by its receiver, then committed by ``create``."""
        return Draft(self.root / TMP, qid, spill)

    def create(self, env: Envelope, data: bytes | Sequence[bytes] | Draft,
               where: str = INCOMING) -> Path:
        """Write a new entry durably; raises SpoolFull or OSError (nothing left behind).

        ``data`` is the message (bytes, chunks, or a draft of this spool with the
        same qid, which is then committed or, on failure, discarded).
        """
        draft: Draft | None = None
        body: bytes | Sequence[bytes] = b""
        if isinstance(data, Draft):
            draft = data
            assert draft.qid == env.qid and draft.dir.parent == self.root / TMP
            size = draft.size
        else:
            body = data
            size = len(data) if isinstance(data, bytes) else sum(len(c) for c in data)
        tmp = self.root / TMP / env.qid
        try:
            problem = self.space_problem(size)
            if problem:
                raise SpoolFull(problem)
            if draft is not None and draft.spilled:
                draft.finish()
            else:
                tmp.mkdir()
                durable.write(tmp / MESSAGE, body if draft is None else draft.chunks())
            durable.write(tmp / ENVELOPE, env.to_json())
            durable.fsync_dir(tmp)
            dest = self.root / where / env.qid
            os.rename(tmp, dest)
            if draft is not None:
                draft.committed = True
        except BaseException:
            if draft is not None:
                draft.discard()
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        self._sync(where)
        self._account(env.qid, size + 1024)
        return dest

    def _sync(self, where: str) -> None:
        """The rename into (or out of) ``where`` is durable once this returns."""
        group = self._dir_sync.get(where)
        if group is None:
            durable.fsync_dir(self.root / where)
        else:
            group.sync()

    @staticmethod
    def load(entry: Path) -> Envelope:
        return Envelope.from_json((entry / ENVELOPE).read_bytes())

    @staticmethod
    def save(entry: Path, env: Envelope) -> None:
        durable.replace(entry / ENVELOPE, env.to_json())

    def move(self, qid: str, frm: str, to: str) -> Path | None:
        """Rename an entry between queues; None when it is not there (claimed elsewhere)."""
        dest = self.root / to / qid
        try:
            os.rename(self.root / frm / qid, dest)
        except FileNotFoundError:
            return None
        return dest

    def remove(self, qid: str, frm: str = ACTIVE) -> None:
        """Delete an entry for good (delivered, bounced, or refused in through mode)."""
        gone = self.root / TMP / f"{qid}.done"
        try:
            os.rename(self.root / frm / qid, gone)
        except FileNotFoundError:
            return
        self._sync(frm)
        shutil.rmtree(gone, ignore_errors=True)
        self._account(qid, None)

    # ------------------------------------------------------------------ start-up

    def recover(self) -> tuple[list[str], list[tuple[float, str]]]:
        """Clear tmp/, put active/ back; return incoming qids and (next_attempt, qid)."""
        for leftover in (self.root / TMP).iterdir():
            if leftover.is_dir():
                shutil.rmtree(leftover, ignore_errors=True)
            else:
                leftover.unlink(missing_ok=True)
        for entry in sorted((self.root / ACTIVE).iterdir()):
            env = self._readable(entry)
            if env is None:
                continue
            if env.mode == "through" and not env.accepted:
                log.info("spool.recover.drop", qid=env.qid,
                         why="through mode, never acknowledged: the client retries")
                self.remove(env.qid, ACTIVE)
            elif env.state is State.RECEIVED:
                self.move(env.qid, ACTIVE, INCOMING)
            else:
                self.move(env.qid, ACTIVE, DEFERRED)
        incoming = []
        for entry in sorted((self.root / INCOMING).iterdir()):
            if self._readable(entry) is not None:
                incoming.append(entry.name)
                self._account(entry.name, _du(entry))
        deferred = []
        for entry in (self.root / DEFERRED).iterdir():
            env = self._readable(entry)
            if env is not None:
                deferred.append((env.next_attempt, entry.name))
                self._account(entry.name, _du(entry))
        log.info("spool.recovered", incoming=len(incoming), deferred=len(deferred),
                 bytes=self._used)
        return incoming, sorted(deferred)

    def _readable(self, entry: Path) -> Envelope | None:
        try:
            return self.load(entry)
        except (OSError, ValueError, TypeError, KeyError) as exc:
            log.error("spool.corrupt", entry=entry.name, error=type(exc).__name__)
            os.rename(entry, self.root / CORRUPT / f"{entry.name}.{secrets.token_hex(2)}")
            return None


def _du(path: Path) -> int:
    total = 0
    try:
        for f in path.iterdir():
            total += f.stat().st_size
    except OSError:
        pass
    return total

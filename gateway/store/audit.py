"""The audit log: one hash-chained JSON line per job and per admin action (DESIGN.md §6).

Every line is a JSON object::

    {"seq":12,"ts":"2026-11-26T01:15:00.123Z","event":"job",...fields...,
     "prev":"<hash of line 11>","hash":"<sha256 of this line without hash>"}

``hash`` is SHA-256 over the canonical JSON of the line without ``hash`` (keys sorted,
no spaces, UTF-8, no NaN); ``prev`` of the first line is 64 zeros. ``seq`` counts from 1.

Appends are thread-safe (a lock) and safe between processes (``flock`` on the log: the
daemon and ``sekisho quarantine ...`` append to one log): the writer re-reads the last
line whenever another process appended since. Each line is written with one
``write(2)`` in append mode and fsynced before ``record`` returns; then the *anchor*
(``<log>.anchor``: the last seq and hash, one fixed-size record) is rewritten in place,
still under the ``flock``. ``verify`` compares the end of the log with the anchor, so
cutting lines off the end is detected too. A crash
between the line and the anchor leaves one line beyond the anchor, which is accepted; a
crash in the middle of a line leaves a partial line, which the next writer cuts off and
records as an ``audit.repair`` event. If the anchor is ahead of the log (lines were cut
off), the writer keeps chaining from the anchor, so the gap stays visible for good.

What this does not stop: anyone who can write both the log and the anchor can rewrite
the log wholesale, recomputing every hash, and ``verify`` will pass. Tamper evidence
against such an attacker needs a copy out of their reach: ship the lines as they are
written to syslog / a remote collector (journald forwarding, rsyslog over TLS), or
periodically record the anchor somewhere else (a ticket, a printed report, another
host). A keyed chain (HMAC with a key the attacker lacks) would be the next step; it is
not implemented.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import re
import threading
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import structlog

from gateway.errors import SekishoError
from gateway.store import durable

log = structlog.get_logger("sekisho.audit")

GENESIS = "0" * 64
RESERVED = frozenset({"seq", "ts", "event", "prev", "hash"})
_HEX64 = re.compile(r"[0-9a-f]{64}")
# The anchor: {"seq":N,"hash":"..."} padded with spaces to this size, ending in "\n".
# It must stay within the first 512-byte sector of the file (see _write_anchor).
ANCHOR_SIZE = 128


class AuditError(SekishoError):
    """The audit log cannot be appended to (its last line is unreadable)."""


def anchor_path(path: Path) -> Path:
    return path.with_name(path.name + ".anchor")


def canonical(line: dict[str, Any]) -> bytes:
    return json.dumps(line, sort_keys=True, ensure_ascii=False, separators=(",", ":"),
                      allow_nan=False).encode("utf-8")


def line_hash(line: dict[str, Any]) -> str:
    return hashlib.sha256(canonical({k: v for k, v in line.items() if k != "hash"})).hexdigest()


def utc_now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


class AuditLog:
    """Append-only, hash-chained JSON lines at ``path`` (anchor beside it)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.anchor = anchor_path(path)
        self._lock = threading.Lock()
        self._end = -1                  # log size after our last append; -1: unknown
        self._seq, self._hash = 0, GENESIS
        path.parent.mkdir(parents=True, exist_ok=True)

    def record(self, event: str, **fields: Any) -> None:
        """Append one line for ``event``, durably, chained to the previous line."""
        if not event:
            raise ValueError("an audit event needs a name")
        clash = RESERVED.intersection(fields)
        if clash:
            raise ValueError(f"audit fields may not be named {', '.join(sorted(clash))}")
        with self._lock:
            fd = os.open(self.path, os.O_RDWR | os.O_APPEND | os.O_CREAT, 0o640)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX)
                pending: list[tuple[str, dict[str, Any]]] = []
                end = os.fstat(fd).st_size
                if end != self._end:
                    dropped = self._resync(fd, end)
                    if dropped:
                        pending.append(("audit.repair", {"dropped_bytes": dropped,
                                                         "why": "partial last line"}))
                pending.append((event, fields))
                for name, data in pending:
                    self._append(fd, name, data)
                self._write_anchor()
            finally:
                os.close(fd)  # releases the flock

    def _append(self, fd: int, event: str, fields: dict[str, Any]) -> None:
        line: dict[str, Any] = {"seq": self._seq + 1, "ts": utc_now(), "event": event,
                                **fields, "prev": self._hash}
        line["hash"] = line_hash(line)
        data = json.dumps(line, ensure_ascii=False, separators=(",", ":"),
                          allow_nan=False).encode("utf-8") + b"\n"
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view):]
        os.fsync(fd)
        self._seq, self._hash = line["seq"], line["hash"]
        self._end = os.fstat(fd).st_size

    def _resync(self, fd: int, end: int) -> int:
        """Take the chain's head from the log's last line (or the anchor, if ahead).

        Cuts off a partial last line (a writer crashed mid-line); returns its length.
        """
        dropped = 0
        if end and os.pread(fd, 1, end - 1) != b"\n":
            cut = _last_newline(fd, end)
            dropped = end - cut
            os.ftruncate(fd, cut)
            os.fsync(fd)
            log.warning("audit.partial_line_dropped", path=str(self.path), bytes=dropped)
            end = cut
        seq, digest = 0, GENESIS
        if end:
            start = _last_newline(fd, end - 1)
            try:
                last = json.loads(os.pread(fd, end - start, start))
                seq, digest = int(last["seq"]), str(last["hash"])
            except (ValueError, KeyError, TypeError):
                raise AuditError(f"{self.path}: the last line is unreadable; run "
                                 "`sekisho audit verify`") from None
        anchored = read_anchor(self.anchor)
        if anchored is not None and anchored[0] > seq:
            log.warning("audit.behind_anchor", path=str(self.path), log_seq=seq,
                        anchor_seq=anchored[0])
            seq, digest = anchored
        self._seq, self._hash, self._end = seq, digest, end
        return dropped

    def _write_anchor(self) -> None:
        """Record the chain's head in the anchor; called with the log's flock held.

        The anchor is one file rewritten in place: creating a file per line (a temp file
        renamed over the anchor) cost more kernel time than the rest of ``record``. The
        record is ANCHOR_SIZE bytes written with one ``pwrite`` at offset 0, so it lies in
        the file's first 512-byte sector: a disk writes a sector all or nothing, and an
        overwrite of an allocated block of the same size changes no metadata, so after a
        crash the anchor holds the old record or the new one, never a mix. (A copy-on-write
        or data-journalling file system gives the same on its own.) An old anchor is still
        a valid one: the log extends it, and verify accepts one line beyond the anchor.
        Readers that do not hold the flock may race with the write; ``read_anchor`` reads
        until two reads agree.
        """
        record = _anchor_record(self._seq, self._hash)
        try:
            fd = os.open(self.anchor, os.O_RDWR)
        except FileNotFoundError:
            fd = -1
        if fd >= 0:
            try:
                if os.fstat(fd).st_size == len(record):
                    _pwrite_all(fd, record)
                    os.fsync(fd)
                    return
            finally:
                os.close(fd)
        self._replace_anchor(record)

    def _replace_anchor(self, record: bytes) -> None:
        """Put a new anchor file in place: the first one, or over an older format.

        Done once per log, so atomically and durably: a temp file fsynced and renamed,
        then the directory fsynced. An anchor that was never created (or a file of another
        size, grown or shrunk in place) could be left empty or half-written by a crash.
        """
        durable.replace(self.anchor, record)


def _anchor_record(seq: int, digest: str) -> bytes:
    data = json.dumps({"seq": seq, "hash": digest}, separators=(",", ":")).encode()
    # a seq of more than 80 digits would make it longer: it then is written whole, by
    # _replace_anchor each time, as its size differs from ANCHOR_SIZE
    return data.ljust(ANCHOR_SIZE - 1) + b"\n"


def _pwrite_all(fd: int, data: bytes) -> None:
    view, pos = memoryview(data), 0
    while pos < len(data):
        pos += os.pwrite(fd, view[pos:], pos)


def _last_newline(fd: int, end: int) -> int:
    """Offset just after the last b"\\n" before ``end`` (0 if none)."""
    pos = end
    while pos > 0:
        step = min(65536, pos)
        pos -= step
        i = os.pread(fd, step, pos).rfind(b"\n")
        if i >= 0:
            return pos + i + 1
    return 0


def read_anchor(path: Path) -> tuple[int, str] | None:
    """The anchor's (seq, hash); None if there is none. ValueError if it is unreadable."""
    try:
        raw = _read_settled(path)
    except FileNotFoundError:
        return None
    try:
        # the padded record, or a plain JSON line (the anchor's format before)
        data = json.loads(raw.strip())
        seq, digest = data["seq"], data["hash"]
    except (ValueError, KeyError, TypeError):
        raise ValueError(f"{path}: unreadable anchor") from None
    if (not isinstance(seq, int) or isinstance(seq, bool) or seq < 0
            or not isinstance(digest, str) or not _HEX64.fullmatch(digest)):
        raise ValueError(f"{path}: unreadable anchor")
    return seq, digest


def _read_settled(path: Path) -> bytes:
    """The file's content, read until two reads agree.

    The writer rewrites the anchor in place; a reader without the log's flock (verify)
    could see a write half done (ext4 buffered reads take no lock against writes).
    """
    with open(path, "rb") as f:
        raw = f.read()
        for _ in range(10):
            f.seek(0)
            again = f.read()
            if again == raw:
                break
            raw = again
    return raw


# ---------------------------------------------------------------------------- verify


@dataclass(frozen=True, slots=True)
class Problem:
    line: int          # 1-based line number; 0: the log as a whole
    message: str

    def __str__(self) -> str:
        return f"line {self.line}: {self.message}" if self.line else self.message


@dataclass(frozen=True, slots=True)
class _Rec:
    line: int
    seq: int
    prev: str
    hash: str
    ok: bool           # the content matches its own hash


def _parse(lineno: int, raw: bytes) -> _Rec | Problem:
    try:
        data = json.loads(raw)
    except ValueError:
        return Problem(lineno, "not a JSON line (edited, inserted or cut off)")
    if not isinstance(data, dict):
        return Problem(lineno, "not a JSON object")
    seq, prev, digest = data.get("seq"), data.get("prev"), data.get("hash")
    if (not isinstance(seq, int) or isinstance(seq, bool) or seq < 1
            or not isinstance(prev, str) or not _HEX64.fullmatch(prev)
            or not isinstance(digest, str) or not _HEX64.fullmatch(digest)
            or not isinstance(data.get("event"), str) or not isinstance(data.get("ts"), str)):
        return Problem(lineno, "not an audit record (seq, ts, event, prev or hash missing "
                       "or malformed)")
    try:
        ok = line_hash(data) == digest
    except (ValueError, UnicodeEncodeError):
        ok = False
    return _Rec(lineno, seq, prev, digest, ok)


def _records(path: Path, problems: list[Problem]) -> Iterator[_Rec]:
    with open(path, "rb") as f:
        for lineno, raw in enumerate(f, 1):
            if not raw.endswith(b"\n"):
                problems.append(Problem(lineno, "partial last line (cut off)"))
                continue
            if not raw.strip():
                problems.append(Problem(lineno, "empty line"))
                continue
            rec = _parse(lineno, raw)
            if isinstance(rec, Problem):
                problems.append(rec)
            else:
                yield rec


def verify(path: Path, anchor: Path | None = None) -> list[Problem]:
    """Check the chain of ``path`` and its end against the anchor; problems by line.

    Finds edited lines (content or hash), inserted, removed, reordered and duplicated
    lines, and lines cut off the end. One change may show as more than one problem;
    every problem names the line where it shows. Raises OSError if the log is unreadable.
    """
    problems: list[Problem] = []
    broken_anchor = False
    try:
        anchored = read_anchor(anchor or anchor_path(path))
    except ValueError as exc:
        problems.append(Problem(0, str(exc)))
        anchored, broken_anchor = None, True
    head = _Rec(0, 0, "", GENESIS, True)
    stash: dict[int, _Rec] = {}         # lines seen ahead of their place, by seq
    anchor_hit: _Rec | None = None
    last_line = 0
    window: deque[_Rec] = deque()
    it = _records(path, problems)

    def fill() -> None:
        while len(window) < 3:
            rec = next(it, None)
            if rec is None:
                return
            window.append(rec)

    fill()
    while window:
        rec = window.popleft()
        fill()
        nxt = window[0] if window else None
        nxt2 = window[1] if len(window) > 1 else None
        last_line = rec.line
        new_head = _judge(rec, nxt, nxt2, head, stash, problems)
        if new_head is not None:
            head = new_head
            if anchored is not None and head.seq == anchored[0]:
                anchor_hit = head
    if not broken_anchor:
        _check_end(head, anchored, anchor_hit, last_line, problems)
    return sorted(problems, key=lambda p: (p.line, p.message))


def _judge(rec: _Rec, nxt: _Rec | None, nxt2: _Rec | None, head: _Rec,
           stash: dict[int, _Rec], problems: list[Problem]) -> _Rec | None:
    """Report what is wrong with ``rec``; the new head of the chain, or None."""
    k = rec.line
    skips_rec = nxt is not None and nxt.prev == head.hash and nxt.seq == head.seq + 1
    if not rec.ok:
        if skips_rec and rec.hash != (nxt.prev if nxt else ""):
            problems.append(Problem(k, "inserted: does not match its own hash, and the "
                                       "next line chains to the line before it"))
            return None
        problems.append(Problem(k, "edited: the content does not match the line's hash"))
        # its fields are not to be trusted: it takes the next place, with its stored hash
        return replace(rec, seq=head.seq + 1)
    if rec.seq <= head.seq:
        if rec.seq == head.seq and rec.prev == head.prev:
            problems.append(Problem(k, f"inserted: a second line for seq {rec.seq} "
                                       f"(line {head.line} is in the chain)"))
        else:
            problems.append(Problem(k, f"out of order: seq {rec.seq} after seq {head.seq}"))
        return None
    if rec.seq > head.seq + 1:
        if nxt is not None and nxt.seq < rec.seq:
            problems.append(Problem(k, f"out of order: seq {rec.seq} comes before seq "
                                       f"{nxt.seq} (line {nxt.line})"))
            if len(stash) < 10_000:
                stash[rec.seq] = rec
            return None
        seq, digest = head.seq + 1, head.hash
        while seq < rec.seq and seq in stash and stash[seq].prev == digest:
            digest = stash.pop(seq).hash
            seq += 1
        if seq == rec.seq and rec.prev == digest:
            return rec                  # the lines in between came earlier (reported)
        problems.append(Problem(k, f"{rec.seq - head.seq - 1} line(s) missing before this "
                                   f"line (seq jumps from {head.seq} to {rec.seq})"))
        return rec
    if rec.prev != head.hash:
        if skips_rec:
            problems.append(Problem(k, "inserted: the next line has the same seq and "
                                       "chains to the line before"))
            return None
        if head.line and head.ok and head.line == k - 1:
            problems.append(Problem(head.line, f"edited and re-hashed: line {k} does not "
                                               "chain to it"))
        else:
            problems.append(Problem(k, "chain broken: prev does not match the line before"))
        return rec
    if (nxt is not None and nxt.ok and nxt.seq == rec.seq and nxt.prev == head.hash
            and nxt2 is not None and nxt2.prev == nxt.hash and nxt2.prev != rec.hash):
        problems.append(Problem(k, f"inserted: line {nxt.line} takes the same place in the "
                                   f"chain and line {nxt2.line} continues from it"))
        return None
    return rec


def _check_end(head: _Rec, anchored: tuple[int, str] | None, anchor_hit: _Rec | None,
               last_line: int, problems: list[Problem]) -> None:
    if anchored is None:
        if head.seq:
            problems.append(Problem(0, "the anchor file is missing: lines cut off the end "
                                       "cannot be detected"))
        return
    seq, digest = anchored
    if seq > head.seq:
        problems.append(Problem(last_line + 1, f"truncated: the anchor records seq {seq}, "
                                               f"the log ends at seq {head.seq} "
                                               f"({seq - head.seq} line(s) missing at the end)"))
    elif anchor_hit is not None and anchor_hit.hash != digest:
        problems.append(Problem(anchor_hit.line, "does not match the anchor: edited and "
                                                 "re-hashed, or the log was rewritten"))
    elif seq and anchor_hit is None:
        problems.append(Problem(0, f"the anchor's seq {seq} is not in the log"))
    elif head.seq > seq + 1:
        problems.append(Problem(head.line, f"{head.seq - seq} lines after the anchor "
                                           f"(seq {seq}): appended behind the writer's back"))


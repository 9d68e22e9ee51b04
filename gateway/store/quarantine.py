"""Quarantine: originals, their reports and metadata, encrypted at rest (DESIGN.md §6).

Layout under the quarantine root (``<var_dir>/quarantine``)::

    <job_id>                   one file: the original as received, the pipeline's report
                               (schema v1) and the metadata (below), each sealed with
                               AES-256-GCM (gateway/store/sealed.py, quarantine_file.py)
    .index.sqlite              listing index, rebuilt from the entries when lost
    .lock                      serializes changes between processes (daemon and CLI)
    .tmp/                      entries being assembled

Entries of the earlier layout, a directory ``<job_id>/`` holding ``original.sealed``,
``report.sealed`` and ``meta.sealed``, are read and changed as they are.

**Everything is sealed, not only the original.** The metadata carries the envelope
(sender, recipients, the submitting folder or token, the file name) and the report names
every attachment and embedded file: both are personal data under the 個人情報保護法 and
tell an intruder who writes to whom about what. Sealing them costs microseconds; the
SQLite index holds only what listing and retention need and nothing personal (job id,
times, origin, state, verdict), so ``list`` opens the metadata of the page it returns
and nothing else.

Metadata: job_id, created and expires (UTC, ISO 8601), origin (smtp | folder | http),
destination (smtp: sender and recipients; folder: folder pair and file name; http:
token name), policy, verdict, reason, name, size and sha256 of the original, state
(held | released | deleted), history (release / export / delete / purge, each with
actor, reason and time) and ``extra`` (whatever else the caller passed, e.g. the qid).

An entry is written in ``.tmp/`` (fsynced), renamed into place and the root fsynced:
it is complete or absent. Putting a job id again (the pipeline ran again after a
crash) replaces the entry in one atomic swap of the two names (renameat2
RENAME_EXCHANGE; where the file system lacks it, the old entry is moved aside first).
``delete`` and ``purge`` shred the original and keep report and metadata as a
tombstone (state ``deleted``), so the history stays readable; the audit log records
every admin action. Retention: each entry's expiry is fixed when it is quarantined
(``created + retention``); changing ``retention`` applies to entries quarantined
afterwards. Tombstones are kept until removed by hand.

Thread-safe; blocking (the daemon calls it through ``asyncio.to_thread``).
"""

from __future__ import annotations

import builtins
import contextlib
import fcntl
import json
import os
import secrets
import threading
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import structlog

from gateway.store import durable, sealed
from gateway.store import quarantine_file as entry_file
from gateway.store.audit import AuditLog
from gateway.store.quarantine_entry import (
    Action,
    NotFound,
    QuarantineEntry,
    QuarantineError,
    WrongState,
    iso,
)
from gateway.store.quarantine_index import Index, Row, stamp
from gateway.store.sealed import Keyring, SealError, load_keyring

log = structlog.get_logger("sekisho.quarantine")

HELD, RELEASED, DELETED = "held", "released", "deleted"
DEFAULT_RETENTION = 30 * 86400.0
#: where a job was going, by origin: destination key -> the put() meta keys it comes from
_DESTINATION: dict[str, dict[str, tuple[str, ...]]] = {
    "smtp": {"sender": ("sender",), "recipients": ("recipients",)},
    "folder": {"folder": ("folder", "requester"), "file": ("file", "name")},
    "http": {"token": ("token", "requester")},
}
_CONSUMED = {"job_id", "origin", "policy", "verdict", "reason", "name", "size", "sha256"}


__all__ = ["Action", "NotFound", "Quarantine", "QuarantineEntry", "QuarantineError",
           "WrongState"]

Entries = builtins.list[QuarantineEntry]


class Quarantine:
    def __init__(self, root: Path, keys: Keyring | None = None, *,
                 retention: float = DEFAULT_RETENTION, audit: AuditLog | None = None,
                 maintain: bool = True) -> None:
        """``keys`` None: the key file beside the root (``<root>/../quarantine.key``),
        created if missing (the embedded default of ``quarantine.key_file``).

        ``maintain`` False: only put entries (a worker process quarantining for the
        daemon): no clean-up of ``.tmp/`` and no index reconciliation, which the
        daemon does when it starts.
        """
        self.root = root
        self.keys = keys or load_keyring(root.parent / "quarantine.key", create=True)
        self.retention = retention
        self.audit = audit
        self._tmp = root / ".tmp"
        self._tmp.mkdir(parents=True, exist_ok=True)
        if maintain:
            _clean_tmp(self._tmp)
        self._lock = threading.RLock()
        self._lockfd = os.open(root / ".lock", os.O_RDWR | os.O_CREAT, 0o600)
        self._index = Index(root / ".index.sqlite")
        if maintain:
            with self._locked():
                self._reconcile()

    def close(self) -> None:
        with self._lock:
            self._index.close()
            os.close(self._lockfd)

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        with self._lock:
            fcntl.flock(self._lockfd, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(self._lockfd, fcntl.LOCK_UN)

    def path(self, job_id: str) -> Path:
        if (not job_id or len(job_id) > 200 or job_id.startswith(".")
                or any(c in job_id for c in "/\\\0")):
            raise ValueError(f"bad job id {job_id!r}")
        return self.root / job_id

    # ------------------------------------------------------------------ put

    def put(self, job_id: str, original: Path, report: dict[str, Any],
            meta: dict[str, Any]) -> Path:
        """Seal and store the original, report and metadata of ``job_id`` durably.

        ``meta`` keys: origin (else the report's source), policy, verdict, reason,
        name (else the report's input name), sha256 (checked if given), the
        destination keys of the origin (smtp: sender, recipients; folder: folder or
        requester, file or name; http: token or requester); anything else is kept
        under ``extra``. Returns the entry's file.
        """
        final = self.path(job_id)
        work = self._tmp / f"{os.getpid()}.{job_id}.{secrets.token_hex(3)}"
        entries: list[QuarantineEntry] = []

        def sealed_meta(info: sealed.Sealed) -> bytes:
            entries.append(self._new_entry(job_id, report, meta, info))
            return _json(entries[0].to_dict())

        old: Path | None = None
        try:
            entry_file.write(work, original, self.keys, job_id, _json(report), sealed_meta)
            with self._locked():
                old = self._install(work, final, job_id)
                durable.fsync_dir(self.root)
                self._index.upsert(_row(entries[0], final))
        except BaseException:
            entry_file.discard(work)  # ours, half written, or the entry it replaced
            raise
        if old is not None:
            log.warning("quarantine.replaced", job_id=job_id)
            entry_file.discard(old)
        return final

    def _install(self, work: Path, final: Path, job_id: str) -> Path | None:
        """Put the assembled entry ``work`` in place at ``final``; where the entry it
        replaces went (None when there was none). A replacement is one atomic swap
        where the file system can do it, so a crash leaves the old entry or the new
        one, never neither; elsewhere the old entry is moved aside first and put back
        if the new one cannot take its place."""
        if not os.path.lexists(final):
            os.rename(work, final)
            return None
        try:
            durable.exchange(work, final)
            return work  # now holds the replaced entry
        except durable.NoExchange:
            pass
        old = self._tmp / f"{os.getpid()}.{job_id}.old.{secrets.token_hex(3)}"
        os.rename(final, old)
        try:
            os.rename(work, final)
        except BaseException:
            os.rename(old, final)  # the entry being replaced stays
            raise
        return old

    def _new_entry(self, job_id: str, report: dict[str, Any], meta: dict[str, Any],
                   info: sealed.Sealed) -> QuarantineEntry:
        origin = str(meta.get("origin") or report.get("source") or "")
        if not origin:
            raise ValueError("quarantine metadata needs an origin")
        if meta.get("sha256") and meta["sha256"] != info.sha256:
            raise QuarantineError(f"{job_id}: the original changed while it was quarantined "
                                  "(sha256 differs)")
        destination: dict[str, Any] = {}
        used = set(_CONSUMED)
        for key, sources in _DESTINATION.get(origin, {}).items():
            found = [s for s in sources if meta.get(s) is not None]
            if not found:
                raise ValueError(f"quarantine metadata for origin {origin} needs "
                                 f"{' or '.join(sources)}")
            destination[key] = meta[found[0]]
            used.update(sources)
        created = datetime.now(UTC)
        source = report.get("input") or {}
        return QuarantineEntry(
            job_id=job_id, created=iso(created), origin=origin, destination=destination,
            policy=str(meta.get("policy") or report.get("policy") or ""),
            verdict=str(meta.get("verdict") or report.get("verdict") or ""),
            reason=str(meta.get("reason") or ""),
            name=str(meta.get("name") or source.get("name") or ""),
            size=info.size, sha256=info.sha256,
            expires=iso(created + timedelta(seconds=self.retention)), state=HELD,
            extra={k: v for k, v in meta.items() if k not in used})

    # ------------------------------------------------------------------ read

    def list(self, state: str | None = None, origin: str | None = None, limit: int = 100,
             offset: int = 0) -> Entries:
        """Entries, newest first; entries whose metadata cannot be opened are skipped."""
        with self._lock:
            ids = self._index.page(state, origin, limit, offset)
        out: Entries = []
        for job_id in ids:
            try:
                out.append(self.get(job_id))
            except (QuarantineError, SealError) as exc:
                log.warning("quarantine.unreadable", job_id=job_id, error=str(exc))
        return out

    def count(self, state: str | None = None, origin: str | None = None) -> int:
        with self._lock:
            return self._index.count(state, origin)

    def get(self, job_id: str) -> QuarantineEntry:
        data = sealed.open_data(self._sealed(job_id, "meta"), self.keys, "meta", job_id,
                                name=f"{job_id} metadata")
        return QuarantineEntry.from_dict(json.loads(data))

    def read_report(self, job_id: str) -> dict[str, Any]:
        self.get(job_id)
        data = sealed.open_data(self._sealed(job_id, "report"), self.keys, "report",
                                job_id, name=f"{job_id} report")
        report: dict[str, Any] = json.loads(data)
        return report

    def _sealed(self, job_id: str, which: str) -> bytes:
        try:
            return entry_file.read_sealed(self.path(job_id), which)
        except (FileNotFoundError, NotADirectoryError):  # none, or removed meanwhile
            raise NotFound(f"{job_id}: no such quarantine entry") from None

    def read_original(self, job_id: str, dest: Path) -> QuarantineEntry:
        """Decrypt the original to ``dest`` (mode 0600); nothing appears there unless
        every segment authenticated and the sha256 matches. Not audited by itself:
        ``export`` and ``mark_released`` are."""
        entry = self.get(job_id)
        if entry.state == DELETED:
            raise WrongState(f"{job_id}: the original was deleted ({_last(entry)})")
        with entry_file.open_original(self.path(job_id)) as src:
            info = sealed.open_into(src, dest, self.keys, "original", job_id,
                                    name=f"{job_id} original")
        if info.sha256 != entry.sha256:
            dest.unlink(missing_ok=True)
            raise sealed.Tampered(f"{job_id}: the original does not match its recorded sha256")
        return entry

    # ------------------------------------------------------------------ admin actions

    def export(self, job_id: str, dest: Path, actor: str, reason: str) -> QuarantineEntry:
        """Decrypt the original to ``dest`` for ``actor``; recorded in history and audit."""
        _need(actor, reason)
        self.read_original(job_id, dest)
        try:
            return self._act(job_id, "export", actor, reason, None, to=str(dest))
        except BaseException:
            dest.unlink(missing_ok=True)  # never a copy out without its audit line
            raise

    def mark_released(self, job_id: str, actor: str, reason: str) -> QuarantineEntry:
        """Record that ``actor`` released the original (sent it where it was going)."""
        _need(actor, reason)
        return self._act(job_id, "release", actor, reason, RELEASED)

    def delete(self, job_id: str, actor: str, reason: str) -> QuarantineEntry:
        """Shred the original; report and metadata stay as a tombstone."""
        _need(actor, reason)
        return self._act(job_id, "delete", actor, reason, DELETED)

    def purge(self, now: datetime | None = None) -> Entries:
        """Delete every original whose retention expired at ``now``; what was purged."""
        when = iso(now or datetime.now(UTC))
        with self._lock:
            due = self._index.due(when)
        purged: Entries = []
        for job_id in due:
            try:
                purged.append(self._act(job_id, "purge", "retention", "retention expired",
                                        DELETED, expired=when))
            except WrongState:
                continue  # deleted meanwhile
            except (NotFound, SealError) as exc:
                log.warning("quarantine.purge_failed", job_id=job_id, error=str(exc))
        if purged:
            log.info("quarantine.purged", entries=len(purged))
        return purged

    def _act(self, job_id: str, action: str, actor: str, reason: str, state: str | None,
             **audit_fields: Any) -> QuarantineEntry:
        with self._locked():
            entry = self.get(job_id)
            if entry.state == DELETED:
                raise WrongState(f"{job_id}: already deleted ({_last(entry)})")
            if action == "purge" and entry.expires > audit_fields["expired"]:
                raise WrongState(f"{job_id}: not expired")
            done = Action(action, actor, reason, iso(datetime.now(UTC)))
            new = replace(entry, state=state or entry.state,
                          history=(*entry.history, done))
            if self.audit is not None:  # first: no unaudited change
                self.audit.record(f"quarantine.{action}", job_id=job_id, actor=actor,
                                  reason=reason, origin=entry.origin, sha256=entry.sha256,
                                  **audit_fields)
            self._save(new, drop_original=state == DELETED)
        log.info(f"quarantine.{action}", job_id=job_id, actor=actor)
        return new

    def _save(self, entry: QuarantineEntry, *, drop_original: bool = False) -> None:
        path = self.path(entry.job_id)
        meta = sealed.seal(_json(entry.to_dict()), self.keys, "meta", entry.job_id)
        if drop_original:
            entry_file.drop_original(path, meta, self._tmp)
        else:
            entry_file.replace_meta(path, meta)
        self._index.upsert(_row(entry, path))

    def _reconcile(self) -> None:
        """Bring the index in line with the entries on disk (start-up)."""
        stamps = self._index.stamps()
        seen: set[str] = set()
        for path in self.root.iterdir():
            if path.name.startswith("."):
                continue
            if not entry_file.is_entry(path):
                log.warning("quarantine.not_an_entry", path=str(path))
                continue
            seen.add(path.name)
            if stamps.get(path.name) == stamp(entry_file.stamp_path(path)):
                continue
            try:
                self._index.upsert(_row(self.get(path.name), path))
            except (SealError, ValueError, KeyError) as exc:
                log.warning("quarantine.unreadable", job_id=path.name, error=str(exc))
        self._index.remove(set(stamps) - seen)


def _clean_tmp(tmp: Path) -> None:
    """Remove what crashed processes left in ``.tmp/`` (named ``<pid>.*``); another
    process (the daemon, while an admin runs the CLI) may be assembling entries there."""
    for leftover in tmp.iterdir():
        pid = leftover.name.partition(".")[0]
        if pid.isdigit() and int(pid) != os.getpid():
            try:
                os.kill(int(pid), 0)
                continue  # still running
            except ProcessLookupError:
                pass
            except PermissionError:
                continue  # alive, another user
        entry_file.discard(leftover)


def _row(entry: QuarantineEntry, path: Path) -> Row:
    return Row(entry.job_id, entry.created, entry.origin, entry.state, entry.verdict,
               entry.expires, stamp(entry_file.stamp_path(path)))


def _last(entry: QuarantineEntry) -> str:
    if not entry.history:
        return "no recorded action"
    a = entry.history[-1]
    return f"{a.action} by {a.actor} at {a.at}: {a.reason}"


def _need(actor: str, reason: str) -> None:
    if not actor.strip() or not reason.strip():
        raise ValueError("an admin action needs an actor and a reason")


def _json(data: dict[str, Any]) -> bytes:
    # compact: json's C encoder (indent falls back to the pure-Python one, ~0.2 ms per
    # entry on the relay's path); the sealed documents are read back with json.loads
    return json.dumps(data, ensure_ascii=False, separators=(",", ":")).encode("utf-8")

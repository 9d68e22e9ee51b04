"""Admin actions on the quarantine: release (原本取り出し) and delete, with approver and reason.

``Admin.release(job_id, approver=, reason=, policy=None)``:

1. the entry must be ``held`` or ``released`` (a second release sends it again — after
   a failed delivery, say; every release is in the entry's history and the audit log);
   a deleted entry cannot be released;
2. the original is decrypted into ``<var_dir>/release/`` (mode 0700, removed after);
3. with ``policy``, it runs through the pipeline again under that policy (the worker
   pool); a re-run that does not deliver refuses the release (``ReleaseRefused``) and
   nothing is sent;
4. ``Quarantine.mark_released`` records approver and reason (history + audit line
   ``quarantine.release``) **before** anything leaves: there is no unaudited release;
5. the release handler registered for the entry's origin sends it where it was going;
   then an audit line ``quarantine.delivered`` (or ``quarantine.release_failed``) says
   what was sent (name, sha256, policy of the re-run or ``original``).

Release handlers — one per origin, registered with ``register_release(origin, handler)``
by whoever owns that front end (``http``: gateway/ingress/http.py, here as
``job_release``; ``folder``: the drop folder; ``smtp``: the relay)::

    async def handler(release: Release) -> str:
        '''Send release.path (named release.name) where release.entry was going;
        return a short description of where it went (logged and audited).'''

``Release`` carries ``entry`` (the QuarantineEntry: origin, destination — smtp: sender
and recipients; folder: folder pair and file name; http: token —, name, extra…),
``path`` (the decrypted original, or the re-run's output; **it is deleted when the
handler returns**, so copy or move it), ``name`` (the name to deliver under: the
original name, or the re-run's output name, e.g. ``.docm`` → ``.docx``), ``approver``
(the admin token's name), ``reason``, ``policy`` (the re-run's policy or None) and
``report`` (the re-run's report, schema v1, or None). A handler raises
``ReleaseRefused`` for a release it cannot do (the job is gone); anything else it
raises is a failed delivery.

``Admin.delete(job_id, actor=, reason=)`` shreds the original (the entry stays as a
tombstone with its history); audited by the quarantine.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import secrets
import shutil
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import structlog

from gateway.jobs.service import Auditor, JobService
from gateway.jobs.store import DELIVERED, RESULT, JobRecord, now_iso, valid_job_id
from gateway.pipeline.workers import JobSpec
from gateway.store.quarantine import (
    DELETED,
    NotFound,
    Quarantine,
    QuarantineEntry,
    WrongState,
)

log = structlog.get_logger("sekisho.admin")

MAX_REASON = 1000


class AdminError(Exception):
    """An admin action that cannot be done; ``code`` is the API's error id."""

    code = "admin_error"


class EntryNotFound(AdminError):
    code = "not_found"


class ReleaseRefused(AdminError):
    """Not released: wrong state, no handler, a re-run that blocked, a job that is gone."""

    code = "release_refused"


class ReleaseFailed(AdminError):
    """Recorded as released, but the handler could not deliver it (try again)."""

    code = "release_failed"


@dataclass(frozen=True, slots=True)
class Release:
    entry: QuarantineEntry
    path: Path
    name: str
    approver: str
    reason: str
    policy: str | None = None
    report: dict[str, Any] | None = None


ReleaseHandler = Callable[[Release], Awaitable[str]]


def clean_reason(reason: object) -> str:
    """The reason as recorded: stripped, control characters out; ValueError when empty."""
    if not isinstance(reason, str):
        raise ValueError("reason must be a string")
    text = " ".join("".join(c if c.isprintable() else " " for c in reason).split())
    if not text:
        raise ValueError("a reason is required")
    return text[:MAX_REASON]


class Admin:
    def __init__(self, quarantine: Quarantine, jobs: JobService, work_dir: Path, *,
                 audit: Auditor | None = None) -> None:
        self.quarantine = quarantine
        self.jobs = jobs
        self.audit = audit
        self.work_dir = work_dir
        self._handlers: dict[str, ReleaseHandler] = {}
        work_dir.mkdir(parents=True, exist_ok=True)
        os.chmod(work_dir, 0o700)
        for leftover in work_dir.iterdir():
            shutil.rmtree(leftover, ignore_errors=True)

    def register_release(self, origin: str, handler: ReleaseHandler) -> None:
        self._handlers[origin] = handler

    def can_release(self, origin: str) -> bool:
        return origin in self._handlers

    # ------------------------------------------------------------------ reading

    async def entry(self, job_id: str) -> QuarantineEntry:
        try:
            return await asyncio.to_thread(self.quarantine.get, job_id)
        except (NotFound, ValueError):
            raise EntryNotFound(job_id) from None

    async def report(self, job_id: str) -> dict[str, Any] | None:
        try:
            return await asyncio.to_thread(self.quarantine.read_report, job_id)
        except (NotFound, ValueError):
            return None

    # ------------------------------------------------------------------ actions

    async def release(self, job_id: str, *, approver: str, reason: str,
                      policy: str | None = None) -> QuarantineEntry:
        reason = clean_reason(reason)
        entry = await self.entry(job_id)
        if entry.state == DELETED:
            raise ReleaseRefused("the original was deleted")
        handler = self._handlers.get(entry.origin)
        if handler is None:
            raise ReleaseRefused(f"no release handler for origin {entry.origin!r}")
        if policy is not None and policy not in self.jobs.policies:
            raise ReleaseRefused(f"unknown policy {policy!r}")
        work = self.work_dir / f"{job_id}.{secrets.token_hex(4)}"
        work.mkdir(mode=0o700)
        try:
            original = work / "original"
            try:
                await asyncio.to_thread(self.quarantine.read_original, job_id, original)
            except WrongState as exc:
                raise ReleaseRefused(str(exc)) from None
            path, name, report = original, entry.name or "original", None
            if policy is not None:
                path, name, report = await self._rerun(entry, original, work, policy)
            try:
                entry = await asyncio.to_thread(self.quarantine.mark_released, job_id,
                                                approver, reason)
            except WrongState as exc:
                raise ReleaseRefused(str(exc)) from None
            sha256 = await asyncio.to_thread(_sha256, path)
            release = Release(entry, path, name, approver, reason, policy, report)
            try:
                where = await handler(release)
            except ReleaseRefused as exc:
                self._audit("quarantine.release_failed", job_id=job_id, actor=approver,
                            error=str(exc))
                raise
            except Exception as exc:
                log.exception("admin.release_failed", job_id=job_id, origin=entry.origin)
                self._audit("quarantine.release_failed", job_id=job_id, actor=approver,
                            error=f"{type(exc).__name__}: {exc}")
                raise ReleaseFailed(f"{type(exc).__name__}: {exc}") from exc
            self._audit("quarantine.delivered", job_id=job_id, actor=approver,
                        origin=entry.origin, name=name, sha256=sha256,
                        policy=policy or "original", to=where)
            log.info("admin.released", job_id=job_id, approver=approver, origin=entry.origin,
                     policy=policy or "original", to=where)
            return entry
        finally:
            shutil.rmtree(work, ignore_errors=True)

    async def delete(self, job_id: str, *, actor: str, reason: str) -> QuarantineEntry:
        reason = clean_reason(reason)
        await self.entry(job_id)
        try:
            entry = await asyncio.to_thread(self.quarantine.delete, job_id, actor, reason)
        except WrongState as exc:
            raise ReleaseRefused(str(exc)) from None
        except NotFound:
            raise EntryNotFound(job_id) from None
        log.info("admin.deleted", job_id=job_id, actor=actor)
        return entry

    async def _rerun(self, entry: QuarantineEntry, original: Path, work: Path,
                     policy: str) -> tuple[Path, str, dict[str, Any]]:
        out = work / "rerun"
        name = entry.name or ("message.eml" if entry.origin == "smtp" else "original")
        spec = JobSpec(f"{entry.job_id}-r", original, out, name, entry.origin)
        report = await asyncio.wrap_future(self.jobs.pool.submit(spec,
                                                                 self.jobs.policies[policy]))
        if not report.verdict.delivered or not out.is_file():
            raise ReleaseRefused(f"the re-run under policy {policy!r} did not deliver it: "
                                 f"{report.verdict.value} ({report.reason or 'no output'})")
        return out, report.output.name if report.output else name, report.to_dict()

    def _audit(self, event: str, **fields: Any) -> None:
        if self.audit is None:
            return
        try:
            self.audit.record(event, **fields)
        except Exception:
            log.exception("admin.audit_failed", event=event)


def job_release(jobs: JobService) -> ReleaseHandler:
    """The release handler for file jobs submitted over HTTP: the released file becomes
    the job's downloadable result and the job's verdict says ``released`` (with
    approver, reason and time in the job's ``extra``). A job whose record expired is
    recreated for the submitting token."""

    async def handler(release: Release) -> str:
        job_id = release.entry.job_id
        if not valid_job_id(job_id):
            raise ReleaseRefused(f"job id {job_id!r} cannot be a file job")
        await asyncio.to_thread(_install_result, jobs, release)
        return f"job {job_id} result"

    return handler


def _install_result(jobs: JobService, release: Release) -> None:
    store = jobs.store
    entry = release.entry
    rec = store.load(entry.job_id)
    if rec is None:  # retention removed the job; the quarantine kept the original longer
        rec = JobRecord(job_id=entry.job_id, name=entry.name or release.name, origin="http",
                        policy=entry.policy, size=entry.size, sha256=entry.sha256,
                        submitted=entry.created,
                        requester=str(entry.destination.get("token", "")))
        store.create(rec, release.path, move=False)
        store.path(rec.job_id, "input").unlink(missing_ok=True)
    tmp = store.path(rec.job_id, f".release.{secrets.token_hex(3)}")
    try:
        shutil.copyfile(release.path, tmp)
        with tmp.open("rb") as fh:
            os.fsync(fh.fileno())
        tmp.replace(store.path(rec.job_id, RESULT))
    finally:
        tmp.unlink(missing_ok=True)
    rec.verdict = "released"
    rec.output_name = release.name
    rec.state = DELIVERED
    rec.finished = rec.finished or now_iso()
    rec.extra = {**rec.extra, "released_by": release.approver,
                 "release_reason": release.reason, "released_at": now_iso(),
                 "release_policy": release.policy or ""}
    store.save(rec)


def _sha256(path: Path) -> str:
    with path.open("rb") as fh:
        return hashlib.file_digest(fh, "sha256").hexdigest()


"""File jobs: what the drop folder and the HTTP API hand to the pipeline.

``submit`` makes the job durable (gateway/jobs/store.py) before it returns, so
an accepted file survives a crash. Jobs then run on the shared worker pool,
``max_active`` at a time; ``max_pending`` bounds what may wait (the front ends
answer "busy" past it, never buffer without bound).

When the pipeline is done:

1. the report is written beside the job; a delivered output becomes ``result``;
2. the original goes to quarantine (always for blocked and failed jobs, by the
   ``quarantine.keep`` setting otherwise) and the job is recorded in the audit
   log; then the input copy is removed;
3. the record says ``done`` and the job is handed to the sink registered for
   its origin (the drop folder writes to its outbox; HTTP keeps the result for
   download); then it says ``delivered``.

**Held** jobs (PPAP): a password-protected zip, 7z or PDF whose policy says
``encrypted: quarantine`` is not simply blocked. The original goes to
quarantine as usual, but the job keeps its input and says ``held``; its sink is
told once (so the submitter learns a password is needed), and ``unlock`` runs
the pipeline again with the password the submitter enters. Wrong passwords are
counted: after ``max_password_attempts`` the job is done, blocked, and its input
removed (the original stays in quarantine). Passwords are never stored or logged.

Fail closed: the result exists only if the pipeline delivered it, and an error
anywhere after the pipeline keeps the input in the job directory and retries
(the original is never lost and never passed on). Listeners (metrics) hear about
every finished job.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import time
from collections.abc import Awaitable, Callable, Mapping
from pathlib import Path
from typing import Any, Protocol

import structlog

from gateway.errors import WRONG_PASSWORD
from gateway.jobs.store import (
    DELIVERED,
    DONE,
    HELD,
    INPUT,
    QUEUED,
    RESULT,
    RUNNING,
    JobRecord,
    JobStore,
    now_iso,
)
from gateway.models import Report, Verdict
from gateway.pipeline.run import failed_report, new_job_id
from gateway.pipeline.workers import JobSpec, WorkerPool
from gateway.policy import Policy

log = structlog.get_logger("sekisho.jobs")

Sink = Callable[[JobRecord], Awaitable[None]]
Listener = Callable[[JobRecord, Report], None]

#: post-pipeline errors (quarantine, disk) are retried this often, then the job fails
MAX_ATTEMPTS = 5


class Busy(Exception):
    """Too many jobs waiting: the caller should try again later (HTTP 503)."""


class UnknownPolicy(Exception):
    pass


class NotHeld(Exception):
    """``unlock`` on a job that is not waiting for a password (any more)."""


#: sniffed types whose stage can open them with a password
HOLDABLE = frozenset({"archive.zip", "archive.7z", "archive.rar", "pdf", "ooxml.encrypted",
                      "ole.xls"})
LOCKED_OUT = "too many wrong passwords"


class QuarantineStore(Protocol):
    def put(self, job_id: str, original: Path, report: dict[str, Any],
            meta: dict[str, Any]) -> Path: ...


class Auditor(Protocol):
    def record(self, event: str, **fields: Any) -> None: ...


class JobService:
    def __init__(self, store: JobStore, pool: WorkerPool, policies: Mapping[str, Policy], *,
                 default_policy: str, quarantine: QuarantineStore, keep: str = "all",
                 audit: Auditor | None = None, max_active: int = 4,
                 max_pending: int = 1000, retry_delay: float = 5.0,
                 max_password_attempts: int = 5) -> None:
        if default_policy not in policies:
            raise ValueError(f"default policy {default_policy!r} is not loaded")
        self.store = store
        self.pool = pool
        self.policies = dict(policies)
        self.default_policy = default_policy
        self.quarantine = quarantine
        self.keep = keep
        self.audit = audit
        self.max_pending = max_pending
        self.retry_delay = retry_delay
        self.max_password_attempts = max_password_attempts
        self._locks: dict[str, asyncio.Lock] = {}
        self._slots = asyncio.Semaphore(max_active)
        self._sinks: dict[str, Sink] = {}
        self._listeners: list[Listener] = []
        self._events: dict[str, asyncio.Event] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._pending = 0
        self._running = 0
        self._closing = False

    # ------------------------------------------------------------------ wiring

    def register_sink(self, origin: str, sink: Sink) -> None:
        self._sinks[origin] = sink

    def add_listener(self, listener: Listener) -> None:
        self._listeners.append(listener)

    def set_policies(self, policies: Mapping[str, Policy], default_policy: str) -> None:
        """SIGHUP: jobs submitted from now on use the new policies."""
        if default_policy not in policies:
            raise ValueError(f"default policy {default_policy!r} is not loaded")
        self.policies = dict(policies)
        self.default_policy = default_policy

    @property
    def pending(self) -> int:
        """Jobs accepted and not yet through the pipeline (queued or running)."""
        return self._pending

    @property
    def running(self) -> int:
        return self._running

    # ------------------------------------------------------------------ intake

    async def start(self) -> None:
        """Resume what a previous run left: queued and running jobs run again, done
        ones go to their sink again."""
        records = await asyncio.to_thread(lambda: list(self.store.all()))
        resumed = 0
        for rec in records:
            if rec.state in (QUEUED, RUNNING):
                rec.state = QUEUED
                self._spawn(rec)
                resumed += 1
            elif rec.state == DONE or (rec.state == HELD and not rec.notified):
                self._track(self._hand_over(rec))
                resumed += 1
        if resumed:
            log.info("jobs.resumed", count=resumed)

    async def submit(self, src: Path, *, name: str, origin: str, policy: str | None = None,
                     requester: str = "", extra: Mapping[str, str] | None = None,
                     move: bool = False, job_id: str | None = None,
                     follow_up: bool = False) -> JobRecord:
        """Accept ``src`` as a job; durable when this returns. ``move`` takes the file
        away from the caller (rename when possible). ``follow_up``: work that belongs to
        something already accepted (a PPAP attachment of a queued mail) is not refused
        for the backlog, only while shutting down."""
        if self._closing:
            raise Busy("shutting down")
        if self._pending >= self.max_pending and not follow_up:
            raise Busy(f"{self._pending} jobs waiting")
        pol = policy or self.default_policy
        if pol not in self.policies:
            raise UnknownPolicy(pol)
        digest, size = await asyncio.to_thread(_digest, src)
        rec = JobRecord(job_id=job_id or new_job_id(), name=name, origin=origin, policy=pol,
                        size=size, sha256=digest, submitted=now_iso(), requester=requester,
                        extra=dict(extra or {}))
        await asyncio.to_thread(self.store.create, rec, src, move=move)
        log.info("jobs.accepted", job_id=rec.job_id, origin=origin, policy=pol, size=size,
                 requester=requester or None)
        self._spawn(rec)
        return rec

    def get(self, job_id: str) -> JobRecord | None:
        return self.store.load(job_id)

    async def wait(self, job_id: str, timeout: float) -> JobRecord | None:
        """The record once the job has been handed over (delivered, or held and its
        submitter told), or as it is after ``timeout``."""
        event = self._events.setdefault(job_id, asyncio.Event())  # before the load: no race
        rec = self.store.load(job_id)
        if rec is None or rec.state == DELIVERED or (rec.state == HELD and rec.notified):
            if self._events.get(job_id) is event and not event.is_set():
                self._events.pop(job_id, None)
            return rec
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(event.wait(), timeout)
        return self.store.load(job_id)

    def result_path(self, job_id: str) -> Path | None:
        rec = self.store.load(job_id)
        if rec is None or rec.state not in (DONE, DELIVERED) or rec.output_name is None:
            return None
        path = self.store.path(job_id, RESULT)
        return path if path.is_file() else None

    async def stop(self, grace: float) -> None:
        """Stop taking jobs; wait up to ``grace`` for running ones, then cancel the rest
        (they stay ``queued`` on disk and run again at the next start)."""
        self._closing = True
        if self._tasks:
            _, pending = await asyncio.wait(set(self._tasks), timeout=grace)
            for task in pending:
                task.cancel()
            if pending:
                await asyncio.wait(pending, timeout=5)
                log.info("jobs.requeued", count=len(pending))

    async def purge(self, retention: float) -> int:
        old = await asyncio.to_thread(self.store.expired, time.time() - retention)
        for job_id in old:
            await asyncio.to_thread(self.store.remove, job_id)
        if old:
            log.info("jobs.purged", count=len(old))
        return len(old)

    # ------------------------------------------------------------------ running

    def _spawn(self, rec: JobRecord) -> None:
        self._pending += 1
        self._track(self._run(rec))

    def _track(self, coro: Awaitable[None]) -> None:
        task: asyncio.Task[None] = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _run(self, rec: JobRecord) -> None:
        counted = True
        try:
            while True:
                try:
                    if rec.verdict is not None and not self.store.path(rec.job_id,
                                                                       INPUT).exists():
                        # finished before a crash or an error in its last step
                        rec.state = DONE
                        rec.finished = rec.finished or now_iso()
                        await asyncio.to_thread(self.store.save, rec)
                        break
                    async with self._slots:
                        self._running += 1
                        try:
                            report = await self._pipeline(rec)
                            self._pending -= 1
                            counted = False
                            await self._finish(rec, report)
                        finally:
                            self._running -= 1
                    break
                except asyncio.CancelledError:
                    raise
                except Exception as exc:  # fail closed, keep the input, retry
                    rec.attempts += 1
                    log.error("jobs.error", job_id=rec.job_id, attempt=rec.attempts,
                              error=f"{type(exc).__name__}: {exc}")
                    if rec.attempts >= MAX_ATTEMPTS:
                        await self._give_up(rec, f"internal error: {type(exc).__name__}")
                        break
                    with contextlib.suppress(Exception):
                        await asyncio.to_thread(self.store.save, rec)
                    await asyncio.sleep(self.retry_delay * rec.attempts)
            await self._hand_over(rec)
        finally:
            if counted:
                self._pending -= 1

    async def _pipeline(self, rec: JobRecord) -> Report:
        rec.state = RUNNING
        await asyncio.to_thread(self.store.save, rec)
        src = self.store.path(rec.job_id, INPUT)
        out = self.store.path(rec.job_id, ".result.tmp")
        pol = self.policies.get(rec.policy) or self.policies[self.default_policy]
        spec = JobSpec(rec.job_id, src, out, rec.name, rec.origin)
        return await asyncio.wrap_future(self.pool.submit(spec, pol))

    async def _finish(self, rec: JobRecord, report: Report) -> None:
        await asyncio.to_thread(self._finish_sync, rec, report)
        self._tell_listeners(rec, report)
        log.info("jobs.finished", job_id=rec.job_id, origin=rec.origin, verdict=rec.verdict,
                 reason=rec.reason, findings=len(report.findings))

    def _finish_sync(self, rec: JobRecord, report: Report, *, unlocked: bool = False) -> None:
        verdict = report.verdict
        tmp = self.store.path(rec.job_id, ".result.tmp")
        if verdict.delivered and tmp.is_file():
            tmp.replace(self.store.path(rec.job_id, RESULT))
            rec.output_name = report.output.name if report.output else rec.name
        else:
            tmp.unlink(missing_ok=True)
            rec.output_name = None
            if verdict.delivered:  # a delivered verdict with no output: never pass it on
                verdict = Verdict.FAILED
        rec.verdict = verdict.value
        rec.reason = report.reason if not verdict.delivered else None
        held = not unlocked and self._holdable(rec, report)
        data = report.to_dict()
        self.store.write_report(rec.job_id, data)
        # the verdict and output name are on disk before the input goes: a crash from
        # here on resumes by handing the job over, never by running a missing input
        self.store.save(rec)
        src = self.store.path(rec.job_id, INPUT)
        if src.exists():
            # an unlocked job's original is in quarantine already
            if verdict.quarantined_under(self.keep) and not unlocked:
                self.quarantine.put(rec.job_id, src, data, self._meta(rec))
            if self.audit is not None:
                self._audit_job(rec, "unlock" if unlocked else "job",
                                "held" if held else rec.verdict, report.kind_counts())
            if not held:
                src.unlink()
        rec.state = HELD if held else DONE
        rec.finished = None if held else now_iso()
        self.store.save(rec)

    def _tell_listeners(self, rec: JobRecord, report: Report) -> None:
        for listener in self._listeners:
            try:
                listener(rec, report)
            except Exception:  # metrics must never fail a job
                log.exception("jobs.listener_failed", job_id=rec.job_id)

    def _holdable(self, rec: JobRecord, report: Report) -> bool:
        """Blocked only because it is encrypted with a password we may be given."""
        if report.input.type not in HOLDABLE or not _encrypted(report):
            return False
        pol = self.policies.get(rec.policy) or self.policies[self.default_policy]
        family = report.input.type.split(".", 1)[0]
        return pol.format(family).option("encrypted", "quarantine") == "quarantine"

    # ------------------------------------------------------------------ held jobs

    async def unlock(self, job_id: str, password: str) -> JobRecord:
        """Run a held job again with ``password``. Returns the record afterwards: done
        (delivered or blocked), or still held with ``reason`` saying the password was
        wrong. Raises KeyError (no such job) or NotHeld."""
        lock = self._locks.setdefault(job_id, asyncio.Lock())
        async with lock:
            rec = self.store.load(job_id)
            if rec is None:
                raise KeyError(job_id)
            if rec.state != HELD or not self.store.path(job_id, INPUT).exists():
                raise NotHeld(rec.state)
            rec.password_attempts += 1
            await asyncio.to_thread(self.store.save, rec)
            src = self.store.path(job_id, INPUT)
            out = self.store.path(job_id, ".result.tmp")
            pol = self.policies.get(rec.policy) or self.policies[self.default_policy]
            spec = JobSpec(job_id, src, out, rec.name, rec.origin, password=password)
            async with self._slots:
                report = await asyncio.wrap_future(self.pool.submit(spec, pol))
            wrong = _encrypted(report)
            if wrong and rec.password_attempts < self.max_password_attempts:
                rec.reason = WRONG_PASSWORD
                await asyncio.to_thread(self._attempt_failed, rec)
                log.info("jobs.unlock_failed", job_id=job_id, attempt=rec.password_attempts)
                return rec
            await asyncio.to_thread(self._finish_sync, rec, report, unlocked=True)
            if wrong:
                rec.reason = LOCKED_OUT
                await asyncio.to_thread(self.store.save, rec)
            log.info("jobs.unlocked" if not wrong else "jobs.locked_out", job_id=job_id,
                     verdict=rec.verdict, attempts=rec.password_attempts)
            self._tell_listeners(rec, report)
            await self._hand_over(rec)
            self._locks.pop(job_id, None)  # no longer held: later calls get NotHeld
            return rec

    def _attempt_failed(self, rec: JobRecord) -> None:
        self.store.save(rec)
        self.store.path(rec.job_id, ".result.tmp").unlink(missing_ok=True)
        if self.audit is not None:
            self.audit.record("unlock", job_id=rec.job_id, origin=rec.origin,
                              verdict="held", reason=WRONG_PASSWORD,
                              attempt=rec.password_attempts)

    async def _give_up(self, rec: JobRecord, reason: str) -> None:
        """After repeated internal errors: failed, no result. The original goes to
        quarantine like any other blocked input; if even that fails it stays in the
        job directory, which the purge then leaves alone (nothing lost), and the sink
        tells the submitter."""
        rec.verdict = Verdict.FAILED.value
        rec.reason = reason
        rec.output_name = None
        with contextlib.suppress(Exception):
            await asyncio.to_thread(self._quarantine_failed, rec)
        if self.audit is not None:
            with contextlib.suppress(Exception):
                await asyncio.to_thread(self._audit_job, rec, "job", rec.verdict,
                                        {"fail.error": 1})
        rec.state = DONE
        rec.finished = now_iso()
        with contextlib.suppress(Exception):
            await asyncio.to_thread(self.store.save, rec)

    def _audit_job(self, rec: JobRecord, event: str, verdict: str | None,
                   findings: dict[str, int]) -> None:
        """The audit line of a job that ran (``job``) or was unlocked (``unlock``)."""
        assert self.audit is not None
        self.audit.record(event, job_id=rec.job_id, origin=rec.origin, name=rec.name,
                          requester=rec.requester, policy=rec.policy, verdict=verdict,
                          reason=rec.reason, sha256=rec.sha256, size=rec.size,
                          findings=findings)

    def _quarantine_failed(self, rec: JobRecord) -> None:
        src = self.store.path(rec.job_id, INPUT)
        if not src.exists():
            return
        pol = self.policies.get(rec.policy) or self.policies[self.default_policy]
        report = failed_report(src, name=rec.name, policy=pol, job_id=rec.job_id,
                               source=rec.origin, kind="fail.error", reason=rec.reason or "")
        try:
            self.quarantine.put(rec.job_id, src, report.to_dict(), self._meta(rec))
        except Exception:
            log.exception("jobs.quarantine_failed", job_id=rec.job_id)
            raise
        self.store.save(rec)  # failed, on disk, before the input goes
        src.unlink()

    async def _hand_over(self, rec: JobRecord) -> None:
        sink = self._sinks.get(rec.origin)
        try:
            if sink is not None:
                await sink(rec)
            if rec.state == HELD:
                rec.notified = True
            else:
                rec.state = DELIVERED
            await asyncio.to_thread(self.store.save, rec)
        except asyncio.CancelledError:
            raise
        except Exception:  # stays "done": the sink runs again at start-up
            log.exception("jobs.sink_failed", job_id=rec.job_id, origin=rec.origin)
        finally:  # taken only now: whoever began waiting during the sink is woken too
            event = self._events.pop(rec.job_id, None)
            if event is not None:
                event.set()

    @staticmethod
    def _meta(rec: JobRecord) -> dict[str, Any]:
        return {"job_id": rec.job_id, "origin": rec.origin, "name": rec.name,
                "requester": rec.requester, "extra": rec.extra, "policy": rec.policy,
                "verdict": rec.verdict, "reason": rec.reason, "size": rec.size,
                "sha256": rec.sha256, "received": rec.submitted}


def _encrypted(report: Report) -> bool:
    """Blocked only because the file is encrypted (no password, or a wrong one)."""
    return (report.verdict is Verdict.BLOCKED and bool(report.items)
            and any(f.kind == "block.encrypted" for f in report.items[0].findings))


def _digest(path: Path) -> tuple[str, int]:
    with path.open("rb") as fh:
        digest = hashlib.file_digest(fh, "sha256").hexdigest()
        return digest, fh.tell()

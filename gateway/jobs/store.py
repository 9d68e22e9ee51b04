"""Durable job records for file jobs (drop folder and HTTP submissions).

One directory per job under ``var/jobs/``::

    jobs/<job_id>/input         the submitted file (removed once it is in quarantine)
    jobs/<job_id>/job.json      the record below, replaced atomically on every change
    jobs/<job_id>/report.json   the pipeline's report (schema v1), once done
    jobs/<job_id>/result        the sanitized file, when delivered

A job is created complete or not at all (assembled in ``jobs/.tmp``, fsynced,
renamed, directory fsynced), so after a crash every directory in ``jobs/`` is a
job whose record says how far it got: ``queued`` and ``running`` jobs run
again, ``done`` jobs are handed to their sink again (sinks are idempotent),
``delivered`` jobs wait for download until their retention ends; ``held`` jobs
(encrypted content, waiting for the password) keep their input until they are
unlocked, locked out after too many wrong passwords, or expire.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import shutil
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import structlog

from gateway.store import durable

log = structlog.get_logger("sekisho.jobs")

INPUT, RECORD, REPORT, RESULT = "input", "job.json", "report.json", "result"

QUEUED, RUNNING, DONE, DELIVERED, HELD = "queued", "running", "done", "delivered", "held"
STATES = (QUEUED, RUNNING, DONE, DELIVERED, HELD)
_JOB_ID = re.compile(r"^[0-9A-Za-z][0-9A-Za-z._-]{0,80}$")


def now_iso() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


@dataclass(slots=True)
class JobRecord:
    job_id: str
    name: str                      # the file name as submitted (a base name)
    origin: str                    # folder | http
    policy: str
    size: int
    sha256: str
    submitted: str                 # UTC, ISO 8601
    state: str = QUEUED
    requester: str = ""            # token name (http) or folder pair name (folder)
    extra: dict[str, str] = field(default_factory=dict)
    verdict: str | None = None
    reason: str | None = None
    output_name: str | None = None  # the name to deliver the result under
    finished: str | None = None
    attempts: int = 0
    password_attempts: int = 0     # wrong passwords entered for a held job
    notified: bool = False         # a held job's sink has told the submitter

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> JobRecord:
        known = {k: data[k] for k in cls.__dataclass_fields__ if k in data}
        return cls(**known)


def valid_job_id(job_id: str) -> bool:
    return bool(_JOB_ID.match(job_id)) and ".." not in job_id


class JobStore:
    """The ``jobs/`` directory. Synchronous; callers run it in a thread."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self._tmp = root / ".tmp"
        self._tmp.mkdir(parents=True, exist_ok=True)
        for leftover in self._tmp.iterdir():
            shutil.rmtree(leftover, ignore_errors=True)

    def dir(self, job_id: str) -> Path:
        if not valid_job_id(job_id):
            raise KeyError(job_id)
        return self.root / job_id

    def create(self, record: JobRecord, src: Path, *, move: bool) -> None:
        """Store ``src`` as the job's input and write its record, durably."""
        work = self._tmp / f"{record.job_id}.{secrets.token_hex(3)}"
        work.mkdir()
        try:
            target = work / INPUT
            if move:
                try:
                    os.rename(src, target)
                except OSError:  # another file system
                    shutil.copyfile(src, target)
                    src.unlink()
            else:
                shutil.copyfile(src, target)
            durable.fsync_file(target)
            durable.write(work / RECORD, _json(record.to_dict()))
            durable.fsync_dir(work)
            os.rename(work, self.dir(record.job_id))
            durable.fsync_dir(self.root)
        except BaseException:
            shutil.rmtree(work, ignore_errors=True)
            raise

    def save(self, record: JobRecord) -> None:
        durable.replace(self.dir(record.job_id) / RECORD, _json(record.to_dict()))

    def load(self, job_id: str) -> JobRecord | None:
        try:
            path = self.dir(job_id) / RECORD
            return JobRecord.from_dict(json.loads(path.read_bytes()))
        except (KeyError, OSError, ValueError, TypeError):
            return None

    def report(self, job_id: str) -> dict[str, Any] | None:
        try:
            data = json.loads((self.dir(job_id) / REPORT).read_bytes())
        except (KeyError, OSError, ValueError):
            return None
        return data if isinstance(data, dict) else None

    def write_report(self, job_id: str, report: dict[str, Any]) -> None:
        durable.replace(self.dir(job_id) / REPORT, _json(report))

    def path(self, job_id: str, name: str) -> Path:
        return self.dir(job_id) / name

    def all(self) -> Iterator[JobRecord]:
        for entry in sorted(self.root.iterdir()):
            if entry.name.startswith("."):
                continue
            rec = self.load(entry.name)
            if rec is not None:
                yield rec

    def remove(self, job_id: str) -> None:
        target = self.dir(job_id)
        if target.exists():
            gone = self._tmp / f"{job_id}.gone.{secrets.token_hex(3)}"
            os.rename(target, gone)
            shutil.rmtree(gone, ignore_errors=True)
            durable.fsync_dir(self.root)

    def expired(self, before: float) -> list[str]:
        """Finished (or still held) jobs whose record was last changed before ``before``
        (epoch seconds). A held job's original stays in quarantine. A finished job
        that still has its input (it failed and even quarantining it failed) is never
        expired: that input is the only copy."""
        old: list[str] = []
        for entry in self.root.iterdir():
            if entry.name.startswith("."):
                continue
            rec = self.load(entry.name)
            if rec is None or rec.state not in (DELIVERED, DONE, HELD):
                continue
            if rec.state != HELD and (entry / INPUT).exists():
                log.warning("jobs.kept_unquarantined", job_id=rec.job_id)
                continue
            try:
                if (entry / RECORD).stat().st_mtime < before:
                    old.append(entry.name)
            except OSError:
                continue
        return old


def _json(data: dict[str, Any]) -> bytes:
    return (json.dumps(data, ensure_ascii=False, indent=2) + "\n").encode()

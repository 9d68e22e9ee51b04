"""Quarantine: the original of every job and its report (DESIGN.md §6).

Minimal for now (issue 6 adds encryption at rest, retention and approved
release)::

    quarantine/<job_id>/original.eml   the message as received (with our Received:)
    quarantine/<job_id>/report.json    the pipeline's report, schema v1
    quarantine/<job_id>/meta.json      envelope, verdict and reason

An entry is assembled in ``quarantine/.tmp/``, every file fsynced, then renamed
into place and the directory fsynced, so it is complete or absent. The original
is hard-linked from the spool when both live on one file system (no copy, and
the spool already fsynced it). Putting the same job id again (the pipeline ran
again after a crash) replaces the entry.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
from pathlib import Path
from typing import Any

from gateway.store import durable

ORIGINAL, REPORT, META = "original.eml", "report.json", "meta.json"


class Quarantine:
    def __init__(self, root: Path) -> None:
        self.root = root
        self._tmp = root / ".tmp"
        self._tmp.mkdir(parents=True, exist_ok=True)
        for leftover in self._tmp.iterdir():
            shutil.rmtree(leftover, ignore_errors=True)

    def path(self, job_id: str) -> Path:
        if not job_id or "/" in job_id or job_id.startswith("."):
            raise ValueError(f"bad job id {job_id!r}")
        return self.root / job_id

    def put(self, job_id: str, original: Path, report: dict[str, Any],
            meta: dict[str, Any]) -> Path:
        """Store the original, report and metadata of ``job_id`` durably."""
        final = self.path(job_id)
        work = self._tmp / f"{job_id}.{secrets.token_hex(3)}"
        work.mkdir()
        try:
            try:
                os.link(original, work / ORIGINAL)
            except OSError:  # another file system, or links not allowed: copy
                shutil.copyfile(original, work / ORIGINAL)
                durable.fsync_file(work / ORIGINAL)
            durable.write(work / REPORT, _json(report))
            durable.write(work / META, _json(meta))
            durable.fsync_dir(work)
            if final.exists():
                old = self._tmp / f"{job_id}.old.{secrets.token_hex(3)}"
                os.rename(final, old)
                shutil.rmtree(old, ignore_errors=True)
            os.rename(work, final)
            durable.fsync_dir(self.root)
        except BaseException:
            shutil.rmtree(work, ignore_errors=True)
            raise
        return final


def _json(data: dict[str, Any]) -> bytes:
    return (json.dumps(data, ensure_ascii=False, indent=2) + "\n").encode()

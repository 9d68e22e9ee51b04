"""Drop folder: files put into a pair's ``inbox`` become file jobs (DESIGN.md §5).

What is taken:

- **complete files only**: a file is taken when its size, mtime and ctime have not
  changed for the pair's ``stable`` seconds, or after ``settle`` (0.5 s) when it was
  *renamed in*: the watcher saw it appear, it is not empty and its ctime is newer
  than its mtime (a rename changes only the ctime; every write changes both);
- never, and left where they are: names starting with ``.`` (and whole hidden
  directories), ``~$*`` (Office owner files), ``*.part``, ``*.partial``,
  ``*.crdownload``, ``*.download``, ``*.tmp``, ``Thumbs.db``, ``desktop.ini``;
  symbolic links and anything else that is not a regular file;
- **subdirectories** are processed recursively and the relative path is kept in the
  outbox (``inbox/総務課/a.docx`` → ``outbox/総務課/a.docx``); the directories
  themselves stay in the inbox.

Each file becomes a job of the shared job service (origin ``folder``, the pair's
policy, requester = the pair's name); gateway/ingress/folder_inbox.py takes it
crash-safely and gateway/egress/folder.py writes the result into the outbox. A
backlog (``Busy``) or a disk error: the front end keeps the claimed file and
retries, never drops it. At start-up the inbox is rescanned and claims a crash
left are recovered; a full rescan also runs every ``rescan`` seconds in case the
file system drops events (network shares). Files that vanish, change or cannot be
read are skipped (an unreadable one is logged once and left in place) and looked at
again when they change: nothing a file does stops the watcher.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Sequence
from pathlib import Path, PurePosixPath

import structlog
from watchfiles import Change, awatch

from gateway.config import FolderPair
from gateway.egress.folder import FolderEgress
from gateway.ingress.folder_inbox import Claim, Inbox, Key, ignored, text
from gateway.jobs.service import Busy, JobService

__all__ = ["FolderFrontEnd", "PairWatch", "ignored"]

log = structlog.get_logger("sekisho.folder")


class FolderFrontEnd:
    """Every configured folder pair; owns the ``folder`` sink of the job service.

    Build it before ``JobService.start()`` (which hands finished jobs of a previous
    run to the sink) and stop it before the job service stops."""

    def __init__(self, pairs: Sequence[FolderPair], jobs: JobService, *,
                 work_dir: Path | None = None, rescan: float = 60.0,
                 settle: float = 0.5) -> None:
        self.jobs = jobs
        self.egress = FolderEgress(jobs.store, pairs)
        self.egress.clean()  # temporaries of a crash, before anything is handed over
        jobs.register_sink("folder", self.egress)
        self.watches = [
            PairWatch(p, jobs, (work_dir / p.name) if work_dir else None, rescan, settle)
            for p in pairs]
        self._tasks: list[asyncio.Task[None]] = []

    async def start(self) -> None:
        for w in self.watches:
            await asyncio.to_thread(w.box.prepare)
            self._tasks.append(asyncio.create_task(w.run(), name=f"folder:{w.pair.name}"))
        log.info("folder.started", pairs=[
            {"name": w.pair.name, "inbox": str(w.box.root), "outbox": str(w.pair.outbox),
             "policy": w.pair.policy or None, "stable": w.pair.stable} for w in self.watches])

    async def stop(self, grace: float = 10.0) -> None:
        """Stop taking files (a file being handed over finishes, up to ``grace``)."""
        for w in self.watches:
            w.close()
        if self._tasks:
            _, pending = await asyncio.wait(self._tasks, timeout=grace)
            for t in pending:
                t.cancel()
            await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks.clear()
        log.info("folder.stopped")


class PairWatch:
    """One folder pair: its watcher, its poll loop and the files it hands over."""

    def __init__(self, pair: FolderPair, jobs: JobService, work_dir: Path | None,
                 rescan: float, settle: float) -> None:
        self.pair = pair
        self.jobs = jobs
        self.box = Inbox(pair, work_dir, settle)
        self.rescan = rescan
        self.tick = min(max(pair.stable / 4, 0.05), 0.5)
        self.hints: set[str] = set()      # rel paths (or "" for everything) to look at
        self.appeared: set[str] = set()   # rel paths the watcher saw appear
        self.wake = asyncio.Event()
        self.stopping = asyncio.Event()

    def close(self) -> None:
        self.stopping.set()
        self.wake.set()

    async def run(self) -> None:
        watcher = asyncio.create_task(self._watch(), name=f"folder-watch:{self.pair.name}")
        try:
            exists = self.jobs.store.load
            for claim in await asyncio.to_thread(self.box.recover,
                                                 lambda j: exists(j) is not None):
                await self._submit(claim)
            self.hints.add("")
            await self._loop()
        finally:
            self.stopping.set()
            watcher.cancel()
            await asyncio.gather(watcher, return_exceptions=True)

    async def _watch(self) -> None:
        while not self.stopping.is_set():
            try:
                async for changes in awatch(self.box.root, watch_filter=self._wanted,
                                            debounce=200, step=50, stop_event=self.stopping,
                                            ignore_permission_denied=True):
                    for change, path in changes:
                        rel = self.box.rel(path)
                        if rel is None:
                            continue
                        self.hints.add(rel)
                        if change is Change.added:
                            self.appeared.add(rel)
                    self.wake.set()
            except Exception as exc:  # the inbox vanished, inotify limits...
                log.warning("folder.watch_failed", folder=self.pair.name,
                            error=f"{type(exc).__name__}: {exc}")
                if await self._pause(5.0):
                    return
                with contextlib.suppress(OSError):
                    self.box.root.mkdir(parents=True, exist_ok=True)
                self.hints.add("")

    def _wanted(self, _change: Change, path: str) -> bool:
        rel = self.box.rel(path)
        return rel is not None and not self.box.skipped(rel)

    async def _loop(self) -> None:
        next_scan = time.monotonic() + self.rescan
        while not self.stopping.is_set():
            busy = bool(self.box.candidates or self.hints)
            wait = self.tick if busy else max(0.0, next_scan - time.monotonic())
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.wake.wait(), wait)
            self.wake.clear()
            if self.stopping.is_set():
                break
            if time.monotonic() >= next_scan:
                self.hints.add("")
                next_scan = time.monotonic() + self.rescan
            hints, self.hints = self.hints, set()
            appeared, self.appeared = self.appeared, set()
            try:
                ready = await asyncio.to_thread(self.box.poll, hints, appeared)
                for rel, key in ready:
                    if self.stopping.is_set():
                        break
                    await self._take(rel, key)
            except asyncio.CancelledError:
                raise
            except Exception:  # never let one file stop the folder
                log.exception("folder.error", folder=self.pair.name)
                self.hints.add("")

    async def _take(self, rel: str, key: Key) -> None:
        while self.jobs.pending >= self.jobs.max_pending:  # backlog: claim nothing more
            if await self._pause(0.5):
                return
        claim = await asyncio.to_thread(self.box.claim, rel, key)
        if isinstance(claim, Claim):
            await self._submit(claim)
        elif claim == "changed":  # look again; taken once stable
            self.hints.add(rel)

    async def _submit(self, claim: Claim) -> None:
        """Hand the claimed file to the job service; retry until it is accepted."""
        delay = 0.5
        name = text(PurePosixPath(claim.rel).name)
        while True:
            try:
                if not claim.stage.exists() and not await asyncio.to_thread(
                        self.box.stage, claim):
                    raise OSError(f"cannot copy {claim.path}")
                rec = await self.jobs.submit(
                    claim.stage, name=name, origin="folder", policy=self.pair.policy or None,
                    requester=self.pair.name, job_id=claim.job_id, move=True,
                    extra={"folder": self.pair.name, "path": text(claim.rel)})
                break
            except Busy as exc:
                log.info("folder.busy", folder=self.pair.name, job_id=claim.job_id,
                         reason=str(exc))
            except Exception as exc:  # disk full, unknown policy...: keep it, try again
                log.error("folder.submit_failed", folder=self.pair.name, job_id=claim.job_id,
                          path=text(claim.rel), error=f"{type(exc).__name__}: {exc}")
            if await self._pause(delay):
                return  # the claim stays; recovered at the next start
            delay = min(delay * 2, 10.0)
        await asyncio.to_thread(self.box.release, claim)
        log.info("folder.accepted", folder=self.pair.name, job_id=rec.job_id,
                 path=text(claim.rel), size=rec.size)

    async def _pause(self, seconds: float) -> bool:
        """Sleep, or return True at once when the front end is stopping."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.stopping.wait(), seconds)
        return self.stopping.is_set()

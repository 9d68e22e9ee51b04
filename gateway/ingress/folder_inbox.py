"""One drop-folder inbox on disk: finding complete files and taking them, crash-safely.

Synchronous (the front end in gateway/ingress/folder.py calls it in a thread).

How a file is taken (nothing lost, nothing taken twice):

1. open it and check its stat still matches what was stable; rename it into
   ``<inbox>/.sekisho/claim/<job id>/<relative path>`` (same file system, atomic)
   and check that the claimed file is the inode we opened;
2. copy it into a private stage file and check its size and mtime did not change
   during the copy; if they did, it goes back to the inbox and is taken again once
   stable;
3. the front end submits the stage file under that job id (durable when it returns)
   and only then removes the claim.

After a crash, a claim whose job exists is removed; any other claim goes back into the
inbox (or, when its name was taken meanwhile, is submitted as it is). Stage files are
only copies and are deleted at start-up.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import stat as stat_mod
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

import structlog

from gateway.config import FolderPair
from gateway.pipeline.run import new_job_id
from gateway.store import durable

log = structlog.get_logger("sekisho.folder")

WORK = ".sekisho"                 # our directory in each inbox (hidden, so ignored)
IGNORED_SUFFIXES = (".part", ".partial", ".crdownload", ".download", ".tmp")
IGNORED_NAMES = frozenset({"thumbs.db", "desktop.ini"})
Key = tuple[int, int, int, int, int]  # size, mtime_ns, ctime_ns, inode, device


def ignored(rel: str) -> bool:
    """True for paths (relative to the inbox) the drop folder never takes."""
    parts = PurePosixPath(rel).parts
    if not parts or any(p.startswith(".") for p in parts):
        return True
    name = parts[-1].lower()
    return (name.startswith("~$") or name.endswith(IGNORED_SUFFIXES)
            or name in IGNORED_NAMES)


def stat_key(st: os.stat_result) -> Key:
    return (st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino, st.st_dev)


def text(rel: str) -> str:
    """A path as valid UTF-8 text (undecodable bytes in a name become U+FFFD)."""
    return rel.encode("utf-8", "surrogateescape").decode("utf-8", "replace")


@dataclass(slots=True)
class _Seen:
    key: Key
    since: float
    appeared: bool


@dataclass(frozen=True, slots=True)
class Claim:
    job_id: str
    rel: str                      # relative to the inbox, posix
    path: Path                    # the claimed file, under <inbox>/.sekisho/claim/<job_id>/
    stage: Path                   # the copy handed to the job service


class Inbox:
    def __init__(self, pair: FolderPair, work_dir: Path | None, settle: float) -> None:
        self.pair = pair
        self.root = pair.inbox.absolute()
        self.claims = self.root / WORK / "claim"
        self.stages = work_dir.absolute() if work_dir else self.root / WORK / "stage"
        self.settle = min(settle, pair.stable)
        self.candidates: dict[str, _Seen] = {}
        self.warned: dict[str, object] = {}
        self.skip = ""                    # the outbox, when it lies inside the inbox

    def prepare(self) -> None:
        for d in (self.root, self.pair.outbox, self.claims, self.stages):
            d.mkdir(parents=True, exist_ok=True)
        self.root = self.root.resolve()
        self.claims = self.root / WORK / "claim"
        for leftover in self.stages.iterdir():  # copies; the claims are the truth
            with contextlib.suppress(OSError):
                leftover.unlink()
        out = self.pair.outbox.resolve()
        if out.is_relative_to(self.root):  # an outbox inside the inbox is not input
            self.skip = out.relative_to(self.root).as_posix()

    def rel(self, path: str) -> str | None:
        try:
            rel = Path(path).relative_to(self.root).as_posix()
        except ValueError:
            return None
        return None if rel == "." else rel

    def skipped(self, rel: str) -> bool:
        """Hidden paths (ours included) and an outbox inside the inbox."""
        if any(p.startswith(".") for p in rel.split("/")):
            return True
        return bool(self.skip) and (rel == self.skip or rel.startswith(self.skip + "/"))

    # ------------------------------------------------------------------ finding files

    def poll(self, hints: set[str], appeared: set[str]) -> list[tuple[str, Key]]:
        """Look at hinted paths ("" = everything), update the candidates; return those
        complete now: unchanged for ``stable`` seconds, or for ``settle`` seconds when
        renamed in (seen appearing, not empty, ctime newer than mtime)."""
        now = time.monotonic()
        for hint in hints:
            for found in self._expand(hint):
                seen = self.candidates.setdefault(found, _Seen((-1, 0, 0, 0, 0), now, False))
                seen.appeared = seen.appeared or found in appeared
        ready: list[tuple[str, Key]] = []
        for rel, seen in list(self.candidates.items()):
            try:
                st = os.lstat(self.root / rel)
            except OSError:  # vanished (or its directory did)
                del self.candidates[rel]
                continue
            if not stat_mod.S_ISREG(st.st_mode):
                del self.candidates[rel]
                self.warn(rel, "folder.not_a_file", oct(stat_mod.S_IFMT(st.st_mode)))
                continue
            key = stat_key(st)
            if key != seen.key:
                seen.key, seen.since = key, now
                continue
            quiet = now - seen.since
            renamed_in = seen.appeared and st.st_size > 0 and st.st_ctime_ns > st.st_mtime_ns
            if quiet >= self.pair.stable or (renamed_in and quiet >= self.settle):
                ready.append((rel, key))
        return sorted(ready)

    def _expand(self, rel: str) -> list[str]:
        """Files to consider for a hinted path: itself, or everything below a directory."""
        if rel and (ignored(rel) or self.skipped(rel)):
            return []
        path = self.root / rel if rel else self.root
        try:
            st = os.lstat(path)
        except OSError:
            return []
        if stat_mod.S_ISREG(st.st_mode):
            return [rel] if self._inside(rel) else []
        if not stat_mod.S_ISDIR(st.st_mode) or (rel and not self._inside(rel)):
            return []
        found: list[str] = []
        for dirpath, dirs, files in os.walk(path, onerror=self._walk_error):
            base = Path(dirpath).relative_to(self.root)
            dirs[:] = [d for d in dirs if not self.skipped((base / d).as_posix())]
            found += [sub for sub in ((base / n).as_posix() for n in files) if not ignored(sub)]
        return found

    def _inside(self, rel: str) -> bool:
        """No directory on the way is a symbolic link (we never follow one out)."""
        cur = self.root
        for part in PurePosixPath(rel).parts[:-1]:
            cur = cur / part
            if cur.is_symlink():
                return False
        return True

    def _walk_error(self, exc: OSError) -> None:
        self.warn(str(exc.filename), "folder.unreadable_dir", exc.strerror)

    def warn(self, rel: str, event: str, detail: object) -> None:
        """Log a problem with a path once (again only if it changes)."""
        if self.warned.get(rel) != (event, detail):
            self.warned[rel] = (event, detail)
            log.warning(event, folder=self.pair.name, path=text(rel), detail=str(detail))

    # ------------------------------------------------------------------ taking files

    def claim(self, rel: str, key: Key) -> Claim | str:
        """The claimed and staged file, or why not: gone | changed | unreadable."""
        self.candidates.pop(rel, None)
        src = self.root / rel
        try:
            fd = os.open(src, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
        except FileNotFoundError:
            return "gone"
        except OSError as exc:  # permissions, a symlink swapped in...
            self.warn(rel, "folder.unreadable", exc.strerror)
            return "unreadable"
        try:
            if stat_key(os.fstat(fd)) != key:
                return "changed"
            job_id = new_job_id()
            claim = Claim(job_id, rel, self.claims / job_id / rel, self.stages / job_id)
            claim.path.parent.mkdir(parents=True, exist_ok=True)
            try:
                os.rename(src, claim.path)
            except OSError as exc:
                shutil.rmtree(self.claims / job_id, ignore_errors=True)
                if isinstance(exc, FileNotFoundError):
                    return "gone"
                self.warn(rel, "folder.cannot_move", exc.strerror)
                return "unreadable"
            moved = os.lstat(claim.path)
            if (moved.st_ino, moved.st_dev) != key[3:]:  # replaced between open and rename
                self.put_back(claim)
                return "changed"
        finally:
            os.close(fd)
        if not self.stage(claim):
            self.put_back(claim)
            return "changed"
        self.warned.pop(rel, None)
        return claim

    def stage(self, claim: Claim) -> bool:
        """Copy the claimed file to the stage; False if it changed while being copied."""
        try:
            with open(claim.path, "rb") as src:
                before = os.fstat(src.fileno())
                with open(claim.stage, "wb") as dst:
                    shutil.copyfileobj(src, dst, 1024 * 1024)
                after = os.fstat(src.fileno())
        except OSError as exc:
            claim.stage.unlink(missing_ok=True)
            log.warning("folder.stage_failed", folder=self.pair.name, job_id=claim.job_id,
                        path=text(claim.rel), error=f"{type(exc).__name__}: {exc}")
            return False
        if (before.st_size, before.st_mtime_ns) != (after.st_size, after.st_mtime_ns):
            claim.stage.unlink(missing_ok=True)
            log.info("folder.changed_while_read", folder=self.pair.name, path=text(claim.rel))
            return False
        return True

    def put_back(self, claim: Claim) -> bool:
        """Return a claimed file to its place in the inbox, unless the name is taken."""
        target = self.root / claim.rel
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            try:
                os.link(claim.path, target)  # fails rather than replace a newer file
            except FileExistsError:
                return False
            except FileNotFoundError:
                pass  # nothing to put back
            except OSError:  # no hard links on this file system
                if os.path.lexists(target):
                    return False
                os.rename(claim.path, target)
            with contextlib.suppress(OSError):  # back for good before the claim goes
                durable.fsync_dir(target.parent)
        except OSError as exc:
            log.warning("folder.put_back_failed", folder=self.pair.name, job_id=claim.job_id,
                        path=text(claim.rel), error=f"{type(exc).__name__}: {exc}")
            return False
        self.release(claim)
        return True

    def release(self, claim: Claim) -> None:
        """The claim is done with (its job exists, or the file went back)."""
        shutil.rmtree(self.claims / claim.job_id, ignore_errors=True)
        claim.stage.unlink(missing_ok=True)

    # ------------------------------------------------------------------ recovery

    def recover(self, job_exists: Callable[[str], bool]) -> list[Claim]:
        """Claims a previous run left: drop those whose job exists, put the others back.
        Returns the claims that could not go back (their name was taken meanwhile)."""
        again: list[Claim] = []
        for claim_dir in sorted(self.claims.iterdir()):
            files = [Path(d) / f for d, _, fs in os.walk(claim_dir) for f in fs]
            if job_exists(claim_dir.name) or not files:
                shutil.rmtree(claim_dir, ignore_errors=True)
                continue
            for path in files[:1]:  # one file per claim
                claim = Claim(claim_dir.name, path.relative_to(claim_dir).as_posix(), path,
                              self.stages / claim_dir.name)
                if self.put_back(claim):
                    log.info("folder.claim_returned", folder=self.pair.name,
                             path=text(claim.rel))
                else:
                    again.append(claim)
        return again

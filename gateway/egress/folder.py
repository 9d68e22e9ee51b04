"""Drop-folder egress: write a finished file job into its folder pair's outbox.

What lands in ``<outbox>/<relative dir of the input>/``:

- delivered (clean or disarmed): ``<delivery name>`` (the report's output name, so a
  ``.docm`` arrives as ``.docx``) and ``<delivery name>.report.json``;
- blocked or failed: no output; ``<input name>.report.json`` and a short notice
  ``<input name>.blocked.txt`` (Japanese, then English; UTF-8 with BOM and CRLF so
  that Windows editors open it right) naming what was found and the job id;
- held for its password (a PPAP zip): the same two files, the notice saying where to
  enter the password; once the job is unlocked they make way for the result.

The report is written last: a watcher of the outbox may treat it as "this job is
complete". Every file is written to a hidden ``.sekisho-*.tmp`` beside its final
name, fsynced, and linked into place (``link`` fails rather than overwrite), so
nobody sees half a file and nothing in the outbox is ever replaced. A taken name
gets `` (2)``, `` (3)``... before its extension.

Idempotent: before writing, the chosen names are recorded in the job's directory
(``folder.json``); a second call (the job service hands ``done`` jobs over again
after a crash) finishes that plan and skips files already there that are ours
(same bytes for the output, the job id inside for report and notice).
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import hashlib
import json
import os
import secrets
import shutil
import threading
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path, PurePosixPath
from typing import Any

import structlog

from gateway import kinds, reasons
from gateway.config import FolderPair
from gateway.jobs.store import HELD, RESULT, JobRecord, JobStore
from gateway.store import durable
from gateway.text import one_line

log = structlog.get_logger("sekisho.egress.folder")

MARKER = "folder.json"            # in the job directory: the outbox names chosen
TMP_PREFIX = ".sekisho-"
REPORT_SUFFIX = ".report.json"
NOTICE_SUFFIX = ".blocked.txt"
NAME_MAX = 255                    # bytes in one file name (Linux, most file systems)
MAX_LABELS = 10


class FolderEgress:
    """The ``folder`` sink of the job service (``JobService.register_sink``)."""

    def __init__(self, store: JobStore, pairs: Sequence[FolderPair]) -> None:
        self.store = store
        self.pairs = {p.name: p for p in pairs}
        #: job id -> the web page's password link (set by the app when HTTP is on)
        self.link: Callable[[str], str] | None = None
        self._locks = {p.name: threading.Lock() for p in pairs}

    async def __call__(self, rec: JobRecord) -> None:
        await asyncio.to_thread(self.deliver, rec)

    def clean(self) -> None:
        """Remove temporary files a crash left in the outboxes."""
        for pair in self.pairs.values():
            for tmp in _walk_tmp(pair.outbox):
                tmp.unlink(missing_ok=True)

    def deliver(self, rec: JobRecord) -> list[Path]:
        pair = self.pairs.get(rec.extra.get("folder", ""))
        if pair is None:  # stays "done"; delivered once the pair is configured again
            raise LookupError(f"folder pair {rec.extra.get('folder')!r} is not configured")
        outdir = pair.outbox.joinpath(*_rel_dir(rec.extra.get("path", "")))
        result = self.store.path(rec.job_id, RESULT) if rec.output_name else None
        if result is not None and not result.is_file():
            raise FileNotFoundError(f"job {rec.job_id}: result missing")
        report = _consistent(rec, self.store.report(rec.job_id))
        report_bytes = _json(report)
        with self._locks[pair.name]:
            outdir.mkdir(parents=True, exist_ok=True)
            plan = self._plan(rec, outdir, result, fresh=False)
            for _ in range(100):
                try:
                    written = self._write(rec, outdir, plan, result, report, report_bytes)
                except FileExistsError:  # someone else took a name meanwhile: new names
                    _discard(rec, outdir, plan, result)
                    plan = self._plan(rec, outdir, result, fresh=True)
                    continue
                break
            else:
                raise FileExistsError(f"no free name in {outdir} for job {rec.job_id}")
            durable.fsync_dir(outdir)
        log.info("folder.delivered", job_id=rec.job_id, folder=pair.name,
                 verdict=rec.verdict, files=[str(p.relative_to(pair.outbox)) for p in written])
        return written

    # ------------------------------------------------------------------ naming

    def _plan(self, rec: JobRecord, outdir: Path, result: Path | None, *,
              fresh: bool) -> list[str]:
        """The outbox names for this job: those recorded for the same outcome, or new
        ones. Files written for an earlier outcome (a job held for its password, then
        unlocked) are ours and are removed."""
        marker = self.store.path(rec.job_id, MARKER)
        stage = "held" if rec.state == HELD else "final"
        outcome = f"{stage}:{rec.verdict}:{rec.output_name or ''}"
        with contextlib.suppress(OSError, ValueError, TypeError, KeyError):
            data = json.loads(marker.read_bytes())
            names = data["files"]
            if isinstance(names, list) and names and all(
                    isinstance(n, str) and _plain(n) for n in names):
                if data.get("outcome", outcome) != outcome:
                    _discard(rec, outdir, names, result)
                elif not fresh:
                    return names
        base = _plain_name(rec.output_name or "") or _plain_name(rec.name) or rec.job_id
        suffixes = ("", REPORT_SUFFIX) if rec.output_name else (REPORT_SUFFIX, NOTICE_SUFFIX)
        for n in range(1, 10_000):
            names = [_numbered(base, n, s) for s in suffixes]
            if not any(_taken(outdir / name) for name in names):
                break
        else:
            raise FileExistsError(f"no free name for {base!r} in {outdir}")
        durable.replace(marker, _json({"files": names, "outcome": outcome}))
        return names

    # ------------------------------------------------------------------ writing

    def _write(self, rec: JobRecord, outdir: Path, plan: list[str], result: Path | None,
               report: dict[str, Any], report_bytes: bytes) -> list[Path]:
        targets = [outdir / name for name in plan]
        if result is not None:
            out, report_path = targets
            if not _is_ours_output(out, result):
                _publish(out, lambda fd: _copy_into(result, fd))
        else:
            report_path, notice_path = targets
            if not _is_ours_text(notice_path, rec.job_id):
                text = notice(rec, report, self.link(rec.job_id) if self.link else None)
                _publish(notice_path, lambda fd: _write_all(fd, text))
        if not _is_ours_text(report_path, rec.job_id):
            _publish(report_path, lambda fd: _write_all(fd, report_bytes))
        return targets


def _publish(final: Path, fill: Callable[[int], None]) -> None:
    """Write via a hidden temporary, fsync, then link into place: never overwrite."""
    tmp = final.with_name(f"{TMP_PREFIX}{secrets.token_hex(6)}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o644)
    try:
        try:
            fill(fd)
            os.fsync(fd)
        finally:
            os.close(fd)
        try:
            os.link(tmp, final)
        except OSError as exc:
            if exc.errno not in (errno.EPERM, errno.ENOTSUP, errno.EOPNOTSUPP, errno.EXDEV,
                                 errno.EMLINK):
                raise  # FileExistsError included
            if os.path.lexists(final):  # no hard links here (SMB/FAT): check, then rename
                raise FileExistsError(errno.EEXIST, "exists", str(final)) from None
            os.rename(tmp, final)
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)


def _discard(rec: JobRecord, outdir: Path, plan: list[str], result: Path | None) -> None:
    """Remove what this job already wrote under names it gives up (only files that are
    ours: the job id inside a report or notice, the result's bytes in an output)."""
    for name in plan:
        path = outdir / name
        if name.endswith((REPORT_SUFFIX, NOTICE_SUFFIX)):
            ours = _is_ours_text(path, rec.job_id)
        else:
            ours = result is not None and _is_ours_output(path, result)
        if ours:
            path.unlink(missing_ok=True)


def _copy_into(src: Path, fd: int) -> None:
    with open(src, "rb") as fh, open(fd, "wb", closefd=False) as out:
        shutil.copyfileobj(fh, out, 1024 * 1024)


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]


def _taken(path: Path) -> bool:
    return os.path.lexists(path)


def _is_ours_output(path: Path, result: Path) -> bool:
    try:
        if path.is_symlink() or path.stat().st_size != result.stat().st_size:
            return False
        return _sha256(path) == _sha256(result)
    except OSError:
        return False


def _is_ours_text(path: Path, job_id: str) -> bool:
    try:
        if path.is_symlink():
            return False
        return job_id.encode() in path.read_bytes()[:1024 * 1024]
    except OSError:
        return False


def _sha256(path: Path) -> str:
    with open(path, "rb") as fh:
        return hashlib.file_digest(fh, "sha256").hexdigest()


def _walk_tmp(root: Path) -> Iterable[Path]:
    if not root.is_dir():
        return
    for dirpath, _dirs, files in os.walk(root):
        for name in files:
            if name.startswith(TMP_PREFIX) and name.endswith(".tmp"):
                yield Path(dirpath) / name


# -------------------------------------------------------------------------- names


def _plain(name: str) -> bool:
    return bool(name) and name not in (".", "..") and "/" not in name and "\0" not in name


def _plain_name(name: str) -> str:
    """A base name safe to create in the outbox, or ""."""
    name = name.replace("\\", "/").rsplit("/", 1)[-1].replace("\0", "")
    name = "".join(ch if ch.isprintable() else "_" for ch in name).strip()
    return name if _plain(name) and not name.startswith(".") else ""


def _rel_dir(path: str) -> list[str]:
    """The input's directory below the inbox, as outbox path parts; never escapes."""
    parts = list(PurePosixPath(path).parts[:-1])
    if any(p in ("", ".", "..", "/") or p.startswith(".") or "\0" in p for p in parts):
        return []
    return parts


def _numbered(base: str, n: int, suffix: str) -> str:
    """``base`` with `` (n)`` before its extension (n > 1), plus ``suffix``, short
    enough for the file system."""
    stem, dot, ext = base.rpartition(".")
    if not dot or not stem:
        stem, ext = base, ""
    tag = f" ({n})" if n > 1 else ""
    tail = (f".{ext}" if ext else "") + suffix
    if len(tail.encode("utf-8", "surrogateescape")) > 100:  # an absurd extension
        stem, tail = base, suffix
    room = NAME_MAX - len((tag + tail).encode("utf-8", "surrogateescape"))
    while len(stem.encode("utf-8", "surrogateescape")) > room:
        stem = stem[:-1]
    return f"{stem}{tag}{tail}"


# ------------------------------------------------------------------------- notice


def notice(rec: JobRecord, report: dict[str, Any], link: str | None = None) -> bytes:
    """The short notice left in place of a blocked or failed file (ja, then en); for a
    held file, ``link`` is where its password is entered."""
    name = _plain_name(rec.name) or rec.name
    findings = [f for item in report.get("items") or [] if isinstance(item, dict)
                for f in item.get("findings") or [] if isinstance(f, dict)]
    why_kinds = [str(f.get("kind")) for f in findings
                 if str(f.get("kind", "")).startswith(("block.", "fail."))]
    found_kinds = [str(f.get("kind")) for f in findings
                   if f.get("action") in ("removed", "neutralized", "blocked", "failed")
                   and not str(f.get("kind", "")).startswith(("block.", "fail.", "sniff."))]
    reason = one_line(rec.reason or "")
    failed = rec.verdict == "failed"
    if rec.state == HELD:
        where_ja = "次のページで" if link else f"Sekisho の Web 画面で受付番号 {rec.job_id} の"
        where_en = (f"on this page: {link}" if link
                    else f"for reference {rec.job_id} on Sekisho's web page")
        return _text([
            "【Sekisho（関所）保留のお知らせ】",
            f"ファイル「{name}」はパスワードで保護されているため、中身を確認できず保留しています。",
            f"{where_ja}パスワードを入力すると、無害化したファイルがこのフォルダーに届きます。",
            *([f"  {link}"] if link else []),
            f"  受付日時: {rec.submitted} (UTC)",
            "原本は隔離されています。ご不明な点は、受付番号を添えてシステム管理者に"
            "お問い合わせください。", "",
            "[Sekisho hold notice]",
            f'The file "{name}" is protected by a password, so its content could not be '
            "checked; it is held.",
            f"Enter its password {where_en}, and the disarmed file will arrive in this "
            "folder.",
            f"  Received: {rec.submitted} (UTC)",
            "The original is held in quarantine; for anything else, ask your administrator, "
            "quoting the reference."])
    ja = ["【Sekisho（関所）ブロックのお知らせ】",
          f"ファイル「{name}」は" + ("処理できなかったため" if failed else "安全にできないため")
          + "、無害化したファイルを出力していません。",
          f"  理由: {_labels(why_kinds, 'ja') or ('処理エラー' if failed else '不明')}"
          + (f"（{one_line(reasons.ja(rec.reason))}）" if reason else "")]
    en = ["[Sekisho block notice]",
          f'The file "{name}" '
          + ("could not be processed" if failed else "could not be made safe")
          + "; no sanitized copy was written.",
          f"  Reason: {_labels(why_kinds, 'en') or ('processing error' if failed else 'unknown')}"
          + (f" ({reason})" if reason else "")]
    if found_kinds:
        ja.append(f"  検出内容: {_labels(found_kinds, 'ja')}")
        en.append(f"  Found: {_labels(found_kinds, 'en')}")
    ja += [f"  受付番号: {rec.job_id}", f"  受付日時: {rec.submitted} (UTC)",
           "原本は隔離されています。必要な場合は、受付番号を添えてシステム管理者に"
           "お問い合わせください。"]
    en += [f"  Reference: {rec.job_id}", f"  Received: {rec.submitted} (UTC)",
           "The original is held in quarantine; to obtain it, ask your administrator, "
           "quoting the reference."]
    return _text([*ja, "", *en])


def _text(lines: list[str]) -> bytes:
    """UTF-8 with a BOM and CRLF line ends: what Windows editors open right."""
    return ("\ufeff" + "\r\n".join(lines) + "\r\n").encode("utf-8", "replace")


def _labels(kind_ids: Iterable[str], lang: str) -> str:
    parts = []
    for kind, n in list(Counter(kind_ids).items())[:MAX_LABELS]:
        meta = kinds.KINDS.get(kind)
        label = (meta.ja if lang == "ja" else meta.en) if meta else kind
        parts.append(label + (f" ×{n}" if n > 1 else ""))
    return ("、" if lang == "ja" else "; ").join(parts)


def _consistent(rec: JobRecord, report: dict[str, Any] | None) -> dict[str, Any]:
    """The report to publish, agreeing with the job record (the service's last word).

    A job can fail after the pipeline wrote its report (the service gave up on an
    error later on, or found no output); then the record's verdict and reason lead,
    in a first item, and the pipeline's items follow."""
    if rec.output_name is not None:  # delivered: the service wrote the report first
        if report is None:
            raise FileNotFoundError(f"job {rec.job_id}: report missing")
        return report
    if report is not None and report.get("verdict") == rec.verdict \
            and report.get("output") is None:
        return report
    reason = rec.reason or "internal error"
    verdict = rec.verdict or "failed"
    item = {"stage": "job", "location": rec.name, "verdict": verdict, "elapsed_ms": 0,
            "error": reason,
            "findings": [{"kind": "fail.error", "action": "failed", "location": "",
                          "severity": "medium", "detail": one_line(reason)}]}
    if report is None:
        report = {"schema": 1, "job_id": rec.job_id, "source": "folder",
                  "policy": rec.policy, "items": [],
                  "input": {"name": rec.name or rec.job_id, "sha256": rec.sha256,
                            "size": rec.size, "type": "unknown"}}
    return {**report, "verdict": verdict, "output": None,
            "items": [item, *(report.get("items") or [])]}


def _json(data: dict[str, Any]) -> bytes:
    return (json.dumps(data, ensure_ascii=False, indent=2) + "\n").encode("utf-8", "replace")

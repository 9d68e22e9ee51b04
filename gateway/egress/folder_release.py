"""Release handler for drop-folder entries (gateway/admin.py calls it after auditing).

The released file — the original, or its re-run under another policy — is written
into the outbox of the folder pair it came from, under the relative directory it
was dropped in, with the same never-overwrite publishing as every outbox file, and
beside it ``<name>.released.txt`` (Japanese and English) naming the approver, the
reason and the job id, so whoever finds the file knows why it is there.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from gateway.admin import Release, ReleaseHandler, ReleaseRefused
from gateway.config import FolderPair
from gateway.egress.folder import (
    _copy_into,
    _numbered,
    _plain_name,
    _publish,
    _rel_dir,
    _taken,
    _text,
    _write_all,
)
from gateway.text import one_line

NOTE_SUFFIX = ".released.txt"
MAX_TRIES = 1000


def folder_release(pairs: Sequence[FolderPair]) -> ReleaseHandler:
    by_name = {p.name: p for p in pairs}

    async def handler(release: Release) -> str:
        pair = by_name.get(str(release.entry.destination.get("folder", "")))
        if pair is None:
            raise ReleaseRefused("its drop folder is no longer configured")
        extra: dict[str, Any] = release.entry.extra or {}
        nested = extra.get("extra")
        inner: dict[str, Any] = nested if isinstance(nested, dict) else extra
        outdir = pair.outbox.joinpath(*_rel_dir(str(inner.get("path", ""))))
        name = _plain_name(release.name) or "released"
        final = await asyncio.to_thread(_write, release, outdir, name)
        return f"written to {pair.name}: {final.relative_to(pair.outbox)}"
    return handler


def _write(release: Release, outdir: Path, name: str) -> Path:
    outdir.mkdir(parents=True, exist_ok=True)
    for n in range(1, MAX_TRIES + 1):
        final = outdir / _numbered(name, n, "")
        note = outdir / _numbered(name, n, NOTE_SUFFIX)
        if _taken(note):  # a dangling link too: publishing the note would fail
            continue
        try:
            _publish(final, functools.partial(_copy_into, release.path))
        except FileExistsError:
            continue
        _publish(note, functools.partial(_write_all, data=_note(release, final.name)))
        return final
    raise ReleaseRefused(f"no free name for {name} in the outbox")


def _note(release: Release, name: str) -> bytes:
    who = one_line(release.approver, 100)
    why = " ".join(release.reason.split())[:500]
    what_ja = (f"ポリシー「{release.policy}」で処理し直したもの" if release.policy
               else "受け取ったときのままの原本")
    what_en = (f"re-run under policy {release.policy}" if release.policy
               else "the original as it was received")
    lines = ["Sekisho（関所）原本取り出し", "",
             f"「{name}」は隔離されていたファイルを管理者の承認で取り出したものです"
             f"（{what_ja}）。",
             f"承認者: {who}", f"理由: {why}", f"受付番号: {release.entry.job_id}", "",
             "Sekisho release", "",
             f"\"{name}\" was released from quarantine with an administrator's approval "
             f"({what_en}).",
             f"Approved by: {who}", f"Reason: {why}", f"Reference: {release.entry.job_id}"]
    return _text(lines)

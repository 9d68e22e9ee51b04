"""``/v1/jobs``: submit a file, read its status and report, download the result.

Uploads are streamed to ``<var_dir>/http/uploads/`` one chunk at a time (never the
whole body in memory) and moved into the job store (gateway/jobs/store.py) by
``JobService.submit``. The size limit (``http.max_upload``) is checked against
``Content-Length`` before reading and against the bytes actually received while
reading: past it the handler stops writing, removes the partial file and answers
413 with ``Connection: close``.

A ``submit`` token sees only the jobs it submitted (others are "not found", so
job ids cannot be probed); an ``admin`` token sees every file job.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import os
import re
import secrets
import unicodedata
from pathlib import Path
from typing import Any
from urllib.parse import quote, unquote

import structlog
from aiohttp import BodyPartReader, web
from aiohttp.http_exceptions import HttpProcessingError
from aiohttp.multipart import content_disposition_filename, parse_content_disposition

from gateway import reasons
from gateway.ingress.http_auth import SUBMIT, Principal
from gateway.ingress.http_common import (
    ApiError,
    attempts_left,
    authenticate,
    bad_request,
    ctx_of,
    not_found,
    read_json,
    try_password,
)
from gateway.ingress.http_summary import summarize
from gateway.jobs.service import Busy, UnknownPolicy
from gateway.jobs.store import DELIVERED, DONE, HELD, RESULT, JobRecord, valid_job_id

log = structlog.get_logger("sekisho.http")

CHUNK = 256 * 1024
FLUSH = 1024 * 1024            # write to disk in pieces of about this size
MULTIPART_OVERHEAD = 64 * 1024  # boundaries, part headers and small fields
MAX_NAME_BYTES = 255
RETRY_AFTER = "10"
FINISHED = (DONE, DELIVERED, HELD)
_PCT = re.compile(r"%[0-9A-Fa-f]{2}")
#: what aiohttp's multipart reader raises on a damaged body
_BAD_MULTIPART = (ValueError, AssertionError, KeyError, HttpProcessingError)
_BIDI = {"\u200e", "\u200f", "\u202a", "\u202b", "\u202c", "\u202d", "\u202e",
         "\u2066", "\u2067", "\u2068", "\u2069"}


# ---------------------------------------------------------------------------- names

def safe_name(raw: str | None) -> str:
    """The base name to keep for an uploaded file; ApiError 400 when unusable."""
    if raw is None or not raw.strip():
        raise bad_request("missing_name", "The file name is missing (?name= or "
                          "Content-Disposition filename).",
                          "ファイル名がありません（?name= または Content-Disposition で指定）。")
    name = unicodedata.normalize("NFC", raw)
    for ch in name:
        if unicodedata.category(ch) in ("Cc", "Cs") or ch in _BIDI:
            raise bad_request("unsafe_name",
                              "The file name contains control or direction-override characters.",
                              "ファイル名に制御文字・文字方向の制御文字が含まれています。")
    name = name.replace("\\", "/").rsplit("/", 1)[-1].strip()
    if name in ("", ".", ".."):
        raise bad_request("unsafe_name", "The file name is empty after removing directories.",
                          "フォルダ部分を除くとファイル名が空になります。")
    if len(name.encode("utf-8")) > MAX_NAME_BYTES:
        raise bad_request("unsafe_name", f"The file name is longer than {MAX_NAME_BYTES} bytes.",
                          f"ファイル名が長すぎます（{MAX_NAME_BYTES} バイトまで）。")
    return name


def content_disposition(name: str) -> str:
    """``attachment`` with an ASCII fallback and the UTF-8 name (RFC 6266, RFC 5987)."""
    stem, dot, ext = name.rpartition(".")
    if not dot:
        stem, ext = name, ""
    fallback = "".join(c if c.isascii() and c.isprintable() and c not in '"\\;%' else "_"
                       for c in stem)
    ext_ascii = ext if ext.isascii() and ext.isalnum() else ""
    fallback = (fallback or "download") + (f".{ext_ascii}" if ext_ascii else "")
    return (f"attachment; filename=\"{fallback}\"; "
            f"filename*=UTF-8''{quote(name, safe='')}")


# ---------------------------------------------------------------------------- upload

def _too_large(limit: int) -> ApiError:
    return ApiError(413, "too_large", f"The file is larger than the limit of {limit} bytes.",
                    f"ファイルが上限（{limit} バイト）を超えています。",
                    headers={"Connection": "close"}, detail={"limit": limit})


class _Spooler:
    """Writes received chunks to ``path``, at most ``limit`` bytes."""

    def __init__(self, path: Path, limit: int) -> None:
        self.path = path
        self.limit = limit
        self.size = 0
        self._buf = bytearray()
        self._fh = path.open("xb")

    async def feed(self, chunk: bytes) -> None:
        self.size += len(chunk)
        if self.size > self.limit:
            raise _too_large(self.limit)
        self._buf += chunk
        if len(self._buf) >= FLUSH:
            await self._flush()

    async def _flush(self) -> None:
        if self._buf:
            data = bytes(self._buf)
            self._buf.clear()
            await asyncio.to_thread(self._fh.write, data)

    async def close(self) -> None:
        await self._flush()
        await asyncio.to_thread(self._close_sync)

    def _close_sync(self) -> None:
        self._fh.flush()
        os.fsync(self._fh.fileno())
        self._fh.close()

    def abort(self) -> None:
        with contextlib.suppress(OSError):
            self._fh.close()
        self.path.unlink(missing_ok=True)


async def _receive(request: web.Request, dest: Path, limit: int) -> str | None:
    """Stream the body to ``dest``; the file name it carried (multipart filename or
    Content-Disposition), if any."""
    ctype = request.content_type
    if ctype == "multipart/form-data":
        return await _receive_multipart(request, dest, limit)
    if ctype != "application/octet-stream":
        raise ApiError(415, "unsupported_media_type",
                       "Send the file as application/octet-stream or multipart/form-data.",
                       "ファイルは application/octet-stream または multipart/form-data で"
                       "送信してください。", detail={"content_type": ctype})
    name = None
    header = request.headers.get("Content-Disposition")
    if header:
        _, params = parse_content_disposition(header)
        name = content_disposition_filename(params, "filename")
    spool = _Spooler(dest, limit)
    try:
        async for chunk in request.content.iter_chunked(CHUNK):
            await spool.feed(chunk)
        await spool.close()
    except BaseException:
        spool.abort()
        raise
    return name


def _bad_multipart(exc: Exception) -> ApiError:
    return bad_request("bad_multipart", f"The multipart body is not readable: {exc}",
                       "multipart 形式の本文を読み取れません。")


async def _receive_multipart(request: web.Request, dest: Path, limit: int) -> str | None:
    try:
        reader = await request.multipart()
    except _BAD_MULTIPART as exc:
        raise _bad_multipart(exc) from None
    other = 0
    while True:
        try:
            part = await reader.next()
        except _BAD_MULTIPART as exc:
            raise _bad_multipart(exc) from None
        if part is None:
            raise bad_request("missing_file", "The multipart body has no \"file\" field.",
                              "multipart の本文に file フィールドがありません。")
        if not isinstance(part, BodyPartReader):
            raise bad_request("bad_multipart", "Nested multipart bodies are not accepted.",
                              "入れ子の multipart は受け付けません。")
        if part.name != "file":
            while chunk := await part.read_chunk(CHUNK):  # small form fields: skip them
                other += len(chunk)
                if other > MULTIPART_OVERHEAD:
                    raise _too_large(limit)
            continue
        filename = _form_filename(part.filename)
        spool = _Spooler(dest, limit)
        try:
            while chunk := await part.read_chunk(CHUNK):
                await spool.feed(chunk)
            await spool.close()
        except _BAD_MULTIPART as exc:  # damaged part (e.g. missing closing boundary)
            spool.abort()
            raise _bad_multipart(exc) from None
        except BaseException:
            spool.abort()
            raise
        return filename


def _form_filename(raw: str | None) -> str | None:
    """A multipart filename as the client meant it. Browsers send UTF-8 as is (and
    ``%22`` for a quote); some clients (aiohttp, Python's requests with some options)
    percent-encode the whole name: an ASCII name with %XX escapes that decode to
    UTF-8 is decoded."""
    if raw is None or not raw.isascii() or not _PCT.search(raw):
        return raw
    try:
        return unquote(raw, errors="strict")
    except UnicodeDecodeError:
        return raw


# ---------------------------------------------------------------------------- handlers

def _allowed_policies(request: web.Request) -> list[str]:
    ctx = ctx_of(request)
    names = [ctx.jobs.default_policy, *ctx.cfg.policies]
    return [n for n in dict.fromkeys(names) if n in ctx.jobs.policies]


def _wait_param(request: web.Request) -> float:
    raw = request.query.get("wait")
    if raw is None or raw == "":
        return 0.0
    try:
        wait = float(raw)
    except ValueError:
        wait = -1.0
    if not math.isfinite(wait) or wait < 0:
        raise bad_request("bad_wait", "wait must be a number of seconds (0 or more).",
                          "wait には 0 以上の秒数を指定してください。")
    return min(wait, ctx_of(request).cfg.max_wait)


def _unknown_policy(policy: str | None, allowed: list[str]) -> ApiError:
    return ApiError(400, "unknown_policy", f"Policy {policy!r} is not available here.",
                    f"ポリシー「{policy}」は使用できません。", detail={"allowed": allowed})


def _busy(why: str) -> ApiError:
    return ApiError(503, "busy", "Too many files are waiting; try again shortly.",
                    "処理待ちのファイルが多いため受け付けられません。しばらくしてから再送してください。",
                    headers={"Retry-After": RETRY_AFTER}, detail={"reason": why})


async def submit(request: web.Request) -> web.Response:
    who = authenticate(request, SUBMIT)
    ctx = ctx_of(request)
    policy = request.query.get("policy") or None
    allowed = _allowed_policies(request)
    if policy is not None and policy not in allowed:
        raise _unknown_policy(policy, allowed)
    wait = _wait_param(request)
    query_name = request.query.get("name")
    if query_name is not None:
        safe_name(query_name)  # fail before reading the body
    if ctx.jobs.pending >= ctx.jobs.max_pending:
        raise _busy(f"{ctx.jobs.pending} jobs waiting")
    limit = ctx.cfg.max_upload
    declared = request.content_length
    overhead = MULTIPART_OVERHEAD if request.content_type == "multipart/form-data" else 0
    if declared is not None and declared > limit + overhead:
        raise _too_large(limit)
    dest = ctx.upload_dir / f"{secrets.token_hex(12)}.part"
    carried = await _receive(request, dest, limit)
    try:
        name = safe_name(query_name if query_name is not None else carried)
        try:
            rec = await ctx.jobs.submit(dest, name=name, origin="http", policy=policy,
                                        requester=who.name, move=True)
        except Busy as exc:
            raise _busy(str(exc)) from None
        except UnknownPolicy:
            raise _unknown_policy(policy, allowed) from None
    finally:
        dest.unlink(missing_ok=True)
    log.info("http.submitted", job_id=rec.job_id, name=name, size=rec.size,
             policy=rec.policy, requester=who.name)
    if wait > 0:
        done = await ctx.jobs.wait(rec.job_id, wait)
        if done is not None and done.state in FINISHED:
            return web.json_response(await job_object(request, done), status=200)
    base = f"/v1/jobs/{rec.job_id}"
    return web.json_response({"job_id": rec.job_id, "state": rec.state, "status_url": base,
                              "result_url": f"{base}/result"}, status=202,
                             headers={"Location": base})


def _visible(request: web.Request, who: Principal) -> JobRecord:
    job_id = request.match_info["id"]
    if not valid_job_id(job_id):
        raise not_found()
    rec = ctx_of(request).jobs.get(job_id)
    if rec is None or not (who.admin or (rec.origin == "http" and rec.requester == who.name)):
        raise not_found()
    return rec


async def job_object(request: web.Request, rec: JobRecord) -> dict[str, Any]:
    ctx = ctx_of(request)
    report = await asyncio.to_thread(ctx.jobs.store.report, rec.job_id)
    finished = rec.state in FINISHED
    has_result = (finished and rec.output_name is not None
                  and ctx.jobs.store.path(rec.job_id, RESULT).is_file())
    release = None
    if "released_by" in rec.extra:
        release = {"approver": rec.extra.get("released_by", ""),
                   "reason": rec.extra.get("release_reason", ""),
                   "at": rec.extra.get("released_at", "")}
    return {
        "job_id": rec.job_id, "state": rec.state, "origin": rec.origin, "name": rec.name,
        "policy": rec.policy, "submitted": rec.submitted, "finished": rec.finished,
        "verdict": rec.verdict if finished else None,
        "reason": rec.reason if finished else None,
        "reason_ja": reasons.ja(rec.reason) if finished and rec.reason else None,
        "output_name": rec.output_name if has_result else None,
        "size": rec.size, "sha256": rec.sha256,
        "report": report if finished else None,
        "summary": summarize(report, rec.verdict, rec.reason) if finished
        else {"ja": [], "en": []},
        "result_url": f"/v1/jobs/{rec.job_id}/result" if has_result else None,
        "release": release,
        "password_attempts_left": attempts_left(request, rec) if rec.state == HELD else None,
    }


async def get_job(request: web.Request) -> web.Response:
    who = authenticate(request, SUBMIT)
    rec = _visible(request, who)
    return web.json_response(await job_object(request, rec))


async def get_result(request: web.Request) -> web.StreamResponse:
    who = authenticate(request, SUBMIT)
    rec = _visible(request, who)
    ctx = ctx_of(request)
    if rec.state not in FINISHED:
        raise ApiError(409, "not_finished", "The file is still being processed.",
                       "ファイルはまだ処理中です。", detail={"state": rec.state})
    if rec.state == HELD:
        raise ApiError(409, "held", "The file is held for review by an administrator.",
                       "ファイルは管理者の確認待ちで保留されています。",
                       detail={"state": rec.state})
    if rec.verdict in ("blocked", "failed") or rec.output_name is None:
        reason = rec.reason or rec.verdict or "no result"
        raise ApiError(410, rec.verdict or "no_result",
                       f"There is no result: the file was {rec.verdict} ({reason}).",
                       f"無害化したファイルはありません（{reason}）。",
                       detail={"verdict": rec.verdict, "reason": rec.reason})
    path = ctx.jobs.result_path(rec.job_id)
    if path is None:
        raise ApiError(404, "no_result", "The result is no longer available.",
                       "無害化したファイルは保存期間を過ぎたため削除されました。")
    return web.FileResponse(path, headers={
        "Content-Type": "application/octet-stream",
        "Content-Disposition": content_disposition(rec.output_name),
        "X-Content-Type-Options": "nosniff",
    })


async def unlock(request: web.Request) -> web.Response:
    """A held job (password-protected zip, 7z or PDF): run it again with the password
    its submitter enters. A wrong one leaves it held (``reason`` says so) until the
    attempts run out; the password is never stored or logged."""
    who = authenticate(request, SUBMIT)
    rec = _visible(request, who)
    rec = await try_password(request, rec.job_id, await read_json(request))
    log.info("http.unlock", job_id=rec.job_id, state=rec.state, verdict=rec.verdict,
             requester=who.name)
    return web.json_response(await job_object(request, rec))


def routes() -> list[web.RouteDef]:
    return [web.post("/v1/jobs", submit), web.get("/v1/jobs/{id}", get_job),
            web.get("/v1/jobs/{id}/result", get_result),
            web.post("/v1/jobs/{id}/unlock", unlock)]

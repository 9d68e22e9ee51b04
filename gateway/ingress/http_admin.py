"""``/v1/quarantine``: list, read, release and delete quarantined originals (admin only).

The orchestration (decrypt, re-run, record, send, audit) is gateway/admin.py; this
module only maps HTTP to it. The approver of a release and the actor of a deletion
is the admin token's name.
"""

from __future__ import annotations

import asyncio
from typing import Any

from aiohttp import web

from gateway import reasons
from gateway.admin import (
    Admin,
    EntryNotFound,
    ReleaseFailed,
    ReleaseRefused,
    clean_reason,
)
from gateway.ingress.http_auth import ADMIN
from gateway.ingress.http_common import (
    ApiError,
    authenticate,
    bad_request,
    ctx_of,
    not_found,
    read_json,
)
from gateway.ingress.http_summary import summarize
from gateway.store.quarantine import QuarantineEntry

STATES = ("held", "released", "deleted")
ORIGINS = ("smtp", "folder", "http")
MAX_LIMIT = 500


def _admin(request: web.Request) -> Admin:
    admin = ctx_of(request).admin
    if admin is None:
        raise ApiError(503, "quarantine_unavailable", "The quarantine is not available.",
                       "隔離ストアを利用できません。")
    return admin


def entry_object(entry: QuarantineEntry, admin: Admin) -> dict[str, Any]:
    data = entry.to_dict()
    data.pop("version", None)
    data["releasable"] = entry.state != "deleted" and admin.can_release(entry.origin)
    data["reason_ja"] = reasons.ja(entry.reason) if entry.reason else ""
    return data


def _int(request: web.Request, key: str, default: int, low: int, high: int) -> int:
    raw = request.query.get(key)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        value = low - 1
    if not low <= value <= high:
        raise bad_request(f"bad_{key}", f"{key} must be an integer from {low} to {high}.",
                          f"{key} には {low} から {high} までの整数を指定してください。")
    return value


def _choice(request: web.Request, key: str, allowed: tuple[str, ...]) -> str | None:
    raw = request.query.get(key) or None
    if raw is not None and raw not in allowed:
        raise bad_request(f"bad_{key}", f"{key} must be one of {', '.join(allowed)}.",
                          f"{key} には {'・'.join(allowed)} のいずれかを指定してください。")
    return raw


async def list_entries(request: web.Request) -> web.Response:
    authenticate(request, ADMIN)
    admin = _admin(request)
    state = _choice(request, "state", STATES)
    origin = _choice(request, "origin", ORIGINS)
    limit = _int(request, "limit", 50, 1, MAX_LIMIT)
    offset = _int(request, "offset", 0, 0, 10**9)
    q = admin.quarantine

    def read() -> tuple[list[QuarantineEntry], int]:
        return q.list(state, origin, limit, offset), q.count(state, origin)

    entries, total = await asyncio.to_thread(read)
    return web.json_response({"entries": [entry_object(e, admin) for e in entries],
                              "total": total, "limit": limit, "offset": offset})


async def _detail(admin: Admin, job_id: str) -> dict[str, Any]:
    try:
        entry = await admin.entry(job_id)
    except EntryNotFound:
        raise not_found("quarantine") from None
    report = await admin.report(job_id)
    data = entry_object(entry, admin)
    data["report"] = report
    data["summary"] = summarize(report, entry.verdict, entry.reason)
    return data


async def get_entry(request: web.Request) -> web.Response:
    authenticate(request, ADMIN)
    return web.json_response(await _detail(_admin(request), request.match_info["id"]))


def _reason(data: dict[str, Any]) -> str:
    try:
        return clean_reason(data.get("reason"))
    except ValueError:
        raise bad_request("missing_reason", "A reason is required.",
                          "理由の入力が必要です。") from None


async def release(request: web.Request) -> web.Response:
    who = authenticate(request, ADMIN)
    admin = _admin(request)
    job_id = request.match_info["id"]
    data = await read_json(request)
    reason = _reason(data)
    policy = data.get("policy")
    if policy is not None and (not isinstance(policy, str) or policy not in admin.jobs.policies):
        raise ApiError(400, "unknown_policy", f"Policy {policy!r} is not available.",
                       f"ポリシー「{policy}」は使用できません。",
                       detail={"allowed": sorted(admin.jobs.policies)})
    try:
        await admin.release(job_id, approver=who.name, reason=reason, policy=policy)
    except EntryNotFound:
        raise not_found("quarantine") from None
    except ReleaseRefused as exc:
        raise ApiError(409, "release_refused", f"Not released: {exc}",
                       f"取り出しできませんでした: {exc}") from None
    except ReleaseFailed as exc:
        raise ApiError(502, "release_failed",
                       f"Recorded as released, but delivery failed: {exc}. Try again.",
                       f"取り出しは記録されましたが、送付に失敗しました: {exc}。"
                       "再度実行してください。") from None
    metrics = ctx_of(request).metrics
    metrics.observe_admin("release")
    return web.json_response(await _detail(admin, job_id))


async def delete(request: web.Request) -> web.Response:
    who = authenticate(request, ADMIN)
    admin = _admin(request)
    job_id = request.match_info["id"]
    reason = _reason(await read_json(request))
    try:
        await admin.delete(job_id, actor=who.name, reason=reason)
    except EntryNotFound:
        raise not_found("quarantine") from None
    except ReleaseRefused as exc:
        raise ApiError(409, "already_deleted", f"Not deleted: {exc}",
                       f"削除できませんでした: {exc}") from None
    ctx_of(request).metrics.observe_admin("delete")
    return web.json_response(await _detail(admin, job_id))


def routes() -> list[web.RouteDef]:
    return [web.get("/v1/quarantine", list_entries),
            web.get("/v1/quarantine/{id}", get_entry),
            web.post("/v1/quarantine/{id}/release", release),
            web.delete("/v1/quarantine/{id}", delete)]

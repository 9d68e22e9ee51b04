"""PPAP links: a mail recipient opens a held file with the key from their notice.

Recipients in the LGWAN zone have no API token. The notice mail
(gateway/relay/ppap.py) links to ``/#unlock/<job_id>/<key>``; the key is an
HMAC of the job id under the daemon's secret, so it proves the link came from
us and is good for that one job only. With it:

- ``GET /v1/unlock/{id}?key=K`` — what is held: file name, state, attempts left;
- ``POST /v1/unlock/{id}`` ``{"key", "password"}`` — try the password. The job
  service counts wrong passwords and blocks the job when they run out; the result
  is mailed to the recipients, or written to the drop folder's outbox (never
  downloaded here: the link may be forwarded).

Drop-folder notices for a held file carry the same kind of link. Only jobs of
origin ``ppap`` and ``folder`` answer; every other id, a wrong key or a missing
checker is 404, so a key can't be used to learn which job ids exist.
"""

from __future__ import annotations

from typing import Any

import structlog
from aiohttp import web

from gateway.ingress.http_common import (
    attempts_left,
    ctx_of,
    not_found,
    read_json,
    try_password,
)
from gateway.jobs.store import HELD, JobRecord, valid_job_id

log = structlog.get_logger("sekisho.http")

#: who gets key links: mail recipients (ppap) and drop-folder users (folder notices)
ORIGINS = ("ppap", "folder")


def _job(request: web.Request, key: object) -> JobRecord:
    ctx = ctx_of(request)
    job_id = request.match_info["id"]
    check = ctx.unlock_key
    if check is None or not valid_job_id(job_id) or not isinstance(key, str) or not key:
        raise not_found()
    rec = ctx.jobs.get(job_id)
    if rec is None or rec.origin not in ORIGINS or not check(job_id, key):
        raise not_found()
    return rec


def _view(request: web.Request, rec: JobRecord) -> dict[str, Any]:
    return {"job_id": rec.job_id, "name": rec.name, "state": rec.state,
            "verdict": rec.verdict, "reason": rec.reason,
            "password_attempts_left": attempts_left(request, rec) if rec.state == HELD else 0,
            "delivery": "folder" if rec.origin == "folder" else "mail"}


async def show(request: web.Request) -> web.Response:
    rec = _job(request, request.query.get("key"))
    return web.json_response(_view(request, rec))


async def attempt(request: web.Request) -> web.Response:
    data = await read_json(request)
    rec = await try_password(request, _job(request, data.get("key")).job_id, data)
    log.info("http.ppap_unlock", job_id=rec.job_id, state=rec.state, verdict=rec.verdict)
    return web.json_response(_view(request, rec))


def routes() -> list[web.RouteDef]:
    return [web.get("/v1/unlock/{id}", show), web.post("/v1/unlock/{id}", attempt)]

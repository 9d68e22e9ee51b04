"""What every HTTP route shares: the context, errors, authentication helpers.

Errors are always JSON: ``{"error": CODE, "message": English, "message_ja": 日本語}``
— ``CODE`` is a stable machine-readable id, the two messages are for people (the
web page shows the one matching its language). Raise ``ApiError`` anywhere in a
handler; the error middleware (gateway/ingress/http.py) renders it.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from aiohttp import web

from gateway.config import HTTPConfig
from gateway.ingress.http_auth import Principal, TokenBook
from gateway.jobs.service import JobService, NotHeld
from gateway.jobs.store import JobRecord
from gateway.metrics import Metrics

if TYPE_CHECKING:
    from gateway.admin import Admin

#: checks for /healthz: name -> callable returning None when fine, else a problem text
HealthCheck = Callable[[], "str | None"]


@dataclass(slots=True)
class HTTPContext:
    cfg: HTTPConfig
    jobs: JobService
    tokens: TokenBook
    metrics: Metrics
    var_dir: Path
    upload_dir: Path
    admin: Admin | None = None
    metrics_public: bool = True
    health: dict[str, HealthCheck] = field(default_factory=dict)
    extra_status: Callable[[], Mapping[str, Any]] | None = None
    #: PPAP links: (job id, key) -> whether the key opens that job (gateway/relay/ppap.py)
    unlock_key: Callable[[str, str], bool] | None = None


CTX = web.AppKey("sekisho_ctx", HTTPContext)
PRINCIPAL = web.RequestKey("sekisho_principal", Principal)
REQUEST_ID = web.RequestKey("sekisho_request_id", str)


class ApiError(Exception):
    def __init__(self, status: int, code: str, message: str, message_ja: str, *,
                 headers: Mapping[str, str] | None = None,
                 detail: Mapping[str, Any] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.message_ja = message_ja
        self.headers = dict(headers or {})
        self.detail = dict(detail or {})

    def body(self) -> dict[str, Any]:
        return {"error": self.code, "message": self.message, "message_ja": self.message_ja,
                **self.detail}


def ctx_of(request: web.Request) -> HTTPContext:
    return request.app[CTX]


def authenticate(request: web.Request, role: str) -> Principal:
    """The caller, who must hold ``role`` (admin holds every role): 401 or 403 otherwise."""
    ctx = ctx_of(request)
    header = request.headers.get("Authorization")
    who = ctx.tokens.authenticate(header)
    if who is None:
        challenge = 'Bearer realm="sekisho"'
        if header:
            challenge += ', error="invalid_token"'
        raise ApiError(401, "unauthorized",
                       "A valid bearer token is required.",
                       "有効なアクセストークンが必要です。",
                       headers={"WWW-Authenticate": challenge})
    request[PRINCIPAL] = who
    if not who.can(role):
        raise ApiError(403, "forbidden", f"This token does not have the {role} role.",
                       f"このトークンには {role} 権限がありません。")
    return who


def not_found(what: str = "job") -> ApiError:
    if what == "quarantine":
        return ApiError(404, "not_found", "No such quarantine entry.",
                        "該当する隔離ファイルはありません。")
    return ApiError(404, "not_found", "No such job.", "該当する受付はありません。")


MAX_JSON = 64 * 1024


async def read_json(request: web.Request) -> dict[str, Any]:
    """A small JSON object body (an empty body is ``{}``); 400 or 413 otherwise."""
    too_large = ApiError(413, "too_large", "The request body is too large.",
                         "リクエストの本文が大きすぎます。")
    if request.content_length is not None and request.content_length > MAX_JSON:
        raise too_large
    raw = b""
    while chunk := await request.content.read(MAX_JSON + 1 - len(raw)):
        raw += chunk  # read(n) gives what has arrived so far, not necessarily n bytes
        if len(raw) > MAX_JSON:
            raise too_large
    try:
        data = json.loads(raw.decode("utf-8")) if raw.strip() else {}
    except (UnicodeDecodeError, ValueError):
        data = None
    if not isinstance(data, dict):
        raise bad_request("bad_json", "The body must be a JSON object.",
                          "本文は JSON オブジェクトにしてください。")
    return data


def bad_request(code: str, message: str, message_ja: str) -> ApiError:
    return ApiError(400, code, message, message_ja)


def attempts_left(request: web.Request, rec: JobRecord) -> int:
    """How many more passwords the job service takes for ``rec`` before blocking it."""
    return max(0, ctx_of(request).jobs.max_password_attempts - rec.password_attempts)


MAX_PASSWORD = 1024


async def try_password(request: web.Request, job_id: str, data: dict[str, Any]) -> JobRecord:
    """Run held job ``job_id`` again with ``data["password"]`` (the job service counts
    wrong ones); 400 without a password, 404 for no such job, 409 when not held."""
    password = data.get("password")
    if not isinstance(password, str) or not password or len(password) > MAX_PASSWORD:
        raise bad_request("missing_password", "A password is required.",
                          "パスワードを入力してください。")
    try:
        return await ctx_of(request).jobs.unlock(job_id, password)
    except KeyError:
        raise not_found() from None
    except NotHeld as exc:
        raise ApiError(409, "not_held", "This file is not waiting for a password.",
                       "このファイルはパスワード入力待ちではありません。",
                       detail={"state": str(exc)}) from None

"""The HTTP front end (aiohttp): the API, health, metrics and the web page.

Routes (the contract is gateway/ingress/openapi.json, served at ``/v1/openapi.json``):

==========================================  =======  =================================
``POST /v1/jobs?name=&policy=&wait=``        submit   upload a file (raw or multipart)
``GET /v1/jobs/{id}``                        submit   status, report, summary (ja/en)
``GET /v1/jobs/{id}/result``                 submit   the sanitized file
``GET /v1/quarantine?state=&origin=&…``      admin    list quarantined originals
``GET /v1/quarantine/{id}``                  admin    metadata, report, summary
``POST /v1/quarantine/{id}/release``         admin    ``{"reason", "policy"}``
``DELETE /v1/quarantine/{id}``               admin    ``{"reason"}``
``GET /healthz``                             none     200 ok / 503 with problems
``GET /metrics``                             none*    Prometheus text (*admin when not
                                                      on loopback)
``POST /v1/jobs/{id}/unlock``                submit   ``{"password"}`` for a held job
``GET|POST /v1/unlock/{id}``                 key      PPAP link of a mail recipient
                                                      (gateway/ingress/http_unlock.py)
``GET /v1/openapi.json``                     none     this contract
``GET /``, ``GET /static/{name}``            none     the web page (gateway/ingress/web.py)
==========================================  =======  =================================

Every response carries ``X-Request-Id`` (the client's, when it sent a sane one) and
the security headers: ``Content-Security-Policy: default-src 'self'; …`` — the web
page must use no inline script or style and load nothing from elsewhere —,
``X-Frame-Options: DENY``, ``Referrer-Policy: no-referrer``,
``X-Content-Type-Options: nosniff``, and ``Cache-Control: no-store`` unless the route
chose its own (the page's static files revalidate). Errors are always JSON
``{"error", "message", "message_ja"}``, never a traceback. One structlog line per
request (``http.request``): method, route, status, milliseconds, token name, request id.

Shutdown: ``stop`` closes the listener first and lets requests in flight finish (a
grace period), before the job service stops (gateway/app.py).
"""

from __future__ import annotations

import ipaddress
import re
import secrets
import shutil
import time
from collections.abc import Awaitable, Callable, Mapping
from pathlib import Path
from typing import Any

import structlog
from aiohttp import web

from gateway.admin import Admin, job_release
from gateway.config import HTTPConfig
from gateway.ingress import http_admin, http_jobs, http_ops, http_unlock
from gateway.ingress.http_auth import Principal, TokenBook, ensure_tokens
from gateway.ingress.http_common import (
    CTX,
    PRINCIPAL,
    REQUEST_ID,
    ApiError,
    HealthCheck,
    HTTPContext,
)
from gateway.ingress.web import SECURITY_HEADERS, add_web_routes
from gateway.jobs.service import JobService
from gateway.metrics import Metrics

log = structlog.get_logger("sekisho.http")

_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,64}$")
#: lingering close: after an early answer (413) unread upload bytes are discarded
#: for at most this long so the client can read the answer; never stored
LINGER = 5.0

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

_STATUS_CODES = {400: "bad_request", 401: "unauthorized", 403: "forbidden", 404: "not_found",
                 405: "method_not_allowed", 408: "timeout", 411: "length_required",
                 413: "too_large", 414: "uri_too_long", 415: "unsupported_media_type",
                 431: "headers_too_large"}
_JA = {400: "リクエストが正しくありません。", 401: "認証が必要です。", 403: "権限がありません。",
       404: "見つかりません。", 405: "このメソッドは使用できません。",
       413: "リクエストが大きすぎます。", 415: "この形式には対応していません。"}


def _route(request: web.Request) -> str:
    info = request.match_info
    if info.http_exception is not None or info.route.resource is None:
        return "other"
    return info.route.resource.canonical


@web.middleware
async def _middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    started = time.monotonic()
    response: web.StreamResponse | None = None
    incoming = request.headers.get("X-Request-Id", "")
    rid = incoming if _REQUEST_ID.match(incoming) else secrets.token_hex(8)
    request[REQUEST_ID] = rid
    structlog.contextvars.bind_contextvars(request_id=rid)
    try:
        try:
            response = await handler(request)
        except ApiError as exc:
            response = web.json_response(exc.body(), status=exc.status, headers=exc.headers)
        except web.HTTPException as exc:
            if exc.status < 400:
                raise
            code = _STATUS_CODES.get(exc.status, f"http_{exc.status}")
            headers = {k: v for k, v in exc.headers.items()
                       if k in ("Allow", "WWW-Authenticate", "Retry-After")}
            response = web.json_response(
                {"error": code, "message": exc.reason,
                 "message_ja": _JA.get(exc.status, exc.reason)},
                status=exc.status, headers=headers)
        except Exception:
            log.exception("http.internal_error", path=request.path)
            response = web.json_response(
                {"error": "internal", "message": "Internal error; the request id is in the "
                 "X-Request-Id header.",
                 "message_ja": "内部エラーが発生しました"
                               "（X-Request-Id を管理者にお伝えください）。"},
                status=500)
        for key, value in SECURITY_HEADERS.items():
            response.headers.setdefault(key, value)
        response.headers.setdefault("Cache-Control", "no-store")
        response.headers["X-Request-Id"] = rid
        if response.status == 413:
            response.force_close()
        return response
    finally:
        elapsed = time.monotonic() - started
        route = _route(request)
        status = response.status if response is not None else 500
        ctx = request.app[CTX]
        ctx.metrics.observe_http(request.method, route, status, elapsed)
        who: Principal | None = request.get(PRINCIPAL)
        log.info("http.request", method=request.method, route=route, path=request.path,
                 status=status, ms=int(elapsed * 1000), token=who.name if who else None,
                 remote=request.remote)
        structlog.contextvars.unbind_contextvars("request_id")


def build_app(ctx: HTTPContext) -> web.Application:
    app = web.Application(middlewares=[_middleware], client_max_size=64 * 1024)
    app[CTX] = ctx
    app.add_routes(http_jobs.routes())
    app.add_routes(http_admin.routes())
    app.add_routes(http_ops.routes())
    app.add_routes(http_unlock.routes())
    add_web_routes(app)
    return app


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class HTTPServer:
    def __init__(self, cfg: HTTPConfig, *, jobs: JobService, var_dir: Path, metrics: Metrics,
                 admin: Admin | None = None, health: Mapping[str, HealthCheck] | None = None,
                 extra_status: Callable[[], Mapping[str, Any]] | None = None,
                 metrics_public: bool | None = None,
                 unlock_key: Callable[[str, str], bool] | None = None) -> None:
        self.cfg = cfg
        upload_dir = var_dir / "http" / "uploads"
        if upload_dir.exists():
            shutil.rmtree(upload_dir, ignore_errors=True)  # partial uploads of a past run
        upload_dir.mkdir(parents=True, exist_ok=True)
        upload_dir.chmod(0o700)
        tokens = ensure_tokens(cfg.tokens, var_dir)
        if admin is not None:
            admin.register_release("http", job_release(jobs))
        self.ctx = HTTPContext(
            cfg=cfg, jobs=jobs, tokens=TokenBook(tokens), metrics=metrics, var_dir=var_dir,
            upload_dir=upload_dir, admin=admin,
            metrics_public=is_loopback(cfg.host) if metrics_public is None else metrics_public,
            health=dict(health or {}), extra_status=extra_status, unlock_key=unlock_key)
        self.app = build_app(self.ctx)
        self._runner: web.AppRunner | None = None
        self._site: web.TCPSite | None = None

    @property
    def port(self) -> int:
        """The port listened on (the real one when configured as 0)."""
        if self._runner is None or not self._runner.addresses:
            return self.cfg.port
        return int(self._runner.addresses[0][1])

    async def start(self) -> None:
        self._runner = web.AppRunner(self.app, access_log=None, handle_signals=False,
                                     lingering_time=LINGER, shutdown_timeout=30.0)
        await self._runner.setup()
        self._site = web.TCPSite(self._runner, self.cfg.host, self.cfg.port,
                                 reuse_address=True)
        await self._site.start()
        log.info("http.listening", host=self.cfg.host, port=self.port,
                 tokens=len(self.ctx.tokens), metrics_public=self.ctx.metrics_public)

    async def stop(self, grace: float = 30.0) -> None:
        """Stop accepting, let requests in flight finish (up to ``grace``), close."""
        if self._runner is None:
            return
        runner, self._runner = self._runner, None
        self._site = None
        if hasattr(runner, "_shutdown_timeout"):  # aiohttp >= 3.9 keeps it on the runner
            runner._shutdown_timeout = grace
        await runner.cleanup()
        log.info("http.stopped")

"""Operations routes: ``/healthz``, ``/metrics`` and ``/v1/openapi.json``.

- ``/healthz`` needs no token: 200 ``{"status": "ok", ...}`` with queue depths, or
  503 ``{"status": "unavailable", "problems": [...]}`` when a check fails (the worker
  pool is down, or the var directory cannot be written).
- ``/metrics`` (Prometheus text) needs no token when ``metrics_public`` (the default
  when the listener is a loopback address), an admin token otherwise.
- ``/v1/openapi.json`` is gateway/ingress/openapi.json, with the report schema
  (gateway/schema/report-v1.json) put in as ``components.schemas.Report``: each
  schema has exactly one source file.
"""

from __future__ import annotations

import asyncio
import json
import os
import secrets
from functools import cache
from pathlib import Path
from typing import Any

from aiohttp import web

from gateway.ingress.http_auth import ADMIN
from gateway.ingress.http_common import authenticate, ctx_of
from gateway.metrics import CONTENT_TYPE

HERE = Path(__file__).resolve().parent
OPENAPI = HERE / "openapi.json"
REPORT_SCHEMA = HERE.parent / "schema" / "report-v1.json"


@cache
def openapi_document() -> dict[str, Any]:
    doc: dict[str, Any] = json.loads(OPENAPI.read_text("utf-8"))
    report = json.loads(REPORT_SCHEMA.read_text("utf-8"))
    schemas = doc.setdefault("components", {}).setdefault("schemas", {})
    defs = report.pop("$defs", {})
    for key in ("$schema", "$id"):
        report.pop(key, None)

    def rewrite(node: Any) -> Any:
        if isinstance(node, dict):
            out = {k: rewrite(v) for k, v in node.items()}
            ref = out.get("$ref")
            if isinstance(ref, str) and ref.startswith("#/$defs/"):
                out["$ref"] = "#/components/schemas/Report_" + ref.removeprefix("#/$defs/")
            return out
        if isinstance(node, list):
            return [rewrite(v) for v in node]
        return node

    schemas["Report"] = rewrite(report)
    for name, schema in defs.items():
        schemas[f"Report_{name}"] = rewrite(schema)
    return doc


@cache
def _openapi_text() -> str:
    return json.dumps(openapi_document())


async def openapi(request: web.Request) -> web.Response:
    return web.Response(text=_openapi_text(), content_type="application/json")


def _writable(path: Path) -> str | None:
    try:
        probe = path / f".health.{secrets.token_hex(4)}"
        fd = os.open(probe, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            os.write(fd, b"ok")
        finally:
            os.close(fd)
        probe.unlink()
    except OSError as exc:
        return f"{path} is not writable: {exc.strerror or exc}"
    return None


def pool_problem(pool: object | None) -> str | None:
    """A /healthz check for the worker pool: None when it can take jobs."""
    if pool is None:
        return "not started"
    inner = getattr(pool, "_pool", None)  # pebble's ProcessPool: active until closed or broken
    if inner is not None and not getattr(inner, "active", True):
        return "the worker pool is not running"
    return None


async def healthz(request: web.Request) -> web.Response:
    ctx = ctx_of(request)
    problems: list[str] = []
    for name, check in ctx.health.items():
        try:
            problem = check()
        except Exception as exc:
            problem = f"{type(exc).__name__}: {exc}"
        if problem:
            problems.append(f"{name}: {problem}")
    for path in (ctx.upload_dir, ctx.jobs.store.root):
        problem = await asyncio.to_thread(_writable, path)
        if problem:
            problems.append(f"storage: {problem}")
    body: dict[str, Any] = {
        "status": "ok" if not problems else "unavailable",
        "queue": {"file_jobs": ctx.jobs.pending, "file_jobs_running": ctx.jobs.running},
    }
    if ctx.extra_status is not None:
        body["queue"].update(ctx.extra_status())
    if problems:
        body["problems"] = problems
        return web.json_response(body, status=503, headers={"Retry-After": "30"})
    return web.json_response(body)


async def metrics(request: web.Request) -> web.Response:
    ctx = ctx_of(request)
    if not ctx.metrics_public:
        authenticate(request, ADMIN)
    data = await asyncio.to_thread(ctx.metrics.render)
    return web.Response(body=data, headers={"Content-Type": CONTENT_TYPE})


def routes() -> list[web.RouteDef]:
    return [web.get("/healthz", healthz), web.get("/metrics", metrics),
            web.get("/v1/openapi.json", openapi)]

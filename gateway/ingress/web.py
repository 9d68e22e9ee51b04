"""The web page: staff submit files and download results, admins review quarantine.

The page itself is plain HTML, CSS and ES modules under ``gateway/web/`` (package
data); it talks to the HTTP API (gateway/ingress/http.py) with the bearer token
the user signs in with. This module only serves it:

- ``GET /`` — ``index.html``;
- ``GET /static/<name>`` — the files of ``gateway/web/`` (one flat directory; names
  are checked against a pattern and a fixed table of content types, so nothing
  outside it and nothing unexpected is ever served);
- ``GET /static/kinds.json`` — the Japanese and English label, severity and
  "active" flag of every finding kind, generated from gateway/kinds.py so the
  page and the reports never disagree.

Every response carries a strict Content-Security-Policy (the page has no inline
script or style and loads nothing from elsewhere: the LGWAN side has no
internet), ``nosniff`` and ``no-referrer``. Responses are revalidated (ETag) so a
new version of the page is picked up at once after an upgrade.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from functools import cache
from importlib import resources

from aiohttp import web

from gateway import kinds

#: what the page may do: everything from this origin, nothing else; no framing
CSP = ("default-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'; "
       "object-src 'none'")
#: on every response of the daemon (the middleware in gateway/ingress/http.py adds them)
SECURITY_HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "X-Content-Type-Options": "nosniff",
}
#: the page's files: revalidated (ETag) rather than never stored
_HEADERS = {**SECURITY_HEADERS, "Cache-Control": "no-cache"}
CONTENT_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".json": "application/json; charset=utf-8",
    ".svg": "image/svg+xml",
    ".png": "image/png",
    ".ico": "image/x-icon",
    ".woff2": "font/woff2",
}
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]*(\.[A-Za-z0-9]+)$")
INDEX = "index.html"
KINDS = "kinds.json"


@dataclass(frozen=True, slots=True)
class Asset:
    body: bytes
    content_type: str
    etag: str


def _asset(body: bytes, content_type: str) -> Asset:
    return Asset(body, content_type, '"' + hashlib.sha256(body).hexdigest()[:32] + '"')


def _read(name: str) -> Asset | None:
    """The file ``name`` of gateway/web/, or None when it is not a servable file."""
    return _assets().get(name)


@cache
def _assets() -> dict[str, Asset]:
    """Every servable file of gateway/web/, read once (package data does not change
    while the daemon runs): no file I/O or hashing on the event loop per request."""
    found: dict[str, Asset] = {}
    for entry in resources.files("gateway").joinpath("web").iterdir():
        match = _NAME.match(entry.name)
        if match is None or not entry.is_file():
            continue
        ctype = CONTENT_TYPES.get(match.group(1).lower())
        if ctype is not None:
            found[entry.name] = _asset(entry.read_bytes(), ctype)
    return found


@cache
def kinds_asset() -> Asset:
    """Every finding kind's labels, for the page's report details."""
    data = {k: {"ja": v.ja, "en": v.en, "severity": v.severity.value, "active": v.active}
            for k, v in kinds.KINDS.items()}
    body = json.dumps(data, ensure_ascii=False, sort_keys=True).encode()
    return _asset(body, CONTENT_TYPES[".json"])


def _respond(request: web.Request, asset: Asset) -> web.Response:
    headers = dict(_HEADERS)
    headers["ETag"] = asset.etag
    if asset.etag in _etags(request.headers.get("If-None-Match", "")):
        return web.Response(status=304, headers=headers)
    headers["Content-Type"] = asset.content_type
    return web.Response(body=asset.body, headers=headers)


def _etags(header: str) -> set[str]:
    return {t.strip().removeprefix("W/") for t in header.split(",") if t.strip()}


def _not_found() -> web.Response:
    headers = dict(_HEADERS)
    headers["Content-Type"] = "text/plain; charset=utf-8"
    return web.Response(status=404, text="not found\n", headers=headers)


async def _index(request: web.Request) -> web.StreamResponse:
    asset = _read(INDEX)
    if asset is None:  # a broken installation: say so instead of a blank page
        raise web.HTTPInternalServerError(text="gateway/web/index.html is missing\n")
    return _respond(request, asset)


async def _static(request: web.Request) -> web.StreamResponse:
    name = request.match_info["name"]
    asset = kinds_asset() if name == KINDS else _read(name)
    if asset is None:
        return _not_found()
    return _respond(request, asset)


def add_web_routes(app: web.Application) -> None:
    """Serve the page at ``/`` and its files at ``/static/<name>`` (GET and HEAD)."""
    app.router.add_get("/", _index, name="web.index")
    app.router.add_get("/static/{name}", _static, name="web.static")

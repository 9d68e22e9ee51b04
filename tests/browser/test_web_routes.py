"""gateway/ingress/web.py on a real aiohttp server: what it serves, with which type and
headers, and what it refuses. No browser needed."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from gateway.ingress.web import add_web_routes
from gateway.kinds import KINDS

WEB = Path(__file__).resolve().parents[2] / "gateway" / "web"


@pytest.fixture
async def client() -> AsyncIterator[TestClient[web.Request, web.Application]]:
    app = web.Application()
    add_web_routes(app)
    async with TestClient(TestServer(app)) as c:
        yield c


@pytest.mark.parametrize(("path", "ctype", "source"), [
    ("/", "text/html; charset=utf-8", "index.html"),
    ("/static/index.html", "text/html; charset=utf-8", "index.html"),
    ("/static/app.js", "text/javascript; charset=utf-8", "app.js"),
    ("/static/i18n.js", "text/javascript; charset=utf-8", "i18n.js"),
    ("/static/style.css", "text/css; charset=utf-8", "style.css"),
    ("/static/icon.svg", "image/svg+xml", "icon.svg"),
])
async def test_serves_the_page_files(client: TestClient[web.Request, web.Application],
                                     path: str, ctype: str, source: str) -> None:
    resp = await client.get(path)
    assert resp.status == 200
    assert resp.headers["Content-Type"] == ctype
    assert await resp.read() == (WEB / source).read_bytes()
    csp = resp.headers["Content-Security-Policy"]
    assert "default-src 'self'" in csp and "frame-ancestors 'none'" in csp
    assert resp.headers["X-Content-Type-Options"] == "nosniff"
    assert resp.headers["Referrer-Policy"] == "no-referrer"
    assert resp.headers["Cache-Control"] == "no-cache"
    # revalidation: unchanged files answer 304 without a body
    again = await client.get(path, headers={"If-None-Match": resp.headers["ETag"]})
    assert again.status == 304 and await again.read() == b""
    head = await client.head(path)
    assert head.status == 200 and head.headers["Content-Type"] == ctype


async def test_kinds_json_has_both_labels_of_every_kind(
        client: TestClient[web.Request, web.Application]) -> None:
    resp = await client.get("/static/kinds.json")
    assert resp.status == 200
    assert resp.headers["Content-Type"] == "application/json; charset=utf-8"
    data = json.loads(await resp.read())
    assert set(data) == set(KINDS)
    for kind, info in KINDS.items():
        assert data[kind] == {"ja": info.ja, "en": info.en, "severity": info.severity.value,
                              "active": info.active}


@pytest.mark.parametrize("path", [
    "/static/missing.js", "/static/../ingress/web.py", "/static/..%2fingress%2fweb.py",
    "/static/.hidden.js", "/static/app.js.bak", "/static/web.py",
    "/static/app", "/static/a.b.js", "/static/app.js%00.css",
])
async def test_refuses_anything_else(client: TestClient[web.Request, web.Application],
                                     path: str) -> None:
    resp = await client.get(path)
    assert resp.status == 404
    body = await resp.read()
    assert b"import" not in body and b"def " not in body


def test_no_inline_script_style_or_handler() -> None:
    """The CSP forbids them; the page must not need them."""
    html = (WEB / "index.html").read_text("utf-8")
    assert "<style" not in html and " style=" not in html
    assert " on" not in html.replace(" only", "")  # no onclick= and friends
    for tag in html.split("<script")[1:]:
        assert 'src="/static/' in tag.split(">")[0]
        assert tag.split(">", 1)[1].startswith("</script>")
    for path in WEB.iterdir():
        text = path.read_text("utf-8")
        assert "http://" not in text.replace("http://www.w3.org/2000/svg", "")
        assert "https://" not in text

"""The HTTP API on a real aiohttp server (127.0.0.1, port 0), with a real worker pool,
job store, quarantine and audit log, and real files."""

from __future__ import annotations

import asyncio
import hashlib
import json
import re
import tracemalloc
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any
from urllib.parse import quote, unquote

import aiohttp
import pytest

from gateway.admin import Admin
from gateway.config import HTTPConfig, TokenConfig
from gateway.ingress.http import HTTPServer
from gateway.jobs.service import JobService
from gateway.jobs.store import JobStore
from gateway.metrics import Metrics
from gateway.pipeline.workers import WorkerPool
from gateway.policy import load
from gateway.store.audit import AuditLog
from gateway.store.quarantine import Quarantine
from tests.conftest import check_report_schema

pytestmark = pytest.mark.xdist_group("workers")

POLICIES = {"default": load("default"), "strict": load("strict")}
HTML = b"<html><body><p>hello</p><script>alert(1)</script></body></html>"
EXE = b"MZ" + b"\x90" * 58 + b"\x80\x00\x00\x00" + b"\x00" * 64 + b"PE\x00\x00" + b"\x00" * 200
TOKENS = {"admin": "adm-" + "a" * 40, "alice": "ali-" + "b" * 40, "bob": "bob-" + "c" * 40,
          "auditor": "aud-" + "d" * 40}
ROLES = {"admin": ("submit", "admin"), "alice": ("submit",), "bob": ("submit",),
         "auditor": ("submit",)}
MiB = 1024 * 1024


def _token_cfg() -> tuple[TokenConfig, ...]:
    return tuple(TokenConfig(n, hashlib.sha256(t.encode()).hexdigest(), ROLES[n])
                 for n, t in TOKENS.items())


class Api:
    def __init__(self, root: Path, server: HTTPServer, jobs: JobService, admin: Admin,
                 audit: AuditLog, session: aiohttp.ClientSession) -> None:
        self.root = root
        self.server = server
        self.jobs = jobs
        self.admin = admin
        self.audit = audit
        self.session = session
        self.base = f"http://127.0.0.1:{server.port}"

    def auth(self, who: str | None) -> dict[str, str]:
        return {} if who is None else {"Authorization": f"Bearer {TOKENS[who]}"}

    async def call(self, method: str, path: str, who: str | None = "alice",
                   **kw: Any) -> tuple[int, Any, aiohttp.ClientResponse]:
        headers = {**self.auth(who), **kw.pop("headers", {})}
        async with self.session.request(method, self.base + path, headers=headers,
                                        **kw) as resp:
            body = await resp.read()
            ctype = resp.headers.get("Content-Type", "")
            data: Any = json.loads(body) if ctype.startswith("application/json") else body
            return resp.status, data, resp

    async def submit(self, data: bytes, name: str, who: str = "alice",
                     **params: str) -> dict[str, Any]:
        status, body, _ = await self.call(
            "POST", "/v1/jobs", who, params={"name": name, **params}, data=data,
            headers={"Content-Type": "application/octet-stream"})
        assert status in (200, 202), body
        return dict(body)

    async def finished(self, job_id: str, who: str = "alice",
                       timeout: float = 120) -> dict[str, Any]:
        loop = asyncio.get_running_loop()
        end = loop.time() + timeout
        while True:
            status, body, _ = await self.call("GET", f"/v1/jobs/{job_id}", who)
            assert status == 200, body
            if body["state"] in ("done", "delivered", "held"):
                return dict(body)
            assert loop.time() < end, f"job {job_id} did not finish: {body['state']}"
            await asyncio.sleep(0.05)


async def _make_api(root: Path, pool: WorkerPool, **http: Any) -> AsyncIterator[Api]:
    audit = AuditLog(root / "audit.log")
    quarantine = Quarantine(root / "quarantine", audit=audit)
    jobs = JobService(JobStore(root / "jobs"), pool, POLICIES, default_policy="default",
                      quarantine=quarantine, audit=audit, retry_delay=0.05,
                      max_pending=http.pop("max_pending", 1000),
                      max_active=http.pop("max_active", 4))
    metrics = Metrics()
    metrics.watch_jobs(jobs)
    await jobs.start()
    admin = Admin(quarantine, jobs, root / "release", audit=audit)
    cfg = HTTPConfig(host="127.0.0.1", port=0, tokens=_token_cfg(), policies=("strict",),
                     max_wait=http.pop("max_wait", 60.0), **http)
    server = HTTPServer(cfg, jobs=jobs, var_dir=root, metrics=metrics, admin=admin)
    await server.start()
    try:
        async with aiohttp.ClientSession() as session:
            yield Api(root, server, jobs, admin, audit, session)
    finally:
        await server.stop(1)
        await jobs.stop(1)


@pytest.fixture
async def api(tmp_path: Path, pool: WorkerPool) -> AsyncIterator[Api]:
    async for a in _make_api(tmp_path, pool):
        yield a


def _audit_lines(api: Api) -> list[dict[str, Any]]:
    return [json.loads(line) for line in (api.root / "audit.log").read_text().splitlines()]


# ---------------------------------------------------------------------------- submit


async def test_raw_submit_poll_download(api: Api) -> None:
    sub = await api.submit(HTML, "page.html")
    assert set(sub) == {"job_id", "state", "status_url", "result_url"}
    assert sub["status_url"] == f"/v1/jobs/{sub['job_id']}"
    job = await api.finished(sub["job_id"])
    assert job["verdict"] == "disarmed" and job["output_name"] == "page.html"
    assert job["origin"] == "http" and job["policy"] == "default"
    assert job["sha256"] == hashlib.sha256(HTML).hexdigest() and job["size"] == len(HTML)
    check_report_schema(job["report"])
    assert job["summary"]["ja"] == ["危険な要素を取り除きました。", "スクリプトを1件削除しました"]
    assert job["summary"]["en"] == ["Active content was removed.", "Removed 1 script"]
    status, body, resp = await api.call("GET", sub["result_url"])
    assert status == 200
    assert b"<script" not in body and b"hello" in body
    assert resp.headers["Content-Type"] == "application/octet-stream"
    assert resp.headers["X-Content-Type-Options"] == "nosniff"
    assert resp.headers["Content-Disposition"].startswith("attachment;")


async def test_multipart_submit_with_japanese_name(api: Api) -> None:
    name = "見積書 (最終版).html"
    form = aiohttp.FormData()
    form.add_field("comment", "ignored")
    form.add_field("file", HTML, filename=name, content_type="text/html")
    status, body, _ = await api.call("POST", "/v1/jobs", data=form)
    assert status == 202, body
    job = await api.finished(body["job_id"])
    assert job["name"] == name and job["output_name"] == name
    status, data, resp = await api.call("GET", f"/v1/jobs/{job['job_id']}/result")
    assert status == 200 and b"<script" not in data
    cd = resp.headers["Content-Disposition"]
    assert cd.isascii()
    m = re.search(r"filename\*=UTF-8''([^;]+)", cd)
    assert m is not None and unquote(m.group(1)) == name
    fallback = re.search(r'filename="([^"]*)"', cd)
    assert fallback is not None and fallback.group(1).endswith(".html")
    assert fallback.group(1).isascii()
    # the name can come from Content-Disposition of a raw upload too
    status, body, _ = await api.call(
        "POST", "/v1/jobs", data=b"plain\n",
        headers={"Content-Type": "application/octet-stream",
                 "Content-Disposition": f"attachment; filename*=UTF-8''{quote('議事録.txt')}"})
    assert status == 202, body
    job = await api.finished(body["job_id"])
    assert job["name"] == "議事録.txt" and job["verdict"] == "clean"


async def test_wait_form_and_blocked_job(api: Api) -> None:
    status, job, _ = await api.call("POST", "/v1/jobs", params={"name": "a.txt", "wait": "60"},
                                    data=b"hello\n",
                                    headers={"Content-Type": "application/octet-stream"})
    assert status == 200, job
    assert job["state"] in ("done", "delivered") and job["verdict"] == "clean"
    assert job["result_url"] == f"/v1/jobs/{job['job_id']}/result"
    # blocked: no result, the report and the reason say why
    status, job, _ = await api.call("POST", "/v1/jobs", params={"name": "setup.exe",
                                                                "wait": "60"},
                                    data=EXE, headers={"Content-Type": "application/octet-stream"})
    assert status == 200, job
    assert job["verdict"] == "blocked" and job["output_name"] is None
    assert job["result_url"] is None and job["reason"]
    check_report_schema(job["report"])
    assert job["report"]["output"] is None
    assert job["summary"]["en"][0].startswith("This file was blocked")
    assert job["reason"] == "executable.pe is blocked by policy default"
    assert job["reason_ja"] == ("実行ファイル・スクリプトは受け付けません"
                                "（executable.pe is blocked by policy default）")
    assert f"理由: {job['reason_ja']}" in job["summary"]["ja"]
    status, body, _ = await api.call("GET", f"/v1/jobs/{job['job_id']}/result")
    assert status == 410 and body["error"] == "blocked" and body["reason"] == job["reason"]
    assert body["message"] and body["message_ja"]


async def test_wait_is_capped_and_queued_job_has_no_result(tmp_path: Path,
                                                           pool: WorkerPool) -> None:
    # max_active=0: jobs are accepted and stay queued
    async for api in _make_api(tmp_path, pool, max_wait=0.2, max_active=0):
        loop = asyncio.get_running_loop()
        started = loop.time()
        status, body, _ = await api.call("POST", "/v1/jobs",
                                         params={"name": "a.html", "wait": "3600"}, data=HTML,
                                         headers={"Content-Type": "application/octet-stream"})
        assert status == 202, body
        assert loop.time() - started < 10  # did not wait an hour
        status, err, _ = await api.call("GET", body["result_url"])
        assert status == 409 and err["error"] == "not_finished" and err["state"] == "queued"
        status, job, _ = await api.call("GET", body["status_url"])
        assert status == 200 and job["state"] == "queued"
        assert job["verdict"] is None and job["report"] is None
        assert job["summary"] == {"ja": [], "en": []} and job["result_url"] is None


async def test_bad_requests(api: Api) -> None:
    octet = {"Content-Type": "application/octet-stream"}
    cases: list[tuple[dict[str, str], dict[str, str], int, str]] = [
        ({}, octet, 400, "missing_name"),
        ({"name": "../../etc/"}, octet, 400, "unsafe_name"),
        ({"name": "a\x00b.txt"}, octet, 400, "unsafe_name"),
        ({"name": "a\x1bb.txt"}, octet, 400, "unsafe_name"),
        ({"name": "invoice\u202etxt.exe"}, octet, 400, "unsafe_name"),
        ({"name": "a.txt", "policy": "nonexistent"}, octet, 400, "unknown_policy"),
        ({"name": "a.txt", "wait": "soon"}, octet, 400, "bad_wait"),
        ({"name": "a.txt"}, {"Content-Type": "text/plain"}, 415, "unsupported_media_type"),
        ({"name": "a.txt"}, {"Content-Type": "application/json"}, 415, "unsupported_media_type"),
    ]
    for params, headers, want, code in cases:
        status, body, resp = await api.call("POST", "/v1/jobs", params=params, data=b"x",
                                            headers=headers)
        assert (status, body["error"]) == (want, code), (params, body)
        assert resp.headers["Content-Type"].startswith("application/json")
        assert resp.headers["Cache-Control"] == "no-store"
    # multipart without a file field
    form = aiohttp.FormData(default_to_multipart=True)
    form.add_field("other", "x")
    status, body, _ = await api.call("POST", "/v1/jobs", data=form)
    assert (status, body["error"]) == (400, "missing_file")
    # directories are stripped from an otherwise good name; a known policy is fine
    sub = await api.submit(b"text\n", "C:\\Users\\me\\report.txt", policy="strict")
    job = await api.finished(sub["job_id"])
    assert job["name"] == "report.txt" and job["policy"] == "strict"


async def test_auth_and_isolation(api: Api) -> None:
    status, body, resp = await api.call("GET", "/v1/jobs/20260101-000000-abcdef", None)
    assert status == 401 and body["error"] == "unauthorized"
    assert resp.headers["WWW-Authenticate"].startswith("Bearer")
    status, body, resp = await api.call("POST", "/v1/jobs", None, params={"name": "a.txt"},
                                        data=b"x")
    assert status == 401
    async with api.session.get(api.base + "/v1/jobs/x",
                               headers={"Authorization": "Bearer wrong"}) as r:
        assert r.status == 401 and "invalid_token" in r.headers["WWW-Authenticate"]
    async with api.session.get(api.base + "/v1/jobs/x",
                               headers={"Authorization": "Basic " + TOKENS["alice"]}) as r:
        assert r.status == 401
    status, body, _ = await api.call("GET", "/v1/quarantine", "alice")
    assert status == 403 and body["error"] == "forbidden"
    # alice's job: bob cannot see it or its result; the admin can
    sub = await api.submit(b"mine\n", "mine.txt", who="alice")
    await api.finished(sub["job_id"], "alice")
    for path in (sub["status_url"], sub["result_url"]):
        status, body, _ = await api.call("GET", path, "bob")
        assert status == 404 and body["error"] == "not_found"
        status, _, _ = await api.call("GET", path, "admin")
        assert status == 200
    for bad in ("..", "a/b", "x" * 200, "%2e%2e"):
        status, _, _ = await api.call("GET", f"/v1/jobs/{bad}", "admin")
        assert status == 404


async def test_busy_answers_503(tmp_path: Path, pool: WorkerPool) -> None:
    async for api in _make_api(tmp_path, pool, max_pending=1, max_active=0):
        await api.submit(HTML, "a.html")  # stays queued: the queue is full
        status, body, resp = await api.call("POST", "/v1/jobs", params={"name": "b.html"},
                                            data=HTML,
                                            headers={"Content-Type": "application/octet-stream"})
        assert status == 503 and body["error"] == "busy"
        assert int(resp.headers["Retry-After"]) > 0
        assert not list((tmp_path / "http" / "uploads").iterdir())
        status, health, _ = await api.call("GET", "/healthz", None)
        assert status == 200 and health["queue"]["file_jobs"] == 1


async def test_upload_past_limit_is_not_buffered(tmp_path: Path, pool: WorkerPool) -> None:
    async for api in _make_api(tmp_path, pool, max_upload=50 * MiB):
        async def body() -> Any:
            piece = b"\0" * MiB
            for _ in range(200):  # 200 MiB, chunked: no Content-Length to refuse early
                yield piece

        tracemalloc.start()
        try:
            status, err, resp = await api.call(
                "POST", "/v1/jobs", params={"name": "big.bin"}, data=body(),
                headers={"Content-Type": "application/octet-stream"})
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
        assert status == 413 and err["error"] == "too_large" and err["limit"] == 50 * MiB
        assert resp.headers.get("Connection", "").lower() == "close"
        assert peak < 16 * MiB, f"peak traced memory {peak / MiB:.1f} MiB"
        assert not list((tmp_path / "http" / "uploads").iterdir())
        assert not [p for p in (tmp_path / "jobs").iterdir() if not p.name.startswith(".")]
        # declared too large: refused before reading
        status, err, _ = await api.call(
            "POST", "/v1/jobs", params={"name": "big.bin"}, data=b"\0" * (50 * MiB + 1),
            headers={"Content-Type": "application/octet-stream"})
        assert status == 413
        # the server still answers on a new connection
        assert (await api.call("GET", "/healthz", None))[0] == 200


# ---------------------------------------------------------------------------- ops


async def test_security_headers_request_id_and_json_errors(api: Api) -> None:
    status, body, resp = await api.call("GET", "/v1/nothing-here", None,
                                        headers={"X-Request-Id": "req-123"})
    assert status == 404 and body["error"] == "not_found"
    assert resp.headers["X-Request-Id"] == "req-123"
    for path in ("/healthz", "/v1/openapi.json", "/v1/nothing-here"):
        status, _, resp = await api.call("GET", path, None)
        assert resp.headers["Content-Security-Policy"].startswith("default-src 'self'")
        assert resp.headers["X-Frame-Options"] == "DENY"
        assert resp.headers["Referrer-Policy"] == "no-referrer"
        assert resp.headers["Cache-Control"] == "no-store"
        assert re.fullmatch(r"[0-9a-f]{16}", resp.headers["X-Request-Id"])
    status, body, resp = await api.call("PUT", "/v1/jobs", "alice")
    assert status == 405 and body["error"] == "method_not_allowed"


async def test_healthz(api: Api) -> None:
    status, body, _ = await api.call("GET", "/healthz", None)
    assert status == 200 and body["status"] == "ok"
    assert body["queue"] == {"file_jobs": 0, "file_jobs_running": 0}
    # storage that cannot be written (a file where the directory was: even root fails)
    uploads = api.root / "http" / "uploads"
    uploads.rename(api.root / "http" / "uploads.away")
    uploads.write_bytes(b"")
    try:
        status, body, resp = await api.call("GET", "/healthz", None)
        assert status == 503 and body["status"] == "unavailable"
        assert any(p.startswith("storage: ") for p in body["problems"])
        assert resp.headers["Retry-After"]
    finally:
        uploads.unlink()
        (api.root / "http" / "uploads.away").rename(uploads)


async def test_healthz_reports_a_dead_worker_pool(tmp_path: Path, pool: WorkerPool) -> None:
    async for api in _make_api(tmp_path, pool):
        api.server.ctx.health["workers"] = lambda: "worker pool is not running"
        status, body, _ = await api.call("GET", "/healthz", None)
        assert status == 503 and body["problems"] == ["workers: worker pool is not running"]


async def test_metrics_after_jobs(api: Api) -> None:
    a = await api.submit(HTML, "a.html")
    b = await api.submit(EXE, "b.exe")
    await api.finished(a["job_id"])
    await api.finished(b["job_id"])
    await api.call("GET", "/v1/jobs/unknown-job", "alice")
    status, text, resp = await api.call("GET", "/metrics", None)
    assert status == 200 and resp.headers["Content-Type"].startswith("text/plain")
    lines = text.decode().splitlines()

    def value(sample: str) -> float:
        found = [ln for ln in lines if ln.startswith(sample + " ")]
        assert found, f"{sample} not in metrics"
        return float(found[0].rsplit(" ", 1)[1])

    assert value('sekisho_jobs_total{origin="http",verdict="disarmed"}') == 1
    assert value('sekisho_jobs_total{origin="http",verdict="blocked"}') == 1
    assert value('sekisho_findings_total{kind="html.script"}') == 1
    assert value('sekisho_stage_seconds_count{stage="html"}') >= 1
    assert value('sekisho_queue_depth{queue="file_jobs"}') == 0
    assert value('sekisho_http_requests_total{method="POST",route="/v1/jobs",status="202"}') == 2
    assert value('sekisho_http_requests_total{method="GET",route="/v1/jobs/{id}",'
                 'status="404"}') == 1
    assert value('sekisho_http_request_seconds_count{route="/v1/jobs"}') == 2


async def test_metrics_need_admin_off_loopback(tmp_path: Path, pool: WorkerPool) -> None:
    async for api in _make_api(tmp_path, pool):
        api.server.ctx.metrics_public = False
        assert (await api.call("GET", "/metrics", None))[0] == 401
        assert (await api.call("GET", "/metrics", "alice"))[0] == 403
        assert (await api.call("GET", "/metrics", "admin"))[0] == 200


async def test_openapi_document(api: Api) -> None:
    status, doc, _ = await api.call("GET", "/v1/openapi.json", None)
    assert status == 200 and doc["openapi"].startswith("3.1")
    assert set(doc["paths"]) >= {"/v1/jobs", "/v1/jobs/{id}", "/v1/jobs/{id}/result",
                                 "/v1/quarantine", "/v1/quarantine/{id}",
                                 "/v1/quarantine/{id}/release", "/healthz", "/metrics"}
    schemas = doc["components"]["schemas"]
    assert "Report" in schemas and "Report_item" in schemas
    assert "$defs" not in json.dumps(doc)


# ---------------------------------------------------------------------------- quarantine


async def test_quarantine_list_read_delete(api: Api) -> None:
    blocked = await api.submit(EXE, "tool.exe", who="bob")
    clean = await api.submit(b"ok\n", "ok.txt", who="bob")
    await api.finished(blocked["job_id"], "bob")
    await api.finished(clean["job_id"], "bob")
    status, page, _ = await api.call("GET", "/v1/quarantine", "admin")
    assert status == 200 and page["total"] == 2 and page["limit"] == 50
    ids = {e["job_id"] for e in page["entries"]}
    assert ids == {blocked["job_id"], clean["job_id"]}
    status, page, _ = await api.call("GET", "/v1/quarantine", "admin",
                                     params={"origin": "http", "state": "held", "limit": "1"})
    assert status == 200 and page["total"] == 2 and len(page["entries"]) == 1
    for bad in ({"state": "gone"}, {"origin": "fax"}, {"limit": "0"}, {"offset": "-1"}):
        status, body, _ = await api.call("GET", "/v1/quarantine", "admin", params=bad)
        assert status == 400, bad
    status, entry, _ = await api.call("GET", f"/v1/quarantine/{blocked['job_id']}", "admin")
    assert status == 200
    assert entry["state"] == "held" and entry["verdict"] == "blocked"
    assert entry["destination"] == {"token": "bob"} and entry["name"] == "tool.exe"
    assert entry["releasable"] is True
    check_report_schema(entry["report"])
    assert entry["summary"]["en"][0].startswith("This file was blocked")
    status, body, _ = await api.call("GET", "/v1/quarantine/no-such-entry", "admin")
    assert status == 404
    # delete: reason required; then a tombstone
    path = f"/v1/quarantine/{clean['job_id']}"
    status, body, _ = await api.call("DELETE", path, "admin", json={"reason": "  "})
    assert status == 400 and body["error"] == "missing_reason"
    status, body, _ = await api.call("DELETE", path, "admin", data=b"not json",
                                     headers={"Content-Type": "application/json"})
    assert status == 400 and body["error"] == "bad_json"
    status, body, _ = await api.call("DELETE", path, "admin", json={"reason": "duplicate"})
    assert status == 200 and body["state"] == "deleted"
    assert body["history"][-1]["actor"] == "admin"
    assert body["history"][-1]["reason"] == "duplicate"
    status, body, _ = await api.call("DELETE", path, "admin", json={"reason": "again"})
    assert status == 409
    status, body, _ = await api.call("POST", path + "/release", "admin", json={"reason": "x"})
    assert status == 409 and body["error"] == "release_refused"
    events = [(ln["event"], ln.get("job_id")) for ln in _audit_lines(api)]
    assert ("quarantine.delete", clean["job_id"]) in events


async def test_release_of_an_http_job(api: Api) -> None:
    blocked = await api.submit(EXE, "installer.exe", who="bob")
    job = await api.finished(blocked["job_id"], "bob")
    assert job["verdict"] == "blocked"
    path = f"/v1/quarantine/{blocked['job_id']}/release"
    status, body, _ = await api.call("POST", path, "admin", json={})
    assert status == 400 and body["error"] == "missing_reason"
    status, body, _ = await api.call("POST", path, "bob", json={"reason": "mine"})
    assert status == 403
    status, body, _ = await api.call("POST", path, "admin",
                                     json={"reason": "vendor installer, checked by phone",
                                           "policy": "nonexistent"})
    assert status == 400 and body["error"] == "unknown_policy"
    # a re-run under another policy that still blocks it: nothing released
    status, body, _ = await api.call("POST", path, "admin",
                                     json={"reason": "try strict", "policy": "strict"})
    assert status == 409 and body["error"] == "release_refused"
    status, entry, _ = await api.call("GET", f"/v1/quarantine/{blocked['job_id']}", "admin")
    assert entry["state"] == "held"
    # the original, approved
    status, entry, _ = await api.call("POST", path, "admin",
                                      json={"reason": "vendor installer, checked by phone",
                                            "policy": None})
    assert status == 200, entry
    assert entry["state"] == "released"
    last = entry["history"][-1]
    assert (last["action"], last["actor"], last["reason"]) == (
        "release", "admin", "vendor installer, checked by phone")
    job = await api.finished(blocked["job_id"], "bob")
    assert job["verdict"] == "released" and job["output_name"] == "installer.exe"
    assert job["release"]["approver"] == "admin"
    assert job["release"]["reason"] == "vendor installer, checked by phone"
    assert job["summary"]["en"][0].startswith("An administrator approved")
    status, data, resp = await api.call("GET", job["result_url"], "bob")
    assert status == 200 and data == EXE
    assert "installer.exe" in resp.headers["Content-Disposition"]
    lines = _audit_lines(api)
    events = [ln for ln in lines if ln.get("job_id") == blocked["job_id"]]
    kinds = [ln["event"] for ln in events]
    assert kinds.index("quarantine.release") < kinds.index("quarantine.delivered")
    release_line = next(ln for ln in events if ln["event"] == "quarantine.release")
    assert release_line["actor"] == "admin"
    assert release_line["reason"] == "vendor installer, checked by phone"
    delivered = next(ln for ln in events if ln["event"] == "quarantine.delivered")
    assert delivered["sha256"] == hashlib.sha256(EXE).hexdigest()
    assert delivered["policy"] == "original"


async def test_release_rerun_under_another_policy(api: Api) -> None:
    html = (b"<html><body><a href='https://example.org/'>link</a><script>x()</script>"
            b"</body></html>")
    sub = await api.submit(html, "links.html", who="alice")
    job = await api.finished(sub["job_id"])
    assert job["verdict"] == "disarmed"
    status, entry, _ = await api.call("POST", f"/v1/quarantine/{sub['job_id']}/release",
                                      "admin", json={"reason": "links removed as asked",
                                                     "policy": "strict"})
    assert status == 200, entry
    job = await api.finished(sub["job_id"])
    assert job["verdict"] == "released"
    status, data, _ = await api.call("GET", job["result_url"])
    assert status == 200 and b"<script" not in data and b"example.org" not in data


async def test_held_password_zip_unlocked_over_http(api: Api) -> None:
    from tests.helpers.archivegen import PASSWORD, encrypted_zip

    data = encrypted_zip("aes256", {"見積書.html": HTML})
    status, job, _ = await api.call("POST", "/v1/jobs", "alice",
                                    params={"name": "見積.zip", "wait": "60"}, data=data,
                                    headers={"Content-Type": "application/octet-stream"})
    assert status == 200, job
    assert job["state"] == "held" and job["password_attempts_left"] == 5
    assert job["result_url"] is None
    status, body, _ = await api.call("GET", f"/v1/jobs/{job['job_id']}/result")
    assert status == 409 and body["error"] == "held"
    path = f"/v1/jobs/{job['job_id']}/unlock"
    assert (await api.call("POST", path, "bob", json={"password": PASSWORD}))[0] == 404
    status, body, _ = await api.call("POST", path, json={})
    assert status == 400 and body["error"] == "missing_password"
    status, wrong, _ = await api.call("POST", path, json={"password": "guess"})
    assert status == 200 and wrong["state"] == "held"
    assert wrong["password_attempts_left"] == 4 and wrong["reason"]
    status, done, _ = await api.call("POST", path, json={"password": PASSWORD})
    assert status == 200 and done["verdict"] == "disarmed", done
    assert done["password_attempts_left"] is None and done["result_url"]
    status, result, _ = await api.call("GET", done["result_url"])
    assert status == 200 and result[:2] == b"PK"
    status, body, _ = await api.call("POST", path, json={"password": PASSWORD})
    assert status == 409 and body["error"] == "not_held"


async def test_release_dispatches_by_origin(api: Api, tmp_path: Path) -> None:
    from gateway.admin import Release

    original = tmp_path / "mail.eml"
    original.write_bytes(b"From: a@example.org\r\nSubject: x\r\n\r\nbody\r\n")
    report = {"schema": 1, "job_id": "20261126-000000-smtp00000001", "source": "smtp",
              "policy": "default",
              "input": {"name": "message.eml", "sha256": "0" * 64, "size": 1,
                        "type": "mail.eml"},
              "output": None, "verdict": "blocked",
              "items": [{"stage": "pipeline", "location": "message.eml", "verdict": "blocked",
                         "elapsed_ms": 1, "findings": [], "error": "test"}]}
    for job_id, origin, meta in (
            ("20261126-000000-smtp00000001", "smtp",
             {"sender": "a@example.org", "recipients": ["b@localhost"]}),
            ("20261126-000000-fold00000001", "folder", {"folder": "default", "file": "x"})):
        await asyncio.to_thread(api.admin.quarantine.put, job_id, original,
                                {**report, "job_id": job_id, "source": origin},
                                {"origin": origin, "verdict": "blocked", "reason": "test",
                                 **meta})
    # no handler for folder entries (in this test): not releasable, 409, nothing recorded
    status, entry, _ = await api.call("GET", "/v1/quarantine/20261126-000000-fold00000001",
                                      "admin")
    assert status == 200 and entry["releasable"] is False
    status, body, _ = await api.call("POST", "/v1/quarantine/20261126-000000-fold00000001/"
                                     "release", "admin", json={"reason": "r"})
    assert status == 409 and "no release handler" in body["message"]
    # an smtp handler gets the decrypted original, where it was going, approver and reason
    seen: list[tuple[bytes, dict[str, Any], str, str, str]] = []
    fail = [True]

    async def smtp_handler(release: Release) -> str:
        if fail[0]:
            raise ConnectionError("downstream refused")
        seen.append((release.path.read_bytes(), release.entry.destination, release.name,
                     release.approver, release.reason))
        return "b@localhost"

    api.admin.register_release("smtp", smtp_handler)
    path = "/v1/quarantine/20261126-000000-smtp00000001/release"
    status, body, _ = await api.call("POST", path, "admin", json={"reason": "known sender"})
    assert status == 502 and body["error"] == "release_failed"
    fail[0] = False
    status, entry, _ = await api.call("POST", path, "admin", json={"reason": "known sender"})
    assert status == 200 and entry["state"] == "released"
    assert seen == [(original.read_bytes(),
                     {"sender": "a@example.org", "recipients": ["b@localhost"]},
                     "message.eml", "admin", "known sender")]
    assert [a["action"] for a in entry["history"]] == ["release", "release"]
    events = [ln["event"] for ln in _audit_lines(api)
              if ln.get("job_id") == "20261126-000000-smtp00000001"]
    assert events == ["quarantine.release", "quarantine.release_failed",
                      "quarantine.release", "quarantine.delivered"]
    assert not list((api.root / "release").iterdir())  # decrypted copies are gone


async def test_json_body_sent_in_pieces_is_read_whole(api: Api) -> None:
    """A JSON body that arrives in several pieces (chunked, with pauses) is read to
    its end, not cut at the first piece the server happened to have."""
    clean = await api.submit(b"ok\n", "ok.txt", who="bob")
    await api.finished(clean["job_id"], "bob")
    reason = "arrived twice " * 60
    body = json.dumps({"reason": reason}).encode()

    async def pieces() -> AsyncIterator[bytes]:
        for start in range(0, len(body), 100):
            yield body[start:start + 100]
            await asyncio.sleep(0.02)

    status, entry, _ = await api.call("DELETE", f"/v1/quarantine/{clean['job_id']}", "admin",
                                      data=pieces(),
                                      headers={"Content-Type": "application/json"})
    assert status == 200, entry
    assert entry["state"] == "deleted"
    assert entry["history"][-1]["reason"] == reason.strip()

"""schemathesis against the live server and its own OpenAPI document.

The server (real worker pool, job store, quarantine, audit log) runs in a thread with
its own event loop, because schemathesis calls it synchronously. Every operation is
exercised with an admin token; checks: not_a_server_error, status_code_conformance,
content_type_conformance, response_schema_conformance.
"""

from __future__ import annotations

import asyncio
import hashlib
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
)
from schemathesis.generation import GenerationMode

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

pytestmark = pytest.mark.xdist_group("workers")

ADMIN_TOKEN = "schemathesis-admin-" + "z" * 30
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance,
          response_schema_conformance]


class ThreadedServer:
    """The daemon's HTTP side in a thread, with its own event loop."""

    def __init__(self, root: Path, pool: WorkerPool) -> None:
        self.root = root
        self.pool = pool
        self.port = 0
        self._ready = threading.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="http-under-test", daemon=True)

    def __enter__(self) -> ThreadedServer:
        self._thread.start()
        if not self._ready.wait(60):
            raise RuntimeError("the server did not start")
        if self._error is not None:
            raise self._error
        return self

    def __exit__(self, *exc: object) -> None:
        if self._loop is not None and self._stop is not None:
            self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(60)

    def _run(self) -> None:
        try:
            asyncio.run(self._main())
        except BaseException as exc:
            self._error = exc
            self._ready.set()

    async def _main(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        audit = AuditLog(self.root / "audit.log")
        quarantine = Quarantine(self.root / "quarantine", audit=audit)
        policies = {"default": load("default"), "strict": load("strict")}
        jobs = JobService(JobStore(self.root / "jobs"), self.pool, policies,
                          default_policy="default", quarantine=quarantine, audit=audit,
                          retry_delay=0.05)
        metrics = Metrics()
        metrics.watch_jobs(jobs)
        await jobs.start()
        admin = Admin(quarantine, jobs, self.root / "release", audit=audit)
        # entries for the listing to return (blocked, held for review, and clean)
        seeds = {"tool.exe": b"MZ" + b"\x90" * 58 + b"\x80\x00\x00\x00" + b"\x00" * 300,
                 "page.html": b"<p>hi</p><script>x()</script>", "a.txt": b"plain\n"}
        for name, data in seeds.items():
            src = self.root / name
            src.write_bytes(data)
            rec = await jobs.submit(src, name=name, origin="http", requester="admin",
                                    move=True)
            await jobs.wait(rec.job_id, 60)
        token = TokenConfig("admin", hashlib.sha256(ADMIN_TOKEN.encode()).hexdigest(),
                            ("submit", "admin"))
        cfg = HTTPConfig(host="127.0.0.1", port=0, tokens=(token,), policies=("strict",),
                         max_upload=1024 * 1024, max_wait=2.0)
        server = HTTPServer(cfg, jobs=jobs, var_dir=self.root, metrics=metrics, admin=admin)
        await server.start()
        self.port = server.port
        self._ready.set()
        try:
            await self._stop.wait()
        finally:
            await server.stop(1)
            await jobs.stop(1)


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ThreadedServer]:
    root = tmp_path_factory.mktemp("schema")
    with WorkerPool(2, start_method="fork") as pool, ThreadedServer(root, pool) as server:
        yield server


#: every operation of gateway/ingress/openapi.json (the test below fails when one is missing)
OPERATIONS = [("POST", "/v1/jobs"), ("GET", "/v1/jobs/{id}"), ("GET", "/v1/jobs/{id}/result"),
              ("POST", "/v1/jobs/{id}/unlock"),
              ("GET", "/v1/quarantine"), ("GET", "/v1/quarantine/{id}"),
              ("DELETE", "/v1/quarantine/{id}"), ("POST", "/v1/quarantine/{id}/release"),
              ("GET", "/v1/unlock/{id}"), ("POST", "/v1/unlock/{id}"),
              ("GET", "/healthz"), ("GET", "/metrics")]
#: operations with parameters or a body: they get negative (invalid) input too
NEGATIVE = [op for op in OPERATIONS if op[1].startswith("/v1/")]


@pytest.fixture(scope="module")
def api_schema(live: ThreadedServer) -> Any:
    return schemathesis.openapi.from_url(f"http://127.0.0.1:{live.port}/v1/openapi.json")


def test_the_listing_has_entries(live: ThreadedServer) -> None:
    """The fuzzed listing validates real entries against the schema, not only []."""
    import json
    import urllib.request

    req = urllib.request.Request(f"http://127.0.0.1:{live.port}/v1/quarantine",
                                 headers={"Authorization": f"Bearer {ADMIN_TOKEN}"})
    with urllib.request.urlopen(req, timeout=10) as resp:
        assert json.load(resp)["total"] == 3


def test_every_operation_is_covered(api_schema: Any) -> None:
    found = set()
    for result in api_schema.get_all_operations():
        op = result.ok()
        found.add((op.method.upper(), op.path))
    assert found == set(OPERATIONS)  # schemathesis leaves out the document's own route


CASES = [(*op, GenerationMode.POSITIVE) for op in OPERATIONS] + [
    (*op, GenerationMode.NEGATIVE) for op in NEGATIVE]


@pytest.mark.parametrize(("method", "path", "mode"), CASES,
                         ids=[f"{m} {p} {g.value}" for m, p, g in CASES])
def test_operation_conforms_to_the_document(api_schema: Any, live: ThreadedServer,
                                            method: str, path: str,
                                            mode: GenerationMode) -> None:
    operation = api_schema[path][method]
    base = f"http://127.0.0.1:{live.port}"

    @given(case=operation.as_strategy(generation_mode=mode))
    @settings(max_examples=50, deadline=None, database=None,
              suppress_health_check=list(HealthCheck))
    def run(case: Any) -> None:
        case.call_and_validate(base_url=base, checks=CHECKS,
                               headers={"Authorization": f"Bearer {ADMIN_TOKEN}"})

    run()

"""The web page in Debian's chromium (Playwright), against a real HTTP front end.

One server for a module of browser tests, built the way the HTTP API's own tests build
it (tests/integration/test_http_api.py): a real worker pool, job store, sealed
quarantine, audit log and admin service, and gateway/ingress/http.py's HTTPServer on
127.0.0.1 with a free port. It runs on its own event loop in a thread, because
Playwright's sync API owns the test thread.

Chromium is Debian's ``/usr/bin/chromium`` (``make tools`` installs it); Playwright's own
browser builds are never downloaded. A missing browser fails the suite naming the
package: it is never skipped.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import threading
import urllib.error
import urllib.request
from collections.abc import Callable, Coroutine, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

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

CHROMIUM = Path(os.environ.get("SEKISHO_CHROMIUM", "/usr/bin/chromium"))
TOKENS = {"admin": "adm-" + "A" * 40, "alice": "ali-" + "B" * 40}
ROLES = {"admin": ("submit", "admin"), "alice": ("submit",)}
LOCALES = {"ja": "ja-JP", "en": "en-US"}
MAX_UPLOAD = 2 * 1024 * 1024  # small, so the page meets a real 413
T = TypeVar("T")

#: records CSP violations and every text a job's state line shows, from the first
#: script on; installed through CDP, so the page's own CSP does not apply to it
_INIT = """
window.__csp = [];
window.__states = [];
document.addEventListener("securitypolicyviolation", (e) => {
  window.__csp.push(`${e.violatedDirective} ${e.blockedURI}`);
});
new MutationObserver((records) => {
  for (const r of records) {
    const el = r.target.nodeType === 3 ? r.target.parentElement : r.target;
    if (el && el.classList && el.classList.contains("job-state") && el.textContent) {
      const last = window.__states[window.__states.length - 1];
      if (last !== el.textContent) window.__states.push(el.textContent);
    }
  }
}).observe(document, { subtree: true, childList: true, characterData: true });
"""


class Daemon:
    """The HTTP front end and its services on a private event loop in a thread."""

    def __init__(self, root: Path, pool: WorkerPool) -> None:
        self.root = root
        self.pool = pool
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name="sekisho-http",
                                       daemon=True)
        self.server: HTTPServer | None = None
        self.jobs: JobService | None = None
        self.base = ""

    def run(self, coro: Coroutine[Any, Any, T], timeout: float = 60) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def start(self) -> None:
        self.thread.start()
        self.run(self._start())

    async def _start(self) -> None:
        root = self.root
        audit = AuditLog(root / "audit.log")
        quarantine = Quarantine(root / "quarantine", audit=audit)
        policies = {"default": load("default"), "strict": load("strict")}
        self.jobs = JobService(JobStore(root / "jobs"), self.pool, policies,
                               default_policy="default", quarantine=quarantine, audit=audit,
                               retry_delay=0.05)
        metrics = Metrics()
        self.jobs.add_listener(metrics.job_listener)
        await self.jobs.start()
        admin = Admin(quarantine, self.jobs, root / "release", audit=audit)
        tokens = tuple(TokenConfig(n, hashlib.sha256(t.encode()).hexdigest(), ROLES[n])
                       for n, t in TOKENS.items())
        cfg = HTTPConfig(host="127.0.0.1", port=0, tokens=tokens, max_wait=60.0,
                         max_upload=MAX_UPLOAD)
        self.server = HTTPServer(cfg, jobs=self.jobs, var_dir=root, metrics=metrics,
                                 admin=admin)
        await self.server.start()
        self.base = f"http://127.0.0.1:{self.server.port}"

    def stop(self) -> None:
        async def _stop() -> None:
            if self.server is not None:
                await self.server.stop(1)
            if self.jobs is not None:
                await self.jobs.stop(1)

        try:
            self.run(_stop())
        finally:
            self.loop.call_soon_threadsafe(self.loop.stop)
            self.thread.join(10)

    # -------------------------------------------------------------- the API, directly

    def call(self, method: str, path: str, who: str = "admin", *, body: bytes | None = None,
             json_body: Any = None, ctype: str | None = None) -> tuple[int, Any]:
        headers = {"Authorization": f"Bearer {TOKENS[who]}"}
        if json_body is not None:
            body = json.dumps(json_body).encode()
            ctype = "application/json"
        if ctype:
            headers["Content-Type"] = ctype
        req = urllib.request.Request(self.base + path, data=body, headers=headers,
                                     method=method)
        try:
            with urllib.request.urlopen(req, timeout=60) as resp:
                status, raw, rtype = resp.status, resp.read(), resp.headers["Content-Type"]
        except urllib.error.HTTPError as err:
            status, raw, rtype = err.code, err.read(), err.headers["Content-Type"]
        data = json.loads(raw) if (rtype or "").startswith("application/json") else raw
        return status, data

    def submit(self, data: bytes, name: str, who: str = "alice") -> dict[str, Any]:
        """A job submitted through the API itself, finished (``wait``)."""
        from urllib.parse import quote

        status, body = self.call("POST", f"/v1/jobs?wait=60&name={quote(name)}", who,
                                 body=data, ctype="application/octet-stream")
        assert status == 200, body
        return dict(body)

    def job(self, job_id: str, who: str = "admin") -> dict[str, Any]:
        status, body = self.call("GET", f"/v1/jobs/{job_id}", who)
        assert status == 200, body
        return dict(body)

    def entry(self, job_id: str) -> dict[str, Any]:
        status, body = self.call("GET", f"/v1/quarantine/{job_id}")
        assert status == 200, body
        return dict(body)

    def audit(self) -> list[dict[str, Any]]:
        text = (self.root / "audit.log").read_text("utf-8")
        return [json.loads(line) for line in text.splitlines() if line.strip()]

    def result_bytes(self, job_id: str) -> bytes:
        return (self.root / "jobs" / job_id / "result").read_bytes()


@pytest.fixture(scope="session")
def chromium() -> Path:
    if not (CHROMIUM.is_file() and os.access(CHROMIUM, os.X_OK)):
        pytest.fail(f"{CHROMIUM} is missing: install the Debian package chromium "
                    "(apt-get install chromium; `make tools` does it as root)")
    return CHROMIUM


@pytest.fixture(scope="module")
def daemon(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Daemon]:
    # forkserver, as the daemon: the worker processes are not forked from a process
    # that runs Playwright's threads
    with WorkerPool(2, start_method="forkserver") as pool:
        d = Daemon(tmp_path_factory.mktemp("sekisho-web"), pool)
        d.start()
        try:
            yield d
        finally:
            d.stop()


@pytest.fixture(scope="module")
def browser(chromium: Path) -> Iterator[Any]:
    """Module scope: Playwright's sync API keeps an event loop marked running in this
    thread while it is open, which the asyncio tests that run after it (in this
    xdist worker) could not live with."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=str(chromium), headless=True)
        try:
            yield b
        finally:
            b.close()


@dataclass
class Watched:
    """A page, and everything it complained about."""

    page: Any
    lang: str
    console: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    def problems(self, allowed_statuses: tuple[int, ...] = ()) -> list[str]:
        """Console errors and warnings, page errors and CSP violations; a console
        "Failed to load resource" for an API answer the test expects is allowed."""
        allowed = tuple(f"the server responded with a status of {s} " for s in allowed_statuses)
        found = [m for m in self.console if not any(a in m for a in allowed)]
        found += self.errors
        found += [f"CSP: {v}" for v in self.page.evaluate("window.__csp || []")]
        return found

    def states(self) -> list[str]:
        return list(self.page.evaluate("window.__states"))


@pytest.fixture
def open_page(browser: Any) -> Iterator[Callable[..., Watched]]:
    contexts: list[Any] = []

    def make(lang: str) -> Watched:
        ctx = browser.new_context(locale=LOCALES[lang], accept_downloads=True)
        contexts.append(ctx)
        ctx.add_init_script(_INIT)
        page = ctx.new_page()
        page.set_default_timeout(20_000)
        watched = Watched(page, lang)

        def on_console(msg: Any) -> None:
            if msg.type in ("error", "warning"):
                watched.console.append(f"{msg.type}: {msg.text}")

        page.on("console", on_console)
        page.on("pageerror", lambda exc: watched.errors.append(f"pageerror: {exc}"))
        return watched

    yield make
    for ctx in contexts:
        ctx.close()

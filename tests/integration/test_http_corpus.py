"""Every category of the shared corpus submitted through the HTTP API (real server,
real worker pool): each file gets a report; delivered ones download, blocked ones
say why (password-protected ones are held for their password). Delivered PDFs pass
``qpdf --check``; delivered HTML has no ``<script``.

Every file of every category goes through (228 files, well under a minute on two
workers)."""

from __future__ import annotations

import asyncio
import subprocess
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from gateway.pipeline.workers import WorkerPool
from tests.conftest import check_report_schema, corpus_dir
from tests.integration.test_http_api import Api, _make_api

pytestmark = [pytest.mark.xdist_group("workers"), pytest.mark.slow]

CATEGORIES = ("a_pdf", "b_ooxml", "c_ole", "d_rtf", "e_html_svg", "f_archive", "g_email",
              "h_image")


def corpus_selection() -> dict[str, list[Path]]:
    root = corpus_dir()
    chosen: dict[str, list[Path]] = {}
    for category in CATEGORIES:
        folder = root / category
        if not folder.is_dir():
            pytest.fail(f"corpus category {category} is missing under {root}")
        files = sorted(p for p in folder.rglob("*") if p.is_file())
        assert files, f"no files in corpus category {category}"
        chosen[category] = files
    return chosen


@pytest.fixture
async def api(tmp_path: Path, pool: WorkerPool) -> AsyncIterator[Api]:
    async for a in _make_api(tmp_path, pool, max_upload=64 * 1024 * 1024):
        yield a


async def _through(api: Api, path: Path, sem: asyncio.Semaphore) -> dict[str, Any]:
    async with sem:
        form = aiohttp.FormData()
        form.add_field("file", path.read_bytes(), filename=path.name,
                       content_type="application/octet-stream")
        status, body, _ = await api.call("POST", "/v1/jobs", data=form)
        assert status == 202, (path, body)
        job = await api.finished(body["job_id"], timeout=280)
        job["_path"] = path
        return job


async def test_every_corpus_category_through_http(api: Api, tmp_path: Path) -> None:
    selection = corpus_selection()
    sem = asyncio.Semaphore(8)
    jobs = await asyncio.gather(*(_through(api, p, sem) for files in selection.values()
                                  for p in files))
    by_category: dict[str, list[dict[str, Any]]] = {}
    problems: list[str] = []
    out = tmp_path / "results"
    out.mkdir()
    for job in jobs:
        path: Path = job.pop("_path")
        category = path.relative_to(corpus_dir()).parts[0]
        by_category.setdefault(category, []).append(job)
        label = str(path.relative_to(corpus_dir()))
        report = job["report"]
        assert report is not None, label
        check_report_schema(report)
        assert job["summary"]["ja"] and len(job["summary"]["ja"]) == len(job["summary"]["en"])
        if job["verdict"] in ("clean", "disarmed"):
            status, data, resp = await api.call("GET", f"/v1/jobs/{job['job_id']}/result")
            assert status == 200, (label, data)
            assert resp.headers["Content-Disposition"].startswith("attachment;")
            result = out / job["job_id"]
            result.write_bytes(data)
            kind = str(report["output"]["type"])
            if kind.startswith("pdf"):
                check = subprocess.run(["qpdf", "--check", str(result)], capture_output=True,
                                       text=True, timeout=120)
                if check.returncode != 0:
                    problems.append(f"{label}: qpdf --check exit {check.returncode}: "
                                    f"{check.stdout[-300:]}{check.stderr[-300:]}")
            if (kind.startswith("html") or kind == "svg") and b"<script" in data.lower():
                problems.append(f"{label}: <script left in the {kind} output")
        else:
            assert job["verdict"] in ("blocked", "failed"), (label, job["verdict"])
            assert job["reason"], f"{label}: {job['verdict']} without a reason"
            assert job["output_name"] is None and job["result_url"] is None
            status, body, _ = await api.call("GET", f"/v1/jobs/{job['job_id']}/result")
            if job["state"] == "held":  # password-protected: waits for its password
                assert status == 409 and body["error"] == "held", label
                assert job["password_attempts_left"], label
            else:
                assert status == 410 and body["reason"] == job["reason"], label
    assert not problems, "\n".join(problems)
    manifest = (corpus_dir() / "MANIFEST.tsv").read_text().splitlines()[1:]
    assert len(jobs) == len([row for row in manifest if row.strip()])
    assert set(by_category) == set(CATEGORIES)
    # the daemon delivers something in every category (a sweep that blocks everything
    # would pass the checks above)
    for category, done in by_category.items():
        assert any(j["verdict"] in ("clean", "disarmed") for j in done), category

"""Releasing a drop-folder original through the admin API of the real daemon: it lands
in the outbox of its pair, beside a note naming approver and reason; a re-run under
another policy delivers that result instead."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.helpers.jobs import EXE, HTML
from tests.helpers.smtppeers import Daemon, wait_for
from tests.integration.test_ppap import http_port
from tests.integration.test_release_mail import admin_api

pytestmark = pytest.mark.xdist_group("smtp")


def test_folder_release_writes_into_the_outbox(tmp_path: Path) -> None:
    work = tmp_path / "d"
    d = Daemon(work, {"http": {"enabled": True, "listen": "127.0.0.1:0", "policies": ["strict"]},
                      "folders": [{"name": "kikaku", "inbox": str(work / "in"),
                                   "outbox": str(work / "out"), "stable": "0.3s"}]})
    d.start()
    try:
        port = http_port(d)
        (work / "in" / "sub").mkdir(parents=True)
        (work / "in" / "sub" / "tool.exe").write_bytes(EXE)
        (work / "in" / "page.html").write_bytes(HTML)
        report = work / "out" / "sub" / "tool.exe.report.json"
        wait_for(report.exists, 60, "report")
        job_id = json.loads(report.read_text())["job_id"]
        assert not (work / "out" / "sub" / "tool.exe").exists()  # blocked
        status, entry = admin_api(d.var, port, "POST", f"/v1/quarantine/{job_id}/release",
                                  {"reason": "検証用ツール（情報政策課確認）"})
        assert status == 200, entry
        assert (work / "out" / "sub" / "tool.exe").read_bytes() == EXE
        note = (work / "out" / "sub" / "tool.exe.released.txt").read_text(encoding="utf-8-sig")
        assert "検証用ツール（情報政策課確認）" in note and job_id in note and "admin" in note

        html_report = work / "out" / "page.html.report.json"
        wait_for(html_report.exists, 60, "html report")
        html_job = json.loads(html_report.read_text())["job_id"]
        # a re-run under another policy: the strict policy's result, never the original
        status, entry = admin_api(d.var, port, "POST", f"/v1/quarantine/{html_job}/release",
                                  {"reason": "再処理", "policy": "strict"})
        assert status == 200, entry
        again = (work / "out" / "page (2).html").read_bytes()
        assert b"<script" not in again and b"hello" in again
        assert "strict" in (work / "out" / "page (2).html.released.txt").read_text(
            encoding="utf-8-sig")
    finally:
        d.stop()


def test_held_zip_in_a_folder_is_opened_through_its_notice_link(tmp_path: Path) -> None:
    import re
    import zipfile

    from tests.helpers.archivegen import PASSWORD, encrypted_zip
    from tests.integration.test_ppap import api

    work = tmp_path / "d"
    d = Daemon(work, {"http": {"enabled": True, "listen": "127.0.0.1:0",
                               "public_url": "https://sekisho.example.lg.jp"},
                      "folders": [{"name": "soumu", "inbox": str(work / "in"),
                                   "outbox": str(work / "out"), "stable": "0.3s"}]})
    d.start()
    try:
        port = http_port(d)
        (work / "in").mkdir(parents=True, exist_ok=True)
        (work / "in" / "見積.zip").write_bytes(encrypted_zip("aes256", {"a.html": HTML}))
        notice = work / "out" / "見積.zip.blocked.txt"
        wait_for(notice.exists, 60, "hold notice")
        text = notice.read_text(encoding="utf-8-sig")
        m = re.search(r"https://sekisho\.example\.lg\.jp/#unlock/([^/\s]+)/([0-9a-f]+)", text)
        assert m, text
        job_id, key = m.groups()
        status, view = api(port, "GET", f"/v1/unlock/{job_id}?key={key}")
        assert (status, view["state"], view["delivery"]) == (200, "held", "folder")
        status, done = api(port, "POST", f"/v1/unlock/{job_id}",
                           {"key": key, "password": PASSWORD})
        assert (status, done["verdict"]) == (200, "disarmed")
        result = work / "out" / "見積.zip"
        wait_for(result.exists, 60, "result")
        with zipfile.ZipFile(result) as zf:
            assert zf.namelist() == ["a.html"] and b"<script" not in zf.read("a.html")
        wait_for(lambda: not notice.exists(), 30, "the notice making way")
    finally:
        d.stop()


def test_a_dangling_link_on_the_note_name_is_a_taken_name(tmp_path: Path) -> None:
    """The released file and its note take a free pair of names: a dangling symbolic link
    where the note would go makes the pair taken, not a release that wrote the file and
    then failed (audited as failed with the original in the outbox, and no note)."""
    import asyncio
    from types import SimpleNamespace
    from typing import Any, cast

    from gateway.admin import Release
    from gateway.config import FolderPair
    from gateway.egress.folder_release import folder_release

    original = tmp_path / "original"
    original.write_bytes(EXE)
    pair = FolderPair(name="kikaku", inbox=tmp_path / "in", outbox=tmp_path / "out")
    (tmp_path / "out" / "sub").mkdir(parents=True)
    (tmp_path / "out" / "sub" / "tool.exe.released.txt").symlink_to(tmp_path / "nowhere")
    entry = SimpleNamespace(job_id="20260101-000000-abcdef", destination={"folder": "kikaku"},
                            extra={"extra": {"folder": "kikaku", "path": "sub/tool.exe"}})
    release = Release(cast(Any, entry), original, "tool.exe", "admin", "検証", None, None)
    where = asyncio.run(folder_release([pair])(release))
    assert where == "written to kikaku: sub/tool (2).exe"
    assert (tmp_path / "out" / "sub" / "tool (2).exe").read_bytes() == EXE
    assert "20260101-000000-abcdef" in (tmp_path / "out" / "sub" / "tool (2).exe.released.txt"
                                         ).read_text(encoding="utf-8-sig")
    assert not (tmp_path / "out" / "sub" / "tool.exe").exists()

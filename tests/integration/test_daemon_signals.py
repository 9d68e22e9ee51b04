"""The whole daemon and its signals: SIGHUP reloads policies (a broken one is refused
and the running ones stay), SIGTERM drains and exits 0 with nothing lost."""

from __future__ import annotations

import json
import os
import signal
from pathlib import Path

import pytest

from gateway import policy as policy_mod
from tests.helpers.smtppeers import Daemon, wait_for

pytestmark = pytest.mark.xdist_group("smtp")

HTML = b"<html><body><p>hello</p><script>alert(1)</script></body></html>"


def start(work: Path) -> Daemon:
    default = Path(policy_mod.resolve("default"))
    (work / "policies").mkdir(parents=True)
    (work / "policies" / "site.yaml").write_text(
        default.read_text(encoding="utf-8").replace("name: default", "name: site"),
        encoding="utf-8")
    d = Daemon(work, {"policy": str(work / "policies" / "site.yaml"),
                      "folders": [{"name": "main", "inbox": str(work / "in"),
                                   "outbox": str(work / "out"), "stable": "0.3s"}]})
    d.start()
    return d


def report(d: Daemon, name: str) -> dict[str, object]:
    path = d.workdir / "out" / f"{name}.report.json"
    wait_for(path.exists, 60, f"report of {name}")
    data: dict[str, object] = json.loads(path.read_text(encoding="utf-8"))
    return data


def events(d: Daemon, name: str) -> list[dict[str, object]]:
    return [e for e in d.events() if e.get("event") == name]


def test_sighup_reloads_policies_and_refuses_a_broken_one(tmp_path: Path) -> None:
    d = start(tmp_path / "d")
    try:
        assert d.proc is not None
        (d.workdir / "in" / "a.html").write_bytes(HTML)
        assert report(d, "a.html")["verdict"] == "disarmed"

        site = d.workdir / "policies" / "site.yaml"
        site.write_text(site.read_text(encoding="utf-8").replace(
            "html:  {action: disarm}", "html:  {action: block}"),
            encoding="utf-8")
        os.kill(d.proc.pid, signal.SIGHUP)
        wait_for(lambda: events(d, "sekisho.reloaded"), 30, "reload")
        (d.workdir / "in" / "b.html").write_bytes(HTML)
        blocked = report(d, "b.html")
        assert blocked["verdict"] == "blocked"

        site.write_text("name: site\nformats: {html: {action: explode}}\n", encoding="utf-8")
        os.kill(d.proc.pid, signal.SIGHUP)
        wait_for(lambda: events(d, "sekisho.reload_failed"), 30, "refused reload")
        (failed,) = events(d, "sekisho.reload_failed")
        assert "formats.html.action" in str(failed["error"])
        (d.workdir / "in" / "c.html").write_bytes(HTML)
        assert report(d, "c.html")["verdict"] == "blocked"  # the last good policy still rules
        assert d.proc.poll() is None
        audit = (d.var / "audit.log").read_text(encoding="utf-8")
        reloads = [json.loads(line) for line in audit.splitlines()
                   if '"policy.reload"' in line]
        assert [r["ok"] for r in reloads] == [True, False]
    finally:
        assert d.stop() == 0


def test_sigterm_drains_and_restart_finishes_the_rest(tmp_path: Path) -> None:
    d = start(tmp_path / "d")
    names = [f"f{i:02}.html" for i in range(30)]
    for name in names:
        (d.workdir / "in" / name).write_bytes(HTML)
    wait_for(lambda: events(d, "jobs.accepted"), 60, "a first job")
    assert d.stop() == 0  # SIGTERM in the middle: a clean exit, nothing half-written
    assert events(d, "sekisho.stopped")
    d.start()
    try:
        for name in names:
            assert report(d, name)["verdict"] == "disarmed"
        out = sorted(p.name for p in (d.workdir / "out").iterdir() if p.suffix == ".html")
        assert out == names
        assert not [p for p in (d.workdir / "in").iterdir() if not p.name.startswith(".")]
    finally:
        assert d.stop() == 0

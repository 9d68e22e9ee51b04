"""`sekisho audit verify` and `sekisho quarantine ...` as admins run them: real files, real
key file, the real command in a subprocess; exit codes and one-line errors."""

from __future__ import annotations

import json
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

from gateway import config
from gateway.store import quarantine_file as entry_file
from gateway.store.audit import AuditLog
from gateway.store.quarantine import Quarantine
from gateway.store.sealed import HEADER_SIZE, load_keyring
from tests.helpers.cli import one_clear_line, sekisho

BODY = b"From: yamada@example.jp\r\nSubject: plans\r\n\r\nsecret body text\r\n"


@dataclass
class Site:
    root: Path
    conf: Path
    ids: dict[str, str]

    @property
    def var(self) -> Path:
        return self.root / "var"

    def run(self, *args: str | Path) -> subprocess.CompletedProcess[str]:
        return sekisho(*args, "--config", self.conf, cwd=self.root)

    def audit_events(self) -> list[dict[str, object]]:
        path = self.var / "admin-audit.log"
        return [json.loads(x) for x in path.read_text(encoding="utf-8").splitlines()]


@pytest.fixture
def site(tmp_path: Path) -> Site:
    conf = tmp_path / "sekisho.yaml"
    conf.write_text("var_dir: var\nquarantine: {retention: 2s}\n"
                    "audit: {path: var/admin-audit.log}\n", encoding="utf-8")
    cfg = config.load(conf)
    keys = load_keyring(cfg.quarantine_key, create=True)
    q = Quarantine(cfg.var_dir / "quarantine", keys, retention=3600,
                   audit=AuditLog(cfg.audit_path))
    src = tmp_path / "original.eml"
    src.write_bytes(BODY)
    report = {"schema": 1, "source": "smtp", "policy": "default", "verdict": "blocked",
              "input": {"name": "message.eml"},
              "items": [{"findings": [{"kind": "executable.pe", "action": "blocked",
                                       "location": "tool.exe"}]}]}
    q.put("20261126-101500-aaaa", src, report,
          {"origin": "smtp", "sender": "yamada@example.jp", "recipients": ["k@city.lg.jp"],
           "verdict": "blocked", "reason": "executable.pe is blocked"})
    q.put("20261126-101501-bbbb", src, {**report, "verdict": "disarmed"},
          {"origin": "folder", "requester": "soumu", "name": "見積書.docx"})
    q.put("20261126-101502-cccc", src, {**report, "verdict": "clean"},
          {"origin": "http", "requester": "staff"})
    q.close()
    return Site(tmp_path, conf, {"smtp": "20261126-101500-aaaa",
                                 "folder": "20261126-101501-bbbb",
                                 "http": "20261126-101502-cccc"})


def test_list_table_and_json(site: Site) -> None:
    proc = site.run("quarantine", "list")
    assert proc.returncode == 0, proc.stderr
    rows = proc.stdout.splitlines()
    assert rows[0].split()[:5] == ["JOB", "ID", "CREATED", "ORIGIN", "STATE"]
    assert "yamada@example.jp -> k@city.lg.jp" in proc.stdout
    assert "soumu/見積書.docx" in proc.stdout and "token staff" in proc.stdout
    assert rows[-1] == "1-3 of 3"
    data = json.loads(site.run("quarantine", "list", "--json", "--origin", "folder").stdout)
    assert data["total"] == 1
    [entry] = data["entries"]
    assert entry["job_id"] == site.ids["folder"] and entry["state"] == "held"
    assert entry["destination"] == {"folder": "soumu", "file": "見積書.docx"}
    assert site.run("quarantine", "list", "--state", "deleted").stdout.startswith(
        "no entries")


def test_show(site: Site) -> None:
    proc = site.run("quarantine", "show", site.ids["smtp"])
    assert proc.returncode == 0, proc.stderr
    assert "executable.pe is blocked" in proc.stdout and "history: none" in proc.stdout
    assert "executable.pe" in proc.stdout and "tool.exe" in proc.stdout
    data = json.loads(site.run("quarantine", "show", site.ids["smtp"], "--json").stdout)
    assert data["entry"]["destination"]["sender"] == "yamada@example.jp"
    assert data["report"]["verdict"] == "blocked"


def test_export_is_audited_and_never_overwrites(site: Site) -> None:
    out = site.root / "exported.eml"
    proc = site.run("quarantine", "export", site.ids["smtp"], "-o", out,
                    "--approver", "suzuki", "--reason", "sender asked, ticket 7")
    assert proc.returncode == 0, proc.stderr
    assert out.read_bytes() == BODY and f"exported: {site.ids['smtp']}" in proc.stdout
    assert out.stat().st_mode & 0o777 == 0o600
    [event] = site.audit_events()
    assert (event["event"], event["job_id"], event["actor"], event["reason"]) == (
        "quarantine.export", site.ids["smtp"], "suzuki", "sender asked, ticket 7")
    again = site.run("quarantine", "export", site.ids["smtp"], "-o", out,
                     "--approver", "suzuki", "--reason", "x")
    assert again.returncode == 2
    one_clear_line(again, "exists; export never overwrites")
    missing = site.run("quarantine", "export", site.ids["smtp"], "-o", site.root / "x.eml")
    assert missing.returncode == 2
    one_clear_line(missing, "usage error", "--approver")
    blank = site.run("quarantine", "export", site.ids["smtp"], "-o", site.root / "x.eml",
                     "--approver", " ", "--reason", "x")
    assert blank.returncode == 2 and not (site.root / "x.eml").exists()
    shown = json.loads(site.run("quarantine", "show", site.ids["smtp"], "--json").stdout)
    assert [a["action"] for a in shown["entry"]["history"]] == ["export"]


def test_delete_keeps_a_tombstone(site: Site) -> None:
    job = site.ids["folder"]
    proc = site.run("quarantine", "delete", job, "--approver", "sato", "--reason", "spam")
    assert proc.returncode == 0, proc.stderr
    assert not entry_file.has_original(site.var / "quarantine" / job)
    twice = site.run("quarantine", "delete", job, "--approver", "sato", "--reason", "again")
    assert twice.returncode == 1
    one_clear_line(twice, "already deleted", "delete by sato")
    export = site.run("quarantine", "export", job, "-o", site.root / "y.eml",
                      "--approver", "a", "--reason", "b")
    assert export.returncode == 1 and not (site.root / "y.eml").exists()
    one_clear_line(export, "original was deleted")
    listed = json.loads(site.run("quarantine", "list", "--state", "deleted", "--json").stdout)
    assert [e["job_id"] for e in listed["entries"]] == [job]
    assert [e["event"] for e in site.audit_events()] == ["quarantine.delete"]


def test_purge_uses_each_entrys_retention(site: Site) -> None:
    assert json.loads(site.run("quarantine", "purge", "--json").stdout) == {"purged": []}
    cfg = config.load(site.conf)  # retention 2s, from the file
    q = Quarantine(cfg.var_dir / "quarantine", load_keyring(cfg.quarantine_key),
                   retention=cfg.quarantine_retention)
    src = site.root / "short.eml"
    src.write_bytes(b"short-lived")
    q.put("20261126-101503-dddd", src, {"source": "http"}, {"requester": "t"})
    q.close()
    time.sleep(3.1)
    proc = site.run("quarantine", "purge")
    assert proc.returncode == 0, proc.stderr
    assert "purged: 20261126-101503-dddd" in proc.stdout
    assert proc.stdout.splitlines()[-1] == "1 original(s) purged"
    assert [(e["event"], e["actor"]) for e in site.audit_events()] == [
        ("quarantine.purge", "retention")]
    assert site.run("audit", "verify").returncode == 0


def test_tampered_original_fails_cleanly(site: Site) -> None:
    entry = site.var / "quarantine" / site.ids["http"]
    data = bytearray(entry.read_bytes())
    data[entry_file.HEADER + HEADER_SIZE + 5] ^= 0xFF  # the original's first segment
    entry.write_bytes(bytes(data))
    out = site.root / "t.eml"
    proc = site.run("quarantine", "export", site.ids["http"], "-o", out,
                    "--approver", "a", "--reason", "b")
    assert proc.returncode == 1
    one_clear_line(proc, "error:", "segment 0 fails authentication")
    assert not out.exists() and not list(site.root.glob(".t.eml*"))
    assert not (site.var / "admin-audit.log").exists()  # nothing happened, nothing recorded


def test_unknown_and_bad_job_ids(site: Site) -> None:
    proc = site.run("quarantine", "show", "20991231-000000-ffff")
    assert proc.returncode == 1
    one_clear_line(proc, "no such quarantine entry")
    proc = site.run("quarantine", "show", "../etc")
    assert proc.returncode == 2
    one_clear_line(proc, "usage error", "is not a job id")


def test_key_file_problems_are_configuration_errors(site: Site) -> None:
    key = site.var / "quarantine.key"
    key.chmod(0o644)
    proc = site.run("quarantine", "list")
    assert proc.returncode == 2
    one_clear_line(proc, "configuration error", "quarantine.key", "chmod 600")
    key.chmod(0o600)
    key.write_bytes(b"short")
    proc = site.run("quarantine", "list")
    assert proc.returncode == 2
    one_clear_line(proc, "exactly 32 bytes")
    key.unlink()
    proc = site.run("quarantine", "list")
    assert proc.returncode == 2
    one_clear_line(proc, "does not exist")
    assert not key.exists()  # the CLI never makes a key up
    other = site.root / "elsewhere.yaml"
    other.write_text("var_dir: nowhere\n", encoding="utf-8")
    proc = sekisho("quarantine", "list", "--config", other, cwd=site.root)
    assert proc.returncode == 2
    one_clear_line(proc, "no quarantine here")


def test_serve_refuses_an_unsafe_key_file(site: Site) -> None:
    (site.var / "quarantine.key").chmod(0o640)
    proc = site.run("serve")
    assert proc.returncode == 2
    one_clear_line(proc, "configuration error", "accessible by group or others")


def test_audit_verify(site: Site) -> None:
    site.run("quarantine", "delete", site.ids["smtp"], "--approver", "a", "--reason", "b")
    site.run("quarantine", "delete", site.ids["http"], "--approver", "a", "--reason", "c")
    log = site.var / "admin-audit.log"
    ok = site.run("audit", "verify")
    assert ok.returncode == 0, ok.stderr
    assert ok.stdout.strip() == f"ok: {log}: 2 line(s), chain intact, anchored at seq 2"
    explicit = sekisho("audit", "verify", log, cwd=site.root)
    assert explicit.returncode == 0 and "chain intact" in explicit.stdout
    lines = log.read_text(encoding="utf-8").splitlines(keepends=True)
    log.write_text(lines[0].replace('"actor":"a"', '"actor":"z"') + lines[1], encoding="utf-8")
    bad = site.run("audit", "verify")
    assert bad.returncode == 1
    assert bad.stdout.splitlines() == [f"{log}:1: edited: the content does not match the "
                                       "line's hash"]
    one_clear_line(bad, "1 problem(s) found")
    log.write_text(lines[0], encoding="utf-8")
    cut = site.run("audit", "verify")
    assert cut.returncode == 1 and f"{log}:2: truncated" in cut.stdout
    missing = sekisho("audit", "verify", site.root / "nope.log", cwd=site.root)
    assert missing.returncode == 2
    one_clear_line(missing, "no such audit log")
    broken = site.root / "broken.yaml"
    broken.write_text("audit: {path: 5, colour: red}\n", encoding="utf-8")
    proc = sekisho("audit", "verify", "--config", broken, cwd=site.root)
    assert proc.returncode == 2
    one_clear_line(proc, "configuration error", "audit.colour")

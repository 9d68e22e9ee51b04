"""The `sekisho` command as users and scripts call it: exit codes, files, one-line errors."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from tests.conftest import check_report_schema
from tests.helpers import evil_stages as evil
from tests.helpers.cli import one_clear_line, sekisho

PLUGIN = ["--plugin", "tests.helpers.evil_stages"]
TEST_POLICY = """\
name: clitest
limits: {timeout: 5s, max_cpu: 3s}
formats:
  text: {action: pass}
  testonly: {action: disarm}
"""


@pytest.fixture
def files(tmp_path: Path) -> Path:
    (tmp_path / "memo.txt").write_text("会議は10時から\n", encoding="utf-8")
    (tmp_path / "tool.exe").write_bytes(b"MZ\x90\x00" + b"\x00" * 120)
    (tmp_path / "empty.pdf").write_bytes(b"")
    (tmp_path / "empty.exe").write_bytes(b"")
    noise = b"".join(hashlib.sha256(bytes([i])).digest() for i in range(64))
    (tmp_path / "noise.bin").write_bytes(noise)  # libmagic: application/octet-stream
    return tmp_path


def test_single_clean_writes_output_and_report(files: Path) -> None:
    proc = sekisho("disarm", files / "memo.txt", "-o", files / "out.txt",
                   "--report", files / "r.json")
    assert proc.returncode == 0, proc.stderr
    assert (files / "out.txt").read_text(encoding="utf-8") == "会議は10時から\n"
    report = json.loads((files / "r.json").read_text(encoding="utf-8"))
    check_report_schema(report)
    assert report["verdict"] == "clean"
    assert report["output"]["name"] == "memo.txt"
    assert not list(files.glob(".*sekisho-tmp"))


@pytest.mark.parametrize(("name", "reason"), [
    ("tool.exe", "executable.pe is blocked"),
    ("empty.exe", "an empty file with a program's name (.exe)"),
    ("noise.bin", "unknown.application-octet-stream is blocked"),
])
def test_blocked_exit_3_no_output_report_written(files: Path, name: str, reason: str) -> None:
    proc = sekisho("disarm", files / name, "-o", files / "out", "--report", files / "r.json")
    assert proc.returncode == 3
    one_clear_line(proc, "blocked", reason)
    assert not (files / "out").exists()
    report = json.loads((files / "r.json").read_text())
    check_report_schema(report)
    assert report["verdict"] == "blocked" and report["output"] is None


def test_failed_exit_4(files: Path) -> None:
    (files / "bug.bin").write_bytes(evil.make("raise"))
    pol = files / "p.yaml"
    pol.write_text(TEST_POLICY)
    proc = sekisho("disarm", files / "bug.bin", "-o", files / "out", "--report", files / "r.json",
                   "--policy", pol, *PLUGIN)
    assert proc.returncode == 4
    one_clear_line(proc, "failed", "internal error in stage testonly (RuntimeError)")
    assert not (files / "out").exists()
    report = json.loads((files / "r.json").read_text())
    check_report_schema(report)
    assert report["verdict"] == "failed"


def test_timeout_exit_4(files: Path) -> None:
    (files / "hang.bin").write_bytes(evil.make("hang"))
    pol = files / "p.yaml"
    pol.write_text(TEST_POLICY.replace("timeout: 5s", "timeout: 2s"))
    proc = sekisho("disarm", files / "hang.bin", "-o", files / "out", "--policy", pol, *PLUGIN)
    assert proc.returncode == 4
    one_clear_line(proc, "failed", "processing took longer than 2 s")
    assert not (files / "out").exists()
    assert not list(files.glob(".*sekisho-tmp"))


@pytest.mark.parametrize(("args", "needle"), [
    (["disarm", "missing.pdf", "-o", "x"], "missing.pdf: no such file"),
    (["disarm", ".", "-o", "x"], "is a directory"),
    (["disarm", "/proc/self/mem", "-o", "x"], "cannot read"),
    (["disarm", "memo.txt", "-o", "/proc/nope/x"], "does not exist"),
    (["disarm", "memo.txt", "-o", "/proc/x"], "not writable"),
    (["disarm", "memo.txt", "-o", "."], "is a directory"),
    (["disarm", "memo.txt"], "give -o OUT"),
    (["disarm", "memo.txt", "tool.exe", "-o", "x"], "exactly one input"),
    (["disarm", "memo.txt", "-o", "x", "--policy", "nosuch"], "policy 'nosuch' not found"),
    (["frobnicate"], "invalid choice"),
])
def test_usage_errors_exit_2_with_one_line(files: Path, args: list[str], needle: str) -> None:
    proc = sekisho(*args, cwd=files)
    assert proc.returncode == 2
    one_clear_line(proc, needle)


def test_batch_out_dir(files: Path) -> None:
    out = files / "outbox"
    proc = sekisho("disarm", files / "memo.txt", files / "tool.exe", "--out-dir", out,
                   "--jobs", "2")
    assert proc.returncode == 3  # one blocked
    assert sorted(p.name for p in out.iterdir()) == [
        "memo.txt", "memo.txt.report.json", "tool.exe.report.json"]
    for rep in out.glob("*.report.json"):
        check_report_schema(json.loads(rep.read_text()))
    proc = sekisho("disarm", files / "memo.txt", "--out-dir", out)
    assert proc.returncode == 0


def test_batch_rejects_colliding_names(files: Path) -> None:
    (files / "sub").mkdir()
    (files / "sub" / "memo.txt").write_text("x")
    proc = sekisho("disarm", files / "memo.txt", files / "sub" / "memo.txt",
                   "--out-dir", files / "o")
    assert proc.returncode == 2
    one_clear_line(proc, "share the name")


def test_scan_json_writes_nothing(files: Path) -> None:
    before = sorted(p.name for p in files.iterdir())
    proc = sekisho("scan", files / "tool.exe", "--json")
    assert proc.returncode == 3
    report = json.loads(proc.stdout)
    check_report_schema(report)
    assert report["output"] is None
    assert [(f["kind"], f["location"]) for f in report["items"][0]["findings"]] == [
        ("block.policy", "")]
    assert sorted(p.name for p in files.iterdir()) == before


def test_policy_check(files: Path, repo_root: Path) -> None:
    for name in ("default.yaml", "strict.yaml"):
        proc = sekisho("policy", "check", repo_root / "policies" / name)
        assert proc.returncode == 0, proc.stderr
        assert proc.stdout.startswith("ok: ")
    bad = files / "bad.yaml"
    bad.write_text("formats:\n  pdf: {action: disarm, colour: red}\n")
    proc = sekisho("policy", "check", bad)
    assert proc.returncode == 2
    one_clear_line(proc, str(bad), "formats.pdf.colour", "'red'", "not a known key")


@pytest.mark.parametrize("entry", ["module", "script"])
def test_the_command_does_not_load_rich(files: Path, entry: str) -> None:
    """structlog would import rich (about 70 ms of a single-file run) only to draw
    tracebacks; the command hides it, both as ``python -m gateway`` and as the
    installed ``sekisho`` script."""
    import subprocess
    import sys

    start = ("import runpy; runpy.run_module('gateway', run_name='__main__')"
             if entry == "module" else "from gateway.__main__ import run; run()")
    code = (f"import sys\nsys.argv = ['sekisho', '-v', 'disarm', {str(files / 'memo.txt')!r},"
            f" '-o', {str(files / 'out.txt')!r}]\n"
            f"try:\n    {start}\nexcept SystemExit as e:\n    assert not e.code, e.code\n"
            "print(sorted(m for m in sys.modules if m.split('.')[0] == 'rich'"
            " and sys.modules[m] is not None), 'structlog' in sys.modules)\n")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          check=False, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split("\n")[-2] == "[] True"
    assert (files / "out.txt").read_text(encoding="utf-8") == "会議は10時から\n"

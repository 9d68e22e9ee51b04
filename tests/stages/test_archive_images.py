"""Disk images (ISO 9660, UDF, WIM, DMG, VHD/VHDX) and ARJ: unpacked with 7-Zip, every file
through the pipeline, delivered as a zip; built from harmless files with the real tools."""

from __future__ import annotations

import io
import zipfile
from dataclasses import replace
from pathlib import Path

import pytest

import gateway.stages.archive
import gateway.stages.ooxml  # noqa: F401 - registers the stages
from gateway.models import Verdict
from gateway.pipeline.sniff import sniff_bytes
from gateway.policy import FormatPolicy, load
from gateway.stages import archive_external
from tests.helpers import imagegen
from tests.helpers.ooxmlgen import docm
from tests.helpers.pipeline import keys, run

POLICY = load("default")
#: what an Emotet or Qakbot ISO carried: a shortcut named like a document and the DLL
#: it runs, next to a decoy; here with the LNK header and an MZ header only
LNK = bytes.fromhex("4C0000000114020000000000C000000000000046") + bytes(60)
DLL = b"MZ\x90\x00" + bytes(200)
TEXT = "請求書をご確認ください。\n".encode()


def zip_contents(out: Path) -> dict[str, bytes]:
    with zipfile.ZipFile(out) as zf:
        assert zf.testzip() is None
        return {i.filename: zf.read(i) for i in zf.infolist()}


def test_emotet_style_iso_is_unpacked_and_disarmed(tmp_path: Path) -> None:
    data = imagegen.iso({"請求書.pdf.lnk": LNK, "lib/helper.dll": DLL, "readme.txt": TEXT,
                         "見積書.docm": docm()})
    assert sniff_bytes(data, "請求書.iso").type_id == "archive.iso"
    report, out = run(tmp_path, data, "請求書.iso")
    assert report.verdict is Verdict.DISARMED
    assert keys(report) == {("archive.member_blocked", "請求書.pdf.lnk"),
                            ("archive.member_blocked", "lib/helper.dll"),
                            ("archive.member_active", "見積書.docm")}
    assert report.output is not None and report.output.name == "請求書.zip"
    files = zip_contents(out)
    # without its macros the document is delivered as .docx (the OOXML stage's rename)
    assert sorted(files) == ["lib/helper.dll.removed.txt", "readme.txt", "見積書.docx",
                             "請求書.pdf.lnk.removed.txt"]
    assert files["readme.txt"] == TEXT
    assert "executable.lnk" in files["請求書.pdf.lnk.removed.txt"].decode()
    # an independent reader: oletools finds no macro in the delivered document
    from oletools.olevba import VBA_Parser

    doc = tmp_path / "delivered.docx"
    doc.write_bytes(files["見積書.docx"])
    parser = VBA_Parser(str(doc))
    try:
        assert not parser.detect_vba_macros()
    finally:
        parser.close()


def test_iso_link_is_never_followed(tmp_path: Path) -> None:
    """A Rock Ridge symbolic link to a file of the machine: 7-Zip reads ISO 9660 without
    Rock Ridge links (an empty file), and nothing outside the image is ever read."""
    secret = tmp_path / "secret.txt"
    secret.write_text("do not read me")
    data = imagegen.iso({"a.txt": b"hello"}, {"pw": str(secret), "dir": "/etc"})
    report, out = run(tmp_path, data, "links.iso")
    assert report.verdict.delivered
    files = zip_contents(out)
    assert files["a.txt"] == b"hello"
    assert all(b"do not read me" not in v and b"root:" not in v for v in files.values())


@pytest.mark.parametrize("kind", ["udf-bridge", "udf-only"])
def test_udf_images(tmp_path: Path, kind: str) -> None:
    members = {"文書/メモ.txt": TEXT, "setup.exe": DLL}
    data = imagegen.iso(members, udf=True) if kind == "udf-bridge" \
        else imagegen.udf_only(members)
    assert sniff_bytes(data, "x.iso").type_id == "archive.udf"
    report, out = run(tmp_path, data, "disc.iso")
    assert report.verdict is Verdict.DISARMED
    assert keys(report) == {("archive.member_blocked", "setup.exe")}
    assert sorted(zip_contents(out)) == ["setup.exe.removed.txt", "文書/メモ.txt"]


@pytest.mark.parametrize(("fmt", "fixed", "name"), [("vpc", False, "disk.vhd"),
                                                   ("vpc", True, "fixed.vhd"),
                                                   ("vhdx", False, "disk.vhdx")])
def test_virtual_disks(tmp_path: Path, fmt: str, fixed: bool, name: str) -> None:
    """VHD and VHDX (mounted by a double click like ISO, and mailed the same way): the
    partition table and the FAT file system inside are opened by 7-Zip."""
    data = imagegen.vhd({"readme.txt": TEXT, "update.dll": DLL}, fmt, fixed=fixed)
    assert sniff_bytes(data, name).type_id == ("archive.vhdx" if fmt == "vhdx"
                                               else "archive.vhd")
    report, out = run(tmp_path, data, name)
    assert report.verdict is Verdict.DISARMED, report.reason
    assert keys(report) == {("archive.member_blocked", "update.dll")}
    files = zip_contents(out)
    assert sorted(files) == ["readme.txt", "update.dll.removed.txt"]
    assert files["readme.txt"] == TEXT


def test_wim_image(tmp_path: Path) -> None:
    data = imagegen.wim({"Windows/run.exe": DLL, "docs/note.txt": b"note"})
    assert sniff_bytes(data, "install.wim").type_id == "archive.wim"
    report, out = run(tmp_path, data, "install.wim")
    assert keys(report) == {("archive.member_blocked", "Windows/run.exe")}
    assert sorted(zip_contents(out)) == ["Windows/run.exe.removed.txt", "docs/note.txt"]


def test_links_in_an_image_are_findings_not_files(tmp_path: Path) -> None:
    """A link leading out of the image (7-Zip refuses to create it and says so), one to
    an absolute path and one inside: none is followed, each is an archive.link finding,
    and the image is not blocked for them (Mac disk images carry
    "Applications -> /Applications")."""
    data = imagegen.wim({"docs/note.txt": b"note"},
                        {"up": "../../../etc", "abs": "/etc/passwd", "docs/rel": "note.txt"})
    report, out = run(tmp_path, data, "links.wim")
    assert report.verdict is Verdict.DISARMED, report.reason
    assert keys(report) == {("archive.link", "up"), ("archive.link", "abs"),
                            ("archive.link", "docs/rel")}
    assert zip_contents(out) == {"docs/note.txt": b"note"}


def test_arj_archive(tmp_path: Path) -> None:
    data = imagegen.arj({"memo.txt": b"memo", "tool.exe": DLL})
    assert sniff_bytes(data, "old.arj").type_id == "archive.arj"
    report, out = run(tmp_path, data, "old.arj")
    assert keys(report) == {("archive.member_blocked", "tool.exe")}
    assert zip_contents(out)["memo.txt"] == b"memo"


def test_encrypted_arj_is_held(tmp_path: Path) -> None:
    report, out = run(tmp_path, imagegen.arj({"memo.txt": b"memo"}, password="secret"),
                      "locked.arj")
    assert report.verdict is Verdict.BLOCKED
    assert ("block.encrypted", "") in keys(report)
    assert not out.exists()


def test_dmg_sample(tmp_path: Path) -> None:
    """An Apple disk image with an HFS+ file system (samples/: no tool here writes one)."""
    data = (Path(__file__).parents[2] / "samples/archive/HfsSampleUDCO.dmg").read_bytes()
    assert sniff_bytes(data, "x.dmg").type_id == "archive.dmg"
    report, out = run(tmp_path, data, "sample.dmg")
    assert report.verdict is Verdict.CLEAN and keys(report) == set()
    assert sorted(zip_contents(out)) == ["DmgSampleFolder/TestFile copy.txt",
                                         "DmgSampleFolder/TestFile.txt"]


def test_policy_can_block_disk_images(tmp_path: Path) -> None:
    pol = replace(POLICY, formats={**POLICY.formats, "archive": FormatPolicy(
        action="disarm", options={"disk_images": "block"})})
    report, _ = run(tmp_path, imagegen.iso({"a.txt": b"hello\n"}), "a.iso", pol)
    assert report.verdict is Verdict.BLOCKED
    assert ("block.policy", "") in keys(report)
    # other archives are still unpacked under that policy
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("a.txt", b"hello\n")
    assert run(tmp_path, buf.getvalue(), "a.zip", pol)[0].verdict is Verdict.CLEAN


def test_member_count_is_checked_before_unpacking(tmp_path: Path) -> None:
    pol = replace(POLICY, limits=replace(POLICY.limits, max_members=5))
    data = imagegen.iso({f"f{i}.txt": b"x" for i in range(8)})
    report, _ = run(tmp_path, data, "many.iso", pol)
    assert report.verdict is Verdict.BLOCKED
    assert "too many items (more than 5)" in (report.items[0].error or "")


def test_without_7zip_images_are_refused(tmp_path: Path,
                                         monkeypatch: pytest.MonkeyPatch) -> None:
    """A machine without 7-Zip blocks images with a reason naming the package."""
    data = imagegen.iso({"a.txt": b"a"})
    empty = tmp_path / "bin"
    empty.mkdir()
    monkeypatch.setenv("PATH", str(empty))
    assert archive_external.seven_zip() is None
    report, _ = run(tmp_path, data, "a.iso")
    assert report.verdict is Verdict.BLOCKED
    assert "7zip" in (report.items[0].error or "")


def test_damaged_image_is_blocked(tmp_path: Path) -> None:
    data = imagegen.wim({"a.txt": b"a" * 5000})[:150]  # the header cut short
    report, out = run(tmp_path, data, "broken.wim")
    assert report.verdict is Verdict.BLOCKED
    assert not out.exists()
    assert "/tmp" not in (report.items[0].error or "")


def test_strict_policy_blocks_disk_images(tmp_path: Path) -> None:
    report, _ = run(tmp_path, imagegen.iso({"a.txt": b"hello\n"}), "a.iso", load("strict"))
    assert report.verdict is Verdict.BLOCKED
    assert ("block.policy", "") in keys(report)


def test_iso_attachment_arrives_as_zip(tmp_path: Path) -> None:
    """The Emotet mail of 2022: an ISO attachment holding a LNK. The recipient gets the
    mail with a zip that holds the decoy text and a note where the shortcut was."""
    import email
    from email import policy as email_policy

    from tests.helpers import mailgen as g

    data = imagegen.iso({"Invoice.lnk": LNK, "readme.txt": TEXT})
    mail = g.message(g.multipart("mixed", g.text("請求書を送付します。"),
                                 g.attachment("Invoice_1127.iso", data,
                                              "application/x-iso9660-image")))
    report, out = run(tmp_path, mail, "mail.eml")
    assert report.verdict is Verdict.DISARMED
    assert ("mail.attachment_disarmed", "Invoice_1127.iso") in keys(report)
    msg = email.message_from_bytes(out.read_bytes(), policy=email_policy.default)
    parts = {p.get_filename(): p for p in msg.walk() if p.get_filename()}
    assert "Invoice_1127.zip" in parts and "Invoice_1127.iso" not in parts
    assert parts["Invoice_1127.zip"].get_content_type() == "application/zip"
    with zipfile.ZipFile(io.BytesIO(parts["Invoice_1127.zip"].get_content())) as zf:
        assert sorted(zf.namelist()) == ["Invoice.lnk.removed.txt", "readme.txt"]


def test_listed_size_is_checked_before_unpacking(tmp_path: Path) -> None:
    pol = replace(POLICY, limits=replace(POLICY.limits, max_size=2000))
    data = imagegen.arj({"big.txt": b"line of text\n" * 400})  # 5200 bytes, packed ~100
    assert len(data) < 2000
    report, out = run(tmp_path, data, "big.arj", pol)
    assert report.verdict is Verdict.BLOCKED
    assert "expands to more than 2000 bytes" in (report.items[0].error or "")
    assert not out.exists()


def test_a_7zip_that_hangs_is_killed(tmp_path: Path) -> None:
    """The wall-clock limit kills the child's whole process group."""
    import time

    from gateway.errors import LimitExceeded

    started = time.monotonic()
    with pytest.raises(LimitExceeded, match="processing took longer than"):
        archive_external._run(["sleep", "30"], tmp_path, 1000, time.monotonic() + 0.5,
                            archive_external._Listing(1000, 10))
    assert time.monotonic() - started < 5


def test_a_program_kept_waiting_for_a_cpu_is_not_killed(tmp_path: Path) -> None:
    """The limit counts the program's own time: at low priority beside a busy process
    on the same CPU, 0.1 s of computing takes seconds, past a 2 s limit, and is let
    finish. (The program runs in a session of its own, so with the kernel's autogroups
    its task nice would not matter: it lowers its session's.)"""
    import os
    import sys
    import time

    from tests.helpers import cpu as cpu_load

    cpu = min(os.sched_getaffinity(0))
    low = 'echo 19 > /proc/$$/autogroup 2>/dev/null; exec nice -n 19 "$0" -c "$1"'
    with cpu_load.busy(cpu):
        started = time.monotonic()
        status = archive_external._run(["sh", "-c", low, sys.executable,
                                        cpu_load.spin(0.1, cpu)],
                                       tmp_path, 1000, time.monotonic() + 2.0)
        took = time.monotonic() - started
    assert status == 0
    assert took > 3, f"the program was not kept waiting ({took:.2f} s): no test"


def test_hybrid_iso_with_a_partition_table(tmp_path: Path) -> None:
    """An ISO made bootable from a USB stick (isohybrid) starts with an MBR; it is read as
    the ISO 9660 image it is, not as a disk with one partition."""
    data = bytearray(imagegen.iso({"memo.txt": TEXT}))
    sectors = len(data) // 512
    entry = bytes([0x80, 0, 2, 0, 0x17, 0xFE, 0xFF, 0xFF]) + (0).to_bytes(4, "little") \
        + sectors.to_bytes(4, "little")
    data[446:462] = entry
    data[510:512] = b"\x55\xaa"
    report, out = run(tmp_path, bytes(data), "hybrid.iso")
    assert report.verdict is Verdict.CLEAN
    assert zip_contents(out) == {"memo.txt": TEXT}

""".p7m files on their own (CMS signed data): the signed document or message is taken out,
disarmed and delivered in the signature's place. They were read as whatever the signed
bytes looked like (a PDF inside was rebuilt from a "damaged PDF" and kept its .p7m name)
or blocked as unknown."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

import gateway.stages.mail
import gateway.stages.pdf  # noqa: F401 - registers the stages
from gateway.models import Report, Verdict
from gateway.pipeline.run import process_file
from gateway.pipeline.sniff import sniff_bytes
from gateway.policy import load
from tests.conftest import check_report_schema
from tests.helpers import mailgen as g
from tests.helpers import pdfgen, pdfwalk

POLICY = load("default")


def run(tmp_path: Path, data: bytes, name: str) -> tuple[Report, Path | None]:
    src, out = tmp_path / name, tmp_path / "out.bin"
    src.write_bytes(data)
    report = process_file(src, out, policy=POLICY)
    check_report_schema(report)
    return report, (out if out.exists() else None)


def kinds(report: Report, item: int) -> set[tuple[str, str]]:
    return {(f.kind, f.location) for f in report.items[item].findings}


@pytest.mark.parametrize("ber", [False, True], ids=["der", "ber"])
def test_signed_pdf_is_delivered_disarmed_without_its_signature(tmp_path: Path,
                                                                ber: bool) -> None:
    pdf = pdfgen.open_action_js()
    data = g.cms_signed(pdf, ber=ber)
    assert sniff_bytes(data, "report.pdf.p7m").type_id == "mail.p7m"
    report, out = run(tmp_path, data, "report.pdf.p7m")
    assert report.verdict is Verdict.DISARMED and out is not None
    assert report.output is not None
    assert (report.output.name, report.output.type) == ("report.pdf", "pdf")
    assert kinds(report, 0) == {("mail.signature_removed", "")}
    assert report.items[1].location == "report.pdf.p7m/report.pdf"
    assert kinds(report, 1) == {("pdf.open_action", "/Root/OpenAction"),
                                ("pdf.uri", "/Root/Pages/Kids[0]/Annots[0]/A")}
    assert pdfwalk.check(out.read_bytes()) == []
    subprocess.run(["qpdf", "--check", str(out)], check=True, capture_output=True)


def test_signed_message_is_rebuilt_as_a_message(tmp_path: Path) -> None:
    inner = g.message(g.multipart("mixed", g.text("署名付きの本文です"),
                                  g.attachment("案内.html", b"<p>hi</p><script>alert(1)</script>",
                                               "text/html")))
    report, out = run(tmp_path, g.cms_signed(inner), "smime.p7m")
    assert report.verdict is Verdict.DISARMED and out is not None
    assert report.output is not None and report.output.name == "smime.eml"
    body = out.read_bytes()
    assert b"alert(1)" not in body and b"<script" not in body


@pytest.mark.parametrize(("data", "kind", "reason"), [
    # enveloped data: encrypted for someone else's key
    (b"0\x80\x06\x09*\x86H\x86\xf7\r\x01\x07\x03\xa0\x80" + bytes(40), "block.encrypted",
     "the .p7m file is encrypted (CMS enveloped data)"),
    # signed data without its content: a detached signature
    (g.cms_signed(b"")[:-2], "block.malformed",
     "the .p7m file holds no signed content (a detached signature or certificates only)"),
])
def test_p7m_without_content_we_can_open_is_refused(tmp_path: Path, data: bytes, kind: str,
                                                    reason: str) -> None:
    assert sniff_bytes(data, "x.p7m").type_id == "mail.p7m"
    report, out = run(tmp_path, data, "x.p7m")
    assert report.verdict is Verdict.BLOCKED and out is None
    assert report.reason == reason
    assert kinds(report, 0) == {(kind, "")}


def test_signed_program_stays_blocked(tmp_path: Path) -> None:
    program = b"MZ\x90\x00\x03" + bytes(59) + b"PE\x00\x00" + bytes(200)
    report, out = run(tmp_path, g.cms_signed(program), "setup.exe.p7m")
    assert report.verdict is Verdict.BLOCKED and out is None
    assert report.reason is not None and report.reason.startswith(
        "the signed content was not delivered:")

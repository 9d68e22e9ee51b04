"""Damaged encryption headers end in a clear verdict (found by fuzzing the samples)."""

from __future__ import annotations

import shutil
from pathlib import Path

import olefile

import gateway.stages.ooxml  # noqa: F401 - registers the stage
from gateway.models import Verdict
from gateway.pipeline.run import process_file
from gateway.policy import load
from tests.conftest import ROOT


def test_damaged_agile_descriptor_is_malformed_not_an_internal_error(tmp_path: Path) -> None:
    """Agile encryption describes itself in XML inside EncryptionInfo; msoffcrypto's XML
    parser raises ExpatError on a damaged one, which was an internal error."""
    src = tmp_path / "damaged.xlsm"
    shutil.copy(ROOT / "samples" / "office" / "readonly-velvetsweatshop.xlsm", src)
    with olefile.OleFileIO(str(src), write_mode=True) as ole:
        info = bytearray(ole.openstream("EncryptionInfo").read())
        at = info.index(b"<", 8)  # the descriptor follows an 8-byte version header
        info[at + 1] = 0x01
        ole.write_stream("EncryptionInfo", bytes(info))
    report = process_file(src, tmp_path / "out.xlsm", policy=load("default"))
    assert report.verdict is Verdict.BLOCKED
    assert {(f.kind, f.location) for f in report.items[0].findings} == {("block.malformed", "")}
    assert report.reason == "the encrypted document is damaged (ExpatError)"

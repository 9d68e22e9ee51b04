"""The plain-words summary of a report (the web page and the API show it)."""

from __future__ import annotations

from pathlib import Path

from gateway.ingress.http_summary import summarize
from tests.helpers.odfgen import odt
from tests.helpers.pipeline import run


def test_odf_findings_read_like_office_ones(tmp_path: Path) -> None:
    """Macros, objects and links found in an OpenDocument file are counted under the same
    words as in Word or Excel files, not under their technical labels."""
    report, _ = run(tmp_path, odt(), "お知らせ.odt")
    summary = summarize(report.to_dict(), report.verdict.value)
    # 3 Basic library files, office:scripts and the macro field
    assert "マクロを5件削除しました" in summary["ja"]
    assert "Removed 5 macros" in summary["en"]
    assert "埋め込みオブジェクトを2件削除しました" in summary["ja"]
    assert "外部から読み込む内容へのリンクを5件削除しました" in summary["ja"]
    assert "Removed 5 links to outside content" in summary["en"]
    assert "ハイパーリンクを3件削除しました" in summary["ja"]  # the default keeps none


def test_legacy_office_links_read_like_the_others() -> None:
    """A .doc's neutralized hyperlink is counted under the same word as a .docx's."""
    finding = {"kind": "ole.hyperlink", "action": "neutralized", "location": "x",
               "detail": "", "severity": "medium"}
    summary = summarize({"items": [{"findings": [finding, finding]}]}, "disarmed")
    assert "ハイパーリンクを2件無効化しました" in summary["ja"]
    assert "Neutralized 2 hyperlinks" in summary["en"]

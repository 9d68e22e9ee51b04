"""A saved web page (.mhtml) is delivered as a page: Chromium, another reader than ours,
shows its text, runs nothing and shows no notice in its place."""

from __future__ import annotations

import base64
import io
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

import gateway.stages.mail  # noqa: F401 - registers the stage
from gateway.models import Verdict
from gateway.pipeline.run import process_file
from gateway.policy import load

pytestmark = [pytest.mark.browser, pytest.mark.xdist_group("browser")]

PAGE = (b"From: <Saved by Blink>\r\n"
        b"Snapshot-Content-Location: https://www.city.example.lg.jp/notice.html\r\n"
        b"Subject: Notice\r\nMIME-Version: 1.0\r\n"
        b'Content-Type: multipart/related; type="text/html"; boundary="B"\r\n\r\n'
        b"--B\r\nContent-Type: text/html; charset=utf-8\r\n"
        b"Content-Location: https://www.city.example.lg.jp/notice.html\r\n\r\n"
        b"<html><head><title>Notice</title></head><body><h1>Water supply notice</h1>"
        b"<p>The supply stops on Monday.</p>"
        b"<script>document.title='pwned'; document.body.append('ran')</script>"
        b"</body></html>\r\n--B--\r\n")


def _disarm_and_open(tmp_path: Path, data: bytes, browser: Any,
                     expression: str) -> tuple[set[tuple[str, str]], Any]:
    """Disarm a saved page (it must come out disarmed), open it in Chromium and
    evaluate ``expression`` there; the root item's findings and what it gave."""
    src, out = tmp_path / "notice.mhtml", tmp_path / "out.mhtml"
    src.write_bytes(data)
    report = process_file(src, out, policy=load("default"))
    assert report.verdict is Verdict.DISARMED
    page = browser.new_page()
    try:
        page.goto(out.as_uri())
        return {(f.kind, f.location) for f in report.items[0].findings}, \
            page.evaluate(expression)
    finally:
        page.close()


def test_saved_page_opens_as_the_page(tmp_path: Path, browser: Any) -> None:
    found, (text, title) = _disarm_and_open(tmp_path, PAGE, browser,
                                            "[document.body.innerText, document.title]")
    # "<Saved by Blink>" is no address: a defect noted, the header rebuilt
    assert found == {("mail.defect", "header:From"), ("html.script", "1/script[0]")}
    assert "Water supply notice" in text and "The supply stops on Monday." in text
    assert "ran" not in text.split() and title != "pwned"
    assert "Sekisho" not in text    # the notice did not take the page's place


def _png(size: tuple[int, int]) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", size, (200, 10, 10)).save(buf, "PNG")
    return base64.b64encode(buf.getvalue())


PICTURES = (b"From: <Saved by Blink>\r\n"
            b"Snapshot-Content-Location: https://www.city.example.lg.jp/news/notice.html\r\n"
            b"Subject: Notice\r\nMIME-Version: 1.0\r\n"
            b'Content-Type: multipart/related; type="text/html"; boundary="B"\r\n\r\n'
            b"--B\r\nContent-Type: text/html; charset=utf-8\r\n"
            b"Content-Location: https://www.city.example.lg.jp/news/notice.html\r\n\r\n"
            b"<html><body><h1>Water supply notice</h1>"
            b'<img id="logo" src="https://www.city.example.lg.jp/img/logo.png">'
            b"<img id=map src=map.png>"
            b'<img id="pixel" src="https://tracker.example/p.gif"></body></html>\r\n'
            b"--B\r\nContent-Type: image/png\r\nContent-Transfer-Encoding: base64\r\n"
            b"Content-Location: https://www.city.example.lg.jp/img/logo.png\r\n\r\n"
            + _png((40, 30)) + b"\r\n"
            b"--B\r\nContent-Type: image/png\r\nContent-Transfer-Encoding: base64\r\n"
            b"Content-Location: https://www.city.example.lg.jp/news/map.png\r\n\r\n"
            + _png((64, 48)) + b"\r\n--B--\r\n")


def test_saved_page_keeps_its_pictures(tmp_path: Path, browser: Any) -> None:
    """A saved page's pictures are its parts, referred to by the address each came
    from; they were removed as remote pictures, so the page showed text only. Those
    references now point at the parts (cid:); one to anywhere else still goes."""
    found, (shown, text) = _disarm_and_open(
        tmp_path, PICTURES, browser, "[Object.fromEntries([...document.images].map("
        "i => [i.id, i.naturalWidth])), document.body.innerText]")
    assert found == {("mail.defect", "header:From"), ("html.remote_resource", "1/img[2]@src")}
    assert shown == {"logo": 40, "map": 64, "pixel": 0}
    assert "Water supply notice" in text and "Sekisho" not in text

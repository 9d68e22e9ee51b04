"""XPS print-outs: disarmed like Office packages (they were blocked as packages without a
main part); hyperlinks out of the document and resources outside the package go, the
pages, their fonts and pictures stay. Outputs are read by libgxps (xpstopdf), another
reader than ours, and their text compared with poppler's pdftotext."""

from __future__ import annotations

import dataclasses
import io
import subprocess
import zipfile
from pathlib import Path

import pytest

import gateway.stages.ooxml  # noqa: F401 - registers the stage
from gateway.models import Report, Verdict
from gateway.pipeline.run import process_file, scan_file
from gateway.pipeline.sniff import sniff
from gateway.policy import Policy, load
from tests.conftest import check_report_schema
from tests.helpers import ooxmlgen as G
from tests.helpers import xpsgen as XG

DEFAULT = load("default")
KEEP_LINKS = dataclasses.replace(DEFAULT, formats={**DEFAULT.formats, "ooxml": dataclasses.replace(
    DEFAULT.formats["ooxml"], keep=frozenset({"hyperlinks"}))})
PAGE = XG.PAGE


def run(tmp_path: Path, data: bytes, name: str = "print.xps",
        policy: Policy = DEFAULT) -> tuple[Report, Path]:
    src, out = tmp_path / name, tmp_path / ("out-" + name)
    src.write_bytes(data)
    report = process_file(src, out, policy=policy)
    check_report_schema(report)
    return report, out


def keys(report: Report) -> set[tuple[str, str]]:
    return {(f.kind, f.location) for f in report.items[0].findings}


def rendered_text(path: Path, tmp_path: Path) -> str:
    """The document as libgxps draws it, read back by pdftotext."""
    pdf = tmp_path / (path.name + ".pdf")
    done = subprocess.run(["xpstopdf", str(path), str(pdf)], capture_output=True, timeout=60)
    assert done.returncode == 0, done.stderr.decode(errors="replace")
    text = subprocess.run(["pdftotext", str(pdf), "-"], capture_output=True, check=True,
                          timeout=60).stdout.decode()
    return " ".join(text.split())


def page(path: Path) -> str:
    with zipfile.ZipFile(path) as zf:
        data = zf.read(PAGE)
    return data.decode("utf-16") if data.startswith(b"\xff\xfe") else data.decode()


def test_clean_print_out_is_delivered_unchanged_in_content(tmp_path: Path) -> None:
    data = XG.xps()
    assert sniff(io.BytesIO(data), "print.xps").type_id == "ooxml.xps"
    report, out = run(tmp_path, data)
    assert report.verdict is Verdict.CLEAN and keys(report) == set()
    assert out.exists()
    base = rendered_text(tmp_path / "print.xps", tmp_path)
    assert XG.TEXT in base and XG.SECOND in base
    assert rendered_text(out, tmp_path) == base
    with zipfile.ZipFile(out) as zf:   # the font and the picture the page draws with
        assert {"Resources/font.ttf", "Resources/picture.png"} <= set(zf.namelist())


def test_hyperlinks_out_of_the_document_are_removed(tmp_path: Path) -> None:
    markup = XG.page_markup(
        link=' FixedPage.NavigateUri="https://evil.example/login"',
        extra=('<Path Data="M 0,0 L 10,0 L 10,10 Z" Fill="#FF0000FF" '
               'FixedPage.NavigateUri="file://///attacker.example/share/x.exe"/>'
               '<Path Data="M 0,0 L 10,0 L 10,10 Z" Fill="#FF00FF00" '
               'FixedPage.NavigateUri="#top"/>'
               '<Path Data="M 0,0 L 10,0 L 10,10 Z" Fill="#FF00FF00" '
               'FixedPage.NavigateUri="../FixedDoc.fdoc#top"/>'))
    data = XG.xps(markup)
    report, out = run(tmp_path, data)
    assert report.verdict is Verdict.DISARMED
    assert keys(report) == {("ooxml.hyperlink", f"{PAGE}#NavigateUri[1]"),
                            ("ooxml.hyperlink", f"{PAGE}#NavigateUri[2]")}
    got = page(out)
    assert "evil.example" not in got and "attacker.example" not in got
    assert 'NavigateUri="#top"' in got and "../FixedDoc.fdoc#top" in got  # inside: kept
    assert rendered_text(out, tmp_path) == rendered_text(tmp_path / "print.xps", tmp_path)
    scanned = scan_file(tmp_path / "print.xps", policy=DEFAULT)
    assert keys(scanned) == keys(report)


def test_web_links_stay_when_the_policy_keeps_hyperlinks(tmp_path: Path) -> None:
    markup = XG.page_markup(
        link=' FixedPage.NavigateUri="https://www.city.example.lg.jp/"',
        extra=('<Path Data="M 0,0 L 10,0 L 10,10 Z" Fill="#FF0000FF" '
               'FixedPage.NavigateUri="\\\\attacker.example\\share"/>'))
    report, out = run(tmp_path, XG.xps(markup), policy=KEEP_LINKS)
    assert keys(report) == {("ooxml.hyperlink", f"{PAGE}#NavigateUri[1]"),
                            ("ooxml.hyperlink", PAGE)}   # one removed, one kept
    got = page(out)
    assert "https://www.city.example.lg.jp/" in got and "attacker.example" not in got


def test_resources_outside_the_package_are_not_drawn(tmp_path: Path) -> None:
    """A font on a share and a picture on a web server: a viewer following them sends
    an NTLM authentication or a tracking request. The drawings using them go; the rest
    of the page stays."""
    markup = XG.page_markup(extra=(
        '<Glyphs Fill="#FF000000" FontUri="\\\\attacker.example\\fonts\\f.ttf" '
        'FontRenderingEmSize="16" OriginX="40" OriginY="300" UnicodeString="bait"/>'
        '<Path Data="M 0,0 L 10,0 L 10,10 Z"><Path.Fill><ImageBrush '
        'ImageSource="http://tracker.example/pixel.png" Viewbox="0,0,1,1" '
        'ViewboxUnits="RelativeToBoundingBox" Viewport="0,0,10,10" '
        'ViewportUnits="Absolute"/></Path.Fill></Path>'))
    rel = ('<Relationship Id="X1" Type="http://schemas.microsoft.com/xps/2005/06/'
           'required-resource" Target="http://tracker.example/font.ttf" TargetMode="External"/>')
    report, out = run(tmp_path, XG.xps(markup, page_rels=rel))
    assert report.verdict is Verdict.DISARMED
    assert keys(report) == {
        ("ooxml.external_relationship", f"{PAGE}#FontUri[1]"),
        ("ooxml.external_relationship", f"{PAGE}#ImageSource[1]"),
        ("ooxml.external_relationship", "Documents/1/Pages/_rels/1.fpage.rels#X1")}
    with zipfile.ZipFile(out) as zf:
        body = b"".join(zf.read(n) for n in zf.namelist() if not n.endswith(".ttf"))
    got = page(out)
    assert "attacker.example" not in got and "tracker.example" not in got
    assert b"tracker.example" not in body
    assert "<Path.Fill></Path.Fill>" not in got and "<Path.Fill />" not in got
    text = rendered_text(out, tmp_path)
    assert XG.TEXT in text and XG.SECOND in text and "bait" not in text


def test_macro_project_in_an_xps_package_goes(tmp_path: Path) -> None:
    """Nothing reads VBA in an XPS file, but it rides along to whoever unpacks it."""
    data = XG.xps()
    with zipfile.ZipFile(io.BytesIO(data)) as zin:
        parts = {n: zin.read(n) for n in zin.namelist()}
    parts["_rels/.rels"] = parts["_rels/.rels"].replace(
        b"</Relationships>",
        b'<Relationship Id="V1" Type="http://schemas.microsoft.com/office/2006/relationships/'
        b'vbaProject" Target="/vbaProject.bin"/></Relationships>')
    parts["vbaProject.bin"] = G.vba_project()
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zout:
        for n, d in parts.items():
            zout.writestr(n, d)
    report, out = run(tmp_path, buf.getvalue())
    assert keys(report) == {("ooxml.vba", "vbaProject.bin")}
    with zipfile.ZipFile(out) as zf:
        assert "vbaProject.bin" not in zf.namelist()
    assert XG.TEXT in rendered_text(out, tmp_path)


@pytest.mark.parametrize("oxps", [False, True])
def test_utf8_pages_and_openxps(tmp_path: Path, oxps: bool) -> None:
    markup = XG.page_markup(link=' FixedPage.NavigateUri="mailto:x@evil.example"')
    report, out = run(tmp_path, XG.xps(markup, utf16=False, oxps=oxps),
                      "print.oxps" if oxps else "print.xps")
    assert keys(report) == {("ooxml.hyperlink", f"{PAGE}#NavigateUri[1]")}
    assert "evil.example" not in page(out)

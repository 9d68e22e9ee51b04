"""Generic XML documents (text.xml): what a browser or an XML parser would run goes,
the rest of the document stays as written.

Outputs are read back with lxml (tests/helpers/markupcheck.py: no entity resolution,
no network): they must be well-formed, hold no DTD entity, no xml-stylesheet
instruction, and no script, frame, handler or script URL in XHTML or SVG elements.
"""

from __future__ import annotations

from pathlib import Path

import lxml.etree
import pytest

from gateway.models import Verdict
from gateway.pipeline.sniff import sniff_bytes
from tests.helpers.markupcheck import XHTML, xml_problems
from tests.helpers.pipeline import keys, run

# PayloadsAllTheThings' xss.xml: the root is no HTML, the script element is (by namespace)
XSS = b"""<html>
\t<head></head>
\t<body>
\t\t<something:script xmlns:something="http://www.w3.org/1999/xhtml">alert(1)</something:script>
\t\t<info>
\t\t  <name><value><![CDATA[<script>confirm(document.domain)</script>]]></value></name>
\t\t  <url><value>http://google.com</value></url>
\t\t</info>
\t</body>
</html>
"""


def test_xhtml_script_in_xml_is_removed_the_rest_kept(tmp_path: Path) -> None:
    report, out = run(tmp_path, XSS, "xss.xml")
    assert report.input.type == "text.xml" and report.output is not None
    assert report.output.name == "out-xss.xml" or report.output.name.endswith(".xml")
    assert report.verdict is Verdict.DISARMED
    assert keys(report) == {("xml.script", "script[0]")}
    assert xml_problems(out) == []
    data = out.read_bytes()
    assert b"alert(1)" not in data
    assert b"<![CDATA[<script>confirm(document.domain)</script>]]>" in data  # text, kept
    assert b"<value>http://google.com</value>" in data


def test_svg_in_xhtml_is_judged_as_in_an_svg_file(tmp_path: Path) -> None:
    """In an XHTML page (or any XML) an SVG <set> turning a link into javascript: (a
    click ran it), presentation attributes loading from elsewhere and a link's ping
    stayed: the SVG stage's rules were not applied to SVG inside XML."""
    page = (b'<html xmlns="http://www.w3.org/1999/xhtml"><body><p id="x">Click the box</p>'
            b'<a href="#x" ping="http://127.0.0.1:9/ping">in-page link</a>'
            b'<svg xmlns="http://www.w3.org/2000/svg" width="200" height="100"><a>'
            b'<set attributeName="href" to="javascript:alert(document.domain)"/>'
            b'<rect width="200" height="100" fill="url(http://127.0.0.1:9/f.svg#p)" '
            b'cursor="url(http://127.0.0.1:9/c.png), auto" mask="image-set(\'//x/m.png\' 1x)"'
            b' stroke="url(#grad)"/></a></svg></body></html>')
    report, out = run(tmp_path, page, "page.xhtml")
    assert report.input.type == "text.xml"
    assert keys(report) == {("xml.remote_resource", "a[0]@ping"),
                            ("xml.javascript_url", "set[0]"),
                            ("xml.remote_resource", "rect[0]@fill"),
                            ("xml.remote_resource", "rect[0]@cursor"),
                            ("xml.remote_resource", "rect[0]@mask")}
    assert xml_problems(out) == []
    data = out.read_bytes()
    assert b'stroke="url(#grad)"' in data and b"Click the box" in data


def test_unclosed_link_in_a_page_read_in_recovery_mode_keeps_what_follows(
        tmp_path: Path) -> None:
    """An XHTML page with an unclosed <LINK ...> (HTML habits) is read in recovery
    mode, where the rest of the page becomes the link's content: removing the link
    took the rest of the page with it."""
    page = (b'<?xml version="1.0"?>\n<html xmlns="http://www.w3.org/1999/xhtml"><body>'
            b'<p>Before</p>\n<LINK REL="stylesheet" HREF="http://127.0.0.1:9/x.css">\n'
            b"<p>After the link</p><p>And more</p></body></html>")
    report, out = run(tmp_path, page, "page.xhtml")
    assert keys(report) == {("xml.remote_resource", "LINK[0]"), ("xml.repaired", "")}
    assert xml_problems(out) == []
    data = out.read_bytes()
    assert b"Before" in data and b"After the link" in data and b"And more" in data
    assert b"x.css" not in data


def test_mathml_links_and_xml_base_are_judged_too(tmp_path: Path) -> None:
    """Found with hand-made e-books (their chapters go through this stage): MathML
    allows href on any element (javascript: kept) and an mglyph loads a picture (a
    remote one kept, verdict clean); xml:base pointing elsewhere made every relative
    link below it load from another host."""
    data = (b'<?xml version="1.0"?><html xmlns="http://www.w3.org/1999/xhtml"><body>'
            b'<math xmlns="http://www.w3.org/1998/Math/MathML" xmlns:xl='
            b'"http://www.w3.org/1999/xlink"><mrow href="javascript:alert(1)"><mi '
            b'xl:href="javascript:alert(2)">x</mi><mglyph src="http://evil.example/g.png"/>'
            b'<mi href="#eq1">y</mi></mrow></math>'
            b'<div xml:base="http://evil.example/dir/"><img src="#" alt="p"/></div>'
            b'<p xml:base="#">kept</p></body></html>')
    report, out = run(tmp_path, data, "chapter.xhtml")
    assert report.verdict is Verdict.DISARMED
    assert keys(report) == {("xml.javascript_url", "mrow[0]@href"),
                            ("xml.javascript_url", "mi[0]@href"),
                            ("xml.remote_resource", "mglyph[0]@src"),
                            ("xml.remote_resource", "div[0]@xml:base")}
    text = out.read_bytes()
    assert b"javascript" not in text and b"evil.example" not in text
    assert b'href="#eq1"' in text and b'<p xml:base="#">' in text


def test_object_fallback_text_stays(tmp_path: Path) -> None:
    """An object went with what a reader shows in its place (8% of a hand-made e-book's
    text): the object goes, its fallback content stays and is walked like the rest."""
    data = (b'<?xml version="1.0"?><html xmlns="http://www.w3.org/1999/xhtml"><body>'
            b'<object data="http://evil.example/x.swf"><param name="m" value="v"/>The chart '
            b"<b>shows growth</b><script>alert(1)</script></object> after "
            b'<object data="movie.mp4">Plain words</object></body></html>')
    report, out = run(tmp_path, data, "page.xhtml")
    assert keys(report) == {("xml.frame", "object[0]"), ("xml.frame", "object[1]"),
                            ("xml.script", "script[0]")}
    root = lxml.etree.parse(str(out)).getroot()
    assert "".join(root.itertext()) == "The chart shows growth after Plain words"
    assert xml_problems(out) == []


def test_picture_without_its_source_leaves_its_description(tmp_path: Path) -> None:
    """A picture or media source from elsewhere lost its src and stayed, an element an
    e-book checker calls broken (epubcheck RSC-005 on pandoc's books of remote
    pictures): it goes, a picture leaving its alt text."""
    data = (b'<?xml version="1.0"?><html xmlns="http://www.w3.org/1999/xhtml"><body>'
            b'<p>See <img src="http://evil.example/map.png" alt="the map"/> here.</p>'
            b'<video><source src="http://evil.example/v.mp4"/>No video.</video>'
            b'<p><img src="#" alt="kept"/></p></body></html>')
    report, out = run(tmp_path, data, "page.xhtml")
    assert keys(report) == {("xml.remote_resource", "img[0]@src"),
                            ("xml.remote_resource", "source[0]@src")}
    root = lxml.etree.parse(str(out)).getroot()
    imgs = root.findall(f".//{{{XHTML}}}img")
    assert [i.get("alt") for i in imgs] == ["kept"]
    assert root.find(f".//{{{XHTML}}}source") is None
    assert "".join(root.itertext()) == "See [the map] here.No video."


def test_ncx_table_of_contents_loses_script_links(tmp_path: Path) -> None:
    data = (b'<?xml version="1.0"?><ncx xmlns="http://www.daisy.org/z3986/2005/ncx/" '
            b'version="2005-1"><navMap><navPoint id="n1"><navLabel><text>One</text>'
            b'</navLabel><content src="javascript:alert(1)"/></navPoint><navPoint id="n2">'
            b'<navLabel><text>Two</text></navLabel><content src="c2.xhtml#s"/></navPoint>'
            b"</navMap></ncx>")
    report, out = run(tmp_path, data, "toc.ncx")
    # a file of its own: a relative path names a file beside it (in an e-book, a
    # chapter of the book, which stays)
    assert keys(report) == {("xml.javascript_url", "content[0]@src"),
                            ("xml.remote_resource", "content[1]@src")}
    assert b"javascript" not in out.read_bytes() and b"<text>Two</text>" in out.read_bytes()


def test_xhtml_script_without_an_xml_declaration_under_any_name(tmp_path: Path) -> None:
    """PayloadsAllTheThings' xss.mno: no declaration, no known extension; a browser
    opening it as XML runs the script. It was delivered as plain text, script and all."""
    data = b'<a:script xmlns:a="http://www.w3.org/1999/xhtml">alert(1337)</a:script>'
    report, out = run(tmp_path, data, "xss.mno")
    assert report.input.type == "text.xml"
    assert report.verdict is Verdict.DISARMED
    assert keys(report) == {("xml.script", "script[0]")}
    assert b"alert(1337)" not in out.read_bytes()
    assert xml_problems(out) == []


def test_document_that_is_one_frame_keeps_an_empty_root(tmp_path: Path) -> None:
    """The root itself runs: it goes and an empty element without a namespace takes its
    place (a document needs one); the rest of it went with it."""
    data = (b'<?xml version="1.0"?>\n<h:iframe xmlns:h="http://www.w3.org/1999/xhtml" '
            b'src="https://evil.example/"><h:p>x</h:p></h:iframe>\n')
    report, out = run(tmp_path, data, "frame.xml")
    assert report.verdict is Verdict.DISARMED
    assert keys(report) == {("xml.frame", "iframe[0]")}
    assert b"evil.example" not in out.read_bytes()
    assert lxml.etree.fromstring(out.read_bytes()).tag == "removed"
    assert xml_problems(out) == []


@pytest.mark.parametrize(("codec", "bom"), [("utf-16-le", b"\xff\xfe"),
                                           ("utf-16-be", b"\xfe\xff")], ids=["le", "be"])
def test_xhtml_script_in_utf16_xml_is_removed(tmp_path: Path, codec: str, bom: bytes) -> None:
    """Browsers read XML stored in UTF-16. Whether the walk ran was decided by looking for
    the XHTML namespace in the bytes, which UTF-16 spreads over NULs: the script went
    through and the file was reported clean. It is read, checked and delivered as UTF-8."""
    text = ('<?xml version="1.0" encoding="UTF-16"?>\n<ledger><h:script xmlns:h='
            '"http://www.w3.org/1999/xhtml">alert(1)</h:script><value>関所</value></ledger>\n')
    report, out = run(tmp_path, bom + text.encode(codec), "ledger.xml")
    assert report.input.type == "text.xml"
    assert report.verdict is Verdict.DISARMED
    assert keys(report) == {("xml.script", "script[0]")}
    assert xml_problems(out) == []
    data = out.read_bytes()
    assert data.startswith(b"<?xml") and b"alert(1)" not in data
    assert "<value>関所</value>".encode() in data


# a data file with everything a browser or parser acts on, among data that looks alike
HOSTILE = """<?xml version="1.0" encoding="Shift_JIS"?>
<?xml-stylesheet type="text/xsl" href="http://evil.example/x.xsl"?>
<?mso-infopath-ignore keep me?>
<!-- 市役所の台帳 -->
<ledger xmlns:h="http://www.w3.org/1999/xhtml" xmlns:s="http://www.w3.org/2000/svg"
        xmlns:xi="http://www.w3.org/2001/XInclude" xmlns:xlink="http://www.w3.org/1999/xlink">
  <entry online="yes" onset="1999"><script>脚本の題名</script>関所</entry>
  <h:p onclick="steal()">詳細は<h:a href="https://www.city.example.lg.jp/">こちら</h:a>
    <h:a href="javascript:alert(1)">ここ</h:a><h:img src="http://tracker.example/p.gif"/></h:p>
  <h:iframe src="http://evil.example/"/>
  <s:svg><s:script>alert(2)</s:script><s:a xlink:href="javascript:alert(3)">x</s:a></s:svg>
  <xi:include href="file:///etc/passwd" parse="text"/>
</ledger>
""".encode("cp932")


def test_hostile_data_file(tmp_path: Path) -> None:
    report, out = run(tmp_path, HOSTILE, "ledger.xml")
    assert report.verdict is Verdict.DISARMED
    assert keys(report) == {
        ("xml.stylesheet", "?xml-stylesheet[0]"),
        ("xml.event_handler", "p[0]@onclick"),
        ("xml.hyperlink", "a[0]@href"),
        ("xml.javascript_url", "a[1]@href"),
        ("xml.remote_resource", "img[0]@src"),
        ("xml.frame", "iframe[0]"),
        ("xml.script", "script[1]"),          # script[0] is the data element without namespace
        ("xml.javascript_url", "a[2]@href"),
        ("xml.remote_resource", "include[0]"),
    }
    link = next(f for f in report.items[0].findings if f.kind == "xml.hyperlink")
    assert link.action == "removed"  # the default policy takes web links out
    assert link.detail == "link to https://www.city.example.lg.jp/, removed by policy"
    assert xml_problems(out) == []
    data = out.read_bytes()
    assert data.startswith(b"<?xml version='1.0' encoding='Shift_JIS'?>")
    text = data.decode("cp932")
    for kept_text in ("<?mso-infopath-ignore keep me?>", "<!-- 市役所の台帳 -->",
                      '<entry online="yes" onset="1999"><script>脚本の題名</script>関所</entry>',
                      "詳細は", "ここ"):
        assert kept_text in text
    for gone in ("evil.example", "tracker.example", "alert(", "steal()", "passwd",
                 "www.city.example.lg.jp"):
        assert gone not in text


def test_namespace_written_with_character_references_is_still_read(tmp_path: Path) -> None:
    """The walk is skipped for files without the XHTML/SVG/XInclude/msxsl namespaces (a
    large data file costs one parse); a namespace spelled with character references
    must not slip past that shortcut."""
    data = (b'<?xml version="1.0"?>\n<r xmlns:h="http://www.w3.org/1999/&#x78;html">'
            b"<h:script>alert(1)</h:script><v>1</v></r>")
    report, out = run(tmp_path, data, "r.xml")
    assert keys(report) == {("xml.script", "script[0]")}
    assert xml_problems(out) == [] and b"alert" not in out.read_bytes()


def test_infopath_form_template_reference_goes(tmp_path: Path) -> None:
    data = (b'<?xml version="1.0" encoding="UTF-8"?>\n<?mso-infoPathSolution solutionVersion='
            b'"1.0.0.1" productVersion="14.0.0" PIVersion="1.0.0.0" href="\\\\attacker.example'
            b'\\forms\\leave.xsn" name="urn:schemas-microsoft-com:office:infopath:leave:-x"?>\n'
            b'<?mso-application progid="InfoPath.Document" versionProgid="InfoPath.Document.3"?>'
            b'\n<my:myFields xmlns:my="http://schemas.microsoft.com/office/infopath/2003/myXSD">'
            b"<my:name>\xe5\xb1\xb1\xe7\x94\xb0</my:name></my:myFields>\n")
    report, out = run(tmp_path, data, "leave.xml")
    assert report.verdict is Verdict.DISARMED
    assert keys(report) == {("xml.remote_resource", "?mso-infoPathSolution[0]")}
    assert "UNC path" in report.items[0].findings[0].detail
    result = out.read_bytes()
    assert b"mso-infoPathSolution" not in result and b"InfoPath.Document" not in result
    assert b"attacker" not in result and "山田".encode() in result
    assert xml_problems(out) == []


def test_xslt_scripts_and_literal_html_scripts(tmp_path: Path) -> None:
    """rce-dotnet.xsl: msxsl:script runs C# in .NET transformations; an XSLT stylesheet's
    literal result elements without a namespace become HTML."""
    xsl = b"""<xsl:stylesheet version="1.0" xmlns:xsl="http://www.w3.org/1999/XSL/Transform"
 xmlns:msxsl="urn:schemas-microsoft-com:xslt" xmlns:App="http://www.tempuri.org/App">
  <msxsl:script implements-prefix="App" language="C#"><![CDATA[
    public string F(string d) { System.Diagnostics.Process.Start("cmd.exe"); return d; }
  ]]></msxsl:script>
  <msxsl:script implements-prefix="J" language="JScript"><![CDATA[
    function G() { new ActiveXObject("WScript.Shell").Run("calc"); }
  ]]></msxsl:script>
  <xsl:template match="/"><html><body onload="x()"><script>alert(1)</script>
    <p><xsl:value-of select="App:F(Test)"/><img src="{@photo}"/></p></body></html></xsl:template>
</xsl:stylesheet>"""
    report, out = run(tmp_path, xsl, "report.xsl")
    assert report.verdict is Verdict.DISARMED
    assert keys(report) == {("xml.script", "script[0]"), ("xml.script", "script[1]"),
                            ("xml.event_handler", "body[0]@onload"), ("xml.script", "script[2]")}
    assert xml_problems(out) == []
    data = out.read_bytes()
    assert b"Process.Start" not in data and b"alert(1)" not in data and b"onload" not in data
    assert b"WScript" not in data  # a script the text rule would have blocked the file for
    assert b'<xsl:value-of select="App:F(Test)"/>' in data
    assert b'<img src="{@photo}"/>' in data  # an attribute value template stays


@pytest.mark.parametrize(("payload", "detail", "text"), [
    # PayloadsAllTheThings' "Classic XXE.xml": a DTD expat cannot read ((#ANY))
    (b'<?xml version="1.0"?>\n<!DOCTYPE data [\n<!ELEMENT data (#ANY)>\n'
     b'<!ENTITY file SYSTEM "file:///etc/passwd">\n]>\n<data>a&file;b</data>',
     "declares XML entities in a DTD that does not parse (XXE); "
     "1 entity reference(s) removed", "ab"),
    # billion laughs without an XML declaration and without a file name extension
    (b'<!DOCTYPE data [\n<!ENTITY a0 "dos" >\n<!ENTITY a1 "&a0;&a0;&a0;&a0;">\n]>\n'
     b"<data>&a1;</data>",
     "declares nested XML entities (entity expansion, 'billion laughs'); "
     "1 entity reference(s) removed", ""),
    # an external DTD (out-of-band XXE); the XHTML entities it would define stay as text
    (b'<?xml version="1.0"?>\n<!DOCTYPE r SYSTEM "http://evil.example/oob.dtd">\n'
     b"<r>a&nbsp;b &copy; &send;</r>",
     "names an external DTD (a validating parser fetches it); "
     "2 entity reference(s) replaced by their text; 1 entity reference(s) removed",
     "a\xa0b \xa9 "),
])
def test_dtd_attacks_are_cut_out(tmp_path: Path, payload: bytes, detail: str,
                                 text: str) -> None:
    report, out = run(tmp_path, payload, "data")
    assert report.input.type == "text.xml"
    assert report.verdict is Verdict.DISARMED
    assert keys(report) == {("xml.dtd", "!DOCTYPE")}
    assert report.items[0].findings[0].detail == detail
    assert xml_problems(out) == []
    assert b"<!DOCTYPE" not in out.read_bytes()
    assert "".join(lxml.etree.parse(str(out)).getroot().itertext()) == text


@pytest.mark.parametrize(("name", "payload"), [
    # html5sec #67 (PayloadsAllTheThings' MarioXSSVectors): Chromium ran the handler
    ("img.xml", b'<?xml version="1.0"?>\n<!DOCTYPE x [\n<!ATTLIST img xmlns CDATA '
                b'"http://www.w3.org/1999/xhtml" src CDATA "xx:x" onerror CDATA "alert(67)">\n'
                b"]><img />"),
    ("page.xhtml", b'<?xml version="1.0"?>\n<!DOCTYPE html [\n<!ATTLIST body onload CDATA '
                   b'"alert(1)">\n<!ATTLIST a href CDATA #FIXED "javascript:alert(2)">\n]>\n'
                   b'<html xmlns="http://www.w3.org/1999/xhtml"><body><p>Text &amp; more</p>'
                   b"<a>link</a></body></html>"),
])
def test_dtd_attribute_defaults_are_cut_out(tmp_path: Path, name: str, payload: bytes) -> None:
    """A DTD declaring no entity but giving attributes default values (an event handler,
    a javascript: link) goes: a browser reading the document as XML puts them on the
    elements. libxml2 applying the DTD's defaults finds none in the output."""
    def handlers(data: bytes) -> list[str]:
        parser = lxml.etree.XMLParser(attribute_defaults=True, resolve_entities=False,
                                      no_network=True)
        root = lxml.etree.fromstring(data, parser)
        return sorted(f"{el.tag}@{k}={v}" for el in root.iter() for k, v in el.attrib.items()
                      if k.startswith("on") or "javascript" in v)

    assert handlers(payload) != []
    report, out = run(tmp_path, payload, name)
    assert report.verdict is Verdict.DISARMED
    assert ("xml.dtd", "!DOCTYPE") in keys(report)
    assert "default values" in report.items[0].findings[0].detail
    result = out.read_bytes()
    assert b"<!DOCTYPE" not in result and b"ATTLIST" not in result
    assert handlers(result) == []
    assert xml_problems(out) == []


@pytest.mark.parametrize(("payload", "found"), [
    (b'<?xml version="1.0"?>\n<!DOCTYPE x [<!ATTLIST x xmlns CDATA '
     b'"http://www.w3.org/1999/xhtml">]>\n<x><p>plain text</p><img src="x" '
     b"onerror=\"alert('root-ns-default')\"/></x>",
     {("xml.dtd", "!DOCTYPE"), ("xml.remote_resource", "img[0]@src"),
      ("xml.event_handler", "img[0]@onerror")}),
    (b'<?xml version="1.0"?>\n<!DOCTYPE x [<!ATTLIST script xmlns CDATA '
     b'"http://www.w3.org/1999/xhtml">]>\n<x><p>plain text</p><script>alert("s")</script></x>',
     {("xml.dtd", "!DOCTYPE"), ("xml.script", "script[0]")}),
])
def test_namespace_a_dtd_gives_by_default_stays_with_its_elements(
        tmp_path: Path, payload: bytes, found: set[tuple[str, str]]) -> None:
    """A DTD whose only default is a namespace (<x> and its content in XHTML, which a
    browser runs): cutting the DTD out left <img onerror> and <script> in no namespace,
    delivered as they were; the namespace is written out and they are judged as XHTML
    (PayloadsAllTheThings sweep, found by re-running the earlier sets)."""
    report, out = run(tmp_path, payload, "ns.xml")
    assert report.verdict is Verdict.DISARMED
    assert keys(report) == found
    data = out.read_bytes()
    assert b"<!DOCTYPE" not in data and b"alert" not in data and b"onerror" not in data
    assert b"plain text" in data
    assert xml_problems(out) == []


@pytest.mark.parametrize("payload", [
    # PayloadsAllTheThings' "XXE inside SOAP": the DTD is character data of <foo>
    b'<soap:Body xmlns:soap="http://schemas.xmlsoap.org/soap/envelope/"><foo><![CDATA['
    b'<!DOCTYPE doc [<!ENTITY % dtd SYSTEM "http://x/"> %dtd;]><xxx/>]]></foo></soap:Body>',
    b'<?xml version="1.0"?>\n<!-- <!DOCTYPE r [<!ENTITY e "x">]> -->\n<r>text</r>\n',
])
def test_dtd_only_as_text_is_no_dtd(tmp_path: Path, payload: bytes) -> None:
    """"<!DOCTYPE" and "<!ENTITY" inside a CDATA section or a comment are text: the
    document is delivered as it is (it was blocked as a DTD that cannot be read)."""
    report, out = run(tmp_path, payload, "soap.xml")
    assert report.verdict is Verdict.CLEAN
    assert out.read_bytes() == payload


def test_dtd_the_byte_cut_cannot_read_goes_with_the_tree(tmp_path: Path) -> None:
    """An external DTD next to an internal subset expat refuses (a comment with "--")
    and no entity declaration: found in the parsed tree instead, and the document
    rebuilt without it (a case found by mutating the fixtures)."""
    data = (b'<?xml version="1.0"?>\n<!-- kept -->\n<!DOCTYPE r SYSTEM "http://evil.example/x.dtd" '
            b"[<!ELEMENT r ANY><!-- x -- y -->]>\n<r>a&nbsp;b&send;c</r>\n")
    report, out = run(tmp_path, data, "r.xml")
    assert report.verdict is Verdict.DISARMED
    assert ("xml.dtd", "!DOCTYPE") in keys(report)
    assert xml_problems(out) == []
    result = out.read_bytes()
    assert b"DOCTYPE" not in result and b"evil.example" not in result and b"<!-- kept -->" in result
    assert "".join(lxml.etree.parse(str(out)).getroot().itertext()) == "a\xa0bc"


def test_dtd_no_parser_reads_is_cut_out(tmp_path: Path) -> None:
    data = (b'<?xml version="1.0"?>\n<!DOCTYPE r SYSTEM "http://evil.example/x.dtd" '
            b"[<!ATTLIST r a CDATA #IMPLIED %x; >]>\n<r>text</r>\n")
    report, out = run(tmp_path, data, "r.xml")
    assert report.verdict is Verdict.DISARMED
    assert keys(report) == {("xml.dtd", "!DOCTYPE"), ("xml.repaired", "")}
    assert xml_problems(out) == [] and b"evil.example" not in out.read_bytes()
    assert "".join(lxml.etree.parse(str(out)).getroot().itertext()) == "text"


@pytest.mark.parametrize("payload", [
    b'<?xml} version="1.0"?>\n<?keep me?>\n<r>x</r>',           # a broken declaration
    b'<?xml version="1.0" encoding="UTF-1U"?>\n<r>x</r>',        # an unknown encoding
])
def test_mangled_prologs_are_no_internal_error(tmp_path: Path, payload: bytes) -> None:
    report, out = run(tmp_path, payload, "m.xml")
    assert report.verdict is not Verdict.FAILED, report.reason
    if report.verdict is Verdict.BLOCKED:
        assert (report.reason or "").startswith("XML ")
    elif out.read_bytes() != payload:  # nothing to remove: delivered as it was
        assert xml_problems(out) == []


def test_xhtml_page_keeps_the_w3c_dtd_and_stays_xml(tmp_path: Path) -> None:
    """A .xhtml file is XML to a browser: it stays well-formed XML (the HTML stage writes
    HTML5, which no XML parser reads), and the W3C's own DTD it names is no finding."""
    page = (b'<?xml version="1.0" encoding="utf-8"?>\n<!DOCTYPE html PUBLIC "-//W3C//DTD XHTML '
            b'1.0 Strict//EN" "http://www.w3.org/TR/xhtml1/DTD/xhtml1-strict.dtd">\n<html xmlns='
            b'"http://www.w3.org/1999/xhtml"><head><title>t</title></head><body><p>a&nbsp;b</p>'
            b"<script>alert(1)</script></body></html>\n")
    report, out = run(tmp_path, page, "page.xhtml")
    assert report.input.type == "text.xml" and report.output is not None
    assert report.output.name.endswith(".xhtml")
    assert keys(report) == {("xml.script", "script[0]")}
    result = out.read_bytes()
    assert b"xhtml1-strict.dtd" in result and b"alert" not in result
    parser = lxml.etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False)
    assert lxml.etree.fromstring(result, parser) is not None  # well-formed


def test_plain_data_file_is_delivered_byte_for_byte(tmp_path: Path) -> None:
    data = ('<?xml version="1.0" encoding="UTF-8"?>\n<!-- 予算 -->\n<budget year="2026">'
            '<item online="no"><name>道路</name><yen>1200</yen></item>'
            '<link>https://www.city.example.lg.jp/</link></budget>\n').encode()
    report, out = run(tmp_path, data, "budget.xml")
    assert report.verdict is Verdict.CLEAN and keys(report) == set()
    assert out.read_bytes() == data


def test_not_well_formed_is_recovered_or_blocked(tmp_path: Path) -> None:
    report, out = run(tmp_path, b'<?xml version="1.0"?>\n<a><h:script xmlns:h="'
                      + XHTML.encode() + b'">x()</h:script><b>text</a>', "broken.xml")
    assert report.verdict is Verdict.DISARMED
    assert keys(report) == {("xml.repaired", ""), ("xml.script", "script[0]")}
    assert xml_problems(out) == []
    assert "".join(lxml.etree.parse(str(out)).getroot().itertext()) == "text"
    report, out = run(tmp_path, b'<?xml version="1.0"?>\n\x01\x02 no element', "junk.xml")
    assert report.verdict is Verdict.BLOCKED
    assert (report.reason or "").startswith("XML is not well-formed and cannot be recovered")
    assert not out.exists()


def test_xml_named_html_is_cleaned_as_html(tmp_path: Path) -> None:
    """A browser opens a .html file with its HTML parser, whatever the XML declaration
    and root say: the un-namespaced <script> runs there, so the HTML stage cleans it
    (the XML stage, reading it as XML, would have seen inert data)."""
    data = b'<?xml version="1.0"?>\n<foo><p>\xe5\xb8\x82</p><script>alert(1)</script></foo>'
    report, out = run(tmp_path, data, "page.html")
    assert report.input.type == "html" and report.verdict is Verdict.DISARMED
    assert ("html.script", "script[0]") in keys(report)
    assert b"alert" not in out.read_bytes() and "市".encode() in out.read_bytes()


def test_html_named_xml_that_does_not_start_as_xml_is_delivered_as_html(
        tmp_path: Path) -> None:
    """Text before the first tag: no XML parser reads it, libmagic calls it HTML and the
    HTML stage cleans it. Its cleaned copy starts with a tag, which under the .xml name
    sniffed as XML, so the verify step refused it; it is delivered as .html now."""
    data = b"Notes first\nmore text\n<p>\xe5\xb8\x82</p><script>alert(1)</script>\n"
    report, out = run(tmp_path, data, "notes.xml")
    assert report.input.type == "html" and report.verdict is Verdict.DISARMED, report.reason
    assert ("html.script", "script[0]") in keys(report)
    assert report.output is not None and report.output.name == "notes.html"
    assert sniff_bytes(out.read_bytes(), "notes.html").type_id == "html"
    assert b"alert" not in out.read_bytes() and "市".encode() in out.read_bytes()


def test_not_well_formed_without_anything_to_remove_is_delivered_as_is(
        tmp_path: Path) -> None:
    """No reader runs anything from a document it cannot parse; rebuilding it from the
    recovery would lose what the recovery skips (here the rows after the broken byte)."""
    data = ('<?xml version="1.0" encoding="UTF-8"?>\n<rows><row>東京</row><row a="1" a="2">'
            "大阪</row><row>札幌</row></rows>\n").encode()
    report, out = run(tmp_path, data, "rows.xml")
    assert report.verdict is Verdict.CLEAN and keys(report) == set()
    assert out.read_bytes() == data


@pytest.mark.parametrize(("name", "data", "expected"), [
    (None, b'<?xml version="1.0"?>\n<budget/>', "text.xml"),
    (None, b'<?xml version="1.0"?>\n<!DOCTYPE html>\n<html><body>x</body></html>', "html"),
    (None, b'<?xml version="1.0"?>\n<!-- c -->\n<html xmlns="http://www.w3.org/1999/xhtml">'
           b"<body>x</body></html>", "html"),
    ("xss.xml", b"<html><body><p>x</p></body></html>", "text.xml"),
    ("page.html", b"<html><body><p>x</p></body></html>", "html"),
    # XML named .html: a browser's HTML parser runs the un-namespaced script
    ("page.html", b'<?xml version="1.0"?>\n<foo><script>alert(1)</script></foo>', "html"),
    ("page.htm", b'<?xml version="1.0"?>\n<foo><p>x</p></foo>', "html"),
    (None, b'<?xml version="1.0"?>\n<foo><script>alert(1)</script></foo>', "text.xml"),
    ("notes.xml", b"no markup at all\n", "text.plain"),
    ("page.xhtml", b"<html><body><p>x</p></body></html>", "text.xml"),
    # no declaration: a namespace whose elements run (XHTML, SVG, XSLT) makes it XML...
    ("a.mno", b'<a:script xmlns:a="http://www.w3.org/1999/xhtml">x</a:script>', "text.xml"),
    (None, b'<d><i xmlns:s="http://www.w3.org/2000/svg"><s:script/></i></d>', "text.xml"),
    ("t.txt", b'<x:stylesheet xmlns:x="http://www.w3.org/1999/XSL/Transform"/>', "text.xml"),
    # ...the address in prose does not
    ("n.txt", b"<note>see http://www.w3.org/1999/xhtml</note>", "text.plain"),
])
def test_sniffing(name: str | None, data: bytes, expected: str) -> None:
    assert sniff_bytes(data, name).type_id == expected

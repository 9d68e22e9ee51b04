"""HTML documents: sanitized with nh3 (ammonia), rebuilt as a UTF-8 document.

nh3 does the cleaning (an allow-list of tags, attributes, URL schemes and CSS
properties); a small scanner on the standard library's HTMLParser reports what
goes, so every finding has a kind and a location, and the verify step can
re-scan our own output. Remote resources (images, stylesheets, CSS url()) are
removed: they are tracking pixels and SSRF in a municipal network. Hyperlinks
are kept or removed by policy (``keep: [hyperlinks]``).

Locations are ``tag[n]`` (the n-th such tag in document order, counted from 0)
with ``@attribute`` when an attribute was removed, e.g. ``img[2]@src``.
"""

from __future__ import annotations

import codecs
import html as htmllib
import re
from collections import Counter
from html.parser import HTMLParser
from typing import BinaryIO, ClassVar

import lxml.html
import nh3
from lxml import etree

from gateway.errors import Malformed
from gateway.pipeline import registry
from gateway.pipeline.api import StageContext
from gateway.stages import links

_TAGS = set(nh3.ALLOWED_TAGS) | {"font", "tfoot", "section", "main", "address", "big", "label",
                                 "legend", "fieldset"}
_TAGS -= {"area", "map"}  # image maps carry hrefs in an odd place; the image itself stays
_ATTRS: dict[str, set[str]] = {k: set(v) for k, v in nh3.ALLOWED_ATTRIBUTES.items()}
_ATTRS.setdefault("font", set()).update({"color", "size", "face"})
# hidden (and a closed <details>) keep hiding what the author hid: dropped, a page
# showed text its author kept out of view, and an open <details> came out collapsed
_ATTRS["*"] = {"style", "title", "lang", "dir", "align", "class", "id", "width", "height",
               "bgcolor", "valign", "border", "cellpadding", "cellspacing", "nowrap", "hidden"}
_ATTRS["details"] = {"open"}
_ATTRS["a"] = {"href", "hreflang", "name", "target"}
_STYLE_PROPERTIES = {
    "color", "background-color", "font", "font-family", "font-size", "font-style",
    "font-weight", "text-align", "text-decoration", "text-indent", "line-height",
    "vertical-align", "white-space", "width", "height", "max-width", "min-width",
    "margin", "margin-top", "margin-bottom", "margin-left", "margin-right",
    "padding", "padding-top", "padding-bottom", "padding-left", "padding-right",
    "border", "border-top", "border-bottom", "border-left", "border-right",
    "border-color", "border-style", "border-width", "border-collapse", "border-spacing",
    "list-style-type", "display", "float", "clear", "letter-spacing", "word-break",
}
# <object> and <applet> are unwrapped instead: their content is the fallback a browser
# shows when it cannot run the plugin (every browser today), ordinary cleaned HTML
_DROP_WITH_CONTENT = {"script", "style", "template", "iframe", "embed",
                      "frame", "frameset", "noembed", "svg", "math", "head",
                      # noscript content is raw text to the parser when scripting is on, and
                      # HTML (remote images…) when it is off: it cannot be cleaned reliably
                      "noscript"}

_FRAMES = {"iframe", "frame", "frameset", "object", "embed", "applet", "portal"}
_FORMS = {"form", "input", "button", "select", "textarea", "isindex"}
_REMOVED_WHOLE = _FRAMES | _FORMS | {"script", "link", "base"}
_URL_ATTRS = {"href", "src", "action", "formaction", "background", "poster", "data", "srcset",
              "lowsrc", "dynsrc", "codebase", "cite", "longdesc", "xlink:href"}
_LINK_URL = re.compile(r"^\s*(https?|mailto|ftp|tel)\s*:|^\s*//", re.I)
_CSS_ACTIVE = re.compile(r"url\s*\(|@import|expression\s*\(|behavio(u)?r\s*:|-moz-binding", re.I)
# Each pattern is tried where the text names the element, and a [^>]* run to the end of
# a text without ">" at every such place costs quadratic time (0.5 MB of "<body" took
# 13 s): start tags are found by name, their end by one str.find, attributes bounded.
_META_CHARSET = re.compile(rb"<meta[^>]{1,1024}?charset\s*=\s*[\"']?\s*([A-Za-z0-9_.:-]+)",
                           re.I)
_TITLE = re.compile(r"<title(?=[\s/>])", re.I)
_TITLE_END = re.compile(r"</title\s*>", re.I)
_BODY = re.compile(r"<body(?=[\s/>])", re.I)
_TITLE_ELEMENT = re.compile(r"<title(?=[\s/>]).*?(?:</title\s*>|$)", re.I | re.S)
_HEAD_TAG = re.compile(r"</?head(?=[\s/>])[^>]*>?", re.I)


class HtmlStage:
    name: ClassVar[str] = "html"
    formats: ClassVar[frozenset[str]] = frozenset({"html"})

    def scan(self, src: BinaryIO, ctx: StageContext) -> None:
        _Scanner(ctx).run(decode(src.read()))

    def disarm(self, src: BinaryIO, dst: BinaryIO, ctx: StageContext) -> None:
        text = decode(src.read())
        _Scanner(ctx).run(text)
        dst.write(rebuild(text, keep_links=ctx.keeps("hyperlinks")).encode("utf-8"))


def scan_text(text: str, ctx: StageContext) -> None:
    """Record (ctx.record) what clean_fragment()/rebuild() would remove from ``text``.

    For stages that sanitize HTML they hold as text (a mail's HTML body); hyperlinks
    are reported as kept or removed by ``ctx.keeps("hyperlinks")``.
    """
    _Scanner(ctx).run(text)


def decode(data: bytes) -> str:
    """The document's text: BOM, then <meta charset>, then ISO-2022-JP when its escape
    sequences are there (browsers detect it by them), UTF-8, CP932, EUC-JP; else
    windows-1252, what browsers fall back to for undeclared 8-bit text (every byte
    kept; UTF-8 with replacement characters lost åäö for good)."""
    for bom, enc in ((codecs.BOM_UTF8, "utf-8"), (codecs.BOM_UTF16_LE, "utf-16"),
                     (codecs.BOM_UTF16_BE, "utf-16")):
        if data.startswith(bom):
            return data.decode(enc, "replace").lstrip("\ufeff")
    candidates = ["utf-8", "cp932", "euc-jp", "iso-2022-jp"]
    if _JIS_ESCAPE.search(data):
        candidates.insert(0, "iso-2022-jp")
    m = _META_CHARSET.search(data[:65536])
    if m:
        declared = m.group(1).decode("ascii", "ignore").lower()
        declared = {"shift_jis": "cp932", "x-sjis": "cp932", "sjis": "cp932",
                    "windows-31j": "cp932"}.get(declared, declared)
        candidates.insert(0, declared)
    for enc in candidates:
        try:
            return data.decode(enc)
        except (UnicodeError, LookupError, ValueError):
            # UnicodeError: charsets that never decode ("undefined") or fail in their own
            # way (punycode, idna): found by fuzzing, an internal error before
            continue
    # Japanese with a stray byte or two (a vendor's own character) is no Western text:
    # the Japanese reading with the most kana, when its replacement characters are few
    best = max((data.decode(enc, "replace") for enc in ("cp932", "euc-jp")),
               key=lambda text: len(_KANA.findall(text)))
    kana = len(_KANA.findall(best))
    if kana >= 4 and best.count("\ufffd") * 2 <= kana:
        return best
    try:
        return data.decode("cp1252")
    except UnicodeDecodeError:   # the five bytes windows-1252 leaves undefined
        return data.decode("latin-1")


#: hiragana and katakana (full width): what Japanese text is full of
_KANA = re.compile("[\u3041-\u30ff]")
#: an ISO-2022-JP switch into JIS X 0208 (ESC $ @, ESC $ B) or JIS X 0201 (ESC ( J)
_JIS_ESCAPE = re.compile(rb"\x1b\$[@B]|\x1b\(J")


def _content_start(text: str, tag: re.Pattern[str]) -> int:
    """Where the content of the first element ``tag`` finds starts (just past its start
    tag's ``>``), or -1. A start tag without ``>`` after it means none later has one."""
    m = tag.search(text)
    if m is None:
        return -1
    end = text.find(">", m.end())
    return end + 1 if end >= 0 else -1


def rebuild(text: str, *, keep_links: bool) -> str:
    """A complete, sanitized UTF-8 document from ``text``."""
    text = _foreign_text(text)  # first: an inline SVG's <title> is no document title
    title = ""
    start = _content_start(text, _TITLE)
    end = _TITLE_END.search(text, start) if start >= 0 else None
    if end is not None:
        title = htmllib.escape(htmllib.unescape(text[start:end.start()]).strip())
    start = _content_start(text, _BODY)
    if start >= 0:  # to the end: what follows </body> too
        body = _shown_before_body(text[:text.rfind("<", 0, start)]) + text[start:]
    else:
        body = _shown_before_body(text)
    cleaned = clean_fragment(body, keep_links=keep_links)
    return ("<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\">"
            f"<title>{title}</title></head>\n<body>\n{cleaned}\n</body></html>\n")


def _shown_before_body(text: str) -> str:
    """What of the text before the body a browser shows: all but the title (taken
    above) and the head's hidden elements, which the cleaner drops with their content
    once the head is not one element any more. Text in the head or between it and the
    body is shown, at the top of the body (HTML parsing opens the body there)."""
    return _HEAD_TAG.sub("", _TITLE_ELEMENT.sub("", text))


#: SVG and MathML element names ammonia (nh3) drops with their content wherever they
#: stand; outside <svg> and <math> (which go whole) they are unknown HTML elements whose
#: text a browser shows (<text>Hello</text>, a custom <change-log><g>...): renamed to
#: an unknown name first, they are unwrapped like any other unknown element
_FOREIGN_NAMED = re.compile(
    r"<(/?)(animate|circle|defs|desc|ellipse|filter|g|line|marker|mask|metadata|mpath|path|"
    r"pattern|polygon|polyline|rect|set|stop|switch|symbol|text|tspan|use|view|maction|"
    r"maligngroup|malignmark|menclose|merror|mfenced|mfrac|mglyph|mi|mlabeledtr|mlongdiv|"
    r"mmultiscripts|mn|mo|mover|mpadded|mphantom|mroot|mrow|ms|mscarries|mscarry|msgroup|"
    r"msline|mspace|msqrt|msrow|mstack|mstyle|msub|msup|msubsup|mtable|mtd|mtext|mtr|"
    r"munder|munderover|semantics|annotation|annotation-xml)(?=[\s/>])", re.IGNORECASE)


#: the elements of an inline <svg> or <math> whose text a browser shows (a
#: foreignObject's HTML too)
_SHOWN_TEXT = frozenset({"text", "mi", "mn", "mo", "mtext", "ms", "foreignobject"})
#: ... and those whose text it does not (within them, even a <text> is not drawn)
_HIDDEN_TEXT = frozenset({"script", "style", "title", "desc", "metadata", "annotation",
                          "annotation-xml", "defs", "symbol", "mask", "clippath", "pattern",
                          "marker", "noscript", "template", "textarea", "select"})
_FOREIGN_OPEN = re.compile(r"<(svg|math)(?=[\s/>])", re.IGNORECASE)
#: start tags that end SVG or MathML content when HTML is parsed (HTML's "breakout"
#: elements), unless within an HTML integration point (_INTEGRATION)
_BREAKOUT = re.compile(r"<(?:b|big|blockquote|body|br|center|code|dd|div|dl|dt|em|embed|"
                       r"h[1-6]|head|hr|i|img|li|listing|menu|meta|nobr|ol|p|pre|ruby|s|"
                       r"small|span|strong|strike|sub|sup|table|tt|u|ul|var)(?=[\s/>])"
                       r"|<font\s[^>]*\b(?:color|face|size)\s*=", re.IGNORECASE)
_INTEGRATION = re.compile(r"<(foreignObject|desc|title|mi|mo|mn|ms|mtext|annotation-xml)"
                          r"(?=[\s/>])", re.IGNORECASE)


def _foreign_text(fragment: str) -> str:
    """``fragment`` with each inline <svg> and <math> replaced by the text it shows (the
    labels of a chart, a formula's symbols) as plain escaped text: the drawing goes
    (nh3 cannot judge it: scripts, links, animations), what it said stays. A block
    without its end tag is left for nh3, which drops it; one an HTML element breaks out
    of (``<svg><p>``: HTML parsing leaves the drawing there) ends at that element. Tags
    are looked for where HTML has tags: not in comments, attribute values or the text of
    <script>, <style>, <textarea> and the like (``_masked``)."""
    low = fragment.lower()
    if "<svg" not in low and "<math" not in low:
        return fragment
    masked = _masked(fragment)
    lowered = masked.lower()
    out: list[str] = []
    pos = 0
    closes: dict[str, re.Match[str] | None] = {}   # the next end tag found, by name
    for m in _FOREIGN_OPEN.finditer(masked):
        if m.start() < pos:
            continue                                   # inside a block already taken
        name = m.group(1).lower()
        tag_end = masked.find(">", m.end())
        if tag_end < 0:
            break
        if masked[tag_end - 1] == "/":                 # <svg/>: an empty drawing
            out += [fragment[pos:m.start()]]
            pos = tag_end + 1
            continue
        close = closes.get(name)
        if close is None or close.start() < tag_end:
            close = closes[name] = re.compile(rf"</{name}\s*>", re.IGNORECASE).search(
                masked, tag_end)
        if close is None:
            break
        end = _breakout(masked, lowered, tag_end, close.start()) or close.end()
        out.append(fragment[pos:m.start()])
        words = _shown_words(fragment[m.start():end])
        out.append(f"<span>{htmllib.escape(words)}</span>" if words else "")
        pos = end
    out.append(fragment[pos:])
    return "".join(out)


def _breakout(masked: str, lowered: str, start: int, stop: int) -> int | None:
    """Where HTML parsing leaves a drawing whose content runs from ``start`` to ``stop``:
    the first breakout element not inside an open HTML integration point (``lowered``:
    ``masked`` in lower case, made once for the whole page)."""
    at = start
    for _ in range(64):
        hit = _BREAKOUT.search(masked, at, stop)
        if hit is None:
            return None
        inside = None
        for point in _INTEGRATION.finditer(masked, at, hit.start()):
            closer = lowered.find("</" + point.group(1).lower(), point.end(), stop)
            if closer < 0 or closer > hit.start():
                inside = closer
                break
        if inside is None:
            return hit.start()
        if inside < 0:
            return None
        at = inside
    return None


#: elements whose content HTML reads as text, not tags
_RAW_TEXT = ("script", "style", "textarea", "title", "xmp", "noscript", "iframe",
             "noembed", "noframes")
_TAG_OR_COMMENT = re.compile(r"<(!--|[A-Za-z][^\s/>]*)")
_TAG_BODY = re.compile(r"(?:[^>\"']++|\"[^\"]*+\"|'[^']*+')*+")
_QUOTED = re.compile(r"\"[^\"]*\"|'[^']*'")


def _masked(text: str) -> str:
    """``text`` with comments, attribute values and the content of raw-text elements
    blanked out (same length, so positions stay): where HTML would find no tag."""
    parts: list[str] = []
    pos = 0
    low = text.lower()
    for m in _TAG_OR_COMMENT.finditer(text):
        if m.start() < pos:
            continue
        if m.group(1) == "!--":
            end = text.find("-->", m.end())
            end = len(text) if end < 0 else end + 3
            parts += [text[pos:m.start()], " " * (end - m.start())]
            pos = end
            continue
        body = _TAG_BODY.match(text, m.end())    # a ">" in a quoted value ends no tag
        tag_end = body.end() if body else m.end()
        if tag_end >= len(text) or text[tag_end] != ">":
            parts += [text[pos:m.end()], " " * (len(text) - m.end())]   # never closed
            pos = len(text)
            break
        inner = _QUOTED.sub(lambda q: " " * len(q.group()), text[m.end():tag_end])
        parts += [text[pos:m.end()], inner, ">"]
        pos = tag_end + 1
        name = m.group(1).lower()
        if name in _RAW_TEXT:
            close = low.find("</" + name, pos)
            close = len(text) if close < 0 else close
            parts.append(" " * (close - pos))
            pos = close
    parts.append(text[pos:])
    return "".join(parts)


def _shown_words(block: str) -> str:
    try:
        root = lxml.html.fragment_fromstring(block, create_parent="div")
    except (etree.ParserError, ValueError):
        return ""
    texts: list[str] = []
    for el in root.iter():
        tag = el.tag.lower() if isinstance(el.tag, str) else ""
        if tag in _SHOWN_TEXT and not any(
                isinstance(a.tag, str) and (a.tag.lower() in _HIDDEN_TEXT
                                            or a.tag.lower() in _SHOWN_TEXT)
                for a in el.iterancestors()):
            texts.append(" ".join(_visible(el).split()))
    words = " ".join(t for t in texts if t)
    return "" if links.SCRIPT_TEXT.search(words) else words


def _visible(el: etree._Element) -> str:
    """The text of ``el`` without that of the hidden elements inside it."""
    parts = [el.text or ""]
    for child in el:
        tag = child.tag.lower() if isinstance(child.tag, str) else ""
        if tag not in _HIDDEN_TEXT and tag:
            parts.append(_visible(child))
        parts.append(child.tail or "")
    return "".join(parts)


def _renamed(fragment: str) -> str:
    """``fragment`` with the tags ``_FOREIGN_NAMED`` matches renamed (where HTML has
    tags: not in attribute values, comments or raw text)."""
    if not _FOREIGN_NAMED.search(fragment):
        return fragment
    parts: list[str] = []
    pos = 0
    for m in _FOREIGN_NAMED.finditer(_masked(fragment)):
        parts += [fragment[pos:m.start()], f"<{m.group(1)}x-{m.group(2)}"]
        pos = m.end()
    parts.append(fragment[pos:])
    return "".join(parts)


def clean_fragment(fragment: str, *, keep_links: bool) -> str:
    def attribute_filter(tag: str, attr: str, value: str) -> str | None:
        if attr == "href":
            if value.startswith("#") or (keep_links and _LINK_URL.match(value)):
                return value
            return None
        if attr in _URL_ATTRS:
            return value if links.IMAGE_DATA_URL.match(value) or value.startswith("cid:") else None
        if attr == "style" and _CSS_ACTIVE.search(links.css_text(value)):
            return None
        return value

    fragment = _renamed(fragment)   # (inline SVG and MathML: done by rebuild, first)
    try:
        return nh3.clean(fragment, tags=_TAGS, clean_content_tags=_DROP_WITH_CONTENT,
                         attributes=_ATTRS, attribute_filter=attribute_filter,
                         strip_comments=True, link_rel="noopener noreferrer",
                         url_schemes={"http", "https", "mailto", "ftp", "tel", "cid", "data"},
                         filter_style_properties=_STYLE_PROPERTIES)
    except (ValueError, RuntimeError) as exc:  # nh3 raises on absurd input only
        raise Malformed(f"HTML cannot be sanitized ({type(exc).__name__})") from None


def linear(text: str) -> str:
    """``text`` as the standard library's HTMLParser reads in linear time.

    A tag, comment or declaration still open after the last ``>`` runs to the end of
    the input, and HTMLParser before Python 3.11.13 (gh-135462, CVE-2025-6069) scans
    that rest again for every ``<`` in it: 0.2 MB of ``<a<a<a…`` took 15 s, a 1 MB mail
    body the job's whole CPU allowance. HTML5 ends such a construct at the end of the
    file with nothing shown or run (html5ever, which nh3 uses, does), so the rest is
    handed to the scanner as text.
    """
    cut = text.find("<", text.rfind(">") + 1)
    return text if cut < 0 else text[:cut] + text[cut:].replace("<", "&lt;")


class _Scanner(HTMLParser):
    """Reports what clean_fragment() removes; runs on inputs and on our own outputs."""

    def __init__(self, ctx: StageContext) -> None:
        super().__init__(convert_charrefs=True)
        self.ctx = ctx
        self.counts: Counter[str] = Counter()
        self.keep_links = ctx.keeps("hyperlinks")
        self.in_style = False

    def run(self, text: str) -> None:
        self.feed(linear(text))
        self.close()

    def parse_marked_section(self, i: int, report: bool = True) -> int:
        """``<![CD…`` with an unknown keyword: the standard library raises
        AssertionError; browsers read a bogus comment up to the next ``>``."""
        try:
            return super().parse_marked_section(i, report)
        except AssertionError:
            end = self.rawdata.find(">", i + 3)
            return -1 if end < 0 else end + 1

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        index = self.counts[tag]
        self.counts[tag] += 1
        where = f"{tag}[{index}]"
        rec = self.ctx.record
        if tag == "script":
            rec("html.script", where)
        elif tag in _FRAMES:
            rec("html.frame", where)
        elif tag in _FORMS:
            rec("html.form", where)
        elif tag == "meta" and any(k == "http-equiv" and (v or "").lower() == "refresh"
                                   for k, v in attrs):
            rec("html.meta_refresh", where)
        elif tag == "base":
            rec("html.remote_resource", where, detail="<base href> changes every link")
        elif tag == "link" and any(k == "href" for k, _ in attrs):
            rec("html.remote_resource", where, detail="external stylesheet or resource")
        elif tag == "style":
            self.in_style = True
        elif tag in ("svg", "math"):   # dropped with what it holds (_DROP_WITH_CONTENT)
            rec("html.embedded_markup", where)
        if tag in _REMOVED_WHOLE:
            return  # the element goes with all its attributes: one finding is enough
        for key, value in attrs:
            self._attribute(tag, where, key, value or "")

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.handle_starttag(tag, attrs)

    def handle_endtag(self, tag: str) -> None:
        if tag == "style":
            self.in_style = False

    def handle_data(self, data: str) -> None:
        if self.in_style and _CSS_ACTIVE.search(links.css_text(data)):
            self.ctx.record("html.remote_resource", f"style[{self.counts['style'] - 1}]",
                            detail="stylesheet with url(), @import or expression()")

    def _attribute(self, tag: str, where: str, key: str, value: str) -> None:
        rec = self.ctx.record
        loc = f"{where}@{key}"
        if key.startswith("on"):
            rec("html.event_handler", loc)
        elif key in _URL_ATTRS or key == "href":
            picture = links.IMAGE_DATA_URL.match(value) is not None
            if links.SCRIPT_URL.match(value) and not (key != "href" and picture):
                rec("html.javascript_url", loc, detail=value.split(":", 1)[0].strip().lower()
                    + ": URL")
            elif key == "href":
                if _LINK_URL.match(value) and tag == "a":
                    rec("html.hyperlink", loc,
                        action="kept" if self.keep_links else "removed",
                        detail=links.link_detail(value, self.keep_links))
                elif tag == "a" and value.strip() and not value.strip().startswith("#"):
                    # ms-msdt:, search-ms:, file:, a UNC share, a relative path: the link
                    # goes whatever the policy says about web links
                    rec("html.hyperlink", loc,
                        detail=f"link to a {links.describe_target(value)} "
                               f"({links.shown_address(value)})")
            elif value.strip() and not (picture or value.startswith("cid:")
                                        or tag in _FRAMES or tag in ("script", "link", "base")):
                rec("html.remote_resource", loc, detail="remote or local resource reference")
        elif key == "style" and _CSS_ACTIVE.search(links.css_text(value)):
            rec("html.remote_resource", loc, detail="inline style with url() or expression()")


registry.register(HtmlStage())

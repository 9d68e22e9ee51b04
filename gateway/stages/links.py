"""Which hyperlink targets may stay in a disarmed document: one rule for every format.

When the policy keeps hyperlinks, a link stays only when it opens an http, https or
mailto address (:func:`is_web`) or a place inside the document. Anything else —
javascript:, file:, UNC shares (a click sends the user's Windows credentials to the
share's host), local and relative paths, a target a nested field computes — is
neutralized by the stage of its format.

:func:`hyperlink_target` reads the target of a Word HYPERLINK field instruction, whose
syntax is the same in WordprocessingML, .doc and RTF.
"""

from __future__ import annotations

import re

WEB_TARGET = re.compile(r"^(https?|mailto):[^\s\x00-\x1f]*$", re.IGNORECASE)
#: a place on another host: a share (\\host\..., //host/...) or an address with an
#: authority (scheme://...); not a drive letter, a relative path or mailto:
_ELSEWHERE = re.compile(r"^(?:\\\\|//|[A-Za-z][A-Za-z0-9+.-]+:(?![\\/]?[^\\/]))")
#: a scheme that runs code where markup (HTML, SVG, XHTML in XML) takes a link or a source
SCRIPT_SCHEME = re.compile(r"(javascript|vbscript|livescript|mocha|data)\s*:", re.IGNORECASE)
#: a URL with such a scheme
SCRIPT_URL = re.compile(r"^\s*" + SCRIPT_SCHEME.pattern, re.IGNORECASE)
#: text that reads like markup with a script in it (a handler, a script tag, a
#: javascript: URL): such text is not moved out of an element that goes (an inline SVG,
#: a foreignObject) into one that stays, where a checker grepping for it would see it
SCRIPT_TEXT = re.compile(r"(?:java|vb)script\s*:|<\s*/?\s*script|\bon[a-z]{3,}\s*=",
                         re.IGNORECASE)
#: the data: URLs that are only a picture (may stay as an image's source)
IMAGE_DATA_URL = re.compile(r"^\s*data:image/(png|jpe?g|gif|webp|bmp);base64,", re.IGNORECASE)
#: CSS that loads or runs something (a url() that is not a reference inside the document)
#: image-set() (and -webkit-image-set()) loads a picture from a quoted string as well as
#: from url(); src() is url() that may be built from var()
CSS_LOADS = re.compile(r"@import|url\s*\(\s*['\"]?\s*(?!#)|expression\s*\(|behavio(u)?r\s*:|"
                       r"-moz-binding|image-set\s*\(|\bsrc\s*\(", re.IGNORECASE)
FIRST_WORD = re.compile(r"^\s*([A-Za-z]+)")
#: a CSS escape (CSS Syntax 4.3.7): hex digits and one optional blank, an escaped line
#: break (nothing), or any other character as itself
_CSS_ESCAPE = re.compile(r"\\(?:([0-9A-Fa-f]{1,6})(?:\r\n|[ \t\r\n\f])?|(\r\n|[\r\n\f])|(.))",
                         re.DOTALL)

#: a field argument: quoted (backslash escapes \\ and \") or a run of non-blanks
_ARG = re.compile(r'"((?:[^"\\]|\\.)*)"?|(\S+)')
#: HYPERLINK switches followed by an argument (\l bookmark, \o tooltip, \t frame)
_SWITCH_ARG = frozenset({"\\l", "\\o", "\\t"})


def css_text(css: str) -> str:
    """CSS as its parser reads it, escapes decoded: "@\\69mport" is @import and
    "u\\72l(" is url( to a browser, so checks for what CSS loads look at this."""
    if "\\" not in css:
        return css

    def decoded(m: re.Match[str]) -> str:
        if m.group(1):
            point = int(m.group(1), 16)
            ok = 0 < point <= 0x10FFFF and not 0xD800 <= point <= 0xDFFF
            return chr(point) if ok else "\ufffd"
        return "" if m.group(2) is not None else m.group(3)

    return _CSS_ESCAPE.sub(decoded, css)


def css_loads(css: str) -> bool:
    """Whether CSS loads or runs something (``CSS_LOADS``), escapes decoded first."""
    return CSS_LOADS.search(css_text(css)) is not None


#: SVG elements that change another attribute while the drawing is shown
SVG_ANIMATIONS = frozenset({"set", "animate", "animatetransform", "animatemotion",
                            "animatecolor"})


def presentation_loads(value: str) -> bool:
    """Whether an SVG presentation attribute's value (fill, mask, cursor, clip-path...)
    loads from elsewhere: url() that is no reference into the drawing, image-set()
    (mask="image-set('http://...' 1x)" fetched in Chromium)."""
    return "(" in value and css_loads(value)


def svg_animation_problem(attribute: str | None, values: str) -> str | None:
    """What an SVG animation does that it may not: "script" when it sets a link or an
    event handler, or gives a script URL (a link's href becomes javascript: and runs on
    a click); "load" when the values load from elsewhere (a mask or cursor set to a
    remote picture); None otherwise. ``values``: its to, from, values and by."""
    # any prefix may stand for xlink (x:href): the local name is what counts
    target = (attribute or "").lower().rpartition(":")[2].strip()
    if target == "href" or target.startswith("on"):
        return "script"
    # a URL parser drops tabs and line breaks: "javas&#9;cript:" is javascript:
    # (anywhere: values is a ";" list)
    if SCRIPT_SCHEME.search(re.sub(r"[\t\n\r]", "", values)):
        return "script"
    return "load" if presentation_loads(values) else None


def shown_address(target: str) -> str:
    """A link's address as findings name it: blanks folded, at most 300 characters."""
    return " ".join(target.split())[:300]


def link_detail(target: str, kept: bool) -> str:
    """A web link's finding detail: its address and, when the policy took it out, that
    it did."""
    shown = shown_address(target)
    return f"link to {shown}" if kept else f"link to {shown}, removed by policy"


def formula_link_problem(target: str, keep_links: bool) -> str | None:
    """What a spreadsheet HYPERLINK formula's target opens, when it may not stay a link
    (xlsx and xls alike): a place in the workbook ("#Sheet!A1") stays, a web or mail
    address stays when the policy keeps hyperlinks; anything else is described."""
    target = target.strip()
    if target.startswith("#") or (keep_links and is_web(target)):
        return None
    return (f"{shown_address(target)}, removed by policy" if is_web(target)
            else f"a {describe_target(target)}")


def is_web(target: str) -> bool:
    """Whether a link target is a web or mail address (surrounding blanks ignored)."""
    return WEB_TARGET.match(target.strip()) is not None


def describe_target(target: str | None) -> str:
    """What kind of place a link target is, for a finding's detail."""
    target = (target or "").strip()
    if not target:
        return "no address"
    if target.startswith(("\\\\", "//")):
        return "UNC path"
    scheme = re.match(r"^([A-Za-z][A-Za-z0-9+.-]+):", target)
    if scheme:
        return f"{scheme.group(1).lower()} address"
    if re.match(r"^[A-Za-z]:", target):
        return "local path"
    return "relative path"


def hyperlink_target(instr: str) -> str | None:
    """The address a HYPERLINK instruction opens; None when it names none (only a \\l
    bookmark in this document). A quoted target computed by a nested field reads as ""
    (any nested field makes a HYPERLINK suspect: the callers check for one)."""
    m = FIRST_WORD.match(instr)
    rest = instr[m.end():] if m else instr
    skip = False
    for arg in _ARG.finditer(rest):
        quoted, bare = arg.group(1), arg.group(2)
        if skip:
            skip = False
        elif quoted is not None:
            return _outside(re.sub(r"\\(.)", r"\1", quoted))
        elif bare.lower() in _SWITCH_ARG:
            skip = True
        elif not bare.startswith("\\"):
            return _outside(bare)
    return None


#: "#name": a place in this document, as LibreOffice writes internal links
#: (HYPERLINK "#__RefHeading___Toc1") and Word follows them
_IN_DOCUMENT = re.compile(r"#[^\s/\\:%]*")


def _outside(target: str) -> str | None:
    return None if _IN_DOCUMENT.fullmatch(target) else target


def is_elsewhere(target: str) -> bool:
    """Whether a file name or address names a place on another host (a web address, a
    share): what a picture loaded from it would fetch over the network, handing a share
    the reader's Windows logon."""
    return _ELSEWHERE.match(target) is not None

"""Message bodies: HTML sanitized (or turned into text), links handled by policy,
uuencoded files cut out of plain text.

HTML goes through html.py's nh3 cleaner (``rebuild``) and its scanner
(``scan_text``), so a mail body loses exactly what an HTML file loses: scripts,
event handlers, forms, frames, remote images and tracking pixels. Findings keep
the html.* kinds, located under the part number (``1.2/img[0]@src``).

Links (policy ``mail.links``): ``keep`` leaves http(s)/mailto/tel links;
``remove`` drops the href; ``neutralize`` drops the href and shows the address
defanged next to the text (``hxxps://example[.]com/path``), in HTML and in
plain text alike, since mail clients turn bare URLs in text into links too.
"""

from __future__ import annotations

import binascii
import html as htmllib
import re
from dataclasses import dataclass, replace
from html.parser import HTMLParser

from gateway.kinds import Action
from gateway.pipeline.api import StageContext
from gateway.policy import FormatPolicy
from gateway.stages.html import rebuild, scan_text

_URL = re.compile(r"(?i)\b(?:https?|ftp)://[A-Za-z0-9\-._~:/?#\[\]@!$&'()*+,;=%]+")
_TRAIL = ".,;:!?)]}'"
_TAG = re.compile(r"""<(/?)([A-Za-z][A-Za-z0-9]*)((?:[^>"']|"[^"]*"|'[^']*')*)>""")
_HREF = re.compile(r'\bhref="([^"]*)"')
#: a block's first line; its file name may be missing ("begin 644 ", MIME-tools' test
#: mail): the block is still a file a reader may decode, scanned like any other
_UU_BEGIN = re.compile(r"^begin(-base64)? +([0-7]{3,4})(?: +(\S.*?))?\s*$")
_UU_NONAME = "uuencoded.bin"
_PGP = re.compile(r"^-----BEGIN PGP MESSAGE-----\s*$", re.M)
MAX_LINK_FINDINGS = 200


@dataclass(frozen=True, slots=True)
class Uufile:
    name: str
    data: bytes | None   # None: the block could not be decoded (removed all the same)


def has_pgp_message(text: str) -> bool:
    return bool(_PGP.search(text))


# ---------------------------------------------------------------------------- links


def defang(url: str) -> str:
    """An address made unclickable but readable: hxxps://example[.]com/path."""
    url = htmllib.unescape(url).strip()
    low = url.lower()
    if low.startswith(("mailto:", "tel:")):
        return url.split(":", 1)[1]
    m = re.match(r"(?i)^([a-z][a-z0-9+.-]*):(//)?([^/?#]*)(.*)$", url) or re.match(
        r"^()(//)([^/?#]*)(.*)$", url)
    if not m:
        return url.replace(".", "[.]").replace(":", "[:]")
    scheme, slashes, host, rest = m.groups()
    scheme = {"http": "hxxp", "https": "hxxps", "ftp": "fxp"}.get(scheme.lower(),
                                                                scheme + "[:]")
    sep = ":" if scheme in ("hxxp", "hxxps", "fxp") else ""
    return f"{scheme}{sep}{slashes or ''}{host.replace('.', '[.]')}{rest}"[:300]


def neutralize_text(text: str, where: str, ctx: StageContext) -> str:
    """Bare URLs in plain text defanged (policy neutralize), one finding each."""
    count = 0

    def sub(m: re.Match[str]) -> str:
        nonlocal count
        url = m.group(0)
        tail = ""
        while url and url[-1] in _TRAIL:
            url, tail = url[:-1], url[-1] + tail
        if count < MAX_LINK_FINDINGS:
            ctx.record("mail.link_neutralized", f"{where}/url[{count}]",
                       action=Action.NEUTRALIZED, detail=defang(url)[:120])
        count += 1
        return defang(url) + tail

    return _URL.sub(sub, text)


def _neutralize_html(cleaned: str) -> str:
    """Anchors of nh3 output lose their href; the address follows the text, defanged."""
    out: list[str] = []
    pos = 0
    pending: list[str] = []
    for m in _TAG.finditer(cleaned):
        out.append(_defang_text(cleaned[pos:m.start()]))
        pos = m.end()
        closing, tag = m.group(1), m.group(2).lower()
        if tag != "a":
            out.append(m.group(0))
            continue
        if not closing:
            href = _HREF.search(m.group(3))
            pending.append(defang(href.group(1)) if href else "")
            out.append("<a>")
        else:
            out.append("</a>")
            shown = pending.pop() if pending else ""
            if shown:
                out.append(f" [{htmllib.escape(shown, quote=False)}]")
    out.append(_defang_text(cleaned[pos:]))
    return "".join(out)


def _defang_text(text: str) -> str:
    return _URL.sub(lambda m: defang(m.group(0)), text)


# ---------------------------------------------------------------------------- HTML


def enriched_to_text(text: str) -> str:
    """text/enriched (RFC 1896) as the plain text it shows: formatting commands and
    their parameters go, "<<" is "<", one line break is a space and n are n - 1."""
    text = re.sub(r"\r\n?", "\n", text).replace("\x00", "").replace("<<", "\x00")
    text = re.sub(r"(?is)<param>.*?</param>", "", text)
    text = re.sub(r"</?[A-Za-z0-9-]{1,60}>", "", text).replace("\x00", "<")
    return re.sub(r"\n+", lambda m: "\n" * (len(m.group()) - 1) or " ", text)


def html_body(text: str, where: str, ctx: StageContext) -> tuple[str, str]:
    """A sanitized HTML body: ("html", document) or ("plain", text) by policy."""
    links = ctx.policy.mail.links
    keep = frozenset({"hyperlinks"}) if links == "keep" else frozenset()
    sub = replace(ctx, findings=[], format=FormatPolicy(action="disarm", keep=keep))
    scan_text(text, sub)
    for f in sub.findings:
        if f.kind == "html.hyperlink" and links == "neutralize":
            ctx.record("mail.link_neutralized", f"{where}/{f.location}",
                       action=Action.NEUTRALIZED)
        else:
            ctx.record(f.kind, f"{where}/{f.location}", action=f.action, detail=f.detail)
    cleaned = rebuild(text, keep_links=links != "remove")
    if ctx.policy.mail.html_body == "text":
        ctx.record("mail.html_converted", where, action=Action.NEUTRALIZED)
        return "plain", html_to_text(cleaned, links)
    if links == "neutralize":
        cleaned = _neutralize_html(cleaned)
    return "html", cleaned


class _Text(HTMLParser):
    _BLOCK = frozenset({"p", "div", "br", "tr", "li", "h1", "h2", "h3", "h4", "h5", "h6",
                        "blockquote", "pre", "table", "ul", "ol", "hr", "section", "address",
                        "title", "dt", "dd"})

    def __init__(self, links: str) -> None:
        super().__init__(convert_charrefs=True)
        self.links = links
        self.out: list[str] = []
        self.hrefs: list[str] = []
        self.skip = 0
        self.pre = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in ("style", "script", "title", "head"):
            self.skip += 1
        if tag == "pre":
            self.pre += 1
        if tag in self._BLOCK:
            self.out.append("\n")
        if tag == "li":
            self.out.append("・")
        if tag in ("td", "th"):
            self.out.append("\t")
        if tag == "img":
            alt = dict(attrs).get("alt")
            if alt:
                self.out.append(f"[{alt}]")
        if tag == "a":
            self.hrefs.append(dict(attrs).get("href") or "")

    def handle_endtag(self, tag: str) -> None:
        if tag in ("style", "script", "title", "head") and self.skip:
            self.skip -= 1
        if tag == "pre" and self.pre:
            self.pre -= 1
        if tag in ("p", "div", "tr", "h1", "h2", "h3", "h4", "h5", "h6", "blockquote",
                   "table", "ul", "ol"):
            self.out.append("\n")
        if tag == "a" and self.hrefs:
            href = self.hrefs.pop()
            if href and not href.startswith("#"):
                if self.links == "keep":
                    self.out.append(f" <{href}>")
                elif self.links == "neutralize":
                    self.out.append(f" [{defang(href)}]")

    def handle_data(self, data: str) -> None:
        if self.skip:
            return
        self.out.append(data if self.pre else re.sub(r"\s+", " ", data))


def html_to_text(cleaned: str, links: str) -> str:
    parser = _Text(links)
    parser.feed(cleaned)
    parser.close()
    text = "".join(parser.out)
    lines = [line.strip(" ") for line in text.replace("\r\n", "\n").split("\n")]
    text = re.sub(r"\n{3,}", "\n\n", "\n".join(lines)).strip("\n") + "\n"
    if links == "neutralize":
        text = _defang_text(text)
    return text


# ---------------------------------------------------------------------------- uuencode


def _uu_line_ok(line: str) -> bool:
    """A uuencoded data line (trailing spaces may have been stripped in transit)."""
    if not line or not all(" " <= ch <= "`" for ch in line):
        return False
    n = (ord(line[0]) - 32) & 63
    need = 1 + (n + 2) // 3 * 4
    return len(line) <= need + 2 and (n == 0 or len(line) >= 2)


def find_uuencoded(text: str) -> tuple[str, list[Uufile]]:
    """Text without its uuencoded (and ``begin-base64``) blocks, and the files."""
    if "begin" not in text:  # every block starts with a "begin" line: most text has none
        return text, []
    lines = text.splitlines(keepends=True)
    ends = _next_ends(lines)
    out: list[str] = []
    files: list[Uufile] = []
    i = 0
    while i < len(lines):
        m = _UU_BEGIN.match(lines[i].rstrip("\r\n"))
        if not m:
            out.append(lines[i])
            i += 1
            continue
        b64 = bool(m.group(1))
        j = ends["====" if b64 else "end"][i + 1]
        payload = _payload(lines, i + 1, j, b64)
        if payload is None:
            out.append(lines[i])
            i += 1
            continue
        files.append(Uufile(m.group(3) or _UU_NONAME, _uu_decode(payload, b64)))
        i = j + 1
    return "".join(out), files


def _next_ends(lines: list[str]) -> dict[str, list[int]]:
    """For each line index, the index of the next "end" (uuencode) and "====" (base64)
    line from there on, len(lines) when there is none: found in one pass, so a text of
    many "begin" lines and no end does not scan to its end from each (quadratic)."""
    n = len(lines)
    ends = {"end": [n] * (n + 1), "====": [n] * (n + 1)}
    for k in range(n - 1, -1, -1):
        word = lines[k].rstrip("\r\n").rstrip()
        for key, nxt in ends.items():
            nxt[k] = k if word == key else nxt[k + 1]
    return ends


def _payload(lines: list[str], start: int, stop: int, b64: bool) -> list[str] | None:
    """The data lines of a block (blank ones skipped), or None at the first line that is
    not data (not a block: the "begin" line stays text)."""
    payload: list[str] = []
    for k in range(start, stop):  # by index: no copy of the rest for every "begin"
        body = lines[k].rstrip("\r\n")
        if not body.strip():
            continue
        if not (re.fullmatch(r"[A-Za-z0-9+/=]+", body.strip()) if b64 else _uu_line_ok(body)):
            return None
        payload.append(body)
    return payload or None


def _uu_decode(lines: list[str], b64: bool) -> bytes | None:
    try:
        if b64:
            return binascii.a2b_base64("".join(s.strip() for s in lines))
        out = []
        for line in lines:
            n = (ord(line[0]) - 32) & 63
            out.append(binascii.a2b_uu(line.ljust(1 + (n + 2) // 3 * 4)))
        return b"".join(out)
    except (binascii.Error, ValueError):
        return None

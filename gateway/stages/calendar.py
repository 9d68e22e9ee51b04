"""iCalendar (.ics, a mail's text/calendar invitation) without what runs or fetches.

A calendar program shows an invitation's times, summary, place, attendees and
description; Outlook shows the HTML description (X-ALT-DESC), saves the files an
event carries (ATTACH: inline in base64, or fetched from an address), and old
programs run the program a PROCEDURE alarm names (RFC 2445; vCalendar 1.0's PALARM).
Removed:

- ``ATTACH`` properties (``calendar.attachment``): an inline file or an address;
- ``VALARM`` components whose ACTION is PROCEDURE, and vCalendar's ``PALARM``
  (``calendar.alarm_procedure``);
- ``URL`` properties that are no web, mail, phone, SIP or geo: address, and properties
  whose value is an address that runs something or reaches a file or share
  (javascript:, data:, file:, smb:, a UNC path, ms-msdt:, search-ms: ...) in
  CONFERENCE, IMAGE (an inline PNG, JPEG, GIF or WebP stays), SOURCE, TZURL, LINK,
  STRUCTURED-DATA, ORGANIZER, ATTENDEE, a vCalendar AALARM's sound, and any X- property
  (Outlook's meeting links) (``calendar.url``); such an address in an ALTREP or DIR
  parameter takes only the parameter with it;
- HTML descriptions (X-ALT-DESC, STYLED-DESCRIPTION, X-MICROSOFT-CDO-ALTDESC, HTML
  STRUCTURED-DATA), base64 or quoted-printable ones decoded first, whose HTML holds
  anything the HTML stage would remove but hyperlinks (scripts, handlers, frames,
  forms, pictures from elsewhere: its own scanner says)
  (``calendar.html_description``): the plain DESCRIPTION stays.

A property's name is read as calendar programs read it: before the first ";" or ":"
(an unbalanced quote in a parameter does not hide it), a vCard-style group prefix
("A.ATTACH") dropped. Everything else stays byte for byte: a removed property goes
with its folded continuation lines and line end, the rest keeps its folding, line
ends and encoding (read with surrogateescape: bytes come back as they were; UTF-16
keeps its byte order). A file that holds a component without the VCALENDAR around it
is read the same way, and so is a vCard (.vcf: the same content lines; its PHOTO, LOGO,
SOUND, KEY and calendar addresses judged as addresses). Locations are
``VEVENT[n]/NAME`` (the n-th component of that kind, from 0).
"""

from __future__ import annotations

import base64
import binascii
import quopri
import re
from dataclasses import dataclass, replace

from gateway.errors import LimitExceeded
from gateway.pipeline.api import StageContext
from gateway.stages.html import scan_text
from gateway.stages.links import is_web

#: a logical line ends at a line end not followed by a space or tab (RFC 5545 3.1)
_LOGICAL = re.compile(r"(\r\n(?![ \t])|\n(?![ \t])|\r(?![\n \t]))")
_FOLD = re.compile(r"(?:\r\n|\n|\r)[ \t]")
_NAME = re.compile(r"\s*(?:[A-Za-z0-9-]+\.)?([A-Za-z0-9-]+)")
_MAX_LINES = 1_000_000

#: properties whose value is an address (RFC 5545, RFC 7986, RFC 9073; and a vCard's,
#: RFC 6350: pictures, sounds, keys and calendar addresses a contacts program fetches)
_URI_PROPERTIES = frozenset({"URL", "CONFERENCE", "IMAGE", "SOURCE", "TZURL", "LINK",
                             "ORGANIZER", "ATTENDEE", "STRUCTURED-DATA", "PHOTO", "LOGO",
                             "SOUND", "KEY", "FBURL", "CALURI", "CALADRURI", "MEMBER"})
_HTML_PROPERTIES = frozenset({"X-ALT-DESC", "STYLED-DESCRIPTION", "X-MICROSOFT-CDO-ALTDESC"})
_URI_PARAMS = re.compile(r";(ALTREP|DIR)=(\"[^\"]*\"|[^;:]*)", re.IGNORECASE)
#: addresses that run something or reach files and shares (a meeting's https:, tel: or
#: sip: address, a cid: or urn: stays)
_RISKY = re.compile(r"\s*(?:javascript|vbscript|data|file|smb|ftp|ms-[a-z0-9-]+|search-ms|"
                    r"search|shell|jar|mk|its|hcp|mhtml|res|ldap|nntp|news)\s*:|\s*[\\/]{2}",
                    re.IGNORECASE)
#: a URL that is no web or mail address but harmless: a place, a phone, a SIP address
_HARMLESS = re.compile(r"\s*(?:geo|tel|sip|sips|webcal|webcals):[^\s\\]*$", re.IGNORECASE)
_INLINE_PICTURE = re.compile(r"\s*data:image/(?:png|jpeg|gif|webp)[;,]", re.IGNORECASE)


def process(data: bytes, ctx: StageContext) -> bytes:
    bom, codec, errors = _encoding(data)
    text = data[len(bom):].decode(codec, errors)
    parts = _LOGICAL.split(text)   # line, end, line, end, ..., line
    raw_lines, ends = parts[0::2], [*parts[1::2], ""]
    if len(raw_lines) > _MAX_LINES:
        raise LimitExceeded(f"calendar has more than {_MAX_LINES} lines")
    calendar = _Calendar(ctx)
    for raw, end in zip(raw_lines, ends, strict=True):
        calendar.line(raw, end)
    calendar.finish()
    if not calendar.changed:
        return data
    return bom + "".join(calendar.out).encode(codec, errors)


def _encoding(data: bytes) -> tuple[bytes, str, str]:
    """(byte order mark, codec, error handler): UTF-16 keeps its byte order."""
    if data[:2] == b"\xff\xfe":
        return data[:2], "utf-16-le", "replace"
    if data[:2] == b"\xfe\xff":
        return data[:2], "utf-16-be", "replace"
    return b"", "utf-8", "surrogateescape"


@dataclass(frozen=True, slots=True)
class _Line:
    """A content line as written (``raw``, folds and all, and its ``end``) and read once:
    unfolded, then split into NAME, ";parameters" and value."""

    raw: str
    end: str
    logical: str
    name: str
    params: str
    value: str

    @classmethod
    def read(cls, raw: str, end: str) -> _Line:
        logical = _FOLD.sub("", raw)
        return cls(raw, end, logical, *_split(logical))


class _Calendar:
    def __init__(self, ctx: StageContext) -> None:
        self.ctx = ctx
        self.out: list[str] = []
        self.counts: dict[str, int] = {}
        self.path: list[str] = []
        self.alarm: list[_Line] | None = None   # a VALARM's lines being read
        self.changed = False

    def line(self, raw: str, end: str) -> None:
        line = _Line.read(raw, end)
        if line.name == "BEGIN":
            kind = line.value.strip().upper()
            index = self.counts.get(kind, 0)
            self.counts[kind] = index + 1
            self.path.append(f"{kind}[{index}]")
            if kind == "VALARM" and self.alarm is None:
                self.alarm = [line]
                return
        where = "/".join(self.path)
        if self.alarm is not None:
            self.alarm.append(line)
            if line.name == "END" and line.value.strip().upper() == "VALARM":
                self.path.pop()
                self._alarm(where)
            return
        if line.name == "END" and self.path:
            self.path.pop()
        self._emit(line, f"{where}/{line.name}" if where else line.name)

    def finish(self) -> None:
        if self.alarm is not None:  # an alarm never ended: what reads it stops there too
            self._alarm("/".join(self.path))

    def _alarm(self, where: str) -> None:
        alarm, self.alarm = self.alarm or [], None
        if any(a.name == "ACTION" and a.value.strip().upper() == "PROCEDURE" for a in alarm):
            self.ctx.record("calendar.alarm_procedure", where, detail="alarm that runs a program")
            self.changed = True
            return
        for line in alarm:  # an alarm that stays loses its attachments
            self._emit(line, f"{where}/{line.name}")

    def _emit(self, line: _Line, where: str) -> None:
        stays, cleaned = _property(line.name, line.params, line.value, where, self.ctx)
        if not stays:
            self.changed = True
        elif cleaned is None:
            self.out += (line.raw, line.end)
        else:  # parameters removed: the line without them, folded again
            logical, value = line.logical, line.value
            head = logical[:len(logical) - len(value) - 1 - len(line.params)]
            self.out += (_fold(f"{head}{cleaned}:{value}", line.end or "\r\n"), line.end)
            self.changed = True


def _fold(line: str, newline: str) -> str:
    """A content line folded into lines of at most 75 characters (RFC 5545 3.1)."""
    if len(line) <= 75:
        return line
    pieces = [line[:75]] + [line[i:i + 74] for i in range(75, len(line), 74)]
    return (newline + " ").join(pieces)


def _property(name: str, params: str, value: str, where: str,
              ctx: StageContext) -> tuple[bool, str | None]:
    """Whether the content line stays, and its parameters when some had to go (None:
    as written). A finding is recorded for whatever goes."""
    if name == "ATTACH":
        inline = "BASE64" in params.upper() or "BINARY" in params.upper()
        file = re.search(r"(?i)X-FILENAME=\"?([^;:\"]{1,100})", params)
        detail = (f"file {file.group(1)!r} carried in the event" if inline and file
                  else "file carried in the event" if inline
                  else f"file fetched from {value.strip()[:100]}")
        ctx.record("calendar.attachment", where, detail=detail)
        return False, None
    if name == "PALARM":  # vCalendar 1.0: "runtime;snooze;repeat;program to run"
        ctx.record("calendar.alarm_procedure", where, detail="alarm that runs a program")
        return False, None
    if _names_a_place(name, params, value):
        ctx.record("calendar.url", where, detail=f"address {value.strip()[:60]!r}")
        return False, None
    if (name in _HTML_PROPERTIES or (name == "STRUCTURED-DATA" and "HTML" in params.upper())) \
            and _html_runs_or_fetches(_decoded(params, value), ctx):
        ctx.record("calendar.html_description", where,
                   detail="HTML description with scripts, frames or pictures from elsewhere "
                          "(the plain description stays)")
        return False, None
    cleaned = params
    for m in _URI_PARAMS.finditer(params):
        target = m.group(2).strip('"')
        if not _fine_address(target):
            ctx.record("calendar.url", f"{where};{m.group(1).upper()}",
                       detail=f"address {target.strip()[:60]!r}")
            cleaned = cleaned.replace(m.group(0), "", 1)
    return True, (None if cleaned == params else cleaned)


def _names_a_place(name: str, params: str, value: str) -> bool:
    """Whether the property's value is an address that runs something or reaches a
    file or a share (javascript:, file:, a UNC path, ms-msdt: ...; for URL, anything
    but a web or mail address, as before). An IMAGE may be an inline PNG, JPEG, GIF or
    WebP; other values are free text to calendar programs and stay."""
    if name == "URL":
        return not (is_web(value) or _HARMLESS.match(value))
    if name == "AALARM":  # vCalendar 1.0: "runtime;snooze;repeat;sound file"
        return any(_RISKY.match(part) for part in value.split(";"))
    if name not in _URI_PROPERTIES and not name.startswith("X-"):
        return False
    if name in ("IMAGE", "PHOTO", "LOGO") and _INLINE_PICTURE.match(value):
        return False
    return _RISKY.match(value) is not None


def _fine_address(value: str) -> bool:
    return _RISKY.match(value) is None


def _decoded(params: str, value: str) -> str:
    """The HTML of a description, base64 or quoted-printable decoded (what Outlook
    shows); undecodable is judged as written."""
    upper = params.upper()
    try:
        if "BASE64" in upper or "ENCODING=B" in upper:
            return base64.b64decode(re.sub(r"\s+", "", value), validate=False).decode(
                "utf-8", "replace")
        if "QUOTED-PRINTABLE" in upper:
            return quopri.decodestring(value.encode("utf-8", "surrogateescape")).decode(
                "utf-8", "replace")
    except (binascii.Error, ValueError):
        pass
    return _unescape(value)


def _html_runs_or_fetches(page: str, ctx: StageContext) -> bool:
    """Whether the HTML stage's scanner finds anything in ``page`` but hyperlinks."""
    probe = replace(ctx, findings=[])
    scan_text(page, probe)
    return any(f.kind != "html.hyperlink" for f in probe.findings)


def _split(line: str) -> tuple[str, str, str]:
    """(NAME, ";parameters", value) of a content line. The name ends at the first ";" or
    ":" (quotes cannot hide it; a group prefix goes); the value starts at the first
    colon outside a quoted parameter, or, when a quote is never closed, at the first
    colon after the name, as libical reads it."""
    m = _NAME.match(line)
    if m is None:
        return line.strip().upper(), "", ""
    name, rest = m.group(1).upper(), line[m.end():]
    if not rest.startswith((";", ":")):
        return line.strip().upper(), "", ""
    quoted = False
    for i, ch in enumerate(rest):
        if ch == '"':
            quoted = not quoted
        elif ch == ":" and not quoted:
            return name, rest[:i], rest[i + 1:]
    colon = rest.find(":")
    if colon < 0:
        return name, rest, ""
    return name, rest[:colon], rest[colon + 1:]


def _unescape(value: str) -> str:
    return re.sub(r"\\([nN,;\\])", lambda m: "\n" if m.group(1) in "nN" else m.group(1), value)

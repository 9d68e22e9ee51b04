"""iCalendar (.ics, a mail's text/calendar invitation) without what runs or fetches.

A calendar program shows an invitation's times, summary, place, attendees and
description; Outlook shows the HTML description (X-ALT-DESC), saves the files an
event carries (ATTACH: inline in base64, or fetched from an address), and old
programs run the program a PROCEDURE alarm names (RFC 2445). Removed:

- ``ATTACH`` properties (``calendar.attachment``): an inline file or an address;
- ``VALARM`` components whose ACTION is PROCEDURE (``calendar.alarm_procedure``);
- ``URL`` properties that are no web or mail address (``calendar.url``);
- ``X-ALT-DESC`` whose HTML holds anything the HTML stage would remove but hyperlinks
  (scripts, handlers, frames, forms, pictures from elsewhere: its own scanner says)
  (``calendar.html_description``): the plain DESCRIPTION stays.

Everything else stays as written; a calendar with nothing to remove is returned
unchanged. Lines are unfolded to be read (RFC 5545 3.1), and the file keeps its
own line ends and encoding (read with surrogateescape: bytes come back as they were).
Locations are ``VEVENT[n]/NAME`` (the n-th component of that kind, from 0).
"""

from __future__ import annotations

import re
from dataclasses import replace

from gateway.errors import LimitExceeded
from gateway.pipeline.api import StageContext
from gateway.stages.html import scan_text
from gateway.stages.links import is_web

_FOLD = re.compile(r"\r?\n[ \t]")
_MAX_LINES = 1_000_000


def process(data: bytes, ctx: StageContext) -> bytes:
    wide = data[:2] in (b"\xff\xfe", b"\xfe\xff")  # UTF-16 with its byte order mark
    codec, errors = ("utf-16", "replace") if wide else ("utf-8", "surrogateescape")
    text = data.decode(codec, errors)
    newline = "\r\n" if "\r\n" in text else "\n"
    # only CR and LF end a line (RFC 5545): str.splitlines() would also break at U+2028
    # and friends, which a calendar program keeps inside a value
    lines = re.split(r"\r\n|\n|\r", _FOLD.sub("", text))
    if lines and lines[-1] == "":
        lines.pop()
    if len(lines) > _MAX_LINES:
        raise LimitExceeded(f"calendar has more than {_MAX_LINES} lines")
    out: list[str] = []
    counts: dict[str, int] = {}
    path: list[str] = []
    alarm: list[str] | None = None   # the lines of a VALARM being read
    changed = False
    for line in lines:
        name, params, value = _split(line)
        if name == "BEGIN":
            kind = value.strip().upper()
            index = counts.get(kind, 0)
            counts[kind] = index + 1
            path.append(f"{kind}[{index}]")
            if kind == "VALARM" and alarm is None:
                alarm = [line]
                continue
        where = "/".join(path)
        if alarm is not None:
            alarm.append(line)
            if name == "END" and value.strip().upper() == "VALARM":
                path.pop()
                if any(_is_procedure(a) for a in alarm):
                    ctx.record("calendar.alarm_procedure", where,
                               detail="alarm that runs a program")
                    changed = True
                else:
                    kept = _drop_attachments(alarm, where, ctx)
                    changed = changed or len(kept) != len(alarm)
                    out.extend(kept)
                alarm = None
            continue
        if name == "END" and path:
            path.pop()
        keep = _property(name, params, value, f"{where}/{name}", ctx)
        if keep:
            out.append(line)
        else:
            changed = True
    if alarm is not None:  # an alarm never ended: what reads it stops there too
        kept = _drop_attachments(alarm, "/".join(path), ctx)
        changed = changed or len(kept) != len(alarm)
        out.extend(kept)
    if not changed:
        return data
    ending = newline if text.endswith(("\n", "\r")) else ""
    return (newline.join(out) + ending).encode(codec, errors)


def _property(name: str, params: str, value: str, where: str, ctx: StageContext) -> bool:
    """Whether a property line stays (a finding recorded when it does not)."""
    if name == "ATTACH":
        inline = "BASE64" in params.upper() or "BINARY" in params.upper()
        file = re.search(r"(?i)X-FILENAME=\"?([^;:\"]{1,100})", params)
        detail = (f"file {file.group(1)!r} carried in the event" if inline and file
                  else "file carried in the event" if inline
                  else f"file fetched from {value.strip()[:100]}")
        ctx.record("calendar.attachment", where, detail=detail)
        return False
    if name == "URL" and not is_web(value):
        ctx.record("calendar.url", where, detail=f"address {value.strip()[:60]!r}")
        return False
    if name == "X-ALT-DESC" and _html_runs_or_fetches(_unescape(value), ctx):
        ctx.record("calendar.html_description", where,
                   detail="HTML description with scripts, frames or pictures from elsewhere "
                          "(the plain description stays)")
        return False
    return True


def _html_runs_or_fetches(page: str, ctx: StageContext) -> bool:
    """Whether the HTML stage's scanner finds anything in ``page`` but hyperlinks."""
    probe = replace(ctx, findings=[])
    scan_text(page, probe)
    return any(f.kind != "html.hyperlink" for f in probe.findings)


def _drop_attachments(alarm: list[str], where: str, ctx: StageContext) -> list[str]:
    """An alarm that stays loses its attachments (a sound or a file to open)."""
    kept = []
    for line in alarm:
        name, params, value = _split(line)
        if name == "ATTACH":
            _property(name, params, value, f"{where}/ATTACH", ctx)
        else:
            kept.append(line)
    return kept


def _is_procedure(line: str) -> bool:
    name, _, value = _split(line)
    return name == "ACTION" and value.strip().upper() == "PROCEDURE"


def _split(line: str) -> tuple[str, str, str]:
    """(NAME, parameters, value) of a content line; the value starts at the first colon
    outside a quoted parameter."""
    quoted = False
    for i, ch in enumerate(line):
        if ch == '"':
            quoted = not quoted
        elif ch == ":" and not quoted:
            head, value = line[:i], line[i + 1:]
            name, _, params = head.partition(";")
            return name.strip().upper(), params, value
    return line.strip().upper(), "", ""


def _unescape(value: str) -> str:
    return re.sub(r"\\([nN,;\\])", lambda m: "\n" if m.group(1) in "nN" else m.group(1), value)

"""Mail (MIME): parse defensively, rebuild a canonical message, every part through the pipeline.

Input types: ``mail.eml`` (RFC 5322), ``mail.mbox`` (each message rebuilt and
re-joined), ``mail.tnef`` (a bare winmail.dat: becomes a message whose parts are
its body and attachments) and ``mail.msg`` (Outlook: becomes an RFC 5322
message). The output is always a new message; the original bytes never cross.

Parsing uses ``email.policy.compat32``: its header handling is lazy and plain,
while ``email.policy.default`` crashes (IndexError, …) on malformed address,
message-id and parameter headers. Headers are decoded here (mail_headers) and
the rebuilt message is written with the compat32 generator, ASCII only: UTF-8
encoded words in headers, UTF-8 base64 bodies, CRLF line ends. Japanese text in
any of ISO-2022-JP (with the CP932 extensions), Shift_JIS/CP932, EUC-JP and
UTF-8 comes out as UTF-8, which every current client (Outlook, Thunderbird,
Becky!, the LGWAN webmail products) reads.

What the recipient learns: a notice part (mail_notice) when anything was
changed, an ``X-Sekisho: verdict=…; job=…; removed=N; blocked=N`` header
(an incoming X-Sekisho is removed: it could fake our verdict) and the policy's
subject tag on disarmed messages (added once).
"""

from __future__ import annotations

import io
import re
import struct
from collections.abc import Callable
from datetime import datetime
from email.message import Message
from email.mime.multipart import MIMEMultipart
from email.parser import BytesParser
from email.policy import compat32
from email.utils import format_datetime, parsedate, parsedate_to_datetime
from typing import Any, BinaryIO, ClassVar, cast

from gateway.errors import LimitExceeded, Malformed
from gateway.kinds import Action
from gateway.pipeline import registry
from gateway.pipeline.api import Mode, StageContext
from gateway.stages import mail_headers as hdr
from gateway.stages import mail_notice
from gateway.stages.mail_charset import multibyte
from gateway.stages.mail_parts import text_part
from gateway.stages.mail_walk import MAX_HEADERS, Walker

MAX_BOUNDARIES = 300  # multipart containers in one message, counted before parsing
_CHANGED = frozenset({Action.REMOVED, Action.NEUTRALIZED, Action.DISARMED})
_CANON = {h.lower(): h for h in hdr.TOP_HEADERS}
_OUT_POLICY = compat32.clone(linesep="\r\n", max_line_length=78)


class MailStage:
    name: ClassVar[str] = "mail"
    formats: ClassVar[frozenset[str]] = frozenset(
        {"mail.eml", "mail.mbox", "mail.tnef", "mail.msg", "mail.p7m", "mail.emlx"})

    def scan(self, src: BinaryIO, ctx: StageContext) -> None:
        self._run(src.read(), None, ctx)

    def disarm(self, src: BinaryIO, dst: BinaryIO, ctx: StageContext) -> None:
        self._run(src.read(), dst, ctx)

    def _run(self, data: bytes, dst: BinaryIO | None, ctx: StageContext) -> None:
        if ctx.type_id == "mail.mbox":
            from gateway.stages.mail_mbox import run_mbox  # noqa: PLC0415 - rare input

            run_mbox(data, dst, ctx)
            return
        if ctx.type_id == "mail.p7m":
            from gateway.stages.mail_p7m import run_p7m  # noqa: PLC0415 - rare input

            run_p7m(data, dst, ctx)
            return
        if ctx.type_id == "mail.tnef":
            from gateway.stages.mail_tnef import tnef_message  # noqa: PLC0415

            msg = _converted(tnef_message, data, ctx, "winmail.dat")
            ctx.record("mail.tnef_decoded", "body", action=Action.DISARMED,
                       detail="winmail.dat rebuilt as a standard message")
            ctx.output_type = ("mail.eml", "eml")
        elif ctx.type_id == "mail.msg":
            from gateway.stages.mail_msg import msg_message  # noqa: PLC0415

            msg = _converted(msg_message, data, ctx, "Outlook message")
            ctx.record("mail.msg_converted", "body", action=Action.DISARMED)
            ctx.output_type = ("mail.eml", "eml")
        elif ctx.type_id == "mail.emlx":
            msg = parse(_emlx_message(data))
            ctx.record("mail.emlx_converted", "body", action=Action.DISARMED)
            ctx.output_type = ("mail.eml", "eml")
        else:
            msg = parse(data)
        out = rebuild(msg, ctx)
        if dst is not None and out is not None:
            dst.write(out)


def _converted(convert: Callable[[bytes, StageContext], Message], data: bytes,
               ctx: StageContext, what: str) -> Message:
    """Run our own TNEF/.msg reader; damaged input that trips it is Malformed, not a bug."""
    try:
        return convert(data, ctx)
    except (UnicodeError, ValueError, IndexError, KeyError, struct.error, OSError,
            EOFError) as exc:
        raise Malformed(f"{what} is damaged ({type(exc).__name__})") from None


def _emlx_message(data: bytes) -> bytes:
    """The message in an Apple Mail .emlx file: its length on the first line, then the
    message, then a property list of Mail's flags (not delivered)."""
    first, _, rest = data.partition(b"\n")
    try:
        count = int(first.strip())
    except ValueError:
        raise Malformed("Apple Mail message without its length") from None
    return rest[:count] if count <= len(rest) else rest


class _Message(Message):
    """compat32's message, reading a quoted boundary followed by more text on its line
    (a missing line break: 'boundary="a/b" Message-Id: <...>', BounceParser's
    spam-rejection15.msg) as the quoted string, as Python's default policy and mail
    readers do; compat32 took the whole rest for the boundary, found none, and the
    report's parts were flattened into one text."""

    def get_boundary(self, failobj: Any = None) -> Any:
        boundary = super().get_boundary(failobj)
        if isinstance(boundary, str) and boundary.startswith('"'):
            end = boundary.find('"', 1)
            if end > 1:
                return boundary[1:end]
        return boundary


def parse(data: bytes) -> Message:
    """compat32 parse, failing closed on the email package's known crashes."""
    if len(re.findall(rb"(?i)boundary\s*\*?\s*=", data[: 64 * 1024 * 1024])) > MAX_BOUNDARIES:
        raise LimitExceeded(f"message has more than {MAX_BOUNDARIES} multipart containers")
    try:
        return BytesParser(_Message, policy=compat32).parsebytes(data)
    except RecursionError:
        raise Malformed("MIME structure nested too deeply") from None
    except Exception as exc:  # the parser's own bugs: fail closed, never pass through
        raise Malformed(f"message does not parse ({type(exc).__name__})") from None


def rebuild(msg: Message, ctx: StageContext) -> bytes | None:
    """The canonical copy of ``msg`` (None in scan and verify modes)."""
    headers, subject = top_headers(msg, ctx)
    walker = Walker(ctx)
    web_page = _web_archive(msg, ctx)
    if web_page:
        walker.web_page(msg)
    try:
        parts = walker.walk(msg, "body", 0)
    except RecursionError:
        raise Malformed("MIME structure nested too deeply") from None
    if ctx.mode is not Mode.DISARM:
        return None
    body = _assemble(parts + walker.hoisted)
    changed = [f for f in ctx.findings if f.action in _CHANGED]
    if mail_notice.needed(ctx.findings, walker.notes) and not web_page:
        notice = text_part(mail_notice.render(ctx.policy.mail.notice, ctx.job_id,
                                              ctx.findings, walker.notes), "plain")
        notice["Content-Description"] = mail_notice.DESCRIPTION
        body = _with_first(body, notice)
    blocked = sum(1 for f in ctx.findings if f.kind == "mail.attachment_blocked")
    verdict = "disarmed" if changed else "clean"
    tag = ctx.policy.mail.subject_tag.strip()
    if changed and tag and tag not in subject:
        subject = f"{tag} {subject}".strip()
    return _serialize(body, headers, subject, (
        f"verdict={verdict}; job={ctx.job_id or 'unknown'}; "
        f"removed={len(changed) - blocked}; blocked={blocked}"))


def _web_archive(msg: Message, ctx: StageContext) -> bool:
    """A saved web page (.mht/.mhtml: the page's HTML first in a multipart/related) rather
    than a mail: a notice part wrapped around it would be what a browser or Word shows
    instead of the page, so it gets none (the report lists what was removed)."""
    name = ctx.location.rsplit("/", 1)[-1].lower()
    return msg.get_content_type() == "multipart/related" and (
        name.endswith((".mht", ".mhtml")) or "snapshot-content-location" in msg)


def _assemble(parts: list[Message]) -> Message:
    if not parts:
        return text_part("", "plain")
    if len(parts) == 1:
        return parts[0]
    top = parts[0]
    if top.get_content_type() == "multipart/mixed":
        for extra in parts[1:]:
            top.attach(extra)
        return top
    return _mixed(parts)


def _mixed(parts: list[Message]) -> Message:
    container = MIMEMultipart("mixed")
    del container["MIME-Version"]
    for part in parts:
        container.attach(part)
    return container


def _with_first(body: Message, first: Message) -> Message:
    payload = body.get_payload() if body.is_multipart() else None
    if body.get_content_type() == "multipart/mixed" and isinstance(payload, list):
        payload.insert(0, first)
        return body
    return _mixed([first, body])


#: address headers of which a second one adds recipients rather than conflicting
_MERGED = frozenset({"to", "cc"})


def top_headers(msg: Message, ctx: StageContext) -> tuple[list[tuple[str, object]], str]:
    """Allow-listed top-level headers, decoded and re-encoded; and the decoded subject."""
    items = list(msg.raw_items())
    if len(items) > MAX_HEADERS:
        raise LimitExceeded(f"message has more than {MAX_HEADERS} header fields")
    out: list[tuple[str, object]] = []
    seen: dict[str, int] = {}
    subject = ""
    # the declared charset matters only for raw 8-bit (or escape-coded) header text:
    # looking it up decodes the first text part, not worth it for every message
    raw_text = any(not str(v).isascii() or "\x1b" in str(v) for _, v in items)
    hint = _text_charset(msg) if raw_text else None
    for name, raw in items:
        key = name.strip().lower()
        if key == "x-sekisho":
            if ctx.mode is not Mode.VERIFY:
                ctx.record("mail.spoofed_header", "header:X-Sekisho")
            continue
        if key in hdr.RECEIPTS:
            ctx.record("mail.read_receipt", f"header:{name.strip()[:40]}")
            continue
        seen[key] = seen.get(key, 0) + 1
        if key in _MERGED and seen[key] > 1:
            # recipients in a second To or Cc: readers show them all, so they stay, in
            # the first one (notmuch's broken-cc: "Charles" was lost)
            more, _ = hdr.encode_addresses(str(raw), hint)
            ctx.record("mail.ambiguous_header", f"header:{_CANON[key]}",
                       action=Action.REPAIRED, detail="a second one: its addresses joined "
                                                      "to the first one's")
            at = next((i for i, (n, _v) in enumerate(out) if n == _CANON[key]), None)
            if more and at is not None:
                out[at] = (_CANON[key], f"{out[at][1]}, {more}")
            elif more:
                out.append((_CANON[key], more))
            continue
        if key in hdr.SINGLE and seen[key] > 1:
            ctx.record("mail.ambiguous_header", f"header:{_CANON.get(key, name.strip()[:40])}",
                       detail="the first one is kept")
            continue
        canonical = _CANON.get(key)
        if canonical is None or (key == "received" and seen[key] > hdr.MAX_RECEIVED):
            continue
        encoded: object
        if key in hdr.ADDRESS:  # parsed as received (names decoded after): no decode here
            encoded, unusable = hdr.encode_addresses(str(raw), hint)
            if unusable:
                ctx.record("mail.defect", f"header:{canonical}", action=Action.REPAIRED,
                           detail=f"{unusable} address(es) without a usable mailbox "
                                  "kept as text")
            if encoded:
                out.append((canonical, encoded))
            continue
        value, _ = hdr.decode_value(str(raw), hint)
        if key == "subject":
            subject = hdr.clean_text(value)
            continue
        if key in hdr.IDS:
            encoded = hdr.encode_ids(value)
        elif key == "date":
            encoded = _date(value)
            if not encoded and value.strip():
                ctx.record("mail.defect", "header:Date", action=Action.REPAIRED,
                           detail="not a date: removed")
        else:
            encoded = hdr.encode_text(value, canonical)
        if encoded:
            out.append((canonical, encoded))
    return out, subject


def _text_charset(msg: Message) -> str | None:
    """The charset the message declares for its first text part: what its mailer
    wrote raw 8-bit headers in, too (as mail clients assume). A single-byte label
    counts only when that part holds 8-bit text in it: a label over plain ASCII says
    nothing (Japanese mailers label ASCII bodies ISO-8859-1 over Shift_JIS headers)."""
    for i, part in enumerate(msg.walk()):
        if i > 20:
            break
        if part.get_content_maintype() == "text":
            try:
                label = part.get_content_charset()
            except (ValueError, LookupError, UnicodeError):
                return None
            if label and not multibyte(label):
                body = part.get_payload(decode=True)
                if not isinstance(body, bytes) or body.isascii():
                    return None
            return label
    return None


def _date(value: str) -> str:
    try:
        return format_datetime(parsedate_to_datetime(value.strip()))
    except (TypeError, ValueError, IndexError, OverflowError):
        pass
    # Apple Mail's "16 May 2016 at 09:30:32 GMT+1" (Tika's testRFC822_date_utf8.eml)
    apple = re.sub(r"(?i)\bat\b", " ", value)
    apple = re.sub(r"(?i)\b(?:GMT|UTC)([+-])(\d{1,2})(?::?(\d{2}))?\b",
                   lambda m: f"{m.group(1)}{int(m.group(2)):02d}{m.group(3) or '00'}", apple)
    if apple != value:
        try:
            return format_datetime(parsedate_to_datetime(apple.strip()))
        except (TypeError, ValueError, IndexError, OverflowError):
            pass
    # a zone out of range ("-3000", hyperkitty's bad_date_tz.txt): the time it gives,
    # zone unknown ("-0000"), rather than none (a relay downstream would stamp its own)
    parts = parsedate(value.strip())
    if parts is None:
        return ""
    try:
        return format_datetime(datetime(*parts[:6]))
    except (TypeError, ValueError, OverflowError):
        return ""


def _serialize(body: Message, headers: list[tuple[str, object]], subject: str,
               sekisho: str) -> bytes:
    content = [(k, v) for k, v in body.items()]
    for key in {k for k, _ in content}:
        del body[key]
    for name, value in headers:
        body[name] = cast("str", value)  # str or email.header.Header: compat32 takes both
    if subject:
        body["Subject"] = cast("str", hdr.encode_text(subject, "Subject"))
    body["MIME-Version"] = "1.0"
    for name, value in content:
        if name.lower() != "mime-version":
            body[name] = value
    body["X-Sekisho"] = sekisho
    from email.generator import BytesGenerator  # noqa: PLC0415

    buf = io.BytesIO()
    try:
        BytesGenerator(buf, mangle_from_=False, policy=_OUT_POLICY).flatten(body)
    except RecursionError:
        raise Malformed("MIME structure nested too deeply") from None
    return buf.getvalue()


registry.register(MailStage())

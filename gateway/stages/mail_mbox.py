"""mbox: every message goes through the pipeline on its own; the clean ones are re-joined.

Messages are split at the ``From `` line that starts the file, at a complete
From_ line (sender and asctime date, ``From a@example.jp Sat Feb  6 23:42:23
2010``) even without the empty line before it (mailers that forget it exist:
KMime's test data), and at a ``From `` line after an empty line that holds a time
and a year, as From_ lines do (``From - Mon Jan 1 10:00:00 2024``). An unquoted
body line after an empty line (``From now on the meeting is at 10:00.``, ``From
Russia with love``) is text, not a separator: mboxo calls it one, and splitting
there lost it and the lines after it, read as headers (MimeKit's unmunged.mbox,
CPython's mailbox tests, a saved .eml with an envelope line). ``>From `` quoting
is undone. Each message is one item of
the job (``box.mbox/message-0001.eml``): it gets its own findings, notice and
X-Sekisho header. A blocked message is replaced by a short note message, so
the recipient sees where something was taken out. The output is an mboxrd file
with LF line ends.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from email.utils import format_datetime
from typing import BinaryIO

from gateway.errors import LimitExceeded, Malformed
from gateway.kinds import Action
from gateway.models import Verdict
from gateway.pipeline.api import Mode, StageContext
from gateway.pipeline.sniff import MBOX_SENDER
from gateway.stages.mail_parts import text_part

_FROM_LINE = re.compile(rb"^From [!-~]{1,200}( [ -~]{1,80})?\s*$")
_DEFAULT_FROM = b"From MAILER-DAEMON Thu Jan  1 00:00:00 1970"
_FROM_DATE_LINE = re.compile(
    rb"^From \S{1,200} +(?:Mon|Tue|Wed|Thu|Fri|Sat|Sun) +"
    rb"(?:Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec) +\d{1,2} +"
    rb"\d{1,2}:\d{2}(?::\d{2})?(?: +[A-Z]{1,5}| +[+-]\d{4})? +\d{4}\s*$")
#: a From_ line written some other way (RFC 2822 date order, a time zone name after
#: the year): a sender, then a time and a four-digit year in either order
_TIME = re.compile(rb"(?<!\d)\d{1,2}:\d{2}(?!\d)")
_YEAR = re.compile(rb"(?<!\d)(?:19|20)\d\d(?!\d)")


def _dated(line: bytes) -> bool:
    """A From_ line with a date, or Thunderbird's bare ``From -``."""
    sender, _, rest = line[5:].partition(b" ")
    if sender == b"-" and not rest.strip():
        return True
    return bool(sender) and _TIME.search(rest) is not None and _YEAR.search(rest) is not None


#: a header field's start: what a message starts with after its From_ line
_FIELD = re.compile(rb"^[A-Za-z0-9-]{1,76}:")


def split(data: bytes, limit: int) -> list[tuple[bytes, bytes]]:
    """(From line, message bytes) for every message in the mailbox. A message starts at
    a From_ line: one with the classic date, or one dated another way, Thunderbird's
    ``From -`` or Gmail Takeout's bare ``From <id>@xxx``, after an empty line or before a
    header field (a separator written right after a closing MIME boundary, with no empty
    line). "From now on ..." in a body is none of these."""
    lines = data.splitlines(keepends=True)
    out: list[tuple[bytes, list[bytes]]] = []
    previous_blank = True
    for at, line in enumerate(lines):
        bare = line.rstrip(b"\r\n")
        if bare.startswith(b"From ") and (not out or _FROM_DATE_LINE.match(bare) or (
                (_dated(bare) or MBOX_SENDER.match(bare)) and (previous_blank or (
                    at + 1 < len(lines) and _FIELD.match(lines[at + 1]) is not None)))):
            if len(out) >= limit:
                raise LimitExceeded(f"mailbox holds more than {limit} messages")
            out.append((bare, []))
        elif out:
            out[-1][1].append(line[1:] if re.match(rb"^>+From ", bare) else line)
        previous_blank = not bare.strip()
    if not out:
        raise Malformed("mailbox holds no message")
    return [(first, b"".join(body)) for first, body in out]


def run_mbox(data: bytes, dst: BinaryIO | None, ctx: StageContext) -> None:
    messages = split(data, ctx.policy.limits.max_members)
    for index, (from_line, message) in enumerate(messages, 1):
        name = f"message-{index:04d}.eml"
        got = ctx.recurse(message, name)
        if ctx.mode is not Mode.DISARM:
            if not got.verdict.delivered:
                ctx.record("mail.message_blocked", name, detail=got.reason or "")
            elif got.residual:
                ctx.record("mail.attachment_disarmed", name, action=Action.DISARMED)
            continue
        assert dst is not None
        if got.delivered and got.data is not None:
            if got.verdict is Verdict.DISARMED:
                ctx.record("mail.attachment_disarmed", name, action=Action.DISARMED)
            body = got.data
        else:
            ctx.record("mail.message_blocked", name, detail=got.reason or "")
            body = _note(index, got.reason or "", ctx.job_id)
        first = from_line if re.search(rb"\d{4}\s*$", from_line) and _FROM_LINE.match(
            from_line) else _DEFAULT_FROM
        dst.write(first + b"\n" + _escape(body) + b"\n")


def _escape(message: bytes) -> bytes:
    text = message.replace(b"\r\n", b"\n")
    text = re.sub(rb"(?m)^(>*From )", rb">\1", text)
    return text if text.endswith(b"\n") else text + b"\n"


def _note(index: int, reason: str, job_id: str) -> bytes:
    body = (f"Sekisho（関所）: メールボックスの {index} 通目のメールは安全にできないため"
            f"取り除きました。\r\n理由: {reason}\r\n原本が必要な場合は、受付番号 {job_id} を"
            f"添えて管理者へお問い合わせください。\r\n\r\n"
            f"Sekisho removed message {index} of this mailbox: it could not be made safe.\r\n"
            f"Reason: {reason}\r\nTo obtain the original, contact your administrator quoting "
            f"reference {job_id}.\r\n")
    part = text_part(body, "plain")
    part["Subject"] = f"[Sekisho] message {index} removed"
    part["Date"] = format_datetime(datetime.now(UTC))
    part["MIME-Version"] = "1.0"
    part["X-Sekisho"] = f"verdict=blocked; job={job_id}"
    return part.as_bytes()

"""Messages Sekisho writes itself: the block notice and the RFC 3464 bounce.

- **Block notice**: a whole message was blocked (or failed). Its recipients
  still get a message, in the policy's notice languages, naming the job id to
  quote when asking for the original (which is in quarantine). It is built only
  from the SMTP envelope and the report, never from the blocked message's bytes.
- **Bounce** (DSN, RFC 3464 multipart/report): recipients that failed for good.
  Sent from ``<>`` to the envelope sender, with the headers of the copy we
  tried to deliver (sanitized, so canonical and ASCII) as text/rfc822-headers.

Both are plain ASCII on the wire (UTF-8 text in base64), and carry
``Auto-Submitted`` so that well-behaved software never answers them.
"""

from __future__ import annotations

import base64
import datetime as dt
import secrets
import time
from collections.abc import Sequence
from email.header import Header
from email.utils import format_datetime, formatdate
from pathlib import Path

from gateway import reasons
from gateway.egress import Reply
from gateway.text import one_line

MAX_HEADERS = 32 * 1024


def _date(ts: float) -> str:
    return format_datetime(dt.datetime.fromtimestamp(ts, tz=dt.UTC).astimezone())


def _subject(text: str) -> str:
    return Header(text, "utf-8").encode()


def _b64(text: str) -> str:
    raw = base64.encodebytes(text.encode("utf-8")).decode("ascii")
    return raw.replace("\n", "\r\n")


def _message_id(hostname: str) -> str:
    return f"<{time.strftime('%Y%m%d%H%M%S')}.{secrets.token_hex(8)}@{hostname}>"


# ------------------------------------------------------------------------- notice


def block_notice(*, hostname: str, job_id: str, sender: str, received: float, size: int,
                 reason: str, langs: Sequence[str]) -> bytes:
    """The message sent to the recipients in place of a blocked one."""
    who = one_line(sender) or "<>"
    why = one_line(reason or "could not be made safe")
    when = _date(received)
    blocks = []
    for lang in langs:
        if lang == "ja":
            blocks.append("\r\n".join([
                "【Sekisho（関所）ブロックのお知らせ】",
                "あなた宛てのメールは安全にできないため、配送を止めました。",
                "原本は隔離保管されています。",
                f"  差出人（エンベロープ）: {who}",
                f"  受信日時: {when}",
                f"  大きさ: {size} バイト",
                f"  理由: {one_line(reasons.ja(reason)) or 'ブロックしました'}",
                f"原本が必要な場合は、受付番号 {job_id} を添えて"
                "システム管理者へお問い合わせください。"]))
        else:
            blocks.append("\r\n".join([
                "[Sekisho block notice]",
                "A message addressed to you could not be made safe and was not delivered.",
                "The original is held in quarantine.",
                f"  Envelope sender: {who}",
                f"  Received: {when}",
                f"  Size: {size} bytes",
                f"  Reason: {why}",
                f"To obtain the original, contact your administrator quoting reference {job_id}."]))
    body = "\r\n\r\n".join(blocks) + "\r\n"
    head = "\r\n".join([
        f"From: Sekisho <postmaster@{hostname}>",
        "To: undisclosed-recipients:;",
        "Subject: " + _subject("[Sekisho] メールをブロックしました / A message to you was blocked"),
        f"Date: {formatdate(localtime=True)}",
        f"Message-ID: {_message_id(hostname)}",
        "Auto-Submitted: auto-generated",
        "MIME-Version: 1.0",
        'Content-Type: text/plain; charset="utf-8"',
        "Content-Transfer-Encoding: base64",
        f"X-Sekisho: verdict=blocked; job={job_id}"])
    return (head + "\r\n\r\n" + _b64(body)).encode("ascii")


# --------------------------------------------------------------------------- DSN


def _headers_of(path: Path | None) -> str:
    if path is None:
        return ""
    try:
        with open(path, "rb") as f:
            head = f.read(MAX_HEADERS)
    except OSError:
        return ""
    end = head.find(b"\r\n\r\n")
    head = head[: end + 2] if end >= 0 else head
    text = head.decode("ascii", "replace")
    return "\r\n".join(line for line in text.splitlines() if line) + "\r\n"


def bounce(*, hostname: str, qid: str, sender: str, received: float, remote: str,
           failed: Sequence[tuple[str, Reply]], original: Path | None) -> bytes:
    """An RFC 3464 delivery status notification for ``failed`` recipients."""
    boundary = f"=_sekisho_{secrets.token_hex(12)}"
    lines_en = ["This is the mail system at host " + hostname + ".", "",
                "Your message could not be delivered to one or more recipients.", ""]
    lines_ja = ["次の宛先へメールを配送できませんでした。", ""]
    for rcpt, reply in failed:
        lines_en.append(f"<{one_line(rcpt)}>: {one_line(str(reply), 400)}")
        lines_ja.append(f"<{one_line(rcpt)}>: {one_line(str(reply), 400)}")
    human = "\r\n".join([*lines_ja, "", *lines_en]) + "\r\n"
    status = [f"Reporting-MTA: dns; {hostname}", f"X-Sekisho-Queue-ID: {qid}",
              f"Arrival-Date: {_date(received)}", ""]
    now = formatdate(localtime=True)
    for rcpt, reply in failed:
        addr_type = "rfc822" if rcpt.isascii() else "utf-8"
        status += [f"Final-Recipient: {addr_type}; {rcpt}", "Action: failed",
                   f"Status: {reply.status()}"]
        if remote.startswith("smtp:"):
            status.append(f"Remote-MTA: dns; {remote.split(':')[1]}")
        status += [f"Diagnostic-Code: smtp; {one_line(str(reply), 400)}",
                   f"Last-Attempt-Date: {now}", ""]
    to = sender if sender.isascii() else "undisclosed-recipients:;"
    parts = [
        "\r\n".join([
            "From: Mail Delivery System <MAILER-DAEMON@" + hostname + ">",
            f"To: <{to}>" if to == sender else f"To: {to}",
            "Subject: " + _subject("配送できなかったメール / Undelivered Mail Returned to Sender"),
            f"Date: {now}",
            f"Message-ID: {_message_id(hostname)}",
            "Auto-Submitted: auto-replied",
            "MIME-Version: 1.0",
            f'Content-Type: multipart/report; report-type=delivery-status; '
            f'boundary="{boundary}"']),
        "",
        "This is a MIME-encapsulated message.",
        "",
        f"--{boundary}",
        'Content-Type: text/plain; charset="utf-8"',
        "Content-Transfer-Encoding: base64",
        "",
        _b64(human).rstrip("\r\n"),
        f"--{boundary}",
        "Content-Type: message/delivery-status",
        "",
        "\r\n".join(status),
        f"--{boundary}",
        "Content-Type: text/rfc822-headers",
        "",
        _headers_of(original).rstrip("\r\n"),
        "",
        f"--{boundary}--",
        ""]
    return "\r\n".join(parts).encode("utf-8")

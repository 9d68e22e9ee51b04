"""The three messages of the PPAP flow (gateway/relay/ppap.py), in Japanese and English.

- link: "a password-protected file came for you; enter the password here";
- result: the decrypted, disarmed file as an attachment (or, for an attachment
  that needed no password once checked on its own, that file disarmed);
- failed: the file could not be delivered (too many wrong passwords, blocked once
  opened, or blocked without ever asking for a password); the original stays in
  quarantine.

All come from ``postmaster@<hostname>`` with ``Auto-Submitted`` and are plain
ASCII on the wire (the standard library's SMTP policy encodes UTF-8 headers and
bodies). Nothing from the held file is quoted but its cleaned name.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Sequence
from email.message import EmailMessage
from email.policy import SMTP
from email.utils import formatdate

from gateway import reasons
from gateway.jobs.store import JobRecord
from gateway.text import one_line

_TAG = "[Sekisho]"


def _base(hostname: str, rec: JobRecord, subject_ja: str, subject_en: str,
          langs: Sequence[str]) -> EmailMessage:
    msg = EmailMessage(policy=SMTP)
    msg["From"] = f"Sekisho <postmaster@{hostname}>"
    msg["To"] = "undisclosed-recipients:;"
    parts = [s for lang, s in (("ja", subject_ja), ("en", subject_en)) if lang in langs]
    msg["Subject"] = f"{_TAG} " + " / ".join(parts or [subject_en])
    msg["Date"] = formatdate(localtime=True)
    msg["Message-ID"] = f"<{time.strftime('%Y%m%d%H%M%S')}.{secrets.token_hex(8)}@{hostname}>"
    msg["Auto-Submitted"] = "auto-generated"
    msg["X-Sekisho"] = f"ppap; job={rec.job_id}"
    return msg


def _who(rec: JobRecord) -> str:
    sender = rec.extra.get("sender", "") or "<>"
    return one_line(sender, 200)


def _subject(rec: JobRecord) -> str:
    return one_line(rec.extra.get("subject", ""), 200)


def _join(blocks: dict[str, list[str]], langs: Sequence[str]) -> str:
    chosen = [blocks[lang] for lang in langs if lang in blocks] or [blocks["en"]]
    return "\n\n".join("\n".join(lines) for lines in chosen) + "\n"


def link_mail(*, hostname: str, rec: JobRecord, link: str, attempts: int, days: float,
              langs: Sequence[str]) -> bytes:
    msg = _base(hostname, rec, "パスワード付きファイルが届いています",
                "A password-protected file is waiting for you", langs)
    days_text = f"{days:g}"
    blocks = {
        "ja": ["【Sekisho（関所）パスワード付きファイルのお知らせ】",
               "あなた宛てのメールに、パスワードで保護されたファイルが添付されていました。",
               "そのままでは安全か確認できないため、メールからは取り外して保管しています。",
               f"  ファイル名: {rec.name}",
               f"  差出人: {_who(rec)}",
               f"  件名: {_subject(rec)}",
               "",
               "差出人から届いたパスワードを次のページで入力すると、ファイルを開いて",
               "無害化し、改めてメールでお届けします。",
               f"  {link}",
               f"パスワードの入力は{attempts}回まで、受付から{days_text}日以内です。",
               f"受付番号: {rec.job_id}"],
        "en": ["[Sekisho password-protected file notice]",
               "A message to you carried a password-protected file. It could not be checked",
               "as it was, so it was taken off the message and is held safely.",
               f"  File: {rec.name}",
               f"  From: {_who(rec)}",
               f"  Subject: {_subject(rec)}",
               "",
               "Enter the password the sender gave you on this page; the file is then",
               "opened, disarmed and mailed to you:",
               f"  {link}",
               f"You have {attempts} attempts, within {days_text} days.",
               f"Reference: {rec.job_id}"],
    }
    msg.set_content(_join(blocks, langs), charset="utf-8", cte="base64")
    return msg.as_bytes()


def result_mail(*, hostname: str, rec: JobRecord, data: bytes, langs: Sequence[str]) -> bytes:
    """The disarmed file. ``rec.password_attempts`` says whether a password opened it,
    or the attachment turned out to be readable without one when checked alone."""
    name = rec.output_name or rec.name
    if rec.password_attempts:
        subject_ja = f"パスワード付きファイルを無害化しました: {name}"
        subject_en = f"Your password-protected file, disarmed: {name}"
        said_ja = ["パスワードで保護されていたファイルを開いて無害化しました。",
                   "添付をご確認ください。（パスワードは外してあります。）"]
        said_en = ["The password-protected file was opened and disarmed; it is attached",
                   "(without the password)."]
    else:
        subject_ja = f"添付ファイルを無害化しました: {name}"
        subject_en = f"Your attachment, disarmed: {name}"
        said_ja = ["メールから取り外した添付ファイルを単独で検査したところ、パスワードなしで",
                   "開けたため、無害化して添付しました。パスワードの入力は不要です。"]
        said_en = ["The attachment taken off the message opened without a password when",
                   "checked on its own; it was disarmed and is attached. No password is needed."]
    msg = _base(hostname, rec, subject_ja, subject_en, langs)
    blocks = {
        "ja": ["【Sekisho（関所）】", *said_ja,
               f"  ファイル名: {name}",
               f"  差出人: {_who(rec)}",
               f"  件名: {_subject(rec)}",
               f"受付番号: {rec.job_id}"],
        "en": ["[Sekisho]", *said_en,
               f"  File: {name}",
               f"  From: {_who(rec)}",
               f"  Subject: {_subject(rec)}",
               f"Reference: {rec.job_id}"],
    }
    msg.set_content(_join(blocks, langs), charset="utf-8", cte="base64")
    maintype, subtype = (("application", "zip") if name.lower().endswith(".zip")
                         else ("application", "pdf") if name.lower().endswith(".pdf")
                         else ("application", "octet-stream"))
    msg.add_attachment(data, maintype=maintype, subtype=subtype, filename=name)
    return msg.as_bytes()


def failed_mail(*, hostname: str, rec: JobRecord, langs: Sequence[str]) -> bytes:
    msg = _base(hostname, rec, "パスワード付きファイルをお届けできません",
                "Your password-protected file could not be delivered", langs)
    why = rec.reason or "blocked"
    blocks = {
        "ja": ["【Sekisho（関所）】",
               "パスワードで保護されていたファイルをお届けできませんでした。",
               f"  ファイル名: {rec.name}",
               f"  理由: {reasons.ja(rec.reason) or 'ブロックしました'}",
               "原本は隔離保管されています。必要な場合は、受付番号を添えて",
               "システム管理者へお問い合わせください。",
               f"受付番号: {rec.job_id}"],
        "en": ["[Sekisho]",
               "The password-protected file could not be delivered.",
               f"  File: {rec.name}",
               f"  Reason: {why}",
               "The original is held in quarantine; contact your administrator quoting",
               f"reference {rec.job_id}."],
    }
    msg.set_content(_join(blocks, langs), charset="utf-8", cte="base64")
    return msg.as_bytes()


def released_mail(*, hostname: str, rec: JobRecord, data: bytes, approver: str,
                  langs: Sequence[str]) -> bytes:
    """An administrator released the held file (as it came, or re-run under a policy)."""
    name = rec.output_name or rec.name
    msg = _base(hostname, rec, f"管理者が隔離ファイルを取り出しました: {name}",
                f"An administrator released a held file: {name}", langs)
    who = one_line(approver, 100)
    blocks = {
        "ja": ["【Sekisho（関所）原本取り出し】",
               "パスワード付きで届き隔離していたファイルを、管理者の承認により添付します。",
               f"  ファイル名: {name}",
               f"  差出人: {_who(rec)}",
               f"  承認者: {who}",
               f"受付番号: {rec.job_id}"],
        "en": ["[Sekisho release]",
               "A file held because it was password-protected is attached, released",
               "with an administrator's approval.",
               f"  File: {name}",
               f"  From: {_who(rec)}",
               f"  Approved by: {who}",
               f"Reference: {rec.job_id}"],
    }
    msg.set_content(_join(blocks, langs), charset="utf-8", cte="base64")
    msg.add_attachment(data, maintype="application", subtype="octet-stream", filename=name)
    return msg.as_bytes()

"""Output MIME parts: text bodies and attachments, always newly written.

Text is UTF-8 in base64 (never quoted-printable: no line of our output can
then carry a magic string like ``%PDF-`` that would change how it is sniffed).
An attachment's content type is that of what the pipeline delivered, never the
sender's claim. Non-ASCII file names are written as RFC 2231 (UTF-8, split into
continuations so no line grows long) in both ``filename`` and ``name``: an RFC
2047 word inside the quoted ``name`` is what Gmail and Outlook write, but it is
not allowed and the email package reports it as a defect. Nested messages stay
message/rfc822 only when the delivered bytes are our own rebuilt message (plain
ASCII, sniffed as mail).
"""

from __future__ import annotations

import re
import urllib.parse
from email import encoders
from email.message import Message
from email.mime.base import MIMEBase
from email.mime.text import MIMEText

from gateway.pipeline.sniff import sniff_bytes
from gateway.stages.mail_headers import decode_value

#: content type of a delivered item by its sniffed type id
MIME_TYPES: dict[str, str] = {
    "pdf": "application/pdf", "rtf": "application/rtf", "html": "text/html",
    "svg": "image/svg+xml", "text.plain": "text/plain", "text.csv": "text/csv",
    "archive.zip": "application/zip", "mail.eml": "message/rfc822",
    "image.png": "image/png", "image.jpeg": "image/jpeg", "image.gif": "image/gif",
    "image.bmp": "image/bmp", "image.tiff": "image/tiff", "image.webp": "image/webp",
    "ole.doc": "application/msword", "ole.xls": "application/vnd.ms-excel",
    "ole.ppt": "application/vnd.ms-powerpoint",
    "ooxml.docx": "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
    "ooxml.dotx": "application/vnd.openxmlformats-officedocument.wordprocessingml.template",
    "ooxml.xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    "ooxml.xltx": "application/vnd.openxmlformats-officedocument.spreadsheetml.template",
    "ooxml.pptx": "application/vnd.openxmlformats-officedocument.presentationml.presentation",
    "ooxml.potx": "application/vnd.openxmlformats-officedocument.presentationml.template",
    "ooxml.ppsx": "application/vnd.openxmlformats-officedocument.presentationml.slideshow",
    "odf.text": "application/vnd.oasis.opendocument.text",
    "odf.spreadsheet": "application/vnd.oasis.opendocument.spreadsheet",
    "odf.presentation": "application/vnd.oasis.opendocument.presentation",
}
#: declared text subtypes kept for text the pipeline passed (calendar invitations…)
SAFE_TEXT = frozenset({"text/plain", "text/calendar", "text/csv", "text/vcard", "text/x-vcard",
                       "text/directory", "text/tab-separated-values", "text/rfc822-headers"})
_TOKEN = re.compile(r"^[A-Za-z0-9!#$%&'*+.^_`{|}~-]{1,40}$")
_PLAIN_NAME = re.compile(r"^[A-Za-z0-9 !#$%&'()*+,.;=@\[\]^_`{}~-]{1,100}$")


def text_part(text: str, subtype: str) -> Message:
    part = MIMEText(text, subtype, "utf-8")
    del part["MIME-Version"]
    return part


#: a Content-ID as it is written back: <...> of printable ASCII without brackets inside
_CID = re.compile(r"<[!-;=?-~]{1,200}>")


def content_id(part: Message) -> str | None:
    """The part's Content-ID ("<...>") as it is written back, or None."""
    value = part.get("content-id")
    m = _CID.search(str(value)) if value is not None else None
    return m.group(0) if m else None


def attachment_part(data: bytes, name: str, declared: str | None, charset: str | None,
                    cid: str | None, inline: bool) -> Message:
    type_id = sniff_bytes(data, name).type_id
    mime = MIME_TYPES.get(type_id, "application/octet-stream")
    part: Message
    if mime == "message/rfc822" and data.isascii():
        part = MIMEBase("message", "rfc822")
        text = data.decode("ascii")
        part.set_payload(re.sub(r"\r?\n", "\r\n", text))
    else:
        if type_id.startswith("text."):
            mime = declared if declared in SAFE_TEXT else mime
        main, _, sub = mime.partition("/")
        part = MIMEBase(main, sub)
        if main == "text":
            part.set_param("charset", "utf-8" if type_id == "html" else (
                charset if charset and _TOKEN.match(charset) else "us-ascii"
                if data.isascii() else "utf-8"))
        part.set_payload(data)
        encoders.encode_base64(part)
    del part["MIME-Version"]
    # inline stays inline for a part the body refers to (cid:) and for plain text and
    # pictures, which mail clients show after the body as the sender meant
    shown = inline and (cid is not None or part.get_content_type() == "text/plain"
                        or part.get_content_maintype() == "image")
    _set_name(part, name, "inline" if shown else "attachment")
    if cid:
        part["Content-ID"] = cid
    return part


def _set_name(part: Message, name: str, disposition: str) -> None:
    if _PLAIN_NAME.match(name):
        part.set_param("name", name)
        part["Content-Disposition"] = f'{disposition}; filename="{name}"'
        return
    part.replace_header("Content-Type", f"{part.get_content_type()}; {_rfc2231('name', name)}"
                        + "".join(f"; {k}={v}" for k, v in (part.get_params() or [])[1:]))
    part["Content-Disposition"] = f"{disposition}; {_rfc2231('filename', name)}"


def _rfc2231(param: str, value: str) -> str:
    """``param*=utf-8''…``, split into ``param*0*=…; param*1*=…`` so lines stay short."""
    chunks = [""]
    for ch in value:  # split between characters: every chunk decodes on its own
        piece = urllib.parse.quote(ch.encode("utf-8"), safe="")
        if len(chunks[-1]) + len(piece) > 60:
            chunks.append("")
        chunks[-1] += piece
    if len(chunks) == 1:
        return f"{param}*=utf-8''{chunks[0]}"
    return "; ".join(f"{param}*{i}*=" + ("utf-8''" if i == 0 else "") + chunk
                     for i, chunk in enumerate(chunks))


def subject_of(msg: Message) -> str:
    for key, value in msg.raw_items():
        if key.strip().lower() == "subject":
            return decode_value(str(value))[0]
    return ""

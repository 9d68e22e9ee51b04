"""Walk a parsed message part by part and build its canonical replacement.

Each input part becomes zero or more output parts, all new objects:

- multipart/mixed, alternative, related, digest, parallel keep their subtype;
  any other multipart becomes mixed. multipart/signed is unwrapped and its
  signature dropped (it cannot stay valid). Preambles and epilogues go.
- text/plain and text/html bodies are decoded (mail_charset) and written as
  UTF-8, base64; HTML sanitized or converted by policy (mail_body);
  uuencoded blocks become attachments.
- every other part — attachments, inline images, nested messages — goes
  through the whole pipeline (``ctx.recurse``) and is attached under its
  delivery name with the content type of what actually came back.
- TNEF (winmail.dat) is unpacked in place: its attachments become real ones.
- S/MIME opaque signatures (application/pkcs7-mime signed-data) are opened like
  multipart/signed: the signed entity is walked in their place, the signature goes.
- encrypted content (multipart/encrypted, S/MIME enveloped-data, PGP) stops the
  whole message: EncryptedContent, held for quarantine.

Locations are part numbers as IMAP counts them ("1", "2.1"; "body" for the
top-level entity); attachments are located by their cleaned name.
"""

from __future__ import annotations

import binascii
import io
import quopri
import re
from email.generator import BytesGenerator
from email.message import Message
from email.mime.multipart import MIMEMultipart
from email.policy import compat32

from gateway.errors import EncryptedContent, LimitExceeded, Malformed
from gateway.kinds import Action
from gateway.models import Verdict
from gateway.pipeline.api import Mode, StageContext
from gateway.stages import mail_body, mail_mhtml, mail_names
from gateway.stages.html import decode as decode_html
from gateway.stages.mail_charset import decode_bytes
from gateway.stages.mail_headers import SINGLE, decode_value
from gateway.stages.mail_notice import AttachmentNote
from gateway.stages.mail_parts import attachment_part, content_id, subject_of, text_part

MAX_DEPTH = 40        # multipart nesting inside one message
MAX_HEADERS = 1000    # header fields of one part
_KEEP_SUBTYPES = frozenset({"mixed", "alternative", "related", "digest", "parallel"})
_SIGNATURES = frozenset({"application/pkcs7-signature", "application/x-pkcs7-signature",
                         "application/pgp-signature"})
_PKCS7_MIME = frozenset({"application/pkcs7-mime", "application/x-pkcs7-mime"})
_TNEF_TYPES = frozenset({"application/ms-tnef", "application/vnd.ms-tnef"})
TNEF_MAGIC = b"\x78\x9f\x3e\x22"
_PGP_ARMOR = b"-----BEGIN PGP MESSAGE-----"


def child_location(where: str, index: int) -> str:
    return str(index) if where == "body" else f"{where}.{index}"


class Walker:
    def __init__(self, ctx: StageContext) -> None:
        self.ctx = ctx
        self.notes: list[AttachmentNote] = []
        self.hoisted: list[Message] = []  # attachments found inside bodies (uuencode)
        self.taken: set[str] = set()
        self.parts = 0
        self.max_parts = ctx.policy.limits.max_members
        #: a saved web page's archived addresses -> their parts' Content-IDs, and the
        #: address the page was saved from
        self.archived: dict[str, str] = {}
        self.snapshot = ""

    def web_page(self, msg: Message) -> None:
        """``msg`` is a saved web page: its pictures are referred to by address."""
        self.archived = mail_mhtml.content_ids(msg)
        self.snapshot = mail_mhtml.location(msg, "snapshot-content-location")

    @property
    def building(self) -> bool:
        return self.ctx.mode is Mode.DISARM

    # ------------------------------------------------------------------ dispatch

    def walk(self, part: Message, where: str, depth: int) -> list[Message]:
        self.parts += 1
        if self.parts > self.max_parts:
            raise LimitExceeded(f"message has more than {self.max_parts} MIME parts")
        if depth > MAX_DEPTH:
            raise LimitExceeded(f"MIME parts nested deeper than {MAX_DEPTH} levels")
        self._check_headers(part, where)
        ctype = part.get_content_type().lower()
        main, _, sub = ctype.partition("/")
        if main == "multipart":
            return self._multipart(part, sub, where, depth)
        data: bytes | None = None  # decoded once: a defect is recorded once
        if ctype in _PKCS7_MIME:
            data = payload_bytes(part, where, self.ctx)
            signed = signed_content(data)
            if signed is not None:
                from gateway.stages.mail import parse  # noqa: PLC0415 - mail imports this module

                self.ctx.record("mail.signature_removed", where,
                                detail="S/MIME opaque signature (signed-data): the signed "
                                       "content is delivered without it")
                return self.walk(parse(signed), child_location(where, 1), depth + 1)
        if ctype == "application/pgp-encrypted" or (
                ctype in _PKCS7_MIME and _smime_type(part) not in (
                    "signed-data", "certs-only", "compressed-data")):
            self._encrypted(where, "S/MIME enveloped data" if ctype in _PKCS7_MIME
                            else "PGP/MIME")
        if ctype in _SIGNATURES:
            self.ctx.record("mail.signature_removed", where, detail=ctype)
            return []
        if ctype in ("message/rfc822", "message/global"):
            return self._message(part, where)
        if ctype == "message/partial":
            self.ctx.record("mail.partial", where, detail="fragments are never reassembled")
            return []
        if ctype == "message/external-body":
            self.ctx.record("mail.external_body", where)
            return []
        if main == "message":  # delivery-status, disposition-notification …: show as text
            return self._text(part, "plain", _serialize_payload(part), where, declared=False)
        if data is None:
            data = payload_bytes(part, where, self.ctx)
        raw = mail_names.part_name(part)
        if ctype in _TNEF_TYPES or data.startswith(TNEF_MAGIC):
            return self._tnef(part, data, raw, where, depth)
        disposition = _disposition(part)
        if main == "text" and sub in ("plain", "html", "enriched", "rfc822-headers") \
                and disposition != "attachment" and raw.name is None:
            # a report's copy of the original headers is text to read, not a message
            return self._text(part, "plain" if sub != "html" else sub, data, where,
                              enriched=sub == "enriched")
        return self._attachment(part, data, raw, where)

    def _check_headers(self, part: Message, where: str) -> None:
        items = list(part.raw_items())
        if len(items) > MAX_HEADERS:
            raise LimitExceeded(f"a MIME part has more than {MAX_HEADERS} header fields")
        if where == "body":
            return  # top-level duplicates are checked with the top-level headers
        seen: set[str] = set()
        for name, _ in items:
            key = name.strip().lower()
            if key.startswith("content-") and key in SINGLE:
                if key in seen:
                    self.ctx.record("mail.ambiguous_header", f"{where}/{key}",
                                    detail=f"{name} appears more than once")
                seen.add(key)

    def _encrypted(self, where: str, what: str) -> None:
        self.ctx.record("mail.encrypted", where, action=Action.BLOCKED, detail=what)
        raise EncryptedContent(f"encrypted mail ({what}): cannot be inspected")

    # ------------------------------------------------------------------ containers

    def _multipart(self, part: Message, sub: str, where: str, depth: int) -> list[Message]:
        if not part.is_multipart():  # boundary never found: the body is just text
            self.ctx.record("mail.defect", where, action=Action.REPAIRED,
                            detail="multipart without its boundary, kept as text")
            data = payload_bytes(part, where, self.ctx)
            return self._text(part, "plain", data, where, declared=False)
        payload = part.get_payload()
        if not isinstance(payload, list):  # is_multipart() says it is; for the type checker
            payload = []
        if sub == "encrypted":
            self._encrypted(where, "multipart/encrypted")
        if sub == "signed":
            if len(payload) > 1:
                self.ctx.record("mail.signature_removed", where,
                                detail=str(part.get_param("protocol") or "signature"))
            first = payload[0] if payload else None
            return self.walk(first, child_location(where, 1), depth + 1) \
                if isinstance(first, Message) else []
        children = [c for c in payload if isinstance(c, Message)]
        skip: set[int] = set()
        if sub == "alternative" and self.ctx.policy.mail.html_body == "text":
            skip = self._prefer_plain(children, where)
        out: list[Message] = []
        for index, child in enumerate(children, 1):
            if id(child) in skip:
                continue
            got = self.walk(child, child_location(where, index), depth + 1)
            if sub == "mixed":
                out.extend(got)
            else:  # one part per alternative; extra attachments go to the top level
                out.extend(got[:1])
                self.hoisted.extend(got[1:])
        if not out:
            return []
        keep = sub if sub in _KEEP_SUBTYPES else "mixed"
        container = MIMEMultipart(keep)
        del container["MIME-Version"]
        for child_part in out:
            container.attach(child_part)
        return [container]

    def _prefer_plain(self, children: list[Message], where: str) -> set[int]:
        """html_body: text — a plain alternative exists, so the HTML ones are dropped."""
        if not any(c.get_content_type() == "text/plain" for c in children):
            return set()
        html = {id(c) for c in children if c.get_content_type() == "text/html"}
        if html:
            self.ctx.record("mail.html_converted", where, action=Action.REMOVED,
                            detail="HTML alternative dropped, the plain text is kept")
        return html

    # ------------------------------------------------------------------ bodies

    def _text(self, part: Message, sub: str, data: bytes, where: str, *,
              declared: bool = True, enriched: bool = False) -> list[Message]:
        charset = part.get_content_charset() if declared else None
        if sub == "html" and not charset:
            text, ok = decode_html(data), True
        else:
            text, ok = decode_bytes(data, charset)
        if enriched:
            text = mail_body.enriched_to_text(text)
        if not ok:
            self.ctx.record("mail.defect", where, action=Action.REPAIRED,
                            detail=f"text not valid in its charset {charset or '(none)'}")
        if mail_body.has_pgp_message(text):
            self._encrypted(where, "PGP armored message")
        if sub == "html":
            if self.archived:  # relative references: against the page's own address
                base = mail_mhtml.location(part) or self.snapshot
                text = mail_mhtml.resolve(text, base, self.archived)
            subtype, content = mail_body.html_body(text, where, self.ctx)
            return [text_part(content, subtype)]
        text, files = mail_body.find_uuencoded(text)
        for uu in files:
            name, _ = mail_names.clean_name(uu.name)
            self.ctx.record("mail.uuencode", where, detail=f"file {name[:80]!r} cut out")
            if uu.data is None:
                self.ctx.record("mail.defect", where, action=Action.REPAIRED,
                                detail="undecodable uuencoded block removed")
                continue
            self.hoisted.extend(self._deliver(uu.data, name, name, None, None))
        if self.ctx.policy.mail.links == "neutralize":
            text = mail_body.neutralize_text(text, where, self.ctx)
        return [text_part(text, "plain")]

    # ------------------------------------------------------------------ attachments

    def _attachment(self, part: Message, data: bytes, raw: mail_names.RawName,
                    where: str) -> list[Message]:
        if raw.conflict:
            self.ctx.record("mail.ambiguous_header", where, detail=raw.conflict)
        shown = raw.name if raw.name is not None else _default_name(part, where)
        name, changes = mail_names.clean_name(shown)
        if changes:
            self.ctx.record("mail.name_cleaned", name, action=Action.NEUTRALIZED,
                            detail="; ".join(changes) + f" (was {shown[:80]!r})")
        if _PGP_ARMOR in data[:65536]:
            self._encrypted(where, "PGP armored attachment")
        name = mail_names.unique(name, self.taken)
        cid = content_id(part)
        declared = part.get_content_type().lower()
        return self._deliver(data, name, name, cid, declared,
                             charset=part.get_content_charset(),
                             inline=_disposition(part) == "inline")

    def _deliver(self, data: bytes, name: str, shown: str, cid: str | None,
                 declared: str | None, *, charset: str | None = None,
                 inline: bool = False) -> list[Message]:
        got = self.ctx.recurse(data, name)
        if not self.building:
            if not got.verdict.delivered:
                self.ctx.record("mail.attachment_blocked", name, detail=got.reason or "")
            elif got.residual:
                self.ctx.record("mail.attachment_disarmed", name, action=Action.DISARMED)
            return []
        if not got.delivered or got.data is None:
            self.ctx.record("mail.attachment_blocked", name, detail=got.reason or "")
            self.notes.append(AttachmentNote(shown, None, got.reason or "", got.findings))
            return []
        if got.verdict is Verdict.DISARMED:
            self.ctx.record("mail.attachment_disarmed", name, action=Action.DISARMED)
        self.notes.append(AttachmentNote(shown, got.name, "", got.findings))
        return [attachment_part(got.data, got.name, declared, charset, cid, inline)]

    def _message(self, part: Message, where: str) -> list[Message]:
        payload = part.get_payload() if part.is_multipart() else None
        inner = payload[0] if isinstance(payload, list) and payload else None
        if inner is None or not isinstance(inner, Message):
            data = payload_bytes(part, where, self.ctx)
        else:
            data = serialize(inner)
            if _cte(part) in ("base64", "quoted-printable"):
                data = _decode_cte(data, _cte(part), where, self.ctx)
        raw = mail_names.part_name(part)
        if raw.name is None:
            subject = subject_of(inner) if isinstance(inner, Message) else ""
            title = re.sub(r'[\\/:<>"|?*]', "_", subject[:60])
            raw = mail_names.RawName((title or "message") + ".eml")
        return self._attachment(part, data, raw, where)

    def _tnef(self, part: Message, data: bytes, raw: mail_names.RawName, where: str,
              depth: int) -> list[Message]:
        from gateway.stages.mail_tnef import tnef_message  # noqa: PLC0415 - rare input

        try:
            message = tnef_message(data, self.ctx)
        except Malformed:
            return self._attachment(part, data, raw, where)
        self.ctx.record("mail.tnef_decoded", where, action=Action.DISARMED,
                        detail=f"{len(message.get_payload())} parts")
        out: list[Message] = []
        for index, child in enumerate(message.get_payload(), 1):
            if isinstance(child, Message):
                out.extend(self.walk(child, f"{where}/tnef.{index}", depth + 1))
        return out


# ---------------------------------------------------------------------------- helpers


def signed_content(data: bytes) -> bytes | None:
    """The MIME entity an S/MIME opaque signature wraps (application/pkcs7-mime
    signed-data: a CMS SignedData, RFC 5652, that carries its content, in DER or in
    Outlook's indefinite-length BER), or None when ``data`` is no such thing (enveloped
    data, a certificate bundle, a detached signature, damage)."""
    from asn1crypto import cms  # noqa: PLC0415 - only S/MIME needs it

    try:
        info = cms.ContentInfo.load(data)
        if info["content_type"].native != "signed_data":
            return None
        encap = info["content"]["encap_content_info"]
        if encap["content_type"].native != "data":
            return None
        content = encap["content"].native
    except Exception:  # any parse failure: not a signed message we can open
        return None
    return content if isinstance(content, bytes) and content.strip() else None


def _smime_type(part: Message) -> str:
    value = part.get_param("smime-type")
    return str(value).strip().lower() if isinstance(value, str) else ""


def _disposition(part: Message) -> str:
    value = part.get("content-disposition")
    if value is None:
        return ""
    return str(value).split(";", 1)[0].strip().lower()


#: the file name at the end of a Content-Location (a name some mailers give no other way)
_LOCATION_NAME = re.compile(r"([^/\\?#\s]{1,120}\.[A-Za-z0-9]{1,8})\s*$")


def _default_name(part: Message, where: str) -> str:
    location = str(part.get("content-location") or "")
    named = _LOCATION_NAME.search(location.split("?", 1)[0].split("#", 1)[0])
    if named:
        return named.group(1)
    ctype = part.get_content_type().lower()
    ext = {"text/plain": "txt", "text/html": "html", "text/calendar": "ics",
           "image/png": "png", "image/jpeg": "jpg", "image/gif": "gif",
           "application/pdf": "pdf", "application/rtf": "rtf", "text/rtf": "rtf",
           "message/rfc822": "eml", "application/zip": "zip"}.get(
        ctype, "txt" if ctype.startswith("text/") else "bin")  # text/x-ruby-script too
    return f"part-{where.replace('/', '_')}.{ext}"


def _cte(part: Message) -> str:
    value = part.get("content-transfer-encoding")
    if value is None:
        return ""
    return re.split(r"[\s;]", str(value).strip().lower() + " ", maxsplit=1)[0]


def payload_bytes(part: Message, where: str, ctx: StageContext) -> bytes:
    """The decoded body of a leaf part (transfer encoding undone, leniently)."""
    if part.is_multipart():
        return _serialize_payload(part)
    before = len(part.defects)
    data = part.get_payload(decode=True)
    if not isinstance(data, bytes):
        return b""
    if len(part.defects) > before:
        ctx.record("mail.defect", where, action=Action.REPAIRED,
                   detail=", ".join(type(d).__name__ for d in part.defects[before:])[:200])
    declared = str(part.get("content-transfer-encoding", "")).lower()
    cte = _cte(part)
    if cte != declared:  # " Base64 ", "base64; x": the email package left it encoded
        return _decode_cte(data, cte, where, ctx)
    if cte not in ("", "7bit", "8bit", "binary", "base64", "quoted-printable", "x-uuencode",
                   "uuencode", "x-uue", "uue"):
        ctx.record("mail.defect", where, action=Action.REPAIRED,
                   detail=f"unknown transfer encoding {cte[:30]!r}, body taken as is")
    return data


def _decode_cte(raw: bytes, cte: str, where: str, ctx: StageContext) -> bytes:
    if cte == "base64":
        cleaned = re.sub(rb"[^A-Za-z0-9+/=]", b"", raw)
        try:
            return binascii.a2b_base64(cleaned)
        except binascii.Error:
            ctx.record("mail.defect", where, action=Action.REPAIRED, detail="bad base64 padding")
        cleaned = cleaned.replace(b"=", b"")
        cleaned = cleaned[:-1] if len(cleaned) % 4 == 1 else cleaned
        return binascii.a2b_base64(cleaned + b"=" * (-len(cleaned) % 4))
    if cte == "quoted-printable":
        return quopri.decodestring(raw)
    if cte in ("x-uuencode", "uuencode", "x-uue", "uue"):
        if not raw.strip():
            return b""
        _, files = mail_body.find_uuencoded(raw.decode("latin-1"))
        if files and files[0].data is not None:
            return files[0].data
        ctx.record("mail.defect", where, action=Action.REPAIRED, detail="bad uuencode")
        return b""
    if cte not in ("", "7bit", "8bit", "binary"):
        ctx.record("mail.defect", where, action=Action.REPAIRED,
                   detail=f"unknown transfer encoding {cte[:30]!r}, body taken as is")
    return raw


def serialize(msg: Message) -> bytes:
    buf = io.BytesIO()
    try:
        BytesGenerator(buf, mangle_from_=False, policy=compat32).flatten(msg)
    except (RecursionError, LookupError, ValueError, TypeError, UnicodeError) as exc:
        raise Malformed(f"nested message cannot be read ({type(exc).__name__})") from None
    return buf.getvalue()


def _serialize_payload(part: Message) -> bytes:
    if part.is_multipart():  # delivery-status: header blocks, one empty line between them
        blocks = [re.sub(rb"\r\n?", b"\n", serialize(p)).strip(b"\n")
                  for p in part.get_payload() if isinstance(p, Message)]
        return b"\n\n".join(b for b in blocks if b) + b"\n"
    # get_payload() without decode reads 8-bit text under the part's charset label, and
    # raises ValueError when that label holds a NUL; with decode it never looks at it
    data = part.get_payload(decode=True)
    return data if isinstance(data, bytes) else b""


def header_text(part: Message, name: str) -> str:
    for key, value in part.raw_items():
        if key.strip().lower() == name:
            return decode_value(str(value))[0]
    return ""


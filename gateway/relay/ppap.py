"""PPAP: password-protected attachments in mail, opened by the recipient.

PPAP (a zip, then its password in a second mail) is how Japanese offices still
send files, and how Emotet got past gateways that can't look inside. Here:

1. The MIME stage delivers the message without the encrypted attachment (a note
   says it was removed). When a group's report shows an attachment blocked only
   because it is encrypted (``block.encrypted`` on an archive, PDF or Office item),
   ``PPAP.consider`` takes that attachment out of the original message and
   submits it as a file job (origin ``ppap``) for the same policy. The job
   service holds it (``held``) because it is encrypted.
2. The sink, told the job is held, mails each recipient a link to the web page
   (``http.public_url``): ``/#unlock/<job_id>/<key>``. The key is an HMAC of the
   job id under a secret kept in ``<var_dir>/ppap.key``, so nothing secret is
   stored per job and a link can't be guessed from a job id.
3. The recipient enters the password there (``POST /v1/jobs/{id}/unlock``, the key
   standing in for a token; wrong passwords are counted and limited by the job
   service); the file is decrypted, disarmed, and mailed to the recipients as an
   attachment of a message from Sekisho. A job that ends blocked (too many wrong
   passwords, or dangerous inside) gets a short notice instead.

The attachment is found by parsing the original with the standard library
(compat32, as the MIME stage does) and naming parts with the MIME stage's own
name decoder, so both agree on "見積書.zip". Only parts whose bytes start like a
zip, 7z or PDF are taken. This parse happens in the daemon, in a thread, and
only for messages whose report already found such an attachment.
"""

from __future__ import annotations

import asyncio
import email.errors
import hashlib
import hmac
import json
import os
import secrets
import tempfile
from collections.abc import Awaitable, Callable, Sequence
from email import message_from_bytes
from email import policy as email_policy
from email.header import decode_header, make_header
from email.message import Message
from pathlib import Path

import structlog

from gateway.jobs.service import JobService
from gateway.jobs.store import HELD, JobRecord
from gateway.models import Report, Verdict
from gateway.relay import ppap_mail
from gateway.stages import mail_names

log = structlog.get_logger("sekisho.ppap")

ORIGIN = "ppap"
MAIL_NAME = "message.eml"
#: zip, 7z, PDF, and the compound file an encrypted .docx/.xlsx/.pptx (or an .xls) is
_MAGIC = (b"PK\x03\x04", b"7z\xbc\xaf\x27\x1c", b"%PDF-", b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1")
_ENCRYPTED_STAGES = ("archive", "pdf", "ooxml", "ole")

#: queue one generated message for a recipient (the relay's Processor.inject)
Inject = Callable[[str, bytes], Awaitable[object]]


def load_secret(path: Path) -> bytes:
    """The link-signing secret: created once (0600), refused if others can read it."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        st = path.stat()
        if st.st_mode & 0o077:
            raise PermissionError(f"{path}: readable by others (chmod 600 it)") from None
        data = path.read_bytes()
        if len(data) < 32:
            raise ValueError(f"{path}: too short to be a link-signing secret") from None
        return data
    try:
        os.write(fd, secrets.token_bytes(32))
        os.fsync(fd)
    finally:
        os.close(fd)
    return path.read_bytes()


def encrypted_attachments(report: Report) -> list[str]:
    """Names of top-level attachments blocked only because they are encrypted."""
    names: list[str] = []
    prefix = MAIL_NAME + "/"
    for item in report.items[1:]:
        if item.stage not in _ENCRYPTED_STAGES or item.verdict is not Verdict.BLOCKED:
            continue
        if not item.location.startswith(prefix):
            continue
        name = item.location[len(prefix):]
        if "/" in name or not any(f.kind == "block.encrypted" for f in item.findings):
            continue
        names.append(name)
    return names


def extract(message: bytes, names: Sequence[str]) -> tuple[str, list[tuple[str, bytes]]]:
    """The message's subject, and the bytes of the attachments called ``names``
    (first match for each name)."""
    wanted = list(names)
    found: list[tuple[str, bytes]] = []
    msg = message_from_bytes(message, policy=email_policy.compat32)
    try:
        subject = str(make_header(decode_header(msg.get("subject", "") or "")))
    except (UnicodeError, LookupError, ValueError, email.errors.HeaderParseError):
        subject = ""
    for part in msg.walk():
        if part.is_multipart() or not wanted:
            continue
        name = _name(part)
        if name not in wanted:
            continue
        data = part.get_payload(decode=True)
        if isinstance(data, bytes) and data.startswith(_MAGIC):
            wanted.remove(name)
            found.append((name, data))
    return subject, found


def _spill(directory: Path, data: bytes) -> Path:
    """``data`` in a new file under ``directory`` (in a thread: it may be large)."""
    with tempfile.NamedTemporaryFile(dir=directory, delete=False) as tmp:
        tmp.write(data)
    return Path(tmp.name)


def _name(part: Message) -> str | None:
    raw = mail_names.part_name(part)
    if raw.name is None:
        return None
    name, _ = mail_names.clean_name(raw.name)
    return name


class PPAP:
    def __init__(self, jobs: JobService, inject: Inject, *, secret: bytes, public_url: str,
                 hostname: str, langs: Sequence[str] = ("ja", "en"),
                 max_attempts: int = 5, retention_days: float = 7) -> None:
        self.jobs = jobs
        self.inject = inject
        self.secret = secret
        self.public_url = public_url.rstrip("/")
        self.hostname = hostname
        self.langs = tuple(langs)
        self.max_attempts = max_attempts
        self.retention_days = retention_days
        jobs.register_sink(ORIGIN, self.sink)

    # ------------------------------------------------------------------ links

    def key(self, job_id: str) -> str:
        return hmac.new(self.secret, job_id.encode(), hashlib.sha256).hexdigest()[:32]

    def check_key(self, job_id: str, key: str) -> bool:
        return hmac.compare_digest(self.key(job_id), key)

    def link(self, job_id: str) -> str:
        return f"{self.public_url}/#unlock/{job_id}/{self.key(job_id)}"

    # ------------------------------------------------------------------ intake

    async def consider(self, original: Path, *, report: Report, sender: str,
                       recipients: Sequence[str], policy: str, mail_job: str) -> list[str]:
        """Submit the message's encrypted attachments as held jobs; their job ids."""
        names = encrypted_attachments(report)
        if not names:
            return []
        data = await asyncio.to_thread(original.read_bytes)
        subject, found = await asyncio.to_thread(extract, data, names)
        job_ids: list[str] = []
        for name, payload in found:
            tmp = await asyncio.to_thread(_spill, self.jobs.store.root / ".tmp", payload)
            extra = {"sender": sender, "recipients": json.dumps(list(recipients)),
                     "subject": subject[:200], "mail_job": mail_job}
            try:  # shutting down (Busy): the message is sanitized again after the restart
                rec = await self.jobs.submit(tmp, name=name, origin=ORIGIN,
                                             policy=policy, requester=sender or "<>",
                                             extra=extra, move=True, follow_up=True)
            finally:  # moved into the job when accepted; otherwise not left behind
                tmp.unlink(missing_ok=True)
            job_ids.append(rec.job_id)
            log.info("ppap.held", mail_job=mail_job, job_id=rec.job_id,
                     recipients=len(recipients))
        return job_ids

    # ------------------------------------------------------------------ sink

    async def sink(self, rec: JobRecord) -> None:
        """Called when a PPAP job is held (send the link), or done after an unlock
        (send the file, or say why not). Idempotent enough: at worst a recipient
        gets the same mail twice after a crash."""
        recipients: list[str] = json.loads(rec.extra.get("recipients", "[]"))
        if rec.state == HELD:
            data = ppap_mail.link_mail(hostname=self.hostname, rec=rec,
                                       link=self.link(rec.job_id), attempts=self.max_attempts,
                                       days=self.retention_days, langs=self.langs)
        elif rec.output_name is not None:  # unlocked, or never needed a password after all
            result = self.jobs.result_path(rec.job_id)
            if result is None:
                raise RuntimeError(f"{rec.job_id}: result missing")
            body = await asyncio.to_thread(result.read_bytes)
            data = ppap_mail.result_mail(hostname=self.hostname, rec=rec, data=body,
                                         langs=self.langs)
        else:  # blocked or failed, after a password or without ever asking for one
            data = ppap_mail.failed_mail(hostname=self.hostname, rec=rec, langs=self.langs)
        for rcpt in recipients:
            await self.inject(rcpt, data)

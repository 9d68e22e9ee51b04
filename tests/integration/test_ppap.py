"""PPAP end to end, with the real daemon: a mail carrying a password zip arrives over
SMTP; the recipient gets the mail without the zip plus a link; entering the password
through the link's API delivers the disarmed zip by mail. Wrong keys and passwords
are refused, and run out."""

from __future__ import annotations

import email
import io
import json
import re
import urllib.error
import urllib.request
import zipfile
from email import policy as email_policy
from email.message import EmailMessage, Message
from pathlib import Path
from typing import Any

import pytest

from tests.helpers.archivegen import PASSWORD, encrypted_zip
from tests.helpers.smtppeers import Daemon, wait_for

pytestmark = pytest.mark.xdist_group("smtp")

HTML = b"<html><body><p>\xe6\xa1\x88\xe5\x86\x85</p><script>alert(1)</script></body></html>"


def daemon(work: Path, attempts: int = 3) -> Daemon:
    return Daemon(work, {
        "http": {"enabled": True, "listen": "127.0.0.1:0",
                 "public_url": "https://sekisho.city.example.lg.jp"},
        "jobs": {"max_password_attempts": attempts},
        "folders": [],
    })


def http_port(d: Daemon) -> int:
    for event in d.events():
        if event.get("event") == "http.listening":
            return int(str(event["port"]))
    raise AssertionError("no http.listening event")


def send(d: Daemon, data: bytes, rcpts: list[str]) -> None:
    import smtplib

    with smtplib.SMTP("127.0.0.1", d.port, timeout=30) as s:
        s.sendmail("sender@example.com", rcpts, data)


def ppap_mail(zip_bytes: bytes) -> bytes:
    msg = EmailMessage()
    msg["From"] = "Sender <sender@example.com>"
    msg["To"] = "staff@localhost"
    msg["Subject"] = "見積書の送付"
    msg["Message-ID"] = "<ppap-1@example.com>"
    msg.set_content("見積書を送付します。パスワードは別メールでお送りします。")
    msg.add_attachment(zip_bytes, maintype="application", subtype="zip",
                       filename="見積書.zip")
    return msg.as_bytes(policy=email_policy.SMTP)


def mailbox(d: Daemon, rcpt: str) -> list[Message]:
    box = d.var / "maildir" / rcpt / "new"
    if not box.is_dir():
        return []
    return [email.message_from_bytes(p.read_bytes(), policy=email_policy.default)
            for p in sorted(box.iterdir(), key=lambda p: p.stat().st_mtime)]


def body_text(msg: Message) -> str:
    return "\n".join(part.get_content() for part in msg.walk()  # type: ignore[attr-defined]
                     if part.get_content_type() == "text/plain")


def api(port: int, method: str, path: str, body: dict[str, Any] | None = None, *,
        token: str | None = None) -> tuple[int, dict[str, Any]]:
    """One JSON request to the daemon's HTTP API; (status, body) for errors too."""
    headers = {"Content-Type": "application/json"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    req = urllib.request.Request(
        f"http://127.0.0.1:{port}{path}", method=method,
        data=json.dumps(body).encode() if body is not None else None, headers=headers)
    try:
        with urllib.request.urlopen(req, timeout=60) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def test_ppap_mail_link_password_and_delivery(tmp_path: Path) -> None:
    d = daemon(tmp_path / "d")
    d.start()
    try:
        port = http_port(d)
        zipped = encrypted_zip("zipcrypt", {"見積書.html": HTML, "内訳.txt": "内訳".encode()})
        send(d, ppap_mail(zipped), ["staff@localhost", "boss@localhost"])
        wait_for(lambda: len(mailbox(d, "staff@localhost")) >= 2, 60, "mail")
        sanitized, link_mail = mailbox(d, "staff@localhost")[:2]
        # the message itself arrives without the encrypted zip
        assert all(p.get_filename() != "見積書.zip" for p in sanitized.walk())
        assert sanitized["Message-ID"] == "<ppap-1@example.com>"
        # and a second message carries the link
        assert "パスワード付き" in str(link_mail["Subject"])
        text = body_text(link_mail)
        m = re.search(r"https://sekisho\.city\.example\.lg\.jp/#unlock/([^/\s]+)/([0-9a-f]+)",
                      text)
        assert m, text
        job_id, key = m.groups()
        assert "見積書.zip" in text and "sender@example.com" in text and "見積書の送付" in text
        assert len(mailbox(d, "boss@localhost")) == 2  # every recipient gets the link

        status, view = api(port, "GET", f"/v1/unlock/{job_id}?key={key}")
        assert status == 200
        assert (view["name"], view["state"], view["password_attempts_left"]) == (
            "見積書.zip", "held", 3)
        # a key for another job, a wrong key, no key: all look like "no such job"
        assert api(port, "GET", f"/v1/unlock/{job_id}?key={'0' * 32}")[0] == 404
        assert api(port, "POST", f"/v1/unlock/{job_id}", {"key": key[:-1] + "x",
                                                          "password": PASSWORD})[0] == 404
        assert api(port, "GET", f"/v1/unlock/{job_id}")[0] == 404
        status, wrong = api(port, "POST", f"/v1/unlock/{job_id}",
                            {"key": key, "password": "guess"})
        assert status == 200
        assert (wrong["state"], wrong["reason"], wrong["password_attempts_left"]) == (
            "held", "the password is not correct", 2)
        status, done = api(port, "POST", f"/v1/unlock/{job_id}",
                           {"key": key, "password": PASSWORD})
        assert status == 200 and (done["state"], done["verdict"]) == ("delivered", "disarmed")

        wait_for(lambda: len(mailbox(d, "staff@localhost")) >= 3, 60, "mail")
        result = mailbox(d, "staff@localhost")[2]
        (att,) = [p for p in result.walk() if p.get_filename()]
        assert att.get_filename() == "見積書.zip"
        with zipfile.ZipFile(io.BytesIO(att.get_payload(decode=True))) as zf:
            assert sorted(zf.namelist()) == ["内訳.txt", "見積書.html"]
            assert not any(i.flag_bits & 1 for i in zf.infolist())  # no password any more
            assert b"<script" not in zf.read("見積書.html")
            assert zf.read("内訳.txt") == "内訳".encode()
        assert job_id in body_text(result)
        wait_for(lambda: len(mailbox(d, "boss@localhost")) == 3, 60, "mail")
        assert api(port, "POST", f"/v1/unlock/{job_id}",
                   {"key": key, "password": PASSWORD})[0] == 409
        log = d.log_path.read_text(encoding="utf-8")
        assert PASSWORD not in log and "guess" not in log  # passwords never logged
    finally:
        d.stop()


def test_ppap_runs_out_of_attempts(tmp_path: Path) -> None:
    d = daemon(tmp_path / "d", attempts=2)
    d.start()
    try:
        port = http_port(d)
        send(d, ppap_mail(encrypted_zip("aes256", {"a.txt": b"x"})), ["staff@localhost"])
        wait_for(lambda: len(mailbox(d, "staff@localhost")) >= 2, 60, "mail")
        text = body_text(mailbox(d, "staff@localhost")[1])
        m = re.search(r"#unlock/([^/\s]+)/([0-9a-f]+)", text)
        assert m
        job_id, key = m.groups()
        assert api(port, "POST", f"/v1/unlock/{job_id}", {"key": key, "password": "a"})[1][
            "password_attempts_left"] == 1
        status, last = api(port, "POST", f"/v1/unlock/{job_id}", {"key": key, "password": "b"})
        assert status == 200 and (last["verdict"], last["reason"]) == (
            "blocked", "too many wrong passwords")
        wait_for(lambda: len(mailbox(d, "staff@localhost")) >= 3, 60, "mail")
        failed = mailbox(d, "staff@localhost")[2]
        assert "お届けできません" in str(failed["Subject"])
        assert not [p for p in failed.walk() if p.get_filename()]
    finally:
        d.stop()


def unlock_round_trip(work: Path, subject: str, name: str, subtype: str, data: bytes,
                      password: str) -> tuple[Message, Message, str | None, bytes]:
    """Mail ``data`` as the attachment ``name`` to staff@localhost, then unlock it with
    ``password`` through the link: (sanitized message, link mail, delivered file name,
    delivered bytes)."""
    d = daemon(work)
    d.start()
    try:
        port = http_port(d)
        msg = EmailMessage()
        msg["From"], msg["To"], msg["Subject"] = "sender@example.com", "staff@localhost", subject
        msg.set_content(f"{subject}です。パスワードは別途。")
        maintype, sub = subtype.split("/")
        msg.add_attachment(data, maintype=maintype, subtype=sub, filename=name)
        send(d, msg.as_bytes(policy=email_policy.SMTP), ["staff@localhost"])
        wait_for(lambda: len(mailbox(d, "staff@localhost")) >= 2, 60, "mail")
        sanitized, link_mail = mailbox(d, "staff@localhost")[:2]
        m = re.search(r"#unlock/([^/\s]+)/([0-9a-f]+)", body_text(link_mail))
        assert m, body_text(link_mail)
        job_id, key = m.groups()
        status, done = api(port, "POST", f"/v1/unlock/{job_id}",
                           {"key": key, "password": password})
        assert status == 200 and done["verdict"] == "disarmed", done
        wait_for(lambda: len(mailbox(d, "staff@localhost")) >= 3, 60, "result")
        (att,) = [p for p in mailbox(d, "staff@localhost")[2].walk() if p.get_filename()]
        payload = att.get_payload(decode=True)
        assert isinstance(payload, bytes)
        return sanitized, link_mail, att.get_filename(), payload
    finally:
        d.stop()


def test_password_excel_attachment_gets_a_link_too(tmp_path: Path) -> None:
    from tests.helpers import ooxmlgen

    _, _, name, data = unlock_round_trip(
        tmp_path / "d", "予算", "予算.xlsm", "application/vnd.ms-excel.sheet.macroEnabled.12",
        ooxmlgen.encrypt(ooxmlgen.xlsm(), "予算2026"), "予算2026")
    assert name == "予算.xlsx"
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        assert not [n for n in zf.namelist() if "vbaProject" in n]


def test_password_xls_attachment_gets_a_link_too(tmp_path: Path) -> None:
    """A legacy workbook with a real password (not Excel's default one) in mail: held,
    linked, and after the password delivered unencrypted without its macros."""
    import msoffcrypto
    import olefile

    from tests.conftest import ROOT
    from tests.helpers.xlscrypt import rekey_xls

    sample = (ROOT / "samples" / "office" / "oletools-autostart-velvetsweatshop.xls").read_bytes()
    sanitized, link_mail, name, data = unlock_round_trip(
        tmp_path / "d", "集計", "集計.xls", "application/vnd.ms-excel",
        rekey_xls(sample, "VelvetSweatshop", "集計2026"), "集計2026")
    assert all(p.get_filename() != "集計.xls" for p in sanitized.walk())
    assert "集計.xls" in body_text(link_mail)
    assert name == "集計.xls"
    assert not msoffcrypto.OfficeFile(io.BytesIO(data)).is_encrypted()
    with olefile.OleFileIO(data) as ole:
        assert not ole.exists("_VBA_PROJECT_CUR")

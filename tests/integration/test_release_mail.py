"""Releasing quarantined mail through the admin API of the real daemon: the original
goes to the recipients it was addressed to, approver and reason are audited; a PPAP
file an administrator releases is mailed to its recipients."""

from __future__ import annotations

import json
import re
from email import policy as email_policy
from email.message import EmailMessage
from pathlib import Path

import pytest

from tests.helpers.archivegen import encrypted_zip
from tests.helpers.jobs import EXE
from tests.helpers.smtppeers import wait_for
from tests.integration.test_ppap import api, body_text, daemon, http_port, mailbox, ppap_mail, send

pytestmark = pytest.mark.xdist_group("smtp")


def admin_api(d_var: Path, port: int, method: str, path: str,
              body: dict[str, object] | None = None) -> tuple[int, dict[str, object]]:
    token = (d_var / "tokens" / "admin.token").read_text().strip()
    return api(port, method, path, body, token=token)


def test_release_sends_the_original_mail_where_it_was_going(tmp_path: Path) -> None:
    d = daemon(tmp_path / "d")
    d.start()
    try:
        port = http_port(d)
        msg = EmailMessage()
        msg["From"], msg["To"], msg["Subject"] = "a@example.com", "staff@localhost", "tool"
        msg["Message-ID"] = "<release-1@example.com>"
        msg.set_content("the tool you asked for")
        msg.add_attachment(EXE, maintype="application", subtype="octet-stream",
                           filename="setup.exe")
        send(d, msg.as_bytes(policy=email_policy.SMTP), ["staff@localhost"])
        wait_for(lambda: len(mailbox(d, "staff@localhost")) == 1, 60, "sanitized mail")
        (clean,) = mailbox(d, "staff@localhost")
        assert not [p for p in clean.walk() if p.get_filename() == "setup.exe"]
        m = re.search(r"job=([^;\s]+)", str(clean["X-Sekisho"]))
        assert m
        job_id = m.group(1)
        assert admin_api(d.var, port, "POST", f"/v1/quarantine/{job_id}/release",
                         {"reason": ""})[0] == 400
        status, entry = admin_api(d.var, port, "POST", f"/v1/quarantine/{job_id}/release",
                                  {"reason": "業務で必要（課長承認済み）", "policy": None})
        assert status == 200, entry
        assert entry["state"] == "released"
        wait_for(lambda: len(mailbox(d, "staff@localhost")) == 2, 60, "released mail")
        released = mailbox(d, "staff@localhost")[1]
        (att,) = [p for p in released.walk() if p.get_filename() == "setup.exe"]
        assert att.get_payload(decode=True) == EXE  # the original, as it came
        assert released["Message-ID"] == "<release-1@example.com>"
        lines = [json.loads(x) for x in (d.var / "audit.log").read_text().splitlines()]
        rel = [x for x in lines if x["event"] == "quarantine.release"]
        assert len(rel) == 1 and rel[0]["job_id"] == job_id
        assert (rel[0]["actor"], rel[0]["reason"]) == ("admin", "業務で必要（課長承認済み）")
        assert [x["event"] for x in lines].count("quarantine.delivered") == 1
    finally:
        d.stop()


def test_release_of_a_locked_out_ppap_file(tmp_path: Path) -> None:
    d = daemon(tmp_path / "d", attempts=1)
    d.start()
    try:
        port = http_port(d)
        zipped = encrypted_zip("zipcrypt", {"a.txt": b"x"})
        send(d, ppap_mail(zipped), ["staff@localhost"])
        wait_for(lambda: len(mailbox(d, "staff@localhost")) >= 2, 60, "link mail")
        m = re.search(r"#unlock/([^/\s]+)/([0-9a-f]+)", body_text(mailbox(d, "staff@localhost")[1]))
        assert m
        job_id, key = m.groups()
        assert api(port, "POST", f"/v1/unlock/{job_id}", {"key": key, "password": "no"})[1][
            "verdict"] == "blocked"
        wait_for(lambda: len(mailbox(d, "staff@localhost")) >= 3, 60, "failed mail")
        status, entry = admin_api(d.var, port, "POST", f"/v1/quarantine/{job_id}/release",
                                  {"reason": "差出人に確認済み"})
        assert status == 200, entry
        wait_for(lambda: len(mailbox(d, "staff@localhost")) >= 4, 60, "released file")
        released = mailbox(d, "staff@localhost")[3]
        assert "取り出し" in str(released["Subject"])
        (att,) = [p for p in released.walk() if p.get_filename()]
        assert att.get_filename() == "見積書.zip" and att.get_payload(decode=True) == zipped
        assert "admin" in body_text(released)
    finally:
        d.stop()

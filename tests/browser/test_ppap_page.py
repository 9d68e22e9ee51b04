"""The page a PPAP notice links to, with the real daemon (``sekisho serve``).

A mail with a password zip arrives over SMTP; the recipient's notice carries a link
to the web page (``/#unlock/<job id>/<key>``). Opened in chromium without any token,
the page asks for the password, refuses a wrong one (one attempt fewer), and after
the right one says the disarmed file was mailed — and it is in the Maildir, without
its script. The same link later says it was delivered; a link with a wrong key says
it cannot be used; the staff page is one button away. A password zip dropped into a
folder gets the same kind of link in its notice, and ends up in the outbox.
"""

from __future__ import annotations

import email
import io
import os
import re
import smtplib
import zipfile
from collections.abc import Callable, Iterator
from email import policy as email_policy
from email.message import EmailMessage, Message

import pytest
from playwright.sync_api import expect

from tests.browser.conftest import Watched
from tests.helpers.archivegen import PASSWORD, encrypted_zip
from tests.helpers.smtppeers import Daemon, wait_for

pytestmark = [pytest.mark.browser, pytest.mark.xdist_group("browser")]

HTML = (b"<html><body><p>\xe6\xa1\x88\xe5\x86\x85</p>"
        b"<script>alert(1)</script></body></html>")
RCPT = "staff@localhost"
OpenPage = Callable[[str], Watched]


@pytest.fixture(scope="module")
def sekisho(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Daemon]:
    work = tmp_path_factory.mktemp("ppap-page")
    d = Daemon(work, {
        "http": {"enabled": True, "listen": "127.0.0.1:0"},
        "jobs": {"max_password_attempts": 3},
        "folders": [{"name": "main", "inbox": str(work / "inbox"),
                     "outbox": str(work / "outbox"), "stable": "1s"}],
    })
    d.start()
    try:
        yield d
    finally:
        d.stop()


def mailbox(d: Daemon) -> list[Message]:
    box = d.var / "maildir" / RCPT / "new"
    if not box.is_dir():
        return []
    return [email.message_from_bytes(p.read_bytes(), policy=email_policy.default)
            for p in sorted(box.iterdir(), key=lambda p: p.stat().st_mtime)]


def text_of(msg: Message) -> str:
    return "\n".join(part.get_content() for part in msg.walk()  # type: ignore[attr-defined]
                     if part.get_content_type() == "text/plain")


def ppap_link(d: Daemon) -> str:
    msg = EmailMessage()
    msg["From"] = "Sender <sender@example.com>"
    msg["To"] = RCPT
    msg["Subject"] = "見積書の送付"
    msg["Message-ID"] = "<ppap-page@example.com>"
    msg.set_content("見積書を送付します。パスワードは別メールでお送りします。")
    msg.add_attachment(encrypted_zip("zipcrypt", {"見積書.html": HTML}),
                       maintype="application", subtype="zip", filename="見積書.zip")
    with smtplib.SMTP("127.0.0.1", d.port, timeout=30) as s:
        s.sendmail("sender@example.com", [RCPT], msg.as_bytes(policy=email_policy.SMTP))
    wait_for(lambda: len(mailbox(d)) >= 2, 60, "the mail and the link")
    m = re.search(r"(http://127\.0\.0\.1:\d+/#unlock/[^/\s]+/[0-9a-f]+)", text_of(mailbox(d)[1]))
    assert m, text_of(mailbox(d)[1])
    return m.group(1)


@pytest.fixture(scope="module")
def link(sekisho: Daemon) -> str:
    return ppap_link(sekisho)


def test_recipient_enters_the_password_from_the_link(open_page: OpenPage, sekisho: Daemon,
                                                     link: str) -> None:
    w = open_page("ja")
    page = w.page
    page.goto(link)
    expect(page.locator("#unlock-status")).to_have_text(
        "メールに添付されていた「見積書.zip」はパスワードで保護されています。"
        "差出人から届いたパスワードを入力してください。")
    assert page.locator("#signin").is_hidden() and page.locator("#workspace").is_hidden()
    assert page.locator("#unlock-left").inner_text() == "あと3回入力できます。"
    field = page.get_by_label("パスワード", exact=True)
    # a wrong password: said so, one attempt fewer, the field empty and focused
    field.fill("まちがい")
    page.locator("#unlock-submit").click()
    expect(page.locator("#unlock-error")).to_have_text("パスワードが正しくありません。")
    expect(page.locator("#unlock-left")).to_have_text("あと2回入力できます。")
    expect(field).to_be_focused()
    assert field.input_value() == ""
    # the right one: disarmed and mailed
    field.fill(PASSWORD)
    field.press("Enter")
    expect(page.locator("#unlock-status")).to_have_text(
        "「見積書.zip」を無害化して、メールでお届けしました。受信箱をご確認ください。",
        timeout=60_000)
    assert page.locator("#unlock-form").is_hidden()
    wait_for(lambda: len(mailbox(sekisho)) >= 3, 60, "the disarmed file by mail")
    (att,) = [p for p in mailbox(sekisho)[2].walk() if p.get_filename()]
    assert att.get_filename() == "見積書.zip"
    with zipfile.ZipFile(io.BytesIO(att.get_payload(decode=True))) as zf:
        assert b"<script" not in zf.read("見積書.html")
    assert PASSWORD not in sekisho.log_path.read_text("utf-8")
    assert w.problems() == []


def test_link_in_english_after_delivery_and_a_bad_key(open_page: OpenPage, link: str) -> None:
    # independent of the order tests run in: open the file first if it is still held
    import json
    import urllib.error
    import urllib.request

    base, _, frag = link.partition("/#unlock/")
    job_id, key = frag.split("/")
    req = urllib.request.Request(f"{base}/v1/unlock/{job_id}", method="POST",
                                 data=json.dumps({"key": key, "password": PASSWORD}).encode(),
                                 headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=60) as resp:
            assert json.load(resp)["state"] == "delivered"
    except urllib.error.HTTPError as exc:
        assert exc.code == 409  # the other test opened it already
    w = open_page("en")
    page = w.page
    page.goto(link)
    expect(page.locator("#unlock-status")).to_have_text(
        "“見積書.zip” was disarmed and sent to you by mail. Please check your inbox.")
    assert page.locator("#unlock-form").is_hidden()
    assert page.locator("#unlock-h").inner_text() == "Open a password-protected file"
    # the same job with a key that is not its own
    bad = link[:-4] + ("0000" if not link.endswith("0000") else "1111")
    invalid = "This link cannot be used: it is not correct, or its retention time has passed."
    page.goto(bad)  # only the fragment changes: the page follows it (hashchange)
    expect(page.locator("#unlock-status")).to_have_text(invalid)
    page.reload()
    expect(page.locator("#unlock-status")).to_have_text(invalid)
    assert page.locator("#unlock-status").get_attribute("class") == "message error"
    # staff go on to sign in
    page.locator("#unlock-leave").click()
    page.locator("#signin").wait_for(state="visible")
    assert page.locator("#unlock").is_hidden()
    assert "#unlock" not in page.url
    assert w.problems((404,)) == []


def test_folder_notice_link_puts_the_file_into_the_outbox(open_page: OpenPage,
                                                          sekisho: Daemon) -> None:
    inbox, outbox = sekisho.workdir / "inbox", sekisho.workdir / "outbox"
    part = inbox / "請求書.zip.part"
    part.write_bytes(encrypted_zip("aes256", {"請求書.html": HTML}))
    os.rename(part, inbox / "請求書.zip")
    notice = outbox / "請求書.zip.blocked.txt"
    wait_for(notice.exists, 60, "the notice in the outbox")
    m = re.search(r"(http://127\.0\.0\.1:\d+/#unlock/[^/\s]+/[0-9a-f]+)",
                  notice.read_text("utf-8-sig"))
    assert m, notice.read_text("utf-8-sig")

    w = open_page("en")
    page = w.page
    page.goto(m.group(1))
    expect(page.locator("#unlock-status")).to_have_text(
        "“請求書.zip”, dropped into a folder, is protected with a password. "
        "Enter the password.")
    assert page.locator("#unlock-where").inner_text() == (
        "The disarmed file is put into the output folder, not on this page.")
    page.get_by_label("Password", exact=True).fill(PASSWORD)
    page.locator("#unlock-submit").click()
    expect(page.locator("#unlock-status")).to_have_text(
        "“請求書.zip” was disarmed and put into the output folder.", timeout=60_000)
    result = outbox / "請求書.zip"
    wait_for(result.exists, 60, "the disarmed zip in the outbox")
    with zipfile.ZipFile(result) as zf:
        assert b"<script" not in zf.read("請求書.html")
    assert w.problems() == []

"""The web page's flows in Japanese and in English, in Debian's chromium.

Staff sign in, choose or drop a file, watch it go through, read the summary the API
wrote, open the details and download the disarmed file (checked byte for byte); a
blocked file says why and offers no download; a wrong token is refused. Admins list
the quarantine, read an entry's report, release one original and delete another,
each with a reason and a confirm step; the API and the audit log then say who did it
and why, and the staff member can download the released original. Every page must
finish without console errors, page errors or CSP violations.
"""

from __future__ import annotations

import base64
import io
import re
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import expect

from gateway.kinds import KINDS
from tests.browser.conftest import MAX_UPLOAD, TOKENS, Daemon, Watched
from tests.helpers.ooxmlgen import docm

pytestmark = [pytest.mark.browser, pytest.mark.xdist_group("browser")]

HTML = (b"<html><body><p>\xe3\x81\x8a\xe7\x9f\xa5\xe3\x82\x89\xe3\x81\x9b</p>"
        b"<script>alert(1)</script></body></html>")
EXE = b"MZ" + b"\x90" * 58 + b"\x80\x00\x00\x00" + b"\x00" * 64 + b"PE\x00\x00" + b"\x00" * 200
CJK = re.compile(r"[\u3040-\u30ff\u3400-\u9fff\uff00-\uffef]")

#: what the page must say, written out here so a wrong translation fails
TEXT: dict[str, dict[str, str]] = {
    "ja": {
        "signin": "サインイン", "empty": "アクセストークンを入力してください。",
        "invalid": "アクセストークンが正しくありません。もう一度入力してください。",
        "staff": "職員としてサインイン中", "admin": "管理者としてサインイン中",
        "signedout": "サインアウトしました。", "submit": "ファイルを無害化する",
        "toggle": "English", "queued": "受付済み（順番待ち）", "done": "完了",
        "uploading": "アップロード中", "disarmed": "無害化済み", "blocked": "ブロック",
        "released": "取り出し済み", "nodownload": "このファイルはお渡しできません。",
        "details": "詳しい内容（取り除いた要素）", "download": "ダウンロード（{name}）",
        "announce_done": "「{name}」の処理が終わりました: {verdict}",
        "blocked_line": "このファイルは安全にできないためブロックしました。",
        "macro_line": "マクロを1件削除しました", "script_line": "スクリプトを1件削除しました",
        "quarantine": "隔離ファイル（管理）", "q_heading": "隔離ファイル",
        "origin_http": "ウェブ・API", "held": "隔離中", "deleted": "削除済み",
        "reason_empty": "理由を入力してください。",
        "release_confirm": "「{name}」の原本を取り出します。よろしいですか？",
        "release_done": "「{name}」の原本を取り出しました。",
        "delete_confirm": "「{name}」を隔離から削除します。元に戻せません。よろしいですか？",
        "delete_done": "「{name}」を削除しました。",
        "release_reason": "取引先に電話で確認済みのインストーラー",
        "delete_reason": "重複して届いたため",
        "unknown_policy": "ポリシー「no-such-policy」は使用できません。",
        "expired": "サインインが無効になりました。もう一度サインインしてください。",
        "job_held": "パスワードの入力待ち", "left": "あと{n}回入力できます。",
        "password_of": "「{name}」のパスワード", "pw_empty": "パスワードを入力してください。",
        "pw_wrong": "パスワードが正しくありません。",
    },
    "en": {
        "signin": "Sign in", "empty": "Enter your access token.",
        "invalid": "That access token is not valid. Please enter it again.",
        "staff": "Signed in as staff", "admin": "Signed in as administrator",
        "signedout": "You have signed out.", "submit": "Make a file safe",
        "toggle": "日本語", "queued": "Received (waiting)", "done": "Done",
        "uploading": "Uploading", "disarmed": "Disarmed", "blocked": "Blocked",
        "released": "Released", "nodownload": "This file cannot be handed out.",
        "details": "Details (what was taken out)", "download": "Download ({name})",
        "announce_done": "“{name}” is finished: {verdict}",
        "blocked_line": "This file was blocked because it could not be made safe.",
        "macro_line": "Removed 1 macro", "script_line": "Removed 1 script",
        "quarantine": "Quarantine (admin)", "q_heading": "Quarantine",
        "origin_http": "Web / API", "held": "Held", "deleted": "Deleted",
        "reason_empty": "Enter a reason.",
        "release_confirm": "Release the original of “{name}”?",
        "release_done": "The original of “{name}” was released.",
        "delete_confirm": "Delete “{name}” from quarantine? This cannot be undone.",
        "delete_done": "“{name}” was deleted.",
        "release_reason": "vendor installer, confirmed by phone",
        "delete_reason": "arrived twice",
        "unknown_policy": "Policy 'no-such-policy' is not available.",
        "expired": "Your sign-in is no longer valid. Please sign in again.",
        "job_held": "Waiting for the password", "left": "Attempts left: {n}.",
        "password_of": "Password of “{name}”", "pw_empty": "Enter the password.",
        "pw_wrong": "The password is not correct.",
    },
}
LANGS = pytest.mark.parametrize("lang", ["ja", "en"])
OpenPage = Callable[[str], Watched]


# ---------------------------------------------------------------------------- helpers

def goto(w: Watched, daemon: Daemon) -> None:
    resp = w.page.goto(daemon.base + "/")
    assert resp is not None and resp.status == 200
    assert "default-src 'self'" in resp.headers["content-security-policy"]
    expect(w.page.locator("body")).to_have_attribute("data-ready", "true")
    expect(w.page.locator("html")).to_have_attribute("lang", w.lang)


def sign_in(w: Watched, who: str) -> None:
    page = w.page
    page.locator("#token").fill(TOKENS[who])
    page.locator("#token").press("Enter")
    page.locator("#workspace").wait_for(state="visible")
    assert page.locator("#who").inner_text() == TEXT[w.lang]["admin" if who == "admin" else
                                                           "staff"]
    assert TOKENS[who] not in page.url


def job_item(w: Watched, name: str) -> Any:
    return w.page.locator("#jobs li.job").filter(
        has=w.page.locator(".job-name", has_text=name))


def wait_done(w: Watched, name: str) -> Any:
    item = job_item(w, name)
    try:
        item.locator(".job-verdict").wait_for(state="visible", timeout=60_000)
    except Exception as exc:  # say what the page said, not only that it timed out
        raise AssertionError(f"{name} did not finish: {w.problems()} {w.states()}") from exc
    assert item.locator(".job-state").inner_text() == TEXT[w.lang]["done"]
    return item


def job_id_of(item: Any) -> str:
    text = item.locator(".job-id").text_content() or ""
    return text.split(":", 1)[1].strip()


def drop_file(w: Watched, name: str, data: bytes, mime: str) -> None:
    """A real drop event on the drop zone, carrying a File in a DataTransfer."""
    handle = w.page.evaluate_handle(
        """([name, b64, mime]) => {
             const bytes = Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
             const dt = new DataTransfer();
             dt.items.add(new File([bytes], name, { type: mime }));
             return dt;
           }""", [name, base64.b64encode(data).decode(), mime])
    w.page.dispatch_event("#dropzone", "dragenter", {"dataTransfer": handle})
    assert "over" in (w.page.locator("#dropzone").get_attribute("class") or "")
    w.page.dispatch_event("#dropzone", "drop", {"dataTransfer": handle})


def choose_file(w: Watched, tmp: Path, name: str, data: bytes) -> None:
    path = tmp / name
    path.write_bytes(data)
    w.page.locator("#file").set_input_files(str(path))


def summary_of(item: Any) -> list[str]:
    return [t.strip() for t in item.locator(".job-summary li").all_inner_texts()]


def visible_cjk(w: Watched, *allowed: str) -> list[str]:
    """Japanese text on screen in the English page, except ``allowed`` (file names,
    the language button)."""
    text = w.page.locator("body").inner_text()
    for a in allowed:
        text = text.replace(a, "")
    return [line for line in text.splitlines() if CJK.search(line)]


def problems_none(w: Watched, *allowed_statuses: int) -> None:
    assert w.problems(allowed_statuses) == []


# ---------------------------------------------------------------------------- staff


@LANGS
def test_sign_in_language_and_sign_out(open_page: OpenPage, daemon: Daemon, lang: str) -> None:
    w = open_page(lang)
    page, text = w.page, TEXT[lang]
    goto(w, daemon)
    # the language follows the browser, the token field has the focus
    assert page.locator("#signin-h").inner_text() == text["signin"]
    expect(page.locator("#token")).to_be_focused()
    assert page.locator("#lang-toggle").inner_text() == text["toggle"]
    # nothing typed
    page.locator("#signin-submit").click()
    assert page.locator("#signin-msg").inner_text() == text["empty"]
    # a wrong token
    page.locator("#token").fill("not-a-token")
    page.locator("#signin-submit").click()
    page.locator("#signin-msg", has_text=text["invalid"]).wait_for()
    assert page.locator("#token").get_attribute("aria-invalid") == "true"
    assert page.locator("#workspace").is_hidden()
    assert page.evaluate("sessionStorage.getItem('sekisho.token')") is None
    # staff: signed in, no admin tab, token only in sessionStorage
    sign_in(w, "alice")
    expect(page.locator("#submit-h")).to_be_focused()
    page.keyboard.press("Tab")  # the file chooser is next, for keyboard users
    expect(page.locator("#file")).to_be_focused()
    assert page.locator("#tab-quarantine").is_hidden()
    assert page.locator("#panel-quarantine").is_hidden()
    assert page.evaluate("sessionStorage.getItem('sekisho.token')") == TOKENS["alice"]
    assert TOKENS["alice"] not in page.evaluate("JSON.stringify(localStorage)")
    # switch language: remembered across a reload, still signed in (same tab)
    other = "en" if lang == "ja" else "ja"
    page.locator("#lang-toggle").click()
    expect(page.locator("html")).to_have_attribute("lang", other)
    assert page.locator("#submit-h").inner_text() == TEXT[other]["submit"]
    assert page.locator("#who").inner_text() == TEXT[other]["staff"]
    page.reload()
    page.locator("#workspace").wait_for(state="visible")
    assert page.evaluate("document.documentElement.lang") == other
    assert page.evaluate("localStorage.getItem('sekisho.lang')") == other
    assert page.locator("#submit-h").inner_text() == TEXT[other]["submit"]
    page.locator("#lang-toggle").click()
    expect(page.locator("html")).to_have_attribute("lang", lang)
    # sign out: the token is forgotten
    page.locator("#signout").click()
    page.locator("#signin").wait_for(state="visible")
    assert page.locator("#signin-msg").inner_text() == text["signedout"]
    assert page.evaluate("sessionStorage.getItem('sekisho.token')") is None
    expect(page.locator("#token")).to_be_focused()
    if lang == "en":
        assert visible_cjk(w, "日本語") == []
    # 401: the wrong token; 403: the role probe of a staff token
    problems_none(w, 401, 403)


@LANGS
def test_disarm_progress_summary_and_download(open_page: OpenPage, daemon: Daemon, lang: str,
                                              tmp_path: Path) -> None:
    w = open_page(lang)
    page, text = w.page, TEXT[lang]
    goto(w, daemon)
    sign_in(w, "alice")
    if lang == "ja":  # a Word file with a macro, chosen with the file picker
        name, data = "見積書（マクロ付き）.docm", docm()
        choose_file(w, tmp_path, name, data)
        literal = text["macro_line"]
    else:  # an HTML page with a script, dropped on the drop zone
        name, data = "お知らせ.html", HTML
        drop_file(w, name, data, "text/html")
        literal = text["script_line"]
    item = wait_done(w, name)
    job_id = job_id_of(item)
    job = daemon.job(job_id)
    assert job["verdict"] == "disarmed" and job["name"] == name

    # progress: uploading, received, ..., done — shown in order
    states = w.states()
    assert states[0].startswith(text["uploading"]), states
    assert text["queued"] in states, states
    assert states[-1] == text["done"], states
    assert item.locator("progress").get_attribute("aria-label")
    assert item.locator("progress").evaluate("p => p.value") == 100
    verdict = text["disarmed"]
    assert item.locator(".job-verdict").inner_text() == verdict
    expect(page.locator("#announce")).to_have_text(
        text["announce_done"].format(name=name, verdict=verdict))

    # the summary is the API's, in the page's language
    assert summary_of(item) == job["summary"][lang]
    assert literal in summary_of(item)

    # details: every finding with its kind label and location
    details = item.locator("details.job-details")
    assert details.locator("summary").inner_text() == text["details"]
    details.locator("summary").click()
    rows = details.locator("tbody tr")
    findings = [f for it in job["report"]["items"] for f in it["findings"]]
    assert rows.count() == len(findings) > 0
    for i, f in enumerate(findings):
        cells = rows.nth(i).locator("td").all_inner_texts()
        assert cells[0] == getattr(KINDS[f["kind"]], lang)
        assert cells[2] == f["location"]

    # download: the server's file name, the disarmed bytes
    out_name = job["output_name"]
    button = item.locator(".job-download")
    assert button.inner_text() == text["download"].format(name=out_name)
    with page.expect_download() as info:
        button.click()
    download = info.value
    assert download.suggested_filename == out_name
    got = Path(download.path()).read_bytes()
    assert got == daemon.result_bytes(job_id)
    if lang == "ja":
        assert out_name == "見積書（マクロ付き）.docx"
        names = zipfile.ZipFile(io.BytesIO(got)).namelist()
        assert "word/document.xml" in names
        assert not any("vbaProject" in n for n in names)
        assert b"vbaProject" not in got
    else:
        assert out_name == name
        assert b"<script" not in got.lower() and "お知らせ".encode() in got
        assert visible_cjk(w, name, "日本語") == []
    expect(button).to_be_focused()
    problems_none(w, 403)


@LANGS
def test_blocked_file_says_why_and_offers_no_download(open_page: OpenPage, daemon: Daemon,
                                                      lang: str, tmp_path: Path) -> None:
    w = open_page(lang)
    page, text = w.page, TEXT[lang]
    goto(w, daemon)
    sign_in(w, "alice")
    name = f"setup-{lang}.exe"
    choose_file(w, tmp_path, name, EXE)
    item = wait_done(w, name)
    job = daemon.job(job_id_of(item))
    assert job["verdict"] == "blocked"
    assert item.locator(".job-verdict").inner_text() == text["blocked"]
    lines = summary_of(item)
    assert lines == job["summary"][lang]
    assert lines[0] == text["blocked_line"]
    assert job["reason"] in lines[1]
    # no download: the button is not there, the page says so
    assert item.locator(".job-download").is_hidden()
    assert item.locator(".job-nodownload").inner_text() == text["nodownload"]
    # the details name the blocking kind in the page's language
    item.locator("details.job-details summary").click()
    kinds = [f["kind"] for it in job["report"]["items"] for f in it["findings"]]
    assert kinds
    labels = item.locator("details.job-details tbody tr td:first-child").all_inner_texts()
    assert labels[: len(kinds)] == [getattr(KINDS[k], lang) for k in kinds]
    # removing it from the list keeps the focus on the page
    item.locator(".job-remove").click()
    assert job_item(w, name).count() == 0
    expect(page.locator("#file")).to_be_focused()
    problems_none(w, 403)


@LANGS
def test_password_protected_zip_is_held_until_unlocked(open_page: OpenPage, daemon: Daemon,
                                                       lang: str, tmp_path: Path) -> None:
    from tests.helpers.archivegen import PASSWORD, encrypted_zip

    w = open_page(lang)
    page, text = w.page, TEXT[lang]
    goto(w, daemon)
    sign_in(w, "alice")
    name = f"見積書-{lang}.zip"
    choose_file(w, tmp_path, name, encrypted_zip("aes256", {"見積書.html": HTML}))
    item = job_item(w, name)
    form = item.locator("form.job-unlock")
    form.wait_for(state="visible", timeout=60_000)
    assert item.locator(".job-state").inner_text() == text["job_held"]
    job_id = job_id_of(item)
    left = daemon.job(job_id)["password_attempts_left"]
    assert item.locator(".job-unlock-left").inner_text() == text["left"].format(n=left)
    assert item.locator(".job-download").is_hidden()
    field = item.get_by_label(text["password_of"].format(name=name))
    # nothing typed, then a wrong password: still held, one attempt fewer
    item.locator(".job-unlock-submit").click()
    assert item.locator(".job-unlock-error").inner_text() == text["pw_empty"]
    field.fill("wrong password")
    item.locator(".job-unlock-submit").click()
    expect(item.locator(".job-unlock-error")).to_have_text(text["pw_wrong"])
    expect(item.locator(".job-unlock-left")).to_have_text(text["left"].format(n=left - 1))
    assert field.input_value() == ""
    expect(field).to_be_focused()
    # the right one: disarmed and downloadable
    field.fill(PASSWORD)
    field.press("Enter")
    item.locator(".job-verdict").wait_for(state="visible", timeout=60_000)
    job = daemon.job(job_id)
    assert job["verdict"] == "disarmed"
    assert form.is_hidden()
    assert summary_of(item) == job["summary"][lang]
    with page.expect_download() as info:
        item.locator(".job-download").click()
    got = Path(info.value.path()).read_bytes()
    assert info.value.suggested_filename == job["output_name"]
    assert got == daemon.result_bytes(job_id)
    member = zipfile.ZipFile(io.BytesIO(got)).read("見積書.html")
    assert b"<script" not in member and "お知らせ".encode() in member
    # the password went to the server once per attempt, never into storage
    assert PASSWORD not in page.evaluate("JSON.stringify(sessionStorage) + "
                                         "JSON.stringify(localStorage)")
    problems_none(w, 403)


def test_too_large_file_is_refused_in_words(open_page: OpenPage, daemon: Daemon) -> None:
    w = open_page("ja")
    goto(w, daemon)
    sign_in(w, "alice")
    w.page.locator("#file").set_input_files(files=[{
        "name": "大きな資料.pdf", "mimeType": "application/pdf",
        "buffer": b"%PDF-1.7\n" + b"0" * (MAX_UPLOAD + 1024)}])
    item = job_item(w, "大きな資料.pdf")
    error = item.locator(".job-error")
    error.wait_for(state="visible", timeout=30_000)
    # the page's own words first, then the server's Japanese message with the limit
    assert error.inner_text().startswith("ファイルが大きすぎます。")
    assert str(MAX_UPLOAD) in error.inner_text()
    assert item.locator(".job-download").is_hidden()
    assert item.locator("progress").is_hidden()
    expect(w.page.locator("#announce")).to_contain_text("「大きな資料.pdf」を送れませんでした")
    problems_none(w, 403, 413)


def test_revoked_token_returns_to_sign_in(open_page: OpenPage, daemon: Daemon) -> None:
    """A 401 while signed in (the token was revoked, or sessionStorage was tampered
    with) sends the user back to sign-in with a message."""
    w = open_page("ja")
    page = w.page
    goto(w, daemon)
    sign_in(w, "alice")
    page.evaluate("sessionStorage.setItem('sekisho.token', 'revoked-token')")
    page.locator("#file").set_input_files(files=[{
        "name": "a.txt", "mimeType": "text/plain", "buffer": b"hello\n"}])
    page.locator("#signin").wait_for(state="visible")
    assert page.locator("#signin-msg").inner_text() == TEXT["ja"]["expired"]
    expect(page.locator("#token")).to_be_focused()
    assert page.evaluate("sessionStorage.getItem('sekisho.token')") is None
    problems_none(w, 401, 403)


# ---------------------------------------------------------------------------- admin


def open_quarantine_by_keyboard(w: Watched) -> None:
    page = w.page
    page.locator("#tab-submit").focus()
    page.keyboard.press("ArrowRight")
    expect(page.locator("#tab-quarantine")).to_be_focused()
    assert page.locator("#tab-quarantine").get_attribute("aria-selected") == "true"
    page.locator("#panel-quarantine").wait_for(state="visible")
    assert page.locator("#q-h").inner_text() == TEXT[w.lang]["q_heading"]


def quarantine_row(w: Watched, job_id: str) -> Any:
    row = w.page.locator(f'#q-rows tr[data-job="{job_id}"]')
    row.wait_for()
    return row


def confirm_dialog(w: Watched, expected: str, reason: str, *, accept: bool) -> None:
    dialog = w.page.locator("#confirm")
    dialog.wait_for(state="visible")
    assert w.page.locator("#confirm-msg").inner_text() == expected
    assert reason in w.page.locator("#confirm-reason").inner_text()
    # the safe choice has the focus
    expect(w.page.locator("#confirm-no")).to_be_focused()
    w.page.locator("#confirm-yes" if accept else "#confirm-no").click()
    dialog.wait_for(state="hidden")


@LANGS
def test_admin_reviews_releases_and_deletes(open_page: OpenPage, daemon: Daemon, lang: str,
                                            tmp_path: Path) -> None:
    text = TEXT[lang]
    # staff submit an installer through the page: blocked, quarantined
    staff = open_page(lang)
    goto(staff, daemon)
    sign_in(staff, "alice")
    blocked_name = f"installer-{lang}.exe"
    choose_file(staff, tmp_path, blocked_name, EXE)
    item = wait_done(staff, blocked_name)
    blocked_id = job_id_of(item)
    assert item.locator(".job-download").is_hidden()
    # a second file, straight through the API: to be deleted
    other = daemon.submit(HTML, f"duplicate-{lang}.html")
    other_name = other["name"]

    admin = open_page(lang)
    page = admin.page
    goto(admin, daemon)
    sign_in(admin, "admin")
    assert page.locator("#tab-quarantine").inner_text() == text["quarantine"]
    open_quarantine_by_keyboard(admin)

    # the list: the blocked job, with its origin, verdict and state in words
    row = quarantine_row(admin, blocked_id)
    cells = row.locator("td").all_inner_texts()
    assert cells[1] == blocked_name
    assert cells[2] == text["origin_http"]
    assert cells[3] == text["blocked"]
    assert cells[5] == text["held"]
    page.locator("#q-state").select_option("held")
    expect(page.locator("#q-count")).not_to_have_text("")
    quarantine_row(admin, blocked_id)
    page.locator("#q-state").select_option("")
    row = quarantine_row(admin, blocked_id)

    # its report
    row.locator("button").click()
    heading = page.locator("#q-detail-h")
    heading.wait_for(state="visible")
    expect(page.locator("#q-summary li").first).to_be_visible()
    entry = daemon.entry(blocked_id)
    assert [t.strip() for t in page.locator("#q-summary li").all_inner_texts()] == \
        entry["summary"][lang]
    assert blocked_name in (heading.inner_text())
    expect(page.locator("#q-detail-h")).to_be_focused()
    assert blocked_id in page.locator("#q-meta").inner_text()

    # release: a reason is required, the confirm step can be cancelled
    page.locator("#release-form button[type=submit]").click()
    assert page.locator("#release-error").inner_text() == text["reason_empty"]
    expect(page.locator("#release-reason")).to_be_focused()
    page.locator("#release-reason").fill(text["release_reason"])
    page.locator("#release-form button[type=submit]").click()
    confirm_dialog(admin, text["release_confirm"].format(name=blocked_name),
                   text["release_reason"], accept=False)
    # "no" puts the focus back in the reason field once the dialog's close event is
    # handled: typing before that lands there (the policy below ended up in the reason)
    expect(page.locator("#release-reason")).to_be_focused()
    assert daemon.entry(blocked_id)["state"] == "held"
    # a policy the server does not know: its message, in the page's language, and the
    # policies it does know
    page.locator("#release-policy").fill("no-such-policy")
    page.locator("#release-form button[type=submit]").click()
    confirm_dialog(admin, text["release_confirm"].format(name=blocked_name),
                   text["release_reason"], accept=True)
    error = page.locator("#release-error")
    error.wait_for(state="visible")
    assert text["unknown_policy"] in error.inner_text()
    assert re.search(r"\bdefault\b", error.inner_text())
    assert daemon.entry(blocked_id)["state"] == "held"
    page.locator("#release-policy").fill("")
    page.locator("#release-form button[type=submit]").click()
    confirm_dialog(admin, text["release_confirm"].format(name=blocked_name),
                   text["release_reason"], accept=True)
    page.locator("#q-detail-msg",
                 has_text=text["release_done"].format(name=blocked_name)).wait_for()
    entry = daemon.entry(blocked_id)
    assert entry["state"] == "released"
    last = entry["history"][-1]
    assert (last["action"], last["actor"], last["reason"]) == \
        ("release", "admin", text["release_reason"])
    audit = [a for a in daemon.audit() if a.get("job_id") == blocked_id]
    assert any(a["event"] == "quarantine.release" and a["actor"] == "admin"
               and a["reason"] == text["release_reason"] for a in audit), audit
    assert text["release_reason"] in page.locator("#q-meta").inner_text()

    # back to the list: the focus returns to the row's button
    page.locator("#q-back").click()
    expect(page.locator(f'#q-rows button[data-job="{blocked_id}"]')).to_be_focused()

    # delete the other entry
    quarantine_row(admin, other["job_id"]).locator("button").click()
    expect(page.locator("#q-summary li").first).to_be_visible()
    page.locator("#delete-reason").fill(text["delete_reason"])
    page.locator("#delete-form button[type=submit]").click()
    confirm_dialog(admin, text["delete_confirm"].format(name=other_name),
                   text["delete_reason"], accept=True)
    page.locator("#q-detail-msg",
                 has_text=text["delete_done"].format(name=other_name)).wait_for()
    entry = daemon.entry(other["job_id"])
    assert entry["state"] == "deleted"
    assert entry["history"][-1]["actor"] == "admin"
    assert any(a["event"] == "quarantine.delete" and a["actor"] == "admin"
               and a["reason"] == text["delete_reason"] and a["job_id"] == other["job_id"]
               for a in daemon.audit())
    assert page.locator("#release-form").is_hidden()
    assert page.locator("#delete-form").is_hidden()
    assert text["deleted"] in page.locator("#q-detail-status").inner_text()
    if lang == "en":
        assert visible_cjk(admin, "日本語", text["release_reason"]) == []
    problems_none(admin, 400)  # the unknown policy

    # the staff member gets the released original
    staff.page.reload()
    item = job_item(staff, blocked_name)
    item.locator(".job-verdict", has_text=text["released"]).wait_for()
    with staff.page.expect_download() as info:
        item.locator(".job-download").click()
    assert info.value.suggested_filename == blocked_name
    assert Path(info.value.path()).read_bytes() == EXE
    problems_none(staff, 403)


# ---------------------------------------------------------------------------- the texts


def test_every_text_exists_in_both_languages(open_page: OpenPage, daemon: Daemon) -> None:
    w = open_page("ja")
    goto(w, daemon)
    keys = w.page.evaluate(
        """async () => {
             const m = await import("/static/i18n.js");
             return { ja: Object.keys(m.MESSAGES.ja), en: Object.keys(m.MESSAGES.en) };
           }""")
    assert keys["ja"] == keys["en"]
    known = set(keys["ja"])
    web = Path(__file__).resolve().parents[2] / "gateway" / "web"
    used: set[str] = set()
    html = (web / "index.html").read_text("utf-8")
    used |= set(re.findall(r'data-i18n="([^"]+)"', html))
    for attr in re.findall(r'data-i18n-attr="([^"]+)"', html):
        used |= {pair.split(":")[1] for pair in attr.split(";")}
    for js in web.glob("*.js"):
        if js.name == "i18n.js":  # its comments show how t() is called
            continue
        used |= set(re.findall(r'\bt\("([a-z_.]+)"', js.read_text("utf-8")))
    assert used - known == set()
    # values the server sends, shown through label(prefix, value)
    for key in ("verdict.clean", "verdict.disarmed", "verdict.blocked", "verdict.failed",
                "verdict.released", "qstate.held", "qstate.released", "qstate.deleted",
                "origin.http", "origin.folder", "origin.smtp", "origin.ppap", "action.removed",
                "action.neutralized", "action.disarmed", "action.kept", "action.reported",
                "action.repaired", "action.blocked", "action.failed", "severity.high",
                "severity.medium", "severity.low", "severity.info", "hist.release",
                "hist.delete", "hist.purge", "hist.export", "dest.sender", "dest.recipients",
                "dest.folder", "dest.file", "dest.token"):
        assert key in known, key
    problems_none(w)

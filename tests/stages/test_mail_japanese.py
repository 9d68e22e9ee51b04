"""Japanese mail survives the rebuild without mojibake; attachment names are cleaned."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.helpers import mailgen as g
from tests.stages.test_mail import attachments, bodies, keys, parsed, run

TEXT = "髙橋様　①㈱の件、～3月15日までにご確認ください。ｶﾀｶﾅもあります。"
SUBJECT = "【至急】①㈱ 髙島屋～見積書"
#: EUC-JP (JIS X 0208) has no ①, ㈱ or 髙, and its wave dash is read the way browsers do
#: (as the full-width tilde): the EUC-JP case uses text without them
EUC_SAFE = str.maketrans({"髙": "高", "①": "1", "㈱": "株", "～": "-"})


@pytest.mark.parametrize(("charset", "encode"), [
    ("iso-2022-jp", g.iso2022jp),
    ("shift_jis", lambda t: t.encode("cp932")),
    ("euc-jp", lambda t: t.translate(EUC_SAFE).encode("euc_jp")),
    ("utf-8", lambda t: t.encode("utf-8")),
])
def test_body_and_subject_keep_japanese(tmp_path: Path, charset: str, encode) -> None:
    text, subj = (TEXT, SUBJECT) if charset != "euc-jp" else (
        TEXT.translate(EUC_SAFE).replace("ｶﾀｶﾅ", "カタカナ"), SUBJECT.translate(EUC_SAFE))
    body = encode(text.replace("ｶﾀｶﾅ", "カタカナ") if charset == "euc-jp" else text)
    subject_raw = encode(subj)
    subject = f"=?{charset}?B?{__import__('base64').b64encode(subject_raw).decode()}?="
    entity = g.entity(f"text/plain; charset={charset}", g.b64(body), cte="base64")
    report, out = run(tmp_path, g.message(entity, subject=subject))
    assert report.verdict.delivered
    msg = parsed(out)
    assert bodies(msg, "text/plain")[0].rstrip() == text
    assert str(msg["Subject"]) == subj


def test_seven_bit_iso_2022_jp_body_without_transfer_encoding(tmp_path: Path) -> None:
    entity = g.entity("text/plain; charset=ISO-2022-JP", g.iso2022jp(TEXT) + b"\r\n",
                      cte="7bit")
    _report, out = run(tmp_path, g.message(entity, subject=g.encoded_word(SUBJECT)))
    msg = parsed(out)
    assert bodies(msg, "text/plain")[0].rstrip() == TEXT


@pytest.mark.parametrize(("param", "shown"), [
    (b'filename="=?UTF-8?B?' + __import__("base64").b64encode("見積書.html".encode())
     + b'?="', "見積書.html"),
    (b"filename*=UTF-8''%E8%A6%8B%E7%A9%8D%E6%9B%B8.html", "見積書.html"),
    (b"filename*=ISO-2022-JP''" + __import__("urllib.parse").parse.quote_from_bytes(
        g.iso2022jp("見積書.html")).encode(), "見積書.html"),
])
def test_encoded_attachment_names_are_decoded(tmp_path: Path, param: bytes, shown: str) -> None:
    data = g.message(g.multipart("mixed", g.text("添付します"),
                                 g.attachment("x", b"<html><body><p>hello</p></body></html>",
                                              "text/html", param=param)))
    _report, out = run(tmp_path, data)
    msg = parsed(out)
    assert shown in attachments(msg)


def test_rtlo_and_double_extension_names(tmp_path: Path) -> None:
    rtlo = "請求書\u202efdp.exe"
    data = g.message(g.multipart("mixed", g.text("ご確認ください"),
                                 g.attachment(rtlo.encode(), g.EXE),
                                 g.attachment("report.pdf.exe", b"plain words only\r\n")))
    report, out = run(tmp_path, data)
    msg = parsed(out)
    names = attachments(msg)
    assert all("\u202e" not in n for n in names)
    assert not any(n.endswith(".exe") for n in names)
    cleaned = {loc for kind, loc in keys(report) if kind == "mail.name_cleaned"}
    assert cleaned, keys(report)


@pytest.mark.parametrize(("label", "text", "codec"), [
    ("gb2312", "我把朱镕基的信带来了。", "gbk"),          # 镕: GBK, not in GB 2312
    ("euc-kr", "회의는 똠방각하 내일입니다.", "cp949"),    # 똠: cp949's extra hangul
    ("big5", "請準時參加，費用 €20。", "cp950"),           # €: cp950's 0xA3E1
    ("big5", "香港的粵語：嘢。", "big5hkscs"),              # 嘢: HKSCS only
    ("iso-8859-1", "Don’t – “quoted” café", "cp1252"),     # curly quotes, en dash
])
def test_east_asian_and_western_labels_read_as_their_windows_supersets(
        tmp_path: Path, label: str, text: str, codec: str) -> None:
    """What mail clients and browsers do (WHATWG Encoding Standard): text written on
    Windows carries the superset's characters under the plain label; read strictly
    as the label it came out as Latin-1 mojibake, quotes became spaces."""
    raw = text.encode(codec)
    with pytest.raises(UnicodeDecodeError):
        raw.decode(label.replace("iso-8859-1", "ascii"))
    subject = f"=?{label}?B?{__import__('base64').b64encode(raw).decode()}?="
    entity = g.entity(f"text/plain; charset={label}", g.b64(raw + b"\r\n"), cte="base64")
    _report, out = run(tmp_path, g.message(entity, subject=subject))
    msg = parsed(out)
    assert bodies(msg, "text/plain")[0].rstrip() == text
    assert str(msg["Subject"]) == text


@pytest.mark.parametrize(("body_label", "text", "codec"), [
    ("gb2312", "邮件传输失败！", "gb2312"),      # flufl.bounce's sina_01.txt
    ("euc-kr", "메일 전송 실패", "euc-kr"),
    ("shift_jis", "髙橋様①", "cp932"),
    ("iso-8859-1", "髙橋様①", "cp932"),         # a single-byte label proves nothing
])
def test_raw_8bit_headers_are_read_in_the_charset_the_body_declares(
        tmp_path: Path, body_label: str, text: str, codec: str) -> None:
    """Mailers that write raw 8-bit headers write them in the message's own charset,
    which is what mail clients try first; undeclared, GB2312 read as CP932 or
    EUC-JP came out as Japanese mojibake."""
    raw = text.encode(codec)
    entity = g.entity(f"text/plain; charset={body_label}", b"body\r\n", cte="7bit")
    data = g.message(entity, subject="x").replace(b"Subject: x", b"Subject: " + raw)
    data = data.replace(b"\r\nTo: ", b"\r\nReply-To: " + raw + b" <r@example.com>\r\nTo: ", 1)
    _report, out = run(tmp_path, data)
    msg = parsed(out)
    assert str(msg["Subject"]) == text
    assert msg["Reply-To"].addresses[0].display_name == text

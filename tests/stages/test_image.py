"""Images are re-encoded: metadata, trailing data and polyglot payloads go; pixels stay."""

from __future__ import annotations

import io
import struct
import zlib
from collections.abc import Callable
from pathlib import Path

import pytest
from PIL import Image, ImageChops, PngImagePlugin

import gateway.stages.image  # registers the stage
from gateway.models import Verdict
from gateway.pipeline.run import process_file, scan_file
from gateway.policy import load
from tests.conftest import corpus_dir
from tests.helpers.pipeline import keys, run

POLICY = load("default")


def picture(mode: str = "RGB", size: tuple[int, int] = (64, 48)) -> Image.Image:
    im = Image.new(mode, size)
    for x in range(size[0]):
        for y in range(size[1]):
            im.putpixel((x, y), (x * 4 % 256, y * 5 % 256, (x + y) % 256)[: len(mode)]
                        if mode != "L" else (x + y) % 256)
    return im


def encode(im: Image.Image, fmt: str, **opts: object) -> bytes:
    buf = io.BytesIO()
    im.save(buf, format=fmt, **opts)
    return buf.getvalue()




def same_pixels(a: bytes, b: bytes, tolerance: int = 0) -> bool:
    with Image.open(io.BytesIO(a)) as ia, Image.open(io.BytesIO(b)) as ib:
        diff = ImageChops.difference(ia.convert("RGB"), ib.convert("RGB")).getextrema()
        return ia.size == ib.size and max(hi for _, hi in diff) <= tolerance


def test_jpeg_exif_comment_and_appended_payload(tmp_path: Path) -> None:
    exif = Image.Exif()
    exif[0x010E] = "<script>alert(1)</script>"  # ImageDescription
    base = encode(picture(), "JPEG", quality=90, exif=exif.tobytes(), comment=b"<?php system();?>")
    data = base + b"PK\x03\x04 appended zip polyglot payload"
    report, out = run(tmp_path, data, "photo.jpg")
    assert report.verdict is Verdict.DISARMED
    assert keys(report) == {("image.metadata", ""), ("image.trailing_data", "")}
    result = out.read_bytes()
    assert b"Exif" not in result and b"<?php" not in result and b"PK\x03\x04" not in result
    assert result.endswith(b"\xff\xd9")
    assert same_pixels(base, result, tolerance=8)  # same quantization tables: near-identical


@pytest.mark.parametrize(("fmt", "name", "mode", "opts"), [
    ("ICO", "favicon.ico", "RGBA", {"sizes": [(16, 16), (32, 32), (48, 48)]}),
    ("TGA", "scan.tga", "RGB", {}),
    ("PPM", "scan.ppm", "RGB", {}),
    ("PPM", "scan.pgm", "L", {}),
    ("PCX", "scan.pcx", "RGB", {}),
    ("JPEG2000", "scan.jp2", "RGB", {"irreversible": False}),
    ("QOI", "scan.qoi", "RGBA", {}),
])
def test_other_raster_formats_are_rebuilt_not_blocked(tmp_path: Path, fmt: str, name: str,
                                                      mode: str, opts: dict[str, object]) -> None:
    """Icons, Targa, Netpbm, PCX, JPEG 2000 and QOI were blocked (no stage); they are
    re-encoded in their own format like PNG, and whatever follows the picture goes."""
    base = encode(picture(mode, (48, 48)), fmt, **opts)
    data = base + b"<script>alert('appended payload')</script>"
    report, out = run(tmp_path, data, name)
    assert report.verdict in (Verdict.CLEAN, Verdict.DISARMED), report.reason
    result = out.read_bytes()
    assert b"appended payload" not in result
    with Image.open(out) as im:
        assert im.format == fmt and im.size == (48, 48)
        if fmt == "ICO":
            assert im.info["sizes"] == {(16, 16), (32, 32), (48, 48)}
    assert same_pixels(base, result)  # all of them lossless


def test_png_text_chunks_and_trailing_data(tmp_path: Path) -> None:
    info = PngImagePlugin.PngInfo()
    info.add_text("Comment", "<svg onload=alert(1)>")
    base = encode(picture("RGBA"), "PNG", pnginfo=info)
    report, out = run(tmp_path, base + b"<?php echo 1; ?>", "a.png")
    assert report.verdict is Verdict.DISARMED
    assert keys(report) == {("image.metadata", ""), ("image.trailing_data", "")}
    result = out.read_bytes()
    assert b"tEXt" not in result and b"<?php" not in result
    assert result.endswith(b"IEND\xaeB`\x82")
    assert same_pixels(base, result)


def test_clean_png_is_rebuilt_and_clean(tmp_path: Path) -> None:
    base = encode(picture(), "PNG")
    report, out = run(tmp_path, base, "clean.png")
    assert report.verdict is Verdict.CLEAN
    assert keys(report) == set()
    assert same_pixels(base, out.read_bytes())


def test_animated_gif_keeps_frames_and_timing(tmp_path: Path) -> None:
    frames = [picture().convert("P"), picture().rotate(90).convert("P"), picture("L").convert("P")]
    data = encode(frames[0], "GIF", save_all=True, append_images=frames[1:], duration=[100, 200,
                                                                                       300],
                  loop=0, comment=b"hidden")
    report, out = run(tmp_path, data, "anim.gif")
    assert report.verdict is Verdict.DISARMED
    with Image.open(out) as im:
        assert im.n_frames == 3
        durations = []
        for i in range(3):
            im.seek(i)
            durations.append(im.info["duration"])
        assert durations == [100, 200, 300]
    assert b"hidden" not in out.read_bytes()


def _shown(data: bytes) -> list[bytes]:
    """Each frame as a viewer shows it (Pillow composites disposal and blending)."""
    with Image.open(io.BytesIO(data)) as im:
        shown = []
        for i in range(getattr(im, "n_frames", 1)):
            im.seek(i)
            shown.append(im.convert("RGBA").tobytes())
        return shown


def test_animated_gif_with_transparency_looks_the_same(tmp_path: Path) -> None:
    """A frame that clears the one before (disposal 2) over a transparent background:
    every frame was written with disposal 0, so the earlier frames stayed visible
    behind the transparent parts of the later ones (giflib's welcome2.gif, Pillow's
    dispose_bgnd_transparency.gif)."""
    frames = []
    for x in (0, 40, 80):
        frame = Image.new("P", (120, 40), 0)
        frame.putpalette([0, 0, 0, 255, 0, 0] + [0] * 762)
        frame.paste(1, (x, 0, x + 40, 40))
        frames.append(frame)
    data = encode(frames[0], "GIF", save_all=True, append_images=frames[1:], duration=100,
                  loop=0, disposal=2, transparency=0, optimize=False)
    report, out = run(tmp_path, data, "walk.gif")
    assert report.verdict.delivered
    assert _shown(out.read_bytes()) == _shown(data)


def test_apng_default_image_stays_out_of_the_animation(tmp_path: Path) -> None:
    """An APNG whose first image is shown only where animation is not (Pillow's
    apng/delay.png): it became a 100 ms frame of the animation, flashing by at every
    loop, and the durations moved one frame along."""
    still = picture()
    moving = [picture().rotate(90), picture().transpose(Image.Transpose.FLIP_LEFT_RIGHT)]
    buf = io.BytesIO()
    still.save(buf, "PNG", save_all=True, append_images=moving, default_image=True,
               duration=[500, 1000], loop=0)
    data = buf.getvalue()
    report, out = run(tmp_path, data, "anim.png")
    assert report.verdict.delivered
    with Image.open(out) as im:
        assert im.info.get("default_image") is True
        durations = []
        for i in range(1, im.n_frames):
            im.seek(i)
            durations.append(im.info["duration"])
    assert durations == [500, 1000]
    assert _shown(out.read_bytes()) == _shown(data)


@pytest.mark.parametrize("fmt", ["JPEG", "PNG", "TIFF", "WEBP"])
def test_colour_profile_slot_holds_only_a_colour_profile(tmp_path: Path, fmt: str) -> None:
    """The ICC profile was copied as it came: 60 kB that were no profile went through,
    verdict clean. A real profile stays (LittleCMS reads it back from the output)."""
    from PIL import ImageCms

    real = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    fake = b"\0" * 40 + b"SEKISHO-PAYLOAD" * 4000
    ext = {"JPEG": "jpg", "PNG": "png", "TIFF": "tif", "WEBP": "webp"}[fmt]
    for icc, kept in ((real, True), (fake, False)):
        data = encode(picture(), fmt, icc_profile=icc)
        with Image.open(io.BytesIO(data)) as im:
            assert im.info["icc_profile"] == icc       # the input carries it
        report, out = run(tmp_path, data, f"photo.{ext}")
        assert report.verdict.delivered
        with Image.open(out) as im:
            assert (im.info.get("icc_profile") == real) is kept
        assert b"SEKISHO-PAYLOAD" not in out.read_bytes()
        if not kept:
            assert ("image.metadata", "icc_profile") in keys(report)


def test_icon_keeps_the_picture_of_each_size(tmp_path: Path) -> None:
    """An icon's small sizes are drawn apart from its large one; they were redrawn from
    the largest (Pillow's pillow.ico: mean differences of 40-74 per channel)."""
    sizes = [(16, 16), (32, 32), (64, 64)]
    drawn = [Image.new("RGBA", size, colour) for size, colour in
             zip(sizes, [(255, 0, 0, 255), (0, 255, 0, 255), (0, 0, 255, 128)], strict=True)]
    data = encode(drawn[-1], "ICO", sizes=sizes, append_images=drawn[:-1])
    report, out = run(tmp_path, data, "app.ico")
    assert report.verdict.delivered
    with Image.open(out) as got:
        assert got.info["sizes"] == set(sizes)
        for size, want in zip(sizes, drawn, strict=True):
            picture = got.ico.getimage(size).convert("RGBA")  # type: ignore[attr-defined]
            assert ImageChops.difference(picture, want).getbbox() is None, size


@pytest.mark.parametrize(("fmt", "name"), [
    ("JPEG", "photo.jpg"), ("GIF", "anim.gif"), ("BMP", "scan.bmp"), ("ICO", "app.ico"),
    ("PNG", "chart.png")])
def test_data_after_the_image_is_reported(tmp_path: Path, fmt: str, name: str) -> None:
    """What followed a GIF, BMP or icon was dropped but not reported ("nothing to
    remove"), nor after a JPEG when the appended data itself ended in 0xFFD9 (an
    appended JPEG): the end of the image is found by walking its structure."""
    opts: dict[str, object] = {"sizes": [(32, 32)]} if fmt == "ICO" else {}
    image = encode(picture("RGB" if fmt != "GIF" else "P"), fmt, **opts)
    payload = b"PK\x03\x04 hidden archive " * 20 + encode(picture(size=(8, 8)), "JPEG")
    report, out = run(tmp_path, image + payload, name)
    assert report.verdict is Verdict.DISARMED
    assert ("image.trailing_data", "") in keys(report)
    found = next(f for f in report.items[0].findings if f.kind == "image.trailing_data")
    assert found.detail == f"{len(payload)} bytes after the end of the image"
    assert b"hidden archive" not in out.read_bytes()
    clean, _ = run(tmp_path, image, name)        # and nothing when nothing follows
    assert ("image.trailing_data", "") not in keys(clean)


def _bmp_v5_rgba(im: Image.Image) -> bytes:
    """A 32-bit BMP with a BITMAPV5HEADER and an alpha mask, as GIMP and Windows write
    transparent bitmaps (Pillow writes none)."""
    width, height = im.size
    pixels = im.transpose(Image.Transpose.FLIP_TOP_BOTTOM).tobytes("raw", "BGRA")
    header = struct.pack("<IiiHHIIiiII", 124, width, height, 1, 32, 3, len(pixels),
                         2835, 2835, 0, 0)
    header += struct.pack("<IIII", 0xFF0000, 0xFF00, 0xFF, 0xFF000000) + b"BGRs"
    header += bytes(124 - len(header))
    offset = 14 + len(header)
    return b"BM" + struct.pack("<IHHI", offset + len(pixels), 0, 0, offset) + header + pixels


def test_transparent_bmp_keeps_its_transparency(tmp_path: Path) -> None:
    """Pillow writes RGBA as a plain 32-bit BMP whose fourth byte readers ignore: the
    BMP suite's rgba32.bmp and rgb32bf-rgba.bmp came out opaque (alpha difference
    133), verdict clean."""
    im = picture("RGB").convert("RGBA")
    im.putalpha(Image.linear_gradient("L").resize(im.size))
    data = _bmp_v5_rgba(im)
    with Image.open(io.BytesIO(data)) as src:
        assert src.mode == "RGBA"        # Pillow reads the input's transparency
    report, out = run(tmp_path, data, "icon.bmp")
    assert report.verdict.delivered
    with Image.open(out) as got:
        assert got.format == "BMP" and got.mode == "RGBA"
        assert ImageChops.difference(got, im).getbbox() is None


def test_exif_orientation_is_applied_before_exif_goes(tmp_path: Path) -> None:
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 CW to display
    data = encode(picture(size=(64, 32)), "JPEG", exif=exif.tobytes())
    report, out = run(tmp_path, data, "rotated.jpg")
    assert report.verdict is Verdict.DISARMED
    with Image.open(out) as im:
        assert im.size == (32, 64)
        assert im.getexif().get(0x0112) is None


@pytest.mark.parametrize(("fmt", "name"), [("BMP", "a.bmp"), ("TIFF", "a.tif"),
                                           ("WEBP", "a.webp")])
def test_other_formats_round_trip(tmp_path: Path, fmt: str, name: str) -> None:
    data = encode(picture(), fmt, **({"lossless": True} if fmt == "WEBP" else {}))
    report, out = run(tmp_path, data, name)
    assert report.verdict is Verdict.CLEAN
    assert report.output is not None and report.output.type == report.input.type
    assert same_pixels(data, out.read_bytes())


def test_grey_tiff_with_premultiplied_alpha_is_rebuilt_not_blocked(tmp_path: Path) -> None:
    """libtiff's minisblack-2c-8b-alpha.tiff: ExtraSamples 1 (associated alpha) reads as
    Pillow's "La", which no format writes: blocked as "cannot be re-encoded"."""
    mode, read_as = "LA", "La"
    data = encode(picture(mode), "TIFF")
    entry = struct.pack("<HHI", 338, 3, 1)  # ExtraSamples, SHORT, one value
    at = data.index(entry) + len(entry)
    assert struct.unpack_from("<H", data, at) == (2,)  # Pillow writes unassociated
    data = data[:at] + struct.pack("<H", 1) + data[at + 2:]
    assert Image.open(io.BytesIO(data)).mode == read_as
    report, out = run(tmp_path, data, "scan.tif")
    assert report.verdict is Verdict.CLEAN, report.reason
    with Image.open(out) as got:
        assert got.format == "TIFF" and got.mode == mode and got.size == (64, 48)
        got.load()


def test_avif_is_rebuilt(tmp_path: Path) -> None:
    """AVIF (phones, the web) was blocked as a format without a stage; its EXIF goes."""
    im = picture()
    exif = Image.Exif()
    exif[0x010F] = "SomeCamera"
    buf = io.BytesIO()
    im.save(buf, "AVIF", quality=95, exif=exif.tobytes())
    data = buf.getvalue() + b"<script>alert('appended payload')</script>"
    report, out = run(tmp_path, data, "photo.avif")
    assert report.verdict is Verdict.DISARMED
    assert ("image.metadata", "") in keys(report)
    result = out.read_bytes()
    assert b"appended payload" not in result and b"SomeCamera" not in result
    with Image.open(out) as got:
        assert got.format == "AVIF" and got.size == im.size
    assert same_pixels(buf.getvalue(), result, tolerance=24)


def _plain_pgm(im: Image.Image) -> bytes:
    """A plain (ASCII, P2) PGM: libmagic calls it image/x-portable-graymap."""
    pixels = " ".join(str(v) for v in im.convert("L").tobytes())  # one byte per pixel
    return f"P2\n{im.width} {im.height}\n255\n{pixels}\n".encode()


@pytest.mark.parametrize(("name", "build"), [
    ("plain.pgm", lambda im: _plain_pgm(im)),
    ("clip.dib", lambda im: encode(im, "DIB")),
    ("photo.jpf", lambda im: encode(im, "JPEG2000", irreversible=False, no_jp2=False)),
])
def test_other_names_libmagic_gives_known_formats(tmp_path: Path, name: str,
                                                  build: Callable[[Image.Image], bytes],
                                                  ) -> None:
    """Plain PGM, a .dib and a .jpf came as image.x-portable-graymap, image.x-ms-bmp and
    image.jpx: formats the stage handles, blocked for want of the name."""
    data = build(picture())
    report, out = run(tmp_path, data, name)
    assert report.verdict.delivered, report.reason
    assert keys(report) <= {("image.metadata", "")}  # OpenJPEG signs its files
    assert same_pixels(data, out.read_bytes())


def _png_chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


def test_decompression_bomb_is_blocked(tmp_path: Path) -> None:
    ihdr = struct.pack(">IIBBBBB", 200_000, 200_000, 8, 2, 0, 0, 0)
    data = (b"\x89PNG\r\n\x1a\n" + _png_chunk(b"IHDR", ihdr)
            + _png_chunk(b"IDAT", zlib.compress(b"\x00" * 1000)) + _png_chunk(b"IEND", b""))
    report, out = run(tmp_path, data, "bomb.png")
    assert report.verdict is Verdict.BLOCKED
    assert keys(report) == {("block.limit", "")}
    assert not out.exists()


def test_gif_whose_later_frame_is_a_bomb_is_blocked(tmp_path: Path) -> None:
    """The first frame is small; the second frame's descriptor claims 65535 x 65535
    pixels. Pillow checks that only when it seeks to the frame, which was an internal
    error (found by fuzzing a GIF of the corpus)."""
    frames = [picture().convert("P"), picture().rotate(90).convert("P")]
    data = bytearray(encode(frames[0], "GIF", save_all=True, append_images=frames[1:]))
    second = data.index(b"\x2c", data.index(b"\x2c") + 1)  # the 2nd image descriptor
    while struct.unpack_from("<HH", data, second + 1) != (0, 0):  # left, top of frame 2
        second = data.index(b"\x2c", second + 1)
    struct.pack_into("<HH", data, second + 5, 0xFFFF, 0xFFFF)
    with Image.open(io.BytesIO(bytes(data))) as im:  # the first frame alone is fine
        assert im.size == (64, 48)
    report, out = run(tmp_path, bytes(data), "anim.gif")
    assert report.verdict is Verdict.BLOCKED
    assert keys(report) == {("block.limit", "")}
    assert report.reason is not None and "too large to decode" in report.reason
    assert not out.exists()


def test_fax_scan_compresses_far_beyond_the_job_ratio(tmp_path: Path) -> None:
    """Three A4 pages at 400 dpi, black and white, CCITT G4: 46 MB of pixels from a few
    kB (Pillow's g4-multi.tiff is such a file). They were blocked as a bomb by the job's
    100x expansion ratio; now they arrive with the same pixels, still G4."""
    from PIL import ImageDraw

    pages = []
    for n in range(3):
        page = Image.new("1", (3307, 4677), 1)
        ImageDraw.Draw(page).rectangle((300, 300 + 400 * n, 3000, 360 + 400 * n), fill=0)
        pages.append(page)
    buf = io.BytesIO()
    pages[0].save(buf, "TIFF", compression="group4", save_all=True, append_images=pages[1:])
    data = buf.getvalue()
    assert len(data) * 100 < 3307 * 4677 * 3
    report, out = run(tmp_path, data, "scan.tif")
    assert report.verdict is Verdict.CLEAN
    with Image.open(out) as got:
        assert got.n_frames == 3 and got.info.get("compression") == "group4"
        for n, page in enumerate(pages):
            got.seek(n)
            assert ImageChops.difference(got.convert("L"), page.convert("L")).getbbox() is None


def test_long_animation_of_a_small_gif(tmp_path: Path) -> None:
    """31 frames of 640x480 from a small file (like Pillow's chi.gif): animation is what
    GIF compresses well; it was blocked by the job's expansion ratio."""
    frames = [Image.new("RGB", (640, 480), (255, 255, 255)) for _ in range(31)]
    for n, frame in enumerate(frames):
        frame.paste((200, 30, 30), (n * 20, 200, n * 20 + 20, 220))
    buf = io.BytesIO()
    frames[0].save(buf, "GIF", save_all=True, append_images=frames[1:], duration=80, loop=0)
    report, out = run(tmp_path, buf.getvalue(), "banner.gif")
    assert report.verdict.delivered
    with Image.open(out) as got:
        assert got.n_frames == 31


def test_decoded_size_of_all_frames_is_capped(tmp_path: Path,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    """Frames are held together while re-encoded: over MAX_DECODED bytes is a bomb."""
    monkeypatch.setattr(gateway.stages.image, "MAX_DECODED", 10 * 320 * 240)
    frames = [Image.new("L", (320, 240), n * 20) for n in range(12)]
    buf = io.BytesIO()
    frames[0].save(buf, "GIF", save_all=True, append_images=frames[1:])
    report, out = run(tmp_path, buf.getvalue(), "long.gif")
    assert report.verdict is Verdict.BLOCKED and not out.exists()
    assert "image decodes to more than" in (report.reason or "")


def _without_chunks(png: bytes, kind: bytes) -> bytes:
    out, pos = png[:8], 8
    while pos < len(png):
        length = struct.unpack(">I", png[pos:pos + 4])[0]
        chunk = png[pos:pos + 12 + length]
        if chunk[4:8] != kind:
            out += chunk
        pos += 12 + length
    return out


def test_apng_with_broken_later_frames_keeps_its_first(tmp_path: Path) -> None:
    """An APNG whose frame data chunks are missing (Pillow's chunk_no_fdat.png): a
    browser shows the default image; it was blocked as undecodable."""
    frames = [picture(), picture().transpose(Image.Transpose.FLIP_LEFT_RIGHT)]
    buf = io.BytesIO()
    frames[0].save(buf, "PNG", save_all=True, append_images=frames[1:], duration=100)
    data = _without_chunks(buf.getvalue(), b"fdAT")
    report, out = run(tmp_path, data, "anim.png")
    assert report.verdict.delivered
    assert keys(report) == {("image.repaired", "")}
    with Image.open(out) as got:
        assert getattr(got, "n_frames", 1) == 1
        assert ImageChops.difference(got.convert("RGB"), frames[0]).getbbox() is None


def _chunk_types(png: bytes) -> list[bytes]:
    out, pos = [], 8
    while pos + 8 <= len(png):
        length, kind = struct.unpack_from(">I4s", png, pos)
        out.append(kind)
        pos += 12 + length
    return out


def _with_chunk_after_ihdr(png: bytes, chunk: bytes) -> bytes:
    ihdr_end = 8 + 12 + struct.unpack(">I", png[8:12])[0]
    return png[:ihdr_end] + chunk + png[ihdr_end:]


def test_png_whose_text_chunk_decompresses_past_the_limit(tmp_path: Path) -> None:
    """A zTXt chunk of 2 MB of text in 2 kB (Pillow's png_decompression_dos.png):
    Pillow refuses the whole file, browsers show the picture. It was blocked as
    undecodable; the picture is delivered without the chunk, and a scan reports
    what disarming removes."""
    base = encode(picture(), "PNG")
    bomb = _png_chunk(b"zTXt", b"Comment\x00\x00" + zlib.compress(b"A" * 2_000_000, 9))
    data = _with_chunk_after_ihdr(base, bomb)
    report, out = run(tmp_path, data, "dos.png")
    assert report.verdict is Verdict.DISARMED
    assert keys(report) == {("image.metadata", "")}
    assert "zTXt" in report.items[0].findings[0].detail
    result = out.read_bytes()
    assert _chunk_types(result)[0] == b"IHDR" and b"zTXt" not in _chunk_types(result)
    assert same_pixels(base, result)
    scanned = scan_file(tmp_path / "dos.png", policy=POLICY)
    assert keys(scanned) == {("image.metadata", "")}


@pytest.mark.parametrize("empty", [b"cHRM", b"pHYs", b"gAMA"])
def test_png_with_an_empty_ancillary_chunk_keeps_its_picture(tmp_path: Path,
                                                             empty: bytes) -> None:
    """libpng's crashers/empty_ancillary_chunks.png: zero-length cHRM, bKGD, ... chunks
    around a good IDAT. Pillow refuses the file ("Truncated cHRM chunk"), browsers show
    it (libpng takes errors in ancillary chunks as warnings); it was blocked."""
    base = encode(picture(), "PNG")
    data = _with_chunk_after_ihdr(base, _png_chunk(empty, b""))
    with pytest.raises((ValueError, OSError, SyntaxError)):
        Image.open(io.BytesIO(data)).load()
    report, out = run(tmp_path, data, "empty.png")
    assert report.verdict is Verdict.DISARMED, report.reason
    assert keys(report) == {("image.metadata", "")}
    assert empty.decode() in report.items[0].findings[0].detail
    assert same_pixels(base, out.read_bytes())


def test_apng_whose_frame_control_is_missing_keeps_its_default_image(tmp_path: Path) -> None:
    """An APNG whose second frame lost its fcTL chunk (Pillow's chunk_no_fctl.png):
    Pillow refuses every frame ("frame sequence errors"), browsers show the default
    image. It was blocked; the default image is delivered."""
    frames = [picture(), picture().transpose(Image.Transpose.FLIP_LEFT_RIGHT)]
    buf = io.BytesIO()
    frames[0].save(buf, "PNG", save_all=True, append_images=frames[1:], duration=100)
    png = buf.getvalue()
    types = _chunk_types(png)
    second_fctl = [i for i, k in enumerate(types) if k == b"fcTL"][1]
    pos = 8
    for _ in range(second_fctl):
        pos += 12 + struct.unpack(">I", png[pos:pos + 4])[0]
    data = png[:pos] + png[pos + 12 + struct.unpack(">I", png[pos:pos + 4])[0]:]
    with pytest.raises(SyntaxError), Image.open(io.BytesIO(data)) as im:  # as found
        im.seek(1)
    report, out = run(tmp_path, data, "anim.png")
    assert report.verdict.delivered
    assert keys(report) == {("image.repaired", "")}
    result = out.read_bytes()
    assert not {b"acTL", b"fcTL", b"fdAT"} & set(_chunk_types(result))
    with Image.open(out) as got:
        assert getattr(got, "n_frames", 1) == 1
        assert ImageChops.difference(got.convert("RGB"), frames[0]).getbbox() is None


def test_png_without_image_data_stays_blocked(tmp_path: Path) -> None:
    """Leaving chunks out never invents a picture: an APNG of no frames and no IDAT
    (Pillow's syntax_num_frames_zero.png) is still refused."""
    data = (b"\x89PNG\r\n\x1a\n"
            + _png_chunk(b"IHDR", struct.pack(">IIBBBBB", 128, 64, 8, 6, 0, 0, 0))
            + _png_chunk(b"acTL", bytes(8)) + _png_chunk(b"IEND", b""))
    report, out = run(tmp_path, data, "none.png")
    assert report.verdict is Verdict.BLOCKED
    assert keys(report) == {("block.malformed", "")}
    assert not out.exists()


def test_truncated_image_delivers_what_decodes(tmp_path: Path) -> None:
    data = encode(picture(size=(200, 200)), "PNG")
    report, out = run(tmp_path, data[: len(data) // 2], "cut.png")
    assert report.verdict is Verdict.CLEAN
    assert keys(report) == {("image.repaired", "")}
    with Image.open(out) as im:
        assert im.size == (200, 200)


def test_gif_cut_inside_a_later_frame_keeps_the_frames_before(tmp_path: Path) -> None:
    """Cut so that Pillow's frame count itself fails (IndexError reading past the end,
    found by mutation fuzzing): an internal error. A browser shows the frames before
    the cut; so does the delivered copy."""
    frames = [picture().convert("P"), picture().rotate(90).convert("P"),
              picture().transpose(Image.Transpose.FLIP_LEFT_RIGHT).convert("P")]
    data = encode(frames[0], "GIF", save_all=True, append_images=frames[1:], duration=100)

    def count_fails(cut: int) -> bool:
        try:
            with Image.open(io.BytesIO(data[:cut])) as im:
                _ = im.n_frames
        except IndexError:
            return True
        return False

    cut = next(c for c in range(len(data) - 1, 0, -1) if count_fails(c))
    report, out = run(tmp_path, data[:cut], "cut.gif")
    assert report.verdict.delivered, report.reason
    assert keys(report) == {("image.repaired", "")}
    with Image.open(out) as got:
        assert got.n_frames == 2  # the cut lies inside the third frame
        for index in range(2):
            got.seek(index)
            assert ImageChops.difference(got.convert("RGB"),
                                         frames[index].convert("RGB")).getbbox() is None


def test_undecodable_image_is_blocked(tmp_path: Path) -> None:
    report, out = run(tmp_path, b"\x89PNG\r\n\x1a\n" + b"\x00" * 40, "junk.png")
    assert report.verdict is Verdict.BLOCKED
    assert keys(report) == {("block.malformed", "")}
    assert not out.exists()


def _png_chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


def interlaced_png(w: int = 64, h: int = 64) -> bytes:
    """An RGBA PNG in Adam7 interlacing (Pillow writes none): seven passes of rows."""
    raw = b""
    for x0, y0, dx, dy in ((0, 0, 8, 8), (4, 0, 8, 8), (0, 4, 4, 8), (2, 0, 4, 4),
                           (0, 2, 2, 4), (1, 0, 2, 2), (0, 1, 1, 2)):
        width, height = (w - x0 + dx - 1) // dx, (h - y0 + dy - 1) // dy
        for y in range(height if width else 0):
            raw += b"\x00" + b"".join(bytes(((x * 7 + y) % 256, x % 256, y % 256, 255))
                                       for x in range(width))
    return (b"\x89PNG\r\n\x1a\n"
            + _png_chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 6, 0, 0, 1))
            + _png_chunk(b"IDAT", zlib.compress(raw, 9)) + _png_chunk(b"IEND", b""))


def test_truncated_interlaced_png_delivers_what_decodes(tmp_path: Path) -> None:
    """The retry of a truncated image ran the interlaced PNG decoder a second time in
    the reader it had failed in, which raises TypeError: an internal error (found by
    fuzzing Pillow's pil123rgba.png). A fresh reader decodes what is there."""
    data = interlaced_png()
    with Image.open(io.BytesIO(data)) as whole:
        assert whole.info["interlace"] == 1
        whole.load()
    report, out = run(tmp_path, data[: len(data) * 2 // 3], "cut.png")
    assert report.verdict is Verdict.CLEAN
    assert keys(report) == {("image.repaired", "")}
    with Image.open(out) as got:
        assert got.size == (64, 64) and got.format == "PNG"


def test_tiff_page_without_dimensions_keeps_the_pages_before(tmp_path: Path) -> None:
    """A TIFF whose second directory lacks ImageWidth and ImageLength: Pillow raises
    TypeError on reaching it, which ended the job as an internal error. The first page
    is delivered, as for any damage in a later frame."""
    first, second = picture(), picture().transpose(Image.Transpose.FLIP_LEFT_RIGHT)
    buf = io.BytesIO()
    first.save(buf, format="TIFF", save_all=True, append_images=[second])
    data = bytearray(buf.getvalue())
    ifd = struct.unpack_from("<I", data, 4)[0]
    ifd = struct.unpack_from("<I", data, ifd + 2 + 12 * struct.unpack_from("<H", data, ifd)[0])[0]
    for i in range(struct.unpack_from("<H", data, ifd)[0]):
        if struct.unpack_from("<H", data, ifd + 2 + 12 * i)[0] in (256, 257):  # width, length
            struct.pack_into("<H", data, ifd + 2 + 12 * i, 65000)
    report, out = run(tmp_path, bytes(data), "pages.tif")
    assert keys(report) == {("image.repaired", "")}
    with Image.open(out) as got:
        assert getattr(got, "n_frames", 1) == 1
        assert ImageChops.difference(got.convert("RGB"), first.convert("RGB")).getbbox() is None


def test_gif_frame_placed_beyond_what_a_gif_can_hold_is_blocked(tmp_path: Path) -> None:
    """A frame at row 65000 makes Pillow's canvas 66601 rows tall, which no GIF can
    hold: writing it raised OverflowError, an internal error (found by fuzzing)."""
    data = bytearray(encode(Image.new("P", (77, 100), 3), "GIF"))
    at = data.index(b"\x2c")  # the image descriptor: left, top, width, height
    struct.pack_into("<HHHH", data, at + 1, 0, 65000, 77, 1601)
    report, out = run(tmp_path, bytes(data), "tall.gif")
    assert report.verdict is Verdict.BLOCKED
    assert keys(report) == {("block.malformed", "")}
    assert report.reason == "image cannot be re-encoded (OverflowError)"
    assert not out.exists()


@pytest.mark.slow
def test_corpus_images(tmp_path: Path) -> None:
    files = sorted(p for p in (corpus_dir() / "h_image").rglob("*") if p.is_file())
    assert len(files) >= 20
    expected_blocked = {"broken.png"}  # 80 bytes, not decodable by any reader
    blocked = set()
    for path in files:
        out = tmp_path / path.name
        report = process_file(path, out, policy=POLICY)
        if report.verdict.delivered:
            with Image.open(out) as im:
                im.load()
            data = out.read_bytes()
            assert b"<?php" not in data and b"<script" not in data.lower(), path.name
        else:
            blocked.add(path.name)
    assert blocked == expected_blocked

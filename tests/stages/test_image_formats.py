"""Raster formats beyond the common ones: DDS textures, cursors, Photoshop documents and
BMP colour masks Pillow does not read. Each was blocked ("no disarm stage", "blocked by
policy", "cannot be decoded") though Pillow or ImageMagick shows it (Pillow's test
images: 37 .dds, 16 .psd, 4 .cur, the BMP suite's rgb32bf.bmp)."""

from __future__ import annotations

import io
import struct
from pathlib import Path

import pytest
from PIL import Image, ImageChops

import gateway.stages.image  # noqa: F401 - registers the stage
from gateway.models import Verdict
from tests.helpers.pipeline import keys, run

CMYK_PROFILE = Path("/usr/share/color/icc/ghostscript/default_cmyk.icc")  # libgs-common


def gradient(mode: str = "RGBA", size: tuple[int, int] = (32, 24)) -> Image.Image:
    bands = [Image.linear_gradient("L").resize(size),
             Image.linear_gradient("L").rotate(90).resize(size),
             Image.new("L", size, 90), Image.linear_gradient("L").rotate(45).resize(size)]
    return Image.merge(mode, bands[:len(mode)])


def encode(im: Image.Image, fmt: str, **opts: object) -> bytes:
    buf = io.BytesIO()
    im.save(buf, format=fmt, **opts)
    return buf.getvalue()


def decoded(data: bytes | Path) -> Image.Image:
    with Image.open(data if isinstance(data, Path) else io.BytesIO(data)) as im:
        im.load()
        picture = im.copy()
        picture.format = im.format  # what read it (a copy has none)
        return picture


# -- DDS

def test_dds_texture_keeps_its_pixels(tmp_path: Path) -> None:
    texture = gradient()
    data = encode(texture, "DDS", pixel_format="DXT5")
    report, out = run(tmp_path, data, "texture.dds")
    assert report.verdict is Verdict.CLEAN, report.reason
    assert report.input.type == "image.vnd-ms.dds"
    got = decoded(out)
    assert got.format == "DDS" and got.mode == "RGBA"
    # written uncompressed: exactly what the texture decoded to (Pillow's DXT5
    # compressor would change it again)
    assert ImageChops.difference(got, decoded(data)).getbbox() is None


def test_dds_that_pillow_cannot_decode_is_blocked_not_an_internal_error(tmp_path: Path) -> None:
    """Pillow raises NotImplementedError for pixel formats it names but does not
    decode; the job failed with an internal error."""
    header = struct.pack("<7I", 124, 0x1007, 8, 8, 0, 0, 0) + bytes(44)
    header += struct.pack("<4I", 32, 0x4, int.from_bytes(b"ATC ", "little"), 0) + bytes(16)
    header += struct.pack("<5I", 0x1000, 0, 0, 0, 0)
    report, _ = run(tmp_path, b"DDS " + header + bytes(64), "odd.dds")
    assert report.verdict is Verdict.BLOCKED
    assert report.items[0].error == "image cannot be decoded (NotImplementedError)"


# -- cursors

def cursor(pictures: list[Image.Image], hotspots: list[tuple[int, int]]) -> bytes:
    """A .cur: an icon of 32-bit bitmaps made type 2, each entry with its hot spot."""
    sizes = [p.size for p in pictures]
    data = bytearray(encode(pictures[0], "ICO", bitmap_format="bmp", sizes=sizes,
                            append_images=pictures[1:]))
    data[2] = 2
    for i in range(len(pictures)):
        entry = 6 + 16 * i
        size = (data[entry] or 256, data[entry + 1] or 256)
        data[entry + 4:entry + 8] = struct.pack("<HH", *hotspots[sizes.index(size)])
    return bytes(data)


def test_cursor_keeps_each_size_and_its_hot_spot(tmp_path: Path) -> None:
    big, small = gradient(size=(32, 32)), gradient(size=(16, 16)).rotate(90)
    data = cursor([big, small], [(5, 7), (2, 3)])
    report, out = run(tmp_path, data, "pointer.cur")
    assert report.verdict.delivered, report.reason
    assert report.input.type == "image.x-win-bitmap"
    result = out.read_bytes()
    assert result[:4] == b"\0\0\2\0"
    entries = {(result[6 + 16 * i] or 256, result[7 + 16 * i] or 256):
               struct.unpack_from("<HH", result, 10 + 16 * i)
               for i in range(struct.unpack_from("<H", result, 4)[0])}
    assert entries == {(32, 32): (5, 7), (16, 16): (2, 3)}
    got = decoded(out)   # Pillow's cursor reader: the largest picture, without its alpha
    assert got.format == "CUR"
    assert ImageChops.difference(got.convert("RGB"), big.convert("RGB")).getbbox() is None
    # every picture with its transparency, read as the icon a cursor is built like (an
    # icon's entries have planes and bit count where a cursor's have the hot spot)
    icon_bytes = bytearray(b"\0\0\1\0" + result[4:])
    for i in range(len(entries)):
        icon_bytes[10 + 16 * i:14 + 16 * i] = struct.pack("<HH", 1, 32)
    with Image.open(io.BytesIO(icon_bytes)) as icon:
        for want in (big, small):
            picture = icon.ico.getimage(want.size).convert("RGBA")  # type: ignore[attr-defined]
            assert ImageChops.difference(picture, want).getbbox() is None, want.size


def test_cursor_with_a_negative_bitmap_width_is_blocked_not_an_internal_error(
        tmp_path: Path) -> None:
    """Mutation fuzzing: a bitmap header of a negative width made the picture's size,
    written into the icon Pillow reads, negative (struct.error, an internal error)."""
    data = bytearray(cursor([gradient(size=(16, 16))], [(1, 1)]))
    at = struct.unpack_from("<I", data, 18)[0]            # the picture's bitmap header
    data[at + 4:at + 8] = struct.pack("<i", -100_000)     # its width
    report, _ = run(tmp_path, bytes(data), "broken.cur")
    assert report.verdict is Verdict.BLOCKED
    assert report.items[0].error == "image too large to decode (DecompressionBombError)"


# -- Photoshop documents

def psd(mode: int, planes: list[bytes], size: tuple[int, int],
        resources: list[tuple[int, bytes]] = ()) -> bytes:  # type: ignore[assignment]
    """A flat Photoshop document: header, image resources, no layers, raw planes."""
    width, height = size
    blocks = b""
    for rid, body in resources:
        blocks += b"8BIM" + struct.pack(">H", rid) + b"\0\0" + struct.pack(">I", len(body))
        blocks += body + b"\0" * (len(body) % 2)
    return (b"8BPS" + struct.pack(">H6sHIIHH", 1, bytes(6), len(planes), height, width, 8, mode)
            + struct.pack(">I", 0) + struct.pack(">I", len(blocks)) + blocks
            + struct.pack(">I", 0) + struct.pack(">H", 0) + b"".join(planes))


XMP = (b'<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF><rdf:Description>'
       b"<script>alert(1)</script></rdf:Description></rdf:RDF></x:xmpmeta>")


def test_photoshop_document_becomes_a_png_of_its_composite(tmp_path: Path) -> None:
    picture = gradient("RGB")
    data = psd(3, [band.tobytes() for band in picture.split()], picture.size,
               [(0x0424, XMP)])                     # XMP metadata with a script
    assert decoded(data).format == "PSD"
    report, out = run(tmp_path, data, "poster.psd")
    assert report.verdict is Verdict.DISARMED
    assert keys(report) == {("image.converted", "")}
    assert report.output is not None and report.output.type == "image.png"
    assert report.output.name == "poster.png"
    got = decoded(out)
    assert got.format == "PNG"
    assert ImageChops.difference(got, picture).getbbox() is None
    assert b"alert" not in out.read_bytes()


def test_cmyk_photoshop_document_is_shown_through_its_profile(tmp_path: Path) -> None:
    """CMYK cannot go into a PNG: the composite goes through the document's own
    profile to sRGB, as viewers show it (Pillow's plain conversion makes process cyan
    the screen's pure cyan, 0/255/255)."""
    assert CMYK_PROFILE.is_file(), "install libgs-common (make tools)"
    size = (8, 4)
    no_ink, full = bytes([255]) * 32, bytes([0]) * 32   # PSD stores CMYK inverted
    data = psd(4, [full, no_ink, no_ink, no_ink], size, [(0x040F, CMYK_PROFILE.read_bytes())])
    report, out = run(tmp_path, data, "flyer.psd")
    assert report.verdict is Verdict.DISARMED
    got = decoded(out)
    assert got.mode == "RGB"
    red, green, blue = got.getpixel((3, 2))  # type: ignore[misc]
    assert red < 60 and 120 < green < 200 and blue > 200, (red, green, blue)


# -- BMP colour masks

def bitfields_bmp(pixels: bytes, size: tuple[int, int], bpp: int, masks: tuple[int, ...],
                  header: int = 40) -> bytes:
    """A bottom-up BI_BITFIELDS bitmap (three masks after a 40-byte header, or four in a
    BITMAPV4HEADER), rows already padded."""
    width, height = size
    info = struct.pack("<IiiHHIIiiII", header, width, height, 1, bpp, 3, len(pixels), 2835,
                       2835, 0, 0)
    info += struct.pack(f"<{len(masks)}I", *masks)
    info += bytes(max(0, header - len(info)))
    offset = 14 + len(info)
    return b"BM" + struct.pack("<IHHI", offset + len(pixels), 0, 0, offset) + info + pixels


def test_bmp_with_ten_bit_channels_is_read(tmp_path: Path) -> None:
    # one row of two pixels: white and (1023, 512, 0) in 10-bit channels
    row = struct.pack("<II", 0x3FFFFFFF, (1023 << 20) | (512 << 10))
    data = bitfields_bmp(row, (2, 1), 32, (0x3FF00000, 0xFFC00, 0x3FF))
    with pytest.raises(OSError, match="bitfields"):
        decoded(data)                            # what Pillow alone says
    report, out = run(tmp_path, data, "scan.bmp")
    assert report.verdict.delivered, report.reason
    got = decoded(out).convert("RGB")
    assert [got.getpixel((x, 0)) for x in range(2)] == [(255, 255, 255), (255, 128, 0)]


def test_bmp_with_four_bit_channels_and_alpha_keeps_its_transparency(tmp_path: Path) -> None:
    # two rows of one pixel (padded to 4 bytes): opaque red, then half-transparent blue
    rows = struct.pack("<HH", 0xFF00, 0) + struct.pack("<HH", 0x800F, 0)
    data = bitfields_bmp(rows, (1, 2), 16, (0xF00, 0xF0, 0xF, 0xF000), header=108)
    report, out = run(tmp_path, data, "icon.bmp")
    assert report.verdict.delivered, report.reason
    got = decoded(out)
    assert got.mode == "RGBA"
    assert [got.getpixel((0, y)) for y in range(2)] == [(0, 0, 255, 136), (255, 0, 0, 255)]


# -- HEIF / HEIC

def test_heic_photo_keeps_its_format_and_loses_its_metadata(tmp_path: Path) -> None:
    """iPhone photos (HEIC) were blocked: "no disarm stage for image.heic"."""
    import pillow_heif

    pillow_heif.register_heif_opener()
    photo = gradient("RGB", (64, 48))
    exif = Image.Exif()
    exif[0x010E] = "where it was taken"                       # ImageDescription
    data = encode(photo, "HEIF", quality=95, exif=exif.tobytes(),
                  xmp=b'<x:xmpmeta xmlns:x="adobe:ns:meta/">XMP-PAYLOAD</x:xmpmeta>')
    report, out = run(tmp_path, data, "IMG_0001.HEIC")
    assert report.input.type == "image.heic"
    assert report.verdict is Verdict.DISARMED
    assert keys(report) == {("image.metadata", "")}
    result = out.read_bytes()
    assert b"where it was taken" not in result and b"XMP-PAYLOAD" not in result
    # libheif reads the output as HEIF without metadata, the picture (lossy) the same
    heif = pillow_heif.open_heif(io.BytesIO(result))
    assert heif.info.get("exif") is None and heif.info.get("xmp") is None
    got = decoded(out)
    assert got.format == "HEIF" and got.size == photo.size
    diff = ImageChops.difference(got.convert("RGB"), photo).getextrema()
    assert max(high for _, high in diff) <= 24


"""Images: decode and re-encode the pixels (DESIGN.md §8 Images).

Re-encoding drops everything that is not pixels: EXIF/XMP/IPTC metadata,
comments, text chunks, trailing data after the end marker and appended
polyglot payloads. The output keeps the format, size, mode, animation frames
and timing, and the ICC colour profile (colour data only; without it CMYK and
wide-gamut images change colour). EXIF orientation is applied to the pixels
before EXIF is dropped, so photos do not turn sideways.

Decompression bombs (more pixels than Image.MAX_IMAGE_PIXELS allows, at any
frame, or more than MAX_DECODED bytes over all frames) are a LimitExceeded;
images Pillow cannot decode are Malformed. A truncated image that still decodes
in part is delivered with what decodes (recorded as image.repaired), like
viewers show it.
"""

from __future__ import annotations

import functools
import io
import itertools
import re
import struct
import warnings
from collections.abc import Callable, Iterator
from typing import Any, BinaryIO, ClassVar, TypeVar

from PIL import Image, ImageFile, UnidentifiedImageError

from gateway.errors import LimitExceeded, Malformed
from gateway.kinds import Action
from gateway.pipeline import registry
from gateway.pipeline.api import StageContext

#: pixels per frame; above this decoding is refused (Pillow's default is ~89 M)
MAX_PIXELS = 120_000_000
#: decoded bytes of one image over all its frames (they are held together while
#: re-encoded). Images are held to this, not to the job's expansion ratio: a high
#: ratio is what good image compression does (a 3 kB G4 fax of three A4 pages at 400
#: dpi decodes to 46 MB, a 85 kB animated GIF of 31 frames to 9.5 MB), and both were
#: blocked as bombs.
MAX_DECODED = 512 * 1024 * 1024
MAX_FRAMES = 10_000  #: frames of one image

_FORMATS = {"image.png": "PNG", "image.jpeg": "JPEG", "image.gif": "GIF", "image.bmp": "BMP",
            "image.tiff": "TIFF", "image.webp": "WEBP",
            # less common raster formats Pillow reads and writes: re-encoded the same way
            "image.vnd.microsoft.icon": "ICO", "image.x-icns": "ICNS", "image.x-tga": "TGA",
            "image.x-portable-pixmap": "PPM", "image.x-portable-greymap": "PPM",
            "image.x-portable-bitmap": "PPM", "image.x-pcx": "PCX", "image.jp2": "JPEG2000",
            "image.x-jp2-codestream": "JPEG2000", "image.x-qoi": "QOI",
            # libmagic's other names for some of them: plain (P2) PGM, a .dib, a .jpf
            "image.x-portable-graymap": "PPM", "image.x-ms-bmp": "BMP", "image.jpx": "JPEG2000",
            # AVIF (phones, the web): Pillow reads and writes it through libavif
            "image.avif": "AVIF",
            # DirectDraw Surface textures; cursors (read as the icon they are, written
            # back with their hot spots); Photoshop documents, which Pillow reads but
            # cannot write: their composite image is delivered as a PNG
            "image.vnd-ms.dds": "DDS", "image.x-win-bitmap": "CUR",
            "image.vnd.adobe.photoshop": "PSD",
            # HEIF/HEIC (iPhone photos): pillow-heif's libheif reads and writes them
            "image.heic": "HEIF", "image.heif": "HEIF"}
#: what a HEIF image's reader puts in info about how it is stored, not metadata
_HEIF_INFO = ("primary", "bit_depth", "chroma", "nclx_profile", "original_orientation")


class ImageStage:
    name: ClassVar[str] = "image"
    formats: ClassVar[frozenset[str]] = frozenset(_FORMATS)

    def scan(self, src: BinaryIO, ctx: StageContext) -> None:
        data = src.read()
        readable, _ = _as_pillow_reads(data, ctx.type_id)

        def look(pixels: bytes) -> None:
            with _open(pixels) as im:
                _report(im, data, ctx)

        _first_that_decodes(readable, ctx, look)

    def disarm(self, src: BinaryIO, dst: BinaryIO, ctx: StageContext) -> None:
        data = src.read()
        start = dst.tell()
        readable, hotspots = _as_pillow_reads(data, ctx.type_id)

        def rebuild(pixels: bytes) -> bool:
            dst.seek(start)
            dst.truncate()       # what a failed attempt wrote
            with _open(pixels) as im:
                _report(im, data, ctx)
                fmt = im.format or _FORMATS[ctx.type_id]
                if fmt == "PSD":
                    return _flatten(im, dst, ctx)
                if hotspots is not None:
                    return _write_cursor(im, dst, hotspots)
                lossless = fmt == "WEBP" and data[12:16] == b"VP8L"
                return _reencode(im, pixels, fmt, dst, ctx, lossless=lossless)

        if _first_that_decodes(readable, ctx, rebuild):
            ctx.record("image.repaired", "", action=Action.REPAIRED,
                       detail="truncated image; the part that decodes was kept")


_Result = TypeVar("_Result")


def _first_that_decodes(data: bytes, ctx: StageContext,
                        attempt: Callable[[bytes], _Result]) -> _Result:
    """``attempt`` on the image, then on what _fallbacks leaves of it, until one does not
    raise Malformed (the last one's failure is the file's); what an attempt that failed
    recorded is taken back, what the one that worked left out is recorded."""
    seen = len(ctx.findings)
    try:
        return attempt(data)
    except Malformed as exc:
        failure = exc
    for pixels, dropped in _fallbacks(data, ctx.type_id):
        del ctx.findings[seen:]
        try:
            result = attempt(pixels)
        except Malformed as exc:
            failure = exc
            continue
        _record_dropped(ctx, dropped)
        return result
    raise failure


# -- a PNG that does not decode as a whole: its default image without the rest
#
# Pillow refuses a whole PNG for a part no viewer needs to draw it: a text chunk that
# decompresses past its limit (Pillow's png_decompression_dos.png), an APNG whose
# animation chunks are out of order or announce no frames (chunk_no_fctl.png,
# syntax_num_frames_zero.png). Browsers show those files. Such a PNG is decoded again
# without its metadata chunks, then without its animation too: only the chunks that
# draw the default image (IHDR, palette, transparency, colour, IDAT) are left.

_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_PNG_STILL = frozenset({b"IHDR", b"PLTE", b"tRNS", b"gAMA", b"cHRM", b"sRGB", b"iCCP",
                        b"sBIT", b"pHYs", b"bKGD", b"IDAT", b"IEND"})
_APNG = frozenset({b"acTL", b"fcTL", b"fdAT"})
#: what a PNG cannot be drawn without; browsers skip a damaged ancillary chunk (libpng
#: takes its errors as warnings), so the last tries keep only these (and transparency)
_PNG_CRITICAL = frozenset({b"IHDR", b"PLTE", b"IDAT", b"IEND"})


def _fallbacks(data: bytes, type_id: str) -> Iterator[tuple[bytes, frozenset[bytes]]]:
    """What to decode when the whole file does not, each with the chunk types it leaves
    out; built only then (a PNG that decodes, nearly all of them, costs no copy)."""
    if type_id in ("image.bmp", "image.x-ms-bmp"):
        rebuilt = _bmp_bitfields(data)
        if rebuilt is not None:
            yield rebuilt, frozenset()
        return
    if type_id != "image.png" or not data.startswith(_PNG_SIGNATURE):
        return
    last: frozenset[bytes] = frozenset()
    for keep in (_PNG_STILL | _APNG, _PNG_STILL, _PNG_CRITICAL | {b"tRNS"}, _PNG_CRITICAL):
        pixels, dropped = _png_only(data, keep)
        if dropped and dropped != last and b"IDAT" not in dropped:
            yield pixels, dropped
        last = dropped


def _png_only(data: bytes, keep: frozenset[bytes]) -> tuple[bytes, frozenset[bytes]]:
    """The PNG with only the chunks in ``keep`` (a chunk cut short by the end of the
    file is kept as it is), and the types left out."""
    out, dropped, pos = [data[:8]], set(), 8
    while pos + 8 <= len(data):
        length, kind = struct.unpack_from(">I4s", data, pos)
        end = pos + 12 + length
        if kind in keep:
            out.append(data[pos:end])
        else:
            dropped.add(kind)
        pos = end
        if kind == b"IEND":
            break
    if not any(chunk[4:8] == b"IDAT" for chunk in out[1:]):
        dropped.add(b"IDAT")  # nothing to draw: not worth a try
    return b"".join(out), frozenset(dropped)


def _record_dropped(ctx: StageContext, dropped: frozenset[bytes]) -> None:
    if dropped & _APNG:
        ctx.record("image.repaired", "", action=Action.REPAIRED,
                   detail="damaged PNG: the animation does not decode, its default image "
                          "was kept")
    other = sorted(k.decode("latin-1") for k in dropped - _APNG)
    if other:
        ctx.record("image.metadata", "", detail="PNG chunks that do not decode left out: "
                                                 + ", ".join(other))


@functools.cache
def _heif_opener() -> None:
    """Let Pillow read and write HEIF (registered on first use: most jobs hold none)."""
    import pillow_heif  # noqa: PLC0415

    pillow_heif.register_heif_opener(thumbnails=False, depth_images=False, aux_images=False)


def _open(data: bytes) -> Image.Image:
    Image.MAX_IMAGE_PIXELS = MAX_PIXELS
    if data[4:8] == b"ftyp":
        _heif_opener()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            im = Image.open(io.BytesIO(data))
            im.size  # noqa: B018 - forces header parsing inside the warning filter
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise LimitExceeded(f"image too large to decode ({exc.__class__.__name__})") from None
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError, struct.error,
            IndexError, TypeError, NotImplementedError) as exc:
        # NotImplementedError: a DDS pixel format Pillow knows of and does not decode
        raise Malformed(f"image cannot be decoded ({type(exc).__name__})") from None
    w, h = im.size
    if w <= 0 or h <= 0 or w * h > MAX_PIXELS:
        im.close()
        raise LimitExceeded(f"image of {w}x{h} pixels exceeds the decoding limit")
    return im


def _report(im: Image.Image, data: bytes, ctx: StageContext) -> None:
    known = ("icc_profile", "dpi", "gamma", "transparency", "duration", "loop", "background",
             "version", "progressive", "progression", "jfif", "jfif_version", "jfif_unit",
             "jfif_density", "aspect", "interlace", "compression", "srgb", "chromaticity",
             "disposal", "lossless", "bbox", "default_image", "blend", "adobe_transform",
             "resolution", "exif_note", "sizes", "orientation")
    # everything that is not how to draw the pixels is metadata (PNG text chunks land in
    # info under their own keywords, JPEG APPn segments under exif/xmp/photoshop/adobe…)
    found = sorted(k for k, v in im.info.items()
                   if isinstance(k, str) and k not in known and k not in _HEIF_INFO
                   and v not in (None, b"", "", [], {}))
    if found:
        ctx.record("image.metadata", "", detail="metadata: " + ", ".join(found))
    icc = im.info.get("icc_profile")
    if icc and not is_icc_profile(icc):
        ctx.record("image.metadata", "icc_profile",
                   detail=f"a colour profile that is not one ({len(icc)} bytes)")
        del im.info["icc_profile"]  # judged once: nothing after this writes it
    tail = _trailing_bytes(im.format or "", data)
    if tail:
        ctx.record("image.trailing_data", "", detail=f"{tail} bytes after the end of the image")


def _reencode(im: Image.Image, data: bytes, fmt: str, dst: BinaryIO, ctx: StageContext, *,
              lossless: bool) -> bool:
    """Write the pixels of every frame of ``im`` (read from ``data``) to dst; True when
    the input was truncated."""
    try:  # a later frame may declare a bomb of a size the first did not
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            frames, truncated = _decode(im, data)
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise LimitExceeded(f"image too large to decode ({exc.__class__.__name__})") from None
    frames = [f.convert(_STRAIGHT[f.mode]) if f.mode in _STRAIGHT else f for f in frames]
    options = _save_options(im, fmt, frames, lossless=lossless)
    first, rest = frames[0], frames[1:]
    more = options.pop("append_images", [])  # an icon's other sizes (not frames)
    if fmt == "BMP" and first.mode in ("RGBA", "LA", "PA") and not rest:
        dst.write(_bmp_with_alpha(first.convert("RGBA"), first.info.get("dpi")))
        return truncated
    try:
        first.save(dst, format=fmt, save_all=bool(rest), append_images=rest + more, **options)
    except (OSError, ValueError, OverflowError) as exc:
        # OverflowError: a size the format cannot hold (a GIF frame placed past 65535
        # rows makes Pillow's canvas taller than a GIF can be)
        raise Malformed(f"image cannot be re-encoded ({type(exc).__name__})") from None
    return truncated


#: premultiplied ("associated") alpha, which TIFF holds and Pillow reads but writes in
#: no format: the same pixels with straight alpha
_STRAIGHT = {"La": "LA", "RGBa": "RGBA"}

#: what Pillow raises on damaged image data (TypeError too: a damaged TIFF directory
#: without the image's dimensions)
_DAMAGE = (OSError, ValueError, SyntaxError, EOFError, struct.error, IndexError, TypeError)


def _decode(im: Image.Image, data: bytes) -> tuple[list[Image.Image], bool]:
    """Every frame's pixels, and whether the input was truncated or damaged: then the
    frames before the damage (an APNG whose later frame chunks are broken shows its
    first frame in a browser, a GIF cut short its first frames)."""
    ImageFile.LOAD_TRUNCATED_IMAGES = False
    frames: list[Image.Image] = []
    try:
        return _frames(im, frames), False
    except OSError:
        ImageFile.LOAD_TRUNCATED_IMAGES = True  # decode what is there, like viewers
        frames = []
        try:
            try:
                im.seek(0)
                return _frames(im, frames), True
            except _DAMAGE as exc:
                if frames:
                    return _before_damage(frames, exc)
            # nothing decoded again in the reader that failed (an interlaced PNG's
            # decoder raises TypeError when run twice): a fresh reader of the same bytes
            with Image.open(io.BytesIO(data)) as again:
                return _frames(again, frames), True
        except _DAMAGE as exc:
            return _before_damage(frames, exc)
        finally:
            ImageFile.LOAD_TRUNCATED_IMAGES = False
    except _DAMAGE as exc:  # OSError is caught above
        return _before_damage(frames, exc)


def _before_damage(frames: list[Image.Image], exc: Exception) -> tuple[list[Image.Image], bool]:
    """The frames decoded before ``exc`` (marked truncated); none: Malformed."""
    if not frames:
        raise Malformed(f"image data cannot be decoded ({type(exc).__name__})") from None
    return frames, True


def _frames(im: Image.Image, frames: list[Image.Image]) -> list[Image.Image]:
    """Decode every frame into ``frames`` (which keeps what decoded if one fails).

    Pillow counts a GIF's frames by reading through all of them, which fails on damage
    in a later frame before the first is decoded; then the frames are visited by
    seeking until one fails, and that failure, like any other, marks the damage.
    """
    try:
        declared: int | None = getattr(im, "n_frames", 1)
    except _DAMAGE:
        declared = None
    if declared is not None and declared > MAX_FRAMES:
        raise LimitExceeded(f"image has {declared} frames")
    decoded = 0
    for index in itertools.count():
        if declared is not None and index >= declared:
            break
        if index >= MAX_FRAMES:
            raise LimitExceeded(f"image has more than {MAX_FRAMES} frames")
        im.seek(index)  # past the last good frame of a damaged file: raises
        frame = im.copy()
        frame.load()
        decoded += frame.width * frame.height * len(frame.getbands())
        if decoded > MAX_DECODED:
            raise LimitExceeded(f"image decodes to more than {MAX_DECODED} bytes")
        frame.info = {k: v for k, v in im.info.items() if k in ("duration", "loop", "disposal",
                                                                  "transparency", "background")}
        frames.append(frame)
    if len(frames) == 1 and im.format in ("JPEG", "TIFF", "WEBP", "PNG"):
        method = _ORIENTATION.get(im.getexif().get(0x0112, 1))
        if method is not None:  # rotate the pixels before EXIF (and its orientation) goes
            frames[0] = frames[0].transpose(method)
    return frames


_T = Image.Transpose
_ORIENTATION = {2: _T.FLIP_LEFT_RIGHT, 3: _T.ROTATE_180, 4: _T.FLIP_TOP_BOTTOM,
                5: _T.TRANSPOSE, 6: _T.ROTATE_270, 7: _T.TRANSVERSE, 8: _T.ROTATE_90}


def _save_options(im: Image.Image, fmt: str, frames: list[Image.Image], *,
                  lossless: bool) -> dict[str, Any]:
    opts: dict[str, Any] = {}
    icc = im.info.get("icc_profile")
    if icc and fmt in ("JPEG", "PNG", "TIFF", "WEBP", "AVIF", "HEIF"):  # _report judged it
        opts["icc_profile"] = icc
    if fmt == "JPEG":
        tables = getattr(im, "quantization", None)
        if im.format == "JPEG" and tables and frames[0].mode == im.mode:
            # the source's own quantization tables and subsampling: no visible loss
            from PIL import JpegImagePlugin  # noqa: PLC0415

            opts.update(qtables=tables, subsampling=JpegImagePlugin.get_sampling(im))
        else:
            opts["quality"] = 92
        if frames[0].mode not in ("L", "RGB", "CMYK"):
            frames[0] = frames[0].convert("RGB")
    elif fmt == "GIF":
        for key in ("duration", "loop", "transparency", "background"):
            if key in im.info:
                opts[key] = im.info[key]
        if len(frames) > 1:
            opts["duration"] = [f.info.get("duration", im.info.get("duration", 100))
                                for f in frames]
            # Pillow hands out every frame whole (the frames before it and their disposal
            # already applied): each must replace the one before, or where it is
            # transparent the earlier frame stayed visible behind it
            opts["disposal"] = 2
    elif fmt == "WEBP":
        opts.update(lossless=lossless, quality=90)
        if len(frames) > 1:
            opts["duration"] = [f.info.get("duration", 100) for f in frames]
            opts["loop"] = im.info.get("loop", 0)
    elif fmt in ("AVIF", "HEIF"):
        opts["quality"] = 90
        if fmt == "HEIF" and im.info.get("nclx_profile"):  # colour primaries and transfer
            opts["nclx_profile"] = im.info["nclx_profile"]
    elif fmt == "TIFF":  # black and white (scans, faxes): CCITT G4, as scanners write it
        bilevel = all(f.mode == "1" for f in frames)
        opts["compression"] = "group4" if bilevel else "tiff_adobe_deflate"
    elif fmt == "ICO" and im.info.get("sizes"):  # every size the icon held
        opts["sizes"] = sorted({tuple(size[:2]) for size in im.info["sizes"]})
        opts["append_images"] = _icon_sizes(im, opts["sizes"], frames[0].size)
    elif fmt == "DDS":
        # uncompressed: Pillow's block compressors changed pixels of a texture they
        # had decoded by up to 32 (DXT1) and 50 (BC5) of 255; raw pixels change none
        if frames[0].mode not in ("RGB", "RGBA", "L", "LA"):  # a palette may be transparent
            frames[0] = frames[0].convert("RGBA")
    elif fmt == "JPEG2000":
        opts["irreversible"] = False  # lossless (5/3 wavelet)
        if im.format == "JPEG2000" and _is_codestream(im):
            opts["no_jp2"] = True
    elif fmt == "PNG" and len(frames) > 1:
        # an APNG's first image may be shown only where animation is not (default
        # image): written as a frame it flashed by at every loop. The durations are
        # then the animation's frames' alone.
        default = bool(im.info.get("default_image"))
        opts["default_image"] = default
        opts["duration"] = [f.info.get("duration", 100) for f in frames[default:]]
        opts["loop"] = im.info.get("loop", 0)
    return opts


def _icon_sizes(im: Image.Image, sizes: list[tuple[int, int]],
                skip: tuple[int, int]) -> list[Image.Image]:
    """Each size's own picture (an icon's small sizes are drawn by hand: redrawn from the
    largest they differed by a mean 40-74 per channel in Pillow's pillow.ico); a size
    that does not decode is drawn from the largest, as before."""
    ico = getattr(im, "ico", None)
    out = []
    for size in sizes:
        if size == skip or ico is None:
            continue
        try:
            picture = ico.getimage(size)
            picture.load()
        except _DAMAGE:
            continue
        if picture.size == size:
            out.append(picture.convert(_STRAIGHT.get(picture.mode, picture.mode)))
    return out


def _bmp_with_alpha(im: Image.Image, dpi: object) -> bytes:
    """A 32-bit BMP whose fourth byte is alpha, as viewers read it: a BITMAPV4HEADER
    with BI_BITFIELDS masks. Pillow writes RGBA with the plain header, where that byte
    is reserved and every reader drops the transparency."""
    width, height = im.size
    pixels = im.transpose(Image.Transpose.FLIP_TOP_BOTTOM).tobytes("raw", "BGRA")
    ppm = 2835  # 72 dpi
    if isinstance(dpi, tuple) and dpi and isinstance(dpi[0], (int, float)) and dpi[0] > 0:
        ppm = round(float(dpi[0]) / 0.0254)
    header = struct.pack("<IiiHHIIiiII", 108, width, height, 1, 32, 3, len(pixels), ppm, ppm,
                         0, 0)
    header += struct.pack("<IIII", 0x00FF0000, 0x0000FF00, 0x000000FF, 0xFF000000)
    header += b"BGRs" + bytes(36) + bytes(12)  # sRGB; endpoints and gamma unused
    offset = 14 + len(header)
    return b"BM" + struct.pack("<IHHI", offset + len(pixels), 0, 0, offset) + header + pixels


# -- cursors: icons with a hot spot (where the pointer points) instead of colour planes
#
# A .cur is an .ico whose directory says type 2 and holds each picture's hot spot
# where an icon has its planes and bit count. Pillow reads only a cursor's largest
# picture and writes no cursors: it is read as the icon it is (every size, as icons
# are) and written as a cursor again, with each size's hot spot.

Hotspots = dict[tuple[int, int], bytes]


def _as_pillow_reads(data: bytes, type_id: str) -> tuple[bytes, Hotspots | None]:
    """What Pillow is given for ``data``: a cursor as an icon with its hot spots (by
    picture size), anything else as it is (and no hot spots)."""
    if type_id != "image.x-win-bitmap":
        return data, None
    count = struct.unpack_from("<H", data, 4)[0] if len(data) >= 6 else 0
    if data[:4] != b"\0\0\2\0" or not count or 6 + 16 * count > len(data):
        raise Malformed("cursor without a readable directory")
    icon = bytearray(data)
    icon[2] = 1
    hotspots: Hotspots = {}
    for i in range(count):
        entry = 6 + 16 * i
        size = (data[entry] or 256, data[entry + 1] or 256)
        hotspots.setdefault(size, data[entry + 4:entry + 8])
        # an icon's planes and bit count (Pillow takes a 32-bit picture's alpha by the
        # latter): those of the picture's bitmap header
        at = struct.unpack_from("<I", data, entry + 12)[0]
        depth = data[at + 14:at + 16] if data[at:at + 4] != b"\x89PNG" else b""
        icon[entry + 4:entry + 8] = b"\1\0" + (depth if len(depth) == 2 else b"\x20\0")
        if len(depth) == 2:  # and where its mask ends (Pillow finds the mask by the size)
            icon[entry + 8:entry + 12] = struct.pack("<I", _dib_size(data, at))
    return bytes(icon), hotspots


def _dib_size(data: bytes, at: int) -> int:
    """The bytes of an icon's bitmap at ``at``: header, palette, colour rows and AND
    mask rows (a directory may say otherwise: Pillow's mask_1.cur says 8)."""
    if at + 40 > len(data):
        return 0
    header, width, height, _, bpp, _, _, _, _, used = struct.unpack_from("<IiiHHIIiiI", data, at)
    rows, width = abs(height) // 2, abs(width)
    palette = (used or (1 << bpp if bpp <= 8 else 0)) * 4
    size = header + palette + rows * ((width * bpp + 31) // 32 * 4 + (width + 31) // 32 * 4)
    return max(0, min(int(size), len(data) - at))  # a directory entry's field: 32 bits


def _write_cursor(im: Image.Image, dst: BinaryIO, hotspots: Hotspots) -> bool:
    """Write the cursor read as the icon ``im``: every size it holds, each a 32-bit
    bitmap with its AND mask (what every cursor reader takes) and the hot spot of that
    size in the input."""
    ico = getattr(im, "ico", None)
    sizes = sorted({tuple(size[:2]) for size in im.info.get("sizes") or [im.size]},
                   reverse=True)
    pictures = []
    for size in sizes:
        try:
            picture = ico.getimage(size) if ico is not None else im
            picture.load()
        except _DAMAGE:
            continue
        pictures.append(picture.convert("RGBA"))
    if not pictures:
        raise Malformed("cursor image data cannot be decoded")
    directory, blobs = [b"\0\0\2\0" + struct.pack("<H", len(pictures))], []
    offset = 6 + 16 * len(pictures)
    for picture in pictures:
        width, height = picture.size
        upright = picture.transpose(Image.Transpose.FLIP_TOP_BOTTOM)
        colour = upright.tobytes("raw", "BGRA")
        # the AND mask: 1 where the cursor is transparent, rows padded to 32 bits
        clear = upright.getchannel("A").point(lambda a: 255 if a == 0 else 0)
        bits = clear.convert("1", dither=Image.Dither.NONE).tobytes()
        row, padded = (width + 7) // 8, (width + 31) // 32 * 4
        mask = b"".join(bits[y * row:(y + 1) * row].ljust(padded, b"\0") for y in range(height))
        blob = struct.pack("<IiiHHIIiiII", 40, width, height * 2, 1, 32, 0,
                           len(colour) + len(mask), 0, 0, 0, 0) + colour + mask
        hotspot = hotspots.get((width, height), bytes(4))
        directory.append(struct.pack("<BBBB4sII", width % 256, height % 256, 0, 0, hotspot,
                                     len(blob), offset))
        blobs.append(blob)
        offset += len(blob)
    dst.write(b"".join(directory + blobs))
    return False


# -- Photoshop documents: the composite image, as a PNG

def _flatten(im: Image.Image, dst: BinaryIO, ctx: StageContext) -> bool:
    """Write the document's composite (the picture Photoshop stores for readers that do
    not compose layers) as a PNG; layers, paths, thumbnails and embedded (smart) objects
    are not kept. Colour: CMYK through its profile to sRGB, as viewers show it."""
    try:
        im.load()
        picture = im.copy()
    except _DAMAGE as exc:
        raise Malformed(f"image data cannot be decoded ({type(exc).__name__})") from None
    icc = im.info.get("icc_profile")
    if picture.mode == "CMYK":
        picture = _cmyk_to_srgb(picture, icc)
        icc = None
    elif picture.mode not in ("1", "L", "LA", "P", "RGB", "RGBA", "I;16"):
        picture = picture.convert("RGBA" if "A" in picture.getbands() else "RGB")
    options: dict[str, Any] = {"icc_profile": icc} if icc else {}
    try:
        picture.save(dst, format="PNG", **options)
    except (OSError, ValueError) as exc:
        raise Malformed(f"image cannot be re-encoded ({type(exc).__name__})") from None
    ctx.output_type = ("image.png", "png")
    ctx.record("image.converted", "", action=Action.NEUTRALIZED,
               detail="Photoshop document delivered as a PNG of its composite image "
                      "(layers, paths and embedded objects are not kept)")
    return False


def _cmyk_to_srgb(picture: Image.Image, icc: bytes | None) -> Image.Image:
    from PIL import ImageCms  # noqa: PLC0415 - LittleCMS, only for CMYK documents

    if icc:
        try:
            source = ImageCms.ImageCmsProfile(io.BytesIO(icc))
            converted = ImageCms.profileToProfile(picture, source, ImageCms.createProfile("sRGB"),
                                                  outputMode="RGB")
        except (OSError, ValueError, TypeError, ImageCms.PyCMSError):
            converted = None
        if isinstance(converted, Image.Image):
            return converted
    return picture.convert("RGB")


# -- BMP bit fields Pillow does not read (any masks, as the format allows)

def _bmp_bitfields(data: bytes) -> bytes | None:
    """A BMP of 16 or 32 bits per pixel whose colour masks Pillow refuses ("Unsupported
    BMP bitfields layout": BMP Suite's rgb32bf.bmp, 10-bit or 4-bit channels), as a
    BMP it reads; None for anything else."""
    if len(data) < 70 or data[:2] != b"BM":
        return None
    offset, header = struct.unpack_from("<II", data, 10)
    width, height, _, bpp, compression = struct.unpack_from("<iiHHI", data, 18)
    if header not in (40, 52, 56, 108, 124) or bpp not in (16, 32) or compression not in (3, 6):
        return None
    nmasks = 4 if header >= 56 or compression == 6 else 3
    masks = struct.unpack_from(f"<{nmasks}I", data, 54)
    rows, stride = abs(height), (width * bpp + 31) // 32 * 4
    if width <= 0 or not rows or width * rows > MAX_PIXELS \
            or offset + stride * rows > len(data) or not all(masks[:3]):
        return None
    raw = "I;16" if bpp == 16 else "I;32"
    values = Image.frombuffer("I", (width, rows), data[offset:offset + stride * rows], "raw",
                              raw, stride, -1 if height > 0 else 1).convert("I")
    bands = [_bmp_channel(values, mask) for mask in masks if mask]
    if any(band is None for band in bands):
        return None
    picture = Image.merge("RGBA" if len(bands) == 4 else "RGB", bands)  # type: ignore[arg-type]
    if picture.mode == "RGBA":
        return _bmp_with_alpha(picture, None)
    out = io.BytesIO()
    picture.save(out, format="BMP")
    return out.getvalue()


def _bmp_channel(values: Image.Image, mask: int) -> Image.Image | None:
    """One channel of 32-bit pixel values: its bits under ``mask``, scaled to 0-255."""
    from PIL import ImageMath  # noqa: PLC0415

    shift = (mask & -mask).bit_length() - 1
    field = mask >> shift
    bits = field.bit_length()
    if field != (1 << bits) - 1:
        return None  # bits that are not next to each other: no BMP writer makes these
    if bits > 8:
        drop = bits - 8
        band = ImageMath.lambda_eval(lambda a: (a["v"] >> (shift + drop)) & 255, v=values)
    else:
        band = ImageMath.lambda_eval(lambda a: ((a["v"] >> shift) & field) * 255 / field,
                                     v=values)
    assert isinstance(band, Image.Image)
    return band.convert("L")


def _is_codestream(im: Image.Image) -> bool:
    """A raw JPEG 2000 codestream (.j2k) rather than the JP2 container."""
    return getattr(im, "codec", "jp2") == "j2k"


def is_icc_profile(data: bytes) -> bool:
    """Whether ``data`` is a colour profile LittleCMS reads (the ICC header's "acsp"
    signature, its size, and the profile itself). The slot takes any bytes: 960 kB
    that were no profile at all went through in JPEG, PNG, TIFF and WebP, verdict
    clean."""
    if len(data) < 132 or data[36:40] != b"acsp" \
            or int.from_bytes(data[:4], "big") > len(data):
        return False
    from PIL import ImageCms  # noqa: PLC0415 - LittleCMS, only for images with a profile

    try:
        ImageCms.ImageCmsProfile(io.BytesIO(data))
    except (OSError, ValueError, TypeError):
        return False
    return True


def _trailing_bytes(fmt: str, data: bytes) -> int:
    """How many bytes follow the end of the image (0 when the end cannot be told)."""
    end = {"PNG": _png_end, "JPEG": _jpeg_end, "GIF": _gif_end, "BMP": _bmp_end,
           "ICO": _ico_end}.get(fmt, lambda _: None)(data)
    return max(0, len(data) - end) if end is not None else 0


def _png_end(data: bytes) -> int | None:
    end = data.find(b"IEND")
    return end + 8 if end >= 0 else None


#: a marker in a JPEG's entropy-coded data: 0xFF not followed by a stuffed 0x00, a
#: restart marker (RSTn) or another 0xFF (fill)
_JPEG_MARKER = re.compile(rb"\xff[^\x00\xd0-\xd7\xff]")


def _jpeg_end(data: bytes) -> int | None:
    """Just past the EOI marker that ends the image, walking the segments: the last
    0xFFD9 in the file may belong to what was appended (an appended JPEG, or a payload
    ending in those bytes)."""
    pos, n = 2, len(data)
    while pos + 4 <= n:
        if data[pos] != 0xFF:
            return None
        marker = data[pos + 1]
        if marker == 0xFF:          # fill byte
            pos += 1
            continue
        if marker == 0xD9:
            return pos + 2
        if 0xD0 <= marker <= 0xD7 or marker == 0x01:   # no length
            pos += 2
            continue
        pos += 2 + int.from_bytes(data[pos + 2:pos + 4], "big")
        if marker == 0xDA:          # the scan's entropy-coded data runs to the next marker
            m = _JPEG_MARKER.search(data, pos)
            if m is None:
                return None
            pos = m.start()
    return None


def _gif_end(data: bytes) -> int | None:
    """Just past the trailer (0x3B), walking the blocks and their sub-blocks."""
    n = len(data)
    if n < 13:
        return None
    flags = data[10]
    pos = 13 + (3 << ((flags & 7) + 1) if flags & 0x80 else 0)
    while pos < n:
        block = data[pos]
        if block == 0x3B:
            return pos + 1
        if block == 0x21:           # extension: label, then sub-blocks
            pos += 2
        elif block == 0x2C:         # image: descriptor, local colour table, LZW size
            if pos + 10 > n:
                return None
            local = data[pos + 9]
            pos += 10 + (3 << ((local & 7) + 1) if local & 0x80 else 0) + 1
        else:
            return None
        while pos < n and data[pos]:  # sub-blocks up to the empty one
            pos += data[pos] + 1
        pos += 1
    return None


def _bmp_end(data: bytes) -> int | None:
    """The file size the header declares, when it covers the pixel data's start."""
    if len(data) < 14:
        return None
    size, offset = struct.unpack_from("<I4xI", data, 2)
    return size if offset < size <= len(data) else None


def _ico_end(data: bytes) -> int | None:
    """The end of the last picture the icon's directory lists."""
    if len(data) < 6:
        return None
    count = struct.unpack_from("<H", data, 4)[0]
    if not count or 6 + 16 * count > len(data):
        return None
    end = max(sum(struct.unpack_from("<II", data, 6 + 16 * i + 8)) for i in range(count))
    return end if end <= len(data) else None


registry.register(ImageStage())

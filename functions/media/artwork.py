"""Artwork: turn one uploaded cover image into square WebP and JPEG variants: fixed sizes and its own.

The upload is untrusted, so every check that can be made without decoding pixels comes first: the
byte size from the file system, the format and the dimensions from the header. Only then are the
pixels decoded, fully, so a truncated file or one the decoder rejects is refused here rather than
shipped as a half-grey cover. A header that declares a huge canvas (a "decompression bomb": a few kilobytes of
PNG that inflate to gigabytes) is refused on its declared size, before any decoding. Pillow has a
global guard of its own, but it only warns below 2 x 89 megapixels and can be switched off by any
other code in the process, so this module sets its own limit and leaves Pillow's settings alone.

Every variant is a freshly encoded image without metadata: a phone photo's EXIF carries GPS
coordinates, and an orientation tag left in a variant would make viewers rotate it a second time.
Colour is converted to sRGB from an embedded ICC profile where there is one (a Display P3 photo or a
CMYK print file would otherwise look dull or wrong), and the outputs are untagged sRGB, which is
what browsers assume.

Memory stays bounded by the declared-pixel limit and by working small as early as possible: a large
JPEG is decoded at a reduced scale by libjpeg itself (``draft``), the crop to a square happens
before any mode conversion, and the smaller variants are made from the largest one.
"""

from __future__ import annotations

import io
import warnings
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

from PIL import ExifTags, Image, ImageCms, ImageOps, UnidentifiedImageError

from functions.observability import logger
from functions.step_errors import StepFailed

ACCEPTED_FORMATS: dict[str, str] = {
    "JPEG": "image/jpeg",
    "PNG": "image/png",
    "WEBP": "image/webp",
    "GIF": "image/gif",
}
MAX_IMAGE_BYTES = 20 * 1024 * 1024
# 40 MP is a 6300 x 6300 square, twenty times what the largest variant needs; decoded as RGBA it is
# 160 MB, which leaves room for the crop and conversions in a modest Lambda.
MAX_IMAGE_PIXELS = 40_000_000
# JPEGs are decoded at 1/2, 1/4 or 1/8 scale (``draft``), so a 48-50 MP phone photo decodes to a few
# megapixels: they may declare more. The decoded size is still held to MAX_IMAGE_PIXELS.
MAX_JPEG_PIXELS = 250_000_000
MIN_IMAGE_SIDE = 64
VARIANT_SIZES = (1400, 600, 300, 96)

_ACCEPTED_NAMES = "JPEG, PNG, WebP or GIF"
_ALPHA_MODES = frozenset({"RGBA", "RGBa", "LA", "La", "PA"})
# (format, file extension, content type, Pillow save options), in the order variants are listed.
_ENCODINGS: tuple[tuple[str, str, str, dict[str, Any]], ...] = (
    # libwebp's default effort: method 6 makes files a few percent smaller at about twice the time.
    ("webp", "webp", "image/webp", {"format": "WEBP", "quality": 80, "method": 4}),
    ("jpeg", "jpg", "image/jpeg", {"format": "JPEG", "quality": 85, "optimize": True, "progressive": True}),
)
_TRANSPOSING_ORIENTATIONS = frozenset({5, 6, 7, 8})
# Formats Pillow cannot open at all but people do upload as artwork: named in the refusal so the
# message says what the file is instead of calling it "not an image".
_ISO_BMFF_BRANDS = {
    b"heic": "HEIC",
    b"heix": "HEIC",
    b"hevc": "HEIC",
    b"heim": "HEIC",
    b"heis": "HEIC",
    b"mif1": "HEIF",
    b"msf1": "HEIF",
    b"avif": "AVIF",
    b"avis": "AVIF",
}


@dataclass(frozen=True)
class Variant:
    size: int
    format: str
    path: Path
    content_type: str
    byte_size: int

    def to_json(self) -> dict[str, Any]:
        return {"size": self.size, "format": self.format, "contentType": self.content_type, "byteSize": self.byte_size}


@dataclass(frozen=True)
class Artwork:
    source_format: str
    # As displayed, i.e. after the EXIF orientation; the declared size, not a reduced decode's.
    source_width: int
    source_height: int
    variants: tuple[Variant, ...]

    def to_json(self) -> dict[str, Any]:
        return {
            "sourceFormat": self.source_format,
            "sourceWidth": self.source_width,
            "sourceHeight": self.source_height,
            "variants": [variant.to_json() for variant in self.variants],
        }


def render(source: Path, out_dir: Path) -> Artwork:
    """Square variants of ``source`` written to ``out_dir`` as ``{size}.webp`` and ``{size}.jpg``:
    the centre square at its own side capped at the largest of ``VARIANT_SIZES``, then each smaller
    one of ``VARIANT_SIZES``, largest first, WebP before JPEG (a square of at least
    ``MIN_IMAGE_SIDE`` but smaller than every size gets the one variant at its own side). Never
    upscales. Raises ``StepFailed`` with a stable code for anything it will not take."""
    byte_size = source.stat().st_size
    if byte_size > MAX_IMAGE_BYTES:
        raise StepFailed(
            "image_too_large",
            f"The image is {byte_size / 1024 / 1024:.1f} MB; the limit is {MAX_IMAGE_BYTES // 1024 // 1024} MB. "
            "Upload a smaller file.",
        )
    source_format, width, height, square = _decode_square(source)

    side = square.width
    # The square's own side (at most the largest size) is a variant too: a 1000 px cover is served
    # at 1000 px rather than at the 600 px size below it.
    sizes = sorted({min(side, VARIANT_SIZES[0]), *(size for size in VARIANT_SIZES if size <= side)}, reverse=True)
    out_dir.mkdir(parents=True, exist_ok=True)
    # One Lanczos step from the largest variant is as sharp as one from the source and far cheaper.
    largest = _resized(square, sizes[0])
    del square
    variants: list[Variant] = []
    for size in sizes:
        image = largest if size == sizes[0] else _resized(largest, size)
        for name, ext, content_type, options in _ENCODINGS:
            path = out_dir / f"{size}.{ext}"
            image.save(path, **options)
            variants.append(
                Variant(size=size, format=name, path=path, content_type=content_type, byte_size=path.stat().st_size)
            )
    return Artwork(source_format=source_format, source_width=width, source_height=height, variants=tuple(variants))


def _decode_square(source: Path) -> tuple[str, int, int, Image.Image]:
    """(source format, displayed width, displayed height, the centre square as sRGB without
    metadata), after every refusal that applies."""
    # Pillow reports a canvas between 1x and 2x its own limit as a warning: made an error here so it
    # cannot slip past as log noise. The filter is scoped to this block (Lambda runs one request per
    # process, so the process-wide warnings state is ours for the duration).
    with warnings.catch_warnings():
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        try:
            image = Image.open(source, formats=list(ACCEPTED_FORMATS))
        except (Image.DecompressionBombError, Image.DecompressionBombWarning) as error:
            raise _too_many_pixels(None) from error
        except UnidentifiedImageError as error:
            raise _not_accepted(source) from error
        except MemoryError:
            raise
        except Exception as error:  # a header Pillow recognised but could not parse
            raise _damaged() from error

        with image:
            declared_width, declared_height = image.size
            is_jpeg = image.format in {"JPEG", "MPO"}
            declared_limit = MAX_JPEG_PIXELS if is_jpeg else MAX_IMAGE_PIXELS
            if declared_width * declared_height > declared_limit:
                raise _too_many_pixels((declared_width, declared_height), declared_limit)
            if min(declared_width, declared_height) < MIN_IMAGE_SIDE:
                raise StepFailed(
                    "image_too_small",
                    f"The image is {declared_width} × {declared_height} pixels; artwork needs at least "
                    f"{MIN_IMAGE_SIDE} pixels on its shorter side. Upload a larger image.",
                )
            # A multi-picture JPEG (a phone photo carrying a depth or HDR gain map) opens as MPO; its
            # first picture is an ordinary JPEG.
            source_format = "jpeg" if image.format == "MPO" else (image.format or "").lower()
            icc_profile = image.info.get("icc_profile")
            # Only JPEG implements draft (every other format ignores it): libjpeg decodes at 1/2, 1/4
            # or 1/8 scale, the smallest that keeps both sides at least the largest variant size.
            image.draft(None, (VARIANT_SIZES[0], VARIANT_SIZES[0]))
            if image.size[0] * image.size[1] > MAX_IMAGE_PIXELS:
                raise _too_many_pixels((declared_width, declared_height), declared_limit)
            try:
                # Animated GIF and WebP stay on their first frame: nothing here seeks.
                image.load()
                # Read after load(): a PNG may keep its EXIF in a chunk after the pixel data.
                transposes = image.getexif().get(ExifTags.Base.Orientation) in _TRANSPOSING_ORIENTATIONS
                ImageOps.exif_transpose(image, in_place=True)
            except MemoryError:
                raise
            except Exception as error:
                raise _damaged() from error
            decoded_width, decoded_height = image.size
            square_side = min(decoded_width, decoded_height)
            left, top = (decoded_width - square_side) // 2, (decoded_height - square_side) // 2
            square = image.crop((left, top, left + square_side, top + square_side))

    if transposes:
        declared_width, declared_height = declared_height, declared_width
    square = _to_srgb(square, icc_profile if isinstance(icc_profile, bytes) else None)
    # Encoders only write the metadata passed to save(), but nothing should be able to copy the
    # source's EXIF, XMP or ICC from here on.
    square.info.clear()
    return source_format, declared_width, declared_height, square


def _to_srgb(image: Image.Image, icc_profile: bytes | None) -> Image.Image:
    if image.mode.startswith("I"):
        # 16-bit greyscale: Pillow's own conversion to 8 bits clips at 255 instead of scaling.
        image = image.point(lambda value: value * (1 / 256)).convert("L")
    if image.mode in _ALPHA_MODES or "transparency" in image.info:
        # Transparent pixels keep whatever colour they had (often black, sometimes anything): only
        # compositing over a background makes them look as they do on a white page.
        rgba = image.convert("RGBA")
        image = Image.new("RGB", rgba.size, (255, 255, 255))
        image.paste(rgba, mask=rgba)
    if icc_profile and image.mode in ("RGB", "CMYK"):
        try:
            converted = ImageCms.profileToProfile(
                image, ImageCms.ImageCmsProfile(io.BytesIO(icc_profile)), _srgb(), outputMode="RGB"
            )
        except (ImageCms.PyCMSError, OSError, ValueError) as error:
            # A broken or mismatched profile is common in the wild and the pixels are still usable:
            # read them as sRGB, which is what a browser would do with the original.
            logger.info("ignoring an unusable ICC profile", extra={"error": str(error), "mode": image.mode})
        else:
            assert converted is not None  # only None when converting in place
            image = converted
    return image if image.mode == "RGB" else image.convert("RGB")


@cache
def _srgb() -> ImageCms.ImageCmsProfile:
    return ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB"))


def _resized(image: Image.Image, size: int) -> Image.Image:
    if image.size == (size, size):
        return image
    return image.resize((size, size), Image.Resampling.LANCZOS)


def _too_many_pixels(size: tuple[int, int] | None, limit: int = MAX_IMAGE_PIXELS) -> StepFailed:
    declared = f" is {size[0]} × {size[1]} pixels; it" if size else ""
    return StepFailed(
        "image_too_many_pixels",
        f"The image{declared} has more than {limit // 1_000_000} megapixels. "
        "Upload a smaller version; 3000 × 3000 pixels is plenty.",
    )


def _damaged() -> StepFailed:
    return StepFailed(
        "image_unreadable", "The image is damaged or incomplete. Export it again and upload the new file."
    )


def _not_accepted(source: Path) -> StepFailed:
    """The restricted open did not recognise ``source``: tell a real image in another format (BMP,
    TIFF, HEIC...) from a file that is no image at all."""
    name = _identify(source)
    if name is None:
        return StepFailed(
            "image_unreadable", f"This file is not an image we can read. Upload a {_ACCEPTED_NAMES} image."
        )
    what = f"{name} files" if name else "Images in this format"
    return StepFailed("image_unsupported", f"{what} can't be used for artwork. Upload a {_ACCEPTED_NAMES} image.")


def _identify(source: Path) -> str | None:
    """The format's name, "" for an image whose format is not known, None for no image at all."""
    try:
        # Opening with every plugin reads only the header; no pixels are decoded.
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(source) as image:
                return image.format or ""
    except Image.DecompressionBombError:
        return ""
    except MemoryError:
        raise
    except Exception:
        return _sniff(source)


def _sniff(source: Path) -> str | None:
    with source.open("rb") as file:
        head = file.read(16)
    if head[4:8] == b"ftyp" and head[8:12] in _ISO_BMFF_BRANDS:
        return _ISO_BMFF_BRANDS[head[8:12]]
    if head.startswith(b"%PDF-"):
        return "PDF"
    return None

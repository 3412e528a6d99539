"""Artwork runs real Pillow over images built in each test, whose colours and geometry are known."""

from __future__ import annotations

import io
import random
import struct
import time
import warnings
import zlib
from collections.abc import Callable
from pathlib import Path

import pytest
from PIL import ExifTags, Image, ImageCms, ImageDraw, ImageFile

from functions.media import artwork
from functions.media.artwork import MAX_IMAGE_BYTES, Artwork, render
from functions.step_errors import StepFailed

RED = (220, 30, 30)
GREEN = (30, 200, 60)
BLUE = (30, 60, 220)
WHITE = (255, 255, 255)
ACCEPTED = "JPEG, PNG, WebP or GIF"


def close(actual: tuple[int, ...], expected: tuple[int, ...], tolerance: int = 14) -> bool:
    """Lossy outputs move flat colours by a few levels, never by more than ``tolerance``."""
    return all(abs(a - e) <= tolerance for a, e in zip(actual, expected, strict=True))


def pixel(path: Path, x: int, y: int) -> tuple[int, ...]:
    with Image.open(path) as image:
        value = image.convert("RGB").getpixel((x, y))
    assert isinstance(value, tuple)
    return value


def at(path: Path, fx: float, fy: float) -> tuple[int, ...]:
    """The pixel at a fraction of the way across and down, whatever the variant's size."""
    with Image.open(path) as image:
        return pixel(path, round(fx * (image.width - 1)), round(fy * (image.height - 1)))


Box = tuple[int, int, int, int]
Colour = tuple[int, int, int]


def banded(size: tuple[int, int], bands: list[tuple[Box, Colour]], fill: Colour = RED) -> Image.Image:
    """An RGB image of ``fill`` with rectangles ``(box, colour)`` painted over it."""
    image = Image.new("RGB", size, fill)
    draw = ImageDraw.Draw(image)
    for box, colour in bands:
        draw.rectangle(box, fill=colour)
    return image


def refusal(source: Path, out_dir: Path) -> StepFailed:
    with pytest.raises(StepFailed) as failure:
        render(source, out_dir)
    message = failure.value.message
    assert message.endswith(".") and len(message) < 200, message
    assert not out_dir.exists() or not any(out_dir.iterdir())
    return failure.value


def by_name(result: Artwork) -> dict[str, Path]:
    return {variant.path.name: variant.path for variant in result.variants}


# --- a wide photo: the happy path -------------------------------------------------------------------


@pytest.fixture(scope="module")
def wide(tmp_path_factory: pytest.TempPathFactory) -> Artwork:
    """3000 x 2000 JPEG: red centre square (columns 500..2499), a green band left of it, blue right."""
    directory = tmp_path_factory.mktemp("wide")
    source = directory / "wide.jpg"
    banded((3000, 2000), [((0, 0, 499, 1999), GREEN), ((2500, 0, 2999, 1999), BLUE)]).save(source, quality=95)
    return render(source, directory / "out")


def test_a_3000x2000_jpeg_becomes_eight_square_variants_largest_first(wide):
    assert (wide.source_format, wide.source_width, wide.source_height) == ("jpeg", 3000, 2000)
    assert [(v.size, v.format, v.content_type, v.path.name) for v in wide.variants] == [
        (1400, "webp", "image/webp", "1400.webp"),
        (1400, "jpeg", "image/jpeg", "1400.jpg"),
        (600, "webp", "image/webp", "600.webp"),
        (600, "jpeg", "image/jpeg", "600.jpg"),
        (300, "webp", "image/webp", "300.webp"),
        (300, "jpeg", "image/jpeg", "300.jpg"),
        (96, "webp", "image/webp", "96.webp"),
        (96, "jpeg", "image/jpeg", "96.jpg"),
    ]
    for variant in wide.variants:
        assert variant.byte_size == variant.path.stat().st_size > 0
        with Image.open(variant.path) as image:
            assert image.format == variant.format.upper()
            assert image.size == (variant.size, variant.size)
            assert image.mode == "RGB"
    assert wide.to_json()["variants"][1] == {
        "size": 1400,
        "format": "jpeg",
        "contentType": "image/jpeg",
        "byteSize": wide.variants[1].byte_size,
    }


def test_the_crop_keeps_the_centre_and_drops_the_sides(wide):
    for variant in wide.variants:
        last = variant.size - 1
        # The edges of the square were columns 500 and 2499 of the source: red, with the green and
        # blue bands that sat just beyond them gone entirely.
        for x in (2, variant.size // 2, last - 2):
            for y in (2, last - 2):
                assert close(pixel(variant.path, x, y), RED), (variant.path.name, x, y)


def test_a_portrait_image_loses_its_top_and_bottom(tmp_path):
    # Given 600 x 1000, red between rows 200 and 799, blue above and green below
    source = tmp_path / "tall.png"
    banded((600, 1000), [((0, 0, 599, 199), BLUE), ((0, 800, 599, 999), GREEN)]).save(source)

    result = render(source, tmp_path / "out")

    assert [v.size for v in result.variants] == [600, 600, 300, 300, 96, 96]
    square = by_name(result)["600.webp"]
    for y in (2, 300, 597):
        assert close(pixel(square, 300, y), RED), y


# --- orientation and the decode at reduced scale ------------------------------------------------------


@pytest.mark.parametrize(
    ("orientation", "displayed", "red_at", "blue_at"),
    [
        (None, (600, 300), (150, 30), (150, 270)),  # as stored: red on top
        (6, (300, 600), (270, 150), (30, 150)),  # rotate 90° clockwise: the top goes right
        (8, (300, 600), (30, 150), (270, 150)),  # rotate 90° counter-clockwise: the top goes left
    ],
)
def test_exif_orientation_is_applied_before_the_crop(tmp_path, orientation, displayed, red_at, blue_at):
    # Given a 600 x 300 JPEG whose top half is red and bottom half blue, as a phone stores it
    source = tmp_path / "phone.jpg"
    exif = Image.Exif()
    if orientation:
        exif[ExifTags.Base.Orientation] = orientation
    banded((600, 300), [((0, 150, 599, 299), BLUE)]).save(source, exif=exif, quality=95)

    result = render(source, tmp_path / "out")

    assert (result.source_width, result.source_height) == displayed
    assert [v.size for v in result.variants] == [300, 300, 96, 96]
    for name in ("300.webp", "300.jpg"):
        path = by_name(result)[name]
        assert close(pixel(path, *red_at), RED), name
        assert close(pixel(path, *blue_at), BLUE), name
        with Image.open(path) as image:
            assert ExifTags.Base.Orientation not in image.getexif()  # viewers must not rotate it again


def test_a_large_jpeg_is_decoded_at_reduced_scale_and_small_variants_come_from_the_largest(tmp_path, monkeypatch):
    # Given a 4000 x 3000 phone photo stored sideways (Orientation 6)
    source = tmp_path / "big.jpg"
    exif = Image.Exif()
    exif[ExifTags.Base.Orientation] = 6
    banded((4000, 3000), [((0, 0, 3999, 1499), BLUE)]).save(source, exif=exif)
    resized_from: list[tuple[int, int]] = []
    original_resize = Image.Image.resize

    def spy(self, size, *args, **kwargs):
        resized_from.append(self.size)
        return original_resize(self, size, *args, **kwargs)

    monkeypatch.setattr(Image.Image, "resize", spy)

    result = render(source, tmp_path / "out")

    # The size reported is the photo's, upright, not the reduced decode's.
    assert (result.source_width, result.source_height) == (3000, 4000)
    # libjpeg decoded at half scale (2000 x 1500), the square was 1500, and 600/300/96 came from 1400.
    assert resized_from == [(1500, 1500), (1400, 1400), (1400, 1400), (1400, 1400)]
    assert [v.size for v in result.variants][::2] == [1400, 600, 300, 96]
    # Blue was the stored top half: after turning clockwise it is on the right.
    assert close(pixel(by_name(result)["1400.jpg"], 1300, 700), BLUE)
    assert close(pixel(by_name(result)["1400.jpg"], 100, 700), RED)


# --- metadata and colour --------------------------------------------------------------------------


def test_outputs_carry_no_exif_gps_xmp_or_icc(tmp_path):
    # Given a photo with a camera name, GPS coordinates, XMP and an ICC profile
    exif = Image.Exif()
    exif[ExifTags.Base.Make] = "LeakyPhone-Model-X"
    gps = exif.get_ifd(ExifTags.IFD.GPSInfo)
    gps[ExifTags.GPS.GPSLatitudeRef] = "N"
    gps[ExifTags.GPS.GPSLatitude] = (52.0, 31.0, 12.5)
    gps[ExifTags.GPS.GPSMapDatum] = "WGS-84-LEAK-CHECK"
    xmp = b'<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF>XMP-LEAK-CHECK</rdf:RDF></x:xmpmeta>'
    srgb = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    source = tmp_path / "photo.jpg"
    Image.new("RGB", (700, 500), RED).save(source, exif=exif, xmp=xmp, icc_profile=srgb)
    with Image.open(source) as original:
        assert original.getexif().get_ifd(ExifTags.IFD.GPSInfo)[ExifTags.GPS.GPSMapDatum] == "WGS-84-LEAK-CHECK"
        assert original.info["xmp"] and original.info["icc_profile"]

    result = render(source, tmp_path / "out")

    assert len(result.variants) == 6  # 500 (the square), 300, 96
    for variant in result.variants:
        data = variant.path.read_bytes()
        for marker in (b"LeakyPhone", b"WGS-84-LEAK", b"XMP-LEAK", b"Exif\x00\x00", b"ICC_PROFILE", b"ICCP"):
            assert marker not in data, (variant.path.name, marker)
        with Image.open(variant.path) as image:
            assert not image.getexif()
            assert not {"exif", "xmp", "icc_profile"} & set(image.info), image.info.keys()
            assert close(at(variant.path, 0.5, 0.5), RED)


def swapped_primaries_profile() -> bytes:
    """A minimal ICC v2 RGB display profile whose red and green colorants are sRGB's green and red:
    a pixel stored as red *means* green. Any real wide-gamut profile would shift colours only subtly;
    this one makes a missing conversion impossible to miss."""

    def xyz(x: float, y: float, z: float) -> bytes:
        return b"XYZ \0\0\0\0" + struct.pack(">3i", *(round(v * 65536) for v in (x, y, z)))

    curve = b"curv\0\0\0\0" + struct.pack(">IH", 1, round(2.2 * 256)) + b"\0\0"
    tags = [
        (b"wtpt", xyz(0.9642, 1.0, 0.8249)),
        (b"rXYZ", xyz(0.3851, 0.7169, 0.0971)),  # sRGB's green
        (b"gXYZ", xyz(0.4361, 0.2225, 0.0139)),  # sRGB's red
        (b"bXYZ", xyz(0.1431, 0.0606, 0.7141)),
        (b"rTRC", curve),
        (b"gTRC", curve),
        (b"bTRC", curve),
    ]
    offset = 128 + 4 + 12 * len(tags)
    table, data = b"", b""
    for signature, body in tags:
        table += signature + struct.pack(">II", offset + len(data), len(body))
        data += body + b"\0" * (-len(body) % 4)
    size = offset + len(data)
    header = (
        struct.pack(">I4sI4s4s4s", size, b"\0\0\0\0", 0x02100000, b"mntr", b"RGB ", b"XYZ ")
        + b"\0" * 12
        + b"acsp"
        + b"\0" * 28
        + xyz(0.9642, 1.0, 0.8249)[8:]
        + b"\0" * 48
    )
    assert len(header) == 128
    return header + struct.pack(">I", len(tags)) + table + data


def test_an_embedded_icc_profile_is_converted_to_srgb_rather_than_dropped(tmp_path):
    # Given red pixels whose profile says they are green
    source = tmp_path / "tagged.png"
    Image.new("RGB", (200, 200), (230, 20, 20)).save(source, icc_profile=swapped_primaries_profile())

    result = render(source, tmp_path / "out")

    for variant in result.variants:
        red, green, blue = at(variant.path, 0.5, 0.5)
        assert green > 150 and red < 90 and blue < 90, (variant.path.name, red, green, blue)


def test_an_unusable_icc_profile_is_ignored(tmp_path):
    source = tmp_path / "broken-profile.jpg"
    Image.new("RGB", (200, 200), RED).save(source, icc_profile=random.Random(1).randbytes(600))

    result = render(source, tmp_path / "out")

    assert all(close(at(variant.path, 0.5, 0.5), RED) for variant in result.variants)


# --- pixel modes, transparency, animation ------------------------------------------------------------


def rgba_with_transparent_green(path: Path) -> Path:
    # Fully transparent pixels that still hold a colour: a naive conversion would show them green.
    image = Image.new("RGBA", (200, 200), (*GREEN, 0))
    draw = ImageDraw.Draw(image)
    draw.rectangle((60, 60, 139, 139), fill=(*RED, 255))
    draw.rectangle((0, 160, 199, 199), fill=(0, 0, 0, 128))
    image.save(path)
    return path


def la_png(path: Path) -> Path:
    image = Image.new("LA", (200, 200), (0, 0))
    ImageDraw.Draw(image).rectangle((60, 60, 139, 139), fill=(60, 255))
    image.save(path)
    return path


def palette_png_with_transparent_index(path: Path) -> Path:
    image = Image.new("P", (200, 200), 0)
    image.putpalette([*GREEN, *RED])
    ImageDraw.Draw(image).rectangle((60, 60, 139, 139), fill=1)
    image.save(path, transparency=0)
    return path


def gif_with_transparency(path: Path) -> Path:
    palette_png_with_transparent_index(path.with_suffix(".png"))
    with Image.open(path.with_suffix(".png")) as image:
        image.save(path, transparency=0)
    return path


@pytest.mark.parametrize(
    ("make", "name", "centre"),
    [
        (rgba_with_transparent_green, "rgba.png", RED),
        (la_png, "la.png", (60, 60, 60)),
        (palette_png_with_transparent_index, "palette.png", RED),
        (gif_with_transparency, "transparent.gif", RED),
    ],
)
def test_transparency_is_composited_onto_white(tmp_path, make, name, centre):
    result = render(make(tmp_path / name), tmp_path / "out")

    for variant in result.variants:
        assert close(at(variant.path, 0.02, 0.02), WHITE), variant.path.name
        assert close(at(variant.path, 0.5, 0.5), centre), variant.path.name
        if name == "rgba.png":
            # Half-transparent black over white is mid-grey.
            assert close(at(variant.path, 0.5, 0.92), (127, 127, 127)), variant.path.name


@pytest.mark.parametrize("fmt", ["GIF", "WEBP"])
def test_an_animated_image_keeps_its_first_frame(tmp_path, fmt):
    frames = [Image.new("RGB", (200, 200), colour) for colour in (RED, GREEN, BLUE)]
    source = tmp_path / f"animated.{fmt.lower()}"
    frames[0].save(source, fmt, save_all=True, append_images=frames[1:], duration=100, loop=0)
    with Image.open(source) as animated:
        assert getattr(animated, "n_frames", 1) == 3

    result = render(source, tmp_path / "out")

    assert result.source_format == fmt.lower()
    assert all(close(at(variant.path, 0.5, 0.5), RED) for variant in result.variants)


def cmyk_jpeg(path: Path) -> Path:
    Image.new("CMYK", (200, 200), (0, 255, 255, 0)).save(path)  # pure red ink
    return path


def sixteen_bit_grey_png(path: Path) -> Path:
    Image.new("I;16", (200, 200), 40_000).save(path)  # 40000 / 65535 of full scale = level 156
    return path


def quantized_png(path: Path) -> Path:
    banded((200, 200), [((0, 0, 199, 99), BLUE)]).quantize(colors=4).save(path)
    return path


def grey_jpeg(path: Path) -> Path:
    Image.new("L", (200, 200), 90).save(path)
    return path


@pytest.mark.parametrize(
    ("make", "name", "mode", "expected"),
    [
        (quantized_png, "palette.png", "P", RED),
        (cmyk_jpeg, "cmyk.jpg", "CMYK", (255, 0, 0)),
        (sixteen_bit_grey_png, "grey16.png", "I;16", (156, 156, 156)),
        (grey_jpeg, "grey.jpg", "L", (90, 90, 90)),
    ],
)
def test_other_pixel_modes_become_rgb_with_their_colours(tmp_path, make, name, mode, expected):
    source = make(tmp_path / name)
    with Image.open(source) as image:
        assert image.mode == mode

    result = render(source, tmp_path / "out")

    # The palette image's top half is blue: sample the bottom, which is red.
    assert all(close(at(variant.path, 0.5, 0.75), expected) for variant in result.variants)
    with Image.open(result.variants[0].path) as image:
        assert image.mode == "RGB"


@pytest.mark.parametrize(("fmt", "reported"), [("JPEG", "jpeg"), ("PNG", "png"), ("WEBP", "webp"), ("GIF", "gif")])
def test_each_accepted_format_is_reported_by_name(tmp_path, fmt, reported):
    source = tmp_path / "cover"
    Image.new("RGB", (300, 200), RED).save(source, fmt)

    result = render(source, tmp_path / "out")

    assert (result.source_format, result.source_width, result.source_height) == (reported, 300, 200)
    assert artwork.ACCEPTED_FORMATS[fmt] == f"image/{reported}"


def test_a_multi_picture_jpeg_is_read_as_its_first_picture(tmp_path):
    # Phones store depth and HDR gain maps as extra pictures in the JPEG; Pillow calls that MPO.
    source = tmp_path / "ultrahdr.jpg"
    gain_map = Image.new("RGB", (100, 100), GREEN)
    Image.new("RGB", (400, 300), RED).save(source, "MPO", save_all=True, append_images=[gain_map])
    with Image.open(source) as image:
        assert image.format == "MPO"

    result = render(source, tmp_path / "out")

    assert result.source_format == "jpeg"
    assert close(pixel(result.variants[0].path, 150, 150), RED)


# --- sizes --------------------------------------------------------------------------------------------


def test_a_500px_image_is_never_upscaled(tmp_path):
    source = tmp_path / "small.png"
    Image.new("RGB", (500, 500), RED).save(source)

    result = render(source, tmp_path / "out")

    assert [v.size for v in result.variants][::2] == [500, 300, 96]
    assert sorted(path.name for path in (tmp_path / "out").iterdir()) == [
        "300.jpg", "300.webp", "500.jpg", "500.webp", "96.jpg", "96.webp",
    ]  # fmt: skip


@pytest.mark.parametrize(
    ("side", "sizes"),
    [
        (1000, [1000, 600, 300, 96]),
        (1400, [1400, 600, 300, 96]),
        (1401, [1400, 600, 300, 96]),
        (2000, [1400, 600, 300, 96]),
        (600, [600, 300, 96]),
        (599, [599, 300, 96]),
    ],
)
def test_the_largest_variant_is_the_square_itself_up_to_1400px(tmp_path, side, sizes):
    # Given a cover between the fixed sizes (a 1000 px one would otherwise top out at 600 px)
    source = tmp_path / "cover.png"
    Image.new("RGB", (side, side + 50), RED).save(source)

    # When it is rendered
    result = render(source, tmp_path / "out")

    # Then its own side, at most 1400 px, is the largest variant, in both formats
    assert [v.size for v in result.variants][::2] == sizes
    assert [v.format for v in result.variants][:2] == ["webp", "jpeg"]
    for variant in result.variants[:2]:
        with Image.open(variant.path) as image:
            assert image.size == (sizes[0], sizes[0])


@pytest.mark.parametrize("side", [80, 64])
def test_an_image_smaller_than_every_variant_gets_one_at_its_own_size(tmp_path, side):
    source = tmp_path / "tiny.png"
    Image.new("RGB", (side, side + 30), RED).save(source)

    result = render(source, tmp_path / "out")

    assert result.to_json() == {
        "sourceFormat": "png",
        "sourceWidth": side,
        "sourceHeight": side + 30,
        "variants": [
            {"size": side, "format": "webp", "contentType": "image/webp", "byteSize": result.variants[0].byte_size},
            {"size": side, "format": "jpeg", "contentType": "image/jpeg", "byteSize": result.variants[1].byte_size},
        ],
    }
    for variant in result.variants:
        with Image.open(variant.path) as image:
            assert image.size == (side, side)


@pytest.mark.parametrize("size", [(40, 40), (63, 63), (1000, 40)])
def test_an_image_too_small_is_refused(tmp_path, size):
    source = tmp_path / "icon.png"
    Image.new("RGB", size, RED).save(source)

    failure = refusal(source, tmp_path / "out")

    assert failure.code == "image_too_small"
    assert f"{size[0]} × {size[1]}" in failure.message and "64" in failure.message


# --- refusals -----------------------------------------------------------------------------------------


def heic_header(path: Path) -> Path:
    # Only the ISO-BMFF box that names the brand: Pillow cannot open HEIC at all, so the bytes after
    # it are never looked at.
    path.write_bytes(struct.pack(">I", 24) + b"ftypheic" + b"\0\0\0\0mif1heic" + bytes(64))
    return path


def pdf(path: Path) -> Path:
    path.write_bytes(b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n1 0 obj\n<< /Type /Catalog >>\nendobj\ntrailer\n<< >>\n%%EOF\n")
    return path


def saved_as(fmt: str) -> Callable[[Path], Path]:
    def make(path: Path) -> Path:
        Image.new("RGB", (200, 200), RED).save(path, fmt)
        return path

    return make


@pytest.mark.parametrize(
    ("make", "named"),
    [
        (saved_as("BMP"), "BMP"),
        (saved_as("TIFF"), "TIFF"),
        (saved_as("ICO"), "ICO"),
        (heic_header, "HEIC"),
        (pdf, "PDF"),
    ],
)
def test_images_in_other_formats_are_unsupported_and_the_message_says_which_to_use(tmp_path, make, named):
    failure = refusal(make(tmp_path / "cover.bin"), tmp_path / "out")

    assert failure.code == "image_unsupported"
    assert failure.message.startswith(f"{named} files")
    assert ACCEPTED in failure.message


def truncated(fmt: str) -> Callable[[Path], Path]:
    def make(path: Path) -> Path:
        noise = Image.frombytes("RGB", (200, 200), random.Random(2).randbytes(200 * 200 * 3))
        buffer = io.BytesIO()
        noise.save(buffer, fmt)
        path.write_bytes(buffer.getvalue()[: len(buffer.getvalue()) // 2])
        return path

    return make


def random_bytes(path: Path) -> Path:
    path.write_bytes(random.Random(3).randbytes(4096))
    return path


def empty(path: Path) -> Path:
    path.touch()
    return path


@pytest.mark.parametrize(
    ("make", "damaged"),
    [
        (random_bytes, False),
        (empty, False),
        (truncated("JPEG"), True),
        (truncated("PNG"), True),
        (truncated("WEBP"), True),
        (truncated("GIF"), True),
    ],
    ids=["random-bytes", "empty", "truncated-jpeg", "truncated-png", "truncated-webp", "truncated-gif"],
)
def test_what_is_not_an_image_or_is_damaged_is_unreadable(tmp_path, make, damaged):
    failure = refusal(make(tmp_path / "upload"), tmp_path / "out")

    assert failure.code == "image_unreadable"
    assert ("damaged" in failure.message) is damaged
    assert damaged or ACCEPTED in failure.message


def test_audio_sent_as_artwork_is_unreadable(tmp_path, wav_3s):
    failure = refusal(wav_3s, tmp_path / "out")

    assert failure.code == "image_unreadable"
    assert failure.message == f"This file is not an image we can read. Upload a {ACCEPTED} image."


def padded_jpeg(path: Path, size: int) -> Path:
    """A real JPEG followed by zeros up to ``size`` bytes: sparse on disk, nothing held in memory."""
    Image.new("RGB", (200, 200), RED).save(path)
    with path.open("r+b") as file:
        file.truncate(size)
    return path


def test_a_file_over_the_byte_limit_is_refused_without_being_opened(tmp_path, monkeypatch):
    source = padded_jpeg(tmp_path / "huge.jpg", MAX_IMAGE_BYTES + 1)

    def no_open(*args, **kwargs):
        raise AssertionError("a file over the byte limit must not be opened as an image")

    monkeypatch.setattr(Image, "open", no_open)

    failure = refusal(source, tmp_path / "out")

    assert failure.code == "image_too_large"
    assert "20 MB" in failure.message


def test_a_file_at_the_byte_limit_is_accepted(tmp_path):
    result = render(padded_jpeg(tmp_path / "exactly.jpg", MAX_IMAGE_BYTES), tmp_path / "out")

    assert [v.size for v in result.variants] == [200, 200, 96, 96]


def one_bit_png(path: Path, width: int, height: int) -> Path:
    """A real, valid all-black 1-bit PNG of any declared size, written in streamed compressed rows:
    20000 x 20000 is 50 MB of pixel rows, but a few hundred kilobytes on disk and in memory."""

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    compressor = zlib.compressobj(1)
    row = bytes(1 + (width + 7) // 8)  # filter byte 0, then zero bits
    rows_per_block = max(1, 4_000_000 // len(row))
    idat = bytearray()
    for start in range(0, height, rows_per_block):
        idat += compressor.compress(row * min(rows_per_block, height - start))
    idat += compressor.flush()
    with path.open("wb") as file:
        file.write(b"\x89PNG\r\n\x1a\n")
        file.write(chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)))
        file.write(chunk(b"IDAT", bytes(idat)))
        file.write(chunk(b"IEND", b""))
    return path


def test_the_bomb_writer_makes_real_images_so_the_bombs_are_real_too(tmp_path):
    source = one_bit_png(tmp_path / "small-bomb-shape.png", 130, 100)

    result = render(source, tmp_path / "out")

    assert [v.size for v in result.variants] == [100, 100, 96, 96]
    assert all(close(pixel(variant.path, 48, 48), (0, 0, 0)) for variant in result.variants)


@pytest.mark.parametrize(
    "side",
    [
        8_000,  # 64 MP: over our limit, under Pillow's own
        10_000,  # 100 MP: Pillow's warning zone
        20_000,  # 400 MP: Pillow's own error
    ],
)
def test_a_decompression_bomb_is_refused_from_its_header_without_decoding(tmp_path, monkeypatch, side):
    source = one_bit_png(tmp_path / "bomb.png", side, side)
    assert source.stat().st_size < 1_000_000
    decoded: list[object] = []

    def no_decode(self, *args, **kwargs):
        decoded.append(self)
        raise AssertionError("pixels decoded")

    monkeypatch.setattr(ImageFile.ImageFile, "load", no_decode)
    pillow_limit = Image.MAX_IMAGE_PIXELS

    started = time.perf_counter()
    with warnings.catch_warnings(record=True) as warned:
        warnings.simplefilter("always")
        failure = refusal(source, tmp_path / "out")
    elapsed = time.perf_counter() - started

    assert failure.code == "image_too_many_pixels"
    assert "40 megapixels" in failure.message
    assert decoded == []
    assert elapsed < 0.5
    assert [str(warning.message) for warning in warned] == []  # Pillow's bomb warning did not escape
    assert pillow_limit == Image.MAX_IMAGE_PIXELS


def test_a_48_megapixel_phone_jpeg_is_taken_because_it_decodes_at_reduced_scale(tmp_path):
    path = tmp_path / "phone.jpg"
    Image.new("RGB", (8000, 6000), (30, 160, 90)).save(path, format="JPEG", quality=70)

    made = artwork.render(path, tmp_path / "out")

    assert (made.source_width, made.source_height) == (8000, 6000)
    assert [v.size for v in made.variants[::2]] == [1400, 600, 300, 96]


def test_a_jpeg_declaring_more_than_the_jpeg_limit_is_refused_without_decoding(tmp_path, monkeypatch):
    path = tmp_path / "huge.jpg"
    Image.new("RGB", (800, 600), (30, 160, 90)).save(path, format="JPEG")
    monkeypatch.setattr(artwork, "MAX_JPEG_PIXELS", 400_000)
    monkeypatch.setattr(artwork, "MAX_IMAGE_PIXELS", 100_000)
    with pytest.raises(StepFailed) as refused:
        artwork.render(path, tmp_path / "out")
    assert refused.value.code == "image_too_many_pixels"
    assert "800 × 600" in refused.value.message


def test_a_jpeg_whose_reduced_decode_is_still_too_big_is_refused(tmp_path, monkeypatch):
    # 3000 x 3000 drafts to 1500 x 1500 at best (both sides stay >= 1400): 2.25 MP decoded.
    path = tmp_path / "big.jpg"
    Image.new("RGB", (3000, 3000), (30, 160, 90)).save(path, format="JPEG")
    monkeypatch.setattr(artwork, "MAX_IMAGE_PIXELS", 2_000_000)
    with pytest.raises(StepFailed) as refused:
        artwork.render(path, tmp_path / "out")
    assert refused.value.code == "image_too_many_pixels"

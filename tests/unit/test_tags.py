"""Embedded tags: written by ffmpeg (as encoders and DAWs do) and by mutagen (covers), read back."""

from __future__ import annotations

import base64
import io
import subprocess
from pathlib import Path

import pytest
from mutagen.flac import FLAC, Picture
from mutagen.id3 import APIC, ID3, TCON
from mutagen.mp4 import MP4, MP4Cover
from mutagen.oggopus import OggOpus
from PIL import Image

from functions.media import tags
from functions.step_errors import StepFailed
from tests.conftest import FFMPEG

METADATA = {
    "title": "Night Drive",
    "artist": "Ana Lua",
    "album": "Coastlines",
    "genre": "Synthwave",
    "date": "2024-05-01",
    "track": "3/12",
}
EXPECTED = {
    "title": "Night Drive",
    "artist": "Ana Lua",
    "album": "Coastlines",
    "genre": "Synthwave",
    "year": 2024,
    "trackNumber": 3,
}


def tagged(path: Path, *extra: str, metadata: dict[str, str] = METADATA) -> Path:
    flags = [arg for key, value in metadata.items() for arg in ("-metadata", f"{key}={value}")]
    subprocess.run(
        [
            FFMPEG, "-hide_banner", "-nostdin", "-y", "-v", "error",
            "-f", "lavfi", "-i", "sine=frequency=330:sample_rate=44100:duration=1.5",
            *flags, *extra, str(path),
        ],
        check=True,
    )  # fmt: skip
    return path


def cover_jpeg(size: tuple[int, int] = (120, 80)) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", size, (10, 120, 200)).save(buffer, format="JPEG")
    return buffer.getvalue()


def read(path: Path) -> tags.EmbeddedTags:
    with path.open("rb") as fileobj:
        return tags.read(fileobj)


@pytest.mark.parametrize(
    ("name", "extra", "container"),
    [
        ("t.mp3", ("-c:a", "libmp3lame", "-id3v2_version", "3"), "MP3"),
        ("t.m4a", ("-c:a", "aac"), "MP4"),
        ("t.flac", (), "FLAC"),
        ("t.opus", ("-c:a", "libopus"), "OggOpus"),
        ("t.aiff", ("-write_id3v2", "1"), "AIFF"),
        # ffmpeg writes WAV tags as a RIFF LIST/INFO chunk, as most DAWs do.
        ("t.wav", (), "WAVE"),
    ],
)
def test_every_container_yields_the_same_fields(tmp_path, name, extra, container):
    found = read(tagged(tmp_path / name, *extra))
    assert found.container == container
    assert found.fields() == {**EXPECTED, "trackTotal": 12}
    assert found.cover is None


def test_id3_front_cover_is_preferred_over_other_pictures(tmp_path):
    path = tagged(tmp_path / "c.mp3", "-c:a", "libmp3lame")
    front, back = cover_jpeg((100, 100)), cover_jpeg((50, 50))
    id3 = ID3(path)
    id3.add(APIC(encoding=3, mime="image/jpeg", type=4, desc="back", data=back))
    id3.add(APIC(encoding=3, mime="image/jpeg", type=3, desc="front", data=front))
    id3.save(path)

    found = read(path)
    assert found.cover == tags.EmbeddedCover(front, "image/jpeg")


def test_numeric_id3v1_genres_are_named(tmp_path):
    path = tagged(tmp_path / "g.mp3", "-c:a", "libmp3lame", metadata={"title": "x"})
    id3 = ID3(path)
    id3.add(TCON(encoding=3, text=["(13)"]))
    id3.save(path)
    assert read(path).genre == "Pop"


def test_mp4_flac_and_ogg_covers(tmp_path):
    data = cover_jpeg()
    m4a = tagged(tmp_path / "c.m4a", "-c:a", "aac")
    mp4 = MP4(m4a)
    mp4["covr"] = [MP4Cover(data, imageformat=MP4Cover.FORMAT_JPEG)]
    mp4.save()

    picture = Picture()
    picture.type, picture.mime, picture.data = 3, "image/jpeg", data
    flac_path = tagged(tmp_path / "c.flac")
    flac = FLAC(flac_path)
    flac.add_picture(picture)
    flac.save()

    opus_path = tagged(tmp_path / "c.opus", "-c:a", "libopus")
    opus = OggOpus(opus_path)
    opus["metadata_block_picture"] = [base64.b64encode(picture.write()).decode()]
    opus.save()

    for path in (m4a, flac_path, opus_path):
        assert read(path).cover == tags.EmbeddedCover(data, "image/jpeg"), path.name


def test_an_oversized_cover_is_reported_not_kept(tmp_path, monkeypatch):
    monkeypatch.setattr(tags, "MAX_COVER_BYTES", 100)
    path = tagged(tmp_path / "big.mp3", "-c:a", "libmp3lame")
    id3 = ID3(path)
    id3.add(APIC(encoding=3, mime="image/jpeg", type=3, desc="", data=cover_jpeg()))
    id3.save(path)

    found = read(path)
    assert found.cover is None
    assert found.cover_note and "cover" in found.cover_note


def test_values_are_cleaned_like_user_input(tmp_path):
    noisy = {"title": "  Night\tDrive \x01 ", "artist": "A" * 400, "date": "c. 1987 remaster", "track": "0"}
    found = read(tagged(tmp_path / "n.flac", metadata=noisy))
    assert found.title == "Night Drive"
    assert found.artist == "A" * tags.MAX_TEXT_LENGTH
    assert found.year == 1987
    assert found.track_number is None  # "0" is no track number


def test_untagged_and_unknown_files_yield_no_fields(tmp_path):
    assert read(tagged(tmp_path / "plain.flac", metadata={})).fields() == {}
    unknown = tmp_path / "noise.bin"
    unknown.write_bytes(b"\x13\x37" * 4096)
    assert read(unknown) == tags.EmbeddedTags(container=None)


def test_a_damaged_tag_block_is_a_lane_failure_with_a_code(tmp_path):
    path = tagged(tmp_path / "d.flac")
    data = bytearray(path.read_bytes())
    # Corrupt the first metadata block header's length so the block runs past the end of the file.
    data[5:8] = b"\xff\xff\xff"
    path.write_bytes(bytes(data))
    with pytest.raises(StepFailed) as failure:
        read(path)
    assert failure.value.code == "tags_unreadable"


def test_riff_info_parsing_reads_headers_and_skips_the_audio(tmp_path):
    path = tagged(tmp_path / "long.wav", metadata={"title": "Long"})
    reads: list[int] = []

    class CountingReader(io.FileIO):
        def read(self, size=-1):
            data = super().read(size)
            reads.append(len(data))
            return data

    with CountingReader(path, "rb") as fileobj:
        assert tags._riff_info(fileobj) == {"title": "Long"}
    assert sum(reads) < 1024 < path.stat().st_size


@pytest.mark.parametrize(
    ("data", "kind"),
    [
        (cover_jpeg(), ("jpg", "image/jpeg")),
        (b"\x89PNG\r\n\x1a\n" + b"\0" * 8, ("png", "image/png")),
        (b"GIF89a" + b"\0" * 8, ("gif", "image/gif")),
        (b"RIFF\0\0\0\0WEBPVP8 ", ("webp", "image/webp")),
        (b"BM" + b"\0" * 20, ("bin", "application/octet-stream")),
    ],
)
def test_a_covers_type_comes_from_its_bytes_not_its_declared_mime(data, kind):
    assert tags.EmbeddedCover(data, "image/png").kind() == kind

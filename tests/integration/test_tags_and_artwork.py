"""The tags and artwork lanes against moto: embedded tags fill what the uploader left empty, never
more; the original is read with ranged GETs instead of being downloaded; an embedded cover becomes
square WebP/JPEG variants, and a bad one fails only the artwork lane."""

from __future__ import annotations

import io
import subprocess
from pathlib import Path

import httpx
import pytest
from mutagen.id3 import APIC, ID3
from PIL import Image

from functions import clients
from functions.data import storage
from functions.data.models import TrackModel
from functions.domain.catalog import track_mutations, tracks
from functions.media import tags
from tests.conftest import FFMPEG

from .conftest import as_user
from .test_lanes import lanes_by_name
from .test_workflow import processed, upload_and_finalize

TAGS = {"title": "Night Drive", "artist": "Ana Lua", "album": "Coastlines", "genre": "Synthwave", "date": "2019"}


def tagged_mp3(path: Path, *, cover: bytes | None = None, metadata: dict[str, str] = TAGS) -> Path:
    flags = [arg for key, value in metadata.items() for arg in ("-metadata", f"{key}={value}")]
    subprocess.run(
        [
            FFMPEG, "-hide_banner", "-nostdin", "-y", "-v", "error",
            "-f", "lavfi", "-i", "sine=frequency=440:sample_rate=44100:duration=2",
            "-c:a", "libmp3lame", "-b:a", "128k", "-metadata", "track=7/9", *flags, str(path),
        ],
        check=True,
    )  # fmt: skip
    if cover is not None:
        id3 = ID3(path)
        id3.add(APIC(encoding=3, mime="image/jpeg", type=3, desc="front", data=cover))
        id3.save(path)
    return path


def jpeg(size=(640, 480), color=(200, 30, 90)) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", size, color).save(buffer, format="JPEG")
    return buffer.getvalue()


def track_of(stack, user, upload) -> dict:
    return stack.api.get(f"/v1/tracks/{upload['trackId']}", headers=as_user(user)).json()


def test_tags_fill_every_empty_field_and_the_cover_becomes_the_image(stack, artist, runner, tmp_path):
    cover = jpeg()
    path = tagged_mp3(tmp_path / "night-drive-final-v3.mp3", cover=cover)
    upload = upload_and_finalize(stack, artist, path, content_type="audio/mpeg")

    lane = lanes_by_name(processed(stack, artist, upload))["tags"]
    assert lane["state"] == "succeeded", lane
    assert lane["outputs"]["container"] == "MP3"
    assert sorted(lane["outputs"]["applied"]) == ["album", "genre", "title", "trackNumber", "year"]
    assert lane["outputs"]["cover"] == {"used": True, "contentType": "image/jpeg", "byteSize": len(cover)}

    track = track_of(stack, artist, upload)
    assert (track["title"], track["titleSource"]) == ("Night Drive", "tags")  # not "night-drive-final-v3"
    assert (track["album"], track["genre"], track["year"], track["trackNumber"]) == ("Coastlines", "Synthwave", 2019, 7)
    assert track["albumId"] is not None  # joined, as a PATCH naming the album would
    assert track["embeddedTags"]["artist"] == "Ana Lua"

    stored = stack.s3.get_object(
        Bucket=stack.resources.bucket, Key=f"tracks/{upload['trackId'][4:]}/artwork/source-embedded.jpg"
    )
    assert stored["Body"].read() == cover
    assert stored["ContentType"] == "image/jpeg"


def test_what_the_uploader_set_is_never_overwritten(stack, artist, runner, tmp_path):
    path = tagged_mp3(tmp_path / "t.mp3")
    upload = stack.create_upload(artist, path, content_type="audio/mpeg", title="My Own Title", album="My Album")
    stack.put(upload["signedUrl"], path, content_type="audio/mpeg")
    stack.api.post(f"/v1/uploads/{upload['uploadId']}/finalize", headers=as_user(artist))

    lane = lanes_by_name(processed(stack, artist, upload))["tags"]
    assert sorted(lane["outputs"]["applied"]) == ["genre", "trackNumber", "year"]
    track = track_of(stack, artist, upload)
    assert (track["title"], track["titleSource"], track["album"]) == ("My Own Title", "uploader", "My Album")
    # What the file said is still visible.
    assert track["embeddedTags"]["title"] == "Night Drive"
    assert track["embeddedTags"]["album"] == "Coastlines"


def test_an_untagged_file_changes_nothing_and_has_no_cover(stack, artist, runner, wav_3s):
    upload = upload_and_finalize(stack, artist, wav_3s)
    lane = lanes_by_name(processed(stack, artist, upload))["tags"]
    assert lane["state"] == "succeeded"
    assert lane["outputs"]["applied"] == []
    assert "cover" not in lane["outputs"]
    track = track_of(stack, artist, upload)
    assert (track["title"], track["titleSource"]) == ("tone-3s", "file_name")


@pytest.fixture
def counted_gets():
    """Byte ranges of every GetObject the app's S3 client sends."""
    ranges: list[str] = []

    def record(params, **_):
        ranges.append(params.get("Range", "all"))

    events = clients.s3().meta.events
    events.register("provide-client-params.s3.GetObject", record)
    yield ranges
    events.unregister("provide-client-params.s3.GetObject", record)


def test_tags_are_read_with_ranged_gets_not_a_download(stack, tmp_path, counted_gets):
    # A 60-second WAV (10 MB): tags are looked for before the audio (RIFF INFO, where ffmpeg writes
    # them) and after it (an ID3 chunk); the 10 MB in between must never be fetched.
    path = tmp_path / "long.wav"
    subprocess.run(
        [
            FFMPEG, "-hide_banner", "-nostdin", "-y", "-v", "error",
            "-f", "lavfi", "-i", "anoisesrc=duration=60:sample_rate=44100", "-ac", "2",
            "-metadata", "title=Long Take", str(path),
        ],
        check=True,
    )  # fmt: skip
    stack.s3.upload_file(str(path), stack.resources.bucket, "uploads/x/original.wav")
    size = path.stat().st_size

    with storage.open_ranged("uploads/x/original.wav", size=size) as fileobj:
        found = tags.read(fileobj)

    assert found.title == "Long Take"
    assert counted_gets and all(r.startswith("bytes=") for r in counted_gets)
    fetched = sum(int(end) - int(start) + 1 for start, end in (r[6:].split("-") for r in counted_gets))
    assert fetched < size / 10, (fetched, size, counted_gets)


def test_an_embedded_cover_becomes_square_variants_served_by_redirect(stack, artist, runner, tmp_path):
    path = tagged_mp3(tmp_path / "covered.mp3", cover=jpeg(size=(640, 480)))
    upload = upload_and_finalize(stack, artist, path, content_type="audio/mpeg")

    status = processed(stack, artist, upload)
    lane = lanes_by_name(status)["artwork"]
    assert status["status"] == "ready"
    assert lane["state"] == "succeeded", lane
    assert (lane["outputs"]["origin"], lane["outputs"]["width"], lane["outputs"]["height"]) == ("embedded", 640, 480)
    # The centre square is 480 px: itself, then the 300 and 96 variants, never an upscaled 600 or 1400.
    assert [(v["size"], v["format"]) for v in lane["outputs"]["variants"]] == [
        (480, "webp"), (480, "jpeg"), (300, "webp"), (300, "jpeg"), (96, "webp"), (96, "jpeg"),
    ]  # fmt: skip
    track = track_of(stack, artist, upload)
    assert all("key" not in variant for variant in track["artwork"]["variants"])

    redirect = stack.api.get(
        f"/v1/tracks/{upload['trackId']}/artwork?size=200&format=jpeg", headers=as_user(artist), follow_redirects=False
    )
    assert redirect.status_code == 302
    image = httpx.get(redirect.headers["location"])
    assert image.headers["content-type"] == "image/jpeg"
    with Image.open(io.BytesIO(image.content)) as served:
        assert (served.format, served.size) == ("JPEG", (300, 300))
        assert served.getpixel((150, 150)) == pytest.approx((200, 30, 90), abs=8)

    largest = stack.api.get(
        f"/v1/tracks/{upload['trackId']}/artwork?size=4000", headers=as_user(artist), follow_redirects=False
    )
    with Image.open(io.BytesIO(httpx.get(largest.headers["location"]).content)) as served:
        assert (served.format, served.size) == ("WEBP", (480, 480))  # the square's own side


def test_a_bad_cover_fails_the_artwork_lane_and_never_the_audio(stack, artist, runner, tmp_path):
    path = tagged_mp3(tmp_path / "bad-cover.mp3", cover=b"\xff\xd8\xff" + b"not really a jpeg" * 100)
    upload = upload_and_finalize(stack, artist, path, content_type="audio/mpeg")

    status = processed(stack, artist, upload)
    lane = lanes_by_name(status)["artwork"]
    assert status["status"] == "ready"
    assert (lane["state"], lane["code"]) == ("failed", "image_unreadable")
    assert lane["message"]
    assert track_of(stack, artist, upload)["artwork"] is None
    missing = stack.api.get(f"/v1/tracks/{upload['trackId']}/artwork", headers=as_user(artist), follow_redirects=False)
    assert (missing.status_code, missing.json()["error"]["code"]) == (404, "artwork_not_found")


def test_no_image_skips_the_artwork_lane_visibly(stack, artist, runner, wav_3s):
    upload = upload_and_finalize(stack, artist, wav_3s)
    lane = lanes_by_name(processed(stack, artist, upload))["artwork"]
    assert (lane["state"], lane["code"]) == ("skipped", "no_image")


def test_another_user_sees_a_public_tracks_artwork_but_not_a_private_ones(stack, artist, runner, tmp_path):
    path = tagged_mp3(tmp_path / "cover.mp3", cover=jpeg())
    upload = upload_and_finalize(stack, artist, path, content_type="audio/mpeg")
    processed(stack, artist, upload)
    url = f"/v1/tracks/{upload['trackId']}/artwork"
    assert stack.api.get(url, headers=as_user("mallory"), follow_redirects=False).status_code == 302

    made_private = stack.api.patch(
        f"/v1/tracks/{upload['trackId']}", json={"visibility": "private"}, headers=as_user(artist)
    )
    assert made_private.status_code == 200
    response = stack.api.get(url, headers=as_user("mallory"), follow_redirects=False)
    assert (response.status_code, response.json()["error"]["code"]) == (404, "track_not_found")
    assert stack.api.get(url, headers=as_user(artist), follow_redirects=False).status_code == 302


# --- the album tag names an album, as an intent or a PATCH does ---------------------------------------


def album_page(stack, handle: str, slug: str) -> dict:
    response = stack.api.get(f"/v1/artists/{handle}/albums/{slug}")
    assert response.status_code == 200, response.text
    return response.json()


def test_a_files_album_tag_joins_the_owners_album_of_that_name_creating_it_once(stack, artist, runner, tmp_path):
    # Given two files tagged with one album the artist has no album for, uploaded with none named
    first = upload_and_finalize(stack, artist, tagged_mp3(tmp_path / "a.mp3"), content_type="audio/mpeg")
    lane = lanes_by_name(processed(stack, artist, first))["tags"]
    second_file = tagged_mp3(tmp_path / "b.mp3", metadata={**TAGS, "title": "Second", "album": "COASTLINES"})
    second = upload_and_finalize(stack, artist, second_file, content_type="audio/mpeg")
    processed(stack, artist, second)

    # Then the first created the album and joined it; the second joined that same album
    assert "album" in lane["outputs"]["applied"]
    one, two = track_of(stack, artist, first), track_of(stack, artist, second)
    assert one["albumId"] is not None
    assert (one["albumId"], one["album"]) == (two["albumId"], "Coastlines")
    albums_of_alice = stack.api.get("/v1/artists/alice/albums").json()["albums"]
    assert [album["title"] for album in albums_of_alice] == ["Coastlines"]
    page = album_page(stack, "alice", "coastlines")
    assert [t["trackId"] for t in page["tracks"]] == [first["trackId"], second["trackId"]]


def test_a_files_album_tag_joins_an_album_the_artist_already_has(stack, artist, runner, tmp_path):
    existing = stack.api.post("/v1/albums", json={"title": "Coastlines"}, headers=as_user(artist)).json()
    upload = upload_and_finalize(stack, artist, tagged_mp3(tmp_path / "a.mp3"), content_type="audio/mpeg")
    processed(stack, artist, upload)

    assert track_of(stack, artist, upload)["albumId"] == existing["albumId"]
    assert [t["trackId"] for t in album_page(stack, "alice", "coastlines")["tracks"]] == [upload["trackId"]]


def test_the_album_the_artist_named_wins_and_the_tag_creates_no_album(stack, artist, runner, tmp_path):
    path = tagged_mp3(tmp_path / "t.mp3")
    upload = stack.create_upload(artist, path, content_type="audio/mpeg", album="My Album")
    stack.put(upload["signedUrl"], path, content_type="audio/mpeg")
    stack.api.post(f"/v1/uploads/{upload['uploadId']}/finalize", headers=as_user(artist))
    processed(stack, artist, upload)

    track = track_of(stack, artist, upload)
    assert track["album"] == "My Album"
    titles = [album["title"] for album in stack.api.get("/v1/artists/alice/albums").json()["albums"]]
    assert titles == ["My Album"]


def test_the_tags_lane_run_twice_leaves_the_track_in_its_album_once(stack, artist, runner, tmp_path):
    # Given a processed track that the tags lane put into "Coastlines"
    upload = upload_and_finalize(stack, artist, tagged_mp3(tmp_path / "a.mp3"), content_type="audio/mpeg")
    processed(stack, artist, upload)
    track_id = upload["trackId"][4:]
    album_id = track_of(stack, artist, upload)["albumId"]

    # When the lane's album step runs again (a retry), and once more after a crash that joined the
    # album's list but never recorded the album on the track
    assert track_mutations.join_tagged_album(track_id, "Coastlines") is None
    tracks.update(track_id, TrackModel.album_id.remove(), TrackModel.album.remove())
    joined = track_mutations.join_tagged_album(track_id, "Coastlines")

    # Then the track is in the one album, once
    assert joined is not None and joined.album_id == album_id[4:]
    assert [t["trackId"] for t in album_page(stack, "alice", "coastlines")["tracks"]] == [upload["trackId"]]
    assert len(stack.api.get("/v1/artists/alice/albums").json()["albums"]) == 1


def test_an_album_tag_that_cannot_name_an_album_is_left_in_embedded_tags(stack, artist, runner, tmp_path):
    path = tagged_mp3(tmp_path / "a.mp3", metadata={**TAGS, "album": "x" * 250})
    upload = upload_and_finalize(stack, artist, path, content_type="audio/mpeg")
    lane = lanes_by_name(processed(stack, artist, upload))["tags"]

    assert lane["state"] == "succeeded"
    assert "album" not in lane["outputs"]["applied"]
    track = track_of(stack, artist, upload)
    assert (track["albumId"], track["album"]) == (None, None)
    assert track["embeddedTags"]["album"] == "x" * 250

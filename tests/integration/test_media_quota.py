"""Images and documents count in the storage quota (issue 16, docs/limits.md): their intents
reserve the declared size (no pending audio intent), the put event's claim settles it at the
stored size on the file's own ledger item, an uploaded image's rendered variants add theirs, and
deleting the document, replacing the image, or deleting the track or album gives the bytes back."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from functions import ids
from functions.data.models import AlbumModel, TrackModel, UploadModel
from functions.domain.catalog import usage

from .conftest import Stack, as_user, error_of
from .test_artwork_uploads import album_of, artwork_intent, artwork_lane, image_file
from .test_document_uploads import PDF, document_intent, upload_document
from .test_storage_quota import counted_pending, expire, my_usage
from .test_upload_sessions import add_track, new_album, open_session
from .test_workflow import processed, upload_and_finalize, wait_for


def upload_artwork(stack: Stack, user: str, track_id: str, image: Path) -> dict[str, Any]:
    created = artwork_intent(stack, user, track_id, image)
    assert created.status_code == 201, created.text
    assert stack.put(created.json()["signedUrl"], image, content_type="image/png") == 200
    stack.drain_s3_events()
    return dict(created.json())


def variant_bytes(artwork: dict[str, Any] | None) -> int:
    return sum(int(variant["byteSize"]) for variant in (artwork or {}).get("variants", []))


def track_item(track_id: str) -> TrackModel:
    return TrackModel.get(ids.parse("trk", track_id), TrackModel.TRACK_SK, consistent_read=True)


def test_an_artwork_intent_reserves_its_size_and_its_put_event_counts_it(stack, artist, tmp_path, wav_3s):
    # Given a track (its audio counted) and an artwork intent
    upload = upload_and_finalize(stack, artist, wav_3s)
    audio = my_usage(stack, artist)["usedBytes"]
    image = image_file(tmp_path / "a.png", size=(64, 64))
    created = artwork_intent(stack, artist, upload["trackId"], image)
    assert created.status_code == 201, created.text

    # Then the intent reserves its size, and is no pending audio intent
    reserved = my_usage(stack, artist)
    assert (reserved["usedBytes"], reserved["reservedBytes"]) == (audio, image.stat().st_size)
    assert reserved["pendingIntents"] == 0

    # When its file is stored (its put event finalizes it; no runner renders it here)
    assert stack.put(created.json()["signedUrl"], image, content_type="image/png") == 200
    stack.drain_s3_events()

    # Then it counts at its stored size, and a repeated event counts it once
    stack.drain_s3_events()
    current = my_usage(stack, artist)
    assert (current["usedBytes"], current["reservedBytes"]) == (audio + image.stat().st_size, 0)
    assert counted_pending(artist) == (0, 0)


def test_artwork_and_its_variants_count_until_a_newer_image_and_then_the_track_delete_give_them_back(
    stack, artist, runner, tmp_path, wav_3s
):
    # Given a processed track
    upload = upload_and_finalize(stack, artist, wav_3s)
    processed(stack, artist, upload)
    audio = my_usage(stack, artist)["usedBytes"]
    first = image_file(tmp_path / "first.png", size=(200, 200), color=(255, 0, 0))
    second = image_file(tmp_path / "second.png", size=(120, 120), color=(0, 255, 0))

    # When an image is uploaded and rendered
    older = upload_artwork(stack, artist, upload["trackId"], first)
    artwork_lane(stack, artist, upload["trackId"], until=lambda lane: lane["state"] == "succeeded")

    # Then the image and its variants count
    rendered = track_item(upload["trackId"]).artwork
    assert variant_bytes(rendered) > 0
    assert my_usage(stack, artist)["usedBytes"] == audio + first.stat().st_size + variant_bytes(rendered)

    # When a newer image replaces it and is rendered
    newer = upload_artwork(stack, artist, upload["trackId"], second)

    def rendered_newer() -> dict[str, Any]:
        artwork = track_item(upload["trackId"]).artwork or {}
        return {"artwork": artwork, "keys": [variant["key"] for variant in artwork.get("variants", [])]}

    found = wait_for(
        rendered_newer, until=lambda v: bool(v["keys"]) and all(newer["uploadId"][4:] in k for k in v["keys"])
    )

    # Then only the newer image and its variants count
    assert older["uploadId"] != newer["uploadId"]
    expected = audio + second.stat().st_size + variant_bytes(found["artwork"])
    assert my_usage(stack, artist)["usedBytes"] == expected

    # And deleting the track gives every byte back
    assert stack.api.delete(f"/v1/tracks/{upload['trackId']}", headers=as_user(artist)).status_code == 204
    current = my_usage(stack, artist)
    assert (current["usedBytes"], current["reservedBytes"], current["trackCount"]) == (0, 0, 0)


def test_a_document_counts_until_it_is_deleted(stack, artist, tmp_path):
    # Given a draft track (its audio intent reserves its own bytes)
    audio = tmp_path / "song.wav"
    audio.write_bytes(b"RIFF0000WAVE")
    track_id = stack.create_upload(artist, audio)["trackId"]
    before = my_usage(stack, artist)

    # When a document is uploaded
    created = upload_document(stack, artist, track_id, "notes.pdf", "application/pdf", data=PDF)

    # Then it counts, and the pending audio intents are as they were
    current = my_usage(stack, artist)
    assert (current["usedBytes"], current["reservedBytes"]) == (len(PDF), before["reservedBytes"])
    assert current["pendingIntents"] == before["pendingIntents"] == 1

    # When it is deleted, it counts no more; a second delete takes nothing more off
    url = f"/v1/tracks/{track_id}/documents/{created['documentId']}"
    assert stack.api.delete(url, headers=as_user(artist)).status_code == 204
    assert error_of(stack.api.delete(url, headers=as_user(artist))) == (404, "document_not_found")
    current = my_usage(stack, artist)
    assert (current["usedBytes"], current["reservedBytes"]) == (0, before["reservedBytes"])


def test_deleting_a_track_gives_back_its_documents_and_its_image(stack, artist, tmp_path, wav_3s):
    # Given a track with a document and an uploaded image (not rendered: no runner)
    upload = upload_and_finalize(stack, artist, wav_3s)
    upload_document(stack, artist, upload["trackId"], "lyrics.txt", "text/plain", data=b"la la la\n")
    image = image_file(tmp_path / "a.png", size=(64, 64))
    upload_artwork(stack, artist, upload["trackId"], image)
    assert my_usage(stack, artist)["usedBytes"] == wav_3s.stat().st_size + len(b"la la la\n") + image.stat().st_size

    # When the track is deleted
    assert stack.api.delete(f"/v1/tracks/{upload['trackId']}", headers=as_user(artist)).status_code == 204

    # Then nothing of it counts
    current = my_usage(stack, artist)
    assert (current["usedBytes"], current["reservedBytes"], current["trackCount"]) == (0, 0, 0)


def test_an_album_cover_and_its_variants_count_until_the_album_is_deleted(stack, artist, runner, tmp_path):
    # Given an album whose cover is uploaded and rendered
    album = album_of(stack, artist, "Night Drive")
    image = image_file(tmp_path / "cover.png", size=(300, 300))
    body = {"fileName": image.name, "contentType": "image/png", "byteSize": image.stat().st_size}
    intent = stack.api.post(f"/v1/albums/{album['albumId']}/cover/uploads", json=body, headers=as_user(artist))
    assert intent.status_code == 201, intent.text
    assert my_usage(stack, artist)["reservedBytes"] == image.stat().st_size
    assert stack.put(intent.json()["signedUrl"], image, content_type="image/png") == 200
    stack.drain_s3_events()
    raw_album = ids.parse("alb", album["albumId"])

    def cover() -> dict[str, Any]:
        return {"artwork": AlbumModel.get(raw_album, AlbumModel.ALBUM_SK, consistent_read=True).artwork}

    rendered = wait_for(cover, until=lambda found: found["artwork"] is not None)["artwork"]

    # Then the cover and its variants count
    assert variant_bytes(rendered) > 0
    current = my_usage(stack, artist)
    assert (current["usedBytes"], current["reservedBytes"]) == (image.stat().st_size + variant_bytes(rendered), 0)

    # And deleting the album gives them back
    assert stack.api.delete(f"/v1/albums/{album['albumId']}", headers=as_user(artist)).status_code == 200
    assert my_usage(stack, artist)["usedBytes"] == 0


def test_a_quota_too_small_refuses_an_image_intent_and_a_document_intent(stack, artist, tmp_path, wav_3s):
    # Given a quota the track's audio fills but for a few bytes
    upload = upload_and_finalize(stack, artist, wav_3s)
    usage.set_quota(artist, wav_3s.stat().st_size + 10, by="test")
    image = image_file(tmp_path / "a.png", size=(64, 64))

    # When an image and a document are asked for
    refused_image = artwork_intent(stack, artist, upload["trackId"], image)
    refused_document = document_intent(stack, artist, upload["trackId"], "n.pdf", "application/pdf", data=PDF)

    # Then both are refused with what is used and asked for, and nothing is written
    assert error_of(refused_image) == (403, "storage_quota_exceeded")
    error = refused_image.json()["error"]
    assert (error["usedBytes"], error["reservedBytes"], error["quotaBytes"], error["requestedBytes"]) == (
        wav_3s.stat().st_size,
        0,
        wav_3s.stat().st_size + 10,
        image.stat().st_size,
    )
    assert error_of(refused_document) == (403, "storage_quota_exceeded")
    assert my_usage(stack, artist)["reservedBytes"] == 0
    assert list(UploadModel.scan(UploadModel.intent != "track_original")) == []


def test_a_rejected_or_expired_image_intent_releases_its_reservation(stack, artist, tmp_path, wav_3s):
    upload = upload_and_finalize(stack, artist, wav_3s)
    image = image_file(tmp_path / "a.png", size=(64, 64))
    rejected = artwork_intent(stack, artist, upload["trackId"], image).json()
    expired = artwork_intent(stack, artist, upload["trackId"], image).json()
    assert my_usage(stack, artist)["reservedBytes"] == 2 * image.stat().st_size

    # A file that is not what the intent promised is rejected; the other intent expires
    assert stack.put(rejected["signedUrl"], image, content_type="image/png", body=b"not the image") == 200
    stack.drain_s3_events()
    expire(expired, artist)

    current = my_usage(stack, artist)
    assert (current["usedBytes"], current["reservedBytes"]) == (wav_3s.stat().st_size, 0)
    assert counted_pending(artist) == (0, 0)


def test_an_image_whose_track_was_deleted_first_is_rejected_and_releases_its_reservation(
    stack, artist, tmp_path, wav_3s
):
    # Given an artwork intent whose track is deleted before its file arrives
    upload = upload_and_finalize(stack, artist, wav_3s)
    image = image_file(tmp_path / "a.png", size=(64, 64))
    created = artwork_intent(stack, artist, upload["trackId"], image).json()
    assert stack.api.delete(f"/v1/tracks/{upload['trackId']}", headers=as_user(artist)).status_code == 204

    # When the file arrives
    assert stack.put(created["signedUrl"], image, content_type="image/png") == 200
    stack.drain_s3_events()

    # Then the intent is rejected and nothing counts
    assert UploadModel.get(ids.parse("upl", created["uploadId"])).status == "rejected"
    current = my_usage(stack, artist)
    assert (current["usedBytes"], current["reservedBytes"]) == (0, 0)


def test_a_session_track_reserves_its_cover_and_is_not_added_when_the_cover_does_not_fit(stack, artist, monkeypatch):
    from functions.domain.intake import media_types

    album_id = new_album(stack, artist)
    session = open_session(stack, artist, album_id)["upload_session"]

    # A session track reserves the audio cap and the image cap (neither file declares a size)
    added = add_track(stack, artist, session["id"], file_name="one.wav")
    assert added.status_code == 201, added.text
    caps = stack.resources.settings.max_audio_bytes + media_types.MAX_IMAGE_BYTES
    assert (my_usage(stack, artist)["reservedBytes"], counted_pending(artist)) == (caps, (1, 1))

    # With room for another track's audio but not its cover, the track is refused, its audio intent
    # cancelled with it
    usage.set_quota(artist, caps + stack.resources.settings.max_audio_bytes, by="test")
    refused = add_track(stack, artist, session["id"], file_name="two.wav")
    assert refused.status_code == 403, refused.text
    assert refused.json()["error"]["code"] == "storage_quota_exceeded"
    assert (my_usage(stack, artist)["reservedBytes"], counted_pending(artist)) == (caps, (1, 1))


def test_removing_an_uploaded_image_gives_its_bytes_back(stack, artist, tmp_path, wav_3s):
    upload = upload_and_finalize(stack, artist, wav_3s)
    image = image_file(tmp_path / "a.png", size=(64, 64))
    upload_artwork(stack, artist, upload["trackId"], image)
    assert my_usage(stack, artist)["usedBytes"] == wav_3s.stat().st_size + image.stat().st_size

    patched = stack.api.patch(f"/v1/tracks/{upload['trackId']}", json={"removeImage": True}, headers=as_user(artist))

    assert patched.status_code == 200, patched.text
    assert my_usage(stack, artist)["usedBytes"] == wav_3s.stat().st_size


def test_an_image_a_newer_one_beat_counts_nothing(stack, artist, tmp_path, wav_3s):
    # Given a track whose image is already one finalized after this upload's (a race the older lost)
    upload = upload_and_finalize(stack, artist, wav_3s)
    image = image_file(tmp_path / "a.png", size=(64, 64))
    created = artwork_intent(stack, artist, upload["trackId"], image).json()
    newer = {"key": "tracks/x/uploaded/y/artwork.png", "origin": "upload", "contentType": "image/png"}
    newer |= {"uploadId": "y", "uploadedAt": "2999-01-01T00:00:00+00:00"}
    track_item(upload["trackId"]).update(actions=[TrackModel.image_source.set(newer)])

    # When its file arrives, it is finalized but not adopted
    assert stack.put(created["signedUrl"], image, content_type="image/png") == 200
    stack.drain_s3_events()

    # Then it counts nothing, and reserves nothing any more
    assert UploadModel.get(ids.parse("upl", created["uploadId"])).status == "finalized"
    current = my_usage(stack, artist)
    assert (current["usedBytes"], current["reservedBytes"]) == (wav_3s.stat().st_size, 0)

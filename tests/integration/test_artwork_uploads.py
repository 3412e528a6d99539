"""Artwork and album cover uploads against moto: the intent signs a PUT under uploads/, its S3 put
event makes the image the track's (or album's) source and runs only the artwork rendering, in an
execution named after the upload; an uploaded image replaces an embedded cover and leaves no
stale variants; the track's status never moves; the album's revision and ETag change."""

from __future__ import annotations

import io
from pathlib import Path

import httpx
from PIL import Image

from functions.data import keys
from functions.domain.intake import finalize

from .conftest import Stack, as_user
from .test_lanes import lanes_by_name
from .test_tags_and_artwork import jpeg, tagged_mp3
from .test_workflow import processed, upload_and_finalize, wait_for


def image_file(path: Path, *, size: tuple[int, int], fmt: str = "PNG", color=(20, 120, 200)) -> Path:
    buffer = io.BytesIO()
    Image.new("RGB", size, color).save(buffer, format=fmt)
    path.write_bytes(buffer.getvalue())
    return path


def objects_under(stack: Stack, prefix: str) -> list[str]:
    listed = stack.s3.list_objects_v2(Bucket=stack.resources.bucket, Prefix=prefix)
    return sorted(item["Key"] for item in listed.get("Contents", []))


def artwork_intent(stack: Stack, user: str, track_id: str, path: Path, content_type: str = "image/png", **extra):
    body = {"fileName": path.name, "contentType": content_type, "byteSize": path.stat().st_size, **extra}
    return stack.api.post(f"/v1/tracks/{track_id}/artwork/uploads", json=body, headers=as_user(user))


def artwork_lane(stack: Stack, user: str, track_id: str, *, until) -> dict:
    def lane() -> dict:
        status = stack.api.get(f"/v1/tracks/{track_id}/processing-status", headers=as_user(user)).json()
        return {**lanes_by_name(status)["artwork"], "_track": status}

    return wait_for(lane, until=until)


def test_an_uploaded_image_replaces_the_embedded_cover_and_runs_only_the_artwork_lane(stack, artist, runner, tmp_path):
    # Given a ready track whose embedded 1500 px cover made all four variant sizes
    song = tagged_mp3(tmp_path / "song.mp3", cover=jpeg(size=(1500, 1500)))
    upload = upload_and_finalize(stack, artist, song, content_type="audio/mpeg")
    assert processed(stack, artist, upload)["status"] == "ready"
    track_id = upload["trackId"]
    raw_track = track_id.removeprefix("trk_")
    before = stack.api.get(f"/v1/tracks/{track_id}", headers=as_user(artist)).json()
    assert before["artwork"]["origin"] == "embedded"
    assert {v["size"] for v in before["artwork"]["variants"]} == {1400, 600, 300, 96}

    # When the artist uploads a 400 px PNG for it
    image = image_file(tmp_path / "cover.png", size=(400, 400))
    intent = artwork_intent(stack, artist, track_id, image)
    assert intent.status_code == 201, intent.text
    created = intent.json()
    assert created["trackId"] == track_id
    assert created["requiredHeaders"] == {"content-type": "image/png"}
    assert created["method"] == "PUT" and "finalizeUrl" not in created
    assert stack.put(created["signedUrl"], image, content_type="image/png") == 200
    stack.drain_s3_events()

    # Then the artwork lane alone renders it, and the track stays ready
    lane = artwork_lane(stack, artist, track_id, until=lambda lane: (lane["outputs"] or {}).get("origin") == "upload")
    assert lane["state"] == "succeeded", lane
    assert [(v["size"], v["format"]) for v in lane["outputs"]["variants"]] == [
        (400, "webp"), (400, "jpeg"), (300, "webp"), (300, "jpeg"), (96, "webp"), (96, "jpeg"),
    ]  # fmt: skip
    status = lane["_track"]
    assert (status["status"], status["workflowStatus"]) == ("ready", "succeeded")
    assert {lane["name"]: lane["state"] for lane in status["lanes"]}["transcode_aac"] == "succeeded"
    names = sorted(execution["name"] for execution in stack.executions())
    assert names == sorted([upload["uploadId"][4:], created["uploadId"][4:]])
    # No stale 1400/600 variant and no embedded cover is left: only the new variants.
    upload_id = created["uploadId"][4:]
    assert objects_under(stack, keys.artwork_prefix(raw_track)) == sorted(
        keys.artwork_variant(raw_track, size, ext, version=upload_id)
        for size in (400, 300, 96)
        for ext in ("webp", "jpg")
    )
    track = stack.api.get(f"/v1/tracks/{track_id}", headers=as_user(artist)).json()
    assert track["artwork"]["origin"] == "upload"
    assert track["status"] == "ready"
    redirect = stack.api.get(
        f"/v1/tracks/{track_id}/artwork?size=1400&format=jpeg", headers=as_user(artist), follow_redirects=False
    )
    assert redirect.status_code == 302
    served = httpx.get(redirect.headers["location"])
    assert Image.open(io.BytesIO(served.content)).size == (400, 400)  # the image's own size, not 300


def test_a_repeated_put_event_starts_no_second_run(stack, artist, runner, tmp_path, wav_3s):
    upload = upload_and_finalize(stack, artist, wav_3s)
    processed(stack, artist, upload)
    image = image_file(tmp_path / "a.jpg", size=(128, 128), fmt="JPEG")
    created = artwork_intent(stack, artist, upload["trackId"], image, content_type="image/jpeg").json()
    stack.put(created["signedUrl"], image, content_type="image/jpeg")
    stack.drain_s3_events()

    # S3 delivers at least once: the same event again
    again = finalize.finalize(created["uploadId"][4:], trigger="s3_event")

    assert again.status == "already_finalized"
    artwork_lane(stack, artist, upload["trackId"], until=lambda lane: lane["state"] == "succeeded")
    assert [e["name"] for e in stack.executions()].count(created["uploadId"][4:]) == 1


def test_the_image_finalized_last_wins_and_the_one_it_replaced_is_deleted(stack, artist, runner, tmp_path, wav_3s):
    upload = upload_and_finalize(stack, artist, wav_3s)
    processed(stack, artist, upload)
    first = image_file(tmp_path / "first.png", size=(100, 100), color=(255, 0, 0))
    second = image_file(tmp_path / "second.png", size=(100, 100), color=(0, 255, 0))
    older = artwork_intent(stack, artist, upload["trackId"], first).json()
    newer = artwork_intent(stack, artist, upload["trackId"], second).json()
    stack.put(newer["signedUrl"], second, content_type="image/png")
    stack.drain_s3_events()
    artwork_lane(stack, artist, upload["trackId"], until=lambda lane: lane["state"] == "succeeded")

    # The older intent's object arrives (and is finalized) only now: it is finalized later, so it
    # is the newest image and wins.
    stack.put(older["signedUrl"], first, content_type="image/png")
    stack.drain_s3_events()
    raw_track, older_id = upload["trackId"][4:], older["uploadId"][4:]

    def variants() -> dict:
        return {"keys": objects_under(stack, keys.artwork_prefix(raw_track))}

    found = wait_for(variants, until=lambda v: bool(v["keys"]) and all(older_id in key for key in v["keys"]))
    assert len(found["keys"]) == 4  # 100 px (its own side) and 96 px, webp and jpeg
    lane = artwork_lane(stack, artist, upload["trackId"], until=lambda lane: lane["state"] == "succeeded")
    assert lane["state"] == "succeeded"
    # The replaced uploaded image is deleted; the current one stays, kept under the track (and
    # nothing is left where the signed URLs could write).
    kept_images = [key for key in objects_under(stack, keys.track_prefix(raw_track)) if key.endswith(".png")]
    assert kept_images == [keys.kept_upload(keys.track_prefix(raw_track), older_id, "artwork.png")]
    assert objects_under(stack, f"uploads/{newer['uploadId'][4:]}/") == []
    assert objects_under(stack, f"uploads/{older_id}/") == []


def test_an_image_that_differs_from_its_intent_is_rejected_and_not_rendered(stack, artist, tmp_path):
    draft = stack.create_upload(artist, image_file(tmp_path / "x.wav", size=(8, 8)))  # a draft track
    image = image_file(tmp_path / "c.png", size=(100, 100))
    created = artwork_intent(stack, artist, draft["trackId"], image).json()
    # The PUT carries another content type (moto does not enforce the signature; S3 would).
    stack.put(created["signedUrl"], image, content_type="image/gif")
    stack.drain_s3_events()

    raw_upload = created["uploadId"][4:]
    assert objects_under(stack, f"uploads/{raw_upload}/") == []
    assert stack.executions() == []
    track = stack.api.get(f"/v1/tracks/{draft['trackId']}", headers=as_user(artist)).json()
    assert track["artwork"] is None


def test_the_intent_checks_extension_type_size_and_owner(stack, artist, tmp_path):
    from functions.domain.catalog import artists

    artists.upsert("mallory", handle="mallory", display_name="Mallory")
    draft = stack.create_upload(artist, image_file(tmp_path / "x.wav", size=(8, 8)))
    track = draft["trackId"]

    def intent(user=artist, **body):
        payload = {"fileName": "cover.png", "contentType": "image/png", "byteSize": 1000, **body}
        return stack.api.post(f"/v1/tracks/{track}/artwork/uploads", json=payload, headers=as_user(user))

    def code(response):
        return response.status_code, response.json()["error"]["code"]

    assert code(intent(fileName="cover.heic", contentType="image/heic")) == (400, "unsupported_media_type")
    assert code(intent(contentType="image/jpeg")) == (400, "unsupported_media_type")
    assert code(intent(byteSize=0)) == (400, "empty_file")
    assert code(intent(byteSize=20 * 1024 * 1024 + 1)) == (413, "file_too_large")
    assert intent(byteSize=20 * 1024 * 1024).status_code == 201
    assert intent(fileName="COVER.JPEG", contentType="image/jpeg").status_code == 201
    assert code(intent(user="mallory")) == (404, "track_not_found")
    assert code(stack.api.post("/v1/tracks/trk_nope/artwork/uploads", json={}, headers=as_user(artist)))[0] == 422
    # seed 004's intent keeps redirecting here
    body = {"intent": "track_artwork", "fileName": "a.png", "contentType": "image/png", "byteSize": 10}
    refused = stack.api.post("/v1/uploads", json=body, headers=as_user(artist))
    assert code(refused) == (400, "use_track_artwork_upload_route")


def album_of(stack: Stack, user: str, title: str) -> dict:
    response = stack.api.post("/v1/albums", json={"title": title}, headers=as_user(user))
    assert response.status_code == 201, response.text
    return dict(response.json())


def test_an_album_cover_is_rendered_served_publicly_and_changes_the_etag(stack, artist, runner, tmp_path):
    album = album_of(stack, artist, "Night Drive")
    page = f"/v1/artists/alice/albums/{album['slug']}"
    etag = stack.api.get(page).headers["etag"]
    assert stack.api.get(f"{page}/cover").json()["error"]["code"] == "artwork_not_found"
    image = image_file(tmp_path / "cover.webp", size=(1200, 1000), fmt="WEBP")

    body = {"fileName": image.name, "contentType": "image/webp", "byteSize": image.stat().st_size}
    intent = stack.api.post(f"/v1/albums/{album['albumId']}/cover/uploads", json=body, headers=as_user(artist))
    assert intent.status_code == 201, intent.text
    assert intent.json()["albumId"] == album["albumId"]
    stack.put(intent.json()["signedUrl"], image, content_type="image/webp")
    stack.drain_s3_events()

    def revision() -> dict:
        return dict(stack.api.get(page).json())

    after = wait_for(revision, until=lambda a: a["revision"] > album["revision"])
    assert after["revision"] == album["revision"] + 1
    assert stack.api.get(page).headers["etag"] != etag
    assert stack.api.get(page, headers={"If-None-Match": etag}).status_code == 200
    # Public, no token: a 1200x1000 image's 1000 px centre square is served at 1000 px, not at 600.
    redirect = stack.api.get(f"{page}/cover?size=1400&format=jpeg", follow_redirects=False)
    assert redirect.status_code == 302, redirect.text
    served = httpx.get(redirect.headers["location"])
    assert (served.headers["content-type"], Image.open(io.BytesIO(served.content)).size) == ("image/jpeg", (1000, 1000))
    raw_album = album["albumId"].removeprefix("alb_")
    assert len(objects_under(stack, keys.album_cover_prefix(raw_album))) == 8  # 1000/600/300/96 x webp/jpeg

    # Deleting the album deletes its cover: the variants and the uploaded image.
    uploaded = objects_under(stack, f"{keys.album_prefix(raw_album)}{keys.KEPT_FOLDER}")
    assert len(uploaded) == 1
    assert stack.api.delete(f"/v1/albums/{album['albumId']}", headers=as_user(artist)).status_code == 200
    assert objects_under(stack, keys.album_prefix(raw_album)) == []
    assert objects_under(stack, uploaded[0]) == []


def test_album_cover_intents_are_owner_only(stack, artist, tmp_path):
    from functions.domain.catalog import artists

    artists.upsert("mallory", handle="mallory", display_name="Mallory")
    album = album_of(stack, artist, "Mine")
    body = {"fileName": "c.gif", "contentType": "image/gif", "byteSize": 10}
    other = stack.api.post(f"/v1/albums/{album['albumId']}/cover/uploads", json=body, headers=as_user("mallory"))
    assert (other.status_code, other.json()["error"]["code"]) == (404, "album_not_found")
    body["contentType"] = "application/pdf"
    wrong = stack.api.post(f"/v1/albums/{album['albumId']}/cover/uploads", json=body, headers=as_user(artist))
    assert (wrong.status_code, wrong.json()["error"]["code"]) == (400, "unsupported_media_type")

"""The storage quota per artist (issue 16, docs/limits.md): intents reserve their declared size,
finalize settles it at the stored size, renditions add theirs, and every way an intent ends without
a track (cancel, expiry, rejection, duplicate) or a track ends (delete) gives the bytes back."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from functions import ids
from functions.data.models import ReservationModel, TrackModel, UploadModel, UsageModel, utcnow
from functions.domain.catalog import tracks, usage
from functions.domain.intake import uploads, versions
from functions.errors import StorageQuotaExceeded
from functions.settings import settings

from .conftest import Stack, as_user, error_of
from .test_track_versions import until_version_settled, upload_version, version_intent
from .test_workflow import processed, upload_and_finalize


def my_usage(stack: Stack, user: str) -> dict[str, Any]:
    response = stack.api.get("/v1/me/usage", headers=as_user(user))
    assert response.status_code == 200, response.text
    return dict(response.json())


def intent(byte_size: int) -> uploads.NewUpload:
    return uploads.NewUpload(
        intent="track_original", file_name="take.wav", content_type="audio/wav", byte_size=byte_size
    )


def rendition_bytes(track_id: str) -> int:
    track = TrackModel.get(ids.parse("trk", track_id), TrackModel.TRACK_SK, consistent_read=True)
    return sum(int(rendition["byteSize"]) for rendition in track.rendition_map().values())


def counted_pending(owner_id: str) -> tuple[int, int]:
    """(the usage item's pending count, the audio intents' reservations there are): the count must
    be the truth. (An image's or a document's reservation is no pending audio intent.)"""
    item = UsageModel.get(*UsageModel.key(owner_id), consistent_read=True)
    held = ReservationModel.query(UsageModel.key(owner_id)[0], ReservationModel.sk.startswith("reservation#"))
    return int(item.pending_intents or 0), sum(1 for reservation in held if reservation.counts_pending is not False)


def expire(upload: dict[str, Any], owner_id: str) -> None:
    """Moves the intent (and its reservation) past its TTL, as time would."""
    upload_id = ids.parse("upl", upload["uploadId"])
    past = utcnow() - timedelta(minutes=1)
    UploadModel(upload_id).update(actions=[UploadModel.expires_at_epoch.set(past)])
    ReservationModel(*ReservationModel.key(owner_id, upload_id)).update(actions=[ReservationModel.expires_at.set(past)])


def test_fifty_concurrent_intents_near_the_limit_never_pass_the_quota(stack, artist):
    # Given room for exactly ten intents of a megabyte, and three already reserved
    size = 1_000_000
    usage.set_quota(artist, 10 * size + size // 2, by="test")
    for _ in range(3):
        uploads.create(artist, intent(size))

    # When fifty more race for the seven left
    def attempt(_: int) -> str:
        try:
            uploads.create(artist, intent(size))
        except StorageQuotaExceeded:
            return "refused"
        return "reserved"

    with ThreadPoolExecutor(max_workers=16) as pool:
        outcomes = list(pool.map(attempt, range(50)))

    # Then seven get in, the rest are refused, and the reservations never pass the quota
    assert (outcomes.count("reserved"), outcomes.count("refused")) == (7, 43)
    current = my_usage(stack, artist)
    assert current["reservedBytes"] == 10 * size <= current["quotaBytes"]
    assert current["pendingIntents"] == 10
    assert current["usedBytes"] == 0


def test_the_refusal_says_what_is_used_what_the_quota_is_and_what_was_asked(stack, artist, wav_3s):
    usage.set_quota(artist, 1000, by="test")
    body = {"fileName": wav_3s.name, "contentType": "audio/wav", "byteSize": 4000}

    response = stack.api.post("/v1/uploads", json=body, headers=as_user(artist))

    assert response.status_code == 403
    error = response.json()["error"]
    assert error["code"] == "storage_quota_exceeded"
    assert (error["usedBytes"], error["reservedBytes"], error["quotaBytes"], error["requestedBytes"]) == (
        0,
        0,
        1000,
        4000,
    )
    assert my_usage(stack, artist)["pendingIntents"] == 0  # nothing was written


def test_the_default_quota_applies_until_an_admin_sets_another(stack, artist, monkeypatch):
    assert my_usage(stack, artist)["quotaBytes"] == settings().storage_quota_bytes
    assert my_usage(stack, artist)["quotaSource"] == "default"

    usage.set_quota(artist, 5_000, by="test")
    assert (my_usage(stack, artist)["quotaBytes"], my_usage(stack, artist)["quotaSource"]) == (5_000, "override")

    usage.set_quota(artist, None, by="test")
    assert my_usage(stack, artist)["quotaSource"] == "default"


def test_an_intent_reserves_its_declared_size_and_finalize_settles_it(stack, artist, wav_3s):
    size = wav_3s.stat().st_size
    upload = stack.create_upload(artist, wav_3s)
    assert my_usage(stack, artist) | {"quotaBytes": 0, "availableBytes": 0} == {
        "usedBytes": 0,
        "reservedBytes": size,
        "quotaBytes": 0,
        "quotaSource": "default",
        "availableBytes": 0,
        "trackCount": 0,
        "pendingIntents": 1,
        "maxPendingIntents": settings().max_pending_intents,
        "runningWorkflows": 0,
        "queuedWorkflows": 0,
        "maxRunningWorkflows": settings().max_running_workflows,
    }
    stack.put(upload["signedUrl"], wav_3s, content_type="audio/wav")

    stack.api.post(f"/v1/uploads/{upload['uploadId']}/finalize", headers=as_user(artist))

    current = my_usage(stack, artist)
    assert (current["usedBytes"], current["reservedBytes"]) == (size, 0)
    assert (current["trackCount"], current["pendingIntents"]) == (1, 0)


def test_an_intent_without_a_size_reserves_the_cap_and_settles_to_the_real_size(stack, artist, wav_3s):
    # The upload-session contract's tracks declare no size: the audio cap is held until the file is here.
    created = uploads.create(artist, uploads.NewUpload("track_original", "take.wav", "audio/wav", 0, size_unknown=True))
    assert my_usage(stack, artist)["reservedBytes"] == settings().max_audio_bytes
    assert created.signed_url is not None
    stack.put(created.signed_url, wav_3s, content_type="audio/wav")

    finalized = stack.api.post(f"/v1/uploads/{ids.render('upl', created.upload_id)}/finalize", headers=as_user(artist))

    assert finalized.json()["status"] == "finalized", finalized.text
    current = my_usage(stack, artist)
    assert (current["usedBytes"], current["reservedBytes"]) == (wav_3s.stat().st_size, 0)


def test_cancelling_an_intent_releases_its_reservation(stack, artist, wav_3s):
    upload = stack.create_upload(artist, wav_3s)

    assert stack.api.delete(f"/v1/uploads/{upload['uploadId']}", headers=as_user(artist)).status_code == 204
    # A second cancel releases nothing more.
    assert stack.api.delete(f"/v1/uploads/{upload['uploadId']}", headers=as_user(artist)).status_code == 204

    current = my_usage(stack, artist)
    assert (current["usedBytes"], current["reservedBytes"], current["pendingIntents"]) == (0, 0, 0)


def test_a_rejected_file_releases_its_reservation_and_a_cancel_after_it_releases_nothing_more(stack, artist, wav_3s):
    upload = stack.create_upload(artist, wav_3s)
    stack.put(upload["signedUrl"], wav_3s, content_type="audio/wav", body=b"not the promised file")

    rejected = stack.api.post(f"/v1/uploads/{upload['uploadId']}/finalize", headers=as_user(artist))
    assert rejected.json()["error"]["code"] == "upload_asset_invalid"
    assert (my_usage(stack, artist)["reservedBytes"], my_usage(stack, artist)["usedBytes"]) == (0, 0)

    assert stack.api.delete(f"/v1/uploads/{upload['uploadId']}", headers=as_user(artist)).status_code == 204
    current = my_usage(stack, artist)
    assert (current["usedBytes"], current["reservedBytes"], current["pendingIntents"]) == (0, 0, 0)


def test_a_duplicate_releases_its_reservation_and_counts_nothing_twice(stack, artist, wav_3s):
    upload_and_finalize(stack, artist, wav_3s)
    again = stack.create_upload(artist, wav_3s)
    stack.put(again["signedUrl"], wav_3s, content_type="audio/wav")

    answer = stack.api.post(f"/v1/uploads/{again['uploadId']}/finalize", headers=as_user(artist))

    assert answer.json()["status"] == "duplicate", answer.text
    current = my_usage(stack, artist)
    assert (current["usedBytes"], current["reservedBytes"]) == (wav_3s.stat().st_size, 0)
    assert (current["trackCount"], current["pendingIntents"]) == (1, 0)


def test_an_expired_intent_is_released_when_its_bytes_are_needed_and_when_usage_is_read(stack, artist, wav_3s):
    # Given a quota an expired intent fills (DynamoDB's TTL would delete the intent, unannounced)
    size = wav_3s.stat().st_size
    usage.set_quota(artist, size + size // 2, by="test")
    stale = stack.create_upload(artist, wav_3s)
    expire(stale, artist)

    # When another intent needs those bytes, it gets them
    fresh = stack.create_upload(artist, wav_3s)

    # Then only the fresh intent is reserved, and the expired one can no longer be finalized
    current = my_usage(stack, artist)
    assert (current["reservedBytes"], current["pendingIntents"]) == (size, 1)
    stack.put(stale["signedUrl"], wav_3s, content_type="audio/wav")
    late = stack.api.post(f"/v1/uploads/{stale['uploadId']}/finalize", headers=as_user(artist))
    assert late.json()["error"]["code"] == "upload_intent_expired"
    # And reading the usage releases an expired reservation too
    expire(fresh, artist)
    current = my_usage(stack, artist)
    assert (current["usedBytes"], current["reservedBytes"], current["pendingIntents"]) == (0, 0, 0)


def test_a_finalize_whose_reservation_was_released_as_expired_is_expired(stack, artist, wav_3s):
    # The reconciliation released the reservation just as its intent was being finalized.
    upload = stack.create_upload(artist, wav_3s)
    stack.put(upload["signedUrl"], wav_3s, content_type="audio/wav")
    raw_id = ids.parse("upl", upload["uploadId"])
    ReservationModel(*ReservationModel.key(artist, raw_id)).update(
        actions=[ReservationModel.expires_at.set(utcnow() - timedelta(seconds=1))]
    )
    usage.reconcile(artist)

    answer = stack.api.post(f"/v1/uploads/{upload['uploadId']}/finalize", headers=as_user(artist))

    assert answer.json()["error"]["code"] == "upload_intent_expired"
    assert UploadModel.get(raw_id).status == "pending"
    current = my_usage(stack, artist)
    assert (current["usedBytes"], current["reservedBytes"], current["trackCount"]) == (0, 0, 0)


def test_deleting_a_draft_releases_its_intents_reservation(stack, artist, wav_3s):
    upload = stack.create_upload(artist, wav_3s)

    assert stack.api.delete(f"/v1/tracks/{upload['trackId']}", headers=as_user(artist)).status_code == 204

    current = my_usage(stack, artist)
    assert (current["usedBytes"], current["reservedBytes"], current["pendingIntents"]) == (0, 0, 0)


def test_renditions_count_and_deleting_the_track_gives_every_byte_back(stack, artist, runner, wav_3s):
    upload = upload_and_finalize(stack, artist, wav_3s)
    assert processed(stack, artist, upload)["workflowStatus"] == "succeeded"

    renditions = rendition_bytes(upload["trackId"])
    assert renditions > 0
    assert my_usage(stack, artist)["usedBytes"] == wav_3s.stat().st_size + renditions

    assert stack.api.delete(f"/v1/tracks/{upload['trackId']}", headers=as_user(artist)).status_code == 204

    current = my_usage(stack, artist)
    assert (current["usedBytes"], current["reservedBytes"], current["trackCount"]) == (0, 0, 0)


def test_a_rendition_stored_again_counts_once(stack, artist, wav_3s):
    upload = upload_and_finalize(stack, artist, wav_3s)
    track_id = ids.parse("trk", upload["trackId"])
    before = my_usage(stack, artist)["usedBytes"]

    usage.count_rendition(artist, track_id, "aac", 1000)
    usage.count_rendition(artist, track_id, "aac", 1000)  # the lane retried: the same file again
    usage.count_rendition(artist, track_id, "aac", 1200)  # re-encoded a little larger

    assert my_usage(stack, artist)["usedBytes"] == before + 1200


def test_a_new_version_replaces_the_old_versions_bytes(stack, artist, runner, wav_3s, distinct_wav):
    # Given a processed track
    upload = upload_and_finalize(stack, artist, wav_3s)
    assert processed(stack, artist, upload)["workflowStatus"] == "succeeded"
    new_file: Path = distinct_wav()
    larger = new_file.with_name("longer.wav")
    larger.write_bytes(new_file.read_bytes() + b"\0" * 44_100)  # a longer take (silence at the end)

    # When a new version is uploaded, it is reserved, then counted beside the live one while it runs
    created = upload_version(stack, artist, upload["trackId"], larger)
    track = until_version_settled(stack, artist, upload["trackId"], ids.parse("upl", created["uploadId"]))

    # Then once it is live, only the new original and its renditions count
    assert track["uploadId"] == ids.parse("upl", created["uploadId"]) or track["uploadId"] == created["uploadId"]
    current = my_usage(stack, artist)
    assert current["usedBytes"] == larger.stat().st_size + rendition_bytes(upload["trackId"])
    assert (current["reservedBytes"], current["trackCount"], current["pendingIntents"]) == (0, 1, 0)

    # And deleting the track gives all of it back
    assert stack.api.delete(f"/v1/tracks/{upload['trackId']}", headers=as_user(artist)).status_code == 204
    assert my_usage(stack, artist)["usedBytes"] == 0


def test_replacing_a_version_intent_releases_its_reservation_and_its_pending_slot(stack, artist, wav_3s, distinct_wav):
    # Given a track and a version intent still awaiting its file
    upload = upload_and_finalize(stack, artist, wav_3s)
    track_id = upload["trackId"]
    used = my_usage(stack, artist)["usedBytes"]
    first_file, second_file = distinct_wav(), distinct_wav()
    second_file.write_bytes(second_file.read_bytes() + b"\0" * 1000)  # a size of its own
    first = version_intent(stack, artist, track_id, first_file).json()

    # When a newer intent replaces it
    second = version_intent(stack, artist, track_id, second_file)
    assert second.status_code == 201, second.text

    # Then only the newer one's bytes are reserved, one intent is pending, and the replaced one can
    # no longer be finalized (its file is refused as superseded)
    current = my_usage(stack, artist)
    assert (current["usedBytes"], current["reservedBytes"]) == (used, second_file.stat().st_size)
    assert current["pendingIntents"] == 1
    assert counted_pending(artist) == (1, 1)
    assert stack.put(first["signedUrl"], first_file, content_type="audio/wav") == 200
    refused = stack.api.post(first["finalizeUrl"], headers=as_user(artist))
    assert error_of(refused) == (409, "version_superseded")
    assert my_usage(stack, artist)["reservedBytes"] == second_file.stat().st_size


def test_a_replaced_intent_whose_reservation_expired_is_not_released_twice(stack, artist, wav_3s, distinct_wav):
    # Given a version intent past its TTL whose reservation was released (reconcile) meanwhile
    upload = upload_and_finalize(stack, artist, wav_3s)
    stale = version_intent(stack, artist, upload["trackId"], distinct_wav()).json()
    expire(stale, artist)
    usage.reconcile(artist)
    assert counted_pending(artist) == (0, 0)

    # When a newer intent replaces it
    newer_file = distinct_wav()
    assert version_intent(stack, artist, upload["trackId"], newer_file).status_code == 201

    # Then the newer one holds its own bytes and slot, and nothing was taken off twice
    assert counted_pending(artist) == (1, 1)
    assert _usage_item(artist).reserved_bytes == newer_file.stat().st_size


def test_racing_version_intents_release_each_replaced_one_once(stack, artist, wav_3s, distinct_wav, monkeypatch):
    # Given a track, and five version intents that all read it before any of them wrote (the
    # worst of races: each first write is judged against a pending version that has moved on)
    upload = upload_and_finalize(stack, artist, wav_3s)
    track_id = ids.parse("trk", upload["trackId"])
    before = tracks.get_owned(track_id, artist)
    monkeypatch.setattr(tracks, "get_owned", lambda *_: before)
    sizes = [path.stat().st_size + n for n, path in enumerate(distinct_wav() for _ in range(5))]

    # When they race
    def create(size: int) -> str:
        spec = versions.FileSpec("take.wav", "audio/wav", size)
        return versions.create(artist, track_id, spec).upload_id

    with ThreadPoolExecutor(max_workers=5) as pool:
        created = list(pool.map(create, sizes))

    # Then each got its intent, the one the track ends with is the only one still reserved, and
    # every other was rejected as superseded with its bytes and slot given back once
    pending = TrackModel.get(track_id, TrackModel.TRACK_SK, consistent_read=True).pending_version
    assert pending is not None and pending["uploadId"] in created
    assert counted_pending(artist) == (1, 1)
    assert _usage_item(artist).reserved_bytes == int(pending["byteSize"])
    decided = {upload_id: UploadModel.get(upload_id, consistent_read=True) for upload_id in created}
    assert [decided[pending["uploadId"]].status] == ["pending"]
    others = [upload for upload_id, upload in decided.items() if upload_id != pending["uploadId"]]
    assert [(upload.status, upload.rejected_code) for upload in others] == [("rejected", "version_superseded")] * 4


@pytest.mark.parametrize("read", ["default", "override"])
def test_the_quota_an_intent_was_checked_against_must_still_be_in_force(stack, artist, read):
    # Given an intent checked against the quota read (the default, or an admin's 2 MB), when an
    # admin lowers it before the write, the write is refused by its condition and checked again.
    size = 1_000_000
    if read == "override":
        usage.set_quota(artist, 2 * size, by="test")
    allowance = usage.allowance(artist, _usage_item(artist))
    usage.set_quota(artist, size // 2, by="test")
    upload = uploads.pending_intent(
        ids.new_id(),
        owner_id=artist,
        track_id=ids.new_id(),
        asset_id=ids.new_id(),
        intent="track_original",
        object_key="uploads/x/original.wav",
        file_name="x.wav",
        content_type="audio/wav",
        byte_size=size,
        now=utcnow(),
        reserved_bytes=size,
    )

    with pytest.raises(StorageQuotaExceeded):
        usage.reserving(allowance, upload, lambda tx: tx.save(upload))

    assert my_usage(stack, artist)["reservedBytes"] == 0
    assert UploadModel.count(upload.upload_id) == 0


def _usage_item(owner_id: str) -> Any:
    from functions.data import reads
    from functions.data.models import UsageModel

    return reads.get_or_none(UsageModel, *UsageModel.key(owner_id), consistent_read=True)

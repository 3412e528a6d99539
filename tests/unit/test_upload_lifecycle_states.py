"""The upload intent's states (functions.domain.lifecycle): what each stored status and clock reads as,
and the one error every reader reports for an intent that ended without being processed."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from functions.data.models import UploadModel
from functions.domain import lifecycle
from functions.errors import UploadAssetInvalid, UploadCancelled, UploadExpired

NOW = datetime(2026, 12, 3, 12, 0, tzinfo=UTC)


def intent(status: str = "pending", *, url_left: timedelta, ttl_left: timedelta, **fields: str) -> UploadModel:
    return UploadModel(
        "u1",
        owner_id="alice",
        track_id="t1",
        asset_id="a1",
        intent="track_original",
        object_key="uploads/u1/original.wav",
        status=status,
        expires_at=NOW + url_left,
        expires_at_epoch=NOW + ttl_left,
        **fields,
    )


HOUR = timedelta(hours=1)


def never_asked() -> bool:
    raise AssertionError("no HEAD is needed to decide this state")


@pytest.mark.parametrize("status", ["finalized", "duplicate", "rejected", "cancelled"])
def test_a_decided_intent_is_in_its_stored_state_whatever_the_clock(status):
    expired_long_ago = intent(status, url_left=-24 * HOUR, ttl_left=-HOUR)
    assert lifecycle.upload_state(expired_long_ago, now=NOW, file_stored=never_asked) == status


def test_a_pending_intent_within_its_signed_url_window_is_pending():
    assert lifecycle.upload_state(intent(url_left=HOUR, ttl_left=2 * HOUR), now=NOW, file_stored=never_asked) == (
        "pending"
    )


def test_past_its_ttl_a_pending_intent_is_expired_even_with_a_file_stored():
    assert lifecycle.upload_state(intent(url_left=-2 * HOUR, ttl_left=-HOUR), now=NOW, file_stored=lambda: True) == (
        "expired"
    )


def test_past_its_url_expiry_a_pending_intent_is_expired_only_if_no_file_arrived_in_time():
    waiting = intent(url_left=-HOUR, ttl_left=HOUR)
    # A file stored in time may still be waiting for its put event: the intent can be finalized.
    assert lifecycle.upload_state(waiting, now=NOW, file_stored=lambda: True) == "pending"
    assert lifecycle.upload_state(waiting, now=NOW, file_stored=lambda: False) == "expired"


def test_each_ending_without_audio_has_one_error_and_code():
    rejected = intent("rejected", url_left=HOUR, ttl_left=HOUR, rejected_message="Expected 10 bytes, got 0.")
    error = lifecycle.ended_without_audio(rejected, "rejected")
    assert isinstance(error, UploadAssetInvalid)
    assert (error.code, error.message) == ("upload_asset_invalid", "Expected 10 bytes, got 0.")

    cancelled = lifecycle.ended_without_audio(intent("cancelled", url_left=HOUR, ttl_left=HOUR), "cancelled")
    assert isinstance(cancelled, UploadCancelled) and cancelled.code == "upload_intent_cancelled"
    expired = lifecycle.ended_without_audio(intent(url_left=-HOUR, ttl_left=-HOUR), "expired")
    assert isinstance(expired, UploadExpired) and expired.code == "upload_intent_expired"


def test_a_refusal_by_the_track_keeps_its_own_code():
    superseded = intent(
        "rejected", url_left=HOUR, ttl_left=HOUR, rejected_code="version_superseded", rejected_message="Newer."
    )
    error = lifecycle.ended_without_audio(superseded, "rejected")
    assert error is not None and (error.code, error.message) == ("version_superseded", "Newer.")
    # The class's own code is untouched for everyone else.
    assert UploadAssetInvalid.code == "upload_asset_invalid"


@pytest.mark.parametrize("state", ["pending", "finalized", "duplicate"])
def test_states_that_did_not_end_without_audio_have_no_error(state):
    assert lifecycle.ended_without_audio(intent(state, url_left=HOUR, ttl_left=HOUR), state) is None


def test_only_tracks_that_never_kept_an_original_are_without_audio():
    assert {"draft", "rejected"} == lifecycle.WITHOUT_AUDIO
    assert set(lifecycle.TRACK_STATES) - lifecycle.WITHOUT_AUDIO == {"processing", "ready", "failed"}

"""The autotag lane against moto with real audio: a new track is tagged like the public tracks it
sounds like; private tracks teach nothing; the artist's own tags are kept."""

from __future__ import annotations

import pytest

from functions.data.models import TrackModel
from functions.domain.catalog import artists

from .conftest import Stack, as_user
from .test_embeddings import CHORD, HISS, render
from .test_lanes import lanes_by_name
from .test_workflow import processed


def processed_upload(stack: Stack, user: str, path, **intent) -> dict:
    upload = stack.create_upload(user, path, **intent)
    assert stack.put(upload["signedUrl"], path, content_type="audio/wav") == 200
    stack.drain_s3_events()
    status = processed(stack, user, upload)
    assert status["status"] == "ready", status
    return status


@pytest.fixture
def catalog(stack: Stack, runner, tmp_path) -> None:
    """Bob's public chord (ambient, drone) and hiss (noise), and a private chord whose tag must
    never be learnt."""
    artists.upsert("bob", handle="bob", display_name="Bob")
    processed_upload(stack, "bob", render(tmp_path / "chord.wav", CHORD), tags=["Ambient", "drone"])
    processed_upload(stack, "bob", render(tmp_path / "hiss.wav", HISS), tags=["noise"])
    processed_upload(
        stack, "bob", render(tmp_path / "private.wav", CHORD, gain_db=-3.0), tags=["secret"], visibility="private"
    )


def autotag_lane(status: dict) -> dict:
    return dict(lanes_by_name(status)["autotag"])


@pytest.mark.slow
def test_a_track_is_tagged_like_the_public_tracks_it_sounds_like(stack, artist, catalog, tmp_path):
    status = processed_upload(
        stack, artist, render(tmp_path / "quiet-chord.wav", CHORD, gain_db=-9.0), tags=["mine"], autoTag=True
    )
    lane = autotag_lane(status)
    assert lane["state"] == "succeeded", lane
    outputs = lane["outputs"]
    assert outputs["compared"] == 2  # the two public tracks; the private one is no example
    suggested = {s["tag"]: s["score"] for s in outputs["suggestions"]}
    assert set(suggested) == {"ambient", "drone"}
    assert all(score > 0.9 for score in suggested.values())
    assert outputs["applied"] == ["ambient", "drone"]
    track = stack.api.get(f"/v1/tracks/{status['trackId']}", headers=as_user(artist)).json()
    # The artist's tag first and kept; the suggestions after it.
    assert track["tags"] == ["mine", "ambient", "drone"]
    # Once tagged and public it is listed under its new tags, and teaches the next upload.
    listed = stack.api.get("/v1/tags/drone/tracks").json()["tracks"]
    assert status["trackId"] in [t["trackId"] for t in listed]
    assert TrackModel.get(status["trackId"][4:], TrackModel.TRACK_SK).tag_reference == TrackModel.TAG_REFERENCE


@pytest.mark.slow
def test_without_auto_tag_the_suggestions_are_only_recorded(stack, artist, catalog, tmp_path):
    status = processed_upload(stack, artist, render(tmp_path / "more-hiss.wav", HISS, gain_db=-6.0))
    outputs = autotag_lane(status)["outputs"]
    assert [s["tag"] for s in outputs["suggestions"]] == ["noise"]
    assert (outputs["autoTag"], outputs["applied"]) == (False, [])
    track = stack.api.get(f"/v1/tracks/{status['trackId']}", headers=as_user(artist)).json()
    assert track["tags"] == []


def test_with_nothing_to_learn_from_the_lane_is_skipped_with_a_reason(stack, artist, runner, wav_3s):
    status = processed_upload(stack, artist, wav_3s, autoTag=True)
    lane = autotag_lane(status)
    assert (lane["state"], lane["code"]) == ("skipped", "no_reference_tracks")

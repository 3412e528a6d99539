"""The autotag lane against moto with real audio: a new track is tagged like the public tracks it
sounds like; private tracks teach nothing; the artist's own tags are kept."""

from __future__ import annotations

import json
import time

import pytest

from functions.data.models import TrackModel, utcnow
from functions.domain.catalog import artists
from functions.domain.processing import autotag
from functions.settings import settings

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
    # The catalog is minutes old for the lanes that follow: the reference snapshot the catalog's own
    # autotag lanes built is rebuilt, as the first lane after its max age would.
    autotag.rebuild_reference_snapshot(settings().autotag_examples_max)


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


def test_lanes_read_the_reference_snapshot_and_only_an_expired_one_queries_the_index(stack, artist, monkeypatch):
    queries: list[str] = []
    real_query = TrackModel.by_tag_reference.query

    def counted(*args, **kwargs):
        queries.append("by_tag_reference")
        return real_query(*args, **kwargs)

    monkeypatch.setattr(TrackModel.by_tag_reference, "query", counted)
    TrackModel(
        "ref1", TrackModel.TRACK_SK, owner_id="bob", title="Ref", upload_id="u1", tags=["drone"],
        embedding={"vector": [1.0, 0.0]},
        tag_reference=TrackModel.TAG_REFERENCE, created_at=utcnow(),
    ).save()  # fmt: skip

    # The first lane finds no snapshot and builds it; the next lanes (this container or another:
    # the one it holds is forgotten) read it without touching the index
    assert [e.track_id for e in autotag.reference_examples("new1", limit=10)] == ["ref1"]
    monkeypatch.setattr(autotag._Held, "snapshot", None)
    assert [e.track_id for e in autotag.reference_examples("new2", limit=10)] == ["ref1"]
    assert [e.track_id for e in autotag.reference_examples("ref1", limit=10)] == []  # never its own example
    assert queries == ["by_tag_reference"]
    stored = stack.s3.get_object(Bucket=stack.resources.bucket, Key="references/autotag-examples.json")
    assert json.loads(stored["Body"].read())["examples"] == [
        {"trackId": "ref1", "tags": ["drone"], "vector": [1.0, 0.0]}
    ]

    # Once older than its max age, the next lane rebuilds it from the index
    monkeypatch.setenv("TRACKLANE_AUTOTAG_REFERENCES_MAX_AGE_S", "0")
    settings.cache_clear()
    time.sleep(0.01)
    autotag.reference_examples("new3", limit=10)
    assert queries == ["by_tag_reference", "by_tag_reference"]

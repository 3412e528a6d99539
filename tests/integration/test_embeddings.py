"""The embeddings lane and /similar against moto: real audio in, the owner's nearest tracks out."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from tests.conftest import FFMPEG

from .conftest import as_user
from .test_lanes import lanes_by_name
from .test_workflow import processed, upload_and_finalize


def render(path: Path, source: str, *, gain_db: float = 0.0) -> Path:
    subprocess.run(
        [
            FFMPEG, "-hide_banner", "-nostdin", "-y", "-v", "error",
            "-f", "lavfi", "-i", source, "-af", f"volume={gain_db}dB", "-ac", "2", str(path),
        ],
        check=True,
    )  # fmt: skip
    return path


CHORD = "aevalsrc=0.3*sin(2*PI*110*t)+0.2*sin(2*PI*165*t)+0.1*sin(2*PI*220*t):s=44100:d=4"
HISS = "anoisesrc=color=white:amplitude=0.3:sample_rate=44100:duration=4"


@pytest.fixture
def bob(stack):
    from functions.domain.catalog import artists

    artists.upsert("bob", handle="bob", display_name="Bob")


@pytest.fixture
def library(stack, artist, bob, runner, tmp_path):
    """Alice's chord, the same chord 9 dB quieter (another take of it, to a listener), and hiss; Bob's
    chord, which must never show up in Alice's results."""
    made = {}
    for name, source, gain in (("chord", CHORD, 0.0), ("quiet-chord", CHORD, -9.0), ("hiss", HISS, 0.0)):
        upload = upload_and_finalize(stack, artist, render(tmp_path / f"{name}.wav", source, gain_db=gain))
        made[name] = upload
    bob = upload_and_finalize(stack, "bob", render(tmp_path / "bobs-chord.wav", CHORD))
    for user, upload in [*((artist, u) for u in made.values()), ("bob", bob)]:
        assert processed(stack, user, upload)["status"] == "ready"
    made["bob"] = bob
    return made


@pytest.mark.slow
def test_similar_ranks_the_owners_tracks_by_sound(stack, artist, bob, library):
    chord = library["chord"]
    lane = lanes_by_name(processed(stack, artist, chord))["embeddings"]
    assert lane["state"] == "succeeded"
    assert lane["outputs"]["version"] == "logmel-v1"
    assert lane["outputs"]["dimensions"] == 101
    assert abs(lane["outputs"]["analysedMs"] - 4000) <= 50

    response = stack.api.get(f"/v1/tracks/{chord['trackId']}/similar", headers=as_user(artist))
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["compared"] == 2  # itself and Bob's tracks are not candidates
    ranked = [item["trackId"] for item in body["items"]]
    assert ranked == [library["quiet-chord"]["trackId"], library["hiss"]["trackId"]]
    quiet, hiss = body["items"]
    assert quiet["score"] > 0.98
    assert hiss["score"] < quiet["score"] - 0.3
    assert quiet["title"] == "quiet-chord"

    limited = stack.api.get(f"/v1/tracks/{chord['trackId']}/similar?limit=1", headers=as_user(artist)).json()
    assert [item["trackId"] for item in limited["items"]] == ranked[:1]


@pytest.mark.slow
def test_similar_is_owner_scoped_and_bounded(stack, artist, bob, library):
    chord = library["chord"]
    other = stack.api.get(f"/v1/tracks/{chord['trackId']}/similar", headers=as_user("bob"))
    assert (other.status_code, other.json()["error"]["code"]) == (404, "track_not_found")
    too_many = stack.api.get(f"/v1/tracks/{chord['trackId']}/similar?limit=51", headers=as_user(artist))
    assert too_many.status_code == 422
    bobs = stack.api.get(f"/v1/tracks/{library['bob']['trackId']}/similar", headers=as_user("bob")).json()
    assert bobs["items"] == []  # Bob has no other tracks; Alice's chords are not his to see


def test_similar_before_the_embedding_exists_is_a_409(stack, artist, wav_3s):
    upload = stack.create_upload(artist, wav_3s)  # never finalized
    response = stack.api.get(f"/v1/tracks/{upload['trackId']}/similar", headers=as_user(artist))
    assert response.status_code == 409
    assert response.json()["error"]["code"] == "embedding_not_ready"
    assert response.json()["error"]["trackStatus"] == "draft"

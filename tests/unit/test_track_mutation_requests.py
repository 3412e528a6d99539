"""PATCH/DELETE /v1/tracks/{trackId} refuse bad requests before any storage is touched, and the key
layout the track delete relies on holds. (The network is refused in unit tests: reaching DynamoDB
or S3 here would fail the test.)"""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from functions import ids
from functions.api.app import create_app
from functions.data import keys, storage

from .test_api_requests import AUTH, HeaderAuthenticator, error_code

TRACK = ids.render("trk", ids.new_id())


@pytest.fixture
def client():
    return TestClient(create_app(HeaderAuthenticator()), raise_server_exceptions=False)


@pytest.mark.parametrize("method", ["PATCH", "DELETE"])
def test_no_token_is_401_whatever_the_body(client, method):
    response = client.request(method, f"/v1/tracks/{TRACK}", json={"titel": "typo"})
    assert (response.status_code, error_code(response)) == (401, "unauthorized")


@pytest.mark.parametrize(
    "body",
    [
        {"titel": "typo"},
        {"title": None},
        {"title": ""},
        {"title": "x" * 257},
        {"album": ""},
        {"features": ["x" * 65]},
        {"tags": ["t"] * 51},
        {"description": "x" * 5001},
        {"supportGate": {"type": "any", "tier": 3}},
        {"removeImage": None},
    ],
)
def test_bad_patch_bodies_are_422_before_storage(client, body):
    response = client.patch(f"/v1/tracks/{TRACK}", json=body, headers=AUTH)
    assert (response.status_code, error_code(response)) == (422, "validation_failed"), response.text


def test_a_patch_body_that_is_not_json_is_400(client):
    response = client.patch(
        f"/v1/tracks/{TRACK}", content=b"{title:", headers={**AUTH, "content-type": "application/json"}
    )
    assert (response.status_code, error_code(response)) == (400, "invalid_json")


def test_every_object_of_a_track_lives_under_its_prefix():
    """Deleting a track deletes ``track_prefix``; removing its image deletes ``artwork_prefix``."""
    track_id = ids.new_id()
    artwork = [keys.embedded_cover(track_id, "jpg"), keys.artwork_variant(track_id, 300, "webp")]
    audio = [keys.rendition(track_id, "aac", "m4a"), keys.waveform(track_id)]
    assert all(key.startswith(keys.track_prefix(track_id)) for key in artwork + audio)
    assert all(key.startswith(keys.artwork_prefix(track_id)) for key in artwork)
    assert not any(key.startswith(keys.artwork_prefix(track_id)) for key in audio)
    # A prefix is a whole folder: one track's prefix never matches another id that extends it.
    assert not keys.rendition(track_id + "0", "aac", "m4a").startswith(keys.track_prefix(track_id))


@pytest.mark.parametrize("prefix", ["", "/", "tracks", "tracks/abc", "uploads"])
def test_delete_prefix_refuses_anything_but_a_folder_before_calling_s3(prefix):
    with pytest.raises(ValueError, match="not a folder prefix"):
        storage.delete_prefix(prefix)

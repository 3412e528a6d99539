"""Artist profiles (required to upload, unique handles) and upload entitlements."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import pytest

from functions.domain.catalog import entitlements

from .conftest import as_user

INTENT = {"fileName": "night-drive.wav", "contentType": "audio/wav", "byteSize": 1000}


def put_profile(stack, user, handle, display_name=None):
    body = {"handle": handle} | ({"displayName": display_name} if display_name else {})
    return stack.api.put("/v1/artists/me", json=body, headers=as_user(user))


def test_a_profile_is_required_before_uploading(stack):
    response = stack.api.post("/v1/uploads", json=INTENT, headers=as_user("newcomer"))
    assert response.status_code == 403
    assert response.json()["error"]["code"] == "artist_profile_required"
    assert stack.api.get("/v1/artists/me", headers=as_user("newcomer")).status_code == 404

    assert put_profile(stack, "newcomer", "Newcomer", "New Comer").status_code == 200
    assert stack.api.post("/v1/uploads", json=INTENT, headers=as_user("newcomer")).status_code == 201
    profile = stack.api.get("/v1/artists/me", headers=as_user("newcomer")).json()
    assert profile["handle"] == "newcomer"  # handles are case-insensitive, stored lower-case
    assert profile["displayName"] == "New Comer"


def test_a_handle_belongs_to_one_artist(stack):
    assert put_profile(stack, "alice", "night-owl").status_code == 200
    response = put_profile(stack, "bob", "Night-Owl")
    assert response.status_code == 409
    assert response.json()["error"] == {
        "code": "handle_taken",
        "message": "The handle 'night-owl' is taken.",
        "handle": "night-owl",
    }


def test_renaming_releases_the_old_handle(stack):
    put_profile(stack, "alice", "first-name")
    assert put_profile(stack, "alice", "second-name").json()["handle"] == "second-name"
    assert put_profile(stack, "bob", "first-name").status_code == 200
    assert put_profile(stack, "alice", "second-name").status_code == 200  # idempotent re-PUT


def test_renaming_to_a_handle_another_artist_holds_is_handle_taken(stack):
    """The rename's transaction also deletes the old claim, which DynamoDB lists first: the refusal
    is read off the claim itself, not off a position in the transaction."""
    put_profile(stack, "alice", "alice-first")
    put_profile(stack, "bob", "taken-by-bob")

    response = put_profile(stack, "alice", "taken-by-bob")

    assert (response.status_code, response.json()["error"]["code"]) == (409, "handle_taken")
    assert stack.api.get("/v1/artists/me", headers=as_user("alice")).json()["handle"] == "alice-first"


def test_concurrent_claims_of_one_handle_have_one_winner(stack):
    def claim(user: str) -> int:
        return put_profile(stack, user, "contested").status_code

    with ThreadPoolExecutor(max_workers=8) as pool:
        statuses = list(pool.map(claim, [f"user{i}" for i in range(8)]))

    assert statuses.count(200) == 1
    assert statuses.count(409) == 7


@pytest.mark.parametrize("handle", ["ab", "-lead", "has space", "x" * 64, "trail-"])
def test_malformed_handles_are_422(stack, handle):
    assert put_profile(stack, "alice", handle).status_code == 422


def test_a_revoked_entitlement_is_403_and_a_grant_restores_it(stack, artist):
    entitlements.set_entitlement(artist, allowed=False, by="test", reason="chargeback")
    response = stack.api.post("/v1/uploads", json=INTENT, headers=as_user(artist))
    assert response.status_code == 403
    assert response.json()["error"]["code"] == "entitlement_required"

    entitlements.set_entitlement(artist, allowed=True, by="test")
    assert stack.api.post("/v1/uploads", json=INTENT, headers=as_user(artist)).status_code == 201


def test_a_deny_by_default_policy_needs_an_explicit_grant(stack, artist, monkeypatch):
    from functions import clients

    monkeypatch.setenv("TRACKLANE_DEFAULT_UPLOAD_ENTITLEMENT", "deny")
    clients.reset()
    assert stack.api.post("/v1/uploads", json=INTENT, headers=as_user(artist)).status_code == 403
    assert entitlements.lookup(artist).source == "default"

    entitlements.set_entitlement(artist, allowed=True, by="test")
    assert stack.api.post("/v1/uploads", json=INTENT, headers=as_user(artist)).status_code == 201
    assert entitlements.clear(artist).allowed is False


def test_unknown_featured_artists_are_named_in_the_error(stack, artist):
    put_profile(stack, "bob", "bob")
    ok = stack.api.post("/v1/uploads", json={**INTENT, "features": ["@Bob"]}, headers=as_user(artist))
    assert ok.status_code == 201

    response = stack.api.post("/v1/uploads", json={**INTENT, "features": ["bob", "ghost"]}, headers=as_user(artist))
    assert response.status_code == 422
    assert response.json()["error"]["code"] == "unknown_feature_handle"
    assert response.json()["error"]["handle"] == "ghost"


def test_intent_metadata_is_normalized_onto_the_draft_track(stack, artist):
    body = {
        **INTENT,
        "title": "Night Drive",
        "album": "Late Hours",
        "tags": '["  Lo-Fi ", "lo-fi", "Synth  Wave"]',  # seed 000 sends a JSON-array string
        "supportGate": {"type": "any"},
        "description": "Recorded at 3 am.",
        "autoTag": True,
    }
    created = stack.api.post("/v1/uploads", json=body, headers=as_user(artist)).json()
    track = stack.api.get(f"/v1/tracks/{created['trackId']}", headers=as_user(artist)).json()
    assert track["title"] == "Night Drive"
    assert track["album"] == "Late Hours"
    assert track["tags"] == ["lo-fi", "synth wave"]
    assert track["supportGate"] == {"type": "any"}
    assert track["autoTag"] is True
    assert track["status"] == "draft"


def test_the_title_defaults_to_the_file_name(stack, artist):
    created = stack.api.post("/v1/uploads", json=INTENT, headers=as_user(artist)).json()
    assert stack.api.get(f"/v1/tracks/{created['trackId']}", headers=as_user(artist)).json()["title"] == "night-drive"

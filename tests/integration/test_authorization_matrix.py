"""Every owner-scoped route × {owner, another artist, anonymous}: the owner gets a 2xx, another
artist a 404 that reveals nothing (never a 403 that would confirm the id exists), anonymous a 401 --
or, on a route whose access is optional (anyone may read what is public), the same 404 another
artist gets.

The matrix must name every route the app has, and agree with the access each route declares
(``functions.api.access``): a new route fails ``test_every_route_is_in_the_matrix`` until someone
decides who may call it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest

from functions.api import access
from functions.api.app import create_app, routers

from .conftest import Stack, as_user

# What each route declares: public / optional / owner.
DECLARED = {(route.method, route.path): route.access for route in access.table(routers())}

# Deliberately public: readable by anyone, with or without a token.
PUBLIC = {
    ("GET", "/health"),
    ("GET", "/v1/albums"),
    ("GET", "/v1/artists/{handle}/albums"),
    ("GET", "/v1/artists/{handle}/albums/{slug}"),
    ("GET", "/v1/artists/{handle}/albums/{slug}/cover"),
    ("GET", "/v1/artists/{handle}"),
    ("GET", "/v1/artists/{handle}/tracks"),
    ("GET", "/v1/tags/{tag}/tracks"),
    ("GET", "/v1/uploads/config"),
}
# Public routes that answer something other than 200 for the fixture below (an album without a cover).
PUBLIC_STATUS = {("GET", "/v1/artists/{handle}/albums/{slug}/cover"): 404}
# Scoped to the caller by construction (there is no id of someone else's to pass).
SELF_SCOPED = {
    ("GET", "/v1/artists/me"): 200,
    ("PUT", "/v1/artists/me"): 200,
    ("POST", "/v1/uploads"): 201,
    ("POST", "/v1/albums"): 201,
    ("GET", "/v1/me/tracks"): 200,
    ("GET", "/v1/me/usage"): 200,
    ("GET", "/v1/artists/me/supporters"): 200,
    ("PUT", "/v1/artists/me/supporters/{user_id}"): 200,
    ("DELETE", "/v1/artists/me/supporters/{user_id}"): 204,
}


@dataclass(frozen=True)
class Owned:
    """A route on something the owner has: ``call(stack, headers, ids) -> response``."""

    method: str
    path: str
    owner_status: int
    call: Callable[[Stack, dict[str, str], dict[str, str]], Any]


def _req(method: str, template: str, body: Any = None, params: str = "") -> Callable[..., Any]:
    def call(stack: Stack, headers: dict[str, str], ids: dict[str, str]) -> Any:
        url = template.format(**ids) + params
        # A body may name an id too ("{album}"), filled in like the path.
        sent = {k: v.format(**ids) if isinstance(v, str) else v for k, v in body.items()} if body else body
        return stack.api.request(method, url, json=sent, headers=headers, follow_redirects=False)

    return call


# Order matters only at the end: the deleting routes run last, each on its own fresh fixtures.
OWNED = [
    Owned("GET", "/v1/tracks/{track_id}", 200, _req("GET", "/v1/tracks/{track}")),
    Owned("GET", "/v1/tracks/{track_id}/processing-status", 200, _req("GET", "/v1/tracks/{track}/processing-status")),
    Owned(
        "GET", "/v1/tracks/{track_id}/stream", 302, _req("GET", "/v1/tracks/{track}/stream", params="?format=original")
    ),
    Owned("GET", "/v1/tracks/{track_id}/artwork", 404, _req("GET", "/v1/tracks/{track}/artwork")),
    Owned("GET", "/v1/tracks/{track_id}/similar", 409, _req("GET", "/v1/tracks/{track}/similar")),
    # The fixture's track is not processed: its owner learns the lane has no result yet.
    Owned(
        "GET", "/v1/tracks/{track_id}/lanes/{lane}/result", 404, _req("GET", "/v1/tracks/{track}/lanes/probe/result")
    ),
    Owned("PATCH", "/v1/tracks/{track_id}", 200, _req("PATCH", "/v1/tracks/{track}", {"title": "Renamed"})),
    Owned("POST", "/v1/uploads/{upload_id}/finalize", 200, _req("POST", "/v1/uploads/{upload}/finalize")),
    # The test app answers progress once and closes (progress_stream is off), so the owner gets a 200.
    Owned("GET", "/v1/uploads/{upload_id}/progress", 200, _req("GET", "/v1/uploads/{upload}/progress")),
    Owned("POST", "/v1/uploads/{upload_id}/progress-tokens", 201, _req("POST", "/v1/uploads/{upload}/progress-tokens")),
    # The fixture's upload is a finalized single PUT: its owner reaches the service and learns that
    # (409 upload_not_multipart / upload_already_finalized); test_multipart_uploads and
    # test_upload_lifecycle cover the 2xx answers.
    Owned("GET", "/v1/uploads/{upload_id}/parts", 409, _req("GET", "/v1/uploads/{upload}/parts")),
    Owned("GET", "/v1/uploads/{upload_id}/parts/urls", 409, _req("GET", "/v1/uploads/{upload}/parts/urls")),
    Owned("POST", "/v1/uploads/{upload_id}/complete", 409, _req("POST", "/v1/uploads/{upload}/complete")),
    Owned("POST", "/v1/uploads/{upload_id}/abort", 409, _req("POST", "/v1/uploads/{upload}/abort")),
    Owned("DELETE", "/v1/uploads/{upload_id}", 409, _req("DELETE", "/v1/uploads/{upload}")),
    Owned(
        "POST",
        "/v1/tracks/{track_id}/versions/uploads",
        201,
        _req(
            "POST",
            "/v1/tracks/{track}/versions/uploads",
            {"fileName": "v2.wav", "contentType": "audio/wav", "byteSize": 9},
        ),
    ),
    Owned(
        "POST",
        "/v1/tracks/{track_id}/artwork/uploads",
        201,
        _req(
            "POST",
            "/v1/tracks/{track}/artwork/uploads",
            {"fileName": "c.png", "contentType": "image/png", "byteSize": 9},
        ),
    ),
    Owned(
        "POST",
        "/v1/albums/{album_id}/cover/uploads",
        201,
        _req(
            "POST", "/v1/albums/{album}/cover/uploads", {"fileName": "c.gif", "contentType": "image/gif", "byteSize": 9}
        ),
    ),
    Owned(
        "POST",
        "/v1/tracks/{track_id}/documents/uploads",
        201,
        _req(
            "POST",
            "/v1/tracks/{track}/documents/uploads",
            {"fileName": "n.txt", "contentType": "text/plain", "byteSize": 9},
        ),
    ),
    Owned("GET", "/v1/tracks/{track_id}/documents", 200, _req("GET", "/v1/tracks/{track}/documents")),
    # Seed 003 answers errors as {"ok": false, "error": {"code", "message"}}: the same
    # error.code the assertions read. Opening a session needs an album of the caller's.
    Owned("POST", "/v1/upload_session", 201, _req("POST", "/v1/upload_session", {"collection_id": "{album}"})),
    Owned("GET", "/v1/upload_session/{upload_session_id}", 200, _req("GET", "/v1/upload_session/{session}")),
    Owned(
        "POST",
        "/v1/upload/{upload_session_id}/track",
        201,
        _req("POST", "/v1/upload/{session}/track", {"file_name": "s.wav"}),
    ),
    # The track has no document: its owner learns that (document_not_found), another artist only
    # that there is no such track. test_document_uploads covers the 302 and the 204.
    Owned(
        "GET",
        "/v1/tracks/{track_id}/documents/{document_id}",
        404,
        _req("GET", "/v1/tracks/{track}/documents/ast_00000000-0000-4000-8000-000000000000"),
    ),
    Owned(
        "DELETE",
        "/v1/tracks/{track_id}/documents/{document_id}",
        404,
        _req("DELETE", "/v1/tracks/{track}/documents/ast_00000000-0000-4000-8000-000000000000"),
    ),
    Owned("PATCH", "/v1/albums/{album_id}", 200, _req("PATCH", "/v1/albums/{album}", {"description": "x"})),
    Owned(
        "DELETE",
        "/v1/albums/{album_id}/tracks/{track_id}",
        204,
        _req("DELETE", "/v1/albums/{album}/tracks/{track}"),
    ),
    Owned("DELETE", "/v1/tracks/{track_id}", 204, _req("DELETE", "/v1/tracks/{track}")),
    Owned("DELETE", "/v1/albums/{album_id}", 200, _req("DELETE", "/v1/albums/{album}")),
]


def test_every_route_is_in_the_matrix():
    # The OpenAPI document lists every route of every included router (app.routes nests them).
    paths = create_app(authenticator=None).openapi()["paths"]  # type: ignore[arg-type]
    routes = {(method.upper(), path) for path, operations in paths.items() for method in operations}
    assert len(routes) > 15  # the check below cannot pass on an empty list
    covered = PUBLIC | set(SELF_SCOPED) | {(o.method, o.path) for o in OWNED}
    assert routes - covered == set(), "a route nobody decided the authorization of"
    assert covered - routes == set(), "the matrix names a route that does not exist"
    # ...and the matrix agrees with what each route declares.
    assert set(DECLARED) == routes
    assert {r for r in PUBLIC if DECLARED[r] not in ("public", "optional")} == set()
    assert {r for r, declared in DECLARED.items() if declared == "public"} <= PUBLIC
    scoped = set(SELF_SCOPED) | {(o.method, o.path) for o in OWNED}
    assert {r for r in scoped if DECLARED[r] not in ("owner", "optional")} == set()


@pytest.fixture
def owned(stack: Stack, artist: str, wav_3s) -> dict[str, str]:
    """Alice's finalized track (no runner: it stays processing), in her album."""
    from functions.domain.catalog import artists

    artists.upsert("mallory", handle="mallory", display_name="Mallory")
    upload = stack.create_upload(artist, wav_3s, album="Mine")
    stack.put(upload["signedUrl"], wav_3s, content_type="audio/wav")
    track = stack.api.get(f"/v1/tracks/{upload['trackId']}", headers=as_user(artist)).json()
    session = stack.api.post("/v1/upload_session", json={"collection_id": track["albumId"]}, headers=as_user(artist))
    return {
        "track": upload["trackId"],
        "upload": upload["uploadId"],
        "album": track["albumId"],
        "session": session.json()["upload_session_id"],
    }


@pytest.mark.parametrize("route", OWNED, ids=lambda o: f"{o.method} {o.path}")
def test_owner_other_artist_and_anonymous(stack, artist, owned, route):
    if route.path != "/v1/uploads/{upload_id}/finalize":
        # Every other route expects the upload finalized (a track that is processing).
        stack.api.post(f"/v1/uploads/{owned['upload']}/finalize", headers=as_user(artist))

    anonymous = route.call(stack, {}, owned)
    if DECLARED[(route.method, route.path)] == "optional":
        # Anyone may read what is public; this track is not (it is processing): not found.
        assert (anonymous.status_code, anonymous.json()["error"]["code"]) == (404, "track_not_found")
    else:
        assert (anonymous.status_code, anonymous.json()["error"]["code"]) == (401, "unauthorized")

    other = route.call(stack, as_user("mallory"), owned)
    assert other.status_code == 404, other.text
    assert other.json()["error"]["code"].endswith("not_found")

    # Neither attempt changed anything: the owner's call still does what it should.
    mine = route.call(stack, as_user(artist), owned)
    assert mine.status_code == route.owner_status, mine.text


@pytest.mark.parametrize(("method", "path"), sorted(SELF_SCOPED))
def test_self_scoped_routes_need_a_caller(stack, method, path):
    response = stack.api.request(method, path.format(user_id="bob"), json={})
    assert (response.status_code, response.json()["error"]["code"]) == (401, "unauthorized")


@pytest.mark.parametrize(("method", "path"), sorted(PUBLIC))
def test_public_routes_answer_without_a_token(stack, artist, method, path):
    stack.api.post("/v1/albums", json={"title": "Open"}, headers=as_user(artist))
    url = path.format(handle="alice", slug="open", tag="open")
    assert stack.api.request(method, url).status_code == PUBLIC_STATUS.get((method, path), 200)

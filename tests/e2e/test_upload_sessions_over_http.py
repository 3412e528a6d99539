"""The seed 003 flow end to end over HTTP against the local stack: a session, three tracks PUT to
moto in reverse order, a cover POSTed as a browser form, no finalize call; the S3-event pump and the
workflow runner do the rest."""

from __future__ import annotations

import io
import time
from pathlib import Path

import httpx
from PIL import Image

from .conftest import LocalStackProcess


def distinct_copy(wav: Path, n: int) -> bytes:
    """The same owner's same bytes would be a duplicate: each track gets its own last samples."""
    data = wav.read_bytes()
    return data[:-4] + n.to_bytes(4, "little")


def test_the_seed_003_flow_over_http(local_stack: LocalStackProcess, wav_3s: Path) -> None:
    api, auth = local_stack.api, local_stack.auth("gina")
    assert httpx.put(f"{api}/v1/artists/me", json={"handle": "gina"}, headers=auth).status_code == 200
    album = httpx.post(f"{api}/v1/albums", json={"title": "Batch"}, headers=auth).json()

    # A session into the album (bare UUID), then three tracks
    session = httpx.post(
        f"{api}/v1/upload_session",
        json={"collection_id": album["albumId"].removeprefix("alb_"), "metadata": {"batch_name": "e2e"}},
        headers=auth,
    ).json()
    assert session["ok"] is True
    session_id = session["upload_session_id"]
    intents = []
    for index in ("1", "2", "3"):
        response = httpx.post(
            f"{api}/v1/upload/{session_id}/track",
            json={"file_name": f"t{index}.wav", "organization_index": index, "metadata": {"title": f"T{index}"}},
            headers=auth,
        )
        assert response.status_code == 201, response.text
        intents.append(response.json())

    # The audio goes straight to storage, last track first; a cover for the first track
    for n, intent in reversed(list(enumerate(intents))):
        upload = intent["track_upload"]
        put = httpx.put(upload["upload_url"], content=distinct_copy(wav_3s, n), headers=upload["headers"])
        assert put.status_code == 200
    image = io.BytesIO()
    Image.new("RGB", (200, 200), (10, 200, 90)).save(image, format="PNG")
    cover = intents[0]["track_cover_upload"]
    posted = httpx.post(
        cover["upload_url"],
        data={**cover["fields"], "Content-Type": "image/png"},
        files={"file": ("cover.png", image.getvalue(), "image/png")},
    )
    assert posted.status_code in (200, 204), posted.text

    # Every track ends ready, the cover rendered, and the album lists them as T1, T2, T3
    deadline = time.monotonic() + 120
    while True:
        state = httpx.get(f"{api}/v1/upload_session/{session_id}", headers=auth).json()
        tracks = state["upload_session"]["tracks"]
        done = all(t["status"] in {"ready", "failed"} for t in tracks) and tracks[0]["cover_status"] == "ready"
        if done or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    assert [(t["title"], t["status"]) for t in tracks] == [("T1", "ready"), ("T2", "ready"), ("T3", "ready")]
    assert tracks[0]["cover_status"] == "ready"
    page = httpx.get(f"{api}/v1/artists/gina/albums/{album['slug']}").json()
    assert [t["title"] for t in page["tracks"]] == ["T1", "T2", "T3"]

    # Another user's token: the seed's not-found
    other = httpx.get(f"{api}/v1/upload_session/{session_id}", headers=local_stack.auth("hank"))
    assert other.status_code == 404
    assert other.json() == {
        "ok": False,
        "error": {"code": "upload_session_not_found", "message": other.json()["error"]["message"]},
    }

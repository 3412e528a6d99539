"""Track documents against moto: a PDF/TXT intent signs a PUT, its S3 put event records the
document on the track once (however often it is delivered), a read redirects to the stored file,
a delete removes both; a file that differs from its intent and a full track are refused."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from functions.data import keys
from functions.domain.intake import finalize, media_uploads

from .conftest import Stack, as_user

PDF = b"%PDF-1.4\n1 0 obj <<>> endobj\ntrailer <<>>\n%%EOF\n"


@pytest.fixture
def draft(stack: Stack, artist: str, tmp_path: Path) -> str:
    """A draft track (its intent is enough: documents do not need the audio)."""
    audio = tmp_path / "song.wav"
    audio.write_bytes(b"RIFF0000WAVE")
    return str(stack.create_upload(artist, audio)["trackId"])


def document_intent(stack: Stack, user: str, track_id: str, name: str, content_type: str, *, data: bytes):
    body = {"fileName": name, "contentType": content_type, "byteSize": len(data)}
    return stack.api.post(f"/v1/tracks/{track_id}/documents/uploads", json=body, headers=as_user(user))


def upload_document(stack: Stack, user: str, track_id: str, name: str, content_type: str, *, data: bytes) -> dict:
    created = document_intent(stack, user, track_id, name, content_type, data=data)
    assert created.status_code == 201, created.text
    response = httpx.put(created.json()["signedUrl"], content=data, headers={"content-type": content_type})
    assert response.status_code == 200
    stack.drain_s3_events()
    return dict(created.json())


def listed(stack: Stack, user: str, track_id: str) -> list[dict]:
    response = stack.api.get(f"/v1/tracks/{track_id}/documents", headers=as_user(user))
    assert response.status_code == 200, response.text
    return list(response.json()["documents"])


def test_a_document_is_recorded_served_and_deleted(stack, artist, draft):
    created = upload_document(stack, artist, draft, "liner-notes.pdf", "application/pdf", data=PDF)
    assert created["documentId"] == created["assetId"]
    assert created["requiredHeaders"] == {"content-type": "application/pdf"}

    (document,) = listed(stack, artist, draft)
    assert document["documentId"] == created["documentId"]
    assert (document["fileName"], document["contentType"], document["byteSize"]) == (
        "liner-notes.pdf",
        "application/pdf",
        len(PDF),
    )
    assert document["createdAt"]

    url = f"/v1/tracks/{draft}/documents/{created['documentId']}"
    redirect = stack.api.get(url, headers=as_user(artist), follow_redirects=False)
    assert redirect.status_code == 302
    assert redirect.headers["cache-control"] == "private, no-store"
    served = httpx.get(redirect.headers["location"])
    assert (served.content, served.headers["content-type"]) == (PDF, "application/pdf")

    assert stack.api.delete(url, headers=as_user(artist)).status_code == 204
    assert listed(stack, artist, draft) == []
    key = f"uploads/{created['uploadId'][4:]}/document.pdf"
    assert stack.s3.list_objects_v2(Bucket=stack.resources.bucket, Prefix=key).get("KeyCount") == 0
    again = stack.api.delete(url, headers=as_user(artist))
    assert (again.status_code, again.json()["error"]["code"]) == (404, "document_not_found")
    assert stack.api.get(url, headers=as_user(artist)).json()["error"]["code"] == "document_not_found"


def test_a_repeated_put_event_records_the_document_once(stack, artist, draft):
    created = upload_document(stack, artist, draft, "lyrics.txt", "text/plain", data=b"la la la\n")

    again = finalize.finalize(created["uploadId"][4:], trigger="s3_event")

    assert again.status == "already_finalized"
    assert [d["documentId"] for d in listed(stack, artist, draft)] == [created["documentId"]]
    assert stack.executions() == []  # a document starts no processing


def test_a_document_that_differs_from_its_intent_is_rejected(stack, artist, draft):
    created = document_intent(stack, artist, draft, "credits.pdf", "application/pdf", data=PDF).json()
    # A different size than the intent declared (moto does not enforce the signed length; S3 would).
    httpx.put(created["signedUrl"], content=PDF + b"extra", headers={"content-type": "application/pdf"})
    stack.drain_s3_events()

    assert listed(stack, artist, draft) == []
    key = f"uploads/{created['uploadId'][4:]}/"
    assert stack.s3.list_objects_v2(Bucket=stack.resources.bucket, Prefix=key).get("KeyCount") == 0
    from functions.domain.intake import uploads

    upload = uploads.find(created["uploadId"][4:])
    assert upload is not None
    assert (upload.status, upload.rejected_code) == ("rejected", "upload_asset_invalid")


def test_a_full_track_refuses_the_intent_and_the_put_event(stack, artist, draft, monkeypatch):
    monkeypatch.setattr(media_uploads, "MAX_DOCUMENTS", 1)
    # Two intents made while the track is empty; only one document fits when their files arrive.
    first = document_intent(stack, artist, draft, "a.txt", "text/plain", data=b"a").json()
    second = document_intent(stack, artist, draft, "b.txt", "text/plain", data=b"b").json()
    for created, data in ((first, b"a"), (second, b"b")):
        httpx.put(created["signedUrl"], content=data, headers={"content-type": "text/plain"})
        stack.drain_s3_events()

    assert [d["documentId"] for d in listed(stack, artist, draft)] == [first["documentId"]]
    from functions.domain.intake import uploads

    refused = uploads.find(second["uploadId"][4:])
    assert refused is not None
    assert (refused.status, refused.rejected_code) == ("rejected", "document_limit_reached")
    full = document_intent(stack, artist, draft, "c.txt", "text/plain", data=b"c")
    assert (full.status_code, full.json()["error"]["code"]) == (409, "document_limit_reached")


def test_the_intent_checks_extension_type_size_and_owner(stack, artist, draft):
    from functions.domain.catalog import artists

    artists.upsert("mallory", handle="mallory", display_name="Mallory")

    def code(response):
        return response.status_code, response.json()["error"]["code"]

    assert code(document_intent(stack, artist, draft, "a.docx", "application/msword", data=PDF)) == (
        400,
        "unsupported_media_type",
    )
    assert code(document_intent(stack, artist, draft, "a.pdf", "text/plain", data=PDF)) == (
        400,
        "unsupported_media_type",
    )
    assert code(document_intent(stack, artist, draft, "a.txt", "text/plain", data=b"")) == (400, "empty_file")
    body = {"fileName": "big.pdf", "contentType": "application/pdf", "byteSize": 10 * 1024 * 1024 + 1}
    too_big = stack.api.post(f"/v1/tracks/{draft}/documents/uploads", json=body, headers=as_user(artist))
    assert code(too_big) == (413, "file_too_large")
    assert document_intent(stack, artist, draft, "a.TXT", "text/plain; charset=utf-8", data=b"x").status_code == 201
    assert code(document_intent(stack, "mallory", draft, "a.pdf", "application/pdf", data=PDF)) == (
        404,
        "track_not_found",
    )
    body = {"intent": "track_document", "fileName": "a.pdf", "contentType": "application/pdf", "byteSize": 10}
    refused = stack.api.post("/v1/uploads", json=body, headers=as_user(artist))
    assert code(refused) == (400, "use_track_documents_upload_route")


def test_deleting_the_track_deletes_its_documents_and_uploaded_image(stack, artist, draft, tmp_path):
    from .test_artwork_uploads import artwork_intent, image_file

    document = upload_document(stack, artist, draft, "notes.txt", "text/plain", data=b"notes\n")
    image = image_file(tmp_path / "art.png", size=(200, 200))
    intent = artwork_intent(stack, artist, draft, image)
    assert intent.status_code == 201, intent.text
    stack.put(intent.json()["signedUrl"], image, content_type="image/png")
    stack.drain_s3_events()
    upload_ids = [created["uploadId"].removeprefix("upl_") for created in (document, intent.json())]
    staged = [f"{keys.UPLOADS_PREFIX}{upload_id}/" for upload_id in upload_ids]
    track_prefix = keys.track_prefix(draft.removeprefix("trk_"))
    kept = [f"{track_prefix}{keys.KEPT_FOLDER}{upload_id}/" for upload_id in upload_ids]

    def stored(prefix: str) -> int:
        return int(stack.s3.list_objects_v2(Bucket=stack.resources.bucket, Prefix=prefix).get("KeyCount", 0))

    # Finalize moved each file out of reach of its signed URL, under the track.
    assert [stored(prefix) for prefix in staged] == [0, 0]
    assert [stored(prefix) for prefix in kept] == [1, 1]
    assert stack.api.delete(f"/v1/tracks/{draft}", headers=as_user(artist)).status_code == 204
    assert [stored(prefix) for prefix in kept] == [0, 0]

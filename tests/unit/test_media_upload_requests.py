"""Image and document intents: what they accept, where their objects go, and how their put event
is routed through the one workflow definition (no network)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from functions.data import keys
from functions.data.models import UploadModel
from functions.domain.intake import executions, media_types, media_uploads
from functions.domain.processing import steps
from functions.errors import EmptyFile, FileTooLarge, UnsupportedMediaType
from functions.media import artwork
from functions.workflow import definition

Spec = media_uploads.FileSpec


@pytest.mark.parametrize(
    ("file_name", "content_type"),
    [
        ("cover.jpg", "image/jpeg"),
        ("COVER.JPEG", "Image/JPEG"),
        ("cover.png", "image/png"),
        ("cover.webp", "image/webp"),
        ("cover.gif", "image/gif"),
    ],
)
def test_images_are_accepted_by_extension_and_type_together(file_name, content_type):
    for intent in (media_uploads.TRACK_ARTWORK, media_uploads.ALBUM_COVER):
        assert media_uploads.validate(intent, Spec(file_name, content_type, 1000)) == file_name.rsplit(".")[-1].lower()


@pytest.mark.parametrize(
    ("file_name", "content_type", "field"),
    [
        ("cover.heic", "image/heic", "fileName"),
        ("cover.png", "image/jpeg", "contentType"),
        ("cover.pdf", "application/pdf", "fileName"),
        ("cover", "image/png", "fileName"),
    ],
)
def test_anything_else_is_an_unsupported_image(file_name, content_type, field):
    with pytest.raises(UnsupportedMediaType) as refused:
        media_uploads.validate(media_uploads.TRACK_ARTWORK, Spec(file_name, content_type, 1000))
    assert refused.value.details["field"] == field


def test_image_and_document_sizes_are_bounded():
    image_limit, document_limit = 20 * 1024 * 1024, 10 * 1024 * 1024
    media_uploads.validate(media_uploads.TRACK_ARTWORK, Spec("a.png", "image/png", image_limit))
    with pytest.raises(FileTooLarge) as too_large:
        media_uploads.validate(media_uploads.ALBUM_COVER, Spec("a.png", "image/png", image_limit + 1))
    assert too_large.value.details == {"limit": image_limit}
    media_uploads.validate(media_uploads.TRACK_DOCUMENT, Spec("a.pdf", "application/pdf", document_limit))
    with pytest.raises(FileTooLarge):
        media_uploads.validate(media_uploads.TRACK_DOCUMENT, Spec("a.pdf", "application/pdf", document_limit + 1))
    with pytest.raises(EmptyFile):
        media_uploads.validate(media_uploads.TRACK_DOCUMENT, Spec("a.txt", "text/plain", 0))


@pytest.mark.parametrize(
    ("intent", "file_name", "content_type", "phrase"),
    [
        (media_uploads.TRACK_ARTWORK, "a.png", "image/png", "An image is limited to"),
        (media_uploads.ALBUM_COVER, "a.jpg", "image/jpeg", "An image is limited to"),
        (media_uploads.TRACK_DOCUMENT, "a.pdf", "application/pdf", "A document is limited to"),
    ],
)
def test_a_too_large_file_is_named_with_the_right_article(intent, file_name, content_type, phrase):
    with pytest.raises(FileTooLarge) as too_large:
        media_uploads.validate(intent, Spec(file_name, content_type, 1 << 40))
    assert too_large.value.message.startswith(phrase), too_large.value.message


def test_documents_are_pdf_or_text():
    assert media_uploads.validate(media_uploads.TRACK_DOCUMENT, Spec("notes.txt", "text/plain; charset=utf-8", 5))
    assert media_uploads.validate(media_uploads.TRACK_DOCUMENT, Spec("notes.PDF", "application/pdf", 5))
    for file_name, content_type in (("notes.txt", "application/pdf"), ("notes.docx", "application/msword")):
        with pytest.raises(UnsupportedMediaType):
            media_uploads.validate(media_uploads.TRACK_DOCUMENT, Spec(file_name, content_type, 5))


def test_the_intent_accepts_exactly_what_the_artwork_lane_decodes():
    assert media_types.MAX_IMAGE_BYTES == artwork.MAX_IMAGE_BYTES
    accepted = {content_type for types in media_types.IMAGE_TYPES.values() for content_type in types}
    assert set(artwork.ACCEPTED_FORMATS.values()) <= accepted


def test_media_objects_go_under_uploads_so_their_put_event_finalizes_them():
    for kind in media_uploads.KINDS.values():
        key = keys.media_upload("u-1", kind.object_name, "png")
        assert keys.upload_id_from_key(key) == "u-1"
    # An uploaded image's variants have a folder of their own, still under the artwork prefix.
    variant = keys.artwork_variant("t-1", 300, "webp", version="u-1")
    assert variant == "tracks/t-1/artwork/u-1/300.webp"
    assert variant.startswith(keys.artwork_prefix("t-1"))
    assert keys.album_cover_variant("a-1", "u-1", 96, "jpg").startswith(keys.album_cover_prefix("a-1"))
    assert keys.album_cover_prefix("a-1").startswith(keys.album_prefix("a-1"))


def _upload(intent: str, **extra) -> UploadModel:
    return UploadModel(
        "u-1",
        owner_id="alice",
        track_id="t-1",
        asset_id="a-1",
        intent=intent,
        object_key="uploads/u-1/x",
        file_name="x",
        content_type="image/png",
        byte_size=1,
        expires_at=datetime.now(UTC),
        **extra,
    )


def test_every_upload_names_its_run_in_the_workflow_input():
    # The Choice reads "run": an input without it would make Step Functions evaluate a missing path.
    assert executions.workflow_input(_upload("track_original"))["run"] == "track"
    assert executions.workflow_input(_upload(media_uploads.TRACK_ARTWORK))["run"] == "artwork"
    cover = executions.workflow_input(_upload(media_uploads.ALBUM_COVER, album_id="alb-1"))
    assert (cover["run"], cover["albumId"]) == ("album_cover", "alb-1")


def test_the_workflow_routes_a_run_to_the_artwork_lane_alone_and_an_original_to_probe():
    asl = definition.render_aws()
    route = asl["States"][asl["StartAt"]]
    # One comparison per run and no presence test: every input carries "run".
    assert route["Type"] == "Choice" and route["Default"] == "UnknownRun"
    runs = {rule["StringEquals"]: rule["Next"] for rule in route["Choices"]}
    assert all(rule["Variable"] == "$.run" and "IsPresent" not in rule for rule in route["Choices"])
    assert runs == {"track": "Probe", "artwork": "ArtworkOnly", "album_cover": "AlbumCover"}
    assert set(runs) == set(definition.RUNS)
    only = asl["States"]["ArtworkOnly"]
    assert only["Parameters"]["step"] == "artwork_upload"
    assert only["Catch"][0]["Next"] == "ArtworkOnlyStopped"
    # No MarkReady/MarkFailed after it: an image upload never moves the track's status.
    assert asl["States"]["ArtworkOnlyStopped"]["End"] is True
    assert "End" in only or only["Next"] == "ArtworkOnlyStopped"
    for step in ("artwork_upload", "artwork_stopped", "album_cover"):
        assert step in steps.STEPS
    # The lanes a track reports stay the same, each once.
    assert len(definition.LANES) == len(set(definition.LANES))
    assert "artwork" in definition.LANES


def test_a_newer_upload_beats_an_older_one_and_any_upload_beats_an_embedded_cover():
    older = {"uploadId": "a", "uploadedAt": "2026-01-01T00:00:00+00:00", "origin": "upload"}
    newer = {"uploadId": "b", "uploadedAt": "2026-01-02T00:00:00+00:00", "origin": "upload"}
    assert media_uploads._is_newer(newer, older)
    assert not media_uploads._is_newer(older, newer)
    assert not media_uploads._is_newer({"origin": "embedded", "key": "k"}, older)

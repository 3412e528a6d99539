"""Image and document uploads (seed 004's redirected intents, seed 000's image, seed 002's cover):
``POST /v1/tracks/{trackId}/artwork/uploads``, ``POST /v1/albums/{albumId}/cover/uploads``,
``POST /v1/tracks/{trackId}/documents/uploads``, the documents' reads and delete, and the public
album cover. The intents answer like ``POST /v1/uploads`` (a presigned PUT with the headers it was
signed with); there is no finalize call: the object's S3 put event finalizes it."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query, Response
from fastapi.responses import RedirectResponse
from pydantic import Field

from functions import ids
from functions.api.auth import Principal, current_user
from functions.api.models import CamelModel, CamelResponse, iso
from functions.data import storage
from functions.domain import albums, media_uploads
from functions.errors import ArtworkNotFound, DocumentNotFound, TrackNotFound
from functions.settings import settings

router = APIRouter(tags=["media uploads"])


class MediaUploadRequest(CamelModel):
    file_name: str = Field(min_length=1, max_length=255, pattern=r"^[^/\\\x00-\x1f]+$")
    content_type: str = Field(min_length=3, max_length=255)
    byte_size: int = Field(ge=0, description="Exact size in bytes; the signed PUT enforces it.")

    def spec(self) -> media_uploads.FileSpec:
        return media_uploads.FileSpec(self.file_name, self.content_type, self.byte_size)


class MediaUploadResponse(CamelResponse):
    upload_id: str
    asset_id: str
    signed_url: str
    method: Literal["PUT"] = "PUT"
    expires_at: str
    required_headers: dict[str, str]


class TrackMediaUploadResponse(MediaUploadResponse):
    track_id: str


class DocumentUploadResponse(TrackMediaUploadResponse):
    # The id the document will have once its put event recorded it (the asset id).
    document_id: str


class AlbumCoverUploadResponse(MediaUploadResponse):
    album_id: str


class DocumentResponse(CamelResponse):
    document_id: str
    file_name: str
    content_type: str
    byte_size: int
    created_at: str


class DocumentsResponse(CamelResponse):
    track_id: str
    documents: list[DocumentResponse]
    # Documents are bounded per track, so the list is whole: no cursor.
    limit: int = media_uploads.MAX_DOCUMENTS


_INTENT_RESPONSES: dict[int | str, dict[str, str]] = {
    400: {"description": "unsupported_media_type, empty_file"},
    403: {"description": "entitlement_required"},
    413: {"description": "file_too_large"},
}


def _track_id(value: str) -> str:
    raw = ids.parse("trk", value)
    if raw is None:
        raise TrackNotFound("No such track.")
    return raw


def _document_id(value: str) -> str:
    raw = ids.parse("ast", value)
    if raw is None:
        raise DocumentNotFound("No such document on this track.")
    return raw


def _intent_fields(created: media_uploads.CreatedMediaUpload) -> dict[str, Any]:
    return {
        "upload_id": ids.render("upl", created.upload_id),
        "asset_id": ids.render("ast", created.asset_id),
        "signed_url": created.signed_url,
        "expires_at": iso(created.expires_at) or "",
        "required_headers": created.required_headers,
    }


@router.post(
    "/v1/tracks/{track_id}/artwork/uploads",
    status_code=201,
    response_model=TrackMediaUploadResponse,
    response_model_by_alias=True,
    responses={**_INTENT_RESPONSES, 404: {"description": "track_not_found"}},
)
def create_artwork_upload(
    track_id: str, body: MediaUploadRequest, user: Annotated[Principal, Depends(current_user)]
) -> TrackMediaUploadResponse:
    """An image for the track (JPG, PNG, WebP or GIF, at most 20 MB): PUT it to ``signedUrl`` with
    every header in ``requiredHeaders``. Its put event makes it the track's image (it replaces the
    current one, an embedded cover included) and runs the artwork lane alone; processing-status
    shows that lane, and the track's status does not change."""
    created = media_uploads.create_track_artwork(user.user_id, _track_id(track_id), body.spec())
    return TrackMediaUploadResponse(track_id=ids.render("trk", created.target_id), **_intent_fields(created))


@router.post(
    "/v1/albums/{album_id}/cover/uploads",
    status_code=201,
    response_model=AlbumCoverUploadResponse,
    response_model_by_alias=True,
    responses={**_INTENT_RESPONSES, 404: {"description": "album_not_found"}},
)
def create_album_cover_upload(
    album_id: str, body: MediaUploadRequest, user: Annotated[Principal, Depends(current_user)]
) -> AlbumCoverUploadResponse:
    """A cover for the album, same image rules. Its put event renders it into the album's square
    variants (served by ``GET /v1/artists/{handle}/albums/{slug}/cover``) and changes the album's
    ``revision`` and ETag."""
    created = media_uploads.create_album_cover(user.user_id, albums.parse_id(album_id), body.spec())
    return AlbumCoverUploadResponse(album_id=ids.render("alb", created.target_id), **_intent_fields(created))


@router.post(
    "/v1/tracks/{track_id}/documents/uploads",
    status_code=201,
    response_model=DocumentUploadResponse,
    response_model_by_alias=True,
    responses={
        **_INTENT_RESPONSES,
        404: {"description": "track_not_found"},
        409: {"description": "document_limit_reached"},
    },
)
def create_document_upload(
    track_id: str, body: MediaUploadRequest, user: Annotated[Principal, Depends(current_user)]
) -> DocumentUploadResponse:
    """A document for the track (PDF or TXT, at most 10 MB; a track holds at most 20). Its put event
    records it on the track as ``documentId``."""
    created = media_uploads.create_document(user.user_id, _track_id(track_id), body.spec())
    return DocumentUploadResponse(
        track_id=ids.render("trk", created.target_id),
        document_id=ids.render("ast", created.asset_id),
        **_intent_fields(created),
    )


def _document(document: media_uploads.Document) -> DocumentResponse:
    return DocumentResponse(
        document_id=ids.render("ast", document.document_id),
        file_name=document.file_name,
        content_type=document.content_type,
        byte_size=document.byte_size,
        created_at=document.created_at,
    )


@router.get(
    "/v1/tracks/{track_id}/documents",
    response_model=DocumentsResponse,
    response_model_by_alias=True,
    responses={404: {"description": "track_not_found"}},
)
def list_documents(track_id: str, user: Annotated[Principal, Depends(current_user)]) -> DocumentsResponse:
    """The track's documents, oldest first (at most 20, so one page)."""
    raw = _track_id(track_id)
    found = media_uploads.list_documents(user.user_id, raw)
    return DocumentsResponse(track_id=ids.render("trk", raw), documents=[_document(d) for d in found])


def _redirect(key: str, content_type: str | None, *, cache_control: str) -> RedirectResponse:
    url = storage.presign_get(key, expires_in=settings().stream_url_ttl_s, content_type=content_type)
    return RedirectResponse(url, status_code=302, headers={"Cache-Control": cache_control})


@router.get(
    "/v1/tracks/{track_id}/documents/{document_id}",
    status_code=302,
    response_class=RedirectResponse,
    responses={
        302: {"description": "Redirect to a short-lived presigned GET of the document"},
        404: {"description": "track_not_found, document_not_found"},
    },
)
def get_document(
    track_id: str, document_id: str, user: Annotated[Principal, Depends(current_user)]
) -> RedirectResponse:
    document = media_uploads.get_document(user.user_id, _track_id(track_id), _document_id(document_id))
    return _redirect(document.key, document.content_type, cache_control="private, no-store")


@router.delete(
    "/v1/tracks/{track_id}/documents/{document_id}",
    status_code=204,
    response_class=Response,
    responses={404: {"description": "track_not_found, document_not_found"}},
)
def delete_document(track_id: str, document_id: str, user: Annotated[Principal, Depends(current_user)]) -> Response:
    """Removes the document and its stored file; a second DELETE answers ``document_not_found``."""
    media_uploads.delete_document(user.user_id, _track_id(track_id), _document_id(document_id))
    return Response(status_code=204)


CoverFormat = Literal["webp", "jpeg"]


@router.get(
    "/v1/artists/{handle}/albums/{slug}/cover",
    status_code=302,
    response_class=RedirectResponse,
    responses={
        301: {"description": "The album was renamed: the cover under its current slug"},
        302: {"description": "Redirect to a short-lived presigned GET of the variant"},
        404: {"description": "artist_not_found, album_not_found, artwork_not_found"},
    },
)
def album_cover(
    handle: str,
    slug: str,
    size: Annotated[
        int, Query(ge=1, le=4096, description="wanted side in px: the smallest variant at least this big")
    ] = 600,
    format: Annotated[CoverFormat, Query(description="webp (default) or jpeg")] = "webp",
) -> RedirectResponse:
    """Public, like the album page: 302 to the square cover variant that best fits ``size`` (the
    smallest at least that big, else the largest); ``artwork_not_found`` before a cover is ready."""
    artist, album = albums.find_by_slug(handle, slug)
    if album.slug != slug.lower():
        return RedirectResponse(
            f"/v1/artists/{artist.handle}/albums/{album.slug}/cover?size={size}&format={format}",
            status_code=301,
            headers={"Cache-Control": "no-store"},
        )
    variants = [v for v in (album.artwork or {}).get("variants", []) if v["format"] == format]
    if not variants:
        raise ArtworkNotFound("This album has no cover (yet).")
    fitting = [v for v in variants if v["size"] >= size]
    chosen = min(fitting, key=lambda v: v["size"]) if fitting else max(variants, key=lambda v: v["size"])
    # The URL expires in minutes: the redirect itself must not be cached.
    return _redirect(chosen["key"], chosen["contentType"], cache_control="no-store")

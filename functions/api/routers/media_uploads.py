"""A track's sub-uploads (the upload-intent contract's redirected intents, the upload_track
contract's image, the album contract's cover): ``POST /v1/tracks/{trackId}/versions/uploads``,
``POST /v1/tracks/{trackId}/artwork/uploads``, ``POST /v1/albums/{albumId}/cover/uploads``,
``POST /v1/tracks/{trackId}/documents/uploads``, the documents' reads and delete, and the public
album cover. The intents answer like ``POST /v1/uploads`` (a presigned PUT with the headers it was
signed with). A version is a new original, finalized like one (its put event or its
``finalizeUrl``); images and documents have no finalize call: the object's S3 put event finalizes
them."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query, Request, Response
from fastapi.responses import RedirectResponse
from pydantic import Field

from functions import ids
from functions.api.auth import Principal, current_user
from functions.api.models import CamelModel, CamelResponse, iso

# One definition of where an upload is finalized (a version is finalized as the upload-intent
# contract's uploads are).
from functions.api.routers.uploads import upload_action_url
from functions.domain.catalog import albums, downloads
from functions.domain.intake import media_uploads, versions
from functions.errors import ArtworkNotFound, DocumentNotFound, TrackNotFound

if TYPE_CHECKING:
    # Records the domain returns, read here as views (never loaded or written by the API).
    from functions.data.models import TrackModel


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


class VersionUploadResponse(TrackMediaUploadResponse):
    finalize_url: str


class VersionFailure(CamelResponse):
    code: str
    message: str


class PendingVersionResponse(CamelResponse):
    """The track's next original: ``awaiting_upload`` (intent created), ``processing`` (the track
    still plays the live version meanwhile) or ``failed`` (it never went live; ``failure`` says why)."""

    upload_id: str
    status: str
    file_name: str | None
    created_at: str
    finalized_at: str | None
    failure: VersionFailure | None


class VersionResponse(CamelResponse):
    """One of the track's originals: ``live``, ``replaced`` (``replacedAt``) or ``failed``."""

    upload_id: str
    status: str
    created_at: str | None
    duration_ms: int | None
    replaced_at: str | None
    failure: VersionFailure | None


def _version_failure(failure: versions.Failure | None) -> VersionFailure | None:
    return VersionFailure(code=failure.code, message=failure.message) if failure else None


def pending_version(track: TrackModel) -> PendingVersionResponse | None:
    """The track's pending version as the track and processing-status responses show it."""
    pending = versions.pending_view(track)
    if pending is None:
        return None
    return PendingVersionResponse(
        upload_id=ids.render("upl", pending.upload_id),
        status=pending.status,
        file_name=pending.file_name,
        created_at=pending.created_at,
        finalized_at=pending.finalized_at,
        failure=_version_failure(pending.failure),
    )


def version_history(track: TrackModel) -> list[VersionResponse]:
    return [
        VersionResponse(
            upload_id=ids.render("upl", record.upload_id),
            status=record.status,
            created_at=record.created_at,
            duration_ms=record.duration_ms,
            replaced_at=record.replaced_at,
            failure=_version_failure(record.failure),
        )
        for record in versions.history(track)
    ]


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
    "/v1/tracks/{track_id}/versions/uploads",
    status_code=201,
    response_model=VersionUploadResponse,
    response_model_by_alias=True,
    responses={
        400: {"description": "unsupported_media_type, empty_file"},
        403: {"description": "entitlement_required"},
        404: {"description": "track_not_found"},
        409: {"description": "version_in_progress, track_has_no_audio"},
        413: {"description": "file_too_large"},
    },
)
def create_version_upload(
    track_id: str, body: MediaUploadRequest, request: Request, user: Annotated[Principal, Depends(current_user)]
) -> VersionUploadResponse:
    """A new original for the track (the audio rules of ``POST /v1/uploads``): PUT it to
    ``signedUrl`` with every header in ``requiredHeaders``, then finalize it at ``finalizeUrl`` (or
    let the put event do it). It is processed while the track keeps playing its current version,
    and replaces it (renditions, waveform, duration, stream URLs) at once when every lane has ended;
    the replaced files are deleted. A version that fails leaves the track as it was and shows as
    ``pendingVersion`` with its ``failure``. One version is processed at a time
    (``version_in_progress``); a newer intent replaces one whose file has not been finalized."""
    spec = versions.FileSpec(body.file_name, body.content_type, body.byte_size)
    created = versions.create(user.user_id, _track_id(track_id), spec)
    return VersionUploadResponse(
        track_id=ids.render("trk", created.track_id),
        upload_id=ids.render("upl", created.upload_id),
        asset_id=ids.render("ast", created.asset_id),
        signed_url=created.signed_url,
        expires_at=iso(created.expires_at) or "",
        required_headers=created.required_headers,
        finalize_url=upload_action_url(request, created.upload_id),
    )


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
    url = downloads.signed_url(key, content_type)
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

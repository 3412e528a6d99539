"""The upload-intent contract: ``POST /v1/uploads`` (intent) and
``POST /v1/uploads/{uploadId}/finalize``; resumable (multipart) uploads: ``GET .../parts``,
``GET .../parts/urls``, ``POST .../complete``, ``POST .../abort``, or S3 itself through the plan's
presigned ``s3`` requests; ``DELETE /v1/uploads/{uploadId}`` cancels an intent;
``GET /v1/uploads/config`` tells a client the limits before it asks."""

from __future__ import annotations

import json
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query, Request, Response
from pydantic import Field, field_validator

from functions import ids
from functions.api.auth import Principal, current_user
from functions.api.models import CamelModel, CamelResponse, iso
from functions.api.public import absolute_url
from functions.domain.intake import finalize as finalize_service
from functions.domain.intake import uploads
from functions.errors import AssetMismatch, EmptyFile, UploadIntentNotFound

router = APIRouter(prefix="/v1/uploads", tags=["uploads"])


class SupportGate(CamelModel):
    type: Literal["any"]


# public: listed and playable by anyone; unlisted: playable by anyone with the id, never listed;
# private: the owner only. Shared by the intent and PATCH /v1/tracks/{trackId}.
Visibility = Literal["public", "unlisted", "private"]


def json_list(value: Any) -> Any:
    """The upload_track contract's form sent tags and features as a JSON-array string; a real array
    is accepted too."""
    if isinstance(value, str):
        try:
            return json.loads(value)
        except json.JSONDecodeError as error:
            raise ValueError("must be a JSON array of strings") from error
    return value


# Bounds on what a request may carry; the domain normalizes and applies the real limits (10 tags
# of 40 characters, 10 featured artists). Shared by the intent and PATCH /v1/tracks/{trackId}.
FeatureHandles = Annotated[list[Annotated[str, Field(min_length=1, max_length=64)]], Field(max_length=20)]
TagNames = Annotated[list[Annotated[str, Field(max_length=100)]], Field(max_length=50)]


class CreateUploadRequest(CamelModel):
    intent: str = Field(default="track_original", max_length=64)
    file_name: str = Field(min_length=1, max_length=255, pattern=r"^[^/\\\x00-\x1f]+$")
    content_type: str = Field(min_length=3, max_length=255)
    byte_size: int = Field(ge=0, description="Exact size in bytes; the signed PUT enforces it.")
    # The upload_track contract's metadata
    title: str | None = Field(default=None, max_length=256)
    album: str | None = Field(default=None, min_length=1, max_length=256)
    features: FeatureHandles = Field(default_factory=list)
    tags: TagNames = Field(default_factory=list)
    support_gate: SupportGate | None = None
    description: str | None = Field(default=None, max_length=5000)
    auto_tag: bool = False
    visibility: Visibility = "public"
    # true: upload in parts (resumable); false: one signed PUT; absent: parts above
    # TRACKLANE_MULTIPART_THRESHOLD_BYTES when a deployment sets it (unset by default: one signed PUT).
    multipart: bool | None = None
    # A multipart plan's part size, within ``GET /v1/uploads/config``'s bounds (default: its
    # ``defaultPartSize``); each part URL is signed for it.
    part_size: int | None = Field(default=None, ge=1)

    _lists = field_validator("features", "tags", mode="before")(json_list)


class PartUrlResponse(CamelResponse):
    part_number: int
    # The part's exact size: its URL is signed over Content-Length, so send exactly this many bytes
    # (bytes [(partNumber - 1) * partSize, + size) of the file).
    size: int
    url: str


class S3RequestsResponse(CamelResponse):
    """For clients that speak S3 (Uppy's S3 plugin, the AWS SDKs): S3's own names for this upload
    and presigned requests on it. ``completeUrl`` is S3's CompleteMultipartUpload (POST, S3's XML
    part list as the body), ``listPartsUrl`` ListParts (GET), ``abortUrl`` AbortMultipartUpload
    (DELETE); all valid until ``expiresAt`` (``parts/urls`` signs fresh ones). Completing at S3
    finalizes the upload through its put event, exactly once, with the same checks."""

    key: str
    upload_id: str
    list_parts_url: str
    complete_url: str
    abort_url: str
    expires_at: str


class MultipartPlanResponse(CamelResponse):
    part_size: int
    part_count: int
    # URLs for the first parts (at most 100); GET .../parts/urls signs the rest or fresh ones.
    parts: list[PartUrlResponse]
    parts_expire_at: str
    parts_url: str
    complete_url: str
    abort_url: str
    s3: S3RequestsResponse


class CreateUploadResponse(CamelResponse):
    upload_id: str
    track_id: str
    asset_id: str
    # A single PUT: ``signedUrl`` (method PUT). A multipart upload: ``multipart`` (method MULTIPART)
    # and no ``signedUrl``; ``expiresAt`` is then the deadline to complete it.
    signed_url: str | None = None
    method: Literal["PUT", "MULTIPART"] = "PUT"
    expires_at: str
    # What to set on the PUT: its Content-Type. The URL is signed over Content-Length and Host too,
    # which every HTTP client (browsers included) sends by itself from the body and the URL.
    required_headers: dict[str, str]
    finalize_url: str
    multipart: MultipartPlanResponse | None = None


class WaveformBody(CamelModel):
    peaks: list[Annotated[float, Field(ge=0.0, le=1.0, allow_inf_nan=False)]] = Field(min_length=16, max_length=2048)
    sample_rate_hz: int = Field(ge=1, le=768_000)
    channels: int | None = Field(default=None, ge=1, le=32)


class FinalizeRequest(CamelModel):
    asset_id: str | None = Field(default=None, max_length=64)
    duration_ms: int | None = Field(default=None, ge=0, le=24 * 3600 * 1000)
    waveform: WaveformBody | None = None


class FinalizeResponse(CamelResponse):
    # duplicate: the caller already has a track with exactly these bytes; ``trackId`` is that
    # track, nothing is processed again and the second copy is not kept.
    status: Literal["finalized", "already_finalized", "duplicate"]
    asset_id: str
    asset_kind: Literal["original_audio"] = "original_audio"
    jobs_queued: list[str]
    track_id: str
    upload_id: str
    workflow_status: str | None = None


def upload_action_url(request: Request, upload_id: str, action: str = "finalize") -> str:
    """Where a client acts on its upload: ``finalize``, ``parts``, ``complete``, ``abort``, ``progress``."""
    return absolute_url(request, f"/v1/uploads/{ids.render('upl', upload_id)}/{action}")


def _part_urls(urls: uploads.PartUrls) -> list[PartUrlResponse]:
    return [PartUrlResponse(part_number=u.part_number, size=u.size, url=u.url) for u in urls.urls]


def _s3_requests(s3: uploads.S3Requests) -> S3RequestsResponse:
    return S3RequestsResponse(
        key=s3.key,
        upload_id=s3.multipart_id,
        list_parts_url=s3.requests.list_parts_url,
        complete_url=s3.requests.complete_url,
        abort_url=s3.requests.abort_url,
        expires_at=iso(s3.expires_at) or "",
    )


class AcceptedTypeResponse(CamelResponse):
    extension: str
    content_types: list[str]


class MultipartLimitsResponse(CamelResponse):
    # Above this size an intent that does not say gets a multipart plan; null: only when asked.
    threshold_bytes: int | None
    default_part_size: int
    min_part_size: int
    max_part_size: int
    max_parts: int
    # One answer signs at most this many part URLs; ``parts/urls`` signs the rest.
    max_part_urls: int


class UploadConfigResponse(CamelResponse):
    max_audio_bytes: int
    accepted_types: list[AcceptedTypeResponse]
    multipart: MultipartLimitsResponse


@router.get("/config", response_model=UploadConfigResponse, response_model_by_alias=True)
def upload_config() -> UploadConfigResponse:
    """What an upload client needs to know before its first intent (public): the largest audio file,
    the accepted extensions and content types, and the multipart part-size bounds, so a client
    (Uppy's ``getChunkSize``, the CLI) can choose its part size and send it as ``partSize``."""
    limits = uploads.upload_limits()
    bounds = limits.part_sizes
    return UploadConfigResponse(
        max_audio_bytes=limits.max_audio_bytes,
        accepted_types=[
            AcceptedTypeResponse(extension=extension, content_types=list(content_types))
            for extension, content_types in limits.accepted_types.items()
        ],
        multipart=MultipartLimitsResponse(
            threshold_bytes=limits.multipart_threshold_bytes,
            default_part_size=bounds.default,
            min_part_size=bounds.minimum,
            max_part_size=bounds.maximum,
            max_parts=bounds.max_parts,
            max_part_urls=uploads.MAX_PART_URLS,
        ),
    )


# None fields are left out: a single-PUT intent answers exactly the upload-intent contract's fields.
@router.post(
    "",
    status_code=201,
    response_model=CreateUploadResponse,
    response_model_by_alias=True,
    response_model_exclude_none=True,
)
def create_upload(
    body: CreateUploadRequest, request: Request, user: Annotated[Principal, Depends(current_user)]
) -> CreateUploadResponse:
    """Create an upload intent for a new track's original audio; PUT the bytes to ``signedUrl``
    with every header in ``requiredHeaders``, then finalize (or let the S3 event do it)."""
    if body.byte_size == 0:
        raise EmptyFile("The file is empty (byteSize 0); choose an audio file.", field="byteSize")
    created = uploads.create(
        user.user_id,
        uploads.NewUpload(
            intent=body.intent,
            file_name=body.file_name,
            content_type=body.content_type,
            byte_size=body.byte_size,
            metadata=uploads.TrackMetadata(
                title=body.title,
                album=body.album,
                features=body.features,
                tags=body.tags,
                support_gate=body.support_gate.model_dump() if body.support_gate else None,
                description=body.description,
                auto_tag=body.auto_tag,
                visibility=body.visibility,
            ),
            multipart=body.multipart,
            part_size=body.part_size,
        ),
    )
    plan = created.multipart
    return CreateUploadResponse(
        upload_id=ids.render("upl", created.upload_id),
        track_id=ids.render("trk", created.track_id),
        asset_id=ids.render("ast", created.asset_id),
        signed_url=created.signed_url,
        method="MULTIPART" if plan else "PUT",
        expires_at=iso(created.expires_at) or "",
        required_headers=created.required_headers,
        finalize_url=upload_action_url(request, created.upload_id),
        multipart=MultipartPlanResponse(
            part_size=plan.part_size,
            part_count=plan.part_count,
            parts=_part_urls(plan.urls),
            parts_expire_at=iso(plan.urls.expires_at) or "",
            parts_url=upload_action_url(request, created.upload_id, "parts"),
            complete_url=upload_action_url(request, created.upload_id, "complete"),
            abort_url=upload_action_url(request, created.upload_id, "abort"),
            s3=_s3_requests(plan.s3),
        )
        if plan
        else None,
    )


@router.post(
    "/{upload_id}/finalize",
    response_model=FinalizeResponse,
    response_model_by_alias=True,
    responses={
        404: {"description": "upload_intent_not_found"},
        409: {"description": "asset_mismatch / upload_asset_missing"},
        422: {"description": "upload_asset_invalid"},
    },
)
def finalize_upload(
    upload_id: str, user: Annotated[Principal, Depends(current_user)], body: FinalizeRequest | None = None
) -> FinalizeResponse:
    """Finalize after the signed PUT: the first finalize starts processing, later ones answer
    ``already_finalized``. The S3 put event finalizes too; both converge on one processing run.
    The same bytes uploaded again by the same owner answer ``duplicate`` (every time) with the
    existing track's id."""
    body = body or FinalizeRequest()
    raw_upload_id = _upload_id(upload_id)
    raw_asset_id = None
    if body.asset_id is not None:
        raw_asset_id = ids.parse("ast", body.asset_id)
        if raw_asset_id is None:
            raise AssetMismatch("assetId does not match this upload intent.", assetId=body.asset_id)
    outcome = finalize_service.finalize(
        raw_upload_id,
        trigger="api",
        owner_id=user.user_id,
        asset_id=raw_asset_id,
        duration_ms=body.duration_ms,
        waveform=_waveform(body.waveform),
    )
    return _finalize_response(outcome)


def _upload_id(upload_id: str) -> str:
    raw = ids.parse("upl", upload_id)
    if raw is None:
        raise UploadIntentNotFound("No such upload intent for this owner.")
    return raw


def _waveform(body: WaveformBody | None) -> finalize_service.Waveform | None:
    return finalize_service.Waveform(body.peaks, body.sample_rate_hz, body.channels) if body else None


def _finalize_response(outcome: finalize_service.Outcome) -> FinalizeResponse:
    return FinalizeResponse(
        status=outcome.status,
        asset_id=ids.render("ast", outcome.upload.asset_id),
        jobs_queued=list(outcome.jobs_queued),
        track_id=ids.render("trk", outcome.track_id),
        upload_id=ids.render("upl", outcome.upload.upload_id),
        workflow_status=outcome.workflow_status,
    )


class PartResponse(CamelResponse):
    part_number: int
    size: int
    etag: str


class PartsResponse(CamelResponse):
    upload_id: str
    # pending while parts may be uploaded; otherwise what became of the upload (and no parts).
    status: str
    byte_size: int
    part_size: int
    part_count: int
    parts: list[PartResponse]
    missing_parts: list[int]
    expires_at: str


class PartUrlsResponse(CamelResponse):
    upload_id: str
    parts: list[PartUrlResponse]
    expires_at: str
    s3: S3RequestsResponse


class CompletedPart(CamelModel):
    part_number: int = Field(ge=1, le=10_000)
    etag: str = Field(min_length=1, max_length=128)


class CompleteRequest(CamelModel):
    # Optional: without it the parts S3 lists are assembled (see functions.domain.intake.uploads).
    parts: list[CompletedPart] | None = Field(default=None, min_length=1, max_length=10_000)
    duration_ms: int | None = Field(default=None, ge=0, le=24 * 3600 * 1000)
    waveform: WaveformBody | None = None


class CancelledResponse(CamelResponse):
    upload_id: str
    status: Literal["cancelled"] = "cancelled"


_MULTIPART_ERRORS: dict[int | str, dict[str, Any]] = {
    404: {"description": "upload_intent_not_found"},
    409: {"description": "upload_not_multipart / upload_already_finalized"},
    410: {"description": "upload_intent_cancelled / upload_intent_expired"},
}


@router.get(
    "/{upload_id}/parts", response_model=PartsResponse, response_model_by_alias=True, responses=_MULTIPART_ERRORS
)
def list_parts(upload_id: str, user: Annotated[Principal, Depends(current_user)]) -> PartsResponse:
    """What storage holds of a multipart upload: after a dropped connection, upload
    ``missingParts`` only (with URLs from ``parts/urls``), then complete."""
    view = uploads.parts(user.user_id, _upload_id(upload_id))
    upload = view.upload
    return PartsResponse(
        upload_id=ids.render("upl", upload.upload_id),
        status=upload.status,
        byte_size=int(upload.byte_size),
        part_size=int(upload.part_size or 0),
        part_count=int(upload.part_count or 0),
        parts=[PartResponse(part_number=p.part_number, size=p.size, etag=p.etag) for p in view.parts],
        missing_parts=view.missing,
        expires_at=iso(upload.expires_at) or "",
    )


@router.get(
    "/{upload_id}/parts/urls",
    response_model=PartUrlsResponse,
    response_model_by_alias=True,
    responses=_MULTIPART_ERRORS,
)
def part_urls(
    upload_id: str,
    user: Annotated[Principal, Depends(current_user)],
    first: Annotated[int, Query(alias="from", ge=1, le=10_000)] = 1,
    count: Annotated[int, Query(ge=1, le=uploads.MAX_PART_URLS)] = uploads.MAX_PART_URLS,
) -> PartUrlsResponse:
    """Fresh part URLs (``from`` the given part number, at most ``count`` ≤ 100), each signed for
    its part's exact size and valid for at most 15 minutes, never past the upload's deadline; and
    fresh presigned S3 requests (``s3``) for the upload."""
    upload, urls, s3 = uploads.part_urls(user.user_id, _upload_id(upload_id), first=first, count=count)
    return PartUrlsResponse(
        upload_id=ids.render("upl", upload.upload_id),
        parts=_part_urls(urls),
        expires_at=iso(urls.expires_at) or "",
        s3=_s3_requests(s3),
    )


@router.post(
    "/{upload_id}/complete",
    response_model=FinalizeResponse,
    response_model_by_alias=True,
    responses={
        **_MULTIPART_ERRORS,
        409: {"description": "upload_parts_incomplete / upload_part_mismatch / upload_not_multipart"},
        422: {"description": "upload_asset_invalid"},
    },
)
def complete_upload(
    upload_id: str, user: Annotated[Principal, Depends(current_user)], body: CompleteRequest | None = None
) -> FinalizeResponse:
    """Assembles a multipart upload from its parts and finalizes it: the same answers as
    ``finalize`` (the S3 event of the completed object finalizes it too; they converge)."""
    body = body or CompleteRequest()
    raw_upload_id = _upload_id(upload_id)
    sent = [(p.part_number, p.etag.strip('"')) for p in body.parts] if body.parts is not None else None
    uploads.complete_multipart(user.user_id, raw_upload_id, sent)
    outcome = finalize_service.finalize(
        raw_upload_id,
        trigger="api",
        owner_id=user.user_id,
        duration_ms=body.duration_ms,
        waveform=_waveform(body.waveform),
    )
    return _finalize_response(outcome)


@router.post(
    "/{upload_id}/abort", response_model=CancelledResponse, response_model_by_alias=True, responses=_MULTIPART_ERRORS
)
def abort_upload(upload_id: str, user: Annotated[Principal, Depends(current_user)]) -> CancelledResponse:
    """Aborts an upload that is not finalized: the intent is cancelled, its parts freed and its draft
    track deleted (the same as ``DELETE /v1/uploads/{uploadId}``, answering a body)."""
    raw_upload_id = _upload_id(upload_id)
    uploads.cancel(user.user_id, raw_upload_id)
    return CancelledResponse(upload_id=ids.render("upl", raw_upload_id))


@router.delete(
    "/{upload_id}",
    status_code=204,
    responses={404: {"description": "upload_intent_not_found"}, 409: {"description": "upload_already_finalized"}},
)
def cancel_upload(upload_id: str, user: Annotated[Principal, Depends(current_user)]) -> Response:
    """Cancels an intent that is not finalized: its draft track, stored file and multipart parts are
    deleted; a repeat answers 204 too. A finalized upload answers 409: delete its track instead."""
    uploads.cancel(user.user_id, _upload_id(upload_id))
    return Response(status_code=204)

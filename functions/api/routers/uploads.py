"""Seed 004: ``POST /v1/uploads`` (intent) and ``POST /v1/uploads/{uploadId}/finalize``."""

from __future__ import annotations

import json
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Request
from pydantic import Field, field_validator

from functions import ids
from functions.api.auth import Principal, current_user
from functions.api.models import CamelModel, CamelResponse, iso
from functions.domain import finalize as finalize_service
from functions.domain import uploads
from functions.errors import AssetMismatch, EmptyFile, UploadIntentNotFound
from functions.settings import settings

router = APIRouter(prefix="/v1/uploads", tags=["uploads"])


class SupportGate(CamelModel):
    type: Literal["any"]


# public: listed and playable by anyone; unlisted: playable by anyone with the id, never listed;
# private: the owner only. Shared by the intent and PATCH /v1/tracks/{trackId}.
Visibility = Literal["public", "unlisted", "private"]


def json_list(value: Any) -> Any:
    """Seed 000 sends tags and features as a JSON-array string; a real array is accepted too."""
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
    # seed 000 metadata
    title: str | None = Field(default=None, max_length=256)
    album: str | None = Field(default=None, min_length=1, max_length=256)
    features: FeatureHandles = Field(default_factory=list)
    tags: TagNames = Field(default_factory=list)
    support_gate: SupportGate | None = None
    description: str | None = Field(default=None, max_length=5000)
    auto_tag: bool = False
    visibility: Visibility = "public"

    _lists = field_validator("features", "tags", mode="before")(json_list)


class CreateUploadResponse(CamelResponse):
    upload_id: str
    track_id: str
    asset_id: str
    signed_url: str
    method: Literal["PUT"] = "PUT"
    expires_at: str
    required_headers: dict[str, str]
    finalize_url: str


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


def _finalize_url(request: Request, upload_id: str) -> str:
    base = settings().public_api_url or str(request.base_url)
    return f"{base.rstrip('/')}/v1/uploads/{ids.render('upl', upload_id)}/finalize"


@router.post("", status_code=201, response_model=CreateUploadResponse, response_model_by_alias=True)
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
        ),
    )
    return CreateUploadResponse(
        upload_id=ids.render("upl", created.upload_id),
        track_id=ids.render("trk", created.track_id),
        asset_id=ids.render("ast", created.asset_id),
        signed_url=created.signed_url,
        expires_at=iso(created.expires_at) or "",
        required_headers=created.required_headers,
        finalize_url=_finalize_url(request, created.upload_id),
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
    raw_upload_id = ids.parse("upl", upload_id)
    if raw_upload_id is None:
        raise UploadIntentNotFound("No such upload intent for this owner.")
    raw_asset_id = None
    if body.asset_id is not None:
        raw_asset_id = ids.parse("ast", body.asset_id)
        if raw_asset_id is None:
            raise AssetMismatch("assetId does not match this upload intent.", assetId=body.asset_id)
    waveform = (
        finalize_service.Waveform(body.waveform.peaks, body.waveform.sample_rate_hz, body.waveform.channels)
        if body.waveform
        else None
    )
    outcome = finalize_service.finalize(
        raw_upload_id,
        trigger="api",
        owner_id=user.user_id,
        asset_id=raw_asset_id,
        duration_ms=body.duration_ms,
        waveform=waveform,
    )
    return FinalizeResponse(
        status=outcome.status,
        asset_id=ids.render("ast", outcome.upload.asset_id),
        jobs_queued=list(outcome.jobs_queued),
        track_id=ids.render("trk", outcome.track_id),
        upload_id=ids.render("upl", outcome.upload.upload_id),
        workflow_status=outcome.workflow_status,
    )

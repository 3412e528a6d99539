"""Runtime configuration, read from the environment once (prefix ``TRACKLANE_``).

This is the only module that looks at the environment; everything else asks ``settings()``.
"""

from __future__ import annotations

from functools import cache
from typing import Literal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="TRACKLANE_", extra="ignore")

    region: str = Field(default="us-east-1", validation_alias="AWS_REGION")
    # Set only for the local stack and tests (moto); unset in AWS.
    aws_endpoint_url: str | None = None

    media_bucket: str = "tracklane-media"
    artists_table: str = "tracklane-artists"
    tracks_table: str = "tracklane-tracks"
    uploads_table: str = "tracklane-uploads"
    entitlements_table: str = "tracklane-entitlements"
    albums_table: str = "tracklane-albums"
    # Idempotency-Key records of POST requests (functions.api.idempotency).
    idempotency_table: str = "tracklane-idempotency"
    state_machine_arn: str = ""
    # The custom EventBridge bus the domain events (track.created, album.updated, ...) go to.
    event_bus_name: str = "tracklane-events"

    # Public base URL of the API as clients see it (used for finalizeUrl). When empty the
    # request's own base URL is used.
    public_api_url: str = ""

    upload_url_ttl_s: int = Field(default=900, ge=60, le=7 * 24 * 3600)
    # A pending intent (and its DynamoDB item, via TTL) lives this long.
    # At most the days S3 keeps an unfinalized file (functions.data.storage.ABANDONED_UPLOAD_DAYS).
    intent_ttl_s: int = Field(default=24 * 3600, ge=300, le=7 * 24 * 3600)
    # A seed 003 upload session takes new tracks this long (its ``expires_at``).
    upload_session_ttl_s: int = Field(default=24 * 3600, ge=60, le=30 * 24 * 3600)
    max_audio_bytes: int = 500 * 1024 * 1024
    # Resumable uploads (functions.domain.uploads): an intent asking for it (``"multipart": true``)
    # gets a multipart plan instead of one signed PUT; so does one above this size when it is set
    # and the intent does not say. Unset by default: seed 004 clients, which know nothing of parts,
    # always get the signedUrl their contract promises. Parts are ``multipart_part_size_bytes``
    # (S3's minimum for all but the last part is 5 MiB), grown so a file never takes over 10,000.
    multipart_threshold_bytes: int | None = Field(default=None, ge=5 * 1024 * 1024)
    multipart_part_size_bytes: int = Field(default=16 * 1024 * 1024, ge=5 * 1024 * 1024, le=5 * 1024**3)
    max_request_body_bytes: int = 64 * 1024
    # Entitlement policy for callers with no explicit grant or revocation.
    default_upload_entitlement: Literal["allow", "deny"] = "allow"
    # How long an Idempotency-Key is remembered: a repeat within this window replays the first
    # answer, a later one is a new request.
    idempotency_ttl_s: int = Field(default=24 * 3600, ge=60, le=7 * 24 * 3600)

    # The autotag lane compares a new track with at most this many of the newest tagged public tracks.
    autotag_examples_max: int = Field(default=2000, ge=1, le=10_000)

    # External processors for the stems and lyrics lanes: an http(s) URL or a Lambda function ARN
    # (see functions.workflow.external); unset -> the lane is skipped with ``not_configured``.
    stems_processor: str | None = None
    lyrics_processor: str | None = None
    processor_timeout_s: int = Field(default=120, ge=1, le=900)
    stream_url_ttl_s: int = Field(default=300, ge=30, le=3600)

    # The sweeper looks at a track's execution once it has been processing this long (a RUNNING
    # execution is left alone, so this only bounds how late a repair can come).
    sweep_after_s: int = Field(default=15 * 60, ge=0)

    # /similar compares a track with at most this many of its owner's tracks (newest first).
    similar_candidates_max: int = Field(default=5000, ge=1)

    # Live progress (GET /v1/uploads/{uploadId}/progress, functions.api.routers.progress). True:
    # stream until the upload settles (the local stack under uvicorn). False (the deployed default):
    # answer what the client has not seen yet and close; EventSource reconnects after
    # ``progress_retry_ms`` with Last-Event-ID. API Gateway cannot stream a Lambda's answer through
    # Mangum, so a request that came through Mangum never streams, whatever this says.
    progress_stream: bool = False
    progress_poll_interval_s: float = Field(default=0.5, gt=0, le=10)
    progress_heartbeat_s: float = Field(default=15.0, gt=0)
    # One stream ends after this long or this many polls (the client then reconnects and resumes).
    progress_max_stream_s: float = Field(default=15 * 60, gt=0)
    progress_max_polls: int = Field(default=2000, ge=1)
    progress_retry_ms: int = Field(default=2000, ge=100, le=60_000)
    # Lifetime of a progress token (POST /v1/uploads/{uploadId}/progress-tokens).
    progress_token_ttl_s: int = Field(default=300, ge=30, le=3600)

    ffmpeg_path: str | None = None
    # Below the processing Lambda's 900 s, so a stuck ffmpeg ends as a lane failure, not a kill.
    ffmpeg_timeout_s: int = 840
    min_audio_ms: int = 1000
    # Transcoding runs ~19x real time on 2 vCPUs: 3 h of audio fits the 840 s budget with margin.
    max_audio_ms: int = 3 * 3600 * 1000


@cache
def settings() -> Settings:
    return Settings()

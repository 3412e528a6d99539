"""Runtime configuration, read from the environment once (prefix ``TRACKLANE_``).

This is the only module that looks at the environment; everything else asks ``settings()``. Each
field's ``description`` says what it is for: ``docs/configuration.md`` is generated from this
declaration (``python -m local.config_doc --write``).
"""

from __future__ import annotations

import os
from functools import cache
from typing import Literal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

# The API function's ``sdk_max_attempts`` (set by CDK): its answers must come within API Gateway's
# 30 s, so a throttle that outlasts a few quick retries is answered 503 instead of waited out.
API_SDK_MAX_ATTEMPTS = 3


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="TRACKLANE_", extra="ignore")

    region: str = Field(
        default="us-east-1",
        validation_alias="AWS_REGION",
        description="The AWS region every client uses (Lambda sets `AWS_REGION` itself).",
    )
    aws_endpoint_url: str | None = Field(
        default=None,
        description="Endpoint for every AWS client: set only for the local stack and tests (moto); unset in AWS.",
    )
    read_replaced_indexes: bool = Field(
        default=False,
        description=(
            "Query the indexes a release replaced (by their old names) instead of their successors: "
            "set by CDK while a deployment migrates its tables (`-c indexMigration=true`, "
            "docs/migrations.md), when the new indexes may still be backfilling."
        ),
    )

    media_bucket: str = Field(
        default="tracklane-media",
        description="The media bucket: uploads, kept originals, renditions, waveforms, artwork, documents.",
    )
    artists_table: str = Field(default="tracklane-artists", description="The Artists table.")
    tracks_table: str = Field(default="tracklane-tracks", description="The Tracks table.")
    uploads_table: str = Field(default="tracklane-uploads", description="The Uploads table.")
    entitlements_table: str = Field(default="tracklane-entitlements", description="The Entitlements table.")
    albums_table: str = Field(default="tracklane-albums", description="The Albums table.")
    idempotency_table: str = Field(
        default="tracklane-idempotency",
        description="Idempotency-Key records of POST requests (`functions/api/idempotency.py`).",
    )
    state_machine_arn: str = Field(
        default="", description="The track-processing state machine that finalize starts (execution name = upload id)."
    )
    event_bus_name: str = Field(
        default="tracklane-events",
        description="The custom EventBridge bus the domain events (`track.created`, `album.updated`, ...) go to.",
    )

    jwt_issuer: str = Field(
        default="",
        description=(
            "The issuer (`iss`) of the bearer tokens the API accepts: the Cognito user pool's URL, "
            "another OIDC issuer's, or the local stack's. Empty: no token is accepted (every caller is "
            "anonymous, owner routes answer 401)."
        ),
    )
    jwt_audiences: list[str] = Field(
        default=[],
        description=(
            "Accepted audiences (a JSON list): a token passes when its `aud` or its `client_id` (Cognito "
            "access tokens) names one of them, as API Gateway's JWT authorizers decide."
        ),
    )
    jwks_url: str = Field(
        default="",
        pattern=r"^(|https?://.+|file:///.+)$",
        description=(
            "Where the issuer's signing keys are published (a JWKS); empty means "
            "`<jwt_issuer>/.well-known/jwks.json`. Keys are cached per process and refetched when a "
            "token names an unknown key id. The local stack points it at a `file://` JWKS it wrote."
        ),
    )

    public_api_url: str = Field(
        default="",
        description=(
            "Public base URL of the API as clients see it (a custom domain, an API Gateway stage): the "
            "base of `finalizeUrl`, the multipart `partsUrl`/`completeUrl`/`abortUrl`, `progressUrl` "
            "and an album's 301 `Location`. When empty the request's own base URL is used."
        ),
    )

    upload_url_ttl_s: int = Field(
        default=900,
        ge=60,
        le=7 * 24 * 3600,
        description="Lifetime of a signed upload URL (PUT or POST), in seconds; the upload session's `ttl`.",
    )
    intent_ttl_s: int = Field(
        default=24 * 3600,
        ge=300,
        le=7 * 24 * 3600,
        description=(
            "A pending intent (and its DynamoDB item, via TTL) lives this long; a multipart upload must "
            "complete within it and within one day (before S3's lifecycle aborts its parts). At most "
            "the days S3 keeps an unfinalized file (`ABANDONED_UPLOAD_DAYS` in `functions/data/storage.py`)."
        ),
    )
    upload_session_ttl_s: int = Field(
        default=24 * 3600,
        ge=60,
        le=30 * 24 * 3600,
        description="An upload session (upload-session contract) takes new tracks this long (its `expires_at`).",
    )
    max_audio_bytes: int = Field(
        default=500 * 1024 * 1024,
        description="The largest audio file an intent accepts (`413 file_too_large` above it).",
    )
    multipart_threshold_bytes: int | None = Field(
        default=None,
        ge=5 * 1024 * 1024,
        description=(
            "Resumable uploads (`functions/domain/intake/uploads.py`): an intent asking for it "
            '(`"multipart": true`) gets a multipart plan instead of one signed PUT; so does one above '
            "this size when it is set and the intent does not say. Unset by default: upload-intent "
            "contract clients, which know nothing of parts, always get the `signedUrl` their contract "
            "promises."
        ),
    )
    multipart_part_size_bytes: int = Field(
        default=16 * 1024 * 1024,
        ge=5 * 1024 * 1024,
        le=5 * 1024**3,
        description=(
            "Part size of a multipart plan (S3's minimum for all but the last part is 5 MiB), grown so "
            "a file never takes over 10,000 parts."
        ),
    )
    max_request_body_bytes: int = Field(
        default=64 * 1024, description="The largest request body the API reads (`413 request_too_large` above it)."
    )
    storage_quota_bytes: int = Field(
        default=10 * 1024**3,
        ge=0,
        description=(
            "The bytes an artist may store (originals and renditions, plus what pending intents "
            "reserve) unless `tracklane quota set` gives that artist another quota "
            "(`403 storage_quota_exceeded` past it; docs/limits.md)."
        ),
    )
    max_pending_intents: int = Field(
        default=20,
        ge=1,
        description=(
            "The audio intents (tracks, versions, session tracks) an artist may have waiting for their "
            "file at once (`409 too_many_pending_uploads` past it; docs/limits.md)."
        ),
    )
    max_running_workflows: int = Field(
        default=3,
        ge=1,
        description=(
            "The track workflows (first uploads and new versions) one artist may have running at once; "
            "further finalized uploads wait their turn, workflowStatus `queued` (docs/limits.md)."
        ),
    )
    write_rate_per_s: float = Field(
        default=10.0,
        gt=0,
        description=(
            "Each caller's write requests (POST, PUT, PATCH, DELETE on owner routes) refill its token "
            "bucket at this rate, per second (`429 rate_limited` when it is empty; docs/limits.md)."
        ),
    )
    write_burst: int = Field(
        default=100,
        ge=1,
        description="The writes a caller's token bucket holds when full: how many may come at once.",
    )
    default_upload_entitlement: Literal["allow", "deny"] = Field(
        default="allow", description="Entitlement policy for callers with no explicit grant or revocation."
    )
    idempotency_ttl_s: int = Field(
        default=24 * 3600,
        ge=60,
        le=7 * 24 * 3600,
        description=(
            "How long an Idempotency-Key is remembered: a repeat within this window replays the first "
            "answer, a later one is a new request."
        ),
    )

    autotag_examples_max: int = Field(
        default=2000,
        ge=1,
        le=10_000,
        description="The autotag lane compares a new track with at most this many of the newest tagged public tracks.",
    )
    autotag_references_max_age_s: int = Field(
        default=300,
        ge=0,
        le=86_400,
        description=(
            "The autotag lane reads its examples from a snapshot (`references/autotag-examples.json` in the "
            "media bucket) that the first lane to find it older than this rebuilds: a newly tagged public "
            "track teaches autotag within this long. 0 rebuilds it for every lane."
        ),
    )

    stems_processor: str | None = Field(
        default=None,
        description=(
            "External processor of the stems lane: an http(s) URL or a Lambda function ARN "
            "(`functions/domain/processing/external.py`); unset: the lane is skipped with `not_configured`."
        ),
    )
    lyrics_processor: str | None = Field(
        default=None, description="External processor of the lyrics lane, as for the stems lane."
    )
    processor_timeout_s: int = Field(
        default=120, ge=1, le=900, description="How long a lane waits for an external processor's answer."
    )
    sdk_max_attempts: int = Field(
        default=10,
        ge=1,
        le=20,
        description=(
            "Attempts of every AWS call (SDK standard retry mode: throttles, 5xx and timeouts, with "
            "jittered exponential backoff capped at 20 s): 10 rides out about a minute of throttling "
            "in finalize, lanes and the sweeper. The API function sets 3: it answers within API "
            "Gateway's 30 s, a throttle then is `503 service_busy` with Retry-After."
        ),
    )
    stream_url_ttl_s: int = Field(
        default=300,
        ge=30,
        le=3600,
        description="Lifetime of the presigned GET that `/stream`, `/artwork`, documents and album covers redirect to.",
    )

    sweep_after_s: int = Field(
        default=15 * 60,
        ge=0,
        description=(
            "The sweeper looks at a track's execution once it has been processing this long (a RUNNING "
            "execution is left alone, so this only bounds how late a repair can come)."
        ),
    )

    similar_candidates_max: int = Field(
        default=5000, ge=1, description="`/similar` compares a track with at most this many of its owner's tracks."
    )

    progress_stream: bool = Field(
        default=False,
        description=(
            "Live progress (`GET /v1/uploads/{uploadId}/progress`). True: stream until the upload "
            "settles (the local stack under uvicorn). False (the deployed default): answer what the "
            "client has not seen yet and close; EventSource reconnects after `progress_retry_ms` with "
            "Last-Event-ID. API Gateway cannot stream a Lambda's answer through Mangum, so a request "
            "that came through Mangum never streams, whatever this says."
        ),
    )
    progress_poll_interval_s: float = Field(
        default=0.5, gt=0, le=10, description="How often a progress stream reads the tables."
    )
    progress_heartbeat_s: float = Field(
        default=15.0,
        gt=0,
        description="A progress stream sends a `: keep-alive` comment after this long without an event.",
    )
    progress_max_stream_s: float = Field(
        default=15 * 60,
        gt=0,
        description="One progress stream ends after this long (the client then reconnects and resumes).",
    )
    progress_max_polls: int = Field(
        default=2000, ge=1, description="One progress stream ends after this many polls (then reconnects and resumes)."
    )
    progress_retry_ms: int = Field(
        default=2000,
        ge=100,
        le=60_000,
        description="The `retry:` a progress answer sends: how long EventSource waits before it reconnects.",
    )
    progress_token_ttl_s: int = Field(
        default=300,
        ge=30,
        le=3600,
        description="Lifetime of a progress token (`POST /v1/uploads/{uploadId}/progress-tokens`).",
    )

    ffmpeg_path: str | None = Field(
        default=None,
        description="The ffmpeg binary (the stack sets the layer's); unset: the one in the imageio-ffmpeg wheel.",
    )
    ffmpeg_timeout_s: int = Field(
        default=840,
        description=(
            "How long one ffmpeg run may take: below its processing function's timeout (the stack sets it "
            "per function, 45 s under it), so a stuck ffmpeg ends as a lane failure, not a kill."
        ),
    )
    min_audio_ms: int = Field(default=1000, description="Shorter audio fails the probe lane (`audio_too_short`).")
    max_audio_ms: int = Field(
        default=3 * 3600 * 1000,
        description=(
            "Longer audio fails the probe lane (`audio_too_long`). Transcoding runs ~19x real time on "
            "2 vCPUs: 3 h of audio fits the 840 s budget with margin."
        ),
    )


@cache
def settings() -> Settings:
    return Settings()


def run_blas_on_one_thread() -> None:
    """numpy's OpenBLAS runs each matrix product (the embeddings lane's mel filterbank, 128 hops at
    a time) on a thread per core, and its threads spin between products while the pipe delivers the
    next chunk: on the two-core development machine embedding 10 minutes of audio took 2.8
    CPU-seconds that way and 1.1 on one thread, which was faster too (0.9 s against 2.6 s).
    OpenBLAS reads the variable once, when numpy is first imported; one set by whoever runs the
    process wins."""
    os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

"""Domain errors: each carries a stable machine-readable code and the HTTP status it maps to.

Services raise these; the API maps them to responses in one place (``functions.api.errors``).
"""

from __future__ import annotations

from typing import Any, ClassVar


class DomainError(Exception):
    code = "internal_error"
    status = 500
    # The upload-intent contract's finalize answers are a union discriminated on ``status``; errors
    # that are members of that union name their member here and the response carries it beside
    # ``error``.
    union_status: ClassVar[str | None] = None

    def __init__(self, message: str, **details: Any) -> None:
        super().__init__(message)
        self.message = message
        self.details = details


class NotFound(DomainError):
    code = "not_found"
    status = 404


class ArtistProfileRequired(DomainError):
    code = "artist_profile_required"
    status = 403


class HandleTaken(DomainError):
    code = "handle_taken"
    status = 409


class EntitlementRequired(DomainError):
    code = "entitlement_required"
    status = 403


class InvalidUpload(DomainError):
    code = "invalid_upload"
    status = 400


class UnsupportedMediaType(DomainError):
    code = "unsupported_media_type"
    status = 400


class InvalidPartSize(DomainError):
    """A multipart ``partSize`` outside S3's bounds (5 MiB to 5 GiB, at most 10,000 parts)."""

    code = "invalid_part_size"
    status = 422


class StorageQuotaExceeded(DomainError):
    """The intent would take the artist past its storage quota (docs/limits.md). 403, not 413: the
    file is acceptable, the account is full; a smaller file may fit, deleting tracks makes room.
    Details: ``usedBytes``, ``reservedBytes``, ``quotaBytes``, ``requestedBytes``."""

    code = "storage_quota_exceeded"
    status = 403


class TooManyPendingUploads(DomainError):
    """The owner already has ``max_pending_intents`` audio intents waiting for their file
    (docs/limits.md). 409, not 429: waiting alone does not help; finalizing or cancelling an intent
    (or its expiry) does. Details: ``pendingIntents``, ``maxPendingIntents``."""

    code = "too_many_pending_uploads"
    status = 409


class RateLimited(DomainError):
    """The caller's write requests outran its token bucket (docs/limits.md). Details: ``limit``
    (the burst), ``ratePerSecond``, ``remaining`` (0), ``retryAfterSeconds``; the response carries
    ``Retry-After`` with the same seconds."""

    code = "rate_limited"
    status = 429

    def __init__(self, message: str, *, retry_after_s: int, **details: object) -> None:
        super().__init__(message, retryAfterSeconds=retry_after_s, **details)
        self.retry_after_s = retry_after_s


class FileTooLarge(DomainError):
    code = "file_too_large"
    status = 413


class RedirectedIntent(DomainError):
    """An intent this route does not accept; the code names the route to use instead."""

    status = 400

    def __init__(self, code: str, message: str, use_instead: str) -> None:
        super().__init__(message, useInstead=use_instead)
        self.code = code


class TrackNotFound(NotFound):
    code = "track_not_found"


class UploadIntentNotFound(NotFound):
    code = "upload_intent_not_found"
    union_status = "upload_intent_not_found"


class AssetMismatch(DomainError):
    code = "upload_asset_mismatch"
    status = 409
    union_status = "asset_mismatch"


class UploadAssetMissing(DomainError):
    code = "upload_asset_missing"
    status = 409
    union_status = "upload_asset_missing"


class UploadAssetInvalid(DomainError):
    code = "upload_asset_invalid"
    status = 422
    union_status = "upload_asset_invalid"


class UploadAssetChanged(DomainError):
    """The stored file was replaced (another PUT to the signed URL) while finalize was keeping it:
    what was verified is no longer what is there. Finalizing again verifies the new file."""

    code = "upload_asset_changed"
    status = 409
    union_status = "upload_asset_changed"


class UploadExpired(DomainError):
    code = "upload_intent_expired"
    status = 410
    union_status = "upload_intent_expired"


class ConcurrentUpdate(DomainError):
    code = "concurrent_update"
    status = 409


class UnknownFeatureHandle(DomainError):
    code = "unknown_feature_handle"
    status = 422


class ServiceBusy(DomainError):
    """AWS throttled a call past the SDK's retries: nothing was lost, the same request later works."""

    code = "service_busy"
    status = 503
    # Seconds a client waits before repeating the request (the Retry-After header).
    RETRY_AFTER_S = 5


class WorkflowStartFailed(DomainError):
    """The upload is finalized but processing could not be started yet; finalizing again retries."""

    code = "workflow_start_failed"
    status = 503


class RenditionNotReady(DomainError):
    code = "rendition_not_ready"
    status = 409


class ArtworkNotFound(DomainError):
    code = "artwork_not_found"
    status = 404


class EmbeddingNotReady(DomainError):
    code = "embedding_not_ready"
    status = 409


class EmptyFile(DomainError):
    code = "empty_file"
    status = 400


class ArtistProfileNotFound(NotFound):
    code = "artist_profile_not_found"


class ArtistNotFound(NotFound):
    """No artist has this handle (public album routes address artists by handle)."""

    code = "artist_not_found"


class AlbumNotFound(NotFound):
    """No such album, or it is another owner's (owner-only routes never reveal that it exists)."""

    code = "album_not_found"


class InvalidAlbum(DomainError):
    code = "invalid_album"
    status = 422


class AlbumChanged(DomainError):
    """The album kept changing under an optimistic write; the request may simply be repeated."""

    code = "album_changed"
    status = 409


class AlbumFull(DomainError):
    code = "album_full"
    status = 409


class AlbumSlugUnavailable(DomainError):
    code = "album_slug_unavailable"
    status = 409


class InvalidCursor(DomainError):
    code = "invalid_cursor"
    status = 400


class SupportRequired(DomainError):
    """A support-gated track streams only to its artist's supporters (and its owner). The track
    itself is no secret here: only ready public or unlisted tracks get this far."""

    code = "support_required"
    status = 403


class OriginalOwnerOnly(DomainError):
    """The uploaded original (often lossless) streams to its owner only; listeners get renditions."""

    code = "original_owner_only"
    status = 403


class InvalidTag(DomainError):
    code = "invalid_tag"
    status = 400


class TrackDeleted(TrackNotFound):
    """The track item is gone, so a write that must not re-create it (a processing lane finishing
    after the track was deleted) was refused. To a client it is just 'not found'."""


class InvalidTrackUpdate(DomainError):
    code = "invalid_track_update"
    status = 400


class DocumentNotFound(NotFound):
    code = "document_not_found"


class LaneResultNotFound(NotFound):
    """The lane has no result to read: unknown, not succeeded (yet), or it produced none."""

    code = "lane_result_not_found"


class DocumentLimitReached(DomainError):
    """A track holds a bounded number of documents; delete one to add another."""

    code = "document_limit_reached"
    status = 409


class InvalidIdempotencyKey(DomainError):
    code = "invalid_idempotency_key"
    status = 400


class IdempotencyKeyReused(DomainError):
    """The key already belongs to a request with another body (or query) on this route."""

    code = "idempotency_key_reused"
    status = 422


class IdempotencyKeyInProgress(DomainError):
    """The first request with this key has not answered yet; repeating it later replays that answer."""

    code = "idempotency_key_in_progress"
    status = 409


class TrackHasNoAudio(DomainError):
    """A new version replaces a track's audio: a draft has none yet (finalize its own upload)."""

    code = "track_has_no_audio"
    status = 409


class VersionInProgress(DomainError):
    """A track processes one new version at a time; the next one waits until it is live or failed."""

    code = "version_in_progress"
    status = 409


class TrackProcessing(DomainError):
    """A version's processing would share the lanes of the track's own run, which has not ended
    yet: its upload stays pending, and finalizing again once the run has ended starts it."""

    code = "track_processing"
    status = 409


class VersionSuperseded(DomainError):
    """A newer version intent replaced this one before its file was finalized; the file is dropped."""

    code = "version_superseded"
    status = 409


class VersionDiscarded(DomainError):
    """A lane finished for a version that is no longer the one being processed (it failed, or the
    track's next version replaced it): what the lane made is dropped. Never reaches the API."""

    code = "version_discarded"
    status = 409


class ProgressTokenInvalid(DomainError):
    """The ``token`` of a progress request is unknown or minted for another upload."""

    code = "progress_token_invalid"
    status = 401


class ProgressTokenExpired(DomainError):
    """The progress token was valid but has expired: mint a new one and resume with ``lastEventId``."""

    code = "progress_token_expired"
    status = 401


class UploadCancelled(DomainError):
    """The owner cancelled the intent (``DELETE /v1/uploads/{uploadId}``): nothing it receives is kept."""

    code = "upload_intent_cancelled"
    status = 410
    union_status = "upload_intent_cancelled"


class UploadAlreadyFinalized(DomainError):
    """A finalized upload is the record of a track's audio: delete the track instead."""

    code = "upload_already_finalized"
    status = 409


class UploadNotMultipart(DomainError):
    """A multipart route called for an intent that was given one signed PUT."""

    code = "upload_not_multipart"
    status = 409


class UploadPartsIncomplete(DomainError):
    """Completing needs every planned part, each of its planned size; ``missing`` lists the part
    numbers to upload (again)."""

    code = "upload_parts_incomplete"
    status = 409


class UploadPartMismatch(DomainError):
    """S3 refused the part list sent to complete (an ETag that is not the stored part's)."""

    code = "upload_part_mismatch"
    status = 409


class UploadSessionNotFound(NotFound):
    """No such upload session (upload-session contract), or it is another owner's."""

    code = "upload_session_not_found"


class UploadSessionExpired(DomainError):
    """The upload session (upload-session contract) is past its ``expires_at``: it takes no more
    tracks."""

    code = "upload_session_expired"
    status = 410


class UploadSessionFull(DomainError):
    code = "upload_session_full"
    status = 409


class CollectionNotFound(NotFound):
    """The upload-session contract's ``collection_id`` is not an album of the caller's (another
    owner's is 'not found')."""

    code = "collection_not_found"


class MetadataTooLarge(DomainError):
    code = "metadata_too_large"
    status = 413

"""DynamoDB tables, defined once.

These pynamodb models are the single definition of every table: the local stack creates tables
from them and the CDK stack derives its tables from ``functions.data.schema`` (which reads these
classes). Table names and the endpoint are bound from settings on first use, never at import.
"""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime
from functools import cache
from typing import Any, ClassVar

import botocore.loaders
import botocore.session
import pynamodb.connection.base
from pynamodb.attributes import (
    BooleanAttribute,
    JSONAttribute,
    ListAttribute,
    MapAttribute,
    NumberAttribute,
    UnicodeAttribute,
    UnicodeSetAttribute,
    UTCDateTimeAttribute,
)
from pynamodb.attributes import TTLAttribute as _TTLAttribute
from pynamodb.connection import Connection
from pynamodb.exceptions import PynamoDBException
from pynamodb.indexes import AllProjection, GlobalSecondaryIndex, IncludeProjection, KeysOnlyProjection
from pynamodb.models import Model

from functions.settings import Settings, settings


def utcnow() -> datetime:
    return datetime.now(UTC)


def condition_failed(error: PynamoDBException) -> bool:
    """True when a conditional write was refused because its condition did not hold (as opposed
    to any other failure, which callers re-raise)."""
    return getattr(error, "cause_response_code", None) == "ConditionalCheckFailedException"


class _Unbound:
    """Meta base: a table is named only when ``bind()`` runs."""

    table_name: str | None = None
    region: str | None = None
    host: str | None = None
    billing_mode = "PAY_PER_REQUEST"


class _BoundModel(Model):
    """Every model binds itself to its table on first use (``ensure_bound``): callers never bind,
    and nothing is read from settings at import time."""

    @classmethod
    def _get_connection(cls) -> Any:
        ensure_bound()
        table = super()._get_connection()
        if table.connection._client is None:
            # pynamodb gives each model its own Connection, hence its own botocore client (tens of
            # milliseconds and a connection pool each); every table shares one endpoint, so the
            # models share one client. (Each keeps its Connection: it holds that model's schema.)
            table.connection._client = shared_connection().client
        return table


class ArtistModel(_BoundModel):
    """Artist profile (``pk=artist#<userId>, sk=profile``) and handle claims
    (``pk=handle#<handle>, sk=claim``) share one table so a transaction can keep handles unique."""

    class Meta(_Unbound):
        logical_name = "Artists"
        settings_field = "artists_table"

    pk = UnicodeAttribute(hash_key=True)
    sk = UnicodeAttribute(range_key=True)
    user_id = UnicodeAttribute()
    handle = UnicodeAttribute()
    display_name = UnicodeAttribute(null=True)
    created_at = UTCDateTimeAttribute(default=utcnow)
    updated_at = UTCDateTimeAttribute(default=utcnow)

    @staticmethod
    def profile_key(user_id: str) -> tuple[str, str]:
        return f"artist#{user_id}", "profile"

    @staticmethod
    def handle_key(handle: str) -> tuple[str, str]:
        return f"handle#{handle}", "claim"


class UsageModel(_BoundModel):
    """An artist's storage usage (``pk=usage#<userId>, sk=usage``): the bytes its tracks hold
    (``used_bytes``: originals and renditions), the bytes its pending intents reserve, and an
    admin's override of the configured quota (``functions.domain.catalog.usage``). A reservation
    is an ADD under the condition ``committed_bytes <= quota - requested``: DynamoDB conditions have
    no arithmetic, so ``committed_bytes`` is kept equal to ``used_bytes + reserved_bytes`` by every
    write. Shares the Artists table, beside the profile."""

    class Meta(_Unbound):
        logical_name = "Artists"
        settings_field = "artists_table"
        shares_table_with = "ArtistModel"

    SK = "usage"
    PREFIX = "usage#"

    pk = UnicodeAttribute(hash_key=True)
    sk = UnicodeAttribute(range_key=True)
    used_bytes = NumberAttribute(null=True)
    reserved_bytes = NumberAttribute(null=True)
    committed_bytes = NumberAttribute(null=True)
    track_count = NumberAttribute(null=True)
    # The artist's pending intents that hold a reservation (those marked ``counts_pending``): an
    # intent ADDs 1 under the condition ``pending_intents < max_pending_intents``, and every settle
    # and release of its reservation takes it off in the same transaction.
    pending_intents = NumberAttribute(null=True)
    # An admin's quota for this artist (``tracklane quota``); absent: ``settings().storage_quota_bytes``.
    quota_bytes = NumberAttribute(null=True)
    quota_updated_by = UnicodeAttribute(null=True)

    @staticmethod
    def key(user_id: str) -> tuple[str, str]:
        return f"{UsageModel.PREFIX}{user_id}", UsageModel.SK


class ReservationModel(_BoundModel):
    """The bytes one pending upload intent reserves (``pk=usage#<userId>,
    sk=reservation#<uploadId>``): written with the intent, deleted (and its bytes taken off the
    usage) in the same transaction that settles or releases it, so a settle or release happens once
    however often it is attempted. No TTL: an expired intent's reservation stays until it is
    released (``functions.domain.catalog.usage.reconcile``), never lost with its bytes counted."""

    class Meta(_Unbound):
        logical_name = "Artists"
        settings_field = "artists_table"
        shares_table_with = "ArtistModel"

    SK_PREFIX = "reservation#"

    pk = UnicodeAttribute(hash_key=True)
    sk = UnicodeAttribute(range_key=True)
    upload_id = UnicodeAttribute()
    intent = UnicodeAttribute()
    byte_size = NumberAttribute()
    # The intent's own TTL: past it nothing can finalize the intent, so its bytes may be released.
    expires_at = UTCDateTimeAttribute()
    # True: the intent is one of ``UsageModel.pending_intents`` (absent on reservations made before
    # that limit existed, whose release must not take off what they never added).
    # False: an image's or a document's, which reserves storage but is no pending audio intent.
    counts_pending = BooleanAttribute(null=True)

    @staticmethod
    def key(user_id: str, upload_id: str) -> tuple[str, str]:
        return UsageModel.key(user_id)[0], f"{ReservationModel.SK_PREFIX}{upload_id}"


class TrackUsageModel(_BoundModel):
    """What one track counts in its owner's usage (``pk=usage#<userId>, sk=track#<trackId>``),
    bytes per stored file: its original, each rendition, and a new version's original while that
    version is processed. Deleting the track takes exactly these bytes off (a transaction
    conditional on them being what was read), so a rendition counted concurrently is never lost."""

    class Meta(_Unbound):
        logical_name = "Artists"
        settings_field = "artists_table"
        shares_table_with = "ArtistModel"

    SK_PREFIX = "track#"

    pk = UnicodeAttribute(hash_key=True)
    sk = UnicodeAttribute(range_key=True)
    original_bytes = NumberAttribute(null=True)
    pending_bytes = NumberAttribute(null=True)
    aac_bytes = NumberAttribute(null=True)
    opus_bytes = NumberAttribute(null=True)
    mp3_bytes = NumberAttribute(null=True)
    # True when the track's first original made it (it is one of ``UsageModel.track_count``).
    counted_track = BooleanAttribute(null=True)

    @staticmethod
    def key(user_id: str, track_id: str) -> tuple[str, str]:
        return UsageModel.key(user_id)[0], f"{TrackUsageModel.SK_PREFIX}{track_id}"


class MediaUsageModel(_BoundModel):
    """What one stored image or document counts in its owner's usage (``pk=usage#<userId>,
    sk=media#<targetId>#<uploadId>``, the target being the track or album it belongs to): the kept
    file's bytes and, for an uploaded image, the variants rendered from it. Written by the
    transaction that claims its intent, deleted (and its bytes taken off) by the one that deletes
    the document, replaces or removes the image, or after its track or album is deleted: one Query
    by the target's prefix finds them all."""

    class Meta(_Unbound):
        logical_name = "Artists"
        settings_field = "artists_table"
        shares_table_with = "ArtistModel"

    SK_PREFIX = "media#"

    pk = UnicodeAttribute(hash_key=True)
    sk = UnicodeAttribute(range_key=True)
    # The intent's kind (``track_artwork``, ``album_cover``, ``track_document``).
    intent = UnicodeAttribute()
    byte_size = NumberAttribute()
    # An image's rendered variants, once stored (``functions.domain.catalog.usage.count_variants``).
    variant_bytes = NumberAttribute(null=True)

    @staticmethod
    def key(user_id: str, target_id: str, upload_id: str) -> tuple[str, str]:
        return UsageModel.key(user_id)[0], f"{MediaUsageModel.target_prefix(target_id)}{upload_id}"

    @staticmethod
    def target_prefix(target_id: str) -> str:
        return f"{MediaUsageModel.SK_PREFIX}{target_id}#"

    @property
    def total_bytes(self) -> int:
        return int(self.byte_size) + int(self.variant_bytes or 0)


class RunsModel(_BoundModel):
    """How many of an artist's track workflows run now (``pk=usage#<userId>, sk=runs``): one
    ``RunSlotModel`` per run, and ``running`` equal to how many there are, because every put or
    delete of a slot moves it in the same transaction. A slot is taken under the condition
    ``running < cap`` (``functions.domain.intake.run_queue``); an upload refused by it waits as a
    ``QueuedRunModel``. Kept apart from ``UsageModel``: the claim's transaction updates that item
    already, and one transaction cannot write one item twice."""

    class Meta(_Unbound):
        logical_name = "Artists"
        settings_field = "artists_table"
        shares_table_with = "ArtistModel"

    SK = "runs"

    pk = UnicodeAttribute(hash_key=True)
    sk = UnicodeAttribute(range_key=True)
    running = NumberAttribute(null=True)

    @staticmethod
    def key(user_id: str) -> tuple[str, str]:
        return UsageModel.key(user_id)[0], RunsModel.SK


class RunSlotModel(_BoundModel):
    """One running track workflow of an artist (``pk=usage#<userId>, sk=run#<uploadId>``): put with
    +1 on ``RunsModel.running``, deleted (condition: it exists) with -1, so a repeated verdict frees
    nothing twice and the count is always the slots there are."""

    class Meta(_Unbound):
        logical_name = "Artists"
        settings_field = "artists_table"
        shares_table_with = "ArtistModel"

    SK_PREFIX = "run#"

    pk = UnicodeAttribute(hash_key=True)
    sk = UnicodeAttribute(range_key=True)
    upload_id = UnicodeAttribute()
    track_id = UnicodeAttribute()
    started_at = UTCDateTimeAttribute(default=utcnow)

    @staticmethod
    def key(user_id: str, upload_id: str) -> tuple[str, str]:
        return UsageModel.key(user_id)[0], f"{RunSlotModel.SK_PREFIX}{upload_id}"


class QueuedRunModel(_BoundModel):
    """A finalized upload waiting for one of its artist's run slots
    (``pk=usage#<userId>, sk=queued#<queuedAt>#<uploadId>``): the sort key makes a Query's first
    item the oldest. Deleted (condition: it exists) by the transaction that gives it a slot, so of
    any number of racing hand-offs one starts it."""

    class Meta(_Unbound):
        logical_name = "Artists"
        settings_field = "artists_table"
        shares_table_with = "ArtistModel"

    SK_PREFIX = "queued#"

    pk = UnicodeAttribute(hash_key=True)
    sk = UnicodeAttribute(range_key=True)
    upload_id = UnicodeAttribute()
    track_id = UnicodeAttribute()
    queued_at = UTCDateTimeAttribute()

    @staticmethod
    def key(user_id: str, queued_at: datetime, upload_id: str) -> tuple[str, str]:
        return UsageModel.key(user_id)[0], f"{QueuedRunModel.SK_PREFIX}{queued_at.isoformat()}#{upload_id}"


class RateBucketModel(_BoundModel):
    """A caller's token bucket for write requests (``pk=rate#<userId>, sk=writes``), kept as the
    one number a token bucket reduces to: ``full_at_ms``, the time (epoch ms) at which the bucket is
    full again (GCRA's theoretical arrival time). Written only by ``functions.data.rate_buckets``'
    conditional updates. Each update also sets ``expires_at_epoch`` (the Artists table's TTL) past
    the time the bucket is full again, so DynamoDB deletes an idle caller's item; a bucket deleted
    is a full one, so that changes nothing a caller sees."""

    class Meta(_Unbound):
        logical_name = "Artists"
        settings_field = "artists_table"
        shares_table_with = "ArtistModel"

    PREFIX = "rate#"
    WRITES = "writes"

    pk = UnicodeAttribute(hash_key=True)
    sk = UnicodeAttribute(range_key=True)
    full_at_ms = NumberAttribute(null=True)
    # DynamoDB TTL (epoch seconds), at least ``rate_buckets.TTL_MARGIN_S`` after ``full_at_ms``. It
    # is the Artists table's one TTL attribute (``functions.data.schema``): an item of that table
    # with an attribute of this name is deleted once its time passes.
    expires_at_epoch = _TTLAttribute(null=True)

    @staticmethod
    def key(user_id: str, bucket: str = WRITES) -> tuple[str, str]:
        return f"{RateBucketModel.PREFIX}{user_id}", bucket


# What a listing page shows of each track (``functions.domain.catalog.listing``), keys included.
TRACK_SUMMARY_FIELDS = (
    "pk",
    "sk",
    "owner_id",
    "title",
    "album",
    "album_id",
    "duration_ms",
    "status",
    "visibility",
    "support_gate",
    "tags",
    "features",
    "artwork",
    "created_at",
)
# What the owner's own list adds to a summary: why a track failed or its upload was rejected, and
# whether its intent expired.
OWNER_TRACK_FIELDS = (*TRACK_SUMMARY_FIELDS, "upload_id", "expires_at_epoch", "failure_code", "failure_message")


class TracksByOwner(GlobalSecondaryIndex["TrackModel"]):  # type: ignore[no-untyped-call]
    """A caller's tracks, newest last (``/v1/me/tracks``, and the candidates ``similar`` ranks by
    their embedding summaries). Sparse: lane items carry no owner. It carries what those readers
    read and no more: a lane's write that changes none of it costs the index nothing
    (docs/capacity.md). It replaced ``by_owner`` (the same keys, every attribute projected), which a
    deployment migrating across still reads (``Meta.replaces``, docs/migrations.md)."""

    class Meta:
        index_name = "by_owner_summary"
        replaces = "by_owner"
        projection = IncludeProjection(
            [name for name in (*OWNER_TRACK_FIELDS, "embedding") if name not in ("pk", "sk", "owner_id", "created_at")]
        )

    owner_id = UnicodeAttribute(hash_key=True)
    created_at = UTCDateTimeAttribute(range_key=True)


class TracksListedByArtist(GlobalSecondaryIndex["TrackModel"]):  # type: ignore[no-untyped-call]
    """An artist's publicly listed tracks (``GET /v1/artists/{handle}/tracks``). Sparse:
    ``listed_owner`` is set only while the track is ready, public and ungated
    (``functions.domain.catalog.listing`` keeps it so). Keys only: the page reads the few fields it shows
    with one BatchGetItem, and re-checks them, since an index answers eventually."""

    class Meta:
        index_name = "by_artist_listing"
        projection = KeysOnlyProjection()

    listed_owner = UnicodeAttribute(hash_key=True)
    created_at = UTCDateTimeAttribute(range_key=True)


class TaggedReferenceTracks(GlobalSecondaryIndex["TrackModel"]):  # type: ignore[no-untyped-call]
    """Listed tracks that have tags and an embedding, newest first: what the autotag lane learns
    genre tags from (nearest neighbours). Sparse: ``tag_reference`` is set by
    ``functions.domain.catalog.listing`` exactly while the track is such a track. It carries only what the
    classifier reads, not the waveform or the rest of the item."""

    class Meta:
        index_name = "by_tag_reference"
        projection = IncludeProjection(["owner_id", "tags", "embedding"])

    tag_reference = UnicodeAttribute(hash_key=True)
    created_at = UTCDateTimeAttribute(range_key=True)


class TracksInProcessing(GlobalSecondaryIndex["TrackModel"]):  # type: ignore[no-untyped-call]
    """Tracks whose workflow has not reported an outcome, oldest first, for the sweeper. Sparse:
    finalize sets the keys, mark ready/failed removes them. The partition is one of a few shards so
    a burst of uploads does not funnel every write into one index partition."""

    class Meta:
        index_name = "by_processing"
        projection = KeysOnlyProjection()

    processing_shard = UnicodeAttribute(hash_key=True)
    processing_since = UTCDateTimeAttribute(range_key=True)


class TrackModel(_BoundModel):
    """A track (``sk=track``); its processing lanes live beside it as ``LaneModel`` items so one
    Query returns the whole processing status and parallel lanes never write the same item."""

    class Meta(_Unbound):
        logical_name = "Tracks"
        settings_field = "tracks_table"
        # Domain events are read from this stream (functions.events); both images tell what changed.
        stream_view_type = "NEW_AND_OLD_IMAGES"

    TRACK_SK = "track"
    VISIBILITIES = ("public", "unlisted", "private")
    TAG_REFERENCE = "tagged"

    pk = UnicodeAttribute(hash_key=True)
    sk = UnicodeAttribute(range_key=True)
    owner_id = UnicodeAttribute()
    upload_id = UnicodeAttribute()
    title = UnicodeAttribute()
    # The album this track belongs to (``AlbumModel``); its order lives on the album.
    album_id = UnicodeAttribute(null=True)
    # Who chose the title: "uploader", "file_name" (the default) or "tags" (the tags lane filled it).
    # Only a title the uploader did not choose may be replaced from the file's tags.
    title_source = UnicodeAttribute(null=True)
    album = UnicodeAttribute(null=True)
    genre = UnicodeAttribute(null=True)
    year = NumberAttribute(null=True)
    track_number = NumberAttribute(null=True)
    features = ListAttribute(of=UnicodeAttribute, null=True)
    tags = ListAttribute(of=UnicodeAttribute, null=True)
    support_gate = JSONAttribute(null=True)
    description = UnicodeAttribute(null=True)
    auto_tag = BooleanAttribute(default=False)
    # public (listed) | unlisted (playable by link, never listed) | private (owner only)
    visibility = UnicodeAttribute(default="public")
    # Set while the track is publicly listed (ready, public, ungated): the artist's id, which keys
    # ``by_artist_listing``, and the tags it is listed under (their ``TagEntryModel`` items).
    listed_owner = UnicodeAttribute(null=True)
    listed_tags = ListAttribute(of=UnicodeAttribute, null=True)
    # Set (to ``TAG_REFERENCE``) while the track is listed, tagged and has an embedding: it keys
    # ``by_tag_reference``, the examples the autotag lane classifies new tracks by.
    tag_reference = UnicodeAttribute(null=True)
    # draft (intent created) -> processing (finalized) -> ready | failed
    status = UnicodeAttribute(default="draft")
    # not_started | running | succeeded | failed
    workflow_status = UnicodeAttribute(default="not_started")
    duration_ms = NumberAttribute(null=True)
    # {"key", "source": "client" | "analysis"}: where the peaks are (``functions.domain.catalog.waveforms``).
    # Tracks processed before the peaks moved to S3 hold them here ({"peaks", "sampleRateHz", ...}).
    waveform = JSONAttribute(null=True)
    audio = JSONAttribute(null=True)
    original_key = UnicodeAttribute(null=True)
    original_content_type = UnicodeAttribute(null=True)
    # One attribute per rendition, {"key", "contentType", "codec", "bitrateKbps", "byteSize"}: each
    # is made by its own workflow task, in parallel, and written alone (``rendition_map``).
    rendition_aac = JSONAttribute(null=True)
    rendition_opus = JSONAttribute(null=True)
    rendition_mp3 = JSONAttribute(null=True)
    # {"aac": {...}, "opus": {...}, "mp3": {...}}: the three at once, as one task made them for tracks
    # processed before each rendition had its own task (and by an execution started before then).
    renditions = JSONAttribute(null=True)
    loudness = JSONAttribute(null=True)
    # What the file's own tags say (the tags lane), whether or not it was applied.
    embedded_tags = JSONAttribute(null=True)
    # The image the artwork lane renders: {"key", "origin": "upload" | "embedded", "contentType"}.
    image_source = JSONAttribute(null=True)
    # {"origin", "width", "height", "variants": [{"size", "format", "key", "contentType", "byteSize"}]}
    artwork = JSONAttribute(null=True)
    # {"version", "dimensions", "analysedMs", "uploadId"} from the embeddings lane; the vector is in
    # its own item (``EmbeddingModel``, keyed by ``uploadId``). Tracks processed before it moved out
    # hold {"version", "dimensions", "vector", "analysedMs"}.
    embedding = JSONAttribute(null=True)
    # Documents stored with the track, by document id (the upload's asset id): {"fileName",
    # "contentType", "byteSize", "key", "uploadId", "createdAt"}. A map so that adding one is a
    # conditional write on its own id (at most MAX_DOCUMENTS: functions.domain.intake.media_uploads).
    documents: MapAttribute[str, Any] = MapAttribute(null=True)  # type: ignore[no-untyped-call]
    failure_code = UnicodeAttribute(null=True)
    failure_message = UnicodeAttribute(null=True)
    # The track's next original while it is uploaded and processed (``functions.domain.intake.versions``):
    # {"uploadId", "status": awaiting_upload | processing | failed, "createdAt", "fileName",
    # "contentType", "byteSize", "originalKey", "finalizedAt"?, "failure"?, "outputs": {attribute
    # name: JSON}}. Its lanes write their results into ``outputs`` (a raw map, so that each lane sets
    # its own path while the live attributes above stay untouched) until one UpdateItem swaps them in.
    pending_version: MapAttribute[str, Any] = MapAttribute(null=True)  # type: ignore[no-untyped-call]
    # The track's originals, oldest first, at most versions.MAX_HISTORY: [{"uploadId", "status":
    # live | replaced | failed, "createdAt", "durationMs", "replacedAt"?, "failure"?}].
    versions = JSONAttribute(null=True)
    created_at = UTCDateTimeAttribute(default=utcnow)
    updated_at = UTCDateTimeAttribute(default=utcnow)
    # DynamoDB TTL: a draft expires with its intent; finalize removes it.
    expires_at_epoch = _TTLAttribute(null=True)
    processing_shard = UnicodeAttribute(null=True)
    processing_since = UTCDateTimeAttribute(null=True)
    # The upload (an original or a new version) whose workflow waits for one of the owner's run
    # slots (``functions.domain.intake.run_queue``). While it is set the track is in the sweeper's
    # index, which hands the queue on should a hand-off be lost.
    queued_run = UnicodeAttribute(null=True)
    # The original's content checksum: its ``ContentClaimModel`` is released when the track goes.
    content_checksum = UnicodeAttribute(null=True)
    # A track of an upload session (the upload-session contract): its place among the session's
    # tracks in its album, a JSON list compared as a tuple
    # (``functions.domain.intake.sessions.order_key``). Finalize places the track by it
    # (``album_membership.place_track``) instead of appending, so the order does not depend on which upload
    # finished first.
    album_order = JSONAttribute(null=True)
    upload_session_id = UnicodeAttribute(null=True)
    by_owner = TracksByOwner()
    by_artist_listing = TracksListedByArtist()
    by_tag_reference = TaggedReferenceTracks()
    in_processing = TracksInProcessing()

    @property
    def track_id(self) -> str:
        return self.pk

    # The attribute each rendition format is stored in.
    RENDITION_ATTRIBUTES: ClassVar[dict[str, str]] = {
        "aac": "rendition_aac",
        "opus": "rendition_opus",
        "mp3": "rendition_mp3",
    }

    def rendition_map(self) -> dict[str, dict[str, Any]]:
        """Every rendition stored, by format: the per-format attributes, over the three-at-once map
        of a track processed before they existed."""
        merged = dict(self.renditions or {})
        for fmt, attribute in self.RENDITION_ATTRIBUTES.items():
            value = getattr(self, attribute)
            if value:
                merged[fmt] = value
        return merged


class LaneModel(_BoundModel):
    """One processing lane of a track (``pk=<trackId>, sk=lane#<name>``)."""

    class Meta(_Unbound):
        logical_name = "Tracks"
        settings_field = "tracks_table"
        shares_table_with = "TrackModel"

    pk = UnicodeAttribute(hash_key=True)
    sk = UnicodeAttribute(range_key=True)
    lane = UnicodeAttribute()
    # queued | running | succeeded | failed | skipped
    state = UnicodeAttribute(default="queued")
    attempts = NumberAttribute(default=0)
    message = UnicodeAttribute(null=True)
    code = UnicodeAttribute(null=True)
    outputs = JSONAttribute(null=True)
    started_at = UTCDateTimeAttribute(null=True)
    finished_at = UTCDateTimeAttribute(null=True)
    updated_at = UTCDateTimeAttribute(default=utcnow)

    @staticmethod
    def sort_key(lane: str) -> str:
        return f"lane#{lane}"


class TagEntryModel(_BoundModel):
    """A publicly listed track under one tag (``pk=tag#<tag>, sk=<createdAt>#<trackId>``), newest
    last, for ``GET /v1/tags/{tag}/tracks``. Written and removed with the track's ``listed_tags``
    in one transaction (``functions.domain.catalog.listing``). Its attributes avoid the names the Tracks
    indexes key on, so it never shows up in them."""

    class Meta(_Unbound):
        logical_name = "Tracks"
        settings_field = "tracks_table"
        shares_table_with = "TrackModel"

    pk = UnicodeAttribute(hash_key=True)
    sk = UnicodeAttribute(range_key=True)
    track_id = UnicodeAttribute()
    artist_id = UnicodeAttribute()

    @staticmethod
    def key(tag: str) -> str:
        return f"tag#{tag}"

    @staticmethod
    def sort_key(created_at: datetime, track_id: str) -> str:
        return f"{created_at.astimezone(UTC).strftime('%Y-%m-%dT%H:%M:%S.%fZ')}#{track_id}"


class EmbeddingModel(_BoundModel):
    """A track's sound-profile vector (``pk=<trackId>, sk=embedding#<uploadId>``), kept beside the
    track instead of on it: a hundred numbers the track item would otherwise carry through every
    later write and every index projecting it (docs/capacity.md). Keyed by the original it was
    computed from, so a new version's vector lands beside the live one and the promote only moves
    the track's pointer (``TrackModel.embedding["uploadId"]``). Written once, never updated; it
    sorts before the lane and track items, so the processing status never reads it. Its
    attributes avoid the names the Tracks indexes key on."""

    class Meta(_Unbound):
        logical_name = "Tracks"
        settings_field = "tracks_table"
        shares_table_with = "TrackModel"

    SK_PREFIX = "embedding#"

    pk = UnicodeAttribute(hash_key=True)
    sk = UnicodeAttribute(range_key=True)
    vector = JSONAttribute()

    @staticmethod
    def key(track_id: str, upload_id: str) -> tuple[str, str]:
        return track_id, f"{EmbeddingModel.SK_PREFIX}{upload_id}"


class ContentClaimModel(_BoundModel):
    """Which of an owner's tracks holds a given content (``pk=content#<ownerId>#<checksum>,
    sk=claim``): a second upload of the same bytes by the same owner is finalized as a duplicate
    of that track instead of being processed again. Claimed with a conditional put at finalize,
    released when the track is deleted. Its attributes avoid the names the Tracks indexes key on."""

    class Meta(_Unbound):
        logical_name = "Tracks"
        settings_field = "tracks_table"
        shares_table_with = "TrackModel"

    CLAIM_SK = "claim"

    pk = UnicodeAttribute(hash_key=True)
    sk = UnicodeAttribute(range_key=True)
    track_id = UnicodeAttribute()
    upload_id = UnicodeAttribute()

    @staticmethod
    def key(owner_id: str, checksum: str) -> tuple[str, str]:
        return f"content#{owner_id}#{checksum}", ContentClaimModel.CLAIM_SK


class UploadModel(_BoundModel):
    """An upload intent and, once finalized, the record of its asset."""

    class Meta(_Unbound):
        logical_name = "Uploads"
        settings_field = "uploads_table"

    upload_id = UnicodeAttribute(hash_key=True)
    owner_id = UnicodeAttribute()
    track_id = UnicodeAttribute()
    asset_id = UnicodeAttribute()
    intent = UnicodeAttribute(default="track_original")
    # An album cover intent (intent "album_cover") names its album here; ``track_id`` then holds
    # the album id too, so that every intent names the item its asset belongs to.
    album_id = UnicodeAttribute(null=True)
    object_key = UnicodeAttribute()
    file_name = UnicodeAttribute()
    content_type = UnicodeAttribute()
    byte_size = NumberAttribute()
    # pending -> finalized | rejected | duplicate | cancelled. "expired" is never written: a pending
    # intent past ``expires_at_epoch`` is expired (``functions.domain.intake.uploads.is_expired``) until
    # DynamoDB TTL deletes it, which can take days.
    status = UnicodeAttribute(default="pending")
    # The stored object's content checksum (``functions.domain.intake.duplicates.checksum``) and, for a
    # duplicate, the owner's track that already holds that content.
    content_checksum = UnicodeAttribute(null=True)
    duplicate_of = UnicodeAttribute(null=True)
    created_at = UTCDateTimeAttribute(default=utcnow)
    expires_at = UTCDateTimeAttribute()
    # DynamoDB TTL: set while pending, removed when the intent is finalized.
    expires_at_epoch = _TTLAttribute(null=True)
    finalized_at = UTCDateTimeAttribute(null=True)
    finalized_by = UnicodeAttribute(null=True)
    # When the first API finalize was answered "finalized" (see functions.domain.intake.finalize).
    acknowledged_at = UTCDateTimeAttribute(null=True)
    rejected_code = UnicodeAttribute(null=True)
    rejected_message = UnicodeAttribute(null=True)
    execution_arn = UnicodeAttribute(null=True)
    # Finalized while its artist's run slots were all taken: its workflow waits, unstarted, as a
    # ``QueuedRunModel`` until a slot frees (``functions.domain.intake.run_queue``), which removes this.
    run_queued_at = UTCDateTimeAttribute(null=True)
    # An intent signed without an exact size or type (the upload-session contract's tracks: the
    # track's PUT has no size, the cover's POST neither size nor type): ``{"maxBytes",
    # "contentTypes"?, "contentTypePrefix"?}``. Finalize takes the stored object's size and type
    # when they are within these bounds (``functions.domain.intake.sessions.settle``) and then
    # verifies as for any intent.
    declared_bounds = JSONAttribute(null=True)
    # A resumable upload (functions.domain.intake.uploads): S3's multipart UploadId and the plan the part
    # URLs were signed for (every part ``part_size`` bytes but the last). Absent for a single PUT.
    multipart_id = UnicodeAttribute(null=True)
    part_size = NumberAttribute(null=True)
    part_count = NumberAttribute(null=True)
    cancelled_at = UTCDateTimeAttribute(null=True)
    # The bytes this intent reserved of its owner's quota (its ``ReservationModel``); absent on
    # intents made before quotas (for images and documents: before they counted) existed.
    reserved_bytes = NumberAttribute(null=True)
    # True: the intent is one of its owner's ``UsageModel.pending_intents`` until its reservation is
    # settled or released (absent on intents made before that limit existed).
    counts_pending = BooleanAttribute(null=True)


class ProgressTokenModel(_BoundModel):
    """A short-lived credential for one upload's progress stream (``functions.domain.processing.progress``).
    EventSource cannot send an Authorization header, and the long-lived bearer must never appear in
    a URL, so the owner mints one of these and passes it as ``?token=``. Only the token's SHA-256 is
    stored: the table never holds a usable credential. It lives in the Uploads table beside the
    intent it is scoped to (``upload_id=progress-token#<sha256>``; the key attribute is the
    table's) and expires by its own ``expires_at`` at once, by DynamoDB TTL eventually."""

    class Meta(_Unbound):
        logical_name = "Uploads"
        settings_field = "uploads_table"
        shares_table_with = "UploadModel"

    PREFIX = "progress-token#"

    pk = UnicodeAttribute(hash_key=True, attr_name="upload_id")
    # The one upload (bare id) and the one user this token reads progress for.
    for_upload = UnicodeAttribute()
    owner_id = UnicodeAttribute()
    expires_at = UTCDateTimeAttribute()
    expires_at_epoch = _TTLAttribute()

    @staticmethod
    def key(token_sha256: str) -> str:
        return f"{ProgressTokenModel.PREFIX}{token_sha256}"


class UploadSessionModel(_BoundModel):
    """An upload session (the upload-session contract): a batch of track intents into one of the
    owner's albums (``functions.domain.intake.sessions``). It lives in the Uploads table beside its
    intents (``upload_id=upload-session#<uuid>``; the key attribute is the table's). ``tracks`` holds
    one compact JSON string per track intent, appended atomically and bounded, so one GetItem reads
    the whole session. It stops taking tracks at ``expires_at``; DynamoDB TTL removes it later."""

    class Meta(_Unbound):
        logical_name = "Uploads"
        settings_field = "uploads_table"
        shares_table_with = "UploadModel"

    PREFIX = "upload-session#"

    pk = UnicodeAttribute(hash_key=True, attr_name="upload_id")
    owner_id = UnicodeAttribute()
    collection_id = UnicodeAttribute()
    creator_id = UnicodeAttribute(null=True)
    organization_index = UnicodeAttribute(null=True)
    metadata = JSONAttribute(null=True)
    # {"trackId", "uploadId", "coverUploadId", "index", "organizationIndex", "fileName",
    # "metadata", "createdAt"} as JSON strings, oldest first.
    tracks = ListAttribute(of=UnicodeAttribute, null=True)
    created_at = UTCDateTimeAttribute(default=utcnow)
    expires_at = UTCDateTimeAttribute()
    expires_at_epoch = _TTLAttribute()

    @staticmethod
    def key(session_id: str) -> str:
        return f"{UploadSessionModel.PREFIX}{session_id}"


class AlbumsByOwner(GlobalSecondaryIndex["AlbumModel"]):  # type: ignore[no-untyped-call]
    """An artist's albums, oldest first. Sparse: slug and member items carry no owner."""

    class Meta:
        index_name = "by_owner"
        projection = AllProjection()

    owner_id = UnicodeAttribute(hash_key=True)
    created_at = UTCDateTimeAttribute(range_key=True)


class AlbumsListed(GlobalSecondaryIndex["AlbumModel"]):  # type: ignore[no-untyped-call]
    """Every album, newest first, for ``GET /v1/albums``, in ``LISTING_SHARDS`` partitions
    (``listed = album#<n>``, chosen from the album id; albums created before the shards keep
    ``listed = album``, one more partition that no new album lands in). Keys only: an album is
    created and deleted rarely and its other writes (every track joining it) change no key, so they
    never reach the index; the listing reads the page's albums with one BatchGetItem. It replaced
    ``by_listing`` (the same keys, every attribute projected), which a deployment migrating across
    still reads (``Meta.replaces``, docs/migrations.md)."""

    class Meta:
        index_name = "by_listing_v2"
        replaces = "by_listing"
        projection = KeysOnlyProjection()

    listed = UnicodeAttribute(hash_key=True)
    created_at = UTCDateTimeAttribute(range_key=True)


class AlbumModel(_BoundModel):
    """An album (``pk=<albumId>, sk=album``). Its tracks are ``AlbumMemberModel`` items in the same
    partition; the album counts them (``track_count``, which bounds the album in the same
    transaction as each join) and ``revision`` grows with every change to the album or its track
    list (the ETag). Albums written before the member items hold their order in ``track_ids``
    until their first membership change moves it into member items
    (``functions.domain.catalog.album_membership``)."""

    class Meta(_Unbound):
        logical_name = "Albums"
        settings_field = "albums_table"
        # Domain events are read from this stream (functions.events).
        stream_view_type = "NEW_AND_OLD_IMAGES"

    ALBUM_SK = "album"
    # The listing partition of the albums created before the shards.
    LISTED = "album"
    LISTING_SHARDS = 4

    pk = UnicodeAttribute(hash_key=True)
    sk = UnicodeAttribute(range_key=True)
    owner_id = UnicodeAttribute()
    title = UnicodeAttribute()
    slug = UnicodeAttribute()
    # Every slug this album holds a claim on (the current one and those it was renamed away from):
    # claims are keyed by slug, so without this list deleting the album could not find them.
    slugs = UnicodeSetAttribute(null=True)
    description = UnicodeAttribute(null=True)
    # How many member items the album has; absent on an album that still holds ``track_ids``.
    track_count = NumberAttribute(null=True)
    # Grows with every change of the track list (a join, a removal, a reorder), so that a stream
    # record tells a track-list change from other album writes.
    track_list_revision = NumberAttribute(null=True)
    # A reorder writes each member's new place beside its old one, tagged with its own token, then
    # makes it the order by setting ``order_generation`` to that token, in one write. While it runs
    # it holds the album (``reordering``, the token, until ``reordering_until``, epoch seconds).
    order_generation = UnicodeAttribute(null=True)
    reordering = UnicodeAttribute(null=True)
    reordering_until = NumberAttribute(null=True)
    # Legacy: the whole track order and the session order keys ({trackId: key}) of an album
    # written before member items; removed when the album's first membership change migrates it.
    track_ids = ListAttribute(of=UnicodeAttribute, null=True)
    track_order_keys = JSONAttribute(null=True)
    # {"key", "origin", "contentType"} of the cover image and the rendered variants, as on tracks.
    image_source = JSONAttribute(null=True)
    artwork = JSONAttribute(null=True)
    listed = UnicodeAttribute(null=True)
    revision = NumberAttribute(default=1)
    created_at = UTCDateTimeAttribute(default=utcnow)
    updated_at = UTCDateTimeAttribute(default=utcnow)
    by_owner = AlbumsByOwner()
    by_listing = AlbumsListed()

    @property
    def album_id(self) -> str:
        return self.pk

    @staticmethod
    def listing_shard(album_id: str) -> str:
        """The by_listing partition of a new album: spread by its id, stable for its lifetime."""
        return (
            f"{AlbumModel.LISTED}#{int(hashlib.sha256(album_id.encode()).hexdigest(), 16) % AlbumModel.LISTING_SHARDS}"
        )

    @staticmethod
    def listing_partitions() -> list[str]:
        """Every partition of the listing: the shards and the one of albums created before them."""
        return [AlbumModel.LISTED, *(f"{AlbumModel.LISTED}#{n}" for n in range(AlbumModel.LISTING_SHARDS))]


class AlbumMemberModel(_BoundModel):
    """One track of an album (``pk=<albumId>, sk=member#<trackId>``), in the album's partition.
    Keyed by track, so joining twice is one conditional put and leaving is one delete; the order is
    the members' positions (ties broken by track id): one Query reads the album's members (at most
    ``album_membership.MAX_TRACKS`` small items, one page) and they are sorted by it. A reorder
    changes positions, never keys, so a reader never sees a track twice. Its attributes avoid the
    names the Albums indexes key on, so it never shows up in them."""

    class Meta(_Unbound):
        logical_name = "Albums"
        settings_field = "albums_table"
        shares_table_with = "AlbumModel"

    PREFIX = "member#"

    pk = UnicodeAttribute(hash_key=True)
    sk = UnicodeAttribute(range_key=True)
    position = NumberAttribute()
    # The place a reorder gave the member, which is its position once the album's
    # ``order_generation`` is ``reorder_generation`` (``album_membership.members``).
    reorder_position = NumberAttribute(null=True)
    reorder_generation = UnicodeAttribute(null=True)
    # An upload-session track's order key (``functions.domain.intake.sessions.order_key``), which
    # ``album_membership.place_track`` inserts by; absent for a track added without one.
    order_key = JSONAttribute(null=True)

    @staticmethod
    def sort_key(track_id: str) -> str:
        return f"{AlbumMemberModel.PREFIX}{track_id}"

    @property
    def track_id(self) -> str:
        return self.sk.removeprefix(self.PREFIX)


class AlbumSlugModel(_BoundModel):
    """Claims an album slug per artist (``pk=slug#<ownerId>#<slug>, sk=slug``), so a transaction
    keeps slugs unique. A slug the album was renamed away from stays, with ``current`` false, and
    answers 301 to the album's current slug."""

    class Meta(_Unbound):
        logical_name = "Albums"
        settings_field = "albums_table"
        shares_table_with = "AlbumModel"

    SLUG_SK = "slug"

    pk = UnicodeAttribute(hash_key=True)
    sk = UnicodeAttribute(range_key=True)
    album_id = UnicodeAttribute()
    current = BooleanAttribute(default=True)

    @staticmethod
    def key(owner_id: str, slug: str) -> str:
        return f"slug#{owner_id}#{slug}"


class SupporterModel(_BoundModel):
    """A supporter of an artist (``pk=artist#<artistId>, sk=supporter#<userId>``), granted by the
    artist: support-gated tracks stream to the owner and these users only. It shares the artist's
    partition, so one Query lists them and one GetItem checks one."""

    class Meta(_Unbound):
        logical_name = "Artists"
        settings_field = "artists_table"
        shares_table_with = "ArtistModel"

    pk = UnicodeAttribute(hash_key=True)
    sk = UnicodeAttribute(range_key=True)
    supporter_id = UnicodeAttribute()
    created_at = UTCDateTimeAttribute(default=utcnow)

    PREFIX = "supporter#"

    @staticmethod
    def key(artist_id: str, supporter_id: str) -> tuple[str, str]:
        return ArtistModel.profile_key(artist_id)[0], f"{SupporterModel.PREFIX}{supporter_id}"


class EntitlementModel(_BoundModel):
    """An explicit upload grant or revocation; absence means the configured default policy."""

    class Meta(_Unbound):
        logical_name = "Entitlements"
        settings_field = "entitlements_table"

    user_id = UnicodeAttribute(hash_key=True)
    allowed = BooleanAttribute()
    reason = UnicodeAttribute(null=True)
    updated_by = UnicodeAttribute(null=True)
    updated_at = UTCDateTimeAttribute(default=utcnow)


class IdempotencyRecordModel(_BoundModel):
    """One ``Idempotency-Key`` of one caller on one route (``functions.api.idempotency``).

    powertools' ``DynamoDBPersistenceLayer`` reads and writes these items itself, with its default
    attribute names; this model only declares the table so the local stack and CDK create it from
    here like every other table, and it must keep those names. ``expiration`` is the TTL (epoch
    seconds); until DynamoDB removes an expired item, powertools' conditional put treats it as absent.
    """

    class Meta(_Unbound):
        logical_name = "Idempotency"
        settings_field = "idempotency_table"

    # "api#<sha256 of caller, method, path and key>"
    id = UnicodeAttribute(hash_key=True)
    expiration = _TTLAttribute(null=True)
    # INPROGRESS | COMPLETED
    status = UnicodeAttribute(null=True)
    # The stored response (JSON: status, headers, body) of a COMPLETED record.
    data = UnicodeAttribute(null=True)
    # Hash of the request fingerprint: a different body under the same key is refused.
    validation = UnicodeAttribute(null=True)
    # Epoch milliseconds after which an INPROGRESS record may be taken over (its request died).
    in_progress_expiration = NumberAttribute(null=True)


ALL_MODELS: tuple[type[Model], ...] = (
    ArtistModel,
    SupporterModel,
    UsageModel,
    ReservationModel,
    TrackUsageModel,
    MediaUsageModel,
    RunsModel,
    RunSlotModel,
    QueuedRunModel,
    RateBucketModel,
    TrackModel,
    LaneModel,
    TagEntryModel,
    ContentClaimModel,
    EmbeddingModel,
    UploadModel,
    ProgressTokenModel,
    UploadSessionModel,
    AlbumModel,
    AlbumMemberModel,
    AlbumSlugModel,
    EntitlementModel,
    IdempotencyRecordModel,
)
# One model per physical table (the others share it); the local stack creates tables from these.
TABLE_MODELS: tuple[type[Model], ...] = tuple(
    model for model in ALL_MODELS if not getattr(model.Meta, "shares_table_with", None)
)


class _Binding:
    """What the models point at, and the ``settings()`` in force when they were bound: a new
    settings object (after ``settings.cache_clear()``) rebinds them on their next use."""

    bound_to: Settings | None = None
    while_current: Settings | None = None
    connection: Connection | None = None


@cache
def _service_model_loader() -> botocore.loaders.Loader:
    return botocore.loaders.create_loader()


def _session_sharing_service_models(env_vars: dict[str, Any] | None = None) -> botocore.session.Session:
    """pynamodb makes a botocore session per connection and thread; each would parse the DynamoDB
    service model again (~0.3 s: a cold-start and per-thread cost). They share one loader instead."""
    session = botocore.session.get_session(env_vars)
    session.register_component("data_loader", _service_model_loader())
    return session


def bind(current: Settings | None = None) -> None:
    """Point every model at its table (name, region, endpoint): from ``current`` (the local stack
    provisioning another endpoint) or from settings. Models bind themselves on first use, so only
    code that targets other settings calls this."""
    pynamodb.connection.base.get_session = _session_sharing_service_models  # type: ignore[attr-defined]
    in_force = settings()
    current = current or in_force
    for model in ALL_MODELS:
        meta: Any = model.Meta
        meta.table_name = getattr(current, meta.settings_field)
        meta.region = current.region
        meta.host = current.aws_endpoint_url
        model._connection = None
        for index in model._indexes.values():
            _name_index(index.Meta, read_replaced=current.read_replaced_indexes)
    # pynamodb counts retries, botocore attempts (functions.clients.sdk_retries).
    _Binding.connection = Connection(
        region=current.region, host=current.aws_endpoint_url, max_retry_attempts=current.sdk_max_attempts - 1
    )
    _Binding.bound_to = current
    _Binding.while_current = in_force


def _name_index(meta: Any, *, read_replaced: bool) -> None:
    """Queries an index that replaced another (``Meta.replaces``) under its old name while the
    deployment still migrates across (``read_replaced_indexes``): the new one may be backfilling."""
    replaces = getattr(meta, "replaces", None)
    if replaces is None:
        return
    if "declared_name" not in vars(meta):
        meta.declared_name = meta.index_name
    meta.index_name = replaces if read_replaced else meta.declared_name


def ensure_bound() -> None:
    if _Binding.while_current is not settings():
        bind()


def shared_connection() -> Connection:
    """The pynamodb Connection whose botocore client every model and transaction uses."""
    ensure_bound()
    assert _Binding.connection is not None
    return _Binding.connection

"""Domain events: which stream record is which event (``functions.events.mapping``), and how the
handler publishes them (one PutEvents entry per event; a refused entry fails its record and the
records after it, so Lambda redelivers them). Items are built with the real pynamodb models and
serialized as DynamoDB writes them, so the images have the stream's exact shape."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime
from itertools import count
from typing import Any

import pytest
from aws_lambda_powertools.utilities.batch.exceptions import BatchProcessingError
from boto3.dynamodb.types import TypeDeserializer
from pynamodb.models import Model

from functions import clients, ids
from functions.data.models import AlbumMemberModel, AlbumModel, AlbumSlugModel, LaneModel, TagEntryModel, TrackModel
from functions.events import mapping, publish
from functions.events.mapping import Change, domain_event
from functions.handlers import domain_events
from local.lambda_context import LocalLambdaContext

TRACK_ID = ids.new_id()
ALBUM_ID = ids.new_id()
OWNER = "alice"
WHEN = datetime(2025, 3, 1, 12, 30, 5, tzinfo=UTC)
_sequence = count(1000)


def track(**attributes: Any) -> dict[str, Any]:
    """A track item as DynamoDB stores it (draft by default, as the upload intent writes it)."""
    values = {"owner_id": OWNER, "upload_id": ids.new_id(), "title": "night-drive", "title_source": "file_name"}
    return _item(TrackModel(TRACK_ID, TrackModel.TRACK_SK, **{**values, **attributes}))


def album(**attributes: Any) -> dict[str, Any]:
    values = {"owner_id": OWNER, "title": "Night Drive", "slug": "night-drive"}
    return _item(AlbumModel(ALBUM_ID, AlbumModel.ALBUM_SK, **{**values, **attributes}))


def _item(model: Model) -> dict[str, Any]:
    return dict(model.serialize())


def changed(item: dict[str, Any], **attributes: Any) -> dict[str, Any]:
    """``item`` after an UpdateItem: ``None`` removes an attribute."""
    model_class = TrackModel if item["sk"]["S"] == TrackModel.TRACK_SK else AlbumModel
    model = model_class.from_raw_data(item)
    for name, value in attributes.items():
        setattr(model, name, value)
    return _item(model)


def plain(item: dict[str, Any] | None) -> dict[str, Any]:
    """The image as the handler sees it (powertools deserializes it the same way)."""
    deserializer = TypeDeserializer()
    return {name: deserializer.deserialize(value) for name, value in (item or {}).items()}


def change(old: dict[str, Any] | None, new: dict[str, Any] | None, *, event_id: str = "evt-1") -> Change:
    name: mapping.EventName = "INSERT" if old is None else "REMOVE" if new is None else "MODIFY"
    return Change(event_id=event_id, name=name, occurred_at=WHEN, old=plain(old), new=plain(new))


def event_of(old: dict[str, Any] | None, new: dict[str, Any] | None) -> mapping.DomainEvent | None:
    return domain_event(change(old, new))


def type_of(old: dict[str, Any] | None, new: dict[str, Any] | None) -> str | None:
    found = event_of(old, new)
    return found.type if found else None


DRAFT = track()
PROCESSING = changed(DRAFT, status="processing", workflow_status="running", processing_shard="3")
READY = changed(PROCESSING, status="ready", workflow_status="succeeded", processing_shard=None)


# --- tracks: lifecycle ------------------------------------------------------------------------------


def test_a_draft_emits_nothing_created_edited_or_expired() -> None:
    # The intent writes the draft, a PATCH edits it, TTL removes it when the intent is abandoned.
    edited = changed(DRAFT, title="Night Drive", title_source="uploader", tags=["synth"])
    assert type_of(None, DRAFT) is None
    assert type_of(DRAFT, edited) is None
    assert type_of(edited, None) is None


def test_leaving_draft_at_finalize_is_track_created() -> None:
    draft_in_album = changed(DRAFT, album_id=ALBUM_ID, album="Night Drive")
    finalized = changed(draft_in_album, status="processing", workflow_status="running", duration_ms=5000)
    created = event_of(draft_in_album, finalized)
    assert created is not None
    assert created.detail == {
        "eventId": "evt-1",
        "type": "track.created",
        "occurredAt": "2025-03-01T12:30:05.000Z",
        "trackId": f"trk_{TRACK_ID}",
        "ownerId": OWNER,
        "albumId": f"alb_{ALBUM_ID}",
        "title": "night-drive",
        "status": "processing",
    }
    assert (created.type, created.event_id, created.occurred_at) == ("track.created", "evt-1", WHEN)


def test_the_workflow_succeeding_is_track_processed_and_becoming_playable_before_it_is_not() -> None:
    playable = changed(PROCESSING, status="ready")  # mark_playable: optional lanes still running
    assert type_of(PROCESSING, playable) is None
    processed = event_of(playable, changed(playable, workflow_status="succeeded", processing_shard=None))
    assert processed is not None and processed.type == "track.processed"
    assert processed.detail["status"] == "ready"


def test_a_promoted_version_is_track_processed_and_its_progress_is_not() -> None:
    """A new original (functions.domain.intake.versions) runs while the old one stays live; only the
    write that swaps it in is an event."""
    version = ids.new_id()
    pending = {"uploadId": version, "status": "processing", "outputs": {}}
    running = changed(READY, pending_version=pending)
    lane_wrote = changed(running, pending_version={**pending, "outputs": {"duration_ms": "5000"}})
    assert type_of(READY, running) is None
    assert type_of(running, lane_wrote) is None
    promoted = event_of(lane_wrote, changed(lane_wrote, upload_id=version, duration_ms=5000, pending_version=None))
    assert promoted is not None and promoted.type == "track.processed"
    assert promoted.detail["versionUploadId"] == ids.render("upl", version)
    failed = changed(lane_wrote, pending_version={**pending, "status": "failed"})
    assert type_of(lane_wrote, failed) is None


def test_tags_the_autotag_lane_appends_before_the_verdict_are_not_an_edit() -> None:
    running = changed(PROCESSING, tags=["mine"], auto_tag=True)
    assert type_of(running, changed(running, tags=["mine", "ambient"])) is None
    # The artist replacing tags meanwhile is an edit, and so is anything after the verdict.
    assert type_of(running, changed(running, tags=["other"])) == "track.updated"
    done = changed(running, status="ready", workflow_status="succeeded", processing_shard=None)
    assert type_of(done, changed(done, tags=["mine", "ambient"])) == "track.updated"


def test_a_failure_verdict_is_track_failed_with_its_code() -> None:
    failed = changed(PROCESSING, status="failed", workflow_status="failed", failure_code="audio_unreadable")
    found = event_of(PROCESSING, failed)
    assert found is not None and found.type == "track.failed"
    assert (found.detail["status"], found.detail["failureCode"]) == ("failed", "audio_unreadable")


def test_removing_a_track_is_track_deleted_from_its_last_image() -> None:
    deleted = event_of(READY, None)
    assert deleted is not None and deleted.type == "track.deleted"
    assert (deleted.detail["trackId"], deleted.detail["ownerId"], deleted.detail["status"]) == (
        f"trk_{TRACK_ID}",
        OWNER,
        "ready",
    )
    # Deleted while it was being processed: it existed, so it is an event too.
    assert type_of(PROCESSING, None) == "track.deleted"


# --- tracks: what is an update ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("edit", "names"),
    [
        ({"title": "Night Drive", "title_source": "uploader"}, ["title"]),
        ({"album_id": ALBUM_ID, "album": "Night Drive"}, ["album", "albumId"]),
        ({"features": ["bob"], "tags": ["synth", "night"]}, ["features", "tags"]),
        ({"description": "Recorded at night.", "support_gate": {"tier": "supporters"}}, ["description", "supportGate"]),
        ({"visibility": "unlisted"}, ["visibility"]),
        ({"documents": {"doc-1": {"fileName": "lyrics.pdf", "key": "uploads/doc-1"}}}, ["documents"]),
    ],
)
def test_an_owners_edit_is_track_updated_naming_the_fields(edit: dict[str, Any], names: list[str]) -> None:
    for before in (PROCESSING, READY):
        found = event_of(before, changed(before, **edit, updated_at=datetime.now(UTC)))
        assert found is not None and found.type == "track.updated"
        assert found.detail["changed"] == names


def test_removing_the_artwork_is_an_update_even_while_processing() -> None:
    rendered = {"origin": "upload", "width": 1400, "height": 1400, "variants": []}
    for before in (changed(PROCESSING, artwork=rendered), changed(READY, artwork=rendered)):
        assert event_of(before, changed(before, artwork=None, image_source=None)).detail["changed"] == ["artwork"]  # type: ignore[union-attr]


@pytest.mark.parametrize(
    "bookkeeping",
    [
        {"updated_at": datetime(2030, 1, 1, tzinfo=UTC)},
        {"processing_since": datetime(2030, 1, 1, tzinfo=UTC)},
        {"processing_shard": None, "processing_since": None},
        {"audio": {"codec": "pcm_s16le"}, "duration_ms": 5000},
        {"renditions": {"aac": {"key": f"tracks/{TRACK_ID}/aac.m4a"}}},
        {"waveform": {"source": "analysis", "key": f"tracks/{TRACK_ID}/waveform.json"}},
        {"loudness": {"integratedLufs": -14.2}},
        {"embedding": {"version": 1, "vector": [0.1]}},
        {"embedded_tags": {"title": "From The File"}},
        {"image_source": {"key": f"tracks/{TRACK_ID}/cover", "origin": "embedded"}},
        {"listed_owner": OWNER, "listed_tags": ["synth"]},
    ],
)
def test_bookkeeping_is_never_an_update(bookkeeping: dict[str, Any]) -> None:
    for before in (PROCESSING, READY):
        assert type_of(before, changed(before, **bookkeeping)) is None


@pytest.mark.parametrize(
    "lane_write",
    [
        {"title": "Title From Tags", "title_source": "tags"},
        {"album": "Album From Tags"},
        {"genre": "Synthwave"},
        {"year": 1986},
        {"track_number": 4},
        {"artwork": {"origin": "embedded", "width": 600, "height": 600, "variants": []}},
    ],
)
def test_what_lanes_fill_in_is_reported_by_track_processed_not_as_updates(lane_write: dict[str, Any]) -> None:
    """The tags and artwork lanes write before the verdict; track.processed follows them."""
    assert type_of(PROCESSING, changed(PROCESSING, **lane_write)) is None
    # ... including a lane that finishes beside a required lane that failed the track.
    failed = changed(PROCESSING, status="failed", workflow_status="failed")
    assert type_of(failed, changed(failed, **lane_write)) is None


def test_after_success_the_same_shapes_are_the_owners_edits() -> None:
    """No lane writes after the workflow succeeded, so a change of that shape is an edit."""
    assert type_of(READY, changed(READY, genre="Synthwave")) == "track.updated"
    assert type_of(READY, changed(READY, album="Standalone Name")) == "track.updated"


def test_an_edit_racing_a_lane_is_still_reported() -> None:
    # A PATCH of the album while the tags lane runs moves album_id with the name: not a fill.
    moved = changed(PROCESSING, album_id=ALBUM_ID, album="Night Drive")
    assert event_of(PROCESSING, moved).detail["changed"] == ["album", "albumId"]  # type: ignore[union-attr]
    # The owner's title replaces the file's title (the tags lane had filled it).
    tagged = changed(PROCESSING, title="Title From Tags", title_source="tags")
    assert type_of(tagged, changed(tagged, title="Mine", title_source="uploader")) == "track.updated"


def test_the_watched_attributes_exist_on_the_models() -> None:
    """A renamed model attribute must not silently stop producing updates."""
    assert set(mapping.TRACK_METADATA) <= set(TrackModel.get_attributes())
    assert "visibility" in mapping.TRACK_METADATA
    assert set(mapping.ALBUM_FIELDS) <= set(AlbumModel.get_attributes())


# --- items that are not tracks or albums ----------------------------------------------------------


def test_lane_items_tag_entries_slug_claims_and_album_members_are_ignored() -> None:
    lane = _item(LaneModel(TRACK_ID, LaneModel.sort_key("transcode"), lane="transcode", state="queued"))
    entry = _item(
        TagEntryModel(
            TagEntryModel.key("synth"), TagEntryModel.sort_key(WHEN, TRACK_ID), track_id=TRACK_ID, artist_id=OWNER
        )
    )
    claim = _item(AlbumSlugModel(AlbumSlugModel.key(OWNER, "night-drive"), AlbumSlugModel.SLUG_SK, album_id=ALBUM_ID))
    member = _item(AlbumMemberModel(ALBUM_ID, AlbumMemberModel.sort_key(TRACK_ID), position=1, order_key=["1"]))
    assert type_of(member, {**member, "position": {"N": "2"}}) is None
    for item in (lane, entry, claim, member):
        assert type_of(None, item) is None
        assert type_of(item, None) is None
    assert type_of(lane, {**lane, "state": {"S": "succeeded"}}) is None


# --- albums -----------------------------------------------------------------------------------------


def test_album_created_updated_when_its_revision_moves_and_deleted() -> None:
    created = album()
    found = event_of(None, created)
    assert found is not None and found.detail == {
        "eventId": "evt-1",
        "type": "album.created",
        "occurredAt": "2025-03-01T12:30:05.000Z",
        "albumId": f"alb_{ALBUM_ID}",
        "ownerId": OWNER,
        "title": "Night Drive",
        "slug": "night-drive",
        "revision": 1,
        "trackCount": 0,
    }
    joined = changed(created, track_ids=[TRACK_ID], revision=2)
    updated = event_of(created, joined)
    assert updated is not None and updated.type == "album.updated"
    assert (updated.detail["changed"], updated.detail["trackCount"], updated.detail["revision"]) == (["tracks"], 1, 2)
    renamed = changed(joined, title="Night Drive II", slug="night-drive-ii", revision=3)
    assert event_of(joined, renamed).detail["changed"] == ["slug", "title"]  # type: ignore[union-attr]
    # A write that did not move the revision is no change of the album (e.g. bookkeeping).
    assert type_of(renamed, changed(renamed, updated_at=datetime(2030, 1, 1, tzinfo=UTC))) is None
    assert type_of(renamed, None) == "album.deleted"


def test_a_track_list_change_of_an_album_with_member_items_is_an_update_of_its_tracks() -> None:
    created = album(track_count=0, revision=1)
    joined = changed(created, track_count=1, track_list_revision=1, revision=2)
    updated = event_of(created, joined)
    assert updated is not None and updated.type == "album.updated"
    assert (updated.detail["changed"], updated.detail["trackCount"], updated.detail["revision"]) == (["tracks"], 1, 2)
    # A reorder: the count stays, the track list changed
    reordered = changed(joined, track_list_revision=2, revision=3)
    assert event_of(joined, reordered).detail["changed"] == ["tracks"]  # type: ignore[union-attr]
    # Moving an old album's list into member items changes no revision: no event
    legacy = album(track_ids=[TRACK_ID], revision=4)
    assert type_of(legacy, changed(legacy, track_ids=None, track_count=1)) is None
    # What an older version appended while a deployment replaced the functions counts too
    appended = changed(reordered, track_ids=["appended-the-old-way"], revision=4)
    assert event_of(reordered, appended).detail["trackCount"] == 2  # type: ignore[union-attr]


def test_details_carry_no_storage_keys() -> None:
    stored = changed(
        READY,
        original_key=f"uploads/{TRACK_ID}/original.wav",
        renditions={"mp3": {"key": f"tracks/{TRACK_ID}/mp3.mp3"}},
        artwork={"variants": [{"key": f"tracks/{TRACK_ID}/art/600.webp"}]},
    )
    for old, new in (
        (PROCESSING, stored),
        (stored, changed(stored, title="New", title_source="uploader")),
        (stored, None),
    ):
        found = event_of(old, new)
        assert found is not None
        text = json.dumps(found.detail)
        assert "uploads/" not in text and "tracks/" not in text


# --- the handler ------------------------------------------------------------------------------------


class FakeBus:
    """Stands in for EventBridge: records every PutEvents entry; refuses the entries whose
    DetailType is in ``refuse``."""

    def __init__(self, refuse: tuple[str, ...] = ()) -> None:
        self.entries: list[dict[str, Any]] = []
        self.refuse = refuse

    def put_events(self, Entries: list[dict[str, Any]]) -> dict[str, Any]:  # noqa: N803 - boto3's name
        answers: list[dict[str, Any]] = []
        for entry in Entries:
            if entry["DetailType"] in self.refuse:
                answers.append({"ErrorCode": "InternalFailure", "ErrorMessage": "try again"})
            else:
                self.entries.append(entry)
                answers.append({"EventId": f"eb-{len(self.entries)}"})
        return {"FailedEntryCount": sum("ErrorCode" in a for a in answers), "Entries": answers}


@pytest.fixture
def bus(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeBus]:
    monkeypatch.setenv("TRACKLANE_EVENT_BUS_NAME", "test-bus")
    clients.reset()
    fake = FakeBus()
    monkeypatch.setattr(clients, "events", lambda: fake)
    yield fake
    monkeypatch.undo()  # the real client function back before its cache is cleared
    clients.reset()


def stream_record(old: dict[str, Any] | None, new: dict[str, Any] | None, event_id: str) -> dict[str, Any]:
    """A record as Lambda delivers it from a NEW_AND_OLD_IMAGES stream."""
    image = new or old
    assert image is not None
    stream: dict[str, Any] = {
        "ApproximateCreationDateTime": int(WHEN.timestamp()),
        "Keys": {"pk": image["pk"], "sk": image["sk"]},
        "SequenceNumber": str(next(_sequence)),
        "SizeBytes": 100,
        "StreamViewType": "NEW_AND_OLD_IMAGES",
    }
    if old is not None:
        stream["OldImage"] = old
    if new is not None:
        stream["NewImage"] = new
    return {
        "eventID": event_id,
        "eventName": "INSERT" if old is None else "REMOVE" if new is None else "MODIFY",
        "eventVersion": "1.1",
        "eventSource": "aws:dynamodb",
        "awsRegion": "us-east-1",
        "dynamodb": stream,
        "eventSourceARN": "arn:aws:dynamodb:us-east-1:123456789012:table/tracks/stream/2025-01-01T00:00:00.000",
    }


def invoke(*records: dict[str, Any]) -> dict[str, Any]:
    return dict(domain_events.handler({"Records": list(records)}, LocalLambdaContext("tracklane-domain-events")))


def test_one_entry_per_event_identified_by_its_stream_record(bus: FakeBus) -> None:
    lane = _item(LaneModel(TRACK_ID, LaneModel.sort_key("probe"), lane="probe"))
    answer = invoke(
        stream_record(None, DRAFT, "r-draft"),
        stream_record(None, lane, "r-lane"),
        stream_record(DRAFT, PROCESSING, "r-finalize"),
        stream_record(PROCESSING, changed(PROCESSING, renditions={"aac": {}}), "r-renditions"),
        stream_record(PROCESSING, READY, "r-verdict"),
    )
    assert answer == {"batchItemFailures": []}
    assert [(e["DetailType"], json.loads(e["Detail"])["eventId"]) for e in bus.entries] == [
        ("track.created", "r-finalize"),
        ("track.processed", "r-verdict"),
    ]
    first = bus.entries[0]
    assert (first["Source"], first["EventBusName"], first["Time"]) == (publish.SOURCE, "test-bus", WHEN)


def test_a_redelivered_record_publishes_the_same_event_again(bus: FakeBus) -> None:
    """At least once: a consumer drops the repeat by its eventId."""
    record = stream_record(PROCESSING, READY, "r-verdict")
    invoke(record)
    invoke(record)
    assert len(bus.entries) == 2 and bus.entries[0] == bus.entries[1]


def test_a_refused_entry_fails_its_record_and_leaves_the_later_ones_to_the_retry(bus: FakeBus) -> None:
    bus.refuse = ("track.processed",)
    created = stream_record(DRAFT, PROCESSING, "r-created")
    processed = stream_record(PROCESSING, READY, "r-processed")
    deleted = stream_record(READY, None, "r-deleted")
    answer = invoke(created, processed, deleted)
    failed = [item["itemIdentifier"] for item in answer["batchItemFailures"]]
    # Lambda resumes the shard at the first failed record; the one after it was not published yet,
    # so the retry publishes it once.
    assert failed == [processed["dynamodb"]["SequenceNumber"], deleted["dynamodb"]["SequenceNumber"]]
    assert [e["DetailType"] for e in bus.entries] == ["track.created"]
    bus.refuse = ()
    assert invoke(processed, deleted) == {"batchItemFailures": []}
    assert [e["DetailType"] for e in bus.entries] == ["track.created", "track.processed", "track.deleted"]


def test_a_batch_whose_every_record_fails_fails_the_invocation(bus: FakeBus) -> None:
    bus.refuse = ("track.created",)
    with pytest.raises(BatchProcessingError):
        invoke(stream_record(DRAFT, PROCESSING, "r-created"))
    assert bus.entries == []


def test_the_handler_loads_without_fastapi_or_the_media_layer() -> None:
    script = (
        "import json, sys; import functions.handlers.domain_events; "
        "print(json.dumps(sorted(m for m in ('fastapi', 'numpy', 'PIL', 'mutagen') if m in sys.modules)))"
    )
    output = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True).stdout
    assert json.loads(output) == []

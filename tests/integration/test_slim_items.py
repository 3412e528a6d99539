"""Slim track items (issue 18, docs/capacity.md): the waveform's peaks live in S3 and the embedding's
vector in an item of its own, while the track keeps pointers; readers still take tracks written
before, with both inline. Against moto, through the API and the workflow."""

from __future__ import annotations

from functions import ids
from functions.data import keys, storage
from functions.data.models import EmbeddingModel, TrackModel
from functions.domain.catalog import embeddings, waveforms

from .conftest import as_user
from .test_finalize import finalize_call
from .test_workflow import processed, upload_and_finalize


def _track_item(track_id: str) -> TrackModel:
    return TrackModel.get(ids.parse("trk", track_id), TrackModel.TRACK_SK, consistent_read=True)


def test_a_clients_peaks_are_stored_in_s3_and_served_as_before(stack, artist, wav_3s):
    upload = stack.create_upload(artist, wav_3s)
    stack.put(upload["signedUrl"], wav_3s, content_type="audio/wav")
    peaks = [round(i / 63, 3) for i in range(64)]
    finalize_call(stack, upload, waveform={"peaks": peaks, "sampleRateHz": 48000, "channels": 2})

    item = _track_item(upload["trackId"])
    track_id, upload_id = item.track_id, ids.parse("upl", upload["uploadId"])
    assert item.waveform == {"key": keys.client_waveform(track_id, upload_id), "source": "client"}
    stored = storage.get_json(item.waveform["key"])
    assert isinstance(stored, storage.JsonObject)
    assert stored.document == {"64": {"peaks": peaks, "sampleRateHz": 48000, "channels": 2}}
    track = stack.api.get(f"/v1/tracks/{upload['trackId']}", headers=as_user(artist)).json()
    assert track["waveform"] == {"peaks": peaks, "sampleRateHz": 48000, "channels": 2, "source": "client"}


def test_processing_keeps_pointers_on_the_track_and_the_data_beside_it(stack, artist, runner, wav_3s):
    upload = upload_and_finalize(stack, artist, wav_3s)
    assert processed(stack, artist, upload)["status"] == "ready"

    item = _track_item(upload["trackId"])
    assert item.waveform == {"key": keys.waveform(item.track_id), "source": "analysis"}
    assert "vector" not in item.embedding
    vector_item = EmbeddingModel.get(*EmbeddingModel.key(item.track_id, item.upload_id), consistent_read=True)
    assert len(vector_item.vector) == item.embedding["dimensions"] > 0
    assert embeddings.vector_of(item) == [float(x) for x in vector_item.vector]
    # The item stays small: pointers and summaries, no peaks or vectors.
    assert len(item.serialize().__repr__()) < 3000

    track = stack.api.get(f"/v1/tracks/{upload['trackId']}", headers=as_user(artist)).json()
    assert track["waveform"]["source"] == "analysis"
    assert len(track["waveform"]["peaks"]) == 1024  # the coarsest of the lane's bucket counts
    # The processing status reads the track and its lanes, never the vector item.
    status = stack.api.get(f"/v1/tracks/{upload['trackId']}/processing-status", headers=as_user(artist)).json()
    assert "embedding" not in {lane["name"] for lane in status["lanes"]}


def test_tracks_written_before_the_move_are_read_as_before(stack, artist):
    legacy = TrackModel(
        "legacy-track",
        TrackModel.TRACK_SK,
        owner_id=artist,
        upload_id="legacy-upload",
        title="Before",
        status="ready",
        waveform={"peaks": [0.1, 0.2], "sampleRateHz": 44100, "channels": 2, "source": "analysis", "key": "k"},
        embedding={"version": "v1", "dimensions": 2, "vector": [0.6, 0.8], "analysedMs": 1000},
    )
    legacy.save()

    assert waveforms.public(legacy) == {"peaks": [0.1, 0.2], "sampleRateHz": 44100, "channels": 2, "source": "analysis"}
    assert embeddings.has_embedding(legacy)
    assert embeddings.vector_of(legacy) == [0.6, 0.8]
    assert embeddings.vectors_of([("legacy-track", legacy.embedding)]) == {"legacy-track": [0.6, 0.8]}


def test_a_pointer_whose_object_is_gone_reads_as_no_waveform(stack, artist):
    track = TrackModel("t-gone", TrackModel.TRACK_SK, owner_id=artist, upload_id="u", title="t")
    track.waveform = {"key": keys.waveform("t-gone"), "source": "analysis"}
    assert waveforms.public(track) is None

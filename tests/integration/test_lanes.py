"""The processing lanes after probe, run for real (ffmpeg) through the local runner."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer
from typing import ClassVar

import httpx
import pytest

from functions import clients
from functions.data import keys
from functions.data.models import LaneModel
from functions.domain.processing import steps
from functions.media.probe import probe
from functions.step_errors import StepFailed

from .conftest import Stack, as_user, error_of
from .test_workflow import processed, upload_and_finalize, wait_for

EXPECTED = {"aac": ("aac", 256), "opus": ("opus", 160), "mp3": ("mp3", 320)}


@pytest.fixture(scope="module")
def music(make_audio):
    """Eight seconds of a tone at half scale (bitrates are measured in the transcode unit tests)."""
    return make_audio("music.wav", seconds=8.0, codec_args=("-af", "volume=0.5"))


def lanes_by_name(status: dict) -> dict[str, dict]:
    return {lane["name"]: lane for lane in status["lanes"]}


def test_every_rendition_decodes_with_its_codec_bitrate_and_duration(stack, artist, runner, music, tmp_path):
    upload = upload_and_finalize(stack, artist, music)
    status = processed(stack, artist, upload)
    assert status["status"] == "ready", status

    # Each rendition is its own lane, and the track lists what they made.
    lanes = lanes_by_name(status)
    renditions = {fmt: lanes[f"transcode_{fmt}"]["outputs"]["rendition"] for fmt in EXPECTED}
    track = stack.api.get(f"/v1/tracks/{upload['trackId']}", headers=as_user(artist)).json()
    assert set(track["renditions"]) == set(EXPECTED)
    assert {lanes[f"transcode_{fmt}"]["message"] for fmt in EXPECTED} == {"ready to stream."}
    for fmt, (codec, kbps) in EXPECTED.items():
        local = tmp_path / f"rendition.{fmt}"
        local.write_bytes(stack.s3.get_object(Bucket=stack.resources.bucket, Key=renditions[fmt]["key"])["Body"].read())
        facts = probe(str(local), min_ms=0, max_ms=10**9)
        assert facts.codec == codec
        assert abs(facts.duration_ms - 8000) <= 50, (fmt, facts)
        assert renditions[fmt]["bitrateKbps"] == kbps
    # The original is kept untouched beside the renditions (where finalize copied it).
    kept = keys.kept_upload(keys.track_prefix(upload["trackId"][4:]), upload["uploadId"][4:], "original.wav")
    original = stack.s3.get_object(Bucket=stack.resources.bucket, Key=kept)
    assert original["Body"].read() == music.read_bytes()


def test_waveform_and_loudness_land_on_the_track(stack, artist, runner, music):
    upload = upload_and_finalize(stack, artist, music)
    status = processed(stack, artist, upload)
    lanes = lanes_by_name(status)

    waveform_doc = json.loads(
        stack.s3.get_object(Bucket=stack.resources.bucket, Key=lanes["waveform"]["outputs"]["key"])["Body"].read()
    )
    assert sorted(waveform_doc) == ["1024", "2048"]
    assert len(waveform_doc["2048"]["peaks"]) == 2048
    assert all(0.0 <= p <= 1.0 for p in waveform_doc["1024"]["peaks"])

    track = stack.api.get(f"/v1/tracks/{upload['trackId']}", headers=as_user(artist)).json()
    assert track["waveform"]["source"] == "analysis"
    assert len(track["waveform"]["peaks"]) == 1024
    assert "key" not in track["waveform"]
    assert track["loudness"]["referenceLufs"] == -14.0
    assert track["loudness"]["integratedLufs"] < 0
    assert set(track["renditions"]) == {"aac", "opus", "mp3"}
    assert all("key" not in r for r in track["renditions"].values())


def test_stems_and_lyrics_are_skipped_visibly_without_a_processor(stack, artist, runner, wav_3s):
    status = processed(stack, artist, upload_and_finalize(stack, artist, wav_3s))
    lanes = lanes_by_name(status)
    for lane in ("stems", "lyrics"):
        assert lanes[lane]["state"] == "skipped"
        assert lanes[lane]["code"] == "not_configured"
        assert "processor" in lanes[lane]["message"]
    assert status["status"] == "ready"


def test_an_optional_lane_failing_leaves_the_track_ready(stack, artist, runner, wav_3s, monkeypatch):
    def broken(_):
        raise StepFailed("waveform_failed", "Injected: the waveform could not be drawn.")

    monkeypatch.setitem(steps.STEPS, "waveform", steps._lane("waveform", broken))
    status = processed(stack, artist, upload_and_finalize(stack, artist, wav_3s))

    assert status["status"] == "ready"
    assert status["failure"] is None
    lanes = lanes_by_name(status)
    assert (lanes["waveform"]["state"], lanes["waveform"]["code"]) == ("failed", "waveform_failed")
    assert lanes["transcode_aac"]["state"] == "succeeded"


def test_the_track_plays_its_first_rendition_while_the_others_are_made(stack, artist, runner, wav_3s, monkeypatch):
    """Progressive readiness: the AAC task is held; the MP3 rendition, stored meanwhile, makes the
    track ready and streamable at once, and AAC joins when its task ends."""
    release = threading.Event()
    real_aac = steps.STEPS["transcode_aac"]

    def held_aac(payload: dict) -> dict:
        assert release.wait(120), "the test never released the AAC task"
        return real_aac(payload)

    monkeypatch.setitem(steps.STEPS, "transcode_aac", held_aac)
    upload = upload_and_finalize(stack, artist, wav_3s)
    stream = f"/v1/tracks/{upload['trackId']}/stream"
    try:

        def status() -> dict:
            return stack.api.get(f"/v1/tracks/{upload['trackId']}/processing-status", headers=as_user(artist)).json()

        # The MP3 task marks the track playable itself, before its lane is recorded as done.
        playing = wait_for(status, until=lambda s: lanes_by_name(s)["transcode_mp3"]["state"] == "succeeded")
        assert playing["status"] == "ready"
        assert playing["workflowStatus"] == "running"
        assert lanes_by_name(playing)["transcode_aac"]["state"] in {"queued", "running"}
        served = stack.api.get(stream, headers=as_user(artist), follow_redirects=False)
        assert served.status_code == 302
        assert "/renditions/aac" not in served.headers["location"]
        assert httpx.get(served.headers["location"]).status_code == 200
        refused = stack.api.get(f"{stream}?format=aac", headers=as_user(artist), follow_redirects=False)
        assert (refused.status_code, refused.json()["error"]["code"]) == (409, "rendition_not_ready")
        assert "mp3" in refused.json()["error"]["availableFormats"]
        assert "aac" not in refused.json()["error"]["availableFormats"]
    finally:
        release.set()

    done = processed(stack, artist, upload)
    assert (done["status"], done["workflowStatus"]) == ("ready", "succeeded")
    served = stack.api.get(stream, headers=as_user(artist), follow_redirects=False)
    assert "/renditions/aac.m4a" in served.headers["location"]


def _broken_rendition(monkeypatch: pytest.MonkeyPatch, fmt: str) -> None:
    def broken(_):
        raise StepFailed("transcode_failed", f"Injected: the {fmt} encoder refused this file.")

    monkeypatch.setitem(steps.STEPS, f"transcode_{fmt}", steps._lane(f"transcode_{fmt}", broken))


def test_a_failed_rendition_leaves_the_track_ready_with_the_others(stack, artist, runner, wav_3s, monkeypatch):
    _broken_rendition(monkeypatch, "aac")
    upload = upload_and_finalize(stack, artist, wav_3s)
    status = processed(stack, artist, upload)

    assert (status["status"], status["workflowStatus"], status["failure"]) == ("ready", "succeeded", None)
    lanes = lanes_by_name(status)
    assert (lanes["transcode_aac"]["state"], lanes["transcode_aac"]["code"]) == ("failed", "transcode_failed")
    track = stack.api.get(f"/v1/tracks/{upload['trackId']}", headers=as_user(artist)).json()
    assert set(track["renditions"]) == {"opus", "mp3"}
    # Without a format the stream is the first rendition there is; AAC by name says what exists.
    stream = f"/v1/tracks/{upload['trackId']}/stream"
    served = stack.api.get(stream, headers=as_user(artist), follow_redirects=False)
    assert served.status_code == 302 and "/renditions/mp3.mp3" in served.headers["location"]
    refused = stack.api.get(f"{stream}?format=aac", headers=as_user(artist), follow_redirects=False)
    assert refused.status_code == 409
    assert refused.json()["error"]["code"] == "rendition_not_ready"
    assert refused.json()["error"]["availableFormats"] == ["mp3", "opus"]


def test_no_rendition_fails_the_track_and_closes_every_lane(stack, artist, runner, wav_3s, monkeypatch):
    for fmt in ("aac", "opus", "mp3"):
        _broken_rendition(monkeypatch, fmt)
    status = processed(stack, artist, upload_and_finalize(stack, artist, wav_3s))

    assert status["status"] == "failed"
    assert status["failure"] == {"code": "transcode_failed", "message": "Injected: the aac encoder refused this file."}
    assert all(lane["state"] in {"succeeded", "failed", "skipped"} for lane in status["lanes"]), status["lanes"]


class _Processor(BaseHTTPRequestHandler):
    """A stand-in external stems processor on 127.0.0.1 that checks what it is sent."""

    requests: ClassVar[list[dict]] = []
    answers: ClassVar[list[int]] = []
    # Extra JSON the answer carries (e.g. a large result).
    extra: ClassVar[dict] = {}

    def do_POST(self):
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        type(self).requests.append(body)
        status = type(self).answers.pop(0) if type(self).answers else 200
        audio = httpx.get(body["audioUrl"])  # the presigned URL really serves the original
        answer = {"stems": ["vocals", "drums"], "audioBytes": len(audio.content), **type(self).extra}
        payload = json.dumps(answer).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, *args):
        pass


@pytest.fixture
def stems_processor(monkeypatch):
    _Processor.requests, _Processor.answers, _Processor.extra = [], [], {}
    server = HTTPServer(("127.0.0.1", 0), _Processor)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    monkeypatch.setenv("TRACKLANE_STEMS_PROCESSOR", f"http://127.0.0.1:{server.server_port}/stems")
    clients.reset()
    yield _Processor
    server.shutdown()


def test_a_configured_processor_is_called_with_a_presigned_url(stack, artist, stems_processor, fast_runner, wav_3s):
    stems_processor.answers = [503]  # transient once: the runner retries
    upload = upload_and_finalize(stack, artist, wav_3s)
    status = processed(stack, artist, upload)

    stems = lanes_by_name(status)["stems"]
    assert stems["state"] == "succeeded"
    assert stems["attempts"] == 2
    assert stems["outputs"] == {"stems": ["vocals", "drums"], "audioBytes": wav_3s.stat().st_size}
    sent = stems_processor.requests[0]
    assert (sent["lane"], sent["trackId"]) == ("stems", upload["trackId"].removeprefix("trk_"))
    assert abs(sent["durationMs"] - 3000) <= 50


def test_a_processors_large_answer_is_stored_in_s3_and_read_through_the_api(
    stack, artist, stems_processor, fast_runner, wav_3s
):
    # An answer over 4 KB (a lyrics-sized document): on the lane item it would cost a write unit per
    # KB on every write of the lane, and in the workflow's state it counts against 256 KiB.
    words = [f"word{i}" for i in range(2000)]
    stems_processor.extra = {"words": words}
    upload = upload_and_finalize(stack, artist, wav_3s)
    status = processed(stack, artist, upload)
    track_id = upload["trackId"]

    stems = lanes_by_name(status)["stems"]
    assert stems["state"] == "succeeded"
    result_url = f"http://testserver/v1/tracks/{track_id}/lanes/stems/result"
    stored = stems["outputs"]["storedResult"]
    assert stored["url"] == result_url and stored["byteSize"] > 4096
    assert set(stems["outputs"]) == {"storedResult"}  # no key, no inline copy
    lane_item = LaneModel.get(track_id.removeprefix("trk_"), LaneModel.sort_key("stems"), consistent_read=True)
    assert len(json.dumps(lane_item.outputs)) < 300

    redirect = stack.api.get(
        f"/v1/tracks/{track_id}/lanes/stems/result", headers=as_user(artist), follow_redirects=False
    )
    assert redirect.status_code == 302 and redirect.headers["cache-control"] == "private, no-store"
    answer = httpx.get(redirect.headers["location"]).json()
    assert answer["words"] == words and answer["stems"] == ["vocals", "drums"]
    # A small result is answered in place; what has none, or is another owner's, is not found.
    probe = stack.api.get(f"/v1/tracks/{track_id}/lanes/probe/result", headers=as_user(artist))
    assert probe.status_code == 200 and probe.json()["durationMs"] > 0
    lyrics = stack.api.get(f"/v1/tracks/{track_id}/lanes/lyrics/result", headers=as_user(artist))
    assert error_of(lyrics) == (404, "lane_result_not_found")  # skipped: no processor configured
    unknown = stack.api.get(f"/v1/tracks/{track_id}/lanes/nonsense/result", headers=as_user(artist))
    assert error_of(unknown) == (404, "lane_result_not_found")
    other = stack.api.get(f"/v1/tracks/{track_id}/lanes/stems/result", headers=as_user("mallory"))
    assert error_of(other) == (404, "track_not_found")


def test_stream_redirects_to_each_rendition_and_the_original(stack: Stack, artist, runner, wav_3s):
    upload = upload_and_finalize(stack, artist, wav_3s)
    not_yet = stack.api.get(
        f"/v1/tracks/{upload['trackId']}/stream?format=mp3", headers=as_user(artist), follow_redirects=False
    )
    assert not_yet.status_code in {302, 409}  # 409 rendition_not_ready until the mp3 lane has run
    processed(stack, artist, upload)

    for fmt, content_type in {
        "aac": "audio/mp4",
        "opus": "audio/ogg",
        "mp3": "audio/mpeg",
        "original": "audio/wav",
    }.items():
        response = stack.api.get(
            f"/v1/tracks/{upload['trackId']}/stream?format={fmt}", headers=as_user(artist), follow_redirects=False
        )
        assert response.status_code == 302, response.text
        assert response.headers["cache-control"] == "private, no-store"
        media = httpx.get(response.headers["location"])
        assert media.status_code == 200
        assert media.headers["content-type"] == content_type
        assert len(media.content) > 1000

    # A ready public track plays for anyone signed in; its original stays the owner's.
    url = f"/v1/tracks/{upload['trackId']}/stream"
    assert stack.api.get(url, headers=as_user("mallory"), follow_redirects=False).status_code == 302
    original = stack.api.get(f"{url}?format=original", headers=as_user("mallory"), follow_redirects=False)
    assert (original.status_code, original.json()["error"]["code"]) == (403, "original_owner_only")
    bad = stack.api.get(f"/v1/tracks/{upload['trackId']}/stream?format=flac", headers=as_user(artist))
    assert bad.status_code == 422


def test_stream_before_processing_is_409_with_a_code(stack, artist, wav_3s):
    upload = stack.create_upload(artist, wav_3s)
    response = stack.api.get(f"/v1/tracks/{upload['trackId']}/stream?format=aac", headers=as_user(artist))
    assert response.status_code == 409
    assert response.json()["error"]["code"] == "rendition_not_ready"

"""``tracklane upload`` against an in-memory API: what a rerun sends after an interruption, where
its state lives, and the album order a session is given."""

from __future__ import annotations

import io
import json
import os
from pathlib import Path

import httpx
import pytest

from client import command
from client.output import JsonReporter
from client.results import EXIT_FAILED, EXIT_INTERRUPTED, EXIT_OK, EXIT_UNREACHABLE
from client.state import StateStore, default_directory, file_identity

from .fake_api import FakeApi


def upload(fake: FakeApi, tmp_path: Path, *files: Path, **options) -> tuple[int, list[dict], str]:
    out, err = io.StringIO(), io.StringIO()
    opts = command.Options(files=list(files), state_dir=tmp_path / "state", json=True, **options)
    code = command.run(opts, fake.api(), reporter=JsonReporter(out, err))
    return code, [json.loads(line) for line in out.getvalue().splitlines()], err.getvalue()


def audio(tmp_path: Path, name: str, size: int) -> Path:
    path = tmp_path / name
    path.write_bytes(os.urandom(size))
    return path


MULTIPART = {"multipart_threshold": 10, "part_size": 10}


def test_a_rerun_after_an_interruption_sends_only_the_parts_storage_lacks(tmp_path: Path):
    fake = FakeApi()
    song = audio(tmp_path, "song.wav", 45)

    # Given a run stopped after its first part (one part in flight at a time)
    code, [first], _ = upload(fake, tmp_path, song, parallel=1, stop_after_parts=1, **MULTIPART)
    assert code == EXIT_INTERRUPTED
    assert (first["status"], first["partsUploaded"], first["partCount"]) == ("interrupted", 1, 5)
    puts_before = len(fake.part_puts())

    # When the same command runs again
    code, [second], notices = upload(fake, tmp_path, song, **MULTIPART)

    # Then it continues the same upload with the four missing parts, and the bytes are whole
    assert code == EXIT_OK
    assert second["uploadId"] == first["uploadId"]
    assert (second["status"], second["resumed"], second["partsResumed"], second["partsUploaded"]) == (
        "ready", True, 1, 4,
    )  # fmt: skip
    assert len(fake.part_puts()) - puts_before == 4
    assert fake.uploads[first["uploadId"]].stored == song.read_bytes()
    assert "1 of 5 parts already stored" in notices


def test_a_rerun_after_success_reports_the_track_instead_of_uploading_again(tmp_path: Path):
    fake = FakeApi()
    song = audio(tmp_path, "song.wav", 25)
    _, [first], _ = upload(fake, tmp_path, song, **MULTIPART)
    requests_before = len(fake.requests)

    code, [again], _ = upload(fake, tmp_path, song, **MULTIPART)

    assert code == EXIT_OK
    assert (again["status"], again["trackId"], again["resumed"]) == ("ready", first["trackId"], True)
    assert fake.calls("POST", "/v1/uploads") == ["/v1/uploads"]
    assert not [r for r in fake.requests[requests_before:] if r[0] == "PUT"]


def test_an_expired_intent_is_started_over_and_the_run_says_so(tmp_path: Path):
    fake = FakeApi()
    song = audio(tmp_path, "song.wav", 30)
    _, [first], _ = upload(fake, tmp_path, song, parallel=1, stop_after_parts=1, **MULTIPART)
    fake.uploads[first["uploadId"]].status = "expired"

    code, [second], notices = upload(fake, tmp_path, song, **MULTIPART)

    assert code == EXIT_OK
    assert second["uploadId"] != first["uploadId"]
    assert (second["partsResumed"], second["partsUploaded"]) == (0, 3)
    assert f"the earlier upload {first['uploadId']} can no longer be completed (upload_intent_expired)" in notices


def test_an_edited_file_is_a_new_upload(tmp_path: Path):
    song = audio(tmp_path, "song.wav", 30)
    before = file_identity(song)
    song.write_bytes(os.urandom(31))

    assert StateStore.key("file", "api", before) != StateStore.key("file", "api", file_identity(song))


def test_the_state_lives_in_the_cache_directory_and_keeps_no_secret(tmp_path: Path, monkeypatch):
    monkeypatch.delenv("TRACKLANE_UPLOAD_STATE_DIR", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    assert default_directory() == tmp_path / "cache" / "tracklane" / "uploads"
    monkeypatch.setenv("TRACKLANE_UPLOAD_STATE_DIR", str(tmp_path / "elsewhere"))
    assert default_directory() == tmp_path / "elsewhere"

    fake = FakeApi()
    song = audio(tmp_path, "song.wav", 30)
    upload(fake, tmp_path, song, parallel=1, stop_after_parts=1, **MULTIPART)

    [saved] = (tmp_path / "state").glob("*.json")
    assert oct(saved.stat().st_mode & 0o777) == "0o600"
    text = saved.read_text()
    assert fake.api().token not in text and "storage.test" not in text


def test_state_untouched_for_30_days_is_pruned(tmp_path: Path):
    store = StateStore(tmp_path)
    store.save("old", {"uploadId": "upl_1"})
    store.save("new", {"uploadId": "upl_2"})
    os.utime(store.path("old"), (0, 0))

    assert store.prune() == 1
    assert store.load("old") is None
    assert (store.load("new") or {}).get("uploadId") == "upl_2"


def test_a_single_put_cut_off_is_cancelled_and_sent_again(tmp_path: Path):
    fake = FakeApi()
    song = audio(tmp_path, "short.wav", 8)
    fake.storage_hook = lambda request: (_ for _ in ()).throw(httpx.ConnectError("down", request=request))

    code, [first], _ = upload(fake, tmp_path, song)
    assert (code, first["status"], first["code"]) == (EXIT_UNREACHABLE, "unreachable", "network_error")

    fake.storage_hook = None
    code, [second], _ = upload(fake, tmp_path, song)

    assert code == EXIT_OK
    assert fake.uploads[first["uploadId"]].status == "cancelled"
    assert second["uploadId"] != first["uploadId"] and second["status"] == "ready"


def test_the_part_size_is_dropped_for_an_api_that_chooses_its_own(tmp_path: Path):
    fake = FakeApi(part_size=20, config=False)
    song = audio(tmp_path, "song.wav", 30)

    code, [result], notices = upload(fake, tmp_path, song, **MULTIPART)

    assert code == EXIT_OK
    assert (result["partSize"], result["partCount"]) == (20, 2)
    assert "this API chooses its own part size" in notices


def test_a_refused_file_and_a_failed_one_give_their_codes_and_a_non_zero_exit(tmp_path: Path):
    fake = FakeApi()
    good, notes, broken = audio(tmp_path, "good.wav", 5), audio(tmp_path, "notes.txt", 5), audio(tmp_path, "x.wav", 6)
    original_create = fake._create

    def failing(request, body):
        answer = original_create(request, body)
        if body["fileName"] == "x.wav":
            fake.uploads[answer.json()["uploadId"]].verdict = {
                "phase": "failed", "status": "failed", "code": "audio_unreadable", "message": "Not audio.",
            }  # fmt: skip
        return answer

    fake._create = failing

    code, results, _ = upload(fake, tmp_path, good, notes, broken)

    assert code == EXIT_FAILED
    assert [(r["file"], r["status"], r["code"]) for r in results] == [
        (str(good), "ready", None),
        (str(notes), "refused", "unsupported_media_type"),
        (str(broken), "failed", "audio_unreadable"),
    ]
    assert results[2]["message"] == "Not audio."


def test_a_duplicate_names_the_track_the_user_already_has(tmp_path: Path):
    fake = FakeApi()
    song = audio(tmp_path, "song.wav", 5)
    original_create = fake._create

    def duplicate(request, body):
        answer = original_create(request, body)
        fake.uploads[answer.json()["uploadId"]].verdict = {"phase": "duplicate", "trackId": "trk_existing"}
        return answer

    fake._create = duplicate

    code, [result], _ = upload(fake, tmp_path, song)

    assert code == EXIT_OK
    assert (result["status"], result["trackId"]) == ("duplicate", "trk_existing")


def test_an_album_is_ordered_by_argument_position_whatever_order_the_puts_finish_in(tmp_path: Path):
    fake = FakeApi()
    files = [audio(tmp_path, f"{name}.wav", 5) for name in ("c", "a", "b")]
    # The first file's PUT is slow: it lands last.
    import threading

    others_done = threading.Event()
    landed: list[str] = []

    def slow_first(request: httpx.Request) -> httpx.Response | None:
        name = fake.uploads[request.url.path.split("/")[2]].file_name
        if name == "c.wav":
            others_done.wait(5)
        landed.append(name)
        if len(landed) == 2:
            others_done.set()
        return None

    fake.storage_hook = slow_first

    code, results, _ = upload(
        fake, tmp_path, *files, album="Night Drive", titles=["Three", "One", "Two"], tags=["lo-fi"], parallel=3
    )

    assert code == EXIT_OK
    assert landed[-1] == "c.wav"
    [session_id] = fake.sessions
    assert fake.album_order(session_id) == ["c.wav", "a.wav", "b.wav"]
    assert [(r["position"], r["status"]) for r in results] == [(1, "ready"), (2, "ready"), (3, "ready")]
    [album] = fake.albums.values()
    assert album["title"] == "Night Drive" and {r["albumId"] for r in results} == {album["albumId"]}
    titles = [fake.uploads[t["upload_id"]].body["metadata"]["title"] for t in fake.sessions[session_id]["tracks"]]
    assert titles == ["Three", "One", "Two"]
    assert all(patch == {"tags": ["lo-fi"]} for patch in fake.patches.values()) and len(fake.patches) == 3


def test_an_album_rerun_sends_only_the_tracks_still_awaiting_their_upload(tmp_path: Path):
    fake = FakeApi()
    files = [audio(tmp_path, f"{n}.wav", 5) for n in ("one", "two")]
    fake.storage_hook = lambda r: (
        httpx.Response(500) if "two" in fake.uploads[r.url.path.split("/")[2]].file_name else None
    )
    code, first, _ = upload(fake, tmp_path, *files, album="Pair")
    assert code == EXIT_FAILED and [r["status"] for r in first] == ["ready", "failed"]

    fake.storage_hook = None
    code, second, notices = upload(fake, tmp_path, *files, album="Pair")

    assert code == EXIT_OK
    assert [(r["status"], r["resumed"]) for r in second] == [("ready", True), ("ready", False)]
    assert second[0]["trackId"] == first[0]["trackId"]
    assert "#2 two.wav: sending it again" in notices
    # The same album, found by its name again; the first track was not sent twice.
    assert len(fake.albums) == 1
    one = fake.uploads[first[0]["uploadId"]].upload_id
    assert fake.calls("PUT", rf"/whole/{one}") == [f"/whole/{one}"]


@pytest.mark.parametrize(
    ("text", "size"), [("5242880", 5242880), ("5MiB", 5 * 2**20), ("16MB", 16 * 10**6), ("1.5k", 1500)]
)
def test_sizes_read_as_people_write_them(text, size):
    assert command.parse_size(text) == size


def test_a_missing_file_or_too_few_titles_stop_before_anything_is_sent(tmp_path: Path):
    fake = FakeApi()
    song = audio(tmp_path, "song.wav", 5)

    with pytest.raises(command.UsageError, match="no such file"):
        upload(fake, tmp_path, song, tmp_path / "missing.wav")
    with pytest.raises(command.UsageError, match="--title"):
        upload(fake, tmp_path, song, song.with_name("song.wav"), titles=["one"])
    assert fake.requests == []


def test_a_network_lost_mid_parts_exits_75_and_the_rerun_sends_the_rest(tmp_path: Path):
    fake = FakeApi()
    song = audio(tmp_path, "song.wav", 50)

    def part_3_unreachable(request: httpx.Request) -> httpx.Response | None:
        if request.url.path.endswith("/3"):
            raise httpx.ConnectError("network is unreachable", request=request)
        return None

    fake.storage_hook = part_3_unreachable
    code, [lost], notices = upload(fake, tmp_path, song, parallel=1, **MULTIPART)
    assert (code, lost["status"], lost["code"], lost["partsUploaded"]) == (
        EXIT_UNREACHABLE,
        "unreachable",
        "network_error",
        2,
    )
    assert "run the same command again" in notices

    fake.storage_hook = None
    code, [resumed], _ = upload(fake, tmp_path, song, **MULTIPART)

    assert code == EXIT_OK
    assert (resumed["uploadId"], resumed["partsResumed"], resumed["partsUploaded"]) == (lost["uploadId"], 2, 3)
    assert fake.uploads[lost["uploadId"]].stored == song.read_bytes()


def test_without_json_a_line_per_file_goes_to_stdout_and_no_bars_to_a_pipe(tmp_path: Path):
    from rich.console import Console

    from client.output import RichReporter

    fake = FakeApi()
    song, notes = audio(tmp_path, "song.wav", 5), audio(tmp_path, "notes.txt", 5)
    out, err = io.StringIO(), io.StringIO()
    reporter = RichReporter(out, Console(file=err, force_terminal=False))

    code = command.run(command.Options(files=[song, notes], state_dir=tmp_path / "s"), fake.api(), reporter=reporter)

    assert code == EXIT_FAILED
    lines = out.getvalue().splitlines()
    assert lines[0].split()[:2] == ["ready", str(song)]
    assert lines[1].split()[:3] == ["refused", str(notes), "unsupported_media_type:"]
    assert err.getvalue() == ""

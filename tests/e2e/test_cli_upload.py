"""``tracklane upload`` against the local stack, run as an artist or a script runs it: a subprocess
speaking HTTP to the API, its ``--json`` lines parsed, every outcome checked through the API."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from .conftest import ROOT, LocalStackProcess

MIB = 1024 * 1024


@dataclass
class Run:
    code: int
    results: list[dict]
    stdout: str
    stderr: str


def tracklane_upload(
    stack: LocalStackProcess, user: str, state: Path, *args: str | Path, env: dict[str, str] | None = None
) -> Run:
    """The CLI as a separate process: the token in TRACKLANE_TOKEN (as a script would pass it), the
    resume state in a directory of the test's own."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith("TRACKLANE_") and k not in {"PORT", "MOTO_PORT"}}
    clean["TRACKLANE_UPLOAD_STATE_DIR"] = str(state)
    if env is None:
        clean["TRACKLANE_TOKEN"] = stack.token(user)
        args = ("--api", stack.api, *args)
    else:
        clean.update(env)
    process = subprocess.run(
        [sys.executable, "-m", "local.cli", "upload", *map(str, args)],
        cwd=ROOT,
        env=clean,
        check=False,
        capture_output=True,
        text=True,
        timeout=300,
    )
    results = [json.loads(line) for line in process.stdout.splitlines()] if "--json" in args else []
    return Run(process.returncode, results, process.stdout, process.stderr)


def artist(stack: LocalStackProcess, user: str) -> str:
    response = httpx.put(f"{stack.api}/v1/artists/me", json={"handle": user}, headers=stack.auth(user))
    assert response.status_code == 200, response.text
    return user


def original_bytes(stack: LocalStackProcess, user: str, track_id: str) -> bytes:
    redirect = httpx.get(f"{stack.api}/v1/tracks/{track_id}/stream?format=original", headers=stack.auth(user))
    assert redirect.status_code == 302, redirect.text
    return httpx.get(redirect.headers["location"]).content


def track(stack: LocalStackProcess, user: str, track_id: str) -> dict:
    response = httpx.get(f"{stack.api}/v1/tracks/{track_id}", headers=stack.auth(user))
    assert response.status_code == 200, response.text
    return response.json()


def test_a_file_is_uploaded_with_its_metadata_and_followed_to_ready(local_stack, make_audio, tmp_path):
    user = artist(local_stack, "cli-solo")
    song = make_audio("cli-solo.wav", seconds=2.5)

    run = tracklane_upload(
        local_stack, user, tmp_path, song, "--json", "--title", "First Light", "--tags", "ambient, demo",
        "--visibility", "unlisted",
    )  # fmt: skip

    assert run.code == 0, run.stderr
    [result] = run.results
    assert (result["status"], result["multipart"], result["code"]) == ("ready", False, None)
    stored = track(local_stack, user, result["trackId"])
    assert (stored["status"], stored["title"], stored["tags"], stored["visibility"]) == (
        "ready", "First Light", ["ambient", "demo"], "unlisted",
    )  # fmt: skip
    assert original_bytes(local_stack, user, result["trackId"]) == song.read_bytes()


def test_an_interrupted_multipart_upload_resumes_with_the_missing_parts_only(local_stack, make_audio, tmp_path):
    user = artist(local_stack, "cli-parts")
    # 14.5 s of 96 kHz 32-bit stereo: ~11.1 MB, three parts of 5 MiB, and little audio to process.
    song = make_audio("cli-parts.wav", seconds=14.5, codec_args=("-ar", "96000", "-c:a", "pcm_s32le"))
    assert 2 * 5 * MIB < song.stat().st_size < 3 * 5 * MIB
    parts = ("--multipart-threshold", "5MiB", "--part-size", "5MiB")

    # Given a run that stops like Ctrl-C once its first part is stored (one part in flight at a time)
    first = tracklane_upload(local_stack, user, tmp_path, song, "--json", *parts, "--parallel", "1",
                             "--stop-after-parts", "1")  # fmt: skip
    assert first.code == 130, first.stderr
    [stopped] = first.results
    assert (stopped["status"], stopped["partCount"], stopped["partsUploaded"]) == ("interrupted", 3, 1)
    listing = httpx.get(
        f"{local_stack.api}/v1/uploads/{stopped['uploadId']}/parts", headers=local_stack.auth(user)
    ).json()
    assert ([p["partNumber"] for p in listing["parts"]], listing["missingParts"]) == ([1], [2, 3])

    # When the same command runs again
    second = tracklane_upload(local_stack, user, tmp_path, song, "--json", *parts)

    # Then it continues that upload with parts 2 and 3 only, and the track holds exactly the file
    assert second.code == 0, second.stderr
    [resumed] = second.results
    assert resumed["uploadId"] == stopped["uploadId"]
    assert (resumed["status"], resumed["resumed"], resumed["partsResumed"], resumed["partsUploaded"]) == (
        "ready", True, 1, 2,
    )  # fmt: skip
    assert "1 of 3 parts already stored" in second.stderr
    assert original_bytes(local_stack, user, resumed["trackId"]) == song.read_bytes()


def test_three_files_become_one_album_in_argument_order(local_stack, make_audio, tmp_path):
    user = artist(local_stack, "cli-album")
    # The longest first: its upload and processing take longest, yet it stays first.
    files = [make_audio(f"cli-album-{n}.wav", seconds=s) for n, s in (("a", 6.0), ("b", 2.0), ("c", 3.5))]

    run = tracklane_upload(
        local_stack, user, tmp_path, *files, "--json", "--album", "Tide Tables",
        "--title", "High Water", "--title", "Slack", "--title", "Low Water",
    )  # fmt: skip

    assert run.code == 0, run.stderr
    assert [(r["position"], r["status"], r["file"]) for r in run.results] == [
        (1, "ready", str(files[0])), (2, "ready", str(files[1])), (3, "ready", str(files[2])),
    ]  # fmt: skip
    [album_id] = {r["albumId"] for r in run.results}
    page = httpx.get(f"{local_stack.api}/v1/artists/{user}/albums/tide-tables", headers=local_stack.auth(user)).json()
    assert page["albumId"] == album_id
    assert [(t["title"], t["position"]) for t in page["tracks"]] == [("High Water", 1), ("Slack", 2), ("Low Water", 3)]
    assert [t["trackId"] for t in page["tracks"]] == [r["trackId"] for r in run.results]


def test_a_refused_file_and_a_failed_one_give_their_codes_and_exit_non_zero(
    local_stack, make_audio, png_named_wav, tmp_path
):
    user = artist(local_stack, "cli-mixed")
    good = make_audio("cli-mixed.wav", seconds=1.5)
    notes = tmp_path / "liner-notes.txt"
    notes.write_text("not audio\n")

    run = tracklane_upload(local_stack, user, tmp_path / "state", good, notes, png_named_wav, "--json")

    assert run.code == 1, run.stderr
    ready, refused, failed = run.results
    assert (ready["status"], ready["code"]) == ("ready", None)
    assert (refused["status"], refused["code"], refused["trackId"]) == ("refused", "unsupported_media_type", None)
    assert "liner-notes.txt" in refused["message"]
    assert (failed["status"], failed["code"]) == ("failed", "audio_unreadable")
    assert failed["message"]
    assert track(local_stack, user, failed["trackId"])["failure"]["code"] == "audio_unreadable"


def test_without_api_or_token_it_finds_the_local_stack_and_signs_in_as_a_dev_user(local_stack, make_audio, tmp_path):
    user = artist(local_stack, "cli-local")
    song = make_audio("cli-local.wav", seconds=1.2)
    # What `make run` leaves for the CLI in a checkout: the stack's state file and its dev key.
    found = {
        "TRACKLANE_STACK_STATE_FILE": str(local_stack.log.parent / "stack.json"),
        "TRACKLANE_DEV_KEY_FILE": str(local_stack.dev_keys.private_key_file),
    }

    run = tracklane_upload(local_stack, user, tmp_path, song, "--user", user, env=found)

    assert run.code == 0, run.stderr
    # Without --json on a pipe: no bars, one line per file on stdout.
    [line] = run.stdout.splitlines()
    status, name, track_id = line.split()
    assert (status, name) == ("ready", str(song))
    assert track(local_stack, user, track_id)["status"] == "ready"


@pytest.mark.parametrize(
    ("args", "with_token", "says"),
    [
        ([], False, "no local stack is running"),
        (["--api", "http://127.0.0.1:9"], False, "--token or TRACKLANE_TOKEN is required"),
        (["--api", "http://127.0.0.1:9"], True, "no such file"),
    ],
)
def test_what_cannot_work_exits_2_before_anything_is_sent(local_stack, tmp_path, args, with_token, says):
    env = {"TRACKLANE_STACK_STATE_FILE": str(tmp_path / "no-stack.json")}
    if with_token:
        env["TRACKLANE_TOKEN"] = local_stack.token("nobody")

    run = tracklane_upload(local_stack, "nobody", tmp_path, tmp_path / "missing.wav", *args, env=env)

    assert run.code == 2
    assert says in run.stderr

"""The README's curl walk-through, run verbatim against the local stack, and run again: a newcomer
runs it twice."""

from __future__ import annotations

import json
import os
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from functions.workflow.definition import LANES

from .conftest import ROOT, LocalStackProcess, readme_walkthrough


@dataclass(frozen=True)
class Walkthrough:
    """What one run of the block printed, line by line."""

    profile: dict[str, Any]
    intent: dict[str, Any]
    put: str
    finalized: dict[str, Any]
    finalized_again: dict[str, Any]
    status: dict[str, Any]


def run_walkthrough(stack: LocalStackProcess, wav: Path, **env: str) -> Walkthrough:
    inherited = {name: value for name, value in os.environ.items() if name != "SEED"}
    environment = {
        **inherited,
        "API": stack.api,
        "WAV": str(wav),
        # What `tracklane token` signs with: the key the stack trusts.
        "TRACKLANE_DEV_KEY_FILE": str(stack.dev_keys.private_key_file),
        **env,
    }
    script = "set -euo pipefail\n" + readme_walkthrough()
    done = subprocess.run(
        ["bash", "-c", script], cwd=ROOT, env=environment, capture_output=True, text=True, timeout=180, check=False
    )
    assert done.returncode == 0, done.stderr + done.stdout
    lines = [line for line in done.stdout.splitlines() if line.strip()]
    assert len(lines) == 6, done.stdout
    return Walkthrough(
        profile=json.loads(lines[0]),
        intent=json.loads(lines[1]),
        put=lines[2],
        finalized=json.loads(lines[3]),
        finalized_again=json.loads(lines[4]),
        status=json.loads(lines[5]),
    )


def assert_processed(run: Walkthrough) -> None:
    assert run.profile["handle"] == "alice"
    assert run.intent["method"] == "PUT"
    assert run.put == "PUT 200"
    assert run.finalized["status"] == "finalized"  # whether or not the S3 event got there first
    assert run.finalized["jobsQueued"] == list(LANES)
    assert run.finalized_again["status"] == "already_finalized"
    assert run.finalized_again["trackId"] == run.intent["trackId"]
    assert (run.status.get("trackId"), run.status.get("status")) == (run.intent["trackId"], "ready"), run.status
    assert run.status["workflowStatus"] == "succeeded"
    probe = run.status["lanes"][0]
    assert probe["outputs"]["codec"] == "pcm_s16le"
    assert abs(probe["outputs"]["durationMs"] - 5000) <= 50


def test_the_readme_walkthrough_run_twice_on_one_stack_processes_two_tracks(local_stack: LocalStackProcess, tmp_path):
    # Given the block as a newcomer runs it: twice in a row, the same WAV path, the same stack
    wav = tmp_path / "night-drive.wav"
    first = run_walkthrough(local_stack, wav)
    second = run_walkthrough(local_stack, wav)

    # Then each run rendered new audio, so each is a track of its own, processed to ready
    assert_processed(first)
    assert_processed(second)
    assert second.intent["trackId"] != first.intent["trackId"]


def test_a_rerun_with_the_same_audio_follows_the_track_finalize_names(local_stack: LocalStackProcess, tmp_path):
    # Given one run, then another rendering the very same audio (SEED fixed)
    wav = tmp_path / "same.wav"
    first = run_walkthrough(local_stack, wav, SEED="20261202")
    again = run_walkthrough(local_stack, wav, SEED="20261202")

    # Then the second upload is a duplicate: finalize names the first's track, and the walk-through
    # shows that track, ready, instead of polling its own draft (which a duplicate deletes)
    assert_processed(first)
    assert again.finalized["status"] == "duplicate"
    assert again.finalized["trackId"] == first.intent["trackId"]
    assert (again.status.get("trackId"), again.status.get("status")) == (first.intent["trackId"], "ready"), again.status

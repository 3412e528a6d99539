"""The README's curl walk-through, run verbatim against the local stack."""

from __future__ import annotations

import json
import os
import subprocess

from functions.workflow.definition import LANES

from .conftest import DEV_SECRET, ROOT, LocalStackProcess, readme_walkthrough


def test_the_readme_walkthrough_finalizes_and_processes_the_upload(local_stack: LocalStackProcess, tmp_path):
    env = {
        **os.environ,
        "API": local_stack.api,
        "WAV": str(tmp_path / "night-drive.wav"),
        "TRACKLANE_DEV_SECRET": DEV_SECRET,  # what `tracklane token` signs with
    }
    script = "set -euo pipefail\n" + readme_walkthrough()
    done = subprocess.run(
        ["bash", "-c", script], cwd=ROOT, env=env, capture_output=True, text=True, timeout=180, check=False
    )
    assert done.returncode == 0, done.stderr + done.stdout

    lines = [line for line in done.stdout.splitlines() if line.strip()]
    assert json.loads(lines[0])["handle"] == "alice"
    intent = json.loads(lines[1])
    assert intent["method"] == "PUT"
    assert lines[2] == "PUT 200"
    first, second = json.loads(lines[3]), json.loads(lines[4])
    assert first["status"] == "finalized"  # whether or not the S3 event got there first
    assert first["jobsQueued"] == list(LANES)
    assert second["status"] == "already_finalized"
    assert second["trackId"] == intent["trackId"]
    status = json.loads(lines[5])
    assert status["status"] == "ready", status
    assert status["workflowStatus"] == "succeeded"
    probe = status["lanes"][0]
    assert probe["outputs"]["codec"] == "pcm_s16le"
    assert abs(probe["outputs"]["durationMs"] - 5000) <= 50

"""AWS calls per hot request, counted at the botocore layer: every operation any client of the app
sends (DynamoDB through pynamodb's connection, S3, Step Functions) while the API answers one
request, against a moto server in this process. Printed by ``make bench``; the same numbers are
pinned by ``tests/integration/test_round_trips.py``.

- create intent: ``POST /v1/uploads`` for a new 3 s WAV (target <= 2);
- first finalize: ``POST /v1/uploads/{id}/finalize`` after the PUT, for a standalone track
  (issue 15 asked for <= 4 before finalize kept a copy of the file out of the signed URL's reach:
  the copy and the deletion of the uploaded object are two S3 calls of their own).
"""

from __future__ import annotations

import logging
import os
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import imageio_ffmpeg

TARGETS = {"create intent": 2, "first finalize": 4}


@dataclass(frozen=True)
class CallCount:
    request: str
    operations: tuple[str, ...]

    @property
    def target(self) -> int:
        return TARGETS[self.request]


class _HeaderAuthenticator:
    """'Authorization: Bench <user>' authenticates as <user>: this measures the calls behind the
    token check, which makes none."""

    def authenticate(self, request: Any) -> Any:
        from functions.api.auth import Principal

        scheme, _, user = request.headers.get("authorization", "").partition(" ")
        return Principal(user) if scheme == "Bench" and user else None


def measure() -> list[CallCount]:
    from fastapi.testclient import TestClient
    from moto.server import ThreadedMotoServer

    from functions import clients
    from functions.api.app import create_app
    from functions.domain.catalog import artists
    from local.aws_calls import app_calls
    from local.config import free_port
    from local.provision import provision

    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    fake_credentials = {"AWS_ACCESS_KEY_ID": "bench", "AWS_SECRET_ACCESS_KEY": "bench", "AWS_REGION": "us-east-1"}
    for name, value in fake_credentials.items():
        os.environ.setdefault(name, value)
    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    saved = dict(os.environ)
    # moto's state machine sends its task messages through the moto server on this port.
    os.environ["MOTO_PORT"] = str(port)
    try:
        resources = provision(f"http://127.0.0.1:{port}")
        os.environ.update(resources.environment())
        clients.reset()
        artists.upsert("bench", handle="bench", display_name="Bench")
        api = TestClient(create_app(_HeaderAuthenticator()))
        auth = {"Authorization": "Bench bench"}
        with tempfile.TemporaryDirectory() as work:
            wav = Path(work) / "tone.wav"
            subprocess.run(
                [imageio_ffmpeg.get_ffmpeg_exe(), "-v", "error", "-f", "lavfi", "-i", "sine=frequency=440:duration=3",
                 "-c:a", "pcm_s16le", str(wav)],
                check=True,
            )  # fmt: skip
            body = {"fileName": wav.name, "contentType": "audio/wav", "byteSize": wav.stat().st_size}
            with app_calls() as create_calls:
                created = api.post("/v1/uploads", json=body, headers=auth)
            created.raise_for_status()
            intent = created.json()
            put = httpx.put(intent["signedUrl"], content=wav.read_bytes(), headers=intent["requiredHeaders"])
            put.raise_for_status()
            with app_calls() as finalize_calls:
                finalized = api.post(f"/v1/uploads/{intent['uploadId']}/finalize", json={}, headers=auth)
            finalized.raise_for_status()
        return [
            CallCount("create intent", tuple(create_calls)),
            CallCount("first finalize", tuple(finalize_calls)),
        ]
    finally:
        os.environ.clear()
        os.environ.update(saved)
        clients.reset()
        server.stop()


def report(counts: list[CallCount]) -> str:
    lines = ["AWS calls per request (botocore layer):"]
    for count in counts:
        calls = f"{len(count.operations):2d} calls (target <= {count.target})"
        lines.append(f"  {count.request:15} {calls}: {', '.join(count.operations)}")
    return "\n".join(lines)


if __name__ == "__main__":
    print(report(measure()))

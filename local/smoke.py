"""``tracklane smoke``: the whole upload flow against any deployment, one line per step.

    health -> profile -> intent -> put -> finalize -> ready -> stream -> anonymous stream -> delete

Each step prints ``PASS``, ``FAIL`` (with why) or ``SKIP`` (an earlier step failed) and how long it
took; the exit status is 0 only when every step passed. The audio is a few seconds of WAV made
here, with noise seeded per run, so a run never collides with an earlier one as a duplicate. Only
the HTTP API is used, as a client would: it works the same against ``make run`` and against a
deployed stack (``--api`` the stack's ``ApiUrl`` output, ``--token`` from ``tracklane token --aws``).
"""

from __future__ import annotations

import io
import math
import random
import struct
import time
import wave
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TextIO

import httpx

SAMPLE_RATE_HZ = 44_100
SECONDS = 4.0
# The terminal track states: processing either made the track playable or failed it.
SETTLED = {"ready", "failed", "rejected"}


def smoke_wav(seed: int, seconds: float = SECONDS) -> bytes:
    """A 440 Hz tone under low noise, mono 16-bit: real audio any decoder reads; ``seed`` makes the
    bytes (and so the duplicate checksum) differ per run."""
    noise = random.Random(seed)  # noqa: S311 -- test signal, not a secret
    frames = bytearray()
    for n in range(int(SAMPLE_RATE_HZ * seconds)):
        sample = 0.4 * math.sin(2 * math.pi * 440 * n / SAMPLE_RATE_HZ) + noise.uniform(-0.02, 0.02)
        frames += struct.pack("<h", int(max(-1.0, min(1.0, sample)) * 32767))
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(SAMPLE_RATE_HZ)
        out.writeframes(bytes(frames))
    return buffer.getvalue()


class StepFailed(Exception):
    """A step's check did not hold; the message says what was expected and what came back."""


def expect(response: httpx.Response, *statuses: int) -> Any:
    if response.status_code not in statuses:
        raise StepFailed(
            f"{response.request.method} {response.request.url.path} answered {response.status_code}: "
            f"{response.text[:300]}"
        )
    if response.headers.get("content-type", "").startswith("application/json"):
        return response.json()
    return None


@dataclass
class Smoke:
    api: str
    token: str
    timeout_s: float = 300.0
    keep: bool = False
    out: TextIO | None = None
    seed: int = field(default_factory=lambda: random.SystemRandom().randrange(1 << 30))
    results: list[tuple[str, str, float, str]] = field(default_factory=list)
    facts: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.api = self.api.rstrip("/")
        self.http = httpx.Client(timeout=30)
        self.auth = {"Authorization": f"Bearer {self.token}"}

    def steps(self) -> list[tuple[str, Callable[[], str]]]:
        return [
            ("health", self.health),
            ("profile", self.profile),
            ("intent", self.intent),
            ("put", self.put),
            ("finalize", self.finalize),
            ("ready", self.ready),
            ("stream", self.stream),
            ("anonymous stream", self.anonymous_stream),
            ("delete", self.delete),
        ]

    def run(self) -> bool:
        failed = False
        for name, step in self.steps():
            if failed:
                self._report("SKIP", name, 0.0, "an earlier step failed")
                continue
            started = time.monotonic()
            try:
                detail = step()
            except (StepFailed, httpx.HTTPError) as error:
                self._report("FAIL", name, time.monotonic() - started, str(error))
                failed = True
            else:
                self._report("PASS", name, time.monotonic() - started, detail)
        self.http.close()
        return not failed

    def _report(self, outcome: str, name: str, seconds: float, detail: str) -> None:
        self.results.append((outcome, name, seconds, detail))
        if self.out is not None:
            print(f"{outcome:4}  {name:17} {seconds:7.2f} s  {detail}", file=self.out, flush=True)

    # --- the steps -----------------------------------------------------------------------------

    def health(self) -> str:
        expect(self.http.get(f"{self.api}/health"), 200)
        return self.api

    def profile(self) -> str:
        existing = self.http.get(f"{self.api}/v1/artists/me", headers=self.auth)
        if existing.status_code == 200:
            return f"artist @{existing.json()['handle']}"
        expect(existing, 404)
        handle = f"smoke-{self.seed}"
        body = {"handle": handle, "displayName": "tracklane smoke test"}
        expect(self.http.put(f"{self.api}/v1/artists/me", json=body, headers=self.auth), 200, 201)
        return f"created artist @{handle}"

    def intent(self) -> str:
        self.facts["audio"] = audio = smoke_wav(self.seed)
        body = {
            "fileName": f"smoke-{self.seed}.wav",
            "contentType": "audio/wav",
            "byteSize": len(audio),
            "title": f"tracklane smoke {self.seed}",
            "visibility": "public",
        }
        created = expect(self.http.post(f"{self.api}/v1/uploads", json=body, headers=self.auth), 201)
        self.facts["intent"] = created
        return f"{created['uploadId']} for {created['trackId']}"

    def put(self) -> str:
        intent = self.facts["intent"]
        # As given: httpx sends the signed Content-Length from the body, as browsers do.
        headers = dict(intent.get("requiredHeaders") or {})
        response = self.http.request(
            intent.get("method", "PUT"), intent["signedUrl"], content=self.facts["audio"], headers=headers
        )
        expect(response, 200, 201, 204)
        return f"{len(self.facts['audio'])} bytes"

    def finalize(self) -> str:
        intent = self.facts["intent"]
        answer = expect(self.http.post(intent["finalizeUrl"], json={}, headers=self.auth), 200)
        if answer.get("status") not in ("finalized", "already_finalized"):
            raise StepFailed(f"finalize answered {answer}")
        self.facts["track_id"] = answer.get("trackId", intent["trackId"])
        return str(answer["status"])

    def ready(self) -> str:
        track_id = self.facts["track_id"]
        deadline = time.monotonic() + self.timeout_s
        while True:
            status = expect(self.http.get(f"{self.api}/v1/tracks/{track_id}/processing-status", headers=self.auth), 200)
            if status["status"] in SETTLED:
                break
            if time.monotonic() > deadline:
                raise StepFailed(f"still {status['status']} after {self.timeout_s:.0f} s")
            time.sleep(1.0)
        if status["status"] != "ready":
            raise StepFailed(f"the track ended {status['status']}: {status.get('failure')}")
        lanes = {lane["name"]: lane["state"] for lane in status.get("lanes", [])}
        return ", ".join(f"{name} {state}" for name, state in sorted(lanes.items()))

    def _fetch_stream(self, headers: dict[str, str]) -> str:
        track_id = self.facts["track_id"]
        redirect = self.http.get(f"{self.api}/v1/tracks/{track_id}/stream", headers=headers)
        expect(redirect, 302)
        audio = self.http.get(redirect.headers["location"])
        expect(audio, 200)
        if not audio.content:
            raise StepFailed("the rendition is empty")
        return f"{len(audio.content)} bytes of {audio.headers.get('content-type', '?')}"

    def stream(self) -> str:
        return self._fetch_stream(self.auth)

    def anonymous_stream(self) -> str:
        # A public, ungated, ready track plays for anyone: no token at all.
        return self._fetch_stream({})

    def delete(self) -> str:
        if self.keep:
            return f"kept {self.facts['track_id']} (--keep)"
        expect(self.http.delete(f"{self.api}/v1/tracks/{self.facts['track_id']}", headers=self.auth), 204)
        return f"deleted {self.facts['track_id']}"

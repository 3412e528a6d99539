"""The upload page (web/, Uppy) in headless Chromium against the local stack.

A node script (browser/upload_page.mjs, playwright-core) uses the page as a person would and
reports what it showed; these tests check that report and then ask the API what it really holds:
the track is ready, its original is byte for byte the file, its waveform is what the page drew.
The page is served by the stack itself (dev token) and, to prove a browser on another origin can
upload to the stack with no proxy, by a static server of its own on another port. Screenshots land
in tests/e2e/artifacts/ (not committed)."""

from __future__ import annotations

import functools
import json
import os
import shutil
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit

import httpx
import pytest

from tests.conftest import FFMPEG

from .conftest import ROOT, LocalStackProcess

DIST = ROOT / "web" / "dist"
DRIVER = ROOT / "tests" / "e2e" / "browser" / "upload_page.mjs"
ARTIFACTS = ROOT / "tests" / "e2e" / "artifacts"
CHROMIUM = Path("/usr/bin/chromium")
MiB = 1024 * 1024


@pytest.fixture(scope="module", autouse=True)
def browser_and_page() -> None:
    if not CHROMIUM.exists():
        pytest.fail("the browser tests need /usr/bin/chromium: `make chromium` installs it")
    if not (DIST / "index.html").is_file():
        pytest.fail(f"{DIST} holds no built page: `make install` builds it (node web/build.mjs)")
    if not (ROOT / "node_modules" / "playwright-core").is_dir():
        pytest.fail("node_modules has no playwright-core: `make install` installs it")
    ARTIFACTS.mkdir(exist_ok=True)


class _QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture(scope="module")
def page_origin() -> Iterator[str]:
    """The built page on a static server of its own: another origin than the API and storage."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(_QuietHandler, directory=str(DIST)))
    thread = threading.Thread(target=server.serve_forever, name="web-page-origin", daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def music(path: Path, *, seconds: float, pitch_hz: float) -> Path:
    """Real audio with a shape to draw: a tone pulsing twice a second under a slow swell."""
    expression = f"0.6*sin(2*PI*{pitch_hz}*t)*(0.55+0.45*sin(2*PI*0.15*t))*exp(-4*mod(t\\,0.5))"
    subprocess.run(
        [
            FFMPEG, "-hide_banner", "-nostdin", "-y", "-v", "error",
            "-f", "lavfi", "-i", f"aevalsrc=exprs={expression}:s=44100:d={seconds}",
            "-ac", "2", str(path),
        ],
        check=True,
    )  # fmt: skip
    return path


def drive(url: str, files: list[Path], screenshot: str, **options: Any) -> dict[str, Any]:
    """What the page showed after the files were uploaded through it (upload_page.mjs's report)."""
    spec = {"url": url, "files": [str(f) for f in files], "screenshot": str(ARTIFACTS / screenshot), **options}
    done = subprocess.run(
        ["node", str(DRIVER), json.dumps(spec)], cwd=ROOT, capture_output=True, text=True, timeout=420, check=False
    )
    assert done.returncode == 0, done.stderr[-3000:]
    report: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    assert report["timedOut"] is None, json.dumps(report, indent=1)
    assert report["pageErrors"] == [], report["pageErrors"]
    return report


def cards(report: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {card["fileName"]: card for card in report["cards"]}


def s3_operations(report: dict[str, Any], stack: LocalStackProcess) -> list[str]:
    """The S3 requests the page sent to storage, by operation name."""
    names = {
        ("PUT", ("partNumber", "uploadId")): "UploadPart",
        ("PUT", ()): "PutObject",
        ("GET", ("uploadId",)): "ListParts",
        ("POST", ("uploadId",)): "CompleteMultipartUpload",
        ("POST", ("uploads",)): "CreateMultipartUpload",
        ("DELETE", ("uploadId",)): "AbortMultipartUpload",
        ("GET", ()): "GetObject",
    }
    storage = urlsplit(stack.moto).netloc
    operations = []
    for request in (r for r in report["requests"] if r["host"] == storage):
        name = names.get((request["method"], tuple(request["query"])), f"{request['method']} {request['query']}")
        operations.append(f"{name} {request['partNumber']}" if request["partNumber"] else name)
    return operations


def artist(stack: LocalStackProcess, user: str) -> dict[str, str]:
    auth = stack.auth(user)
    response = httpx.put(f"{stack.api}/v1/artists/me", json={"handle": user}, headers=auth)
    assert response.status_code == 200, response.text
    return auth


def page_for(origin: str, stack: LocalStackProcess, user: str) -> str:
    # In the fragment: never sent to the static server, and the page takes it out of the address bar.
    return f"{origin}/#api={quote(stack.api, safe='')}&token={stack.token(user)}"


def assert_played_and_stored(
    stack: LocalStackProcess, auth: dict[str, str], card: dict[str, Any], audio: Path
) -> dict[str, Any]:
    """The card's track is ready, holds exactly the file's bytes, and the page drew its waveform and
    loaded its stream."""
    track: dict[str, Any] = httpx.get(f"{stack.api}/v1/tracks/{card['trackId']}", headers=auth).json()
    assert track["status"] == "ready", track
    original = httpx.get(
        f"{stack.api}/v1/tracks/{card['trackId']}/stream?format=original", headers=auth, follow_redirects=True
    )
    assert original.status_code == 200
    assert original.content == audio.read_bytes()
    assert int(card["bytesUploaded"]) == audio.stat().st_size == int(card["bytesTotal"])
    # The page drew the waveform lane's peaks ...
    assert track["waveform"]["source"] == "analysis"
    assert card["waveform"] == {"peaks": len(track["waveform"]["peaks"]), "source": "analysis"}
    assert card["lanes"]["waveform"] == "succeeded"
    # ... and its player loaded a rendition straight from storage, as long as the track is.
    assert card["audio"]["error"] is None and card["audio"]["readyState"] >= 1, card["audio"]
    assert card["audio"]["host"] == urlsplit(stack.moto).netloc
    assert card["audio"]["duration"] == pytest.approx(track["durationMs"] / 1000, abs=0.5)
    return track


def test_the_stacks_own_page_uploads_with_a_dev_token_until_the_track_plays(local_stack, tmp_path):
    audio = music(tmp_path / "first-light.wav", seconds=4, pitch_hz=262)

    report = drive(f"{local_stack.api}/", [audio], "stack-page.png")

    assert report["ready"] == "true"
    assert "(local dev token)" in report["connection"]
    card = cards(report)["first-light.wav"]
    assert (card["state"], card["method"]) == ("ready", "PUT"), card
    assert_played_and_stored(local_stack, local_stack.auth("web"), card, audio)


def test_the_stack_serves_the_page_and_mints_dev_tokens_for_it_alone(local_stack):
    assert httpx.get(f"{local_stack.api}/").headers["location"] == "/upload/"
    page = httpx.get(f"{local_stack.api}/upload/")
    assert page.status_code == 200 and "./assets/upload.js" in page.text
    assert httpx.get(f"{local_stack.api}/upload/assets/upload.js").status_code == 200

    # Any other site open in the browser asks with Sec-Fetch-Site: cross-site (or same-site).
    elsewhere = httpx.get(f"{local_stack.api}/local/dev-token", headers={"Sec-Fetch-Site": "cross-site"})
    own = httpx.get(f"{local_stack.api}/local/dev-token?user=web-own", headers={"Sec-Fetch-Site": "same-origin"})

    assert elsewhere.status_code == 403
    assert elsewhere.json()["error"]["code"] == "dev_token_same_origin_only"
    assert own.status_code == 200
    minted = own.json()
    me = httpx.get(f"{local_stack.api}/v1/artists/me", headers={"Authorization": f"Bearer {minted['token']}"})
    assert me.json()["handle"] == minted["handle"] == "web-own"


def test_a_page_on_another_origin_uploads_a_put_and_a_multipart_file_into_an_album(local_stack, page_origin, tmp_path):
    auth = artist(local_stack, "web-cross")
    short = music(tmp_path / "intro.wav", seconds=5, pitch_hz=330)
    # Over two of S3's smallest parts (5 MiB): the page sends it in parts.
    long = music(tmp_path / "night-drive.wav", seconds=65, pitch_hz=196)
    assert long.stat().st_size > 2 * 5 * MiB
    assert urlsplit(page_origin).netloc != urlsplit(local_stack.api).netloc

    page = page_for(page_origin, local_stack, "web-cross")
    report = drive(page, [short, long], "cross-origin.png", album="Night Drive")

    assert report["failedRequests"] == []
    shown = cards(report)
    assert (shown["intro.wav"]["state"], shown["intro.wav"]["method"]) == ("ready", "PUT"), shown["intro.wav"]
    parts = shown["night-drive.wav"]
    assert (parts["state"], parts["method"]) == ("ready", "MULTIPART"), parts
    # Uppy cut it at the plan's part size and sent every part to its presigned URL.
    assert int(parts["partCount"]) == -(-long.stat().st_size // int(parts["partSize"])) >= 2
    assert int(parts["partsUploaded"]) == int(parts["partCount"])
    # S3's own multipart protocol, from the browser to storage: the API opened the upload (the page
    # never sends CreateMultipartUpload), the page lists the parts, sends each once, completes it.
    operations = s3_operations(report, local_stack)
    count = int(parts["partCount"])
    assert sorted(op for op in operations if op.startswith("UploadPart")) == [
        f"UploadPart {n}" for n in range(1, count + 1)
    ]
    assert (operations.count("ListParts"), operations.count("CompleteMultipartUpload")) == (1, 1)
    assert (operations.count("PutObject"), operations.count("CreateMultipartUpload")) == (1, 0)
    api_paths = [r["path"] for r in report["requests"] if r["host"] == urlsplit(local_stack.api).netloc]
    assert not [path for path in api_paths if path.endswith(("/complete", "/parts"))]
    for name, audio in (("intro.wav", short), ("night-drive.wav", long)):
        track = assert_played_and_stored(local_stack, auth, shown[name], audio)
        assert track["album"] == "Night Drive"


def test_presigned_requests_about_to_expire_are_signed_afresh_before_use(local_stack, page_origin, tmp_path):
    auth = artist(local_stack, "web-late")
    audio = music(tmp_path / "late.wav", seconds=65, pitch_hz=247)
    # Part URLs live 15 minutes: 14.5 minutes on, every one the intent gave is within the page's
    # one-minute margin of its expiry.
    ahead_ms = 14.5 * 60 * 1000

    report = drive(page_for(page_origin, local_stack, "web-late"), [audio], "late.png", clockAheadMs=ahead_ms)

    card = cards(report)["late.wav"]
    assert (card["state"], card["method"]) == ("ready", "MULTIPART"), card
    # Every S3 request on the multipart upload went out right after the page fetched fresh URLs.
    storage = urlsplit(local_stack.moto).netloc
    sequence = [
        "refresh" if r["path"].endswith("/parts/urls") else "s3"
        for r in report["requests"]
        if r["path"].endswith("/parts/urls") or (r["host"] == storage and "uploadId" in r["query"])
    ]
    s3_requests = int(card["partCount"]) + 2  # ListParts, the parts, CompleteMultipartUpload
    assert sequence == ["refresh", "s3"] * s3_requests
    assert_played_and_stored(local_stack, auth, card, audio)


def test_refusals_show_their_codes_and_a_second_copy_is_a_duplicate(local_stack, page_origin, tmp_path):
    artist(local_stack, "web-refused")
    notes = tmp_path / "notes.txt"
    notes.write_text("not audio\n")
    # 600 MB without using the disk: refused at the intent, before the browser reads a byte.
    huge = tmp_path / "huge.wav"
    with huge.open("wb") as sparse:
        sparse.truncate(600 * 1000 * 1000)
    take = music(tmp_path / "take.wav", seconds=3, pitch_hz=440)
    copy = Path(shutil.copy(take, tmp_path / "take-copy.wav"))

    report = drive(page_for(page_origin, local_stack, "web-refused"), [notes, huge, take, copy], "refusals.png")

    shown = cards(report)
    for name, code in (("notes.txt", "unsupported_media_type"), ("huge.wav", "file_too_large")):
        assert (shown[name]["state"], shown[name]["errorCode"]) == ("refused", code), shown[name]
        assert shown[name]["errorText"].startswith(code)
        assert "uploadId" not in shown[name]
    # The same bytes twice: exactly one is processed, the other names it.
    first, second = sorted((shown["take.wav"], shown["take-copy.wav"]), key=lambda card: card["state"])
    assert (first["state"], second["state"]) == ("duplicate", "ready"), (first, second)
    assert first["errorCode"] == "duplicate"
    assert first["duplicateOf"] == second["trackId"]
    assert second["trackId"] in first["errorText"]


def test_an_artist_without_the_upload_entitlement_is_refused(local_stack, page_origin, tmp_path):
    artist(local_stack, "web-revoked")
    env = {**os.environ, "MOTO_PORT": str(urlsplit(local_stack.moto).port)}
    revoke = [sys.executable, "-m", "local.cli", "entitlement", "revoke", "web-revoked", "--reason", "test"]
    subprocess.run(revoke, cwd=ROOT, env=env, check=True, capture_output=True)
    take = music(tmp_path / "take.wav", seconds=3, pitch_hz=523)

    report = drive(page_for(page_origin, local_stack, "web-revoked"), [take], "entitlement.png")

    card = cards(report)["take.wav"]
    assert (card["state"], card["errorCode"]) == ("refused", "entitlement_required"), card
    assert card["errorText"].startswith("entitlement_required")

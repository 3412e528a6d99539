"""``make bench``: processing speed and memory, measured in one run on this machine.

(a) raw ffmpeg producing the three renditions (AAC 256k, Opus 160k, MP3 320k) in one process from a
    3-minute 44.1 kHz stereo WAV — the floor any pipeline pays;
(b) the same WAV through the local stack: the clock starts when the presigned PUT completes (the S3
    event may finalize before the explicit call) and stops when the track is ``ready`` (playable:
    probe and transcode done, the renditions stored) — moto's state machine, the runner, DynamoDB,
    S3 and the optional lanes running beside the transcode included; the ratio b/a (target <= 1.15).
    Also printed: when every lane (waveform, loudness, tags, embeddings, ...) has ended;
(c) peak RSS of each processing step (the Python process and its ffmpeg child) on a 500 MB WAV,
    run exactly as the Lambda runs it: streaming from a presigned URL, uploading to S3 (target
    <= 300 MB).
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import imageio_ffmpeg

from local.config import free_port

ROOT = Path(__file__).resolve().parent.parent
FFMPEG = imageio_ffmpeg.get_ffmpeg_exe()
DEV_SECRET = "bench-dev-secret-at-least-32-bytes-long!"
RUNS = 3  # medians of three: single runs of a 10 s transcode vary by +-1 s on a shared machine


def render_wav(path: Path, seconds: float) -> Path:
    """Music-like content (a chord plus quiet noise) so the encoders do real work."""
    graph = (
        f"sine=frequency=220:duration={seconds}[a];sine=frequency=277:duration={seconds}[b];"
        f"sine=frequency=330:duration={seconds}[c];anoisesrc=color=pink:amplitude=0.05:duration={seconds}[n];"
        "[a][b][c][n]amix=inputs=4,volume=2[out]"
    )
    subprocess.run(
        [FFMPEG, "-v", "error", "-y", "-filter_complex", graph, "-map", "[out]", "-ac", "2", "-ar", "44100",
         "-c:a", "pcm_s16le", str(path)],
        check=True,
    )  # fmt: skip
    return path


def raw_ffmpeg_three_renditions(wav: Path, out_dir: Path) -> float:
    """One ffmpeg process, the very command the transcode lane runs (same encoder settings), on a
    local file: b/a then measures what the pipeline adds, not a difference in settings."""
    from functions.media import transcode

    start = time.perf_counter()
    transcode.transcode(str(wav), out_dir)
    return time.perf_counter() - start


class StackProcess:
    """The local stack exactly as `make run` starts it, on free ports."""

    def __init__(self, log: Path) -> None:
        self.port, self.moto_port = free_port(), free_port()
        env = {
            **os.environ,
            "PORT": str(self.port),
            "MOTO_PORT": str(self.moto_port),
            "TRACKLANE_DEV_SECRET": DEV_SECRET,
        }
        self.log = log.open("wb")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "local.stack"], cwd=ROOT, env=env, stdout=self.log, stderr=self.log
        )
        self.api = f"http://127.0.0.1:{self.port}"
        deadline = time.monotonic() + 120
        while True:
            try:
                if httpx.get(f"{self.api}/health", timeout=2).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline or self.process.poll() is not None:
                raise RuntimeError(f"local stack did not start; see {log}")
            time.sleep(0.3)

    def stop(self) -> None:
        self.process.send_signal(signal.SIGINT)
        self.process.wait(timeout=30)
        self.log.close()


def through_the_stack(wav: Path, log: Path, runs: int) -> list[tuple[float, float, dict[str, Any]]]:
    from local.devauth import mint

    stack = StackProcess(log)
    try:
        auth = {"Authorization": f"Bearer {mint('bench', DEV_SECRET)}"}
        httpx.put(f"{stack.api}/v1/artists/me", json={"handle": "bench"}, headers=auth).raise_for_status()
        return [_one_upload(stack, auth, wav) for _ in range(runs)]
    finally:
        stack.stop()


def _one_upload(stack: StackProcess, auth: dict[str, str], wav: Path) -> tuple[float, float, dict[str, Any]]:
    """Seconds from the finalize call to ``ready`` and to the end of every lane, and the final
    status. The next run starts only after every lane of this one has ended."""
    body = {"fileName": wav.name, "contentType": "audio/wav", "byteSize": wav.stat().st_size}
    intent = httpx.post(f"{stack.api}/v1/uploads", json=body, headers=auth).json()
    with wav.open("rb") as audio:
        httpx.put(
            intent["signedUrl"], content=audio.read(), headers=intent["requiredHeaders"], timeout=120
        ).raise_for_status()
    start = time.perf_counter()
    httpx.post(intent["finalizeUrl"], headers=auth).raise_for_status()
    ready_after: float | None = None
    while True:
        status = httpx.get(f"{stack.api}/v1/tracks/{intent['trackId']}/processing-status", headers=auth).json()
        now = time.perf_counter() - start
        if ready_after is None and status["status"] in {"ready", "failed"}:
            ready_after = now
        if status["workflowStatus"] in {"succeeded", "failed"}:
            return ready_after if ready_after is not None else now, now, status
        time.sleep(0.25)  # each poll costs the stack CPU; 0.25 s keeps the observer light


def step_memory(wav: Path, work_dir: Path) -> list[dict[str, Any]]:
    """Each processing step in its own child process (as each Lambda invocation is), against a
    moto server in this process, reading the original from a presigned URL."""
    import logging

    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.WARNING)

    moto_port = free_port()
    os.environ["MOTO_PORT"] = str(moto_port)
    os.environ.update({"AWS_ACCESS_KEY_ID": "bench", "AWS_SECRET_ACCESS_KEY": "bench", "AWS_REGION": "us-east-1"})
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=moto_port, verbose=False)
    server.start()
    try:
        from local.provision import provision

        resources = provision(f"http://127.0.0.1:{moto_port}")
        from local.provision import client

        client("s3", resources.endpoint).upload_file(str(wav), resources.bucket, "uploads/bench/original.wav")
        probe_facts = _child_step(resources.environment(), "probe", {}, work_dir)["result"]
        results = []
        for step in ("probe", "transcode", "waveform", "loudness", "tags", "embeddings"):
            results.append(_child_step(resources.environment(), step, probe_facts, work_dir))
        return results
    finally:
        server.stop()


def _child_step(environment: dict[str, str], step: str, probe_facts: dict[str, Any], work_dir: Path) -> dict[str, Any]:
    payload = {
        "trackId": "bench-track",
        "ownerId": "bench",
        "uploadId": "bench",
        "objectKey": "uploads/bench/original.wav",
        "probe": probe_facts,
    }
    out = work_dir / f"{step}.json"
    subprocess.run(
        [sys.executable, "-m", "benchmarks.step_child", step, json.dumps(payload), str(out)],
        cwd=ROOT, env={**os.environ, **environment}, check=True,
    )  # fmt: skip
    return dict(json.loads(out.read_text()))


def _seconds(values: list[float]) -> str:
    return "(" + ", ".join(f"{v:.2f}" for v in values) + ")"


def _at(timestamp: str) -> datetime:
    return datetime.fromisoformat(timestamp.replace("Z", "+00:00"))


def _lane_seconds(lane: dict[str, Any]) -> float:
    if not (lane.get("startedAt") and lane.get("finishedAt")):
        return 0.0
    return (_at(lane["finishedAt"]) - _at(lane["startedAt"])).total_seconds()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--minutes", type=float, default=3.0, help="length of the speed-test WAV")
    parser.add_argument("--rss-mb", type=int, default=500, help="size of the memory-test WAV (0 skips it)")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="tracklane-bench-") as scratch:
        work = Path(scratch)
        wav = render_wav(work / "three-minutes.wav", args.minutes * 60)
        print(f"speed: {wav.name}, {wav.stat().st_size / 1e6:.1f} MB, {args.minutes:g} min 44.1 kHz stereo")
        raw_ffmpeg_three_renditions(wav, work)  # warm the page cache and the binary
        raws = [raw_ffmpeg_three_renditions(wav, work) for _ in range(RUNS)]
        raw = statistics.median(raws)
        print(f"  (a) raw ffmpeg, three renditions in one process: median {raw:6.2f} s  {_seconds(raws)}")
        timed = through_the_stack(wav, work / "stack.log", RUNS)
        pipeline = statistics.median(ready for ready, _, _ in timed)
        every_lane = statistics.median(done for _, done, _ in timed)
        _, _, status = sorted(timed, key=lambda run: run[0])[len(timed) // 2]
        print(
            f"  (b) finalize -> {status['status']} (playable) through the local stack: median {pipeline:6.2f} s"
            f"  {_seconds([ready for ready, _, _ in timed])}"
        )
        print(
            f"      finalize -> every lane ended (workflow {status['workflowStatus']}): median {every_lane:6.2f} s"
            f"  {_seconds([done for _, done, _ in timed])}"
        )
        first_start = min(_at(lane["startedAt"]) for lane in status["lanes"] if lane.get("startedAt"))
        for lane in status["lanes"]:
            offset = (_at(lane["startedAt"]) - first_start).total_seconds() if lane.get("startedAt") else 0.0
            runs_for = _lane_seconds(lane)
            print(f"      {lane['name']:<10} {lane['state']:<10} starts +{offset:5.2f} s, runs {runs_for:6.2f} s")
        print(f"  ratio b/a: {pipeline / raw:.3f}   (target <= 1.15)")
        print(f"  every lane / a: {every_lane / raw:.3f}   (no target: the optional lanes yield the CPU to transcode)")

        if args.rss_mb:
            seconds = args.rss_mb * 1_000_000 / (44_100 * 2 * 2)
            big = render_wav(work / "big.wav", seconds)
            size_mb = big.stat().st_size / 1e6
            print(f"memory: {big.name}, {size_mb:.0f} MB ({seconds / 60:.0f} min), each step in its own process")
            for r in step_memory(big, work)[1:]:
                print(
                    f"  {r['step']:<10} python {r['python_rss_mb']:6.1f} MB + ffmpeg {r['ffmpeg_rss_mb']:6.1f} MB"
                    f" = {r['step_peak_mb']:6.1f} MB   {r['seconds']:6.1f} s   (target <= 300 MB)"
                )
    return 0


if __name__ == "__main__":
    sys.exit(main())

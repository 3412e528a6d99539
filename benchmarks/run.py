"""``make bench``: processing speed and memory, measured in one run on this machine.

(a) raw ffmpeg producing the three renditions (AAC 256k, Opus 160k, MP3 320k) in one process from a
    3-minute 44.1 kHz stereo WAV — the floor any pipeline pays;
(b) the same WAV through the local stack: the clock starts when the presigned PUT completes (the S3
    event may finalize before the explicit call) and stops when the track is ``ready`` (playable:
    probe and the first rendition done; each rendition is its own task) — moto's state machine, the
    runner, DynamoDB, S3 and the optional lanes running beside the renditions included; the ratio
    b/a (target <= 0.5). Also printed: when all three renditions are stored (target <= 1.0 of a) and
    when every lane (waveform, loudness, tags, embeddings, ...) has ended. Each run
    uploads the very WAV (a) encoded, as its own artist: one owner uploading the same bytes again
    would get a ``duplicate`` that is never processed;
(c) peak RSS of each processing step (the Python process and its ffmpeg child) on a 500 MB WAV,
    run exactly as the Lambda runs it: streaming from a presigned URL, uploading to S3 (target
    <= 300 MB), and the CPU-seconds each step used;
(d) CPU-seconds of the whole pipeline per track-minute: user + system time of the stack process
    (moto, the runner, the API: one process) and of the ffmpeg children it waited for, from just
    before the PUT to every lane ended, less the stack's idle rate over the same wall time; and its
    ratio to the CPU-seconds of (a).

Then the AWS calls per hot request, each handler's cold import, and the local stack's start on an
empty store against its start on a kept store holding 1 GB of audio (``benchmarks.store_startup``;
``--store-mb 0`` skips it).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime
from pathlib import Path
from typing import Any, TextIO

import httpx
import imageio_ffmpeg

from benchmarks import cold_start, round_trips
from functions.workflow.definition import RENDITION_TASK_LANES
from local.config import free_port

ROOT = Path(__file__).resolve().parent.parent
FFMPEG = imageio_ffmpeg.get_ffmpeg_exe()
# The local stack's start on a store holding this much audio, against its start on an empty store.
STORE_MB = 1024
RUNS = 3  # medians of three: single runs of a 10 s transcode vary by +-1 s on a shared machine
# The memory test runs each processing step once, as one Lambda invocation would.
MEMORY_STEPS = ("probe", *RENDITION_TASK_LANES, "waveform", "loudness", "tags", "embeddings")


class BenchmarkFailed(RuntimeError):
    """The stack answered something a measurement cannot be taken from; the message says what."""


def _process_cpu_s(pid: int) -> float:
    """User + system CPU of process ``pid`` (all its threads) and of the children it has waited for
    (the lanes' ffmpeg runs), from /proc/<pid>/stat: utime, stime, cutime, cstime."""
    stat = Path(f"/proc/{pid}/stat").read_text()
    fields = stat[stat.rindex(")") + 2 :].split()  # after "pid (comm) "; fields[0] is field 3
    return sum(int(value) for value in fields[11:15]) / os.sysconf("SC_CLK_TCK")


def _children_cpu_s() -> float:
    """User + system CPU of the children this process has waited for."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _answer(response: httpx.Response, what: str, *fields: str) -> dict[str, Any]:
    """The JSON object of a 2xx answer holding ``fields``; anything else is a BenchmarkFailed that
    quotes the answer (an error body names its code), not a KeyError further on."""
    try:
        body = response.json()
    except ValueError:
        body = None
    missing = [field for field in fields if not isinstance(body, dict) or field not in body]
    if response.is_error or missing:
        raise BenchmarkFailed(
            f"{what}: HTTP {response.status_code}"
            + (f", no {', '.join(missing)} in the answer" if missing else "")
            + f": {response.text[:500]}"
        )
    assert isinstance(body, dict)
    return body


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


def raw_ladder(wav: Path, out_dir: Path) -> tuple[float, float]:
    """(a) once: its wall seconds and the CPU-seconds of its ffmpeg child."""
    before = _children_cpu_s()
    wall = raw_ffmpeg_three_renditions(wav, out_dir)
    return wall, _children_cpu_s() - before


class StackProcess:
    """The local stack exactly as `make run` starts it, on free ports."""

    def __init__(self, log: Path, *, data_dir: Path | None = None) -> None:
        from local.devauth import DevKeys

        self.port, self.moto_port = free_port(), free_port()
        self.dev_keys = DevKeys(log.with_name("dev-signing-key.pem")).ensure()
        # The stack configures its own functions: settings from the caller's shell (a table name,
        # an endpoint) would point it elsewhere.
        inherited = {name: value for name, value in os.environ.items() if not name.startswith("TRACKLANE_")}
        env = {
            **inherited,
            "PORT": str(self.port),
            "MOTO_PORT": str(self.moto_port),
            # Its own dev signing key and state file: the checkout's .tracklane/ belongs to a `make run`.
            "TRACKLANE_DEV_KEY_FILE": str(self.dev_keys.private_key_file),
            "TRACKLANE_STACK_STATE_FILE": str(log.with_name("stack.json")),
            # Nothing kept unless asked (benchmarks.store_startup): the checkout's store is a `make run`'s.
            "TRACKLANE_DATA_DIR": str(data_dir) if data_dir is not None else "",
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


@dataclass(frozen=True)
class StackRun:
    """One upload through the local stack: seconds from the finalize call to ``ready`` (the first
    rendition), to the last rendition stored and to the end of every lane, and the processing
    status it ended with. ``cpu_s``: the stack's CPU-seconds (children included) from just before
    the PUT to the end of every lane, over ``cpu_wall_s`` seconds, idle rate not yet subtracted."""

    ready_s: float
    renditions_s: float
    every_lane_s: float
    status: dict[str, Any]
    cpu_s: float = 0.0
    cpu_wall_s: float = 0.0


IDLE_BASELINE_S = 10.0


def idle_cpu_rate(stack: StackProcess, auth: dict[str, str], track_id: str) -> float:
    """The stack's CPU-seconds per second while no upload runs (its pollers, the sweeper) and the
    benchmark polls a finished track's status as often as it does during a run: the part of a
    run's CPU that is not the pipeline's."""
    before, start = _process_cpu_s(stack.process.pid), time.perf_counter()
    while time.perf_counter() - start < IDLE_BASELINE_S:
        httpx.get(f"{stack.api}/v1/tracks/{track_id}/processing-status", headers=auth)
        time.sleep(0.25)
    return (_process_cpu_s(stack.process.pid) - before) / (time.perf_counter() - start)


def through_the_stack(wav: Path, log: Path, runs: int, *, timeout_s: float = 900) -> tuple[list[StackRun], float]:
    """The runs, and the stack's idle CPU rate (``idle_cpu_rate``) measured after them."""
    from local.devauth import mint

    stack = StackProcess(log)
    try:
        measured = []
        for n in range(1, runs + 1):
            # A new artist per run: the same bytes from one owner would be a duplicate of run 1.
            owner = f"bench-{n}"
            auth = {"Authorization": f"Bearer {mint(owner, stack.dev_keys)}"}
            _answer(httpx.put(f"{stack.api}/v1/artists/me", json={"handle": owner}, headers=auth), "artist profile")
            measured.append(_one_upload(stack, auth, wav, timeout_s=timeout_s))
        idle = idle_cpu_rate(stack, auth, measured[-1].status["trackId"])
        return measured, idle
    finally:
        stack.stop()


def _one_upload(stack: StackProcess, auth: dict[str, str], wav: Path, *, timeout_s: float) -> StackRun:
    """The next run starts only after every lane of this one has ended."""
    body = {"fileName": wav.name, "contentType": "audio/wav", "byteSize": wav.stat().st_size}
    intent = _answer(
        httpx.post(f"{stack.api}/v1/uploads", json=body, headers=auth),
        "upload intent",
        "signedUrl",
        "requiredHeaders",
        "finalizeUrl",
    )
    cpu_before, cpu_start = _process_cpu_s(stack.process.pid), time.perf_counter()
    with wav.open("rb") as audio:
        put = httpx.put(intent["signedUrl"], content=audio.read(), headers=intent["requiredHeaders"], timeout=120)
    if put.is_error:
        raise BenchmarkFailed(f"PUT to the signed URL: HTTP {put.status_code}: {put.text[:500]}")
    start = time.perf_counter()
    finalized = _answer(httpx.post(intent["finalizeUrl"], headers=auth, timeout=60), "finalize", "status", "trackId")
    # The S3 event may finalize first ("already_finalized"); "duplicate" processes nothing.
    if finalized["status"] not in {"finalized", "already_finalized"}:
        raise BenchmarkFailed(f"finalize answered {finalized['status']!r}, nothing to measure: {finalized}")
    track_id = finalized["trackId"]
    ready_after: float | None = None
    renditions_after: float | None = None
    deadline = time.monotonic() + timeout_s
    while True:
        status = _answer(
            httpx.get(f"{stack.api}/v1/tracks/{track_id}/processing-status", headers=auth),
            f"processing status of {track_id}",
            "status",
            "workflowStatus",
            "lanes",
        )
        now = time.perf_counter() - start
        if ready_after is None and status["status"] in {"ready", "failed"}:
            ready_after = now
        states = {lane["name"]: lane["state"] for lane in status["lanes"]}
        if renditions_after is None and all(states.get(lane) == "succeeded" for lane in RENDITION_TASK_LANES):
            renditions_after = now
        if status["workflowStatus"] in {"succeeded", "failed"}:
            if status["status"] != "ready" or renditions_after is None:
                raise BenchmarkFailed(f"track {track_id} ended {status['status']!r}, not ready: {json.dumps(status)}")
            cpu = _process_cpu_s(stack.process.pid) - cpu_before
            ready = ready_after if ready_after is not None else now
            return StackRun(ready, renditions_after, now, status, cpu, time.perf_counter() - cpu_start)
        if time.monotonic() > deadline:
            raise BenchmarkFailed(f"track {track_id} still processing after {timeout_s:.0f} s: {json.dumps(status)}")
        time.sleep(0.25)  # each poll costs the stack CPU; 0.25 s keeps the observer light


def step_memory(wav: Path, work_dir: Path) -> list[dict[str, Any]]:
    """Each processing step in its own child process (as each Lambda invocation is), against a
    moto server in this process, reading the original from a presigned URL. The children get the
    stack's settings in their environment; this process's own environment is left as it was."""
    import logging

    from moto.server import ThreadedMotoServer

    from local.provision import client, provision

    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    for name, value in {
        "AWS_ACCESS_KEY_ID": "bench",
        "AWS_SECRET_ACCESS_KEY": "bench",
        "AWS_REGION": "us-east-1",
    }.items():
        os.environ.setdefault(name, value)  # moto's fake credentials, unless some are set already
    moto_port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=moto_port, verbose=False)
    server.start()
    try:
        resources = provision(f"http://127.0.0.1:{moto_port}")
        client("s3", resources.endpoint).upload_file(str(wav), resources.bucket, "uploads/bench/original.wav")
        environment = {**resources.environment(), "MOTO_PORT": str(moto_port)}
        probed = _child_step(environment, "probe", {}, work_dir)
        results = [probed]
        for step in MEMORY_STEPS[1:]:
            results.append(_child_step(environment, step, probed["result"], work_dir))
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
    done = subprocess.run(
        [sys.executable, "-m", "benchmarks.step_child", step, json.dumps(payload), str(out)],
        cwd=ROOT, env={**os.environ, **environment}, stderr=subprocess.PIPE, text=True, check=False,
    )  # fmt: skip
    if done.returncode != 0:
        raise BenchmarkFailed(f"step {step} exited {done.returncode}:\n{done.stderr[-3000:]}")
    return dict(json.loads(out.read_text()))


@dataclass(frozen=True)
class Report:
    """What one benchmark run measured; ``print_report`` renders it."""

    speed_wav: Path
    speed_seconds: float
    raw_s: list[float]
    stack_runs: list[StackRun]
    memory_wav_bytes: int = 0
    memory_seconds: float = 0.0
    steps: tuple[dict[str, Any], ...] = ()
    raw_cpu_s: tuple[float, ...] = ()
    idle_cpu_rate: float = 0.0

    @property
    def raw_median(self) -> float:
        return statistics.median(self.raw_s)

    @property
    def ready_median(self) -> float:
        return statistics.median(run.ready_s for run in self.stack_runs)

    @property
    def renditions_median(self) -> float:
        return statistics.median(run.renditions_s for run in self.stack_runs)

    @property
    def every_lane_median(self) -> float:
        return statistics.median(run.every_lane_s for run in self.stack_runs)

    @property
    def ratio(self) -> float:
        """b/a: time to the first playable rendition against the bare three-rendition encode (target <= 0.5)."""
        return self.ready_median / self.raw_median

    @property
    def pipeline_cpu_s(self) -> list[float]:
        """(d) per run: the stack's CPU-seconds less its idle rate over the run's wall time."""
        return [run.cpu_s - self.idle_cpu_rate * run.cpu_wall_s for run in self.stack_runs]

    @property
    def cpu_ratio(self) -> float:
        """(d): the whole pipeline's CPU-seconds against the raw ladder's, medians."""
        return statistics.median(self.pipeline_cpu_s) / statistics.median(self.raw_cpu_s)

    @property
    def median_run(self) -> StackRun:
        return sorted(self.stack_runs, key=lambda run: run.ready_s)[len(self.stack_runs) // 2]


def measure(*, seconds: float, runs: int, rss_mb: float, work_dir: Path) -> Report:
    """(a) and (b) on ``seconds`` of audio, ``runs`` times each; (c) on an ``rss_mb`` MB WAV (0
    skips it). Raises BenchmarkFailed when the stack answers anything a number cannot come from."""
    wav = render_wav(work_dir / "speed.wav", seconds)
    raw_ffmpeg_three_renditions(wav, work_dir)  # warm the page cache and the binary
    raws, raw_cpu = zip(*(raw_ladder(wav, work_dir) for _ in range(runs)), strict=True)
    timed, idle = through_the_stack(wav, work_dir / "stack.log", runs)
    report = Report(
        speed_wav=wav,
        speed_seconds=seconds,
        raw_s=list(raws),
        stack_runs=timed,
        raw_cpu_s=raw_cpu,
        idle_cpu_rate=idle,
    )
    if not rss_mb:
        return report
    memory_seconds = rss_mb * 1_000_000 / (44_100 * 2 * 2)
    big = render_wav(work_dir / "big.wav", memory_seconds)
    steps = tuple(step_memory(big, work_dir))
    return replace(report, memory_wav_bytes=big.stat().st_size, memory_seconds=memory_seconds, steps=steps)


def _seconds(values: list[float]) -> str:
    return "(" + ", ".join(f"{v:.2f}" for v in values) + ")"


def _at(timestamp: str) -> datetime:
    return datetime.fromisoformat(timestamp.replace("Z", "+00:00"))


def _lane_seconds(lane: dict[str, Any]) -> float:
    if not (lane.get("startedAt") and lane.get("finishedAt")):
        return 0.0
    return (_at(lane["finishedAt"]) - _at(lane["startedAt"])).total_seconds()


def print_report(report: Report, out: TextIO = sys.stdout) -> None:
    def say(line: str) -> None:
        print(line, file=out)

    wav = report.speed_wav
    say(f"speed: {wav.name}, {wav.stat().st_size / 1e6:.1f} MB, {report.speed_seconds / 60:g} min 44.1 kHz stereo")
    raw = f"median {report.raw_median:6.2f} s  {_seconds(report.raw_s)}"
    say(f"  (a) raw ffmpeg, three renditions in one process: {raw}")
    status = report.median_run.status
    say(
        f"  (b) finalize -> {status['status']} (playable) through the local stack: median {report.ready_median:6.2f} s"
        f"  {_seconds([run.ready_s for run in report.stack_runs])}"
    )
    say(
        f"      finalize -> all three renditions stored: median {report.renditions_median:6.2f} s"
        f"  {_seconds([run.renditions_s for run in report.stack_runs])}"
    )
    say(
        f"      finalize -> every lane ended (workflow {status['workflowStatus']}):"
        f" median {report.every_lane_median:6.2f} s  {_seconds([run.every_lane_s for run in report.stack_runs])}"
    )
    starts = [_at(lane["startedAt"]) for lane in status["lanes"] if lane.get("startedAt")]
    for lane in status["lanes"]:
        offset = (_at(lane["startedAt"]) - min(starts)).total_seconds() if lane.get("startedAt") else 0.0
        say(f"      {lane['name']:<14} {lane['state']:<10} starts +{offset:5.2f} s, runs {_lane_seconds(lane):6.2f} s")
    say(f"  first playable / a: {report.ratio:.3f}   (target <= 0.5)")
    say(f"  all renditions / a: {report.renditions_median / report.raw_median:.3f}   (target <= 1.0)")
    say(
        f"  every lane / a: {report.every_lane_median / report.raw_median:.3f}"
        "   (no target: the optional lanes yield the CPU to the renditions)"
    )
    _print_cpu(report, say)
    if report.steps:
        say(
            f"memory: {report.memory_wav_bytes / 1e6:.0f} MB WAV ({report.memory_seconds / 60:.0f} min),"
            " each step in its own process (cpu: the step's process and its ffmpeg; moto's serving not included)"
        )
        minutes = report.memory_seconds / 60
        for r in report.steps:
            say(
                f"  {r['step']:<14} python {r['python_rss_mb']:6.1f} MB + ffmpeg {r['ffmpeg_rss_mb']:6.1f} MB"
                f" = {r['step_peak_mb']:6.1f} MB   {r['seconds']:6.1f} s   (target <= 300 MB)"
                f"   cpu {r['cpu_s']:6.1f} s = {r['cpu_s'] / minutes:5.2f} s per track-minute"
            )


def _print_cpu(report: Report, say: Callable[[str], None]) -> None:
    """(d): CPU-seconds per track-minute, the whole pipeline's and the raw ladder's."""
    minutes = report.speed_seconds / 60
    pipeline, raw = report.pipeline_cpu_s, list(report.raw_cpu_s)
    say(
        f"cpu: whole pipeline (PUT -> every lane ended, the stack and its ffmpeg children, less its idle"
        f" {report.idle_cpu_rate:.3f} CPU-s/s): median {statistics.median(pipeline) / minutes:6.2f} CPU-s per"
        f" track-minute  {_seconds([value / minutes for value in pipeline])}"
    )
    say(
        f"     raw ladder (a): median {statistics.median(raw) / minutes:6.2f} CPU-s per track-minute"
        f"  {_seconds([value / minutes for value in raw])}"
    )
    say(f"  whole pipeline cpu / raw ladder cpu: {report.cpu_ratio:.3f}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--minutes", type=float, default=3.0, help="length of the speed-test WAV")
    parser.add_argument("--runs", type=int, default=RUNS, help="repetitions of (a) and (b); medians are printed")
    parser.add_argument("--rss-mb", type=float, default=500, help="size of the memory-test WAV (0 skips it)")
    parser.add_argument(
        "--cold-start-runs", type=int, default=cold_start.RUNS, help="rounds of the cold-start imports (0 skips them)"
    )
    parser.add_argument(
        "--store-mb",
        type=int,
        default=STORE_MB,
        help="audio in the kept store whose start is timed against an empty one's (0 skips it)",
    )
    args = parser.parse_args()

    print(
        f"measuring ({args.runs} runs of {args.minutes:g} min; the memory test on {args.rss_mb:g} MB) ...", flush=True
    )
    with tempfile.TemporaryDirectory(prefix="tracklane-bench-") as scratch:
        try:
            report = measure(seconds=args.minutes * 60, runs=args.runs, rss_mb=args.rss_mb, work_dir=Path(scratch))
        except BenchmarkFailed as failed:
            print(f"benchmark failed: {failed}", file=sys.stderr)
            return 1
        print_report(report)
    # Issue 15's other two numbers: AWS calls per hot request, and each handler's cold import.
    print(round_trips.report(round_trips.measure()), flush=True)
    if args.cold_start_runs:
        rows, tracer = cold_start.measure(args.cold_start_runs)
        cold_start.print_report(rows, tracer)
    if args.store_mb:
        # Issue 17: starting on a kept store costs about what starting empty does.
        from benchmarks import store_startup  # it imports this module's StackProcess

        print(store_startup.measure(megabytes=args.store_mb, object_mb=100, items=10_000), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())

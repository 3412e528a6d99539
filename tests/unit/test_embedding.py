"""Embeddings of real audio rendered by ffmpeg, nearest-neighbour ranking, and ffmpeg.stream()."""

import math
import os
import signal
import subprocess
import time
import tracemalloc
from pathlib import Path

import imageio_ffmpeg
import numpy as np
import pytest

from functions.domain.catalog.similarity import nearest, similarity
from functions.media import embedding, ffmpeg
from functions.media.embedding import DIMENSIONS, SAMPLE_RATE_HZ, VERSION, Embedding, embed
from functions.step_errors import StepFailed

FFMPEG = imageio_ffmpeg.get_ffmpeg_exe()
SECONDS = 4
PCM_OUT = ["-c:a", "pcm_f32le", "-f", "f32le", "pipe:1"]


def render(path: Path, graph: str, *, args: tuple[str, ...] = ()) -> Path:
    """``graph`` is a lavfi source graph (one source, or several joined into ``[out0]``)."""
    subprocess.run(
        [FFMPEG, "-hide_banner", "-nostdin", "-y", "-v", "error", "-f", "lavfi", "-i", graph, *args, str(path)],
        check=True,
    )
    return path


def convert(source: Path, path: Path, *args: str) -> Path:
    subprocess.run(
        [FFMPEG, "-hide_banner", "-nostdin", "-y", "-v", "error", "-i", str(source), *args, str(path)], check=True
    )
    return path


# Four clearly different kinds of sound; ``take`` changes the noise seed or the phases and timing,
# so a second take is the same kind of sound without a single sample in common with the first.
def music(take: int) -> str:
    """Pink noise and a 220 Hz tone: the long-term spectrum of most music, with a pitch in it."""
    return (
        f"anoisesrc=color=pink:amplitude=0.4:r=44100:d={SECONDS}:seed={take}[noise];"
        f"sine=frequency=220:sample_rate=44100:d={SECONDS}[tone];"
        "[noise][tone]amix=inputs=2:normalize=0[out0]"
    )


def bright(take: int) -> str:
    """Hiss above 3 kHz: a bright, steady noise texture."""
    return f"anoisesrc=color=white:amplitude=0.5:r=44100:d={SECONDS}:seed={take},highpass=f=3000,highpass=f=3000"


def chord(take: int) -> str:
    """A held A minor chord (A2 C3 E3): low, tonal, no movement."""
    tones = "+".join(f"0.3*sin(2*PI*{hz}*t+{take * k})" for k, hz in enumerate((110, 130.81, 164.81), start=1))
    return f"aevalsrc='{tones}':s=44100:d={SECONDS}"


def clicks(take: int) -> str:
    """Noise bursts every 250 ms over a decaying 55 Hz kick every 500 ms: percussive."""
    shift = 0.1 * take
    return (
        f"aevalsrc='0.8*(2*random({take})-1)*exp(-mod(t+{shift},0.25)*60)"
        f"+0.8*sin(2*PI*55*t)*exp(-mod(t+{shift},0.5)*20)':s=44100:d={SECONDS}"
    )


KINDS = {"music": music, "bright": bright, "chord": chord, "clicks": clicks}
VARIANTS = ("mp3-128k", "minus-6-db", "another-take")


@pytest.fixture(scope="module")
def sounds(tmp_path_factory: pytest.TempPathFactory) -> dict[tuple[str, str], Path]:
    """(kind, variant) -> file: each kind's original WAV and its variants."""
    folder = tmp_path_factory.mktemp("embedding")
    made: dict[tuple[str, str], Path] = {}
    for kind, graph in KINDS.items():
        original = made[kind, "original"] = render(folder / f"{kind}.wav", graph(1))
        made[kind, "mp3-128k"] = convert(original, folder / f"{kind}.mp3", "-c:a", "libmp3lame", "-b:a", "128k")
        made[kind, "minus-6-db"] = convert(original, folder / f"{kind}-quiet.wav", "-af", "volume=-6dB")
        made[kind, "another-take"] = render(folder / f"{kind}-take2.wav", graph(2))
    return made


@pytest.fixture(scope="module")
def vectors(sounds: dict[tuple[str, str], Path]) -> dict[tuple[str, str], tuple[float, ...]]:
    return {key: embed(str(path)).vector for key, path in sounds.items()}


def decode(path: Path) -> np.ndarray:
    """The whole file as embed() hears it, in memory (fine for a few seconds)."""
    pcm = subprocess.run(
        [FFMPEG, "-v", "error", "-i", str(path), "-ac", "1", "-ar", str(SAMPLE_RATE_HZ), *PCM_OUT],
        check=True,
        capture_output=True,
    ).stdout
    return np.frombuffer(pcm, dtype="<f4").astype(np.float32)


def features_in_chunks(samples: np.ndarray, size: int) -> np.ndarray:
    statistics = embedding._Statistics()
    for start in range(0, len(samples), size):
        statistics.add(samples[start : start + size])
    vector = statistics.features()
    assert vector is not None
    return vector


# --- embed() -------------------------------------------------------------------------------------


def test_an_embedding_is_a_unit_vector_of_the_documented_size_and_shape(sounds):
    result = embed(str(sounds["music", "original"]))

    assert result.version == VERSION == "logmel-v1"
    assert len(result.vector) == DIMENSIONS == 2 * embedding.MEL_BANDS + len(embedding.GLOBALS)
    assert all(value == round(value, 5) for value in result.vector)
    # Rounding to 5 decimals moves the length by at most sqrt(DIMENSIONS) * 5e-6.
    assert math.isclose(math.hypot(*result.vector), 1.0, abs_tol=1e-4)
    assert result.analysed_ms == SECONDS * 1000
    assert result.to_json() == {
        "version": VERSION,
        "dimensions": DIMENSIONS,
        "vector": list(result.vector),
        "analysedMs": SECONDS * 1000,
    }


def test_the_same_file_embeds_identically_twice(sounds):
    path = str(sounds["clicks", "original"])
    assert embed(path) == embed(path)


def test_the_same_music_6_db_quieter_embeds_almost_identically(vectors):
    assert similarity(vectors["music", "original"], vectors["music", "minus-6-db"]) > 0.99


@pytest.mark.parametrize("variant", VARIANTS)
@pytest.mark.parametrize("kind", KINDS)
def test_each_variant_finds_its_own_original_among_four_kinds_of_sound(vectors, kind, variant):
    # Given the four originals as the library, when a re-encoded, quieter or re-played version of
    # one of them asks for its nearest neighbours, then its own original comes first, by a margin.
    library = [(name, vectors[name, "original"]) for name in KINDS]

    ranking = nearest(vectors[kind, variant], library, limit=len(library))

    assert ranking[0][0] == kind, ranking
    (_, best), (_, runner_up) = ranking[:2]
    assert best > 0.98, ranking
    assert best - runner_up > 0.3, ranking


def test_different_kinds_of_sound_are_not_similar(vectors):
    for first in KINDS:
        for second in KINDS:
            if first != second:
                assert similarity(vectors[first, "original"], vectors[second, "original"]) < 0.7, (first, second)


def test_silence_before_the_music_barely_changes_the_vector(sounds, vectors, tmp_path):
    # Three seconds of digital silence, then the music: the silent frames are gated out.
    late = convert(sounds["music", "original"], tmp_path / "late.wav", "-af", "adelay=3000:all=1")
    result = embed(str(late))
    assert result.analysed_ms == (SECONDS + 3) * 1000
    assert similarity(result.vector, vectors["music", "original"]) > 0.99


def test_a_clip_shorter_than_one_frame_still_embeds(tmp_path):
    blip = render(tmp_path / "blip.wav", "sine=frequency=1000:sample_rate=44100:d=0.05")
    result = embed(str(blip))
    assert result.analysed_ms == 50
    assert len(result.vector) == DIMENSIONS
    assert math.isclose(math.hypot(*result.vector), 1.0, abs_tol=1e-4)


def test_chunk_size_does_not_change_the_vector(sounds):
    # Frames are cut at the same sample positions however the pipe delivers the samples.
    samples = decode(sounds["clicks", "another-take"])
    whole = features_in_chunks(samples, len(samples))

    for size in (777, 4096, embedding.HOP, embedding.N_FFT + 1):
        np.testing.assert_allclose(features_in_chunks(samples, size), whole, rtol=0, atol=1e-6)
    # And embed() itself, streaming from ffmpeg in its own chunks, is that same vector.
    streamed = embed(str(sounds["clicks", "another-take"])).vector
    np.testing.assert_allclose(streamed, whole, rtol=0, atol=1e-5)


def test_memory_does_not_grow_with_the_length_of_the_track(monkeypatch):
    # The "file" is a lavfi sine of the given length, streamed through the real decode path.
    monkeypatch.setattr(ffmpeg, "input_args", lambda source: ["-f", "lavfi", "-i", source])

    def peak_bytes(minutes: int) -> tuple[int, Embedding]:
        tracemalloc.start()
        try:
            result = embed(f"sine=frequency=440:sample_rate=22050:duration={minutes * 60}")
            return tracemalloc.get_traced_memory()[1], result
        finally:
            tracemalloc.stop()

    short_peak, short = peak_bytes(1)
    long_peak, long = peak_bytes(10)

    assert (short.analysed_ms, long.analysed_ms) == (60_000, 600_000)
    # Ten times the audio (53 MB of float32 PCM), the same peak within 2 MB: one chunk at a time.
    assert long_peak < short_peak + 2 * 1024 * 1024, (short_peak, long_peak)
    assert long_peak < 16 * 1024 * 1024, long_peak
    assert similarity(short.vector, long.vector) > 0.999


@pytest.mark.parametrize(
    "graph",
    [
        "anullsrc=r=44100:cl=stereo:d=3",  # digital silence
        "aevalsrc='0.0001*sin(2*PI*440*t)':s=44100:d=3",  # -80 dBFS: below the gate
    ],
)
def test_silence_fails_as_audio_silent(tmp_path, graph):
    with pytest.raises(StepFailed) as failure:
        embed(str(render(tmp_path / "quiet.wav", graph)))
    assert failure.value.code == "audio_silent"


def test_a_png_fails_as_audio_unreadable(png_named_wav):
    with pytest.raises(StepFailed) as failure:
        embed(str(png_named_wav))
    assert failure.value.code == "audio_unreadable"
    assert "decode" in failure.value.message


def test_text_named_mp3_fails_as_audio_unreadable(tmp_path):
    garbage = tmp_path / "song.mp3"
    garbage.write_bytes(b"this is not audio, only a file named like it\n" * 2000)
    with pytest.raises(StepFailed) as failure:
        embed(str(garbage))
    assert failure.value.code == "audio_unreadable"


def test_a_file_with_no_samples_fails_as_audio_unreadable(tmp_path):
    empty = render(tmp_path / "empty.wav", "anullsrc=r=44100:cl=stereo", args=("-t", "0"))
    with pytest.raises(StepFailed) as failure:
        embed(str(empty))
    assert failure.value.code == "audio_unreadable"


def test_embed_lets_an_ffmpeg_timeout_through(sounds):
    with pytest.raises(ffmpeg.FfmpegTimeout):
        embed(str(sounds["music", "original"]), timeout_s=0.001)


# --- similarity() and nearest() ------------------------------------------------------------------


def test_similarity_is_the_cosine_of_the_angle():
    assert similarity([1, 0, 0], [3, 0, 0]) == pytest.approx(1.0)
    assert similarity([1, 0], [-2, 0]) == pytest.approx(-1.0)
    assert similarity([1, 0], [0, 5]) == pytest.approx(0.0)
    assert similarity([1, 1], [1, 0]) == pytest.approx(math.sqrt(0.5))
    assert similarity([0, 0], [1, 0]) == 0.0
    with pytest.raises(ValueError, match="dimensions"):
        similarity([1, 0], [1, 0, 0])


def test_nearest_ranks_best_first_breaks_ties_by_id_and_skips_other_versions():
    target = [1.0, 0.0, 0.0]
    candidates = [
        ("zeta", [1.0, 1.0, 0.0]),  # 0.7071, tied with "alpha" below
        ("opposite", [-1.0, 0.0, 0.0]),
        ("old-version", [1.0, 0.0]),  # another VERSION's length: ignored, however close
        ("same", [2.0, 0.0, 0.0]),
        ("alpha", [3.0, 3.0, 0.0]),
        ("orthogonal", [0.0, 0.0, 1.0]),
        ("silent", [0.0, 0.0, 0.0]),
    ]

    ranking = nearest(target, iter(candidates), limit=10)

    assert ranking == [
        ("same", 1.0),
        ("alpha", pytest.approx(0.707107)),
        ("zeta", pytest.approx(0.707107)),
        ("orthogonal", 0.0),
        ("silent", 0.0),
        ("opposite", -1.0),
    ]
    assert nearest(target, candidates, limit=2) == ranking[:2]
    assert nearest(target, candidates, limit=0) == []
    assert nearest(target, [("old-version", [1.0, 0.0])], limit=3) == []
    assert nearest(target, [], limit=3) == []


def test_nearest_returns_plain_python_values_in_json_friendly_form(vectors):
    ranking = nearest(vectors["chord", "original"], [(name, vectors[name, "original"]) for name in KINDS], limit=4)
    assert ranking[0] == ("chord", 1.0)
    assert all(type(track_id) is str and type(score) is float for track_id, score in ranking)
    assert [score for _, score in ranking] == sorted((score for _, score in ranking), reverse=True)


# --- ffmpeg.stream() -----------------------------------------------------------------------------


@pytest.fixture
def spawned(monkeypatch) -> list[subprocess.Popen]:
    """Every process ffmpeg.stream() starts during the test, to check it was reaped."""
    started: list[subprocess.Popen] = []

    class Recording(subprocess.Popen):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            started.append(self)

    monkeypatch.setattr(ffmpeg.subprocess, "Popen", Recording)
    return started


def test_stream_kills_ffmpeg_at_the_deadline_and_raises_timeout(spawned):
    # -re: a real-time source, 30 s long, so only the deadline can end it.
    began = time.monotonic()
    with (
        pytest.raises(ffmpeg.FfmpegTimeout),
        ffmpeg.stream(["-re", "-f", "lavfi", "-i", "sine=d=30", *PCM_OUT], timeout_s=0.5) as pcm,
    ):
        while pcm.read(65536):
            pass
    assert time.monotonic() - began < 5
    assert spawned[0].returncode == -signal.SIGKILL


def test_stream_times_out_a_caller_that_stopped_reading(spawned):
    with (
        pytest.raises(ffmpeg.FfmpegTimeout),
        ffmpeg.stream(["-f", "lavfi", "-i", "sine=d=600", *PCM_OUT], timeout_s=0.3),
    ):
        time.sleep(0.6)  # ffmpeg is blocked on a full pipe meanwhile
    assert spawned[0].returncode == -signal.SIGKILL


def test_leaving_the_stream_early_kills_and_reaps_ffmpeg(spawned):
    with ffmpeg.stream(["-f", "lavfi", "-i", "sine=d=600", *PCM_OUT]) as pcm:
        assert len(pcm.read(4096)) == 4096
    # No error: the caller chose to stop. The process is gone, not left blocked on the pipe.
    assert spawned[0].returncode == -signal.SIGKILL


def test_an_error_in_the_block_propagates_and_ffmpeg_is_reaped(spawned):
    with pytest.raises(ZeroDivisionError), ffmpeg.stream(["-f", "lavfi", "-i", "sine=d=600", *PCM_OUT]) as pcm:
        pcm.read(4096)
        _ = 1 / 0
    assert spawned[0].returncode == -signal.SIGKILL


def test_a_stream_read_to_the_end_succeeds_with_every_sample(spawned):
    with ffmpeg.stream(["-f", "lavfi", "-i", "sine=sample_rate=22050:d=2", *PCM_OUT]) as pcm:
        data = pcm.read()
    assert len(data) == 2 * 22050 * 4
    assert spawned[0].returncode == 0


def test_a_failed_stream_carries_ffmpegs_reason_and_no_presigned_url():
    url = "https://bucket.s3.amazonaws.com/originals/u1?X-Amz-Signature=0123secret"
    # The whitelist makes ffmpeg refuse the URL at once: no network, the same failure path.
    args = ["-protocol_whitelist", "file", *ffmpeg.input_args(url), "-v", "error", *PCM_OUT]

    with pytest.raises(subprocess.CalledProcessError) as failure, ffmpeg.stream(args) as pcm:
        assert pcm.read() == b""

    assert failure.value.returncode != 0
    assert "not on whitelist" in failure.value.stderr
    assert "<url>" in failure.value.cmd
    assert "0123secret" not in f"{failure.value} {failure.value.cmd} {failure.value.stderr}"


def test_a_long_stderr_is_drained_and_only_its_last_8_kb_kept(spawned):
    # ashowinfo logs a line per audio frame: hundreds of KB, which would fill an undrained pipe.
    args = ["-f", "lavfi", "-i", "sine=sample_rate=22050:d=120", "-af", "ashowinfo", *PCM_OUT]
    with pytest.raises(subprocess.CalledProcessError) as failure, ffmpeg.stream(args) as pcm:
        pcm.read(1 << 20)
        spawned[0].send_signal(signal.SIGTERM)  # ffmpeg stops cleanly and exits non-zero
        while pcm.read(65536):
            pass
    assert len(failure.value.stderr) == 8192
    assert failure.value.stderr.rstrip().endswith("received signal 15.")


def test_a_background_stream_runs_at_lower_priority(spawned):
    with ffmpeg.stream(["-f", "lavfi", "-i", "sine=d=600", *PCM_OUT], background=True) as pcm:
        pcm.read(4096)
        niceness = os.getpriority(os.PRIO_PROCESS, spawned[0].pid)
    assert niceness == min(19, os.getpriority(os.PRIO_PROCESS, 0) + ffmpeg.BACKGROUND_NICENESS)

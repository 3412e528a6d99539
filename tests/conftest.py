"""Fixtures every layer of the suite shares: no real AWS credentials ever, real audio from ffmpeg."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import imageio_ffmpeg
import pytest

# Before any boto3 client exists: fake credentials and no shared config, so nothing can reach AWS.
os.environ.update(
    {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_SESSION_TOKEN": "testing",
        "AWS_REGION": "us-east-1",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_CONFIG_FILE": "/dev/null",
        "AWS_SHARED_CREDENTIALS_FILE": "/dev/null",
        "POWERTOOLS_TRACE_DISABLED": "1",
        "POWERTOOLS_LOG_LEVEL": "WARNING",
        "JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION": "20",
        "JSII_SILENCE_WARNING_DEPRECATED_NODE_VERSION": "20",
    }
)

FFMPEG = imageio_ffmpeg.get_ffmpeg_exe()

AudioFactory = Callable[..., Path]


def render_audio(path: Path, *, seconds: float = 3.0, codec_args: tuple[str, ...] = (), channels: int = 2) -> Path:
    """A real tone rendered by ffmpeg into ``path`` (the container follows the extension)."""
    subprocess.run(
        [
            FFMPEG, "-hide_banner", "-nostdin", "-y", "-v", "error",
            "-f", "lavfi", "-i", f"sine=frequency=440:sample_rate=44100:duration={seconds}",
            "-ac", str(channels), *codec_args, str(path),
        ],
        check=True,
    )  # fmt: skip
    return path


@pytest.fixture(scope="session")
def audio_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("audio")


@pytest.fixture(scope="session")
def make_audio(audio_dir: Path) -> Iterator[AudioFactory]:
    made: dict[tuple[object, ...], Path] = {}

    def factory(name: str, *, seconds: float = 3.0, codec_args: tuple[str, ...] = (), channels: int = 2) -> Path:
        key = (name, seconds, codec_args, channels)
        if key not in made:
            made[key] = render_audio(audio_dir / name, seconds=seconds, codec_args=codec_args, channels=channels)
        return made[key]

    yield factory


@pytest.fixture(scope="session")
def wav_3s(make_audio: AudioFactory) -> Path:
    return make_audio("tone-3s.wav")


@pytest.fixture(scope="session")
def png_named_wav(audio_dir: Path) -> Path:
    """A real PNG renamed to .wav: the classic 'renamed file' upload."""
    from PIL import Image

    path = audio_dir / "cover.wav"
    Image.new("RGB", (32, 32), (200, 40, 40)).save(path, format="PNG")
    return path

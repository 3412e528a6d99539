"""Transcode runs the real ffmpeg over real files and checks every rendition by decoding it again."""

import hashlib
import re
import struct
import subprocess
from pathlib import Path

import imageio_ffmpeg
import pytest

from functions.media import ffmpeg
from functions.media.ffmpeg import input_args
from functions.media.probe import probe
from functions.media.transcode import RENDITIONS, transcode
from functions.step_errors import StepFailed

FFMPEG = imageio_ffmpeg.get_ffmpeg_exe()
LIMITS = {"min_ms": 0, "max_ms": 3600 * 1000}
CODECS = {"aac": "aac", "opus": "opus", "mp3": "mp3"}
# ffmpeg's native AAC encoder cannot spend more than about 200 kb/s on ONE channel at 44.1 kHz
# (measured: 203 kb/s for 224k and 256k alike, 130/163/195 for 128/160/192k), so a mono source's
# AAC rendition lands there instead of at 256: still far above what mono AAC needs.
AAC_MONO_CEILING_KBPS = 200


def render_music(path: Path, *, seconds: float = 4.0, rate: int = 44100, layout: str = "stereo", args=()) -> Path:
    """Music-like content (independent pink noise per side plus a tone), so every encoder has to
    spend its bit rate; silence or a lone sine would let VBR encoders coast far below target."""
    pans = {
        "mono": "mono|c0=0.7*c0+0.3*c2",
        "stereo": "stereo|c0=0.7*c0+0.3*c2|c1=0.7*c1+0.3*c2",
        "5.1": "5.1|c0=c0|c1=c1|c2=0.5*c2|c3=0.3*c2|c4=0.5*c1|c5=0.5*c0",
    }
    noise = f"anoisesrc=color=pink:amplitude=0.4:r={rate}:d={seconds}"
    subprocess.run(
        [
            FFMPEG, "-hide_banner", "-nostdin", "-y", "-v", "error",
            "-f", "lavfi", "-i", f"{noise}:seed=1",
            "-f", "lavfi", "-i", f"{noise}:seed=2",
            "-f", "lavfi", "-i", f"sine=frequency=220:sample_rate={rate}:duration={seconds}",
            "-filter_complex", f"[0][1][2]amerge=inputs=3,pan={pans[layout]}",
            *args, str(path),
        ],
        check=True,
    )  # fmt: skip
    return path


def stream_report(path: Path) -> str:
    """ffmpeg's own description of a file's streams and tags (there is no ffprobe)."""
    return subprocess.run([FFMPEG, "-hide_banner", "-i", str(path)], check=False, capture_output=True, text=True).stderr


def top_level_boxes(path: Path) -> list[str]:
    data = path.read_bytes()
    boxes, offset = [], 0
    while offset + 8 <= len(data):
        size, kind = struct.unpack(">I4s", data[offset : offset + 8])
        if size == 1:  # 64-bit size follows the type
            size = struct.unpack(">Q", data[offset + 8 : offset + 16])[0]
        boxes.append(kind.decode("latin-1"))
        if size < 8:
            break
        offset += size
    return boxes


SOURCES = {
    # name: (file, render options, source channels, source rate)
    "wav-44k-16bit-stereo": ("s.wav", {}, 2, 44100),
    "wav-44k-mono": ("m.wav", {"layout": "mono"}, 1, 44100),
    "wav-48k-24bit": ("hi.wav", {"rate": 48000, "args": ("-c:a", "pcm_s24le")}, 2, 48000),
    "flac": ("s.flac", {}, 2, 44100),
    "mp3": ("s.mp3", {"args": ("-c:a", "libmp3lame", "-b:a", "320k")}, 2, 44100),
    "wav-48k-5.1": ("six.wav", {"rate": 48000, "layout": "5.1"}, 6, 48000),
}


@pytest.fixture(scope="module")
def sources(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("transcode-sources")
    return {key: render_music(folder / name, **options) for key, (name, options, _, _) in SOURCES.items()}


@pytest.mark.parametrize("key", SOURCES)
def test_every_rendition_decodes_with_the_right_codec_rate_bitrate_and_length(sources, tmp_path, key):
    source = sources[key]
    _, _, source_channels, source_rate = SOURCES[key]
    before = hashlib.sha256(source.read_bytes()).hexdigest()
    source_ms = probe(str(source), **LIMITS).duration_ms

    renditions = transcode(str(source), tmp_path / "out")

    assert [r.spec for r in renditions] == list(RENDITIONS)
    assert hashlib.sha256(source.read_bytes()).hexdigest() == before  # the original is untouched
    for rendition in renditions:
        spec = rendition.spec
        assert rendition.path == tmp_path / "out" / f"{spec.format}.{spec.extension}"
        assert rendition.byte_size == rendition.path.stat().st_size > 0
        facts = probe(str(rendition.path), **LIMITS)
        assert facts.codec == CODECS[spec.format]
        assert abs(facts.duration_ms - source_ms) <= 50, (spec.format, facts.duration_ms, source_ms)
        # Wider than stereo is downmixed; mono stays mono.
        assert facts.channels == min(source_channels, 2)
        assert facts.sample_rate_hz == (spec.sample_rate_hz or source_rate)
        # Whole-file bit rate, container overhead included.
        kbps = rendition.byte_size * 8 / facts.duration_ms
        target = spec.bitrate_kbps
        if spec.format == "aac" and facts.channels == 1:
            target = AAC_MONO_CEILING_KBPS
        assert 0.9 * target <= kbps <= 1.1 * target, (spec.format, kbps)


def test_the_aac_rendition_is_lc_with_the_index_before_the_audio(sources, tmp_path):
    m4a = next(r for r in transcode(str(sources["wav-44k-16bit-stereo"]), tmp_path) if r.spec.format == "aac")
    assert re.search(r"Audio: aac \(LC\)", stream_report(m4a.path))
    boxes = top_level_boxes(m4a.path)
    assert boxes[0] == "ftyp"
    assert "moov" in boxes and "mdat" in boxes
    assert boxes.index("moov") < boxes.index("mdat")  # +faststart: playable before it has all arrived


def test_cover_art_and_tags_do_not_reach_the_renditions(sources, png_named_wav, tmp_path):
    tagged = tmp_path / "tagged.mp3"
    subprocess.run(
        [
            FFMPEG, "-hide_banner", "-nostdin", "-y", "-v", "error",
            "-i", str(sources["mp3"]), "-f", "png_pipe", "-i", str(png_named_wav),
            "-map", "0:a", "-map", "1:v", "-c", "copy", "-disposition:v", "attached_pic",
            "-metadata", "title=Private Demo Title", "-metadata", "comment=call me on 555-0100",
            str(tagged),
        ],
        check=True,
    )  # fmt: skip
    assert "Video:" in stream_report(tagged)  # the source really has a cover

    for rendition in transcode(str(tagged), tmp_path / "out"):
        report = stream_report(rendition.path)
        assert len(re.findall(r"Stream #0:\d+", report)) == 1, report
        assert "Video:" not in report
        assert "Private Demo Title" not in report
        assert "555-0100" not in report


def test_audio_that_does_not_decode_fails_permanently_and_leaves_nothing(png_named_wav, tmp_path):
    with pytest.raises(StepFailed) as failure:
        transcode(str(png_named_wav), tmp_path)
    assert failure.value.code == "transcode_failed"
    assert "convert" in failure.value.message
    assert list(tmp_path.iterdir()) == []


def test_a_timeout_propagates_and_leaves_nothing(sources, tmp_path):
    with pytest.raises(ffmpeg.FfmpegTimeout):
        transcode(str(sources["wav-44k-16bit-stereo"]), tmp_path, timeout_s=0.001)
    assert list(tmp_path.iterdir()) == []


def test_the_source_is_never_an_output(sources, tmp_path):
    victim = tmp_path / "mp3.mp3"
    victim.write_bytes(sources["mp3"].read_bytes())
    with pytest.raises(ValueError, match="onto itself"):
        transcode(str(victim), tmp_path)
    assert victim.read_bytes() == sources["mp3"].read_bytes()


def test_input_args_stream_urls_with_reconnects_and_pin_local_paths_to_files():
    url = "https://bucket.s3.amazonaws.com/k?X-Amz-Signature=abc"
    args = input_args(url)
    assert args[-2:] == ["-i", url]
    assert {"-reconnect", "-reconnect_on_network_error", "-rw_timeout"} <= set(args)
    # A colon in a local name must not be read as a protocol ("a:b.wav" is not protocol "a").
    assert input_args("/tmp/a:b.wav") == ["-i", "file:/tmp/a:b.wav"]


def test_a_local_name_with_a_colon_transcodes(sources, tmp_path):
    odd = tmp_path / "take:2.flac"
    odd.write_bytes(sources["flac"].read_bytes())
    assert len(transcode(str(odd), tmp_path / "out")) == len(RENDITIONS)

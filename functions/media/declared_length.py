"""How much audio a WAV, AIFF or FLAC header says the file holds, read from the file's head.

ffmpeg does not say this for every container: for a WAV it estimates the duration from the file's
size, so a file cut short looks complete. These containers record an exact frame count (WAV:
the ``data`` chunk's size, or ``ds64`` for RF64/BW64; AIFF: ``COMM``'s numSampleFrames; FLAC:
STREAMINFO's total samples), which the probe compares with what actually decodes.

Some writers never record the length: a recorder that stopped without closing the file, or one
streaming to a pipe, leaves a WAV ``data`` size of 0 or 0xFFFFFFFF, and FLAC defines 0 total
samples as "unknown". Those come back as ``frames=None``: the audio runs to the end of the file.

Only the head is read: a few small reads (ranged GETs for a presigned URL), never the audio.
"""

from __future__ import annotations

import struct
import urllib.error
import urllib.request
from dataclasses import dataclass

from functions.media import ffmpeg
from functions.step_errors import TransientStepError

# A window covers every chunk header of an ordinary file at once; a chunk that starts beyond it
# (a large bext/iXML/JUNK chunk before the audio) costs one more read, up to _MAX_READS.
_WINDOW_BYTES = 64 * 1024
_MAX_READS = 8
_READ_TIMEOUT_S = 30
# WAVE_FORMAT_PCM, _IEEE_FLOAT, _ALAW, _MULAW: one block is one frame. Other codecs (ADPCM, MP3
# in WAV) pack several frames per block, so their data size is not a frame count.
_FRAME_PER_BLOCK_FORMATS = frozenset({0x0001, 0x0003, 0x0006, 0x0007})
_WAVE_FORMAT_EXTENSIBLE = 0xFFFE
_UNRECORDED_WAV_SIZES = frozenset({0, 0xFFFFFFFF})
# AIFF-C compression types that store plain samples (the rest are codecs: ima4, ulaw, alac...).
_AIFC_PCM = frozenset({b"NONE", b"sowt", b"twos", b"raw ", b"in24", b"in32", b"fl32", b"FL32", b"fl64", b"FL64"})


@dataclass(frozen=True)
class DeclaredLength:
    container: str  # "wav", "aiff" or "flac"
    frames: int | None  # None: the header does not record the length
    sample_rate_hz: int
    pcm: bool  # every frame is stored as is (no codec that could find damage inside the audio)

    @property
    def duration_us(self) -> int | None:
        if self.frames is None or self.sample_rate_hz <= 0:
            return None
        return self.frames * 1_000_000 // self.sample_rate_hz


class _Head:
    """Random access to the start of a local file or a presigned URL, a window at a time."""

    def __init__(self, source: str) -> None:
        self._source = source
        self._windows: list[tuple[int, bytes]] = []

    def read(self, offset: int, size: int) -> bytes:
        for start, data in self._windows:
            if start <= offset and offset + size <= start + len(data):
                return data[offset - start : offset - start + size]
        if len(self._windows) >= _MAX_READS:
            return b""
        data = self._fetch(offset, max(size, _WINDOW_BYTES))
        self._windows.append((offset, data))
        return data[:size]

    def _fetch(self, offset: int, size: int) -> bytes:
        if not ffmpeg.is_url(self._source):
            with open(self._source, "rb") as file:
                file.seek(offset)
                return file.read(size)
        request = urllib.request.Request(  # noqa: S310 - is_url: http(s) only
            self._source, headers={"Range": f"bytes={offset}-{offset + size - 1}"}
        )
        try:
            with urllib.request.urlopen(request, timeout=_READ_TIMEOUT_S) as response:  # noqa: S310
                data: bytes = response.read(size)
                # A server that ignores Range answers 200 with the whole object from byte 0.
                return data if response.status == 206 or offset == 0 else b""
        except urllib.error.HTTPError as error:
            if error.code == 416:  # the offset is past the end: the file ends before it
                return b""
            raise TransientStepError(f"reading the audio's header failed: HTTP {error.code}") from error
        except (urllib.error.URLError, TimeoutError, ConnectionError) as error:
            raise TransientStepError(f"reading the audio's header failed: {error}") from error


def read(source: str) -> DeclaredLength | None:
    """What the header of ``source`` (a local path or an http(s) URL) declares, or ``None`` when
    it is not a WAV, AIFF or FLAC file or its header cannot be walked."""
    head = _Head(source)
    magic = head.read(0, 12)
    if magic[:4] in (b"RIFF", b"RF64", b"BW64") and magic[8:12] == b"WAVE":
        return _wav(head, extended_sizes=magic[:4] != b"RIFF")
    if magic[:4] == b"FORM" and magic[8:12] in (b"AIFF", b"AIFC"):
        return _aiff(head, compressed=magic[8:12] == b"AIFC")
    return _flac(head)


def _wav(head: _Head, *, extended_sizes: bool) -> DeclaredLength | None:
    offset = 12
    rate = block_align = 0
    format_tag: int | None = None
    ds64_data_size: int | None = None
    while chunk := head.read(offset, 8):
        if len(chunk) < 8:
            return None
        chunk_id, size = chunk[:4], struct.unpack("<I", chunk[4:])[0]
        if chunk_id == b"ds64":
            body = head.read(offset + 8, 16)
            if len(body) == 16:
                ds64_data_size = struct.unpack("<Q", body[8:16])[0]
        elif chunk_id == b"fmt ":
            body = head.read(offset + 8, min(size, 40))
            if len(body) < 16:
                return None
            format_tag, _, rate, _, block_align = struct.unpack("<HHIIH", body[:14])
            if format_tag == _WAVE_FORMAT_EXTENSIBLE and len(body) >= 26:
                format_tag = struct.unpack("<H", body[24:26])[0]  # the sub-format GUID's first field
        elif chunk_id == b"data":
            if format_tag is None or block_align == 0:
                return None  # no fmt before the audio: nothing to measure frames with
            pcm = format_tag in _FRAME_PER_BLOCK_FORMATS
            if extended_sizes and size == 0xFFFFFFFF and ds64_data_size is not None:
                size = ds64_data_size
            elif size in _UNRECORDED_WAV_SIZES:
                return DeclaredLength("wav", None, rate, pcm)
            return DeclaredLength("wav", size // block_align if pcm else None, rate, pcm)
        offset += 8 + size + (size & 1)  # chunks are padded to an even length
    return None


def _aiff(head: _Head, *, compressed: bool) -> DeclaredLength | None:
    offset = 12
    while chunk := head.read(offset, 8):
        if len(chunk) < 8:
            return None
        chunk_id, size = chunk[:4], struct.unpack(">I", chunk[4:])[0]
        if chunk_id == b"COMM":
            body = head.read(offset + 8, 22 if compressed else 18)
            if len(body) < (22 if compressed else 18):
                return None
            frames = struct.unpack(">I", body[2:6])[0]
            rate = _extended_to_int(body[8:18])
            pcm = not compressed or body[18:22] in _AIFC_PCM
            # 0 frames followed by sound data is a length never filled in, as in a WAV: ffmpeg
            # reads the SSND chunk whatever COMM says.
            return DeclaredLength("aiff", frames or None, rate, pcm)
        offset += 8 + size + (size & 1)
    return None


def _extended_to_int(value: bytes) -> int:
    """AIFF's sample rate: an IEEE 754 80-bit extended float."""
    exponent = int.from_bytes(value[:2], "big") & 0x7FFF
    mantissa = int.from_bytes(value[2:10], "big")
    if exponent == 0 or mantissa == 0:
        return 0
    shift = exponent - 16383 - 63
    return mantissa << shift if shift >= 0 else mantissa >> -shift


def _flac(head: _Head) -> DeclaredLength | None:
    offset = 0
    start = head.read(0, 10)
    if start[:3] == b"ID3" and len(start) == 10:  # an ID3v2 tag in front: not standard, but seen
        tag_size = 0
        for byte in start[6:10]:
            tag_size = (tag_size << 7) | (byte & 0x7F)
        offset = 10 + tag_size + (10 if start[5] & 0x10 else 0)
    block = head.read(offset, 4 + 4 + 34)
    if len(block) < 42 or block[:4] != b"fLaC" or block[4] & 0x7F != 0:  # STREAMINFO comes first
        return None
    info = block[8:]
    packed = int.from_bytes(info[10:18], "big")  # rate(20) channels-1(3) bits-1(5) total samples(36)
    rate = packed >> 44
    total = packed & ((1 << 36) - 1)
    return DeclaredLength("flac", total or None, rate, pcm=False)

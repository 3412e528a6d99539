import pytest

from functions.domain import media_types


@pytest.mark.parametrize(
    ("file_name", "content_type"),
    [
        ("night-drive.wav", "audio/wav"),
        ("night-drive.WAV", "audio/x-wav"),
        ("a.mp3", "audio/mpeg"),
        ("a.flac", "audio/flac"),
        ("a.aiff", "audio/aiff"),
        ("a.aif", "audio/x-aiff"),
        ("a.ogg", "audio/ogg"),
        ("a.opus", "audio/opus"),
        ("a.m4a", "audio/mp4"),
        ("a.webm", "audio/webm"),
        ("a.wav", "Audio/WAV; codecs=1"),
    ],
)
def test_matching_extension_and_type_are_accepted(file_name, content_type):
    assert media_types.is_accepted(file_name, content_type)


@pytest.mark.parametrize(
    ("file_name", "content_type"),
    [
        ("night-drive.wav", "audio/mpeg"),  # a WAV name with an MP3 type
        ("a.mp3", "audio/wav"),
        ("cover.png", "image/png"),
        ("a.wav", "application/octet-stream"),
        ("noextension", "audio/wav"),
        ("a.wav.exe", "audio/wav"),
    ],
)
def test_mismatched_or_non_audio_pairs_are_refused(file_name, content_type):
    assert not media_types.is_accepted(file_name, content_type)

from pathlib import Path

import pytest

from functions.domain.intake import media_types


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


def test_no_type_or_a_generic_one_is_refused_for_every_extension():
    # What a browser gives for a file it has no type for: the client sends the preferred type instead.
    for files in (media_types.AUDIO_TYPES, media_types.IMAGE_TYPES, media_types.DOCUMENT_TYPES):
        for extension in files:
            assert not media_types.is_accepted(f"a.{extension}", "application/octet-stream", files)
            assert not media_types.is_accepted(f"a.{extension}", "", files)


@pytest.mark.parametrize(
    ("file_name", "content_type"),
    [("a.m4a", "audio/x-m4a"), ("a.ogg", "application/ogg"), ("a.opus", "audio/ogg"), ("a.jpg", "image/pjpeg")],
)
def test_the_types_browsers_also_send_are_accepted(file_name, content_type):
    accepted = media_types.IMAGE_TYPES if content_type.startswith("image/") else media_types.AUDIO_TYPES
    assert media_types.is_accepted(file_name, content_type, accepted)


API_DOC = Path(__file__).resolve().parents[2] / "docs" / "api.md"
TABLE_START = "<!-- content-types: generated from functions/domain/intake/media_types.py -->"
TABLE_END = "<!-- /content-types -->"


def content_type_table() -> str:
    """docs/api.md's table, rendered from the declaration: one row per extension, the type to send first."""
    rows = ["| Upload | Extension | Send this `contentType` | Also accepted |", "|---|---|---|---|"]
    kinds = [
        ("audio", media_types.AUDIO_FILES),
        ("image", media_types.IMAGE_FILES),
        ("document", media_types.DOCUMENT_FILES),
    ]
    for kind, files in kinds:
        for extension, (preferred, *also) in files.items():
            others = ", ".join(f"`{content_type}`" for content_type in also) or "—"
            rows.append(f"| {kind} | `.{extension}` | `{preferred}` | {others} |")
    return "\n".join(rows)


def test_the_api_doc_table_of_content_types_is_the_declared_one():
    doc = API_DOC.read_text(encoding="utf-8")
    assert TABLE_START in doc and TABLE_END in doc, "docs/api.md lost its content-type table markers"
    documented = doc.split(TABLE_START, 1)[1].split(TABLE_END, 1)[0].strip()
    expected = content_type_table()
    assert documented == expected, f"docs/api.md's content-type table differs from media_types; paste:\n{expected}"


def test_an_upload_session_signs_each_audio_put_with_the_documented_type():
    from functions.domain.intake import sessions

    documented = {extension: media_types.preferred_type(extension) for extension in media_types.AUDIO_FILES}
    assert documented == sessions.AUDIO_CONTENT_TYPES

"""Tag names: one normalization for what artists set on tracks and what listeners look up."""

from __future__ import annotations

import re
import unicodedata

from functions.errors import InvalidTag, InvalidUpload

MAX_TAGS = 10
MAX_TAG_LENGTH = 40


def normalize(tag: str) -> str:
    """``"  Lo-Fi   Hip HOP "`` -> ``"lo-fi hip hop"``: case, width and spacing never split a tag."""
    return re.sub(r"\s+", " ", unicodedata.normalize("NFKC", tag)).strip().lower()


def lookup(tag: str) -> str:
    """A tag a listener asked for, normalized as tags are on tracks."""
    value = normalize(tag)
    if not value or len(value) > MAX_TAG_LENGTH:
        raise InvalidTag(f"A tag has 1 to {MAX_TAG_LENGTH} characters.", tag=tag[:64])
    return value


def normalize_all(tags: list[str]) -> list[str]:
    """Tags as a track stores them: normalized, de-duplicated, in order; empty ones dropped."""
    normalized: list[str] = []
    for tag in tags:
        value = normalize(tag)
        if not value:
            continue
        if len(value) > MAX_TAG_LENGTH:
            limit = MAX_TAG_LENGTH
            raise InvalidUpload(f"Tags are at most {limit} characters: '{value[:60]}'.", field="tags")
        if value not in normalized:
            normalized.append(value)
    if len(normalized) > MAX_TAGS:
        raise InvalidUpload(f"At most {MAX_TAGS} tags.", field="tags")
    return normalized

"""Tag names: one normalization for what artists set on tracks and what listeners look up."""

from __future__ import annotations

import re
import unicodedata

from functions.errors import InvalidTag

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

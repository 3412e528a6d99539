"""Album slugs: how a title becomes a per-artist slug, and which candidate slugs are free.

Slugs are claimed by separate items (``AlbumSlugModel``) written in the same transaction as the
album (``functions.domain.catalog.albums``), so two albums of one artist never share a slug; what
``candidates`` reads is only a hint for which one to try, the claim's condition decides.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterator
from dataclasses import dataclass

from functions.data.models import AlbumSlugModel
from functions.errors import AlbumSlugUnavailable

MAX_SLUG_LENGTH = 80
# Slugs an album keeps claims on, the current one included; a rename beyond that releases one.
MAX_SLUG_HISTORY = 20
# "-2" ... "-1000": past that an artist has a thousand albums with one title and gets an error.
MAX_SLUG_SUFFIX = 1000
# Candidate slugs read per BatchGetItem while looking for a free one.
SLUG_WINDOW = 25

# Latin letters NFKD leaves whole; the ASCII fold would otherwise drop them from the slug.
_TRANSLITERATIONS = str.maketrans(
    {"ß": "ss", "æ": "ae", "Æ": "AE", "ø": "o", "Ø": "O", "œ": "oe", "Œ": "OE", "đ": "d", "Đ": "D"}
    | {"ł": "l", "Ł": "L", "þ": "th", "Þ": "TH", "ð": "d", "Ð": "D", "ı": "i"}
)
_NOT_SLUG = re.compile(r"[^a-z0-9]+")


def slugify(title: str) -> str:
    """``"Café del Mar (Vol. 2)"`` -> ``"cafe-del-mar-vol-2"``: lowercase ASCII, runs of anything
    else become one hyphen, at most 80 characters, ``"album"`` when nothing is left."""
    folded = unicodedata.normalize("NFKD", title.translate(_TRANSLITERATIONS))
    ascii_only = folded.encode("ascii", "ignore").decode("ascii").lower()
    slug = _NOT_SLUG.sub("-", ascii_only).strip("-")[:MAX_SLUG_LENGTH].rstrip("-")
    return slug or "album"


def with_suffix(base: str, n: int) -> str:
    """The n-th candidate for ``base``: itself, then ``base-2``, ``base-3``… (still <= 80 chars)."""
    if n == 1:
        return base
    suffix = f"-{n}"
    return base[: MAX_SLUG_LENGTH - len(suffix)].rstrip("-") + suffix


@dataclass(frozen=True)
class Candidate:
    slug: str
    holder: str | None  # the album holding its claim, None when free


def candidates(owner_id: str, base: str) -> Iterator[Candidate]:
    """Slug candidates in order with who holds each, read a window at a time. What they say is a
    hint for which candidate to try; the claim's condition in the write decides."""
    for start in range(1, MAX_SLUG_SUFFIX + 1, SLUG_WINDOW):
        window = [with_suffix(base, n) for n in range(start, min(start + SLUG_WINDOW, MAX_SLUG_SUFFIX + 1))]
        keys = [(AlbumSlugModel.key(owner_id, slug), AlbumSlugModel.SLUG_SK) for slug in window]
        holders = {claim.pk: claim.album_id for claim in AlbumSlugModel.batch_get(keys, consistent_read=True)}
        for slug in window:
            yield Candidate(slug, holders.get(AlbumSlugModel.key(owner_id, slug)))
    raise AlbumSlugUnavailable(f"Every slug from '{base}' to '{base}-{MAX_SLUG_SUFFIX}' is taken.", slug=base)

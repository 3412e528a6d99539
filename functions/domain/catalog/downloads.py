"""Short-lived signed GETs of stored files (streams, originals, artwork, documents): the API
redirects to storage instead of proxying bytes through the function."""

from __future__ import annotations

from functions.data import storage
from functions.settings import settings


def signed_url(key: str, content_type: str | None) -> str:
    """A GET of ``key`` valid for ``stream_url_ttl_s``, answered with ``content_type`` when given."""
    return storage.presign_get(key, expires_in=settings().stream_url_ttl_s, content_type=content_type)

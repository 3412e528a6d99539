"""What a browser on another origin may do with the API and the media bucket (CORS), declared once.

The deployed HTTP API's CORS preflight and the media bucket's CORS rule (``stacks/constructs``), the
local API's CORS middleware and the local bucket's rule (``local/``) are all built from these, with
the allowed origins from the one ``corsOrigins`` setting, so the local stack answers a browser
exactly as a deployment does.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

# Request headers a browser client sends the API: the bearer token, JSON bodies, a resumed progress
# stream, a retried write.
API_ALLOWED_HEADERS = ("authorization", "content-type", "idempotency-key", "last-event-id")
# Response headers a browser client may read: where a created resource lives, a public document's
# version, and whether an idempotent write was replayed (functions.api.idempotency).
API_EXPOSED_HEADERS = ("location", "etag", "idempotency-replayed")
API_ALLOWED_METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE")
API_MAX_AGE_S = 3600

# The bucket: presigned PUTs (single file, multipart parts), presigned form POSTs, S3-native
# multipart (POST CreateMultipartUpload/CompleteMultipartUpload, GET ListParts, DELETE
# AbortMultipartUpload), players' GETs. ETag must be readable: a multipart client completes the
# upload with each part's ETag.
BUCKET_ALLOWED_METHODS = ("GET", "HEAD", "PUT", "POST", "DELETE")
BUCKET_ALLOWED_HEADERS = ("*",)
BUCKET_EXPOSED_HEADERS = ("ETag",)
BUCKET_MAX_AGE_S = 3000


def bucket_rule(origins: Sequence[str]) -> dict[str, Any]:
    """The bucket's CORS rule in S3's API shape (``PutBucketCors``)."""
    return {
        "AllowedMethods": list(BUCKET_ALLOWED_METHODS),
        "AllowedOrigins": list(origins),
        "AllowedHeaders": list(BUCKET_ALLOWED_HEADERS),
        "ExposeHeaders": list(BUCKET_EXPOSED_HEADERS),
        "MaxAgeSeconds": BUCKET_MAX_AGE_S,
    }

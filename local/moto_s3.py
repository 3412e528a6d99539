"""Two fixes to moto's S3 the local stack relies on.

CopyObject honours ``x-amz-copy-source-if-match``, as S3 does.

Finalize keeps an original by copying it out of ``uploads/`` on the condition that the source still
has the ETag it verified (``functions.data.storage.copy_if_unchanged``): a PUT that replaced the
object in between must make the copy fail, not slip into the track. moto 5.2 checks only
``x-amz-copy-source-if-none-match`` and silently copies whatever is there, so without this the local
stack and the tests would accept what S3 refuses.

An object's first ETag is computed under the object's lock. moto reads the bytes for it from the
object's shared buffer without the lock its other readers take, so a HEAD computing it moved the
buffer's position under a reader holding the lock: the local store (``local/persistence.py``) then
kept 24 MiB of a 31 MB original and refused its own data at the next start.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qs, unquote, urlparse

_IF_MATCH = "x-amz-copy-source-if-match"


def _checked(copy_object: Callable[[Any], Any]) -> Callable[[Any], Any]:
    from moto.s3.exceptions import PreconditionFailed

    @functools.wraps(copy_object)
    def copy_if_match(self: Any) -> Any:
        expected = self.headers.get(_IF_MATCH)
        if expected:
            source = self.headers.get("x-amz-copy-source")
            if isinstance(source, bytes):
                source = source.decode()
            parsed = urlparse(source)
            bucket, key = unquote(parsed.path).lstrip("/").split("/", 1)
            version = parse_qs(parsed.query).get("versionId", [None])[0]
            stored = self.backend.get_object(bucket, key, version_id=version)
            if stored is not None and expected.strip('"') != stored.etag.strip('"'):
                raise PreconditionFailed(failed_condition="x-amz-copy-source-If-Match")
        return copy_object(self)

    copy_if_match.__tracklane_checked__ = True  # type: ignore[attr-defined]
    return copy_if_match


def make_s3_copy_conditions_checked() -> None:
    from moto.s3.responses import S3Response

    if not getattr(S3Response.copy_object, "__tracklane_checked__", False):
        S3Response.copy_object = _checked(S3Response.copy_object)  # type: ignore[method-assign,assignment]


def _locked_etag(fake_key_class: Any) -> Any:
    unlocked: Any = fake_key_class.etag

    def etag(self: Any) -> str:
        if self._etag is None:
            with self.lock:
                if self._etag is None:
                    return str(unlocked.fget(self))
        return str(unlocked.fget(self))

    etag.__tracklane_locked__ = True  # type: ignore[attr-defined]
    return property(etag)


def make_s3_etag_reads_locked() -> None:
    from moto.s3.models import FakeKey

    current: Any = FakeKey.etag
    if not getattr(current.fget, "__tracklane_locked__", False):
        FakeKey.etag = _locked_etag(FakeKey)  # type: ignore[method-assign,assignment]

"""S3 operations the domain needs: presign, inspect, delete."""

from __future__ import annotations

import io
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError

from functions.clients import s3
from functions.settings import settings

if TYPE_CHECKING:
    from mypy_boto3_s3.type_defs import ObjectIdentifierTypeDef


@dataclass(frozen=True)
class PresignedPut:
    url: str
    headers: dict[str, str]


@dataclass(frozen=True)
class StoredObject:
    size: int
    content_type: str | None
    etag: str


def presign_put(key: str, *, content_type: str, content_length: int, expires_in: int) -> PresignedPut:
    """A PUT URL signed over Content-Type and Content-Length (SigV4): S3 refuses any other type or
    size. ``headers`` are exactly the signed headers the client must send (Host is implicit)."""
    url = s3().generate_presigned_url(
        "put_object",
        Params={
            "Bucket": settings().media_bucket,
            "Key": key,
            "ContentType": content_type,
            "ContentLength": content_length,
        },
        ExpiresIn=expires_in,
    )
    return PresignedPut(url=url, headers={"content-type": content_type, "content-length": str(content_length)})


def presign_get(key: str, *, expires_in: int, content_type: str | None = None) -> str:
    """A GET URL; ``content_type`` makes S3 answer with that Content-Type (for players)."""
    params: dict[str, Any] = {"Bucket": settings().media_bucket, "Key": key}
    if content_type:
        params["ResponseContentType"] = content_type
    return s3().generate_presigned_url("get_object", Params=params, ExpiresIn=expires_in)


def head(key: str) -> StoredObject | None:
    try:
        response = s3().head_object(Bucket=settings().media_bucket, Key=key)
    except ClientError as error:
        if error.response.get("Error", {}).get("Code") in {"404", "NoSuchKey", "NotFound"}:
            return None
        raise
    return StoredObject(
        size=int(response["ContentLength"]),
        content_type=response.get("ContentType"),
        etag=response.get("ETag", "").strip('"'),
    )


# Reads smaller than this are widened to it: tag parsers read many small fields.
RANGE_READ_BYTES = 256 * 1024


class _RangedObject(io.RawIOBase):
    """A seekable, read-only view of an S3 object that fetches only the byte ranges read."""

    def __init__(self, key: str, size: int) -> None:
        super().__init__()
        self._key = key
        self._size = size
        self._position = 0
        self.requests = 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._position

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self._position, io.SEEK_END: self._size}[whence]
        self._position = max(0, base + offset)
        return self._position

    def readinto(self, buffer: Any) -> int:
        if self._position >= self._size:
            return 0
        last = min(self._position + len(buffer), self._size) - 1
        response = s3().get_object(
            Bucket=settings().media_bucket, Key=self._key, Range=f"bytes={self._position}-{last}"
        )
        data = response["Body"].read()
        self.requests += 1
        buffer[: len(data)] = data
        self._position += len(data)
        return len(data)


def open_ranged(key: str, *, size: int) -> io.BufferedReader:
    """A file object over ``key`` for parsers that seek (e.g. tag readers): memory and transfer
    are bounded by what is read, not by the object's size."""
    return io.BufferedReader(_RangedObject(key, size), buffer_size=RANGE_READ_BYTES)


def download(key: str, path: Path) -> None:
    s3().download_file(settings().media_bucket, key, str(path))


def put_bytes(key: str, data: bytes, *, content_type: str) -> None:
    s3().put_object(Bucket=settings().media_bucket, Key=key, Body=data, ContentType=content_type)


def upload_file(path: Path, key: str, *, content_type: str) -> None:
    """Streams a local file to S3 (multipart above the transfer threshold): memory stays bounded."""
    s3().upload_file(str(path), settings().media_bucket, key, ExtraArgs={"ContentType": content_type})


def put_json(key: str, document: Any) -> None:
    body = json.dumps(document, separators=(",", ":")).encode()
    s3().put_object(Bucket=settings().media_bucket, Key=key, Body=body, ContentType="application/json")


def delete(key: str) -> None:
    s3().delete_object(Bucket=settings().media_bucket, Key=key)


# DeleteObjects takes at most this many keys per call; ListObjectsV2 pages are this size too.
DELETE_BATCH = 1000


class DeleteIncomplete(Exception):
    """S3 refused to delete some keys (DeleteObjects reports them per key instead of failing)."""

    def __init__(self, errors: Sequence[Mapping[str, object]]) -> None:
        summary = ", ".join(f"{e.get('Key')}: {e.get('Code')}" for e in errors[:5])
        super().__init__(f"{len(errors)} object(s) were not deleted ({summary})")
        self.errors = errors


def delete_prefix(prefix: str, *, keep: Iterable[str] = ()) -> int:
    """Deletes every object under ``prefix`` except ``keep`` and returns how many it deleted:
    ListObjectsV2 page by page, one DeleteObjects per page of at most 1,000 keys. Deleting behind
    the listing is safe, since each page continues after the last key already listed."""
    # A prefix that is empty or not a whole folder ("tracks/ab" also matches "tracks/abc/...") would
    # delete what belongs to something else; every caller passes a keys.*_prefix.
    if not prefix.endswith("/") or prefix.strip("/") == "":
        raise ValueError(f"refusing to delete under {prefix!r}: not a folder prefix")
    kept = set(keep)
    bucket = settings().media_bucket
    deleted = 0
    pages = (
        s3()
        .get_paginator("list_objects_v2")
        .paginate(Bucket=bucket, Prefix=prefix, PaginationConfig={"PageSize": DELETE_BATCH})
    )
    for page in pages:
        objects: list[ObjectIdentifierTypeDef] = [
            {"Key": item["Key"]} for item in page.get("Contents", []) if item["Key"] not in kept
        ]
        if not objects:
            continue
        response = s3().delete_objects(Bucket=bucket, Delete={"Objects": objects, "Quiet": True})
        if response.get("Errors"):
            raise DeleteIncomplete(response["Errors"])
        deleted += len(objects)
    return deleted

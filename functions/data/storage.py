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
    # What the client must set on the request. The signature may cover more: Content-Length, which
    # a browser refuses to be told (every HTTP client sends it from the body), and Host.
    headers: dict[str, str]


@dataclass(frozen=True)
class StoredObject:
    size: int
    content_type: str | None
    etag: str


def presign_put(key: str, *, content_type: str, content_length: int, expires_in: int) -> PresignedPut:
    """A PUT URL signed over Content-Type and Content-Length (SigV4): S3 refuses any other type or
    size. ``headers``: the Content-Type to send (the client's HTTP stack sends Content-Length from the
    body, and the Host of the URL)."""
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
    return PresignedPut(url=url, headers={"content-type": content_type})


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


def put_json(key: str, document: Any) -> str:
    """Stores ``document``; returns the new object's ETag."""
    body = json.dumps(document, separators=(",", ":")).encode()
    stored = s3().put_object(Bucket=settings().media_bucket, Key=key, Body=body, ContentType="application/json")
    return str(stored.get("ETag", "")).strip('"')


@dataclass(frozen=True)
class JsonObject:
    document: Any
    etag: str


NOT_MODIFIED = object()


def get_json(key: str, *, unless_etag: str | None = None) -> JsonObject | object | None:
    """The JSON document at ``key`` with its ETag; None when there is none; ``NOT_MODIFIED`` when
    its ETag is still ``unless_etag`` (a conditional GET: nothing is transferred)."""
    params: dict[str, Any] = {"Bucket": settings().media_bucket, "Key": key}
    if unless_etag:
        params["IfNoneMatch"] = unless_etag
    try:
        response = s3().get_object(**params)
    except ClientError as error:
        code = error.response.get("Error", {}).get("Code")
        if code in {"304", "NotModified"}:
            return NOT_MODIFIED
        if code in {"404", "NoSuchKey", "NotFound"}:
            return None
        raise
    return JsonObject(json.loads(response["Body"].read()), response.get("ETag", "").strip('"'))


class ObjectChanged(Exception):
    """The source object no longer is the one that was checked (another PUT replaced it)."""


def copy_if_unchanged(source_key: str, target_key: str, *, etag: str) -> None:
    """Server-side copy of ``source_key`` to ``target_key``, only if the source still has ``etag``
    (``x-amz-copy-source-if-match``): what lands at the target is exactly what was checked, even if
    a PUT replaces the source in between. Type and metadata are copied with it. Raises
    ObjectChanged, or ObjectMissing when the source is gone."""
    try:
        s3().copy_object(
            Bucket=settings().media_bucket,
            Key=target_key,
            CopySource={"Bucket": settings().media_bucket, "Key": source_key},
            CopySourceIfMatch=f'"{etag}"',
            MetadataDirective="COPY",
        )
    except ClientError as error:
        code = error.response.get("Error", {}).get("Code")
        if code in {"PreconditionFailed", "412"}:
            raise ObjectChanged(source_key) from error
        if code in {"NoSuchKey", "404"}:
            raise ObjectMissing(source_key) from error
        raise


class ObjectMissing(Exception):
    """The object is not (or no longer) in storage."""


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


# Resumable (multipart) uploads: the API opens the upload, signs one URL per part, lists what has
# landed and completes or aborts it; the client sends the bytes straight to S3, as for a single PUT.

# S3 lifecycle aborts an incomplete multipart upload this many days after it was started
# (stacks/constructs/storage.py). An intent's multipart window must end before that.
ABORT_INCOMPLETE_MULTIPART_DAYS = 1
# S3 lifecycle deletes any object under uploads/ this many days after it was written. Finalize
# copies what it keeps out of uploads/ at once (functions.data.keys.kept_upload), so whatever is
# still there by then belongs to no track: its intent expired unfinalized, or its put event was
# lost. An intent must expire before this (functions.settings bounds intent_ttl_s).
ABANDONED_UPLOAD_DAYS = 7
# S3's limits: every part but the last is at least 5 MiB; an upload has at most 10,000 parts.
MIN_PART_BYTES = 5 * 1024 * 1024
MAX_PART_BYTES = 5 * 1024**3
MAX_PARTS = 10_000
# ListParts answers at most this many parts per call.
_LIST_PARTS_PAGE = 1000


@dataclass(frozen=True)
class StoredPart:
    part_number: int
    size: int
    etag: str


class MultipartUploadGone(Exception):
    """S3 no longer knows the multipart upload: it was completed, aborted, or expired by lifecycle."""


class PartsRefused(Exception):
    """CompleteMultipartUpload refused the part list (an ETag that is not the stored part's, a
    missing part, or a part under 5 MiB before the last)."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


def _multipart_error(error: ClientError) -> Exception:
    code = error.response.get("Error", {}).get("Code", "")
    if code in {"NoSuchUpload", "404"}:
        return MultipartUploadGone(str(error))
    if code in {"InvalidPart", "InvalidPartOrder", "EntityTooSmall", "MalformedXML"}:
        return PartsRefused(code, error.response.get("Error", {}).get("Message", code))
    return error


def create_multipart(key: str, *, content_type: str) -> str:
    """Opens a multipart upload and returns S3's UploadId. The content type is fixed here, so the
    completed object carries the intent's type whatever the part requests send."""
    response = s3().create_multipart_upload(Bucket=settings().media_bucket, Key=key, ContentType=content_type)
    return response["UploadId"]


def presign_part(
    key: str, multipart_id: str, part_number: int, *, content_length: int, expires_in: int
) -> PresignedPut:
    """An UploadPart URL signed over Content-Length (SigV4), like ``presign_put``: S3 refuses a part
    of any other size, so a completed upload can only have the planned total size."""
    url = s3().generate_presigned_url(
        "upload_part",
        Params={
            "Bucket": settings().media_bucket,
            "Key": key,
            "UploadId": multipart_id,
            "PartNumber": part_number,
            "ContentLength": content_length,
        },
        ExpiresIn=expires_in,
    )
    return PresignedPut(url=url, headers={})


@dataclass(frozen=True)
class MultipartRequests:
    """Presigned S3 requests on one multipart upload, for clients that speak S3 themselves (Uppy, the
    AWS SDKs' presigned flows): ListParts (GET), CompleteMultipartUpload (POST, S3's XML part list as
    the body) and AbortMultipartUpload (DELETE). Each is valid for that upload only. Completing at S3
    fires the object's put event, which finalizes it like a single PUT; the object can only have the
    planned size because every part URL was signed for its part's exact size."""

    list_parts_url: str
    complete_url: str
    abort_url: str


def presign_multipart_requests(key: str, multipart_id: str, *, expires_in: int) -> MultipartRequests:
    params = {"Bucket": settings().media_bucket, "Key": key, "UploadId": multipart_id}

    def sign(operation: str) -> str:
        return s3().generate_presigned_url(operation, Params=params, ExpiresIn=expires_in)

    return MultipartRequests(
        list_parts_url=sign("list_parts"),
        complete_url=sign("complete_multipart_upload"),
        abort_url=sign("abort_multipart_upload"),
    )


def list_parts(key: str, multipart_id: str) -> list[StoredPart]:
    """Every part S3 holds for the upload, in part number order. Raises MultipartUploadGone."""
    parts: list[StoredPart] = []
    marker = 0
    while True:
        try:
            page = s3().list_parts(
                Bucket=settings().media_bucket,
                Key=key,
                UploadId=multipart_id,
                PartNumberMarker=marker,
                MaxParts=_LIST_PARTS_PAGE,
            )
        except ClientError as error:
            raise _multipart_error(error) from error
        parts.extend(
            StoredPart(int(p["PartNumber"]), int(p["Size"]), p["ETag"].strip('"')) for p in page.get("Parts", [])
        )
        if not page.get("IsTruncated") or not page.get("Parts"):
            return parts
        marker = int(page["NextPartNumberMarker"])


def complete_multipart(key: str, multipart_id: str, parts: Sequence[tuple[int, str]]) -> None:
    """Assembles the object from ``(part number, etag)`` pairs. Raises MultipartUploadGone or PartsRefused."""
    try:
        s3().complete_multipart_upload(
            Bucket=settings().media_bucket,
            Key=key,
            UploadId=multipart_id,
            MultipartUpload={"Parts": [{"PartNumber": n, "ETag": f'"{etag}"'} for n, etag in parts]},
        )
    except ClientError as error:
        raise _multipart_error(error) from error


def abort_multipart(key: str, multipart_id: str) -> bool:
    """Aborts the upload and frees its parts; False when S3 no longer knows it (already completed,
    aborted or expired): aborting is idempotent."""
    try:
        s3().abort_multipart_upload(Bucket=settings().media_bucket, Key=key, UploadId=multipart_id)
    except ClientError as error:
        if isinstance(_multipart_error(error), MultipartUploadGone):
            return False
        raise
    return True


@dataclass(frozen=True)
class PresignedPost:
    url: str
    # The form fields to send before the file (key, policy, signature...), as S3 requires.
    fields: dict[str, str]


def presign_post(key: str, *, max_bytes: int, content_type_prefix: str, expires_in: int) -> PresignedPost:
    """A browser-form POST to exactly ``key`` whose signed policy bounds what S3 accepts: 1 to
    ``max_bytes`` bytes (``content-length-range``) and a ``Content-Type`` form field starting with
    ``content_type_prefix``. For uploads whose size and type the client does not declare up front
    (the upload-session contract's track cover); finalize still checks the stored object."""
    post = s3().generate_presigned_post(
        Bucket=settings().media_bucket,
        Key=key,
        Conditions=[["content-length-range", 1, max_bytes], ["starts-with", "$Content-Type", content_type_prefix]],
        ExpiresIn=expires_in,
    )
    return PresignedPost(url=post["url"], fields={name: str(value) for name, value in post["fields"].items()})


def presign_put_any_size(key: str, *, content_type: str, expires_in: int) -> PresignedPut:
    """A PUT URL signed over Content-Type only: for an upload whose size the client does not
    declare (the upload-session contract's tracks). S3 cannot bound a PUT's size without an exact
    signed Content-Length, so finalize bounds it (``UploadModel.declared_bounds``)."""
    url = s3().generate_presigned_url(
        "put_object",
        Params={"Bucket": settings().media_bucket, "Key": key, "ContentType": content_type},
        ExpiresIn=expires_in,
    )
    return PresignedPut(url=url, headers={"content-type": content_type})

"""One file through ``POST /v1/uploads``: intent, bytes (one signed PUT, or parts above the multipart
threshold), finalize or complete, then its processing.

Resume: the intent's ids are saved as soon as the API answers (``client.state``). A rerun of the
same command finds them and asks the API what it holds: for a multipart upload ``GET …/parts``,
then only ``missingParts`` are sent (with fresh URLs) and the upload is completed; a single PUT
cannot be continued part-way, so its draft is cancelled and the file sent again; bytes that were
already finalized are not sent at all, only followed to their verdict. An intent that expired or
was cancelled meanwhile is started over, and the run says so. A file that ended ``ready`` (or as a
duplicate) is reported again, not uploaded again, while its track exists.
"""

from __future__ import annotations

import contextlib
from typing import Any

from client import progress, transfer
from client.api import ApiError, Unreachable
from client.context import Context, FileSpec, content_type
from client.results import Result
from client.state import file_identity

# Finalize's union: the answers that mean "stored and being processed".
PROCESSING = {"finalized", "already_finalized"}
# What parts/complete answer for an intent that can no longer take parts: start over.
GONE = {"upload_intent_expired", "upload_intent_cancelled", "upload_intent_not_found"}


def refused(result: Result, error: ApiError) -> Result:
    result.status = "refused" if error.status < 500 else "failed"
    result.code, result.message = error.code, error.message
    return result


class FileUpload:
    def __init__(self, ctx: Context, spec: FileSpec, *, album: str | None = None) -> None:
        self.ctx = ctx
        self.spec = spec
        self.album = album
        self.key = ctx.store.key("file", ctx.identity, file_identity(spec.path), album or "")
        self.result = Result(file=str(spec.path), status="interrupted", byte_size=spec.byte_size)
        self.record: dict[str, Any] = {}

    # -- the bytes ----------------------------------------------------------------------------------

    def send(self) -> bool:
        """Stores and finalizes the file; True when its processing is to be followed, False when
        ``result`` is already final. Interrupted, Unreachable and KeyboardInterrupt propagate, with
        ``result`` saying how far it got."""
        self.ctx.reporter.start(self.spec.slot, self.spec.name, self.spec.byte_size)
        try:
            saved = None if self.ctx.restart else self.ctx.store.load(self.key)
            if saved is not None:
                self.result.resumed = True
                verdict = self._resume(saved)
                if verdict is not None:
                    return verdict
                self.result = Result(file=str(self.spec.path), status="interrupted", byte_size=self.spec.byte_size)
            return self._fresh()
        except ApiError as error:
            refused(self.result, error)
            if error.status < 500:
                # Refused: a rerun starts over. A server error keeps the state: a rerun resumes.
                self.ctx.store.drop(self.key)
            return False
        except transfer.FileChanged as changed:
            self.result.status, self.result.code, self.result.message = "failed", changed.code, str(changed)
            self.ctx.store.drop(self.key)
            return False

    def _save(self, **changes: Any) -> None:
        self.record.update(changes)
        self.ctx.store.save(self.key, self.record)

    def _fresh(self) -> bool:
        spec, ctx, result = self.spec, self.ctx, self.result
        body: dict[str, Any] = {
            "fileName": spec.name,
            "contentType": content_type(spec.path),
            "byteSize": spec.byte_size,
            **ctx.metadata(),
        }
        if spec.title:
            body["title"] = spec.title
        if self.album:
            body["album"] = self.album
        multipart = spec.byte_size > ctx.multipart_threshold
        body["multipart"] = multipart
        if multipart and ctx.part_size is not None and ctx.part_size_supported is not False:
            body["partSize"] = ctx.part_size
        intent = self._create(body)
        result.upload_id, result.track_id = intent["uploadId"], intent["trackId"]
        plan = intent.get("multipart")
        result.multipart = plan is not None
        if plan is not None:
            result.part_size, result.part_count = int(plan["partSize"]), int(plan["partCount"])
        self.record = {
            "file": str(spec.path),
            "uploadId": result.upload_id,
            "trackId": result.track_id,
            "multipart": result.multipart,
            "partSize": result.part_size,
            "partCount": result.part_count,
        }
        self._save()
        if plan is None:
            transfer.put_whole(
                ctx.api,
                intent["signedUrl"],
                spec.path,
                spec.byte_size,
                headers=dict(intent.get("requiredHeaders") or {}),
                on_bytes=self._sent,
                stop=ctx.stop,
            )
            return self._finalized(ctx.api.finalize(intent["uploadId"]))
        urls = transfer.PartUrls(ctx.api, intent["uploadId"], plan.get("parts"), plan.get("partsExpireAt"))
        self._send_parts(list(range(1, int(plan["partCount"]) + 1)), urls)
        return self._complete()

    def _create(self, body: dict[str, Any]) -> dict[str, Any]:
        try:
            return self.ctx.api.create_upload(body)
        except ApiError as error:
            if "partSize" in body and _refuses_field(error, "partSize"):
                # An API from before part sizes were the client's choice: it plans its own.
                self.ctx.part_size_supported = False
                self.ctx.reporter.notice(
                    f"{self.spec.name}: this API chooses its own part size; --part-size is ignored"
                )
                return self.ctx.api.create_upload({k: v for k, v in body.items() if k != "partSize"})
            raise

    def _sent(self, byte_count: int) -> None:
        self.ctx.reporter.sent(self.spec.slot, byte_count)

    def _part_stored(self, _: int) -> None:
        self.result.parts_uploaded += 1
        self.ctx.part_stored()

    def _send_parts(self, numbers: list[int], urls: transfer.PartUrls) -> None:
        result = self.result
        assert result.part_size is not None and result.part_count is not None
        wanted = set(numbers)
        parts = [
            p for p in transfer.plan(self.spec.byte_size, result.part_size, result.part_count) if p.number in wanted
        ]
        transfer.upload_parts(
            self.ctx.api,
            self.spec.path,
            parts,
            urls,
            parallel=self.ctx.parallel,
            on_bytes=self._sent,
            stop=self.ctx.stop,
            on_part=self._part_stored,
        )

    def _complete(self) -> bool:
        assert self.result.upload_id is not None
        try:
            answer = self.ctx.api.complete(self.result.upload_id)
        except ApiError as error:
            if error.code != "upload_parts_incomplete":
                raise
            # A part stored earlier was replaced or lost meanwhile: send what storage lacks, once.
            listing = self.ctx.api.parts(self.result.upload_id)
            self._send_parts(listing.get("missingParts", []), transfer.PartUrls(self.ctx.api, self.result.upload_id))
            answer = self.ctx.api.complete(self.result.upload_id)
        return self._finalized(answer)

    def _finalized(self, answer: dict[str, Any]) -> bool:
        status = answer.get("status")
        self.result.track_id = answer.get("trackId", self.result.track_id)
        if status == "duplicate":
            self.result.status = "duplicate"
            self._save(done={"status": "duplicate", "trackId": self.result.track_id})
            return False
        if status not in PROCESSING:
            raise ApiError(0, "unexpected_answer", f"finalize answered status {status!r}")
        self._save(stored=True)
        return True

    # -- resuming ----------------------------------------------------------------------------------

    def _resume(self, saved: dict[str, Any]) -> bool | None:
        """What an earlier run left: True/False as ``send``, None to start over."""
        self.record = dict(saved)
        result = self.result
        result.upload_id, result.track_id = saved.get("uploadId"), saved.get("trackId")
        result.multipart = bool(saved.get("multipart"))
        result.part_size, result.part_count = saved.get("partSize"), saved.get("partCount")
        done = saved.get("done")
        if isinstance(done, dict):
            return self._already_done(done)
        if saved.get("stored"):
            result.parts_resumed = result.part_count or 0
            self.ctx.reporter.sent(self.spec.slot, self.spec.byte_size)
            return True
        if result.multipart:
            return self._resume_parts()
        return self._resume_single()

    def _already_done(self, done: dict[str, Any]) -> bool | None:
        try:
            self.ctx.api.track(str(done["trackId"]))
        except ApiError as error:
            if error.status != 404:
                raise
            self._start_over(f"its track {done['trackId']} no longer exists")
            return None
        self.result.status, self.result.track_id = str(done["status"]), str(done["trackId"])
        self.result.parts_resumed = self.result.part_count or 0
        self.ctx.reporter.sent(self.spec.slot, self.spec.byte_size)
        return False

    def _start_over(self, why: str) -> None:
        self.ctx.reporter.notice(f"{self.spec.name}: the earlier upload {self.result.upload_id} {why}; starting over")
        self.ctx.store.drop(self.key)

    def _resume_single(self) -> bool | None:
        """One signed PUT cannot be continued: unless its bytes were finalized (by the put event,
        say, before Ctrl-C reached the finalize call) the draft is cancelled and the file sent again."""
        assert self.result.upload_id is not None and self.result.track_id is not None
        try:
            track = self.ctx.api.track(self.result.track_id)
        except ApiError as error:
            if error.status != 404:
                raise
            self._start_over("is gone")
            return None
        if track.get("status") not in {"draft", "rejected"}:
            self._save(stored=True)
            self.ctx.reporter.sent(self.spec.slot, self.spec.byte_size)
            return True
        try:
            self.ctx.api.cancel(self.result.upload_id)
        except ApiError as error:
            if error.code == "upload_already_finalized":
                self._save(stored=True)
                return True
            if error.status not in {404, 410}:
                raise
        self._start_over("was one signed PUT, which cannot be continued part-way")
        return None

    def _resume_parts(self) -> bool | None:
        result = self.result
        assert result.upload_id is not None
        try:
            listing = self.ctx.api.parts(result.upload_id)
        except ApiError as error:
            if error.code in GONE or error.status in {404, 410}:
                self._start_over(f"can no longer be completed ({error.code})")
                return None
            raise
        if listing.get("status") != "pending":
            # Completed or finalized by an earlier run (or its S3 event): complete answers what it became.
            return self._complete()
        result.part_size, result.part_count = int(listing["partSize"]), int(listing["partCount"])
        missing = [int(n) for n in listing.get("missingParts", [])]
        stored = [p for p in listing.get("parts", []) if int(p["partNumber"]) not in missing]
        result.parts_resumed = len(stored)
        self.ctx.reporter.sent(self.spec.slot, sum(int(p["size"]) for p in stored))
        if stored:
            self.ctx.reporter.notice(
                f"{self.spec.name}: resuming {result.upload_id}: {len(stored)} of {result.part_count} parts "
                "already stored"
            )
        if missing:
            self._send_parts(missing, transfer.PartUrls(self.ctx.api, result.upload_id))
        return self._complete()

    # -- processing ----------------------------------------------------------------------------------

    def follow(self) -> Result:
        """Follows the processing to its verdict, into ``result`` (and the saved state)."""
        terminal = follow_to_verdict(self.ctx, self.spec.slot, self.result)
        if terminal is not None:
            settle(self, terminal)
        if self.album and self.result.status == "ready" and self.result.track_id:
            # The intent named the album; the track says which one it joined.
            with contextlib.suppress(ApiError, Unreachable):
                self.result.album_id = self.ctx.api.track(self.result.track_id).get("albumId")
        return self.result


def follow_to_verdict(ctx: Context, slot: int, result: Result) -> dict[str, Any] | None:
    """The terminal progress event of ``result.upload_id``, or None when the run was stopped, the
    network lost or the deadline passed (``result`` then says which)."""
    assert result.upload_id is not None

    def event(data: dict[str, Any]) -> None:
        ctx.reporter.processing(slot, str(data.get("message") or data.get("phase")), data.get("progressPct"))

    try:
        return progress.follow(ctx.api, result.upload_id, on_event=event, stop=ctx.stop, timeout_s=ctx.timeout_s)
    except transfer.Interrupted:
        result.status = "interrupted"
    except progress.ProgressTimeout as timeout:
        result.status, result.code, result.message = "timeout", timeout.code, str(timeout)
    except Unreachable as lost:
        result.status, result.code, result.message = "unreachable", lost.code, str(lost)
    except ApiError as error:
        refused(result, error)
    return None


def apply_verdict(result: Result, terminal: dict[str, Any]) -> None:
    phase = terminal.get("phase")
    result.track_id = terminal.get("trackId") or result.track_id
    if phase in {"ready", "duplicate"}:
        result.status = str(phase)
    else:
        result.status, result.code, result.message = "failed", terminal.get("code"), terminal.get("message")


def settle(upload: FileUpload, terminal: dict[str, Any]) -> None:
    """The verdict into the result and the saved state: kept for ready/duplicate (a rerun reports
    it instead of uploading again), dropped for a failure (a rerun tries again)."""
    result = upload.result
    apply_verdict(result, terminal)
    if result.status in {"ready", "duplicate"}:
        upload.record["done"] = {"status": result.status, "trackId": result.track_id}
        upload.ctx.store.save(upload.key, upload.record)
    else:
        upload.ctx.store.drop(upload.key)


def _refuses_field(error: ApiError, name: str) -> bool:
    fields = error.details.get("fields")
    return (
        error.code == "validation_failed"
        and isinstance(fields, list)
        and any(isinstance(f, dict) and f.get("field") == name for f in fields)
    )

"""Several files as one ordered album, through the upload-session contract (docs/api.md, "Upload
sessions"): the album (found by name among the user's albums, case-insensitively, else created),
one session into it, one session track per file with ``organization_index`` = the file's place on
the command line. The API places each track by that index when its upload is finalized, so the
album's order is the argument order whatever order the uploads finish in, and the files are sent
in parallel.

A session track is one signed PUT (the contract names no size, so the API cannot plan parts): an
album's files are not sent in parts, and a file cut off mid-way is sent again whole.

Resume: one state file for the album (its id, the session, each file's track and upload ids). A
rerun asks the session what became of each track: processing, ready or duplicate tracks are only
followed; a track still awaiting its upload is cancelled and added again (a session cannot sign a
fresh URL for it), as is a failed or expired one; an expired session is replaced by a new one into
the same album.
"""

from __future__ import annotations

import threading
from typing import Any

from client import transfer
from client.api import ApiError
from client.context import Context, FileSpec
from client.results import Result
from client.single import apply_verdict, follow_to_verdict, refused
from client.state import file_identity

# Session track states (GET /v1/upload_session/{id}) whose upload is in: follow it to its verdict.
FOLLOW = {"processing", "ready", "duplicate"}


def track_ref(track_id: str) -> str:
    """The session contract's bare UUIDs, rendered as the rest of the API does (``trk_…``)."""
    return track_id if track_id.startswith("trk_") else f"trk_{track_id}"


class AlbumUpload:
    def __init__(self, ctx: Context, name: str, specs: list[FileSpec]) -> None:
        self.ctx = ctx
        self.name = name
        self.key = ctx.store.key("album", ctx.identity, name, *(file_identity(s.path) for s in specs))
        self.tracks = [AlbumTrack(self, spec) for spec in specs]
        self.record: dict[str, Any] = {}
        self._lock = threading.Lock()

    def save(self) -> None:
        with self._lock:
            self.ctx.store.save(self.key, self.record)

    def entry(self, slot: int) -> dict[str, Any]:
        return dict(self.record.setdefault("tracks", {}).setdefault(str(slot), {}))

    def update_entry(self, slot: int, entry: dict[str, Any] | None) -> None:
        with self._lock:
            tracks = self.record.setdefault("tracks", {})
            if entry is None:
                tracks.pop(str(slot), None)
            else:
                tracks[str(slot)] = entry
            self.ctx.store.save(self.key, self.record)

    def prepare(self) -> None:
        """The album, the session and a session track for every file that needs one, in argument
        order, on the calling thread; a refusal fails the files it concerns."""
        ctx = self.ctx
        for track in self.tracks:
            ctx.reporter.start(track.spec.slot, track.spec.name, track.spec.byte_size)
        saved = None if ctx.restart else ctx.store.load(self.key)
        self.record = saved or {"album": self.name, "files": [str(t.spec.path) for t in self.tracks], "tracks": {}}
        try:
            album_id = self.record.get("albumId") or self._find_or_create_album()
        except ApiError as error:
            for track in self.tracks:
                refused(track.result, error)
            return
        self.record["albumId"] = album_id
        self.save()
        for track in self.tracks:
            track.result.album_id = album_id
        session_id, states, open_ = self._saved_session()
        for track in self.tracks:
            track.decide(states)
        needing = [t for t in self.tracks if t.needs_intent]
        for track in needing:
            if session_id is None or not open_:
                try:
                    session_id, open_ = self._new_session(album_id), True
                except ApiError as error:
                    for waiting in needing:
                        refused(waiting.result, error)
                    return
            if not track.create_intent(session_id):
                # The session expired between two tracks: one more, then give up on it.
                session_id, open_ = None, False

    def _find_or_create_album(self) -> str:
        handle = self.ctx.api.my_artist()["handle"]
        wanted = self.name.casefold()
        for album in self.ctx.api.albums_of(handle):
            if str(album.get("title", "")).casefold() == wanted:
                return str(album["albumId"])
        created = self.ctx.api.create_album(self.name)
        self.ctx.reporter.notice(f"album {self.name!r} created ({created['albumId']})")
        return str(created["albumId"])

    def _saved_session(self) -> tuple[str | None, dict[str, dict[str, Any]], bool]:
        session_id = self.record.get("sessionId")
        if not session_id:
            return None, {}, False
        try:
            session = self.ctx.api.session(session_id)["upload_session"]
        except ApiError as error:
            if error.status != 404:
                raise
            return None, {}, False
        states = {track_ref(t["id"]): t for t in session.get("tracks", [])}
        return session_id, states, session.get("status") == "open"

    def _new_session(self, album_id: str) -> str:
        session_id = str(self.ctx.api.create_session(album_id)["upload_session_id"])
        self.record["sessionId"] = session_id
        self.save()
        return session_id


class AlbumTrack:
    def __init__(self, album: AlbumUpload, spec: FileSpec) -> None:
        self.album = album
        self.ctx = album.ctx
        self.spec = spec
        self.result = Result(file=str(spec.path), status="interrupted", byte_size=spec.byte_size, position=spec.slot)
        self.needs_intent = False
        self.follow_only = False
        self.put: dict[str, Any] | None = None

    def decide(self, states: dict[str, dict[str, Any]]) -> None:
        """What this run does with the file, from what an earlier run left and the session says."""
        entry = self.album.entry(self.spec.slot)
        track_id = entry.get("trackId")
        state = states.get(track_id) if track_id else None
        status = state.get("status") if state else None
        if track_id and (status in FOLLOW or (status == "pending" and entry.get("stored"))):
            self.result.track_id, self.result.upload_id = track_id, entry.get("uploadId")
            self.result.resumed = self.follow_only = True
            self.ctx.reporter.sent(self.spec.slot, self.spec.byte_size)
            return
        if track_id and status == "pending" and entry.get("uploadId"):
            # Its URL may have expired and the session cannot sign another: cancel it, add it again.
            try:
                self.ctx.api.cancel(str(entry["uploadId"]))
            except ApiError as error:
                if error.status not in {404, 409, 410}:
                    raise
        if track_id:
            self.ctx.reporter.notice(f"#{self.spec.slot} {self.spec.name}: sending it again ({status or 'gone'})")
        self.album.update_entry(self.spec.slot, None)
        self.needs_intent = True

    def create_intent(self, session_id: str) -> bool:
        """A session track for this file, its tags and visibility, and its upload id (for the
        progress route); False when the session has expired (the caller opens another)."""
        ctx, spec = self.ctx, self.spec
        metadata: dict[str, Any] = {"track_number": spec.slot}
        if spec.title:
            metadata["title"] = spec.title
        try:
            added = ctx.api.add_session_track(session_id, spec.name, index=str(spec.slot), metadata=metadata)
            track_id = track_ref(str(added["track_id"]))
            self.result.track_id = track_id
            if ctx.metadata():
                ctx.api.update_track(track_id, ctx.metadata())
            upload_id = str(ctx.api.track(track_id)["uploadId"])
        except ApiError as error:
            if error.code == "upload_session_expired":
                return False
            refused(self.result, error)
            self.needs_intent = False
            return True
        self.result.upload_id = upload_id
        self.put = dict(added["track_upload"])
        self.album.update_entry(spec.slot, {"file": str(spec.path), "trackId": track_id, "uploadId": upload_id})
        return True

    def send(self) -> bool:
        """PUTs the file (when this run added its track); True when its processing is to be followed."""
        if self.follow_only:
            return True
        if self.put is None:
            return False
        transfer.put_whole(
            self.ctx.api,
            str(self.put["upload_url"]),
            self.spec.path,
            self.spec.byte_size,
            headers=dict(self.put.get("headers") or {}),
            on_bytes=lambda n: self.ctx.reporter.sent(self.spec.slot, n),
            stop=self.ctx.stop,
        )
        entry = self.album.entry(self.spec.slot)
        self.album.update_entry(self.spec.slot, {**entry, "stored": True})
        return True

    def follow(self) -> Result:
        terminal = follow_to_verdict(self.ctx, self.spec.slot, self.result)
        if terminal is not None:
            apply_verdict(self.result, terminal)
            if self.result.status not in {"ready", "duplicate"}:
                # A rerun adds the file again: a failed track stays out of the album.
                self.album.update_entry(self.spec.slot, None)
        return self.result

"""Deleting what an owner made: a track (its items, stored files, album membership, content claim
and any intent still pending) and an album, optionally with its tracks.

Deletion spans capabilities (the catalog's tracks and albums, intake's uploads, versions and
documents), so it sits above both: nothing below imports it.

A DELETE races the processing workflow, which keeps writing to the track while its lanes run. The
track item goes first; from then on every lane write is conditional on the item existing and fails
instead of re-creating it, and the lane, then the workflow's last step, sweep what was stored after
the delete (``functions.domain.processing.steps``, ``functions.domain.processing.verdict``).
"""

from __future__ import annotations

from functions.data import keys, storage, writes
from functions.data.models import TrackModel, UploadModel
from functions.domain.catalog import album_membership, albums, listing, tracks, usage
from functions.domain.intake import duplicates, media_uploads, uploads, versions
from functions.errors import TrackNotFound
from functions.observability import logger


def delete_album(owner_id: str, album_id: str, *, cascade: bool) -> albums.Deleted:
    """Deletes the album; its tracks are taken out of it, or with ``cascade`` deleted too."""
    return albums.delete(
        owner_id, album_id, delete_track=(lambda track_id: delete_track(track_id, owner_id)) if cascade else None
    )


def delete_track(track_id: str, owner_id: str) -> bool:
    """Deletes the track, its lanes, its S3 objects and its album membership. Idempotent: False
    when there was nothing to delete. Another owner's track is 'not found' (TrackNotFound)."""
    track = tracks.find(track_id)
    if track is None:
        return False
    if track.owner_id != owner_id:
        raise TrackNotFound("No such track.")
    # Its bytes (audio, images, documents) leave the owner's usage while the track is still there:
    # a stop before the item's delete leaves the track counted as nothing, never its bytes counted
    # for ever.
    usage.release_track(owner_id, track_id, while_exists=True)
    usage.release_target_media(owner_id, TrackModel, track_id, TrackModel.TRACK_SK, while_exists=True)
    # The track item goes first: from then on no lane can write to it (their writes require it),
    # so whatever a running workflow stores afterwards is swept by the workflow itself.
    deleted = _delete_items(track)
    if deleted is None:
        return False
    # Whatever was counted between the release and the delete (a version's original settled then,
    # an image or a document claimed then).
    usage.release_track(owner_id, track_id, while_exists=False)
    usage.release_target_media(owner_id, TrackModel, track_id, TrackModel.TRACK_SK, while_exists=False)
    # Tag entries as the item listed them when it went (a sync may have moved them since the read).
    listing.unlist_deleted(deleted)
    if deleted.content_checksum:
        # The owner may upload these bytes again: they are a new track then, not a duplicate.
        duplicates.release(owner_id, deleted.content_checksum, track_id)
    lanes = tracks.delete_side_items(track_id)
    if track.album_id:
        album_membership.remove_track(track.album_id, track_id)
    for key in _uploaded_files(deleted):
        storage.delete(key)
    objects = storage.delete_prefix(keys.track_prefix(track_id))
    logger.info("track deleted", extra={"track_id": track_id, "lanes": lanes, "objects": objects})
    return True


def _uploaded_files(track: TrackModel) -> list[str]:
    """What the owner uploaded for the track, under ``uploads/`` (everything processing made is
    under the track's own prefix): the original, a pending version's, an uploaded image, its documents."""
    image = track.image_source or {}
    uploaded_image = [image["key"]] if image.get("origin") == "upload" and image.get("key") else []
    documents = [document.key for document in media_uploads.documents(track)]
    # A new version's original that was stored but never processed (a running one cleans up itself).
    pending_original = (versions.pending_of(track) or {}).get("originalKey")
    return [key for key in (track.original_key, pending_original, *uploaded_image, *documents) if key]


def _delete_items(track: TrackModel) -> TrackModel | None:
    """Deletes the track item (only the owner's, only if it is still there) and, while it is still
    pending, the upload intent with it, so the file cannot be finalized into a deleted track.
    Returns the item as it was when deleted; None when the track was deleted meanwhile."""
    owned = TrackModel.pk.exists() & (TrackModel.owner_id == track.owner_id)
    upload = uploads.find(track.upload_id)
    if upload is not None and upload.status == "pending":

        def write(tx: writes.ConditionalTransaction) -> None:
            # A draft: nothing has processed or listed it, so the item read is the item deleted.
            tx.delete(track, condition=owned & (TrackModel.status == "draft"))
            tx.delete(upload, condition=UploadModel.status == "pending")

        # The intent's reservation goes with it (functions.domain.catalog.usage).
        tx = usage.releasing(upload, write)
        if tx.committed:
            return track
        if tx.refused(track) and tracks.find(track.track_id) is None:
            return None
        # The intent was finalized meanwhile: it stays as the record of its asset.
    return writes.delete_if_returning_old(TrackModel(track.track_id, TrackModel.TRACK_SK), owned)

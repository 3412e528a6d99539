"""After a restart on a kept store: the S3 events the stop lost are raised again.

An upload PUT raises ObjectCreated on the S3-event queue, and the pump hands it to finalize. The
queue's messages are not kept (local/persistence.py), so an upload PUT shortly before a stop, its
event not yet handled and no finalize call made, would stay pending with its file stored until its
intent expired. Rather than keep the queue, a start on a kept store reconciles from what is kept:
every intent still ``pending`` whose file is in the bucket gets its ObjectCreated again, raised by
moto as a PUT raises it, and the pump finalizes it as it would have. That covers the events lost in
the queue and those lost in flight (the pump had taken the message, finalize had not claimed the
intent), and it is exact: an intent whose event was handled is no longer pending, whatever the
verdict (finalized, rejected, duplicate), and one whose file never arrived has no object. Raising an
event twice is harmless: finalize is idempotent, the claim on ``status == "pending"`` picks one winner.
"""

from __future__ import annotations

from functions.data.models import UploadModel


def redeliver(bucket_name: str) -> list[str]:
    """Raises ObjectCreated again for every pending intent whose file is stored; returns their
    upload ids. moto must be running in this process with the store restored."""
    from moto.core.models import DEFAULT_ACCOUNT_ID
    from moto.s3.models import s3_backends
    from moto.s3.notifications import S3NotificationEvent, send_event

    bucket = s3_backends[DEFAULT_ACCOUNT_ID]["global"].buckets[bucket_name]
    raised = []
    # A Scan: the local store is small, and nothing indexes pending intents (on AWS the queue
    # itself keeps their events, so nothing there needs to find them).
    for upload in UploadModel.scan(UploadModel.status == "pending"):
        stored = bucket.keys.get(upload.object_key)
        if stored is None or not hasattr(stored, "_value_buffer"):  # never arrived, or a delete marker
            continue
        send_event(DEFAULT_ACCOUNT_ID, S3NotificationEvent.OBJECT_CREATED_PUT_EVENT, bucket, stored)
        raised.append(upload.upload_id)
    return raised

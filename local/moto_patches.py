"""Every change the local stack and the integration tests make to moto before its server starts:
three make it behave as AWS does where tracklane relies on it, one only takes repeated work off it."""

from __future__ import annotations

from local.moto_atomic import make_dynamodb_writes_atomic
from local.moto_s3 import make_s3_copy_conditions_checked, make_s3_etag_reads_locked
from local.moto_speed import make_moto_server_faster


def patch_moto() -> None:
    """Idempotent; call before the moto server starts."""
    make_dynamodb_writes_atomic()
    make_s3_copy_conditions_checked()
    make_s3_etag_reads_locked()
    make_moto_server_faster()

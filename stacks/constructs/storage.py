"""The media bucket (originals under ``uploads/``, processed outputs under ``tracks/``) and the bucket
that receives its server access logs."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from aws_cdk import Duration, RemovalPolicy
from aws_cdk import aws_iam as iam
from aws_cdk import aws_s3 as s3
from constructs import Construct

from functions import cors
from functions.data.keys import ALBUMS_PREFIX, KEPT_FOLDER, TRACKS_PREFIX, UPLOADS_PREFIX
from functions.data.storage import ABANDONED_UPLOAD_DAYS, ABORT_INCOMPLETE_MULTIPART_DAYS
from stacks import nag


def kept_prefix(owner_prefix: str) -> str:
    """``tracks/*/uploaded/`` or ``albums/*/uploaded/``: every track's or album's kept uploads."""
    return f"{owner_prefix}*/{KEPT_FOLDER}"


def _private_bucket(scope: Construct, id_: str, *, removal_policy: RemovalPolicy, **props: Any) -> s3.Bucket:
    return s3.Bucket(
        scope,
        id_,
        block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
        encryption=s3.BucketEncryption.S3_MANAGED,
        enforce_ssl=True,
        object_ownership=s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
        removal_policy=removal_policy,
        # A bucket with objects cannot be deleted; only throwaway stacks empty it on delete.
        auto_delete_objects=removal_policy == RemovalPolicy.DESTROY,
        **props,
    )


class Storage(Construct):
    def __init__(
        self,
        scope: Construct,
        id_: str,
        *,
        cors_origins: Sequence[str],
        versioned: bool,
        removal_policy: RemovalPolicy,
    ) -> None:
        super().__init__(scope, id_)
        self.access_logs = _private_bucket(
            self,
            "AccessLogs",
            removal_policy=removal_policy,
            lifecycle_rules=[s3.LifecycleRule(id="expire-access-logs", expiration=Duration.days(90))],
        )
        self.bucket = _private_bucket(
            self,
            "Media",
            removal_policy=removal_policy,
            versioned=versioned,
            server_access_logs_bucket=self.access_logs,
            server_access_logs_prefix="media/",
            cors=[
                # Browsers PUT (presigned URL), POST (presigned form) and drive S3-native multipart
                # straight against S3; the local bucket gets the same rule (functions/cors.py).
                s3.CorsRule(
                    allowed_methods=[s3.HttpMethods(method) for method in cors.BUCKET_ALLOWED_METHODS],
                    allowed_origins=list(cors_origins),
                    allowed_headers=list(cors.BUCKET_ALLOWED_HEADERS),
                    exposed_headers=list(cors.BUCKET_EXPOSED_HEADERS),
                    max_age=cors.BUCKET_MAX_AGE_S,
                )
            ],
            lifecycle_rules=[
                # Bucket-wide: a resumable upload under uploads/ that is never completed or aborted
                # (the client went away; its intent expired) and a processing step's multipart
                # output under tracks/ that crashed half-way. The API's multipart window ends
                # before this (functions.domain.intake.uploads), so no live upload loses its parts.
                s3.LifecycleRule(
                    id="abort-incomplete-multipart",
                    abort_incomplete_multipart_upload_after=Duration.days(ABORT_INCOMPLETE_MULTIPART_DAYS),
                ),
                # Finalize copies every file it keeps out of uploads/ (functions.data.keys.kept_upload):
                # what is left there belongs to no track, and no intent lives this long.
                s3.LifecycleRule(
                    id="expire-abandoned-uploads",
                    prefix=UPLOADS_PREFIX,
                    expiration=Duration.days(ABANDONED_UPLOAD_DAYS),
                ),
                *(
                    [
                        s3.LifecycleRule(id="expire-noncurrent", noncurrent_version_expiration=Duration.days(30)),
                        # An expiration above leaves a delete marker whose versions then expire:
                        # the marker alone would stay forever and slow every listing of its prefix.
                        s3.LifecycleRule(id="remove-expired-delete-markers", expired_object_delete_marker=True),
                    ]
                    if versioned
                    else []
                ),
            ],
        )

    def grant_uploads(
        self,
        grantee: iam.IGrantable,
        *,
        put: bool = False,
        read: bool = False,
        delete: bool = False,
        multipart: bool = False,
    ) -> None:
        """Object access under ``uploads/`` only. ``read`` covers GetObject and HeadObject (S3
        authorizes HEAD as GetObject) plus ListBucket, without which S3 answers a HEAD of a missing
        key with 403 instead of 404 and "asset missing" could not be told from "access denied".
        ``multipart``: listing and aborting resumable uploads (PutObject already covers creating
        one, signing its part URLs and completing it)."""
        actions = [
            *(["s3:PutObject"] if put else []),
            *(["s3:GetObject"] if read else []),
            *(["s3:DeleteObject"] if delete else []),
            *(["s3:ListMultipartUploadParts", "s3:AbortMultipartUpload"] if multipart else []),
        ]
        self._grant(grantee, actions, UPLOADS_PREFIX)
        if read:
            grantee.grant_principal.add_to_principal_policy(
                iam.PolicyStatement(actions=["s3:ListBucket"], resources=[self.bucket.bucket_arn])
            )

    def grant_tracks_read_write(self, grantee: iam.IGrantable) -> None:
        self._grant(grantee, ["s3:GetObject", "s3:PutObject", "s3:DeleteObject"], TRACKS_PREFIX)

    def grant_tracks_read_delete(self, grantee: iam.IGrantable) -> None:
        """GetObject and DeleteObject under ``tracks/`` only: the API presigns GETs of renditions
        and artwork there (a presigned URL carries the signer's permissions) and deleting a track
        deletes what processing stored for it. Listing the prefix needs the ListBucket that
        ``grant_uploads(read=True)`` gives."""
        self._grant(grantee, ["s3:GetObject", "s3:DeleteObject"], TRACKS_PREFIX)

    def grant_keep_uploads(self, grantee: iam.IGrantable) -> list[str]:
        """PutObject and DeleteObject under ``tracks/*/uploaded/`` and ``albums/*/uploaded/`` only:
        finalize copies the file it verified there (``functions.data.keys.kept_upload``), out of
        reach of the signed upload URL, and deletes that copy when the upload is rejected or turns
        out to be a duplicate. The copy's source side is ``grant_uploads(read=True)``'s GetObject.
        Returns the prefixes granted, for their cdk-nag acknowledgements."""
        prefixes = [kept_prefix(owner) for owner in (TRACKS_PREFIX, ALBUMS_PREFIX)]
        for prefix in prefixes:
            self._grant(grantee, ["s3:PutObject", "s3:DeleteObject"], prefix)
        return prefixes

    def _grant(self, grantee: iam.IGrantable, actions: list[str], prefix: str) -> None:
        grantee.grant_principal.add_to_principal_policy(
            iam.PolicyStatement(actions=actions, resources=[self.bucket.arn_for_objects(f"{prefix}*")])
        )

    def objects_finding(self, prefix: str) -> str:
        """The cdk-nag IAM5 finding id for a grant on ``<prefix>*`` of the media bucket."""
        return f"AwsSolutions-IAM5[Resource::{nag.arn_of(self.bucket)}/{prefix}*]"

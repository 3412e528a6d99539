"""The media bucket is private, TLS-only and browser-uploadable; uploads reach finalize via SQS."""

from __future__ import annotations

from fnmatch import fnmatch

import pytest
from aws_cdk.assertions import Match
from pydantic import ValidationError

from functions import cors
from functions.data.storage import ABANDONED_UPLOAD_DAYS, ABORT_INCOMPLETE_MULTIPART_DAYS
from functions.settings import Settings
from stacks.config import StackConfig
from stacks.constructs.ingest import BATCH_SIZE, FINALIZE_TIMEOUT, MAX_RECEIVE_COUNT
from tests.infrastructure.synth import VARIANT_CONTEXT, Synth, logical_id_by_path


def _media(synth: Synth) -> str:
    return logical_id_by_path(synth, "/Storage/Media/Resource")


def test_media_bucket_blocks_public_access_and_encrypts(synth: Synth) -> None:
    bucket = synth.properties(_media(synth))
    assert bucket["PublicAccessBlockConfiguration"] == {
        "BlockPublicAcls": True,
        "BlockPublicPolicy": True,
        "IgnorePublicAcls": True,
        "RestrictPublicBuckets": True,
    }
    (rule,) = bucket["BucketEncryption"]["ServerSideEncryptionConfiguration"]
    assert rule["ServerSideEncryptionByDefault"]["SSEAlgorithm"] == "AES256"
    assert bucket["OwnershipControls"]["Rules"] == [{"ObjectOwnership": "BucketOwnerEnforced"}]
    assert bucket["LoggingConfiguration"]["DestinationBucketName"] == {
        "Ref": logical_id_by_path(synth, "/Storage/AccessLogs/Resource")
    }


def test_media_bucket_policy_denies_requests_without_tls(synth: Synth) -> None:
    synth.assertions.has_resource_properties(
        "AWS::S3::BucketPolicy",
        {
            "Bucket": {"Ref": _media(synth)},
            "PolicyDocument": {
                "Statement": Match.array_with(
                    [
                        Match.object_like(
                            {
                                "Effect": "Deny",
                                "Action": "s3:*",
                                "Condition": {"Bool": {"aws:SecureTransport": "false"}},
                                "Principal": {"AWS": "*"},
                            }
                        )
                    ]
                )
            },
        },
    )


def test_browsers_may_put_post_and_get_from_the_configured_origins(synth: Synth, variant: Synth) -> None:
    # ["*"] is cdk.json's default for corsOrigins; the variant sets one origin.
    for deployed, origins in ((synth, ["*"]), (variant, VARIANT_CONTEXT["corsOrigins"])):
        (rule,) = deployed.properties(_media(deployed))["CorsConfiguration"]["CorsRules"]
        # The local bucket gets cors.bucket_rule (local/provision.py): the same rule, S3's API names.
        local = cors.bucket_rule(origins)
        assert {"PUT", "POST", "GET", "DELETE"} <= set(rule["AllowedMethods"])
        assert rule == {
            "AllowedMethods": local["AllowedMethods"],
            "AllowedOrigins": origins,
            "AllowedHeaders": local["AllowedHeaders"],
            "ExposedHeaders": local["ExposeHeaders"],
            "MaxAge": local["MaxAgeSeconds"],
        }


def test_incomplete_multipart_uploads_are_aborted_after_a_day(synth: Synth) -> None:
    rules = synth.properties(_media(synth))["LifecycleConfiguration"]["Rules"]
    # No prefix filter: it covers resumable uploads under uploads/ and processing's outputs alike.
    assert {"AbortIncompleteMultipartUpload": {"DaysAfterInitiation": 1}, "Id": "abort-incomplete-multipart",
            "Status": "Enabled"} in rules  # fmt: skip
    assert ABORT_INCOMPLETE_MULTIPART_DAYS == 1


def test_files_left_under_uploads_expire_only_after_every_intent_has(synth: Synth) -> None:
    """Finalize copies what it keeps out of uploads/, so the rule only ever deletes files no track
    owns; an intent that could still be finalized never outlives it (settings refuse a longer TTL)."""
    rules = synth.properties(_media(synth))["LifecycleConfiguration"]["Rules"]
    assert {"ExpirationInDays": ABANDONED_UPLOAD_DAYS, "Id": "expire-abandoned-uploads", "Prefix": "uploads/",
            "Status": "Enabled"} in rules  # fmt: skip
    longest = ABANDONED_UPLOAD_DAYS * 24 * 3600
    assert Settings(intent_ttl_s=longest).intent_ttl_s == longest
    with pytest.raises(ValidationError):
        Settings(intent_ttl_s=longest + 1)


def test_buckets_are_retained_unless_ephemeral_which_empties_them_on_delete(synth: Synth, variant: Synth) -> None:
    # variant: the prod stage, retained; synth: the dev stage, ephemeral.
    assert {r["DeletionPolicy"] for r in variant.resources("AWS::S3::Bucket").values()} == {"Retain"}
    assert not variant.resources("Custom::S3AutoDeleteObjects")
    assert {r["DeletionPolicy"] for r in synth.resources("AWS::S3::Bucket").values()} == {"Delete"}
    assert len(synth.resources("Custom::S3AutoDeleteObjects")) == 2


def test_the_media_bucket_is_versioned_on_every_stage_and_old_versions_expire(synth: Synth, variant: Synth) -> None:
    for deployed in (synth, variant):
        media = deployed.properties(_media(deployed))
        assert media["VersioningConfiguration"] == {"Status": "Enabled"}
        rules = {rule["Id"]: rule for rule in media["LifecycleConfiguration"]["Rules"]}
        assert rules["expire-noncurrent"]["NoncurrentVersionExpiration"] == {"NoncurrentDays": 30}
        assert rules["remove-expired-delete-markers"]["ExpiredObjectDeleteMarker"] is True


def test_object_created_under_uploads_is_sent_to_the_put_events_queue(synth: Synth) -> None:
    queue = logical_id_by_path(synth, "/Ingest/PutEvents/Resource")
    (notification,) = synth.resources("Custom::S3BucketNotifications").values()
    assert notification["Properties"]["BucketName"] == {"Ref": _media(synth)}
    config = notification["Properties"]["NotificationConfiguration"]
    assert set(config) == {"QueueConfigurations"}
    assert config["QueueConfigurations"] == [
        {
            "Events": ["s3:ObjectCreated:*"],
            "Filter": {"Key": {"FilterRules": [{"Name": "prefix", "Value": "uploads/"}]}},
            "QueueArn": {"Fn::GetAtt": [queue, "Arn"]},
        }
    ]
    # A completed multipart upload finalizes through the same queue as a single PUT.
    (events,) = [c["Events"] for c in config["QueueConfigurations"]]
    assert any(fnmatch("s3:ObjectCreated:CompleteMultipartUpload", event) for event in events)


def test_put_events_queue_is_encrypted_tls_only_and_redrives_to_a_dlq(synth: Synth) -> None:
    queue_id = logical_id_by_path(synth, "/Ingest/PutEvents/Resource")
    dlq_id = logical_id_by_path(synth, "/Ingest/DeadLetters/Resource")
    queue = synth.properties(queue_id)
    assert queue["SqsManagedSseEnabled"] is True
    assert queue["RedrivePolicy"] == {"deadLetterTargetArn": {"Fn::GetAtt": [dlq_id, "Arn"]},
                                      "maxReceiveCount": MAX_RECEIVE_COUNT}  # fmt: skip
    assert queue["VisibilityTimeout"] >= 6 * FINALIZE_TIMEOUT.to_seconds()
    assert synth.properties(dlq_id)["SqsManagedSseEnabled"] is True
    for queue_ref in (queue_id, dlq_id):
        synth.assertions.has_resource_properties(
            "AWS::SQS::QueuePolicy",
            {
                "Queues": [{"Ref": queue_ref}],
                "PolicyDocument": {
                    "Statement": Match.array_with(
                        [Match.object_like({"Effect": "Deny", "Condition": {"Bool": {"aws:SecureTransport": "false"}}})]
                    )
                },
            },
        )


def test_finalize_consumes_the_queue_in_batches_reporting_item_failures(synth: Synth) -> None:
    synth.assertions.has_resource_properties(
        "AWS::Lambda::EventSourceMapping",
        {
            "EventSourceArn": {"Fn::GetAtt": [logical_id_by_path(synth, "/Ingest/PutEvents/Resource"), "Arn"]},
            "FunctionName": {"Ref": logical_id_by_path(synth, "/Ingest/Finalize/Resource")},
            "BatchSize": BATCH_SIZE,
            "FunctionResponseTypes": ["ReportBatchItemFailures"],
        },
    )


def test_finalize_concurrency_is_capped_at_the_event_source_not_reserved(synth: Synth, variant: Synth) -> None:
    """Past the cap, S3 events wait in the queue; the API keeps the rest of the account's concurrency."""
    for deployed, cap in (
        (synth, StackConfig.finalize_max_concurrency),
        (variant, VARIANT_CONTEXT["finalizeMaxConcurrency"]),
    ):
        deployed.assertions.has_resource_properties(
            "AWS::Lambda::EventSourceMapping",
            {
                "EventSourceArn": {"Fn::GetAtt": [logical_id_by_path(deployed, "/Ingest/PutEvents/Resource"), "Arn"]},
                "ScalingConfig": {"MaximumConcurrency": cap},
            },
        )
    assert StackConfig.finalize_max_concurrency == 5

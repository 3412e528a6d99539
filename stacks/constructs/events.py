"""Domain events: the Tracks and Albums tables' DynamoDB streams -> the publisher function ->
the EventBridge bus (``track.*``, ``album.*``; see ``functions.events``).

Events come from the streams rather than from each service, so every write path is covered and an
event exists exactly when its change was committed. The event source mappings keep a shard in
order (parallelization 1), filter to the items that can be events (track and album items, not lanes,
tag entries or slug claims), resume at the first failed record (partial batch responses), and after
``RETRY_ATTEMPTS`` send the failed range's description to a dead-letter queue with an alarm.
The stack has no rule on the bus: consumers add their own. Every event is archived
(``StackConfig.event_archive_days``), so a consumer added later, or one that was broken, can be
replayed what it missed (``aws events start-replay``).
"""

from __future__ import annotations

from collections.abc import Sequence

from aws_cdk import Duration, Stack
from aws_cdk import aws_events as events
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_lambda_event_sources as sources
from constructs import Construct

from functions.data.models import AlbumModel, TrackModel
from stacks import nag
from stacks.constructs.dead_letters import dead_letters
from stacks.constructs.function_factory import FunctionFactory
from stacks.constructs.tables import Tables, stream_view_types

PUBLISH_TIMEOUT = Duration.seconds(30)
BATCH_SIZE = 100
# Retries of a failing batch before its description goes to the dead-letter queue
# (``local.streams.MAX_ATTEMPTS`` mirrors this for the local stack).
RETRY_ATTEMPTS = 8
# The sort key of the items on each streamed table that can be domain events.
EVENT_ITEMS = {"Tracks": TrackModel.TRACK_SK, "Albums": AlbumModel.ALBUM_SK}


class DomainEvents(Construct):
    def __init__(
        self,
        scope: Construct,
        id_: str,
        *,
        tables: Tables,
        functions: FunctionFactory,
        layers: Sequence[lambda_.ILayerVersion],
        archive_days: int,
    ) -> None:
        super().__init__(scope, id_)
        streamed = stream_view_types()
        if set(streamed) != set(EVENT_ITEMS):
            raise ValueError(f"streamed tables {sorted(streamed)} and event items {sorted(EVENT_ITEMS)} disagree")

        self.bus = events.EventBus(self, "Bus", description="tracklane domain events: track.* and album.*")
        self.archive = self.bus.archive(
            "Archive",
            description="Every tracklane domain event, for replay",
            # An archive needs a pattern; every event on this bus comes from this account.
            event_pattern=events.EventPattern(account=[Stack.of(self).account]),
            retention=Duration.days(archive_days) if archive_days else None,
        )
        self.dead_letters = dead_letters(
            self,
            runbook=(
                f"Stream records failed to publish domain events {RETRY_ATTEMPTS + 1} times; the ranges sit "
                "in the DLQ: inspect, then re-read them from the table streams (kept 24 hours)."
            ),
        )
        nag.acknowledge(
            self.dead_letters.queue,
            "AwsSolutions-SQS3",
            "This queue is the dead-letter destination itself: it receives the stream ranges the domain "
            "events function gave up on, for inspection and replay.",
        )

        self.function = functions.make(
            self,
            "Publisher",
            handler="functions.handlers.domain_events.handler",
            description="Publishes domain events from the Tracks and Albums table streams",
            layers=layers,
            timeout=PUBLISH_TIMEOUT,
            environment={"TRACKLANE_EVENT_BUS_NAME": self.bus.event_bus_name},
        )
        # The images come with each record: the function reads no table, only puts on this bus.
        self.bus.grant_put_events_to(self.function)
        # A mapping of our own instead of DynamoEventSource, whose grant adds dynamodb:ListStreams on
        # "*": here every stream action names the two streams (as AWS's own example policy does).
        stream_arns = [tables.by_name[name].table_stream_arn for name in EVENT_ITEMS]
        self.function.add_to_role_policy(
            iam.PolicyStatement(
                actions=[
                    "dynamodb:DescribeStream",
                    "dynamodb:GetRecords",
                    "dynamodb:GetShardIterator",
                    "dynamodb:ListStreams",
                ],
                resources=[arn for arn in stream_arns if arn is not None],
            )
        )
        for name, item_kind in EVENT_ITEMS.items():
            self.function.add_event_source_mapping(
                f"{name}Stream",
                event_source_arn=tables.by_name[name].table_stream_arn,
                starting_position=lambda_.StartingPosition.TRIM_HORIZON,
                batch_size=BATCH_SIZE,
                parallelization_factor=1,
                report_batch_item_failures=True,
                bisect_batch_on_error=True,
                retry_attempts=RETRY_ATTEMPTS,
                on_failure=sources.SqsDlq(self.dead_letters.queue),
                filters=[
                    lambda_.FilterCriteria.filter(
                        {"dynamodb": {"Keys": {"sk": {"S": lambda_.FilterRule.is_equal(item_kind)}}}}
                    )
                ],
            )

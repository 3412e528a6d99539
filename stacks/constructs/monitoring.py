"""Alarms that reach someone, and one dashboard.

Every alarm notifies one SNS topic, on ALARM and on OK, so whoever is subscribed (``alarmEmail``,
or anything an operator subscribes later: chat, paging) hears both that something broke and that
it recovered. The topic always exists; with no subscriber the alarms still show in the console.

The alarms and the dashboard come from cdk-monitoring-constructs (one ``monitor_*`` call per
resource, each naming the alarms it wants); thresholds come from ``StackConfig.alarms``
(``AlarmThresholds``), in one place, and every alarm's description says what it means.

The topic is encrypted with a key of its own: CloudWatch cannot publish to a topic encrypted with
the AWS managed ``alias/aws/sns`` key (its policy cannot grant CloudWatch the key), so such alarms
would fail silently.
"""

from __future__ import annotations

import cdk_monitoring_constructs as monitoring
from aws_cdk import ArnFormat, Duration, RemovalPolicy, Stack
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sns_subscriptions as subscriptions
from constructs import Construct

from stacks.config import AlarmThresholds
from stacks.constructs.api import Api
from stacks.constructs.dead_letters import DeadLetters
from stacks.constructs.events import DomainEvents
from stacks.constructs.ingest import Ingest
from stacks.constructs.processing import Processing
from stacks.constructs.sweeper import Sweeper
from stacks.constructs.tables import Tables

PERIOD = Duration.minutes(5)
# Consecutive periods the API latency must stay high: one slow period is a burst of cold starts.
LATENCY_PERIODS = 3
# Consecutive periods the 5xx rate must stay high: at low traffic a single 5xx is a high rate.
# (cdk-monitoring-constructs' minimum-sample option would add a composite alarm over two action-less
# ones, one of them in ALARM whenever traffic is low.)
ERROR_RATE_PERIODS = 2
# The threshold name cdk-monitoring-constructs puts in each alarm's name.
SEVERITY = "Critical"


class Monitoring(Construct):
    def __init__(
        self,
        scope: Construct,
        id_: str,
        *,
        thresholds: AlarmThresholds,
        alarm_email: str | None,
        removal_policy: RemovalPolicy,
    ) -> None:
        super().__init__(scope, id_)
        stack = Stack.of(self)
        self.key = kms.Key(
            self,
            "AlarmTopicKey",
            description=f"{stack.stack_name}: encrypts the alarm topic; CloudWatch may use it to publish",
            enable_key_rotation=True,
            removal_policy=removal_policy,
            pending_window=Duration.days(7),
        )
        self.key.add_to_resource_policy(
            iam.PolicyStatement(
                principals=[iam.ServicePrincipal("cloudwatch.amazonaws.com")],
                actions=["kms:Decrypt", "kms:GenerateDataKey*"],
                resources=["*"],  # in a key policy, "*" is this key
                conditions={"StringEquals": {"aws:SourceAccount": stack.account}},
            )
        )
        self.topic = sns.Topic(
            self, "AlarmTopic", display_name=f"{stack.stack_name} alarms", master_key=self.key, enforce_ssl=True
        )
        # enforce_ssl gives the topic a policy of its own, which replaces SNS's default one: let
        # this account's alarms, and nothing else, publish.
        self.topic.add_to_resource_policy(
            iam.PolicyStatement(
                principals=[iam.ServicePrincipal("cloudwatch.amazonaws.com")],
                actions=["sns:Publish"],
                resources=[self.topic.topic_arn],
                conditions={
                    "ArnLike": {
                        "aws:SourceArn": stack.format_arn(
                            service="cloudwatch",
                            resource="alarm",
                            resource_name="*",
                            arn_format=ArnFormat.COLON_RESOURCE_NAME,
                        )
                    },
                    "StringEquals": {"aws:SourceAccount": stack.account},
                },
            )
        )
        if alarm_email:
            self.topic.add_subscription(subscriptions.EmailSubscription(alarm_email))

        self.thresholds = thresholds
        self.facade = monitoring.MonitoringFacade(
            self,
            "Facade",
            alarm_factory_defaults=monitoring.AlarmFactoryDefaults(
                # Alarm names are per account and region: the stack name keeps stages apart.
                alarm_name_prefix=stack.stack_name,
                actions_enabled=True,
                action=monitoring.SnsAlarmActionStrategy(on_alarm_topic=self.topic, on_ok_topic=self.topic),
                datapoints_to_alarm=1,
                evaluation_periods=1,
            ),
            metric_factory_defaults=monitoring.MetricFactoryDefaults(period=PERIOD),
            dashboard_factory=monitoring.DefaultDashboardFactory(
                self,
                "Dashboards",
                dashboard_name_prefix=stack.stack_name,
                create_dashboard=True,
                create_summary_dashboard=False,
                create_alarm_dashboard=False,
            ),
        )

    def watch_api(self, api: Api) -> None:
        self.facade.monitor_api_gateway_v2_http_api(
            api=api.http_api,
            api_stage=api.stage.stage_name,
            alarm_friendly_name="Api",
            human_readable_name="HTTP API",
            add5xx_rate_alarm={
                SEVERITY: monitoring.ErrorRateThreshold(
                    max_error_rate=self.thresholds.api_5xx_percent / 100,
                    datapoints_to_alarm=ERROR_RATE_PERIODS,
                    evaluation_periods=ERROR_RATE_PERIODS,
                    alarm_description_override=(
                        f"More than {self.thresholds.api_5xx_percent}% of API requests answered 5xx for "
                        f"{ERROR_RATE_PERIODS * PERIOD.to_minutes()} minutes: read the API function's logs "
                        "and the access logs."
                    ),
                )
            },
            add_latency_p99_alarm={
                SEVERITY: monitoring.LatencyThreshold(
                    max_latency=Duration.millis(self.thresholds.api_latency_p99_ms),
                    datapoints_to_alarm=LATENCY_PERIODS,
                    evaluation_periods=LATENCY_PERIODS,
                    alarm_description_override=(
                        f"API p99 latency above {self.thresholds.api_latency_p99_ms} ms for "
                        f"{LATENCY_PERIODS * PERIOD.to_minutes()} minutes: throttling, cold starts or a slow table."
                    ),
                )
            },
        )
        self._watch_function(api.function, "ApiFunction", errors=self.thresholds.function_errors)

    def watch_workflow(self, processing: Processing) -> None:
        self.facade.monitor_step_function(
            state_machine=processing.state_machine,
            alarm_friendly_name="Workflow",
            human_readable_name="Processing workflow",
            add_failed_execution_count_alarm={
                SEVERITY: monitoring.ErrorCountThreshold(
                    max_error_count=self.thresholds.workflow_failed,
                    alarm_description_override=(
                        f"More than {self.thresholds.workflow_failed} processing executions failed in "
                        f"{PERIOD.to_minutes()} minutes: tracks are ending as failed. A few are unusable "
                        "uploads; many mean a broken lane: read the failed executions' histories."
                    ),
                )
            },
            add_timed_out_execution_count_alarm={
                SEVERITY: monitoring.ErrorCountThreshold(
                    max_error_count=0,
                    alarm_description_override=(
                        "A processing execution hit the workflow's 2-hour timeout: its track stays processing "
                        "until the sweeper settles it. Look for a stuck step."
                    ),
                )
            },
        )
        for size, function in processing.functions.items():
            self._watch_function(function, f"Step{size[0]}s{size[1]}mb", errors=self.thresholds.step_errors)

    def watch_ingest(self, ingest: Ingest) -> None:
        self.facade.monitor_sqs_queue(
            queue=ingest.queue,
            alarm_friendly_name="S3Events",
            human_readable_name="S3 upload events",
            add_queue_max_message_age_alarm={
                SEVERITY: monitoring.MaxMessageAgeThreshold(
                    max_age_in_seconds=self.thresholds.s3_event_age_s,
                    alarm_description_override=(
                        f"An S3 upload event has waited over {self.thresholds.s3_event_age_s} s for finalize: "
                        "finalize is failing, throttled, or capped too low (finalizeMaxConcurrency)."
                    ),
                )
            },
        )
        self._watch_dead_letters(ingest.dead_letters, "S3EventsDLQ")
        self._watch_function(ingest.function, "Finalize", errors=self.thresholds.function_errors)

    def watch_domain_events(self, domain_events: DomainEvents) -> None:
        self._watch_function(
            domain_events.function,
            "Publisher",
            errors=self.thresholds.function_errors,
            iterator_age=Duration.seconds(self.thresholds.stream_iterator_age_s),
        )
        self._watch_dead_letters(domain_events.dead_letters, "DomainEventsDLQ")

    def watch_sweeper(self, sweeper: Sweeper) -> None:
        self._watch_function(sweeper.function, "Sweeper", errors=self.thresholds.function_errors)
        self._watch_dead_letters(sweeper.dead_letters, "SweeperScheduleDLQ")

    def watch_tables(self, tables: Tables) -> None:
        for name, table in tables.by_name.items():
            description = (
                f"DynamoDB throttled {{}} requests on the {name} table: an on-demand table throttles when "
                "traffic more than doubles its previous peak at once, or on a hot partition key."
            )
            self.facade.monitor_dynamo_table(
                table=table,
                alarm_friendly_name=f"{name}Table",
                human_readable_name=f"{name} table",
                add_read_throttled_events_count_alarm={
                    SEVERITY: monitoring.ThrottledEventsThreshold(
                        max_throttled_events_threshold=0, alarm_description_override=description.format("read")
                    )
                },
                add_write_throttled_events_count_alarm={
                    SEVERITY: monitoring.ThrottledEventsThreshold(
                        max_throttled_events_threshold=0, alarm_description_override=description.format("write")
                    )
                },
            )

    def _watch_function(
        self, function: lambda_.IFunction, name: str, *, errors: int, iterator_age: Duration | None = None
    ) -> None:
        iterator_alarm = (
            {
                SEVERITY: monitoring.MaxAgeThreshold(
                    max_age_in_millis=int(iterator_age.to_seconds() * 1000),
                    alarm_description_override=(
                        f"Domain events lag the table streams by over {iterator_age.to_seconds()} s: the "
                        "publisher is failing or slow. Streams keep changes 24 hours; past that they are lost "
                        "to the event bus."
                    ),
                )
            }
            if iterator_age
            else None
        )
        self.facade.monitor_lambda_function(
            lambda_function=function,
            alarm_friendly_name=name,
            human_readable_name=name,
            add_fault_count_alarm={
                SEVERITY: monitoring.ErrorCountThreshold(
                    max_error_count=errors,
                    alarm_description_override=(
                        f"The {name} function raised more than {errors} errors in {PERIOD.to_minutes()} minutes: "
                        "read its log group."
                    ),
                )
            },
            add_throttles_count_alarm={
                SEVERITY: monitoring.ErrorCountThreshold(
                    max_error_count=0,
                    alarm_description_override=(
                        f"Lambda throttled the {name} function: the account's concurrency is used up "
                        "(quota, or another function's burst). Check ConcurrentExecutions; ask for a higher quota."
                    ),
                )
            },
            add_max_iterator_age_alarm=iterator_alarm,
        )

    def _watch_dead_letters(self, dead_letters: DeadLetters, name: str) -> None:
        self.facade.monitor_sqs_queue(
            queue=dead_letters.queue,
            alarm_friendly_name=name,
            human_readable_name=name,
            add_queue_max_size_alarm={
                SEVERITY: monitoring.MaxMessageCountThreshold(
                    max_message_count=0, alarm_description_override=dead_letters.runbook
                )
            },
        )

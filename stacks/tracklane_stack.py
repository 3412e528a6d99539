"""The tracklane stack: composes one construct per capability and passes each what it needs."""

from __future__ import annotations

from typing import Any

from aws_cdk import CfnOutput, RemovalPolicy, Stack, Tags
from aws_cdk import aws_logs as logs
from constructs import Construct

from stacks.config import ConfigError, StackConfig
from stacks.constructs.api import Api
from stacks.constructs.auth import Auth
from stacks.constructs.events import DomainEvents
from stacks.constructs.function_factory import FunctionFactory
from stacks.constructs.ingest import Ingest
from stacks.constructs.layers import Layers
from stacks.constructs.monitoring import Monitoring
from stacks.constructs.processing import Processing
from stacks.constructs.storage import Storage
from stacks.constructs.sweeper import Sweeper
from stacks.constructs.tables import Tables

_RETENTION = {
    1: logs.RetentionDays.ONE_DAY,
    3: logs.RetentionDays.THREE_DAYS,
    7: logs.RetentionDays.ONE_WEEK,
    14: logs.RetentionDays.TWO_WEEKS,
    30: logs.RetentionDays.ONE_MONTH,
    60: logs.RetentionDays.TWO_MONTHS,
    90: logs.RetentionDays.THREE_MONTHS,
    180: logs.RetentionDays.SIX_MONTHS,
    365: logs.RetentionDays.ONE_YEAR,
}


class TracklaneStack(Stack):
    def __init__(self, scope: Construct, id_: str, *, config: StackConfig, **kwargs: Any) -> None:
        super().__init__(scope, id_, description="tracklane: serverless music uploads and processing", **kwargs)
        removal = RemovalPolicy.DESTROY if config.ephemeral else RemovalPolicy.RETAIN
        if config.log_retention_days not in _RETENTION:
            raise ConfigError(f"context logRetentionDays must be one of {sorted(_RETENTION)}")
        log_retention = _RETENTION[config.log_retention_days]
        for key, value in {"project": "tracklane", **config.tags}.items():
            Tags.of(self).add(key, value)

        self.storage = Storage(
            self,
            "Storage",
            cors_origins=config.cors_origins,
            versioned=config.bucket_versioning,
            removal_policy=removal,
        )
        self.tables = Tables(
            self,
            "Tables",
            removal_policy=removal,
            deletion_protection=config.deletion_protection,
            index_migration=config.index_migration,
        )
        self.layers = Layers(self, "Layers")
        functions = FunctionFactory(
            environment={
                "TRACKLANE_MEDIA_BUCKET": self.storage.bucket.bucket_name,
                "TRACKLANE_DEFAULT_UPLOAD_ENTITLEMENT": config.default_upload_entitlement,
                **self.tables.environment(),
            },
            log_retention=log_retention,
            removal_policy=removal,
        )
        self.processing = Processing(
            self,
            "Processing",
            storage=self.storage,
            tables=self.tables,
            functions=functions,
            layers=[self.layers.deps, self.layers.ffmpeg, self.layers.media],
            external_processors=config.external_processors,
            log_retention=log_retention,
            removal_policy=removal,
        )
        workflow = self.processing.state_machine
        self.ingest = Ingest(
            self,
            "Ingest",
            storage=self.storage,
            tables=self.tables,
            workflow=workflow,
            functions=functions,
            layers=[self.layers.deps],
            max_concurrency=config.finalize_max_concurrency,
        )
        self.sweeper = Sweeper(
            self,
            "Sweeper",
            tables=self.tables,
            workflow=workflow,
            functions=functions,
            layers=[self.layers.deps],
            reserved_concurrency=config.sweeper_reserved_concurrency,
        )
        self.domain_events = DomainEvents(
            self,
            "DomainEvents",
            tables=self.tables,
            functions=functions,
            layers=[self.layers.deps],
            archive_days=config.event_archive_days,
        )
        self.auth = Auth(
            self,
            "Auth",
            issuer=config.jwt_issuer,
            audience=config.jwt_audience,
            removal_policy=removal,
            deletion_protection=config.deletion_protection,
            callback_urls=config.auth_callback_urls,
            logout_urls=config.auth_logout_urls,
            domain_prefix=config.auth_domain_prefix,
        )
        self.api = Api(
            self,
            "Api",
            storage=self.storage,
            tables=self.tables,
            workflow=workflow,
            functions=functions,
            layers=[self.layers.deps],
            jwt_issuer=self.auth.issuer,
            jwt_audience=self.auth.audience,
            cors_origins=config.cors_origins,
            throttle_rate=config.api_throttle_rate,
            throttle_burst=config.api_throttle_burst,
            read_throttle=(config.read_throttle_rate, config.read_throttle_burst),
            progress_throttle=(config.progress_throttle_rate, config.progress_throttle_burst),
            log_retention=log_retention,
            removal_policy=removal,
        )

        self.monitoring = Monitoring(
            self, "Monitoring", thresholds=config.alarms, alarm_email=config.alarm_email, removal_policy=removal
        )
        self.monitoring.watch_api(self.api)
        self.monitoring.watch_workflow(self.processing)
        self.monitoring.watch_ingest(self.ingest)
        self.monitoring.watch_domain_events(self.domain_events)
        self.monitoring.watch_sweeper(self.sweeper)
        self.monitoring.watch_tables(self.tables)

        CfnOutput(self, "ApiUrl", value=self.api.url)
        CfnOutput(self, "AlarmTopicArn", value=self.monitoring.topic.topic_arn)
        CfnOutput(self, "MediaBucketName", value=self.storage.bucket.bucket_name)
        CfnOutput(self, "StateMachineArn", value=workflow.state_machine_arn)
        CfnOutput(self, "JwtIssuer", value=self.auth.issuer)
        CfnOutput(self, "EventBusName", value=self.domain_events.bus.event_bus_name)
        if self.auth.user_pool and self.auth.client:
            CfnOutput(self, "UserPoolId", value=self.auth.user_pool.user_pool_id)
            CfnOutput(self, "UserPoolClientId", value=self.auth.client.user_pool_client_id)
        if self.auth.domain:
            CfnOutput(self, "SignInDomain", value=self.auth.domain.base_url())

"""The HTTP API and the API function behind it.

API Gateway forwards every request (``ANY /{proxy+}``, no authorizer) and throttles; the function
verifies bearer tokens itself against the configured issuer's keys (``functions.api.auth``) and
applies each route's declared access (``functions.api.access``: public, optional or owner). HTTP
API JWT authorizers cannot be optional: with one, an anonymous listener could not play a public
track, and a public route shadowing an owner one (``GET /v1/artists/{handle}`` before
``/v1/artists/me``) would reach the function without the caller's identity.
"""

from __future__ import annotations

import json
from collections.abc import Sequence

import jsii
from aws_cdk import Duration, RemovalPolicy, Stack
from aws_cdk import aws_apigateway as apigw
from aws_cdk import aws_apigatewayv2 as apigwv2
from aws_cdk import aws_apigatewayv2_integrations as integrations
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from aws_cdk import aws_stepfunctions as sfn
from constructs import Construct

from functions import cors
from functions.api.polled_routes import POLLED_ROUTES
from functions.data.keys import ALBUMS_PREFIX, TRACKS_PREFIX, UPLOADS_PREFIX
from functions.settings import API_SDK_MAX_ATTEMPTS
from stacks import nag
from stacks.constructs.function_factory import FunctionFactory
from stacks.constructs.storage import Storage
from stacks.constructs.tables import Tables

PROXY_PATH = "/{proxy+}"

ACCESS_LOG_FORMAT = json.dumps(
    {
        "requestId": "$context.requestId",
        "requestTime": "$context.requestTime",
        "ip": "$context.identity.sourceIp",
        "userAgent": "$context.identity.userAgent",
        "method": "$context.httpMethod",
        "routeKey": "$context.routeKey",
        "path": "$context.path",
        "status": "$context.status",
        "protocol": "$context.protocol",
        "responseLength": "$context.responseLength",
        "latencyMs": "$context.responseLatency",
        "integrationLatencyMs": "$context.integrationLatency",
        "integrationError": "$context.integrationErrorMessage",
    }
)


class Api(Construct):
    def __init__(
        self,
        scope: Construct,
        id_: str,
        *,
        storage: Storage,
        tables: Tables,
        workflow: sfn.IStateMachine,
        functions: FunctionFactory,
        layers: Sequence[lambda_.ILayerVersion],
        jwt_issuer: str,
        jwt_audience: Sequence[str],
        cors_origins: Sequence[str],
        throttle_rate: int,
        throttle_burst: int,
        read_throttle: tuple[int, int],
        progress_throttle: tuple[int, int],
        log_retention: logs.RetentionDays,
        removal_policy: RemovalPolicy,
    ) -> None:
        super().__init__(scope, id_)
        self.function = functions.make(
            self,
            "Function",
            handler="functions.handlers.api.handler",
            description="tracklane HTTP API (FastAPI via Mangum)",
            layers=layers,
            memory_size=512,
            # API Gateway gives up on an integration after 30 s; stop just before it does.
            timeout=Duration.seconds(29),
            environment={
                "TRACKLANE_STATE_MACHINE_ARN": workflow.state_machine_arn,
                # The function verifies tokens itself (functions.api.auth): whose, and for which app clients.
                "TRACKLANE_JWT_ISSUER": jwt_issuer,
                "TRACKLANE_JWT_AUDIENCES": Stack.of(self).to_json_string(list(jwt_audience)),
                # Few SDK attempts: an answer within the 30 s, a throttle answered 503 service_busy.
                "TRACKLANE_SDK_MAX_ATTEMPTS": str(API_SDK_MAX_ATTEMPTS),
            },
        )
        tables.grant_read_write(self.function, "Artists", "Tracks", "Uploads", "Albums")
        # Idempotency-Key records (functions.api.idempotency): conditional put, get, update, delete.
        tables.grant_read_write(self.function, "Idempotency")
        tables.grant_read(self.function, "Entitlements")
        # Presigned PUT URLs are signed with this role's credentials, so the role itself needs
        # PutObject -- on uploads/ only. Resumable uploads: the API lists their parts and aborts
        # cancelled ones (PutObject covers creating, part URLs and completing).
        storage.grant_uploads(self.function, put=True, read=True, delete=True, multipart=True)
        workflow.grant_start_execution(self.function)
        # Finalize (the explicit route here, the put event in ingest) copies the verified file out
        # of uploads/ to where its track or album keeps it, and drops that copy on rejection.
        for prefix in storage.grant_keep_uploads(self.function):
            nag.acknowledge(
                self.function.role or self.function,
                storage.objects_finding(prefix),
                "Copies a finalized upload to, and deletes a rejected one from, the kept-uploads folder of "
                "its track or album, whose keys are per upload; PutObject and DeleteObject only.",
            )
        nag.acknowledge(
            self.function.role or self.function,
            storage.objects_finding(UPLOADS_PREFIX),
            "Signs presigned PUTs for, inspects and deletes per-upload originals whose keys are created "
            "per request; limited to uploads/.",
        )
        # The public album cover redirects to a presigned GET of a variant under albums/ (signed with
        # this role); deleting an album deletes them.
        self.function.add_to_role_policy(
            iam.PolicyStatement(
                actions=["s3:GetObject", "s3:DeleteObject"],
                resources=[storage.bucket.arn_for_objects(f"{ALBUMS_PREFIX}*")],
            )
        )
        nag.acknowledge(
            self.function.role or self.function,
            storage.objects_finding(ALBUMS_PREFIX),
            "Signs presigned GETs for and deletes album cover variants, whose keys are per album; limited to albums/.",
        )
        # /stream and /artwork redirect to presigned GETs of what processing stored (signed with this
        # role, so it needs GetObject there); DELETE /v1/tracks/{trackId} and removeImage delete it.
        storage.grant_tracks_read_delete(self.function)
        nag.acknowledge(
            self.function.role or self.function,
            storage.objects_finding(TRACKS_PREFIX),
            "Signs presigned GETs for and deletes a track's renditions, waveform and artwork, whose keys "
            "are per track; GetObject and DeleteObject only, limited to tracks/.",
        )

        self.http_api = apigwv2.HttpApi(
            self,
            "Http",
            description="tracklane API",
            create_default_stage=False,
            # API Gateway answers browser preflights from this (see the OPTIONS route below).
            cors_preflight=apigwv2.CorsPreflightOptions(
                allow_origins=list(cors_origins),
                allow_methods=[apigwv2.CorsHttpMethod(method) for method in cors.API_ALLOWED_METHODS],
                allow_headers=list(cors.API_ALLOWED_HEADERS),
                expose_headers=list(cors.API_EXPOSED_HEADERS),
                max_age=Duration.seconds(cors.API_MAX_AGE_S),
            ),
        )
        access_logs = logs.LogGroup(self, "AccessLogs", retention=log_retention, removal_policy=removal_policy)
        self.stage = apigwv2.HttpStage(
            self,
            "DefaultStage",
            http_api=self.http_api,
            auto_deploy=True,
            access_log_settings=_AccessLogSettings(
                apigwv2.LogGroupLogDestination(access_logs), apigw.AccessLogFormat.custom(ACCESS_LOG_FORMAT)
            ),
            throttle=apigwv2.ThrottleSettings(rate_limit=throttle_rate, burst_limit=throttle_burst),
        )
        integration = integrations.HttpLambdaIntegration("Function", self.function)
        # Three budgets, one route each (API Gateway throttles each route on its own, and a route for
        # the request's method beats ANY): the catch-all ``ANY /{proxy+}`` takes writes at the
        # stage's default throttle, ``GET /{proxy+}`` every read at a looser one, and each route
        # clients poll for progress has its own, so neither reads nor polling spend the budget of
        # creating and finalizing uploads. No authorizer on any; OPTIONS preflights are answered by
        # API Gateway from the CORS configuration above before any route is matched.
        routes = self.http_api.add_routes(path=PROXY_PATH, methods=[apigwv2.HttpMethod.ANY], integration=integration)
        routes += self.http_api.add_routes(path=PROXY_PATH, methods=[apigwv2.HttpMethod.GET], integration=integration)
        for method, path in POLLED_ROUTES:
            routes += self.http_api.add_routes(path=path, methods=[apigwv2.HttpMethod(method)], integration=integration)
        stage = self.stage.node.default_child
        assert isinstance(stage, apigwv2.CfnStage)
        stage.add_property_override("RouteSettings", route_throttles(read_throttle, progress_throttle))
        for route in routes:
            nag.acknowledge(
                route,
                "AwsSolutions-APIG4",
                "Authentication is optional per route (anyone may play a public track, its owner sees "
                "more), which HTTP API JWT authorizers cannot express: the function verifies bearer "
                "tokens against the issuer's JWKS itself (functions/api/auth.py) and owner routes answer "
                "401 without a valid one.",
            )
        self.url = self.stage.url


def route_throttles(read: tuple[int, int], progress: tuple[int, int]) -> dict[str, dict[str, int]]:
    """The stage's ``RouteSettings``: (rate, burst) of the read route and of each polled route."""
    keyed = {f"GET {PROXY_PATH}": read, **{f"{method} {path}": progress for method, path in POLLED_ROUTES}}
    return {key: {"ThrottlingRateLimit": rate, "ThrottlingBurstLimit": burst} for key, (rate, burst) in keyed.items()}


@jsii.implements(apigwv2.IAccessLogSettings)
class _AccessLogSettings:
    """IAccessLogSettings is a jsii interface: Python provides it as a class, not a dict."""

    def __init__(self, destination: apigwv2.IAccessLogDestination, log_format: apigw.AccessLogFormat) -> None:
        self._destination = destination
        self._format = log_format

    @property
    def destination(self) -> apigwv2.IAccessLogDestination:
        return self._destination

    @property
    def format(self) -> apigw.AccessLogFormat:
        return self._format

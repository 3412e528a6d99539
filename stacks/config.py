"""Deployment options, read once from CDK context (``cdk.json`` defaults, ``-c key=value`` overrides).

Constructs receive a ``StackConfig``; none of them reads context itself.

A deployment is one stage (``-c stage=dev|prod``), one stack per stage (``<stackName>-<stage>``).
The stage sets the defaults that differ between a throwaway stack and one that keeps real data
(``STAGE_DEFAULTS``); a context key given explicitly wins over its stage default, except where
that would make a production stage unsafe (an ephemeral prod, CORS ``*`` on prod), which is refused.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, cast
from urllib.parse import urlsplit

from constructs import Construct

ROOT = Path(__file__).resolve().parent.parent
CDK_JSON = ROOT / "cdk.json"
# Lambda's own pattern for a function ARN, optionally qualified by a version or alias.
LAMBDA_FUNCTION_ARN = re.compile(
    r"arn:aws[a-zA-Z-]*:lambda:[a-z]{2}(-gov)?-[a-z]+-\d:\d{12}:function:[a-zA-Z0-9_-]{1,64}(:(\$LATEST|[a-zA-Z0-9_-]+))?"
)


DEFAULT_STACK_NAME = "Tracklane"
Stage = Literal["dev", "prod"]
ACCOUNT = re.compile(r"\d{12}")
REGION = re.compile(r"[a-z]{2}(-gov)?-[a-z]+-\d")


class ConfigError(ValueError):
    pass


@dataclass(frozen=True)
class StageDefaults:
    # Throwaway stacks: tables, buckets (emptied first), the user pool and log groups are deleted
    # with the stack, and nothing is deletion-protected.
    ephemeral: bool
    # An explicit account and region (context or CDK_DEPLOY_ACCOUNT / CDK_DEPLOY_REGION): a
    # production stack must never land wherever the current credentials happen to point.
    explicit_environment: bool
    # CORS "*" lets any web page drive the API and PUT to the media bucket from a browser.
    wildcard_cors_allowed: bool


STAGE_DEFAULTS: dict[str, StageDefaults] = {
    "dev": StageDefaults(ephemeral=True, explicit_environment=False, wildcard_cors_allowed=True),
    "prod": StageDefaults(ephemeral=False, explicit_environment=True, wildcard_cors_allowed=False),
}


@dataclass(frozen=True)
class AlarmThresholds:
    """What an operator may tune (context key in the comment). Every alarm looks at 5-minute
    periods and fires when the value is above its threshold; DLQ depth, Lambda and DynamoDB throttles
    and workflow timeouts alarm on anything above 0 and are not tunable: each is always a fault."""

    # alarmFunctionErrors: Lambda Errors of the API, finalize, sweeper and domain-events functions.
    # None of them raises by design (the API answers errors, the consumers report item failures).
    function_errors: int = 0
    # alarmStepErrors: Lambda Errors of one processing function. A lane that cannot process an
    # upload (not audio, truncated) raises StepFailed, which Lambda counts as an error too.
    step_errors: int = 5
    # alarmWorkflowFailed: failed executions. A track whose required lane fails its upload ends
    # its execution as failed, so a few are the users' files, not the system.
    workflow_failed: int = 3
    # alarmApi5xxPercent: share of API requests answered 5xx.
    api_5xx_percent: int = 5
    # alarmApiLatencyP99Ms: p99 of API Gateway's Latency, for 3 periods in a row (cold starts pass).
    api_latency_p99_ms: int = 3000
    # alarmS3EventAgeSeconds: the oldest S3 upload event waiting for finalize (the cap of
    # finalizeMaxConcurrency makes them wait in bursts; clients wait for finalize).
    s3_event_age_s: int = 900
    # alarmStreamIteratorAgeSeconds: how far domain-event publishing lags behind the table
    # streams (kept 24 h: past that, changes are lost to the bus).
    stream_iterator_age_s: int = 600


@dataclass(frozen=True)
class StackConfig:
    stage: Stage = "dev"
    stack_base_name: str = DEFAULT_STACK_NAME
    # None: environment-agnostic (dev without credentials, tests): the CLI's account and region.
    account: str | None = None
    region: str | None = None
    # Entitlement policy for callers with no explicit grant or revocation.
    default_upload_entitlement: Literal["allow", "deny"] = "allow"
    cors_origins: tuple[str, ...] = ("*",)
    # Throwaway stacks (dev, CI, previews): tables and buckets are deleted with the stack and
    # nothing is deletion-protected. The stage's default unless set.
    ephemeral: bool = True
    # An external OIDC issuer (e.g. Clerk) instead of the Cognito user pool.
    jwt_issuer: str | None = None
    jwt_audience: tuple[str, ...] = ()
    log_retention_days: int = 30
    # The stage's default: the catch-all route ``ANY /{proxy+}``, i.e. writes (POST, PUT, PATCH,
    # DELETE) and anything else without a route of its own.
    api_throttle_rate: int = 50
    api_throttle_burst: int = 100
    # ``GET /{proxy+}``: every read but the polled routes, public ones included; looser than writes
    # (a read costs a GetItem or a Query, a write a transaction, a workflow, a token).
    read_throttle_rate: int = 100
    read_throttle_burst: int = 200
    # The routes clients poll for progress (functions.api.polled_routes), each throttled apart.
    progress_throttle_rate: int = 200
    progress_throttle_burst: int = 400
    # Overwritten and deleted media stay recoverable for 30 days (noncurrent versions expire).
    bucket_versioning: bool = True
    # The first of two deploys that move a deployed stack's tables onto a release's replaced
    # indexes: both the old and new indexes exist and the code queries the old ones while the new
    # ones backfill. Deploy again without it once they are ACTIVE (docs/migrations.md).
    index_migration: bool = False
    tags: dict[str, str] = field(default_factory=dict)
    # External processors for the stems and lyrics lanes: an http(s) URL or a Lambda function ARN;
    # None skips the lane.
    stems_processor: str | None = None
    lyrics_processor: str | None = None
    # Reserved concurrency subtracts from the account's unreserved pool, and Lambda refuses any
    # reservation that would leave fewer than 100 unreserved: on a new account (quota 10 or 50) a
    # reservation of 1 fails the deployment. Off unless asked for.
    sweeper_reserved_concurrency: int | None = None
    # At most this many finalize invocations at once from the S3-event queue (the SQS event
    # source's maximum concurrency, 2..1000): a burst of uploads queues up instead of taking the
    # concurrency the API needs. Messages wait in the queue, they are not throttled or retried.
    finalize_max_concurrency: int = 5
    # How long the domain-event bus's archive keeps events for replay; 0 keeps them indefinitely.
    event_archive_days: int = 90
    # The Cognito app client's OAuth: the authorization-code flow to these redirect URLs through
    # the hosted sign-in at <auth_domain_prefix>.auth.<region>.amazoncognito.com. No callback URLs:
    # no OAuth at all (sign-in through the user pool API, SRP).
    auth_callback_urls: tuple[str, ...] = ()
    auth_logout_urls: tuple[str, ...] = ()
    auth_domain_prefix: str | None = None
    # Subscribed to the alarm topic (it must confirm the subscription); the topic exists regardless.
    alarm_email: str | None = None
    alarms: AlarmThresholds = field(default_factory=AlarmThresholds)

    @property
    def stack_name(self) -> str:
        return f"{self.stack_base_name}-{self.stage}"

    @property
    def deletion_protection(self) -> bool:
        """Tables and the user pool refuse deletion (even by CloudFormation) unless ephemeral."""
        return not self.ephemeral

    @property
    def external_processors(self) -> dict[str, str]:
        """``{lane: URL or Lambda ARN}`` for the lanes that have a processor."""
        configured = {"stems": self.stems_processor, "lyrics": self.lyrics_processor}
        return {lane: processor for lane, processor in configured.items() if processor}

    @classmethod
    def from_context(cls, scope: Construct) -> StackConfig:
        def get(key: str) -> Any:
            return scope.node.try_get_context(key)

        stage = get("stage") or "dev"
        if stage not in STAGE_DEFAULTS:
            raise ConfigError(f"context stage must be one of {sorted(STAGE_DEFAULTS)}, not {stage!r}")
        defaults = STAGE_DEFAULTS[stage]
        stack_base_name = str(get("stackName") or DEFAULT_STACK_NAME)
        if not re.fullmatch(r"[A-Za-z][A-Za-z0-9-]{0,100}", stack_base_name):
            raise ConfigError(f"context stackName must be letters, digits and hyphens, not {stack_base_name!r}")
        account, region = _environment(get("account"), get("region"), explicit_only=defaults.explicit_environment)
        if defaults.explicit_environment and not (account and region):
            raise ConfigError(
                f"stage {stage} deploys to an explicit account and region: pass -c account=<12 digits> "
                "-c region=<region> (or set CDK_DEPLOY_ACCOUNT and CDK_DEPLOY_REGION)"
            )
        ephemeral = _flag(get("ephemeral"), "ephemeral") if get("ephemeral") is not None else defaults.ephemeral
        if ephemeral and not defaults.ephemeral:
            raise ConfigError(f"stage {stage} keeps its data: context ephemeral=true is refused there")
        entitlement = get("defaultUploadEntitlement") or "allow"
        if entitlement not in ("allow", "deny"):
            raise ConfigError(f"context defaultUploadEntitlement must be 'allow' or 'deny', not {entitlement!r}")
        issuer = get("jwtIssuer") or None
        audience = _string_list(get("jwtAudience"), "jwtAudience")
        if issuer and not issuer.startswith("https://"):
            raise ConfigError(f"context jwtIssuer must be an https:// URL, not {issuer!r}")
        if issuer and not audience:
            raise ConfigError("context jwtAudience (one or more client ids) is required with jwtIssuer")
        origins = _string_list(get("corsOrigins"), "corsOrigins") or ("*",)
        if "*" in origins and not defaults.wildcard_cors_allowed:
            raise ConfigError(
                f"stage {stage} refuses corsOrigins '*': name the web app's origins, "
                "e.g. -c corsOrigins=https://app.example.com"
            )
        versioning = get("bucketVersioning")
        callbacks, logouts, domain_prefix = _hosted_sign_in(
            get("authCallbackUrls"), get("authLogoutUrls"), get("authDomainPrefix"), issuer=issuer
        )
        return cls(
            stage=cast(Stage, stage),
            stack_base_name=stack_base_name,
            account=account,
            region=region,
            default_upload_entitlement=cast(Literal["allow", "deny"], entitlement),
            cors_origins=origins,
            ephemeral=ephemeral,
            jwt_issuer=issuer,
            jwt_audience=audience,
            log_retention_days=int(get("logRetentionDays") or cls.log_retention_days),
            api_throttle_rate=int(get("apiThrottleRate") or cls.api_throttle_rate),
            api_throttle_burst=int(get("apiThrottleBurst") or cls.api_throttle_burst),
            read_throttle_rate=int(get("readThrottleRate") or cls.read_throttle_rate),
            read_throttle_burst=int(get("readThrottleBurst") or cls.read_throttle_burst),
            progress_throttle_rate=int(get("progressThrottleRate") or cls.progress_throttle_rate),
            progress_throttle_burst=int(get("progressThrottleBurst") or cls.progress_throttle_burst),
            bucket_versioning=True if versioning is None else _flag(versioning, "bucketVersioning"),
            index_migration=_flag(get("indexMigration"), "indexMigration"),
            tags={"stage": stage, **dict(get("tags") or {})},
            stems_processor=_processor(get("stemsProcessor"), "stemsProcessor"),
            lyrics_processor=_processor(get("lyricsProcessor"), "lyricsProcessor"),
            sweeper_reserved_concurrency=_int(get("sweeperReservedConcurrency"), "sweeperReservedConcurrency", 0, 1000)
            or None,
            finalize_max_concurrency=_int(
                get("finalizeMaxConcurrency"), "finalizeMaxConcurrency", 2, 1000, default=cls.finalize_max_concurrency
            ),
            event_archive_days=_int(
                get("eventArchiveDays"), "eventArchiveDays", 0, 3650, default=cls.event_archive_days
            ),
            auth_callback_urls=callbacks,
            auth_logout_urls=logouts,
            auth_domain_prefix=domain_prefix,
            alarm_email=_email(get("alarmEmail")),
            alarms=_alarm_thresholds(get),
        )


def _environment(account: Any, region: Any, *, explicit_only: bool) -> tuple[str | None, str | None]:
    """Context first, then CDK_DEPLOY_ACCOUNT / CDK_DEPLOY_REGION (set on purpose by whoever
    deploys), then -- only where an implicit target is acceptable -- the CLI's CDK_DEFAULT_*
    (the current credentials' account and configured region)."""
    fallbacks = ("CDK_DEPLOY",) if explicit_only else ("CDK_DEPLOY", "CDK_DEFAULT")
    account = str(
        account or next((os.environ[f"{p}_ACCOUNT"] for p in fallbacks if os.environ.get(f"{p}_ACCOUNT")), "")
    )
    region = str(region or next((os.environ[f"{p}_REGION"] for p in fallbacks if os.environ.get(f"{p}_REGION")), ""))
    if account and not ACCOUNT.fullmatch(account):
        raise ConfigError(f"context account must be a 12-digit AWS account id, not {account!r}")
    if region and not REGION.fullmatch(region):
        raise ConfigError(f"context region must be an AWS region such as eu-west-1, not {region!r}")
    return account or None, region or None


def is_lambda_arn(processor: str) -> bool:
    return LAMBDA_FUNCTION_ARN.fullmatch(processor) is not None


def _processor(value: Any, key: str) -> str | None:
    """An external processor: an http(s) URL or a Lambda function ARN; empty or absent -> None."""
    if value is None:
        return None
    text = str(value).strip()
    if not text:
        return None
    url = urlsplit(text)
    if (url.scheme in ("http", "https") and url.hostname) or is_lambda_arn(text):
        return text
    raise ConfigError(
        f"context {key} must be an http(s) URL or a Lambda function ARN "
        f"(arn:aws:lambda:<region>:<account>:function:<name>[:<qualifier>]), not {value!r}"
    )


def _alarm_thresholds(get: Any) -> AlarmThresholds:
    default = AlarmThresholds()
    return AlarmThresholds(
        function_errors=_int(
            get("alarmFunctionErrors"), "alarmFunctionErrors", 0, 10**6, default=default.function_errors
        ),
        step_errors=_int(get("alarmStepErrors"), "alarmStepErrors", 0, 10**6, default=default.step_errors),
        workflow_failed=_int(
            get("alarmWorkflowFailed"), "alarmWorkflowFailed", 0, 10**6, default=default.workflow_failed
        ),
        api_5xx_percent=_int(get("alarmApi5xxPercent"), "alarmApi5xxPercent", 1, 100, default=default.api_5xx_percent),
        api_latency_p99_ms=_int(
            get("alarmApiLatencyP99Ms"), "alarmApiLatencyP99Ms", 100, 30_000, default=default.api_latency_p99_ms
        ),
        s3_event_age_s=_int(
            get("alarmS3EventAgeSeconds"), "alarmS3EventAgeSeconds", 60, 345_600, default=default.s3_event_age_s
        ),
        stream_iterator_age_s=_int(
            get("alarmStreamIteratorAgeSeconds"),
            "alarmStreamIteratorAgeSeconds",
            60,
            86_400,
            default=default.stream_iterator_age_s,
        ),
    )


def _email(value: Any) -> str | None:
    text = str(value or "").strip()
    if text and not re.fullmatch(r"[^@\s]+@[^@\s]+\.[^@\s]+", text):
        raise ConfigError(f"context alarmEmail must be an e-mail address, not {value!r}")
    return text or None


def _hosted_sign_in(
    callback_urls: Any, logout_urls: Any, domain_prefix: Any, *, issuer: str | None
) -> tuple[tuple[str, ...], tuple[str, ...], str | None]:
    """(callback URLs, logout URLs, domain prefix) of the Cognito app client's code flow."""
    callbacks = _redirect_urls(callback_urls, "authCallbackUrls")
    logouts = _redirect_urls(logout_urls, "authLogoutUrls")
    prefix = str(domain_prefix or "").strip() or None
    if (callbacks or logouts or prefix) and issuer:
        raise ConfigError(
            "context authCallbackUrls, authLogoutUrls and authDomainPrefix configure the Cognito user pool, "
            "which jwtIssuer replaces"
        )
    if logouts and not callbacks:
        raise ConfigError("context authLogoutUrls needs authCallbackUrls (OAuth is off without them)")
    if callbacks and not prefix:
        raise ConfigError("context authDomainPrefix (the hosted sign-in's domain) is required with authCallbackUrls")
    if prefix and not re.fullmatch(r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?", prefix):
        raise ConfigError(f"context authDomainPrefix must be lowercase letters, digits and hyphens, not {prefix!r}")
    return callbacks, logouts, prefix


def _redirect_urls(value: Any, key: str) -> tuple[str, ...]:
    """OAuth redirect URLs: https, or http only to localhost (Cognito's own rule)."""
    urls = _string_list(value, key)
    for url in urls:
        parts = urlsplit(url)
        if not parts.hostname or parts.fragment:
            raise ConfigError(f"context {key} must hold absolute URLs without a fragment, not {url!r}")
        if parts.scheme != "https" and not (parts.scheme == "http" and parts.hostname == "localhost"):
            raise ConfigError(f"context {key} must be https URLs (http only for localhost), not {url!r}")
    return urls


def _int(value: Any, key: str, minimum: int, maximum: int, *, default: int = 0) -> int:
    """An integer from cdk.json or ``-c`` (a string there); absent or empty -> ``default``."""
    if value is None or value == "":
        return default
    try:
        number = int(value)
    except (TypeError, ValueError):
        raise ConfigError(f"context {key} must be a whole number, not {value!r}") from None
    if isinstance(value, bool) or not minimum <= number <= maximum:
        raise ConfigError(f"context {key} must be between {minimum} and {maximum}, not {value!r}")
    return number


def _flag(value: Any, key: str) -> bool:
    """Context from ``-c key=true`` arrives as a string, from cdk.json as a bool."""
    if value is None or isinstance(value, bool):
        return bool(value)
    if str(value).lower() in ("true", "1", "yes"):
        return True
    if str(value).lower() in ("false", "0", "no", ""):
        return False
    raise ConfigError(f"context {key} must be true or false, not {value!r}")


def _string_list(value: Any, key: str) -> tuple[str, ...]:
    """A list from cdk.json, or a comma-separated / JSON-array string from ``-c``."""
    if value is None or value == "":
        return ()
    if isinstance(value, str):
        text = value.strip()
        if text.startswith("["):
            value = json.loads(text)
        else:
            return tuple(part.strip() for part in text.split(",") if part.strip())
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise ConfigError(f"context {key} must be a list of strings, not {value!r}")
    return tuple(value)


def cdk_json_context(path: Path = CDK_JSON) -> dict[str, Any]:
    """The context defaults the CDK CLI would pass, for building the app outside the CLI (tests)."""
    return dict(json.loads(path.read_text()).get("context", {}))

"""Context values arrive typed from cdk.json and as strings from ``cdk -c key=value``."""

from __future__ import annotations

from typing import Any

import pytest
from aws_cdk import App

from stacks.config import AlarmThresholds, ConfigError, StackConfig, cdk_json_context

PROD = {"stage": "prod", "account": "123456789012", "region": "eu-west-1", "corsOrigins": "https://app.example"}


@pytest.fixture(autouse=True)
def _no_cdk_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """The CLI sets CDK_DEFAULT_*; a deployer may set CDK_DEPLOY_*. Each test sets what it needs."""
    for name in ("CDK_DEFAULT_ACCOUNT", "CDK_DEFAULT_REGION", "CDK_DEPLOY_ACCOUNT", "CDK_DEPLOY_REGION"):
        monkeypatch.delenv(name, raising=False)


def _config(**context: Any) -> StackConfig:
    return StackConfig.from_context(App(context=context))


def test_cdk_json_defaults() -> None:
    config = StackConfig.from_context(App(context=cdk_json_context()))
    assert (config.stage, config.stack_name) == ("dev", "Tracklane-dev")
    assert (config.account, config.region) == (None, None)
    assert config.default_upload_entitlement == "allow"
    assert config.cors_origins == ("*",)
    assert config.ephemeral is True
    assert config.deletion_protection is False
    assert config.bucket_versioning is True
    assert config.jwt_issuer is None
    assert (config.stems_processor, config.lyrics_processor) == (None, None)
    assert config.external_processors == {}


def test_prod_is_retained_deletion_protected_and_versioned_in_its_named_account() -> None:
    config = _config(**PROD)
    assert (config.stage, config.stack_name) == ("prod", "Tracklane-prod")
    assert (config.account, config.region) == ("123456789012", "eu-west-1")
    assert config.ephemeral is False
    assert config.deletion_protection is True
    assert config.bucket_versioning is True
    assert config.tags["stage"] == "prod"


def test_prod_takes_its_account_and_region_from_cdk_deploy_variables_but_not_from_the_cli_defaults(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    context = {key: value for key, value in PROD.items() if key not in ("account", "region")}
    monkeypatch.setenv("CDK_DEFAULT_ACCOUNT", "111111111111")
    monkeypatch.setenv("CDK_DEFAULT_REGION", "us-east-1")
    with pytest.raises(ConfigError, match="explicit account and region"):
        _config(**context)
    monkeypatch.setenv("CDK_DEPLOY_ACCOUNT", "222222222222")
    monkeypatch.setenv("CDK_DEPLOY_REGION", "eu-central-1")
    config = _config(**context)
    assert (config.account, config.region) == ("222222222222", "eu-central-1")


def test_dev_deploys_where_the_cli_points_unless_told(monkeypatch: pytest.MonkeyPatch) -> None:
    assert (_config().account, _config().region) == (None, None)
    monkeypatch.setenv("CDK_DEFAULT_ACCOUNT", "111111111111")
    monkeypatch.setenv("CDK_DEFAULT_REGION", "us-east-1")
    assert (_config().account, _config().region) == ("111111111111", "us-east-1")
    assert _config(account="333333333333", region="ap-south-1").account == "333333333333"


def test_explicit_keys_win_over_the_stage_defaults_where_safe() -> None:
    dev = _config(ephemeral="false", bucketVersioning="false", stackName="Music")
    assert (dev.ephemeral, dev.deletion_protection, dev.bucket_versioning) == (False, True, False)
    assert dev.stack_name == "Music-dev"
    assert _config(**PROD, bucketVersioning=False).bucket_versioning is False


@pytest.mark.parametrize(
    ("context", "message"),
    [
        ({**PROD, "ephemeral": "true"}, "ephemeral=true is refused"),
        ({**PROD, "corsOrigins": "*"}, "refuses corsOrigins"),
        ({**PROD, "corsOrigins": ["https://app.example", "*"]}, "refuses corsOrigins"),
        ({key: value for key, value in PROD.items() if key != "corsOrigins"}, "refuses corsOrigins"),
        ({key: value for key, value in PROD.items() if key != "region"}, "explicit account and region"),
        ({"stage": "staging"}, "stage must be one of"),
        ({"account": "12345"}, "12-digit"),
        ({"region": "Europe"}, "region"),
        ({"stackName": "my stack"}, "stackName"),
        ({"finalizeMaxConcurrency": "1"}, "between 2 and 1000"),
        ({"finalizeMaxConcurrency": "many"}, "whole number"),
        ({"sweeperReservedConcurrency": "-1"}, "between 0 and 1000"),
        ({"eventArchiveDays": True}, "eventArchiveDays"),
        ({"alarmEmail": "oncall"}, "e-mail"),
        ({"alarmApi5xxPercent": "0"}, "between 1 and 100"),
        ({"alarmApiLatencyP99Ms": "50000"}, "alarmApiLatencyP99Ms"),
        ({"alarmStepErrors": "-1"}, "alarmStepErrors"),
        ({"authCallbackUrls": "https://app.example/cb"}, "authDomainPrefix"),
        ({"authCallbackUrls": "http://app.example/cb", "authDomainPrefix": "music"}, "https"),
        ({"authCallbackUrls": "https://app.example/#cb", "authDomainPrefix": "music"}, "fragment"),
        ({"authLogoutUrls": "https://app.example/"}, "needs authCallbackUrls"),
        ({"authCallbackUrls": "https://app.example/cb", "authDomainPrefix": "Music_App"}, "lowercase"),
        (
            {"authCallbackUrls": "https://a.example/cb", "jwtIssuer": "https://i.example", "jwtAudience": "web"},
            "jwtIssuer replaces",
        ),
    ],
)
def test_unsafe_or_malformed_stage_settings_are_refused(context: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        _config(**context)


def test_command_line_strings_are_parsed() -> None:
    config = _config(
        ephemeral="true",
        corsOrigins="https://a.example, https://b.example",
        jwtIssuer="https://issuer.example",
        jwtAudience='["web", "ios"]',
        defaultUploadEntitlement="deny",
    )
    assert config.ephemeral is True
    assert config.cors_origins == ("https://a.example", "https://b.example")
    assert config.jwt_audience == ("web", "ios")
    assert config.default_upload_entitlement == "deny"


def test_external_processors_are_urls_or_lambda_function_arns() -> None:
    stems = "arn:aws:lambda:eu-west-1:210987654321:function:stem-splitter"
    lyrics = "http://lyrics.internal.example:8080/transcribe"
    config = _config(stemsProcessor=f" {stems} ", lyricsProcessor=lyrics)
    assert config.external_processors == {"stems": stems, "lyrics": lyrics}
    qualified = _config(stemsProcessor=f"{stems}:live", lyricsProcessor="")
    assert qualified.external_processors == {"stems": f"{stems}:live"}


@pytest.mark.parametrize(
    "context",
    [
        {"stemsProcessor": "stem-splitter"},  # a bare function name: its region and account are unknown
        {"stemsProcessor": "arn:aws:lambda:eu-west-1:2109876:function:stem-splitter"},
        {"lyricsProcessor": "arn:aws:states:eu-west-1:210987654321:stateMachine:lyrics"},
        {"lyricsProcessor": "ftp://lyrics.example/transcribe"},
        {"lyricsProcessor": "https://"},
        {"defaultUploadEntitlement": "maybe"},
        {"jwtIssuer": "https://issuer.example"},  # the JWT authorizer needs the audience to check
        {"jwtIssuer": "http://issuer.example", "jwtAudience": ["web"]},
        {"ephemeral": "sometimes"},
    ],
)
def test_invalid_context_is_refused_before_anything_is_built(context: dict[str, Any]) -> None:
    with pytest.raises(ConfigError):
        _config(**context)


def test_concurrency_and_archive_keys_have_quota_safe_defaults() -> None:
    config = _config()
    assert config.sweeper_reserved_concurrency is None  # no reservation: fits a 10-quota account
    assert config.finalize_max_concurrency == 5
    assert config.event_archive_days == 90
    tuned = _config(sweeperReservedConcurrency="1", finalizeMaxConcurrency="50", eventArchiveDays="0")
    assert (tuned.sweeper_reserved_concurrency, tuned.finalize_max_concurrency, tuned.event_archive_days) == (1, 50, 0)
    assert _config(sweeperReservedConcurrency=0).sweeper_reserved_concurrency is None


def test_hosted_sign_in_takes_callback_and_logout_urls_and_a_domain_prefix() -> None:
    assert _config().auth_callback_urls == ()
    config = _config(
        authCallbackUrls="https://app.example/cb, http://localhost:5173/cb",
        authLogoutUrls=["https://app.example/"],
        authDomainPrefix="tracklane-music",
    )
    assert config.auth_callback_urls == ("https://app.example/cb", "http://localhost:5173/cb")
    assert config.auth_logout_urls == ("https://app.example/",)
    assert config.auth_domain_prefix == "tracklane-music"


def test_alarm_email_and_thresholds_come_from_context_with_documented_defaults() -> None:
    config = _config()
    assert config.alarm_email is None
    assert config.alarms == AlarmThresholds()
    tuned = _config(
        alarmEmail=" oncall@example.com ",
        alarmFunctionErrors="2",
        alarmStepErrors="20",
        alarmWorkflowFailed="10",
        alarmApi5xxPercent="2",
        alarmApiLatencyP99Ms="1500",
        alarmS3EventAgeSeconds="300",
        alarmStreamIteratorAgeSeconds="120",
    )
    assert tuned.alarm_email == "oncall@example.com"
    assert tuned.alarms == AlarmThresholds(
        function_errors=2,
        step_errors=20,
        workflow_failed=10,
        api_5xx_percent=2,
        api_latency_p99_ms=1500,
        s3_event_age_s=300,
        stream_iterator_age_s=120,
    )

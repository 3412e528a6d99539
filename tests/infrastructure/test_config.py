"""Context values arrive typed from cdk.json and as strings from ``cdk -c key=value``."""

from __future__ import annotations

from typing import Any

import pytest
from aws_cdk import App

from stacks.config import ConfigError, StackConfig, cdk_json_context


def _config(**context: Any) -> StackConfig:
    return StackConfig.from_context(App(context=context))


def test_cdk_json_defaults() -> None:
    config = StackConfig.from_context(App(context=cdk_json_context()))
    assert config.default_upload_entitlement == "allow"
    assert config.cors_origins == ("*",)
    assert config.ephemeral is False
    assert config.jwt_issuer is None
    assert (config.stems_processor, config.lyrics_processor) == (None, None)
    assert config.external_processors == {}


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

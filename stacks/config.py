"""Deployment options, read once from CDK context (``cdk.json`` defaults, ``-c key=value`` overrides).

Constructs receive a ``StackConfig``; none of them reads context itself.
"""

from __future__ import annotations

import json
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


class ConfigError(ValueError):
    pass


@dataclass(frozen=True)
class StackConfig:
    # Entitlement policy for callers with no explicit grant or revocation.
    default_upload_entitlement: Literal["allow", "deny"] = "allow"
    cors_origins: tuple[str, ...] = ("*",)
    # Throwaway stacks (CI, previews): tables and bucket are deleted with the stack.
    ephemeral: bool = False
    # An external OIDC issuer (e.g. Clerk) instead of the Cognito user pool.
    jwt_issuer: str | None = None
    jwt_audience: tuple[str, ...] = ()
    log_retention_days: int = 30
    api_throttle_rate: int = 50
    api_throttle_burst: int = 100
    bucket_versioning: bool = False
    tags: dict[str, str] = field(default_factory=dict)
    # External processors for the stems and lyrics lanes: an http(s) URL or a Lambda function ARN;
    # None skips the lane.
    stems_processor: str | None = None
    lyrics_processor: str | None = None

    @property
    def external_processors(self) -> dict[str, str]:
        """``{lane: URL or Lambda ARN}`` for the lanes that have a processor."""
        configured = {"stems": self.stems_processor, "lyrics": self.lyrics_processor}
        return {lane: processor for lane, processor in configured.items() if processor}

    @classmethod
    def from_context(cls, scope: Construct) -> StackConfig:
        def get(key: str) -> Any:
            return scope.node.try_get_context(key)

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
        return cls(
            default_upload_entitlement=cast(Literal["allow", "deny"], entitlement),
            cors_origins=origins,
            ephemeral=_flag(get("ephemeral"), "ephemeral"),
            jwt_issuer=issuer,
            jwt_audience=audience,
            log_retention_days=int(get("logRetentionDays") or cls.log_retention_days),
            api_throttle_rate=int(get("apiThrottleRate") or cls.api_throttle_rate),
            api_throttle_burst=int(get("apiThrottleBurst") or cls.api_throttle_burst),
            bucket_versioning=_flag(get("bucketVersioning"), "bucketVersioning"),
            tags=dict(get("tags") or {}),
            stems_processor=_processor(get("stemsProcessor"), "stemsProcessor"),
            lyrics_processor=_processor(get("lyricsProcessor"), "lyricsProcessor"),
        )


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

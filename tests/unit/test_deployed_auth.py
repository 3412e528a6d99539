"""The deployed API verifies bearer tokens itself, against the configured issuer's published keys
(API Gateway forwards every request without an authorizer, so authentication can be optional). Only
a token that issuer signed, for one of the configured audiences, unexpired, names a caller; a local
dev token, even with the dev secret in the environment, never does."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import jwt
import pytest

from functions import clients
from local.devauth import DevKeys, mint
from tests.unit.issuer import CLIENT_ID, Issuer, configure_handler


@pytest.fixture
def issuer(tmp_path: Path) -> Issuer:
    return Issuer(tmp_path)


@pytest.fixture
def handler(monkeypatch: pytest.MonkeyPatch, issuer: Issuer) -> Any:
    yield from configure_handler(monkeypatch, issuer)


def http_api_event(*, headers: dict[str, str], body: dict | None = None, path: str = "/v1/uploads") -> dict:
    """What API Gateway's HTTP API sends for ``ANY /{proxy+}`` (no authorizer: no claims)."""
    return {
        "version": "2.0",
        "routeKey": "ANY /{proxy+}",
        "rawPath": path,
        "rawQueryString": "",
        "headers": {"content-type": "application/json", "host": "api.example.com", **headers},
        "requestContext": {
            "accountId": "123456789012",
            "apiId": "api",
            "domainName": "api.example.com",
            "http": {"method": "POST", "path": path, "protocol": "HTTP/1.1", "sourceIp": "1.2.3.4", "userAgent": "t"},
            "requestId": "r",
            "routeKey": "ANY /{proxy+}",
            "stage": "$default",
            "time": "23/Nov/2026:10:00:00 +0000",
            "timeEpoch": 0,
        },
        "body": json.dumps(body or {}),
        "isBase64Encoded": False,
    }


class Context:
    function_name = "api"
    memory_limit_in_mb = 512
    invoked_function_arn = "arn:aws:lambda:us-east-1:123456789012:function:api"
    aws_request_id = "r"


def status_of(handler: Any, token: str | None) -> tuple[int, str | None]:
    headers = {"authorization": f"Bearer {token}"} if token else {}
    response = handler(http_api_event(headers=headers, body={"fileName": "a.wav"}), Context())
    body = json.loads(response["body"])
    return response["statusCode"], (body.get("error") or {}).get("code")


def test_a_token_the_issuer_signed_for_this_client_authenticates(handler, issuer):
    # Authenticated, so the request reaches body validation (422) instead of stopping at 401.
    assert status_of(handler, issuer.token()) == (422, "validation_failed")
    # An ID token names the client in aud instead of client_id.
    assert status_of(handler, issuer.token(client_id=None, aud=CLIENT_ID, token_use="id"))[0] == 422


@pytest.mark.parametrize(
    "claims",
    [
        {"exp": int(time.time()) - 3600},  # expired (beyond the leeway)
        {"iss": "https://another-issuer.example.com"},
        {"client_id": "another-app"},  # another app of the same pool
        {"client_id": None, "aud": "another-app"},
        {"sub": None},
        {"exp": None},
    ],
    ids=["expired", "other-issuer", "other-client", "other-audience", "no-subject", "no-expiry"],
)
def test_a_token_that_fails_any_check_is_anonymous(handler, issuer, claims):
    assert status_of(handler, issuer.token(**claims)) == (401, "unauthorized")


def test_a_blank_subject_is_refused(handler, issuer):
    assert status_of(handler, issuer.token(sub="  ")) == (401, "unauthorized")


def test_forged_tokens_are_refused(handler, issuer, tmp_path):
    # Signed by a key the issuer does not publish, under the issuer's key id.
    (tmp_path / "other").mkdir()
    impostor = Issuer(tmp_path / "other", kid=issuer.kid)
    assert status_of(handler, impostor.token()) == (401, "unauthorized")
    # alg "none", and HS256 keyed with the issuer's public key (the classic algorithm confusion).
    claims = jwt.decode(issuer.token(), options={"verify_signature": False})
    unsigned = jwt.encode(claims, key=None, algorithm="none", headers={"kid": issuer.kid})
    assert status_of(handler, unsigned) == (401, "unauthorized")
    header = json.dumps({"alg": "HS256", "typ": "JWT", "kid": issuer.kid}).encode()
    payload = json.dumps(claims).encode()
    import base64
    import hashlib
    import hmac

    def b64(data: bytes) -> str:
        return base64.urlsafe_b64encode(data).rstrip(b"=").decode()

    signing_input = f"{b64(header)}.{b64(payload)}"
    signature = hmac.new(issuer.public_pem(), signing_input.encode(), hashlib.sha256).digest()
    assert status_of(handler, f"{signing_input}.{b64(signature)}") == (401, "unauthorized")


def test_a_local_dev_token_is_refused_by_the_deployed_handler(handler, issuer):
    # Even with the dev key where the local stack keeps it: another issuer, a key nobody published.
    dev_keys = DevKeys(issuer.jwks.with_name("dev-signing-key.pem"))
    assert status_of(handler, mint("mallory", dev_keys)) == (401, "unauthorized")


def test_no_token_is_anonymous_and_owner_routes_say_so(handler):
    assert status_of(handler, None) == (401, "unauthorized")


def test_unreachable_signing_keys_are_a_503_not_a_401(handler, issuer, monkeypatch, tmp_path):
    # The keys cannot be read (as when the issuer's endpoint is down): the token may be fine.
    monkeypatch.setenv("TRACKLANE_JWKS_URL", (tmp_path / "gone.json").as_uri())
    clients.reset()
    code, error = status_of(handler, issuer.token())
    assert (code, error) == (503, "authentication_unavailable")


def test_no_issuer_configured_means_nobody_is_signed_in(handler, issuer, monkeypatch):
    monkeypatch.setenv("TRACKLANE_JWT_ISSUER", "")
    clients.reset()
    assert status_of(handler, issuer.token()) == (401, "unauthorized")


def test_the_deployed_package_never_imports_the_local_stack():
    """Nothing in functions/ imports local/ (where dev tokens are minted): the deployed code has no
    path to accept them."""
    import ast

    import functions

    offenders = {}
    for path in Path(functions.__file__).parent.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] == "local":
                offenders[str(path)] = node.module
            if isinstance(node, ast.Import) and any(alias.name.split(".")[0] == "local" for alias in node.names):
                offenders[str(path)] = "local"
    assert offenders == {}

"""The deployed API trusts only API Gateway's verified JWT claims. A local dev token — even with
the dev secret present in the environment — is never accepted by the Lambda handler."""

from __future__ import annotations

import json

import pytest

from local.devauth import mint

DEV_SECRET = "tracklane-local-dev-secret-not-for-production"


def http_api_event(*, headers: dict[str, str], claims: dict[str, str] | None, body: dict | None = None) -> dict:
    request_context: dict = {
        "accountId": "123456789012",
        "apiId": "api",
        "domainName": "api.example.com",
        "http": {
            "method": "POST",
            "path": "/v1/uploads",
            "protocol": "HTTP/1.1",
            "sourceIp": "1.2.3.4",
            "userAgent": "t",
        },
        "requestId": "r",
        "routeKey": "ANY /{proxy+}",
        "stage": "$default",
        "time": "23/Nov/2026:10:00:00 +0000",
        "timeEpoch": 0,
    }
    if claims is not None:
        request_context["authorizer"] = {"jwt": {"claims": claims, "scopes": []}}
    return {
        "version": "2.0",
        "routeKey": "ANY /{proxy+}",
        "rawPath": "/v1/uploads",
        "rawQueryString": "",
        "headers": {"content-type": "application/json", "host": "api.example.com", **headers},
        "requestContext": request_context,
        "body": json.dumps(body or {}),
        "isBase64Encoded": False,
    }


class Context:
    function_name = "api"
    memory_limit_in_mb = 512
    invoked_function_arn = "arn:aws:lambda:us-east-1:123456789012:function:api"
    aws_request_id = "r"


@pytest.fixture
def lambda_handler(monkeypatch):
    # Everything a misconfigured deployment might set to "turn on" dev auth.
    monkeypatch.setenv("TRACKLANE_DEV_SECRET", DEV_SECRET)
    monkeypatch.setenv("TRACKLANE_AUTH_MODE", "dev")
    from functions.handlers import api

    return api.handler


def test_a_dev_token_is_refused_by_the_deployed_handler(lambda_handler):
    token = mint("mallory", DEV_SECRET)
    response = lambda_handler(http_api_event(headers={"authorization": f"Bearer {token}"}, claims=None), Context())
    assert response["statusCode"] == 401
    assert json.loads(response["body"])["error"]["code"] == "unauthorized"


def test_gateway_verified_claims_authenticate(lambda_handler):
    # Authenticated, so the request reaches body validation (422) instead of stopping at 401.
    response = lambda_handler(
        http_api_event(headers={}, claims={"sub": "alice"}, body={"fileName": "a.wav"}), Context()
    )
    assert response["statusCode"] == 422


def test_the_deployed_package_cannot_verify_tokens_itself():
    """Nothing in functions/ imports a JWT library or the local package: token verification in
    AWS is API Gateway's alone."""
    import ast
    from pathlib import Path

    import functions

    imported: dict[str, set[str]] = {}
    for path in Path(functions.__file__).parent.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                names = {alias.name for alias in node.names}
            elif isinstance(node, ast.ImportFrom):
                names = {node.module or ""}
            else:
                continue
            imported.setdefault(str(path), set()).update(names)
    offenders = {
        path: names
        for path, names in imported.items()
        if any(n.split(".")[0] in {"jwt", "jose", "local"} for n in names)
    }
    assert offenders == {}

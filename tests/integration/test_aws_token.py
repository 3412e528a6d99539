"""``tracklane token --aws`` against a Cognito user pool (moto's): it creates the test user, signs
in with a fresh password, and the access token it prints passes the API's own verification
(``functions.api.auth.JwtVerifier``) against the pool's published keys."""

from __future__ import annotations

import boto3
import jwt
import pytest

from functions.api.auth import JwtVerifier
from local import aws_token
from local.cli import main as tracklane


@pytest.fixture
def pool(moto_endpoint, monkeypatch) -> aws_token.UserPool:
    monkeypatch.setenv("AWS_ENDPOINT_URL", moto_endpoint)
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    cognito = boto3.client("cognito-idp", region_name="us-east-1")
    pool_id = cognito.create_user_pool(PoolName="tracklane-test", UsernameAttributes=["email"])["UserPool"]["Id"]
    client_id = cognito.create_user_pool_client(
        UserPoolId=pool_id,
        ClientName="App",
        ExplicitAuthFlows=["ALLOW_ADMIN_USER_PASSWORD_AUTH", "ALLOW_USER_SRP_AUTH"],
    )["UserPoolClient"]["ClientId"]
    return aws_token.UserPool(pool_id, client_id)


def test_a_created_test_user_gets_a_token_the_api_verifies(pool, moto_endpoint, capsys):
    exit_code = tracklane(
        ["token", "--aws", "--create", "--user", "smoke@example.test",
         "--user-pool-id", pool.pool_id, "--client-id", pool.client_id]
    )  # fmt: skip

    token = capsys.readouterr().out.strip()
    assert exit_code == 0
    issuer = jwt.decode(token, options={"verify_signature": False})["iss"]
    assert issuer.endswith(pool.pool_id)
    verifier = JwtVerifier(f"{moto_endpoint}/{pool.pool_id}/.well-known/jwks.json", issuer=issuer,
                           audiences=[pool.client_id])  # fmt: skip
    claims = verifier.claims(token)
    assert claims is not None and claims["sub"]
    # Another run signs the same user in again (a new password each time, nothing stored).
    assert aws_token.access_token(pool, "smoke@example.test", create=True)


def test_an_unknown_user_without_create_is_one_line(pool, capsys):
    exit_code = tracklane(
        [
            "token",
            "--aws",
            "--user",
            "nobody@example.test",
            "--user-pool-id",
            pool.pool_id,
            "--client-id",
            pool.client_id,
        ]
    )

    captured = capsys.readouterr()
    assert exit_code == 1 and captured.out == ""
    assert captured.err.startswith("tracklane token --aws: ")
    assert len(captured.err.strip().splitlines()) == 1

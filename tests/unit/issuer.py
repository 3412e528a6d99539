"""A stand-in for a deployment's token issuer (an RSA key whose public half is a JWKS file, like
Cognito's), and the deployed API handler configured to trust it."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from jwt.algorithms import RSAAlgorithm

from functions import clients

ISSUER = "https://cognito-idp.us-east-1.amazonaws.com/us-east-1_example"
CLIENT_ID = "app-client-1"


class Issuer:
    """An RSA key pair whose public half is published as a JWKS file, like Cognito's."""

    def __init__(self, directory: Path, kid: str = "key-1") -> None:
        self.key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.kid = kid
        public = json.loads(RSAAlgorithm.to_jwk(self.key.public_key()))
        self.jwks = directory / "jwks.json"
        self.jwks.write_text(json.dumps({"keys": [{**public, "kid": kid, "use": "sig", "alg": "RS256"}]}))

    def token(self, **overrides: Any) -> str:
        now = int(time.time())
        claims = {"sub": "alice", "iss": ISSUER, "client_id": CLIENT_ID, "token_use": "access", "exp": now + 600}
        claims.update(overrides)
        claims = {name: value for name, value in claims.items() if value is not None}
        return jwt.encode(claims, self.key, algorithm="RS256", headers={"kid": self.kid})

    def public_pem(self) -> bytes:
        return self.key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )


def configure_handler(monkeypatch: pytest.MonkeyPatch, issuer: Issuer) -> Iterator[Any]:
    monkeypatch.setenv("TRACKLANE_JWT_ISSUER", ISSUER)
    monkeypatch.setenv("TRACKLANE_JWT_AUDIENCES", json.dumps([CLIENT_ID]))
    # The same HTTP client code reads a file:// JWKS as it reads https:// (unit tests have no network).
    monkeypatch.setenv("TRACKLANE_JWKS_URL", issuer.jwks.as_uri())
    # Everything a misconfigured deployment might set to "turn on" local dev auth.
    monkeypatch.setenv("TRACKLANE_DEV_KEY_FILE", str(issuer.jwks.with_name("dev-signing-key.pem")))
    monkeypatch.setenv("TRACKLANE_AUTH_MODE", "dev")
    clients.reset()
    from functions.handlers import api

    yield api.handler
    clients.reset()

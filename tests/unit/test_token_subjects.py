"""A token names its user by its subject (``sub``). One that names nobody usable — blank, longer
than any identity provider's, or holding unprintable characters — is a 401 ``unauthorized`` on
every route, whether the token is the deployed issuer's or a local dev token, and the dev token
command refuses to mint one."""

from __future__ import annotations

import json
import time

import jwt
import pytest
from fastapi.testclient import TestClient

from functions import clients
from functions.api.app import create_app
from functions.api.auth import MAX_SUBJECT_CHARS, IssuerAuthenticator
from local.cli import main as tracklane
from local.devauth import AUDIENCE, ISSUER, DevKeys, mint
from tests.unit.issuer import Issuer, configure_handler
from tests.unit.test_deployed_auth import Context, http_api_event

UNUSABLE_SUBJECTS = {
    "empty": "",
    "blank": "   ",
    "a tab": "\t",
    "too long": "a" * (MAX_SUBJECT_CHARS + 1),
    "a newline": "alice\nadmin",
    "a NUL": "ali\x00ce",
    "a zero-width space": "alice\u200b",
}

# Routes that reached storage with such a subject (an empty DynamoDB key: 500) or answered as
# someone (entitlements: 403), plus a body the route would refuse (422) were the caller accepted.
ROUTES = [
    ("GET", "/v1/me/tracks", None),
    ("POST", "/v1/uploads", {"fileName": "a.wav"}),
    ("GET", "/v1/artists/me", None),
]


@pytest.fixture
def dev_keys(tmp_path) -> DevKeys:
    return DevKeys(tmp_path / "dev-signing-key.pem").ensure()


def dev_token(keys: DevKeys, subject: str) -> str:
    """Signed like ``mint`` does, but without its refusal: what a hand-made token could carry."""
    now = int(time.time())
    claims = {"sub": subject, "iss": ISSUER, "aud": AUDIENCE, "iat": now, "exp": now + 600}
    return jwt.encode(claims, keys._key(), "RS256", headers={"kid": keys.key_id})


@pytest.fixture
def local_api(dev_keys, monkeypatch) -> TestClient:
    """The local stack's API: the deployed verification code, trusting the local issuer."""
    for name, value in dev_keys.environment().items():
        monkeypatch.setenv(name, value)
    clients.reset()
    client = TestClient(create_app(IssuerAuthenticator()), raise_server_exceptions=False)
    client.dev_keys = dev_keys  # type: ignore[attr-defined]  # the key its tokens are signed with
    yield client
    clients.reset()


@pytest.mark.parametrize("subject", UNUSABLE_SUBJECTS.values(), ids=UNUSABLE_SUBJECTS.keys())
@pytest.mark.parametrize(("method", "path", "body"), ROUTES, ids=[f"{m} {p}" for m, p, _ in ROUTES])
def test_a_dev_token_with_an_unusable_subject_is_401(local_api, subject, method, path, body):
    token = dev_token(local_api.dev_keys, subject)
    response = local_api.request(method, path, json=body, headers={"Authorization": f"Bearer {token}"})

    assert response.status_code == 401, response.text
    assert response.json()["error"]["code"] == "unauthorized"
    assert response.headers["www-authenticate"] == "Bearer"


@pytest.fixture
def deployed(monkeypatch, tmp_path):
    issuer = Issuer(tmp_path)
    for handler in configure_handler(monkeypatch, issuer):
        yield handler, issuer


@pytest.mark.parametrize("subject", UNUSABLE_SUBJECTS.values(), ids=UNUSABLE_SUBJECTS.keys())
def test_an_issuer_token_with_an_unusable_subject_is_401(deployed, subject):
    handler, issuer = deployed
    # The body would be a 422 for an accepted caller: authentication is decided first.
    event = http_api_event(headers={"authorization": f"Bearer {issuer.token(sub=subject)}"}, body={"fileName": "a.wav"})

    response = handler(event, Context())

    assert response["statusCode"] == 401, response["body"]
    assert json.loads(response["body"])["error"]["code"] == "unauthorized"


def test_a_subject_of_the_longest_allowed_length_is_accepted(deployed):
    handler, issuer = deployed
    token = issuer.token(sub="a" * MAX_SUBJECT_CHARS)
    event = http_api_event(headers={"authorization": f"Bearer {token}"}, body={"fileName": "a.wav"})

    response = handler(event, Context())

    assert response["statusCode"] == 422  # past authentication, refused for the body


@pytest.mark.parametrize("user", ["", "  "], ids=["empty", "blank"])
def test_the_token_command_refuses_a_blank_user_with_one_line(capsys, user):
    exit_code = tracklane(["token", "--user", user])

    captured = capsys.readouterr()
    assert exit_code != 0
    assert captured.out == ""
    assert captured.err.splitlines() == ["tracklane token: refusing to mint a token: the user id is blank"]


def test_mint_refuses_an_unusable_user(dev_keys):
    with pytest.raises(ValueError, match="longer than 256 characters"):
        mint("a" * (MAX_SUBJECT_CHARS + 1), dev_keys)

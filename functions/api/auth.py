"""Who is calling. The app is given an ``Authenticator``; routes depend on ``current_user``.

In AWS the HTTP API's JWT authorizer has already verified the token: the Lambda reads the claims
it passed along and never looks at the Authorization header itself. The local stack injects its
own dev authenticator, which lives outside this package and is never deployed.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

from fastapi import Request

from functions.errors import DomainError

# Every user id becomes part of DynamoDB keys and S3 prefixes: it is bounded like any other input.
# Identity providers' subjects are far shorter (Cognito's is a 36-character UUID).
MAX_SUBJECT_CHARS = 256


class Unauthorized(DomainError):
    code = "unauthorized"
    status = 401


def subject_problem(subject: str) -> str | None:
    """Why ``subject`` cannot name a user (as the end of "the subject ..."), or None when it can.

    The one rule for every way in: the gateway's claims, the local dev tokens and the dev token
    command. A blank subject would make every blank-subject token the same user and an empty
    DynamoDB key; control and invisible characters would end up in keys, prefixes and log lines.
    """
    if not subject.strip():
        return "is blank"
    if len(subject) > MAX_SUBJECT_CHARS:
        return f"is longer than {MAX_SUBJECT_CHARS} characters"
    if not subject.isprintable():
        return "contains unprintable characters"
    return None


@dataclass(frozen=True)
class Principal:
    """An authenticated caller. Only a usable subject makes one: any authenticator handing over
    an unusable one answers 401 for the whole request, on every route."""

    user_id: str

    def __post_init__(self) -> None:
        problem = subject_problem(self.user_id)
        if problem is not None:
            raise Unauthorized(f"The token's subject {problem}.")


class Authenticator(Protocol):
    def authenticate(self, request: Request) -> Principal | None: ...


class GatewayClaimsAuthenticator:
    """Trusts only the claims API Gateway's JWT authorizer attached to the Lambda event."""

    def authenticate(self, request: Request) -> Principal | None:
        event: dict[str, Any] = request.scope.get("aws.event") or {}
        claims = ((event.get("requestContext") or {}).get("authorizer") or {}).get("jwt", {}).get("claims") or {}
        subject = claims.get("sub")
        return None if subject is None else Principal(str(subject))


def current_user(request: Request) -> Principal:
    authenticator: Authenticator = request.app.state.authenticator
    principal = authenticator.authenticate(request)
    if principal is None:
        raise Unauthorized("Send a valid bearer token in the Authorization header.")
    return principal

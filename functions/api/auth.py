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


@dataclass(frozen=True)
class Principal:
    user_id: str


class Unauthorized(DomainError):
    code = "unauthorized"
    status = 401


class Authenticator(Protocol):
    def authenticate(self, request: Request) -> Principal | None: ...


class GatewayClaimsAuthenticator:
    """Trusts only the claims API Gateway's JWT authorizer attached to the Lambda event."""

    def authenticate(self, request: Request) -> Principal | None:
        event: dict[str, Any] = request.scope.get("aws.event") or {}
        claims = ((event.get("requestContext") or {}).get("authorizer") or {}).get("jwt", {}).get("claims") or {}
        subject = claims.get("sub")
        return Principal(str(subject)) if subject else None


def current_user(request: Request) -> Principal:
    authenticator: Authenticator = request.app.state.authenticator
    principal = authenticator.authenticate(request)
    if principal is None:
        raise Unauthorized("Send a valid bearer token in the Authorization header.")
    return principal

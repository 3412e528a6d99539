"""Local dev tokens: HS256 JWTs signed with a dev secret.

This module is outside ``functions/`` on purpose: the Lambda package does not contain it, and the
deployed API handler is wired to API Gateway's verified claims only.
"""

from __future__ import annotations

import time

import jwt
from fastapi import Request

from functions.api.auth import Principal, subject_problem

ISSUER = "tracklane-local"
AUDIENCE = "tracklane-local"


def mint(user: str, secret: str, *, ttl_s: int = 12 * 3600) -> str:
    """A bearer token for ``user``. Refuses a user id no API would accept (ValueError says why), so
    a typo in ``tracklane token --user`` fails here instead of as a 401 later."""
    problem = subject_problem(user)
    if problem is not None:
        raise ValueError(f"the user id {problem}")
    now = int(time.time())
    return jwt.encode({"sub": user, "iss": ISSUER, "aud": AUDIENCE, "iat": now, "exp": now + ttl_s}, secret, "HS256")


class DevTokenAuthenticator:
    def __init__(self, secret: str) -> None:
        self._secret = secret

    def authenticate(self, request: Request) -> Principal | None:
        scheme, _, token = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not token:
            return None
        try:
            claims = jwt.decode(
                token,
                self._secret,
                algorithms=["HS256"],
                audience=AUDIENCE,
                issuer=ISSUER,
                options={"require": ["sub", "exp"]},
            )
        except jwt.PyJWTError:
            return None
        return Principal(str(claims["sub"]))

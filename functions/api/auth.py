"""Who is calling. The app is given an ``Authenticator``; routes declare their access with
``current_user`` (a caller is required), ``viewer`` (``functions.api.public``: optional) or neither
(public), see ``functions.api.access``.

The API verifies bearer tokens itself (``IssuerAuthenticator``): signature against the issuer's
published keys (JWKS, cached per process), issuer, expiry, audience. API Gateway's JWT authorizers
cannot be optional, and a music service must let anyone play a public track while its owner, with
the same route, sees more; so the gateway only throttles and forwards, on AWS and locally alike.
The local stack runs this same code against keys it generated and publishes as a ``file://`` JWKS.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from fastapi import Request

from functions.errors import DomainError
from functions.observability import logger
from functions.settings import Settings, settings

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


# Asymmetric only: a token's header chooses nothing (no "none", no HMAC with a public key as secret).
ALGORITHMS = ("RS256", "RS384", "RS512", "ES256", "ES384")
# Clock skew tolerated on exp/iat/nbf, in seconds.
LEEWAY_S = 30
# How long fetched signing keys are trusted before the JWKS is read again (an unknown key id
# triggers a refetch at once: a rotated key works immediately).
JWKS_LIFESPAN_S = 3600


class AuthenticationUnavailable(DomainError):
    """The issuer's keys could not be fetched: the caller's token may be fine, so this is no 401."""

    code = "authentication_unavailable"
    status = 503


def bearer_token(request: Request) -> str | None:
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    return token.strip() or None if scheme.lower() == "bearer" else None


class JwtVerifier:
    """Checks a token against one issuer: its signature with the key the token names in the
    issuer's JWKS, ``iss``, ``exp`` (and ``nbf``/``iat`` when present), and that its ``aud`` or
    ``client_id`` is one of ``audiences``. Returns the verified claims, or None for any token that
    fails (expired, forged, another issuer's, malformed)."""

    def __init__(self, jwks_url: str, *, issuer: str, audiences: Sequence[str]) -> None:
        # PyJWT and cryptography (~0.05 s of a cold start) load with the first token to verify:
        # anonymous requests, public routes' most common callers, never need them.
        from functions.api.signing_keys import SigningKeys

        self._keys = SigningKeys(jwks_url, lifespan=JWKS_LIFESPAN_S)
        self._issuer = issuer
        self._audiences = frozenset(audiences)

    def claims(self, token: str) -> dict[str, Any] | None:
        import jwt

        try:
            key = self._keys.get_signing_key_from_jwt(token).key
        except jwt.PyJWKClientConnectionError as error:
            logger.warning("signing keys unavailable", extra={"error": str(error)})
            raise AuthenticationUnavailable("Tokens cannot be verified right now; try again shortly.") from error
        except jwt.PyJWTError:
            return None  # malformed, or signed with a key the issuer does not publish
        try:
            claims: dict[str, Any] = jwt.decode(
                token,
                key,
                algorithms=list(ALGORITHMS),
                issuer=self._issuer,
                leeway=LEEWAY_S,
                # The audience is checked below: Cognito access tokens carry client_id, not aud.
                options={"require": ["sub", "exp", "iss"], "verify_aud": False},
            )
        except jwt.PyJWTError:
            return None
        audiences = claims.get("aud")
        named = {audiences} if isinstance(audiences, str) else set(audiences or [])
        if claims.get("client_id") is not None:
            named.add(str(claims["client_id"]))
        return claims if named & self._audiences else None


class IssuerAuthenticator:
    """The bearer token verified against the configured issuer (``jwt_issuer``, ``jwt_audiences``,
    ``jwks_url``), built from settings on first use and again when settings are reloaded."""

    def __init__(self) -> None:
        self._built_for: Settings | None = None
        self._verifier: JwtVerifier | None = None

    def _current(self) -> JwtVerifier | None:
        current = settings()
        if self._built_for is not current:
            issuer = current.jwt_issuer
            jwks_url = current.jwks_url or f"{issuer.rstrip('/')}/.well-known/jwks.json"
            self._verifier = JwtVerifier(jwks_url, issuer=issuer, audiences=current.jwt_audiences) if issuer else None
            self._built_for = current
        return self._verifier

    def authenticate(self, request: Request) -> Principal | None:
        token = bearer_token(request)
        if token is None:
            return None
        verifier = self._current()
        if verifier is None:
            return None
        claims = verifier.claims(token)
        return None if claims is None else Principal(str(claims["sub"]))


# Methods that take a token from the caller's write bucket (functions.domain.rate_limits). Reads,
# progress streams (GET, functions.api.polled_routes) and CORS preflights take none.
WRITE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})


def current_user(request: Request) -> Principal:
    """The caller every owner route requires; a write request also spends one of its write
    tokens here (``429 rate_limited`` when none is left), the one place every owner write passes."""
    authenticator: Authenticator = request.app.state.authenticator
    principal = authenticator.authenticate(request)
    if principal is None:
        raise Unauthorized("Send a valid bearer token in the Authorization header.")
    if request.method in WRITE_METHODS:
        # Imported with the first write: anonymous reads never need the DynamoDB models.
        from functions.domain import rate_limits

        rate_limits.spend_write(principal.user_id)
    return principal

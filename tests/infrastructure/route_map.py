"""Which route API Gateway's HTTP API selects for a request, from the synthesized template.

The selection rules as AWS documents them for HTTP APIs ("Working with routes"): a route whose
path matches without a greedy variable beats one that needs ``{proxy+}``; among those, a literal
segment beats a path variable (compared from the first segment on); a route for the request's
method beats ``ANY``; ``$default`` catches what nothing else matches. A route with a JWT
authorizer refuses a request without a valid token before the function sees it, and passes the
verified claims along; a route without one forwards the request, Authorization header included.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from tests.infrastructure.synth import Synth

GREEDY = "{proxy+}"


@dataclass(frozen=True)
class Route:
    key: str  # "GET /v1/artists/{handle}", "ANY /{proxy+}" or "$default"
    authorization: str  # "NONE" or "JWT" (or another authorizer type)
    target: Any = None

    @property
    def method(self) -> str:
        return "ANY" if self.key == "$default" else self.key.split(" ", 1)[0]

    @property
    def segments(self) -> list[str]:
        return [] if self.key == "$default" else self.key.split(" ", 1)[1].strip("/").split("/")


def routes_of(synth: Synth) -> list[Route]:
    return [
        Route(props["RouteKey"], props.get("AuthorizationType", "NONE"), props.get("Target"))
        for props in (r["Properties"] for r in synth.resources("AWS::ApiGatewayV2::Route").values())
    ]


def _rank(route: Route, method: str, path_segments: list[str]) -> tuple[int, tuple[int, ...], int] | None:
    """Lower is more specific; None when the route does not match at all."""
    if route.method not in (method, "ANY"):
        return None
    pattern = route.segments
    greedy = bool(pattern) and pattern[-1] == GREEDY
    fixed = pattern[:-1] if greedy else pattern
    if greedy and len(path_segments) <= len(fixed):
        return None  # {proxy+} needs at least one segment
    if not greedy and len(path_segments) != len(fixed):
        return None
    kinds = []
    for expected, actual in zip(fixed, path_segments, strict=False):
        if expected.startswith("{") and expected.endswith("}"):
            if not actual:
                return None
            kinds.append(1)
        elif expected == actual:
            kinds.append(0)
        else:
            return None
    return (1 if greedy else 0, tuple(kinds), 0 if route.method == method else 1)


def select(routes: list[Route], method: str, path: str) -> Route | None:
    """The route API Gateway picks for ``method path``, or None (it answers 404 itself)."""
    segments = path.strip("/").split("/")
    ranked = [(rank, route) for route in routes if route.key != "$default" if (rank := _rank(route, method, segments))]
    if ranked:
        return min(ranked, key=lambda pair: pair[0])[1]
    return next((route for route in routes if route.key == "$default"), None)


@dataclass(frozen=True)
class Mismatch:
    method: str
    path: str
    with_token: bool
    route: str | None
    problem: str


def mismatches(
    routes: list[Route], operations: list[tuple[str, str, str]], *, app_reads_bearer: bool
) -> list[Mismatch]:
    """Every (operation, with or without a valid token) whose request would not reach the function
    the way the app's declared access expects. ``operations``: (method, path, access) with
    ``access`` public / optional / owner; ``app_reads_bearer``: the deployed app verifies the
    Authorization header itself (else it only sees a JWT authorizer's claims)."""
    found = []
    for method, path, access in operations:
        for with_token in (False, True):
            route = select(routes, method, path)
            key = route.key if route else None
            if route is None:
                found.append(Mismatch(method, path, with_token, key, "API Gateway answers 404"))
                continue
            if not with_token and access in ("public", "optional") and route.authorization != "NONE":
                found.append(Mismatch(method, path, with_token, key, "an anonymous caller is refused at the gateway"))
            if with_token and access in ("optional", "owner"):
                identity_arrives = route.authorization == "JWT" or app_reads_bearer
                if not identity_arrives:
                    found.append(Mismatch(method, path, with_token, key, "the caller's identity never reaches the app"))
    return found

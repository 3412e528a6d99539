"""Every operation of the app x {no token, a valid token}: the route API Gateway selects in the
synthesized template lets the request reach the API function as the operation's declared access
(``x-access`` in the OpenAPI document, ``functions.api.access``) expects."""

from __future__ import annotations

from typing import Any

from functions.api.access import ACCESS_KEY
from functions.api.app import create_app
from functions.api.auth import IssuerAuthenticator
from tests.infrastructure.route_map import Route, mismatches, routes_of, select
from tests.infrastructure.synth import Synth, logical_id_by_path


def operations() -> list[tuple[str, str, str]]:
    paths: dict[str, dict[str, Any]] = create_app(None).openapi()["paths"]  # type: ignore[arg-type]
    return sorted(
        (method.upper(), path, operation[ACCESS_KEY])
        for path, ops in paths.items()
        for method, operation in ops.items()
    )


def test_every_operation_declares_its_access():
    found = operations()
    assert len(found) > 30
    assert {access for _, _, access in found} == {"public", "optional", "owner"}


def test_every_operation_reaches_the_function_with_the_identity_the_app_expects(synth: Synth) -> None:
    from functions.handlers import api

    reads_bearer = isinstance(api.app.state.authenticator, IssuerAuthenticator)
    assert reads_bearer
    routes = routes_of(synth)
    assert mismatches(routes, operations(), app_reads_bearer=reads_bearer) == []
    # ...and it is the API function's integration that every selected route targets.
    integration = next(iter(synth.resources("AWS::ApiGatewayV2::Integration")))
    api_function = logical_id_by_path(synth, "/Api/Function/Resource")
    assert synth.properties(integration)["IntegrationUri"] == {"Fn::GetAtt": [api_function, "Arn"]}
    for method, path, _ in operations():
        route = select(routes, method, path)
        assert route is not None and route.target == {"Fn::Join": ["", ["integrations/", {"Ref": integration}]]}


# The route table this stack had while API Gateway's JWT authorizer did the authentication: the
# checks above must see what went wrong with it.
OLD_ROUTES = [
    Route("ANY /{proxy+}", "JWT"),
    Route("OPTIONS /{proxy+}", "NONE"),
    Route("GET /v1/artists/{handle}", "NONE"),
    Route("GET /v1/artists/{handle}/tracks", "NONE"),
    Route("GET /v1/albums", "NONE"),
]


def test_the_matcher_prefers_literals_then_variables_then_greedy_then_the_method():
    assert select(OLD_ROUTES, "GET", "/v1/artists/me").key == "GET /v1/artists/{handle}"
    assert select(OLD_ROUTES, "PUT", "/v1/artists/me").key == "ANY /{proxy+}"
    assert select(OLD_ROUTES, "OPTIONS", "/v1/artists/me").key == "OPTIONS /{proxy+}"
    assert select(OLD_ROUTES, "GET", "/v1/albums").key == "GET /v1/albums"
    assert select(OLD_ROUTES, "GET", "/v1/albums/alb_1").key == "ANY /{proxy+}"
    literal = [Route("GET /v1/artists/me", "JWT"), *OLD_ROUTES]
    assert select(literal, "GET", "/v1/artists/me").key == "GET /v1/artists/me"
    assert select([Route("GET /a/{b}", "NONE")], "GET", "/") is None
    assert select([Route("$default", "NONE")], "DELETE", "/anything").key == "$default"


def test_the_old_gateway_authorizer_design_fails_these_checks():
    """/v1/artists/me was shadowed by the public profile route (no claims reached the app), and an
    anonymous listener could not reach a public track."""
    found = {
        (m.method, m.path, m.with_token, m.problem)
        for m in mismatches(OLD_ROUTES, operations(), app_reads_bearer=False)
    }
    assert ("GET", "/v1/artists/me", True, "the caller's identity never reaches the app") in found
    assert ("GET", "/v1/tracks/{track_id}/stream", False, "an anonymous caller is refused at the gateway") in found

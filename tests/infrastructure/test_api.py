"""The HTTP API forwards every request to the API function, which authenticates it itself (see
test_route_map for what each operation gets), and throttles."""

from __future__ import annotations

import json

from functions import cors
from functions.api.polled_routes import POLLED_ROUTES
from tests.infrastructure.synth import VARIANT_CONTEXT, Synth, logical_id_by_path


def _routes(synth: Synth) -> dict[str, dict[str, object]]:
    return {r["Properties"]["RouteKey"]: r["Properties"] for r in synth.resources("AWS::ApiGatewayV2::Route").values()}


def test_a_proxy_route_and_the_polled_routes_all_reach_the_function_without_a_gateway_authorizer(
    synth: Synth,
) -> None:
    routes = _routes(synth)
    polled = {f"{method} {path}" for method, path in POLLED_ROUTES}
    assert set(routes) == {"ANY /{proxy+}", *polled}
    targets = {json.dumps(route["Target"], sort_keys=True) for route in routes.values()}
    assert len(targets) == 1, "every route goes to the one API function"
    assert {route["AuthorizationType"] for route in routes.values()} == {"NONE"}
    assert not synth.resources("AWS::ApiGatewayV2::Authorizer")


def test_each_polled_route_has_its_own_throttle_apart_from_the_catch_all(synth: Synth, variant: Synth) -> None:
    (stage,) = synth.resources("AWS::ApiGatewayV2::Stage").values()
    settings = stage["Properties"]["RouteSettings"]
    assert set(settings) == {f"{method} {path}" for method, path in POLLED_ROUTES}
    for limits in settings.values():
        assert (limits["ThrottlingRateLimit"], limits["ThrottlingBurstLimit"]) == (200, 400)
    # Polling is cheap reads: it gets more than the catch-all route (creating and finalizing).
    default = stage["Properties"]["DefaultRouteSettings"]
    assert min(limits["ThrottlingRateLimit"] for limits in settings.values()) > default["ThrottlingRateLimit"]
    (varied,) = variant.resources("AWS::ApiGatewayV2::Stage").values()
    assert {limits["ThrottlingRateLimit"] for limits in varied["Properties"]["RouteSettings"].values()} == {
        VARIANT_CONTEXT["progressThrottleRate"]
    }


def test_every_polled_route_is_a_route_of_the_app() -> None:
    from functions.api.app import routers

    served = {(method, route.path) for router in routers() for route in router.routes for method in route.methods}
    assert set(POLLED_ROUTES) <= served


def _api_environment(synth: Synth) -> dict[str, object]:
    function = synth.properties(logical_id_by_path(synth, "/Api/Function/Resource"))
    return dict(function["Environment"]["Variables"])


def test_api_gateway_answers_cors_preflights_for_the_configured_origins(synth: Synth, variant: Synth) -> None:
    for deployed, origins in ((synth, ["*"]), (variant, VARIANT_CONTEXT["corsOrigins"])):
        (api,) = deployed.resources("AWS::ApiGatewayV2::Api").values()
        configuration = api["Properties"]["CorsConfiguration"]
        assert configuration["AllowOrigins"] == origins
        # The local API's middleware (local/cors.py) is built from the same declaration.
        assert configuration["AllowHeaders"] == list(cors.API_ALLOWED_HEADERS)
        assert configuration["ExposeHeaders"] == list(cors.API_EXPOSED_HEADERS)
        assert configuration["AllowMethods"] == list(cors.API_ALLOWED_METHODS)
        assert configuration["MaxAge"] == cors.API_MAX_AGE_S


def test_default_issuer_is_the_stacks_cognito_user_pool(synth: Synth) -> None:
    pool = logical_id_by_path(synth, "/Auth/Users/Resource")
    client = logical_id_by_path(synth, "/Auth/Users/App/Resource")
    environment = _api_environment(synth)
    assert environment["TRACKLANE_JWT_ISSUER"] == {"Fn::GetAtt": [pool, "ProviderURL"]}
    audiences = json.dumps(environment["TRACKLANE_JWT_AUDIENCES"])
    assert client in audiences  # the app client's id, rendered into the JSON list at deploy time


def test_an_external_oidc_issuer_replaces_the_user_pool(variant: Synth) -> None:
    assert not variant.resources("AWS::Cognito::UserPool")
    environment = _api_environment(variant)
    assert environment["TRACKLANE_JWT_ISSUER"] == VARIANT_CONTEXT["jwtIssuer"]
    assert json.loads(str(environment["TRACKLANE_JWT_AUDIENCES"])) == VARIANT_CONTEXT["jwtAudience"]


def test_every_route_integrates_the_api_function(synth: Synth) -> None:
    (integration_id, integration) = next(iter(synth.resources("AWS::ApiGatewayV2::Integration").items()))
    api_function = logical_id_by_path(synth, "/Api/Function/Resource")
    assert integration["Properties"]["IntegrationUri"] == {"Fn::GetAtt": [api_function, "Arn"]}
    assert integration["Properties"]["PayloadFormatVersion"] == "2.0"
    for key, route in _routes(synth).items():
        assert route["Target"] == {"Fn::Join": ["", ["integrations/", {"Ref": integration_id}]]}, key


def test_default_stage_logs_access_and_throttles(synth: Synth) -> None:
    (stage,) = synth.resources("AWS::ApiGatewayV2::Stage").values()
    props = stage["Properties"]
    assert props["StageName"] == "$default"
    assert props["AutoDeploy"] is True
    assert props["AccessLogSettings"]["DestinationArn"] == {
        "Fn::GetAtt": [logical_id_by_path(synth, "/Api/AccessLogs/Resource"), "Arn"]
    }
    assert "$context.requestId" in props["AccessLogSettings"]["Format"]
    assert props["DefaultRouteSettings"]["ThrottlingRateLimit"] > 0
    assert props["DefaultRouteSettings"]["ThrottlingBurstLimit"] > 0


def test_the_app_client_signs_in_listeners_by_srp_and_operators_test_users_by_admin_password(synth: Synth) -> None:
    (client,) = synth.resources("AWS::Cognito::UserPoolClient").values()
    flows = set(client["Properties"]["ExplicitAuthFlows"])
    # SRP for apps; admin password sign-in (IAM-authorized) for `tracklane token --aws`; no plain
    # USER_PASSWORD_AUTH that would send passwords from clients.
    assert {"ALLOW_USER_SRP_AUTH", "ALLOW_ADMIN_USER_PASSWORD_AUTH"} <= flows
    assert "ALLOW_USER_PASSWORD_AUTH" not in flows
    assert client["Properties"]["GenerateSecret"] is False

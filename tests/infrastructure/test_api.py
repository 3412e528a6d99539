"""The HTTP API forwards every request to the API function, which authenticates it itself (see
test_route_map for what each operation gets), and throttles."""

from __future__ import annotations

import json

from functions import cors
from functions.api.polled_routes import POLLED_ROUTES
from tests.infrastructure.synth import VARIANT_CONTEXT, Synth, logical_id_by_path


def _routes(synth: Synth) -> dict[str, dict[str, object]]:
    return {r["Properties"]["RouteKey"]: r["Properties"] for r in synth.resources("AWS::ApiGatewayV2::Route").values()}


def test_the_proxy_routes_and_the_polled_routes_all_reach_the_function_without_a_gateway_authorizer(
    synth: Synth,
) -> None:
    routes = _routes(synth)
    polled = {f"{method} {path}" for method, path in POLLED_ROUTES}
    assert set(routes) == {"ANY /{proxy+}", "GET /{proxy+}", *polled}
    targets = {json.dumps(route["Target"], sort_keys=True) for route in routes.values()}
    assert len(targets) == 1, "every route goes to the one API function"
    assert {route["AuthorizationType"] for route in routes.values()} == {"NONE"}
    assert not synth.resources("AWS::ApiGatewayV2::Authorizer")


def _throttle(limits: dict[str, int]) -> tuple[int, int]:
    return limits["ThrottlingRateLimit"], limits["ThrottlingBurstLimit"]


def test_writes_reads_and_each_polled_route_have_their_own_throttles(synth: Synth, variant: Synth) -> None:
    (stage,) = synth.resources("AWS::ApiGatewayV2::Stage").values()
    settings = stage["Properties"]["RouteSettings"]
    polled = {f"{method} {path}" for method, path in POLLED_ROUTES}
    assert set(settings) == {"GET /{proxy+}", *polled}
    for key in polled:
        assert _throttle(settings[key]) == (200, 400)
    # Writes (the catch-all route, at the stage's default) are the tightest: reads, public ones
    # included, get more, and polling, the cheapest reads, the most.
    writes = _throttle(stage["Properties"]["DefaultRouteSettings"])
    reads = _throttle(settings["GET /{proxy+}"])
    assert (writes, reads) == ((50, 100), (100, 200))
    assert writes < reads < (200, 400)
    (varied,) = variant.resources("AWS::ApiGatewayV2::Stage").values()
    varied_settings = varied["Properties"]["RouteSettings"]
    assert {_throttle(varied_settings[key])[0] for key in polled} == {VARIANT_CONTEXT["progressThrottleRate"]}
    assert _throttle(varied_settings["GET /{proxy+}"]) == (
        VARIANT_CONTEXT["readThrottleRate"],
        VARIANT_CONTEXT["readThrottleBurst"],
    )


def test_every_read_of_the_app_and_only_reads_take_the_read_route(synth: Synth) -> None:
    from functions.api.access import table
    from functions.api.app import routers
    from tests.infrastructure.route_map import routes_of, select

    gateway = routes_of(synth)
    polled = {f"{method} {path}" for method, path in POLLED_ROUTES}
    for operation in table(routers()):
        path = operation.path.replace("{", "").replace("}", "")  # any concrete value
        chosen = select(gateway, operation.method, path)
        assert chosen is not None, operation
        expected = (
            {f"{operation.method} {operation.path}"}
            if f"{operation.method} {operation.path}" in polled
            else {"GET /{proxy+}"}
            if operation.method == "GET"
            else {"ANY /{proxy+}"}
        )
        assert {chosen.key} == expected, operation


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

"""Every API route needs a JWT from the configured issuer, except health and the docs."""

from __future__ import annotations

from stacks.constructs.api import PUBLIC_PATHS
from tests.infrastructure.synth import VARIANT_CONTEXT, Synth, logical_id_by_path


def _routes(synth: Synth) -> dict[str, dict[str, object]]:
    return {r["Properties"]["RouteKey"]: r["Properties"] for r in synth.resources("AWS::ApiGatewayV2::Route").values()}


def test_proxy_route_requires_the_jwt_authorizer(synth: Synth) -> None:
    (authorizer_id,) = synth.resources("AWS::ApiGatewayV2::Authorizer")
    proxy = _routes(synth)["ANY /{proxy+}"]
    assert proxy["AuthorizationType"] == "JWT"
    assert proxy["AuthorizerId"] == {"Ref": authorizer_id}


def test_health_docs_and_cors_preflight_routes_have_no_authorizer(synth: Synth) -> None:
    routes = _routes(synth)
    public = {*(f"GET {path}" for path in PUBLIC_PATHS), "OPTIONS /{proxy+}"}
    assert set(routes) == {"ANY /{proxy+}", *public}
    for key in public:
        assert routes[key]["AuthorizationType"] == "NONE", key
        assert "AuthorizerId" not in routes[key], key


def test_api_gateway_answers_cors_preflights_for_the_configured_origins(synth: Synth, variant: Synth) -> None:
    for deployed, origins in ((synth, ["*"]), (variant, VARIANT_CONTEXT["corsOrigins"])):
        (api,) = deployed.resources("AWS::ApiGatewayV2::Api").values()
        cors = api["Properties"]["CorsConfiguration"]
        assert cors["AllowOrigins"] == origins
        assert "authorization" in [h.lower() for h in cors["AllowHeaders"]]


def test_default_issuer_is_the_stacks_cognito_user_pool(synth: Synth) -> None:
    pool = logical_id_by_path(synth, "/Auth/Users/Resource")
    client = logical_id_by_path(synth, "/Auth/Users/App/Resource")
    (authorizer,) = synth.resources("AWS::ApiGatewayV2::Authorizer").values()
    assert authorizer["Properties"]["AuthorizerType"] == "JWT"
    assert authorizer["Properties"]["JwtConfiguration"] == {
        "Issuer": {"Fn::GetAtt": [pool, "ProviderURL"]},
        "Audience": [{"Ref": client}],
    }


def test_an_external_oidc_issuer_replaces_the_user_pool(variant: Synth) -> None:
    assert not variant.resources("AWS::Cognito::UserPool")
    (authorizer,) = variant.resources("AWS::ApiGatewayV2::Authorizer").values()
    assert authorizer["Properties"]["JwtConfiguration"] == {
        "Issuer": VARIANT_CONTEXT["jwtIssuer"],
        "Audience": VARIANT_CONTEXT["jwtAudience"],
    }


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

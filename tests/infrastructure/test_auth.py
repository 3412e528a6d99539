"""The Cognito user pool and its app client: no implicit grant and no placeholder callback; the
authorization-code flow only when callback URLs are configured, OAuth off otherwise; deletion
protection unless ephemeral. A small stack holding only the Auth construct shows each setting."""

from __future__ import annotations

import json
from typing import Any

from aws_cdk import App, RemovalPolicy, Stack
from aws_cdk.assertions import Template

from stacks.constructs.auth import Auth
from tests.infrastructure.synth import Synth


def _auth_template(**props: Any) -> Template:
    stack = Stack(App(), "AuthOnly")
    Auth(
        stack,
        "Auth",
        issuer=None,
        audience=(),
        removal_policy=props.pop("removal_policy", RemovalPolicy.RETAIN),
        deletion_protection=props.pop("deletion_protection", True),
        **props,
    )
    return Template.from_stack(stack)


def _client(template: Template) -> dict[str, Any]:
    (client,) = template.find_resources("AWS::Cognito::UserPoolClient").values()
    return dict(client["Properties"])


def test_without_callback_urls_the_client_has_no_oauth_at_all() -> None:
    template = _auth_template()
    client = _client(template)
    assert client["AllowedOAuthFlowsUserPoolClient"] is False
    assert not {"AllowedOAuthFlows", "CallbackURLs", "LogoutURLs", "AllowedOAuthScopes"} & client.keys()
    # SRP for apps, admin password sign-in (IAM-gated) for operators' test users (`tracklane token --aws`).
    assert sorted(client["ExplicitAuthFlows"]) == [
        "ALLOW_ADMIN_USER_PASSWORD_AUTH",
        "ALLOW_REFRESH_TOKEN_AUTH",
        "ALLOW_USER_SRP_AUTH",
    ]
    template.resource_count_is("AWS::Cognito::UserPoolDomain", 0)


def test_with_callback_urls_the_client_uses_the_code_flow_only_through_a_hosted_domain() -> None:
    template = _auth_template(
        callback_urls=["https://app.example.test/callback", "http://localhost:3000/callback"],
        logout_urls=["https://app.example.test/"],
        domain_prefix="tracklane-test",
    )
    client = _client(template)
    assert client["AllowedOAuthFlowsUserPoolClient"] is True
    assert client["AllowedOAuthFlows"] == ["code"]
    assert client["CallbackURLs"] == ["https://app.example.test/callback", "http://localhost:3000/callback"]
    assert client["LogoutURLs"] == ["https://app.example.test/"]
    assert set(client["AllowedOAuthScopes"]) == {"openid", "email", "profile"}
    assert client["SupportedIdentityProviders"] == ["COGNITO"]
    assert "GenerateSecret" not in client or client["GenerateSecret"] is False
    template.has_resource_properties("AWS::Cognito::UserPoolDomain", {"Domain": "tracklane-test"})


def test_the_user_pool_is_deletion_protected_unless_ephemeral() -> None:
    protected = _auth_template()
    protected.has_resource_properties("AWS::Cognito::UserPool", {"DeletionProtection": "ACTIVE"})
    ephemeral = _auth_template(removal_policy=RemovalPolicy.DESTROY, deletion_protection=False)
    ephemeral.has_resource_properties("AWS::Cognito::UserPool", {"DeletionProtection": "INACTIVE"})


def test_the_deployed_template_has_no_implicit_grant_and_no_placeholder_callback(synth: Synth) -> None:
    text = json.dumps(synth.template)
    assert "implicit" not in text
    assert "example.com" not in text
    (client,) = synth.resources("AWS::Cognito::UserPoolClient").values()
    assert client["Properties"]["AllowedOAuthFlowsUserPoolClient"] is False
    (pool,) = synth.resources("AWS::Cognito::UserPool").values()
    # synth is the dev stage: ephemeral, so the pool may be deleted with the stack.
    assert pool["Properties"]["DeletionProtection"] == "INACTIVE"
    assert pool["DeletionPolicy"] == "Delete"

"""Who issues the JWTs the HTTP API accepts: a Cognito user pool by default, or any OIDC issuer
(e.g. Clerk) given by context, in which case no user pool is created.

The app client is public (no secret). Left to its defaults, CDK would enable the implicit grant
(tokens in a URL fragment, visible to history, logs and referrers) with a placeholder
``https://example.com`` callback. Instead OAuth is the authorization-code flow only, to the
configured callback URLs through a Cognito hosted domain, or off altogether when none are
configured (clients then sign in through the user pool API with SRP).
"""

from __future__ import annotations

from collections.abc import Sequence

from aws_cdk import Duration, RemovalPolicy
from aws_cdk import aws_cognito as cognito
from constructs import Construct

from stacks import nag


class Auth(Construct):
    def __init__(
        self,
        scope: Construct,
        id_: str,
        *,
        issuer: str | None,
        audience: Sequence[str],
        removal_policy: RemovalPolicy,
        deletion_protection: bool,
        callback_urls: Sequence[str] = (),
        logout_urls: Sequence[str] = (),
        domain_prefix: str | None = None,
    ) -> None:
        super().__init__(scope, id_)
        self.user_pool: cognito.UserPool | None = None
        self.client: cognito.UserPoolClient | None = None
        self.domain: cognito.UserPoolDomain | None = None
        if issuer:
            self.issuer = issuer
            self.audience = list(audience)
            return
        self.user_pool = cognito.UserPool(
            self,
            "Users",
            self_sign_up_enabled=True,
            sign_in_aliases=cognito.SignInAliases(email=True),
            auto_verify=cognito.AutoVerifiedAttrs(email=True),
            account_recovery=cognito.AccountRecovery.EMAIL_ONLY,
            password_policy=cognito.PasswordPolicy(
                min_length=12,
                require_lowercase=True,
                require_uppercase=True,
                require_digits=True,
                require_symbols=True,
                temp_password_validity=Duration.days(3),
            ),
            mfa=cognito.Mfa.OPTIONAL,
            mfa_second_factor=cognito.MfaSecondFactor(otp=True, sms=False),
            removal_policy=removal_policy,
            deletion_protection=deletion_protection,
        )
        nag.acknowledge(
            self.user_pool,
            "AwsSolutions-COG2",
            "Listeners and artists sign up themselves; MFA is offered (TOTP, optional) rather than "
            "required so sign-up stays possible without a second device.",
        )
        nag.acknowledge(
            self.user_pool,
            "AwsSolutions-COG8",
            "The Essentials plan is deliberate: threat protection (the Plus plan) is billed per monthly "
            "active user; revisit before a public launch.",
        )
        if callback_urls:
            if not domain_prefix:
                raise ValueError("callback URLs need a domain prefix for the hosted sign-in")
            self.domain = self.user_pool.add_domain(
                "Domain", cognito_domain=cognito.CognitoDomainOptions(domain_prefix=domain_prefix)
            )
        # A public client (browser / mobile app): no secret, SRP sign-in, ID and access tokens only.
        # Admin password sign-in is for operators' test users (`tracklane token --aws`): it needs
        # AWS credentials allowed cognito-idp:AdminInitiateAuth on this pool, never a listener's.
        self.client = self.user_pool.add_client(
            "App",
            generate_secret=False,
            auth_flows=cognito.AuthFlow(user_srp=True, admin_user_password=True),
            disable_o_auth=not callback_urls,
            o_auth=cognito.OAuthSettings(
                flows=cognito.OAuthFlows(authorization_code_grant=True, implicit_code_grant=False),
                scopes=[cognito.OAuthScope.OPENID, cognito.OAuthScope.EMAIL, cognito.OAuthScope.PROFILE],
                callback_urls=list(callback_urls),
                logout_urls=list(logout_urls) or None,
            )
            if callback_urls
            else None,
            supported_identity_providers=[cognito.UserPoolClientIdentityProvider.COGNITO],
            prevent_user_existence_errors=True,
            access_token_validity=Duration.hours(1),
            id_token_validity=Duration.hours(1),
            refresh_token_validity=Duration.days(30),
        )
        self.issuer = self.user_pool.user_pool_provider_url
        self.audience = [self.client.user_pool_client_id]

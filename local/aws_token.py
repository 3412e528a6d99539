"""``tracklane token --aws``: a real access token from a deployed stack's Cognito user pool, for a
test user, so the smoke test (and curl) can talk to a deployment.

The user pool and app client come from the stack's outputs (``UserPoolId``, ``UserPoolClientId``)
or the flags. With ``--create`` the user is created if missing; either way it gets a fresh random
password (nothing to store or leak) and signs in with ``ADMIN_USER_PASSWORD_AUTH``, which only an
AWS principal allowed ``cognito-idp:AdminSetUserPassword`` and ``AdminInitiateAuth`` on the pool can
use: an operator's credentials, never a listener's.
"""

from __future__ import annotations

import secrets
import string
from dataclasses import dataclass
from typing import Any

import boto3
from botocore.exceptions import BotoCoreError, ClientError


class TokenUnavailable(Exception):
    """Why no token could be had, in one line."""


@dataclass(frozen=True)
class UserPool:
    pool_id: str
    client_id: str


def from_stack(stack_name: str, *, session: Any = None) -> UserPool:
    """The pool and client a deployed stack created (its CloudFormation outputs)."""
    cloudformation = (session or boto3).client("cloudformation")
    try:
        (stack,) = cloudformation.describe_stacks(StackName=stack_name)["Stacks"]
    except (ClientError, BotoCoreError) as error:
        raise TokenUnavailable(f"cannot read stack {stack_name!r}: {error}") from error
    outputs = {output["OutputKey"]: output["OutputValue"] for output in stack.get("Outputs", [])}
    if "UserPoolId" not in outputs or "UserPoolClientId" not in outputs:
        raise TokenUnavailable(
            f"stack {stack_name!r} has no user pool (it uses an external issuer): get a token from that issuer"
        )
    return UserPool(outputs["UserPoolId"], outputs["UserPoolClientId"])


def _password() -> str:
    """Random, and within the pool's policy (12+ characters, every character class)."""
    alphabet = string.ascii_letters + string.digits
    body = "".join(secrets.choice(alphabet) for _ in range(32))
    return f"Aa1!{body}"


def access_token(pool: UserPool, username: str, *, create: bool, session: Any = None) -> str:
    cognito = (session or boto3).client("cognito-idp")
    password = _password()
    try:
        if create:
            try:
                cognito.admin_create_user(
                    UserPoolId=pool.pool_id,
                    Username=username,
                    MessageAction="SUPPRESS",
                    UserAttributes=[{"Name": "email", "Value": username}, {"Name": "email_verified", "Value": "true"}],
                )
            except ClientError as error:
                if error.response.get("Error", {}).get("Code") != "UsernameExistsException":
                    raise
        cognito.admin_set_user_password(UserPoolId=pool.pool_id, Username=username, Password=password, Permanent=True)
        answer = cognito.admin_initiate_auth(
            UserPoolId=pool.pool_id,
            ClientId=pool.client_id,
            AuthFlow="ADMIN_USER_PASSWORD_AUTH",
            AuthParameters={"USERNAME": username, "PASSWORD": password},
        )
    except ClientError as error:
        code = error.response.get("Error", {}).get("Code", "")
        if code == "UserNotFoundException":
            raise TokenUnavailable(f"no user {username!r} in {pool.pool_id}; pass --create to make one") from error
        raise TokenUnavailable(f"{code or 'error'}: {error.response.get('Error', {}).get('Message', error)}") from error
    except BotoCoreError as error:
        raise TokenUnavailable(str(error)) from error
    result = answer.get("AuthenticationResult") or {}
    if "AccessToken" not in result:
        raise TokenUnavailable(f"sign-in needs more ({answer.get('ChallengeName')}); use a user without MFA")
    return str(result["AccessToken"])

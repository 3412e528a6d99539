"""cdk-nag (AwsSolutions) wiring and per-resource acknowledgements.

cdk-nag 3 is a policy-validation plugin, not an Aspect: it runs during synthesis, and any
unacknowledged error stops the synth with a report (``validation-report.json`` in the assembly).

Acknowledgements use the plugin's namespace (``AwsSolutions::<rule>``): the CDK then records each
suppressed finding with its reason under ``suppressedViolations`` in the validation report, which
is the audit trail. Findings of rules that report per finding (IAM5, IAM4) are acknowledged one by
one, by their exact finding id; cdk-nag 3 has no prefix matching.
"""

from __future__ import annotations

from aws_cdk import Acknowledgment, App, CfnResource, Stack, Token, Validations
from cdk_nag import AwsSolutionsChecks
from constructs import IConstruct

NAMESPACE = "AwsSolutions"


def add_checks(app: App) -> None:
    Validations.of(app).add_plugins(AwsSolutionsChecks(app, verbose=True))


def acknowledge(scope: IConstruct, rule: str, reason: str) -> None:
    """Acknowledge ``rule`` (e.g. ``AwsSolutions-L1`` or ``AwsSolutions-IAM5[Resource::*]``) on
    ``scope`` and everything below it."""
    Validations.of(scope).acknowledge(Acknowledgment(id=f"{NAMESPACE}::{rule}", reason=reason))


def attribute_of(construct: IConstruct, attribute: str) -> str:
    """How cdk-nag renders ``Fn::GetAtt [<logical id>, <attribute>]`` in a finding id."""
    resource = construct if isinstance(construct, CfnResource) else construct.node.default_child
    if not isinstance(resource, CfnResource):
        raise TypeError(f"{construct.node.path} has no CloudFormation resource")
    stack = Stack.of(resource)
    return f"<{stack.resolve(stack.get_logical_id(resource))}.{attribute}>"


def arn_of(construct: IConstruct) -> str:
    return attribute_of(construct, "Arn")


def _pseudo(value: str, name: str) -> str:
    """A stack's partition, region or account as cdk-nag renders it: the literal in a stack with an
    explicit environment, ``<AWS::Name>`` in an environment-agnostic one."""
    return f"<AWS::{name}>" if Token.is_unresolved(value) else value


def executions_of(state_machine: IConstruct) -> str:
    """How cdk-nag renders the ARN of every execution of ``state_machine``, built with
    ``Stack.format_arn`` from its ``Name`` attribute."""
    stack = Stack.of(state_machine)
    partition, region, account = (
        _pseudo(stack.partition, "Partition"),
        _pseudo(stack.region, "Region"),
        _pseudo(stack.account, "AccountId"),
    )
    return f"arn:{partition}:states:{region}:{account}:execution:{attribute_of(state_machine, 'Name')}:*"

"""Builds the tracklane CDK app: the stack, configured from context, with cdk-nag attached.

``app.py`` (what ``cdk synth`` runs) and the infrastructure tests both build the app through here,
so the tests check what is deployed.
"""

from __future__ import annotations

from aws_cdk import App

from stacks import nag
from stacks.config import StackConfig
from stacks.tracklane_stack import TracklaneStack

DEFAULT_STACK_NAME = "Tracklane"


def build(app: App, *, checks: bool = True) -> TracklaneStack:
    stack = TracklaneStack(
        app,
        app.node.try_get_context("stackName") or DEFAULT_STACK_NAME,
        config=StackConfig.from_context(app),
    )
    if checks:
        nag.add_checks(app)
    return stack

"""Builds the tracklane CDK app: the stack of one stage, configured from context, with cdk-nag attached.

``app.py`` (what ``cdk synth`` runs) and the infrastructure tests both build the app through here,
so the tests check what is deployed.
"""

from __future__ import annotations

from aws_cdk import App, Environment

from stacks import nag
from stacks.config import StackConfig
from stacks.tracklane_stack import TracklaneStack


def build(app: App, *, checks: bool = True) -> TracklaneStack:
    config = StackConfig.from_context(app)
    stack = TracklaneStack(
        app,
        config.stack_name,
        config=config,
        # Unset (dev without an explicit target): environment-agnostic, deployed where the CLI's
        # credentials point. A production stage always names both (StackConfig refuses otherwise).
        env=Environment(account=config.account, region=config.region) if config.account or config.region else None,
    )
    if checks:
        nag.add_checks(app)
    return stack

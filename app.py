#!/usr/bin/env python3
"""CDK entry point (``cdk synth`` / ``cdk deploy`` run it, see cdk.json). Offline, no Docker.

Build the Lambda layers first: ``.venv/bin/python -m layers.build``.
"""

import sys

from stacks.jsii_env import quiet_jsii

quiet_jsii()

# After quiet_jsii: jsii reads the environment when its node process starts.
from aws_cdk import App  # noqa: E402

from layers.build import LayersNotBuiltError  # noqa: E402
from stacks.app import build  # noqa: E402
from stacks.config import ConfigError, cdk_json_context  # noqa: E402

# The CLI passes cdk.json's context itself (and -c values win over it); reading it here as well
# makes `.venv/bin/python app.py` synthesize the same template without the CLI.
app = App(context=cdk_json_context())
try:
    build(app)
except (LayersNotBuiltError, ConfigError) as error:
    sys.exit(f"error: {error}")
app.synth()

"""Keep jsii's node-version banners out of synth and test output.

jsii prints a large banner when node is end-of-life or deprecated for it (node 20 on this machine).
``JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION`` takes the *major versions* to silence ("20"),
not a boolean; the deprecation variable only needs to be set. Call before ``aws_cdk`` is imported
(jsii starts its node process on first use and reads the environment then).
"""

from __future__ import annotations

import os

_SILENCED_MAJORS = ("18", "20")


def quiet_jsii() -> None:
    eol = "JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION"
    current = [v.strip() for v in os.environ.get(eol, "").split(",") if v.strip()]
    os.environ[eol] = ",".join(dict.fromkeys([*current, *_SILENCED_MAJORS]))
    os.environ.setdefault("JSII_SILENCE_WARNING_DEPRECATED_NODE_VERSION", "1")

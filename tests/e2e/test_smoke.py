"""``tracklane smoke`` against a running local stack, as an operator runs it against a deployment:
every step passes, and a bad token fails at the first step that needs it, the rest skipped."""

from __future__ import annotations

import subprocess
import sys

from .conftest import ROOT, LocalStackProcess

STEPS = ["health", "profile", "intent", "put", "finalize", "ready", "stream", "anonymous stream", "delete"]


def smoke(local_stack: LocalStackProcess, token: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "local.cli", "smoke", "--api", local_stack.api, "--token", token, "--timeout", "180"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def outcomes(stdout: str) -> dict[str, str]:
    found = {}
    for line in stdout.splitlines():
        outcome, _, rest = line.partition("  ")
        for step in STEPS:
            if rest.startswith(f"{step} ") and outcome in ("PASS", "FAIL", "SKIP"):
                found[step] = outcome
    return found


def test_smoke_passes_every_step_against_the_local_stack(local_stack):
    run = smoke(local_stack, local_stack.token("smoke-e2e"))

    assert run.returncode == 0, run.stdout + run.stderr
    assert outcomes(run.stdout) == dict.fromkeys(STEPS, "PASS"), run.stdout
    assert run.stdout.rstrip().endswith("smoke: PASS")


def test_smoke_fails_visibly_with_a_token_the_api_refuses(local_stack):
    run = smoke(local_stack, "not-a-token")

    assert run.returncode == 1
    found = outcomes(run.stdout)
    assert (found["health"], found["profile"]) == ("PASS", "FAIL"), run.stdout
    assert {found[step] for step in STEPS[2:]} == {"SKIP"}
    assert "401" in run.stdout and run.stdout.rstrip().endswith("smoke: FAIL")

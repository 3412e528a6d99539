"""cdk-nag (AwsSolutions) runs in every synth: no finding may be left unacknowledged."""

from __future__ import annotations

import json
from typing import Any

import pytest

from stacks.nag import NAMESPACE
from tests.infrastructure.synth import Synth, logical_id_by_path


def _unacknowledged(synth: Synth) -> list[str]:
    found = []
    for report in synth.report["pluginReports"]:
        for violation in report["violations"]:
            paths = [c["constructPath"] for c in violation["violatingConstructs"]]
            found.append(f"[{report['pluginName']}] {violation['severity']} {violation['ruleName']}: {paths}")
    return found


def _suppressed(synth: Synth) -> list[dict[str, Any]]:
    return [v for report in synth.report["pluginReports"] for v in report.get("suppressedViolations") or []]


@pytest.mark.parametrize("deployment", ["synth", "variant"])
def test_synth_has_no_unacknowledged_findings(deployment: str, request: pytest.FixtureRequest) -> None:
    """Errors and warnings alike, from cdk-nag and from CDK's own annotations."""
    synth: Synth = request.getfixturevalue(deployment)
    assert _unacknowledged(synth) == [], synth.error
    assert synth.error is None


def test_cdk_nag_ran(synth: Synth) -> None:
    # The plugin reports only when it has findings; ours are all acknowledged, so they show up
    # as suppressed -- proof the checks ran rather than silently not at all.
    plugins = {report["pluginName"] for report in synth.report["pluginReports"]}
    assert NAMESPACE in plugins


def test_every_acknowledgement_names_its_rule_and_gives_a_reason(synth: Synth, variant: Synth) -> None:
    for violation in _suppressed(synth) + _suppressed(variant):
        assert violation["acknowledgedId"] == f"{NAMESPACE}::{violation['ruleName']}"
        assert len(violation.get("reason", "")) >= 40, violation["ruleName"]


@pytest.mark.parametrize("deployment", ["synth", "variant"])
def test_no_acknowledgement_is_stale(deployment: str, request: pytest.FixtureRequest) -> None:
    """Each acknowledgement recorded in the assembly suppressed a finding; unused ones are removed."""
    synth: Synth = request.getfixturevalue(deployment)
    metadata = json.loads((synth.outdir / f"{synth.stack_name}.metadata.json").read_text())
    recorded = {
        (path.lstrip("/"), rule_id)
        for path, entries in metadata.items()
        for entry in entries
        if entry["type"] == "aws:cdk:acknowledged-rules"
        for rule_id in entry["data"]
    }
    used = {(v["acknowledgedAt"], v["acknowledgedId"]) for v in _suppressed(synth)}
    assert recorded - used == set()


def test_wildcard_acknowledgements_stay_the_known_few(synth: Synth) -> None:
    """A new IAM5 (wildcard) finding must be looked at, not silently acknowledged in bulk."""
    media = logical_id_by_path(synth, "/Storage/Media/Resource")
    machine = logical_id_by_path(synth, "/Processing/Workflow/Resource")
    wildcard = {v["ruleName"] for v in _suppressed(synth) if v["ruleName"].startswith("AwsSolutions-IAM5")}
    assert wildcard == {
        "AwsSolutions-IAM5[Resource::*]",  # X-Ray and log delivery
        f"AwsSolutions-IAM5[Resource::<{media}.Arn>/uploads/*]",
        f"AwsSolutions-IAM5[Resource::<{media}.Arn>/tracks/*]",
        f"AwsSolutions-IAM5[Resource::<{media}.Arn>/albums/*]",  # album cover variants
        # Finalize's copy of a verified upload, kept under its track or album.
        f"AwsSolutions-IAM5[Resource::<{media}.Arn>/tracks/*/uploaded/*]",
        f"AwsSolutions-IAM5[Resource::<{media}.Arn>/albums/*/uploaded/*]",
        # The sweeper's DescribeExecution on the workflow's executions.
        "AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:states:<AWS::Region>:<AWS::AccountId>:execution:"
        f"<{machine}.Name>:*]",
    }

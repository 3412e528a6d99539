"""The sweeper runs every 15 minutes, one sweep at a time, on the deps layer alone."""

from __future__ import annotations

from stacks.constructs.sweeper import SWEEP_RATE, SWEEP_TIMEOUT
from tests.infrastructure.synth import Synth, logical_id_by_path


def test_a_rule_invokes_the_sweeper_every_15_minutes(synth: Synth) -> None:
    function = logical_id_by_path(synth, "/Sweeper/Function/Resource")
    rule_id = logical_id_by_path(synth, "/Sweeper/Schedule/Resource")
    (rule,) = synth.resources("AWS::Events::Rule").values()
    assert rule == synth.template["Resources"][rule_id]
    props = rule["Properties"]
    assert props["ScheduleExpression"] == "rate(15 minutes)"
    assert props["State"] == "ENABLED"
    assert [target["Arn"] for target in props["Targets"]] == [{"Fn::GetAtt": [function, "Arn"]}]
    assert "EventBusName" not in props and "EventPattern" not in props


def test_only_that_rule_may_invoke_the_sweeper(synth: Synth) -> None:
    function = logical_id_by_path(synth, "/Sweeper/Function/Resource")
    rule = logical_id_by_path(synth, "/Sweeper/Schedule/Resource")
    permissions = [
        p["Properties"]
        for p in synth.resources("AWS::Lambda::Permission").values()
        if p["Properties"]["FunctionName"] == {"Fn::GetAtt": [function, "Arn"]}
    ]
    assert permissions == [
        {
            "Action": "lambda:InvokeFunction",
            "FunctionName": {"Fn::GetAtt": [function, "Arn"]},
            "Principal": "events.amazonaws.com",
            "SourceArn": {"Fn::GetAtt": [rule, "Arn"]},
        }
    ]


def test_a_sweep_ends_well_before_the_next_one_starts(synth: Synth) -> None:
    """With a 5-minute timeout and a 15-minute rate, reserved concurrency 1 never throttles a sweep."""
    function = synth.properties(logical_id_by_path(synth, "/Sweeper/Function/Resource"))
    assert function["Timeout"] == SWEEP_TIMEOUT.to_seconds() == 300
    assert SWEEP_RATE.to_minutes() == 15
    assert function["Timeout"] < SWEEP_RATE.to_seconds()
    assert function["ReservedConcurrentExecutions"] == 1

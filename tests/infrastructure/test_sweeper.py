"""The sweeper runs every 15 minutes on the deps layer alone; an undeliverable schedule event is
retried, then parked in a dead-letter queue."""

from __future__ import annotations

from stacks.constructs.sweeper import SCHEDULE_RETRY_ATTEMPTS, SWEEP_RATE, SWEEP_TIMEOUT
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


def test_the_schedule_target_retries_for_one_interval_then_dead_letters(synth: Synth) -> None:
    dlq = logical_id_by_path(synth, "/Sweeper/DeadLetters/Resource")
    (target,) = synth.properties(logical_id_by_path(synth, "/Sweeper/Schedule/Resource"))["Targets"]
    assert target["RetryPolicy"] == {
        "MaximumRetryAttempts": SCHEDULE_RETRY_ATTEMPTS,
        # A later delivery would only overlap the next scheduled sweep.
        "MaximumEventAgeInSeconds": SWEEP_RATE.to_seconds(),
    }
    assert target["DeadLetterConfig"] == {"Arn": {"Fn::GetAtt": [dlq, "Arn"]}}
    queue = synth.properties(dlq)
    assert queue["SqsManagedSseEnabled"] is True
    # EventBridge may send to it for this rule only.
    (policy,) = [
        p["Properties"]["PolicyDocument"]
        for p in synth.resources("AWS::SQS::QueuePolicy").values()
        if p["Properties"]["Queues"] == [{"Ref": dlq}]
    ]
    (allow,) = [statement for statement in policy["Statement"] if statement["Effect"] == "Allow"]
    assert allow["Principal"] == {"Service": "events.amazonaws.com"}
    assert allow["Condition"] == {
        "ArnEquals": {"aws:SourceArn": {"Fn::GetAtt": [logical_id_by_path(synth, "/Sweeper/Schedule/Resource"), "Arn"]}}
    }


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
    """With a 5-minute timeout and a 15-minute rate, sweeps overlap only when a delivery is retried."""
    function = synth.properties(logical_id_by_path(synth, "/Sweeper/Function/Resource"))
    assert function["Timeout"] == SWEEP_TIMEOUT.to_seconds() == 300
    assert SWEEP_RATE.to_minutes() == 15
    assert function["Timeout"] < SWEEP_RATE.to_seconds()


def test_the_sweeper_reserves_concurrency_only_when_configured(synth: Synth, variant: Synth) -> None:
    """A reservation fails deployments on accounts with a low concurrency quota: off by default."""
    default = synth.properties(logical_id_by_path(synth, "/Sweeper/Function/Resource"))
    assert "ReservedConcurrentExecutions" not in default
    reserved = variant.properties(logical_id_by_path(variant, "/Sweeper/Function/Resource"))
    assert reserved["ReservedConcurrentExecutions"] == 1

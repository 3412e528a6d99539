"""Alarms reach someone: every alarm notifies the alarm topic on ALARM and on OK, every signal an
operator needs has one, the topic is encrypted in a way CloudWatch can publish to, and there is
one dashboard."""

from __future__ import annotations

from typing import Any

import pytest

from stacks.config import AlarmThresholds
from stacks.constructs.processing import function_sizes
from tests.infrastructure.synth import VARIANT_CONTEXT, Synth, logical_id_by_path

DEPLOYMENTS = ["synth", "variant"]


def _topic(synth: Synth) -> dict[str, str]:
    return {"Ref": logical_id_by_path(synth, "/Monitoring/AlarmTopic/Resource")}


def _alarms(synth: Synth) -> dict[str, dict[str, Any]]:
    return {lid: r["Properties"] for lid, r in synth.resources("AWS::CloudWatch::Alarm").items()}


def _metrics(alarm: dict[str, Any]) -> list[dict[str, Any]]:
    """Each metric an alarm reads, as ``{Namespace, MetricName, Dimensions, Stat, Period}``, whether
    the alarm is on one metric or on metric math."""
    if "MetricName" in alarm:
        return [{key: alarm.get(key) for key in ("Namespace", "MetricName", "Dimensions", "Period")}
                | {"Stat": alarm.get("ExtendedStatistic") or alarm.get("Statistic")}]  # fmt: skip
    return [
        {**m["MetricStat"]["Metric"], "Stat": m["MetricStat"]["Stat"], "Period": m["MetricStat"]["Period"]}
        for m in alarm.get("Metrics", [])
        if "MetricStat" in m
    ]


def _alarm_on(synth: Synth, namespace: str, metric: str, dimensions: list[dict[str, Any]]) -> dict[str, Any]:
    found = [
        alarm
        for alarm in _alarms(synth).values()
        for m in _metrics(alarm)
        if (m["Namespace"], m["MetricName"], m.get("Dimensions")) == (namespace, metric, dimensions)
    ]
    assert len(found) == 1, f"{len(found)} alarms on {namespace} {metric} {dimensions}"
    return found[0]


def _machine(synth: Synth) -> list[dict[str, Any]]:
    return [{"Name": "StateMachineArn", "Value": {"Ref": logical_id_by_path(synth, "/Processing/Workflow/Resource")}}]


def _function(synth: Synth, path: str) -> list[dict[str, Any]]:
    return [{"Name": "FunctionName", "Value": {"Ref": logical_id_by_path(synth, f"/{path}/Resource")}}]


def _queue(synth: Synth, logical_id: str) -> list[dict[str, Any]]:
    return [{"Name": "QueueName", "Value": {"Fn::GetAtt": [logical_id, "QueueName"]}}]


def _our_functions(synth: Synth) -> list[str]:
    """The stack's own functions (CDK's deploy-time handlers excluded), by construct path."""
    paths = []
    for function in synth.resources("AWS::Lambda::Function").values():
        path = function["Metadata"]["aws:cdk:path"].removeprefix(f"{synth.stack_name}/").removesuffix("/Resource")
        if function["Properties"].get("Handler", "").startswith("functions.handlers."):
            paths.append(path)
    return paths


def _dead_letter_queues(synth: Synth) -> set[str]:
    """Every queue the template uses as a dead-letter destination (SQS redrive, an event source
    mapping's on-failure destination, an EventBridge target's DLQ)."""
    arns: list[Any] = []
    for queue in synth.resources("AWS::SQS::Queue").values():
        arns.append(queue["Properties"].get("RedrivePolicy", {}).get("deadLetterTargetArn"))
    for mapping in synth.resources("AWS::Lambda::EventSourceMapping").values():
        arns.append(mapping["Properties"].get("DestinationConfig", {}).get("OnFailure", {}).get("Destination"))
    for rule in synth.resources("AWS::Events::Rule").values():
        arns.extend(target.get("DeadLetterConfig", {}).get("Arn") for target in rule["Properties"]["Targets"])
    return {arn["Fn::GetAtt"][0] for arn in arns if arn}


@pytest.mark.parametrize("deployment", DEPLOYMENTS)
def test_every_alarm_notifies_the_topic_on_alarm_and_on_ok(deployment: str, request: pytest.FixtureRequest) -> None:
    synth: Synth = request.getfixturevalue(deployment)
    alarms = _alarms(synth)
    assert len(alarms) >= 30
    for lid, alarm in alarms.items():
        assert alarm.get("ActionsEnabled", True) is True, lid
        assert alarm["AlarmActions"] == [_topic(synth)], lid
        assert alarm["OKActions"] == [_topic(synth)], lid
        assert alarm["AlarmName"].startswith(f"{synth.stack_name}-"), lid  # stages in one account never collide
        assert len(alarm["AlarmDescription"]) >= 40, lid
    assert not synth.resources("AWS::CloudWatch::CompositeAlarm")


@pytest.mark.parametrize("deployment", DEPLOYMENTS)
def test_each_signal_an_operator_needs_has_an_alarm(deployment: str, request: pytest.FixtureRequest) -> None:
    synth: Synth = request.getfixturevalue(deployment)
    machine = [
        {"Name": "StateMachineArn", "Value": {"Ref": logical_id_by_path(synth, "/Processing/Workflow/Resource")}}
    ]
    for metric in ("ExecutionsFailed", "ExecutionsTimedOut"):
        _alarm_on(synth, "AWS/States", metric, machine)

    functions = _our_functions(synth)
    assert {"Api/Function", "Ingest/Finalize", "Sweeper/Function", "DomainEvents/Publisher", "Processing/Step"} <= set(
        functions
    )
    assert len([path for path in functions if path.startswith("Processing/Step")]) == len(function_sizes())
    for path in functions:
        for metric in ("Errors", "Throttles"):
            _alarm_on(synth, "AWS/Lambda", metric, _function(synth, path))
    _alarm_on(synth, "AWS/Lambda", "IteratorAge", _function(synth, "DomainEvents/Publisher"))

    api = [
        {"Name": "ApiId", "Value": {"Ref": logical_id_by_path(synth, "/Api/Http/Resource")}},
        {"Name": "Stage", "Value": "$default"},
    ]
    assert _metrics(_alarm_on(synth, "AWS/ApiGateway", "5xx", api))[0]["Stat"] == "Average"  # a rate
    assert _metrics(_alarm_on(synth, "AWS/ApiGateway", "Latency", api))[0]["Stat"] == "p99"

    put_events = logical_id_by_path(synth, "/Ingest/PutEvents/Resource")
    _alarm_on(synth, "AWS/SQS", "ApproximateAgeOfOldestMessage", _queue(synth, put_events))
    dead_letter_queues = _dead_letter_queues(synth)
    assert len(dead_letter_queues) == 3  # S3 events, domain events, the sweeper's schedule
    for queue in dead_letter_queues:
        alarm = _alarm_on(synth, "AWS/SQS", "ApproximateNumberOfMessagesVisible", _queue(synth, queue))
        assert (alarm["Threshold"], alarm["ComparisonOperator"]) == (0, "GreaterThanThreshold")

    tables = synth.resources("AWS::DynamoDB::Table")
    assert len(tables) == 6
    for table in tables:
        for metric in ("ReadThrottleEvents", "WriteThrottleEvents"):
            _alarm_on(synth, "AWS/DynamoDB", metric, [{"Name": "TableName", "Value": {"Ref": table}}])


def test_thresholds_are_the_documented_defaults_unless_configured(synth: Synth, variant: Synth) -> None:
    defaults = AlarmThresholds()
    machine = [
        {"Name": "StateMachineArn", "Value": {"Ref": logical_id_by_path(synth, "/Processing/Workflow/Resource")}}
    ]
    assert _alarm_on(synth, "AWS/States", "ExecutionsFailed", machine)["Threshold"] == defaults.workflow_failed
    tuned = [
        {"Name": "StateMachineArn", "Value": {"Ref": logical_id_by_path(variant, "/Processing/Workflow/Resource")}}
    ]
    assert (
        _alarm_on(variant, "AWS/States", "ExecutionsFailed", tuned)["Threshold"]
        == VARIANT_CONTEXT["alarmWorkflowFailed"]
    )

    api = [
        {"Name": "ApiId", "Value": {"Ref": logical_id_by_path(synth, "/Api/Http/Resource")}},
        {"Name": "Stage", "Value": "$default"},
    ]
    five_xx = _alarm_on(synth, "AWS/ApiGateway", "5xx", api)
    assert five_xx["Threshold"] == defaults.api_5xx_percent / 100
    latency = _alarm_on(synth, "AWS/ApiGateway", "Latency", api)
    assert (latency["Threshold"], latency["EvaluationPeriods"], latency["DatapointsToAlarm"]) == (
        defaults.api_latency_p99_ms,
        3,
        3,
    )
    put_events = logical_id_by_path(synth, "/Ingest/PutEvents/Resource")
    age = _alarm_on(synth, "AWS/SQS", "ApproximateAgeOfOldestMessage", _queue(synth, put_events))
    assert age["Threshold"] == defaults.s3_event_age_s
    iterator = _alarm_on(synth, "AWS/Lambda", "IteratorAge", _function(synth, "DomainEvents/Publisher"))
    assert iterator["Threshold"] == defaults.stream_iterator_age_s * 1000  # IteratorAge is in milliseconds
    step_errors = _alarm_on(synth, "AWS/Lambda", "Errors", _function(synth, "Processing/Step"))
    assert step_errors["Threshold"] == defaults.step_errors
    api_errors = _alarm_on(synth, "AWS/Lambda", "Errors", _function(synth, "Api/Function"))
    assert api_errors["Threshold"] == defaults.function_errors
    for alarm in _alarms(synth).values():
        assert {m["Period"] for m in _metrics(alarm)} == {300}


@pytest.mark.parametrize("deployment", DEPLOYMENTS)
def test_the_topic_is_encrypted_with_a_key_cloudwatch_may_use_and_only_alarms_publish(
    deployment: str, request: pytest.FixtureRequest
) -> None:
    synth: Synth = request.getfixturevalue(deployment)
    key = logical_id_by_path(synth, "/Monitoring/AlarmTopicKey/Resource")
    topic = synth.properties(logical_id_by_path(synth, "/Monitoring/AlarmTopic/Resource"))
    # Not alias/aws/sns: CloudWatch cannot use the AWS managed key, and its alarms would fail silently.
    assert topic["KmsMasterKeyId"] == {"Fn::GetAtt": [key, "Arn"]}
    key_props = synth.properties(key)
    assert key_props["EnableKeyRotation"] is True
    (cloudwatch,) = [
        s for s in key_props["KeyPolicy"]["Statement"] if s.get("Principal") == {"Service": "cloudwatch.amazonaws.com"}
    ]
    assert cloudwatch["Action"] == ["kms:Decrypt", "kms:GenerateDataKey*"]
    (policy,) = synth.resources("AWS::SNS::TopicPolicy").values()
    statements = policy["Properties"]["PolicyDocument"]["Statement"]
    (allow,) = [s for s in statements if s["Effect"] == "Allow"]
    assert (allow["Principal"], allow["Action"]) == ({"Service": "cloudwatch.amazonaws.com"}, "sns:Publish")
    assert "aws:SourceArn" in allow["Condition"]["ArnLike"]
    assert any(
        s["Effect"] == "Deny" and s["Condition"] == {"Bool": {"aws:SecureTransport": "false"}} for s in statements
    )


def test_the_email_subscription_exists_only_when_alarm_email_is_set(synth: Synth, variant: Synth) -> None:
    assert not synth.resources("AWS::SNS::Subscription")
    (subscription,) = variant.resources("AWS::SNS::Subscription").values()
    assert subscription["Properties"]["Protocol"] == "email"
    assert subscription["Properties"]["Endpoint"] == VARIANT_CONTEXT["alarmEmail"]
    assert subscription["Properties"]["TopicArn"] == _topic(variant)


@pytest.mark.parametrize("deployment", DEPLOYMENTS)
def test_one_dashboard_per_stage(deployment: str, request: pytest.FixtureRequest) -> None:
    synth: Synth = request.getfixturevalue(deployment)
    (dashboard,) = synth.resources("AWS::CloudWatch::Dashboard").values()
    assert dashboard["Properties"]["DashboardName"] == synth.stack_name
    body = str(dashboard["Properties"]["DashboardBody"])
    for namespace in ("AWS/ApiGateway", "AWS/Lambda", "AWS/States", "AWS/SQS", "AWS/DynamoDB"):
        assert namespace in body, namespace

"""The state machine runs the one workflow definition, invoking the processing function."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from functions.workflow.definition import WORKFLOW, render_aws
from stacks.constructs.processing import SUBSTITUTION
from tests.infrastructure.synth import ROOT, Synth, logical_id_by_path, state_machine_definition

ASL_VALIDATOR = ROOT / "node_modules" / ".bin" / "asl-validator"


def _states_by_scope(definition: dict[str, Any]) -> list[dict[str, Any]]:
    """The top-level States and each Parallel branch's States: a Catch may only target its own scope."""
    scopes = [definition["States"]]
    for state in definition["States"].values():
        for branch in state.get("Branches", []):
            scopes.extend(_states_by_scope(branch))
    return scopes


def test_every_task_of_the_workflow_is_deployed_with_its_retry_and_catch(synth: Synth) -> None:
    definition, _ = state_machine_definition(synth)
    processing = logical_id_by_path(synth, "/Processing/Step/Resource")
    function_arn = f"arn:aws:lambda:us-east-1:123456789012:function:{processing}"
    tasks = list(WORKFLOW.tasks())
    assert {task.lane for task in tasks if task.lane} >= {
        "probe",
        "transcode",
        "waveform",
        "loudness",
        "stems",
        "lyrics",
    }
    scope_of = {name: scope for scope in _states_by_scope(definition) for name in scope}
    deployed_tasks = {name for name, scope in scope_of.items() if scope[name]["Type"] == "Task"}
    assert deployed_tasks == {task.name for task in tasks}
    for task in tasks:
        scope = scope_of[task.name]
        state = scope[task.name]
        assert state["Resource"] == function_arn, task.name
        assert state["Parameters"] == {"step": task.step, "input.$": "$"}
        assert state["Retry"] == [policy.to_asl() for policy in task.retry], task.name
        assert state.get("Catch", []) == [catch.to_asl() for catch in task.catch], task.name
        for catch in state.get("Catch", []):
            assert catch["Next"] in scope, (task.name, catch)
    lanes = definition["States"]["Lanes"]
    assert lanes["Type"] == "Parallel"
    assert lanes["Catch"][0]["Next"] == "MarkFailed"
    assert definition["StartAt"] == WORKFLOW.start_at
    assert definition["TimeoutSeconds"] == WORKFLOW.timeout_seconds


def test_the_deployed_definition_is_render_aws_with_the_function_arn_substituted(synth: Synth) -> None:
    definition, substitutions = state_machine_definition(synth)
    processing = logical_id_by_path(synth, "/Processing/Step/Resource")
    assert substitutions == {SUBSTITUTION: {"Fn::GetAtt": [processing, "Arn"]}}
    assert definition == render_aws(f"arn:aws:lambda:us-east-1:123456789012:function:{processing}")


def test_state_machine_is_standard_traced_and_logs_without_execution_data(synth: Synth) -> None:
    (machine,) = synth.resources("AWS::StepFunctions::StateMachine").values()
    props = machine["Properties"]
    assert props["StateMachineType"] == "STANDARD"
    assert props["TracingConfiguration"] == {"Enabled": True}
    logging = props["LoggingConfiguration"]
    assert logging["Level"] == "ALL"
    assert logging["IncludeExecutionData"] is False
    log_group = logical_id_by_path(synth, "/Processing/WorkflowLogs/Resource")
    assert logging["Destinations"] == [{"CloudWatchLogsLogGroup": {"LogGroupArn": {"Fn::GetAtt": [log_group, "Arn"]}}}]


def test_state_machine_role_may_invoke_only_the_processing_function(synth: Synth) -> None:
    processing = logical_id_by_path(synth, "/Processing/Step/Resource")
    policy = synth.properties(logical_id_by_path(synth, "/Processing/Workflow/Role/DefaultPolicy/Resource"))
    invokes = [s for s in policy["PolicyDocument"]["Statement"] if "lambda:InvokeFunction" in _actions(s)]
    assert invokes == [
        {"Action": "lambda:InvokeFunction", "Effect": "Allow", "Resource": {"Fn::GetAtt": [processing, "Arn"]}}
    ]


def test_deployed_definition_passes_asl_validator(synth: Synth, tmp_path: Path) -> None:
    if not ASL_VALIDATOR.exists():
        pytest.fail(f"{ASL_VALIDATOR.relative_to(ROOT)} is missing: run `npm ci` in the repository root", pytrace=False)
    definition, _ = state_machine_definition(synth)
    path = tmp_path / "state-machine.asl.json"
    path.write_text(json.dumps(definition, indent=2))
    node = shutil.which("node")
    assert node, "node is required for asl-validator"
    done = subprocess.run(
        [node, str(ASL_VALIDATOR), "--json-path", str(path)], capture_output=True, text=True, check=False, timeout=60
    )
    assert done.returncode == 0, done.stdout + done.stderr


def _actions(statement: dict[str, Any]) -> list[str]:
    actions = statement["Action"]
    return [actions] if isinstance(actions, str) else list(actions)

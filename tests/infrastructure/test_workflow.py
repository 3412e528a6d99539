"""The state machine runs the one workflow definition, invoking the processing functions: one per
Task timeout, each stopping before its Tasks give up on it."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from functions.workflow.definition import WORKFLOW, render_aws
from stacks.constructs.processing import FunctionSize, function_id, function_sizes, route_tasks, substitution_for
from tests.infrastructure.synth import ROOT, Synth, logical_id_by_path, state_machine_definition

ASL_VALIDATOR = ROOT / "node_modules" / ".bin" / "asl-validator"


def _states_by_scope(definition: dict[str, Any]) -> list[dict[str, Any]]:
    """The top-level States and each Parallel branch's States: a Catch may only target its own scope."""
    scopes = [definition["States"]]
    for state in definition["States"].values():
        for branch in state.get("Branches", []):
            scopes.extend(_states_by_scope(branch))
    return scopes


FAKE_ARN = "arn:aws:lambda:us-east-1:123456789012:function:"


def _step_functions(synth: Synth) -> dict[FunctionSize, str]:
    """{(Task TimeoutSeconds, memory MB): logical id of the function behind those Tasks}."""
    return {size: logical_id_by_path(synth, f"/Processing/{function_id(size)}/Resource") for size in function_sizes()}


def _tasks(definition: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {
        name: state
        for scope in _states_by_scope(definition)
        for name, state in scope.items()
        if state["Type"] == "Task"
    }


def test_every_task_of_the_workflow_is_deployed_with_its_retry_and_catch(synth: Synth) -> None:
    definition, _ = state_machine_definition(synth)
    step_functions = _step_functions(synth)
    tasks = list(WORKFLOW.tasks())
    assert {task.lane for task in tasks if task.lane} >= {
        "probe",
        "transcode_aac",
        "transcode_opus",
        "transcode_mp3",
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
        assert state["Resource"] == FAKE_ARN + step_functions[(task.timeout_seconds, task.memory_mb)], task.name
        # The verdicts also get their state machine's ARN: they start the artist's next waiting upload.
        passed = {"stateMachineArn.$": "$$.StateMachine.Id"} if task.step in {"mark_ready", "mark_failed"} else {}
        assert state["Parameters"] == {"step": task.step, "input.$": "$", **passed}, task.name
        assert state["Retry"] == [policy.to_asl() for policy in task.retry], task.name
        assert state.get("Catch", []) == [catch.to_asl() for catch in task.catch], task.name
        for catch in state.get("Catch", []):
            assert catch["Next"] in scope, (task.name, catch)
    lanes = definition["States"]["Lanes"]
    assert lanes["Type"] == "Parallel"
    assert lanes["Catch"][0]["Next"] == "MarkFailed"
    assert definition["StartAt"] == WORKFLOW.start_at
    assert definition["TimeoutSeconds"] == WORKFLOW.timeout_seconds


def test_the_deployed_definition_is_render_aws_with_each_tasks_function_substituted(synth: Synth) -> None:
    definition, substitutions = state_machine_definition(synth)
    step_functions = _step_functions(synth)
    assert substitutions == {
        substitution_for(size): {"Fn::GetAtt": [function, "Arn"]} for size, function in step_functions.items()
    }
    expected = json.dumps(route_tasks(render_aws()))
    for size, function in step_functions.items():
        expected = expected.replace("${" + substitution_for(size) + "}", FAKE_ARN + function)
    assert definition == json.loads(expected)
    # Apart from the Resources, exactly what render_aws gives.
    for state in _tasks(definition).values():
        state["Resource"] = "${ProcessingFunctionArn}"
    assert definition == render_aws()


def test_every_lambda_stops_before_the_task_that_invoked_it_times_out(synth: Synth) -> None:
    """A Task that times out does not stop its Lambda: were the function's timeout longer, a step
    could go on writing after the workflow's Catch had moved the track on."""
    definition, _ = state_machine_definition(synth)
    functions = {lid: synth.properties(lid) for lid in synth.resources("AWS::Lambda::Function")}
    for name, state in _tasks(definition).items():
        function = functions[state["Resource"].removeprefix(FAKE_ARN)]
        # 15 s of margin: a cold start's init phase counts against the Task, not the function.
        assert function["Timeout"] <= state["TimeoutSeconds"] - 15, (name, function["Timeout"], state["TimeoutSeconds"])
        ffmpeg_timeout = int(function["Environment"]["Variables"]["TRACKLANE_FFMPEG_TIMEOUT_S"])
        assert 0 < ffmpeg_timeout < function["Timeout"], name


def test_every_task_runs_in_a_function_with_its_own_memory(synth: Synth) -> None:
    """One vCPU (1,769 MB) for each ffmpeg task, a rendition included; far less for a status write:
    a 60-second MarkReady does not get the memory (and price) of an encoder."""
    definition, _ = state_machine_definition(synth)
    functions = {lid: synth.properties(lid) for lid in synth.resources("AWS::Lambda::Function")}
    memory = {
        name: functions[state["Resource"].removeprefix(FAKE_ARN)]["MemorySize"]
        for name, state in _tasks(definition).items()
    }
    assert memory == {task.name: task.memory_mb for task in WORKFLOW.tasks()}
    assert memory["TranscodeAac"] == memory["Probe"] == 1769
    assert memory["MarkReady"] == memory["Stems"] == 512


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


def test_state_machine_role_may_invoke_only_the_processing_functions(synth: Synth) -> None:
    step_functions = _step_functions(synth)
    policy = synth.properties(logical_id_by_path(synth, "/Processing/Workflow/Role/DefaultPolicy/Resource"))
    invokes = [s for s in policy["PolicyDocument"]["Statement"] if "lambda:InvokeFunction" in _actions(s)]
    (statement,) = invokes
    assert (statement["Action"], statement["Effect"]) == ("lambda:InvokeFunction", "Allow")
    assert sorted(r["Fn::GetAtt"][0] for r in statement["Resource"]) == sorted(step_functions.values())
    assert all(r["Fn::GetAtt"][1] == "Arn" for r in statement["Resource"])


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

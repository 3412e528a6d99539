"""One workflow definition renders both the AWS and the local state machine."""

import json

from functions.domain.processing import steps
from functions.workflow import definition


def test_aws_and_local_renderings_have_the_same_states_and_transitions():
    aws = definition.render_aws("arn:aws:lambda:us-east-1:123456789012:function:processing")
    local = definition.render_local("http://127.0.0.1:5005/123456789012/tasks")

    assert aws["StartAt"] == local["StartAt"]
    assert aws["TimeoutSeconds"] == local["TimeoutSeconds"]
    assert aws["States"].keys() == local["States"].keys()
    for name, state in aws["States"].items():
        twin = local["States"][name]
        for field in ("Type", "Next", "End", "ResultPath", "Catch"):
            assert state.get(field) == twin.get(field), (name, field)
        if state["Type"] != "Task":
            assert state.get("TimeoutSeconds") == twin.get("TimeoutSeconds"), name


def test_a_local_task_may_take_what_a_deployed_one_may_with_its_retries():
    # On AWS each attempt has the Task's timeout and the Retry waits between them; locally the
    # runner retries inside one SQS callback, so that callback's timeout is the whole budget.
    aws = definition.render_aws()["States"]["MarkReady"]
    local = definition.render_local("http://127.0.0.1:5005/123456789012/tasks")["States"]["MarkReady"]
    assert aws["TimeoutSeconds"] == 60
    waits = sum(
        min(retry["IntervalSeconds"] * retry["BackoffRate"] ** n, retry["MaxDelaySeconds"])
        for retry in aws["Retry"]
        for n in range(retry["MaxAttempts"])
    )
    attempts = 1 + sum(retry["MaxAttempts"] for retry in aws["Retry"])
    assert local["TimeoutSeconds"] == int(attempts * 60 + waits)
    assert local["TimeoutSeconds"] > 15 * 60  # 16 attempts of a minute and ~4 minutes of waits


def test_aws_tasks_retry_transient_errors_and_catch_everything():
    aws = definition.render_aws()
    probe = aws["States"]["Probe"]
    assert probe["Resource"] == "${ProcessingFunctionArn}"
    assert probe["Parameters"] == {"step": "probe", "input.$": "$"}
    # Throttles first, with their own patient budget; then the other transient errors.
    assert probe["Retry"][0]["ErrorEquals"] == ["Lambda.TooManyRequestsException", "ThrottledStepError"]
    assert probe["Retry"][0]["MaxAttempts"] == 12
    assert probe["Retry"][1]["ErrorEquals"][0] == "TransientStepError"
    assert probe["Retry"][1]["MaxAttempts"] == 3
    assert probe["Catch"] == [{"ErrorEquals": ["States.ALL"], "ResultPath": "$.failure", "Next": "MarkFailed"}]


def test_local_tasks_are_sqs_callbacks_without_retry_because_the_runner_retries():
    local = definition.render_local("http://q")
    for state in local["States"].values():
        if state["Type"] == "Task":
            assert state["Resource"] == "arn:aws:states:::sqs:sendMessage.waitForTaskToken"
            assert state["Parameters"]["MessageBody"]["taskToken.$"] == "$$.Task.Token"
            assert "Retry" not in state
    assert [policy.max_attempts for policy in definition.retry_policies()["probe"]] == [12, 3]


def test_every_task_names_a_step_that_exists():
    for task in definition.WORKFLOW.tasks():
        assert task.step in steps.STEPS


def test_every_transition_targets_a_defined_state():
    asl = definition.render_aws()
    names = set(asl["States"])
    targets = {asl["StartAt"]}
    for state in asl["States"].values():
        targets.update(filter(None, [state.get("Next")]))
        targets.update(catch["Next"] for catch in state.get("Catch", []))
    assert targets <= names
    json.dumps(asl)  # serializable as ASL


def test_retry_backoff_matches_step_functions():
    policy = definition.RetryPolicy(interval_seconds=2, max_attempts=3, backoff_rate=2.0, jitter_strategy="NONE")
    assert [policy.delay_before(n) for n in (1, 2, 3)] == [2.0, 4.0, 8.0]
    assert policy.matches("TransientStepError")
    assert not policy.matches("StepFailed")


def test_retry_backoff_is_capped_at_max_delay_seconds():
    policy = definition.RetryPolicy(interval_seconds=2, backoff_rate=2.0, max_delay_seconds=5, jitter_strategy="NONE")
    assert [policy.delay_before(n) for n in (1, 2, 3, 4)] == [2.0, 4.0, 5.0, 5.0]


def test_full_jitter_waits_between_zero_and_the_capped_backoff(monkeypatch):
    # Given a FULL-jitter policy whose third backoff (8 s) is capped at 5 s
    policy = definition.RetryPolicy(interval_seconds=2, backoff_rate=2.0, max_delay_seconds=5)
    draws = []
    monkeypatch.setattr(definition.random, "uniform", lambda low, high: draws.append((low, high)) or high / 2)
    # When the delays are computed, Then each is drawn from [0, capped backoff]
    assert [policy.delay_before(n) for n in (1, 2, 3)] == [1.0, 2.0, 2.5]
    assert draws == [(0.0, 2.0), (0.0, 4.0), (0.0, 5.0)]


def test_every_aws_retry_has_full_jitter_and_a_max_delay():
    for task in definition.WORKFLOW.tasks():
        for policy in task.retry:
            rendered = policy.to_asl()
            assert rendered["JitterStrategy"] == "FULL", task.name
            assert 0 < rendered["MaxDelaySeconds"] < task.timeout_seconds, task.name


def test_lanes_run_in_parallel_after_probe_and_artwork_follows_tags():
    assert definition.LANES == (
        "probe", "transcode_aac", "transcode_opus", "transcode_mp3", "waveform", "loudness", "tags", "artwork",
        "embeddings", "autotag", "stems", "lyrics",
    )  # fmt: skip
    assert {"probe"} == definition.REQUIRED_LANES
    branches = definition.render_aws()["States"]["Lanes"]["Branches"]
    assert [branch["StartAt"] for branch in branches] == [
        "TranscodeAac", "TranscodeOpus", "TranscodeMp3", "Waveform", "Loudness", "Tags", "Embeddings", "Stems",
        "Lyrics",
    ]  # fmt: skip
    (chain,) = [branch["States"] for branch in branches if branch["StartAt"] == "Tags"]
    # Artwork renders the cover tags found, so it runs after Tags, and after a failed Tags too
    # (an uploaded image does not need the tags lane).
    assert chain["Tags"]["Next"] == "Artwork"
    assert chain["Tags"]["Catch"][0]["Next"] == "Artwork"
    assert chain["Artwork"]["Catch"][0]["Next"] == "ArtworkFailed"
    assert chain["Artwork"]["End"] is True
    assert chain["ArtworkFailed"] == {"Type": "Pass", "Result": {}, "ResultPath": None, "End": True}
    # Autotag compares the embedding, so it follows Embeddings (and reports no_embedding if that failed).
    (chain,) = [branch["States"] for branch in branches if branch["StartAt"] == "Embeddings"]
    assert chain["Embeddings"]["Next"] == chain["Embeddings"]["Catch"][0]["Next"] == "AutoTag"
    assert chain["AutoTag"]["End"] is True


def test_each_rendition_is_its_own_task_and_the_first_stored_makes_the_track_playable():
    branches = definition.render_aws()["States"]["Lanes"]["Branches"]
    for fmt in ("Aac", "Opus", "Mp3"):
        (states,) = [branch["States"] for branch in branches if branch["StartAt"] == f"Transcode{fmt}"]
        task = states[f"Transcode{fmt}"]
        assert task["Parameters"]["step"] == f"transcode_{fmt.lower()}"
        # The task marks the track playable itself: no status Task waits behind it.
        assert task["End"] is True
        # A failed rendition ends its branch quietly: the track is ready with the others, and
        # MarkReady fails it only when none was made.
        assert task["Catch"][0]["Next"] == f"Transcode{fmt}Failed"
        assert set(states) == {f"Transcode{fmt}", f"Transcode{fmt}Failed"}
        assert states[f"Transcode{fmt}Failed"]["Type"] == "Pass"
    assert definition.RENDITION_TASK_LANES == ("transcode_aac", "transcode_opus", "transcode_mp3")
    assert (*definition.RENDITION_TASK_LANES, "transcode") == definition.RENDITION_LANES


def test_the_workflow_makes_exactly_the_renditions_the_media_code_encodes():
    from functions.media.transcode import RENDITIONS

    assert tuple(spec.format for spec in RENDITIONS) == definition.RENDITION_FORMATS

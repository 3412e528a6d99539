"""The track-processing workflow, defined once.

``render_aws`` produces the ASL the CDK stack deploys (each Task invokes the processing Lambda);
``render_local`` produces the ASL the local stack runs on moto, where each Task is an SQS callback
served by ``local.runner``. Both come from ``WORKFLOW``, so there is one definition of the steps,
their order and their Retry/Catch semantics.

moto cannot retry a callback Task (every attempt reuses the first token), so the local rendering
leaves ``Retry`` out and the local runner applies the same policies (``retry_policies``) itself.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, Literal

# Errors a Lambda-backed Task may raise that are worth another attempt.
TRANSIENT_ERRORS = (
    "TransientStepError",
    "Lambda.ServiceException",
    "Lambda.AWSLambdaException",
    "Lambda.SdkClientException",
)
# "Not now": Lambda out of concurrency, or AWS throttling a step's calls past the SDK's own retries
# (functions.step_errors.ThrottledStepError). They last as long as a scaling ramp, so they get
# their own, more patient policy (THROTTLE_RETRY) instead of failing the track after 14 s.
THROTTLING_ERRORS = ("Lambda.TooManyRequestsException", "ThrottledStepError")

PROCESSING_FUNCTION_ARN = "${ProcessingFunctionArn}"


@dataclass(frozen=True)
class RetryPolicy:
    error_equals: tuple[str, ...] = TRANSIENT_ERRORS
    interval_seconds: int = 2
    max_attempts: int = 3
    backoff_rate: float = 2.0
    # Many executions throttled at once (a burst of uploads against a low Lambda concurrency quota)
    # would otherwise retry in lockstep and collide again: FULL jitter spreads each wait uniformly
    # over [0, backoff], and the cap keeps a long backoff from outliving the Task's timeout.
    max_delay_seconds: int = 30
    jitter_strategy: Literal["FULL", "NONE"] = "FULL"

    def to_asl(self) -> dict[str, Any]:
        return {
            "ErrorEquals": list(self.error_equals),
            "IntervalSeconds": self.interval_seconds,
            "MaxAttempts": self.max_attempts,
            "BackoffRate": self.backoff_rate,
            "MaxDelaySeconds": self.max_delay_seconds,
            "JitterStrategy": self.jitter_strategy,
        }

    def matches(self, error_name: str) -> bool:
        return "States.ALL" in self.error_equals or error_name in self.error_equals

    def backoff_before(self, attempt: int) -> float:
        """The computed backoff before retry number ``attempt`` (1-based), capped at MaxDelaySeconds."""
        return float(min(self.interval_seconds * self.backoff_rate ** (attempt - 1), self.max_delay_seconds))

    def delay_before(self, attempt: int) -> float:
        """Seconds to wait before retry number ``attempt`` (1-based), as Step Functions does: the
        capped backoff, or with FULL jitter a random delay between 0 and it."""
        backoff = self.backoff_before(attempt)
        return random.uniform(0.0, backoff) if self.jitter_strategy == "FULL" else backoff  # noqa: S311


# Twelve retries, full jitter, at most 30 s apart: up to about 4.5 minutes of waiting (half that on
# average) before a throttle fails a track. Step Functions tries the retriers in order and counts each one's
# attempts separately, so a throttled step keeps its TRANSIENT_ERRORS budget for real failures.
THROTTLE_RETRY = RetryPolicy(
    error_equals=THROTTLING_ERRORS, interval_seconds=2, max_attempts=12, backoff_rate=2.0, max_delay_seconds=30
)


@dataclass(frozen=True)
class Catch:
    next: str
    error_equals: tuple[str, ...] = ("States.ALL",)
    result_path: str = "$.failure"

    def to_asl(self) -> dict[str, Any]:
        return {"ErrorEquals": list(self.error_equals), "ResultPath": self.result_path, "Next": self.next}


TaskRenderer = Callable[["Task"], dict[str, Any]]


# Lambda memory sizes (and so CPU) of the processing functions, by the work a Task does.
MEMORY_ONE_VCPU = 1769
MEMORY_IMAGES = 1024
MEMORY_CALLS = 512


@dataclass(frozen=True)
class Task:
    """Runs one step handler (``functions.domain.processing.steps.STEPS[step]``). A Task that is a processing
    lane names it: its state shows in processing-status, and a failed required lane fails the track."""

    name: str
    step: str
    next: str | None = None
    result_path: str | None = None
    timeout_seconds: int = 900
    retry: tuple[RetryPolicy, ...] = (THROTTLE_RETRY, RetryPolicy())
    catch: tuple[Catch, ...] = ()
    lane: str | None = None
    required: bool = False
    # The memory of the Lambda function behind the Task on AWS, which also sets its CPU: 1,769 MB
    # is one full vCPU, what one ffmpeg decode or encode uses (each measured under 150 MB on a
    # 500 MB WAV, make bench). Image and vector work needs less; a status write or an HTTP call to
    # an external processor far less.
    memory_mb: int = MEMORY_ONE_VCPU
    # The step is given its own state machine's ARN (``stateMachineArn``, from the context object):
    # a verdict hands its run slot on by starting the next waiting upload there
    # (functions.domain.intake.run_queue), and the processing function has no setting naming the
    # state machine (that would make the state machine and its functions depend on each other).
    knows_state_machine: bool = False

    def parameters(self) -> dict[str, str]:
        """What a Task passes its step handler beside ``step``."""
        return {"input.$": "$", **({"stateMachineArn.$": "$$.StateMachine.Id"} if self.knows_state_machine else {})}

    def retry_budget_s(self) -> int:
        """The longest Step Functions lets this Task run, retries included: every attempt its own
        timeout and every retry its longest wait. The local runner retries inside one callback
        (``render_local``), so there the callback must be allowed all of it: with the timeout of one
        attempt, a step throttled past a minute (MarkReady's 60 s) timed out and failed its track
        where AWS would have retried it."""
        attempts = 1 + sum(policy.max_attempts for policy in self.retry)
        waits = sum(policy.backoff_before(n) for policy in self.retry for n in range(1, policy.max_attempts + 1))
        return int(attempts * self.timeout_seconds + waits)

    def to_asl(self, render_task: TaskRenderer, *, with_retry: bool) -> dict[str, Any]:
        # The renderer may set its own TimeoutSeconds (render_local: the retry budget).
        state: dict[str, Any] = {"Type": "Task", "TimeoutSeconds": self.timeout_seconds, **render_task(self)}
        state["ResultPath"] = self.result_path
        if with_retry and self.retry:
            state["Retry"] = [policy.to_asl() for policy in self.retry]
        if self.catch:
            state["Catch"] = [c.to_asl() for c in self.catch]
        state.update({"Next": self.next} if self.next else {"End": True})
        return state

    def tasks(self) -> Iterator[Task]:
        yield self


@dataclass(frozen=True)
class Pass:
    """Ends an optional lane's branch after its Catch: the lane has recorded why it failed."""

    name: str

    def to_asl(self, render_task: TaskRenderer, *, with_retry: bool) -> dict[str, Any]:
        return {"Type": "Pass", "Result": {}, "ResultPath": None, "End": True}

    def tasks(self) -> Iterator[Task]:
        return iter(())


@dataclass(frozen=True)
class Fail:
    name: str
    error: str
    cause: str

    def to_asl(self, render_task: TaskRenderer, *, with_retry: bool) -> dict[str, Any]:
        return {"Type": "Fail", "Error": self.error, "Cause": self.cause}

    def tasks(self) -> Iterator[Task]:
        return iter(())


@dataclass(frozen=True)
class Choice:
    """Routes on the execution input: ``choices`` are ASL Choice rules tested in order."""

    name: str
    choices: tuple[dict[str, Any], ...]
    default: str

    def to_asl(self, render_task: TaskRenderer, *, with_retry: bool) -> dict[str, Any]:
        return {"Type": "Choice", "Choices": [dict(rule) for rule in self.choices], "Default": self.default}

    def tasks(self) -> Iterator[Task]:
        return iter(())


@dataclass(frozen=True)
class Branch:
    start_at: str
    states: tuple[State, ...]

    def render(self, render_task: TaskRenderer, *, with_retry: bool) -> dict[str, Any]:
        return {
            "StartAt": self.start_at,
            "States": {s.name: s.to_asl(render_task, with_retry=with_retry) for s in self.states},
        }


@dataclass(frozen=True)
class Parallel:
    name: str
    branches: tuple[Branch, ...]
    next: str
    catch: tuple[Catch, ...] = ()

    def to_asl(self, render_task: TaskRenderer, *, with_retry: bool) -> dict[str, Any]:
        return {
            "Type": "Parallel",
            "Branches": [branch.render(render_task, with_retry=with_retry) for branch in self.branches],
            # Lanes record their outputs in DynamoDB; the execution state stays small.
            "ResultPath": None,
            "Catch": [c.to_asl() for c in self.catch],
            "Next": self.next,
        }

    def tasks(self) -> Iterator[Task]:
        for branch in self.branches:
            for state in branch.states:
                yield from state.tasks()


State = Task | Pass | Fail | Parallel | Choice


@dataclass(frozen=True)
class Workflow:
    comment: str
    start_at: str
    timeout_seconds: int
    states: tuple[State, ...] = field(default_factory=tuple)

    def tasks(self) -> Iterator[Task]:
        for state in self.states:
            yield from state.tasks()

    def lanes(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(task.lane for task in self.tasks() if task.lane))

    def required_lanes(self) -> frozenset[str]:
        return frozenset(task.lane for task in self.tasks() if task.lane and task.required)

    def render(self, render_task: TaskRenderer, *, with_retry: bool) -> dict[str, Any]:
        return {
            "Comment": self.comment,
            "StartAt": self.start_at,
            "TimeoutSeconds": self.timeout_seconds,
            "States": {s.name: s.to_asl(render_task, with_retry=with_retry) for s in self.states},
        }


_TO_FAILED = (Catch(next="MarkFailed"),)


# The streaming renditions, each made by its own task (functions.media.transcode.RENDITIONS has
# their encodings; a test holds the two lists together).
RENDITION_FORMATS = ("aac", "opus", "mp3")


def rendition_lane(fmt: str) -> str:
    return f"transcode_{fmt}"


def _rendition_lane(fmt: str) -> Branch:
    """One rendition, in its own branch (on AWS its own Lambda, with its own CPU). The task that
    stores the first rendition makes the track playable itself, in the same invocation
    (``verdict.mark_playable``; the later ones change nothing): a separate status Task would wait
    for a free worker locally and cost a state transition and an invocation on AWS. A rendition that
    fails is caught here: the track is ready with the renditions that exist, and MarkReady fails it
    only when there is none (``verdict.mark_ready``)."""
    name = f"Transcode{fmt.capitalize()}"
    return Branch(
        start_at=name,
        states=(
            Task(
                name,
                step=rendition_lane(fmt),
                lane=rendition_lane(fmt),
                timeout_seconds=900,
                catch=(Catch(next=f"{name}Failed"),),
            ),
            Pass(f"{name}Failed"),
        ),
    )


def _optional_lanes(*lanes: tuple[str, str, int, int]) -> Branch:
    """Optional lanes, ``(state name, step, timeout, memory MB)``, run one after another in one branch when a
    later one uses an earlier one's result (artwork renders the cover the tags lane found). Each
    lane's failure is caught inside the branch, the next lane still runs, and the track can still be
    ready."""
    states: list[State] = []
    last_name = lanes[-1][0]
    for position, (name, step, timeout_seconds, memory_mb) in enumerate(lanes):
        following = lanes[position + 1][0] if position + 1 < len(lanes) else None
        states.append(
            Task(
                name,
                step=step,
                lane=step,
                next=following,
                timeout_seconds=timeout_seconds,
                memory_mb=memory_mb,
                catch=(Catch(next=following or f"{last_name}Failed"),),
            )
        )
    states.append(Pass(f"{last_name}Failed"))
    return Branch(start_at=lanes[0][0], states=tuple(states))


# Input: {"uploadId", "trackId", "ownerId", "objectKey", "run"} (see functions.domain.intake.finalize).
# "run" says which part of the workflow the upload needs: "track" for an original (every lane,
# then the verdict), "artwork" for an uploaded image (the artwork lane alone, for that track) or
# "album_cover" (with "albumId"): one state machine, so one deployment, one IAM role and one local
# runner; the execution is named after the upload either way. Every input carries "run", so the
# Choice never reads a missing path (a runtime error in Step Functions' JSONPath evaluation, and
# an exception logged by moto's interpreter even under IsPresent). A new version of a track
# (functions.domain.intake.versions) runs the track's states with "version": <uploadId> added: the
# lanes store beside the live version, the first rendition leaves the track as it is, MarkReady swaps the version in and
# MarkFailed fails the version only.
TRACK_RUN = "track"
RUNS = (TRACK_RUN, "artwork", "album_cover")
WORKFLOW = Workflow(
    comment="tracklane: probe a finalized original, run its processing lanes, mark the track ready or failed",
    start_at="Route",
    timeout_seconds=2 * 3600,
    states=(
        Choice(
            "Route",
            choices=(
                {"Variable": "$.run", "StringEquals": TRACK_RUN, "Next": "Probe"},
                {"Variable": "$.run", "StringEquals": "artwork", "Next": "ArtworkOnly"},
                {"Variable": "$.run", "StringEquals": "album_cover", "Next": "AlbumCover"},
            ),
            default="UnknownRun",
        ),
        Task("Probe", step="probe", lane="probe", required=True, next="Lanes", result_path="$.probe", catch=_TO_FAILED),
        Parallel(
            "Lanes",
            branches=(
                *(_rendition_lane(fmt) for fmt in RENDITION_FORMATS),
                _optional_lanes(("Waveform", "waveform", 600, MEMORY_ONE_VCPU)),
                _optional_lanes(("Loudness", "loudness", 600, MEMORY_ONE_VCPU)),
                _optional_lanes(("Tags", "tags", 300, MEMORY_IMAGES), ("Artwork", "artwork", 300, MEMORY_IMAGES)),
                # Autotag compares the new track's embedding: it runs after it, in its branch.
                _optional_lanes(
                    ("Embeddings", "embeddings", 600, MEMORY_ONE_VCPU), ("AutoTag", "autotag", 120, MEMORY_IMAGES)
                ),
                _optional_lanes(("Stems", "stems", 600, MEMORY_CALLS)),
                _optional_lanes(("Lyrics", "lyrics", 600, MEMORY_CALLS)),
            ),
            next="MarkReady",
            catch=_TO_FAILED,
        ),
        Task(
            "MarkReady",
            step="mark_ready",
            knows_state_machine=True,
            result_path=None,
            timeout_seconds=60,
            memory_mb=MEMORY_CALLS,
            catch=_TO_FAILED,
        ),
        Task(
            "MarkFailed",
            step="mark_failed",
            knows_state_machine=True,
            next="ProcessingFailed",
            result_path=None,
            timeout_seconds=60,
            memory_mb=MEMORY_CALLS,
        ),
        Fail("ProcessingFailed", error="TrackProcessingFailed", cause="A required processing step failed."),
        # An uploaded image for a track that already has audio: the artwork lane alone. No verdict
        # follows, so the track's status never moves; a lane left open is closed by the Catch.
        Task(
            "ArtworkOnly",
            step="artwork_upload",
            result_path=None,
            timeout_seconds=300,
            memory_mb=MEMORY_IMAGES,
            catch=(Catch(next="ArtworkOnlyStopped"),),
        ),
        Task(
            "ArtworkOnlyStopped", step="artwork_stopped", result_path=None, timeout_seconds=60, memory_mb=MEMORY_CALLS
        ),
        Task(
            "AlbumCover",
            step="album_cover",
            result_path=None,
            timeout_seconds=300,
            memory_mb=MEMORY_IMAGES,
            catch=(Catch(next="CoverFailed"),),
        ),
        Fail("CoverFailed", error="AlbumCoverFailed", cause="The album cover could not be rendered."),
        Fail("UnknownRun", error="UnknownRun", cause="The execution input names no known run."),
    ),
)
LANES = WORKFLOW.lanes()
REQUIRED_LANES = WORKFLOW.required_lanes()
# The lanes of today's rendition tasks, one per format.
RENDITION_TASK_LANES = tuple(rendition_lane(fmt) for fmt in RENDITION_FORMATS)
# A track is ready once its required lanes succeeded and at least one of these did. "transcode" is
# the one task that made all three before each rendition had its own (executions started then).
RENDITION_LANES = (*RENDITION_TASK_LANES, "transcode")


def render_aws(function_arn: str = PROCESSING_FUNCTION_ARN) -> dict[str, Any]:
    """ASL for AWS: each Task invokes the processing Lambda with ``{step, input}``."""

    def lambda_task(task: Task) -> dict[str, Any]:
        return {"Resource": function_arn, "Parameters": {"step": task.step, **task.parameters()}}

    return WORKFLOW.render(lambda_task, with_retry=True)


def render_local(task_queue_url: str) -> dict[str, Any]:
    """ASL for the local stack: each Task is an SQS callback the local runner answers."""

    def callback_task(task: Task) -> dict[str, Any]:
        return {
            "Resource": "arn:aws:states:::sqs:sendMessage.waitForTaskToken",
            "Parameters": {
                "QueueUrl": task_queue_url,
                "MessageBody": {"step": task.step, **task.parameters(), "taskToken.$": "$$.Task.Token"},
            },
            # The runner retries inside the callback, as Step Functions would around it.
            "TimeoutSeconds": task.retry_budget_s(),
        }

    return WORKFLOW.render(callback_task, with_retry=False)


def retry_policies() -> dict[str, tuple[RetryPolicy, ...]]:
    """Each step's Retry policies, for the local runner to apply as Step Functions would."""
    return {task.step: task.retry for task in WORKFLOW.tasks()}

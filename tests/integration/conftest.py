"""Integration tests run against a real moto server (in-process thread, 127.0.0.1), provisioned by
the same code as the local stack, so tables, bucket notification and state machine match."""

from __future__ import annotations

import dataclasses
import functools
import itertools
import json
import os
import ssl
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient
from moto.server import ThreadedMotoServer

from functions import clients
from functions.api.app import create_app
from functions.api.auth import Principal
from functions.domain import rate_limits
from functions.domain.catalog import artists
from local.config import free_port
from local.moto_patches import patch_moto
from local.provision import LocalResources, empty, provision, provision_workflow
from local.provision import client as local_client
from local.pump import S3EventPump
from local.runner import WorkflowRunner


@pytest.fixture(scope="session")
def moto_endpoint() -> Iterator[str]:
    port = free_port()
    # moto's Step Functions interpreter calls its own SQS/DynamoDB at localhost:$MOTO_PORT.
    os.environ["MOTO_PORT"] = str(port)
    patch_moto()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    yield f"http://127.0.0.1:{port}"
    server.stop()


class HeaderAuthenticator:
    """'Authorization: Test <user>' authenticates as <user>."""

    def authenticate(self, request: Any) -> Principal | None:
        scheme, _, user = request.headers.get("authorization", "").partition(" ")
        return Principal(user) if scheme == "Test" and user else None


# httpx reads the CA bundle into a new TLS context on every call, even for http://; one will do.
_TLS = ssl.create_default_context()


def as_user(user: str) -> dict[str, str]:
    return {"Authorization": f"Test {user}"}


def error_of(response: Any) -> tuple[int, str]:
    """An error answer's status and its stable code."""
    return response.status_code, response.json()["error"]["code"]


@dataclass
class Stack:
    resources: LocalResources
    api: TestClient
    s3: Any
    sqs: Any
    sfn: Any
    pump: S3EventPump

    def put(self, signed_url: str, path: Path, *, content_type: str, body: bytes | None = None) -> int:
        """PUT like a client does with the signed URL (straight to storage, not through the API)."""
        data = path.read_bytes() if body is None else body
        response = httpx.put(signed_url, content=data, headers={"content-type": content_type}, verify=_TLS)
        return response.status_code

    def executions(self) -> list[dict[str, Any]]:
        return list(self.sfn.list_executions(stateMachineArn=self.resources.state_machine_arn)["executions"])

    def drain_s3_events(self) -> None:
        """Feed every pending S3 event to the finalize handler, as the Lambda poller would."""
        while self.pump.poll_once():
            pass

    def create_upload(self, user: str, path: Path, *, content_type: str = "audio/wav", **extra: Any) -> dict[str, Any]:
        body = {"fileName": path.name, "contentType": content_type, "byteSize": path.stat().st_size, **extra}
        response = self.api.post("/v1/uploads", json=body, headers=as_user(user))
        assert response.status_code == 201, response.text
        return dict(response.json())


@pytest.fixture(scope="session")
def provisioned(moto_endpoint: str) -> LocalResources:
    """Tables, bucket and notification, queues and event bus, made once per moto server (each xdist
    worker has its own); ``stack`` gives every test a clean store and a workflow of its own."""
    return provision(moto_endpoint)


@functools.cache
def _harness_client(service: str, endpoint: str) -> Any:
    """The tests' own clients (not the app's), made once per worker: making one costs as much CPU as
    a dozen calls, and no test changes them."""
    return local_client(service, endpoint)


_workflows = itertools.count(1)
# Workflows (a state machine and its task queue) on which no execution was left running: nothing can
# post to their queue any more, so a later test takes one over rather than making another (moto
# parses a definition in about 50 ms).
_idle_workflows: list[tuple[str, str]] = []


@pytest.fixture
def stack(moto_endpoint: str, provisioned: LocalResources, monkeypatch: pytest.MonkeyPatch) -> Iterator[Stack]:
    # Every test starts from nothing: no item, stream record, object, queued message or execution.
    empty(provisioned.settings.region)
    # A state machine and task queue of the test's own: an execution another test left waiting on a
    # callback can never hand this test's runner a task, and executions() lists this test's only.
    if _idle_workflows:
        tasks_url, state_machine_arn = _idle_workflows.pop()
    else:
        tasks_url, state_machine_arn = provision_workflow(moto_endpoint, suffix=f"-{next(_workflows)}")
    resources = dataclasses.replace(
        provisioned,
        tasks_queue_url=tasks_url,
        state_machine_arn=state_machine_arn,
        settings=provisioned.settings.model_copy(update={"state_machine_arn": state_machine_arn}),
    )
    for name, value in resources.environment().items():
        monkeypatch.setenv(name, value)
    clients.reset()
    rate_limits.forget()  # this process's view of buckets the emptied tables no longer hold

    sqs, sfn = _harness_client("sqs", moto_endpoint), _harness_client("stepfunctions", moto_endpoint)
    pump = S3EventPump(sqs, resources.s3_events_queue_url, resources.s3_events_queue_arn, "us-east-1", wait_s=0)
    yield Stack(
        resources=resources,
        api=TestClient(create_app(HeaderAuthenticator()), raise_server_exceptions=False),
        s3=_harness_client("s3", moto_endpoint),
        sqs=sqs,
        sfn=sfn,
        pump=pump,
    )
    clients.reset()
    if sfn.list_executions(stateMachineArn=state_machine_arn, statusFilter="RUNNING")["executions"]:
        # Waiting on a callback no runner answered, it may post a task when the callback times out.
        sfn.delete_state_machine(stateMachineArn=state_machine_arn)
        sqs.delete_queue(QueueUrl=tasks_url)
    else:
        _idle_workflows.append((tasks_url, state_machine_arn))


def _running(worker: WorkflowRunner, stack: Stack) -> Iterator[WorkflowRunner]:
    worker.start()
    yield worker
    worker.stop()
    # Ends the long poll the runner may be in now rather than after its wait: the stopped runner
    # leaves this message on the queue (which goes with the test's workflow) and returns.
    stack.sqs.send_message(QueueUrl=stack.resources.tasks_queue_url, MessageBody="{}")
    worker.join(timeout=5)
    # Lanes of a workflow that failed early (a required lane) keep running in the pool; they must
    # end before the stack they write to is torn down.
    worker.wait_for_running_tasks()


@pytest.fixture
def runner(stack: Stack) -> Iterator[WorkflowRunner]:
    """The local workflow runner, answering the state machine's task callbacks."""
    yield from _running(
        WorkflowRunner(stack.sqs, stack.sfn, stack.resources.tasks_queue_url, workers=2, wait_s=1), stack
    )


@pytest.fixture
def fast_runner(stack: Stack) -> Iterator[WorkflowRunner]:
    """The same runner and retry sequence as Step Functions, without the 2 s/4 s/8 s waits."""
    yield from _running(
        WorkflowRunner(stack.sqs, stack.sfn, stack.resources.tasks_queue_url, wait_s=1, retry_delay_scale=0), stack
    )


@pytest.fixture
def artist(stack: Stack) -> str:
    artists.upsert("alice", handle="alice", display_name="Alice")
    return "alice"


def decode(response: httpx.Response) -> dict[str, Any]:
    return dict(json.loads(response.text))


@pytest.fixture
def distinct_wav(wav_3s: Path, tmp_path: Path) -> Callable[[], Path]:
    """Copies of the 3 s WAV that differ in their last samples: the same owner uploading the same
    bytes twice gets a duplicate (functions.domain.intake.duplicates), so tests needing several tracks
    upload distinct files."""
    made = iter(range(1, 1 << 30))

    def copy() -> Path:
        n = next(made)
        data = wav_3s.read_bytes()
        path = tmp_path / f"distinct-{n}.wav"
        path.write_bytes(data[:-4] + n.to_bytes(4, "little"))
        return path

    return copy

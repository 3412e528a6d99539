"""``make run``: the whole system on this machine, in the foreground.

moto server (S3, DynamoDB, SQS, Step Functions, EventBridge) on 127.0.0.1, resources provisioned
from the shared definitions, the S3-event pump, the workflow runner, and the FastAPI app under
uvicorn, and the sweeper on a short interval. Ctrl-C stops everything.
"""

from __future__ import annotations

import logging
import os
import signal
import sys
from typing import Any, NoReturn

import uvicorn
from moto.server import ThreadedMotoServer

from functions import clients
from functions.api.app import create_app
from functions.api.auth import IssuerAuthenticator
from functions.data.models import shared_connection
from functions.media import ffmpeg
from functions.observability import logger
from local import pending_uploads
from local import provision as provisioning
from local.config import LocalSettings, local_settings
from local.cors import with_cors
from local.devauth import DevKeys
from local.faults import ThrottlePlan, Throttler
from local.lambda_context import InvocationLogContext
from local.moto_patches import patch_moto
from local.persistence import LocalStore, RestoreReport, StoreUnusable
from local.provision import LocalResources, provision
from local.pump import S3EventPump
from local.runner import WorkflowRunner
from local.running_stack import RunningStack, announce, withdraw
from local.streams import StreamPump, streamed_tables
from local.sweeper import SweeperSchedule
from local.web import with_upload_page

logging.getLogger("werkzeug").setLevel(logging.WARNING)

_FAKE_CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SESSION_TOKEN": "testing",
}


class LocalStack:
    def __init__(self, config: LocalSettings) -> None:
        self.config = config
        self.moto = ThreadedMotoServer(ip_address=config.host, port=config.moto_port, verbose=False)
        self.resources: LocalResources | None = None
        self.pump: S3EventPump | None = None
        self.runner: WorkflowRunner | None = None
        self.sweeper: SweeperSchedule | None = None
        self.stream_pump: StreamPump | None = None
        self.store: LocalStore | None = None
        self.restored: RestoreReport | None = None
        # Pending uploads whose put event a restart lost, raised again at start.
        self.redelivered: list[str] = []
        # Executions running at the last stop, started again at start (LocalStore.resume_executions).
        self.resumed: list[str] = []

    def start_backend(self, *, fresh: bool = False) -> LocalResources:
        """Raises StoreUnusable, before anything starts, when the data directory cannot be used."""
        if self.config.store_dir is not None:
            # Read and checked whole before moto starts: a damaged store stops the start, untouched.
            self.store = LocalStore.open(
                self.config.store_dir,
                self.config.region,
                fresh=fresh,
                snapshot_interval_s=self.config.snapshot_interval_s,
            )
        for name, value in {
            **_FAKE_CREDENTIALS,
            "AWS_REGION": self.config.region,
            "AWS_DEFAULT_REGION": self.config.region,
        }.items():
            os.environ.setdefault(name, value)
        # moto's Step Functions interpreter calls its own services at localhost:$MOTO_PORT.
        os.environ["MOTO_PORT"] = str(self.config.moto_port)
        # uvicorn can stream: the progress route streams until the upload settles (functions.settings).
        os.environ.setdefault("TRACKLANE_PROGRESS_STREAM", "true")
        patch_moto()
        self.moto.start()
        resources = provision(self.config.moto_endpoint, self.config.region, cors_origins=self.config.cors_origins)
        os.environ.update(resources.environment())
        # The API trusts this stack's own issuer, through the same verification code as on AWS.
        os.environ.update(DevKeys(self.config.dev_key_file).ensure().environment())
        clients.reset()
        if self.store is not None:
            self.restored = self.store.restore()
            self.store.attach()
        sqs = self._client("sqs")
        self.pump = S3EventPump(
            sqs,
            resources.s3_events_queue_url,
            resources.s3_events_queue_arn,
            self.config.region,
            self.config.pump_wait_s,
        )
        throttler = None
        plan = ThrottlePlan.parse(self.config.throttle)
        if plan.active:
            throttler = Throttler(plan).install(shared_connection().client, clients.dynamodb())
            logger.warning("throttling AWS calls on purpose (TRACKLANE_LOCAL_THROTTLE)", extra={"plan": str(plan)})
        self.runner = WorkflowRunner(
            sqs,
            self._client("stepfunctions"),
            resources.tasks_queue_url,
            workers=self.config.runner_workers,
            wait_s=self.config.runner_wait_s,
            throttler=throttler,
        )
        # Executions and queued messages do not survive a restart (moto cannot restore them): the
        # executions recorded running at the stop start again under their names with their inputs;
        # a first sweep at once finds every track left processing whose execution the record missed
        # (a kill -9) and starts it again under the same name; and every upload whose put event was
        # lost gets it again (local.pending_uploads).
        if self.store is not None:
            self.resumed = self.store.resume_executions()
            if self.resumed:
                logger.warning("workflow executions started again after a restart", extra={"names": self.resumed})
        resumes = self.restored is not None and self.restored.items > 0
        if resumes:
            self.redelivered = pending_uploads.redeliver(resources.bucket)
            if self.redelivered:
                logger.warning("upload events raised again after a restart", extra={"upload_ids": self.redelivered})
        self.sweeper = SweeperSchedule(self.config.sweep_interval_s, sweep_at_start=resumes)
        self.stream_pump = StreamPump(
            self._client("dynamodb"),
            self._client("dynamodbstreams"),
            streamed_tables(resources.settings),
        )
        self.pump.start()
        self.runner.start()
        self.sweeper.start()
        self.stream_pump.start()
        self.resources = resources
        return resources

    def _client(self, service: str) -> Any:
        return provisioning.client(service, self.config.moto_endpoint, self.config.region)

    def health_checks(self) -> dict[str, Any]:
        def storage() -> bool:
            assert self.resources is not None
            self._client("s3").head_bucket(Bucket=self.resources.bucket)
            return True

        return {
            "storage": storage,
            "s3EventPump": lambda: self.pump is not None and self.pump.is_alive(),
            "workflowRunner": lambda: self.runner is not None and self.runner.is_alive(),
            "sweeper": lambda: self.sweeper is not None and self.sweeper.is_alive(),
            "domainEventPump": lambda: self.stream_pump is not None and self.stream_pump.is_alive(),
        }

    def stop(self) -> None:
        workers = (self.pump, self.runner, self.sweeper, self.stream_pump)
        for worker in workers:
            if worker is not None:
                worker.stop()
        # Lanes in flight end now rather than after their encodes (Ctrl-C took 20 s mid-upload),
        # and record that while moto still answers: a call to a stopped moto is retried by the
        # SDK for up to a minute (sdk_max_attempts).
        ffmpeg.stop_all()
        if self.runner is not None:
            self.runner.wait_for_running_tasks(timeout_s=STOP_TIMEOUT_S)
        for worker in workers:
            if worker is not None:
                worker.join(timeout=STOP_TIMEOUT_S)
        if self.store is not None:
            self.store.close()
        self.moto.stop()


GRACEFUL_SHUTDOWN_S = 3
# How long stopping waits for a worker thread (each) or the runner's steps in flight.
STOP_TIMEOUT_S = 5


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def _store_line(stack: LocalStack) -> str:
    if stack.store is None:
        return "in memory (nothing is kept at stop)"
    restored = stack.restored
    kept = ""
    if restored is not None and (restored.items or restored.objects):
        kept = (
            f" ({restored.items} items, {restored.objects} objects of {restored.object_bytes / 1e6:.1f} MB "
            f"restored in {restored.seconds:.2f} s)"
        )
    if stack.resumed:
        kept += f" ({len(stack.resumed)} interrupted runs started again)"
    return f"{stack.store.root}{kept}"


def main(*, fresh: bool = False) -> int:
    config = local_settings()
    stack = LocalStack(config)
    try:
        resources = stack.start_backend(fresh=fresh)
    except StoreUnusable as unusable:
        print(
            f"tracklane run: the local store cannot be used: {unusable}.\nNothing was changed. Move the "
            "data directory away (or repair it) and start again, or start empty with `tracklane run --fresh` "
            "(`make run FRESH=1`), which deletes it.",
            file=sys.stderr,
            flush=True,
        )
        return 1
    app = with_cors(
        InvocationLogContext(
            create_app(IssuerAuthenticator(), health_checks=stack.health_checks()),
            function_name="tracklane-api",
        ),
        config.cors_origins,
    )
    app = with_upload_page(app, DevKeys(config.dev_key_file))
    # A page left open keeps its progress stream (EventSource reconnects): Ctrl-C gives open
    # requests a few seconds, then closes them, instead of waiting for every tab to go away.
    server = uvicorn.Server(
        uvicorn.Config(
            app,
            host=config.host,
            port=config.port,
            log_level="info",
            lifespan="off",
            timeout_graceful_shutdown=GRACEFUL_SHUTDOWN_S,
        )
    )
    print(
        f"tracklane local stack\n  API:   {config.api_url}  (docs: {config.api_url}/docs)\n"
        f"  moto:  {config.moto_endpoint}\n  state machine: {resources.state_machine_arn}\n"
        f"  data:  {_store_line(stack)}\n"
        f"  token: .venv/bin/tracklane token --user alice\n  Ctrl-C stops everything.",
        flush=True,
    )
    # uvicorn shuts down gracefully on SIGINT/SIGTERM and then re-raises the signal; both end up
    # as KeyboardInterrupt here, which is the normal way to stop the local stack.
    signal.signal(signal.SIGTERM, _interrupt)
    announced = RunningStack(
        moto_endpoint=config.moto_endpoint, api_url=config.api_url, region=config.region, pid=os.getpid()
    )
    try:
        announce(config.stack_state_file, announced)
        server.run()
    except KeyboardInterrupt:
        pass
    finally:
        withdraw(config.stack_state_file, announced)
        stack.stop()
        print("tracklane local stack stopped", flush=True)
    return 0


def run(*, fresh: bool = False) -> NoReturn:
    """``make run`` and ``python -m local.stack``: serves until Ctrl-C, then exits at once. Once
    everything is stopped, a thread still busy (a step's AWS call to the stopped moto, which the
    SDK retries) must not hold the exit for a minute, as the interpreter's join would. ``fresh``
    deletes the data directory's store first."""
    code = main(fresh=fresh)
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


if __name__ == "__main__":
    run(fresh="--fresh" in sys.argv[1:])

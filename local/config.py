"""Settings of the local stack (not deployed). Read once, like ``functions.settings``."""

from __future__ import annotations

import json
import os
import socket
from functools import cache
from pathlib import Path

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

CHECKOUT = Path(__file__).resolve().parents[1]


def deployed_cors_origins() -> tuple[str, ...]:
    """The ``corsOrigins`` a ``cdk deploy`` from this checkout would use (cdk.json's context), so the
    local API and bucket admit the same origins as the deployment."""
    try:
        context = json.loads((CHECKOUT / "cdk.json").read_text()).get("context", {})
    except (OSError, ValueError):
        return ("*",)
    origins = context.get("corsOrigins") or ["*"]
    return tuple(origins) if isinstance(origins, list) else tuple(str(origins).split(","))


class LocalSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="", extra="ignore")

    host: str = Field(
        default="127.0.0.1",
        validation_alias="TRACKLANE_LOCAL_HOST",
        description="The address the API and moto listen on.",
    )
    port: int = Field(default=8000, validation_alias="PORT", description="The API's port.")
    moto_port: int = Field(
        default=5005,
        validation_alias="MOTO_PORT",
        description="moto's port. Set, it also tells `tracklane` commands where the stack is (over the state file).",
    )
    dev_key_file: Path = Field(
        default=CHECKOUT / ".tracklane" / "dev-signing-key.pem",
        validation_alias="TRACKLANE_DEV_KEY_FILE",
        description=(
            "The local issuer's RSA signing key (created on first use, owner-readable only; its public "
            "JWKS is written beside it). `tracklane token` signs with it and the local API verifies "
            "with the deployed code path. The deployed API never accepts these tokens."
        ),
    )
    region: str = Field(
        default="us-east-1",
        validation_alias="AWS_REGION",
        description="The region the local stack provisions its resources in on moto.",
    )
    # Poll intervals: short, so the local stack feels immediate.
    pump_wait_s: int = Field(default=1, description="Long-poll wait of the S3-event pump, in seconds.")
    runner_wait_s: int = Field(default=1, description="Long-poll wait of the workflow runner, in seconds.")
    runner_workers: int = Field(default=4, description="Workflow steps the runner executes at once.")
    sweep_interval_s: float = Field(
        default=60.0,
        validation_alias="TRACKLANE_LOCAL_SWEEP_INTERVAL_S",
        description="How often the local sweeper runs (the deployed schedule is every 15 minutes).",
    )
    throttle: str = Field(
        default="",
        validation_alias="TRACKLANE_LOCAL_THROTTLE",
        description=(
            "Test only: make AWS throttle a share of calls, e.g. `dynamodb=0.25,lambda=0.25` "
            "(DynamoDB requests answered as over their throughput, workflow Tasks failed as a Lambda "
            "out of concurrency; `local/faults.py`). Empty: nothing is throttled."
        ),
    )
    cors_origins: tuple[str, ...] = Field(
        default_factory=deployed_cors_origins,
        validation_alias="TRACKLANE_CORS_ORIGINS",
        description=(
            "Origins a browser page may call the local API and bucket from (a JSON list). Defaults to "
            "cdk.json's `corsOrigins` context, the origins a deployment from this checkout admits."
        ),
    )
    stack_state_file: Path = Field(
        default=CHECKOUT / ".tracklane" / "stack.json",
        validation_alias="TRACKLANE_STACK_STATE_FILE",
        description=(
            "Where a running stack writes its addresses for the CLI (`local/running_stack.py`). In the "
            "checkout, so every terminal working in it finds the stack whichever ports it was started on."
        ),
    )

    data_dir: Path | None = Field(
        default=CHECKOUT / ".tracklane" / "data",
        validation_alias="TRACKLANE_DATA_DIR",
        description=(
            "Where the local stack keeps its tables and objects across restarts (`local/persistence.py`, "
            "[what is kept](local-stack.md#what-survives-a-restart)); `make run DATA_DIR=…`. Empty: "
            "everything in memory, gone at stop. Under pytest, unless set, nothing is kept."
        ),
    )
    snapshot_interval_s: float = Field(
        default=2.0,
        gt=0,
        validation_alias="TRACKLANE_LOCAL_SNAPSHOT_INTERVAL_S",
        description=(
            "How often the tables are written whole to the data directory when they changed (and at "
            "stop); the writes between two snapshots are journaled as they are made, and the journal "
            "they replace is removed. A machine crash loses at most this long of table writes."
        ),
    )

    @field_validator("data_dir", mode="before")
    @classmethod
    def _empty_is_memory(cls, value: object) -> object:
        return None if isinstance(value, str) and not value.strip() else value

    @property
    def store_dir(self) -> Path | None:
        """The data directory this run persists into: none when unset under pytest, so a test never
        writes into the checkout's store unless it names a directory of its own."""
        if "data_dir" not in self.model_fields_set and "PYTEST_CURRENT_TEST" in os.environ:
            return None
        return self.data_dir

    @property
    def moto_endpoint(self) -> str:
        return f"http://{self.host}:{self.moto_port}"

    @property
    def api_url(self) -> str:
        return f"http://{self.host}:{self.port}"


@cache
def local_settings() -> LocalSettings:
    return LocalSettings()


def free_port() -> int:
    """A port nothing listens on now, for a stack started beside another (tests, benchmarks)."""
    with socket.socket() as probe_socket:
        probe_socket.bind(("127.0.0.1", 0))
        return int(probe_socket.getsockname()[1])

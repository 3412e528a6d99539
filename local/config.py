"""Settings of the local stack (not deployed). Read once, like ``functions.settings``."""

from __future__ import annotations

import socket
from functools import cache
from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

CHECKOUT = Path(__file__).resolve().parents[1]


class LocalSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="", extra="ignore")

    host: str = Field(default="127.0.0.1", validation_alias="TRACKLANE_LOCAL_HOST")
    port: int = Field(default=8000, validation_alias="PORT")
    moto_port: int = Field(default=5005, validation_alias="MOTO_PORT")
    # Dev-only HS256 secret for local bearer tokens. The deployed API never accepts these.
    dev_secret: str = Field(
        default="tracklane-local-dev-secret-not-for-production", validation_alias="TRACKLANE_DEV_SECRET"
    )
    region: str = Field(default="us-east-1", validation_alias="AWS_REGION")
    # Poll intervals: short, so the local stack feels immediate.
    pump_wait_s: int = 1
    runner_wait_s: int = 1
    runner_workers: int = 4
    # How often the local sweeper runs (the deployed schedule is every 15 minutes).
    sweep_interval_s: float = Field(default=60.0, validation_alias="TRACKLANE_LOCAL_SWEEP_INTERVAL_S")
    # Where a running stack writes its addresses for the CLI (local.running_stack). In the checkout,
    # so every terminal working in it finds the stack whichever ports it was started on.
    stack_state_file: Path = Field(
        default=CHECKOUT / ".tracklane" / "stack.json", validation_alias="TRACKLANE_STACK_STATE_FILE"
    )

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

"""``tracklane`` run as a developer runs it, for the tests of every layer that drive the CLI."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def run_cli(*args: str, state_file: Path) -> subprocess.CompletedProcess[str]:
    """The command as a developer runs it: a new process, from the checkout, with nothing of this
    test process's configuration (no MOTO_PORT, no TRACKLANE_* settings) but the state file's path."""
    environment = {
        name: value for name, value in os.environ.items() if name != "MOTO_PORT" and not name.startswith("TRACKLANE_")
    }
    environment["TRACKLANE_STACK_STATE_FILE"] = str(state_file)
    return subprocess.run(
        [sys.executable, "-m", "local.cli", *args],
        cwd=ROOT,
        env=environment,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )

"""Cold start: each Lambda handler's import against its bare dependency set, measured in one run.

Each measurement is a whole fresh process, ``python -c "import ..."``, timed from spawn to exit:
interpreter start included, as Lambda's init pays it. Handler and bare processes alternate, one
round after another (a round times every handler and every bare set once, the order flipping each
round), so a burst of load on the machine lands on both sides; the medians of ``runs`` rounds are
compared. One unmeasured round first puts every file in the page cache and writes missing bytecode.

The processes get a Lambda-like environment (``lambda_environment``): ``LAMBDA_TASK_ROOT`` set,
``POWERTOOLS_TRACE_DISABLED`` unset, i.e. tracing on, as the deployed stack runs every function
(``tracing=ACTIVE``); fake credentials and no shared AWS config, so nothing can reach AWS (importing a
handler must not touch the network or read settings anyway).

Bare dependency sets: what a handler of that kind needs loaded to serve any one invocation at all,
so the ratio is the price of this project's own code and of whatever it loads beyond that.

- every handler: ``boto3``, ``pynamodb.models`` (every handler reads or writes a table through
  pynamodb), powertools' ``Logger`` and ``pydantic_settings`` (``functions.settings``: the one
  source of configuration, read by the first AWS client of every invocation).
- api: plus ``fastapi`` and ``mangum`` (the app and its adapter).
- finalize: plus powertools' ``BatchProcessor`` and the S3/SQS event data classes it parses every
  record with.
- domain_events: plus ``BatchProcessor`` and the DynamoDB-stream record class.
- sweeper: plus powertools' ``Metrics`` (every run publishes two metrics).
- workflow_step: nothing more: numpy, Pillow and mutagen each serve only some steps, ffmpeg is a
  subprocess.

Not in any bare set, because only some invocations need them: the X-Ray SDK (tracing off: never;
tracing on: built on the first invocation, ``functions.observability.LazyTracer``), PyJWT and
cryptography (only requests that carry a bearer token), numpy, Pillow, mutagen, httpx.

Where the cost went (the import is what is measured, and not all of it is gone):
- tracing: with tracing on, a handler's first invocation builds the powertools Tracer (the X-Ray
  SDK import, its recorder with two botocore X-Ray clients, ``patch_all``). The same cost as before,
  moved from the import to the first invocation, which on AWS is part of the same cold start; the
  report prints it on its own line (the API's bare set + building the Tracer, against the bare set).
  With tracing off it is gone.
- API routers: the first request under a router's prefixes builds that router and imports the
  domain code behind it (``functions.api.app``): a cold start pays for the routers its request
  needs, not for all nine. A request for ``/openapi.json`` builds them all.
- processing: a lane that needs numpy, Pillow or mutagen imports it when it runs; the other steps
  never do.

``--source-only``: every module compiled from source in every process (an empty bytecode cache
prefix), as on Lambda, where neither the code asset nor the layers ship ``__pycache__`` and neither
is writable. The default measures with bytecode, as the targets were set.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TextIO

ROOT = Path(__file__).resolve().parent.parent
RUNS = 7
API_TARGET = 1.15
OTHER_TARGET = 1.2

_COMMON = "import boto3, pynamodb.models, pydantic_settings; from aws_lambda_powertools import Logger"
_BATCH = "from aws_lambda_powertools.utilities.batch import BatchProcessor, process_partial_response"


@dataclass(frozen=True)
class Subject:
    name: str
    module: str
    bare: str  # the Python statement that imports the bare dependency set
    target: float


SUBJECTS = (
    Subject("api", "functions.handlers.api", f"import fastapi, mangum; {_COMMON}", API_TARGET),
    Subject(
        "finalize",
        "functions.handlers.finalize_on_put",
        f"{_COMMON}; {_BATCH}; from aws_lambda_powertools.utilities.data_classes import S3Event, SQSEvent",
        OTHER_TARGET,
    ),
    Subject("workflow_step", "functions.handlers.workflow_step", _COMMON, OTHER_TARGET),
    Subject(
        "domain_events",
        "functions.handlers.domain_events",
        f"{_COMMON}; {_BATCH}; from aws_lambda_powertools.utilities.data_classes import DynamoDBStreamEvent",
        OTHER_TARGET,
    ),
    Subject(
        "sweeper", "functions.handlers.sweeper", f"{_COMMON}; from aws_lambda_powertools import Metrics", OTHER_TARGET
    ),
)
# Informational: what the first invocation adds when tracing is on (the API's bare set + the Tracer).
TRACER = "from aws_lambda_powertools import Tracer; Tracer(service='tracklane')"


@dataclass
class ColdStartRow:
    name: str
    module: str
    target: float
    handler_s: list[float] = field(default_factory=list)
    bare_s: list[float] = field(default_factory=list)

    @property
    def handler_median(self) -> float:
        return statistics.median(self.handler_s)

    @property
    def bare_median(self) -> float:
        return statistics.median(self.bare_s)

    @property
    def ratio(self) -> float:
        return self.handler_median / self.bare_median

    @property
    def passed(self) -> bool:
        return self.ratio <= self.target


def lambda_environment(root: Path = ROOT) -> dict[str, str]:
    """What a handler process sees on Lambda, less what it never reads at import: tracing on, fake
    credentials, no shared AWS config, the code root first on the path."""
    return {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "LANG": "C.UTF-8",
        "PYTHONPATH": str(root),
        "LAMBDA_TASK_ROOT": str(root),
        "AWS_EXECUTION_ENV": "AWS_Lambda_python3.11",
        "AWS_LAMBDA_FUNCTION_NAME": "tracklane-cold-start",
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "1024",
        "AWS_REGION": "us-east-1",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_ACCESS_KEY_ID": "cold-start",
        "AWS_SECRET_ACCESS_KEY": "cold-start",
        "AWS_SESSION_TOKEN": "cold-start",
        "AWS_CONFIG_FILE": "/dev/null",
        "AWS_SHARED_CREDENTIALS_FILE": "/dev/null",
        "AWS_EC2_METADATA_DISABLED": "true",
        "POWERTOOLS_SERVICE_NAME": "tracklane",
    }


def _process_seconds(code: str, environment: dict[str, str], root: Path) -> float:
    start = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=root, env=environment, capture_output=True, text=True, check=False
    )
    elapsed = time.perf_counter() - start
    if done.returncode != 0:
        raise RuntimeError(f"python -c {code!r} exited {done.returncode}:\n{done.stderr[-3000:]}")
    return elapsed


@contextmanager
def _bytecode(source_only: bool, environment: dict[str, str]) -> Iterator[dict[str, str]]:
    if not source_only:
        yield environment
        return
    with tempfile.TemporaryDirectory(prefix="tracklane-no-pyc-") as empty:
        yield {**environment, "PYTHONPYCACHEPREFIX": empty, "PYTHONDONTWRITEBYTECODE": "1"}


def measure(
    runs: int = RUNS, *, root: Path = ROOT, source_only: bool = False, only: tuple[str, ...] = ()
) -> tuple[list[ColdStartRow], ColdStartRow]:
    """One row per handler (those named in ``only``, or all), and the tracer row (the API's bare
    set with and without the Tracer)."""
    subjects = [subject for subject in SUBJECTS if not only or subject.name in only]
    rows = [ColdStartRow(subject.name, subject.module, subject.target) for subject in subjects]
    api_bare = SUBJECTS[0].bare
    tracer = ColdStartRow("tracer (first call, tracing on)", "aws_lambda_powertools.Tracer", 0.0)
    with _bytecode(source_only, lambda_environment(root)) as environment:
        for round_ in range(runs + 1):
            pairs: list[tuple[ColdStartRow, str, str]] = [
                (row, f"import {subject.module}", subject.bare) for row, subject in zip(rows, subjects, strict=True)
            ]
            pairs.append((tracer, f"{api_bare}; {TRACER}", api_bare))
            for row, handler_code, bare_code in pairs:
                first, second = (handler_code, bare_code) if round_ % 2 else (bare_code, handler_code)
                timed = {code: _process_seconds(code, environment, root) for code in (first, second)}
                if round_ == 0:
                    continue  # warm-up: page cache, bytecode
                row.handler_s.append(timed[handler_code])
                row.bare_s.append(timed[bare_code])
    return rows, tracer


def print_report(rows: list[ColdStartRow], tracer: ColdStartRow | None = None, out: TextIO = sys.stdout) -> None:
    runs = len(rows[0].handler_s) if rows else 0
    print(f"cold start: whole-process import, medians of {runs} alternating runs", file=out)
    print(f"{'handler':<15}{'import':>9}{'bare':>9}{'ratio':>8}{'target':>8}  verdict", file=out)
    for row in rows:
        verdict = "PASS" if row.passed else f"over by {row.ratio / row.target - 1:.0%}"
        print(
            f"{row.name:<15}{row.handler_median:>8.3f}s{row.bare_median:>8.3f}s{row.ratio:>7.2f}x"
            f"{row.target:>7.2f}x  {verdict}",
            file=out,
        )
    if tracer is not None:
        print(
            f"tracing on: the first invocation builds the X-Ray tracer, "
            f"+{tracer.handler_median - tracer.bare_median:.3f}s on the API's bare set "
            f"({tracer.handler_median:.3f}s against {tracer.bare_median:.3f}s)",
            file=out,
        )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=RUNS, help="rounds measured; medians are printed")
    parser.add_argument("--root", type=Path, default=ROOT, help="checkout whose handlers are imported")
    parser.add_argument("--source-only", action="store_true", help="no bytecode cache, as on Lambda")
    parser.add_argument("--only", nargs="*", default=(), choices=[s.name for s in SUBJECTS], help="these handlers")
    args = parser.parse_args()
    rows, tracer = measure(args.runs, root=args.root.resolve(), source_only=args.source_only, only=tuple(args.only))
    print_report(rows, tracer)
    return 0


if __name__ == "__main__":
    sys.exit(main())

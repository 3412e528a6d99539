"""What one processed track costs, measured (``local.write_cost``): the intent, the finalize and the
whole workflow to its end. DynamoDB writes are charged from the items' real sizes before and after,
indexes included; state transitions come from the execution's history. docs/capacity.md quotes the
block this renders, so a change of item size, index or step count cannot leave it stale."""

from __future__ import annotations

import os
import re
from collections import Counter
from pathlib import Path
from typing import Any

from functions.data.models import shared_connection
from functions.data.schema import table_specs
from local.aws_calls import app_calls
from local.config import CHECKOUT
from local.write_cost import Bill, WriteMeter

from .conftest import Stack, _harness_client
from .test_workflow import execution_ended, processed, upload_and_finalize

CAPACITY_DOC = CHECKOUT / "docs" / "capacity.md"
START, END = "<!-- measured-per-track:start -->", "<!-- measured-per-track:end -->"


def render(bill: Bill, transitions: int, tasks: int, s3_calls: Counter[str]) -> str:
    parts = bill.bound_by_part()
    tables = sorted(part for part in parts if "." not in part)
    indexes = sorted(part for part in parts if "." in part)
    writes = bill.writes()
    return "\n".join(
        [
            "| One 3 s WAV, intent to every lane ended | |",
            "|---|---|",
            f"| DynamoDB write requests | {sum(writes.values())} ({_listed(writes)}) |",
            f"| WCU, each write at its item's largest size | **{bill.bound}**: "
            + ", ".join(f"{part} {parts[part]}" for part in [*tables, *indexes])
            + " |",
            f"| WCU as charged in this run, each write at its item's size then | {bill.total} |",
            f"| RCU of the pipeline's own reads (not the client's polling) | {round(sum(bill.reads.values()))} |",
            f"| Step Functions state transitions | {transitions} |",
            f"| Task invocations (processing Lambda) | {tasks} |",
            f"| S3 requests through the SDK | {sum(s3_calls.values())} ({_listed(s3_calls)}) |",
        ]
    )


def _listed(counts: Counter[str]) -> str:
    return ", ".join(f"{name} {n}" for name, n in sorted(counts.items()))


def test_one_processed_track_costs_what_the_capacity_doc_says(
    stack: Stack, artist: str, runner: Any, wav_3s: Path, moto_endpoint: str
):
    settings = stack.resources.settings
    names = {getattr(settings, spec.settings_field): spec.logical_name for spec in table_specs()}
    with (
        app_calls(services=("s3",)) as s3_operations,
        WriteMeter(shared_connection().client, _harness_client("dynamodb", moto_endpoint), names) as meter,
    ):
        upload = upload_and_finalize(stack, artist, wav_3s)
        # Waiting on the execution, not polling the API: the API answers on other threads than this
        # one, so its reads would be charged, as many as the polls a slow machine makes (26 to 58
        # RCU seen).
        execution_ended(stack, upload)
    status = processed(stack, artist, upload)
    s3_calls = Counter(s3_operations)
    assert (status["status"], status["workflowStatus"]) == ("ready", "succeeded")

    (execution,) = stack.executions()
    history = stack.sfn.get_execution_history(executionArn=execution["executionArn"], maxResults=1000)["events"]
    transitions = sum(1 for event in history if event["type"].endswith("StateEntered"))
    tasks = sum(1 for event in history if event["type"] == "TaskScheduled")

    # Charged as they happened, the same writes cost less (an item is smaller before its lanes
    # land), never more.
    assert meter.bill.total <= meter.bill.bound
    block = render(meter.bill, transitions, tasks, s3_calls)
    if os.environ.get("TRACKLANE_REGENERATE_DOCS"):
        text = CAPACITY_DOC.read_text()
        before, _, rest = text.partition(START)
        CAPACITY_DOC.write_text(before + START + "\n" + block + "\n" + END + rest.partition(END)[2])
    documented = CAPACITY_DOC.read_text().split(START, 1)[1].split(END, 1)[0].strip("\n")
    hint = (
        "docs/capacity.md no longer matches what a track costs: run "
        "`TRACKLANE_REGENERATE_DOCS=1 .venv/bin/pytest tests/integration/test_write_cost.py` and review the diff"
    )
    assert _shape(documented) == _shape(block), hint
    for documented_row, measured_row in zip(documented.splitlines(), block.splitlines(), strict=True):
        for documented_n, measured_n in zip(_numbers(documented_row), _numbers(measured_row), strict=True):
            assert abs(documented_n - measured_n) <= _tolerance(measured_row, measured_n), (hint, measured_row)


def _tolerance(row: str, measured: int) -> float:
    """What varies between runs of the same track: a transaction that met a concurrent one is sent
    again (and charged again), a write's item may or may not hold a neighbour lane's output yet,
    lane outputs hold timings (a KB boundary falls either side). Counts of steps, tasks and S3
    requests do not vary."""
    if row.startswith("| WCU"):
        return max(2, measured * 0.1)
    if row.startswith("| RCU"):
        # A lane reading the track again after a conflict, and which lane builds the autotag
        # snapshot (one Query of the reference index) on a fresh stack.
        return max(4, measured * 0.2)
    if row.startswith("| DynamoDB write requests"):
        return 2
    return 0


def _shape(block: str) -> str:
    return re.sub(r"\d+", "#", block)


def _numbers(row: str) -> list[int]:
    return [int(number) for number in re.findall(r"(?<![A-Za-z0-9_])\d+", row)]

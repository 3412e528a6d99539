"""``make bench``'s own code (benchmarks/run.py) on a few seconds of audio and two runs, so it cannot
silently break again: every run ends ready, every number it prints is there. Times are never
asserted: they measure this machine, not the code."""

from __future__ import annotations

import io
import math

from benchmarks import cold_start, round_trips
from benchmarks.run import MEMORY_STEPS, measure, print_report
from functions.workflow.definition import LANES


def test_the_benchmark_measures_every_run_to_ready_and_prints_its_ratios(tmp_path):
    # When the benchmark runs twice on 3 s of audio, and its memory test on a 1 MB WAV
    report = measure(seconds=3, runs=2, rss_mb=1, work_dir=tmp_path)

    # Then (a) has a time per run
    assert len(report.raw_s) == 2
    assert all(math.isfinite(t) and t > 0 for t in report.raw_s)
    # and (b): both uploads of the same WAV (two owners: one owner's second would be a duplicate)
    # were processed to the end, each its own track
    assert len(report.stack_runs) == 2
    for run in report.stack_runs:
        assert (run.status["status"], run.status["workflowStatus"]) == ("ready", "succeeded"), run.status
        assert 0 < run.ready_s <= run.renditions_s <= run.every_lane_s
        assert {lane["name"] for lane in run.status["lanes"]} == set(LANES)
    assert math.isfinite(report.ratio) and report.ratio > 0
    # and (c) has a peak for every step
    assert [step["step"] for step in report.steps] == list(MEMORY_STEPS)
    for step in report.steps:
        assert step["python_rss_mb"] > 0 and step["ffmpeg_rss_mb"] >= 0
        assert math.isclose(step["step_peak_mb"], step["python_rss_mb"] + step["ffmpeg_rss_mb"])

    # And the report prints (the line make bench exists for included)
    printed = io.StringIO()
    print_report(report, printed)
    text = printed.getvalue()
    assert f"first playable / a: {report.ratio:.3f}" in text
    assert f"all renditions / a: {report.renditions_median / report.raw_median:.3f}" in text
    assert "finalize -> ready (playable)" in text
    assert all(f"  {step:<14} python" in text for step in MEMORY_STEPS)


def test_the_benchmark_counts_the_aws_calls_of_the_hot_requests():
    counts = {count.request: count for count in round_trips.measure()}

    # The same numbers tests/integration/test_round_trips.py pins, through the benchmark's own path.
    # (the first UpdateItem of each: the caller's write token, issue 16)
    assert counts["create intent"].operations == ("UpdateItem", "BatchGetItem", "TransactWriteItems")
    assert len(counts["first finalize"].operations) == 8
    assert "TransactWriteItems" in counts["first finalize"].operations
    assert "first finalize   8 calls (target <= 4)" in round_trips.report(list(counts.values()))


def test_the_benchmark_times_cold_imports_against_their_bare_sets():
    rows, tracer = cold_start.measure(1, only=("sweeper",))

    (row,) = rows
    assert (row.name, len(row.handler_s), len(row.bare_s)) == ("sweeper", 1, 1)
    assert row.handler_median > 0 and row.bare_median > 0 and tracer.handler_median > 0
    printed = io.StringIO()
    cold_start.print_report(rows, tracer, printed)
    assert f"{row.ratio:>7.2f}x" in printed.getvalue()

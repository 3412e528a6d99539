"""``make bench`` reads the stack's answers defensively: an error or an answer without the fields it
measures from stops the benchmark with a sentence quoting the answer, never a KeyError."""

from __future__ import annotations

import httpx
import pytest

from benchmarks.run import BenchmarkFailed, _answer


def test_an_answer_with_the_fields_is_returned_whole():
    response = httpx.Response(200, json={"status": "ready", "workflowStatus": "succeeded", "lanes": []})
    assert _answer(response, "processing status", "status", "workflowStatus")["status"] == "ready"


def test_an_error_answer_names_what_was_asked_the_http_status_and_the_error_code():
    # What polling a deleted draft answered: the benchmark used to die on status["status"].
    response = httpx.Response(404, json={"error": {"code": "track_not_found", "message": "No such track."}})
    with pytest.raises(BenchmarkFailed, match=r"processing status: HTTP 404.*track_not_found"):
        _answer(response, "processing status", "status")


def test_a_2xx_answer_without_a_field_says_which_is_missing():
    response = httpx.Response(200, json={"workflowStatus": "running"})
    with pytest.raises(BenchmarkFailed, match=r"no status in the answer"):
        _answer(response, "processing status", "status", "workflowStatus")


def test_an_answer_that_is_not_json_is_quoted():
    response = httpx.Response(502, text="Bad Gateway")
    with pytest.raises(BenchmarkFailed, match=r"HTTP 502.*Bad Gateway"):
        _answer(response, "finalize", "status")

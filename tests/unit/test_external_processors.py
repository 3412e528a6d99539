"""External processors configured as a Lambda ARN: Invoke's answers mapped onto the lane contract.

botocore's Stubber stands in for the Lambda service (it checks our request against the real
service model); the HTTP variant is exercised against a real local server in the integration tests.
"""

from __future__ import annotations

import io
import json

import boto3
import pytest
from botocore.response import StreamingBody
from botocore.stub import Stubber

from functions import clients
from functions.domain.processing import external
from functions.step_errors import StepFailed, TransientStepError

ARN = "arn:aws:lambda:us-east-1:123456789012:function:stems-separator:live"
REQUEST = {"trackId": "t1", "audioUrl": "https://example.invalid/a", "durationMs": 3000}


@pytest.fixture
def lambda_service(monkeypatch):
    client = boto3.client("lambda", region_name="us-east-1")
    monkeypatch.setattr(clients, "lambda_", lambda: client)
    with Stubber(client) as stubber:
        yield stubber
        stubber.assert_no_pending_responses()


def _answer(stubber: Stubber, body: object, *, function_error: str | None = None) -> None:
    data = json.dumps(body).encode()
    response = {"StatusCode": 200, "Payload": StreamingBody(io.BytesIO(data), len(data))}
    if function_error:
        response["FunctionError"] = function_error
    expected = {
        "FunctionName": ARN,
        "InvocationType": "RequestResponse",
        "Payload": json.dumps({**REQUEST, "lane": "stems"}).encode(),
    }
    stubber.add_response("invoke", response, expected)


def test_a_returned_object_is_the_lanes_outputs(lambda_service):
    _answer(lambda_service, {"stems": ["vocals", "drums"]})
    assert external.call(ARN, lane="stems", payload=REQUEST, timeout_s=5) == {"stems": ["vocals", "drums"]}


def test_the_functions_own_refusal_is_permanent(lambda_service):
    _answer(lambda_service, {"errorType": "ProcessorRejected", "errorMessage": "no"}, function_error="Unhandled")
    with pytest.raises(StepFailed) as failure:
        external.call(ARN, lane="stems", payload=REQUEST, timeout_s=5)
    assert failure.value.code == "processor_rejected"


def test_any_other_function_error_is_retried(lambda_service):
    _answer(lambda_service, {"errorType": "Sandbox.Timedout", "errorMessage": "t"}, function_error="Unhandled")
    with pytest.raises(TransientStepError, match=r"Sandbox\.Timedout"):
        external.call(ARN, lane="stems", payload=REQUEST, timeout_s=5)


@pytest.mark.parametrize(
    ("service_error", "expected"),
    [
        ("ResourceNotFoundException", StepFailed),
        ("AccessDeniedException", StepFailed),
        ("TooManyRequestsException", TransientStepError),
        ("ServiceException", TransientStepError),
    ],
)
def test_invoke_errors_split_into_misconfiguration_and_transient(lambda_service, service_error, expected):
    lambda_service.add_client_error("invoke", service_error_code=service_error, http_status_code=400)
    with pytest.raises(expected) as raised:
        external.call(ARN, lane="stems", payload=REQUEST, timeout_s=5)
    if expected is StepFailed:
        assert raised.value.code == "processor_misconfigured"


@pytest.mark.parametrize(
    ("body", "code"),
    [(["not", "an", "object"], "processor_bad_response"), ("x" * (300 * 1024), "processor_response_too_large")],
)
def test_answers_are_held_to_the_same_contract_as_http(lambda_service, body, code):
    _answer(lambda_service, body)
    with pytest.raises(StepFailed) as failure:
        external.call(ARN, lane="stems", payload=REQUEST, timeout_s=5)
    assert failure.value.code == code


@pytest.mark.parametrize(
    ("target", "is_arn"),
    [
        (ARN, True),
        ("arn:aws:lambda:eu-west-1:123456789012:function:lyrics", True),
        ("arn:aws-cn:lambda:cn-north-1:123456789012:function:lyrics", True),
        ("arn:aws:lambda:us-east-1:1234:function:short-account", False),
        ("arn:aws:sqs:us-east-1:123456789012:queue", False),
        ("https://stems.example.com/run", False),
    ],
)
def test_lambda_arns_are_recognised_exactly(target, is_arn):
    assert external.is_lambda_arn(target) is is_arn


def test_a_target_that_is_neither_is_a_misconfiguration():
    with pytest.raises(StepFailed) as failure:
        external.call("ftp://stems.example.com", lane="stems", payload=REQUEST, timeout_s=5)
    assert failure.value.code == "processor_misconfigured"


def test_no_target_skips_the_lane_visibly():
    with pytest.raises(external.LaneSkipped) as skipped:
        external.call(None, lane="lyrics", payload=REQUEST, timeout_s=5)
    assert skipped.value.code == "not_configured"

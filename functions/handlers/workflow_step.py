"""Processing Lambda: every Task of the workflow invokes it with ``{"step", "input"}`` (and the
verdict steps with ``stateMachineArn``)."""

from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from functions.domain.processing import steps
from functions.observability import logger, tracer


@logger.inject_lambda_context(correlation_id_path="input.uploadId", clear_state=True)
@tracer.capture_lambda_handler
def handler(event: dict[str, Any], context: LambdaContext) -> Any:
    logger.append_keys(step=event.get("step"), track_id=(event.get("input") or {}).get("trackId"))
    payload = event["input"]
    if "stateMachineArn" in event:  # given to the verdict steps (functions.workflow.definition.Task)
        payload = {**payload, "stateMachineArn": event["stateMachineArn"]}
    return steps.run(event["step"], payload)

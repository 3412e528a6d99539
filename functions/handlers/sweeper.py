"""Scheduled sweeper Lambda (every 15 minutes): settles tracks whose workflow ended without a verdict."""

from typing import Any

from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

from functions.domain.processing import sweeper
from functions.observability import logger, metrics, tracer


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler
@metrics.log_metrics
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, int]:
    report = sweeper.sweep()
    # Repairs are the interesting number: each one is a workflow that ended without a verdict.
    metrics.add_metric(
        name="TracksSettledBySweeper", unit=MetricUnit.Count, value=report.settled_ready + report.settled_failed
    )
    metrics.add_metric(name="ExecutionsRestartedBySweeper", unit=MetricUnit.Count, value=report.restarted)
    return report.to_json()

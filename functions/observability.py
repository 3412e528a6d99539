"""Logger, tracer and metrics, configured once for every handler."""

from aws_lambda_powertools import Logger, Metrics, Tracer

logger = Logger(service="tracklane")
tracer = Tracer(service="tracklane")
metrics = Metrics(namespace="Tracklane", service="tracklane")

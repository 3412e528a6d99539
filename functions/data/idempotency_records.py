"""The Idempotency-Key records' table, as powertools' DynamoDB persistence layer
(``functions.api.idempotency`` decides what identifies and fingerprints a request)."""

from __future__ import annotations

from collections.abc import Callable

from aws_lambda_powertools.utilities.idempotency import DynamoDBPersistenceLayer

from functions import clients
from functions.settings import Settings, settings


class _Layer:
    """The persistence layer bound to the current settings (rebuilt after ``clients.reset()``)."""

    settings: Settings | None = None
    layer: DynamoDBPersistenceLayer | None = None


def persistence_layer(configure: Callable[[DynamoDBPersistenceLayer], None]) -> DynamoDBPersistenceLayer:
    """The layer on ``idempotency_table``, configured once per settings by ``configure``."""
    current = settings()
    if _Layer.layer is None or _Layer.settings is not current:
        layer = DynamoDBPersistenceLayer(
            table_name=current.idempotency_table,
            # The client every other AWS call uses: region, endpoint (moto locally) and retries
            # from settings, created when the first keyed request needs it.
            boto3_client=clients.dynamodb(),
        )
        configure(layer)
        _Layer.layer, _Layer.settings = layer, current
    return _Layer.layer

"""Puts domain events on the bus (``settings().event_bus_name``), one PutEvents entry per event."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

from functions import clients
from functions.events.mapping import DomainEvent
from functions.settings import settings

if TYPE_CHECKING:
    from mypy_boto3_events.type_defs import PutEventsRequestEntryTypeDef

SOURCE = "tracklane"


class PublishFailed(Exception):
    """EventBridge refused the entry (throttled, internal error): the record is failed and retried."""


def entry(event: DomainEvent) -> PutEventsRequestEntryTypeDef:
    return {
        "EventBusName": settings().event_bus_name,
        "Source": SOURCE,
        "DetailType": event.type,
        "Detail": json.dumps(event.detail, separators=(",", ":")),
        # When the change was committed, not when it was published (a retry publishes later).
        "Time": event.occurred_at,
    }


def publish(event: DomainEvent) -> None:
    response = clients.events().put_events(Entries=[entry(event)])
    if response["FailedEntryCount"]:
        (failed,) = response["Entries"]
        raise PublishFailed(
            f"{event.type} {event.event_id} was not accepted: {failed.get('ErrorCode')} {failed.get('ErrorMessage')}"
        )

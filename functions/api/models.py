"""Shared wire conventions for the camelCase API."""

from __future__ import annotations

from datetime import UTC, datetime

from pydantic import BaseModel, ConfigDict
from pydantic.alias_generators import to_camel


class RequestModel(BaseModel):
    """Every request body. Unknown fields are refused, so a misspelled field is an error the client
    sees rather than a value silently ignored. Types are strict: a number is a JSON number, not
    ``"1000"`` (nor ``1000.0`` for an integer), a boolean is ``true``/``false``, not ``"true"`` or
    ``1``; what a client sent is what it meant, or a 422 ``validation_failed`` says which field."""

    model_config = ConfigDict(extra="forbid", strict=True)


class CamelModel(RequestModel):
    """Wire names are camelCase; Python stays snake_case."""

    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True)


class CamelResponse(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True)


def iso(value: datetime | None) -> str | None:
    """ISO 8601 UTC with ``Z``, to the millisecond."""
    if value is None:
        return None
    utc = value.astimezone(UTC)
    return utc.strftime("%Y-%m-%dT%H:%M:%S.") + f"{utc.microsecond // 1000:03d}Z"

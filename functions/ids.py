"""Identifiers: UUIDs in storage; the upload-intent contract's routes render them with a kind
prefix.

Both ``upl_<uuid>`` and the bare ``<uuid>`` address the same record.
"""

from __future__ import annotations

import uuid
from typing import Literal

Kind = Literal["upl", "trk", "ast", "alb"]


def new_id() -> str:
    return str(uuid.uuid4())


def render(kind: Kind, raw: str) -> str:
    return f"{kind}_{raw}"


def parse(kind: Kind, value: str) -> str | None:
    """The bare UUID for ``value`` (prefixed or not), or None when it is not an id of this kind."""
    candidate = value.removeprefix(f"{kind}_")
    if len(candidate) != 36:
        return None
    try:
        return str(uuid.UUID(candidate))
    except ValueError:
        return None

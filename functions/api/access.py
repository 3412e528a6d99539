"""Who may call each route, declared once, on the route.

A route's access follows from what it depends on: ``current_user`` (a caller is required:
``owner``, the route then scopes everything to that caller), ``viewer`` (``optional``: anyone,
and a signed-in caller may see more, e.g. the owner's view of a track) or neither (``public``). A
route that authenticates some other way says so with ``openapi_extra=declare(...)``.

The declaration is published in the OpenAPI document (``x-access`` on every operation). The
infrastructure tests check that API Gateway lets every operation reach the function as declared,
the authorization-matrix tests derive their route lists from it, and the route table in
docs/api.md is generated from it.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any, Literal, cast, get_args

from fastapi import APIRouter
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute

from functions.api.auth import current_user
from functions.api.public import viewer

Access = Literal["public", "optional", "owner"]
ACCESS_KEY = "x-access"


def declare(access: Access) -> dict[str, Any]:
    """``openapi_extra`` for a route whose access its dependencies do not show."""
    return {ACCESS_KEY: access}


def _calls(dependant: Dependant) -> Iterator[Any]:
    for dependency in dependant.dependencies:
        yield dependency.call
        yield from _calls(dependency)


def of(route: APIRoute) -> Access:
    declared = (route.openapi_extra or {}).get(ACCESS_KEY)
    if declared is not None:
        if declared not in get_args(Access):
            raise ValueError(f"{route.path}: access must be one of {get_args(Access)}, not {declared!r}")
        return cast(Access, declared)
    calls = set(_calls(route.dependant))
    if current_user in calls:
        return "owner"
    if viewer in calls:
        return "optional"
    return "public"


@dataclass(frozen=True, order=True)
class RouteAccess:
    path: str
    method: str
    access: Access


def _routes(routers: Iterable[APIRouter]) -> Iterator[APIRoute]:
    # The routers' own routes (their paths carry the router prefix): the app's route list nests
    # included routers in framework-internal wrappers.
    for router in routers:
        for route in router.routes:
            if isinstance(route, APIRoute) and route.include_in_schema:
                yield route


def table(routers: Iterable[APIRouter]) -> list[RouteAccess]:
    """Every operation with its access, in path order."""
    return sorted(
        RouteAccess(route.path, method, of(route)) for route in _routes(routers) for method in route.methods or ()
    )


def publish(routers: Iterable[APIRouter]) -> None:
    """Writes each route's access into its OpenAPI operation (``x-access``)."""
    for route in _routes(routers):
        route.openapi_extra = {**(route.openapi_extra or {}), ACCESS_KEY: of(route)}

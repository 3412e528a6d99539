"""What a handler's import loads, and what it leaves to the invocations that need it (the cold-start
targets, ``benchmarks/cold_start.py``). Each check runs in a fresh interpreter with a Lambda-like
environment: tracing on, as deployed. No clock is read: a module that is loaded or not is the fact
that decides the import's cost, and it cannot flake.
"""

from __future__ import annotations

import json
import pkgutil
import subprocess
import sys
from typing import Any

import pytest
from fastapi.routing import APIRoute

import functions.api.routers
from benchmarks.cold_start import ROOT, lambda_environment
from functions.api.app import ROUTER_PREFIXES, router, under
from tests.lazily_loaded import LANE_MODULES, SWEEP_MODULES

HANDLERS = (
    "functions.handlers.api",
    "functions.handlers.finalize_on_put",
    "functions.handlers.workflow_step",
    "functions.handlers.domain_events",
    "functions.handlers.sweeper",
)
# Loaded by the invocations that need them: X-Ray when tracing is on and a handler first runs,
# PyJWT/cryptography with the first bearer token, numpy/Pillow/mutagen by their lanes, httpx never.
NOT_AT_IMPORT = ("aws_xray_sdk", "jwt", "cryptography", "numpy", "PIL", "mutagen", "httpx")
# Only the API function runs FastAPI (the other functions' layers do not even need it).
WEB = ("fastapi", "starlette", "mangum")
# This project's modules only some invocations need: the lanes' own media and domain code, the
# intake and verdict code only a sweep that finds a stuck track needs.
OWN_MODULES_NOT_AT_IMPORT = {
    "functions.handlers.workflow_step": (*LANE_MODULES, "functions.domain.intake.uploads"),
    "functions.handlers.sweeper": SWEEP_MODULES,
}
# A sampled-out trace header: the tracer runs for real and sends nothing.
TRACE_HEADER = "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=0"


def _run(program: str, **environment: str) -> Any:
    """Runs ``program`` in a fresh interpreter and returns what it printed last, as JSON."""
    done = subprocess.run(
        [sys.executable, "-c", program],
        cwd=ROOT,
        env={**lambda_environment(), **environment},
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def _loaded_after_import(module: str) -> list[str]:
    return _run(f"import sys, json, {module}\nprint(json.dumps(sorted(sys.modules)))")  # type: ignore[no-any-return]


def _tops(modules: list[str]) -> set[str]:
    return {name.split(".")[0] for name in modules}


@pytest.mark.parametrize("module", HANDLERS)
def test_importing_a_handler_leaves_what_only_some_invocations_need(module: str):
    modules = _loaded_after_import(module)
    loaded = _tops(modules)

    assert loaded & set(NOT_AT_IMPORT) == set()
    if module != "functions.handlers.api":
        assert loaded & set(WEB) == set()
    assert set(modules) & set(OWN_MODULES_NOT_AT_IMPORT.get(module, ())) == set()


def test_importing_the_api_builds_no_router():
    loaded = _loaded_after_import("functions.handlers.api")

    assert [name for name in loaded if name.startswith("functions.api.routers.")] == []


def _api_request(path: str) -> str:
    event = {
        "version": "2.0",
        "routeKey": "$default",
        "rawPath": path,
        "rawQueryString": "",
        "headers": {"host": "api.example"},
        "requestContext": {
            "http": {"method": "GET", "path": path, "protocol": "HTTP/1.1", "sourceIp": "192.0.2.1"},
            "requestId": "cold-start-test",
            "stage": "$default",
        },
        "isBase64Encoded": False,
    }
    return (
        "import json, sys\n"
        "from functions.handlers import api\n"
        "from functions.observability import tracer\n"
        "before = 'aws_xray_sdk' in sys.modules\n"
        "class Context:\n"
        "    function_name = 'api'; memory_limit_in_mb = 256; aws_request_id = 'cold-start-test'\n"
        "    invoked_function_arn = 'arn:aws:lambda:us-east-1:123456789012:function:api'\n"
        f"answer = api.handler({event!r}, Context())\n"
        "built = tracer.get()\n"
        "patched = sorted(sys.modules['aws_xray_sdk.core.patcher']._PATCHED_MODULES) if built else []\n"
        "routers = sorted(m for m in sys.modules if m.startswith('functions.api.routers.'))\n"
        "print(json.dumps({'status': answer['statusCode'], 'xray_before_call': before, 'built': built is not None,\n"
        "    'patched': patched, 'xray_loaded': 'aws_xray_sdk' in sys.modules, 'routers': routers}))\n"
    )


def test_with_tracing_on_the_first_invocation_builds_the_tracer_and_patches_boto():
    seen = _run(_api_request("/health"), _X_AMZN_TRACE_ID=TRACE_HEADER)

    assert seen["status"] == 200
    assert seen["xray_before_call"] is False
    assert seen["built"] is True
    assert {"botocore", "pynamodb"} <= set(seen["patched"])


def test_with_tracing_off_the_x_ray_sdk_is_never_loaded():
    seen = _run(_api_request("/health"), POWERTOOLS_TRACE_DISABLED="1")

    assert seen["status"] == 200
    assert seen["built"] is False
    assert seen["xray_loaded"] is False


def test_a_request_builds_only_the_routers_under_its_path():
    seen = _run(_api_request("/health"), POWERTOOLS_TRACE_DISABLED="1")

    assert seen["routers"] == ["functions.api.routers.health"]


def test_every_router_module_is_declared_with_prefixes_covering_each_of_its_routes():
    # A route outside its module's prefixes could be shadowed by a later router's (its module would
    # not be loaded for that path): the lazy app would then route differently from the eager one.
    modules = {info.name for info in pkgutil.iter_modules(functions.api.routers.__path__)}
    assert set(ROUTER_PREFIXES) == modules
    for name, prefixes in ROUTER_PREFIXES.items():
        assert all(prefix.startswith("/") and "{" not in prefix for prefix in prefixes), name
        for route in router(name).routes:
            assert isinstance(route, APIRoute)
            assert under(route.path, prefixes), f"{name}: {route.path} is under none of {prefixes}"

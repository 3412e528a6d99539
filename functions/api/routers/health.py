"""``GET /health``: public; 200 when every injected readiness check passes, else 503."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

router = APIRouter(tags=["health"])


@router.get("/health")
def health(request: Request) -> JSONResponse:
    results: dict[str, bool] = {}
    for name, check in request.app.state.health_checks.items():
        try:
            results[name] = bool(check())
        except Exception:  # a failing check is a 'not ready', never a 500
            results[name] = False
    ready = all(results.values())
    return JSONResponse(
        {"status": "ok" if ready else "unavailable", "checks": results}, status_code=200 if ready else 503
    )

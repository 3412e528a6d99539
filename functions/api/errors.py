"""Every error leaves the API as ``{"error": {"code", "message", ...}}`` — mapped here, once."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from functions.errors import DomainError, ServiceBusy
from functions.observability import logger
from functions.throttling import is_throttle

_HTTP_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    413: "request_too_large",
    415: "unsupported_content_type",
}


def error_body(code: str, message: str, **details: Any) -> dict[str, Any]:
    return {"error": {"code": code, "message": message, **details}}


def _domain_error(_: Request, error: Exception) -> JSONResponse:
    assert isinstance(error, DomainError)
    body = error_body(error.code, error.message, **error.details)
    if error.union_status:
        body = {"status": error.union_status, **body}
    headers = {"WWW-Authenticate": "Bearer"} if error.status == 401 else {}
    retry_after_s = getattr(error, "retry_after_s", None)
    if retry_after_s is not None:
        headers["Retry-After"] = str(retry_after_s)
    return JSONResponse(body, status_code=error.status, headers=headers or None)


def _validation_error(_: Request, error: Exception) -> JSONResponse:
    assert isinstance(error, RequestValidationError)
    problems = error.errors()
    if any(problem.get("type") == "json_invalid" for problem in problems):
        return JSONResponse(error_body("invalid_json", "The request body is not valid JSON."), status_code=400)
    fields = [
        {
            # Path inside the body as the client wrote it, e.g. "waveform.peaks.3"
            "field": ".".join(str(part) for part in problem.get("loc", ())[1:]) or "body",
            "message": problem.get("msg", "invalid"),
            "type": problem.get("type", "invalid"),
        }
        for problem in problems
    ]
    summary = "; ".join(f"{f['field']}: {f['message']}" for f in fields[:5])
    return JSONResponse(error_body("validation_failed", summary, fields=fields), status_code=422)


def _http_error(_: Request, error: Exception) -> JSONResponse:
    assert isinstance(error, StarletteHTTPException)
    code = _HTTP_CODES.get(error.status_code, "http_error")
    return JSONResponse(
        error_body(code, str(error.detail)), status_code=error.status_code, headers=getattr(error, "headers", None)
    )


def _unexpected(request: Request, error: Exception) -> JSONResponse:
    if is_throttle(error):
        logger.warning("throttled past the SDK's retries", extra={"error": str(error)})
        busy = ServiceBusy("The service is busy; repeat the request after the Retry-After seconds.")
        answer = _domain_error(request, busy)
        answer.headers["Retry-After"] = str(ServiceBusy.RETRY_AFTER_S)
        return answer
    # Called outside the except block that caught it: the traceback must be handed over.
    logger.exception("unhandled error", exc_info=error)
    return JSONResponse(error_body("internal_error", "Something went wrong on our side."), status_code=500)


def install(app: FastAPI) -> None:
    app.add_exception_handler(DomainError, _domain_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(Exception, _unexpected)

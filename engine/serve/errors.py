"""How failures reach HTTP clients: a status code and the error object OpenAI and llama.cpp
clients both read, `{"error": {"message", "type", "param", "code"}}`, with one-line messages
(`param` names the request field at fault, or is null)."""

from __future__ import annotations

import logging

from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException
from starlette.requests import Request as HTTPRequest

from engine.errors import NemodiffError
from engine.serve.queue import QueueFull

log = logging.getLogger("nemodiff.serve")

HANDLED = (HTTPException, NemodiffError, QueueFull)  # expected failures; anything else is a 500
TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    404: "not_found_error",
    405: "invalid_request_error",
    413: "invalid_request_error",
    503: "server_busy",
}


def status_of(e: Exception) -> int:
    if isinstance(e, HTTPException):
        return e.status_code
    if isinstance(e, QueueFull):
        return 503
    if isinstance(e, NemodiffError):  # input the engine refused (RequestError, ...)
        return 400
    return 500


def error_body(e: Exception) -> dict:
    status = status_of(e)
    if isinstance(e, HTTPException):
        message = str(e.detail)
    elif isinstance(e, HANDLED):
        message = str(e)
    else:
        message = f"internal error: {type(e).__name__}: {e}".splitlines()[0]
    param = getattr(e, "param", None)  # body.FieldError's
    return {
        "error": {
            "message": message,
            "type": TYPES.get(status, "server_error"),
            "param": param,
            "code": status,
        }
    }


def in_stream(e: Exception) -> dict:
    """The error object for a failure after a stream started (its status line is long gone)."""
    if not isinstance(e, HANDLED):
        log.error("generation failed", exc_info=e)
    return error_body(e)


async def error_response(_request: HTTPRequest, e: Exception) -> JSONResponse:
    """The exception handler for every route: never a traceback, always the error object."""
    headers = dict(getattr(e, "headers", None) or {})
    if isinstance(e, QueueFull):
        headers["Retry-After"] = str(e.retry_after)
    return JSONResponse(error_body(e), status_code=status_of(e), headers=headers)

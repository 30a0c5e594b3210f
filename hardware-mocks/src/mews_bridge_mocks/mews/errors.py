"""How the simulator answers with a Mews error: ``{"Message", "RequestId", "Details"}`` and a status."""

from __future__ import annotations

import json
import uuid

from aiohttp import web


class ApiError(Exception):
    """Raised anywhere while handling a request; becomes the error response."""

    def __init__(self, status: int, message: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.headers = headers or {}


def bad_request(message: str) -> ApiError:
    return ApiError(400, message)


def invalid(field: str, reason: str | None = None) -> ApiError:
    """Mews' usual ``Invalid {Parameter}``, with our reason appended to help whoever reads the test log."""
    return bad_request(f"Invalid {field}" + (f": {reason}" if reason else ""))


def new_request_id() -> str:
    return uuid.uuid4().hex.upper()


def error_response(error: ApiError, request_id: str, details: str | None = None) -> web.Response:
    body = {"Message": error.message, "RequestId": request_id, "Details": details}
    return web.Response(
        status=error.status,
        text=json.dumps(body),
        content_type="application/json",
        headers={**error.headers, "Request-Id": request_id},
    )

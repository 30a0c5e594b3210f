"""The aiohttp application: Connector API over HTTP and the WebSocket on one port.

Per call, in order: added latency, exact path (404), strict JSON (400), tokens (401), the
``Client`` field (400), a 429 storm, the sliding-window limit (429), injected failures, the
operation itself, then a lost answer if one is injected. Every answer carries ``Request-Id`` and is
recorded in ``calls`` (a lost one with what was applied and how it was lost).
"""

from __future__ import annotations

import asyncio
import json
import logging
import traceback
from datetime import UTC, datetime
from typing import Any

from aiohttp import WSCloseCode, web

from .auth import Credentials
from .calls import RecordedCall
from .errors import ApiError, error_response, new_request_id
from .faults import LOST_AFTER_COMMIT, Faults, too_many_requests
from .operations import OPERATIONS
from .ratelimit import SlidingWindowLimiter
from .state import World
from .table import Row
from .validation import Params
from .websocket import EventHub

API_PREFIX = "/api/connector/v1/"
MAX_BODY_BYTES = 20 * 1024 * 1024  # printer PDFs arrive base64-encoded
SHUTDOWN_TIMEOUT_S = 2.0

log = logging.getLogger(__name__)


def _reject_constant(name: str) -> None:
    raise ValueError(f"{name} is not JSON")


def _is_empty(result: Row) -> bool:
    """What ``Prefer: return=minimal`` turns into 204: ``{}`` or a page with nothing in it."""
    if not result:
        return True
    return (
        "Cursor" in result
        and result["Cursor"] is None
        and not any(isinstance(value, list) and value for value in result.values())
    )


class ConnectorServer:
    def __init__(
        self,
        world: World,
        *,
        credentials: Credentials,
        limiter: SlidingWindowLimiter,
        faults: Faults,
        hub: EventHub,
        calls: list[RecordedCall],
    ) -> None:
        self._world = world
        self._credentials = credentials
        self._limiter = limiter
        self._faults = faults
        self._hub = hub
        self._calls = calls
        self._runner: web.AppRunner | None = None

    async def start(self, host: str, port: int) -> int:
        """Listen on ``host``:``port`` (0 = any free port); returns the port."""
        app = web.Application(client_max_size=MAX_BODY_BYTES)
        app.router.add_get("/ws/connector", self._hub.handle, allow_head=False)
        app.router.add_route("*", "/{tail:.*}", self._handle)
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=SHUTDOWN_TIMEOUT_S)
        await self._runner.setup()
        await web.TCPSite(self._runner, host, port).start()
        return int(self._runner.addresses[0][1])

    async def stop(self) -> None:
        if self._runner is not None:
            await self._hub.close_all(WSCloseCode.GOING_AWAY)
            await self._runner.cleanup()
            self._runner = None

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        request_id = new_request_id()
        arrived = datetime.now(UTC)
        operation = self._operation(request)
        body: Any = None
        loss: tuple[str, float] | None = None
        try:
            if self._faults.latency_s > 0:
                await asyncio.sleep(self._faults.latency_s)
            if operation is None:
                raise ApiError(404, "Not found.")
            body = await self._read_json(request)
            response = self._answer(operation, Params(body), request)
            loss = self._faults.loss(operation) if response.status < 300 else None
        except ApiError as error:
            response = error_response(error, request_id)
        except Exception as error:  # a simulator bug: answer like Mews' development environments
            log.exception("operation %s failed", operation)
            response = error_response(ApiError(500, str(error)), request_id, traceback.format_exc())
        response.headers["Request-Id"] = request_id
        self._calls.append(
            RecordedCall(
                time=arrived,
                method=request.method,
                path=request.rel_url.raw_path,
                operation=operation,
                body=body,
                status=response.status,
                request_id=request_id,
                # Parsed from the text sent, so the record cannot change with the world.
                response=json.loads(response.text) if response.text else None,
                lost=loss[0] if loss else None,
            )
        )
        log.debug("%s %s -> %s", request.method, request.rel_url.raw_path, response.status)
        if loss is None:
            return response
        return await self._lose(request, response, request_id, *loss)

    @staticmethod
    async def _lose(
        request: web.Request, applied: web.Response, request_id: str, mode: str, delay_s: float
    ) -> web.StreamResponse:
        """The call was applied; now lose its answer the way ``mode`` says."""
        if mode == "drop":
            if request.transport is not None:
                request.transport.abort()
            raise asyncio.CancelledError  # aiohttp's way to end a handler whose peer is gone
        if mode == "delay":
            await asyncio.sleep(delay_s)
            return applied
        response = error_response(ApiError(int(mode), LOST_AFTER_COMMIT), request_id)
        response.headers["Request-Id"] = request_id
        return response

    @staticmethod
    def _operation(request: web.Request) -> str | None:
        path = request.rel_url.raw_path
        if request.method != "POST" or not path.startswith(API_PREFIX):
            return None
        operation = path.removeprefix(API_PREFIX)
        return operation if operation in OPERATIONS else None

    @staticmethod
    async def _read_json(request: web.Request) -> dict[str, Any]:
        try:
            raw = await request.read()
        except web.HTTPRequestEntityTooLarge:
            raise ApiError(413, "The request is too large.") from None
        try:
            body = json.loads(raw.decode("utf-8"), parse_constant=_reject_constant)
        except ValueError:  # also UnicodeDecodeError and JSONDecodeError
            raise ApiError(400, "Invalid JSON") from None
        if not isinstance(body, dict):
            raise ApiError(400, "Invalid JSON")
        return body

    def _answer(self, operation: str, params: Params, request: web.Request) -> web.Response:
        """Envelope, limits, faults and the operation itself."""
        rejection = self._credentials.rejection(params.raw("ClientToken"), params.raw("AccessToken"))
        if rejection is not None:
            raise ApiError(401, rejection)
        params.require(params.string, "Client")
        params.string("LanguageCode")
        params.string("CultureCode")
        storm = self._faults.storm_error()
        if storm is not None:
            raise storm
        wait = self._limiter.acquire(self._credentials.access_token)
        if wait is not None:
            raise too_many_requests(wait)
        injected = self._faults.injected_error(operation)
        if injected is not None:
            raise injected
        result = OPERATIONS[operation](self._world, params)
        prefer = {part.strip() for part in request.headers.get("Prefer", "").split(",")}
        if "return=minimal" in prefer and _is_empty(result):
            return web.Response(status=204)
        return web.Response(text=json.dumps(result), content_type="application/json")

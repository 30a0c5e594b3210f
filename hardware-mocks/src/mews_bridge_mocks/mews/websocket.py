"""The Connector WebSocket (``GET /ws/connector``): cookie auth and ``{"Events": [...]}`` pushes.

Events raised during one turn of the event loop go out together in one frame, as Mews batches
them. A socket only hears about commands of devices that existed when it connected: Mews asks
integrations to reconnect after a device is linked (reference 2.4).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from aiohttp import WSCloseCode, WSMsgType, web

from .auth import Credentials, parse_cookie
from .errors import ApiError, error_response, new_request_id
from .table import Row

CLOSE_TIMEOUT_S = 2.0


@dataclass(eq=False)
class _Connection:
    socket: web.WebSocketResponse
    request: web.Request
    device_ids: frozenset[str]
    outbox: asyncio.Queue[str] = field(default_factory=asyncio.Queue)


class EventHub:
    """Open sockets, and the faults that act on them (``silent``, ``refuse_for``)."""

    def __init__(
        self,
        credentials: Credentials,
        device_ids: Callable[[], Iterable[str]],
        *,
        on_frame: Callable[[str], None] | None = None,
    ) -> None:
        self.silent = False  # sockets stay open but send nothing and ignore pings
        self.connects = 0
        self._credentials = credentials
        self._device_ids = device_ids
        self._refuse_until = 0.0
        self._connections: set[_Connection] = set()
        self._pending: list[tuple[Row, str | None]] = []
        self._on_frame = on_frame

    @property
    def open_count(self) -> int:
        return len(self._connections)

    def refuse_for(self, seconds: float) -> None:
        self._refuse_until = time.monotonic() + seconds

    def publish(self, event: Row, device_id: str | None = None) -> None:
        """Queue an event for the next frame; ``device_id`` marks a DeviceCommand event."""
        if not self._connections:
            return
        if not self._pending:
            asyncio.get_running_loop().call_soon(self._flush)
        self._pending.append((event, device_id))

    def _flush(self) -> None:
        pending, self._pending = self._pending, []
        for connection in self._connections:
            events = [event for event, device in pending if device is None or device in connection.device_ids]
            if events:
                connection.outbox.put_nowait(json.dumps({"Events": events}))

    async def push(self, events: list[Row]) -> None:
        """Send ``events`` as one frame to every socket and wait until it is written (or dropped)."""
        await self.push_frame(json.dumps({"Events": events}))

    async def push_frame(self, frame: str) -> None:
        """Send ``frame`` as it is (garbage included) to every socket and wait until it is written."""
        connections = list(self._connections)
        for connection in connections:
            connection.outbox.put_nowait(frame)
        await asyncio.gather(*(connection.outbox.join() for connection in connections))

    async def close_all(self, code: int = WSCloseCode.SERVICE_RESTART, *, abrupt: bool = False) -> int:
        """Close every socket with ``code``, or cut the TCP connections (``abrupt``); returns how many."""
        connections = list(self._connections)
        if abrupt:
            for connection in connections:
                if connection.request.transport is not None:
                    connection.request.transport.abort()
        else:
            # return_exceptions: a socket still in its handshake cannot be closed yet; it is left alone.
            await asyncio.gather(
                *(connection.socket.close(code=code) for connection in connections), return_exceptions=True
            )
        return len(connections)

    async def handle(self, request: web.Request) -> web.StreamResponse:
        request_id = new_request_id()
        if time.monotonic() < self._refuse_until:
            return error_response(
                ApiError(503, "WebSocket connections are not accepted right now."), request_id
            )
        cookies = parse_cookie(request.headers.get("Cookie"))
        if cookies is None:
            return error_response(ApiError(401, "Missing or malformed Cookie header."), request_id)
        rejection = self._credentials.rejection(cookies.get("ClientToken"), cookies.get("AccessToken"))
        if rejection is not None:
            return error_response(ApiError(401, rejection), request_id)
        # autoping off: pings are answered by hand so that a "silent" socket can ignore them.
        socket = web.WebSocketResponse(autoping=False, timeout=CLOSE_TIMEOUT_S)
        if not socket.can_prepare(request).ok:
            return error_response(ApiError(400, "Expected a WebSocket upgrade."), request_id)
        socket.headers["Request-Id"] = request_id
        # Registered before the handshake completes, so an event raised right after the client's
        # connect() returns is not lost; it waits in the outbox.
        connection = _Connection(socket, request, frozenset(self._device_ids()))
        self._connections.add(connection)
        self.connects += 1
        sender: asyncio.Task[None] | None = None
        try:
            await socket.prepare(request)
            sender = asyncio.create_task(self._send_loop(connection))
            async for message in socket:
                # Mews defines no client messages; only pings get an answer.
                if message.type == WSMsgType.PING and not self.silent:
                    await socket.pong(message.data)
        finally:
            self._connections.discard(connection)
            if sender is not None:
                sender.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await sender
            while not connection.outbox.empty():  # release anyone waiting in push()
                connection.outbox.get_nowait()
                connection.outbox.task_done()
        return socket

    async def _send_loop(self, connection: _Connection) -> None:
        while True:
            frame = await connection.outbox.get()
            try:
                if not self.silent:
                    if self._on_frame is not None:
                        self._on_frame(frame)
                    await connection.socket.send_str(frame)
            except ConnectionError:
                pass  # the peer is gone; the handler notices and cleans up
            finally:
                connection.outbox.task_done()

"""A small HTTP/1.1 server on asyncio streams: h11 (already installed with httpx) reads and writes the
protocol, this module only moves bytes, enforces limits and calls one handler per request.

Why not aiohttp: the bridge serves a handful of small pages to one or two readers, and importing
aiohttp's server costs about 9 MB of memory on every bridge; h11 and this module cost well under 1 MB.

Limits, so that a stuck or hostile client cannot hold the bridge: a request (headers and body) must
arrive within ``request_timeout_s`` (also the keep-alive idle limit), headers up to 16 KB, bodies up
to ``max_body`` bytes, at most ``max_connections`` at once (more are closed straight away).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from http import HTTPStatus
from http.cookies import CookieError, SimpleCookie
from urllib.parse import parse_qsl, urlsplit

import h11

log = logging.getLogger(__name__)
_MAX_HEADERS = 16 * 1024


@dataclass(frozen=True)
class Request:
    method: str
    target: str
    headers: dict[str, str]
    """Lower-cased names; a repeated header keeps its last value."""
    body: bytes = b""

    @property
    def path(self) -> str:
        return urlsplit(self.target).path

    @property
    def query(self) -> dict[str, str]:
        return dict(parse_qsl(urlsplit(self.target).query))

    @property
    def host(self) -> str:
        """The Host header without its port: ``127.0.0.1``, ``::1``, ``localhost``."""
        value = self.headers.get("host", "")
        if value.startswith("["):
            return value[1 : value.find("]")]
        return value.rsplit(":", 1)[0] if value.count(":") == 1 else value

    def form(self) -> dict[str, str]:
        """An ``application/x-www-form-urlencoded`` body."""
        if not self.headers.get("content-type", "").startswith("application/x-www-form-urlencoded"):
            return {}
        return dict(parse_qsl(self.body.decode("utf-8", "replace")))

    def cookie(self, name: str) -> str | None:
        jar: SimpleCookie = SimpleCookie()
        try:
            jar.load(self.headers.get("cookie", ""))
        except CookieError:
            return None
        morsel = jar.get(name)
        return morsel.value if morsel else None


@dataclass
class Response:
    status: int = 200
    body: bytes | str = b""
    content_type: str = "text/plain; charset=utf-8"
    headers: list[tuple[str, str]] = field(default_factory=list)

    @classmethod
    def text(cls, status: int, text: str, *headers: tuple[str, str]) -> Response:
        return cls(status, text, headers=list(headers))

    @classmethod
    def redirect(cls, location: str, *headers: tuple[str, str]) -> Response:
        return cls(HTTPStatus.SEE_OTHER, b"", headers=[("Location", location), *headers])


Handler = Callable[[Request], Awaitable[Response]]


class _TooLarge(Exception):
    pass


class HttpServer:
    """Serves ``handler`` on ``host:port``; :meth:`start` binds (``OSError`` if it cannot)."""

    def __init__(
        self,
        handler: Handler,
        *,
        request_timeout_s: float = 30.0,
        max_body: int = 64 * 1024,
        max_connections: int = 32,
    ) -> None:
        self.handler = handler
        self.request_timeout_s = request_timeout_s
        self.max_body = max_body
        self.max_connections = max_connections
        self._server: asyncio.Server | None = None
        self._connections: set[asyncio.Task[None]] = set()

    async def start(self, host: str, port: int) -> tuple[str, int]:
        """Listen and return the address bound (the port chosen when ``port`` is 0)."""
        self._server = await asyncio.start_server(self._connection, host, port)
        bound_host, bound_port = self._server.sockets[0].getsockname()[:2]
        return str(bound_host), int(bound_port)

    async def stop(self) -> None:
        """Stop listening and close every open connection."""
        if self._server is None:
            return
        self._server.close()
        for task in list(self._connections):
            task.cancel()
        await asyncio.gather(*self._connections, return_exceptions=True)
        await self._server.wait_closed()
        self._server = None

    async def _connection(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        if len(self._connections) >= self.max_connections:
            writer.close()
            return
        self._connections.add(task)
        try:
            await self._serve(
                h11.Connection(h11.SERVER, max_incomplete_event_size=_MAX_HEADERS), reader, writer
            )
        except (ConnectionError, TimeoutError, h11.ProtocolError):
            pass  # the client went away, stalled or spoke nonsense: just close
        except asyncio.CancelledError:
            pass  # stop(): ending quietly, as asyncio's server expects of its connection tasks
        except Exception as exc:  # a fault here must never reach the bridge
            log.error("The HTTP server failed on a connection", exc_info=exc)
        finally:
            self._connections.discard(task)
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()

    async def _serve(
        self, conn: h11.Connection, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        while True:
            request: Request | None = None
            response: Response | None = None
            try:
                async with asyncio.timeout(self.request_timeout_s):
                    request = await self._read(conn, reader)
            except _TooLarge:
                response = Response.text(HTTPStatus.REQUEST_ENTITY_TOO_LARGE, "Too large.\n")
            except h11.RemoteProtocolError as exc:
                response = Response.text(exc.error_status_hint, "Bad request.\n")
            if request is not None:
                response = await self.handler(request)
            elif response is None or conn.our_state not in (h11.IDLE, h11.SEND_RESPONSE):
                return  # closed between requests, or too broken to answer
            writer.write(self._encode(conn, response, head=request is not None and request.method == "HEAD"))
            await writer.drain()
            if request is None or conn.our_state is h11.MUST_CLOSE:
                return
            conn.start_next_cycle()

    async def _read(self, conn: h11.Connection, reader: asyncio.StreamReader) -> Request | None:
        head: h11.Request | None = None
        body = bytearray()
        while True:
            event = conn.next_event()
            if event is h11.NEED_DATA:
                conn.receive_data(await reader.read(65536))
            elif isinstance(event, h11.Request):
                head = event
                length = dict(event.headers).get(b"content-length")
                if length is not None and int(length) > self.max_body:
                    raise _TooLarge
            elif isinstance(event, h11.Data):
                body += event.data
                if len(body) > self.max_body:
                    raise _TooLarge
            elif isinstance(event, h11.EndOfMessage) and head is not None:
                headers = {name.decode().lower(): value.decode("latin-1") for name, value in head.headers}
                return Request(head.method.decode(), head.target.decode("latin-1"), headers, bytes(body))
            elif isinstance(event, h11.ConnectionClosed):
                return None

    @staticmethod
    def _encode(conn: h11.Connection, response: Response, *, head: bool) -> bytes:
        body = response.body.encode() if isinstance(response.body, str) else response.body
        headers = [
            ("Content-Type", response.content_type),
            ("Content-Length", str(len(body))),
            *response.headers,
        ]
        data = conn.send(h11.Response(status_code=response.status, headers=headers)) or b""
        if body and not head:
            data += conn.send(h11.Data(data=body)) or b""
        return data + (conn.send(h11.EndOfMessage()) or b"")

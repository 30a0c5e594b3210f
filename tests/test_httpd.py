"""The small HTTP/1.1 server over real sockets: keep-alive, limits, and clients that misbehave."""

from __future__ import annotations

import asyncio
import contextlib

from mews_bridge.httpd import HttpServer, Request, Response
from mews_bridge.testing import wait_for


@contextlib.asynccontextmanager
async def serving(**limits):
    seen: list[Request] = []

    async def handler(request: Request) -> Response:
        seen.append(request)
        return Response(
            200, f"{request.method} {request.path} {request.form()}", headers=[("X-Seen", str(len(seen)))]
        )

    server = HttpServer(handler, **limits)
    host, port = await server.start("127.0.0.1", 0)
    try:
        yield host, port, seen, server
    finally:
        await server.stop()


async def exchange(host, port, *requests: bytes) -> bytes:
    reader, writer = await asyncio.open_connection(host, port)
    try:
        for request in requests:
            writer.write(request)
        await writer.drain()
        return await asyncio.wait_for(reader.read(), 5)
    finally:
        writer.close()
        await writer.wait_closed()


async def test_two_requests_on_one_connection_and_a_form():
    async with serving() as (host, port, seen, _):
        answer = await exchange(
            host,
            port,
            b"GET /a?x=1 HTTP/1.1\r\nHost: localhost\r\n\r\n",
            b"POST /b HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/x-www-form-urlencoded\r\n"
            b"Content-Length: 7\r\nConnection: close\r\n\r\nkey=v+1",
        )
    assert answer.count(b"HTTP/1.1 200 ") == 2
    assert b"GET /a {}" in answer and b"POST /b {'key': 'v 1'}" in answer
    assert [(r.path, r.query, r.host) for r in seen] == [
        ("/a", {"x": "1"}, "localhost"),
        ("/b", {}, "localhost"),
    ]


async def test_head_gets_headers_only():
    async with serving() as (host, port, _, _):
        answer = await exchange(host, port, b"HEAD /x HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n")
    head, _, body = answer.partition(b"\r\n\r\n")
    assert b"Content-Length: 10" in head and body == b""


async def test_a_body_over_the_limit_is_refused_unread():
    async with serving(max_body=100) as (host, port, seen, _):
        answer = await exchange(
            host, port, b"POST /x HTTP/1.1\r\nHost: h\r\nContent-Length: 1000000\r\n\r\n"
        )  # answered before the body is sent
    assert answer.startswith(b"HTTP/1.1 413 ") and seen == []


async def test_garbage_gets_a_400_and_the_connection_closes():
    async with serving() as (host, port, seen, _):
        answer = await exchange(host, port, b"HELLO THERE\r\n\r\n")
    assert answer.startswith(b"HTTP/1.1 400 ") and seen == []


async def test_a_client_that_stalls_is_cut_off():
    async with serving(request_timeout_s=0.2) as (host, port, seen, _):
        answer = await exchange(host, port, b"GET /x HTTP/1.1\r\nHost: h\r\n")  # never finishes its headers
    assert answer == b"" and seen == []


async def test_connections_over_the_limit_are_closed_until_one_ends():
    async with serving(max_connections=2) as (host, port, seen, server):
        held = [await asyncio.open_connection(host, port) for _ in range(2)]
        await wait_for(lambda: len(server._connections) == 2, what="the server to take both")
        reader, writer = await asyncio.open_connection(host, port)
        assert await asyncio.wait_for(reader.read(), 5) == b""  # closed without a word
        writer.close()
        await writer.wait_closed()
        for _, held_writer in held:
            held_writer.close()
            await held_writer.wait_closed()
        await wait_for(lambda: not server._connections, what="the server to see them close")
        answer = await exchange(host, port, b"GET /again HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n")
    assert answer.startswith(b"HTTP/1.1 200 ") and [r.path for r in seen] == ["/again"]

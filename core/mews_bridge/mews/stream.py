"""The Mews WebSocket event stream: ``{websocket_url}/ws/connector`` with the tokens as cookies.

It reconnects forever with capped backoff and jitter (reset after a connection that stayed up), and
library pings detect a connection that went silent. ``on_connect`` runs after every (re)connect, before
events are read, so the caller can catch up on what it missed.
"""

from __future__ import annotations

import asyncio
import json
import logging
import random
import ssl
import time
from collections.abc import Awaitable, Callable
from typing import Any

from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidStatus

from .. import metrics
from ..inputs import deeper_than, unencodable_path
from ..settings import MewsSettings
from .errors import MewsAuthError

log = logging.getLogger(__name__)
EventsHandler = Callable[[list[dict[str, Any]]], Awaitable[None]]
ConnectHandler = Callable[[], Awaitable[None]]
_STABLE_AFTER_S = 60.0
MAX_EVENT_DEPTH = 32
"""Mews events nest a few levels; anything deeper is garbage (and deep JSON costs recursion)."""


class EventStream:
    def __init__(
        self,
        settings: MewsSettings,
        on_events: EventsHandler,
        on_connect: ConnectHandler,
        *,
        backoff_initial_s: float = 1.0,
        backoff_max_s: float = 60.0,
        tls: ssl.SSLContext | None = None,
    ) -> None:
        self.settings = settings
        self.tls = tls
        """The verified TLS context of a ``wss://`` stream (the Mews client's); None: websockets' own."""
        self.on_events = on_events
        self.on_connect = on_connect
        self.backoff_initial_s = backoff_initial_s
        self.backoff_max_s = backoff_max_s
        self.connected = asyncio.Event()
        self.connects = 0

    @property
    def url(self) -> str:
        return f"{self.settings.websocket_url}/ws/connector"

    def _cookie(self) -> str:
        # Mews rejects spaces around "=": exactly "ClientToken=…; AccessToken=…".
        return (
            f"ClientToken={self.settings.client_token.get_secret_value()}; "
            f"AccessToken={self.settings.access_token.get_secret_value()}"
        )

    async def run(self) -> None:
        """Connect, read and reconnect until cancelled. Raises :class:`MewsAuthError` on a 401."""
        failures = 0
        while True:
            started = time.monotonic()
            try:
                await self._session()
                log.warning("Mews closed the event stream; reconnecting")
            except InvalidStatus as exc:
                if exc.response.status_code in (401, 403):
                    raise MewsAuthError(
                        "ws/connector",
                        "Mews refused the tokens on the WebSocket (check mews.client_token and mews.access_token)",
                        exc.response.status_code,
                    ) from None
                log.warning("Mews event stream refused (HTTP %s); reconnecting", exc.response.status_code)
            except (OSError, TimeoutError, InvalidHandshake, ConnectionClosed) as exc:
                log.warning("Mews event stream lost (%s); reconnecting", str(exc) or type(exc).__name__)
            except Exception as exc:  # a fault in handling events must not end the stream for good
                log.error("Mews event stream failed; reconnecting", exc_info=exc)
            finally:
                self.connected.clear()
            metrics.stream_down()
            failures = 0 if time.monotonic() - started > _STABLE_AFTER_S else failures + 1
            delay = min(self.backoff_max_s, self.backoff_initial_s * 2 ** max(failures - 1, 0))
            await asyncio.sleep(delay * random.uniform(0.5, 1.0))

    async def _session(self) -> None:
        async with connect(
            self.url,
            additional_headers={"Cookie": self._cookie()},
            ping_interval=self.settings.ping_interval_s,
            ping_timeout=self.settings.ping_timeout_s,
            open_timeout=self.settings.request_timeout_s,
            user_agent_header=self.settings.client,
            max_size=self.settings.event_message_max_bytes,  # larger: closed with 1009, then reconnected
            # Events are a few hundred bytes: deflate would cost CPU and about 300 KB of zlib state.
            compression=None,
            ssl=self.tls if self.url.startswith("wss://") else None,
        ) as websocket:
            self.connects += 1
            log.info("Connected to the Mews event stream")
            await self.on_connect()
            self.connected.set()
            metrics.stream_connected()
            async for message in websocket:
                metrics.stream_event()
                events = _parse(message)
                if events:
                    await self.on_events(events)


def _parse(message: str | bytes) -> list[dict[str, Any]]:
    """The events in a message; a malformed message, or an event that is not valid text, is dropped
    with one WARNING (no traceback: it is the message that is wrong, not the bridge)."""
    try:
        body = json.loads(message)
        events = body["Events"]
    except (ValueError, KeyError, TypeError, RecursionError):
        log.warning("Ignored a malformed message on the Mews event stream (%d characters)", len(message))
        return []
    if not isinstance(events, list):
        log.warning("Ignored a message on the Mews event stream without a list of events")
        return []
    kept, refused = [], []
    for event in events:
        if not isinstance(event, dict):
            refused.append("not an object")
        elif deeper_than(event, MAX_EVENT_DEPTH):
            refused.append(f"nested deeper than {MAX_EVENT_DEPTH}")
        elif (bad := unencodable_path(event)) is not None:
            refused.append(f"{bad[:80]} is not valid text")
        else:
            kept.append(event)
    if refused:
        log.warning("Ignored %d event(s) on the Mews event stream (the first: %s)", len(refused), refused[0])
    return kept

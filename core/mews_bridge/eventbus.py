"""A small in-process bus for Mews events that plugins follow (``Reservation``, ``Resource``).

The bridge publishes every non-command event it receives, plus ``{"Type": "Connected"}`` after each
(re)connect of the event stream, so a subscriber can resync whatever it may have missed. Handlers
run as their own tasks: a slow or failing subscriber never holds up the stream or the others.
"""

from __future__ import annotations

import asyncio
import logging
from collections import defaultdict
from collections.abc import Awaitable, Callable
from typing import Any

log = logging.getLogger(__name__)
Event = dict[str, Any]
Handler = Callable[[Event], Awaitable[None]]
CONNECTED = "Connected"


class EventBus:
    def __init__(self) -> None:
        self._handlers: dict[str, list[Handler]] = defaultdict(list)
        self._tasks: set[asyncio.Task[None]] = set()

    def subscribe(self, event_type: str, handler: Handler) -> Callable[[], None]:
        """Call ``handler(event)`` for each event of ``event_type``; returns an unsubscribe function."""
        self._handlers[event_type].append(handler)
        return lambda: (
            self._handlers[event_type].remove(handler) if handler in self._handlers[event_type] else None
        )

    def has_subscribers(self, event_type: str) -> bool:
        return bool(self._handlers.get(event_type))

    def publish(self, event: Event) -> None:
        for handler in list(self._handlers.get(event.get("Type", ""), ())):
            task = asyncio.create_task(self._deliver(handler, event), name=f"event {event.get('Type')}")
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _deliver(self, handler: Handler, event: Event) -> None:
        try:
            await handler(event)
        except Exception as exc:
            log.error("A subscriber failed on a %s event", event.get("Type"), exc_info=exc)

    async def aclose(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

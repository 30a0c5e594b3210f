"""The core's background tasks, kept running: one that ends with an exception is logged at CRITICAL
and started again after a short, growing pause. Restarts show in the diagnostics, so a task never
disappears silently.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

log = logging.getLogger(__name__)
TaskFactory = Callable[[], Coroutine[Any, Any, None]]


@dataclass
class _Supervised:
    name: str
    factory: TaskFactory
    task: asyncio.Task[None] | None = None
    restarts: int = 0
    last_failure: str | None = None
    last_failure_at: str | None = None


class Supervisor:
    def __init__(self, *, restart_initial_s: float = 1.0, restart_max_s: float = 60.0) -> None:
        self.restart_initial_s = restart_initial_s
        self.restart_max_s = restart_max_s
        self._entries: dict[str, _Supervised] = {}
        self._pending: set[asyncio.Task[None]] = set()
        self._stopping = False

    def start(self, name: str, factory: TaskFactory) -> asyncio.Task[None]:
        """Run ``factory()`` as the task ``name``; returning ends it, an exception restarts it."""
        entry = self._entries.setdefault(name, _Supervised(name, factory))
        entry.factory = factory
        entry.task = asyncio.create_task(factory(), name=name)
        entry.task.add_done_callback(lambda task: self._ended(entry, task))
        return entry.task

    def task(self, name: str) -> asyncio.Task[None] | None:
        entry = self._entries.get(name)
        return entry.task if entry else None

    def _ended(self, entry: _Supervised, task: asyncio.Task[None]) -> None:
        if self._stopping or task.cancelled() or task is not entry.task:
            return
        exc = task.exception()
        if exc is None:
            return
        entry.restarts += 1
        entry.last_failure = f"{type(exc).__name__}: {exc}"[:500]
        entry.last_failure_at = datetime.now(UTC).isoformat(timespec="seconds")
        delay = min(self.restart_max_s, self.restart_initial_s * 2 ** min(entry.restarts - 1, 16))
        log.critical(
            "The bridge's %r task stopped unexpectedly; restarting it in %g s (restart %d)",
            entry.name,
            delay,
            entry.restarts,
            exc_info=exc,
        )
        restart = asyncio.create_task(self._restart(entry, delay), name=f"restart {entry.name}")
        self._pending.add(restart)
        restart.add_done_callback(self._pending.discard)

    async def _restart(self, entry: _Supervised, delay: float) -> None:
        await asyncio.sleep(delay)
        if not self._stopping:
            self.start(entry.name, entry.factory)

    def tasks(self) -> list[asyncio.Task[None]]:
        return [entry.task for entry in self._entries.values() if entry.task is not None]

    async def stop(self, names: list[str] | None = None) -> None:
        """Cancel the named tasks (all by default) and wait for them; nothing restarts after this."""
        chosen = [e for e in self._entries.values() if names is None or e.name in names]
        if names is None:
            self._stopping = True
            for pending in list(self._pending):
                pending.cancel()
        tasks = [e.task for e in chosen if e.task is not None]
        for entry in chosen:
            entry.task = None
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, *self._pending, return_exceptions=True)

    def status(self) -> dict[str, Any]:
        """Per task: running or not, how often it was restarted and why the last time."""
        return {
            entry.name: {
                "running": entry.task is not None and not entry.task.done(),
                "restarts": entry.restarts,
                "last_failure": entry.last_failure,
                "last_failure_at": entry.last_failure_at,
            }
            for entry in self._entries.values()
        }

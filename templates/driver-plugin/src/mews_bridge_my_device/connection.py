"""The device's protocol: one JSON object per line over TCP, each way.

``{"op": "status"}`` is answered with ``{"ok": true, "model": "..."}``. ``{"op": "run", "id": ...,
"type": ..., "data": {...}}`` is answered with any number of ``{"progress": 0.5}`` lines, then
``{"ok": true, "warning": "..." | null}`` or ``{"ok": false, "error": "...", "rejected": bool}``.

Replace this module with your device's protocol. It knows nothing of Mews or the bridge, so it can be
tested on its own; the driver translates its outcomes into Notes.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from typing import Any


class Connection:
    """One TCP connection to the device; every failure is an ``OSError`` (timeouts included)."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._reader = reader
        self._writer = writer

    @classmethod
    async def open(cls, host: str, port: int, timeout_s: float) -> Connection:
        async with asyncio.timeout(timeout_s):
            reader, writer = await asyncio.open_connection(host, port)
        return cls(reader, writer)

    async def send(self, message: dict[str, Any]) -> None:
        self._writer.write(json.dumps(message).encode() + b"\n")
        await self._writer.drain()

    async def receive(self, timeout_s: float) -> dict[str, Any]:
        """The next message; ``ConnectionError`` if the device hung up, ``TimeoutError`` if it is silent."""
        async with asyncio.timeout(timeout_s):
            try:
                line = await self._reader.readline()
            except ValueError as exc:  # longer than the reader's limit
                raise ConnectionError("the device sent an overlong line") from exc
        if not line.endswith(b"\n"):
            raise ConnectionError("the device closed the connection")
        try:
            message = json.loads(line)
        except ValueError as exc:
            raise ConnectionError(f"unreadable reply {line[:80]!r}") from exc
        if not isinstance(message, dict):
            raise ConnectionError(f"unexpected reply {line[:80]!r}")
        return message

    async def close(self) -> None:
        self._writer.close()
        with contextlib.suppress(OSError):
            await self._writer.wait_closed()

"""Fixtures: a simulator of the device, the device configured in a bridge, and leak checks on every test.

``bridge_harness``, ``verify_cleanup`` and ``verify_no_lingering_tasks`` come from the pytest plugin of
mews-bridge-hardware-mocks. With ``--import-mode=importlib`` test modules cannot import this file:
share helpers as fixtures.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

import pytest
import pytest_asyncio

from mews_bridge_my_device.driver import MyDeviceDriver

DEVICE = "Front desk device"


class DeviceSimulator:
    """The device on loopback, speaking its protocol over a real socket; tests set how it answers.

    Replace it with a simulator of your device that speaks your protocol.
    """

    def __init__(self) -> None:
        self.model = "Simulated device"
        self.progress: list[float] = []
        """Progress reported before each answer."""
        self.warning: str | None = None
        self.error: str | None = None
        """Fail every job with this error."""
        self.rejected = False
        """Say that the failed job's data was at fault."""
        self.hang_up = False
        """Close the connection on the next job instead of answering."""
        self.silent = False
        """Take jobs without ever answering."""
        self.jobs: list[dict[str, Any]] = []
        self.port = 0
        self._server: asyncio.Server | None = None
        self._connections: dict[asyncio.StreamWriter, asyncio.Task[Any]] = {}

    async def switch_on(self) -> None:
        """Listen (again, on the same port)."""
        # Commands carry whole documents: allow long lines.
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", self.port, limit=2**24)
        self.port = self._server.sockets[0].getsockname()[1]

    async def switch_off(self) -> None:
        """Stop listening and drop every connection."""
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None
        for writer in self._connections:
            writer.close()
        await asyncio.gather(*self._connections.values(), return_exceptions=True)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._connections[writer] = task
        try:
            while line := await reader.readline():
                request = json.loads(line)
                if request["op"] == "status":
                    await self._send(writer, {"ok": True, "model": self.model})
                    continue
                self.jobs.append(request)
                if self.hang_up:
                    self.hang_up = False
                    break
                if not self.silent:
                    await self._answer(writer)
        finally:
            del self._connections[writer]
            writer.close()

    async def _answer(self, writer: asyncio.StreamWriter) -> None:
        for fraction in self.progress:
            await self._send(writer, {"progress": fraction})
        if self.error:
            await self._send(writer, {"ok": False, "error": self.error, "rejected": self.rejected})
        else:
            await self._send(writer, {"ok": True, "warning": self.warning})

    @staticmethod
    async def _send(writer: asyncio.StreamWriter, message: dict[str, Any]) -> None:
        writer.write(json.dumps(message).encode() + b"\n")
        await writer.drain()


@pytest.fixture(autouse=True)
def _no_leaks(verify_cleanup, verify_no_lingering_tasks):
    """Every test fails if it leaves tasks, threads or sockets behind."""


@pytest_asyncio.fixture
async def device_simulator() -> AsyncIterator[DeviceSimulator]:
    simulator = DeviceSimulator()
    await simulator.switch_on()
    yield simulator
    await simulator.switch_off()


@pytest.fixture
def desk_device(bridge_harness, device_simulator) -> str:
    """The device, configured in Mews and in the bridge (not started yet); returns its name."""
    options = {
        "host": "127.0.0.1",
        "port": device_simulator.port,
        "connect_timeout_s": 1,
        "reply_timeout_s": 5,
    }
    bridge_harness.add_device(DEVICE, MyDeviceDriver, options)
    return DEVICE

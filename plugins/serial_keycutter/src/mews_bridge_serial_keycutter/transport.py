"""Bytes to and from the encoder through pyserial, opened from a URL.

``serial_for_url`` accepts device paths (``/dev/serial/by-id/…``), ``socket://host:port`` (serial
servers, TCP encoders), ``rfc2217://host:port`` and ``spy://`` for a hex log of the line.

pyserial blocks, so every call runs on one worker thread per port: the event loop never waits on the
port, and calls stay in order. Reads are short slices, so a cancelled wait frees the worker quickly.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

import serial

LOGGER = logging.getLogger(__name__)

POLL_INTERVAL_S = 0.05
"""Longest a single read blocks the worker thread."""
WRITE_TIMEOUT_S = 2.0
MAX_READ_BYTES = 4096

T = TypeVar("T")


class SerialTransport:
    """One encoder port. Methods raise ``OSError`` (pyserial's ``SerialException`` is one) on I/O
    failure and ``ValueError`` for a URL pyserial does not understand."""

    def __init__(
        self,
        url: str,
        *,
        baudrate: int = 9600,
        parity: str = "N",
        rtscts: bool = False,
        name: str = "encoder",
    ) -> None:
        self.url = url
        self._baudrate, self._parity, self._rtscts = baudrate, parity, rtscts
        self._name = name
        self._serial: serial.Serial | None = None
        self._executor: ThreadPoolExecutor | None = None
        self._stale_input = False  # discard_input() was called: drop what arrived before the next I/O

    @property
    def is_open(self) -> bool:
        return self._serial is not None

    async def open(self) -> None:
        if self._serial is None:
            await self._run(self._open)

    async def close(self) -> None:
        if self._executor is None:
            return
        try:
            await self._run(self._close)
        finally:
            # The worker is idle once _close ran, so this does not wait.
            self._executor.shutdown(wait=False)
            self._executor = None

    async def write(self, data: bytes) -> None:
        await self._run(self._write, data, self._take_stale())

    async def read(self) -> bytes:
        """What arrives within one poll interval, possibly nothing."""
        return await self._run(self._read_available, self._take_stale())

    async def discard_input(self) -> None:
        """Drop bytes left over from an abandoned exchange, before the next write or read.

        Done on the worker thread in the same hand-off as that write or read: one thread round trip
        less before a request's first byte."""
        self._stale_input = True

    def _take_stale(self) -> bool:
        stale, self._stale_input = self._stale_input, False
        return stale

    async def _run(self, func: Callable[..., T], *args: object) -> T:
        if self._executor is None:
            self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"keycutter {self._name}")
        return await asyncio.get_running_loop().run_in_executor(self._executor, func, *args)

    # The methods below run on the worker thread.

    def _open(self) -> None:
        LOGGER.debug("Opening %s", self.url)
        # exclusive: a second bridge or a lock vendor's tool must not share the encoder's port.
        self._serial = serial.serial_for_url(
            self.url,
            baudrate=self._baudrate,
            parity=self._parity,
            rtscts=self._rtscts,
            timeout=POLL_INTERVAL_S,
            write_timeout=WRITE_TIMEOUT_S,
            exclusive=True,
        )

    def _close(self) -> None:
        port, self._serial = self._serial, None
        if port is not None:
            port.close()

    def _port(self) -> serial.Serial:
        if self._serial is None:
            raise serial.PortNotOpenError()
        return self._serial

    def _write(self, data: bytes, reset_input: bool) -> None:
        port = self._port()
        if reset_input:
            port.reset_input_buffer()
        port.write(data)
        port.flush()

    def _read_available(self, reset_input: bool) -> bytes:
        port = self._port()
        if reset_input:
            port.reset_input_buffer()
        data = port.read(1)
        while data and len(data) < MAX_READ_BYTES and (waiting := port.in_waiting):
            data += port.read(min(waiting, MAX_READ_BYTES))
        return data

"""``mews-bridge run`` in a child process, for tests that kill it (SIGKILL) and start it again."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import time
from collections.abc import Mapping
from pathlib import Path


class BridgeProcess:
    """The bridge as systemd runs it: ``python -m mews_bridge --config CONFIG run``; its log (stderr)
    goes to ``log``, appended across restarts. ``python`` is the interpreter (this one by default;
    another venv's to run the bridge as installed there)."""

    def __init__(
        self, config: Path, log: Path, env: Mapping[str, str] | None = None, python: str = sys.executable
    ) -> None:
        self.config = config
        self.log = log
        self.python = python
        self.env = {**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})}
        self.process: asyncio.subprocess.Process | None = None
        self.started_at = 0.0
        """When the last :meth:`start` happened (monotonic)."""

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.returncode is None

    async def start(self) -> None:
        with self.log.open("ab") as log:
            self.process = await asyncio.create_subprocess_exec(
                self.python,
                "-m",
                "mews_bridge",
                "--config",
                str(self.config),
                "run",
                stdout=asyncio.subprocess.DEVNULL,
                stderr=log,
                env=self.env,
            )
        self.started_at = time.monotonic()

    async def stop(self, sig: int = signal.SIGTERM, timeout_s: float = 20.0) -> int:
        """Send ``sig`` and wait for the exit (SIGKILL after ``timeout_s``); returns the exit code."""
        assert self.process is not None
        if self.process.returncode is None:
            self.process.send_signal(sig)
            try:
                await asyncio.wait_for(self.process.wait(), timeout_s)
            except TimeoutError:
                self.process.kill()
                await self.process.wait()
        assert self.process.returncode is not None
        return self.process.returncode

    def output(self) -> bytes:
        """Everything the bridge wrote to stderr so far."""
        return self.log.read_bytes() if self.log.exists() else b""

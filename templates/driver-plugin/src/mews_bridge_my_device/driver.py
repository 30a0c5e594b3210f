"""The ``my_device`` driver: the device carries out Mews ``Printer`` commands, one at a time."""

from __future__ import annotations

import asyncio
from typing import Any, ClassVar

from mews_bridge import CommandFailed, CommandJob, CommandRejected, DeviceDriver, DeviceNotReady

from .connection import Connection
from .options import MyDeviceOptions


class MyDeviceDriver(DeviceDriver[MyDeviceOptions]):
    name = "my_device"
    """What the settings name: ``driver = "my_device"``."""
    device_type = "Printer"
    """The Mews device type served; ``job.data`` is the core's model of its commands' ``Data``."""
    Options: ClassVar[type[MyDeviceOptions]] = MyDeviceOptions
    replay_safe = False
    """Set True only if carrying out a command again after a crash does no harm (printing a page
    twice); then the bridge re-runs a command a crash cut off instead of calling ``recover``."""

    _connection: Connection | None = None
    _model: str | None = None
    _last_error: str | None = None
    _commands = 0

    async def setup(self) -> None:
        try:
            await self._connect()
        except OSError as exc:
            # Switched off or unplugged: the bridge tries again later, with backoff, without noise.
            raise DeviceNotReady(self._unreachable(exc)) from exc

    async def unload(self) -> None:
        await self._disconnect()

    async def diagnostics(self) -> dict[str, Any]:
        return {
            "address": f"{self.options.host}:{self.options.port}",
            "connected": self._connection is not None,
            "model": self._model,
            "commands": self._commands,
            "last_error": self._last_error,
        }

    async def execute(self, job: CommandJob[Any]) -> str | None:
        connection = self._connection or await self._reconnect()
        self._commands += 1
        data = job.data.model_dump(mode="json", by_alias=True, exclude_none=True)
        try:
            await connection.send({"op": "run", "id": job.id, "type": self.device_type, "data": data})
            reply = await connection.receive(self.options.reply_timeout_s)
            while "progress" in reply:
                await job.progress(float(reply["progress"]))
                reply = await connection.receive(self.options.reply_timeout_s)
        except OSError as exc:
            await self._disconnect()
            # The device had the command: say it may be done rather than invite a blind second run.
            raise self._failed(
                f"{self.ctx.name} lost contact while working on this command ({_reason(exc)}). "
                "It may have finished: check the device before issuing the command again."
            ) from exc
        except asyncio.CancelledError:
            # Cancelled in Mews. Drop the line, or the device's late answer would pass for the next one's.
            await self._disconnect()
            raise
        if reply.get("ok"):
            self._last_error = None
            return reply.get("warning")  # the Notes of a Processed command, e.g. "Paper near end"
        error = f"{self.ctx.name}: {reply.get('error') or 'the device refused the command'}"
        if reply.get("rejected"):
            raise CommandRejected(error)  # the command's data, not the device, is at fault
        raise self._failed(error)

    async def _connect(self) -> Connection:
        options = self.options
        connection = await Connection.open(options.host, options.port, options.connect_timeout_s)
        try:
            await connection.send({"op": "status"})
            status = await connection.receive(options.reply_timeout_s)
        except BaseException:
            await connection.close()
            raise
        self._model = status.get("model")
        self._connection = connection
        return connection

    async def _reconnect(self) -> Connection:
        """Open the connection again after an earlier command lost it."""
        try:
            return await self._connect()
        except OSError as exc:
            raise self._failed(
                f"{self._unreachable(exc)}. Check that it is switched on and connected."
            ) from exc

    async def _disconnect(self) -> None:
        connection, self._connection = self._connection, None
        if connection is not None:
            await connection.close()

    def _unreachable(self, exc: OSError) -> str:
        return f"{self.ctx.name} does not answer at {self.options.host}:{self.options.port} ({_reason(exc)})"

    def _failed(self, notes: str) -> CommandFailed:
        """A command failure the front desk reads in Mews, also kept for diagnostics."""
        self._last_error = notes
        return CommandFailed(notes)


def _reason(exc: OSError) -> str:
    return "no answer in time" if isinstance(exc, TimeoutError) else exc.strerror or str(exc)

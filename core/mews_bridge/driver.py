"""What a plugin implements: device drivers (run Mews device commands) and services (long-running
integrations such as a PBX).

A plugin registers the *classes* through the hooks in :mod:`mews_bridge.hookspecs`; the host makes one
instance per configured device or service and supervises it through a lifecycle modelled on Home
Assistant's config entries (see :mod:`mews_bridge.lifecycle`):

* ``setup()`` opens the transport and checks the device. Raise :class:`~mews_bridge.DeviceNotReady`
  when it cannot be reached yet (it is retried with capped backoff), :class:`~mews_bridge.DeviceConfigError`
  or :class:`~mews_bridge.DeviceAuthFailed` when retrying cannot help.
* ``unload()`` closes what ``setup()`` opened; callbacks given to ``ctx.on_unload`` run after it.
* ``diagnostics()`` returns a dict; the host redacts secrets before showing it.

Everything here is async and runs on the bridge's event loop: never block it. Blocking I/O (pyserial,
PDF rendering) goes through ``asyncio.to_thread`` or an executor.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
from abc import ABC, abstractmethod
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Generic, TypeVar

from pydantic import BaseModel, ConfigDict

from .exceptions import CommandFailed
from .mews.models import COMMAND_DATA_MODELS, DeviceCommand

if TYPE_CHECKING:
    from .eventbus import EventBus
    from .journal import KeyValueStore
    from .mews.client import MewsClient
    from .mews.enterprise import Enterprise

OptionsT = TypeVar("OptionsT", bound=BaseModel)
DataT = TypeVar("DataT", bound=BaseModel)


class NoOptions(BaseModel):
    """Options model for a driver or service that takes none."""

    model_config = ConfigDict(extra="forbid")


class LocalDevices(ABC):
    """Lets one instance hand work to another configured device (a fiscal receipt to a printer)."""

    @abstractmethod
    async def run(self, device_name: str, data: dict[str, Any]) -> str | None:
        """Run ``data`` (shaped like the Mews ``Data`` of that device's type) on the named device.

        The job waits its turn in that device's queue, is not reported to Mews, and returns the
        driver's notes; a failure raises :class:`~mews_bridge.CommandError`.
        """


@dataclass(eq=False)
class InstanceContext:
    """What the host gives each driver or service instance."""

    name: str
    """The configured name (``[[devices]] name``), also used in log lines and Notes."""
    state_dir: Path
    """A directory of the instance's own (created on first use of :meth:`ensure_state_dir`)."""
    mews: MewsClient
    """The bridge's one Connector API client; it shares the rate limit with the core."""
    events: EventBus
    """Subscribe to Mews ``Reservation`` and ``Resource`` events."""
    store: KeyValueStore
    """Small durable key/value state, kept in the bridge's journal under this instance's name."""
    devices: LocalDevices
    logger: logging.Logger
    _enterprise: Callable[[], Awaitable[Enterprise]]
    _unload_callbacks: list[Callable[[], Any]] = field(default_factory=list)
    _tasks: set[asyncio.Task[Any]] = field(default_factory=set)
    _stop: Callable[[str], None] | None = None

    async def enterprise(self) -> Enterprise:
        """The property's settings from ``configuration/get`` (time zone, currency, pricing), cached."""
        return await self._enterprise()

    def ensure_state_dir(self) -> Path:
        """Create the instance's state directory (owner-only) and return it."""
        self.state_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        return self.state_dir

    def on_unload(self, callback: Callable[[], Any]) -> None:
        """Run ``callback`` (sync or async) when the instance unloads or its setup fails."""
        self._unload_callbacks.append(callback)

    def stop(self, reason: str) -> None:
        """Unload this instance for good (until the bridge restarts), e.g. when Mews refuses its
        credentials: it shows ``setup_error`` with ``reason``. Returns at once; the unload follows."""
        if self._stop is None:
            raise RuntimeError(f"{self.name} is not managed by a bridge")
        self._stop(reason)

    def bind(self, stop: Callable[[str], None]) -> None:
        """For the host managing the instance: :meth:`stop` calls ``stop(reason)``."""
        self._stop = stop

    async def close(self) -> None:
        """Cancel the instance's background tasks, then run its unload callbacks, newest first.

        The host calls it after every unload and failed setup; a test that builds a context calls it
        when done. A callback that fails is logged and the others still run.
        """
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        callbacks, self._unload_callbacks[:] = list(self._unload_callbacks), []
        for callback in reversed(callbacks):
            try:
                result = callback()
                if inspect.isawaitable(result):
                    await result
            except Exception as exc:
                self.logger.error("%s: an unload callback failed", self.name, exc_info=exc)

    def create_task(self, coro: Coroutine[Any, Any, Any], name: str) -> asyncio.Task[Any]:
        """Start a background task the host owns: a crash is logged, unload cancels it."""
        task = asyncio.create_task(coro, name=f"{self.name}: {name}")
        self._tasks.add(task)
        task.add_done_callback(self._task_done)
        return task

    def _task_done(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            self.logger.error("Background task %r crashed", task.get_name(), exc_info=task.exception())


class CommandJob(Generic[DataT]):
    """One Mews device command handed to a driver: its validated data and a way to report progress."""

    def __init__(
        self,
        command: DeviceCommand,
        data: DataT,
        report_progress: Callable[[float], Awaitable[None]],
        *,
        interrupted: bool = False,
    ) -> None:
        self.command = command
        self.data = data
        self.interrupted = interrupted
        """True when an earlier run of this command was cut off (the bridge died mid-run)."""
        self._report_progress = report_progress

    @property
    def id(self) -> str:
        return self.command.id

    async def progress(self, fraction: float) -> None:
        """Report how far the work is, from 0.0 to 1.0; the host throttles what reaches Mews."""
        await self._report_progress(min(max(fraction, 0.0), 1.0))


class Instance(ABC, Generic[OptionsT]):
    """Common base of drivers and services."""

    name: ClassVar[str]
    """The registered name users write in settings (``driver = "escpos_printer"``)."""
    Options: ClassVar[type[BaseModel]] = NoOptions
    """Pydantic model of the ``options`` table; validated before the instance is made."""
    secret_options: ClassVar[frozenset[str]] = frozenset()
    """Option names redacted in diagnostics and logs beyond the usual secret/token/password names."""
    plugin_version: ClassVar[str] = "unknown"
    """Set by the host from the distribution that registered the class."""

    def __init__(self, ctx: InstanceContext, options: OptionsT) -> None:
        self.ctx = ctx
        self.options = options

    async def setup(self) -> None:
        """Open the transport and check the device or peer."""

    async def unload(self) -> None:
        """Close what :meth:`setup` opened."""

    async def diagnostics(self) -> dict[str, Any]:
        """State worth showing to an installer; secrets are redacted by the host."""
        return {}

    async def status(self) -> dict[str, Any]:
        """A few facts for the status page and ``mews-bridge status`` (``{"paper": "out"}``), read
        often: answer from what is already known, without talking to the device."""
        return {}


class DeviceDriver(Instance[OptionsT]):
    """Carries out Mews device commands for one configured device.

    The host runs one command at a time per device, in order. ``execute`` returns the Notes of a
    ``Processed`` command (a warning such as "Paper near end", or None) and raises
    :class:`~mews_bridge.CommandFailed` or :class:`~mews_bridge.CommandRejected` for ``Error``. If Mews
    cancels the command, the task running ``execute`` is cancelled: clean up in ``finally`` and shield
    what must not be cut in half.
    """

    device_type: ClassVar[str]
    """The Mews ``Device.Type`` served: ``Printer``, ``KeyCutter``, ``FiscalMachine``, …"""
    replay_safe: ClassVar[bool] = False
    """True if running a command again after a crash does no harm (printing a page twice)."""
    command_timeout_s: ClassVar[float] = 600.0
    """Longest a command may run before it ends in Error (the driver should time out sooner itself)."""
    command_data: ClassVar[type[BaseModel] | None] = None
    """Model of the command's ``Data``; by default the Mews model for ``device_type``."""

    @classmethod
    def data_model(cls) -> type[BaseModel]:
        return cls.command_data or COMMAND_DATA_MODELS[cls.device_type]

    @abstractmethod
    async def execute(self, job: CommandJob[Any]) -> str | None:
        """Carry out the command; return Notes for ``Processed``."""

    async def recover(self, job: CommandJob[Any]) -> str | None:
        """Finish a command whose earlier run was cut off, for a driver that is not replay-safe.

        Return Notes if the driver's own records show it completed; raise ``CommandFailed`` otherwise.
        """
        raise CommandFailed(
            f"{self.ctx.name} was interrupted while working on this command and cannot tell whether it "
            "finished. Please check the device and issue the command again."
        )


class Service(Instance[OptionsT]):
    """A long-running integration not driven by device commands (a PBX).

    Start background work in :meth:`setup` with ``ctx.create_task``; the host cancels it on unload.
    """

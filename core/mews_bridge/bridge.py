"""The bridge: settings and plugins in, a running Mews connection with supervised devices and services out."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ValidationError

from .driver import Instance, InstanceContext
from .eventbus import CONNECTED, EventBus
from .exceptions import ConfigurationError
from .http_server import StatusServer
from .inputs import is_guid
from .journal import Journal, JournalError
from .lifecycle import ManagedInstance
from .mews.client import MewsClient
from .mews.errors import MewsAuthError, MewsError
from .mews.stream import EventStream
from .pipeline import CommandPipeline
from .plugins import PluginHost
from .redaction import redactor
from .settings import DeviceEntry, ServiceEntry, Settings, format_validation_error
from .supervisor import Supervisor
from .version import __version__
from .watchdog import LoopWatchdog

log = logging.getLogger(__name__)
JOURNAL_FILE = "journal.sqlite3"
DIAGNOSTICS_FILE = "diagnostics.json"
_IDS_KEPT = timedelta(days=365)
"""Acknowledged commands' ids and outcomes stay this long (their data go sooner, data_retention_days)."""


@dataclass(frozen=True)
class PlannedInstance:
    """A ``[[devices]]`` or ``[[services]]`` entry matched with its class and validated options."""

    kind: Literal["device", "service"]
    entry: DeviceEntry | ServiceEntry
    cls: type[Instance[Any]]
    options: BaseModel


def _write_private(path: Path, text: str) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as out:
        out.write(text)


def _slug(name: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", name.casefold()).strip("-") or "instance"


def instance_state_dir(state_dir: Path, name: str) -> Path:
    """Where a configured device or service keeps its own files (also for plugins' CLI commands)."""
    return state_dir / "instances" / _slug(name)


def store_namespace(entry: DeviceEntry | ServiceEntry) -> str:
    """Where a configured device or service keeps its key/value state in the journal."""
    return f"{'device' if isinstance(entry, DeviceEntry) else 'service'}:{entry.name}"


def plan_instances(settings: Settings, host: PluginHost) -> list[PlannedInstance]:
    """Match every configured device and service with a registered class and validate its options.

    Raises :class:`ConfigurationError` listing every problem, one line each, naming the setting's path.
    """
    errors: list[str] = []
    planned: list[PlannedInstance] = []
    sections: list[tuple[str, list[Any], dict[str, type[Instance[Any]]], str]] = [
        ("devices", settings.devices, dict(host.drivers), "driver"),
        ("services", settings.services, dict(host.services), "service"),
    ]
    names: set[str] = set()
    bound: dict[str, str] = {}
    for section, entries, registered, field in sections:
        for index, entry in enumerate(entries):
            path = f"{section}[{index}]"
            wanted = getattr(entry, field)
            if entry.name in names:
                errors.append(f"{path}.name: {entry.name!r} is used twice; names must be unique")
            names.add(entry.name)
            if isinstance(entry, DeviceEntry):
                if entry.mews_device.casefold() in bound:
                    errors.append(
                        f"{path}.mews_device: {entry.mews_device!r} is already served by {bound[entry.mews_device.casefold()]!r}"
                    )
                bound[entry.mews_device.casefold()] = entry.name
            cls = registered.get(wanted)
            if cls is None:
                installed = ", ".join(sorted(registered)) or "none"
                errors.append(
                    f"{path}.{field}: no {field} called {wanted!r} is installed (installed: {installed})"
                )
                continue
            try:
                options = cls.Options.model_validate(entry.options)
            except ValidationError as exc:
                plugin = f" ({field} {wanted} {cls.plugin_version})"
                errors.append(format_validation_error(exc, prefix=f"{path}.options", suffix=plugin))
                continue
            planned.append(
                PlannedInstance("device" if section == "devices" else "service", entry, cls, options)
            )
    if errors:
        raise ConfigurationError("\n".join(errors))
    return planned


class Bridge:
    """Runs until :meth:`stop`; ``fatal`` holds the error that made it stop on its own (a 401)."""

    def __init__(
        self,
        settings: Settings,
        host: PluginHost,
        *,
        setup_retry_initial_s: float = 5.0,
        setup_retry_max_s: float = 80.0,
        stream_backoff_max_s: float = 60.0,
        recovery_retry_s: float = 5.0,
        journal_busy_timeout_s: float = 5.0,
    ) -> None:
        self.settings = settings
        self.host = host
        self.planned = plan_instances(settings, host)
        self.setup_retry_initial_s = setup_retry_initial_s
        self.setup_retry_max_s = setup_retry_max_s
        self.stream_backoff_max_s = stream_backoff_max_s
        self.recovery_retry_s = recovery_retry_s
        """First pause before settling the last run's commands again (Mews unreachable, journal busy)."""
        self.journal_busy_timeout_s = journal_busy_timeout_s
        self.fatal: BaseException | None = None
        self.stopped = asyncio.Event()
        self.instances: list[ManagedInstance] = []
        self.mews: MewsClient | None = None
        self.journal: Journal | None = None
        self.pipeline: CommandPipeline | None = None
        self.events = EventBus()
        self.stream: EventStream | None = None
        self.watchdog = LoopWatchdog(host)
        self.supervisor = Supervisor()
        self.started_at = datetime.now(UTC)
        self.http: StatusServer | None = None
        redactor.add_from(settings)

    @property
    def state_dir(self) -> Path:
        return self.settings.bridge.state_dir

    async def start(self) -> None:
        """Open the journal, start every device and service, settle last run's commands, connect."""
        self.journal = await Journal.open(
            self.state_dir / JOURNAL_FILE, busy_timeout_s=self.journal_busy_timeout_s
        )
        self.mews = MewsClient(self.settings.mews)
        self.pipeline = CommandPipeline(
            self.mews, self.journal, self.settings.bridge, on_fatal=self._fail, supervisor=self.supervisor
        )
        for plan in self.planned:
            managed = self._manage(plan)
            self.instances.append(managed)
            if isinstance(plan.entry, DeviceEntry):
                self.pipeline.add_device(managed, plan.entry.mews_device)
        for managed in self.instances:
            log.info(
                "Starting %s %r (%s %s)",
                managed.kind,
                managed.name,
                managed.cls.name,
                managed.cls.plugin_version,
            )
            managed.start()
        self.pipeline.start()
        self.stream = EventStream(
            self.settings.mews,
            self._on_events,
            self._on_connect,
            backoff_max_s=self.stream_backoff_max_s,
            tls=self.mews.tls,
        )
        self.supervisor.start("loop watchdog", self.watchdog.run)
        self.supervisor.start("recovery", self._recover)
        self.supervisor.start("mews stream", self._stream)
        self.supervisor.start("sweep", self._sweep)
        if self.settings.bridge.http:
            self.http = StatusServer(self)
            await self.http.start()

    def _manage(self, plan: PlannedInstance) -> ManagedInstance:
        assert self.mews is not None and self.journal is not None and self.pipeline is not None
        ctx = InstanceContext(
            name=plan.entry.name,
            state_dir=instance_state_dir(self.state_dir, plan.entry.name),
            mews=self.mews,
            events=self.events,
            store=self.journal.store(store_namespace(plan.entry)),
            devices=self.pipeline,
            logger=logging.getLogger(f"mews_bridge.{plan.kind}.{_slug(plan.entry.name)}"),
            _enterprise=self.mews.enterprise,
        )
        redactor.add_from(plan.options)
        return ManagedInstance(
            plan.kind,
            plan.cls,
            plan.options,
            ctx,
            retry_initial_s=self.setup_retry_initial_s,
            retry_max_s=self.setup_retry_max_s,
        )

    async def _recover(self) -> None:
        """Settle the last run's commands beside the stream, never before it: new work never waits."""
        assert self.pipeline is not None
        delay = self.recovery_retry_s
        while True:
            try:
                await self.pipeline.recover()
                return
            except MewsAuthError as exc:
                self._fail(exc)
                return
            except MewsError as exc:
                log.warning("Could not reach Mews to settle the last run's commands (%s); retrying", exc)
            except JournalError as exc:  # busy or failing: try again, never give up
                log.error("Could not settle the last run's commands; retrying", exc_info=exc)
            await asyncio.sleep(delay)
            delay = min(delay * 2, self.stream_backoff_max_s)

    async def _stream(self) -> None:
        assert self.stream is not None
        try:
            await self.stream.run()
        except MewsAuthError as exc:
            self._fail(exc)

    async def _on_connect(self) -> None:
        assert self.pipeline is not None
        try:
            await self.pipeline.catch_up()
        except MewsAuthError as exc:
            self._fail(exc)
        except MewsError as exc:
            log.warning("Catch-up after connecting failed (%s); the next sweep repeats it", exc)
        except JournalError as exc:  # the next sweep repeats it
            log.error("Catch-up after connecting failed", exc_info=exc)
        self.events.publish({"Type": CONNECTED})

    async def _on_events(self, events: list[dict[str, Any]]) -> None:
        assert self.pipeline is not None
        for event in events:
            try:
                self._on_event(event)
            except Exception as exc:  # one event never stops the ones after it
                log.error("Could not handle a %r event", str(event.get("Type"))[:40], exc_info=exc)

    def _on_event(self, event: dict[str, Any]) -> None:
        assert self.pipeline is not None
        kind = event.get("Type")
        ident = event.get("Id")
        if kind == "DeviceCommand" and is_guid(ident):  # one bad id would make Mews refuse the whole batch
            state = event.get("State")
            self.pipeline.on_command_event(ident, state if isinstance(state, str) else None)
        elif isinstance(kind, str) and self.events.has_subscribers(kind):
            self.events.publish(event)
        else:
            log.debug("Ignored a %r event", str(kind)[:40])

    async def _sweep(self) -> None:
        """Every ``sweep_interval_s``, take active commands again: covers events lost in flight."""
        assert self.pipeline is not None and self.journal is not None
        while True:
            await asyncio.sleep(self.settings.mews.sweep_interval_s)
            try:
                await self.pipeline.catch_up()
                retention = timedelta(days=self.settings.bridge.data_retention_days)
                await self.journal.prune(retention, _IDS_KEPT)
            except MewsAuthError as exc:
                self._fail(exc)
                return
            except MewsError as exc:
                log.warning("Sweep of active commands failed: %s", exc)
            except JournalError as exc:  # a full or failing disk
                log.error("Sweep of active commands failed", exc_info=exc)

    def _fail(self, exc: BaseException) -> None:
        if self.fatal is None:
            self.fatal = exc
            log.error("Stopping: %s", exc)
        self.stopped.set()

    async def stop(self) -> None:
        """Stop intake, let running commands finish briefly, unload everything, close the journal."""
        if self.http is not None:
            await self.http.stop()
        await self.supervisor.stop(["loop watchdog", "recovery", "mews stream", "sweep"])
        if self.pipeline is not None:
            await self.pipeline.stop(self.settings.bridge.shutdown_grace_s)
        await self.supervisor.stop()
        for managed in reversed(self.instances):
            await managed.unload()
        await self.events.aclose()
        if self.mews is not None:
            await self.mews.aclose()
        if self.journal is not None:
            await self.journal.close()
        self.stopped.set()

    async def diagnostics(self) -> dict[str, Any]:
        """Every instance's state and diagnostics (secrets masked), the queues, the connection."""
        return {
            "version": __version__,
            "plugins": [info.as_dict() for info in self.host.plugins.values()],
            "instances": [await managed.diagnostics() for managed in self.instances],
            "pipeline": self.pipeline.status() if self.pipeline else None,
            "connected": bool(self.stream and self.stream.connected.is_set()),
            "loop_blocked_incidents": self.watchdog.incidents,
            "tasks": self.supervisor.status(),
        }

    async def write_diagnostics(self) -> Path:
        """Write :meth:`diagnostics` to ``state_dir/diagnostics.json`` (owner-only); on SIGUSR1."""
        text = json.dumps(await self.diagnostics(), indent=2, default=str)
        path = self.state_dir / DIAGNOSTICS_FILE
        await asyncio.to_thread(_write_private, path, redactor.redact(text))
        log.info("Diagnostics written to %s", path)
        return path

    async def __aenter__(self) -> Bridge:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.stop()

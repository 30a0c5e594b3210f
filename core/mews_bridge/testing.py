"""Helpers for testing drivers and services without the cloud (importable without pytest).

The hardware-mocks distribution builds its pytest fixtures on these; a vendor can use them directly::

    settings = bridge_settings(sim, tmp_path, devices=[device("Desk printer", "Printer 1", "my_driver", {...})])
    async with running_bridge(settings, plugins={"my_plugin": my_plugin_module}) as bridge:
        command_id = sim.add_command(printer_id, {...})
        final = await wait_for_final_state(sim, command_id)

A driver tested on its own, without a bridge, gets its context from :func:`instance_context`.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import sys
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from pathlib import Path
from typing import Any, NamedTuple, NoReturn, Protocol, TypeVar, cast

from pydantic import SecretStr

from .bridge import Bridge
from .driver import InstanceContext, LocalDevices
from .eventbus import EventBus
from .journal import KeyValueStore
from .mews.client import MewsClient
from .mews.enterprise import Enterprise
from .mews.models import FINAL_STATES
from .plugins import PluginHost
from .settings import PluginSettings, Settings

T = TypeVar("T")


class SimulatedMews(Protocol):
    """What the helpers need of a Mews simulator (``mews_bridge_mocks.mews.MewsSimulator``)."""

    platform_url: str
    websocket_url: str
    client_token: str
    access_token: str

    def command(self, command_id: str) -> dict[str, Any]: ...


def device(
    name: str, mews_device: str, driver: str, options: Mapping[str, Any] | None = None
) -> dict[str, Any]:
    """A ``[[devices]]`` entry."""
    return {"name": name, "mews_device": mews_device, "driver": driver, "options": dict(options or {})}


def service(name: str, service: str, options: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """A ``[[services]]`` entry."""
    return {"name": name, "service": service, "options": dict(options or {})}


def bridge_settings(
    sim: SimulatedMews,
    state_dir: Path,
    *,
    devices: list[dict[str, Any]] = (),  # type: ignore[assignment]
    services: list[dict[str, Any]] = (),  # type: ignore[assignment]
    mews: Mapping[str, Any] | None = None,
    bridge: Mapping[str, Any] | None = None,
) -> Settings:
    """Settings for a bridge wired to ``sim``, with quick timings suited to tests."""
    return Settings(
        mews={
            "platform_url": sim.platform_url,
            "websocket_url": sim.websocket_url,
            "client_token": sim.client_token,
            "access_token": sim.access_token,
            "ping_interval_s": 0.5,
            "ping_timeout_s": 0.5,
            "request_timeout_s": 5.0,
            "max_retry_s": 0.5,
            **(mews or {}),
        },
        bridge={
            "state_dir": state_dir,
            "progress_interval_s": 0.0,
            "shutdown_grace_s": 2.0,
            "http": "127.0.0.1:0",  # a free port: tests run side by side
            **(bridge or {}),
        },
        devices=list(devices),
        services=list(services),
    )


class _Absent:
    """A part of a test's context the test did not give: any use of it fails, naming the argument."""

    def __init__(self, what: str, argument: str) -> None:
        self.message = f"this test's instance context has no {what}: pass {argument}= to instance_context()"

    def __getattr__(self, name: str) -> NoReturn:
        if name.startswith("__"):  # copy, pickle and hasattr probes
            raise AttributeError(name)
        raise AssertionError(self.message)


def instance_context(
    state_dir: Path,
    name: str = "Test instance",
    *,
    mews: MewsClient | None = None,
    store: KeyValueStore | None = None,
    devices: LocalDevices | None = None,
    enterprise: Enterprise | Callable[[], Awaitable[Enterprise]] | None = None,
    events: EventBus | None = None,
    logger: logging.Logger | None = None,
) -> InstanceContext:
    """The context a bridge would give a driver or service called ``name``, for testing it on its own.

    Give the parts the instance uses (fakes are fine where they quack alike); a part left out fails with
    a message naming the argument when it is used. ``enterprise`` is the property's settings, or an async
    function returning them (or raising, to test a Mews outage). ``await ctx.close()`` when done cancels
    the instance's background tasks and runs its unload callbacks, as the bridge does after an unload.
    """

    async def read_enterprise() -> Enterprise:
        if enterprise is None:
            raise AssertionError(_Absent("enterprise", "enterprise").message)
        return await enterprise() if callable(enterprise) else enterprise

    return InstanceContext(
        name=name,
        state_dir=state_dir,
        mews=_given(mews, "Mews client", "mews"),
        events=EventBus() if events is None else events,
        store=_given(store, "store", "store"),
        devices=_given(devices, "other devices", "devices"),
        logger=logger or logging.getLogger(f"test.{name}"),
        _enterprise=read_enterprise,
    )


def _given(part: T | None, what: str, argument: str) -> T:
    return cast(T, _Absent(what, argument)) if part is None else part


def plugin_host(plugins: Mapping[str, object] | None = None, *, entry_points: bool = False) -> PluginHost:
    """A host with exactly ``plugins`` (name → module or object with hookimpls), plus installed ones if asked."""
    host = PluginHost(PluginSettings())
    if entry_points:
        host.load_entry_points()
    for name, plugin in (plugins or {}).items():
        info = host.register_plugin(plugin, name)
        if info.status != "loaded":
            raise RuntimeError(f"test plugin {name} did not load: {info.error}")
    return host


@contextlib.asynccontextmanager
async def running_bridge(
    settings: Settings,
    plugins: Mapping[str, object] | None = None,
    *,
    entry_points: bool = False,
    wait_connected: bool = True,
    **timings: float,
) -> AsyncIterator[Bridge]:
    """A started bridge (connected to Mews unless told not to wait), stopped on exit.

    Its retry and back-off delays are short; ``timings`` sets others of :class:`Bridge`'s
    (``journal_busy_timeout_s=0.5``, say).
    """
    quick = {
        "setup_retry_initial_s": 0.05,
        "setup_retry_max_s": 0.2,
        "stream_backoff_max_s": 0.2,
        "recovery_retry_s": 0.1,
    }
    bridge = Bridge(settings, plugin_host(plugins, entry_points=entry_points), **{**quick, **timings})
    await bridge.start()
    try:
        if wait_connected:
            assert bridge.stream is not None
            await asyncio.wait_for(bridge.stream.connected.wait(), 10)
        yield bridge
    finally:
        await bridge.stop()


async def wait_for_final_state(
    sim: SimulatedMews, command_id: str, timeout_s: float = 10.0
) -> dict[str, Any]:
    """Wait until the simulator holds a final state for the command, and return the command."""
    return await wait_for(
        lambda: (c := sim.command(command_id))["State"] in FINAL_STATES and c,
        timeout_s,
        f"command {command_id} final",
    )


async def wait_for(predicate: Any, timeout_s: float = 10.0, what: str = "condition") -> Any:
    """Poll ``predicate()`` until it returns something truthy; fail after ``timeout_s``."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    while True:
        result = predicate()
        if result:
            return result
        if loop.time() > deadline:
            raise AssertionError(f"timed out after {timeout_s:g} s waiting for {what}")
        await asyncio.sleep(0.01)


class CliResult(NamedTuple):
    code: int
    out: str
    err: str


async def run_cli(*args: object, env: Mapping[str, str] | None = None, timeout_s: float = 60.0) -> CliResult:
    """Run ``mews-bridge ARGS`` in a subprocess, as an installer would, and collect what it printed."""
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "mews_bridge",
        *map(str, args),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env={**os.environ, **(env or {})},
    )
    out, err = await asyncio.wait_for(process.communicate(), timeout_s)
    return CliResult(process.returncode or 0, out.decode(), err.decode())


def write_settings_file(settings: Settings, path: Path) -> Path:
    """``settings`` as a TOML file for ``mews-bridge --config`` (secrets in clear: for tests only)."""

    def toml(value: Any) -> str:
        if isinstance(value, Mapping):
            return "{ " + ", ".join(f"{json.dumps(str(k))} = {toml(v)}" for k, v in value.items()) + " }"
        if isinstance(value, (list, tuple)):
            return "[" + ", ".join(toml(v) for v in value) + "]"
        if isinstance(value, SecretStr):
            value = value.get_secret_value()
        return json.dumps(value if isinstance(value, (bool, int, float)) else str(value))

    document = settings.model_dump(exclude_none=True)
    path.write_text("".join(f"{key} = {toml(value)}\n" for key, value in document.items()))
    return path

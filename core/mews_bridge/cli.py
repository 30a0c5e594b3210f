"""The ``mews-bridge`` command line."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import signal
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import click

from .bridge import JOURNAL_FILE, Bridge, instance_state_dir, plan_instances, store_namespace
from .config_example import example_config
from .exceptions import ConfigurationError
from .journal import Journal, KeyValueStore
from .logs import configure_logging
from .mews.client import MewsClient
from .mews.errors import MewsAuthError, MewsError
from .plugins import PluginHost
from .settings import (
    DEFAULT_CONFIG_PATH,
    DeviceEntry,
    ServiceEntry,
    Settings,
    load_plugin_selection,
    load_settings,
)
from .version import __version__

log = logging.getLogger("mews_bridge")
EX_CONFIG = 78  # sysexits.h; the systemd unit does not restart on it


class SettingsInvalid(click.ClickException):
    """Bad settings: exit 78 (EX_CONFIG), so that systemd does not restart the bridge in a loop."""

    exit_code = EX_CONFIG

    def __init__(self, error: ConfigurationError) -> None:
        super().__init__(f"Settings are not valid:\n{error}")


class CliState:
    """What every command (plugins' too) can reach: the settings file and the loaded plugins."""

    def __init__(self, config: Path | None) -> None:
        self.config_path = config or DEFAULT_CONFIG_PATH
        self._explicit = config is not None
        self._settings: Settings | None = None
        self._host: PluginHost | None = None

    @property
    def settings(self) -> Settings:
        """The loaded settings; a settings error ends the command with the error's lines."""
        if self._settings is None:
            try:
                self._settings = load_settings(self.config_path, required=self._explicit)
            except ConfigurationError as exc:
                raise SettingsInvalid(exc) from None
        return self._settings

    def entry(
        self, implementation: str, name: str | None = None, *, option: str = "--name", required: bool = True
    ) -> DeviceEntry | ServiceEntry | None:
        """The configured device or service that uses ``implementation`` (a driver or service name).

        With ``name``, the entry of that name; without, the only one. Plugins' commands use this to find
        their instance; an ambiguous or missing one ends the command with a usage error naming ``option``.
        """
        entries = [e for e in self.settings.devices if e.driver == implementation]
        entries += [e for e in self.settings.services if e.service == implementation]
        if name is not None:
            chosen = next((e for e in entries if e.name == name), None)
            if chosen is None:
                names = ", ".join(e.name for e in entries) or "none"
                raise click.UsageError(f"No {implementation} called {name!r} (configured: {names}).")
            return chosen
        if len(entries) == 1:
            return entries[0]
        if entries:
            raise click.UsageError(
                f"{len(entries)} {implementation} entries are configured: choose one with {option}."
            )
        if required:
            raise click.UsageError(
                f"No [[devices]] or [[services]] entry uses {implementation!r} in the settings."
            )
        return None

    def instance_state_dir(self, entry: DeviceEntry | ServiceEntry) -> Path:
        """Where that configured instance keeps its own files."""
        return instance_state_dir(self.settings.bridge.state_dir, entry.name)

    @contextlib.asynccontextmanager
    async def open_store(self, entry: DeviceEntry | ServiceEntry) -> AsyncIterator[KeyValueStore | None]:
        """That configured instance's key/value store, as the bridge keeps it; None if the bridge has not
        made its journal yet. Safe while the bridge runs (run the command as the bridge's user)."""
        path = self.settings.bridge.state_dir / JOURNAL_FILE
        if not path.exists():
            yield None
            return
        journal = await Journal.open(path)
        try:
            yield journal.store(store_namespace(entry))
        finally:
            await journal.close()

    @property
    def host(self) -> PluginHost:
        if self._host is None:
            try:
                selection = load_plugin_selection(self.config_path, required=self._explicit)
            except ConfigurationError as exc:
                raise SettingsInvalid(exc) from None
            self._host = PluginHost(selection)
            self._host.load_entry_points()
        return self._host


class BridgeGroup(click.Group):
    """Adds plugins' commands (``register_cli_commands``) before parsing."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        self._add_plugin_commands(ctx)
        return super().list_commands(ctx)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in self.commands:
            self._add_plugin_commands(ctx)
        return super().get_command(ctx, cmd_name)

    def _add_plugin_commands(self, ctx: click.Context) -> None:
        if getattr(self, "_plugins_added", False):
            return
        self._plugins_added = True
        state = ctx.find_object(CliState) or CliState(None)
        state.host.register_cli_commands(self)


@click.group(cls=BridgeGroup)
@click.version_option(__version__, prog_name="mews-bridge")
@click.option(
    "--config",
    "config",
    type=click.Path(path_type=Path, dir_okay=False),
    envvar="MEWS_BRIDGE_CONFIG",
    help=f"Settings file (default {DEFAULT_CONFIG_PATH}).",
)
@click.option(
    "--log-level", default="INFO", show_default=True, type=click.Choice(["DEBUG", "INFO", "WARNING", "ERROR"])
)
@click.option("--log-format", default="text", show_default=True, type=click.Choice(["text", "json"]))
@click.pass_context
def main(ctx: click.Context, config: Path | None, log_level: str, log_format: str) -> None:
    """On-premise bridge between Mews and hotel hardware."""
    configure_logging(log_level, log_format)  # type: ignore[arg-type]
    ctx.obj = CliState(config)


@main.command()
@click.pass_obj
def run(state: CliState) -> None:
    """Run the bridge until SIGTERM or Ctrl-C."""
    settings, host = state.settings, state.host
    try:
        bridge = Bridge(settings, host)
    except ConfigurationError as exc:
        raise SettingsInvalid(exc) from None
    code = asyncio.run(_run_bridge(bridge))
    sys.exit(code)


async def _run_bridge(bridge: Bridge) -> int:
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, bridge.stopped.set)
    dumps: set[asyncio.Task[None]] = set()

    def dump_diagnostics() -> None:
        task = loop.create_task(bridge.write_diagnostics())
        dumps.add(task)
        task.add_done_callback(dumps.discard)

    loop.add_signal_handler(signal.SIGUSR1, dump_diagnostics)
    await bridge.start()
    log.info(
        "mews-bridge %s running with %d device(s) and %d service(s)",
        __version__,
        len(bridge.settings.devices),
        len(bridge.settings.services),
    )
    await bridge.stopped.wait()
    log.info("Shutting down")
    fatal = bridge.fatal
    await bridge.stop()
    if isinstance(fatal, MewsAuthError):
        return EX_CONFIG
    return 1 if fatal else 0


@main.command()
@click.option(
    "--online", is_flag=True, help="Also reach Mews and compare its devices with the configured ones."
)
@click.pass_obj
def check(state: CliState, online: bool) -> None:
    """Validate settings and plugins; show what each configured device is bound to."""
    settings, host = state.settings, state.host
    try:
        planned = plan_instances(settings, host)
    except ConfigurationError as exc:
        raise SettingsInvalid(exc) from None
    failed = [info for info in host.plugins.values() if info.status == "failed"]
    for info in failed:
        click.echo(f"plugin {info.name}: NOT LOADED: {info.error}", err=True)
    mews_devices = asyncio.run(_mews_devices(settings)) if online else None
    for plan in planned:
        entry = plan.entry
        if plan.kind == "service":
            click.echo(f"service {entry.name!r}: {plan.cls.name} {plan.cls.plugin_version}")
            continue
        line = f"device {entry.name!r}: {plan.cls.name} {plan.cls.plugin_version} <- Mews device {entry.mews_device!r}"  # type: ignore[union-attr]
        if mews_devices is not None:
            match = _find_device(mews_devices, entry.mews_device)  # type: ignore[union-attr]
            if match is None:
                line += "  NOT FOUND in Mews"
            elif match["Type"] != getattr(plan.cls, "device_type", None):
                line += f"  is a {match['Type']}, but {plan.cls.name} serves {plan.cls.device_type}"  # type: ignore[attr-defined]
            else:
                line += f"  found ({match['Type']}, Id {match['Id']})"
        click.echo(line)
    if mews_devices is not None:
        configured = {e.mews_device.casefold() for e in settings.devices}
        for device in mews_devices:
            if device["Id"].casefold() not in configured and device["Name"].casefold() not in configured:
                click.echo(
                    f"Mews device {device['Name']!r} ({device['Type']}, Id {device['Id']}): not configured here"
                )
    click.echo("Settings are valid." if not failed else "Settings are valid, but some plugins did not load.")
    if failed:
        sys.exit(1)


async def _mews_devices(settings: Settings) -> list[dict[str, Any]]:
    async with MewsClient(settings.mews, retry_budget_s=10) as client:
        try:
            return [d.to_mews() for d in await client.get_devices()]
        except MewsError as exc:
            raise click.ClickException(f"Could not reach Mews: {exc}") from None


def _find_device(devices: list[dict[str, Any]], wanted: str) -> dict[str, Any] | None:
    return next((d for d in devices if wanted.casefold() in (d["Id"].casefold(), d["Name"].casefold())), None)


@main.command()
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@click.pass_obj
def plugins(state: CliState, as_json: bool) -> None:
    """List installed plugins: distribution, version, what each registers, load errors."""
    infos = list(state.host.plugins.values())
    if as_json:
        click.echo(json.dumps([info.as_dict() for info in infos], indent=2))
        return
    if not infos:
        click.echo("No plugins installed.")
    for info in infos:
        click.echo(f"{info.name}  {info.distribution or '-'} {info.version or ''}  [{info.status}]")
        if info.drivers:
            click.echo(f"    drivers: {', '.join(info.drivers)}")
        if info.services:
            click.echo(f"    services: {', '.join(info.services)}")
        if info.error:
            click.echo(f"    error: {info.error}")


@main.command()
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output (the page's /status.json).")
@click.pass_obj
def status(state: CliState, as_json: bool) -> None:
    """Ask the running bridge how it is: Mews link, devices, charges, last commands.

    Exits 0 when the bridge is ready, 3 when it runs but is not ready, 1 when it cannot be asked.
    """
    from . import status_text

    try:
        picture = status_text.fetch(state.settings.bridge)
    except status_text.StatusUnavailable as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(json.dumps(picture, indent=2) if as_json else status_text.render(picture))
    if not picture["ready"]:
        sys.exit(3)


@main.group()
def config() -> None:
    """Settings helpers."""


@config.command("example")
@click.pass_obj
def config_example(state: CliState) -> None:
    """Print a commented settings file with every installed plugin's options."""
    click.echo(example_config(state.host))

"""Finding and loading plugins (entry-point group ``mews_bridge``), each in isolation.

pluggy's own ``load_setuptools_entrypoints`` stops at the first plugin that fails to import, so the
host loads every entry point itself: a plugin that fails to import or to register is reported and
skipped, and the others load as usual.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from importlib.metadata import EntryPoint, entry_points
from typing import Any, Literal

import pluggy
from pydantic import BaseModel

from . import hookspecs
from .driver import DeviceDriver, Instance, Service
from .mews.models import COMMAND_DATA_MODELS
from .settings import PluginSettings

log = logging.getLogger(__name__)
ENTRY_POINT_GROUP = "mews_bridge"


@dataclass
class PluginInfo:
    """What ``mews-bridge plugins`` shows about one plugin."""

    name: str
    distribution: str | None = None
    version: str | None = None
    module: str | None = None
    status: Literal["loaded", "failed", "disabled"] = "loaded"
    error: str | None = None
    hooks: list[str] = field(default_factory=list)
    drivers: list[str] = field(default_factory=list)
    services: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return dict(vars(self))


class PluginHost:
    """Loads plugins and keeps what they registered: driver and service classes by name."""

    def __init__(self, selection: PluginSettings | None = None) -> None:
        self.selection = selection or PluginSettings()
        self.pm = pluggy.PluginManager(hookspecs.PROJECT)
        self.pm.add_hookspecs(hookspecs)
        self.plugins: dict[str, PluginInfo] = {}
        self.drivers: dict[str, type[DeviceDriver[Any]]] = {}
        self.services: dict[str, type[Service[Any]]] = {}

    def load_entry_points(self) -> None:
        """Load every installed plugin the settings allow."""
        for ep in sorted(entry_points(group=ENTRY_POINT_GROUP), key=lambda e: e.name):
            if ep.name in self.plugins:
                continue
            info = PluginInfo(
                name=ep.name,
                distribution=ep.dist.name if ep.dist else None,
                version=ep.dist.version if ep.dist else None,
                module=ep.value,
            )
            self.plugins[ep.name] = info
            if self._allowed(ep.name):
                self._load(ep, info)
            else:
                info.status = "disabled"

    def _allowed(self, name: str) -> bool:
        if name in self.selection.disable:
            return False
        return self.selection.load is None or name in self.selection.load

    def _load(self, ep: EntryPoint, info: PluginInfo) -> None:
        try:
            module = ep.load()
        except Exception as exc:
            self._fail(info, f"import failed: {type(exc).__name__}: {exc}", exc)
            return
        self.register_plugin(module, info)

    def register_plugin(self, plugin: object, info: PluginInfo | str) -> PluginInfo:
        """Register a plugin object (a module or any object with hookimpls) and run its register hooks.

        Tests and the vendor kit call this directly with a name instead of an entry point.
        """
        if isinstance(info, str):
            info = PluginInfo(name=info, module=getattr(plugin, "__name__", type(plugin).__name__))
        self.plugins[info.name] = info
        try:
            self.pm.register(plugin, name=info.name)
            self.pm.check_pending()
        except Exception as exc:
            self.pm.unregister(name=info.name)
            self._fail(info, f"registration failed: {exc}", exc)
            return info
        info.hooks = sorted(
            caller.name for caller in self.pm.get_hookcallers(plugin) or [] if caller.get_hookimpls()
        )
        drivers: dict[str, type[DeviceDriver[Any]]] = {}
        services: dict[str, type[Service[Any]]] = {}
        try:
            self._call(info.name, "register_drivers", register=self._registrar(info, DeviceDriver, drivers))
            self._call(info.name, "register_services", register=self._registrar(info, Service, services))
        except Exception as exc:
            self.pm.unregister(name=info.name)
            self._fail(info, f"registration failed: {type(exc).__name__}: {exc}", exc)
            return info
        self.drivers.update(drivers)
        self.services.update(services)
        info.drivers, info.services = sorted(drivers), sorted(services)
        return info

    def _registrar(
        self, info: PluginInfo, base: type[Instance[Any]], into: dict[str, Any]
    ) -> Callable[[type[Any]], None]:
        taken = self.drivers if base is DeviceDriver else self.services

        def register(cls: type[Any]) -> None:
            kind = base.__name__
            if not (isinstance(cls, type) and issubclass(cls, base)):
                raise TypeError(f"{cls!r} is not a subclass of mews_bridge.{kind}")
            name = getattr(cls, "name", None)
            if not isinstance(name, str) or not name:
                raise TypeError(f"{cls.__qualname__} has no name")
            if name in taken or name in into:
                owner = self.owner_of(name)
                raise ValueError(f"{kind.lower()} name {name!r} is already registered by {owner}")
            if not (isinstance(cls.Options, type) and issubclass(cls.Options, BaseModel)):
                raise TypeError(f"{cls.__qualname__}.Options is not a pydantic model")
            if (
                base is DeviceDriver
                and issubclass(cls, DeviceDriver)
                and cls.command_data is None
                and cls.device_type not in COMMAND_DATA_MODELS
            ):
                raise TypeError(
                    f"{cls.__qualname__} serves device type {cls.device_type!r}, which the core does not "
                    "know: set command_data to a model of its Data"
                )
            cls.plugin_version = info.version or "unknown"
            into[name] = cls

        return register

    def _call(self, plugin_name: str, hook: str, **kwargs: Any) -> None:
        """Call one plugin's implementation of ``hook`` (so one plugin's failure is its own)."""
        for impl in getattr(self.pm.hook, hook).get_hookimpls():
            if impl.plugin_name == plugin_name:
                impl.function(**{arg: kwargs[arg] for arg in impl.argnames})

    def register_cli_commands(self, cli: Any) -> None:
        for info in self.plugins.values():
            if info.status != "loaded":
                continue
            try:
                self._call(info.name, "register_cli_commands", cli=cli)
            except Exception as exc:
                log.warning("Plugin %s could not add its commands: %s", info.name, exc)

    def owner_of(self, registered_name: str) -> str:
        for info in self.plugins.values():
            if registered_name in info.drivers or registered_name in info.services:
                return f"plugin {info.name!r}"
        return "another plugin"

    def _fail(self, info: PluginInfo, message: str, exc: BaseException) -> None:
        info.status, info.error = "failed", message
        log.error("Plugin %s skipped: %s", info.name, message, exc_info=exc)

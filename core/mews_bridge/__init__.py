"""mews-bridge: the on-premise bridge between Mews and hotel hardware."""

from importlib.metadata import PackageNotFoundError, version

from .driver import CommandJob, DeviceDriver, Instance, InstanceContext, LocalDevices, NoOptions, Service
from .exceptions import (
    CommandError,
    CommandFailed,
    CommandRejected,
    ConfigurationError,
    DeviceAuthFailed,
    DeviceConfigError,
    DeviceNotReady,
    MewsBridgeError,
)
from .hookspecs import hookimpl

try:
    __version__ = version("mews-bridge")
except PackageNotFoundError:  # running from a source tree without an install
    __version__ = "0.0.0"

__all__ = [
    "CommandError",
    "CommandFailed",
    "CommandJob",
    "CommandRejected",
    "ConfigurationError",
    "DeviceAuthFailed",
    "DeviceConfigError",
    "DeviceDriver",
    "DeviceNotReady",
    "Instance",
    "InstanceContext",
    "LocalDevices",
    "MewsBridgeError",
    "NoOptions",
    "Service",
    "__version__",
    "hookimpl",
]

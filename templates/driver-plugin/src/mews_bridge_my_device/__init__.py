"""mews-bridge plugin ``my_device``: a driver for Mews ``Printer`` commands, carried out by a network
device that takes one JSON object per line.

The host imports every installed plugin when it starts, so keep this module light: import the driver
(and its dependencies) inside the hook.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from mews_bridge import hookimpl

if TYPE_CHECKING:
    from mews_bridge import DeviceDriver


@hookimpl
def register_drivers(register: Callable[[type[DeviceDriver[Any]]], None]) -> None:
    from .driver import MyDeviceDriver

    register(MyDeviceDriver)

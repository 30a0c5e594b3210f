"""mews-bridge driver ``serial_keycutter``: hotel lock encoders speaking the PMS "Industry Standard"
protocol (SALTO, Onity) over RS-232 or TCP.

Importing this module stays cheap (no pyserial): the driver module loads when the host asks for it.
Vendors adding a dialect use the names below; see the README.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from mews_bridge import hookimpl

from .dialects import (
    Dialect,
    IndustryStandardDialect,
    KeyMode,
    KeyRequest,
    Reply,
    dialect_names,
    get_dialect,
    register_dialect,
)

if TYPE_CHECKING:
    from mews_bridge import DeviceDriver

__all__ = [
    "Dialect",
    "IndustryStandardDialect",
    "KeyMode",
    "KeyRequest",
    "Reply",
    "dialect_names",
    "get_dialect",
    "register_dialect",
    "register_drivers",
]


@hookimpl
def register_drivers(register: Callable[[type[DeviceDriver[Any]]], None]) -> None:
    from .driver import SerialKeycutterDriver

    register(SerialKeycutterDriver)

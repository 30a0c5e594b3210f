"""mews-bridge plugin: Mews ``Printer`` commands on ESC/POS receipt printers (driver ``escpos_printer``).

Importing this module costs next to nothing: the driver is imported when the host asks for it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from mews_bridge import hookimpl


@hookimpl
def register_drivers(register: Callable[[Any], None]) -> None:
    from .driver import EscposPrinterDriver

    register(EscposPrinterDriver)

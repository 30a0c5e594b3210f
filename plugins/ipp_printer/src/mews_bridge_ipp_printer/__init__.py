"""mews-bridge plugin: Mews ``Printer`` commands on office printers and CUPS queues over IPP (driver
``ipp_printer``), and the installer's ``mews-bridge ipp`` commands.

Importing this module costs next to nothing: the driver is imported when the host asks for it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from mews_bridge import hookimpl

if TYPE_CHECKING:
    import click


@hookimpl
def register_drivers(register: Callable[[Any], None]) -> None:
    from .driver import IppPrinterDriver

    register(IppPrinterDriver)


@hookimpl
def register_cli_commands(cli: click.Group) -> None:
    from .cli import ipp

    cli.add_command(ipp)

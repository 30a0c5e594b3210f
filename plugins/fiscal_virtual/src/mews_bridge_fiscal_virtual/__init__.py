"""mews-bridge plugin ``fiscal_virtual``: a tamper-evident virtual fiscal machine for Mews ``FiscalMachine``
commands, with an Austrian RKSV profile and a generic one. A journal and simulator, not a certified device.

Imports stay light here; the driver (cryptography, SQLite) loads when the host asks for it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from mews_bridge import hookimpl

if TYPE_CHECKING:
    import click


@hookimpl
def register_drivers(register: Callable[[Any], None]) -> None:
    from .driver import FiscalVirtualDriver

    register(FiscalVirtualDriver)


@hookimpl
def register_cli_commands(cli: click.Group) -> None:
    from .cli import fiscal

    cli.add_command(fiscal)

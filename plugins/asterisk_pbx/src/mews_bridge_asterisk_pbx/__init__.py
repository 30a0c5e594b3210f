"""mews-bridge plugin ``asterisk_pbx``: Mews guests onto Asterisk room phones and their answered
outside calls onto their bills.

Imports stay light here; the service and its AMI client load when the host asks for them.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from mews_bridge import hookimpl

if TYPE_CHECKING:
    import click


@hookimpl
def register_services(register: Callable[[Any], None]) -> None:
    from .service import AsteriskPbxService

    register(AsteriskPbxService)


@hookimpl
def register_cli_commands(cli: click.Group) -> None:
    from .cli import pbx

    cli.add_command(pbx)

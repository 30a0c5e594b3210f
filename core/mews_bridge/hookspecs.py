"""The hooks a plugin implements. All are synchronous and only register things; async work lives on
the registered driver and service classes (pluggy cannot await).

A plugin is a module named by an entry point in the group ``mews_bridge``::

    [project.entry-points.mews_bridge]
    escpos_printer = "mews_bridge_escpos_printer"

and implements any of these hooks with ``@mews_bridge.hookimpl``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import pluggy

if TYPE_CHECKING:
    import click

    from .driver import DeviceDriver, Service

PROJECT = "mews_bridge"
hookspec = pluggy.HookspecMarker(PROJECT)
hookimpl = pluggy.HookimplMarker(PROJECT)


@hookspec
def register_drivers(register: Callable[[type[DeviceDriver[Any]]], None]) -> None:
    """Register device driver classes: call ``register(MyDriver)`` once per class.

    The class's ``name`` is what settings name in ``[[devices]] driver``; its ``device_type`` is the
    Mews device type it serves. A name already taken by another plugin is refused and reported.

    .. versionadded:: 0.1
    """


@hookspec
def register_services(register: Callable[[type[Service[Any]]], None]) -> None:
    """Register service classes (``[[services]] service``): long-running integrations not driven by
    device commands, such as a PBX.

    .. versionadded:: 0.1
    """


@hookspec
def register_cli_commands(cli: click.Group) -> None:
    """Add commands or groups to the ``mews-bridge`` command line (``cli.add_command(group)``).

    Inside a command, ``click.get_current_context().find_object(mews_bridge.cli.CliState)`` gives
    the loaded settings.

    .. versionadded:: 0.1
    """

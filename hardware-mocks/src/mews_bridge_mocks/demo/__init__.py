"""``mews-bridge demo``: a day at the front desk, played against the simulators.

A plugin of the hardware-mocks distribution: it adds the ``demo`` command to the bridge's CLI.
"""

from __future__ import annotations

from typing import Any

import click

from mews_bridge import hookimpl


@hookimpl
def register_cli_commands(cli: click.Group) -> None:
    @cli.command()
    @click.option(
        "--out",
        type=click.Path(file_okay=False),
        help="Where to write receipts and state (default: a new temporary folder).",
    )
    @click.option(
        "--keep-running",
        is_flag=True,
        help="Leave the simulators and the bridge up afterwards, until Ctrl-C.",
    )
    def demo(out: str | None, keep_running: bool) -> Any:
        """Run the bridge with every plugin against the simulators and narrate a day at the front desk."""
        from .scenario import run_demo

        raise SystemExit(run_demo(out, keep_running))

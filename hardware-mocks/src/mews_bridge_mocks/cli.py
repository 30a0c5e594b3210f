"""``mews-bridge-mocks``: run a simulator by hand (``mews-bridge-mocks mews``, ``printer``, ``encoder``, ``ami``, ``ipp``),
or start a driver plugin from the template (``new-driver``)."""

from __future__ import annotations

import importlib

import click

# Each simulator family lives in its own subpackage with a ``cli.command``, the vendor kit in its module;
# loaded on use so that a family whose plugin extra is not installed does not break the others.
COMMANDS = {
    "mews": "mews_bridge_mocks.mews.cli",
    "printer": "mews_bridge_mocks.escpos.cli",
    "encoder": "mews_bridge_mocks.keycutter.cli",
    "ami": "mews_bridge_mocks.ami.cli",
    "ipp": "mews_bridge_mocks.ipp.cli",
    "new-driver": "mews_bridge_mocks.vendor_kit",
}


class SimulatorGroup(click.Group):
    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(COMMANDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        module = COMMANDS.get(cmd_name)
        if module is None:
            return None
        return importlib.import_module(module).command


@click.group(cls=SimulatorGroup)
def main() -> None:
    """Simulators that speak the real protocols on loopback, for tests, demos and people, and
    new-driver, which starts a driver plugin of your own."""

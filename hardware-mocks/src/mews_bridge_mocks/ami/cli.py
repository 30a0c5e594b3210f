"""``mews-bridge-mocks ami``: an Asterisk 22 AMI to point a bridge (or a person with telnet) at."""

from __future__ import annotations

import asyncio
import contextlib
import random

import click

from .simulator import AmiSimulator


@click.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=5038, show_default=True, type=int)
@click.option("--username", default="mewsbridge", show_default=True)
@click.option("--secret", default="mewsbridge", show_default=True)
@click.option("--timezone", default="UTC", show_default=True, help="The PBX host's time zone (CDR times).")
@click.option(
    "--gate-outside-line/--no-gate-outside-line",
    default=True,
    show_default=True,
    help="Refuse outside calls unless AstDB hotel/<room>/outside is 1, as the sample dialplan does.",
)
@click.option(
    "--call-every",
    type=float,
    default=None,
    help="Place a random outside call from one of --rooms every N seconds.",
)
@click.option("--rooms", default="101,102,103", show_default=True, help="Extensions for --call-every.")
def command(  # noqa: PLR0917 - one parameter per click option
    host: str,
    port: int,
    username: str,
    secret: str,
    timezone: str,
    gate_outside_line: bool,
    call_every: float | None,
    rooms: str,
) -> None:
    """Simulate Asterisk's manager interface (AMI 11.0.0) until Ctrl-C."""
    sim = AmiSimulator(
        username=username, secret=secret, timezone=timezone, gate_outside_line=gate_outside_line
    )
    extensions = [r.strip() for r in rooms.split(",") if r.strip()]
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(_serve(sim, host, port, call_every, extensions))


async def _serve(
    sim: AmiSimulator, host: str, port: int, call_every: float | None, extensions: list[str]
) -> None:
    async with sim:
        click.echo(f"AMI simulator on {sim.host}:{sim.port} (user {sim.username!r}); Ctrl-C stops it")
        while True:
            await asyncio.sleep(call_every or 3600)
            if call_every and extensions:
                cdr = await sim.place_call(
                    random.choice(extensions),
                    random.choice(["0221234567", "00442071234567", "0501234567"]),
                    billsec=random.randint(5, 600),
                )
                click.echo(
                    f"Call {cdr['Source']} → {cdr['Destination']}: {cdr['Disposition']}, "
                    f"{cdr['BillableSeconds']} s billable"
                )

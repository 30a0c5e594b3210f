"""``mews-bridge-mocks encoder``: run a simulated lock encoder until Ctrl-C."""

from __future__ import annotations

import asyncio
import contextlib

import click

from mews_bridge_serial_keycutter.dialects import dialect_names

from .simulator import EncodedCard, EncoderSimulator


def _show(card: EncodedCard) -> None:
    click.echo(
        f"card: {card.mode} rooms={','.join(card.rooms)} valid {card.start:%Y-%m-%d %H:%M} -> "
        f"{card.end:%Y-%m-%d %H:%M} name={card.name!r} encoder={card.encoder!r}"
    )


@click.command(name="encoder")
@click.option("--dialect", type=click.Choice(dialect_names()), default="salto", show_default=True)
@click.option(
    "--listen", default="127.0.0.1:0", show_default=True, help="TCP host:port (port 0: any free one)."
)
@click.option("--no-tcp", is_flag=True, help="Do not listen on TCP.")
@click.option("--no-pty", is_flag=True, help="Do not open a pty pair.")
@click.option("--encoder", default=None, help="Answer only this encoder address (others get NC).")
@click.option("--rooms", default=None, help="Comma-separated rooms the lock system knows (others get TD).")
@click.option("--slow", type=float, default=0.0, help="Seconds to 'insert' each card.")
@click.option("--nak", "nak_count", type=int, default=0, help="NAK this many requests first.")
@click.option("--busy", "busy_count", type=int, default=0, help="NAK this many ENQs first.")
@click.option("--garbage", is_flag=True, help="Reply with noise and a broken LRC.")
@click.option("--error-code", default=None, help="Reply with this error code (EP, TD, ED, …).")
@click.option("--silent", is_flag=True, help="Answer nothing.")
def command(
    *,
    dialect: str,
    listen: str,
    no_tcp: bool,
    no_pty: bool,
    encoder: str | None,
    rooms: str | None,
    slow: float,
    nak_count: int,
    busy_count: int,
    garbage: bool,
    error_code: str | None,
    silent: bool,
) -> None:
    """A lock encoder speaking the PMS Industry Standard protocol, on a pty and on TCP.

    Point a serial_keycutter device's ``port`` at the printed pty path or socket:// URL; every card
    encoded is printed.
    """
    host, _, port = listen.rpartition(":")
    simulator = EncoderSimulator(
        dialect,
        pty=not no_pty,
        tcp=not no_tcp,
        host=host or "127.0.0.1",
        port=int(port or 0),
        encoder=encoder,
        rooms=set(rooms.split(",")) if rooms else None,
        slow=slow,
        nak_count=nak_count,
        busy_count=busy_count,
        garbage=garbage,
        error_code=error_code,
        silent=silent,
        on_card=_show,
    )
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(_serve(simulator))


async def _serve(simulator: EncoderSimulator) -> None:
    async with simulator:
        click.echo(f"Encoder simulator ({simulator.dialect.title}); Ctrl-C to stop")
        for url in (simulator.port_url, simulator.tcp_url):
            if url:
                click.echo(f"port: {url}")
        await asyncio.Event().wait()

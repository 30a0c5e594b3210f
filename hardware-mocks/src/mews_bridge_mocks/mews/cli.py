"""``mews-bridge-mocks mews``: run the Mews simulator on its own until Ctrl-C.

While it runs, fault commands typed on stdin change its behaviour (``help`` lists them).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import shlex
import sys
import threading

import click

from .auth import DEMO_ACCESS_TOKEN, DEMO_CLIENT_TOKEN
from .seed import seed_demo
from .simulator import MewsSimulator
from .state import ACTIVE_COMMAND_STATES, PRICING_MODES

CONSOLE_HELP = """\
errors RATIO [STATUS]            answer RATIO (0..1) of calls with a 5xx (default 500)
timeouts RATIO                   answer RATIO of calls with 408
latency SECONDS                  delay every answer
storm SECONDS                    answer 429 to every call for SECONDS
fail OPERATION [TIMES [STATUS]]  fail the next TIMES calls of OPERATION (e.g. commands/update)
lose OPERATION RATIO [TIMES [HOW]]
                                 apply RATIO of the calls of OPERATION (e.g. orders/add), then lose
                                 the answer, at most TIMES times (0 stops; default no limit);
                                 HOW: drop, 500, 504, delay (35 s) or any (default)
silent on|off                    keep sockets open but mute: no events, no pongs
refuse SECONDS                   refuse new sockets for SECONDS
drop                             close every open socket now
clear                            switch every fault off
status                           sockets, calls and active commands"""


async def run_console_command(sim: MewsSimulator, line: str) -> str:
    """Apply one console line to ``sim``; returns what to print."""
    faults = sim.faults
    try:
        match shlex.split(line):
            case []:
                return ""
            case ["help"]:
                return CONSOLE_HELP
            case ["errors", ratio, *status] if len(status) <= 1:
                faults.error_ratio = float(ratio)
                faults.error_status = int(status[0]) if status else 500
            case ["timeouts", ratio]:
                faults.timeout_ratio = float(ratio)
            case ["latency", seconds]:
                faults.latency_s = float(seconds)
            case ["storm", seconds]:
                faults.rate_limit_storm(float(seconds))
            case ["fail", operation, *rest] if len(rest) <= 2:
                numbers = [int(word) for word in rest]
                faults.fail_operation(operation, *numbers)
            case ["lose", operation, ratio, *rest] if len(rest) <= 2:
                times = int(rest[0]) if rest else None
                faults.lose_responses(operation, float(ratio), times, *rest[1:])  # type: ignore[arg-type]
            case ["silent", ("on" | "off") as switch]:
                faults.silent_websockets = switch == "on"
            case ["refuse", seconds]:
                faults.refuse_websockets_for(float(seconds))
            case ["drop"]:
                return f"dropped {await faults.drop_websockets()} socket(s)"
            case ["clear"]:
                faults.clear()
            case ["status"]:
                active = sum(row["State"] in ACTIVE_COMMAND_STATES for row in sim.commands)
                sockets, calls = sim.websocket_connections, len(sim.calls)
                return f"sockets open: {sockets}, calls: {calls}, active commands: {active}"
            case _:
                return 'unknown command; type "help"'
    except ValueError as error:
        return f"bad argument: {error}"
    return "ok"


def _stdin_lines(loop: asyncio.AbstractEventLoop) -> asyncio.Queue[str | None]:
    """Lines typed on stdin; None at end of input. A daemon thread reads, so any stdin works and
    nothing blocks exit."""
    lines: asyncio.Queue[str | None] = asyncio.Queue()

    def read() -> None:
        with contextlib.suppress(RuntimeError):  # the loop may be gone when input ends
            for line in sys.stdin:
                loop.call_soon_threadsafe(lines.put_nowait, line)
            loop.call_soon_threadsafe(lines.put_nowait, None)

    threading.Thread(target=read, name="mews-simulator-console", daemon=True).start()
    return lines


async def _serve(sim: MewsSimulator, host: str, port: int, demo: dict[str, str]) -> None:
    await sim.start(host, port)
    try:
        click.echo(f"Mews simulator {sim.enterprise_name!r} ({sim.pricing}, {sim.currency}, {sim.timezone})")
        click.echo(f"  PlatformAddress:  {sim.platform_url}")
        click.echo(f"  WebSocketAddress: {sim.websocket_url}   (socket path /ws/connector)")
        click.echo(f"  ClientToken:      {sim.client_token}")
        click.echo(f"  AccessToken:      {sim.access_token}")
        for label, entity_id in demo.items():
            click.echo(f"  {label}: {entity_id}")
        click.echo('Type "help" for fault commands; Ctrl-C stops.')
        lines = _stdin_lines(asyncio.get_running_loop())
        while (line := await lines.get()) is not None:
            if output := await run_console_command(sim, line):
                click.echo(output)
        await asyncio.Event().wait()  # stdin closed: keep serving until Ctrl-C
    finally:
        await sim.stop()


@click.command(name="mews")
@click.option(
    "--host", default="127.0.0.1", show_default=True, help="Address to listen on; keep it on loopback."
)
@click.option("--port", default=0, type=int, show_default=True, help="Port; 0 picks a free one.")
@click.option(
    "--tokens", metavar="CLIENT:ACCESS", help="Token pair to accept [default: Mews' public demo tokens]."
)
@click.option("--pricing", type=click.Choice(PRICING_MODES), default="Gross", show_default=True)
@click.option("--currency", default="EUR", show_default=True)
@click.option("--timezone", default="Europe/Vienna", show_default=True)
@click.option(
    "--rate-limit", default=200, type=int, show_default=True, help="Requests per window and token; 0 = off."
)
@click.option(
    "--rate-window", default=30.0, type=float, show_default=True, help="Rate-limit window in seconds."
)
@click.option(
    "--seed-demo",
    "demo",
    is_flag=True,
    help="Add a printer, a key cutter, a fiscal machine and three guests.",
)
@click.option("--verbose", "-v", is_flag=True, help="Log every call (method, path, status).")
def command(
    *,
    host: str,
    port: int,
    tokens: str | None,
    pricing: str,
    currency: str,
    timezone: str,
    rate_limit: int,
    rate_window: float,
    demo: bool,
    verbose: bool,
) -> None:
    """Run the Mews Connector API + WebSocket simulator until Ctrl-C."""
    client_token, access_token = DEMO_CLIENT_TOKEN, DEMO_ACCESS_TOKEN
    if tokens is not None:
        client_token, _, access_token = tokens.partition(":")
        if not client_token or not access_token:
            raise click.BadParameter("expected CLIENT:ACCESS", param_hint="--tokens")
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(message)s")
    if verbose:
        logging.getLogger("mews_bridge_mocks").setLevel(logging.DEBUG)
    sim = MewsSimulator(
        client_token=client_token,
        access_token=access_token,
        rate_limit=rate_limit or None,
        rate_window_s=rate_window,
        pricing=pricing,
        currency=currency,
        timezone=timezone,
    )
    shown = seed_demo(sim) if demo else {}
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(_serve(sim, host, port, shown))

"""``mews-bridge-mocks printer``: run the ESC/POS printer simulator by hand."""

from __future__ import annotations

import asyncio
import contextlib
import sys
from pathlib import Path

import click

from .simulator import STATES, PrinterSimulator, Receipt


@click.command(name="printer")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", default=9100, show_default=True, help="TCP port (0 picks a free one).")
@click.option(
    "--out",
    "output_dir",
    default="receipts",
    show_default=True,
    type=click.Path(file_okay=False, path_type=Path),
    help="Directory for receipt-NNNN.png and receipt-NNNN.txt.",
)
@click.option("--status", type=click.Choice(list(STATES)), default="online", show_default=True)
@click.option("--dots", default=576, show_default=True, help="Printable width in dots (576 = 80 mm).")
@click.option(
    "--delay", "delay_s", default=0.0, show_default=True, help="Seconds to wait before handling data."
)
@click.option("--silent", is_flag=True, help="Start silent: accept connections, read and answer nothing.")
def command(
    *, host: str, port: int, output_dir: Path, status: str, dots: int, delay_s: float, silent: bool
) -> None:
    """A network ESC/POS receipt printer that saves every cut receipt as a PNG.

    While it runs, type a status (online, paper_out, paper_near_end, cover_open, offline,
    cutter_error), "silent" or "awake" and press Enter to change how it behaves.
    """
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(
            _run(
                host=host,
                port=port,
                output_dir=output_dir,
                status=status,
                dots=dots,
                delay_s=delay_s,
                silent=silent,
            )
        )


async def _run(
    *, host: str, port: int, output_dir: Path, status: str, dots: int, delay_s: float, silent: bool
) -> None:
    def printed(receipt: Receipt) -> None:
        click.echo(f"receipt {receipt.index}: {receipt.cut} cut, {receipt.png_path}")

    simulator = PrinterSimulator(output_dir, dots=dots, status=status, on_receipt=printed)
    simulator.delay_s = delay_s
    simulator.silent = silent
    await simulator.start(host, port)
    try:
        click.echo(f"ESC/POS printer on tcp://{host}:{simulator.port} ({status}); receipts in {output_dir}")
        await _follow_stdin(simulator)
    finally:
        await simulator.stop()


async def _follow_stdin(simulator: PrinterSimulator) -> None:
    """Apply commands typed on stdin until it closes; without a usable stdin, run until interrupted."""
    loop = asyncio.get_running_loop()
    lines: asyncio.Queue[str | None] = asyncio.Queue()

    def readable() -> None:
        line = sys.stdin.readline()
        lines.put_nowait(line if line else None)

    try:
        loop.add_reader(sys.stdin.fileno(), readable)
    except (OSError, ValueError, NotImplementedError):
        await asyncio.Event().wait()
    try:
        while (line := await lines.get()) is not None:
            word = line.strip()
            if word in ("silent", "awake"):
                simulator.silent = word == "silent"
            elif word in STATES:
                simulator.status = word
            elif word:
                click.echo(f"unknown: {word!r} (use {', '.join(STATES)}, silent or awake)")
                continue
            else:
                continue
            click.echo(f"now {simulator.status}{' and silent' if simulator.silent else ''}")
        await asyncio.Event().wait()  # stdin closed (run in the background): keep serving
    finally:
        loop.remove_reader(sys.stdin.fileno())

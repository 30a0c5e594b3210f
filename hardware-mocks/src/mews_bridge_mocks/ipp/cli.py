"""``mews-bridge-mocks ipp``: run the IPP printer simulator by hand."""

from __future__ import annotations

import asyncio
import contextlib
import sys
from pathlib import Path

import click

from mews_bridge_ipp_printer.codec import IppPrinterState

from .simulator import FORMATS, IppPrinterSimulator, SimulatedJob

HELP = "type: stop, resume, a reason to add (media-empty, media-jam, door-open, toner-low, …), or clear"


@click.command(name="ipp")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", default=8631, show_default=True, help="TCP port (0 picks a free one).")
@click.option(
    "--out",
    "output_dir",
    default="ipp-jobs",
    show_default=True,
    type=click.Path(file_okay=False, path_type=Path),
    help="Directory for each job's document and its first page as PNG.",
)
@click.option("--name", default="Office printer", show_default=True, help="The printer's name.")
@click.option(
    "--formats",
    default=",".join(FORMATS),
    show_default=True,
    help="Document formats it takes, comma-separated.",
)
@click.option("--seconds-per-page", default=0.5, show_default=True, help="How long each page takes to print.")
@click.option("--announce", is_flag=True, help="Announce it by DNS-SD (_ipp._tcp) on the listening address.")
def command(
    *,
    host: str,
    port: int,
    output_dir: Path,
    name: str,
    formats: str,
    seconds_per_page: float,
    announce: bool,
) -> None:
    """An IPP Everywhere printer that keeps every document and renders its first page to PNG.

    While it runs, type "stop", "resume", a printer-state-reasons keyword to add (media-empty,
    toner-low, …) or "clear", and press Enter.
    """
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(
            _run(
                host=host,
                port=port,
                output_dir=output_dir,
                name=name,
                formats=tuple(formats.split(",")),
                seconds_per_page=seconds_per_page,
                announce=announce,
            )
        )


async def _run(
    *,
    host: str,
    port: int,
    output_dir: Path,
    name: str,
    formats: tuple[str, ...],
    seconds_per_page: float,
    announce: bool,
) -> None:
    def printed(job: SimulatedJob) -> None:
        click.echo(
            f"job {job.id} ({job.name}): {job.pages} page(s) x {job.copies}, {job.png_path or job.document_path}"
        )

    simulator = IppPrinterSimulator(
        output_dir,
        name=name,
        formats=formats,
        seconds_per_page=seconds_per_page,
        announce=announce,
        on_job=printed,
    )
    await simulator.start(host, port)
    try:
        click.echo(f"IPP printer {name!r} on ipp://{host}:{simulator.port}/ipp/print; jobs in {output_dir}")
        click.echo(HELP)
        await _commands(simulator)
    finally:
        await simulator.stop()


async def _commands(simulator: IppPrinterSimulator) -> None:
    """Apply what is typed on stdin; with no usable stdin, serve until interrupted."""
    reader = asyncio.StreamReader()
    loop = asyncio.get_running_loop()
    try:
        await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    except (OSError, ValueError):
        await asyncio.Event().wait()
    while line := await reader.readline():
        word = line.decode(errors="replace").strip()
        if word == "stop":
            simulator.state = IppPrinterState.STOPPED
        elif word == "resume":
            simulator.state = IppPrinterState.IDLE
        elif word == "clear":
            simulator.reasons.clear()
        elif word and word.replace("-", "").isalnum():
            simulator.reasons.append(word)
        elif word:
            click.echo(HELP)
            continue
        else:
            continue
        state = "stopped" if simulator.state == IppPrinterState.STOPPED else "idle"
        click.echo(f"now {state}, reasons: {', '.join(simulator.reasons) or 'none'}")
    await asyncio.Event().wait()  # stdin closed (run in the background): keep serving

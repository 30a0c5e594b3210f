"""pytest fixtures: ``ippeveprinter``, a factory of real CUPS ``ippeveprinter`` printers on loopback,
and ``cups_server``, a private CUPS scheduler.

Use them from a test module or conftest with ``from mews_bridge_mocks.ipp.fixtures import …``. When
they cannot run here the tests that use them are skipped, saying why, except under CI (``CI`` set),
where that is a failure: CI installs what they need (``.ci/run``).
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path

import pytest
import pytest_asyncio

from . import cups
from .ippeveprinter import DnsSd, EvePrinter, missing
from .simulator import IppPrinterSimulator


def _cannot_run(what: str, reason: str | None) -> None:
    if reason:
        if os.environ.get("CI"):
            pytest.fail(f"{what} cannot run: {reason}", pytrace=False)
        pytest.skip(f"{what} cannot run: {reason}")


@pytest.fixture(scope="session")
def dns_sd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    _cannot_run("ippeveprinter", missing())
    daemons = DnsSd(tmp_path_factory.mktemp("dns-sd"))
    daemons.start()
    try:
        yield
    finally:
        daemons.stop()


@pytest.fixture
def ippeveprinter(dns_sd: None, tmp_path: Path) -> Iterator[Callable[..., EvePrinter]]:
    """``ippeveprinter(name=…, formats=…, duplex=…)`` starts one; all are stopped after the test."""
    started: list[EvePrinter] = []

    def start(**options: object) -> EvePrinter:
        printer = EvePrinter(tmp_path / f"eve{len(started)}", **options)  # type: ignore[arg-type]
        started.append(printer)
        return printer.start()

    try:
        yield start
    finally:
        for printer in started:
            printer.stop()


@pytest.fixture
def cups_server() -> Iterator[cups.CupsServer]:
    _cannot_run("cupsd", cups.missing())
    # Its backends run as lp, which cannot enter pytest's private temporary directories.
    work = Path(tempfile.mkdtemp(prefix="mews-bridge-cups-"))
    work.chmod(0o755)
    server = cups.CupsServer(work)
    try:
        yield server.start()
    finally:
        server.stop()
        shutil.rmtree(work, ignore_errors=True)


@pytest_asyncio.fixture
async def ipp_simulator(tmp_path: Path) -> AsyncIterator[IppPrinterSimulator]:
    """The small IPP printer simulator (no ippeveprinter needed); jobs land in ``tmp_path/ipp-jobs``."""
    async with IppPrinterSimulator(tmp_path / "ipp-jobs") as simulator:
        yield simulator

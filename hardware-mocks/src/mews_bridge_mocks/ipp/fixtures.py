"""pytest fixtures: ``ippeveprinter``, a factory of real CUPS ``ippeveprinter`` printers on loopback.

Use them from a test module or conftest with ``from mews_bridge_mocks.ipp.fixtures import ippeveprinter``.
When ippeveprinter cannot run here the tests that use it are skipped, saying why, except under CI
(``CI`` set), where that is a failure: CI installs it (``.ci/run``).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from .ippeveprinter import DnsSd, EvePrinter, missing


@pytest.fixture(scope="session")
def dns_sd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    reason = missing()
    if reason:
        if os.environ.get("CI"):
            pytest.fail(f"ippeveprinter cannot run: {reason}", pytrace=False)
        pytest.skip(f"ippeveprinter cannot run: {reason}")
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

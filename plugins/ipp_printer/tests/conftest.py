"""A real bridge, wired to the Mews simulator, printing on real CUPS ippeveprinter printers on loopback."""

from __future__ import annotations

import base64
from collections.abc import Callable
from typing import Any

import pytest

from mews_bridge_ipp_printer.driver import IppPrinterDriver
from mews_bridge_mocks.escpos.samples import registration_card_pdf
from mews_bridge_mocks.ipp.fixtures import dns_sd, ippeveprinter  # noqa: F401 - fixtures, used by name

NAME = "Office printer"
MEWS_NAME = "Reception A4 printer"


@pytest.fixture(autouse=True)
def _no_leaks(verify_cleanup, verify_no_lingering_tasks):
    """Every test fails if it leaves tasks, threads or sockets behind."""


def printer_options(uri: str, **options: Any) -> dict[str, Any]:
    """The printer's options with timings quick enough for tests."""
    return {"uri": uri, "poll_interval_s": 0.05, "timeout_s": 5, "stalled_after_s": 0.5, **options}


@pytest.fixture
def add_printer(bridge_harness) -> Callable[..., str]:
    """``add_printer(uri, **options)``: the printer in Mews and in the settings; its Mews Id."""

    def add(uri: str, **options: Any) -> str:
        return bridge_harness.add_device(
            NAME, IppPrinterDriver, printer_options(uri, **options), mews_name=MEWS_NAME
        )

    return add


@pytest.fixture
def change_printer(bridge_harness) -> Callable[..., None]:
    """``change_printer(uri, **options)``: other options for the printer from the next start."""

    def change(uri: str, **options: Any) -> None:
        bridge_harness.change_device(NAME, printer_options(uri, **options))

    return change


@pytest.fixture(scope="session")
def card_pdf() -> bytes:
    return registration_card_pdf(pages=2)


def b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode()


@pytest.fixture
def encode() -> Callable[[bytes], str]:
    return b64

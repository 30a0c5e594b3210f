"""A real bridge, wired to the Mews simulator, printing on real CUPS ippeveprinter printers on loopback."""

from __future__ import annotations

import base64
from collections.abc import Callable
from typing import Any

import pytest

from mews_bridge.testing import bridge_settings, device
from mews_bridge_mocks.escpos.samples import registration_card_pdf
from mews_bridge_mocks.ipp.fixtures import dns_sd, ippeveprinter  # noqa: F401 - fixtures, used by name

NAME = "Office printer"
MEWS_NAME = "Reception A4 printer"


@pytest.fixture(autouse=True)
def _no_leaks(verify_cleanup, verify_no_lingering_tasks):
    """Every test fails if it leaves tasks, threads or sockets behind."""


@pytest.fixture
def printer_id(mews_simulator) -> str:
    # Mews announces commands only for devices that existed when the bridge's socket connected.
    return mews_simulator.add_device(MEWS_NAME, "Printer")


@pytest.fixture
def settings(mews_simulator, printer_id, tmp_path) -> Callable[..., Any]:
    def make(uri: str, **options: Any) -> Any:
        options = {"uri": uri, "poll_interval_s": 0.05, "timeout_s": 5, "stalled_after_s": 0.5, **options}
        return bridge_settings(
            mews_simulator, tmp_path / "state", devices=[device(NAME, MEWS_NAME, "ipp_printer", options)]
        )

    return make


@pytest.fixture(scope="session")
def card_pdf() -> bytes:
    return registration_card_pdf(pages=2)


def b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode()


@pytest.fixture
def encode() -> Callable[[bytes], str]:
    return b64

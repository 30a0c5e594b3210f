"""pytest fixture: a running :class:`PrinterSimulator` whose receipts land in ``tmp_path/receipts``.

Use it from a test module or conftest with
``from mews_bridge_mocks.escpos.fixtures import printer_simulator``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest_asyncio

from .simulator import PrinterSimulator


@pytest_asyncio.fixture
async def printer_simulator(tmp_path: Path) -> AsyncIterator[PrinterSimulator]:
    async with PrinterSimulator(tmp_path / "receipts") as simulator:
        yield simulator

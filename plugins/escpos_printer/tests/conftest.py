"""Drivers built with a minimal InstanceContext and run against the printer simulator over TCP, and
what it takes to compare the receipts the simulator cuts with the pages the driver rasterises."""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

import pytest
import pytest_asyncio
from PIL import Image, ImageChops

from mews_bridge import CommandJob
from mews_bridge.mews.models import DeviceCommand, PrinterData
from mews_bridge.testing import instance_context
from mews_bridge_escpos_printer.driver import EscposPrinterDriver
from mews_bridge_escpos_printer.options import Options
from mews_bridge_escpos_printer.raster import RasterSettings, open_document
from mews_bridge_mocks.escpos import Receipt
from mews_bridge_mocks.escpos.fixtures import printer_simulator  # noqa: F401 - a fixture, used by name
from mews_bridge_mocks.escpos.samples import registration_card_pdf

PRINTER_NAME = "Reception printer"


@pytest.fixture(autouse=True)
def _no_leaks(verify_cleanup, verify_no_lingering_tasks):
    """Every test fails if it leaves tasks, threads, sockets or ptys behind."""


@pytest.fixture(scope="session")
def sample_pdf() -> bytes:
    return registration_card_pdf(pages=3)


class Raster:
    """Pages rasterised as the driver does at 576 dots, and receipts as the simulator saved them.

    A fixture, as test modules cannot import conftest (``--import-mode=importlib``).
    """

    @staticmethod
    def expected_pages(raw: bytes, file_type: str = "application/pdf", **settings: Any) -> list[Image.Image]:
        document = open_document(raw, file_type, RasterSettings(dots=576, **settings))
        try:
            return [
                page for index in range(document.page_count) if (page := document.page(index)) is not None
            ]
        finally:
            document.close()

    @staticmethod
    def stacked(pages: list[Image.Image]) -> Image.Image:
        sheet = Image.new("1", (pages[0].width, sum(page.height for page in pages)), 1)
        top = 0
        for page in pages:
            sheet.paste(page, (0, top))
            top += page.height
        return sheet

    @staticmethod
    def identical(a: Image.Image, b: Image.Image) -> bool:
        return a.size == b.size and ImageChops.difference(a.convert("L"), b.convert("L")).getbbox() is None

    @staticmethod
    def printed_images(receipt: Receipt) -> Image.Image:
        """The receipt's PNG cropped to its images (the pages follow one another without a gap)."""
        (box,) = receipt.image_boxes
        return receipt.image().crop(box)


@pytest.fixture
def raster() -> type[Raster]:
    return Raster


@pytest_asyncio.fixture
async def make_driver(tmp_path) -> AsyncIterator[Callable[..., Awaitable[EscposPrinterDriver]]]:
    """``await make_driver(url, **options)``: a driver after a successful ``setup()``."""
    drivers: list[EscposPrinterDriver] = []

    async def factory(connection: str, *, setup: bool = True, **options: Any) -> EscposPrinterDriver:
        context = instance_context(tmp_path / "state", PRINTER_NAME)
        driver = EscposPrinterDriver(context, Options(connection=connection, **options))
        if setup:
            await driver.setup()
        drivers.append(driver)
        return driver

    yield factory
    for driver in drivers:
        await driver.unload()


class Progress:
    """Collects reported progress; ``on(fraction, callback)`` runs an async callback once it is reached."""

    def __init__(self) -> None:
        self.values: list[float] = []
        self._hooks: list[tuple[float, Callable[[], Awaitable[None]]]] = []

    def on(self, fraction: float, callback: Callable[[], Awaitable[None]]) -> None:
        self._hooks.append((fraction, callback))

    async def __call__(self, fraction: float) -> None:
        self.values.append(fraction)
        for reached, callback in list(self._hooks):
            if fraction >= reached:
                self._hooks.remove((reached, callback))
                await callback()


@pytest.fixture
def printer_job() -> Callable[..., CommandJob[PrinterData]]:
    """``printer_job(raw_bytes, file_type, copies=1, progress=None, interrupted=False)``."""

    def build(
        raw: bytes | str,
        file_type: str = "application/pdf",
        *,
        copies: int = 1,
        progress: Progress | None = None,
        interrupted: bool = False,
    ) -> CommandJob[PrinterData]:
        file_data = raw if isinstance(raw, str) else base64.b64encode(raw).decode()
        data = PrinterData(copy_count=copies, file_type=file_type, file_data=file_data)
        command = DeviceCommand(
            id="cmd-1",
            state="Processing",
            created_utc=datetime.now(UTC),
            device={"id": "dev-1", "name": PRINTER_NAME, "type": "Printer"},
            data=data.to_mews(),
        )
        return CommandJob(command, data, progress or Progress(), interrupted=interrupted)

    return build


@pytest.fixture
def progress() -> Progress:
    return Progress()

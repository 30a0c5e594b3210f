"""The IPP printer simulator: the ipp_printer driver prints on it through a real bridge, it keeps each
document and its first page as PNG, its state changes while it runs, and it announces itself by DNS-SD."""

from __future__ import annotations

import base64
import importlib.util

import pytest
from PIL import Image

from mews_bridge.testing import bridge_settings, device, run_cli, running_bridge, wait_for_final_state
from mews_bridge_mocks.escpos.samples import registration_card_pdf

pytestmark = pytest.mark.skipif(
    importlib.util.find_spec("mews_bridge_ipp_printer") is None,
    reason="the simulator is built from ipp_printer",
)
NAME = "Office printer"


@pytest.fixture(autouse=True)
def _no_leaks(verify_cleanup, verify_no_lingering_tasks):
    """Every test fails if it leaves tasks, threads or sockets behind."""


async def print_card(mews_simulator, ipp_simulator, tmp_path, copies=1):
    printer_id = mews_simulator.add_device("A4 printer", "Printer")
    settings = bridge_settings(
        mews_simulator,
        tmp_path / "state",
        devices=[
            device(NAME, "A4 printer", "ipp_printer", {"uri": ipp_simulator.uri, "poll_interval_s": 0.05})
        ],
    )
    pdf = base64.b64encode(registration_card_pdf(pages=2)).decode()
    async with running_bridge(settings, entry_points=True):
        command_id = mews_simulator.add_printer_command(printer_id, pdf, copy_count=copies)
        return await wait_for_final_state(mews_simulator, command_id, 20)


async def test_a_card_is_printed_and_its_first_page_kept_as_png(mews_simulator, ipp_simulator, tmp_path):
    final = await print_card(mews_simulator, ipp_simulator, tmp_path, copies=2)
    assert (final["State"], final["Notes"]) == ("Processed", None)
    (job,) = ipp_simulator.jobs
    assert (job.format, job.pages, job.copies, job.impressions) == ("application/pdf", 2, 2, 4)
    assert job.document_path.read_bytes()[:5] == b"%PDF-"
    with Image.open(job.png_path) as png:
        assert png.width == 600 and png.height > png.width  # an A4 page
        assert png.convert("L").getextrema()[0] < 64  # there is dark text on it


async def test_a_raster_only_simulator_gets_pwg_raster(mews_simulator, ipp_simulator, tmp_path):
    ipp_simulator.formats = ("image/pwg-raster",)
    final = await print_card(mews_simulator, ipp_simulator, tmp_path)
    assert final["State"] == "Processed"
    (job,) = ipp_simulator.jobs
    assert (job.format, job.pages) == ("image/pwg-raster", 2)
    assert job.png_path is not None and job.png_path.exists()


async def test_a_stopped_simulator_ends_the_command_in_error(mews_simulator, ipp_simulator, tmp_path):
    from mews_bridge_ipp_printer.codec import IppPrinterState

    ipp_simulator.state = IppPrinterState.STOPPED
    ipp_simulator.reasons = ["paused"]
    final = await print_card(mews_simulator, ipp_simulator, tmp_path)
    assert final["State"] == "Error"
    assert final["Notes"].startswith(f"{NAME} is stopped. {NAME} is paused.")
    assert ipp_simulator.jobs == []


async def test_a_printer_that_does_not_track_jobs_is_processed_on_acceptance(
    mews_simulator, ipp_simulator, tmp_path
):
    ipp_simulator.tracks_jobs = False
    final = await print_card(mews_simulator, ipp_simulator, tmp_path)
    assert final["State"] == "Processed"
    assert final["Notes"] == (
        f"{NAME} does not report on its jobs: the bridge knows it took the document, not that it printed."
    )
    assert len(ipp_simulator.jobs) == 1


async def test_discover_lists_the_simulator_it_hears_announced(tmp_path):
    from mews_bridge_mocks.ipp.simulator import IppPrinterSimulator

    async with IppPrinterSimulator(tmp_path / "jobs", name="Back office", announce=True) as simulator:
        result = await run_cli("ipp", "discover", "--interface", "127.0.0.1", "--timeout", "2")
    assert result.code == 0, result.err
    assert "Back office\n" in result.out
    assert f'uri = "ipp://ipp-simulator.local:{simulator.port}/ipp/print"' in result.out
    assert "model: Mews Bridge IPP simulator" in result.out

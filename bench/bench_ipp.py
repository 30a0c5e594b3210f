"""From the Mews command to the job completed on CUPS' ippeveprinter, per A4 page: as PDF, and
rasterised to PWG raster or JPEG for a printer that takes no PDF.

Each format runs in a fresh process (its peak RSS is its own): the Mews simulator, a bridge with the
ipp_printer driver, and an ippeveprinter on loopback listing only that format. A 5-page registration
card is printed ROUNDS times; the figures are the median time from ``commands/addPrinter`` to the
command's final state, the part of it the driver spent preparing the document (PDF counted, or pages
rendered and encoded), and the peak RSS above the bridge at rest. ippeveprinter's print command counts
the pages of what arrived (a Python process per job), which is part of "to completed".

Needs ippeveprinter (Debian cups-ipp-utils) and root to start a DNS-SD daemon when none runs.
Run: ``python bench/bench_ipp.py``.
"""

from __future__ import annotations

import asyncio
import base64
import json
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

PAGES = 5
ROUNDS = 5
FORMATS = {"PDF": "application/pdf", "PWG raster": "image/pwg-raster", "JPEG": "image/jpeg"}


def _rss_mb() -> float:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


async def _measure(document_format: str, work: Path) -> dict[str, float]:
    from mews_bridge.testing import bridge_settings, device, running_bridge, wait_for_final_state
    from mews_bridge_ipp_printer import document
    from mews_bridge_mocks.escpos.samples import registration_card_pdf
    from mews_bridge_mocks.ipp.ippeveprinter import DnsSd, EvePrinter
    from mews_bridge_mocks.mews import MewsSimulator

    pdf = registration_card_pdf(PAGES)
    target = document.choose_target(
        "application/pdf",
        [document_format],
        color_mode="auto",
        media=document.Media.parse("iso_a4_210x297mm"),
        fit=True,
        resolutions=[300],
        raster_types=["sgray_8"],
    )
    daemons = DnsSd(work)
    daemons.start()
    printer = EvePrinter(work / "eve", formats=document_format).start()
    peak = 0.0
    try:
        async with MewsSimulator() as mews:
            printer_id = mews.add_device("A4 printer", "Printer")
            options = {"uri": printer.uri, "poll_interval_s": 0.05}
            settings = bridge_settings(
                mews, work / "state", devices=[device("A4", "A4 printer", "ipp_printer", options)]
            )
            async with running_bridge(settings, entry_points=True):
                # One command first: imports and caches are not what a page costs.
                await wait_for_final_state(
                    mews, mews.add_printer_command(printer_id, base64.b64encode(pdf).decode()), 60
                )
                rest = _rss_mb()

                async def sample() -> None:
                    nonlocal peak
                    while True:
                        peak = max(peak, _rss_mb())
                        await asyncio.sleep(0.005)

                sampler = asyncio.create_task(sample())
                totals = []
                for _ in range(ROUNDS):
                    started = time.perf_counter()
                    command_id = mews.add_printer_command(printer_id, base64.b64encode(pdf).decode())
                    final = await wait_for_final_state(mews, command_id, 120)
                    totals.append(time.perf_counter() - started)
                    assert final["State"] == "Processed", final
                sampler.cancel()
        prepares = []
        for _ in range(ROUNDS):
            started = time.perf_counter()
            document.prepare(pdf, "application/pdf", target, 100)
            prepares.append(time.perf_counter() - started)
    finally:
        printer.stop()
        daemons.stop()
    return {
        "total_s": statistics.median(totals),
        "prepare_s": statistics.median(prepares),
        "peak_above_rest_mb": peak - rest,
        "rest_mb": rest,
        "max_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }


def child(label: str) -> None:
    with tempfile.TemporaryDirectory(prefix="bench-ipp-") as work:
        print(json.dumps(asyncio.run(_measure(FORMATS[label], Path(work)))))


def main() -> None:
    print(f"{PAGES}-page A4 registration card, {ROUNDS} rounds each, ippeveprinter on loopback")
    print(
        f"{'sent as':<12}{'to completed':>14}{'per page':>10}{'prepare/page':>14}{'peak RSS above rest':>21}"
    )
    for label in FORMATS:
        result = subprocess.run(
            [sys.executable, __file__, label], capture_output=True, text=True, check=False
        )
        if result.returncode != 0:
            print(f"{label:<12} failed: {result.stderr.strip().splitlines()[-1] if result.stderr else ''}")
            continue
        figures = json.loads(result.stdout.strip().splitlines()[-1])
        print(
            f"{label:<12}{figures['total_s']:>12.2f} s{figures['total_s'] / PAGES * 1000:>7.0f} ms"
            f"{figures['prepare_s'] / PAGES * 1000:>11.0f} ms{figures['peak_above_rest_mb']:>18.1f} MB"
            f"   (bridge at rest {figures['rest_mb']:.0f} MB)"
        )


if __name__ == "__main__":
    if len(sys.argv) > 1:
        child(sys.argv[1])
    else:
        main()

"""Time and peak memory per A4 page, from base64 PDF to ESC/POS bytes at 576 dots.

Two paths on the same document (a vector registration card with a grey logo):

* ours: the escpos_printer driver's raster.py (margin trimming, aliased text, dot-gain curve,
  Floyd-Steinberg) and codec.py's encoder (GS v 0);
* python-escpos: PDFium's default anti-aliased render at 576 dots, then python-escpos's own
  ``image()`` (which converts and dithers again) into a ``Dummy`` printer.

Each path runs in a fresh process so that its peak RSS is its own. Run: ``python bench/bench_escpos.py``.
"""

from __future__ import annotations

import base64
import json
import resource
import statistics
import subprocess
import sys
import time

PAGES = 10
ROUNDS = 5
DOTS = 576


def _peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _document() -> str:
    from mews_bridge_mocks.escpos.samples import registration_card_pdf

    return base64.b64encode(registration_card_pdf(PAGES)).decode()


def ours(file_data: str) -> tuple[int, dict[str, float]]:
    from mews_bridge_escpos_printer import codec, raster

    settings = raster.RasterSettings(dots=DOTS)
    times = {"open": 0.0, "render": 0.0, "encode": 0.0}
    started = time.perf_counter()
    document = raster.open_document(
        raster.decode_file_data(file_data, 50_000_000), "application/pdf", settings
    )
    times["open"] = time.perf_counter() - started
    size = 0
    try:
        for index in range(document.page_count):
            started = time.perf_counter()
            page = document.page(index)
            times["render"] += time.perf_counter() - started
            started = time.perf_counter()
            size += len(codec.encode_image(page, "raster"))
            times["encode"] += time.perf_counter() - started
    finally:
        document.close()
    return size, times


def python_escpos(file_data: str) -> tuple[int, dict[str, float]]:
    import pypdfium2 as pdfium
    from escpos.printer import Dummy

    times = {"open": 0.0, "render": 0.0, "encode": 0.0}
    started = time.perf_counter()
    document = pdfium.PdfDocument(base64.b64decode(file_data))
    times["open"] = time.perf_counter() - started
    printer = Dummy(profile="TM-T20II")
    size = 0
    try:
        for index in range(len(document)):
            started = time.perf_counter()
            page = document[index]
            image = page.render(scale=DOTS / page.get_size()[0], grayscale=True).to_pil()
            page.close()
            times["render"] += time.perf_counter() - started
            started = time.perf_counter()
            printer.image(image, impl="bitImageRaster")
            size += len(printer.output)
            printer.clear()
            times["encode"] += time.perf_counter() - started
    finally:
        document.close()
    return size, times


def child(path: str) -> None:
    """One path in this process: warm up, then ROUNDS timed runs; print JSON."""
    # Both paths import the same libraries before the baseline is taken.
    import escpos.printer  # noqa: F401

    from mews_bridge_escpos_printer import codec, raster  # noqa: F401

    run = {"ours": ours, "python-escpos": python_escpos}[path]
    file_data = _document()
    baseline = _peak_mb()
    run(file_data)  # fonts, caches
    rounds = []
    for _ in range(ROUNDS):
        started = time.perf_counter()
        size, parts = run(file_data)
        rounds.append((time.perf_counter() - started, parts))
    best_total, best_parts = min(rounds, key=lambda item: item[0])
    result = {
        "ms_per_page": 1000 * statistics.median(total for total, _ in rounds) / PAGES,
        "best_ms_per_page": 1000 * best_total / PAGES,
        "parts_ms_per_page": {name: 1000 * value / PAGES for name, value in best_parts.items()},
        "bytes_per_page": size / PAGES,
        "peak_rss_mb": _peak_mb(),
        "peak_above_imports_mb": _peak_mb() - baseline,
    }
    print(json.dumps(result))


def main() -> None:
    print(
        f"A4 registration card, {PAGES} pages, {DOTS} dots wide, median of {ROUNDS} rounds, one process each"
    )
    header = f"{'path':<15}{'ms/page':>9}{'best':>8}{'open':>8}{'render':>8}{'encode':>8}"
    print(f"{header}{'KB/page':>9}{'peak RSS MB':>13}{'above imports':>15}")
    for path in ("ours", "python-escpos"):
        output = subprocess.run(
            [sys.executable, __file__, "--child", path], capture_output=True, text=True, check=True
        ).stdout
        figures = json.loads(output.strip().splitlines()[-1])  # python-escpos may print warnings first
        parts = figures["parts_ms_per_page"]
        print(
            f"{path:<15}{figures['ms_per_page']:>9.1f}{figures['best_ms_per_page']:>8.1f}"
            f"{parts['open']:>8.1f}{parts['render']:>8.1f}{parts['encode']:>8.1f}"
            f"{figures['bytes_per_page'] / 1000:>9.1f}{figures['peak_rss_mb']:>13.1f}"
            f"{figures['peak_above_imports_mb']:>15.1f}"
        )
    print("target: <= 150 ms and <= 80 MB a page (a Raspberry Pi 4 is about 5-10x slower)")


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "--child":
        child(sys.argv[2])
    else:
        main()

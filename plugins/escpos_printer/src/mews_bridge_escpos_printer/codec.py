"""Pages and text to ESC/POS bytes, with no I/O.

Images are encoded here rather than with python-escpos's ``image()``: that call converts every page
through RGBA and greyscale and dithers it again (10-20 ms an A4 page against about 1 ms here, see
``bench/bench_escpos.py``), refuses images wider than its profile and prints to stdout when the
profile has no width. The bytes are the same as python-escpos's for the same bitmap (the tests check
it). python-escpos still supplies the capability profiles and the code-page handling of text.
"""

from __future__ import annotations

import json
import logging
import os
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:
    from PIL import Image

    from .options import Options

ESC = b"\x1b"
GS = b"\x1d"
INIT = ESC + b"@"
FRAGMENT_ROWS = 256
"""Image rows per command: small enough for cheap printers' buffers, and for GS ( L's 64 KB limit."""
COLUMN_LINE_SPACING = 16
"""``ESC 3 16`` around ``ESC *`` strips, as python-escpos and escpos-php send it: right on TM-T20 and
TM-U220, and printers feed at least the height of the strip anyway."""
PRINTABLE_MM = {58: 48, 80: 72}
DEFAULT_DPI = 203
DEFAULT_PAPER_MM = 80

ImageMode = Literal["raster", "graphics", "column"]
CutMode = Literal["full", "partial", "none"]
_INVERT = bytes(range(255, -1, -1))  # Pillow stores white as 1, ESC/POS wants a 1 for a black dot


@dataclass(frozen=True)
class PrinterModel:
    """What the encoder needs to know about one printer, resolved once at setup."""

    profile: str
    """The python-escpos profile name (it also picks the code pages of text)."""
    dots: int
    image_mode: ImageMode
    cut: CutMode
    feed_lines: int
    notes: tuple[str, ...] = ()
    """Adjustments made to the settings, for the log and diagnostics."""


def load_model(options: Options, cache_dir: Path) -> PrinterModel:
    """Resolve the profile, the width in dots and the cut; raise ValueError naming the option when
    the profile is unknown.

    The profile is read from python-escpos's own printer database (its ``capabilities.json``) without
    importing python-escpos, which holds the whole database, Pillow, qrcode and pyusb in memory for
    as long as the process runs: that waits for the first text job (:func:`encode_text`)."""
    cache_dir.mkdir(parents=True, exist_ok=True)
    os.environ.setdefault("ESCPOS_CAPABILITIES_PICKLE_DIR", str(cache_dir))
    database = resources.files("escpos").joinpath("capabilities.json").read_text(encoding="utf-8")
    profiles: dict[str, Any] = json.loads(database)["profiles"]
    profile_data = profiles.get(options.profile)
    if not isinstance(profile_data, dict):
        raise ValueError(
            f"option profile: unknown printer profile {options.profile!r} (known: {', '.join(sorted(profiles))})"
        )
    notes: list[str] = []
    dots = printable_dots(options, profile_data)
    cut = options.cut
    features = profile_data.get("features") or {}
    if cut != "none" and not (features.get("paperFullCut") or features.get("paperPartCut")):
        notes.append(f"profile {options.profile} has no cutter: paper is fed, not cut")
        cut = "none"
    elif cut == "partial" and not features.get("paperPartCut"):
        notes.append(f"profile {options.profile} has no partial cut: cutting fully")
        cut = "full"
    elif cut == "full" and not features.get("paperFullCut"):
        notes.append(f"profile {options.profile} has no full cut: cutting partially")
        cut = "partial"
    feature = {"raster": "bitImageRaster", "graphics": "graphics", "column": "bitImageColumn"}
    if not features.get(feature[options.image_mode]):
        notes.append(
            f"profile {options.profile} does not list {options.image_mode} images; sending them anyway"
        )
    return PrinterModel(options.profile, dots, options.image_mode, cut, options.feed_lines, tuple(notes))


def _import_escpos() -> ModuleType:
    """Import python-escpos's printer module, undoing what its first import does to the process.

    That import parses a YAML printer database unless it finds a pickle of it in
    ``ESCPOS_CAPABILITIES_PICKLE_DIR`` (set by :func:`load_model` to the instance's state directory,
    so that restarts are fast), and calls ``logging.basicConfig()``, which would give the bridge's
    root logger a second stderr handler. (It also leaves one empty ``mkdtemp()`` directory per
    process, whatever the environment says: python-escpos 3.1 evaluates that default eagerly.)
    """
    root = logging.getLogger()
    before = set(root.handlers)
    import escpos.printer

    for handler in set(root.handlers) - before:
        root.removeHandler(handler)
    return escpos.printer


def printable_dots(options: Options, profile_data: dict[str, Any]) -> int:
    """Printable width in dots: ``width_dots`` if set, else from the paper width at the profile's
    resolution, never wider than the profile's own width; a multiple of 8 (whole bytes per row)."""
    if options.width_dots:
        return options.width_dots
    media = profile_data.get("media", {})
    pixels = media.get("width", {}).get("pixels")
    known = pixels if isinstance(pixels, int) and pixels > 0 else None
    if options.paper_width_mm is None and known:
        return known // 8 * 8
    dpi = media.get("dpi")
    dpi = dpi if isinstance(dpi, int) and dpi > 0 else DEFAULT_DPI
    paper = options.paper_width_mm or DEFAULT_PAPER_MM
    dots = round(PRINTABLE_MM[paper] * dpi / 25.4 / 8) * 8
    return min(dots, known // 8 * 8) if known else dots


def _u16(value: int) -> bytes:
    return value.to_bytes(2, "little")


def encode_image(page: Image.Image, mode: ImageMode) -> bytes:
    """A 1-bit page (white = 1) as ESC/POS image commands, in fragments of :data:`FRAGMENT_ROWS`."""
    from PIL import Image  # loaded already: the page is one; kept out of the idle process

    if page.mode != "1":
        raise ValueError("encode_image takes a mode '1' image")
    if mode == "column":
        return _column_image(page)
    width = page.width
    if width % 8:
        padded = Image.new("1", (width + 8 - width % 8, page.height), 1)
        padded.paste(page, (0, 0))
        page = padded
    row_bytes = page.width // 8
    data = page.tobytes().translate(_INVERT)
    out = []
    for top in range(0, page.height, FRAGMENT_ROWS):
        rows = min(FRAGMENT_ROWS, page.height - top)
        chunk = data[top * row_bytes : (top + rows) * row_bytes]
        if mode == "raster":
            # GS v 0 m xL xH yL yH d1...dk (m = 0: normal density)
            out.append(GS + b"v0\x00" + _u16(row_bytes) + _u16(rows) + chunk)
        else:
            # GS ( L pL pH m=48 fn=112 a=48 bx=1 by=1 c=49 xL xH yL yH d1...dk: store, then
            # GS ( L 2 0 m=48 fn=50: print the stored graphics
            body = b"0p0\x01\x011" + _u16(page.width) + _u16(rows) + chunk
            out.append(GS + b"(L" + _u16(len(body)) + body + GS + b"(L\x02\x000" + b"2")
    return b"".join(out)


def _column_image(page: Image.Image) -> bytes:
    """``ESC *`` 24-dot double-density strips; each column's 3 bytes run top to bottom, MSB first."""
    from PIL import Image

    height = -(-page.height // 24) * 24
    if height != page.height:
        padded = Image.new("1", (page.width, height), 1)
        padded.paste(page, (0, 0))
        page = padded
    header = ESC + b"*\x21" + _u16(page.width)
    out = [ESC + b"3" + bytes([COLUMN_LINE_SPACING])]
    for top in range(0, height, 24):
        strip = page.crop((0, top, page.width, top + 24)).transpose(Image.Transpose.TRANSPOSE)
        out.append(header + strip.tobytes().translate(_INVERT) + b"\n")
    out.append(ESC + b"2")
    return b"".join(out)


def encode_feed(lines: int) -> bytes:
    """``ESC d n``: print what is buffered and feed ``n`` lines."""
    return ESC + b"d" + bytes([min(max(lines, 0), 255)]) if lines else b""


def encode_cut(mode: CutMode) -> bytes:
    """``GS V 0`` (full) or ``GS V 1`` (partial): function A, which every cutter model knows."""
    return {"full": GS + b"V\x00", "partial": GS + b"V\x01", "none": b""}[mode]


def encode_text(text: str, profile: str) -> bytes:
    """Text in the printer's own font; python-escpos picks a code page (``ESC t n``) per character."""
    printer = _import_escpos().Dummy(profile=profile)
    printer.text(text if text.endswith("\n") else text + "\n")
    return printer.output


def resync(dots: int) -> bytes:
    """Bytes that end whatever command a crashed run left half-sent, then reset the printer.

    The longest command we send is one image fragment; NUL bytes fill its data as white, and where
    no command is pending the printer ignores them.
    """
    return b"\x00" * (dots // 8 * FRAGMENT_ROWS + 16) + INIT

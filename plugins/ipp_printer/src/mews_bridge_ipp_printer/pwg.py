"""PWG Raster (PWG 5102.4), the raster format IPP Everywhere printers must accept, with no I/O.

A stream is the sync word ``RaS2`` and then, per page, a 1796-byte big-endian header and the page's
lines. Each line is one byte (how many times it repeats, minus one) and then pixel runs: a control
byte 0-127 repeats the next pixel 1-128 times; 129-255 is followed by 257 minus it literal pixels.
Only 8-bit grey (``sgray_8``) and 8-bit sRGB (``srgb_8``) are written. :func:`decode_first_page` reads
them back for the printer simulator.
"""

from __future__ import annotations

import re
import struct
from dataclasses import dataclass
from functools import partial

from PIL import Image

SYNC = b"RaS2"
HEADER_SIZE = 1796
MAX_RUN = 128
_GREY_RUN = re.compile(b"(.)\\1+", re.DOTALL)
COLOR_SPACES = {"sgray_8": (18, 1, "L"), "srgb_8": (19, 3, "RGB")}
"""PWG type → (cupsColorSpace value, bytes per pixel, Pillow mode)."""
_MODES = {space: (kind, size, mode) for kind, (space, size, mode) in COLOR_SPACES.items()}
# Fixed offsets into the page header (PWG 5102.4 section 4.3).
_OFF_HW_RESOLUTION = 276
_OFF_NUM_COPIES = 340
_OFF_PAGE_SIZE = 352
_OFF_WIDTH = 372
_OFF_BITS_PER_COLOR = 384
_OFF_COLOR_SPACE = 400
_OFF_NUM_COLORS = 420
_OFF_TOTAL_PAGE_COUNT = 452
_OFF_CROSS_FEED = 456
_OFF_ALTERNATE_PRIMARY = 480
_OFF_PAGE_SIZE_NAME = 1732


class RasterError(Exception):
    """The bytes are not PWG raster this module reads."""


@dataclass(frozen=True)
class PageHeader:
    width: int
    height: int
    dpi: int
    color_space: int
    bytes_per_pixel: int
    page_size_name: str = ""


def encode_header(page: PageHeader, total_pages: int) -> bytes:
    header = bytearray(HEADER_SIZE)
    header[0:9] = b"PwgRaster"
    struct.pack_into(">II", header, _OFF_HW_RESOLUTION, page.dpi, page.dpi)
    struct.pack_into(">I", header, _OFF_NUM_COPIES, 1)
    points = (round(page.width * 72 / page.dpi), round(page.height * 72 / page.dpi))
    struct.pack_into(">II", header, _OFF_PAGE_SIZE, *points)
    bits = 8 * page.bytes_per_pixel
    struct.pack_into(">II", header, _OFF_WIDTH, page.width, page.height)
    # BitsPerColor, BitsPerPixel, BytesPerLine, ColorOrder (chunky), ColorSpace
    struct.pack_into(
        ">IIIII", header, _OFF_BITS_PER_COLOR, 8, bits, page.width * page.bytes_per_pixel, 0, page.color_space
    )
    struct.pack_into(">I", header, _OFF_NUM_COLORS, page.bytes_per_pixel)
    struct.pack_into(">I", header, _OFF_TOTAL_PAGE_COUNT, total_pages)
    struct.pack_into(">ii", header, _OFF_CROSS_FEED, 1, 1)  # CrossFeedTransform, FeedTransform
    struct.pack_into(">I", header, _OFF_ALTERNATE_PRIMARY, 0xFFFFFF)  # white
    name = page.page_size_name.encode("ascii")[:63]
    header[_OFF_PAGE_SIZE_NAME : _OFF_PAGE_SIZE_NAME + len(name)] = name
    return bytes(header)


def encode_page(image: Image.Image, dpi: int, total_pages: int, page_size_name: str = "") -> bytes:
    """One page (Pillow ``L`` or ``RGB``): its header and its compressed lines."""
    kind = "srgb_8" if image.mode == "RGB" else "sgray_8"
    space, size, mode = COLOR_SPACES[kind]
    if image.mode != mode:
        image = image.convert(mode)
    header = PageHeader(image.width, image.height, dpi, space, size, page_size_name)
    out = bytearray(encode_header(header, total_pages))
    raw = image.tobytes()
    stride = image.width * size
    pixel = re.compile(b"(" + b"." * size + b")\\1*", re.DOTALL)
    encode_line = _encode_grey_line if size == 1 else partial(_encode_line, size=size, pixel=pixel)
    row = 0
    while row < image.height:
        line = raw[row * stride : (row + 1) * stride]
        repeat = 1
        while (
            row + repeat < image.height
            and repeat < 256
            and raw[(row + repeat) * stride : (row + repeat + 1) * stride] == line
        ):
            repeat += 1
        out.append(repeat - 1)
        encode_line(line, out)
        row += repeat
    return bytes(out)


def _encode_grey_line(line: bytes, out: bytearray) -> None:
    """One-byte pixels: the runs of two or more are found by one regex, what lies between is literal."""
    position = 0
    for match in _GREY_RUN.finditer(line):
        start, end = match.span()
        _literal(line[position:start], out)
        value = line[start]
        run = end - start
        while run:
            take = min(run, MAX_RUN)
            out.append(take - 1)
            out.append(value)
            run -= take
        position = end
    _literal(line[position:], out)


def _literal(pixels: bytes, out: bytearray) -> None:
    for start in range(0, len(pixels), MAX_RUN):
        chunk = pixels[start : start + MAX_RUN]
        out.append(0 if len(chunk) == 1 else 257 - len(chunk))  # a single pixel is a run of one
        out += chunk


def _encode_line(line: bytes, out: bytearray, *, size: int, pixel: re.Pattern[bytes]) -> None:
    """Multi-byte pixels, pixel by pixel: a regex over bytes would find runs across pixel bounds."""
    literal = bytearray()

    def flush() -> None:
        for start in range(0, len(literal), MAX_RUN * size):
            chunk = literal[start : start + MAX_RUN * size]
            count = len(chunk) // size
            if count == 1:
                out.append(0)  # a single pixel is a run of one
            else:
                out.append(257 - count)
            out.extend(chunk)
        literal.clear()

    for match in pixel.finditer(line):
        run = (match.end() - match.start()) // size
        if run == 1:
            literal += match.group(1)
            continue
        flush()
        value = match.group(1)
        while run:
            take = min(run, MAX_RUN)
            out.append(take - 1)
            out += value
            run -= take
    flush()


def encode(pages: list[Image.Image], dpi: int, page_size_name: str = "") -> bytes:
    return SYNC + b"".join(encode_page(page, dpi, len(pages), page_size_name) for page in pages)


def count_pages(data: bytes) -> int:
    """How many pages a stream holds (walks every page's lines)."""
    return sum(1 for _ in _pages(data))


def decode_first_page(data: bytes) -> Image.Image:
    for image in _pages(data):
        return image
    raise RasterError("no pages")


def _pages(data: bytes):
    if data[:4] != SYNC:
        raise RasterError("no PWG raster sync word")
    offset = 4
    while offset < len(data):
        if offset + HEADER_SIZE > len(data):
            raise RasterError("truncated page header")
        header = data[offset : offset + HEADER_SIZE]
        width, height = struct.unpack_from(">II", header, _OFF_WIDTH)
        (space,) = struct.unpack_from(">I", header, _OFF_COLOR_SPACE)
        if space not in _MODES:
            raise RasterError(f"colour space {space} is not read here")
        _, size, mode = _MODES[space]
        offset += HEADER_SIZE
        stride = width * size
        pixels = bytearray()
        rows = 0
        try:
            while rows < height:
                repeat = data[offset] + 1
                offset += 1
                line = bytearray()
                while len(line) < stride:
                    control = data[offset]
                    offset += 1
                    if control < 128:
                        line += data[offset : offset + size] * (control + 1)
                        offset += size
                    else:
                        count = (257 - control) * size
                        line += data[offset : offset + count]
                        offset += count
                if len(line) != stride:
                    raise RasterError("a line overruns the page width")
                pixels += bytes(line) * repeat
                rows += repeat
        except IndexError:
            raise RasterError("truncated page data") from None
        yield Image.frombytes(mode, (width, height), bytes(pixels[: stride * height]))

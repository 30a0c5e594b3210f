"""Decoded ESC/POS commands to paper: a 1-bit image per cut receipt, with no I/O.

A model of an 80 mm thermal printer at 203 dpi in standard mode: Font A is 12 x 24 dots, the
default line spacing 30 dots, and a printed line is never shorter than what it holds (so 24-dot
``ESC *`` strips stack exactly whatever ``ESC 3`` says, as on Epson TM printers).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache

from PIL import Image, ImageDraw, ImageFont

from .decoder import Command

DEFAULT_DOTS = 576
DEFAULT_LINE_SPACING = 30
FONTS = {0: (12, 24), 1: (9, 17)}  # Font A, Font B: cell width and height in dots
# ESC t n on Epson TM printers, for the tables Python can decode.
CODE_PAGES = {
    0: "cp437",
    2: "cp850",
    3: "cp860",
    4: "cp863",
    5: "cp865",
    13: "cp857",
    14: "cp737",
    15: "iso8859_7",
    16: "cp1252",
    17: "cp866",
    18: "cp852",
    19: "cp858",
    32: "cp720",
    33: "cp775",
    34: "cp855",
    35: "cp861",
    36: "cp862",
    37: "cp864",
    38: "cp869",
    39: "iso8859_2",
    40: "iso8859_15",
    44: "cp1125",
    45: "cp1250",
    46: "cp1251",
    47: "cp1253",
    48: "cp1254",
    49: "cp1255",
    50: "cp1256",
    51: "cp1257",
    52: "cp1258",
    53: "kz1048",
}
_INVERT = bytes(range(255, -1, -1))  # ESC/POS sets a bit for a black dot, Pillow for a white one


def ink_bitmap(data: bytes, width: int, height: int) -> Image.Image:
    """A mode "1" image from ESC/POS raster bytes (rows of ``ceil(width / 8)`` bytes, 1 = black)."""
    return Image.frombytes("1", (width, height), data.translate(_INVERT))


@lru_cache(maxsize=4)
def _font(size: int) -> ImageFont.ImageFont | ImageFont.FreeTypeFont:
    """DejaVu Sans Mono where installed (it has accents and Greek); Pillow's own font otherwise."""
    try:
        return ImageFont.truetype("DejaVuSansMono.ttf", size)
    except OSError:
        return ImageFont.load_default(size=size)


@lru_cache(maxsize=1024)
def _glyph(char: str, font: int, bold: bool) -> Image.Image:
    width, height = FONTS[font]
    cell = Image.new("L", (width, height), 255)
    draw = ImageDraw.Draw(cell)
    face = _font(height - 4)
    for dx in (0, 1) if bold else (0,):
        draw.text((width / 2 + dx, height / 2), char, font=face, fill=0, anchor="mm")
    return cell.point(lambda value: 255 if value > 127 else 0, mode="1")


@dataclass
class PrintedReceipt:
    """What came out up to a cut (or up to now)."""

    image: Image.Image
    cut: str
    commands: list[str]
    text: str
    image_boxes: list[tuple[int, int, int, int]]
    """(left, top, right, bottom) of each printed image; touching fragments are merged into one."""


@dataclass
class _Style:
    font: int = 0
    width: int = 1
    height: int = 1
    bold: bool = False
    underline: bool = False
    align: int = 0
    line_spacing: int = DEFAULT_LINE_SPACING
    code_page: int = 0
    graphics: Image.Image | None = None


@dataclass
class _Line:
    items: list[tuple[int, Image.Image, bool]] = field(default_factory=list)
    """(x, bitmap, is an image) of each glyph or ``ESC *`` strip."""
    x: int = 0
    text: str = ""


class ReceiptRenderer:
    """Applies commands to a paper roll; :meth:`apply` returns a receipt when the paper is cut."""

    def __init__(self, dots: int = DEFAULT_DOTS) -> None:
        self.dots = dots
        self.style = _Style()
        self._line = _Line()
        self._bands: list[Image.Image] = []
        self._height = 0
        self._boxes: list[tuple[int, int, int, int]] = []
        self._commands: list[str] = []
        self._text: list[str] = []

    def note(self, line: str) -> None:
        """Add a line to the command log of the receipt in progress."""
        self._commands.append(line)

    def apply(self, command: Command) -> PrintedReceipt | None:
        self._commands.append(command.describe())
        handler = getattr(self, f"_on_{command.kind}", None)
        if handler is not None:
            return handler(command)
        return None

    def take(self, cut: str) -> PrintedReceipt:
        """End the receipt in progress (``cut`` says how) and start a new one."""
        self._flush_line(minimum=0)
        image = Image.new("1", (self.dots, max(self._height, 1)), 1)
        top = 0
        for band in self._bands:
            image.paste(band, (0, top))
            top += band.height
        receipt = PrintedReceipt(image, cut, self._commands, "\n".join(self._text), _merge(self._boxes))
        self._bands, self._height, self._boxes, self._commands, self._text = [], 0, [], [], []
        return receipt

    # Paper movement

    def _feed(self, dots: int) -> None:
        if dots > 0:
            self._bands.append(Image.new("1", (self.dots, dots), 1))
            self._height += dots

    def _flush_line(self, minimum: int) -> None:
        """Print the line buffer; the paper moves at least ``minimum`` dots, at least the line's height."""
        line = self._line
        tallest = max((item.height for _, item, _ in line.items), default=0)
        height = max(minimum, tallest)
        if height:
            band = Image.new("1", (self.dots, height), 1)
            offset = self._offset(line.x)
            for x, item, is_image in line.items:
                band.paste(item, (offset + x, 0))
                if is_image:
                    left = offset + x
                    self._boxes.append((left, self._height, left + item.width, self._height + item.height))
            self._bands.append(band)
            self._height += height
        if line.text:
            self._text.append(line.text)
        self._line = _Line()

    def _offset(self, width: int) -> int:
        if self.style.align == 1:
            return max((self.dots - width) // 2, 0)
        if self.style.align == 2:
            return max(self.dots - width, 0)
        return 0

    def _on_lf(self, command: Command) -> None:
        if not self._line.items:
            self._text.append("")  # an empty line of text
        self._flush_line(self.style.line_spacing)

    def _on_feed_lines(self, command: Command) -> None:
        lines = command.raw[2]
        if self._line.items:
            self._flush_line(self.style.line_spacing)
            lines -= 1
        self._feed(max(lines, 0) * self.style.line_spacing)

    def _on_feed_dots(self, command: Command) -> None:
        self._flush_line(command.raw[2])

    def _on_line_spacing(self, command: Command) -> None:
        self.style.line_spacing = command.raw[2] if command.raw[1] == ord("3") else DEFAULT_LINE_SPACING

    def _on_cut(self, command: Command) -> PrintedReceipt:
        raw = command.raw
        if raw[0] == 0x1B:  # ESC i / ESC m
            return self.take("partial")
        mode = raw[2]
        if len(raw) == 4:  # GS V m n: feed n dots (to the cutting position) first
            self._flush_line(0)
            self._feed(raw[3])
        return self.take("partial" if mode in (1, 49, 66, 98, 104) else "full")

    # Settings

    def _on_init(self, command: Command) -> None:
        self.style = _Style()
        self._line = _Line()

    def _on_code_page(self, command: Command) -> None:
        self.style.code_page = command.raw[2]

    def _on_align(self, command: Command) -> None:
        self.style.align = command.raw[2] % 48

    def _on_bold(self, command: Command) -> None:
        self.style.bold = bool(command.raw[2] & 1)

    def _on_underline(self, command: Command) -> None:
        self.style.underline = command.raw[2] % 48 > 0

    def _on_font(self, command: Command) -> None:
        self.style.font = 1 if command.raw[2] % 48 == 1 else 0

    def _on_print_mode(self, command: Command) -> None:
        mode = command.raw[2]
        self.style.font = mode & 1
        self.style.bold = bool(mode & 0x08)
        self.style.height = 2 if mode & 0x10 else 1
        self.style.width = 2 if mode & 0x20 else 1
        self.style.underline = bool(mode & 0x80)

    def _on_char_size(self, command: Command) -> None:
        size = command.raw[2]
        self.style.width = (size >> 4 & 7) + 1
        self.style.height = (size & 7) + 1

    # Text

    def _on_text(self, command: Command) -> None:
        codec = CODE_PAGES.get(self.style.code_page, "latin-1")
        text = command.args["data"].decode(codec, errors="replace")
        for char in text:
            self._put_char(char)

    def _put_char(self, char: str) -> None:
        style = self.style
        glyph = _glyph(char, style.font, style.bold)
        if style.width > 1 or style.height > 1:
            glyph = glyph.resize((glyph.width * style.width, glyph.height * style.height))
        if style.underline:
            glyph = glyph.copy()
            ImageDraw.Draw(glyph).line((0, glyph.height - 1, glyph.width, glyph.height - 1), fill=0)
        if self._line.x + glyph.width > self.dots:  # the printer wraps a full line
            self._flush_line(style.line_spacing)
        self._line.items.append((self._line.x, glyph, False))
        self._line.x += glyph.width
        self._line.text += char

    # Images

    def _place(self, image: Image.Image) -> None:
        """Print an image on its own: it starts a new line and moves the paper by its height."""
        if self._line.items:
            self._flush_line(self.style.line_spacing)
        if image.width > self.dots:
            self.note(f"  (image {image.width} dots wide cut to the printable {self.dots})")
            image = image.crop((0, 0, self.dots, image.height))
        band = Image.new("1", (self.dots, image.height), 1)
        left = self._offset(image.width)
        band.paste(image, (left, 0))
        self._boxes.append((left, self._height, left + image.width, self._height + image.height))
        self._bands.append(band)
        self._height += image.height

    def _on_raster_image(self, command: Command) -> None:
        args = command.args
        image = ink_bitmap(args["data"], args["width_bytes"] * 8, args["height"])
        mode = args["m"] % 48
        if mode:
            image = image.resize((image.width * (1 + (mode & 1)), image.height * (1 + (mode >> 1 & 1))))
        self._place(image)

    def _on_graphics_store(self, command: Command) -> None:
        args = command.args
        image = ink_bitmap(args["data"], args["width"], args["height"])
        if args["bx"] > 1 or args["by"] > 1:
            image = image.resize((image.width * args["bx"], image.height * args["by"]))
        self.style.graphics = image

    def _on_graphics_print(self, command: Command) -> None:
        if self.style.graphics is not None:
            self._place(self.style.graphics)
            self.style.graphics = None

    def _on_column_image(self, command: Command) -> None:
        args = command.args
        mode, width, data = args["m"], args["width"], args["data"]
        bits = 24 if mode in (32, 33) else 8
        # Each column is ``bits`` tall, stored top to bottom: decode it lying down, then stand it up.
        strip = ink_bitmap(data, bits, width).transpose(Image.Transpose.TRANSPOSE)
        if bits == 8:  # 8-dot modes print each bit three dots tall
            strip = strip.resize((strip.width, 24))
        if mode in (0, 32):  # single density prints each column two dots wide
            strip = strip.resize((strip.width * 2, strip.height))
        self._line.items.append((self._line.x, strip, True))
        self._line.x += strip.width


def _merge(boxes: list[tuple[int, int, int, int]]) -> list[tuple[int, int, int, int]]:
    """Join boxes that continue one another (image fragments, column strips) into one."""
    merged: list[tuple[int, int, int, int]] = []
    for box in boxes:
        if merged:
            left, top, right, bottom = merged[-1]
            if (left, right) == (box[0], box[2]) and box[1] == bottom:
                merged[-1] = (left, top, right, box[3])
                continue
        merged.append(box)
    return merged

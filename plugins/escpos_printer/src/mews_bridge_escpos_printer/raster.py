"""Mews documents (base64 ``FileData``) to pages a receipt printer can print, with no I/O.

A page is a 1-bit Pillow image exactly as wide as the printer (white = 1, as Pillow stores mode
"1"), or ``str`` for ``text/plain``, or None for a blank PDF page. A ``multipart/mixed`` document
(RFC 2046) is the pages of its parts one after another, cut once at the end: printer-font text
around an image, such as a fiscal receipt with its QR code. Everything here is blocking CPU
work: the driver calls it through ``asyncio.to_thread``, one page at a time, so memory stays at about
one rendered page whatever the document's length.

Thermal heads print every dot as a solid dot and spread it a little, so:

* PDF text and vector paths are rendered *without* anti-aliasing: their pixels are pure black or
  white, carry no error into Floyd-Steinberg diffusion, and print crisp instead of speckled.
* Continuous tone (logos, photos) goes through a dot-gain curve that lightens mid-tones, then
  Floyd-Steinberg diffusion.
"""

from __future__ import annotations

import email.parser
import email.policy
import io
from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Literal

import pypdfium2 as pdfium
from PIL import Image, ImageOps

from mews_bridge import PDFIUM_LOCK, DocumentError

Page = Image.Image | str | None

FILE_TYPES = {
    "application/pdf": "pdf",
    "image/png": "image",
    "image/jpeg": "image",
    "image/jpg": "image",
    "text/plain": "text",
    "multipart/mixed": "multipart",
}
MAX_PAGE_DOTS = 16000
"""Tallest page accepted, in dots (2 m of paper at 203 dpi): a guard against runaway documents."""
MAX_IMAGE_PIXELS = 40_000_000
MAX_TRIM_ZOOM = 2.0
"""Trimming margins may enlarge a page at most this much, so a near-empty page is not blown up."""
TRIM_PADDING_DOTS = 8
"""White kept above and below trimmed content, so its first line never starts at the paper's edge."""
PREVIEW_FRACTION = 4
"""Margins are found on a preview rendered at 1/4 of the printer's width."""
DOT_GAIN_GAMMA = 0.8
WHITE_LEVEL = 250
"""Grey levels at or above this count as paper when trimming."""

_DOT_GAIN = [round(255 * (v / 255) ** DOT_GAIN_GAMMA) for v in range(256)]
_NON_WHITE = [255 if v < WHITE_LEVEL else 0 for v in range(256)]
_THRESHOLD = [255 if v >= 128 else 0 for v in range(256)]


@dataclass(frozen=True)
class RasterSettings:
    dots: int
    dither: Literal["diffusion", "threshold"] = "diffusion"
    trim: bool = True
    max_pages: int = 20
    max_bytes: int = 10_000_000


def media_type(file_type: str) -> tuple[str, dict[str, str]]:
    """``"text/plain; charset=utf-8"`` → ``("text/plain", {"charset": "utf-8"})``."""
    kind, *params = (part.strip() for part in file_type.split(";"))
    options = {}
    for param in params:
        key, _, value = param.partition("=")
        options[key.strip().lower()] = value.strip().strip('"')
    return kind.lower(), options


class Document(ABC):
    """A document opened for printing, page by page."""

    page_count: int = 1

    @abstractmethod
    def page(self, index: int) -> Page:
        """Render page ``index`` (from 0)."""

    def close(self) -> None:  # noqa: B027 - only PDFs hold resources
        """Release what the document holds."""


def open_document(raw: bytes, file_type: str, settings: RasterSettings) -> Document:
    """Open decoded ``FileData`` of Mews ``FileType``; raise :class:`DocumentError` if unusable."""
    kind, params = media_type(file_type)
    family = FILE_TYPES.get(kind)
    if family == "pdf":
        return PdfDocument(raw, settings)
    if family == "image":
        return ImageDocument(raw, settings)
    if family == "text":
        return TextDocument(raw, params.get("charset"))
    if family == "multipart":
        return MultipartDocument(raw, params.get("boundary"), settings)
    raise DocumentError(f"file type {file_type!r} is not supported (PDF, PNG, JPEG or plain text)")


def to_bitmap(gray: Image.Image, dither: str) -> Image.Image:
    """Reduce a greyscale image to 1 bit for a thermal head."""
    if dither == "threshold":
        return gray.point(_THRESHOLD, mode="1")
    return gray.point(_DOT_GAIN).convert("1", dither=Image.Dither.FLOYDSTEINBERG)


def _fit_width(bitmap: Image.Image, dots: int) -> Image.Image:
    """Centre on (or cut to) exactly ``dots`` columns of paper."""
    if bitmap.width == dots:
        return bitmap
    if bitmap.width > dots:
        left = (bitmap.width - dots) // 2
        return bitmap.crop((left, 0, left + dots, bitmap.height))
    canvas = Image.new("1", (dots, bitmap.height), 1)
    canvas.paste(bitmap, ((dots - bitmap.width) // 2, 0))
    return canvas


def _ink_box(gray: Image.Image) -> tuple[int, int, int, int] | None:
    """The content's box, with :data:`TRIM_PADDING_DOTS` of the white above and below kept."""
    box = gray.point(_NON_WHITE).getbbox()
    if box is None:
        return None
    return box[0], max(box[1] - TRIM_PADDING_DOTS, 0), box[2], min(box[3] + TRIM_PADDING_DOTS, gray.height)


class PdfDocument(Document):
    """A PDF rendered with PDFium at the printer's width."""

    def __init__(self, raw: bytes, settings: RasterSettings) -> None:
        self._settings = settings
        with PDFIUM_LOCK:
            try:
                self._pdf = pdfium.PdfDocument(raw)
            except pdfium.PdfiumError as exc:
                message = "it is password-protected" if "password" in str(exc).lower() else "it is damaged"
                raise DocumentError(f"the PDF cannot be opened ({message})") from None
            try:
                self.page_count = len(self._pdf)
                if self.page_count == 0:
                    raise DocumentError("the PDF has no pages")
                if self.page_count > settings.max_pages:
                    raise DocumentError(
                        f"the PDF has {self.page_count} pages; at most {settings.max_pages} are printed"
                    )
                self._pdf.init_forms()  # so that filled-in form fields print too
                self._slices = self._measure()
            except BaseException:
                self._pdf.close()
                raise

    def _measure(self) -> list[tuple[float, float, float]]:
        """Per page: the left and right edge (points) of the slice to print, and the scale.

        With trimming, the slice is the content of all pages together, found on a small preview
        render, so that every page of a document keeps one scale. Page lengths are checked here,
        before anything is printed.
        """
        sizes: list[tuple[float, float]] = []
        edges: list[tuple[float, float]] = []
        for index in range(self.page_count):
            page = self._pdf[index]
            try:
                width, height = page.get_size()
                sizes.append((width, height))
                if self._settings.trim:
                    scale = self._settings.dots / PREVIEW_FRACTION / width
                    box = _render(page, scale, (0, 0, 0, 0)).point(_NON_WHITE).getbbox()
                    if box is not None:
                        edges.append((box[0] / scale, box[2] / scale))
            finally:
                page.close()
        slices = []
        for index, (width, height) in enumerate(sizes):
            left, right = _slice(width, edges, self._settings.dots)
            scale = self._settings.dots / (right - left)
            if height * scale > MAX_PAGE_DOTS:
                raise DocumentError(
                    f"page {index + 1} would print {height * scale / 8000:.1f} m long, too long for a roll"
                )
            slices.append((left, right, scale))
        return slices

    def page(self, index: int) -> Page:
        left, right, scale = self._slices[index]
        with PDFIUM_LOCK:
            page = self._pdf[index]
            try:
                width = page.get_size()[0]
                gray = _render(page, scale, (left, 0, max(width - right, 0), 0))
            finally:
                page.close()
        if self._settings.trim:
            box = _ink_box(gray)
            if box is None:
                return None
            gray = gray.crop((0, box[1], gray.width, box[3]))
        return _fit_width(to_bitmap(gray, self._settings.dither), self._settings.dots)

    def close(self) -> None:
        with PDFIUM_LOCK:
            self._pdf.close()


def _render(page: pdfium.PdfPage, scale: float, crop: tuple[float, float, float, float]) -> Image.Image:
    bitmap = page.render(scale=scale, crop=crop, grayscale=True, no_smoothtext=True, no_smoothpath=True)
    return bitmap.to_pil()


def _slice(width: float, edges: list[tuple[float, float]], dots: int) -> tuple[float, float]:
    """The horizontal slice of a page ``width`` points wide that covers all content ``edges``."""
    if not edges:
        return 0.0, width
    pad = (TRIM_PADDING_DOTS + PREVIEW_FRACTION) * width / dots  # a margin, plus the preview's coarseness
    left = max(min(edge[0] for edge in edges) - pad, 0.0)
    right = min(max(edge[1] for edge in edges) + pad, width)
    narrowest = width / MAX_TRIM_ZOOM
    if right - left < narrowest:
        middle = (left + right) / 2
        left = max(min(middle - narrowest / 2, width - narrowest), 0.0)
        right = left + narrowest
    return left, right


class ImageDocument(Document):
    """A PNG or JPEG: scaled down to the paper if wider, never up (that would only blur it)."""

    def __init__(self, raw: bytes, settings: RasterSettings) -> None:
        self._settings = settings
        try:
            image = Image.open(io.BytesIO(raw))
        except (OSError, Image.DecompressionBombError):
            raise DocumentError("the image cannot be opened (not a PNG or JPEG, or damaged)") from None
        if image.format not in ("PNG", "JPEG"):
            raise DocumentError(f"the image is {image.format or 'of an unknown format'}, not PNG or JPEG")
        if image.width * image.height > MAX_IMAGE_PIXELS:
            raise DocumentError(f"the image is too large ({image.width} x {image.height} pixels)")
        self._image = image

    def page(self, index: int) -> Page:
        try:
            image = ImageOps.exif_transpose(self._image)
            image.load()
        except (OSError, SyntaxError, ValueError):
            raise DocumentError("the image is damaged and cannot be decoded") from None
        gray = _flatten(image)
        dots = self._settings.dots
        if self._settings.trim:
            box = _ink_box(gray)
            if box is None:
                return None
            gray = gray.crop(box)
        if gray.width > dots:
            height = max(round(gray.height * dots / gray.width), 1)
            gray = gray.resize((dots, height), Image.Resampling.LANCZOS, reducing_gap=3.0)
        if gray.height > MAX_PAGE_DOTS:
            raise DocumentError("the image is too long for a roll")
        return _fit_width(to_bitmap(gray, self._settings.dither), dots)


def _flatten(image: Image.Image) -> Image.Image:
    """Greyscale on white paper, whatever the transparency."""
    if image.mode in ("RGBA", "LA", "PA") or (image.mode == "P" and "transparency" in image.info):
        rgba = image.convert("RGBA")
        paper = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(paper, rgba).convert("L")
    if image.mode in ("I;16", "I;16B", "I;16L", "I"):
        return image.point(lambda value: value / 256).convert("L")
    return image.convert("L")


class TextDocument(Document):
    """``text/plain``, printed with the printer's own font."""

    def __init__(self, raw: bytes, charset: str | None) -> None:
        self.text = _decode_text(raw, charset).replace("\r\n", "\n").replace("\r", "\n")

    def page(self, index: int) -> Page:
        return self.text


def _decode_text(raw: bytes, charset: str | None) -> str:
    if charset:
        try:
            return raw.decode(charset)
        except LookupError:
            raise DocumentError(f"the text's character set {charset!r} is unknown") from None
        except UnicodeDecodeError:
            raise DocumentError(f"the text is not valid {charset}") from None
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        # Mews' own connector runs on Windows: undeclared non-UTF-8 text is most likely cp1252.
        return raw.decode("cp1252", errors="replace")


class MultipartDocument(Document):
    """``multipart/mixed``: each part (PDF, PNG, JPEG or text) printed in turn, with no cut between."""

    def __init__(self, raw: bytes, boundary: str | None, settings: RasterSettings) -> None:
        if not boundary:
            raise DocumentError("the multipart document has no boundary")
        head = f'Content-Type: multipart/mixed; boundary="{boundary}"\r\n\r\n'.encode()
        message = email.parser.BytesParser(policy=email.policy.default).parsebytes(head + raw)
        parts = list(message.iter_parts())  # type: ignore[attr-defined]
        if not parts:
            raise DocumentError("the multipart document has no parts")
        if len(parts) > settings.max_pages:
            raise DocumentError(
                f"the document has {len(parts)} parts; at most {settings.max_pages} are printed"
            )
        self._pages: list[tuple[Document, int]] = []
        self._documents: list[Document] = []
        try:
            for part in parts:
                kind = part.get_content_type()
                if FILE_TYPES.get(kind) in (None, "multipart"):
                    raise DocumentError(f"a part of type {kind!r} cannot be printed")
                data = part.get_payload(decode=True) or b""
                charset = part.get_content_charset()
                document = open_document(data, f"{kind}; charset={charset}" if charset else kind, settings)
                self._documents.append(document)
                self._pages += [(document, index) for index in range(document.page_count)]
        except BaseException:
            self.close()
            raise
        self.page_count = len(self._pages)
        if self.page_count > settings.max_pages:
            self.close()
            raise DocumentError(
                f"the document has {self.page_count} pages; at most {settings.max_pages} are printed"
            )

    def page(self, index: int) -> Page:
        document, page = self._pages[index]
        return document.page(page)

    def close(self) -> None:
        for document in self._documents:
            document.close()

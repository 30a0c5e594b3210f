"""Mews documents made ready for a printer's formats, with no I/O: PDF as it is, or pages rasterised to
PWG raster or JPEG at the media's size.

Blocking CPU work: the driver calls it through ``asyncio.to_thread``. Rasterised pages are rendered
one at a time; an A4 page at 300 dpi is 8.7 MB of grey while it is encoded.
"""

from __future__ import annotations

import io
import re
from collections.abc import Iterator
from dataclasses import dataclass

import pypdfium2 as pdfium
from PIL import Image

from mews_bridge import PDFIUM_LOCK, DocumentError

from . import pwg

PDF = "application/pdf"
PWG_RASTER = "image/pwg-raster"
JPEG = "image/jpeg"
IMAGE_TYPES = {"image/png", "image/jpeg", "image/jpg"}
PREFERRED_DPI = 300
JPEG_QUALITY = 85
MAX_RASTER_DPI = 600
_MEDIA_SIZE = re.compile(r"_(\d+(?:\.\d+)?)x(\d+(?:\.\d+)?)(mm|in)$")


@dataclass(frozen=True)
class Media:
    """A media size from its PWG self-describing name (``iso_a4_210x297mm``), in points."""

    name: str
    width_pt: float
    height_pt: float

    @classmethod
    def parse(cls, name: str) -> Media | None:
        found = _MEDIA_SIZE.search(name)
        if found is None:
            return None
        unit = 72 / 25.4 if found[3] == "mm" else 72.0
        return cls(name, float(found[1]) * unit, float(found[2]) * unit)


@dataclass(frozen=True)
class Target:
    """What the printer will be sent: a document format, and for rasters the page size and density."""

    format: str
    media: Media | None = None
    dpi: int = PREFERRED_DPI
    color: bool = False
    fit: bool = True


@dataclass
class Prepared:
    """The documents to send, one Print-Job each (a JPEG holds one page), and the pages in all."""

    format: str
    documents: list[bytes]
    pages: int


def choose_target(
    file_type: str,
    formats: list[str],
    *,
    color_mode: str,
    media: Media | None,
    fit: bool,
    resolutions: list[int],
    raster_types: list[str],
) -> Target:
    """The best format the printer lists for this document: as it is when it can, else a raster."""
    kind = _kind(file_type)
    if kind == "pdf" and PDF in formats:
        return Target(PDF)
    if kind == "image" and _normal_type(file_type) in formats:
        return Target(_normal_type(file_type))
    dpi = min(resolutions or [PREFERRED_DPI], key=lambda value: (abs(value - PREFERRED_DPI), value))
    dpi = min(dpi, MAX_RASTER_DPI)
    if PWG_RASTER in formats:
        color = color_mode == "color" and "srgb_8" in raster_types
        if not color and raster_types and "sgray_8" not in raster_types:
            raise DocumentError(
                "the printer's PWG raster takes no 8-bit grey (it lists " + ", ".join(raster_types) + ")"
            )
        return Target(PWG_RASTER, media, dpi, color, fit)
    if JPEG in formats:
        return Target(JPEG, media, dpi, color_mode == "color", fit)
    raise DocumentError(
        "the printer takes none of the formats the bridge can send (PDF, PWG raster, JPEG); it lists "
        + (", ".join(formats) or "nothing")
    )


def _normal_type(file_type: str) -> str:
    return file_type.lower().replace("image/jpg", JPEG)


def _kind(file_type: str) -> str:
    file_type = file_type.lower()
    if file_type == PDF:
        return "pdf"
    if file_type in IMAGE_TYPES:
        return "image"
    raise DocumentError(f"documents of type {file_type or 'unknown'} cannot be printed")


def prepare(raw: bytes, file_type: str, target: Target, max_pages: int) -> Prepared:
    """Check the document, count its pages and convert it to the target format."""
    kind = _kind(file_type)
    if target.format == PDF:
        return Prepared(PDF, [raw], _count_pdf_pages(raw, max_pages))
    if kind == "image" and target.format == _normal_type(file_type):
        return Prepared(target.format, [raw], 1)
    images = _pdf_pages(raw, target, max_pages) if kind == "pdf" else iter([_open_image(raw)])
    if target.format == PWG_RASTER:
        return _to_pwg(images, target)
    documents = [_to_jpeg(_on_media(image, target), target.dpi) for image in images]
    return Prepared(JPEG, documents, len(documents))


def _count_pdf_pages(raw: bytes, max_pages: int) -> int:
    with PDFIUM_LOCK:
        document = _open_pdf(raw)
        try:
            pages = len(document)
        finally:
            document.close()
    _check_pages(pages, max_pages)
    return pages


def _open_pdf(raw: bytes) -> pdfium.PdfDocument:
    try:
        return pdfium.PdfDocument(raw)
    except pdfium.PdfiumError as exc:
        if "password" in str(exc).lower():
            raise DocumentError("the PDF is protected by a password") from None
        raise DocumentError("the PDF cannot be read") from None


def _check_pages(pages: int, max_pages: int) -> None:
    if pages == 0:
        raise DocumentError("the PDF has no pages")
    if pages > max_pages:
        raise DocumentError(f"the PDF has {pages} pages, over the limit of {max_pages}")


def _pdf_pages(raw: bytes, target: Target, max_pages: int) -> Iterator[Image.Image]:
    """Each page rendered at the target's density, turned to the media's orientation."""
    with PDFIUM_LOCK:
        document = _open_pdf(raw)
        pages = len(document)
    try:
        _check_pages(pages, max_pages)
        for index in range(pages):
            with PDFIUM_LOCK:
                page = document[index]
                try:
                    width, height = page.get_size()
                    scale = target.dpi / 72 * _fit_scale(width, height, target)
                    rotation = 90 if _turn(width, height, target) else 0
                    bitmap = page.render(
                        scale=scale,
                        rotation=rotation,
                        grayscale=not target.color,
                        may_draw_forms=True,
                        # Text and lines without anti-aliasing: crisp on a laser printer at 300 dpi,
                        # and long runs of one value, which PWG raster compresses (3x faster to encode).
                        no_smoothtext=True,
                        no_smoothpath=True,
                    )
                    image = bitmap.to_pil()
                finally:
                    page.close()
            yield _on_media(image, target, fitted=True)
    finally:
        with PDFIUM_LOCK:
            document.close()


def _turn(width: float, height: float, target: Target) -> bool:
    """Landscape content on portrait media (or the reverse) is turned a quarter to fit."""
    media = target.media
    return media is not None and (width > height) != (media.width_pt > media.height_pt)


def _fit_scale(width: float, height: float, target: Target) -> float:
    media = target.media
    if media is None or not target.fit:
        return 1.0
    if _turn(width, height, target):
        width, height = height, width
    return min(media.width_pt / width, media.height_pt / height)


def _open_image(raw: bytes) -> Image.Image:
    try:
        image = Image.open(io.BytesIO(raw))
        image.load()
    except (OSError, Image.DecompressionBombError):
        raise DocumentError("the image cannot be read") from None
    return image


def _on_media(image: Image.Image, target: Target, *, fitted: bool = False) -> Image.Image:
    """The page centred on a white sheet of the media's size (scaled to fit unless already done)."""
    mode = "RGB" if target.color else "L"
    image = image.convert(mode)
    media = target.media
    if media is None:
        return image
    sheet_size = (round(media.width_pt * target.dpi / 72), round(media.height_pt * target.dpi / 72))
    if (image.width > image.height) != (sheet_size[0] > sheet_size[1]):
        image = image.rotate(90, expand=True)
    if not fitted and target.fit:
        ratio = min(sheet_size[0] / image.width, sheet_size[1] / image.height)
        image = image.resize((max(1, round(image.width * ratio)), max(1, round(image.height * ratio))))
    if image.size == sheet_size:
        return image
    sheet = Image.new(mode, sheet_size, "white")
    sheet.paste(image, ((sheet_size[0] - image.width) // 2, (sheet_size[1] - image.height) // 2))
    return sheet


def _to_pwg(images: Iterator[Image.Image], target: Target) -> Prepared:
    name = target.media.name if target.media else ""
    chunks: list[bytes] = []
    for image in images:
        chunks.append(pwg.encode_page(image, target.dpi, 0, name))
    # TotalPageCount may be 0 ("unknown") by the format; the pages are already counted here.
    return Prepared(PWG_RASTER, [pwg.SYNC + b"".join(chunks)], len(chunks))


def _to_jpeg(image: Image.Image, dpi: int) -> bytes:
    out = io.BytesIO()
    image.save(out, "JPEG", quality=JPEG_QUALITY, dpi=(dpi, dpi))
    return out.getvalue()

"""Documents to 1-bit pages: decoding, limits, trimming and dithering."""

from __future__ import annotations

import base64
import io

import pytest
from PIL import Image

from mews_bridge import DocumentError, decode_file_data
from mews_bridge_escpos_printer.raster import (
    RasterSettings,
    media_type,
    open_document,
    to_bitmap,
)
from mews_bridge_mocks.escpos.samples import registration_card_pdf

SETTINGS = RasterSettings(dots=576)


def test_base64_with_line_breaks_decodes():
    encoded = base64.encodebytes(b"x" * 200).decode()
    assert "\n" in encoded
    assert decode_file_data(encoded, 1000) == b"x" * 200


@pytest.mark.parametrize(
    ("data", "message"),
    [("@@@@", "not valid base64"), ("QUJ", "not valid base64"), ("", "empty"), ("QUJDRA==" * 100, "larger")],
)
def test_bad_file_data(data, message):
    with pytest.raises(DocumentError, match=message):
        decode_file_data(data, 100)


def test_media_type_parameters():
    assert media_type('Text/Plain; charset="windows-1252"') == ("text/plain", {"charset": "windows-1252"})


def test_pdf_pages_are_the_printer_width_and_one_bit():
    document = open_document(registration_card_pdf(2), "application/pdf", SETTINGS)
    try:
        assert document.page_count == 2
        pages = [document.page(index) for index in range(2)]
    finally:
        document.close()
    assert all(page.mode == "1" and page.width == 576 for page in pages)


def test_text_stays_crisp_and_continuous_tone_is_dithered():
    """Vector text prints as solid strokes; the logo's gradient as a spread of dots."""
    document = open_document(
        registration_card_pdf(1), "application/pdf", RasterSettings(dots=576, trim=False)
    )
    page = document.page(0)
    document.close()
    scale = 576 / 595.28
    title = page.crop((int(215 * scale), int(65 * scale), int(390 * scale), int(90 * scale)))
    logo = page.crop((int(55 * scale), int(58 * scale), int(190 * scale), int(75 * scale)))

    def runs(strip: Image.Image) -> float:
        """Average length of black runs along the rows: long for strokes, ~1 for dithering."""
        lengths, current = [], 0
        pixels = strip.load()
        for y in range(strip.height):
            for x in range(strip.width):
                if pixels[x, y] == 0:
                    current += 1
                elif current:
                    lengths.append(current)
                    current = 0
        return sum(lengths) / len(lengths)

    assert runs(title) > 3
    assert runs(logo) < 2.5


def test_blank_pdf_page_is_skipped_when_trimming():
    blank = registration_card_pdf(1).replace(b"/Im1 Do", b"").replace(b"Tj", b"")  # nothing left to draw
    blank = blank.replace(b" l S", b" l n").replace(b" re S", b" re n")
    document = open_document(blank, "application/pdf", SETTINGS)
    assert document.page(0) is None
    document.close()


def test_pdf_limits():
    with pytest.raises(DocumentError, match="the PDF has 3 pages; at most 2 are printed"):
        open_document(registration_card_pdf(3), "application/pdf", RasterSettings(dots=576, max_pages=2))
    tall = registration_card_pdf(1, height_mm=6000)
    with pytest.raises(DocumentError, match=r"page 1 would print \d+\.\d m long"):
        open_document(tall, "application/pdf", RasterSettings(dots=576, trim=False))


def test_threshold_dither_is_pure_black_and_white():
    gray = Image.linear_gradient("L").resize((64, 64))
    bitmap = to_bitmap(gray, "threshold")
    assert bitmap.mode == "1"
    assert set(bitmap.get_flattened_data()) == {0, 255}
    assert bitmap.getpixel((0, 10)) == 0 and bitmap.getpixel((0, 60)) == 255  # dark to light, top to bottom


def test_oversized_image_is_refused_before_decoding():
    raw = io.BytesIO()
    Image.new("1", (10000, 5000)).save(raw, "PNG")
    with pytest.raises(DocumentError, match="too large"):
        open_document(raw.getvalue(), "image/png", SETTINGS)


def test_gif_is_not_a_png():
    raw = io.BytesIO()
    Image.new("L", (10, 10)).save(raw, "GIF")
    with pytest.raises(DocumentError, match="GIF, not PNG or JPEG"):
        open_document(raw.getvalue(), "image/png", SETTINGS)


def test_text_without_charset_falls_back_to_windows_1252():
    document = open_document("Café\r\n".encode("cp1252"), "text/plain", SETTINGS)
    assert document.page(0) == "Café\n"


def test_sixteen_bit_grey_png_keeps_its_tone():
    raw = io.BytesIO()
    Image.new("I;16", (40, 40), 20000).save(raw, "PNG")  # a dark grey: 30 % of white
    page = open_document(raw.getvalue(), "image/png", SETTINGS).page(0)
    assert page is not None
    black = page.crop((268, 0, 308, 40)).histogram()[0]
    assert 0.4 < black / 1600 < 0.9  # dithered dark grey, not a white or a black square

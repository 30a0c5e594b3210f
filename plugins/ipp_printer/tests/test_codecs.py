"""The IPP message codec and the PWG raster encoder, byte for byte (RFC 8010, PWG 5102.4), and what
printer states mean for the front desk."""

from __future__ import annotations

import struct

import pytest
from PIL import Image, ImageChops, ImageDraw

from mews_bridge_ipp_printer import pwg
from mews_bridge_ipp_printer.codec import IppOperation, IppTag, decode, request, response
from mews_bridge_ipp_printer.document import Media
from mews_bridge_ipp_printer.status import PrinterState


def attribute(tag: int, name: str, value: bytes) -> bytes:
    return bytes([tag]) + struct.pack(">H", len(name)) + name.encode() + struct.pack(">H", len(value)) + value


def test_a_request_is_laid_out_as_rfc_8010_says():
    raw = request(
        IppOperation.GET_JOB_ATTRIBUTES,
        "ipp://printer/ipp/print",
        [("job-id", IppTag.INTEGER, 7), ("requested-attributes", IppTag.KEYWORD, ["job-state", "job-name"])],
    )
    request_id = raw[4:8]
    assert raw == (
        b"\x02\x00\x00\x09"
        + request_id
        + b"\x01"
        + attribute(0x47, "attributes-charset", b"utf-8")
        + attribute(0x48, "attributes-natural-language", b"en")
        + attribute(0x45, "printer-uri", b"ipp://printer/ipp/print")
        + attribute(0x42, "requesting-user-name", b"mews-bridge")
        + attribute(0x21, "job-id", b"\x00\x00\x00\x07")
        + attribute(0x44, "requested-attributes", b"job-state")
        + attribute(0x44, "", b"job-name")  # a 1setOf's further values have no name
        + b"\x03"
    )


def test_a_print_job_carries_the_document_after_the_end_tag():
    raw = request(
        IppOperation.PRINT_JOB,
        "ipp://p/ipp/print",
        job_attributes=[("media", IppTag.KEYWORD, "iso_a4_210x297mm")],
        data=b"%PDF-1.4 ...",
    )
    message = decode(raw, with_data=True)
    assert message.code == IppOperation.PRINT_JOB
    assert message.jobs == [{"media": "iso_a4_210x297mm"}]
    assert message.data == b"%PDF-1.4 ..."
    assert raw.endswith(attribute(0x44, "media", b"iso_a4_210x297mm") + b"\x03%PDF-1.4 ...")


def test_a_response_decodes_to_its_groups():
    raw = response(
        0x0000,
        42,
        message="ok",
        groups=[
            (
                IppTag.JOB,
                [
                    ("job-id", IppTag.INTEGER, 3),
                    ("job-state", IppTag.ENUM, 9),
                    ("job-state-reasons", IppTag.KEYWORD, ["job-completed-successfully"]),
                ],
            )
        ],
    )
    message = decode(raw)
    assert (message.ok, message.request_id, message.status_message) == (True, 42, "ok")
    assert message.jobs == [{"job-id": 3, "job-state": 9, "job-state-reasons": "job-completed-successfully"}]


def test_a_range_of_integers_encodes_and_decodes():
    raw = response(0, 1, groups=[(IppTag.PRINTER, [("copies-supported", IppTag.RANGE, (1, 999))])])
    assert attribute(0x33, "copies-supported", b"\x00\x00\x00\x01\x00\x00\x03\xe7") in raw
    assert decode(raw).printers == [{"copies-supported": [1, 999]}]


def test_pwg_raster_header_and_lines():
    image = Image.new("L", (4, 3), 255)
    image.putpixel((0, 1), 0)
    data = pwg.encode([image], 300, "iso_a4_210x297mm")
    assert data[:4] == b"RaS2"
    header = data[4 : 4 + pwg.HEADER_SIZE]
    assert header[:9] == b"PwgRaster"
    assert struct.unpack_from(">II", header, 276) == (300, 300)  # HWResolution
    assert struct.unpack_from(">II", header, 372) == (4, 3)  # Width, Height
    assert struct.unpack_from(">IIIII", header, 384) == (8, 8, 4, 0, 18)  # 8-bit sGray, chunky
    assert header[1732:1748] == b"iso_a4_210x297mm"
    # Line 0: once, 4 white pixels. Line 1: once, 1 black then 3 white. Line 2: same as line 0.
    assert data[4 + pwg.HEADER_SIZE :] == b"\x00\x03\xff" + b"\x00\x00\x00\x02\xff" + b"\x00\x03\xff"


def test_pwg_raster_round_trips_grey_and_colour_with_long_runs_and_literals():
    grey = Image.new("L", (700, 300), 255)
    draw = ImageDraw.Draw(grey)
    draw.text((10, 10), "Registration card", fill=0)
    draw.rectangle((100, 100, 650, 200), fill=90)
    for x in range(700):
        grey.putpixel((x, 250), x % 256)
    colour = Image.merge("RGB", [grey, grey.rotate(180), grey.transpose(Image.Transpose.FLIP_LEFT_RIGHT)])
    for image in (grey, colour):
        data = pwg.encode([image, image], 300)
        assert pwg.count_pages(data) == 2
        assert ImageChops.difference(pwg.decode_first_page(data), image).getbbox() is None


def test_media_sizes_come_from_pwg_self_describing_names():
    a4 = Media.parse("iso_a4_210x297mm")
    letter = Media.parse("na_letter_8.5x11in")
    assert a4 is not None and letter is not None
    assert (round(a4.width_pt), round(a4.height_pt)) == (595, 842)
    assert (letter.width_pt, letter.height_pt) == (612.0, 792.0)
    assert Media.parse("custom") is None


@pytest.mark.parametrize(
    ("reasons", "stopped", "notes"),
    [
        (["none"], False, None),
        (["media-empty-error"], False, "Paper out on Desk. Load paper and print again."),
        (["media-empty-report"], False, None),  # may be the by-pass tray: sent, ends only if it waits
        (["toner-empty-report"], False, "Desk is out of toner. Replace the toner cartridge and print again."),
        (
            ["media-jam", "door-open-warning"],
            False,
            "Paper jam in Desk. Clear the jam and print again. A door is open on Desk. Close it and print again.",
        ),
        (
            ["paused"],
            True,
            "Desk is stopped. Desk is paused. Resume it on the printer or its print server, then print again.",
        ),
        (
            ["com.vendor-thing-error"],
            True,
            "Desk is stopped. Check Desk and its print server (it reports com.vendor-thing), then print again.",
        ),
        (["toner-low-report"], False, None),
    ],
)
def test_printer_states_in_plain_words(reasons, stopped, notes):
    state = PrinterState.read({"printer-state": 5 if stopped else 3, "printer-state-reasons": reasons})
    assert state.stop_notes("Desk") == notes


def test_supplies_running_low_are_warnings():
    state = PrinterState.read(
        {"printer-state": 3, "printer-state-reasons": ["toner-low-report", "media-low-warning"]}
    )
    assert state.warnings("Desk") == [
        "Toner low on Desk: replace the cartridge soon.",
        "Paper low on Desk: refill it soon.",
    ]


def test_a_landscape_page_is_turned_to_fit_portrait_paper():
    from mews_bridge_ipp_printer import document
    from mews_bridge_mocks.escpos.samples import registration_card_pdf

    landscape = registration_card_pdf(1, width_mm=297, height_mm=210)
    target = document.Target(document.PWG_RASTER, Media.parse("iso_a4_210x297mm"), dpi=100)
    prepared = document.prepare(landscape, "application/pdf", target, 10)
    page = pwg.decode_first_page(prepared.documents[0])
    assert page.size == (827, 1169)  # A4 portrait at 100 dpi
    # Turned, the card's text runs down the page: its ink spans the sheet's height, not just the top.
    ink = page.point(lambda v: 255 if v < 128 else 0).getbbox()
    assert ink is not None and ink[3] - ink[1] > 0.8 * page.height

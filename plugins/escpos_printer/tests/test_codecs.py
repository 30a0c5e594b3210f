"""The pure codecs: status bytes and image bytes, checked against python-escpos's own."""

from __future__ import annotations

import pytest
from escpos import constants
from escpos.printer import Dummy
from PIL import Image

from mews_bridge_escpos_printer import codec, status
from mews_bridge_escpos_printer.status import PrinterStatus, StatusKind


def test_status_requests_are_python_escpos_bytes():
    assert status.request(StatusKind.PRINTER) == constants.RT_STATUS_ONLINE
    assert status.request(StatusKind.ROLL_PAPER) == constants.RT_STATUS_PAPER
    assert status.request(*status.ROUTINE_KINDS) == b"\x10\x04\x01\x10\x04\x02\x10\x04\x04"


@pytest.mark.parametrize(
    ("printer", "cause", "paper", "fault", "near_end"),
    [
        (0x12, 0x12, 0x12, None, False),
        (0x12, 0x12, 0x1E, None, True),  # python-escpos RT_MASK_LOWPAPER
        (0x1A, 0x32, 0x72, "paper_out", False),  # RT_MASK_NOPAPER
        (0x1A, 0x16, 0x12, "cover_open", False),
        (0x1A, 0x12, 0x12, "offline", False),
    ],
)
def test_status_replies_decode(printer, cause, paper, fault, near_end):
    found = status.decode(
        {StatusKind.PRINTER: printer, StatusKind.OFFLINE_CAUSE: cause, StatusKind.ROLL_PAPER: paper}
    )
    assert (found.fault, found.paper_near_end) == (fault, near_end)


def test_error_cause_is_decoded():
    found = status.decode(
        {StatusKind.PRINTER: 0x1A, StatusKind.OFFLINE_CAUSE: 0x52, StatusKind.ERROR_CAUSE: 0x1A}
    )
    assert found.fault == "cutter_error"


@pytest.mark.parametrize(
    "state",
    [
        PrinterStatus(),
        PrinterStatus(paper_near_end=True),
        PrinterStatus(paper_out=True),
        PrinterStatus(cover_open=True),
        PrinterStatus(offline=True),
        PrinterStatus(error=True, autocutter_error=True),
        PrinterStatus(error=True, head_overheated=True),
    ],
)
def test_encoded_replies_are_status_bytes_that_decode_back(state):
    replies = status.encode(state)
    assert all(status.is_reply(byte) for byte in replies.values())
    assert status.decode(replies).fault == state.fault
    assert status.decode(replies).summary == state.summary


def test_flow_control_and_automatic_status_back_bytes_are_not_replies():
    assert not status.is_reply(0x11)  # XON
    assert not status.is_reply(0x13)  # XOFF
    assert not status.is_reply(0x10)  # first byte of an ASB message: bit 1 clear


@pytest.fixture(scope="module")
def page() -> Image.Image:
    return Image.effect_noise((576, 600), 90).convert("1")


@pytest.mark.parametrize(
    ("mode", "impl", "fragment_height"),
    [("raster", "bitImageRaster", codec.FRAGMENT_ROWS), ("graphics", "graphics", codec.FRAGMENT_ROWS)],
)
def test_image_bytes_equal_python_escpos(page, mode, impl, fragment_height):
    printer = Dummy(profile="TM-T20II")
    printer.image(page, impl=impl, fragment_height=fragment_height)
    assert codec.encode_image(page, mode) == printer.output


def test_column_image_bytes_equal_python_escpos(page):
    # python-escpos pads every fragment to whole 24-dot strips; one fragment has nothing to pad.
    printer = Dummy(profile="TM-T20II")
    printer.image(page, impl="bitImageColumn", fragment_height=960)
    assert codec.encode_image(page, "column") == printer.output


def test_narrow_image_is_padded_to_whole_bytes_with_white():
    narrow = Image.new("1", (10, 2), 0)
    data = codec.encode_image(narrow, "raster")
    assert data == b"\x1dv0\x00\x02\x00\x02\x00" + b"\xff\xc0" * 2


def test_cuts_and_feeds_are_python_escpos_bytes():
    assert codec.encode_cut("full") == constants.PAPER_FULL_CUT
    assert codec.encode_cut("partial") == constants.PAPER_PART_CUT
    assert codec.encode_cut("none") == b""
    assert codec.encode_feed(4) == b"\x1bd\x04"
    assert codec.INIT == constants.HW_INIT


def test_resync_outlasts_the_longest_image_fragment():
    fill = codec.resync(576)
    assert fill.endswith(constants.HW_INIT)
    assert fill.count(0) >= 576 // 8 * codec.FRAGMENT_ROWS

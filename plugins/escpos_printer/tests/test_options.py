"""Options: connection URLs, validation errors that name the field, width and cut resolution."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from mews_bridge_escpos_printer.codec import load_model, printable_dots
from mews_bridge_escpos_printer.options import Options, parse_connection


def test_connection_urls():
    assert parse_connection("tcp://10.0.0.5").host == "10.0.0.5"
    assert parse_connection("tcp://10.0.0.5").port == 9100
    assert parse_connection("tcp://printer.local:9101").port == 9101
    serial = parse_connection("serial:///dev/ttyUSB0?baudrate=19200&flow=rtscts&parity=e")
    assert (serial.scheme, serial.path) == ("serial", "/dev/ttyUSB0")
    assert serial.serial == {"baudrate": 19200, "bytesize": 8, "parity": "E", "stopbits": 1, "flow": "rtscts"}
    usb = parse_connection("usb://04b8:0202")
    assert (usb.vendor_id, usb.product_id) == (0x04B8, 0x0202)
    device_file = parse_connection("file:///dev/usb/lp0")
    assert (device_file.path, device_file.can_read) == ("/dev/usb/lp0", False)


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("http://10.0.0.5", "unsupported scheme 'http'"),
        ("tcp://", "has no host"),
        ("tcp://host:99999", "invalid port"),
        ("serial://", "has no device"),
        ("serial:///dev/ttyS0?baud=9600", "unknown serial setting(s) baud"),
        ("serial:///dev/ttyS0?baudrate=fast", "baudrate must be a whole number"),
        ("serial:///dev/ttyS0?flow=magic", "flow must be one of none, rtscts, dsrdtr, xonxoff"),
        ("usb://epson", "write usb://VENDOR:PRODUCT in hex"),
        ("file://", "has no path"),
    ],
)
def test_bad_connection_is_refused_naming_the_field(url, message):
    with pytest.raises(ValidationError) as error:
        Options(connection=url)
    (problem,) = error.value.errors()
    assert problem["loc"] == ("connection",)
    assert message in problem["msg"]


@pytest.mark.parametrize(
    ("options", "field"),
    [
        ({"cut": "half"}, "cut"),
        ({"paper_width_mm": 76}, "paper_width_mm"),
        ({"width_dots": 500}, "width_dots"),
        ({"timeout_s": 0}, "timeout_s"),
        ({"colour": "red"}, "colour"),
    ],
)
def test_bad_options_name_the_field(options, field):
    with pytest.raises(ValidationError) as error:
        Options(connection="tcp://printer", **options)
    assert error.value.errors()[0]["loc"] == (field,)


@pytest.mark.parametrize(
    ("options", "dots"),
    [
        ({}, 576),  # no profile width: 80 mm at 203 dpi
        ({"paper_width_mm": 58}, 384),
        ({"profile": "TM-T88V"}, 512),  # the profile knows its printer: 180 dpi
        ({"profile": "TM-T88V", "paper_width_mm": 58}, 344),
        ({"profile": "TM-P80-42col"}, 544),  # 546 in the profile, rounded to whole bytes
        ({"profile": "POS-5890", "paper_width_mm": 80}, 384),  # never wider than the printer
        ({"profile": "TM-T88V", "width_dots": 576}, 576),  # the installer knows best
    ],
)
def test_printable_width(tmp_path, options, dots):
    model = load_model(Options(connection="tcp://printer", **options), tmp_path)
    assert model.dots == dots
    assert printable_dots(Options(connection="tcp://printer", **options), {}) % 8 == 0


def test_cut_follows_what_the_profile_can_do(tmp_path):
    no_cutter = load_model(Options(connection="tcp://printer", profile="POS-5890"), tmp_path)
    assert no_cutter.cut == "none"
    assert "no cutter" in no_cutter.notes[0]
    partial_only = load_model(
        Options(connection="tcp://printer", profile="TM-U220B", image_mode="column"), tmp_path
    )
    assert (partial_only.cut, partial_only.notes) == (
        "partial",
        ("profile TM-U220B has no full cut: cutting partially",),
    )


def test_unknown_profile_names_the_option(tmp_path):
    with pytest.raises(
        ValueError, match=r"^option profile: unknown printer profile 'TM-X' \(known: AF-240, "
    ):
        load_model(Options(connection="tcp://printer", profile="TM-X"), tmp_path)

"""``mews-bridge ipp check`` and ``discover`` as an installer runs them, against ippeveprinter."""

from __future__ import annotations

import re

from mews_bridge.testing import run_cli


async def test_check_shows_what_the_printer_is_and_that_it_can_print(ippeveprinter):
    printer = ippeveprinter(name="Front desk")
    result = await run_cli("ipp", "check", printer.uri)
    assert result.code == 0, result.err
    assert "make and model: Example Printer" in result.out
    assert "name:           Front desk" in result.out
    assert "state:          idle" in result.out
    assert "application/pdf" in result.out and "iso_a4_210x297mm" in result.out
    assert result.out.rstrip().endswith("Ready to print.")


async def test_check_names_what_stops_printing(ippeveprinter):
    printer = ippeveprinter()
    printer.set_toner(0)
    result = await run_cli("ipp", "check", printer.uri)
    assert result.code == 1
    assert "Not ready: The printer is out of toner." in result.out


async def test_check_shows_a_self_signed_certificate_fingerprint_to_pin(ippeveprinter):
    printer = ippeveprinter()
    refused = await run_cli("ipp", "check", printer.ipps_uri)
    assert refused.code == 1
    assert "its certificate is not trusted" in refused.out
    (fingerprint,) = re.findall(r"^    ((?:[0-9A-F]{2}:){31}[0-9A-F]{2})$", refused.out, re.MULTILINE)

    pinned = await run_cli("ipp", "check", printer.ipps_uri, "--fingerprint", fingerprint)
    assert pinned.code == 0, pinned.out
    assert "Ready to print." in pinned.out


async def test_check_of_an_address_with_nothing_there(ippeveprinter):
    from mews_bridge_mocks.ipp.ippeveprinter import free_port

    result = await run_cli("ipp", "check", f"ipp://127.0.0.1:{free_port()}/ipp/print")
    assert result.code == 1
    assert "no answer: connection refused." in result.out

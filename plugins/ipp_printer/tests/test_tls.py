"""ipps:// to ippeveprinter, whose certificate is self-signed: refused unless its fingerprint is pinned."""

from __future__ import annotations

from mews_bridge.testing import wait_for_final_state
from mews_bridge_ipp_printer.link import certificate_fingerprint

NAME = "Office printer"


async def test_a_self_signed_certificate_is_refused_without_a_pin(
    mews_simulator, bridge_harness, add_printer, ippeveprinter, card_pdf, encode
):
    printer = ippeveprinter()
    printer_id = add_printer(printer.ipps_uri)
    async with bridge_harness.running():
        command_id = mews_simulator.add_printer_command(printer_id, encode(card_pdf))
        final = await wait_for_final_state(mews_simulator, command_id, 20)
    assert final["State"] == "Error"
    assert "its certificate is not trusted" in final["Notes"]
    assert printer.results() == []


async def test_a_pinned_certificate_prints_and_a_wrong_pin_is_refused(
    mews_simulator, bridge_harness, add_printer, change_printer, ippeveprinter, card_pdf, encode
):
    printer = ippeveprinter()
    pin = await certificate_fingerprint(printer.ipps_uri, 5)
    printer_id = add_printer(printer.ipps_uri, tls_fingerprint=pin)
    async with bridge_harness.running():
        command_id = mews_simulator.add_printer_command(printer_id, encode(card_pdf))
        final = await wait_for_final_state(mews_simulator, command_id, 20)
    assert (final["State"], final["Notes"]) == ("Processed", None)
    assert [job["pages"] for job in printer.results()] == [2]

    wrong = ":".join(["00"] * 32)
    change_printer(printer.ipps_uri, tls_fingerprint=wrong)
    async with bridge_harness.running():
        command_id = mews_simulator.add_printer_command(printer_id, encode(card_pdf))
        final = await wait_for_final_state(mews_simulator, command_id, 20)
    assert final["State"] == "Error"
    assert "does not match the pinned fingerprint" in final["Notes"]
    assert len(printer.results()) == 1

"""Through a real CUPS queue (a private cupsd on loopback) to ippeveprinter: printed, and stopped."""

from __future__ import annotations

from mews_bridge.testing import wait_for_final_state

NAME = "Office printer"


async def test_a_cups_queue_prints_and_a_stopped_queue_ends_the_command_in_error(
    mews_simulator, bridge_harness, add_printer, ippeveprinter, cups_server, card_pdf, encode
):
    printer = ippeveprinter()
    queue = cups_server.add_queue("Reception", printer.uri)
    printer_id = add_printer(queue)
    async with bridge_harness.running():
        command_id = mews_simulator.add_printer_command(printer_id, encode(card_pdf), copy_count=2)
        final = await wait_for_final_state(mews_simulator, command_id, 60)
        assert (final["State"], final["Notes"]) == ("Processed", None)
        (job,) = await printer.wait_results(1)
        assert (job["format"], job["pages"], job["copies"]) == ("application/pdf", 2, 2)

        cups_server.disable("Reception")
        stopped = mews_simulator.add_printer_command(printer_id, encode(card_pdf))
        final = await wait_for_final_state(mews_simulator, stopped, 20)
    assert final["State"] == "Error"
    assert final["Notes"].startswith(f"{NAME} is stopped. {NAME} is paused.")
    assert len(printer.results()) == 1

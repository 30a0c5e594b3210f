"""A bridge process killed with SIGKILL while ippeveprinter prints its job, then started again: the
printer is asked about the job the journal names before anything is printed again."""

from __future__ import annotations

import asyncio
import signal

from mews_bridge.testing import wait_for, wait_for_final_state, write_settings_file
from mews_bridge_mocks.bridge_process import BridgeProcess

NAME = "Office printer"


async def killed_mid_job(
    mews_simulator, bridge_harness, add_printer, printer, card_pdf, encode, tmp_path
) -> str:
    """Start ``mews-bridge run``, queue a command, SIGKILL the bridge once the printer is printing it."""
    printer_id = add_printer(printer.uri)
    config = write_settings_file(bridge_harness.settings(), tmp_path / "config.toml")
    printer.hold()
    bridge = BridgeProcess(config, tmp_path / "bridge.log")
    await bridge.start()
    try:
        await wait_for(lambda: mews_simulator.websocket_connections, 20, "the bridge to connect")
        command_id = mews_simulator.add_printer_command(printer_id, encode(card_pdf))
        await wait_for(printer.results, 20, "the job to reach the printer")
    finally:
        assert await bridge.stop(signal.SIGKILL) == -signal.SIGKILL
    assert mews_simulator.command(command_id)["State"] not in ("Processed", "Error")
    return command_id


async def test_a_job_that_finished_while_the_bridge_was_down_is_not_printed_again(
    mews_simulator, bridge_harness, add_printer, ippeveprinter, card_pdf, encode, tmp_path
):
    printer = ippeveprinter()
    command_id = await killed_mid_job(
        mews_simulator, bridge_harness, add_printer, printer, card_pdf, encode, tmp_path
    )
    printer.release()
    await wait_for(lambda: len(printer.results()) == 1, 20)

    async with bridge_harness.running():
        final = await wait_for_final_state(mews_simulator, command_id, 20)
    assert (final["State"], final["Notes"]) == ("Processed", "Printed before the bridge restarted.")
    assert len(printer.results()) == 1


async def test_a_job_still_printing_after_the_restart_is_followed_to_its_end(
    mews_simulator, bridge_harness, add_printer, ippeveprinter, card_pdf, encode, tmp_path
):
    printer = ippeveprinter()
    command_id = await killed_mid_job(
        mews_simulator, bridge_harness, add_printer, printer, card_pdf, encode, tmp_path
    )

    async with bridge_harness.running():
        await asyncio.sleep(0.5)
        assert mews_simulator.command(command_id)["State"] not in ("Processed", "Error")
        printer.release()
        final = await wait_for_final_state(mews_simulator, command_id, 20)
    assert (final["State"], final["Notes"]) == ("Processed", "Printed before the bridge restarted.")
    assert len(printer.results()) == 1


async def test_a_printer_that_forgot_the_job_gets_the_staff_asked_not_a_second_copy(
    mews_simulator, bridge_harness, add_printer, ippeveprinter, card_pdf, encode, tmp_path
):
    printer = ippeveprinter()
    command_id = await killed_mid_job(
        mews_simulator, bridge_harness, add_printer, printer, card_pdf, encode, tmp_path
    )
    printer.release()
    printer.stop()  # switched off and on: its job list is gone
    printer.start()

    async with bridge_harness.running():
        final = await wait_for_final_state(mews_simulator, command_id, 20)
    assert final["State"] == "Error"
    assert final["Notes"].startswith(
        f"{NAME} took this document before the bridge restarted and no longer lists"
    )
    assert len(printer.results()) == 1

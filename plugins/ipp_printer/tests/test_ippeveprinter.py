"""Issue 15 acceptance: Mews printer commands through a real bridge (the plugin found by its entry point)
to CUPS' own IPP Everywhere printer, ippeveprinter; checked on what Mews recorded and on the documents
that arrived in the printer's spool, read by PDFium and by CUPS' raster reader."""

from __future__ import annotations

import asyncio

import pytest

from mews_bridge.testing import wait_for, wait_for_final_state

NAME = "Office printer"


async def test_a_pdf_is_sent_as_it_is_and_the_command_ends_when_the_job_completed(
    mews_simulator, bridge_harness, add_printer, ippeveprinter, card_pdf, encode
):
    printer = ippeveprinter()
    printer_id = add_printer(printer.uri)
    async with bridge_harness.running() as bridge:
        command_id = mews_simulator.add_printer_command(printer_id, encode(card_pdf))
        final = await wait_for_final_state(mews_simulator, command_id, 20)
        (diagnostics,) = [item["instance"] for item in (await bridge.diagnostics())["instances"]]

    assert (final["State"], final["Notes"]) == ("Processed", None)
    assert diagnostics["make_and_model"] == "Example Printer"
    assert (diagnostics["jobs_printed"], diagnostics["pages_printed"], diagnostics["last_job_id"]) == (
        1,
        2,
        1,
    )
    assert diagnostics["last_state"]["reasons"] == []
    (job,) = printer.results()
    assert (job["format"], job["pages"], job["copies"]) == ("application/pdf", 2, 1)
    assert job["job_name"] == f"Mews {command_id}"
    assert (printer.spool / job["file"]).read_bytes() == card_pdf
    progress = [value for state, value, _ in final["History"] if state == "Processing" and value]
    assert progress and progress[-1] == 1.0


async def test_two_copies_are_one_job_the_printer_copies(
    mews_simulator, bridge_harness, add_printer, ippeveprinter, card_pdf, encode
):
    printer = ippeveprinter()
    printer_id = add_printer(printer.uri)
    async with bridge_harness.running():
        command_id = mews_simulator.add_printer_command(printer_id, encode(card_pdf), copy_count=2)
        final = await wait_for_final_state(mews_simulator, command_id, 20)

    assert final["State"] == "Processed"
    (job,) = printer.results()
    assert (job["pages"], job["copies"]) == (2, 2)


@pytest.mark.parametrize(
    ("formats", "expected"), [("image/pwg-raster", "image/pwg-raster"), ("image/jpeg", "image/jpeg")]
)
async def test_a_printer_without_pdf_gets_pages_rasterised_to_a_format_it_lists(
    mews_simulator, bridge_harness, add_printer, ippeveprinter, card_pdf, encode, formats, expected
):
    printer = ippeveprinter(formats=formats)
    printer_id = add_printer(printer.uri)
    async with bridge_harness.running():
        command_id = mews_simulator.add_printer_command(printer_id, encode(card_pdf), copy_count=2)
        final = await wait_for_final_state(mews_simulator, command_id, 60)

    assert (final["State"], final["Notes"]) == ("Processed", None)
    jobs = printer.results()
    assert {job["format"] for job in jobs} == {expected}
    assert all(job["ok"] for job in jobs)
    # Two pages, two copies. ippeveprinter makes copies of PDF only (copies-supported 1-1 otherwise), so
    # each copy is sent: PWG raster holds both pages in one job, a JPEG one page.
    if expected == "image/pwg-raster":
        assert [(job["pages"], job["copies"]) for job in jobs] == [(2, 1), (2, 1)]
    else:
        assert [(job["pages"], job["copies"]) for job in jobs] == [(1, 1)] * 4
        assert [job["job_name"] for job in jobs] == [f"Mews {command_id} ({n} of 4)" for n in range(1, 5)]


async def test_out_of_paper_ends_in_error_and_the_waiting_job_is_cancelled(
    mews_simulator, bridge_harness, add_printer, ippeveprinter, card_pdf, encode
):
    printer = ippeveprinter()
    printer.set_paper(0)
    printer_id = add_printer(printer.uri)
    async with bridge_harness.running():
        command_id = mews_simulator.add_printer_command(printer_id, encode(card_pdf))
        final = await wait_for_final_state(mews_simulator, command_id, 20)
        assert final["State"] == "Error"
        assert final["Notes"].startswith(f"Paper out on {NAME}. Load paper and print again.")
        assert "cancelled" in final["Notes"]

        # Paper loaded: the cancelled job does not print, the next command does.
        printer.set_paper(200)
        again = mews_simulator.add_printer_command(printer_id, encode(card_pdf))
        assert (await wait_for_final_state(mews_simulator, again, 20))["Notes"] is None
        assert await _job_state(printer.uri, 1) == "canceled"
        assert await _job_state(printer.uri, 2) == "completed"
    assert printer.results()[-1]["job_name"] == f"Mews {again}"


async def test_low_toner_is_a_warning_in_the_notes_of_a_printed_command(
    mews_simulator, bridge_harness, add_printer, ippeveprinter, card_pdf, encode
):
    printer = ippeveprinter()
    printer.set_toner(5)
    printer_id = add_printer(printer.uri)
    async with bridge_harness.running():
        command_id = mews_simulator.add_printer_command(printer_id, encode(card_pdf))
        final = await wait_for_final_state(mews_simulator, command_id, 20)
    assert (final["State"], final["Notes"]) == (
        "Processed",
        f"Toner low on {NAME}: replace the cartridge soon.",
    )


async def test_empty_toner_stops_the_command_before_anything_is_sent(
    mews_simulator, bridge_harness, add_printer, ippeveprinter, card_pdf, encode
):
    printer = ippeveprinter()
    printer.set_toner(0)
    printer_id = add_printer(printer.uri)
    async with bridge_harness.running():
        command_id = mews_simulator.add_printer_command(printer_id, encode(card_pdf))
        final = await wait_for_final_state(mews_simulator, command_id, 20)
    assert final["State"] == "Error"
    assert final["Notes"].startswith(f"{NAME} is out of toner")
    assert printer.results() == []


async def test_cancelling_in_mews_cancels_the_job_on_the_printer(
    mews_simulator, bridge_harness, add_printer, ippeveprinter, card_pdf, encode
):
    printer = ippeveprinter()
    printer.hold()  # the engine stops after the first page
    printer_id = add_printer(printer.uri)
    async with bridge_harness.running():
        command_id = mews_simulator.add_printer_command(printer_id, encode(card_pdf))
        await wait_for(printer.results, 20, "the job to reach the printer")
        await wait_for(
            lambda: any(
                state == "Processing" and value
                for state, value, _ in mews_simulator.command(command_id)["History"]
            ),
            20,
            "progress from the first page",
        )
        mews_simulator.cancel_command(command_id)
        await asyncio.sleep(0.5)
        printer.release()
        job_state = await _job_state(printer.uri, 1)
    assert job_state == "canceled"


async def _job_state(uri: str, job_id: int) -> str:
    """The job's state as ipptool, CUPS' own client, reads it."""
    for _ in range(100):
        process = await asyncio.create_subprocess_exec(
            "ipptool",
            "-T",
            "5",
            "-d",
            f"job={job_id}",
            uri,
            "/dev/stdin",
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        test = (
            "{ OPERATION Get-Job-Attributes GROUP operation-attributes-tag "
            "ATTR charset attributes-charset utf-8 ATTR naturalLanguage attributes-natural-language en "
            "ATTR uri printer-uri $uri ATTR integer job-id $job DISPLAY job-state }"
        )
        out, _ = await process.communicate(test.encode())
        text = out.decode()
        # DISPLAY prints a table: the column name, a rule, then the value.
        ended = [word for word in text.split() if word in ("canceled", "completed", "aborted")]
        if ended:
            return ended[0]
        await asyncio.sleep(0.1)
    raise AssertionError(f"job {job_id} did not end: {text}")


async def test_an_unreachable_printer_ends_commands_in_error_until_it_answers(
    mews_simulator, bridge_harness, add_printer, card_pdf, encode
):
    from mews_bridge_mocks.ipp.ippeveprinter import free_port

    printer_id = add_printer(f"ipp://127.0.0.1:{free_port()}/ipp/print")

    async with bridge_harness.running():
        command_id = mews_simulator.add_printer_command(printer_id, encode(card_pdf))
        final = await wait_for_final_state(mews_simulator, command_id, 20)
    assert final["State"] == "Error"
    assert final["Notes"].startswith(f"{NAME} is not available: {NAME} is not reachable at ipp://127.0.0.1:")
    assert "connection refused" in final["Notes"]

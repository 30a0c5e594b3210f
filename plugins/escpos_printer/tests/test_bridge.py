"""Issue 4 acceptance: Mews ``Printer`` commands through a real bridge, which finds the plugin by its
entry point, to the printer simulator; checked on what Mews recorded and on the receipts it cut."""

from __future__ import annotations

import asyncio
import base64

import pytest

from mews_bridge.testing import wait_for_final_state
from mews_bridge_escpos_printer.driver import EscposPrinterDriver

NAME = "Reception printer"
MEWS_NAME = "Reception receipt printer"


def b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode()


@pytest.fixture
def add_printer(bridge_harness, printer_simulator):
    """``add_printer(**options)``: the printer on its simulator, in Mews and in the settings; its Mews Id."""

    def add(**options):
        options = {"connection": printer_simulator.url, "profile": "TM-T20II", **options}
        return bridge_harness.add_device(NAME, EscposPrinterDriver, options, mews_name=MEWS_NAME)

    return add


async def test_multi_page_pdf_prints_every_copy_as_rasterised_with_progress_per_page(
    mews_simulator, printer_simulator, bridge_harness, add_printer, sample_pdf, raster
):
    printer_id = add_printer()
    async with bridge_harness.running():
        command_id = mews_simulator.add_printer_command(printer_id, b64(sample_pdf), copy_count=2)
        final = await wait_for_final_state(mews_simulator, command_id)

    assert (final["State"], final["Notes"]) == ("Processed", None)
    # 3 pages x 2 copies, progress after each page. The pipeline has one update in flight at a time and
    # skips reports made meanwhile, so Mews hears of pages (not every one), in the order printed.
    reported = [progress for state, progress, _ in final["History"] if state == "Processing" and progress]
    assert reported
    assert reported == sorted(set(reported))
    assert set(reported) <= {round(page / 6, 3) for page in range(1, 7)}
    expected = raster.stacked(raster.expected_pages(sample_pdf))
    assert [receipt.cut for receipt in printer_simulator.receipts] == ["full", "full"]
    for receipt in printer_simulator.receipts:
        assert raster.identical(raster.printed_images(receipt), expected)
        assert sum(line.startswith("GS V") for line in receipt.commands) == 1


@pytest.mark.parametrize(
    ("attribute", "fault", "healed", "notes"),
    [
        ("status", "paper_out", "online", f"Paper out on {NAME}. Load a new roll and print again."),
        (
            "silent",
            True,
            False,
            f"{NAME} stopped responding before printing (no answer to a status request within 0.5 s).",
        ),
    ],
    ids=["paper out", "silent"],
)
async def test_a_printer_fault_ends_in_error_naming_the_printer_and_the_next_command_prints(
    mews_simulator,
    printer_simulator,
    bridge_harness,
    add_printer,
    sample_pdf,
    raster,
    attribute,
    fault,
    healed,
    notes,
):
    printer_id = add_printer(timeout_s=0.5)
    async with bridge_harness.running() as bridge:
        await bridge.instances[0].wait_loaded()  # the printer answered at set-up
        setattr(printer_simulator, attribute, fault)
        failed = await wait_for_final_state(
            mews_simulator, mews_simulator.add_printer_command(printer_id, b64(sample_pdf))
        )
        assert (failed["State"], failed["Notes"]) == ("Error", notes)
        assert printer_simulator.receipts == []

        setattr(printer_simulator, attribute, healed)
        printed = await wait_for_final_state(
            mews_simulator, mews_simulator.add_printer_command(printer_id, b64(sample_pdf))
        )
    assert (printed["State"], printed["Notes"]) == ("Processed", None)
    expected = raster.stacked(raster.expected_pages(sample_pdf))
    assert raster.identical(raster.printed_images(printer_simulator.receipts[-1]), expected)


async def test_bad_documents_end_in_error_with_a_clear_note_and_the_next_command_prints(
    mews_simulator, printer_simulator, bridge_harness, add_printer, sample_pdf
):
    bad = {
        "not base64!!": "the document data is not valid base64",
        b64(b"PK\x03\x04 a zipped Word document"): "the PDF cannot be opened (it is damaged)",
    }
    printer_id = add_printer()
    async with bridge_harness.running():
        rejected = {mews_simulator.add_printer_command(printer_id, data): note for data, note in bad.items()}
        word = mews_simulator.add_command(
            printer_id, {"CopyCount": 1, "FileType": "application/msword", "FileData": b64(b"PK\x03\x04")}
        )
        rejected[word] = "file type 'application/msword' is not supported (PDF, PNG, JPEG or plain text)"
        after = mews_simulator.add_printer_command(printer_id, b64(sample_pdf))
        finals = {
            command_id: await wait_for_final_state(mews_simulator, command_id)
            for command_id in [*rejected, after]
        }

    for command_id, note in rejected.items():
        assert (finals[command_id]["State"], finals[command_id]["Notes"]) == (
            "Error",
            f"The document could not be printed: {note}.",
        )
    assert finals[after]["State"] == "Processed"
    assert len(printer_simulator.receipts) == 1


async def test_too_many_copies_are_refused_and_nothing_is_printed(
    mews_simulator, printer_simulator, bridge_harness, add_printer, sample_pdf
):
    printer_id = add_printer()
    async with bridge_harness.running():
        many = mews_simulator.add_printer_command(printer_id, b64(sample_pdf), copy_count=6)
        refused = await wait_for_final_state(mews_simulator, many)
        five = await wait_for_final_state(
            mews_simulator, mews_simulator.add_printer_command(printer_id, b64(sample_pdf), copy_count=5)
        )
    assert (refused["State"], refused["Notes"]) == (
        "Error",
        f"6 copies requested; {NAME} prints at most 5 per command (max_copies).",
    )
    assert five["State"] == "Processed"
    assert len(printer_simulator.receipts) == 5


async def test_paper_near_end_is_a_warning_on_a_processed_command(
    mews_simulator, printer_simulator, bridge_harness, add_printer, sample_pdf
):
    printer_simulator.status = "paper_near_end"
    printer_id = add_printer()
    async with bridge_harness.running():
        final = await wait_for_final_state(
            mews_simulator, mews_simulator.add_printer_command(printer_id, b64(sample_pdf))
        )

    assert final["State"] == "Processed"
    assert final["Notes"] == f"Paper near end on {NAME}: replace the roll soon."
    assert len(printer_simulator.receipts) == 1


async def test_between_jobs_the_printer_is_asked_how_it_is(printer_simulator, bridge_harness, add_printer):
    add_printer(status_poll_s=0.05, timeout_s=0.5)
    async with bridge_harness.running() as bridge:
        managed = bridge.instances[0]
        await managed.wait_loaded()

        async def paper():
            return (await managed.instance.status())["paper"]

        async def becomes(expected):
            for _ in range(500):
                if (found := await paper()).startswith(expected):
                    return found
                await asyncio.sleep(0.01)
            raise AssertionError(f"paper is {await paper()!r}, never {expected!r}")

        assert await paper() == "ok"
        printer_simulator.status = "paper_out"
        await becomes("out")
        printer_simulator.silent = True
        assert "does not answer" in await becomes("not known: the printer does not answer")
        printer_simulator.silent = False
        printer_simulator.status = "online"
        await becomes("ok")

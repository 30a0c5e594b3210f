"""The driver end to end: real documents printed over TCP to the printer simulator, checked on the
receipts it cuts."""

from __future__ import annotations

import asyncio
import io
import socket
from email.mime.image import MIMEImage
from email.mime.multipart import MIMEMultipart
from email.mime.text import MIMEText

import pypdfium2 as pdfium
import pytest
from PIL import Image, ImageChops, ImageDraw

from mews_bridge import CommandFailed, CommandRejected, DeviceNotReady
from mews_bridge_escpos_printer.raster import TRIM_PADDING_DOTS

NAME = "Reception printer"


def ink(image: Image.Image) -> Image.Image:
    return image.convert("L").point(lambda value: 255 if value < 128 else 0)


def ink_overlap(a: Image.Image, b: Image.Image) -> float:
    """Black pixels in both over black pixels in either (1.0 = the same ink)."""
    both = ImageChops.multiply(ink(a), ink(b)).histogram()[255]
    either = ImageChops.lighter(ink(a), ink(b)).histogram()[255]
    return both / either


async def test_multi_page_pdf_prints_as_rasterised_with_copies_and_cuts(
    printer_simulator, make_driver, printer_job, progress, sample_pdf, raster
):
    driver = await make_driver(printer_simulator.url, profile="TM-T20II")

    notes = await driver.execute(printer_job(sample_pdf, copies=2, progress=progress))

    assert notes is None
    assert progress.values == pytest.approx([1 / 6, 2 / 6, 3 / 6, 4 / 6, 5 / 6, 1.0])
    expected = raster.stacked(raster.expected_pages(sample_pdf))
    assert [receipt.cut for receipt in printer_simulator.receipts] == ["full", "full"]
    for receipt in printer_simulator.receipts:
        assert raster.identical(raster.printed_images(receipt), expected)
        assert sum(line.startswith("GS V") for line in receipt.commands) == 1
    diagnostics = await driver.diagnostics()
    assert (diagnostics["jobs_printed"], diagnostics["pages_printed"]) == (1, 6)


async def test_untrimmed_page_has_the_ink_of_a_plain_pdfium_render(
    printer_simulator, make_driver, printer_job, sample_pdf, raster
):
    driver = await make_driver(printer_simulator.url, trim_margins=False, cut="partial")

    await driver.execute(printer_job(sample_pdf))

    (receipt,) = printer_simulator.receipts
    assert receipt.cut == "partial"
    pdf = pdfium.PdfDocument(sample_pdf)
    page = pdf[0]
    reference = page.render(scale=576 / page.get_size()[0], grayscale=True).to_pil()
    first_page = raster.printed_images(receipt).crop((0, 0, 576, reference.height))
    assert ink_overlap(first_page, reference) > 0.7
    # The same measure tells a misplaced page apart.
    assert ink_overlap(ImageChops.offset(first_page, 0, 3), reference) < 0.4
    page.close()
    pdf.close()


async def test_trimming_enlarges_an_a4_page_to_the_roll(
    printer_simulator, make_driver, printer_job, sample_pdf, raster
):
    trimmed = raster.expected_pages(sample_pdf)[0]
    untrimmed = raster.expected_pages(sample_pdf, trim=False)[0]

    def ink_width(image: Image.Image) -> int:
        box = ink(image).getbbox()
        return box[2] - box[0]

    assert ink_width(trimmed) > ink_width(untrimmed) * 1.1
    assert trimmed.height < untrimmed.height * 1.2  # blank space at the foot of the page is skipped


@pytest.mark.parametrize("mode", ["graphics", "column"])
async def test_other_image_commands_print_the_same_page(
    printer_simulator, make_driver, printer_job, sample_pdf, mode, raster
):
    driver = await make_driver(printer_simulator.url, image_mode=mode)

    await driver.execute(printer_job(sample_pdf))

    (receipt,) = printer_simulator.receipts
    assert any(line.startswith("ESC *" if mode == "column" else "GS ( L") for line in receipt.commands)
    pages = raster.expected_pages(sample_pdf)
    if mode == "column":  # ESC * prints whole 24-dot strips: each page's last one is padded with white
        pages = [raster.stacked([page, Image.new("1", (576, -page.height % 24), 1)]) for page in pages]
    assert raster.identical(raster.printed_images(receipt), raster.stacked(pages))


async def test_plain_text_prints_in_the_printer_font(printer_simulator, make_driver, printer_job):
    driver = await make_driver(printer_simulator.url, profile="TM-T88V", cut="partial")
    text = "Grand Hôtel Praha\r\nRoom 204 — Müller\r\nTotal: 129,00 €\r\n"

    await driver.execute(printer_job(text.encode("utf-8"), "text/plain; charset=utf-8"))

    (receipt,) = printer_simulator.receipts
    assert receipt.cut == "partial"
    assert receipt.text.splitlines()[:3] == ["Grand Hôtel Praha", "Room 204 — Müller", "Total: 129,00 €"]
    assert any(line.startswith("ESC t") for line in receipt.commands)


async def test_a_multipart_document_prints_text_and_an_image_on_one_receipt(
    printer_simulator, make_driver, printer_job, raster
):
    mark = Image.new("1", (96, 96), 1)
    ImageDraw.Draw(mark).rectangle((8, 8, 87, 87), fill=0)
    png = io.BytesIO()
    mark.save(png, "PNG")
    message = MIMEMultipart("mixed")
    message.attach(MIMEText("Hotel Sonne\nTotal 17,50 €\n", "plain", "utf-8"))
    message.attach(MIMEImage(png.getvalue(), "png"))
    message.attach(MIMEText("Danke!\n", "plain", "utf-8"))
    body = message.as_bytes().split(b"\n\n", 1)[1]  # FileData is what follows the headers
    driver = await make_driver(printer_simulator.url)

    await driver.execute(printer_job(body, f"multipart/mixed; boundary={message.get_boundary()}"))

    (receipt,) = printer_simulator.receipts  # one cut, after the last part
    assert receipt.text.splitlines() == ["Hotel Sonne", "Total 17,50 €", "Danke!"]
    (expected,) = raster.expected_pages(png.getvalue(), "image/png")
    assert raster.identical(raster.printed_images(receipt), expected)


async def test_a_trimmed_image_keeps_a_margin_above_its_first_line(
    printer_simulator, make_driver, printer_job
):
    page = Image.new("L", (576, 200), 255)
    ImageDraw.Draw(page).rectangle((20, 40, 500, 60), fill=0)  # the first line, 40 dots below the top
    raw = io.BytesIO()
    page.save(raw, "PNG")
    driver = await make_driver(printer_simulator.url)

    await driver.execute(printer_job(raw.getvalue(), "image/png"))

    (receipt,) = printer_simulator.receipts
    top = ink(receipt.image()).getbbox()[1]
    assert top == TRIM_PADDING_DOTS  # the white above is trimmed, but not all of it


async def test_png_logo_with_transparency_prints_centred_at_its_size(
    printer_simulator, make_driver, printer_job, raster
):
    logo = Image.new("RGBA", (200, 80), (0, 0, 0, 0))
    ImageDraw.Draw(logo).ellipse((10, 10, 190, 70), fill=(20, 20, 20, 255))
    raw = io.BytesIO()
    logo.save(raw, "PNG")
    driver = await make_driver(printer_simulator.url, trim_margins=False)

    await driver.execute(printer_job(raw.getvalue(), "image/png"))

    (receipt,) = printer_simulator.receipts
    (expected,) = raster.expected_pages(raw.getvalue(), "image/png", trim=False)
    assert raster.identical(raster.printed_images(receipt), expected)
    ink_box = ink(receipt.image()).getbbox()
    assert ink_box is not None
    assert abs((ink_box[0] + ink_box[2]) / 2 - 288) <= 2  # centred on the paper
    assert 170 <= ink_box[2] - ink_box[0] <= 182  # the ellipse at its own size, not scaled up


async def test_wide_jpeg_is_scaled_down_to_the_paper(printer_simulator, make_driver, printer_job, raster):
    photo = Image.linear_gradient("L").resize((1200, 300)).convert("RGB")
    raw = io.BytesIO()
    photo.save(raw, "JPEG")
    driver = await make_driver(printer_simulator.url, trim_margins=False)

    await driver.execute(printer_job(raw.getvalue(), "image/jpeg"))

    (receipt,) = printer_simulator.receipts
    assert raster.printed_images(receipt).size == (576, 144)


@pytest.mark.parametrize(
    ("state", "notes"),
    [
        ("paper_out", f"Paper out on {NAME}. Load a new roll and print again."),
        ("cover_open", f"Cover open on {NAME}. Close it and print again."),
        ("offline", f"{NAME} is offline. Check it, then print again."),
        ("cutter_error", f"Paper cutter jammed on {NAME}. Clear the paper, close the cover and print again."),
    ],
)
async def test_printer_faults_end_the_command_before_printing(
    printer_simulator, make_driver, printer_job, sample_pdf, state, notes
):
    driver = await make_driver(printer_simulator.url)
    printer_simulator.status = state

    with pytest.raises(CommandFailed) as failed:
        await driver.execute(printer_job(sample_pdf))

    assert failed.value.notes == notes
    assert printer_simulator.printer.held == []  # nothing but status requests was sent
    assert printer_simulator.receipts == []
    assert (await driver.diagnostics())["last_error"] == notes


async def test_paper_near_end_is_a_warning_on_a_printed_command(
    printer_simulator, make_driver, printer_job, sample_pdf
):
    driver = await make_driver(printer_simulator.url)
    printer_simulator.status = "paper_near_end"

    notes = await driver.execute(printer_job(sample_pdf))

    assert notes == f"Paper near end on {NAME}: replace the roll soon."
    assert len(printer_simulator.receipts) == 1


async def test_paper_running_out_mid_job_names_the_page(
    printer_simulator, make_driver, printer_job, progress, sample_pdf, raster
):
    driver = await make_driver(printer_simulator.url)

    async def run_out() -> None:
        printer_simulator.status = "paper_out"

    progress.on(1 / 3, run_out)

    with pytest.raises(CommandFailed) as failed:
        await driver.execute(printer_job(sample_pdf, progress=progress))

    assert failed.value.notes == (
        f"Paper out on {NAME} while printing page 2 of 3. Load a new roll and print again."
    )
    assert printer_simulator.receipts == []
    printer_simulator.status = "online"  # the roll is replaced: the printer finishes what it holds
    (receipt,) = await printer_simulator.wait_for_receipts(1)
    assert raster.identical(
        raster.printed_images(receipt), raster.stacked(raster.expected_pages(sample_pdf)[:2])
    )


async def test_printer_going_silent_mid_job_times_out_and_the_next_job_prints_clean(
    printer_simulator, make_driver, printer_job, progress, sample_pdf, raster
):
    driver = await make_driver(printer_simulator.url, timeout_s=0.3)

    async def hang() -> None:
        printer_simulator.silent = True

    progress.on(1 / 3, hang)

    with pytest.raises(CommandFailed) as failed:
        await driver.execute(printer_job(sample_pdf, progress=progress))

    assert failed.value.notes.startswith(f"{NAME} stopped responding while printing page 2 of 3")
    printer_simulator.silent = False

    assert await driver.execute(printer_job(sample_pdf)) is None

    debris, receipt = printer_simulator.receipts  # what the failed job left is cut off first
    assert raster.identical(raster.printed_images(receipt), raster.stacked(raster.expected_pages(sample_pdf)))
    assert debris.image_boxes


async def test_slow_printer_within_the_timeout_prints(
    printer_simulator, make_driver, printer_job, sample_pdf
):
    driver = await make_driver(printer_simulator.url)
    printer_simulator.delay_s = 0.02

    assert await driver.execute(printer_job(sample_pdf)) is None
    assert len(printer_simulator.receipts) == 1


async def test_printer_slower_than_the_timeout_fails(printer_simulator, make_driver, printer_job, sample_pdf):
    driver = await make_driver(printer_simulator.url, timeout_s=0.2)
    printer_simulator.delay_s = 0.5

    with pytest.raises(CommandFailed, match=f"^{NAME} stopped responding before printing"):
        await driver.execute(printer_job(sample_pdf))


async def test_interrupted_run_is_resynchronised(
    printer_simulator, make_driver, printer_job, sample_pdf, raster
):
    driver = await make_driver(printer_simulator.url)
    # A crashed run: the start of an image command, cut off in the middle of its data.
    _, writer = await asyncio.open_connection("127.0.0.1", printer_simulator.port)
    writer.write(b"\x1b@\x1dv0\x00\x48\x00\x00\x01" + b"\xff" * 5000)
    await writer.drain()
    writer.close()
    await writer.wait_closed()

    await driver.execute(printer_job(sample_pdf, interrupted=True))

    debris, receipt = printer_simulator.receipts
    assert raster.identical(raster.printed_images(receipt), raster.stacked(raster.expected_pages(sample_pdf)))
    assert raster.printed_images(debris).size == (576, 256)  # the half image, completed with white


async def test_cancelled_job_cuts_off_what_it_printed(
    printer_simulator, make_driver, printer_job, progress, sample_pdf, raster
):
    driver = await make_driver(printer_simulator.url)
    first_page_done = asyncio.Event()

    async def wait_for_ever() -> None:
        first_page_done.set()
        await asyncio.Event().wait()

    progress.on(1 / 3, wait_for_ever)
    task = asyncio.create_task(driver.execute(printer_job(sample_pdf, progress=progress)))
    await first_page_done.wait()
    task.cancel()

    with pytest.raises(asyncio.CancelledError):
        await task
    (receipt,) = printer_simulator.receipts
    assert raster.identical(raster.printed_images(receipt), raster.expected_pages(sample_pdf)[0])


@pytest.mark.parametrize(
    ("file_data", "file_type", "options", "notes"),
    [
        ("not base64!!", "application/pdf", {}, "the document data is not valid base64"),
        (
            b"%PDF-1.7 this is not really a PDF",
            "application/pdf",
            {},
            "the PDF cannot be opened (it is damaged)",
        ),
        (b"PK\x03\x04", "application/msword", {}, "file type 'application/msword' is not supported"),
        (b"%PDF", "application/pdf", {"max_document_mb": 0.000001}, "larger than the 1e-06 MB limit"),
        (b"\x89PNG\r\n\x1a\nbroken", "image/png", {}, "the image cannot be opened"),
        (b"\xff\xfe", "text/plain; charset=klingon", {}, "character set 'klingon' is unknown"),
    ],
)
async def test_bad_documents_are_rejected_with_a_clear_note(
    printer_simulator, make_driver, printer_job, sample_pdf, file_data, file_type, options, notes
):
    driver = await make_driver(printer_simulator.url, **options)

    with pytest.raises(CommandRejected) as rejected:
        await driver.execute(printer_job(file_data, file_type))

    assert rejected.value.notes.startswith("The document could not be printed: ")
    assert notes in rejected.value.notes
    assert printer_simulator.receipts == []
    assert printer_simulator.connections == 1  # the printer was not even contacted (only by setup)


async def test_document_over_the_page_limit_is_rejected(
    printer_simulator, make_driver, printer_job, sample_pdf
):
    driver = await make_driver(printer_simulator.url, max_pages=2)

    with pytest.raises(CommandRejected, match="the PDF has 3 pages; at most 2 are printed"):
        await driver.execute(printer_job(sample_pdf))

    assert await driver.execute(printer_job(b"Still working\n", "text/plain")) is None


async def test_unreachable_printer(printer_simulator, make_driver, printer_job, sample_pdf):
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        closed_port = probe.getsockname()[1]
    with pytest.raises(DeviceNotReady, match=f"^{NAME} is not reachable at tcp://127.0.0.1:{closed_port}: "):
        await make_driver(f"tcp://127.0.0.1:{closed_port}")

    driver = await make_driver(printer_simulator.url)
    await printer_simulator.stop()
    with pytest.raises(CommandFailed, match=f"^{NAME} is not reachable"):
        await driver.execute(printer_job(sample_pdf))


async def test_printer_that_does_not_answer_status_is_not_ready_unless_told(printer_simulator, make_driver):
    printer_simulator.silent = True
    with pytest.raises(DeviceNotReady, match=r"no answer to a status request within 0\.2 s"):
        await make_driver(printer_simulator.url, timeout_s=0.2)

    driver = await make_driver(printer_simulator.url, timeout_s=0.2, check_status=False)
    assert (await driver.diagnostics())["status_checks"] == "off"

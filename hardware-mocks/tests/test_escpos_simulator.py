"""The ESC/POS printer simulator, checked with python-escpos as an independent client and encoder."""

from __future__ import annotations

import asyncio
import socket
import subprocess
import sys

import pytest
from escpos.printer import Dummy, Network
from PIL import Image, ImageChops

from mews_bridge_mocks.escpos import EmulatedPrinter, EscposDecoder, PrinterSimulator

# The shipped ``printer_simulator`` fixture (registering it twice is harmless once the pytest11
# plugin lists it too).
pytest_plugins = ["mews_bridge_mocks.escpos.fixtures"]


@pytest.fixture(autouse=True)
def _no_leaks(verify_cleanup, verify_no_lingering_tasks):
    """Every test fails if it leaves tasks, threads, sockets or ptys behind."""


def same_pixels(a: Image.Image, b: Image.Image) -> bool:
    return a.size == b.size and ImageChops.difference(a.convert("L"), b.convert("L")).getbbox() is None


def python_escpos_job() -> bytes:
    """A receipt using much of ESC/POS, encoded by python-escpos rather than by our driver."""
    printer = Dummy(profile="TM-T20II")
    printer.hw("INIT")
    printer.set(align="center", bold=True, double_height=True, double_width=True)
    printer.textln("HOTEL")
    printer.set_with_default(underline=1)
    printer.textln("Ελλάδα Müller 5 €")
    printer.set_with_default()
    printer.barcode("4006381333931", "EAN13")
    printer.qr("https://example.com", native=True)
    printer.cashdraw(2)
    printer.ln(2)
    printer.image(Image.effect_noise((200, 50), 90).convert("1"), impl="bitImageRaster")
    printer.image(Image.effect_noise((160, 40), 90).convert("1"), impl="graphics")
    printer.image(Image.effect_noise((96, 48), 90).convert("1"), impl="bitImageColumn")
    printer.print_and_feed(3)
    printer.cut(mode="PART")
    return printer.output


def test_decoder_knows_every_command_python_escpos_sends():
    commands = EscposDecoder().feed(python_escpos_job())
    assert [command.describe() for command in commands if command.kind == "unknown"] == []
    kinds = {command.kind for command in commands}
    assert {
        "init",
        "text",
        "raster_image",
        "graphics_store",
        "graphics_print",
        "column_image",
        "cut",
    } <= kinds


def test_decoder_waits_for_the_rest_of_a_split_command():
    stream = python_escpos_job()
    whole = EscposDecoder().feed(stream)
    decoder = EscposDecoder()
    trickled = [command for byte in stream for command in decoder.feed(bytes([byte]))]
    merged_text = [command for command in trickled if command.kind != "text"]
    assert [command.raw for command in merged_text] == [
        command.raw for command in whole if command.kind != "text"
    ]
    assert b"".join(command.raw for command in trickled) == stream
    assert decoder.pending == 0


@pytest.mark.parametrize(
    ("impl", "fragment_height"),
    [("bitImageRaster", 100), ("graphics", 100), ("bitImageColumn", 960)],
)
def test_images_from_python_escpos_render_pixel_for_pixel(impl, fragment_height):
    image = Image.effect_noise((576, 240), 90).convert("1")
    encoder = Dummy(profile="TM-T20II")
    encoder.hw("INIT")
    encoder.image(image, impl=impl, fragment_height=fragment_height)
    encoder.cut()
    printer = EmulatedPrinter()

    printer.receive(encoder.output)

    (receipt,) = printer.printed
    (box,) = receipt.image_boxes
    assert same_pixels(receipt.image.crop(box), image)
    assert receipt.cut == "full"


def test_text_is_decoded_with_the_selected_code_pages():
    printer = EmulatedPrinter()
    printer.receive(python_escpos_job())
    (receipt,) = printer.printed
    assert receipt.text.splitlines()[:2] == ["HOTEL", "Ελλάδα Müller 5 €"]
    assert receipt.cut == "partial"


def test_a_printer_out_of_paper_holds_the_job_until_refilled():
    printer = EmulatedPrinter(state="paper_out")
    assert printer.receive(b"\x1b@Hello\n\x10\x04\x04\x1dV\x00") == b"\x7e"
    assert printer.printed == []
    printer.state = "online"
    (receipt,) = printer.printed
    assert receipt.text == "Hello"


def test_unknown_state_is_refused():
    with pytest.raises(ValueError, match="unknown printer state 'jammed'"):
        EmulatedPrinter(state="jammed")


@pytest.mark.parametrize(
    ("state", "online", "paper"),
    [("online", True, 2), ("paper_near_end", True, 1), ("paper_out", False, 0), ("cover_open", False, 2)],
)
async def test_python_escpos_reads_the_configured_status(printer_simulator, state, online, paper):
    printer_simulator.status = state
    client = Network("127.0.0.1", printer_simulator.port, timeout=5)

    def ask() -> tuple[bool, int]:
        try:
            return client.is_online(), client.paper_status()
        finally:
            client.close()

    assert await asyncio.to_thread(ask) == (online, paper)


async def test_silent_printer_does_not_answer(printer_simulator):
    printer_simulator.silent = True
    client = Network("127.0.0.1", printer_simulator.port, timeout=0.3)

    def ask() -> None:
        try:
            client.is_online()
        finally:
            client.close()

    with pytest.raises(TimeoutError):
        await asyncio.to_thread(ask)
    printer_simulator.silent = False


async def test_receipts_are_saved_as_png_and_command_log(printer_simulator):
    _, writer = await asyncio.open_connection("127.0.0.1", printer_simulator.port)
    writer.write(python_escpos_job() + b"\x1b@Second\n\x1dV\x00")
    await writer.drain()

    first, second = await printer_simulator.wait_for_receipts(2)

    writer.close()
    await writer.wait_closed()
    assert first.png_path.name == "receipt-0001.png"
    assert first.image().width == 576
    log = first.log_path.read_text(encoding="utf-8")
    assert "GS v 0 m=0 width_bytes=25 height=50" in log
    assert log.endswith("-- partial cut --\n")
    assert (second.cut, second.text) == ("full", "Second")


async def test_a_command_cut_off_by_a_closed_connection_continues_on_the_next(printer_simulator):
    image = Image.effect_noise((64, 16), 90).convert("1")
    encoder = Dummy(profile="TM-T20II")
    encoder.image(image)
    stream = encoder.output + b"\x1dV\x00"
    for part in (stream[:40], stream[40:]):
        _, writer = await asyncio.open_connection("127.0.0.1", printer_simulator.port)
        writer.write(part)
        await writer.drain()
        writer.close()
        await writer.wait_closed()

    (receipt,) = await printer_simulator.wait_for_receipts(1)
    assert same_pixels(receipt.image().crop(receipt.image_boxes[0]), image)
    assert printer_simulator.connections == 2


async def test_slow_printer_still_answers(printer_simulator):
    printer_simulator.delay_s = 0.05
    reader, writer = await asyncio.open_connection("127.0.0.1", printer_simulator.port)
    writer.write(b"\x10\x04\x01")
    assert await asyncio.wait_for(reader.readexactly(1), 5) == b"\x12"
    writer.close()
    await writer.wait_closed()


async def test_waiting_for_a_receipt_that_never_comes_times_out(tmp_path):
    async with PrinterSimulator(tmp_path) as simulator:
        assert simulator.url == f"tcp://127.0.0.1:{simulator.port}"
        with pytest.raises(TimeoutError):
            await simulator.wait_for_receipts(1, within_s=0.05)


def test_command_line_printer(tmp_path):
    """``mews-bridge-mocks printer`` serves, saves receipts and takes status changes on stdin."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    run_cli = "from mews_bridge_mocks.cli import main; main()"
    process = subprocess.Popen(
        [sys.executable, "-c", run_cli, "printer", "--port", str(port), "--out", str(tmp_path)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None and process.stdin is not None
        assert process.stdout.readline().startswith(f"ESC/POS printer on tcp://127.0.0.1:{port} (online)")
        with socket.create_connection(("127.0.0.1", port), timeout=5) as client:
            client.sendall(b"\x1b@Hi\n\x1dV\x01")
            assert process.stdout.readline().startswith("receipt 1: partial cut, ")
            process.stdin.write("paper_out\n")
            process.stdin.flush()
            assert process.stdout.readline().strip() == "now paper_out"
            client.sendall(b"\x10\x04\x04")
            assert client.recv(1) == b"\x7e"
    finally:
        process.terminate()
        process.wait(timeout=10)
    assert (tmp_path / "receipt-0001.png").exists()

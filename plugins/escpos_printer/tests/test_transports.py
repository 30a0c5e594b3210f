"""The non-TCP links: a device file (plain file and FIFO), a serial port (a pty) and USB."""

from __future__ import annotations

import asyncio
import contextlib
import os
import termios
import tty

import pytest

from mews_bridge import DeviceNotReady
from mews_bridge_mocks.escpos import EmulatedPrinter


def printed_by(stream: bytes) -> EmulatedPrinter:
    printer = EmulatedPrinter()
    printer.receive(stream)
    return printer


async def test_file_link_writes_the_job_to_a_plain_file(tmp_path, make_driver, printer_job, sample_pdf):
    dump = tmp_path / "job.bin"
    driver = await make_driver(f"file://{dump}")

    await driver.execute(printer_job(sample_pdf, copies=2))

    printer = printed_by(dump.read_bytes())
    assert [receipt.cut for receipt in printer.printed] == ["full", "full"]
    assert printer.status_requests == 0  # a device file cannot answer
    assert (await driver.diagnostics())["status_checks"] == "not possible over file://"


async def test_file_link_streams_to_a_fifo_through_the_event_loop(
    tmp_path, make_driver, printer_job, sample_pdf
):
    fifo = tmp_path / "lp0"
    os.mkfifo(fifo)
    reader = os.open(fifo, os.O_RDONLY | os.O_NONBLOCK)
    printer = EmulatedPrinter()
    cut = asyncio.Event()
    loop = asyncio.get_running_loop()

    def drain() -> None:
        with contextlib.suppress(BlockingIOError):
            printer.receive(os.read(reader, 65536))
        if printer.printed:
            cut.set()

    loop.add_reader(reader, drain)
    try:
        driver = await make_driver(f"file://{fifo}")
        await driver.execute(printer_job(sample_pdf))
        async with asyncio.timeout(5):
            await cut.wait()
    finally:
        loop.remove_reader(reader)
        os.close(reader)
    assert printer.printed[0].cut == "full"


async def test_fifo_nobody_reads_is_not_ready(tmp_path, make_driver):
    fifo = tmp_path / "lp0"
    os.mkfifo(fifo)
    with pytest.raises(DeviceNotReady, match="nothing is reading from it"):
        await make_driver(f"file://{fifo}")


async def test_serial_link_prints_and_reads_status(make_driver, printer_job, sample_pdf):
    """pyserial opens the far end of a pseudo-terminal; the test plays the printer on the near end."""
    near, far = os.openpty()
    tty.setraw(near)
    tty.setraw(far)
    termios.tcflush(far, termios.TCIOFLUSH)
    printer = EmulatedPrinter(state="paper_near_end")
    cut = asyncio.Event()
    loop = asyncio.get_running_loop()

    def serve() -> None:
        with contextlib.suppress(BlockingIOError, OSError):
            replies = printer.receive(os.read(near, 65536))
            if replies:
                os.write(near, replies)
        if printer.printed:
            cut.set()

    os.set_blocking(near, False)
    loop.add_reader(near, serve)
    try:
        driver = await make_driver(f"serial://{os.ttyname(far)}?baudrate=115200", timeout_s=2)
        notes = await driver.execute(printer_job(sample_pdf))
        async with asyncio.timeout(5):
            await cut.wait()
    finally:
        loop.remove_reader(near)
        os.close(near)
        os.close(far)
    assert notes == "Paper near end on Reception printer: replace the roll soon."
    assert printer.status_requests >= 4 * 3  # setup, before the job, after each of the 3 pages


async def test_missing_serial_port_is_not_ready(make_driver):
    with pytest.raises(DeviceNotReady, match="is not reachable at serial:///dev/does-not-exist"):
        await make_driver("serial:///dev/does-not-exist")


@pytest.fixture(scope="module")
def libusb_opened() -> None:
    """pyusb opens libusb once per process and keeps it, with its hotplug socket, until exit. Open it
    before the leak check's snapshot (module scope comes first) so that only what a job leaves counts."""
    import usb.backend.libusb1

    usb.backend.libusb1.get_backend()  # None without libusb: nothing is opened then


async def test_usb_printer_that_cannot_be_found_is_not_ready(libusb_opened, make_driver):
    # Without a printer (or without libusb) the message says which.
    with pytest.raises(
        DeviceNotReady, match=r"no USB device 04b8:0e15 is plugged in|libusb is not installed"
    ):
        await make_driver("usb://04b8:0e15")

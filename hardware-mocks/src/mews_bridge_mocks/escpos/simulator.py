"""A network ESC/POS receipt printer on loopback: it decodes what it receives, answers real-time
status requests as configured, and saves every cut receipt as a PNG with a log of its commands.

    async with PrinterSimulator(tmp_path) as printer:        # listens on 127.0.0.1, a free port
        ...print to printer.url (tcp://127.0.0.1:PORT)...
        printer.status = "paper_out"                          # status replies change at once
        printer.silent = True                                 # stops reading and answering
        receipt = printer.receipts[0]                         # .png_path, .commands, .cut, .text

The printing side (:class:`EmulatedPrinter`) does no I/O and can be fed bytes directly.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Self

from PIL import Image

from mews_bridge_escpos_printer.status import PrinterStatus, StatusKind, encode

from ..running import Simulator
from .decoder import Command, EscposDecoder
from .renderer import DEFAULT_DOTS, PrintedReceipt, ReceiptRenderer

STATES: dict[str, PrinterStatus] = {
    "online": PrinterStatus(),
    "paper_near_end": PrinterStatus(paper_near_end=True),
    "paper_out": PrinterStatus(paper_out=True),
    "cover_open": PrinterStatus(cover_open=True),
    "offline": PrinterStatus(offline=True),
    "cutter_error": PrinterStatus(error=True, autocutter_error=True),
}
READ_BYTES = 65536


@dataclass
class Receipt:
    """One cut receipt, saved as ``receipt-NNNN.png`` and ``receipt-NNNN.txt``."""

    index: int
    png_path: Path
    log_path: Path
    cut: str
    """``full`` or ``partial``."""
    commands: list[str]
    """The decoded commands since the previous cut, one line each (status replies included)."""
    text: str
    """The text printed with the printer's font, line by line."""
    image_boxes: list[tuple[int, int, int, int]]
    """Where each printed image is in the PNG (left, top, right, bottom)."""

    def image(self) -> Image.Image:
        """The receipt as a mode "1" image."""
        with Image.open(self.png_path) as image:
            return image.convert("1")


class EmulatedPrinter:
    """The printer itself, with no I/O: bytes in, status replies out, receipts collected.

    While the state is a fault (paper out, cover open, offline, cutter error) it still answers status
    requests but holds everything else, and prints what it held once the state is back to
    ``online`` or ``paper_near_end``, as a real printer does when its paper is refilled.
    """

    def __init__(self, dots: int = DEFAULT_DOTS, state: str = "online") -> None:
        self.decoder = EscposDecoder()
        self.renderer = ReceiptRenderer(dots)
        self.printed: list[PrintedReceipt] = []
        self.held: list[Command] = []
        self.status_requests = 0
        self.state = state

    @property
    def state(self) -> str:
        return self._state

    @state.setter
    def state(self, value: str) -> None:
        if value not in STATES:
            raise ValueError(f"unknown printer state {value!r}; use one of {', '.join(STATES)}")
        self._state = value
        if self.printable:
            held, self.held = self.held, []
            for command in held:
                self._print(command)

    @property
    def printable(self) -> bool:
        return STATES[self._state].fault is None

    def receive(self, data: bytes) -> bytes:
        """Take bytes from the host; return the bytes the printer sends back."""
        replies = bytearray()
        for command in self.decoder.feed(data):
            if command.kind == "status_request":
                replies += self._answer(command)
            elif command.kind == "realtime" or self.printable:
                self._print(command)
            else:
                self.held.append(command)
        return bytes(replies)

    def _answer(self, command: Command) -> bytes:
        self.status_requests += 1
        replies = encode(STATES[self._state])
        kind = command.raw[2]
        if kind not in tuple(StatusKind):
            self.renderer.note(f"{command.describe()} -> no answer (n={kind} not supported)")
            return b""
        reply = replies[StatusKind(kind)]
        self.renderer.note(f"{command.describe()} -> 0x{reply:02x} ({self._state})")
        return bytes([reply])

    def _print(self, command: Command) -> None:
        receipt = self.renderer.apply(command)
        if receipt is not None:
            self.printed.append(receipt)


class PrinterSimulator(Simulator):
    """A TCP (port 9100 style) ESC/POS printer for tests, demos and people."""

    def __init__(
        self,
        output_dir: Path | str,
        *,
        dots: int = DEFAULT_DOTS,
        status: str = "online",
        on_receipt: Callable[[Receipt], None] | None = None,
    ) -> None:
        self.output_dir = Path(output_dir)
        self.printer = EmulatedPrinter(dots, status)
        self.receipts: list[Receipt] = []
        self.delay_s = 0.0
        """Wait this long before handling each chunk received (a slow printer)."""
        self.connections = 0
        self._on_receipt = on_receipt
        self._awake = asyncio.Event()
        self._awake.set()
        self._new_receipt = asyncio.Event()
        self._server: asyncio.Server | None = None
        self._handlers: set[asyncio.Task[None]] = set()
        self.port = 0

    @property
    def status(self) -> str:
        """``online``, ``paper_near_end``, ``paper_out``, ``cover_open``, ``offline`` or ``cutter_error``."""
        return self.printer.state

    @status.setter
    def status(self, value: str) -> None:
        self.printer.state = value
        self._save_receipts()

    @property
    def silent(self) -> bool:
        """A silent printer neither reads nor answers (a hung printer): senders end up waiting."""
        return not self._awake.is_set()

    @silent.setter
    def silent(self, value: bool) -> None:
        if value:
            self._awake.clear()
        else:
            self._awake.set()

    @property
    def url(self) -> str:
        return f"tcp://127.0.0.1:{self.port}"

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> Self:
        self.output_dir.mkdir(parents=True, exist_ok=True)
        self._server = await asyncio.start_server(self._serve, host, port)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def stop(self) -> None:
        if self._server is None:
            return
        self._server.close()
        for task in list(self._handlers):
            task.cancel()
        for task in list(self._handlers):
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await self._server.wait_closed()
        self._server = None

    async def wait_for_receipts(self, count: int, within_s: float = 5.0) -> list[Receipt]:
        """Wait until ``count`` receipts have been cut; raise TimeoutError after ``within_s``."""
        async with asyncio.timeout(within_s):
            while len(self.receipts) < count:
                self._new_receipt.clear()
                await self._new_receipt.wait()
        return self.receipts

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._handlers.add(task)
        self.connections += 1
        try:
            while data := await reader.read(READ_BYTES):
                await self._awake.wait()  # silent: what was just read stays unread and unanswered
                if self.delay_s:
                    await asyncio.sleep(self.delay_s)
                replies = self.printer.receive(data)
                self._save_receipts()
                if replies:
                    writer.write(replies)
                    await writer.drain()
        except ConnectionError:
            pass
        finally:
            self._handlers.discard(task)
            writer.close()
            with contextlib.suppress(ConnectionError, asyncio.CancelledError):
                await writer.wait_closed()

    def _save_receipts(self) -> None:
        while self.printer.printed:
            printed = self.printer.printed.pop(0)
            index = len(self.receipts) + 1
            png_path = self.output_dir / f"receipt-{index:04d}.png"
            log_path = self.output_dir / f"receipt-{index:04d}.txt"
            printed.image.save(png_path)
            log_path.write_text(
                "\n".join([*printed.commands, f"-- {printed.cut} cut --", ""]), encoding="utf-8"
            )
            receipt = Receipt(
                index, png_path, log_path, printed.cut, printed.commands, printed.text, printed.image_boxes
            )
            self.receipts.append(receipt)
            self._new_receipt.set()
            if self._on_receipt is not None:
                self._on_receipt(receipt)

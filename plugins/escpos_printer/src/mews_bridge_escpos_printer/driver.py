"""The ``escpos_printer`` driver: Mews ``Printer`` commands printed on ESC/POS receipt printers.

Kept light to import (the host imports it to register the class): Pillow, PDFium and python-escpos
are imported by :meth:`EscposPrinterDriver.setup`, in a worker thread.
"""

from __future__ import annotations

import asyncio
import contextlib
from datetime import UTC, datetime
from importlib.metadata import PackageNotFoundError, version
from typing import TYPE_CHECKING, Any, ClassVar

from pydantic import BaseModel

from mews_bridge import (
    CommandError,
    CommandFailed,
    CommandJob,
    CommandRejected,
    DeviceConfigError,
    DeviceDriver,
    DeviceNotReady,
    DocumentError,
    decode_file_data,
)

from .link import PrinterConnection
from .options import Options
from .status import PrinterStatus
from .transport import LinkError, LinkTimeout

if TYPE_CHECKING:
    from mews_bridge import PrinterData

    from .codec import PrinterModel
    from .raster import Document

FAULT_NOTES = {  # what happened, and what the front desk can do about it
    "paper_out": ("Paper out on {name}", "Load a new roll and print again."),
    "cover_open": ("Cover open on {name}", "Close it and print again."),
    "cutter_error": ("Paper cutter jammed on {name}", "Clear the paper, close the cover and print again."),
    "hardware_error": ("{name} reports a hardware error", "Switch it off and on again, then print again."),
    "overheated": ("Print head too hot on {name}", "Wait a minute and print again."),
    "offline": ("{name} is offline", "Check it, then print again."),
}
NEAR_END_NOTE = "Paper near end on {name}: replace the roll soon."


class EscposPrinterDriver(DeviceDriver[Options]):
    """Prints PDF, PNG, JPEG and plain-text documents on an ESC/POS receipt printer over TCP
    (port 9100), USB, RS-232 or a device file, checking paper and cover before and during the job."""

    name = "escpos_printer"
    device_type = "Printer"
    replay_safe = True  # printing again after a crash only costs paper
    Options: ClassVar[type[BaseModel]] = Options

    _model: PrinterModel
    _last_status: PrinterStatus | None = None
    _last_status_at: datetime | None = None
    _last_error: str | None = None
    _jobs = 0
    _pages = 0
    _unclean = False
    """True while a write may have stopped half-way through an ESC/POS command."""
    _checks: asyncio.Task[None] | None = None
    _unreachable: str | None = None
    """Why the last status check between jobs could not reach the printer."""

    async def setup(self) -> None:
        def _load() -> PrinterModel:
            from .codec import load_model  # reads a file: off the event loop

            return load_model(self.options, self.ctx.ensure_state_dir() / "escpos-cache")

        try:
            self._model = await asyncio.to_thread(_load)
        except ValueError as exc:
            raise DeviceConfigError(str(exc)) from None
        for note in self._model.notes:
            self.ctx.logger.warning("%s: %s", self.ctx.name, note)
        try:
            async with self._connect() as printer:
                found = await printer.status()
        except LinkError as exc:
            raise DeviceNotReady(
                f"{self.ctx.name} is not reachable at {self.options.connection}: {exc}"
            ) from None
        self._remember(found)
        if found is not None and found.fault:
            self.ctx.logger.warning("%s is reachable but reports %s", self.ctx.name, found.summary)
        self._one_at_a_time = asyncio.Lock()  # a job or a status check, never both on the link
        if self.options.status_poll_s and self.options.check_status and self.options.link.can_read:
            self._checks = self.ctx.create_task(self._check_between_jobs(), "status checks between jobs")
        self.ctx.logger.info(
            "%s ready: %s, %d dots, %s images, cut %s",
            self.ctx.name,
            self.options.connection,
            self._model.dots,
            self._model.image_mode,
            self._model.cut,
        )

    async def execute(self, job: CommandJob[Any]) -> str | None:
        data: PrinterData = job.data
        if data.copy_count > self.options.max_copies:
            raise CommandRejected(
                f"{data.copy_count} copies requested; {self.ctx.name} prints at most "
                f"{self.options.max_copies} per command (max_copies)."
            )
        try:
            document = await asyncio.to_thread(self._open, data)
            try:
                async with self._one_at_a_time:
                    notes = await self._print(job, document, data.copy_count)
            finally:
                await asyncio.to_thread(document.close)
        except (CommandFailed, CommandRejected) as exc:
            self._last_error = exc.notes
            raise
        self._jobs += 1
        return notes

    async def unload(self) -> None:
        if self._checks is not None:
            self._checks.cancel()
            await asyncio.gather(self._checks, return_exceptions=True)

    async def _check_between_jobs(self) -> None:
        while True:
            await asyncio.sleep(self.options.status_poll_s)
            async with self._one_at_a_time:
                try:
                    async with self._connect() as printer:
                        self._remember(await printer.status())
                except LinkError as exc:
                    if self._unreachable is None:
                        self.ctx.logger.warning("%s does not answer a status check: %s", self.ctx.name, exc)
                    self._unreachable = str(exc)
                else:
                    self._unreachable = None

    async def status(self) -> dict[str, Any]:
        found = self._last_status
        if self._unreachable is not None:
            paper = f"not known: the printer does not answer ({self._unreachable})"
        elif found is None:
            paper = "not known (no status from the printer yet)"
        else:
            paper = "out" if found.paper_out else ("near end" if found.paper_near_end else "ok")
        return {
            "paper": paper,
            "printer_status": found.summary if found else None,
            "status_at": self._last_status_at.isoformat(timespec="seconds") if self._last_status_at else None,
            "pages_printed": self._pages,
        }

    def _open(self, data: PrinterData) -> Document:
        from . import raster

        options = self.options
        settings = raster.RasterSettings(
            dots=self._model.dots,
            dither=options.dither,
            trim=options.trim_margins,
            max_pages=options.max_pages,
            max_bytes=int(options.max_document_mb * 1_000_000),
        )
        try:
            raw = decode_file_data(data.file_data, settings.max_bytes)
            return raster.open_document(raw, data.file_type, settings)
        except DocumentError as exc:
            raise CommandRejected(f"The document could not be printed: {exc}.") from None

    def _encode_page(self, document: Document, index: int) -> bytes:
        from . import codec

        try:
            page = document.page(index)
        except DocumentError as exc:
            raise CommandRejected(f"The document could not be printed: {exc}.") from None
        except Exception as exc:  # PDFium and Pillow fail in many ways on odd input
            self.ctx.logger.warning("%s: page %d cannot be rendered: %r", self.ctx.name, index + 1, exc)
            raise CommandRejected(
                f"The document could not be printed: page {index + 1} cannot be rendered."
            ) from None
        if page is None:  # a blank page
            return b""
        if isinstance(page, str):
            return codec.encode_text(page, self._model.profile)
        return codec.encode_image(page, self._model.image_mode)

    async def _print(self, command: CommandJob[Any], document: Document, copies: int) -> str | None:
        from . import codec

        name = self.ctx.name
        pages = document.page_count
        end_of_copy = codec.encode_feed(self._model.feed_lines) + codec.encode_cut(self._model.cut)
        warnings: list[str] = []
        where = ""  # which page is being printed, for the Notes
        printer = self._connect()
        try:
            async with printer:
                resync = command.interrupted or self._unclean
                if resync:
                    # An earlier run stopped mid-way: end its half-sent command first, or the
                    # printer would take even the status request as image data.
                    await self._send(printer, codec.resync(self._model.dots))
                self._check(await printer.status(), warnings, where)
                # After a resync, cut off the remains of the earlier run.
                await self._send(printer, end_of_copy if resync else codec.INIT)
                encoded: list[bytes] = []  # kept for the copies after the first: ~60 KB an A4 page
                uncut = 0  # pages printed since the last cut
                try:
                    for copy in range(copies):
                        for index in range(pages):
                            where = f" while printing page {index + 1} of {pages}"
                            if copies > 1:
                                where += f" (copy {copy + 1} of {copies})"
                            if copy == 0:
                                payload = await asyncio.to_thread(self._encode_page, document, index)
                                if copies > 1:
                                    encoded.append(payload)
                            else:
                                payload = encoded[index]
                            if index == pages - 1:
                                payload += end_of_copy
                            await self._send(printer, payload)
                            uncut = 0 if index == pages - 1 else uncut + 1
                            self._check(await printer.status(), warnings, where)
                            self._pages += 1
                            await command.progress((copy * pages + index + 1) / (copies * pages))
                except (asyncio.CancelledError, CommandError):
                    # Cut off what was printed so the next receipt starts clean (a printer out of
                    # paper cuts once it is refilled).
                    if uncut and not self._unclean:
                        with contextlib.suppress(LinkError):
                            await printer.write(end_of_copy)
                    raise
        except LinkError as exc:
            if printer.sent:  # the printer may hold part of a command: resynchronise next time
                self._unclean = True
            if isinstance(exc, LinkTimeout):
                raise CommandFailed(
                    f"{name} stopped responding{where or ' before printing'} ({exc})."
                ) from None
            if not where:
                raise CommandFailed(f"{name} is not reachable ({exc}).") from None
            raise CommandFailed(f"Lost the connection to {name}{where} ({exc}).") from None
        return " ".join(warnings) or None

    async def _send(self, printer: PrinterConnection, data: bytes) -> None:
        if not data:
            return
        self._unclean = True
        write = asyncio.ensure_future(printer.write(data))
        try:
            await asyncio.shield(write)
        except asyncio.CancelledError:
            # Mews cancelled the command: let these bytes finish, or the printer would read the start
            # of the next job as the rest of an image.
            with contextlib.suppress(LinkError):
                await write
                self._unclean = False
            raise
        self._unclean = False

    def _check(self, found: PrinterStatus | None, warnings: list[str], where: str) -> None:
        self._remember(found)
        if found is None:
            return
        if found.fault:
            problem, advice = FAULT_NOTES[found.fault]
            raise CommandFailed(f"{problem.format(name=self.ctx.name)}{where}. {advice}")
        if found.paper_near_end and not warnings:
            warnings.append(NEAR_END_NOTE.format(name=self.ctx.name))

    def _remember(self, found: PrinterStatus | None) -> None:
        if found is not None:
            self._last_status = found
            self._last_status_at = datetime.now(UTC)

    def _connect(self) -> PrinterConnection:
        return PrinterConnection(
            self.options.link, self.options.timeout_s, check_status=self.options.check_status
        )

    async def diagnostics(self) -> dict[str, Any]:
        model = getattr(self, "_model", None)
        if not self.options.link.can_read:
            checks = "not possible over file://"
        else:
            checks = "on" if self.options.check_status else "off"
        return {
            "connection": self.options.connection,
            "profile": self.options.profile,
            "width_dots": model.dots if model else None,
            "image_mode": self.options.image_mode,
            "cut": model.cut if model else self.options.cut,
            "setting_adjustments": list(model.notes) if model else [],
            "status_checks": checks,
            "last_status": self._last_status.summary if self._last_status else None,
            "last_status_at": self._last_status_at.isoformat() if self._last_status_at else None,
            "jobs_printed": self._jobs,
            "pages_printed": self._pages,
            "last_error": self._last_error,
            "versions": {package: _version(package) for package in ("python-escpos", "pypdfium2", "pillow")},
        }


def _version(package: str) -> str | None:
    try:
        return version(package)
    except PackageNotFoundError:
        return None

"""A small IPP Everywhere printer for offline development and the demo, built from the ``ipp_printer``
plugin's own codec with the roles reversed: it decodes requests and encodes responses.

Tests prefer CUPS' real ``ippeveprinter`` (:mod:`.ippeveprinter`); this one runs where that is not
installed. It answers Get-Printer-Attributes, Print-Job, Get-Job-Attributes, Get-Jobs and Cancel-Job
over HTTP on loopback, keeps each job's document in its output directory (``job-N.pdf``, ``.pwg`` or
``.jpg``) with its first page rendered to ``job-N.png``, and prints pages at ``seconds_per_page``.
Its ``state`` (idle or stopped) and ``reasons`` (``media-empty``, ``toner-low``…) can be changed while
it runs. With ``announce`` it advertises itself by DNS-SD (``_ipp._tcp``) on the loopback interface.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import itertools
import socket
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aiohttp import web
from PIL import Image

from mews_bridge_ipp_printer import pwg
from mews_bridge_ipp_printer.codec import (
    Attribute,
    IppJobState,
    IppOperation,
    IppPrinterState,
    IppStatus,
    IppTag,
    ProtocolError,
    decode,
    response,
    values,
)
from mews_bridge_ipp_printer.document import PDFIUM_LOCK

FORMATS = ("application/pdf", "image/pwg-raster", "image/jpeg")
EXTENSIONS = {"application/pdf": "pdf", "image/pwg-raster": "pwg", "image/jpeg": "jpg"}
MEDIA = ("iso_a4_210x297mm", "na_letter_8.5x11in")
JOB_STATE_REASONS = {
    IppJobState.PENDING: "none",
    IppJobState.PROCESSING: "job-printing",
    IppJobState.COMPLETED: "job-completed-successfully",
    IppJobState.CANCELED: "job-canceled-by-user",
    IppJobState.ABORTED: "aborted-by-system",
}
PNG_WIDTH = 600


@dataclass
class SimulatedJob:
    id: int
    name: str
    format: str
    copies: int
    document_path: Path
    png_path: Path | None = None
    pages: int = 1
    state: IppJobState = IppJobState.PENDING
    impressions: int = 0
    attributes: dict[str, Any] = field(default_factory=dict)


class IppPrinterSimulator:
    """``async with IppPrinterSimulator(out_dir) as printer:``; ``printer.uri`` is its address."""

    def __init__(
        self,
        output_dir: Path,
        *,
        name: str = "Office printer",
        formats: tuple[str, ...] = FORMATS,
        seconds_per_page: float = 0.05,
        announce: bool = False,
        on_job: Callable[[SimulatedJob], None] | None = None,
    ) -> None:
        self.output_dir = output_dir
        self.name = name
        self.formats = formats
        self.seconds_per_page = seconds_per_page
        self.announce = announce
        self.on_job = on_job
        self.state = IppPrinterState.IDLE
        self.tracks_jobs = True
        """False: a printer that gives no job id and does not answer Get-Job-Attributes."""
        self.reasons: list[str] = []
        self.jobs: list[SimulatedJob] = []
        self.port = 0
        self._ids = itertools.count(1)
        self._runner: web.AppRunner | None = None
        self._engine: asyncio.Task[None] | None = None
        self._queue: asyncio.Queue[SimulatedJob] = asyncio.Queue()
        self._zeroconf: Any = None

    @property
    def uri(self) -> str:
        return f"ipp://127.0.0.1:{self.port}/ipp/print"

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> IppPrinterSimulator:
        self.output_dir.mkdir(parents=True, exist_ok=True)
        app = web.Application(client_max_size=256 * 1024 * 1024)
        app.router.add_post("/ipp/print", self._handle)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, host, port)
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        self._engine = asyncio.create_task(self._print_jobs(), name="ipp simulator engine")
        if self.announce:
            await self._announce(host)
        return self

    async def stop(self) -> None:
        if self._zeroconf is not None:
            zeroconf, self._zeroconf = self._zeroconf, None
            await zeroconf.async_unregister_all_services()
            await zeroconf.async_close()
        if self._engine is not None:
            self._engine.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._engine
            self._engine = None
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> IppPrinterSimulator:
        return await self.start()

    async def __aexit__(self, *exc_info: object) -> None:
        await self.stop()

    async def _announce(self, host: str) -> None:
        from zeroconf import IPVersion, ServiceInfo
        from zeroconf.asyncio import AsyncZeroconf

        self._zeroconf = AsyncZeroconf(interfaces=[host], ip_version=IPVersion.V4Only)
        info = ServiceInfo(
            "_ipp._tcp.local.",
            f"{self.name}._ipp._tcp.local.",
            addresses=[socket.inet_aton(host)],
            port=self.port,
            properties={
                "rp": "ipp/print",
                "ty": "Mews Bridge IPP simulator",
                "pdl": ",".join(self.formats),
                "txtvers": "1",
            },
            server="ipp-simulator.local.",
        )
        await self._zeroconf.async_register_service(info)

    # --- the protocol ---

    async def _handle(self, request: web.Request) -> web.Response:
        try:
            message = decode(await request.read(), with_data=True)
        except ProtocolError:
            return web.Response(status=400, text="not an IPP request")
        handlers = {
            IppOperation.GET_PRINTER_ATTRIBUTES: self._get_printer_attributes,
            IppOperation.PRINT_JOB: self._print_job,
        }
        if self.tracks_jobs:
            handlers |= {
                IppOperation.GET_JOB_ATTRIBUTES: self._get_job_attributes,
                IppOperation.GET_JOBS: self._get_jobs,
                IppOperation.CANCEL_JOB: self._cancel_job,
            }
        handler = handlers.get(message.code)
        if handler is None:
            body = response(
                IppStatus.ERROR_OPERATION_NOT_SUPPORTED,
                message.request_id,
                message="Operation not supported.",
            )
        else:
            status, text, groups = await handler(message)
            body = response(status, message.request_id, message=text, groups=groups)
        return web.Response(body=body, content_type="application/ipp")

    def _printer_attributes(self) -> list[Attribute]:
        return [
            ("printer-name", IppTag.NAME, self.name),
            ("printer-info", IppTag.TEXT, self.name),
            ("printer-make-and-model", IppTag.TEXT, "Mews Bridge IPP simulator"),
            ("printer-state", IppTag.ENUM, int(self.state)),
            ("printer-state-reasons", IppTag.KEYWORD, self.reasons or ["none"]),
            (
                "printer-state-message",
                IppTag.TEXT,
                "Stopped." if self.state == IppPrinterState.STOPPED else "Ready.",
            ),
            ("printer-is-accepting-jobs", IppTag.BOOLEAN, True),
            ("document-format-supported", IppTag.MIME_TYPE, list(self.formats)),
            ("copies-supported", IppTag.RANGE, (1, 99)),
            ("media-supported", IppTag.KEYWORD, list(MEDIA)),
            ("media-default", IppTag.KEYWORD, MEDIA[0]),
            ("sides-supported", IppTag.KEYWORD, ["one-sided"]),
            ("print-color-mode-supported", IppTag.KEYWORD, ["monochrome", "color"]),
            ("pwg-raster-document-type-supported", IppTag.KEYWORD, ["sgray_8", "srgb_8"]),
        ]

    async def _get_printer_attributes(self, message: Any) -> tuple[int, str, list[Any]]:
        wanted = set(values(message.operation, "requested-attributes"))
        attributes = [
            a for a in self._printer_attributes() if not wanted or "all" in wanted or a[0] in wanted
        ]
        return IppStatus.OK, "", [(IppTag.PRINTER, attributes)]

    async def _print_job(self, message: Any) -> tuple[int, str, list[Any]]:
        document_format = str(message.operation.get("document-format") or "application/octet-stream")
        if document_format not in self.formats:
            return IppStatus.ERROR_DOCUMENT_FORMAT_NOT_SUPPORTED, f"{document_format} is not supported.", []
        if self.state == IppPrinterState.STOPPED:
            return IppStatus.ERROR_NOT_ACCEPTING_JOBS, "The printer is stopped.", []
        job_id = next(self._ids)
        path = self.output_dir / f"job-{job_id}.{EXTENSIONS[document_format]}"
        path.write_bytes(message.data)
        copies = message.jobs[0].get("copies", 1) if message.jobs else 1
        job = SimulatedJob(
            job_id,
            str(message.operation.get("job-name") or ""),
            document_format,
            int(copies),
            path,
            attributes=message.jobs[0] if message.jobs else {},
        )
        try:
            job.pages, image = await asyncio.to_thread(_read, message.data, document_format)
        except Exception:
            job.state = IppJobState.ABORTED
            image = None
        if image is not None:
            job.png_path = path.with_suffix(".png")
            await asyncio.to_thread(_save_png, image, job.png_path)
        self.jobs.append(job)
        if job.state == IppJobState.PENDING:
            self._queue.put_nowait(job)
        return IppStatus.OK, "", [(IppTag.JOB, self._job_attributes(job))] if self.tracks_jobs else []

    def _job_attributes(self, job: SimulatedJob) -> list[Attribute]:
        return [
            ("job-id", IppTag.INTEGER, job.id),
            ("job-uri", IppTag.URI, f"{self.uri}/{job.id}"),
            ("job-name", IppTag.NAME, job.name),
            ("job-state", IppTag.ENUM, int(job.state)),
            ("job-state-reasons", IppTag.KEYWORD, JOB_STATE_REASONS.get(job.state, "none")),
            ("job-impressions", IppTag.INTEGER, job.pages * job.copies),
            ("job-impressions-completed", IppTag.INTEGER, job.impressions),
        ]

    def _find(self, message: Any) -> SimulatedJob | None:
        job_id = message.operation.get("job-id")
        return next((job for job in self.jobs if job.id == job_id), None)

    async def _get_job_attributes(self, message: Any) -> tuple[int, str, list[Any]]:
        job = self._find(message)
        if job is None:
            return IppStatus.ERROR_NOT_FOUND, "No such job.", []
        return IppStatus.OK, "", [(IppTag.JOB, self._job_attributes(job))]

    async def _get_jobs(self, message: Any) -> tuple[int, str, list[Any]]:
        return IppStatus.OK, "", [(IppTag.JOB, self._job_attributes(job)) for job in self.jobs]

    async def _cancel_job(self, message: Any) -> tuple[int, str, list[Any]]:
        job = self._find(message)
        if job is None:
            return IppStatus.ERROR_NOT_FOUND, "No such job.", []
        if job.state in (IppJobState.COMPLETED, IppJobState.CANCELED, IppJobState.ABORTED):
            return IppStatus.ERROR_NOT_POSSIBLE, "The job has already ended.", []
        job.state = IppJobState.CANCELED
        return IppStatus.OK, "", []

    async def _print_jobs(self) -> None:
        """One job at a time, page by page; paper out or a stop holds the job until it clears."""
        while True:
            job = await self._queue.get()
            if job.state != IppJobState.PENDING:
                continue
            job.state = IppJobState.PROCESSING
            while job.impressions < job.pages * job.copies and job.state == IppJobState.PROCESSING:
                await asyncio.sleep(self.seconds_per_page)
                if self.state != IppPrinterState.STOPPED and not any(
                    r.startswith("media-empty") for r in self.reasons
                ):
                    job.impressions += 1
            if job.state == IppJobState.PROCESSING:
                job.state = IppJobState.COMPLETED
                if self.on_job is not None:
                    self.on_job(job)


def _read(data: bytes, document_format: str) -> tuple[int, Image.Image]:
    """The number of pages and the first page as an image."""
    if document_format == "application/pdf":
        import pypdfium2 as pdfium

        with PDFIUM_LOCK:  # the driver may render in the same process
            document = pdfium.PdfDocument(data)
            try:
                page = document[0]
                image = page.render(scale=PNG_WIDTH / page.get_width()).to_pil()
                page.close()
                return len(document), image
            finally:
                document.close()
    if document_format == "image/pwg-raster":
        return pwg.count_pages(data), pwg.decode_first_page(data)
    image = Image.open(io.BytesIO(data))
    image.load()
    return 1, image


def _save_png(image: Image.Image, path: Path) -> None:
    if image.width > PNG_WIDTH:
        image = image.resize((PNG_WIDTH, round(image.height * PNG_WIDTH / image.width)))
    image.convert("RGB").save(path, "PNG")

"""The ``ipp_printer`` driver: Mews ``Printer`` commands printed over IPP, followed to the end.

Kept light to import (the host imports it to register the class): PDFium and Pillow load with the
first document, in a worker thread.

Each command: Get-Printer-Attributes (a stopped printer or one out of paper ends it before anything
is sent), the document as it is or rasterised to a format the printer lists, Print-Job, then
Get-Job-Attributes until the job is completed, aborted or cancelled. The job's name carries the
command's id and its job id is written to the journal, so after a crash or an answer that never came
the printer is asked about that job before anything is printed again.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
from dataclasses import dataclass, field
from importlib.metadata import PackageNotFoundError, version
from typing import TYPE_CHECKING, Any, ClassVar

from pydantic import BaseModel

from mews_bridge import (
    CommandFailed,
    CommandJob,
    CommandRejected,
    DeviceConfigError,
    DeviceDriver,
    DeviceNotReady,
    DocumentError,
    decode_file_data,
)

from .options import Options


class _OnFirstUse:
    """Stands for a module that is imported on first attribute access. (Not importlib's LazyLoader:
    its placeholder in ``sys.modules`` loads as soon as anything scans the modules, as pydantic
    does through ``inspect.getmodule``.)"""

    def __init__(self, name: str) -> None:
        self._name = name

    def __getattr__(self, attribute: str) -> Any:
        return getattr(importlib.import_module(self._name), attribute)


if TYPE_CHECKING:
    from mews_bridge import PrinterData

    from . import codec, link
    from . import status as printer_status
    from .codec import Attribute, Message
    from .document import Prepared, Target
else:
    # pyipp and aiohttp (about 9 MB) load when a printer is first set up, not when the plugin is
    # registered: a bridge with the plugin installed and no IPP printer never holds them.
    codec, link, printer_status = (
        _OnFirstUse(f"{__package__}.{name}") for name in ("codec", "link", "status")
    )

PRINTER_ATTRIBUTES = [
    "printer-state",
    "printer-state-reasons",
    "printer-state-message",
    "printer-is-accepting-jobs",
    "printer-make-and-model",
    "document-format-supported",
    "media-default",
    "media-supported",
    "sides-supported",
    "print-color-mode-supported",
    "print-scaling-supported",
    "copies-supported",
    "pwg-raster-document-resolution-supported",
    "pwg-raster-document-type-supported",
]
JOB_ATTRIBUTES = ["job-id", "job-state", "job-state-reasons", "job-impressions-completed", "job-name"]
CANCEL_TIMEOUT_S = 5.0
BUSY_RETRY_S = 0.5
STORE_PREFIX = "job:"


@dataclass
class Submission:
    """One Print-Job of a command: its document and how many copies the printer makes of it."""

    document: bytes
    copies: int
    impressions: int


@dataclass
class Progress:
    """A command's jobs, as recorded in the journal (``ctx.store``) while they are under way."""

    jobs: list[int | None] = field(default_factory=list)
    sending: str | None = None
    """The job name of a Print-Job whose answer has not come back yet."""
    total: int = 1
    """How many Print-Jobs the command takes (a JPEG per page, or a document per copy)."""

    def dump(self) -> dict[str, Any]:
        return {"jobs": self.jobs, "sending": self.sending, "total": self.total}


class IppPrinterDriver(DeviceDriver[Options]):
    """Prints Mews documents on an IPP printer or a CUPS queue and follows each job to its end."""

    name = "ipp_printer"
    device_type = "Printer"
    replay_safe = False  # recover() asks the printer about the job before printing again
    command_timeout_s = 600.0
    Options: ClassVar[type[BaseModel]] = Options
    secret_options = frozenset({"tls_fingerprint"})

    _link: link.IppLink
    _model: str = ""
    _formats: tuple[str, ...] = ()
    _last_state: printer_status.PrinterState | None = None
    _last_error: str | None = None
    _last_job: int | None = None
    _jobs = 0
    _pages = 0

    async def setup(self) -> None:
        self._link = link.IppLink(
            self.options.uri, self.options.timeout_s, fingerprint=self.options.fingerprint
        )
        self.ctx.on_unload(self._link.close)
        try:
            printer = await self._ask_printer()
        except (link.Unreachable, link.NoAnswer) as exc:
            raise DeviceNotReady(f"{self.ctx.name} is not reachable at {self.options.uri}: {exc}") from None
        except (link.Refused, link.StatusError) as exc:
            raise DeviceConfigError(f"{self.ctx.name} at {self.options.uri}: {exc}") from None
        self._model = str(printer.attributes.get("printer-make-and-model") or "")
        self._formats = tuple(
            str(value) for value in codec.values(printer.attributes, "document-format-supported")
        )
        media = codec.values(printer.attributes, "media-supported")
        if self.options.media and media and self.options.media not in media:
            self.ctx.logger.warning(
                "%s does not list the media %s; it lists %s",
                self.ctx.name,
                self.options.media,
                ", ".join(media),
            )
        self.ctx.logger.info(
            "%s ready: %s at %s, takes %s",
            self.ctx.name,
            self._model or "a printer",
            self.options.uri,
            ", ".join(self._formats) or "no document format it names",
        )

    async def unload(self) -> None:
        await self._link.close()

    # --- a command -------------------------------------------------------------------------------

    async def execute(self, job: CommandJob[Any]) -> str | None:
        progress = Progress()
        try:
            notes = await self._print(job, progress)
        except (CommandFailed, CommandRejected) as exc:
            self._last_error = exc.notes
            raise
        finally:
            # Kept only while the command runs: after a crash it tells recover() what was sent.
            await asyncio.shield(self.ctx.store.delete(STORE_PREFIX + job.id))
        self._jobs += 1
        return notes

    async def recover(self, job: CommandJob[Any]) -> str | None:
        """After a crash mid-command: ask the printer about the jobs the journal names before printing again."""
        key = STORE_PREFIX + job.id
        saved = await self.ctx.store.get(key)
        if saved is None:  # nothing was sent
            return await self.execute(job)
        progress = Progress(list(saved.get("jobs") or []), saved.get("sending"), int(saved.get("total") or 1))
        name = self.ctx.name
        try:
            if progress.sending:
                found = await self._find_job(progress.sending)
                if found is not None:
                    progress.jobs.append(found)
            if not progress.jobs:  # the Print-Job never landed
                await self.ctx.store.delete(key)
                return await self.execute(job)
            states = [
                await self._job_state(job_id, f"Mews {job.id}")
                for job_id in progress.jobs
                if job_id is not None
            ]
        except link.LinkError as exc:
            raise CommandFailed(
                f"The bridge restarted while {name} printed this document and cannot ask {name} whether "
                f"it finished ({exc}). Check the printer and print again if the document is missing."
            ) from None
        if any(state is None for state in states):
            await self.ctx.store.delete(key)
            raise CommandFailed(
                f"{name} took this document before the bridge restarted and no longer lists the job, so the "
                "bridge cannot tell whether it printed. Check the output tray and print again if it is missing."
            )
        cut_short = len(progress.jobs) < progress.total  # not every Print-Job was sent
        if cut_short or any(
            state in (codec.IppJobState.CANCELED, codec.IppJobState.ABORTED) for state in states
        ):
            await self.ctx.store.delete(key)
            notes = await self.execute(job)
            return " ".join(filter(None, ["Printed again after the bridge restarted.", notes]))
        try:
            for job_id in progress.jobs:
                if job_id is not None:
                    await self._follow(job, job_id, 0, 1, [])
        finally:
            await asyncio.shield(self.ctx.store.delete(key))
        return "Printed before the bridge restarted."

    async def _print(self, job: CommandJob[Any], progress: Progress) -> str | None:

        data: PrinterData = job.data
        name = self.ctx.name
        options = self.options
        try:
            raw = decode_file_data(data.file_data, int(options.max_document_mb * 1_000_000))
        except DocumentError as exc:
            raise CommandRejected(f"The document could not be printed: {exc}.") from None
        printer = await self._ask_or_fail()
        stop = printer.stop_notes(name)
        if stop:
            raise CommandFailed(stop)
        target = self._target(printer, data.file_type)
        prepared = await self._prepare(raw, data.file_type, target)
        notes = printer.warnings(name)
        submissions = self._submissions(printer, prepared, data.copy_count)
        total = sum(submission.impressions for submission in submissions)
        progress.total = len(submissions)
        done = 0
        for index, submission in enumerate(submissions):
            job_name = f"Mews {job.id}" + (
                f" ({index + 1} of {len(submissions)})" if len(submissions) > 1 else ""
            )
            job_id = await self._submit(
                job.id,
                job_name,
                submission,
                document_format=prepared.format,
                target=target,
                printer=printer,
                progress=progress,
            )
            if job_id is None:
                notes.append(
                    f"{name} does not report on its jobs: the bridge knows it took the document, "
                    "not that it printed."
                )
            else:
                await self._follow(job, job_id, done, total, notes)
            done += submission.impressions
            await job.progress(done / total)
        self._pages += total
        return " ".join(dict.fromkeys(notes)) or None

    def _target(self, printer: printer_status.PrinterState, file_type: str) -> Target:
        from . import document

        attributes = printer.attributes
        media_name = self.options.media or str(attributes.get("media-default") or "")
        resolutions = [
            value[0]
            for value in codec.values(attributes, "pwg-raster-document-resolution-supported")
            if isinstance(value, tuple) and len(value) == 3 and value[2] == 3  # dots per inch
        ]
        try:
            return document.choose_target(
                file_type,
                [str(value) for value in codec.values(attributes, "document-format-supported")],
                color_mode=self.options.color_mode,
                media=document.Media.parse(media_name),
                fit=self.options.fit_to_page,
                resolutions=resolutions,
                raster_types=[
                    str(value) for value in codec.values(attributes, "pwg-raster-document-type-supported")
                ],
            )
        except DocumentError as exc:
            raise CommandRejected(f"The document could not be printed on {self.ctx.name}: {exc}.") from None

    async def _prepare(self, raw: bytes, file_type: str, target: Target) -> Prepared:
        from . import document

        try:
            return await asyncio.to_thread(document.prepare, raw, file_type, target, self.options.max_pages)
        except DocumentError as exc:
            raise CommandRejected(f"The document could not be printed: {exc}.") from None
        except Exception as exc:  # PDFium and Pillow fail in many ways on odd input
            self.ctx.logger.warning("%s: the document cannot be rendered: %r", self.ctx.name, exc)
            raise CommandRejected("The document could not be printed: it cannot be rendered.") from None

    def _submissions(
        self, printer: printer_status.PrinterState, prepared: Prepared, copies: int
    ) -> list[Submission]:
        """Print-Jobs in printing order. Copies are the printer's job when it makes that many; else
        the documents are sent again, each copy in page order."""
        supported = codec.values(printer.attributes, "copies-supported")
        printer_copies = len(supported) == 2 and supported[0] <= copies <= supported[1]
        per_page = prepared.pages // len(prepared.documents)
        # Several documents (JPEG pages) are sent copy by copy, so the copies come out collated.
        if copies == 1 or (printer_copies and len(prepared.documents) == 1):
            return [Submission(doc, copies, per_page * copies) for doc in prepared.documents]
        return [Submission(doc, 1, per_page) for _ in range(copies) for doc in prepared.documents]

    def _job_attributes(
        self, printer: printer_status.PrinterState, submission: Submission, target: Target
    ) -> list[Attribute]:
        attributes = printer.attributes
        options = self.options
        found: list[Attribute] = []
        if submission.copies > 1:
            found.append(("copies", codec.IppTag.INTEGER, submission.copies))
        if options.media:
            found.append(("media", codec.IppTag.KEYWORD, options.media))
        if options.sides in codec.values(attributes, "sides-supported"):
            found.append(("sides", codec.IppTag.KEYWORD, options.sides))
        if options.color_mode != "auto" and options.color_mode in codec.values(
            attributes, "print-color-mode-supported"
        ):
            found.append(("print-color-mode", codec.IppTag.KEYWORD, options.color_mode))
        scaling = "fit" if options.fit_to_page else "none"
        if target.format == "application/pdf" and scaling in codec.values(
            attributes, "print-scaling-supported"
        ):
            found.append(("print-scaling", codec.IppTag.KEYWORD, scaling))
        return found

    async def _submit(
        self,
        command_id: str,
        job_name: str,
        submission: Submission,
        *,
        document_format: str,
        target: Target,
        printer: printer_status.PrinterState,
        progress: Progress,
    ) -> int | None:
        """Print-Job; the job id (None from a printer that gives none). Never sent twice blindly: when
        the answer is lost, the printer's job list says whether the job landed."""
        name = self.ctx.name
        key = STORE_PREFIX + command_id
        progress.sending = job_name
        await self.ctx.store.put(key, progress.dump())
        try:
            answer = await self._print_job(job_name, document_format, submission, target, printer)
            job_id = next((group.get("job-id") for group in answer.jobs if "job-id" in group), None)
        except link.NoAnswer as exc:
            try:
                job_id = await self._find_job(job_name)
            except link.LinkError:
                job_id = None
            if job_id is None:
                raise CommandFailed(
                    f"{name} did not confirm the job ({exc}) and does not list it. Check the printer and "
                    "print again if nothing came out."
                ) from None
        except link.Unreachable as exc:
            raise CommandFailed(
                f"{name} is not reachable ({exc}). Check it is on and connected, then print again."
            ) from None
        except link.Refused as exc:
            raise CommandFailed(f"{name} refused the job: {exc}.") from None
        except link.StatusError as exc:
            raise self._refused(exc) from None
        except asyncio.CancelledError:
            # Mews cancelled the command while the document was on its way: cancel it if it landed.
            await asyncio.shield(self._cancel_named(job_name))
            raise
        progress.jobs.append(job_id)
        progress.sending = None
        await self.ctx.store.put(key, progress.dump())
        self._last_job = job_id
        return job_id

    async def _print_job(
        self,
        job_name: str,
        document_format: str,
        submission: Submission,
        target: Target,
        printer: printer_status.PrinterState,
    ) -> Message:
        """Print-Job, sent again while the printer says it is busy (a refusal: nothing was created)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.options.job_timeout_s
        while True:
            try:
                return await self._link.call(
                    codec.IppOperation.PRINT_JOB,
                    [
                        ("job-name", codec.IppTag.NAME, job_name),
                        ("document-format", codec.IppTag.MIME_TYPE, document_format),
                    ],
                    job_attributes=self._job_attributes(printer, submission, target),
                    data=submission.document,
                )
            except link.StatusError as exc:
                if exc.status != codec.IppStatus.ERROR_BUSY or loop.time() > deadline:
                    raise
            await asyncio.sleep(max(self.options.poll_interval_s, BUSY_RETRY_S))

    def _refused(self, exc: link.StatusError) -> CommandFailed | CommandRejected:
        name = self.ctx.name
        detail = f" ({exc})" if str(exc) else ""
        if exc.status in printer_status.NOT_ACCEPTING:
            return CommandFailed(f"{name} is not taking jobs now{detail}. Check it, then print again.")
        if exc.status in printer_status.REFUSED_DOCUMENT:
            return CommandRejected(f"{name} refused the document{detail}.")
        return CommandFailed(f"{name} refused the job{detail}. Check it, then print again.")

    async def _follow(
        self, command: CommandJob[Any], job_id: int, done: int, total: int, notes: list[str]
    ) -> None:
        """Poll the job until it ends; cancel it when Mews cancels the command or it waits too long."""
        name = self.ctx.name
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.options.job_timeout_s
        stalled_since: float | None = None
        try:
            while True:
                try:
                    answer = await self._link.call(
                        codec.IppOperation.GET_JOB_ATTRIBUTES,
                        [
                            ("job-id", codec.IppTag.INTEGER, job_id),
                            ("requested-attributes", codec.IppTag.KEYWORD, JOB_ATTRIBUTES),
                        ],
                    )
                except link.StatusError as exc:
                    if (
                        exc.status == codec.IppStatus.ERROR_NOT_FOUND
                    ):  # purged at once by printers that keep no history
                        notes.append(
                            f"{name} no longer lists the job, so the bridge cannot confirm it printed."
                        )
                        return
                    if exc.status == codec.IppStatus.ERROR_OPERATION_NOT_SUPPORTED:
                        notes.append(
                            f"{name} does not report on its jobs: the bridge knows it took the "
                            "document, not that it printed."
                        )
                        return
                    raise CommandFailed(f"{name} would not say how the job went ({exc}).") from None
                except link.LinkError as exc:
                    if loop.time() > deadline:
                        raise CommandFailed(
                            f"Lost contact with {name} while it printed ({exc}). It may have printed: check "
                            "before printing again."
                        ) from None
                    await asyncio.sleep(self.options.poll_interval_s)
                    continue
                attributes = answer.jobs[0] if answer.jobs else {}
                state = attributes.get("job-state")
                impressions = attributes.get("job-impressions-completed")
                if isinstance(impressions, int) and total:
                    await command.progress(min(done + impressions, total) / total)
                if state in printer_status.JOB_DONE:
                    self._job_ended(int(state), codec.values(attributes, "job-state-reasons"))
                    return
                printer = await self._ask_printer_quietly()
                waiting = printer is not None and (
                    state == codec.IppJobState.STOPPED
                    or printer.media_waiting
                    or bool(printer.stop_notes(name))
                )
                now = loop.time()
                stalled_since = (stalled_since or now) if waiting else None
                if (
                    printer is not None
                    and stalled_since is not None
                    and now - stalled_since >= self.options.stalled_after_s
                ):
                    await self._cancel(job_id)
                    reason = printer.waiting_notes(name) or f"{name} stopped printing."
                    raise CommandFailed(
                        f"{reason} The job was cancelled so it does not print later by surprise."
                    )
                if now > deadline:
                    await self._cancel(job_id)
                    raise CommandFailed(
                        f"{name} did not finish the job within {self.options.job_timeout_s:g} s, so it was "
                        "cancelled. Check the printer and print again."
                    )
                await asyncio.sleep(self.options.poll_interval_s)
        except asyncio.CancelledError:
            # Mews cancelled the command: cancel the job too, even as this task is being cancelled.
            await asyncio.shield(self._cancel(job_id))
            raise

    def _job_ended(self, state: int, reasons: list[str]) -> None:
        name = self.ctx.name
        if state == codec.IppJobState.COMPLETED:
            return
        words = printer_status.job_reason_words(reasons)
        why = f": {words}" if words else ""
        if state == codec.IppJobState.CANCELED:
            raise CommandFailed(
                f"The job on {name} was cancelled before it finished printing{why}. Print again if needed."
            )
        raise CommandFailed(f"{name} could not finish the job{why}. Check the printer and print again.")

    async def _cancel(self, job_id: int) -> None:
        try:
            await asyncio.wait_for(
                self._link.call(codec.IppOperation.CANCEL_JOB, [("job-id", codec.IppTag.INTEGER, job_id)]),
                CANCEL_TIMEOUT_S,
            )
        except (link.LinkError, TimeoutError) as exc:
            # A job that already ended cannot be cancelled (client-error-not-possible); others are logged.
            self.ctx.logger.warning("%s: Cancel-Job for job %s: %s", self.ctx.name, job_id, exc)

    async def _cancel_named(self, job_name: str) -> None:
        try:
            job_id = await asyncio.wait_for(self._find_job(job_name), CANCEL_TIMEOUT_S)
        except (link.LinkError, TimeoutError) as exc:
            self.ctx.logger.warning(
                "%s: could not look for job %r to cancel it: %s", self.ctx.name, job_name, exc
            )
            return
        if job_id is not None:
            await self._cancel(job_id)

    async def _find_job(self, job_name: str) -> int | None:
        """The newest job of that name on the printer, or None."""
        answer = await self._link.call(
            codec.IppOperation.GET_JOBS,
            [
                ("which-jobs", codec.IppTag.KEYWORD, "all"),
                ("requested-attributes", codec.IppTag.KEYWORD, ["job-id", "job-name"]),
            ],
        )
        found = [
            group["job-id"]
            for group in answer.jobs
            if group.get("job-name") == job_name and "job-id" in group
        ]
        return max(found) if found else None

    async def _job_state(self, job_id: int, name_prefix: str) -> int | None:
        """The job's state, or None when the printer does not know it (or knows another job by that
        id: a printer that restarted numbers its jobs from 1 again)."""
        try:
            answer = await self._link.call(
                codec.IppOperation.GET_JOB_ATTRIBUTES,
                [
                    ("job-id", codec.IppTag.INTEGER, job_id),
                    ("requested-attributes", codec.IppTag.KEYWORD, ["job-state", "job-name"]),
                ],
            )
        except link.StatusError as exc:
            if exc.status == codec.IppStatus.ERROR_NOT_FOUND:
                return None
            raise
        attributes = answer.jobs[0] if answer.jobs else {}
        state = attributes.get("job-state")
        if not str(attributes.get("job-name", name_prefix)).startswith(name_prefix):
            return None
        return int(state) if isinstance(state, int) else None

    # --- the printer -----------------------------------------------------------------------------

    async def _ask_printer(self) -> printer_status.PrinterState:
        answer = await self._link.call(
            codec.IppOperation.GET_PRINTER_ATTRIBUTES,
            [("requested-attributes", codec.IppTag.KEYWORD, PRINTER_ATTRIBUTES)],
        )
        printer = printer_status.PrinterState.read(answer.printers[0] if answer.printers else {})
        self._last_state = printer
        return printer

    async def _ask_or_fail(self) -> printer_status.PrinterState:
        name = self.ctx.name
        try:
            return await self._ask_printer()
        except (link.Unreachable, link.NoAnswer) as exc:
            raise CommandFailed(
                f"{name} is not reachable ({exc}). Check it is on and connected, then print again."
            ) from None
        except (link.Refused, link.StatusError) as exc:
            raise CommandFailed(f"{name} would not tell its state ({exc}). Check its settings.") from None

    async def _ask_printer_quietly(self) -> printer_status.PrinterState | None:
        with contextlib.suppress(link.LinkError):
            return await self._ask_printer()
        return None

    async def diagnostics(self) -> dict[str, Any]:
        state = self._last_state
        return {
            "uri": self.options.uri,
            "make_and_model": self._model or None,
            "document_formats": self._formats,
            "last_state": None
            if state is None
            else {"state": state.state, "reasons": state.reasons, "message": state.message},
            "jobs_printed": self._jobs,
            "pages_printed": self._pages,
            "last_job_id": self._last_job,
            "last_error": self._last_error,
            "versions": {
                package: _version(package) for package in ("pyipp", "aiohttp", "pypdfium2", "pillow")
            },
        }


def _version(package: str) -> str | None:
    try:
        return version(package)
    except PackageNotFoundError:
        return None

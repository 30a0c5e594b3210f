"""The per-device workers: one command at a time per device, in order; devices in parallel under a bound.

A worker takes a queued command, records in the journal that it started, runs it on the driver and
hands the final state to the :class:`~mews_bridge.acknowledgement.Acknowledger`. ``Processing`` is sent
only if the command is still running after ``processing_after_s`` (a printout, a key waiting for its
card), and ``Progress`` at most every ``progress_interval_s``, both without retries so they never hold
up the work. ``Received`` is never sent: it costs a call and tells staff nothing ``Processing`` does not.
A command cancelled in Mews is dropped from the queue, or its run is cancelled.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from pydantic import BaseModel, ValidationError

from . import metrics
from .acknowledgement import Acknowledger
from .driver import CommandJob, DeviceDriver
from .exceptions import CommandError, CommandFailed, CommandRejected
from .inputs import describe_validation_error
from .journal import Journal, JournalError
from .lifecycle import InstanceState, ManagedInstance
from .mews.client import MewsClient
from .mews.errors import MewsError
from .mews.models import Device, DeviceCommand

log = logging.getLogger(__name__)


@dataclass(eq=False)
class MewsWork:
    """A command from Mews, journaled and with its data checked, waiting for (or in) its device."""

    command: DeviceCommand
    data: BaseModel
    interrupted: bool = False
    cancelled: bool = False
    receipt_due: bool = False
    """Not journaled yet: handed straight to an idle device, whose worker records receipt and start
    in one write (see :meth:`Journal.add`)."""
    queued_at: float = field(default_factory=time.monotonic)


@dataclass(eq=False)
class _LocalWork:
    data: dict[str, Any]
    model: BaseModel
    result: asyncio.Future[str | None] = field(
        default_factory=lambda: asyncio.get_running_loop().create_future()
    )


class WorkerPool:
    """Every configured device's worker and what they share: the journal, the parallel bound, the pace."""

    def __init__(
        self,
        mews: MewsClient,
        journal: Journal,
        acks: Acknowledger,
        *,
        max_parallel: int,
        processing_after_s: float,
        progress_interval_s: float,
    ) -> None:
        self.mews = mews
        self.journal = journal
        self.acks = acks
        self.processing_after_s = processing_after_s
        self.progress_interval_s = progress_interval_s
        self.workers: list[DeviceWorker] = []
        self.accepting = True
        self._by_key: dict[str, DeviceWorker] = {}
        self.parallel = asyncio.Semaphore(max_parallel)

    def add(self, managed: ManagedInstance, mews_device: str) -> DeviceWorker:
        worker = DeviceWorker(self, managed, mews_device)
        self.workers.append(worker)
        self._by_key[mews_device] = worker
        self._by_key[mews_device.casefold()] = worker
        return worker

    def route(self, device: Device) -> DeviceWorker | None:
        """The worker serving a Mews device, by its Id or Name (exact, then case-blind)."""
        return (
            self._by_key.get(device.id)
            or self._by_key.get(device.name)
            or self._by_key.get(device.name.casefold())
        )

    def held(self) -> list[str]:
        """The ids of the Mews commands queued or running here, not yet cancelled."""
        return [work.command.id for worker in self.workers for work in worker.held()]

    def cancel(self, command_id: str) -> bool:
        """Drop a queued command or cut its run short; False if no worker holds it."""
        return any(worker.cancel(command_id) for worker in self.workers)

    async def run(self, device_name: str, data: dict[str, Any]) -> str | None:
        """Run a local job (not from Mews) on a device, in turn with its commands; its Notes."""
        worker = next((w for w in self.workers if w.name == device_name), None)
        if worker is None:
            raise CommandFailed(f"No device called {device_name!r} is configured.")
        item = _LocalWork(data, worker.check(data))
        worker.put(item)
        return await item.result

    async def stop(self, grace_s: float) -> None:
        """Stop taking work; let running commands finish for ``grace_s``.

        A command cut off stays ``running`` in the journal and is handled as interrupted at the next
        start; queued ones stay queued and run then.
        """
        self.accepting = False
        # A busy worker finishes its command (journal and Mews included) and then stops by itself.
        busy = [w.task for w in self.workers if w.task and w.current is not None]
        for worker in self.workers:
            if worker.task and worker.current is None:
                worker.task.cancel()
        if busy:
            log.info("Waiting up to %g s for %d running command(s)", grace_s, len(busy))
            await asyncio.wait(busy, timeout=grace_s)


class DeviceWorker:
    """A configured device: its lifecycle, its queue and the task that drains it in order."""

    def __init__(self, pool: WorkerPool, managed: ManagedInstance, mews_device: str) -> None:
        self.pool = pool
        self.managed = managed
        self.mews_device = mews_device
        self.queue: asyncio.Queue[MewsWork | _LocalWork] = asyncio.Queue()
        self.current: MewsWork | _LocalWork | None = None
        self.run_task: asyncio.Task[str | None] | None = None
        self.task: asyncio.Task[None] | None = None
        self._queued: dict[str, MewsWork] = {}  # the Mews commands in the queue, by id

    @property
    def name(self) -> str:
        return self.managed.name

    @property
    def driver_cls(self) -> type[DeviceDriver[Any]]:
        cls = self.managed.cls
        assert issubclass(cls, DeviceDriver)
        return cls

    def check(self, data: dict[str, Any] | None) -> BaseModel:
        """A command's data as this device's driver reads it; :class:`CommandRejected` if it cannot."""
        try:
            return self.driver_cls.data_model().model_validate({} if data is None else data)
        except ValidationError as exc:
            raise CommandRejected(
                f"The command's data is not valid: {describe_validation_error(exc, 'Data')}"
            ) from None

    def idle(self) -> bool:
        """Whether a command queued now would start at once: the device is set up, nothing runs or
        waits here, and the bound on parallel commands leaves room."""
        return (
            self.pool.accepting
            and self.current is None
            and self.queue.empty()
            and self.managed.state is InstanceState.LOADED
            and not self.pool.parallel.locked()
        )

    def put(self, work: MewsWork | _LocalWork) -> None:
        """Queue work behind what is queued already."""
        if isinstance(work, MewsWork):
            self._queued[work.command.id] = work
        self.queue.put_nowait(work)

    def held(self) -> list[MewsWork]:
        """The Mews commands queued here and the one running, not yet cancelled."""
        items = list(self._queued.values())
        if isinstance(self.current, MewsWork):
            items.append(self.current)
        return [item for item in items if not item.cancelled]

    def cancel(self, command_id: str) -> bool:
        item = self._queued.get(command_id)
        if item is None and isinstance(self.current, MewsWork) and self.current.command.id == command_id:
            item = self.current
            if self.run_task is not None:
                self.run_task.cancel()
        if item is None:
            return False
        item.cancelled = True
        log.info("Command %s for %s was cancelled in Mews", command_id, self.name)
        return True

    async def run(self) -> None:
        """Drain the queue, one command at a time, until the pool stops taking work."""
        self.task = asyncio.current_task()
        while self.pool.accepting:
            item = await self.queue.get()
            self.current = item
            try:
                if isinstance(item, _LocalWork):
                    # On behalf of a command that holds a permit: waiting for another could deadlock.
                    await self._run_local(item)
                else:
                    self._queued.pop(item.command.id, None)
                    async with self.pool.parallel:
                        await self._run_command(item)
            except JournalError as exc:  # before the driver ran (a full or dying SD card)
                log.error("%s could not start a command: the journal failed", self.name, exc_info=exc)
                if isinstance(item, MewsWork):
                    await self.pool.acks.report_journal_failure(item.command.id)
            finally:
                self.current, self.run_task = None, None

    async def _ready_driver(self) -> DeviceDriver[Any]:
        state = await self.managed.wait_settled()
        if state is not InstanceState.LOADED:
            reason = self.managed.reason or state.value.replace("_", " ")
            raise CommandFailed(f"{self.name} is not available: {reason}.")
        return self.managed.driver

    async def _run_command(self, item: MewsWork) -> None:
        command, journal = item.command, self.pool.journal
        driver: DeviceDriver[Any] | None = None
        refusal: CommandError | None = None
        if not item.cancelled:
            try:
                driver = await self._ready_driver()
            except CommandError as exc:
                refusal = exc
        starts = driver is not None and not item.cancelled  # cancelled perhaps while it was set up
        # A journal failure here propagates: nothing may run without a record that it started.
        if item.receipt_due:
            if not await self._journal_receipt(item, running=starts):
                return
        elif starts:
            await journal.mark_running(command.id, self.name)
        if item.cancelled:
            await journal.mark_acknowledged(command.id, "Cancelled")
            return
        if driver is None:
            assert refusal is not None  # not cancelled, so the device refused
            metrics.command_finished(self.name, "Error")
            await self.pool.acks.finish(command.id, "Error", refusal.notes)
            return
        started = metrics.command_started(self.name, item.queued_at)
        state, notes = await self._drive(item, driver)
        metrics.command_finished(self.name, state, started)
        if state == "Cancelled":
            await journal.mark_finished(command.id, state, None)
            await journal.mark_acknowledged(command.id)
            return
        await self.pool.acks.finish(command.id, state, notes)

    async def _journal_receipt(self, item: MewsWork, *, running: bool) -> bool:
        """Journal a command handed over unjournaled (and its start if ``running``); False if the
        journal knew it already: a duplicate, taken before and perhaps done, which is converged."""
        command, item.receipt_due = item.command, False
        running_as = self.name if running else None
        created = command.created_utc.isoformat()
        if await self.pool.journal.add(
            command.id, command.device.id, self.name, created, running_as=running_as
        ):
            return True
        await self.pool.acks.converge(command.id)
        return False

    async def _drive(self, item: MewsWork, driver: DeviceDriver[Any]) -> tuple[str, str | None]:
        """Run (or recover) the command on its driver; the final state and Notes, whatever happens."""
        command = item.command
        progress = _ProgressReporter(self.pool.mews, command.id, self.pool.progress_interval_s)
        marker = asyncio.create_task(self._mark_processing(progress))
        job = CommandJob(command, item.data, progress.report, interrupted=item.interrupted)
        run = driver.recover(job) if item.interrupted and not driver.replay_safe else driver.execute(job)
        self.run_task = asyncio.create_task(run, name=f"{self.name}: command {command.id}")
        try:
            async with asyncio.timeout(driver.command_timeout_s):
                return "Processed", await self.run_task
        except CommandError as exc:
            return "Error", exc.notes
        except TimeoutError:
            return (
                "Error",
                f"{self.name} did not finish within {driver.command_timeout_s:g} s. Please check it.",
            )
        except asyncio.CancelledError as exc:
            if _stopping():
                raise
            if item.cancelled:
                return "Cancelled", None
            return self._crashed(command.id, exc)
        except Exception as exc:
            return self._crashed(command.id, exc)
        finally:
            marker.cancel()
            await progress.settle()

    def _crashed(self, command_id: str, exc: BaseException) -> tuple[str, str]:
        log.error(
            "%s (%s %s) crashed on command %s",
            self.name,
            self.driver_cls.name,
            self.driver_cls.plugin_version,
            command_id,
            exc_info=exc,
        )
        return "Error", f"{self.name} failed unexpectedly; the bridge log has the details."

    async def _mark_processing(self, progress: _ProgressReporter) -> None:
        await asyncio.sleep(self.pool.processing_after_s)
        await progress.report(0.0, force=True)

    async def _run_local(self, item: _LocalWork) -> None:
        if item.result.done():
            return  # the caller stopped waiting (cancelled, timed out) before the job's turn came
        try:
            driver = await self._ready_driver()
            device = Device(id="local", name=self.name, type=self.driver_cls.device_type)
            command = DeviceCommand(
                id=f"local-{uuid.uuid4()}",
                state="Processing",
                created_utc=datetime.now(UTC),
                device=device,
                data=item.data,
            )
            job = CommandJob(command, item.model, _ignore_progress)
            self.run_task = asyncio.create_task(driver.execute(job), name=f"{self.name}: local job")
            async with asyncio.timeout(driver.command_timeout_s):
                notes = await self.run_task
        except CommandError as exc:
            _settle(item.result, exc)
        except (Exception, asyncio.CancelledError) as exc:
            if isinstance(exc, asyncio.CancelledError) and _stopping():
                raise
            log.error("%s crashed on a local job", self.name, exc_info=exc)
            _settle(
                item.result,
                CommandFailed(f"{self.name} failed unexpectedly; the bridge log has the details."),
            )
        else:
            _settle(item.result, notes)


class _ProgressReporter:
    """Sends ``Processing`` with the latest ``Progress``, at most every ``interval_s``, one request at a time.

    A report that comes while an update is in flight or too soon is not lost: the newest value is sent
    as soon as it may be. Updates have no retries, so they never hold up the work.
    """

    def __init__(self, mews: MewsClient, command_id: str, interval_s: float) -> None:
        self._mews = mews
        self._command_id = command_id
        self._interval_s = interval_s
        self._last = float("-inf")
        self._latest: float | None = None
        self._sending: asyncio.Task[None] | None = None
        self._in_request = False
        self.sent = False

    async def report(self, fraction: float, *, force: bool = False) -> None:
        """Queue ``fraction``; ``force`` sends one update now unless one was sent already (the Processing mark)."""
        if force:
            if self.sent or self._latest is not None:
                return
            self._last = float("-inf")
        self._latest = fraction
        if self._sending is None or self._sending.done():
            self._sending = asyncio.create_task(self._send_latest())

    async def _send_latest(self) -> None:
        while self._latest is not None:
            wait = self._last + self._interval_s - time.monotonic()
            if wait > 0:
                await asyncio.sleep(wait)
            fraction, self._latest = self._latest, None
            self._last, self.sent, self._in_request = time.monotonic(), True, True
            try:
                with contextlib.suppress(MewsError):
                    await self._mews.call(
                        "commands/update",
                        {
                            "CommandId": self._command_id,
                            "State": "Processing",
                            "Progress": round(fraction, 3),
                        },
                        retry_budget_s=0,
                    )
            finally:
                self._in_request = False

    async def settle(self) -> None:
        """Drop what is still waiting and let an update in flight land, so Mews never sees Processing
        after the final state."""
        self._latest = None
        if self._sending is None:
            return
        if not self._in_request:
            self._sending.cancel()
        await asyncio.gather(self._sending, return_exceptions=True)


def _stopping() -> bool:
    """Whether the current task is being cancelled (the bridge is stopping), not just its run."""
    current = asyncio.current_task()
    return current is not None and current.cancelling() > 0


async def _ignore_progress(fraction: float) -> None:
    return None


def _settle(result: asyncio.Future[str | None], outcome: str | CommandError | None) -> None:
    """Hand a local job's outcome to its caller, unless the caller stopped waiting while it ran."""
    if result.done():
        return
    if isinstance(outcome, CommandError):
        result.set_exception(outcome)
    else:
        result.set_result(outcome)

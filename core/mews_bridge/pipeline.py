"""The device-command pipeline: from a Mews event to a final state the front desk can read.

* Intake: ``DeviceCommand`` events, catch-ups (``commands/getAllActive``) and sweeps. Event ids are
  coalesced: while one ``commands/getAllByIds`` is in flight, new ids wait and go in the next (up to
  1000 a call). Every command is written to the journal before anything is done with it; the journal
  also makes duplicates (events, catch-ups, sweeps) harmless.
* Routing by the Mews device Id or Name to a configured device; one command at a time per device, in
  order; devices work in parallel under a global bound.
* API calls per command: the batched fetch (shared; none after a catch-up, which carries the data) and
  the final ``commands/update``. ``Processing`` is sent only if the command is still running after
  ``processing_after_s`` (a printout, a key waiting for its card), and ``Progress`` at most every
  ``progress_interval_s``, both without retries so they never hold up the work. ``Received`` is never
  sent: it costs a call and tells staff nothing ``Processing`` does not.
* A final state that Mews could not take (an outage) is kept and re-sent until it lands.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from collections import OrderedDict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from pydantic import BaseModel, ValidationError

from . import metrics
from .driver import CommandJob, DeviceDriver, LocalDevices
from .exceptions import CommandError, CommandFailed, CommandRejected
from .inputs import describe_validation_error
from .journal import CommandRecord, Journal
from .lifecycle import InstanceState, ManagedInstance
from .mews.client import MewsClient
from .mews.errors import MewsAuthError, MewsError, MewsRequestError
from .mews.models import FINAL_STATES, Device, DeviceCommand
from .settings import BridgeSettings
from .supervisor import Supervisor

log = logging.getLogger(__name__)
_MAX_NOTES = 1000
JOURNAL_FAILED = (
    "The bridge could not write to its journal (its storage may be full or failing), so it did not "
    "carry out this command. Please check the bridge and issue the command again."
)
_REMEMBERED_IDS = 10_000
_CONFLICT_TRIES = 3
"""commands/update answered 409: re-read and update again, this many times in all."""


@dataclass(eq=False)
class _MewsWork:
    command: DeviceCommand
    interrupted: bool = False
    cancelled: bool = False
    queued_at: float = field(default_factory=time.monotonic)


@dataclass(eq=False)
class _LocalWork:
    data: dict[str, Any]
    result: asyncio.Future[str | None] = field(
        default_factory=lambda: asyncio.get_running_loop().create_future()
    )


class DeviceSlot:
    """A configured device: its lifecycle, its queue and the worker that drains it in order."""

    def __init__(self, managed: ManagedInstance, mews_device: str) -> None:
        self.managed = managed
        self.mews_device = mews_device
        self.queue: asyncio.Queue[_MewsWork | _LocalWork] = asyncio.Queue()
        self.current: _MewsWork | _LocalWork | None = None
        self.run_task: asyncio.Task[str | None] | None = None
        self.worker: asyncio.Task[None] | None = None

    @property
    def name(self) -> str:
        return self.managed.name

    @property
    def driver_cls(self) -> type[DeviceDriver[Any]]:
        cls = self.managed.cls
        assert issubclass(cls, DeviceDriver)
        return cls

    def held(self) -> list[_MewsWork]:
        """The Mews commands queued here and the one running, not yet cancelled."""
        items = [i for i in self.queue._queue if isinstance(i, _MewsWork)]  # type: ignore[attr-defined]
        if isinstance(self.current, _MewsWork):
            items.append(self.current)
        return [item for item in items if not item.cancelled]

    def find_queued(self, command_id: str) -> _MewsWork | None:
        for item in list(self.queue._queue):  # type: ignore[attr-defined] - asyncio.Queue keeps a deque
            if isinstance(item, _MewsWork) and item.command.id == command_id:
                return item
        return None


class CommandPipeline(LocalDevices):
    def __init__(
        self,
        mews: MewsClient,
        journal: Journal,
        settings: BridgeSettings,
        *,
        on_fatal: Callable[[BaseException], None],
        processing_after_s: float = 1.0,
        ack_retry_s: float = 15.0,
        supervisor: Supervisor | None = None,
    ) -> None:
        self.supervisor = supervisor or Supervisor()
        self.mews = mews
        self.journal = journal
        self.settings = settings
        self.on_fatal = on_fatal
        self.processing_after_s = processing_after_s
        self.ack_retry_s = ack_retry_s
        self.slots: list[DeviceSlot] = []
        self._by_key: dict[str, DeviceSlot] = {}
        self._seen: OrderedDict[str, None] = OrderedDict()
        self._cancelled: OrderedDict[str, None] = OrderedDict()
        self._to_fetch: dict[str, None] = {}  # insertion-ordered: the order events came in
        self._fetch_wanted = asyncio.Event()
        self._unacknowledged: dict[str, tuple[str, str | None]] = {}
        self._acknowledging: set[str] = set()
        self._ack_wanted = asyncio.Event()
        self._left_devices: set[str] = set()
        self._parallel = asyncio.Semaphore(settings.max_parallel_devices)
        self._task_names: list[str] = []
        self._accepting = True

    # -- set-up ------------------------------------------------------------------------------------

    def add_device(self, managed: ManagedInstance, mews_device: str) -> DeviceSlot:
        slot = DeviceSlot(managed, mews_device)
        self.slots.append(slot)
        self._by_key[mews_device] = slot
        self._by_key[mews_device.casefold()] = slot
        return slot

    def start(self) -> None:
        loops: list[tuple[str, Callable[[], Any]]] = [
            *((f"worker {slot.name}", lambda slot=slot: self._work(slot)) for slot in self.slots),
            ("command fetch", self._fetch_loop),
            ("command acknowledgements", self._ack_loop),
        ]
        for name, factory in loops:
            self.supervisor.start(name, factory)
            self._task_names.append(name)

    async def stop(self, grace_s: float) -> None:
        """Stop taking work; let running commands finish for ``grace_s``, then cut them off.

        A command cut off stays ``running`` in the journal and is handled as interrupted at the next
        start; queued ones stay queued and run then.
        """
        self._accepting = False
        # A busy worker finishes its command (journal and Mews included) and then stops by itself.
        busy = [slot.worker for slot in self.slots if slot.worker and slot.current is not None]
        for slot in self.slots:
            if slot.worker and slot.current is None:
                slot.worker.cancel()
        if busy:
            log.info("Waiting up to %g s for %d running command(s)", grace_s, len(busy))
            await asyncio.wait(busy, timeout=grace_s)
        await self.supervisor.stop(self._task_names)

    # -- intake ------------------------------------------------------------------------------------

    def on_command_event(self, command_id: str, state: str | None) -> None:
        """A ``DeviceCommand`` event. Events for our own updates (Processing, final states) are ignored."""
        if state == "Cancelled":
            self._cancel(command_id)
        elif state in ("Pending", "Received"):  # also a finished one set back: offer() converges it
            self._to_fetch[command_id] = None
            self._fetch_wanted.set()

    async def catch_up(self) -> None:
        """Take every active command (after a (re)connect, and in the safety sweep).

        Commands this bridge already holds are re-read by id: one cancelled while no event could reach
        us is missing from ``getAllActive`` rather than reported as cancelled.
        """
        await self.offer(await self.mews.get_active_commands())
        held = [item.command.id for slot in self.slots for item in slot.held()]
        if held:
            for command in await self.mews.get_commands_by_ids(held):
                if command.state == "Cancelled":
                    self._cancel(command.id)

    async def recover(self) -> None:
        """At start, beside the event stream: settle what the journal holds in flight from the last run.

        ``commands/getAllActive`` does not return commands left in ``Processing``, so they are re-read
        by id. A record Mews refuses to read (400) or leaves out is settled on its own and closed with
        a log line; it never holds the others up. Raises :class:`MewsError` only when Mews cannot be
        reached at all (the caller tries again later).
        """
        records = await self.journal.in_flight()
        if not records:
            return
        log.info("Recovering %d command(s) from the last run", len(records))
        current = await self._read_each([r.id for r in records])
        interrupted: set[str] = set()
        pending: list[DeviceCommand] = []
        for record in records:
            command = current.get(record.id)
            try:
                if command is None:
                    await self._close_unknown(record)
                elif command.state in FINAL_STATES:
                    await self.journal.mark_acknowledged(
                        record.id, None if record.phase == "finished" else command.state
                    )
                elif record.phase == "finished":
                    self._remember(record.id)
                    await self._acknowledge(record.id, record.final_state or "Error", record.notes)
                else:
                    if record.phase == "running":
                        interrupted.add(record.id)
                    pending.append(command)
            except MewsAuthError:
                raise
            except Exception as exc:  # the journal failed on this one; the next start settles it
                log.error("Could not settle command %s from the last run", record.id, exc_info=exc)
        await self.offer(pending, resumed={r.id for r in records}, interrupted=interrupted)

    async def _read_each(self, command_ids: list[str]) -> dict[str, DeviceCommand]:
        """The commands Mews knows among ``command_ids``; if Mews refuses the batch (one bad id makes
        a 400), each is read on its own so that only the bad one is left out."""
        try:
            return {c.id: c for c in await self.mews.get_commands_by_ids(command_ids)}
        except MewsRequestError as exc:
            log.warning(
                "Mews refused to read %d command(s) at once (%s); reading them one by one",
                len(command_ids),
                exc.message,
            )
        found: dict[str, DeviceCommand] = {}
        for command_id in command_ids:
            try:
                found.update({c.id: c for c in await self.mews.get_commands_by_ids([command_id])})
            except MewsRequestError as exc:
                log.warning("Mews refused to read command %s: %s", command_id, exc.message)
        return found

    async def _close_unknown(self, record: CommandRecord) -> None:
        if record.phase == "finished":
            log.warning(
                "Command %s ended %s (%s) but Mews never received that outcome and no longer knows the "
                "command; closing it in the journal",
                record.id,
                record.final_state,
                record.notes or "no notes",
            )
        else:
            log.warning("Command %s is no longer known to Mews; closing it in the journal", record.id)
        await self.journal.mark_acknowledged(record.id, record.final_state or "Unknown")

    async def offer(
        self,
        commands: Iterable[DeviceCommand],
        *,
        resumed: set[str] = frozenset(),
        interrupted: set[str] = frozenset(),
    ) -> None:
        """Journal and queue commands, oldest first; ``resumed`` ids are in the journal from the last run.

        The sort is stable, so commands created in the same second keep the order given.
        """
        for command in sorted(commands, key=lambda c: c.created_utc):
            if not self._accepting:
                return
            if command.state == "Cancelled" or command.id in self._cancelled:
                self._cancel(command.id)
                continue
            if command.state not in ("Pending", "Received") and command.id not in resumed:
                continue  # final, or in Processing at another bridge
            slot = self._route(command.device)
            if slot is None and self.settings.unknown_devices == "leave":
                self._leave(command)
                continue
            device_name = slot.name if slot else command.device.name
            created = command.created_utc.isoformat()
            added = await self.journal.add(command.id, command.device.id, device_name, created)
            if not added and command.id not in resumed:
                await self._converge(command.id)
                continue  # a duplicate: already queued, running or done
            if not added and command.id in self._seen:
                continue  # recovery's copy of a command this run has taken already
            self._remember(command.id)
            if slot is None:
                await self._finish(
                    command.id, "Error", f"No device called {command.device.name!r} is set up on this bridge."
                )
            elif command.problem:
                await self._finish(
                    command.id, "Error", f"This command cannot be carried out: {command.problem}"
                )
            elif (
                age := datetime.now(UTC) - command.created_utc
            ).total_seconds() > self.settings.command_max_age_h * 3600:
                hours = age.total_seconds() / 3600
                await self._finish(
                    command.id,
                    "Error",
                    f"This command expired while the bridge was offline (created {hours:.0f} h ago). "
                    "Please issue it again.",
                )
            else:
                slot.queue.put_nowait(_MewsWork(command, interrupted=command.id in interrupted))

    async def _converge(self, command_id: str) -> None:
        """Mews shows a command active that the journal already holds. If the journal holds it as
        finished, Mews lost (or never got) the outcome: send the recorded outcome again, never run it
        again. Commands queued or running here, or left from the last run for recovery, are left."""
        if command_id in self._unacknowledged or command_id in self._acknowledging:
            return  # already being sent
        record = await self.journal.get(command_id)
        if record is None or record.phase not in ("finished", "acknowledged") or not record.final_state:
            return
        if record.final_state not in FINAL_STATES or record.final_state == "Cancelled":
            return
        log.warning(
            "Mews shows command %s as active, but it ended %s here; sending that outcome again",
            command_id,
            record.final_state,
        )
        await self._acknowledge(command_id, record.final_state, record.notes)

    def _route(self, device: Device) -> DeviceSlot | None:
        return (
            self._by_key.get(device.id)
            or self._by_key.get(device.name)
            or self._by_key.get(device.name.casefold())
        )

    def _leave(self, command: DeviceCommand) -> None:
        if command.device.id not in self._left_devices:
            self._left_devices.add(command.device.id)
            log.info(
                "Leaving commands for Mews device %r (%s) to another bridge: no [[devices]] entry serves it",
                command.device.name,
                command.device.type,
            )

    def _remember(self, command_id: str) -> None:
        self._seen[command_id] = None
        self._seen.move_to_end(command_id)
        while len(self._seen) > _REMEMBERED_IDS:
            self._seen.popitem(last=False)

    def _cancel(self, command_id: str) -> None:
        for slot in self.slots:
            item = slot.find_queued(command_id)
            if item is None and isinstance(slot.current, _MewsWork) and slot.current.command.id == command_id:
                item = slot.current
                if slot.run_task is not None:
                    slot.run_task.cancel()
            if item is not None:
                item.cancelled = True
                log.info("Command %s for %s was cancelled in Mews", command_id, slot.name)
                return
        self._cancelled[command_id] = None  # perhaps still being fetched: offer() drops it
        while len(self._cancelled) > _REMEMBERED_IDS:
            self._cancelled.popitem(last=False)

    async def _fetch_loop(self) -> None:
        while True:
            await self._fetch_wanted.wait()
            self._fetch_wanted.clear()
            ids = list(self._to_fetch)
            self._to_fetch.clear()
            arrival = {command_id: index for index, command_id in enumerate(ids)}
            try:
                commands = await self.mews.get_commands_by_ids(ids)
            except MewsAuthError as exc:
                self.on_fatal(exc)
                return
            except MewsError as exc:
                log.warning(
                    "Could not read %d new command(s) from Mews (%s); the next sweep takes them",
                    len(ids),
                    exc,
                )
                continue
            except Exception as exc:  # an answer nobody foresaw: the sweep tries these ids again
                log.error("Could not read %d new command(s) from Mews", len(ids), exc_info=exc)
                continue
            commands.sort(key=lambda c: arrival.get(c.id, 0))
            try:
                await self.offer(commands)
            except Exception as exc:  # the journal failed; the sweep offers them again
                log.error("Could not take %d new command(s): the journal failed", len(commands), exc_info=exc)

    # -- running -----------------------------------------------------------------------------------

    async def _work(self, slot: DeviceSlot) -> None:
        slot.worker = asyncio.current_task()
        while self._accepting:
            item = await slot.queue.get()
            slot.current = item
            try:
                if isinstance(item, _LocalWork):
                    # On behalf of a command that holds a permit: waiting for another could deadlock.
                    await self._run_local(slot, item)
                else:
                    async with self._parallel:
                        await self._run_command(slot, item)
            except Exception as exc:  # the journal failed before the driver ran (a full or dying SD card)
                log.error("%s could not start a command: the journal failed", slot.name, exc_info=exc)
                if isinstance(item, _MewsWork):
                    await self._report_journal_failure(item.command.id)
            finally:
                slot.current, slot.run_task = None, None

    async def _report_journal_failure(self, command_id: str) -> None:
        try:
            await self.mews.update_command(
                command_id, "Error", notes=JOURNAL_FAILED, retry_budget_s=self.ack_retry_s
            )
        except MewsError as exc:
            log.error("Could not tell Mews either that command %s failed: %s", command_id, exc)

    async def _ready_driver(self, slot: DeviceSlot) -> DeviceDriver[Any]:
        state = await slot.managed.wait_settled()
        if state is not InstanceState.LOADED:
            reason = slot.managed.reason or state.value.replace("_", " ")
            raise CommandFailed(f"{slot.name} is not available: {reason}.")
        return slot.managed.driver

    def _validate(self, slot: DeviceSlot, data: dict[str, Any] | None) -> BaseModel:
        try:
            return slot.driver_cls.data_model().model_validate({} if data is None else data)
        except ValidationError as exc:
            raise CommandRejected(
                f"The command's data is not valid: {describe_validation_error(exc, 'Data')}"
            ) from None

    async def _run_command(self, slot: DeviceSlot, item: _MewsWork) -> None:
        command = item.command
        if item.cancelled:
            await self.journal.mark_acknowledged(command.id, "Cancelled")
            return
        try:
            data = self._validate(slot, command.data)
            driver = await self._ready_driver(slot)
        except CommandError as exc:
            metrics.command_finished(slot.name, "Error")
            await self._finish(command.id, "Error", exc.notes)
            return
        if item.cancelled:  # while the device was still setting up
            await self.journal.mark_acknowledged(command.id, "Cancelled")
            return
        # A journal failure here propagates: nothing may run without a record that it started.
        await self.journal.mark_running(command.id, slot.name)
        started = metrics.command_started(slot.name, item.queued_at)
        state, notes = await self._drive(slot, item, driver, data)
        metrics.command_finished(slot.name, state, started)
        if state == "Cancelled":
            await self.journal.mark_finished(command.id, state, None)
            await self.journal.mark_acknowledged(command.id)
            return
        await self._finish(command.id, state, notes)

    async def _drive(
        self, slot: DeviceSlot, item: _MewsWork, driver: DeviceDriver[Any], data: BaseModel
    ) -> tuple[str, str | None]:
        """Run (or recover) the command on its driver; the final state and Notes, whatever happens."""
        command = item.command
        progress = _ProgressReporter(self, command.id, self.settings.progress_interval_s)
        marker = asyncio.create_task(self._mark_processing(command.id, progress))
        job = CommandJob(command, data, progress.report, interrupted=item.interrupted)
        run = driver.recover(job) if item.interrupted and not driver.replay_safe else driver.execute(job)
        slot.run_task = asyncio.create_task(run, name=f"{slot.name}: command {command.id}")
        try:
            async with asyncio.timeout(driver.command_timeout_s):
                return "Processed", await slot.run_task
        except CommandError as exc:
            return "Error", exc.notes
        except TimeoutError:
            return (
                "Error",
                f"{slot.name} did not finish within {driver.command_timeout_s:g} s. Please check it.",
            )
        except asyncio.CancelledError as exc:
            current = asyncio.current_task()
            if current is not None and current.cancelling():
                raise  # the bridge is stopping
            if item.cancelled:
                return "Cancelled", None
            return self._crashed(slot, command.id, exc)
        except Exception as exc:
            return self._crashed(slot, command.id, exc)
        finally:
            marker.cancel()
            await progress.settle()

    @staticmethod
    def _crashed(slot: DeviceSlot, command_id: str, exc: BaseException) -> tuple[str, str]:
        log.error(
            "%s (%s %s) crashed on command %s",
            slot.name,
            slot.driver_cls.name,
            slot.driver_cls.plugin_version,
            command_id,
            exc_info=exc,
        )
        return "Error", f"{slot.name} failed unexpectedly; the bridge log has the details."

    async def _mark_processing(self, command_id: str, progress: _ProgressReporter) -> None:
        await asyncio.sleep(self.processing_after_s)
        await progress.report(0.0, force=True)

    async def _run_local(self, slot: DeviceSlot, item: _LocalWork) -> None:
        if item.result.done():
            return  # the caller stopped waiting (cancelled, timed out) before the job's turn came
        try:
            data = self._validate(slot, item.data)
            driver = await self._ready_driver(slot)
            device = Device(id="local", name=slot.name, type=slot.driver_cls.device_type)
            command = DeviceCommand(
                id=f"local-{uuid.uuid4()}",
                state="Processing",
                created_utc=datetime.now(UTC),
                device=device,
                data=item.data,
            )
            job = CommandJob(command, data, _ignore_progress)
            slot.run_task = asyncio.create_task(driver.execute(job), name=f"{slot.name}: local job")
            async with asyncio.timeout(driver.command_timeout_s):
                notes = await slot.run_task
        except CommandError as exc:
            _settle(item.result, exc)
        except (Exception, asyncio.CancelledError) as exc:
            current = asyncio.current_task()
            if isinstance(exc, asyncio.CancelledError) and current is not None and current.cancelling():
                raise  # the bridge is stopping
            log.error("%s crashed on a local job", slot.name, exc_info=exc)
            _settle(
                item.result,
                CommandFailed(f"{slot.name} failed unexpectedly; the bridge log has the details."),
            )
        else:
            _settle(item.result, notes)

    async def run(self, device_name: str, data: dict[str, Any]) -> str | None:
        slot = next((s for s in self.slots if s.name == device_name), None)
        if slot is None:
            raise CommandFailed(f"No device called {device_name!r} is configured.")
        item = _LocalWork(data)
        slot.queue.put_nowait(item)
        return await item.result

    # -- acknowledging -----------------------------------------------------------------------------

    async def _finish(self, command_id: str, state: str, notes: str | None) -> None:
        if notes and len(notes) > _MAX_NOTES:
            notes = notes[: _MAX_NOTES - 1] + "…"
        try:
            await self.journal.mark_finished(command_id, state, notes)
        except Exception as exc:  # the outcome is real: Mews still hears it
            log.error("Could not record the result of %s: the journal failed", command_id, exc_info=exc)
        log.info("Command %s: %s%s", command_id, state, f" ({notes})" if notes else "")
        await self._acknowledge(command_id, state, notes)

    async def _acknowledge(self, command_id: str, state: str, notes: str | None) -> bool:
        self._acknowledging.add(command_id)
        try:
            # When Mews is known to be down, one try: the acknowledgement loop keeps at it, not the device.
            budget = 0 if self._unacknowledged else self.ack_retry_s
            await self._update_final(command_id, state, notes, budget)
        except MewsRequestError as exc:
            # Mews refused: the command is already final there (an earlier answer was lost, or staff
            # cancelled it) or gone.
            await self._explain_refusal(command_id, state, exc)
        except MewsAuthError as exc:
            self._unacknowledged[command_id] = (state, notes)
            self.on_fatal(exc)
            return False
        except MewsError as exc:
            log.warning("Mews is unavailable (%s); the result of %s is kept and sent later", exc, command_id)
            self._unacknowledged[command_id] = (state, notes)
            self._ack_wanted.set()
            return False
        finally:
            self._acknowledging.discard(command_id)
        self._unacknowledged.pop(command_id, None)
        try:
            await self.journal.mark_acknowledged(command_id)
        except Exception as exc:  # Mews has it; the next start reads the state back from Mews
            log.error("Could not record that Mews has the result of %s", command_id, exc_info=exc)
        return True

    async def _explain_refusal(self, command_id: str, state: str, exc: MewsRequestError) -> None:
        with contextlib.suppress(MewsError):
            found = await self.mews.get_commands_by_ids([command_id])
            if found and found[0].state == state:
                log.info("Mews already had the final state of %s (%s)", command_id, state)
                return
        log.warning("Mews did not take the final state of %s: %s", command_id, exc.message)

    async def _update_final(self, command_id: str, state: str, notes: str | None, budget: float) -> None:
        """``commands/update`` to a final state; on 409 (Mews says the command changed meanwhile) it
        is re-read and, while still not final, updated again."""
        for attempt in range(_CONFLICT_TRIES):
            try:
                await self.mews.update_command(command_id, state, notes=notes, retry_budget_s=budget)
                return
            except MewsRequestError as exc:
                if exc.status != 409 or attempt == _CONFLICT_TRIES - 1:
                    raise
                log.info("Mews answered 409 to the final state of %s; reading it again", command_id)
                found = await self.mews.get_commands_by_ids([command_id])
                if not found or found[0].state in FINAL_STATES:
                    log.info(
                        "Command %s is already final in Mews (%s)",
                        command_id,
                        found[0].state if found else "unknown",
                    )
                    return

    async def _ack_loop(self) -> None:
        while True:
            await self._ack_wanted.wait()
            await asyncio.sleep(self.ack_retry_s)
            try:
                for command_id, (state, notes) in list(self._unacknowledged.items()):
                    if not await self._acknowledge(command_id, state, notes):
                        break
            except Exception as exc:  # the journal failed; the results stay queued for the next round
                log.error("Could not record acknowledgements: the journal failed", exc_info=exc)
            if not self._unacknowledged:
                self._ack_wanted.clear()

    def status(self) -> dict[str, Any]:
        return {
            "devices": {
                slot.name: {"queued": slot.queue.qsize(), "busy": slot.current is not None}
                for slot in self.slots
            },
            "waiting_for_mews": len(self._unacknowledged),
        }


class _ProgressReporter:
    """Sends ``Processing`` with the latest ``Progress``, at most every ``interval_s``, one request at a time.

    A report that comes while an update is in flight or too soon is not lost: the newest value is sent
    as soon as it may be. Updates have no retries, so they never hold up the work.
    """

    def __init__(self, pipeline: CommandPipeline, command_id: str, interval_s: float) -> None:
        self._pipeline = pipeline
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
                    await self._pipeline.mews.call(
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

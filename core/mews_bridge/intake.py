"""Intake: Mews commands into the journal and onto their devices' queues.

Commands come from ``DeviceCommand`` events, catch-ups (``commands/getAllActive``), sweeps and, at
start, the journal's commands left from the last run. Event ids are coalesced: while one
``commands/getAllByIds`` is in flight, new ids wait and go in the next (up to 1000 a call). Every
command is written to the journal before anything is done with it (for an idle device, by its
worker: receipt and start in one write); the journal also makes duplicates (events, catch-ups,
sweeps) harmless. A command that cannot be carried out (no such device, a problem Mews reports, too
old, data the driver cannot read) ends in ``Error`` here and never reaches a device.
"""

from __future__ import annotations

import asyncio
import logging
from collections import OrderedDict
from collections.abc import Callable, Collection, Iterable
from datetime import UTC, datetime

from . import metrics
from .acknowledgement import Acknowledger
from .exceptions import CommandRejected
from .journal import CommandRecord, Journal, JournalError
from .mews.client import MewsClient
from .mews.errors import MewsAuthError, MewsError, MewsRequestError
from .mews.models import FINAL_STATES, DeviceCommand
from .settings import BridgeSettings
from .worker import DeviceWorker, MewsWork, WorkerPool

log = logging.getLogger(__name__)
_REMEMBERED_IDS = 10_000


class Intake:
    """Takes commands from Mews, journals them once each and queues them on their devices."""

    def __init__(
        self,
        mews: MewsClient,
        journal: Journal,
        settings: BridgeSettings,
        pool: WorkerPool,
        acks: Acknowledger,
        *,
        on_fatal: Callable[[BaseException], None],
    ) -> None:
        self.mews = mews
        self.journal = journal
        self.settings = settings
        self.pool = pool
        self.acks = acks
        self.on_fatal = on_fatal
        self.accepting = True
        self._seen: OrderedDict[str, None] = OrderedDict()
        self._cancelled: OrderedDict[str, None] = OrderedDict()
        self._to_fetch: dict[str, None] = {}  # insertion-ordered: the order events came in
        self._fetch_wanted = asyncio.Event()
        self._left_devices: set[str] = set()
        self._recovered = False  # until then a command may be the last run's: journal first, then queue

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
        held = self.pool.held()
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
            self._recovered = True
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
                    await self.acks.acknowledge(record.id, record.final_state or "Error", record.notes)
                else:
                    if record.phase == "running":
                        interrupted.add(record.id)
                    pending.append(command)
            except JournalError as exc:  # the next start settles this one
                log.error("Could not settle command %s from the last run", record.id, exc_info=exc)
        await self.offer(pending, resumed={r.id for r in records}, interrupted=interrupted)
        self._recovered = True

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
        resumed: Collection[str] = frozenset(),
        interrupted: Collection[str] = frozenset(),
    ) -> None:
        """Journal and queue commands, oldest first; ``resumed`` ids are in the journal from the last run.

        The sort is stable, so commands created in the same second keep the order given.
        """
        for command in sorted(commands, key=lambda c: c.created_utc):
            if not self.accepting:
                return
            if command.state == "Cancelled" or command.id in self._cancelled:
                self._cancel(command.id)
                continue
            if command.state not in ("Pending", "Received") and command.id not in resumed:
                continue  # final, or in Processing at another bridge
            worker = self.pool.route(command.device)
            if worker is None and self.settings.unknown_devices == "leave":
                self._leave(command)
                continue
            if worker is not None and command.id not in resumed and self._start_at_once(worker, command):
                continue
            device_name = worker.name if worker else command.device.name
            created = command.created_utc.isoformat()
            added = await self.journal.add(command.id, command.device.id, device_name, created)
            if not added and command.id not in resumed:
                await self.acks.converge(command.id)
                continue  # a duplicate: already queued, running or done
            if not added and command.id in self._seen:
                continue  # recovery's copy of a command this run has taken already
            self._remember(command.id)
            if worker is None:
                await self.acks.finish(
                    command.id, "Error", f"No device called {command.device.name!r} is set up on this bridge."
                )
            else:
                await self._admit(worker, command, interrupted=command.id in interrupted)

    def _start_at_once(self, worker: DeviceWorker, command: DeviceCommand) -> bool:
        """Hand a command that fits straight to its idle device, whose worker journals its receipt and
        start in one write; False if it has to take the usual way (journal, then queue)."""
        if not self._recovered or not worker.idle() or command.problem or self._too_old(command) is not None:
            return False
        try:
            data = worker.check(command.data)
        except CommandRejected:
            return False
        self._remember(command.id)
        worker.put(MewsWork(command, data, receipt_due=True))
        return True

    def _too_old(self, command: DeviceCommand) -> str | None:
        """Notes for a command that waited too long to be carried out now, or None."""
        age_h = (datetime.now(UTC) - command.created_utc).total_seconds() / 3600
        if age_h <= self.settings.command_max_age_h:
            return None
        return (
            f"This command expired while the bridge was offline (created {age_h:.0f} h ago). "
            "Please issue it again."
        )

    async def _admit(self, worker: DeviceWorker, command: DeviceCommand, *, interrupted: bool) -> None:
        """Queue a journaled command on its device, or end it in Error if it cannot be carried out."""
        if command.problem:
            await self.acks.finish(
                command.id, "Error", f"This command cannot be carried out: {command.problem}"
            )
            return
        if (expired := self._too_old(command)) is not None:
            await self.acks.finish(command.id, "Error", expired)
            return
        try:
            data = worker.check(command.data)
        except CommandRejected as exc:
            metrics.command_finished(worker.name, "Error")
            await self.acks.finish(command.id, "Error", exc.notes)
            return
        worker.put(MewsWork(command, data, interrupted=interrupted))

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
        if self.pool.cancel(command_id):
            return
        self._cancelled[command_id] = None  # perhaps still being fetched: offer() drops it
        while len(self._cancelled) > _REMEMBERED_IDS:
            self._cancelled.popitem(last=False)

    async def run(self) -> None:
        """Fetch the commands events announced, coalescing the ids that came in meanwhile."""
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
            except JournalError as exc:  # the sweep offers them again
                log.error("Could not take %d new command(s): the journal failed", len(commands), exc_info=exc)

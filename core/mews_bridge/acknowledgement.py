"""Acknowledgement: a command's final state and Notes, recorded and delivered to Mews.

``commands/update`` to a final state is retried within ``retry_s``; a 409 (the command changed in Mews
meanwhile) is read back and updated again while still not final. A final state Mews could not take
(an outage) is kept and re-sent every ``retry_s`` until it lands. A command Mews shows active that the
journal holds as finished is converged: its recorded outcome is sent again, never run again.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable

from .journal import Journal, JournalError
from .mews.client import MewsClient
from .mews.errors import MewsAuthError, MewsError, MewsRequestError
from .mews.models import FINAL_STATES

log = logging.getLogger(__name__)
_MAX_NOTES = 1000
_CONFLICT_TRIES = 3
"""commands/update answered 409: re-read and update again, this many times in all."""
JOURNAL_FAILED = (
    "The bridge could not write to its journal (its storage may be full or failing), so it did not "
    "carry out this command. Please check the bridge and issue the command again."
)


class Acknowledger:
    """Records final states and gets them to Mews, keeping those Mews could not take until it can."""

    def __init__(
        self,
        mews: MewsClient,
        journal: Journal,
        *,
        on_fatal: Callable[[BaseException], None],
        retry_s: float = 15.0,
    ) -> None:
        self.mews = mews
        self.journal = journal
        self.on_fatal = on_fatal
        self.retry_s = retry_s
        """Both the retry budget of one final state and the pause between rounds while Mews is down."""
        self._unacknowledged: dict[str, tuple[str, str | None]] = {}
        self._acknowledging: set[str] = set()
        self._wanted = asyncio.Event()

    @property
    def waiting(self) -> int:
        """How many final states wait for Mews to come back."""
        return len(self._unacknowledged)

    async def finish(self, command_id: str, state: str, notes: str | None) -> None:
        """Record the final state, then tell Mews."""
        if notes and len(notes) > _MAX_NOTES:
            notes = notes[: _MAX_NOTES - 1] + "…"
        try:
            await self.journal.mark_finished(command_id, state, notes)
        except JournalError as exc:  # the outcome is real: Mews still hears it
            log.error("Could not record the result of %s: the journal failed", command_id, exc_info=exc)
        log.info("Command %s: %s%s", command_id, state, f" ({notes})" if notes else "")
        await self.acknowledge(command_id, state, notes)

    async def acknowledge(self, command_id: str, state: str, notes: str | None) -> bool:
        """Send a recorded final state; False if it is kept for later (Mews down or refusing our token)."""
        self._acknowledging.add(command_id)
        try:
            # When Mews is known to be down, one try: the acknowledgement loop keeps at it, not the device.
            budget = 0 if self._unacknowledged else self.retry_s
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
            self._wanted.set()
            return False
        finally:
            self._acknowledging.discard(command_id)
        self._unacknowledged.pop(command_id, None)
        try:
            await self.journal.mark_acknowledged(command_id)
        except JournalError as exc:  # Mews has it; the next start reads the state back from Mews
            log.error("Could not record that Mews has the result of %s", command_id, exc_info=exc)
        return True

    async def converge(self, command_id: str) -> None:
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
        await self.acknowledge(command_id, record.final_state, record.notes)

    async def report_journal_failure(self, command_id: str) -> None:
        """The command was not carried out because its start could not be recorded: say so in Mews."""
        try:
            await self.mews.update_command(
                command_id, "Error", notes=JOURNAL_FAILED, retry_budget_s=self.retry_s
            )
        except MewsError as exc:
            log.error("Could not tell Mews either that command %s failed: %s", command_id, exc)

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

    async def run(self) -> None:
        """Re-send the kept final states, oldest first, every ``retry_s`` while there are any."""
        while True:
            await self._wanted.wait()
            await asyncio.sleep(self.retry_s)
            for command_id, (state, notes) in list(self._unacknowledged.items()):
                if not await self.acknowledge(command_id, state, notes):
                    break
            if not self._unacknowledged:
                self._wanted.clear()

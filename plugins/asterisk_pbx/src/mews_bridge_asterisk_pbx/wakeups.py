"""Wake-up calls: set from the room phone (``*55*HHMM``, ``*56`` cancels) or by staff (``mews-bridge pbx
wakeup``), kept in the service's store in property time, rung with an AMI ``Originate``.

* One wake-up per reservation (key ``wakeup:<reservation id>``), so it follows the guest on a room
  move; it is dropped at check-out.
* At the time, the room phone is called directly (``channel``, e.g. ``PJSIP/101``), not through the
  room dialplan, so do-not-disturb does not stop it; the ``[hotel-wakeup]`` context plays the prompt in
  the channel's language (the guest's, passed as ``CHANNEL(language)``).
* Unanswered: ``retries`` more tries ``retry_minutes`` apart; after the last, the reception extension
  is called and a Mews task (``tasks/add``) says "Wake-up call for room 101 at 07:00 not answered".
* A phone rung cannot be un-rung, so each try is written down under its own ActionID **before** the
  ``Originate`` goes out, and never sent again. Its outcome is the ``OriginateResponse`` with that
  ActionID; when that is lost (AMI reconnect, bridge restart) the bridge waits out the ring time and
  looks in AstDB: ``[hotel-wakeup]`` writes ``<family>/wakeup/<ActionID>`` when the guest answers.
  Only a try found unanswered there counts as unanswered (and is retried).
* The task is a create Mews cannot de-duplicate: after an unknown outcome (timeout, 5xx) it is not
  sent again, and the log says so; one that never reached Mews is sent at the next look.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from pydantic import BaseModel, ConfigDict, Field, field_validator

from mews_bridge import KeyValueStore, MewsClient, MewsError, MewsOutcomeUnknown, MewsUnavailable

from .actions import AmiClient
from .codec import Message
from .link import AmiError, Reply

PREFIX = "wakeup:"
ANSWERED_KEY = "wakeup"
"""AstDB ``<family>/wakeup/<ActionID>``: written by ``[hotel-wakeup]`` when the guest answers."""
_REASONS = {"0": "failed", "1": "hung up", "3": "no answer", "5": "busy", "8": "congestion"}
_TICK_S = 1.0


class WakeupRefused(ValueError):
    """A wake-up that cannot be set or cancelled; the text is for the caller and the log."""


class WakeupOptions(BaseModel):
    model_config = ConfigDict(extra="forbid")

    channel: str = Field(
        "PJSIP/{extension}", description="The room phone's channel; {extension} is its extension"
    )
    context: str = Field("hotel-wakeup", description="Dialplan context that plays the wake-up prompt")
    alert_context: str = Field("hotel-wakeup-alert", description="Context that tells reception")
    caller_id: str = Field('"Wake-up call"', description="Caller ID shown on the room phone")
    ring_s: float = Field(30, ge=1, le=120, description="How long one try rings")
    retries: int = Field(2, ge=0, le=5, description="Tries after the first when nobody answers")
    retry_minutes: float = Field(5, gt=0, le=60, description="Minutes between tries")
    reception: str | None = Field(None, description="Extension called when the last try is not answered")
    department_id: str | None = Field(None, description="Mews department of the task (default: none)")
    max_parallel: int = Field(20, ge=1, le=200, description="Wake-up calls ringing at once at most")
    max_late_minutes: float = Field(
        30,
        gt=0,
        description="A try this late (Asterisk or the bridge was down) is not rung; reception is told",
    )
    keep_days: float = Field(2, gt=0, description="Finished wake-ups stay listed this long")

    @field_validator("channel")
    @classmethod
    def _has_extension(cls, value: str) -> str:
        if "{extension}" not in value:
            raise ValueError("the channel must contain {extension}, e.g. PJSIP/{extension}")
        return value


@dataclass
class WakeUp:
    """One wake-up call, as kept in the store."""

    reservation_id: str
    room: str
    time: str
    """HH:MM, property time."""
    date: str
    """The property's date of the first try (YYYY-MM-DD)."""
    due: str
    """UTC, ISO 8601: when the next try is rung."""
    set_by: str
    id: str = field(default_factory=lambda: uuid.uuid4().hex[:12])
    state: str = "scheduled"
    """``scheduled``, ``calling`` (a try is out), ``answered``, ``unanswered`` (every try)."""
    tries: int = 0
    action_id: str | None = None
    sent: str | None = None
    outcomes: list[str] = field(default_factory=list)
    cancelled: bool = False
    reception: str | None = None
    """Reception alert: ``sending``, ``called``, ``failed``, ``unknown``; None if not (yet) needed."""
    task: str | None = None
    """Mews task: ``sending``, ``created``, ``refused``, ``unknown``, ``waiting`` (429); None if not needed."""
    finished: str | None = None

    @classmethod
    def from_store(cls, value: dict[str, Any]) -> WakeUp:
        return cls(**value)

    @property
    def due_utc(self) -> datetime:
        return datetime.fromisoformat(self.due)

    @property
    def final(self) -> bool:
        return self.state in ("answered", "unanswered")

    def describe(self) -> str:
        """``07:00 on 2026-12-07``."""
        return f"{self.time} on {self.date}"


def first_ring(at: time, now: datetime, zone: ZoneInfo) -> tuple[str, datetime]:
    """The next ``at`` in property time after ``now``: (the property's date, the moment in UTC)."""
    local_now = now.astimezone(zone)
    moment = datetime.combine(local_now.date(), at, tzinfo=zone)
    if moment <= local_now:
        moment = datetime.combine(local_now.date() + timedelta(days=1), at, tzinfo=zone)
    return moment.date().isoformat(), moment.astimezone(UTC)


@dataclass(frozen=True, slots=True)
class Guest:
    """Where a reservation's guest is now, as the wake-up call needs it."""

    room: str
    extension: str
    language: str | None


class WakeupCalls:
    """Keeps the wake-ups and rings them. ``where(reservation_id)`` says where the guest is now (None:
    not in house); ``clock`` is the time (tests move it)."""

    def __init__(
        self,
        options: WakeupOptions,
        store: KeyValueStore,
        mews: MewsClient,
        logger: logging.Logger,
        *,
        family: str,
        zone: ZoneInfo,
        where: Callable[[str], Guest | None],
    ) -> None:
        self.options = options
        self.clock: Callable[[], datetime] = lambda: datetime.now(UTC)
        self._store = store
        self._mews = mews
        self._log = logger
        self._family = family
        self._zone = zone
        self._where = where
        self._ami: AmiClient | None = None
        self._records: dict[str, WakeUp] = {}
        self._busy: set[str] = set()
        self._tasks: set[asyncio.Task[None]] = set()
        self._wake = asyncio.Event()

    def attach(self, ami: AmiClient) -> None:
        self._ami = ami

    def poke(self) -> None:
        """Look at the wake-ups now (after the clock moved, or a change)."""
        self._wake.set()

    @property
    def records(self) -> list[WakeUp]:
        return list(self._records.values())

    async def load(self) -> None:
        for key, value in (await self._store.items(PREFIX)).items():
            try:
                record = WakeUp.from_store(value)
            except (TypeError, ValueError):
                self._log.error("Ignoring the wake-up call kept under %s: it cannot be read", key)
                continue
            # Cut off by a restart while being sent: the outcome is unknown, never send it again.
            if record.reception == "sending":
                record.reception = "unknown"
            if record.task == "sending":
                record.task = "unknown"
            self._records[record.reservation_id] = record
            await self._save(record)

    # Setting and cancelling

    async def set(self, reservation_id: str, room: str, at: time, set_by: str) -> str:
        """Set (or replace) the reservation's wake-up; returns words for the caller."""
        current = self._records.get(reservation_id)
        if current is not None and current.state == "calling":
            raise WakeupRefused("a wake-up call is ringing now")
        date, due = first_ring(at, self.clock(), self._zone)
        record = WakeUp(reservation_id, room, at.strftime("%H:%M"), date, due.isoformat(), set_by)
        self._records[reservation_id] = record
        await self._save(record)
        self._log.info("Wake-up call for room %s at %s (set by %s)", room, record.describe(), set_by)
        self.poke()
        return f"wake-up call at {record.describe()}"

    async def cancel(self, reservation_id: str, room: str) -> str:
        record = self._records.get(reservation_id)
        if record is None or record.final:
            raise WakeupRefused(f"no wake-up call is set for room {room}")
        if record.state == "calling":
            record.cancelled = True  # the try ringing now cannot be stopped; no more follow
            await self._save(record)
        else:
            await self._forget(record)
        self._log.info("Wake-up call for room %s at %s cancelled", room, record.describe())
        return f"wake-up call at {record.time} cancelled"

    async def sync(self, in_house: dict[str, str]) -> None:
        """``in_house``: reservation id → room name now. Wake-ups of departed guests are dropped."""
        for record in self.records:
            room = in_house.get(record.reservation_id)
            if room is None and not record.final and record.state != "calling":
                self._log.info(
                    "Wake-up call for room %s at %s removed: the guest left", record.room, record.time
                )
                await self._forget(record)
            elif room is not None and room != record.room:
                record.room = room
                await self._save(record)

    # Running

    async def run(self) -> None:
        try:
            while True:
                self._wake.clear()
                now = self.clock()
                for record in self.records:
                    if record.reservation_id not in self._busy:
                        step = self._next_step(record, now)
                        if step is not None:
                            self._start(record, step)
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(_TICK_S):
                        await self._wake.wait()
        finally:
            for task in self._tasks:
                task.cancel()
            await asyncio.gather(*self._tasks, return_exceptions=True)

    def _next_step(self, record: WakeUp, now: datetime) -> Callable[[WakeUp], Any] | None:
        if record.state == "scheduled" and record.due_utc <= now:
            if now - record.due_utc > timedelta(minutes=self.options.max_late_minutes):
                return self._missed
            # Tries being started count too: they are not "calling" yet.
            ringing = sum(1 for r in self._records.values() if r.state == "calling") + len(self._busy)
            return self._ring if ringing < self.options.max_parallel else None
        if record.state == "calling" and record.sent is not None:
            grace = timedelta(seconds=self.options.ring_s + max(5.0, self.options.ring_s / 2))
            return self._look_up if datetime.fromisoformat(record.sent) + grace <= now else None
        if record.state == "unanswered" and (record.task in (None, "waiting") or self._reception_due(record)):
            return self._alert
        if record.final and record.finished is not None:
            old = datetime.fromisoformat(record.finished) + timedelta(days=self.options.keep_days) <= now
            return self._forget if old else None
        return None

    def _start(self, record: WakeUp, step: Callable[[WakeUp], Any]) -> None:
        self._busy.add(record.reservation_id)

        async def run() -> None:
            try:
                await step(record)
            except Exception:
                self._log.exception("Wake-up call for room %s failed", record.room)
            finally:
                self._busy.discard(record.reservation_id)

        task = asyncio.get_running_loop().create_task(run(), name=f"wake-up {record.room}")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _ring(self, record: WakeUp) -> None:
        guest = self._where(record.reservation_id)
        if guest is None:
            self._log.info("Wake-up call for room %s at %s dropped: the guest left", record.room, record.time)
            await self._forget(record)
            return
        ami = self._ami
        if ami is None or not ami.connected:
            return  # rung once Asterisk is back
        record.room = guest.room
        record.tries += 1
        record.action_id = f"wakeup-{record.id}-{record.tries}"
        record.sent = self.clock().isoformat()
        record.state = "calling"
        await self._save(record)  # before it goes out: it is never sent twice
        variables = [f"WAKEUP_ID={record.action_id}", f"WAKEUP_TIME={record.time}"]
        if guest.language:
            variables.append(f"CHANNEL(language)={guest.language}")
        self._log.info("Wake-up call for room %s at %s: try %d", record.room, record.time, record.tries)
        try:
            reply = await self._originate(
                ami,
                guest.extension,
                context=self.options.context,
                caller_id=self.options.caller_id,
                variables=variables,
                action_id=record.action_id,
            )
        except AmiError as exc:
            self._log.warning(
                "Wake-up call for room %s: the answer to the Originate was lost (%s); looking it up after the "
                "ring time instead of calling again",
                record.room,
                exc,
            )
            return
        if not reply.ok:
            await self._not_answered(record, f"failed: {reply.message}")

    async def _missed(self, record: WakeUp) -> None:
        """Far too late to wake anyone (the PBX or the bridge was down): no more tries, tell reception."""
        self._log.error(
            "Wake-up call for room %s at %s could not be made in time (Asterisk or the bridge was down)",
            record.room,
            record.time,
        )
        record.tries = max(record.tries, self.options.retries + 1)
        await self._not_answered(record, "not made: Asterisk or the bridge was down")

    async def on_originate_response(self, event: Message) -> None:
        action_id = event.action_id
        record = next(
            (r for r in self._records.values() if r.action_id == action_id and r.state == "calling"), None
        )
        if record is None:
            return
        if event.get("Response") == "Success":
            await self._answered(record)
        else:
            reason = event.get("Reason") or ""
            await self._not_answered(record, _REASONS.get(reason, f"not answered (reason {reason})"))

    async def _look_up(self, record: WakeUp) -> None:
        ami = self._ami
        if ami is None or not ami.connected or record.action_id is None:
            return
        try:
            answered = await ami.db_get(f"{self._family}/{ANSWERED_KEY}", record.action_id)
        except AmiError as exc:
            self._log.warning("Cannot look up the wake-up call of room %s yet (%s)", record.room, exc)
            return
        if record.state != "calling":
            return  # the OriginateResponse came in meanwhile
        if answered is not None:
            await self._answered(record)
        else:
            await self._not_answered(record, "no answer (looked up in AstDB)")

    async def _answered(self, record: WakeUp) -> None:
        record.outcomes.append("answered")
        record.state = "answered"
        record.finished = self.clock().isoformat()
        await self._save(record)
        self._log.info(
            "Wake-up call for room %s at %s answered (try %d)", record.room, record.time, record.tries
        )
        ami = self._ami
        if ami is not None and record.action_id is not None:
            with contextlib.suppress(AmiError):
                await ami.db_del(f"{self._family}/{ANSWERED_KEY}", record.action_id)

    async def _not_answered(self, record: WakeUp, outcome: str) -> None:
        record.outcomes.append(outcome)
        if record.cancelled:
            self._log.info(
                "Wake-up call for room %s: %s; it was cancelled, no more tries", record.room, outcome
            )
            await self._forget(record)
            return
        if record.tries <= self.options.retries:
            record.state = "scheduled"
            record.due = (self.clock() + timedelta(minutes=self.options.retry_minutes)).isoformat()
            self._log.info(
                "Wake-up call for room %s at %s: %s; trying again in %g min",
                record.room,
                record.time,
                outcome,
                self.options.retry_minutes,
            )
        else:
            record.state = "unanswered"
            record.finished = self.clock().isoformat()
            self._log.warning(
                "Wake-up call for room %s at %s not answered after %d tries (%s)",
                record.room,
                record.time,
                record.tries,
                ", ".join(record.outcomes),
            )
        await self._save(record)
        self.poke()

    # After the last try

    def _reception_due(self, record: WakeUp) -> bool:
        return self.options.reception is not None and record.reception is None

    async def _alert(self, record: WakeUp) -> None:
        if self._reception_due(record):
            await self._call_reception(record)
        if record.task in (None, "waiting"):
            await self._add_task(record)

    async def _call_reception(self, record: WakeUp) -> None:
        ami = self._ami
        reception = self.options.reception
        if ami is None or not ami.connected or reception is None:
            return
        record.reception = "sending"
        await self._save(record)
        try:
            reply = await self._originate(
                ami,
                reception,
                context=self.options.alert_context,
                caller_id=f'"Wake-up {record.room}"',
                variables=[f"WAKEUP_ROOM={record.room}", f"WAKEUP_TIME={record.time}"],
                action_id=f"wakeup-{record.id}-reception",
            )
            record.reception = "called" if reply.ok else "failed"
        except AmiError as exc:
            record.reception = "unknown"
            self._log.warning("Calling reception about room %s: the answer was lost (%s)", record.room, exc)
        await self._save(record)

    async def _originate(
        self,
        ami: AmiClient,
        extension: str,
        *,
        context: str,
        caller_id: str,
        variables: list[str],
        action_id: str,
    ) -> Reply:
        """An async Originate straight to the phone (no room dialplan, so no do-not-disturb); its
        outcome comes later as an OriginateResponse with ``action_id``."""
        return await ami.action(
            "Originate",
            {
                "Channel": self.options.channel.replace("{extension}", extension),
                "Context": context,
                "Exten": "s",
                "Priority": "1",
                "CallerID": caller_id,
                "Timeout": str(int(self.options.ring_s * 1000)),
                "Async": "true",
                "Variable": variables,
            },
            check=False,
            action_id=action_id,
        )

    async def _add_task(self, record: WakeUp) -> None:
        name = f"Wake-up call for room {record.room} at {record.time} not answered"
        reception = {"called": "Reception was called.", None: ""}.get(
            record.reception, "Reception could not be called."
        )
        record.task = "sending"
        await self._save(record)  # before it goes out: a task is never created twice
        try:
            await self._mews.add_task(
                name,
                f"{record.tries} tries ({', '.join(record.outcomes)}) on {record.date}. {reception}".strip(),
                deadline=self.clock() + timedelta(minutes=15),
                service_order_id=record.reservation_id,
                department_id=self.options.department_id,
            )
        except MewsOutcomeUnknown as exc:
            record.task = "unknown"
            self._log.error(
                "Mews did not answer the task %r (%s); it may or may not exist and is not sent again: "
                "check the tasks in Mews",
                name,
                exc,
            )
        except MewsUnavailable:
            record.task = "waiting"  # it never reached Mews (or Mews refused it unread): safe to send later
        except MewsError as exc:
            record.task = "refused"
            self._log.error("Mews refused the task %r: %s", name, exc)
        else:
            record.task = "created"
            self._log.info("Mews task added: %s", name)
        await self._save(record)

    # Store

    async def _save(self, record: WakeUp) -> None:
        if self._records.get(record.reservation_id) is record:  # not replaced or cancelled meanwhile
            await self._store.put(PREFIX + record.reservation_id, asdict(record))

    async def _forget(self, record: WakeUp) -> None:
        if self._records.get(record.reservation_id) is record:
            del self._records[record.reservation_id]
            await self._store.delete(PREFIX + record.reservation_id)

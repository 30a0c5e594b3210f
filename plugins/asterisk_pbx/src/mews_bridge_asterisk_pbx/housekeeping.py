"""Room status from the room phone: ``*52*PIN*STATUS`` becomes the room's housekeeping state in Mews.

The PIN says who dialled (so a guest cannot mark a room inspected), the status digit which state;
both come from the options::

    [services.options.housekeeping]
    statuses = { "1" = "Clean", "2" = "Dirty", "3" = "Inspected", "4" = "OutOfService", "5" = "OutOfOrder" }
    [services.options.housekeeping.staff]
    "Maria Novak" = "4711"
    "Eva Kral" = { pin = "9000", states = ["Clean", "Dirty", "Inspected"] }

Mews is told with ``resources/update`` (``ResourceUpdates[].State.Value``). Setting a state is
idempotent, so an update Mews did not answer is kept and sent again (the newest per room wins) until
it lands or is an hour old.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from mews_bridge import KeyValueStore, MewsClient, MewsError, MewsUnavailable

ResourceState = Literal["Dirty", "Clean", "Inspected", "OutOfService", "OutOfOrder"]
DEFAULT_STATUSES: dict[str, ResourceState] = {
    "1": "Clean",
    "2": "Dirty",
    "3": "Inspected",
    "4": "OutOfService",
    "5": "OutOfOrder",
}
# Mews keeps a reason with these two; the others need none.
_WITH_REASON = frozenset({"OutOfService", "OutOfOrder"})
PREFIX = "roomstatus:"
_KEEP_TRYING = timedelta(hours=1)
_INLINE_BUDGET_S = 5.0


class StaffMember(BaseModel):
    model_config = ConfigDict(extra="forbid")

    pin: str = Field(pattern=r"^[0-9]{3,12}$")
    states: list[ResourceState] | None = Field(None, description="States this person may set (default: all)")


class HousekeepingOptions(BaseModel):
    model_config = ConfigDict(extra="forbid")

    statuses: dict[str, ResourceState] = Field(
        default_factory=lambda: dict(DEFAULT_STATUSES), description="Status digit → Mews room state"
    )
    staff: dict[str, str | StaffMember] = Field(
        default_factory=dict, description="Staff name → PIN (or a table with pin and states)"
    )

    @field_validator("statuses")
    @classmethod
    def _digits(cls, value: dict[str, ResourceState]) -> dict[str, ResourceState]:
        wrong = [k for k in value if not (k.isdigit() and len(k) <= 2)]
        if wrong:
            raise ValueError(f"status codes are one or two digits, not {', '.join(map(repr, wrong))}")
        return value

    @field_validator("staff")
    @classmethod
    def _members(cls, value: dict[str, str | StaffMember]) -> dict[str, str | StaffMember]:
        return {name: StaffMember(pin=m) if isinstance(m, str) else m for name, m in value.items()}

    @model_validator(mode="after")
    def _unique_pins(self) -> HousekeepingOptions:
        seen: dict[str, str] = {}
        for name, member in self.members.items():
            if member.pin in seen:
                raise ValueError(f"staff {seen[member.pin]!r} and {name!r} have the same PIN")
            seen[member.pin] = name
        return self

    @property
    def members(self) -> dict[str, StaffMember]:
        return {name: m for name, m in self.staff.items() if isinstance(m, StaffMember)}


class RoomStatusRefused(ValueError):
    """Wrong PIN, unknown status, or a state this person may not set; the text is safe to log."""


class UnknownPin(RoomStatusRefused):
    """No staff member has this PIN."""


@dataclass(frozen=True, slots=True)
class StatusChange:
    resource_id: str
    room: str
    state: ResourceState
    staff: str

    def parameters(self) -> dict[str, Any]:
        """The ``resources/update`` parameters."""
        update: dict[str, Any] = {"ResourceId": self.resource_id, "State": {"Value": self.state}}
        if self.state in _WITH_REASON:
            update["StateReason"] = {"Value": f"Reported by {self.staff} from the room phone"}
        return {"ResourceUpdates": [update]}


def resolve(options: HousekeepingOptions, pin: str, status: str) -> tuple[str, ResourceState]:
    """Who dialled and which state they asked for; :class:`RoomStatusRefused` if not allowed."""
    name = next((n for n, m in options.members.items() if m.pin == pin), None)
    if name is None:
        raise UnknownPin("unknown PIN")
    state = options.statuses.get(status) or options.statuses.get(status.lstrip("0"))
    if state is None:
        raise RoomStatusRefused(f"unknown status {status} (known: {', '.join(sorted(options.statuses))})")
    allowed = options.members[name].states
    if allowed is not None and state not in allowed:
        raise RoomStatusRefused(f"{name} may not set rooms {state}")
    return name, state


class PinGuard:
    """Stops guessing: after ``attempts`` wrong PINs from one extension within ``window``, that
    extension's room status codes are refused until the window has passed without new ones."""

    def __init__(self, attempts: int = 5, window: timedelta = timedelta(minutes=15)) -> None:
        self.attempts = attempts
        self.window = window
        self._wrong: dict[str, list[datetime]] = {}

    def check(self, extension: str, now: datetime) -> None:
        recent = [t for t in self._wrong.get(extension, []) if now - t < self.window]
        self._wrong[extension] = recent
        if len(recent) >= self.attempts:
            raise RoomStatusRefused(f"{len(recent)} wrong PINs in a row from this phone; try again later")

    def wrong(self, extension: str, now: datetime) -> None:
        self._wrong.setdefault(extension, []).append(now)

    def right(self, extension: str) -> None:
        self._wrong.pop(extension, None)


class RoomStatusSender:
    """Sends status changes to Mews; those Mews did not answer are kept in ``store`` and re-sent."""

    def __init__(self, mews: MewsClient, store: KeyValueStore, logger: logging.Logger) -> None:
        self._mews = mews
        self._store = store
        self._log = logger
        self._retry = asyncio.Event()

    async def send(self, change: StatusChange) -> bool:
        """Tell Mews now; True if it has the change or will get it later, False if Mews refused it."""
        key = PREFIX + change.resource_id
        try:
            sent = await self._tell_mews(change)
        except MewsUnavailable as exc:
            self._log.warning(
                "Mews did not take room %s %s yet (%s); sending it again until it does",
                change.room,
                change.state,
                exc,
            )
            await self._store.put(key, _pending(change))
            self._retry.set()
            return True
        await self._store.delete(key)  # an older change still waiting is overtaken
        return sent

    def retry_now(self) -> None:
        self._retry.set()

    async def run(self, interval_s: float = 30.0) -> None:
        """Re-send kept changes every ``interval_s`` and whenever :meth:`retry_now` is called."""
        while True:
            self._retry.clear()
            await self._resend()
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(interval_s):
                    await self._retry.wait()

    async def _resend(self) -> None:
        now = datetime.now(UTC)
        for key, value in (await self._store.items(PREFIX)).items():
            change = StatusChange(value["resource_id"], value["room"], value["state"], value["staff"])
            if now - datetime.fromisoformat(value["since"]) > _KEEP_TRYING:
                self._log.error(
                    "Gave up telling Mews that room %s is %s (set by %s over an hour ago); set it in Mews",
                    change.room,
                    change.state,
                    change.staff,
                )
            else:
                try:
                    await self._tell_mews(change)
                except MewsUnavailable:
                    return  # still unreachable: the rest waits for the next round
            if await self._store.get(key) == value:  # not overtaken by a newer change meanwhile
                await self._store.delete(key)

    async def _tell_mews(self, change: StatusChange) -> bool:
        """``resources/update``; False if Mews refused it. Raises :class:`MewsUnavailable`."""
        try:
            await self._mews.call("resources/update", change.parameters(), retry_budget_s=_INLINE_BUDGET_S)
        except MewsUnavailable:
            raise
        except MewsError as exc:
            self._log.error(
                "Mews refused room %s %s (by %s): %s", change.room, change.state, change.staff, exc
            )
            return False
        self._log.info(
            "Room %s is %s in Mews (set by %s from the room phone)", change.room, change.state, change.staff
        )
        return True


def _pending(change: StatusChange) -> dict[str, Any]:
    return {
        "resource_id": change.resource_id,
        "room": change.room,
        "state": change.state,
        "staff": change.staff,
        "since": datetime.now(UTC).isoformat(),
    }

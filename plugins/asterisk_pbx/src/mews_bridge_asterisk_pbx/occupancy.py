"""Who is in which room, now and in the last hours.

Mews keeps only a reservation's current room, but a call is charged to the reservation that held the
room when the call *started*: a guest who moves or checks out during a call, or whose CDR arrives a
moment after check-out, is still charged correctly. So each stay is kept as an interval
``[since, until)`` per room, and closed stays are forgotten only after ``history``.

Pure bookkeeping: the service feeds it Mews reservations and asks it questions.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Set
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta

from mews_bridge import Reservation, Resource

from .rooms import AstDbWrite, Guest, RoomMap, check_in, resync

IN_HOUSE = "Started"


@dataclass(frozen=True, slots=True)
class Stay:
    """A reservation holding a room from ``since`` until ``until`` (None: still there)."""

    reservation_id: str
    account_id: str
    resource_id: str
    since: datetime
    until: datetime | None = None
    guest: Guest | None = None

    def covers(self, moment: datetime, slack: timedelta = timedelta(0)) -> bool:
        return self.since - slack <= moment and (self.until is None or moment < self.until)


def _moment(value: object, fallback: datetime) -> datetime:
    """A Mews timestamp (datetime or ISO text) no later than ``fallback``; ``fallback`` if absent."""
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value)
        except ValueError:
            return fallback
    if not isinstance(value, datetime):
        return fallback
    moment = value if value.tzinfo else value.replace(tzinfo=UTC)
    return min(moment, fallback)


def changed_at(reservation: Reservation, now: datetime) -> datetime:
    """When Mews last changed the reservation (a room move has no time of its own)."""
    return _moment((reservation.model_extra or {}).get("UpdatedUtc"), now)


class Occupancy:
    def __init__(
        self, history: timedelta = timedelta(days=1), slack: timedelta = timedelta(minutes=2)
    ) -> None:
        self.history = history
        # The PBX's clock may run behind Mews': a call right after check-in must still find the guest.
        self.slack = slack
        self._names: dict[str, str] = {}
        self._ids: dict[str, str] = {}
        self._open: dict[str, Stay] = {}
        """Stays in house, by reservation id (a hotel's worth of look-ups per sync stay cheap)."""
        self._closed: list[Stay] = []

    # Rooms

    def set_resources(self, resources: Iterable[Resource]) -> None:
        """The property's rooms (Mews resources), replacing what was known."""
        self._names = {r.id: r.name for r in resources if r.is_active}
        self._ids = {name: rid for rid, name in self._names.items()}

    def update_resource(self, resource: Resource) -> None:
        old = self._names.pop(resource.id, None)
        if old is not None:
            self._ids.pop(old, None)
        if resource.is_active:
            self._names[resource.id] = resource.name
            self._ids[resource.name] = resource.id

    @property
    def room_names(self) -> list[str]:
        return sorted(self._ids)

    def name_of(self, resource_id: str) -> str | None:
        return self._names.get(resource_id)

    def id_of(self, name: str) -> str | None:
        return self._ids.get(name)

    # Questions

    def holder(self, resource_id: str, at: datetime | None = None) -> Stay | None:
        """The stay holding the room at ``at`` (default: now); with a shared room, the first to arrive."""
        stays = self.in_house() if at is None else [*self._closed, *self._open.values()]
        found = [
            s for s in stays if s.resource_id == resource_id and (at is None or s.covers(at, self.slack))
        ]
        return min(found, key=lambda s: s.since) if found else None

    def holders(self) -> dict[str, Stay | None]:
        """Every room's current holder (None: vacant)."""
        first: dict[str, Stay] = {}
        for stay in self._open.values():
            known = first.get(stay.resource_id)
            if known is None or stay.since < known.since:
                first[stay.resource_id] = stay
        return {rid: first.get(rid) for rid in self._names}

    def in_house(self) -> list[Stay]:
        return list(self._open.values())

    # Changes

    def apply(self, reservation: Reservation, guest: Guest | None, now: datetime) -> set[str]:
        """Take in a reservation as Mews has it now; returns the rooms whose stays changed."""
        current = self._open.get(reservation.id)
        room = reservation.assigned_resource_id
        staying = reservation.state == IN_HOUSE and room is not None
        changed: set[str] = set()
        if current is not None and (not staying or current.resource_id != room):
            ended = reservation.actual_end_utc if not staying else None
            self._close(current, _moment(ended, changed_at(reservation, now)))
            changed.add(current.resource_id)
            current = None
        if staying and room is not None:
            if current is None:
                since = reservation.actual_start_utc if not changed else changed_at(reservation, now)
                self._open[reservation.id] = Stay(
                    reservation.id, reservation.account_id, room, _moment(since, now), None, guest
                )
                changed.add(room)
            elif current.guest != guest or current.account_id != reservation.account_id:
                self._open[reservation.id] = replace(current, guest=guest, account_id=reservation.account_id)
                changed.add(room)
        self._forget_before(now - self.history)
        return changed

    def rename(self, guests: Mapping[str, Guest | None]) -> set[str]:
        """New details of guests (by account id) for the stays in house; returns the rooms changed."""
        changed: set[str] = set()
        for stay in self.in_house():
            if stay.account_id in guests and guests[stay.account_id] != stay.guest:
                self._open[stay.reservation_id] = replace(stay, guest=guests[stay.account_id])
                changed.add(stay.resource_id)
        return changed

    def reload(
        self, reservations: Iterable[Reservation], guests: Mapping[str, Guest | None], now: datetime
    ) -> set[str]:
        """Take in every in-house reservation at once (``guests`` by account id); stays of
        reservations no longer among them end now. Returns the rooms whose stays changed."""
        listed = {r.id: r for r in reservations}
        changed: set[str] = set()
        for stay in self.in_house():
            if stay.reservation_id not in listed:
                self._close(stay, now)
                changed.add(stay.resource_id)
        for reservation in listed.values():
            changed |= self.apply(reservation, guests.get(reservation.account_id), now)
        return changed

    def _close(self, stay: Stay, at: datetime) -> None:
        del self._open[stay.reservation_id]
        self._closed.append(replace(stay, until=max(at, stay.since)))

    def _forget_before(self, cutoff: datetime) -> None:
        if self._closed and min(s.until or cutoff for s in self._closed) < cutoff:
            self._closed = [s for s in self._closed if s.until is not None and s.until >= cutoff]


@dataclass(frozen=True, slots=True)
class PhonePlan:
    """What room phones should know: extension → guest (None: vacant). ``arriving`` rooms have a new
    guest, who also gets the last one's do-not-disturb cleared."""

    staying: dict[str, Guest | None]
    arriving: dict[str, Guest]

    @property
    def extensions(self) -> list[str]:
        return [*self.staying, *self.arriving]

    def writes(self, current: Mapping[str, str], family: str) -> list[AstDbWrite]:
        """The AstDB writes that differ from ``current`` (``DBGetTree`` paths → values)."""
        return resync(current, self.staying, family) + [
            write
            for extension, guest in self.arriving.items()
            for write in check_in(extension, guest, family)
            if current.get(write.path) != write.value
        ]


def phone_plan(
    occupancy: Occupancy, rooms: RoomMap, only: Set[str] | None = None, arrivals: Set[str] = frozenset()
) -> PhonePlan:
    """The plan for the rooms (resource ids) in ``only``, or every room; rooms without a phone are left out."""
    holders = occupancy.holders()
    staying: dict[str, Guest | None] = {}
    arriving: dict[str, Guest] = {}
    for rid in holders if only is None else only:
        name = occupancy.name_of(rid)
        extension = rooms.extension_for(name) if name else None
        if extension is None:
            continue
        stay = holders.get(rid)
        guest = (stay.guest or Guest("")) if stay else None
        if guest is not None and rid in arrivals:
            arriving[extension] = guest
        else:
            staying[extension] = guest
    return PhonePlan(staying, arriving)

"""From a Mews ``KeyCutter`` command to encoder requests, and the journal of who holds each room's key.

**New or copy.** A new key (``CN``) voids every earlier guest card of its rooms; a copy (``CC``)
leaves them working. Mews does not say which one it wants, so the rule is:

* the first key a command cuts is new, unless this reservation's new key is still the current one for
  every room of the command (then it is a copy, so a guest asking for another key does not lock out
  the first one);
* every further key of the same command is a copy;
* ``KeyCutterData`` may force it: ``{"mode": "new"}`` or ``{"mode": "copy"}``.

The journal keeps, per room, the reservation whose new key is current and until when it is valid.
It is keyed by room, not by reservation, because a new key for another reservation voids this one's
cards for that room, and the store then stays as small as the hotel.
"""

from __future__ import annotations

import asyncio
import json
import logging
import unicodedata
from dataclasses import dataclass, replace
from datetime import UTC, datetime, tzinfo
from typing import TYPE_CHECKING, Any

from mews_bridge import CommandRejected, JournalError, KeyCutterData

from .codec import FieldError, encode_field
from .dialects import Dialect, KeyMode, KeyRequest

if TYPE_CHECKING:
    from mews_bridge import KeyValueStore

    from .options import KeycutterOptions

LOGGER = logging.getLogger(__name__)

EJECT_MODES = ("E", "R", "T")


@dataclass(frozen=True)
class Overrides:
    """What a command's ``KeyCutterData`` JSON may set (keys are case-insensitive; others are ignored,
    since Mews' own Connector keeps settings such as ``Type`` there)."""

    mode: KeyMode | None = None
    encoder: str | None = None
    eject: str | None = None
    granted: str = ""
    denied: str = ""


def parse_overrides(raw: str | None) -> Overrides:
    if not raw or not raw.strip():
        return Overrides()
    try:
        loaded = json.loads(raw)
    except json.JSONDecodeError:
        raise CommandRejected(f"KeyCutterData is not valid JSON: {raw!r}") from None
    if not isinstance(loaded, dict):
        raise CommandRejected(f"KeyCutterData must be a JSON object, not {raw!r}")
    values = {str(key).lower(): value for key, value in loaded.items()}
    mode = str(values.get("mode", "auto")).lower()
    if mode not in ("auto", "new", "copy"):
        raise CommandRejected(f'KeyCutterData "mode" must be "new", "copy" or "auto", not {mode!r}')
    eject = values.get("eject")
    if eject is not None and eject not in EJECT_MODES:
        raise CommandRejected(f'KeyCutterData "eject" must be one of {", ".join(EJECT_MODES)}, not {eject!r}')
    texts = {
        name: str(values[name]) for name in ("encoder", "granted", "denied") if values.get(name) is not None
    }
    for name, text in texts.items():
        _check_field(f'KeyCutterData "{name}"', text)
    return Overrides(
        mode=None if mode == "auto" else KeyMode(mode),
        encoder=texts.get("encoder"),
        eject=eject,
        granted=texts.get("granted", ""),
        denied=texts.get("denied", ""),
    )


def _check_field(what: str, text: str) -> None:
    try:
        encode_field(text)
    except FieldError as exc:
        raise CommandRejected(f"{what} cannot be sent to the encoder: {exc}") from None


# Letters that Unicode does not decompose into a base letter and an accent.
_LETTERS = str.maketrans(
    {"ß": "ss", "æ": "ae", "Æ": "AE", "ø": "o", "Ø": "O", "ł": "l", "Ł": "L", "đ": "d", "Đ": "D"}
    | {"œ": "oe", "Œ": "OE", "þ": "th", "Þ": "Th", "ð": "d", "Ð": "D", "\u0131": "i"}  # dotless i
)


def ascii_name(text: str | None) -> str:
    """``text`` reduced to printable ASCII (accents dropped), for encoders that print plain text."""
    if not text:
        return ""
    decomposed = unicodedata.normalize("NFKD", text.translate(_LETTERS))
    kept = "".join(char for char in decomposed if char.isascii() and char.isprintable())
    return " ".join(kept.split())


def card_name(data: KeyCutterData) -> str:
    """The guest's name as printed on a card, from Mews' normalised names when it sends them."""
    first = ascii_name(data.normalized_first_name or data.first_name)
    last = ascii_name(data.normalized_last_name or data.last_name)
    return " ".join(part for part in (first, last) if part)


@dataclass(frozen=True)
class KeyPlan:
    """Everything about a command's keys except whether the first one is new."""

    reservation_id: str | None
    count: int
    valid_until: datetime
    """``EndUtc``: until then the keys open the rooms."""
    forced_mode: KeyMode | None
    template: KeyRequest
    """The request for one key; mode and count are filled in per transaction."""

    @property
    def rooms(self) -> tuple[str, ...]:
        return self.template.rooms

    def requests(self, first: KeyMode) -> list[KeyRequest]:
        """The transactions: a new key then copies, or only copies."""
        if first is KeyMode.COPY:
            return [replace(self.template, mode=KeyMode.COPY, count=self.count)]
        new = replace(self.template, mode=KeyMode.NEW, count=1)
        if self.count == 1:
            return [new]
        return [new, replace(self.template, mode=KeyMode.COPY, count=self.count - 1)]


def plan_keys(
    data: KeyCutterData, *, dialect: Dialect, options: KeycutterOptions, tz: tzinfo, now: datetime
) -> KeyPlan:
    """Check a command against the dialect's limits and turn it into a :class:`KeyPlan`.

    Raises ``CommandRejected`` with a message for the front desk.
    """
    overrides = parse_overrides(data.key_cutter_data)
    rooms = tuple(dict.fromkeys(lock_id.strip() for lock_id in data.lock_ids))
    if "" in rooms:
        raise CommandRejected("A lock id (LockIds) is empty; check the room's lock id in Mews")
    if len(rooms) > dialect.max_rooms:
        raise CommandRejected(
            f"{len(rooms)} rooms requested ({', '.join(rooms)}), but one {dialect.title} key opens at most "
            f"{dialect.max_rooms} rooms"
        )
    for room in rooms:
        _check_field(f"Lock id {room!r}", room)
    if data.key_count > options.key_limit:
        raise CommandRejected(f"{data.key_count} keys requested; at most {options.key_limit} per command")

    start_utc, end_utc = _aware(data.start_utc), _aware(data.end_utc)
    if end_utc <= now:
        raise CommandRejected(f"The stay ended at {end_utc:%Y-%m-%d %H:%M} UTC; no key was cut")
    _check_times(dialect, start_utc, end_utc)  # in UTC first: 9999-12-31 has no local time east of it
    start = dialect.card_time(start_utc.astimezone(tz).replace(tzinfo=None))
    end = dialect.card_time(end_utc.astimezone(tz).replace(tzinfo=None))
    _check_times(dialect, start, end)
    if end <= start:
        raise CommandRejected(
            f"The key would be valid from {start:%Y-%m-%d %H:%M} to {end:%Y-%m-%d %H:%M} local time; "
            "the end must be later than the start"
        )

    name = card_name(data)[: dialect.print_line_length]
    encoder = overrides.encoder or options.encoder
    try:
        dialect.check_encoder(encoder)
    except ValueError as exc:
        raise CommandRejected(f"KeyCutterData: {exc}") from None
    return KeyPlan(
        reservation_id=data.reservation_id,
        count=data.key_count,
        valid_until=end_utc,
        forced_mode=overrides.mode,
        template=KeyRequest(
            mode=KeyMode.NEW,
            count=1,
            encoder=encoder,
            rooms=rooms,
            start=start,
            end=end,
            eject=overrides.eject or options.eject,
            granted=overrides.granted,
            denied=overrides.denied,
            operator=options.operator,
            print_lines=(name,) if name and dialect.print_lines else (),
        ),
    )


def _check_times(dialect: Dialect, *moments: datetime) -> None:
    for moment in moments:
        try:
            dialect.check_time(moment)
        except ValueError as exc:
            raise CommandRejected(f"{exc}; no key was cut") from None


def _aware(moment: datetime) -> datetime:
    # Mews sends UTC with a "Z"; a bare time is UTC too.
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def describe_keys(rooms: tuple[str, ...], new: int, copies: int) -> str:
    """``2 keys for room 101 (1 new, 1 copy)``."""
    total = new + copies
    parts = [f"{new} new"] if new else []
    if copies:
        parts.append(f"{copies} {'copy' if copies == 1 else 'copies'}")
    return f"{total} {'key' if total == 1 else 'keys'} for {rooms_text(rooms)} ({', '.join(parts)})"


def rooms_text(rooms: tuple[str, ...]) -> str:
    return f"room {rooms[0]}" if len(rooms) == 1 else f"rooms {', '.join(rooms)}"


class KeyLedger:
    """The key state this driver keeps in the bridge's journal (``ctx.store``).

    * ``room:<lock id>``: ``{"reservation_id", "valid_until"}``, the reservation whose new key is
      the current one for the room. Removed before a new key is sent and written once the encoder
      confirms, so after a crash or a lost reply nobody gets a copy of a card we are unsure about.
    * ``last_command``: the command being cut or last cut, with the keys confirmed so far and its
      outcome, for :meth:`SerialKeycutterDriver.recover`. The host runs one command at a time, so
      the interrupted command is always the last one.

    Only this driver instance writes its namespace, so the ledger reads from a copy in memory,
    loaded by :meth:`load`, and writes through to the journal: no journal round trip before a key
    but the writes that must be there.
    """

    def __init__(self, store: KeyValueStore) -> None:
        self._store = store
        self._holders: dict[str, dict[str, Any]] = {}
        self._last: dict[str, Any] | None = None
        self._note: asyncio.Future[None] | None = None

    async def load(self) -> None:
        self._holders = {
            key.removeprefix("room:"): value for key, value in (await self._store.items("room:")).items()
        }
        self._last = await self._store.get("last_command")

    def can_copy(self, reservation_id: str | None, rooms: tuple[str, ...], now: datetime) -> bool:
        """True if this reservation's new key is current and valid for every room."""
        if not reservation_id:
            return False
        for room in rooms:
            holder = self._holders.get(room)
            if (
                not holder
                or holder.get("reservation_id") != reservation_id
                or datetime.fromisoformat(holder["valid_until"]) <= now
            ):
                return False
        return True

    async def release(self, rooms: tuple[str, ...]) -> dict[str, Any]:
        """Forget the rooms' key holders before a new key; return them for :meth:`restore`."""
        previous = {room: self._holders.get(room) for room in rooms}
        for room in rooms:
            await self._store.delete(f"room:{room}")
            self._holders.pop(room, None)
        return previous

    async def restore(self, previous: dict[str, Any]) -> None:
        """Put back the holders :meth:`release` removed, when the encoder surely cut nothing."""
        for room, holder in previous.items():
            if holder is not None:
                await self._hold(room, holder)

    async def record_new(
        self, reservation_id: str | None, rooms: tuple[str, ...], valid_until: datetime
    ) -> None:
        if not reservation_id:
            return  # nobody to make copies for
        for room in rooms:
            await self._hold(room, {"reservation_id": reservation_id, "valid_until": valid_until.isoformat()})

    async def record_copy(
        self, reservation_id: str | None, rooms: tuple[str, ...], valid_until: datetime
    ) -> None:
        """A copy made for the current holder may extend how long its keys stay valid."""
        for room in rooms:
            holder = self._holders.get(room)
            if holder and reservation_id and holder.get("reservation_id") == reservation_id:
                until = max(datetime.fromisoformat(holder["valid_until"]), valid_until)
                await self._hold(room, {**holder, "valid_until": until.isoformat()})

    async def _hold(self, room: str, holder: dict[str, Any]) -> None:
        await self._store.put(f"room:{room}", holder)
        self._holders[room] = holder

    def command(self, command_id: str) -> dict[str, Any] | None:
        record = self._last
        return record if record and record.get("id") == command_id else None

    async def command_started(self, command_id: str, rooms: tuple[str, ...], count: int) -> None:
        """Note the command about to be cut; the journal write goes on while the first request goes
        out, without waiting for the disk.

        The host's ``running`` mark is on disk already, so a crash or power cut that loses this note
        leaves :meth:`SerialKeycutterDriver.recover` without a record: it then reports the command as
        interrupted and cuts nothing, as it must. The next write (the keys confirmed, the outcome)
        waits for it. This spares a journal round trip, and an fsync, before the first byte.
        """
        await self._settle_note()  # a note left by a command that crashed
        self._last = {"id": command_id, "state": "started", "rooms": list(rooms), "count": count}
        self._note = asyncio.ensure_future(self._store.put("last_command", self._last, durable=False))

    async def command_update(self, command_id: str, **fields: Any) -> None:
        await self._settle_note()
        record = {**(self.command(command_id) or {"id": command_id}), **fields}
        await self._store.put("last_command", record)
        self._last = record

    async def _settle_note(self) -> None:
        """Wait for the started note. One the journal could not write is only logged: like one lost to
        a power cut it costs nothing, and the write that follows records the command in full."""
        note, self._note = self._note, None
        if note is None:
            return
        try:
            await note
        except JournalError as exc:
            LOGGER.warning("The journal did not take a command's started note: %s", exc)

"""Call detail records: a ``Cdr`` event as a typed record, which records to rate, and how a call is
named on the guest's bill.

Asterisk writes one CDR per channel that ran dialplan, so one guest call may come with several
records (docs/reference/asterisk-ami.md, section 4); :func:`not_billable_reason` keeps the one that is the guest's
answered outside call.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

from mews_bridge import is_encodable

from .codec import Message

_TIME_FORMAT = "%Y-%m-%d %H:%M:%S"
# The CDR's own fields, in cdr_manager.c order; everything after them is a [mappings] custom field.
STANDARD_FIELDS = (
    "AccountCode",
    "Source",
    "Destination",
    "DestinationContext",
    "CallerID",
    "Channel",
    "DestinationChannel",
    "LastApplication",
    "LastData",
    "StartTime",
    "AnswerTime",
    "EndTime",
    "Duration",
    "BillableSeconds",
    "Disposition",
    "AMAFlags",
    "UniqueID",
    "UserField",
)
_HEADER_FIELDS = frozenset({"event", "privilege", "timestamp", "systemname"})
_KNOWN = frozenset(f.lower() for f in STANDARD_FIELDS) | _HEADER_FIELDS
# A phone's own channel: PJSIP/101-0000002a (not Local/…;2, whose "extension" is a dial string).
_PHONE_CHANNEL = re.compile(r"(?:PJSIP|SIP|IAX2)/([^-/@;]+)-[0-9a-fA-F]+")
_UNIQUE_EPOCH = re.compile(r"(\d+)\.\d+$")


class CdrError(ValueError):
    """A Cdr event that cannot be read (a missing or malformed field)."""


@dataclass(frozen=True, slots=True)
class CallRecord:
    """One CDR, times in UTC."""

    unique_id: str
    account_code: str
    source: str
    destination: str
    destination_context: str
    caller_id: str
    channel: str
    destination_channel: str
    last_application: str
    last_data: str
    start: datetime
    answer: datetime | None
    end: datetime
    duration: int
    billable_seconds: int
    disposition: str
    user_field: str
    custom: Mapping[str, str] = field(default_factory=dict)
    """``[mappings]`` fields of ``cdr_manager.conf`` as sent (``Room``, ``GuestLanguage``, ``Sequence``…)."""

    @property
    def extension(self) -> str | None:
        """The calling phone: the ``Room`` custom field, else the extension in a PJSIP/SIP/IAX2 channel."""
        room = self.custom.get("Room")
        if room:
            return room
        match = _PHONE_CHANNEL.fullmatch(self.channel)
        return match.group(1) if match else None

    @property
    def linked_id(self) -> str | None:
        return self.custom.get("LinkedID") or None

    @property
    def sequence(self) -> str | None:
        return self.custom.get("Sequence") or None

    @property
    def dedupe_key(self) -> str:
        """Stable id of this CDR (``cdr-<UniqueID>[-<Sequence>]``): its journal key and the order item's
        ExternalIdentifier. A transfer splits a call into CDRs sharing a UniqueID, told apart by
        Sequence when it is mapped."""
        key = f"cdr-{self.unique_id}"
        return f"{key}-{self.sequence}" if self.sequence else key


def parse_cdr(event: Message, timezone: ZoneInfo) -> CallRecord:
    """Read a ``Cdr`` event; ``timezone`` is the PBX host's (CDR times are its local time)."""
    if event.name != "Cdr":
        raise CdrError(f"Not a Cdr event: {event.name!r}")
    values = {k.lower(): v for k, v in reversed(event.pairs)}

    def text(name: str, *, free: bool = False) -> str:
        """A field; one that decides the charge (``free`` is False) must be clean text."""
        value = values.get(name.lower())
        if value is None:
            raise CdrError(f"Cdr event without {name}")
        if not free:
            _check_text(name, value)
        return value

    def number(name: str) -> int:
        value = text(name)
        try:
            return int(value)
        except ValueError:
            raise CdrError(f"Cdr {name} is not a whole number: {value[:40]!r}") from None

    unique_id = text("UniqueID")
    duration = number("Duration")
    billable = number("BillableSeconds")
    epoch = _UNIQUE_EPOCH.search(unique_id)
    # UniqueID starts with the channel's creation time (epoch): it settles the hour that repeats
    # when clocks go back.
    start = _to_utc(text("StartTime"), timezone, int(epoch.group(1)) if epoch else None)
    end = _to_utc(text("EndTime"), timezone, start.timestamp() + duration)
    answer_text = text("AnswerTime")
    answer = _to_utc(answer_text, timezone, end.timestamp() - billable) if answer_text else None
    custom: dict[str, str] = {}
    for key, value in event.pairs:
        if key.lower() not in _KNOWN:
            custom.setdefault(key, value)
    for name in ("Room", "Sequence", "LinkedID"):
        if name in custom:
            _check_text(name, custom[name])
    return CallRecord(
        unique_id=unique_id,
        account_code=text("AccountCode", free=True),
        source=text("Source"),
        destination=text("Destination"),
        destination_context=text("DestinationContext"),
        caller_id=text("CallerID", free=True),
        channel=text("Channel"),
        destination_channel=text("DestinationChannel"),
        last_application=text("LastApplication"),
        last_data=text("LastData", free=True),
        start=start,
        answer=answer,
        end=end,
        duration=duration,
        billable_seconds=billable,
        disposition=text("Disposition"),
        user_field=text("UserField", free=True),
        custom=custom,
    )


def _check_text(name: str, value: str) -> None:
    # U+FFFD stands for bytes that were not UTF-8: such a field is garbage, not a number or an id.
    if "\ufffd" in value or not is_encodable(value) or not value.isprintable():
        raise CdrError(f"Cdr {name} is not valid text: {value[:40]!r}")


def _to_utc(local: str, timezone: ZoneInfo, hint: float | None) -> datetime:
    try:
        naive = datetime.strptime(local, _TIME_FORMAT)
        first = naive.replace(tzinfo=timezone, fold=0).astimezone(UTC)
        second = naive.replace(tzinfo=timezone, fold=1).astimezone(UTC)
    except ValueError:
        raise CdrError(f"Cdr time {local[:40]!r} is not YYYY-MM-DD HH:MM:SS") from None
    except OverflowError:  # 9999-12-31 west of UTC is past the last representable moment
        raise CdrError(f"Cdr time {local!r} is out of range") from None
    if first == second or hint is None:
        return first
    return min((first, second), key=lambda moment: abs(moment.timestamp() - hint))


def not_billable_reason(
    record: CallRecord,
    is_room: Callable[[str], bool],
    outbound_contexts: Collection[str] = (),
) -> str | None:
    """Why this CDR must not be charged, or None if it is a guest's answered outside call.

    Rules (docs/reference/asterisk-ami.md, "Which CDR to charge"): answered, billable seconds > 0, the ``Dial`` that reached a
    called channel, made from a room's phone (``is_room(extension)``), not to another room, and, if
    ``outbound_contexts`` is given, dialled in one of them. Billable seconds alone are not enough: a
    dialplan that answers before Dial (to play a prompt) gives unanswered calls billable seconds.
    """
    if record.disposition != "ANSWERED":
        return f"not answered ({record.disposition})"
    if record.billable_seconds <= 0:
        return "no billable seconds"
    if record.last_application != "Dial":
        return f"not a Dial ({record.last_application})"
    if not record.destination_channel:
        return "no called channel"
    extension = record.extension
    if extension is None or not is_room(extension):
        return "not from a room phone"
    called = _PHONE_CHANNEL.fullmatch(record.destination_channel)
    if is_room(record.destination) or (called is not None and is_room(called.group(1))):
        return "call to another room"
    if outbound_contexts and record.destination_context not in outbound_contexts:
        return f"not dialled in an outbound context ({record.destination_context})"
    return None


def format_duration(seconds: int) -> str:
    """``192`` → ``3 min 12 s``; ``45`` → ``45 s``; ``3720`` → ``1 h 2 min``."""
    hours, rest = divmod(max(seconds, 0), 3600)
    minutes, secs = divmod(rest, 60)
    parts = [f"{hours} h" if hours else "", f"{minutes} min" if minutes else "", f"{secs} s" if secs else ""]
    return " ".join(p for p in parts if p) or "0 s"


def charge_item_name(display_number: str, billable_seconds: int) -> str:
    """The order item's name on the guest's bill: ``Call to +48 22 123 45 67 (3 min 12 s)``."""
    return f"Call to {display_number} ({format_duration(billable_seconds)})"


def consumption_utc(record: CallRecord) -> str:
    """``ConsumptionUtc`` for orders/add: the call's start, ISO 8601 in UTC."""
    return record.start.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")

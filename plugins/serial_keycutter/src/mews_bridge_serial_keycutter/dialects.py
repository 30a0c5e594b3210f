"""Dialects: what goes in each field of the Industry Standard frames, per lock vendor. No I/O here.

A dialect turns a vendor-neutral :class:`KeyRequest` into request bytes and a reply frame into a
:class:`Reply` (the driver's side), and the other way round (the encoder simulator's side), so both
ends of the test line are built from the same code.

Built in: ``salto`` (SALTO HAMS/Space, "PMS Industry Standard") and ``onity`` (Onity HT22/HT24 "PMS
Communications Protocol"). A vendor plugin adds one with :func:`register_dialect` or, without
importing anything at start-up, with an entry point in the group ``mews_bridge_keycutter.dialects``
that names a :class:`Dialect` object or class.
"""

from __future__ import annotations

import logging
from abc import ABC, abstractmethod
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from importlib.metadata import entry_points
from typing import ClassVar

from .codec import build_frame, parse_frame

LOGGER = logging.getLogger(__name__)

ENTRY_POINT_GROUP = "mews_bridge_keycutter.dialects"


class KeyMode(StrEnum):
    NEW = "new"
    """``CN``: a new guest card; the lock system voids every earlier guest card of the room."""
    COPY = "copy"
    """``CC``: more cards like the current guest's, leaving the cards already handed out valid."""


@dataclass(frozen=True)
class KeyRequest:
    """One encoder transaction: ``count`` identical cards. Times are local wall-clock times."""

    mode: KeyMode
    count: int
    encoder: str
    rooms: tuple[str, ...]
    start: datetime
    end: datetime
    eject: str = "E"
    granted: str = ""
    denied: str = ""
    operator: str = ""
    print_lines: tuple[str, ...] = ()


@dataclass(frozen=True)
class Reply:
    """An encoder's answer: ``code`` is the echoed command (``CN2``) or an error code (``TD``)."""

    code: str
    fields: tuple[str, ...] = ()


# Texts for the front desk; the encoder's code is appended by the driver for support staff.
COMMON_ERRORS: dict[str, str] = {
    "ES": "The lock system did not understand the request (syntax error)",
    "NC": "The encoder is not answering the lock system (switched off or disconnected)",
    "NF": "The lock system's database files are missing or damaged",
    "OV": "The encoder is busy with another card; try again in a moment",
    "EP": "No card in the encoder (or it is inserted the wrong way)",
    "EF": "The card is from another lock system or damaged",
    "TD": "Room not found in lock system",
    "ED": "No card was inserted in time",
    "OS": "The room is out of service in the lock system",
}


class Dialect(ABC):
    """How one vendor's encoder reads and answers requests."""

    name: ClassVar[str]
    """The ``dialect`` option value."""
    title: ClassVar[str]
    """The vendor's name as the front desk knows it."""
    max_rooms: ClassVar[int]
    """Rooms one card can open."""
    max_keys: ClassVar[int]
    """Cards one request can ask for."""
    print_lines: ClassVar[int] = 0
    """Text lines printed on the card (guest name), 0 if the encoder prints nothing."""
    print_line_length: ClassVar[int] = 0
    copy_refused_code: ClassVar[str | None] = None
    """The error an encoder gives to a copy for a room without a current guest (a new key is safe then)."""

    def check_encoder(self, encoder: str) -> None:  # noqa: B027 - most dialects accept any name
        """Raise ``ValueError`` if ``encoder`` cannot be an encoder address in this dialect."""

    def card_time(self, moment: datetime) -> datetime:
        """``moment`` as the card will hold it (the date format drops seconds or minutes)."""
        return moment.replace(second=0, microsecond=0)

    def check_time(self, moment: datetime) -> None:  # noqa: B027 - a dialect without a date limit
        """Raise ``ValueError`` if the card cannot hold ``moment`` (a two-digit year wraps around)."""

    @abstractmethod
    def encode_request(self, request: KeyRequest) -> bytes:
        """The request frame (PMS side); ``ValueError`` if the request is beyond the dialect's limits."""

    @abstractmethod
    def decode_request(self, frame: bytes) -> KeyRequest:
        """The request in a frame (encoder side); ``ValueError`` if it is not a key request."""

    @abstractmethod
    def encode_reply(self, reply: Reply) -> bytes:
        """The reply frame (encoder side)."""

    @abstractmethod
    def decode_reply(self, frame: bytes) -> Reply:
        """The reply in a frame (PMS side); ``ValueError`` if it cannot be read."""

    @abstractmethod
    def error_text(self, reply: Reply) -> str | None:
        """Plain words for an error reply; None when the reply reports success."""


class IndustryStandardDialect(Dialect):
    """SALTO and Onity share the envelope, the field order up to the dates, and the error codes."""

    max_rooms = 4
    max_keys = 9
    errors: ClassVar[dict[str, str]] = COMMON_ERRORS
    date_format: ClassVar[str]
    trailing_fields: ClassVar[int]
    """Fields after the operator: SALTO's print lines and serial-number flag, Onity's two tracks."""

    def encode_request(self, request: KeyRequest) -> bytes:
        self._check(request)
        rooms = list(request.rooms) + [""] * (self.max_rooms - len(request.rooms))
        return build_frame(
            [
                _command(request),
                request.encoder,
                request.eject,
                *rooms,
                request.granted,
                request.denied,
                request.start.strftime(self.date_format),
                request.end.strftime(self.date_format),
                request.operator,
                *self._trailing(request),
            ]
        )

    def decode_request(self, frame: bytes) -> KeyRequest:
        fields = parse_frame(frame)
        expected = 3 + self.max_rooms + 5 + self.trailing_fields
        if len(fields) != expected:
            raise ValueError(f"{self.title} key request has {len(fields)} fields, expected {expected}")
        command = _parse_command(fields[0])
        if command is None:
            raise ValueError(f"not a key request: {fields[0]!r}")
        mode, count = command
        rooms = fields[3 : 3 + self.max_rooms]
        granted, denied, start, end, operator = fields[3 + self.max_rooms : 8 + self.max_rooms]
        return KeyRequest(
            mode=mode,
            count=count,
            encoder=fields[1],
            rooms=tuple(room for room in rooms if room),
            start=datetime.strptime(start, self.date_format),
            end=datetime.strptime(end, self.date_format),
            eject=fields[2],
            granted=granted,
            denied=denied,
            operator=operator,
            print_lines=self._parse_trailing(fields[8 + self.max_rooms :]),
        )

    def encode_reply(self, reply: Reply) -> bytes:
        return build_frame([reply.code, *reply.fields])

    def decode_reply(self, frame: bytes) -> Reply:
        fields = parse_frame(frame)
        return Reply(fields[0], tuple(fields[1:]))

    def error_text(self, reply: Reply) -> str | None:
        if _parse_command(reply.code) is not None:
            return None  # the encoder echoes the command it carried out
        text = self.errors.get(reply.code, f"The encoder gave an unknown answer {reply.code!r}")
        # EG carries the lock system's own words in its last field.
        if reply.code == "EG" and reply.fields and reply.fields[-1]:
            return f"{text}: {reply.fields[-1]}"
        return text

    def check_time(self, moment: datetime) -> None:
        # Two digits (``%y``) hold 2000-2099 only: 2200 would be cut as 2000, a key that never opens.
        if "%y" in self.date_format and not 2000 <= moment.year <= 2099:
            raise ValueError(
                f"{self.title} cards hold dates from 2000 to 2099 only, not {moment:%Y-%m-%d %H:%M}"
            )

    def _check(self, request: KeyRequest) -> None:
        self.check_time(request.start)
        self.check_time(request.end)
        if not 1 <= len(request.rooms) <= self.max_rooms:
            raise ValueError(f"{self.title} cards open 1 to {self.max_rooms} rooms, not {len(request.rooms)}")
        if not 1 <= request.count <= self.max_keys:
            raise ValueError(
                f"{self.title} encodes 1 to {self.max_keys} cards per request, not {request.count}"
            )
        if len(request.print_lines) > self.print_lines or any(
            len(line) > self.print_line_length for line in request.print_lines
        ):
            raise ValueError(
                f"{self.title} prints at most {self.print_lines} lines of {self.print_line_length}"
            )
        self.check_encoder(request.encoder)

    @abstractmethod
    def _trailing(self, request: KeyRequest) -> list[str]: ...

    @abstractmethod
    def _parse_trailing(self, fields: list[str]) -> tuple[str, ...]: ...


class SaltoDialect(IndustryStandardDialect):
    """SALTO "PMS Industry Standard": encoder by name, ``hhmmDDMMYY``, three print lines."""

    name = "salto"
    title = "SALTO"
    print_lines = 3
    print_line_length = 24
    date_format = "%H%M%d%m%y"
    trailing_fields = 4
    copy_refused_code = "EA"
    errors = {
        **COMMON_ERRORS,
        "EA": "The room is checked out in the lock system, so no copy can be made",
        "EO": "The card is being encoded at another station",
        "EV": "The card belongs to a staff member and cannot become a guest key",
        "EG": "The lock system reported an error",
    }

    def _trailing(self, request: KeyRequest) -> list[str]:
        lines = list(request.print_lines) + [""] * (self.print_lines - len(request.print_lines))
        return [*lines, "0"]  # "0": no card serial numbers in the reply

    def _parse_trailing(self, fields: list[str]) -> tuple[str, ...]:
        lines = list(fields[: self.print_lines])
        while lines and not lines[-1]:
            lines.pop()
        return tuple(lines)


class OnityDialect(IndustryStandardDialect):
    """Onity HT22/HT24: encoder by number, ``HHddMMyy`` (whole hours), no printing."""

    name = "onity"
    title = "Onity"
    date_format = "%H%d%m%y"
    trailing_fields = 2
    errors = {
        **COMMON_ERRORS,
        "EA": "Too many one-shot cards",
        "EN": "The encoder writes too weakly; clean it or try another card",
        "ET": "A card is jammed in the encoder",
    }

    def check_encoder(self, encoder: str) -> None:
        if not encoder.isdigit():
            raise ValueError(f"Onity encoders are numbered; {encoder!r} is not a number")

    def card_time(self, moment: datetime) -> datetime:
        # Whole hours only: an end time rounds down, so a key never outlasts the stay.
        return moment.replace(minute=0, second=0, microsecond=0)

    def _trailing(self, request: KeyRequest) -> list[str]:
        return ["", ""]  # tracks 1 and 2 stay empty: the guest's name does not belong on a mag track

    def _parse_trailing(self, fields: list[str]) -> tuple[str, ...]:
        return ()


def _command(request: KeyRequest) -> str:
    base = "CN" if request.mode is KeyMode.NEW else "CC"
    return base if request.count == 1 else f"{base}{request.count}"


def _parse_command(text: str) -> tuple[KeyMode, int] | None:
    """``CN2`` -> (NEW, 2); None if ``text`` is not a key command."""
    modes = {"CN": KeyMode.NEW, "CC": KeyMode.COPY}
    if text[:2] not in modes or not (text[2:] == "" or text[2:].isdigit()):
        return None
    return modes[text[:2]], int(text[2:] or 1)


_registry: dict[str, Dialect] = {}
_entry_points_loaded = False


def register_dialect(dialect: Dialect, *, replace: bool = False) -> None:
    """Make ``dialect`` available under ``dialect.name`` for the ``dialect`` option."""
    if dialect.name in _registry and not replace:
        raise ValueError(f"a key-cutter dialect named {dialect.name!r} is already registered")
    _registry[dialect.name] = dialect


def _load_entry_points() -> None:
    global _entry_points_loaded  # noqa: PLW0603 - loaded once per process, on first lookup
    if _entry_points_loaded:
        return
    _entry_points_loaded = True
    for entry_point in entry_points(group=ENTRY_POINT_GROUP):
        # One broken vendor package must not take the built-in dialects down with it.
        try:
            loaded = entry_point.load()
            dialect = loaded() if isinstance(loaded, type) else loaded
            if not isinstance(dialect, Dialect):
                raise TypeError(f"{entry_point.value} is not a Dialect")
            register_dialect(dialect)
        except Exception:
            LOGGER.exception("Key-cutter dialect %r could not be loaded", entry_point.name)


def get_dialect(name: str) -> Dialect:
    """The registered dialect called ``name``; ``KeyError`` lists the known names."""
    _load_entry_points()
    try:
        return _registry[name]
    except KeyError:
        raise KeyError(f"unknown key-cutter dialect {name!r}; known: {', '.join(dialect_names())}") from None


def dialect_names() -> list[str]:
    _load_entry_points()
    return sorted(_registry)


register_dialect(SaltoDialect())
register_dialect(OnityDialect())

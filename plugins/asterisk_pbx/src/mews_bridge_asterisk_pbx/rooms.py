"""Rooms and the PBX: which phone extension is which Mews room, and what the PBX must know about
the guest in it.

The PBX side is AstDB, one family per room phone (``hotel/101``), which the sample dialplan in
``docs/extensions.conf.sample`` reads:

=========== =================================================================================
key         meaning
=========== =================================================================================
``outside`` ``1``: outside calls allowed (checked in); ``0``: barred (vacant; emergency still works)
``name``    the guest's name, used as caller-ID name on internal calls; absent when vacant
``language`` Asterisk language of prompts and wake-up calls (``de``); absent when unknown
``dnd``     ``1`` while do-not-disturb is on (set by the guest with ``*78``, off with ``*79``)
=========== =================================================================================

AstDB rather than dialplan variables: it survives an Asterisk restart and changes apply at once.
Everything here is pure: it returns the writes; the service sends them.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

PLACEHOLDER = "{room}"
DEFAULT_FAMILY = "hotel"
_EXTENSION = re.compile(r"[0-9A-Za-z*#+]+")
_MAX_NAME = 40


class RoomMapError(ValueError):
    """The ``rooms`` option is not a valid map or pattern."""


class RoomMap:
    """Phone extension ↔ Mews resource (room) name.

    Built from the ``rooms`` option with :meth:`from_option`:

    * a mapping without placeholders, extension → room name: ``{"201": "101", "202": "Suite 1"}``;
    * a string pattern for the extension, the room name being ``{room}``: ``"2{room}"`` makes room
      ``101`` extension ``2101``; ``"{room}"`` means extension = room name;
    * ``{"extension": "2{room}", "resource": "Room {room}"}`` when room names carry more than the
      number.

    A pattern alone would take any extension (``trunk``, a dialled number) for a room: give the
    names of the property's rooms (Mews ``resources/getAll``) to ``resources`` or
    :meth:`set_resources`, and only those count.
    """

    def __init__(
        self,
        explicit: Mapping[str, str] | None = None,
        *,
        extension_pattern: str = PLACEHOLDER,
        resource_pattern: str = PLACEHOLDER,
        resources: Iterable[str] | None = None,
    ) -> None:
        self._resources: frozenset[str] | None = None
        self.set_resources(resources)
        self._by_extension: dict[str, str] | None = None
        self._by_resource: dict[str, str] = {}
        if explicit is not None:
            self._by_extension = {}
            for raw_extension, raw_resource in explicit.items():
                extension, resource = str(raw_extension).strip(), str(raw_resource).strip()
                if not _EXTENSION.fullmatch(extension):
                    raise RoomMapError(f"rooms: {extension!r} is not a phone extension")
                if not resource:
                    raise RoomMapError(f"rooms: extension {extension} has an empty room name")
                if resource in self._by_resource:
                    raise RoomMapError(
                        f"rooms: room {resource!r} has two extensions "
                        f"({self._by_resource[resource]} and {extension})"
                    )
                self._by_extension[extension] = resource
                self._by_resource[resource] = extension
        self._extension_pattern = extension_pattern
        self._resource_pattern = resource_pattern
        self._extension_re = _compile(extension_pattern, "extension")
        self._resource_re = _compile(resource_pattern, "resource")

    @classmethod
    def from_option(cls, value: str | Mapping[str, str], resources: Iterable[str] | None = None) -> RoomMap:
        if isinstance(value, str):
            return cls(extension_pattern=value, resources=resources)
        if any(PLACEHOLDER in str(v) for v in value.values()):
            unknown = set(value) - {"extension", "resource"}
            if unknown:
                raise RoomMapError(
                    f"rooms: a pattern takes only 'extension' and 'resource', not {sorted(unknown)}"
                )
            return cls(
                extension_pattern=value.get("extension", PLACEHOLDER),
                resource_pattern=value.get("resource", PLACEHOLDER),
                resources=resources,
            )
        return cls(value, resources=resources)

    def set_resources(self, names: Iterable[str] | None) -> None:
        """The property's room names; None accepts any name the map or pattern yields."""
        self._resources = None if names is None else frozenset(names)

    def resource_for(self, extension: str) -> str | None:
        """The room name of a phone extension, or None if the extension is not a room's."""
        if self._by_extension is not None:
            name = self._by_extension.get(extension)
        else:
            match = self._extension_re.fullmatch(extension)
            name = self._resource_pattern.replace(PLACEHOLDER, match.group("room")) if match else None
        if name is None or (self._resources is not None and name not in self._resources):
            return None
        return name

    def extension_for(self, resource_name: str) -> str | None:
        """The phone extension of a room, or None if the room has no phone in the map."""
        if self._resources is not None and resource_name not in self._resources:
            return None
        if self._by_extension is not None:
            return self._by_resource.get(resource_name)
        match = self._resource_re.fullmatch(resource_name)
        if match is None:
            return None
        extension = self._extension_pattern.replace(PLACEHOLDER, match.group("room"))
        return extension if _EXTENSION.fullmatch(extension) else None

    def is_room(self, extension: str) -> bool:
        return self.resource_for(extension) is not None


def _compile(pattern: str, what: str) -> re.Pattern[str]:
    if pattern.count(PLACEHOLDER) != 1:
        raise RoomMapError(f"rooms: the {what} pattern {pattern!r} must contain {PLACEHOLDER} once")
    before, after = pattern.split(PLACEHOLDER)
    return re.compile(f"{re.escape(before)}(?P<room>.+?){re.escape(after)}")


@dataclass(frozen=True, slots=True)
class Guest:
    """Who is in a room, as the PBX needs it."""

    name: str
    language: str | None = None
    """Asterisk language code (see :func:`asterisk_language`)."""


@dataclass(frozen=True, slots=True)
class AstDbWrite:
    """One AstDB change: ``DBPut`` ``family``/``key`` = ``value``, or ``DBDel`` when value is None."""

    family: str
    key: str
    value: str | None

    @property
    def path(self) -> str:
        """As ``DBGetTree`` and ``database show`` print it: ``/hotel/101/outside``."""
        return f"/{self.family}/{self.key}"


def check_in(extension: str, guest: Guest, family: str = DEFAULT_FAMILY) -> list[AstDbWrite]:
    """Outside line on, caller-ID name and language of the guest, do-not-disturb of the last guest off."""
    room = f"{family}/{extension}"
    return [
        AstDbWrite(room, "outside", "1"),
        AstDbWrite(room, "name", guest_name(guest.name) or None),
        AstDbWrite(room, "language", guest.language),
        AstDbWrite(room, "dnd", None),
    ]


def check_out(extension: str, family: str = DEFAULT_FAMILY) -> list[AstDbWrite]:
    """Outside line off, name and language cleared, do-not-disturb off."""
    room = f"{family}/{extension}"
    return [
        AstDbWrite(room, "outside", "0"),
        AstDbWrite(room, "name", None),
        AstDbWrite(room, "language", None),
        AstDbWrite(room, "dnd", None),
    ]


def resync(
    current: Mapping[str, str],
    occupancy: Mapping[str, Guest | None],
    family: str = DEFAULT_FAMILY,
) -> list[AstDbWrite]:
    """The writes that bring the PBX in line with Mews, and only those.

    ``current`` is the AstDB as ``DBGetTree`` returns it (``/hotel/101/outside`` → ``1``);
    ``occupancy`` maps each room extension to its guest, or None if vacant. An occupied room keeps
    the do-not-disturb its guest set; extensions not in ``occupancy`` are left alone.
    """
    writes: list[AstDbWrite] = []
    for extension, guest in occupancy.items():
        wanted = check_out(extension, family) if guest is None else check_in(extension, guest, family)
        for write in wanted:
            if guest is not None and write.key == "dnd":
                continue
            if current.get(write.path) != write.value:
                writes.append(write)
    return writes


def guest_name(name: str) -> str:
    """A name safe for caller ID: no control characters, quotes or angle brackets (they would break
    ``"Name" <101>``), single spaces, at most 40 characters."""
    kept = "".join(" " if unicodedata.category(c).startswith(("C", "Z")) or c in '"<>\\' else c for c in name)
    return " ".join(kept.split())[:_MAX_NAME].rstrip()


def asterisk_language(language_code: str | None) -> str | None:
    """A Mews ``LanguageCode`` (``de-DE``, ``en-US``) as an Asterisk prompt language (``de``, ``en``)."""
    if not language_code:
        return None
    primary = language_code.replace("_", "-").split("-")[0].strip().lower()
    return primary if primary.isalpha() else None

"""Typed reading of request parameters; a wrong one becomes the 400 Mews would answer.

Messages follow Mews: ``Missing required field 'X'`` and ``Invalid X`` (optionally with a reason),
where ``X`` is the full path, e.g. ``Items[0].UnitAmount.GrossValue``.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any, TypeVar

from .errors import bad_request, invalid
from .money import to_decimal
from .timestamps import add_months, parse_utc

MAX_IDS = 1000
MAX_PAGE = 1000
MAX_INTERVAL_MONTHS = 3

T = TypeVar("T")


@dataclass(frozen=True)
class Interval:
    """A filter interval: half-open ``start <= t < end``, or an exact match when both ends are equal."""

    start: datetime
    end: datetime

    def contains(self, moment: datetime) -> bool:
        if self.start == self.end:
            return moment == self.start
        return self.start <= moment < self.end


@dataclass(frozen=True)
class Limitation:
    count: int
    cursor: str | None


def is_guid(text: str) -> bool:
    try:
        uuid.UUID(text)
    except ValueError:
        return False
    return True


class Params:
    """One JSON object of a request (the body, or a nested object under ``prefix``).

    Readers return None for an absent or null field (Mews treats both alike) and raise ``Invalid X``
    for a wrong one; wrap them in ``require`` for a field that must be present.
    """

    def __init__(self, data: Mapping[str, Any], prefix: str = "") -> None:
        self._data = data
        self._prefix = prefix

    def name(self, key: str) -> str:
        return self._prefix + key

    def raw(self, key: str) -> Any:
        return self._data.get(key)

    def has(self, key: str) -> bool:
        return self._data.get(key) is not None

    def fields(self) -> list[str]:
        """The fields sent, null ones included."""
        return list(self._data)

    def require(self, reader: Callable[..., T | None], key: str, /, **options: Any) -> T:
        """``reader(key, **options)`` for a required field, e.g. ``params.require(params.string, "Client")``."""
        value = reader(key, **options)
        if value is None:
            raise bad_request(f"Missing required field '{self.name(key)}'")
        return value

    def string(self, key: str, *, max_length: int | None = None) -> str | None:
        value = self._data.get(key)
        if value is None:
            return None
        if not isinstance(value, str):
            raise invalid(self.name(key), "expected a string")
        if max_length is not None and len(value) > max_length:
            raise invalid(self.name(key), f"at most {max_length} characters")
        return value

    def guid(self, key: str) -> str | None:
        value = self.string(key)
        if value is not None and not is_guid(value):
            raise invalid(self.name(key), "not an identifier")
        return value

    def choice(self, key: str, options: Collection[str]) -> str | None:
        value = self.string(key)
        if value is not None and value not in options:
            raise invalid(self.name(key), f"one of {', '.join(options)}")
        return value

    def integer(self, key: str, *, minimum: int | None = None, maximum: int | None = None) -> int | None:
        value = self._data.get(key)
        if value is None:
            return None
        # bool is an int in Python but not in JSON.
        if not isinstance(value, int) or isinstance(value, bool):
            raise invalid(self.name(key), "expected an integer")
        if (minimum is not None and value < minimum) or (maximum is not None and value > maximum):
            raise invalid(self.name(key), f"out of range {minimum}..{maximum}")
        return value

    def number(self, key: str) -> Decimal | None:
        value = self._data.get(key)
        if value is None:
            return None
        if not isinstance(value, int | float) or isinstance(value, bool):
            raise invalid(self.name(key), "expected a number")
        return to_decimal(value)

    def boolean(self, key: str) -> bool | None:
        value = self._data.get(key)
        if value is not None and not isinstance(value, bool):
            raise invalid(self.name(key), "expected true or false")
        return value

    def timestamp(self, key: str) -> datetime | None:
        value = self.string(key)
        if value is None:
            return None
        try:
            return parse_utc(value)
        except ValueError:
            raise invalid(self.name(key), "expected an ISO 8601 UTC timestamp") from None

    def strings(
        self,
        key: str,
        *,
        max_items: int = MAX_IDS,
        guids: bool = False,
        options: Collection[str] | None = None,
    ) -> list[str] | None:
        value = self._data.get(key)
        if value is None:
            return None
        if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
            raise invalid(self.name(key), "expected an array of strings")
        if len(value) > max_items:
            raise invalid(self.name(key), f"at most {max_items} items")
        if guids and not all(is_guid(item) for item in value):
            raise invalid(self.name(key), "not an identifier")
        if options is not None and not set(value) <= set(options):
            raise invalid(self.name(key), f"items must be among {', '.join(options)}")
        return value

    def guids(self, key: str, *, max_items: int = MAX_IDS) -> list[str] | None:
        return self.strings(key, max_items=max_items, guids=True)

    def nested(self, key: str) -> Params | None:
        value = self._data.get(key)
        if value is None:
            return None
        if not isinstance(value, dict):
            raise invalid(self.name(key), "expected an object")
        return Params(value, f"{self.name(key)}.")

    def nested_list(self, key: str, *, max_items: int = MAX_IDS) -> list[Params]:
        """The objects of an array field; an absent field is an empty list."""
        value = self._data.get(key)
        if value is None:
            return []
        if not isinstance(value, list) or not all(isinstance(item, dict) for item in value):
            raise invalid(self.name(key), "expected an array of objects")
        if len(value) > max_items:
            raise invalid(self.name(key), f"at most {max_items} items")
        return [Params(item, f"{self.name(key)}[{index}].") for index, item in enumerate(value)]

    def interval(self, key: str) -> Interval | None:
        nested = self.nested(key)
        if nested is None:
            return None
        start = nested.require(nested.timestamp, "StartUtc")
        end = nested.require(nested.timestamp, "EndUtc")
        if end < start:
            raise invalid(self.name(key), "EndUtc is before StartUtc")
        if end > add_months(start, MAX_INTERVAL_MONTHS):
            raise invalid(self.name(key), f"longer than {MAX_INTERVAL_MONTHS} months")
        return Interval(start, end)

    def limitation(self, key: str = "Limitation") -> Limitation | None:
        nested = self.nested(key)
        if nested is None:
            return None
        count = nested.require(nested.integer, "Count", minimum=1, maximum=MAX_PAGE)
        return Limitation(count, nested.guid("Cursor"))

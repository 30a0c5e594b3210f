"""Filters and cursor pagination shared by the ``getAll`` operations (reference 1.2 and 1.8)."""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable, Mapping
from dataclasses import dataclass

from .errors import bad_request, invalid
from .table import Row, Table
from .timestamps import parse_utc
from .validation import MAX_IDS, Limitation, Params


@dataclass(frozen=True)
class AnyOf:
    """``"Field": [v, ...]`` keeps rows whose ``field`` equals one of the values."""

    field: str
    max_items: int = MAX_IDS
    guids: bool = True
    options: Collection[str] | None = None


@dataclass(frozen=True)
class Equals:
    """``"Field": v`` keeps rows whose ``field`` equals ``v``."""

    field: str
    options: Collection[str] | None = None


@dataclass(frozen=True)
class Within:
    """``"Field": {StartUtc, EndUtc}`` keeps rows whose timestamp ``field`` lies in the interval."""

    field: str


Filter = AnyOf | Equals | Within
Predicate = Callable[[Row], bool]


def _predicate(params: Params, key: str, rule: Filter) -> Predicate | None:
    if isinstance(rule, AnyOf):
        values = params.strings(key, max_items=rule.max_items, guids=rule.guids, options=rule.options)
        if values is None:
            return None
        wanted = set(values)
        return lambda row: row.get(rule.field) in wanted
    if isinstance(rule, Equals):
        value = params.choice(key, rule.options) if rule.options else params.string(key)
        if value is None:
            return None
        return lambda row: row.get(rule.field) == value
    interval = params.interval(key)
    if interval is None:
        return None
    return lambda row: row.get(rule.field) is not None and interval.contains(parse_utc(row[rule.field]))


def select(
    rows: Iterable[Row], params: Params, filters: Mapping[str, Filter], enterprise_id: str
) -> list[Row]:
    """Rows matching every filter the request sent; ``EnterpriseIds`` scopes to our one enterprise."""
    enterprise_ids = params.guids("EnterpriseIds")
    predicates = [p for key, rule in filters.items() if (p := _predicate(params, key, rule)) is not None]
    if enterprise_ids is not None and enterprise_id not in enterprise_ids:
        return []
    return [row for row in rows if all(predicate(row) for predicate in predicates)]


def require_any_filter(params: Params, keys: Collection[str]) -> None:
    if not any(params.has(key) for key in keys):
        raise bad_request(f"Missing filter: at least one of {', '.join(keys)} is required")


def paginate(rows: list[Row], limitation: Limitation | None, table: Table) -> tuple[list[Row], str | None]:
    """Newest first; the cursor is the id of the page's last (oldest) row, or None for an empty page.

    Without a limitation (only where it is optional) every row comes back and the cursor is null.
    """
    newest_first = sorted(rows, key=lambda row: table.position(row["Id"]), reverse=True)
    if limitation is None:
        return newest_first, None
    if limitation.cursor is not None:
        if limitation.cursor not in table:
            raise invalid("Limitation.Cursor", "unknown cursor")
        cursor_position = table.position(limitation.cursor)
        newest_first = [row for row in newest_first if table.position(row["Id"]) < cursor_position]
    page = newest_first[: limitation.count]
    return page, page[-1]["Id"] if page else None

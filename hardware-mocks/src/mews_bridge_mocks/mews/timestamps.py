"""Mews datetimes: UTC, ISO 8601, canonical ``YYYY-MM-DDThh:mm:ssZ``; durations like ``P0M7DT0H0M0S``."""

from __future__ import annotations

import calendar
from datetime import UTC, datetime, timedelta


def utc_now() -> datetime:
    """Now, truncated to whole seconds like every timestamp Mews sends."""
    return datetime.now(UTC).replace(microsecond=0)


def format_utc(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_utc(text: str) -> datetime:
    """Parse an ISO 8601 timestamp that carries a zone (``Z`` or an offset); ValueError otherwise."""
    moment = datetime.fromisoformat(text)
    if moment.tzinfo is None:
        raise ValueError(f"timestamp without a zone: {text!r}")
    return moment.astimezone(UTC)


def to_utc(moment: datetime | str) -> datetime:
    """What simulator helpers take: an ISO string or an aware datetime (a naive one is ambiguous)."""
    if isinstance(moment, str):
        return parse_utc(moment)
    if moment.tzinfo is None:
        raise ValueError(f"datetime without a zone: {moment!r}")
    return moment.astimezone(UTC)


def format_duration(span: timedelta) -> str:
    """The Mews spelling of an editable-history interval, e.g. 7 days -> ``P0M7DT0H0M0S``."""
    hours, rest = divmod(span.seconds, 3600)
    minutes, seconds = divmod(rest, 60)
    return f"P0M{span.days}DT{hours}H{minutes}M{seconds}S"


def add_months(moment: datetime, months: int) -> datetime:
    """Calendar month arithmetic, clamping the day (31 Jan + 1 month = 28/29 Feb)."""
    month_index = moment.month - 1 + months
    year, month = moment.year + month_index // 12, month_index % 12 + 1
    day = min(moment.day, calendar.monthrange(year, month)[1])
    return moment.replace(year=year, month=month, day=day)

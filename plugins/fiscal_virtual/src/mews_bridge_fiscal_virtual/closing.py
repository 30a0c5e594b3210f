"""Closings (daily Z, MONTH, YEAR): business days in the property's time zone and what a closing sums.

A business day is the property's local date, shifted back by one for moments before the configured
cut-off (with a 04:00 cut-off, 02:30 on the 11th still belongs to the 10th). The host's time zone is
never used. A closing covers every entry since the previous closing of its type; because due
closings are written before the first entry of a new business day, that range is exactly its period.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from .journal import TURNOVER_KINDS
from .money import BucketTotals, add_counts, add_totals


def business_day(moment: datetime, tz: ZoneInfo, cutoff: time) -> date:
    local = moment.astimezone(tz)
    return local.date() - timedelta(days=1) if local.time() < cutoff else local.date()


def next_day_change(now: datetime, tz: ZoneInfo, cutoff: time) -> datetime:
    """The next moment (UTC) at which the business day changes."""
    day = now.astimezone(tz).date() - timedelta(days=1)
    while True:
        # A cut-off inside a DST gap resolves with the offset before the change; that is good enough.
        candidate = datetime.combine(day, cutoff, tzinfo=tz).astimezone(UTC)
        if candidate > now:
            return candidate
        day += timedelta(days=1)


def month_key(day: date) -> str:
    return f"{day.year:04d}-{day.month:02d}"


def months_between(last_closed: str, current: str) -> list[str]:
    """The months after ``last_closed`` and before ``current`` (``YYYY-MM``): the ones now due."""
    year, month = map(int, last_closed.split("-"))
    due: list[str] = []
    while True:
        year, month = (year + 1, 1) if month == 12 else (year, month + 1)
        key = f"{year:04d}-{month:02d}"
        if key >= current:
            return due
        due.append(key)


class ClosingAggregate:
    """Adds up the entries a closing covers; the register and the verifier share it."""

    def __init__(self, turnover_before: int) -> None:
        self.turnover_before = turnover_before
        self.first: tuple[int, str] | None = None
        self.last: tuple[int, str] | None = None
        self.counts: dict[str, int] = {}
        self.totals: dict[str, BucketTotals] = {}
        self.payments: dict[str, int] = {}
        self.gross_by_kind: dict[str, int] = {}

    def add(
        self, seq: int, kind: str, ts_utc: str, totals: Mapping[str, Any], payments: Mapping[str, int]
    ) -> None:
        self.first = self.first or (seq, ts_utc)
        self.last = (seq, ts_utc)
        self.counts = add_counts(self.counts, {kind: 1})
        amounts = {bucket: BucketTotals.from_json(value) for bucket, value in totals.items()}
        gross = sum(a.gross for a in amounts.values())
        if gross:
            self.gross_by_kind = add_counts(self.gross_by_kind, {kind: gross})
        if kind in TURNOVER_KINDS:
            self.totals = add_totals(self.totals, amounts)
            self.payments = add_counts(self.payments, payments)

    def result(self, turnover_after: int) -> dict[str, Any]:
        return {
            "first_seq": self.first[0] if self.first else None,
            "first_ts": self.first[1] if self.first else None,
            "last_seq": self.last[0] if self.last else None,
            "last_ts": self.last[1] if self.last else None,
            "counts": self.counts,
            "totals": {bucket: amount.to_json() for bucket, amount in self.totals.items()},
            "gross_by_kind": self.gross_by_kind,
            "payments": self.payments,
            "turnover_before": self.turnover_before,
            "turnover_after": turnover_after,
        }

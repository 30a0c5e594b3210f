"""Sanity limits on a call charge: what no real call can be is held as ``failed``, never posted.

A PBX with a wrong clock, a corrupted CDR or a tariff typo must not put an absurd line on a guest's
bill. Each limit is an option with a default no hotel call reaches; the refusal is a plain reason
that ``pbx charges --failed`` shows.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal

from .cdr import CallRecord, format_duration

CLOCK_TOLERANCE = timedelta(minutes=5)
"""How far in the future a call may seem to start: the PBX's clock and ours differ a little."""


@dataclass(frozen=True)
class ChargeLimits:
    max_seconds: int
    max_amount: Decimal
    currency: str
    editable_history: timedelta | None
    """Mews' ``AccountingEditableHistoryInterval``: older consumption cannot be posted."""

    def call_refusal(self, record: CallRecord, now: datetime) -> str | None:
        """Why the call itself is beyond reason (before it is rated), or None."""
        if record.billable_seconds > self.max_seconds:
            return (
                f"{record.billable_seconds} billable seconds is longer than the limit of "
                f"{format_duration(self.max_seconds)} for one call"
            )
        if record.start > now + CLOCK_TOLERANCE:
            return f"the call starts in the future ({record.start:%Y-%m-%d %H:%M} UTC)"
        if self.editable_history is not None and record.start < now - self.editable_history:
            return (
                f"the call started {record.start:%Y-%m-%d %H:%M} UTC, before the period Mews still lets "
                "the bridge post to"
            )
        return None

    def amount_refusal(self, amount: Decimal) -> str | None:
        """Why the rated price is beyond reason, or None."""
        if not amount.is_finite() or amount > self.max_amount:
            return f"the price {amount} {self.currency} is above the limit of {self.max_amount} {self.currency} per call"
        return None

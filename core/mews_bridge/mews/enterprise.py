"""The property's settings that drivers need, from ``configuration/get``."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import timedelta
from typing import Any
from zoneinfo import ZoneInfo

_DURATION = re.compile(
    r"^P(?:(?P<years>\d+)Y)?(?:(?P<months>\d+)M)?(?:(?P<days>\d+)D)?"
    r"(?:T(?:(?P<hours>\d+)H)?(?:(?P<minutes>\d+)M)?(?:(?P<seconds>\d+(?:\.\d+)?)S)?)?$"
)


def parse_duration(text: str) -> timedelta:
    """An ISO 8601 duration as Mews writes them (``P0M7DT0H0M0S``); a month counts as 31 days."""
    match = _DURATION.match(text)
    if not match:
        raise ValueError(f"not an ISO 8601 duration: {text!r}")
    parts = {k: float(v) for k, v in match.groupdict().items() if v}
    days = parts.get("years", 0) * 366 + parts.get("months", 0) * 31 + parts.get("days", 0)
    return timedelta(
        days=days,
        hours=parts.get("hours", 0),
        minutes=parts.get("minutes", 0),
        seconds=parts.get("seconds", 0),
    )


@dataclass(frozen=True)
class Enterprise:
    id: str
    name: str
    timezone: ZoneInfo
    currency: str
    pricing: str
    """``Gross`` (prices include tax) or ``Net``."""
    tax_environment_code: str | None
    language_code: str | None
    accounting_editable_history: timedelta | None
    address: tuple[str, ...] = ()
    """The property's address as printed lines (street, postal code and city, country code)."""
    tax_identifier: str | None = None
    """The property's tax identifier (VAT number), from ``Subscription.TaxIdentifier``."""

    @classmethod
    def from_configuration(cls, configuration: dict[str, Any]) -> Enterprise:
        enterprise = configuration["Enterprise"]
        currencies = enterprise.get("Currencies") or []
        default = next((c["Currency"] for c in currencies if c.get("IsDefault")), None)
        history = enterprise.get("AccountingEditableHistoryInterval") or enterprise.get(
            "EditableHistoryInterval"
        )
        return cls(
            id=enterprise["Id"],
            name=enterprise.get("Name", ""),
            timezone=ZoneInfo(enterprise.get("TimeZoneIdentifier") or "UTC"),
            currency=default or (currencies[0]["Currency"] if currencies else "EUR"),
            pricing=enterprise.get("Pricing") or "Gross",
            tax_environment_code=enterprise.get("TaxEnvironmentCode"),
            language_code=enterprise.get("DefaultLanguageCode"),
            accounting_editable_history=parse_duration(history) if history else None,
            address=_address_lines(enterprise.get("Address") or {}),
            tax_identifier=(enterprise.get("Subscription") or {}).get("TaxIdentifier") or None,
        )


def _address_lines(address: dict[str, Any]) -> tuple[str, ...]:
    city = " ".join(part for part in (address.get("PostalCode"), address.get("City")) if part)
    lines = (address.get("Line1"), address.get("Line2"), city, address.get("CountryCode"))
    return tuple(line for line in lines if line)

"""Money: Decimal in, integer minor units out, and the VAT breakdown of a bill from its items.

Amounts from Mews are read as ``Decimal`` (a float from a JSON parser is read through its shortest
``repr``, which is the literal Mews sent) and must be exact in the currency's minor unit; anything
finer is an error rather than a silent rounding.

Per tax bucket the **gross** is the sum of the items' gross amounts (what RKSV signs) and the **tax**
is the sum of the tax values Mews put on the items (what the guest's bill shows); net is derived as
gross - tax so that net + tax = gross always holds. Those two sums are authoritative; a tax
recomputed from the bucket's rate may differ from them by a minor unit.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any

# ISO 4217 minor units where they are not 2.
_EXPONENTS = {
    "BHD": 3, "BIF": 0, "CLP": 0, "DJF": 0, "GNF": 0, "IQD": 3, "ISK": 0, "JOD": 3, "JPY": 0, "KMF": 0,
    "KRW": 0, "KWD": 3, "LYD": 3, "OMR": 3, "PYG": 0, "RWF": 0, "TND": 3, "UGX": 0, "UYI": 0, "VND": 0,
    "VUV": 0, "XAF": 0, "XOF": 0, "XPF": 0,
}  # fmt: skip
_RATE_KEY = re.compile(r"^\d+(?:\.\d+)?%?$")
UNTAXED_KEY = "none"
"""The ``tax_map`` key for items that carry no tax code at all (tax-exempt in Mews)."""
_SKIPPED_ITEM_STATES = frozenset({"Canceled", "Inactive"})
_SKIPPED_PAYMENT_STATES = frozenset({"Canceled", "Failed"})


class BreakdownError(ValueError):
    """The bill cannot be fiscalised as sent; the message names the item and is meant for the front desk."""


def minor_exponent(currency: str) -> int:
    return _EXPONENTS.get(currency, 2)


def to_decimal(value: object) -> Decimal:
    if isinstance(value, bool) or value is None:
        raise ValueError(f"{value!r} is not an amount")
    if isinstance(value, Decimal):
        return value
    if isinstance(value, float):
        value = repr(value)
    if not isinstance(value, int | str):
        raise ValueError(f"{value!r} is not an amount")
    try:
        result = Decimal(value)
    except InvalidOperation:
        raise ValueError(f"{value!r} is not an amount") from None
    if not result.is_finite():
        raise ValueError(f"{value!r} is not an amount")
    return result


def to_minor(amount: Decimal, currency: str) -> int:
    """``amount`` in minor units; refuses amounts finer than the currency's minor unit."""
    scaled = amount.scaleb(minor_exponent(currency))
    if scaled != scaled.to_integral_value():
        raise ValueError(f"{amount} has more decimals than {currency} allows")
    return int(scaled)


def format_minor(minor: int, currency: str, separator: str = ".") -> str:
    """``1750`` → ``17.50``: no thousands separators, the currency's decimals, a leading minus."""
    exponent = minor_exponent(currency)
    sign = "-" if minor < 0 else ""
    whole, fraction = divmod(abs(minor), 10**exponent)
    return f"{sign}{whole}{separator}{fraction:0{exponent}d}" if exponent else f"{sign}{whole}"


@dataclass(frozen=True)
class BucketTotals:
    """Gross, net and tax of one tax bucket, in minor units."""

    gross: int = 0
    net: int = 0
    tax: int = 0

    def __add__(self, other: BucketTotals) -> BucketTotals:
        return BucketTotals(self.gross + other.gross, self.net + other.net, self.tax + other.tax)

    def __neg__(self) -> BucketTotals:
        return BucketTotals(-self.gross, -self.net, -self.tax)

    def is_zero(self) -> bool:
        return not (self.gross or self.net or self.tax)

    def to_json(self) -> dict[str, int]:
        return {"gross": self.gross, "net": self.net, "tax": self.tax}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> BucketTotals:
        return cls(int(data["gross"]), int(data["net"]), int(data["tax"]))


def add_totals(
    into: dict[str, BucketTotals], totals: Mapping[str, BucketTotals], sign: int = 1
) -> dict[str, BucketTotals]:
    """``into`` plus (or minus) ``totals`` bucket by bucket, dropping buckets that end at zero."""
    result = dict(into)
    for bucket, amount in totals.items():
        result[bucket] = result.get(bucket, BucketTotals()) + (amount if sign > 0 else -amount)
    return {k: v for k, v in sorted(result.items()) if not v.is_zero()}


def add_counts(into: dict[str, int], amounts: Mapping[str, int], sign: int = 1) -> dict[str, int]:
    result = dict(into)
    for key, value in amounts.items():
        result[key] = result.get(key, 0) + sign * value
    return {k: v for k, v in sorted(result.items()) if v}


@dataclass(frozen=True)
class Breakdown:
    """What a receipt records: totals per tax bucket and amounts paid per payment type."""

    currency: str
    buckets: Mapping[str, BucketTotals] = field(default_factory=dict)
    payments: Mapping[str, int] = field(default_factory=dict)

    @property
    def gross(self) -> int:
        return sum(b.gross for b in self.buckets.values())

    def is_zero(self) -> bool:
        return all(b.is_zero() for b in self.buckets.values())

    def negated(self) -> Breakdown:
        return Breakdown(self.currency, add_totals({}, self.buckets, -1), add_counts({}, self.payments, -1))

    def minus(self, other: Breakdown) -> Breakdown:
        return Breakdown(
            self.currency,
            add_totals(dict(self.buckets), other.buckets, -1),
            add_counts(dict(self.payments), other.payments, -1),
        )

    def totals_json(self) -> dict[str, dict[str, int]]:
        return {bucket: amount.to_json() for bucket, amount in sorted(self.buckets.items())}

    @classmethod
    def from_json(cls, currency: str, totals: Mapping[str, Any], payments: Mapping[str, int]) -> Breakdown:
        return cls(currency, {k: BucketTotals.from_json(v) for k, v in totals.items()}, dict(payments))


class TaxMap:
    """``tax_map`` from the options: a Mews tax code, a rate in percent, or ``none`` → a bucket.

    Keys that look like a number (``"20"``, ``"4.9%"``) are rates and match items that state their
    rate (the legacy ``TaxRate``); every other key is a Mews tax rate code (``"AT-2020-20%"``).
    """

    def __init__(self, mapping: Mapping[str, str]) -> None:
        self._codes: dict[str, str] = {}
        self._rates: dict[Decimal, str] = {}
        for key, bucket in mapping.items():
            if _RATE_KEY.match(key):
                self._rates[Decimal(key.rstrip("%")).normalize()] = bucket
            else:
                self._codes[key] = bucket

    def bucket(self, code: str | None, rate_percent: Decimal | None) -> str | None:
        if code is not None and code in self._codes:
            return self._codes[code]
        if rate_percent is not None:
            return self._rates.get(rate_percent.normalize())
        if code is None:
            return self._codes.get(UNTAXED_KEY)
        return None


def bill_breakdown(
    items: Iterable[Mapping[str, Any]],
    payments: Iterable[Mapping[str, Any]],
    *,
    currency: str,
    tax_map: TaxMap,
) -> Breakdown:
    """Totals per bucket from the order items and paid amounts per type from the payments."""
    buckets: dict[str, BucketTotals] = {}
    for item in items:
        if item.get("AccountingState") in _SKIPPED_ITEM_STATES:
            continue
        for bucket, gross, tax in _item_parts(item, currency, tax_map):
            buckets = add_totals(buckets, {bucket: BucketTotals(gross, gross - tax, tax)})
    paid: dict[str, int] = {}
    for payment in payments:
        if payment.get("State") in _SKIPPED_PAYMENT_STATES:
            continue
        method, amount = _payment(payment, currency)
        paid = add_counts(paid, {method: amount})
    return Breakdown(currency, buckets, paid)


def check_balance(breakdown: Breakdown, what: str) -> None:
    """A receipt-type bill is fully paid: its payments must equal its items."""
    paid = sum(breakdown.payments.values())
    if paid != breakdown.gross:
        c = breakdown.currency
        raise BreakdownError(
            f"{what} does not balance: its items total {format_minor(breakdown.gross, c)} {c} "
            f"but its payments {format_minor(paid, c)} {c}."
        )


def _item_label(item: Mapping[str, Any]) -> str:
    name, ident = item.get("BillingName") or item.get("Name"), item.get("Id")
    if name and ident:
        return f'"{name}" ({ident})'
    return f'"{name}"' if name else f"{ident or '(without id)'}"


def _item_parts(item: Mapping[str, Any], currency: str, tax_map: TaxMap) -> list[tuple[str, int, int]]:
    """(bucket, gross, tax) for each taxed part of an order item."""
    label = _item_label(item)
    amount = item.get("Amount")
    if not isinstance(amount, Mapping):
        raise BreakdownError(f"Item {label} has no amount.")
    if amount.get("Currency") != currency:
        raise BreakdownError(
            f"Item {label} is in {amount.get('Currency')}, but this fiscal machine records {currency}."
        )
    try:
        gross = to_minor(to_decimal(_first(amount, "GrossValue", "Value")), currency)
        parts = _tax_parts(item, amount, gross, currency)
    except ValueError as exc:
        raise BreakdownError(f"Item {label}: {exc}.") from None
    result = []
    for code, rate, part_gross, tax in parts:
        bucket = tax_map.bucket(code, rate)
        if bucket is None:
            what = (
                f'tax code "{code}"'
                if code
                else (f"tax rate {rate.normalize()} %" if rate is not None else "no tax code")
            )
            raise BreakdownError(f"Item {label} has {what}, which tax_map does not map to a tax bucket.")
        result.append((bucket, part_gross, tax))
    return result


_TaxPart = tuple[str | None, Decimal | None, int, int]


def _tax_parts(
    item: Mapping[str, Any], amount: Mapping[str, Any], gross: int, currency: str
) -> list[_TaxPart]:
    """(code, rate in percent, gross, tax) per tax of an item; a mismatch raises ``ValueError``."""
    breakdown = (amount.get("Breakdown") or {}).get("Items") or []
    parts: list[_TaxPart]
    if breakdown:
        parts = []
        for part in breakdown:
            net = to_minor(to_decimal(part.get("NetValue")), currency)
            tax = to_minor(to_decimal(part.get("TaxValue") or 0), currency)
            parts.append((part.get("TaxRateCode"), None, net + tax, tax))
        if sum(p[2] for p in parts) != gross:
            total = format_minor(sum(p[2] for p in parts), currency)
            raise ValueError(
                f"its tax breakdown adds up to {total}, not to its amount {format_minor(gross, currency)}"
            )
        return parts
    if "TaxRate" in amount or "Tax" in amount:  # legacy currency value {Value, Net, Tax, TaxRate}
        rate = amount.get("TaxRate")
        tax = to_minor(to_decimal(amount.get("Tax") or 0), currency)
        code = item.get("TaxRateCode") or amount.get("TaxRateCode")
        parts = [(code, to_decimal(rate) * 100 if rate is not None else None, gross, tax)]
    else:
        taxes = amount.get("TaxValues") or []
        if len(taxes) > 1:
            raise ValueError("it carries several taxes but no breakdown of its amount between them")
        tax = to_minor(to_decimal(taxes[0].get("Value") or 0), currency) if taxes else 0
        parts = [(taxes[0].get("Code") if taxes else None, None, gross, tax)]
    net_value = _first(amount, "NetValue", "Net", default=None)
    if net_value is not None and to_minor(to_decimal(net_value), currency) + parts[0][3] != gross:
        raise ValueError(
            f"its net {net_value} plus tax {format_minor(parts[0][3], currency)} is not its gross "
            f"{format_minor(gross, currency)}"
        )
    return parts


def _first(mapping: Mapping[str, Any], *keys: str, default: Any = ...) -> Any:
    for key in keys:
        if mapping.get(key) is not None:
            return mapping[key]
    if default is ...:
        raise ValueError(f"its amount has no {keys[0]}")
    return default


def _payment(payment: Mapping[str, Any], currency: str) -> tuple[str, int]:
    """(payment type, amount paid): Mews books payments as negative amounts, receipts show them positive."""
    method = str(payment.get("Type") or "Payment")
    label = f"Payment {method} ({payment.get('Id') or 'without id'})"
    amount = payment.get("Amount")
    if not isinstance(amount, Mapping):
        raise BreakdownError(f"{label} has no amount.")
    if amount.get("Currency") != currency:
        raise BreakdownError(
            f"{label} is in {amount.get('Currency')}, but this fiscal machine records {currency}."
        )
    try:
        return method, -to_minor(to_decimal(_first(amount, "GrossValue", "Value")), currency)
    except ValueError as exc:
        raise BreakdownError(f"{label}: {exc}.") from None


def item_lines(items: Iterable[Mapping[str, Any]], *, currency: str, tax_map: TaxMap) -> list[dict[str, Any]]:
    """The lines a printed receipt lists: one per item and tax bucket, in minor units.

    ``quantity`` and ``unit`` (price per unit) are given when the item has one bucket and its amount
    divides evenly by its unit count; ``name`` is what Mews prints on the bill.
    """
    lines = []
    for item in items:
        if item.get("AccountingState") in _SKIPPED_ITEM_STATES:
            continue
        parts = _item_parts(item, currency, tax_map)
        name = str(item.get("BillingName") or item.get("Name") or item.get("Type") or "Item")
        count = item.get("UnitCount")
        count = count if isinstance(count, int) and not isinstance(count, bool) and count > 0 else 1
        for bucket, gross, _ in parts:
            whole = len(parts) == 1 and gross % count == 0
            lines.append(
                {
                    "name": name,
                    "quantity": count if whole else 1,
                    "unit": gross // count if whole else gross,
                    "amount": gross,
                    "bucket": bucket,
                }
            )
    return lines

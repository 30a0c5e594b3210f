"""Mews "extended amounts" (net, gross, per-tax values and breakdown) computed from tax rates."""

from __future__ import annotations

from collections.abc import Sequence
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

CENT = Decimal("0.01")

TaxRate = tuple[str, Decimal]  # (rate code such as "AT-S", fraction such as 0.2)


def to_decimal(value: Decimal | float) -> Decimal:
    """Exact decimal of a JSON number; repr() keeps 2.4 as 2.4 rather than 2.39999..."""
    return value if isinstance(value, Decimal) else Decimal(repr(value))


def _cents(value: Decimal) -> Decimal:
    return value.quantize(CENT, rounding=ROUND_HALF_UP)


def extended_amount(
    currency: str, rates: Sequence[TaxRate], *, gross: Decimal | None = None, net: Decimal | None = None
) -> dict[str, Any]:
    """The amount as Mews returns it; pass the gross value (Gross pricing) or the net value (Net pricing).

    Values are floats in the result so that tests can compare them with plain literals.
    """
    if gross is not None:
        net = _cents(gross / (1 + sum((rate for _, rate in rates), Decimal(0))))
        taxes = [(code, _cents(net * rate)) for code, rate in rates]
        if taxes:
            # The rounding remainder goes to the first tax so that net + taxes == gross, as on a bill.
            code, value = taxes[0]
            taxes[0] = (code, value + gross - net - sum(tax for _, tax in taxes))
    elif net is not None:
        taxes = [(code, _cents(net * rate)) for code, rate in rates]
        gross = net + sum(tax for _, tax in taxes)
    else:
        raise ValueError("an amount needs a gross or a net value")
    breakdown = [{"TaxRateCode": code, "NetValue": float(net), "TaxValue": float(tax)} for code, tax in taxes]
    return {
        "Currency": currency,
        "NetValue": float(net),
        "GrossValue": float(gross),
        "TaxValues": [{"Code": code, "Value": float(tax)} for code, tax in taxes],
        "Breakdown": {"Items": breakdown or [{"TaxRateCode": None, "NetValue": float(net), "TaxValue": 0.0}]},
    }

"""The VAT breakdown from Mews items: Decimal only, every mismatch named."""

from __future__ import annotations

from decimal import Decimal

import pytest

from mews_bridge_fiscal_virtual.money import (
    BreakdownError,
    BucketTotals,
    TaxMap,
    bill_breakdown,
    check_balance,
    format_minor,
    to_minor,
)

TAX_MAP = TaxMap({"AT-20": "Normal", "AT-10": "Erm1", "20": "Normal", "10%": "Erm1", "none": "Null"})


def test_buckets_sum_gross_and_mews_taxes(mk):
    items = [
        mk.item("i1", "Dinner", "12.00", "AT-20", "2.00"),
        mk.item("i2", "Wine", "7.30", "AT-20", "1.22"),
        mk.item("i3", "Room", "5.50", "AT-10", "0.50"),
        mk.item("i4", "Deposit fee", "1.00", None),
    ]
    result = bill_breakdown(
        items,
        [mk.payment("p1", "20.00"), mk.payment("p2", "5.80", "CreditCardPayment")],
        currency="EUR",
        tax_map=TAX_MAP,
    )
    assert dict(result.buckets) == {
        "Erm1": BucketTotals(550, 500, 50),
        "Normal": BucketTotals(1930, 1608, 322),
        "Null": BucketTotals(100, 100, 0),
    }
    assert dict(result.payments) == {"CashPayment": 2000, "CreditCardPayment": 580}
    check_balance(result, "Bill 1")


def test_floats_from_a_json_parser_are_read_exactly(mk):
    entry = mk.item("i1", "Dinner", "0", "AT-20")
    entry["Amount"] |= {
        "GrossValue": 0.1 + 0.2 - 0.3 + 19.99,
        "NetValue": 16.66,
        "TaxValues": [{"Code": "AT-20", "Value": 3.33}],
    }
    del entry["Amount"]["Breakdown"]
    assert bill_breakdown([entry], [], currency="EUR", tax_map=TAX_MAP).buckets["Normal"] == BucketTotals(
        1999, 1666, 333
    )


def test_unmapped_tax_code_names_the_item(mk):
    items = [
        mk.item("i1", "Dinner", "12.00", "AT-20", "2.00"),
        mk.item("i9", "Spa", "30.00", "AT-13", "3.45"),
    ]
    with pytest.raises(
        BreakdownError, match=r'Item "Spa" \(i9\) has tax code "AT-13", which tax_map does not map'
    ):
        bill_breakdown(items, [], currency="EUR", tax_map=TAX_MAP)


def test_untaxed_item_needs_the_none_key(mk):
    with pytest.raises(BreakdownError, match=r'"Fee" \(i1\) has no tax code'):
        bill_breakdown(
            [mk.item("i1", "Fee", "1.00", None)], [], currency="EUR", tax_map=TaxMap({"AT-20": "Normal"})
        )


def test_legacy_amount_with_rate_maps_by_rate():
    legacy = {
        "Id": "a1",
        "Name": "Minibar",
        "Amount": {"Currency": "EUR", "Value": 11, "Net": 10, "Tax": 1, "TaxRate": 0.1},
    }
    result = bill_breakdown([legacy], [], currency="EUR", tax_map=TAX_MAP)
    assert result.buckets == {"Erm1": BucketTotals(1100, 1000, 100)}
    legacy["Amount"]["TaxRate"] = 0.13
    with pytest.raises(BreakdownError, match=r'"Minibar" \(a1\) has tax rate 13 %'):
        bill_breakdown([legacy], [], currency="EUR", tax_map=TAX_MAP)


def test_item_whose_net_and_tax_do_not_make_its_gross_is_refused(mk):
    entry = mk.item("i1", "Dinner", "12.00", "AT-20", "2.00")
    entry["Amount"]["Breakdown"]["Items"][0]["TaxValue"] = "2.01"
    with pytest.raises(
        BreakdownError, match=r'"Dinner" \(i1\): its tax breakdown adds up to 12.01, not to its amount 12.00'
    ):
        bill_breakdown([entry], [], currency="EUR", tax_map=TAX_MAP)
    del entry["Amount"]["Breakdown"]
    entry["Amount"]["GrossValue"] = "12.01"
    with pytest.raises(
        BreakdownError, match=r'"Dinner" \(i1\): its net 10.00 plus tax 2.00 is not its gross 12.01'
    ):
        bill_breakdown([entry], [], currency="EUR", tax_map=TAX_MAP)


def test_split_item_goes_to_two_buckets(mk):
    package = mk.item("i1", "Room and breakfast", "0", "AT-10")
    package["Amount"] = {
        "Currency": "EUR",
        "GrossValue": "122.00",
        "NetValue": "110.00",
        "Breakdown": {
            "Items": [
                {"TaxRateCode": "AT-10", "NetValue": "100.00", "TaxValue": "10.00"},
                {"TaxRateCode": "AT-20", "NetValue": "10.00", "TaxValue": "2.00"},
            ]
        },
    }
    result = bill_breakdown([package], [], currency="EUR", tax_map=TAX_MAP)
    assert result.buckets == {
        "Erm1": BucketTotals(11000, 10000, 1000),
        "Normal": BucketTotals(1200, 1000, 200),
    }


def test_several_taxes_without_breakdown_cannot_be_split(mk):
    entry = mk.item("i1", "Drink", "12.00", "AT-20", "2.00")
    del entry["Amount"]["Breakdown"]
    entry["Amount"]["TaxValues"].append({"Code": "AT-10", "Value": "0.10"})
    with pytest.raises(BreakdownError, match="several taxes"):
        bill_breakdown([entry], [], currency="EUR", tax_map=TAX_MAP)


def test_other_currency_and_sub_cent_amounts_are_refused(mk):
    with pytest.raises(
        BreakdownError, match=r'"Dinner" \(i1\) is in CZK, but this fiscal machine records EUR'
    ):
        bill_breakdown(
            [mk.item("i1", "Dinner", "12.00", "AT-20", "2.00", "CZK")], [], currency="EUR", tax_map=TAX_MAP
        )
    with pytest.raises(BreakdownError, match="more decimals than EUR allows"):
        bill_breakdown(
            [mk.item("i1", "Dinner", "12.001", "AT-20", "2.00")], [], currency="EUR", tax_map=TAX_MAP
        )
    with pytest.raises(BreakdownError, match=r"Payment CashPayment \(p1\) is in USD"):
        bill_breakdown([], [mk.payment("p1", "1.00", currency="USD")], currency="EUR", tax_map=TAX_MAP)


def test_cancelled_items_and_failed_payments_do_not_count(mk):
    dropped = mk.item("i2", "Mistake", "50.00", "AT-20", "8.33") | {"AccountingState": "Canceled"}
    failed = mk.payment("p2", "50.00") | {"State": "Failed"}
    result = bill_breakdown(
        [mk.item("i1", "Dinner", "12.00", "AT-20", "2.00"), dropped],
        [mk.payment("p1", "12.00"), failed],
        currency="EUR",
        tax_map=TAX_MAP,
    )
    assert result.gross == 1200 and dict(result.payments) == {"CashPayment": 1200}


def test_unbalanced_bill_is_named(mk):
    result = bill_breakdown(
        [mk.item("i1", "Dinner", "12.00", "AT-20", "2.00")],
        [mk.payment("p1", "10.00")],
        currency="EUR",
        tax_map=TAX_MAP,
    )
    with pytest.raises(
        BreakdownError, match=r"Bill 7 does not balance: its items total 12.00 EUR but its payments 10.00 EUR"
    ):
        check_balance(result, "Bill 7")


@pytest.mark.parametrize(
    ("amount", "currency", "minor", "text"),
    [
        ("12.5", "EUR", 1250, "12.50"),
        ("1500", "JPY", 1500, "1500"),
        ("-1.005", "KWD", -1005, "-1.005"),
        ("0", "PLN", 0, "0.00"),
    ],
)
def test_minor_units_follow_the_currency(amount, currency, minor, text):
    assert to_minor(Decimal(amount), currency) == minor
    assert format_minor(minor, currency) == text

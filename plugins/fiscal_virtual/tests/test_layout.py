"""The printed receipt's layout: what each kind of receipt says in words, amounts in the property's
locale, and tables that stay readable on a narrow roll."""

from __future__ import annotations

import pytest

from mews_bridge_fiscal_virtual.layout import (
    ReceiptStyle,
    babel_locale,
    closing_report,
    payment_label,
    receipt,
)
from mews_bridge_fiscal_virtual.profiles.rksv import BUCKETS, RksvProfile

RKSV = RksvProfile("AT-REG1", "U:ATU12345678-K1", None)
STYLE = ReceiptStyle(
    header=("Hotel Sonne", "Hauptplatz 1"),
    tax_identifier="ATU12345678",
    footer=("Danke!",),
    locale="de_AT",
    kind_words={kind: words for kind in ("STORNO", "TRAINING", "NULL") if (words := RKSV.kind_label(kind))},
    bucket_labels=RKSV.bucket_labels,
    bucket_order=BUCKETS,
    qr_code=True,
)
# A JWS whose payload is "x" and signature 64 zero bytes: enough for the short code on paper.
CODE = "eyJhbGciOiJFUzI1NiJ9.eA." + "A" * 86


def payload(kind: str = "SALE", **fields) -> dict:
    totals = {"Normal": {"gross": 1200, "net": 1000, "tax": 200}}
    return {
        "kind": kind,
        "register_id": "AT-REG1",
        "receipt_number": "AT-REG1-7",
        "ts_local": "2026-03-10T10:00:00",
        "currency": "EUR",
        "bill": {"number": "1001"},
        "totals": totals,
        "payments": {"CashPayment": 1200},
        "lines": [{"name": "Dinner", "quantity": 1, "unit": 1200, "amount": 1200, "bucket": "Normal"}],
        "profile_code": CODE,
        "corrected_receipt": None,
        "note": None,
        **fields,
    }


def words(printed) -> list[str]:
    return [line.strip() for line in [*printed.top, *printed.bottom]]


@pytest.mark.parametrize(
    ("kind", "marks"),
    [
        ("STORNO", ["STORNO - CANCELS A RECEIPT", "Stornobuchung", "Corrects receipt AT-REG1-3"]),
        ("TRAINING", ["TRAINING RECEIPT - NOT A SALE", "Trainingsbuchung"]),
        ("REFUND", ["REFUND", "Corrects receipt AT-REG1-3"]),
        ("NULL", ["NULL RECEIPT - NO TURNOVER", "Nullbeleg"]),
    ],
)
def test_special_receipts_say_what_they_are_in_words(kind, marks):
    printed = receipt(payload(kind, corrected_receipt="AT-REG1-3"), STYLE)
    assert set(marks) <= set(words(printed))
    assert "RECEIPT" not in words(printed)


def test_a_copy_says_so_at_its_head_and_foot_with_why():
    printed = receipt(payload(), STYLE, copy="Reprinted 2026-03-11 09:00:00")
    assert words(printed).count("*** COPY ***") == 2
    assert "Reprinted 2026-03-11 09:00:00" in words(printed)
    assert "*** COPY ***" not in words(receipt(payload(), STYLE))


def test_an_overpaid_bill_shows_the_change():
    printed = receipt(payload(payments={"CashPayment": 2000}), STYLE)
    assert f"{'Cash':<39}{'€ 20,00':>9}" in printed.top
    assert f"{'Change':<40}{'€ 8,00':>8}" in printed.top


def test_amounts_follow_the_property_locale():
    polish = ReceiptStyle(locale=babel_locale("pl-PL"))
    totals = {"A": {"gross": 123450, "net": 100366, "tax": 23084}}
    printed = receipt(payload(currency="PLN", totals=totals, lines=[], payments={}), polish)
    assert f"{'TOTAL':<37}{'1 234,50 zł':>11}" in printed.top
    assert (
        f"{'A':<8}{'1 003,66':>13}{'230,84':>13}{'1 234,50':>13}" in printed.top
    )  # a letter bucket is its letter
    english = receipt(
        payload(totals=totals, currency="PLN", lines=[], payments={}), ReceiptStyle(locale="en_GB")
    )
    assert f"{'TOTAL':<37}PLN1,234.50" in english.top
    assert babel_locale("xx-YY") == "en"


def test_a_narrow_roll_puts_wide_amounts_of_the_vat_table_on_lines_of_their_own():
    big = {"Normal": {"gross": 12345678, "net": 10288065, "tax": 2057613}}
    printed = receipt(payload(totals=big, lines=[], payments={}), ReceiptStyle(columns=32, locale="de_AT"))
    at = printed.top.index("VAT          Net     Tax   Gross")
    assert printed.top[at + 1 : at + 5] == [
        "A Normal",
        f"{'  Net':<22}{'102.880,65':>10}",
        f"{'  Tax':<23}{'20.576,13':>9}",
        f"{'  Gross':<22}{'123.456,78':>10}",
    ]


def test_payment_types_read_as_words():
    assert [payment_label(m) for m in ("CashPayment", "CreditCardPayment", "Invoice")] == [
        "Cash",
        "Credit card",
        "Invoice",
    ]


def test_a_daily_closing_prints_its_figures():
    closing = {
        "type": "Z",
        "number": 3,
        "period": "2026-03-10",
        "first_seq": 5,
        "last_seq": 9,
        "counts": {"SALE": 4, "STORNO": 1},
        "totals": {"Normal": {"gross": 4800, "net": 4000, "tax": 800}},
        "gross_by_kind": {"SALE": 6000, "STORNO": -1200},
        "payments": {"CashPayment": 4800},
        "turnover_before": 10000,
        "turnover_after": 14800,
    }
    lines = [line.strip() for line in closing_report(payload("Z", closing=closing), STYLE)]
    assert {"DAILY CLOSING (Z) #3", "Period 2026-03-10"} <= set(lines)
    assert f"{'Turnover counter after':<40}{'€ 148,00':>8}" in lines
    assert f"{'of which storno':<38}{'-€ 12,00':>8}" in lines
    assert [line for line in lines if line.startswith(("sale", "storno"))] == [
        "sale                                         4",
        "storno                                       1",
    ]


def test_a_closing_printed_again_is_marked_as_a_copy():
    closing = {
        "type": "Z",
        "number": 1,
        "period": "2026-03-10",
        "first_seq": 1,
        "last_seq": 2,
        "counts": {"SALE": 1},
        "totals": {},
        "gross_by_kind": {},
        "payments": {},
        "turnover_before": 0,
        "turnover_after": 0,
    }
    lines = [
        line.strip() for line in closing_report(payload("Z", closing=closing), STYLE, copy="Printed again")
    ]
    assert lines[lines.index("*** COPY ***") + 1 :][:2] == ["Printed again", "DAILY CLOSING (Z) #1"]

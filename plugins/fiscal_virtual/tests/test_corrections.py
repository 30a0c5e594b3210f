"""Bill corrections become storno, refund, difference or null receipts as docs/reference/fiscal.md maps them."""

from __future__ import annotations

import pytest

from mews_bridge import CommandRejected
from mews_bridge_fiscal_virtual.export import write_export
from mews_bridge_fiscal_virtual.profiles.base import b64url_decode
from mews_bridge_fiscal_virtual.verify import verify_export


def signed_fields(entry) -> list[str]:
    """The RKSV receipt data string of an entry, split into its fields."""
    return b64url_decode(entry.profile_code.split(".")[1]).decode().split("_")


def corrective(
    mk, ident: str, kind: str, corrected: str | None, items: list | None = None, payments: list | None = None
):
    return mk.bill(
        ident,
        f"C-{ident}",
        CorrectionState="CorrectiveBill",
        CorrectionType=kind,
        CorrectedBillId=corrected,
        OrderItems=items,
        PaymentItems=payments,
    )


@pytest.fixture
async def sold(harness, mk, sale_bill):
    """A driver with bill-1 (12,00 at 20 % + 5,50 at 10 %) fiscalised as AT-REG1-2."""
    driver = await harness.driver()
    await driver.execute(mk.job("cmd-1", mk.legacy(sale_bill())))
    return driver


async def test_cancellation_is_a_storno_of_the_whole_receipt(sold, mk):
    negative = [
        mk.item("n1", "Dinner", "-12.00", "AT-20", "-2.00"),
        mk.item("n2", "Room", "-5.50", "AT-10", "-0.50"),
    ]
    notes = await sold.execute(
        mk.job("cmd-2", mk.legacy(corrective(mk, "bill-1c", "Cancellation", "bill-1", negative)))
    )
    assert notes.startswith("Storno receipt AT-REG1-3 · code ") and notes.endswith(" · corrects AT-REG1-2")
    entry = sold.register.entry_for_command("cmd-2")
    assert entry.kind == "STORNO"
    assert entry.payload["totals"]["Normal"] == {"gross": -1200, "net": -1000, "tax": -200}
    assert entry.payload["turnover_counter"] == 0  # storno receipts move the counter
    assert signed_fields(entry)[5:11] == ["-12,00", "-5,50", "0,00", "0,00", "0,00", "U1RP"]


async def test_cancellation_without_items_reverses_the_recorded_receipt(sold, mk, harness):
    await sold.execute(mk.job("cmd-2", mk.flat(corrective(mk, "bill-1c", "Cancellation", "bill-1"))))
    entry = sold.register.entry_for_command("cmd-2")
    assert entry.payload["totals"] == {
        "Erm1": {"gross": -550, "net": -500, "tax": -50},
        "Normal": {"gross": -1200, "net": -1000, "tax": -200},
    }
    assert harness.mews.calls[0] == ("orderItems/getAll", ("bill-1c",))


async def test_cancellation_that_does_not_match_its_receipt_is_rejected(sold, mk):
    partial = [mk.item("n1", "Dinner", "-12.00", "AT-20", "-2.00")]
    with pytest.raises(CommandRejected, match="cancels receipt AT-REG1-2, but its items do not add up"):
        await sold.execute(
            mk.job("cmd-2", mk.legacy(corrective(mk, "bill-1c", "Cancellation", "bill-1", partial)))
        )


async def test_cancellation_of_an_unknown_bill_needs_items(sold, mk):
    with pytest.raises(CommandRejected, match="no receipt on this fiscal machine"):
        await sold.execute(mk.job("cmd-2", mk.flat(corrective(mk, "bill-9c", "Cancellation", None))))


async def test_credit_note_is_a_refund_receipt(sold, mk):
    refund = [mk.item("r1", "Room", "-5.50", "AT-10", "-0.50")]
    back = [mk.payment("rp", "-5.50")]
    notes = await sold.execute(
        mk.job("cmd-2", mk.legacy(corrective(mk, "bill-1r", "CreditNote", "bill-1", refund, back)))
    )
    assert notes.startswith("Refund receipt AT-REG1-3") and notes.endswith("corrects AT-REG1-2")
    entry = sold.register.entry_for_command("cmd-2")
    assert entry.payload["turnover_counter"] == 1200
    assert entry.payload["payments"] == {"CashPayment": -550}
    fields = signed_fields(entry)
    assert fields[5:10] == ["0,00", "-5,50", "0,00", "0,00", "0,00"] and fields[10] not in ("U1RP", "VFJB")


async def test_credit_note_with_a_positive_total_is_rejected(sold, mk):
    wrong = [mk.item("r1", "Room", "5.50", "AT-10", "0.50")]
    with pytest.raises(CommandRejected, match="is a CreditNote but its total is positive"):
        await sold.execute(
            mk.job("cmd-2", mk.legacy(corrective(mk, "bill-1r", "CreditNote", "bill-1", wrong, [])))
        )


async def test_edit_records_the_difference_to_the_original(sold, mk):
    edited = [
        mk.item("e1", "Dinner", "12.00", "AT-20", "2.00"),
        mk.item("e2", "Room", "7.00", "AT-10", "0.64"),
    ]
    paid = [mk.payment("ep", "19.00")]
    notes = await sold.execute(
        mk.job("cmd-2", mk.legacy(corrective(mk, "bill-1e", "Edit", "bill-1", edited, paid)))
    )
    assert notes.startswith("Receipt AT-REG1-3")
    entry = sold.register.entry_for_command("cmd-2")
    assert entry.payload["totals"] == {"Erm1": {"gross": 150, "net": 136, "tax": 14}}
    assert entry.payload["note"] == "difference to AT-REG1-2"
    assert entry.payload["turnover_counter"] == 1900


async def test_edit_without_amount_change_is_a_null_receipt(sold, mk, sale_bill, tmp_path):
    same = sale_bill("bill-1e") | {
        "CorrectionState": "CorrectiveBill",
        "CorrectionType": "Edit",
        "CorrectedBillId": "bill-1",
        "PaymentItems": [mk.payment("card", "17.50", "CreditCardPayment")],  # only the payment type changed
    }
    notes = await sold.execute(mk.job("cmd-2", mk.legacy(same)))
    assert notes.startswith("Null receipt AT-REG1-3")
    entry = sold.register.entry_for_command("cmd-2")
    assert (entry.payload["totals"], entry.payload["payments"]) == ({}, {})
    assert entry.payload["turnover_counter"] == 1750
    assert signed_fields(entry)[5:10] == ["0,00"] * 5
    write_export(sold.register, tmp_path / "e.zip", sold.clock())
    assert verify_export(tmp_path / "e.zip").receipts == 3


async def test_edit_of_a_bill_without_receipt_is_recorded_in_full(sold, mk):
    items = [mk.item("e1", "Dinner", "12.00", "AT-20", "2.00")]
    await sold.execute(mk.job("cmd-2", mk.legacy(corrective(mk, "bill-8e", "Edit", "bill-8", items, []))))
    entry = sold.register.entry_for_command("cmd-2")
    assert entry.kind == "SALE" and entry.payload["turnover_counter"] == 2950
    assert entry.payload["note"] == "edited bill in full: the original has no receipt here"


async def test_reinstatement_is_a_new_sale_referencing_the_cancelled_bill(sold, mk, sale_bill):
    await sold.execute(mk.job("cmd-2", mk.flat(corrective(mk, "bill-1c", "Cancellation", "bill-1"))))
    again = sale_bill("bill-1n") | {
        "CorrectionState": "CorrectiveBill",
        "CorrectionType": "Reinstatement",
        "CorrectedBillId": "bill-1c",
    }
    notes = await sold.execute(mk.job("cmd-3", mk.legacy(again)))
    assert notes.startswith("Receipt AT-REG1-4") and notes.endswith("corrects AT-REG1-3")
    assert sold.register.entry_for_command("cmd-3").payload["turnover_counter"] == 1750


async def test_receivable_payments_balance_is_a_null_receipt(sold, mk):
    balance = corrective(
        mk, "bill-1b", "ReceivablePaymentsBalance", "bill-1", [], [mk.payment("bp", "17.50")]
    )
    notes = await sold.execute(mk.job("cmd-2", mk.legacy(balance)))
    assert notes.startswith("Null receipt AT-REG1-3")
    entry = sold.register.entry_for_command("cmd-2")
    assert (
        entry.payload["turnover_counter"] == 1750
        and entry.payload["note"] == "payment balancing, no turnover"
    )


async def test_zero_total_bill_is_a_null_receipt(sold, mk):
    free = mk.bill(
        "bill-0", OrderItems=[mk.item("z", "Welcome drink", "0.00", "AT-20", "0.00")], PaymentItems=[]
    )
    assert (await sold.execute(mk.job("cmd-2", mk.legacy(free)))).startswith("Null receipt AT-REG1-3")


async def test_training_mode_signs_tra_receipts_outside_the_counter(harness, mk, sale_bill):
    driver = await harness.driver(training=True)
    notes = await driver.execute(mk.job("cmd-1", mk.legacy(sale_bill())))
    assert notes.startswith("Training receipt AT-REG1-2")
    entry = driver.register.entry_for_command("cmd-1")
    assert entry.payload["turnover_counter"] == 0
    assert signed_fields(entry)[5:11] == ["12,00", "5,50", "0,00", "0,00", "0,00", "VFJB"]


async def test_invoices_can_be_left_out_of_the_turnover(harness, mk):
    driver = await harness.driver(fiscalise_invoices=False)
    invoice = mk.bill(
        "inv-1",
        "2001",
        Type="Invoice",
        OrderItems=[mk.item("i", "Room", "100.00", "AT-10", "9.09")],
        PaymentItems=[],
    )
    notes = await driver.execute(mk.job("cmd-1", mk.legacy(invoice)))
    assert notes.startswith("Null receipt AT-REG1-2")
    assert driver.register.entry_for_command("cmd-1").payload["note"] == "invoice, not fiscalised"

"""From a Mews fiscal command to a receipt draft: payload shapes, item lookup, corrections.

Corrections (``CorrectionState = CorrectiveBill``) map to journal kinds as docs/reference/fiscal.md sets out:

* ``Cancellation`` → STORNO of the whole original bill: the negated totals of its receipt in this
  journal (the corrective bill's own items, if any, must agree); without that receipt, the
  corrective bill's items.
* ``CreditNote`` → REFUND with the credit note's (negative) amounts, referencing the original.
* ``Edit`` → one SALE of the **difference** between the edited bill and the original's receipt (a
  NULL receipt if only names or addresses changed). One record per command, no double turnover.
  Without the original in this journal, the edited bill is recorded in full.
* ``Reinstatement`` → a new SALE referencing the cancelled bill.
* ``ReceivablePaymentsBalance`` → a NULL receipt: payments only, no turnover.

A bill whose total is zero becomes a NULL receipt; in training mode every other receipt becomes a
TRAINING receipt (RKSV ``TRA``: signed, but outside the turnover counter).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from mews_bridge import Bill, FiscalMachineData

from .journal import Entry, plain_json
from .money import Breakdown, BreakdownError, TaxMap, bill_breakdown, check_balance, item_lines
from .register import ReceiptDraft

if TYPE_CHECKING:
    from mews_bridge import MewsClient

# Guest data Mews puts on bills; the journal keeps ids, not names and addresses (GDPR minimisation).
_PERSONAL_KEYS = frozenset(
    {
        "OwnerData",
        "Owner",
        "AssociatedAccountData",
        "AssociatedAccountsData",
        "AssigneeData",
        "CompanyDetails",
        "Creator",
    }
)
_ITEM_ARRAYS = ("OrderItems", "PaymentItems", "Revenue", "Payments")
# What the evidence keeps of an order item or payment: enough to recompute the receipt.
_ITEM_FIELDS = (
    "Id", "BillId", "BillingName", "Type", "AccountingState", "State", "UnitCount", "Amount", "ConsumedUtc"
)  # fmt: skip


class FiscalBill(Bill):
    """A bill in a fiscal command: legacy (maybe with the deprecated item arrays) or 2025-06-23."""

    order_items: list[dict[str, Any]] | None = None
    payment_items: list[dict[str, Any]] | None = None
    revenue: list[dict[str, Any]] | None = None
    payments: list[dict[str, Any]] | None = None


class FiscalCommandData(FiscalMachineData):
    """The legacy ``Data`` of a FiscalMachine command, or the flat 2025-06-23 fiscal command (``Owner``,
    ``AssociatedAccountsData``, ``CommandData``, no item arrays): both carry ``Bill``."""

    bill: FiscalBill
    command_data: dict[str, Any] | None = None


def embedded_lines(bill: FiscalBill) -> tuple[list[dict[str, Any]] | None, list[dict[str, Any]] | None]:
    """Items and payments sent with the bill, or None for each that did not come (then fetch it)."""
    return (bill.order_items or bill.revenue or None, bill.payment_items or bill.payments or None)


async def fetch_bill_lines(
    mews: MewsClient, bill_id: str, *, items: bool, payments: bool
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Order items and payments of a bill from Mews (``orderItems/getAll``, ``payments/getAll``), as the
    Mews-shaped dicts the breakdown and the evidence read (amounts as the client parsed them, exactly)."""
    found_items = await mews.get_order_items(bill_ids=[bill_id]) if items else []
    found_payments = await mews.get_payments(bill_ids=[bill_id]) if payments else []
    return [x.to_mews() for x in found_items], [x.to_mews() for x in found_payments]


def bill_label(bill: Bill) -> str:
    return f"Bill {bill.number}" if bill.number else f"Bill {bill.id}"


def build_draft(
    bill: Bill,
    items: Sequence[dict[str, Any]],
    payments: Sequence[dict[str, Any]],
    *,
    currency: str,
    tax_map: TaxMap,
    original: Entry | None,
    training: bool,
    fiscalise_invoices: bool,
) -> ReceiptDraft:
    """The receipt for ``bill``; ``original`` is this journal's receipt of the corrected bill, if any.

    Raises :class:`BreakdownError` (a message for the front desk) when the bill cannot be fiscalised.
    """
    what = bill_label(bill)
    ref = {
        "id": bill.id,
        "number": bill.number,
        "type": bill.type,
        "correction_type": bill.correction_type,
        "corrected_bill_id": bill.corrected_bill_id,
    }
    original_number = original.receipt_number if original else None
    corrective = bill.correction_state == "CorrectiveBill"
    correction = bill.correction_type if corrective else None
    empty = Breakdown(currency)

    if correction == "ReceivablePaymentsBalance":
        return ReceiptDraft("NULL", empty, ref, original_number, "payment balancing, no turnover")
    if bill.type == "Invoice" and not fiscalise_invoices:
        return ReceiptDraft("NULL", empty, ref, original_number, "invoice, not fiscalised")
    breakdown = bill_breakdown(items, payments, currency=currency, tax_map=tax_map)

    if not corrective or correction == "Reinstatement":
        if not corrective and bill.type == "Receipt":
            check_balance(breakdown, what)
        kind, note = "SALE", None
    elif correction == "Cancellation":
        kind, note = "STORNO", None
        if original is not None:
            cancelled = _recorded(original).negated()
            if breakdown.buckets and _gross(breakdown) != _gross(cancelled):
                raise BreakdownError(
                    f"{what} cancels receipt {original_number}, but its items do not add up to "
                    "that receipt's amounts."
                )
            breakdown = Breakdown(currency, cancelled.buckets, breakdown.payments)
        elif not breakdown.buckets:
            raise BreakdownError(
                f"{what} cancels a bill that has no receipt on this fiscal machine, "
                "and it carries no items to reverse."
            )
    elif correction == "CreditNote":
        kind, note = "REFUND", None
    elif correction == "Edit":
        kind = "SALE"
        if original is not None:
            breakdown = breakdown.minus(_recorded(original))
            note = f"difference to {original_number}"
        else:
            note = "edited bill in full: the original has no receipt here"
    else:
        raise BreakdownError(f"{what} is a corrective bill of an unknown type ({bill.correction_type}).")

    if kind in ("STORNO", "REFUND") and breakdown.gross > 0:
        raise BreakdownError(f"{what} is a {correction} but its total is positive.")
    if breakdown.is_zero():  # a null receipt carries no amounts, not even a change of payments
        return ReceiptDraft("NULL", empty, ref, original_number, note)
    lines = item_lines(items, currency=currency, tax_map=tax_map)
    if original is not None and correction in ("Cancellation", "Edit"):
        lines = (lines if correction == "Edit" else []) + _negated_lines(original)
    return ReceiptDraft(
        "TRAINING" if training else kind, breakdown, ref, original_number, note, _matching(lines, breakdown)
    )


def _negated_lines(entry: Entry) -> list[dict[str, Any]]:
    return [
        {**line, "unit": -line["unit"], "amount": -line["amount"]}
        for line in entry.payload.get("lines") or []
    ]


def _matching(lines: list[dict[str, Any]], breakdown: Breakdown) -> list[dict[str, Any]]:
    """``lines`` if they add up to the receipt's buckets, else one line per bucket (the amounts rule)."""
    sums: dict[str, int] = {}
    for line in lines:
        sums[line["bucket"]] = sums.get(line["bucket"], 0) + line["amount"]
    if {k: v for k, v in sums.items() if v} == _gross(breakdown):
        return lines
    return [
        {"name": bucket, "quantity": 1, "unit": totals.gross, "amount": totals.gross, "bucket": bucket}
        for bucket, totals in breakdown.buckets.items()
    ]


def _gross(breakdown: Breakdown) -> dict[str, int]:
    return {bucket: amount.gross for bucket, amount in breakdown.buckets.items()}


def _recorded(entry: Entry) -> Breakdown:
    """What an earlier receipt recorded, as a breakdown (to cancel it or take a difference)."""
    p = entry.payload
    return Breakdown.from_json(p["currency"], p["totals"], p["payments"])


def evidence(
    command: Any, data: FiscalCommandData, items: Sequence[dict[str, Any]], payments: Sequence[dict[str, Any]]
) -> dict[str, Any]:
    """What the journal keeps as evidence of a command: its data without guest names, and the lines used."""
    raw_data = dict(command.data) if isinstance(command.data, dict) else data.to_mews()
    if isinstance(raw_data.get("Bill"), dict):  # the lines are kept once, below
        raw_data["Bill"] = {k: v for k, v in raw_data["Bill"].items() if k not in _ITEM_ARRAYS}
    return plain_json(
        {
            "command_id": command.id,
            "created_utc": command.created_utc.isoformat(),
            "device": {"id": command.device.id, "name": command.device.name},
            "data": _without_personal_data(raw_data),
            "order_items": [{k: x[k] for k in _ITEM_FIELDS if k in x} for x in items],
            "payments": [{k: x[k] for k in _ITEM_FIELDS if k in x} for x in payments],
        }
    )


def _without_personal_data(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _without_personal_data(v) for k, v in value.items() if k not in _PERSONAL_KEYS}
    if isinstance(value, list):
        return [_without_personal_data(v) for v in value]
    return value

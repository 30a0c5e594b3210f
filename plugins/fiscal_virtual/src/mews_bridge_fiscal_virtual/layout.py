"""The printed receipt, as lines of text for a roll ``columns`` characters wide, with no I/O.

A receipt reads top to bottom: the property (name, address, tax identifier), what the paper is in
words (a copy, a training, storno, refund or null receipt), register, number, date and time in
property time, one line per item (quantity, name, unit price, amount, VAT letter), the VAT table
per rate (net, tax, gross), the total, payments and change, then the verification code (the RKSV
QR code goes between the two text parts) and the footer. Closings (Z, month, year) print as a
report of the same width.

Amounts on paper follow the property's locale (``€ 1.234,50`` in de-AT); the signed data never
does (see the profiles). Babel's locale data is imported at the first receipt laid out, not at start.
"""

from __future__ import annotations

import re
import textwrap
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from .money import minor_exponent
from .profiles.base import short_code

COLUMNS = {58: 32, 80: 48}
"""Characters of the printer's standard font (12 dots wide) per line on each roll width."""
_LETTERS = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
_KIND_TITLES = {
    "START": "START RECEIPT",
    "SALE": "RECEIPT",
    "REFUND": "REFUND",
    "STORNO": "STORNO - CANCELS A RECEIPT",
    "TRAINING": "TRAINING RECEIPT - NOT A SALE",
    "NULL": "NULL RECEIPT - NO TURNOVER",
    "MONTH": "MONTHLY NULL RECEIPT",
    "YEAR": "YEARLY NULL RECEIPT",
}
_CLOSING_TITLES = {"Z": "DAILY CLOSING (Z)", "MONTH": "MONTHLY CLOSING", "YEAR": "YEARLY CLOSING"}
_SPACES = str.maketrans({"\xa0": " ", "\u202f": " "})  # printers' code pages lack no-break spaces


@dataclass(frozen=True)
class ReceiptStyle:
    """What the printed receipt takes from the property and the options, beyond the journal entry."""

    header: tuple[str, ...] = ()
    """The property's name and address lines."""
    tax_identifier: str | None = None
    footer: tuple[str, ...] = ()
    columns: int = COLUMNS[80]
    locale: str = "en"
    """A locale such as ``de_AT``: how amounts are written on paper."""
    kind_words: Mapping[str, str] = field(default_factory=dict)
    """Words a profile requires on certain receipts (RKSV: ``Stornobuchung``, ``Trainingsbuchung``)."""
    bucket_labels: Mapping[str, str] = field(default_factory=dict)
    """A bucket's label in the VAT table (``20 %``); the bucket's name otherwise."""
    bucket_order: tuple[str, ...] = ()
    """The profile's buckets in order: their VAT letters are A, B, C… in this order."""
    qr_code: bool = False
    """Print the signed receipt data as a QR code (RKSV), not only the short verification code."""


@dataclass(frozen=True)
class PrintedReceipt:
    """The text above the QR code, the QR code's content (None: no QR code) and the text below it."""

    top: list[str]
    qr: str | None
    bottom: list[str]

    def text(self) -> str:
        return "\n".join([*self.top, *([self.qr] if self.qr else []), *self.bottom]) + "\n"


def babel_locale(language_code: str | None) -> str:
    """``de-AT`` → ``de_AT``, or ``en`` when Babel does not know it."""
    from babel.core import Locale, UnknownLocaleError  # at first use: see the module docstring

    try:
        return str(Locale.parse((language_code or "en").replace("-", "_")))
    except (ValueError, UnknownLocaleError):
        return "en"


class _Writer:
    def __init__(self, style: ReceiptStyle, currency: str) -> None:
        self.style = style
        self.width = style.columns
        self.currency = currency
        self.lines: list[str] = []

    def money(self, minor: int, *, symbol: bool = True) -> str:
        from babel.numbers import format_currency, format_decimal  # at first use: see the module docstring

        value = Decimal(minor).scaleb(-minor_exponent(self.currency))
        if symbol:
            text = format_currency(value, self.currency, locale=self.style.locale)
        else:
            digits = minor_exponent(self.currency)
            pattern = "#,##0." + "0" * digits if digits else "#,##0"
            text = format_decimal(value, format=pattern, locale=self.style.locale)
        return text.translate(_SPACES)

    def rule(self, char: str = "-") -> None:
        self.lines.append(char * self.width)

    def centred(self, text: str) -> None:
        for line in textwrap.wrap(text, self.width) or [""]:
            self.lines.append(line.center(self.width).rstrip())

    def pair(self, left: str, right: str) -> None:
        """``left`` wrapped on the left, ``right`` aligned right on its first line."""
        room = max(self.width - len(right) - 1, 8)
        wrapped = textwrap.wrap(left, room) or [""]
        if len(right) > self.width - 1 - min(len(wrapped[0]), room):
            self.lines.extend(wrapped)
            self.lines.append(right.rjust(self.width))
            return
        self.lines.append(wrapped[0].ljust(self.width - len(right)) + right)
        self.lines.extend("  " + rest for rest in textwrap.wrap(" ".join(wrapped[1:]), self.width - 2))

    def table(self, label: str, cells: Iterable[str], headers: Iterable[str]) -> None:
        """A label and right-aligned cells; one cell a line, named, when the roll is too narrow."""
        cells = list(cells)
        label_width = 8
        cell = (self.width - label_width) // len(cells)
        if all(len(text) < cell for text in cells):
            self.lines.append(label[:label_width].ljust(label_width) + "".join(t.rjust(cell) for t in cells))
            return
        self.lines.append(label)
        for header, text in zip(headers, cells, strict=True):
            self.pair(f"  {header}", text)

    def copy_mark(self, why: str | None) -> None:
        if why:
            self.centred("*** COPY ***")
            self.centred(why)

    def header(self) -> None:
        self.lines.append("")  # a top margin: the first line never starts at the paper's edge
        for line in self.style.header:
            self.centred(line)
        if self.style.tax_identifier:
            self.centred(f"VAT ID {self.style.tax_identifier}")
        self.rule("=")


def receipt(payload: Mapping[str, Any], style: ReceiptStyle, *, copy: str | None = None) -> PrintedReceipt:
    """The printed form of a receipt entry (any kind with a receipt number); ``copy`` says why it is
    a copy, and marks it as one at its head and foot."""
    w = _Writer(style, payload["currency"])
    w.header()
    w.copy_mark(copy)
    kind = payload["kind"]
    title = _KIND_TITLES.get(kind, kind)
    if kind in ("MONTH", "YEAR"):
        title += f" {payload['closing']['period']}"
    w.centred(title)
    if words := style.kind_words.get(kind):
        w.centred(words)
    if payload.get("corrected_receipt"):
        w.centred(f"Corrects receipt {payload['corrected_receipt']}")
    if payload.get("note"):
        w.centred(f"({payload['note']})")
    w.rule()
    w.pair(f"Register {payload['register_id']}", f"No. {payload['receipt_number']}")
    bill = (payload.get("bill") or {}).get("number")
    w.pair(f"Bill {bill}" if bill else "", payload["ts_local"].replace("T", " "))
    letters = _letters(payload["totals"], style)
    if payload.get("lines"):
        w.rule()
        for line in payload["lines"]:
            name = line["name"]
            if line["quantity"] != 1:
                name = f"{line['quantity']} x {name} @ {w.money(line['unit'], symbol=False)}"
            w.pair(name, f"{w.money(line['amount'])} {letters.get(line['bucket'], '?')}")
    w.rule()
    total = sum(t["gross"] for t in payload["totals"].values())
    w.pair("TOTAL", w.money(total))
    if payload["totals"]:
        _vat_table(w, payload["totals"], letters)
    if payload["payments"]:
        w.rule()
        for method, paid in payload["payments"].items():
            w.pair(payment_label(method), w.money(paid))
        change = sum(payload["payments"].values()) - total
        if change > 0:
            w.pair("Change", w.money(change))
    w.rule()
    code = payload["profile_code"]
    qr = code if style.qr_code else None
    bottom = _Writer(style, payload["currency"])
    if qr:  # white around the QR code, which scanners need
        w.lines.append("")
        bottom.lines.append("")
    bottom.centred(f"Verification code {short_code(code)}")
    if copy:
        bottom.centred("*** COPY ***")
    for line in style.footer:
        bottom.centred(line)
    return PrintedReceipt(w.lines, qr, bottom.lines)


def closing_report(
    payload: Mapping[str, Any], style: ReceiptStyle, *, header: bool = True, copy: str | None = None
) -> list[str]:
    """The printed form of a Z, MONTH or YEAR closing (``header``: with the property's name above;
    ``copy``: marked as a copy, saying why)."""
    closing = payload["closing"]
    w = _Writer(style, payload["currency"])
    if header:
        w.header()
    w.copy_mark(copy)
    w.centred(f"{_CLOSING_TITLES[closing['type']]} #{closing['number']}")
    w.centred(f"Period {closing['period']}")
    w.rule()
    w.pair(f"Register {payload['register_id']}", payload["ts_local"].replace("T", " "))
    w.pair("Records", f"{closing['first_seq'] or '-'} to {closing['last_seq'] or '-'}")
    for kind, count in closing["counts"].items():
        w.pair(f"  {kind.lower()}", str(count))
    w.rule()
    letters = _letters(closing["totals"], style)
    total = sum(t["gross"] for t in closing["totals"].values())
    w.pair("TURNOVER", w.money(total))
    if closing["totals"]:
        _vat_table(w, closing["totals"], letters)
    for kind, gross in closing["gross_by_kind"].items():
        if kind != "SALE":
            w.pair(f"  of which {kind.lower()}", w.money(gross))
    if closing["payments"]:
        w.rule()
        for method, paid in closing["payments"].items():
            w.pair(payment_label(method), w.money(paid))
    w.rule()
    w.pair("Turnover counter before", w.money(closing["turnover_before"]))
    w.pair("Turnover counter after", w.money(closing["turnover_after"]))
    w.rule("=")
    return w.lines


def payment_label(method: str) -> str:
    """``CreditCardPayment`` → ``Credit card``."""
    words = re.sub(r"(?<=[a-z])(?=[A-Z])", " ", method.removesuffix("Payment") or method).split()
    return " ".join([words[0], *(word.lower() for word in words[1:])]) if words else method


def _letters(totals: Mapping[str, Any], style: ReceiptStyle) -> dict[str, str]:
    """VAT letters: a one-letter bucket is its own letter; otherwise A, B, C… in the profile's order."""
    order = list(style.bucket_order) + sorted(set(totals) - set(style.bucket_order))
    return {
        bucket: bucket if len(bucket) == 1 else _LETTERS[index % 26] for index, bucket in enumerate(order)
    }


def _vat_table(w: _Writer, totals: Mapping[str, Any], letters: Mapping[str, str]) -> None:
    headers = ["Net", "Tax", "Gross"]
    w.table("VAT", headers, headers)
    for bucket, t in sorted(totals.items(), key=lambda item: letters[item[0]]):
        name = w.style.bucket_labels.get(bucket, "" if bucket == letters[bucket] else bucket)
        label = f"{letters[bucket]} {name}".strip()
        w.table(label, [w.money(t[key], symbol=False) for key in ("net", "tax", "gross")], headers)

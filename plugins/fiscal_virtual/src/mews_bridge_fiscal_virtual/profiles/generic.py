"""Any country, any currency: the journal's own receipt format with the same chaining and signing.

The receipt data string::

    _G1_<register>_<number>_<kind>_<local time with offset>_<currency>_<bucket=gross;…>
       _<turnover>_<key>_<chain>

Buckets are whatever ``tax_map`` names (a Polish property uses the VAT letters A-G); amounts use a
decimal point and the currency's minor unit. The turnover counter is in plain text: outside RKSV
nothing asks to hide it. This is a tamper-evident record, not a certified fiscal device.
"""

from __future__ import annotations

import re
from typing import ClassVar

from ..money import format_minor
from .base import Profile, ReceiptData, chain_value

ALGORITHM = "G1"
_BUCKET = re.compile(r"^[A-Za-z0-9]{1,16}$")


class GenericProfile(Profile):
    name = "generic"
    closings: ClassVar[tuple[str, ...]] = ("MONTH",)

    @staticmethod
    def normalize_bucket(name: str) -> str:
        if not _BUCKET.match(name):
            raise ValueError(f"{name!r} is not a bucket name (1-16 letters or digits, such as A-G)")
        return name

    def data_string(self, receipt: ReceiptData, previous_code: str | None) -> str:
        c = receipt.currency
        buckets = (
            ";".join(f"{b}={format_minor(t.gross, c)}" for b, t in sorted(receipt.totals.items())) or "-"
        )
        fields = [
            ALGORITHM,
            self.register_id,
            str(receipt.number),
            receipt.kind,
            receipt.ts_local.isoformat(timespec="seconds"),
            c,
            buckets,
            format_minor(receipt.turnover, c),
            self.key_label,
            chain_value(previous_code, self.register_id),
        ]
        return "_" + "_".join(fields)

"""The ``[[devices]] options`` of a ``fiscal_virtual`` device."""

from __future__ import annotations

from datetime import time
from decimal import Decimal
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from mews_bridge import TimeZoneName

from .layout import COLUMNS
from .profiles import PROFILES


class FiscalOptions(BaseModel):
    """Options of a virtual fiscal machine.

    ``register_id``, ``profile``, ``currency``, ``timezone``, ``day_cutoff``, ``key_id`` and ``zda``
    are written into the journal's start entry and cannot change afterwards.
    """

    model_config = ConfigDict(extra="forbid")

    profile: Literal["rksv", "generic"]
    register_id: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9.:/-]{0,63}$")
    """The register (RKSV Kassen-ID): letters, digits, ``. : / -``; never ``_`` (the RKSV separator)."""
    currency: str | None = Field(None, pattern=r"^[A-Z]{3}$")
    """ISO code; default: the property's currency. RKSV is EUR only."""
    timezone: TimeZoneName | None = None
    """IANA zone of the property (``Europe/Vienna``); default: the property's zone in Mews."""
    tax_map: dict[str, str] = Field(min_length=1)
    """Mews tax rate code (``"AT-2020-20%"``), rate in percent (``"20"``) or ``"none"`` → bucket.
    RKSV buckets: ``Normal`` (20 %), ``Erm1`` (10 %), ``Erm2`` (13 %), ``Null`` (0 %), ``Besonders``
    (19 %, 4.9 %). Generic: any short name, such as the Polish VAT letters ``A``-``G``."""
    receipt_printer: str | None = None
    """Name of a configured printer device that prints each receipt with its QR code."""
    paper_width_mm: Literal[58, 80] = 80
    """The receipt printer's roll: 80 mm (48 characters a line) or 58 mm (32)."""
    receipt_columns: int | None = Field(None, ge=24, le=64)
    """Characters per line, when the roll width does not tell (42 on an Epson TM-T88 with 80 mm)."""
    receipt_header: list[str] | None = None
    """Lines at the head of each receipt instead of the property's name and address from Mews."""
    tax_identifier: str | None = None
    """The VAT number printed on receipts; default: the property's from Mews."""
    receipt_footer: list[str] = Field(default_factory=list)
    """Lines at the foot of each receipt ("Thank you for staying with us")."""
    print_closings: bool = False
    """Print each daily (Z), monthly and yearly closing on the receipt printer when it is written."""
    key_id: str | None = Field(None, pattern=r"^[^_\s]{1,64}$")
    """RKSV field 11, required for ``rksv``: certificate serial, or for a closed system (``AT0``)
    ``U:<UID>-<key>`` (``U:ATU12345678-K1``), ``S:<tax number>-…`` or ``G:<GLN>-…``."""
    zda: str = Field("AT0", pattern=r"^AT\d{1,3}$")
    """RKSV trust service code: ``AT0`` for a closed system (the default)."""
    day_cutoff: time = time(0, 0)
    """When the business day ends in property time (``"04:00"``); the daily closing runs then."""
    training: bool = False
    """Record every bill as a training receipt (RKSV ``TRA``), outside the turnover counter."""
    fiscalise_invoices: bool = True
    """False: an ``Invoice`` bill (unpaid, no cash turnover) gets a null receipt instead of a sale."""
    max_bill_amount: Decimal = Field(Decimal(1_000_000), gt=0, allow_inf_nan=False)
    """A bill whose total, or any tax bucket or payment type, is larger (in the register's currency)
    ends in Error and nothing is signed: no hotel bill is that large, a corrupted one may be."""

    @model_validator(mode="after")
    def _profile_rules(self) -> FiscalOptions:
        profile = PROFILES[self.profile]
        try:
            self.tax_map = {key: profile.normalize_bucket(bucket) for key, bucket in self.tax_map.items()}
        except ValueError as exc:
            raise ValueError(f"tax_map: {exc}") from None
        if self.profile == "rksv":
            if self.currency not in (None, "EUR"):
                raise ValueError("the rksv profile records EUR only")
            if self.key_id is None:
                raise ValueError("the rksv profile needs key_id (RKSV field 11, such as U:ATU12345678-K1)")
        return self

    @property
    def cutoff_text(self) -> str:
        return self.day_cutoff.strftime("%H:%M")

    @property
    def columns(self) -> int:
        return self.receipt_columns or COLUMNS[self.paper_width_mm]

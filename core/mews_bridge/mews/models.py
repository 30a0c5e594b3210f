"""Typed models of the Mews Connector API objects the bridge and its plugins use.

Field names follow Mews (PascalCase on the wire, snake_case in Python). Unknown fields are kept
(``extra="allow"``) and enums are plain strings, because Mews adds values without notice.
"""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, ValidationError, field_validator
from pydantic.alias_generators import to_pascal

from ..inputs import describe_unencodable, describe_validation_error, is_encodable, unencodable_path

DeviceType = Literal["Printer", "PaymentTerminal", "KeyCutter", "FiscalMachine", "PassportScanner"]
DEVICE_TYPES: tuple[str, ...] = (
    "Printer",
    "PaymentTerminal",
    "KeyCutter",
    "FiscalMachine",
    "PassportScanner",
)

CommandState = Literal["Pending", "Received", "Processing", "Processed", "Cancelled", "Error"]
FINAL_STATES: frozenset[str] = frozenset({"Processed", "Cancelled", "Error"})


class MewsModel(BaseModel):
    """Base: PascalCase aliases, unknown fields kept, either name accepted."""

    model_config = ConfigDict(alias_generator=to_pascal, populate_by_name=True, extra="allow")

    def to_mews(self) -> dict[str, Any]:
        """The JSON-ready dict Mews expects (aliases, no unset optional fields)."""
        return self.model_dump(mode="json", by_alias=True, exclude_none=True)


class Device(MewsModel):
    id: str
    name: str
    type: str
    identifier: str | None = None


class User(MewsModel):
    first_name: str | None = None
    last_name: str | None = None


class DeviceCommand(MewsModel):
    """A command as ``commands/getAllActive`` and ``commands/getAllByIds`` return it."""

    id: str
    state: str
    created_utc: datetime
    device: Device
    creator: Any = None
    data: dict[str, Any] | None = None
    _problem: str | None = PrivateAttr(None)

    @field_validator("created_utc")
    @classmethod
    def _aware(cls, value: datetime) -> datetime:
        return value if value.tzinfo is not None else value.replace(tzinfo=UTC)  # Mews means UTC

    @property
    def problem(self) -> str | None:
        """Why this command cannot be carried out as Mews sent it (Notes for its ``Error``), or None."""
        return self._problem

    @classmethod
    def from_mews(cls, raw: Any) -> DeviceCommand | None:
        """The command in ``raw``; one that does not fit the model comes back with :attr:`problem` set
        (so it can still end in ``Error``), one without a usable ``Id`` as None."""
        ident = raw.get("Id") if isinstance(raw, dict) else None
        if not isinstance(ident, str) or not ident or not is_encodable(ident):
            return None
        bad = unencodable_path(raw)
        if bad is None:
            try:
                return cls.model_validate(raw)
            except ValidationError as exc:
                problem = describe_validation_error(exc)
        else:
            problem = describe_unencodable(bad)
        state = raw.get("State")
        try:
            device = Device.model_validate(raw.get("Device"))
            if unencodable_path(device.to_mews()):
                raise ValueError("unencodable")
        except (ValidationError, ValueError):
            device = Device(id="", name="", type="")
        try:
            created = datetime.fromisoformat(str(raw.get("CreatedUtc")))
            created = created if created.tzinfo else created.replace(tzinfo=UTC)
        except ValueError:
            created = datetime.now(UTC)
        command = cls(
            id=ident,
            state=state if isinstance(state, str) and is_encodable(state) else "Pending",
            created_utc=created,
            device=device,
        )
        command._problem = problem
        return command


class PrinterData(MewsModel):
    copy_count: int = Field(ge=1, le=100)
    file_type: str
    file_data: str
    printer_name: str = ""
    printer_driver_name: str = ""
    printer_port_name: str = ""


class KeyCutterData(MewsModel):
    key_count: int = Field(ge=1)
    lock_ids: list[str] = Field(min_length=1)
    start_utc: datetime
    end_utc: datetime
    last_name: str
    first_name: str | None = None
    normalized_first_name: str | None = None
    normalized_last_name: str | None = None
    telephone: str | None = None
    email: str | None = None
    reservation_id: str | None = None
    reservation_number: str | None = None
    key_cutter_id: str | None = None
    api_url: str | None = None
    key_cutter_data: str | None = None


class Bill(MewsModel):
    """A bill (``bills/getAll`` and fiscal commands; both the legacy and the 2025-06-23 shapes)."""

    id: str
    enterprise_id: str | None = None
    account_id: str | None = None
    account_type: str | None = None
    state: str | None = None
    type: str | None = None
    number: str | None = None
    name: str | None = None
    created_utc: datetime | None = None
    updated_utc: datetime | None = None
    issued_utc: datetime | None = None
    correction_state: str | None = None
    correction_type: str | None = None
    corrected_bill_id: str | None = None


class FiscalMachineData(MewsModel):
    bill: Bill
    fiscal_machine_id: str | None = None
    api_url: str | None = None
    fiscal_machine_data: str | None = None
    tax_identifier: str | None = None
    bill_fiscal_machine_data: dict[str, Any] | None = None
    payload_data: dict[str, Any] | None = None


class Amount(MewsModel):
    """An extended amount as Mews returns it."""

    currency: str
    net_value: Decimal | None = None
    gross_value: Decimal | None = None
    tax_values: list[dict[str, Any]] | None = None


class PaymentTerminalData(MewsModel):
    payment_terminal_id: str
    account_id: str
    amount: Amount
    bill_id: str | None = None
    payment_id: str | None = None
    preauthorization_id: str | None = None
    fee: Amount | None = None
    payment_terminal_data: str | None = None
    account_data: dict[str, Any] | None = None


class PassportScannerData(MewsModel):
    passport_scanner_id: str | None = None
    customer_id: str | None = None
    reservation_id: str | None = None


COMMAND_DATA_MODELS: dict[str, type[MewsModel]] = {
    "Printer": PrinterData,
    "KeyCutter": KeyCutterData,
    "FiscalMachine": FiscalMachineData,
    "PaymentTerminal": PaymentTerminalData,
    "PassportScanner": PassportScannerData,
}


class Reservation(MewsModel):
    """A reservation (``reservations/getAll/2023-06-06``)."""

    id: str
    account_id: str
    state: str
    service_id: str | None = None
    account_type: str | None = None
    number: str | None = None
    assigned_resource_id: str | None = None
    scheduled_start_utc: datetime | None = None
    actual_start_utc: datetime | None = None
    scheduled_end_utc: datetime | None = None
    actual_end_utc: datetime | None = None


class Customer(MewsModel):
    id: str
    last_name: str
    first_name: str | None = None
    language_code: str | None = None
    preferred_language_code: str | None = None
    email: str | None = None
    phone: str | None = None
    classifications: list[str] = Field(default_factory=list)

    @property
    def full_name(self) -> str:
        return " ".join(part for part in (self.first_name, self.last_name) if part)


class Companionship(MewsModel):
    """A guest staying in a reservation (``companionships/getAll``); the owner customer has one too."""

    id: str
    customer_id: str
    reservation_id: str | None = None


class Resource(MewsModel):
    id: str
    name: str
    state: str | None = None
    is_active: bool = True
    parent_resource_id: str | None = None


class Service(MewsModel):
    id: str
    is_active: bool = True
    name: str | None = None
    names: dict[str, str] | None = None
    data: dict[str, Any] | None = None

    @property
    def display_name(self) -> str:
        return self.name or next(iter((self.names or {}).values()), self.id)


class AccountingCategory(MewsModel):
    id: str
    name: str
    is_active: bool = True
    code: str | None = None
    classification: str | None = None


class Product(MewsModel):
    id: str
    service_id: str
    names: dict[str, str] | None = None
    accounting_category_id: str | None = None


class OrderItem(MewsModel):
    id: str
    account_id: str | None = None
    bill_id: str | None = None
    accounting_category_id: str | None = None
    billing_name: str | None = None
    unit_count: int | None = None
    unit_amount: Amount | None = None
    amount: Amount | None = None
    accounting_state: str | None = None
    type: str | None = None
    consumed_utc: datetime | None = None
    external_identifier: str | None = None


class Payment(MewsModel):
    id: str
    account_id: str | None = None
    bill_id: str | None = None
    amount: Amount | None = None
    state: str | None = None
    type: str | None = None
    accounting_state: str | None = None


class TaxEnvironment(MewsModel):
    code: str
    country_code: str | None = None
    taxation_codes: list[str] = Field(default_factory=list)


class Taxation(MewsModel):
    code: str
    name: str | None = None


class TaxRate(MewsModel):
    code: str
    taxation_code: str
    strategy: dict[str, Any] | None = None
    validity_intervals_utc: list[dict[str, Any]] | None = Field(
        None, alias="ValidityInvervalsUtc"
    )  # sic, Mews

    @property
    def relative_value(self) -> Decimal | None:
        """The rate as a fraction (0.2 for 20 %) for relative taxes, else None."""
        strategy = self.strategy or {}
        if strategy.get("Discriminator") != "Relative":
            return None
        value = (strategy.get("Value") or {}).get("Value")
        return Decimal(str(value)) if value is not None else None


class Taxations(MewsModel):
    taxations: list[Taxation] = Field(default_factory=list)
    tax_rates: list[TaxRate] = Field(default_factory=list)


class OrderItemParameters(MewsModel):
    """An ad-hoc item for ``orders/add``."""

    name: str
    unit_count: int
    unit_amount: dict[str, Any]
    accounting_category_id: str | None = None
    external_identifier: str | None = None


class NewOrder(MewsModel):
    """The parameters of ``orders/add``."""

    service_id: str
    account_id: str
    items: list[OrderItemParameters] = Field(default_factory=list)
    linked_reservation_id: str | None = None
    consumption_utc: datetime | None = None
    notes: str | None = None
    bill_id: str | None = None
    enterprise_id: str | None = None

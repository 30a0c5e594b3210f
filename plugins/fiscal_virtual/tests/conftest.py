"""Fixtures: a driver on a fake context (Mews, printer devices, property, clock) in a temporary state dir."""

from __future__ import annotations

import asyncio
import base64
import email.parser
import email.policy
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from types import SimpleNamespace
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from mews_bridge import CommandFailed, CommandJob, InstanceContext, LocalDevices
from mews_bridge.mews.models import Bill, DeviceCommand, OrderItem, Payment
from mews_bridge.testing import instance_context
from mews_bridge_fiscal_virtual.driver import FiscalVirtualDriver

RKSV_OPTIONS: dict[str, Any] = {
    "profile": "rksv",
    "register_id": "AT-REG1",
    "timezone": "Europe/Vienna",
    "currency": "EUR",
    "key_id": "U:ATU12345678-K1",
    "tax_map": {"AT-20": "Normal", "AT-10": "Erm1", "AT-13": "Erm2", "AT-0": "Null", "none": "Null"},
}
GENERIC_PL_OPTIONS: dict[str, Any] = {
    "profile": "generic",
    "register_id": "PL-KASA-1",
    "timezone": "Europe/Warsaw",
    "currency": "PLN",
    "tax_map": {"PL-23": "A", "PL-8": "B", "PL-5": "C", "PL-0": "D", "PL-ZW": "E"},
}


@pytest.fixture(autouse=True)
def _no_leaks(verify_cleanup, verify_no_lingering_tasks):
    """Every test fails if it leaves tasks, threads or sockets behind."""


def item(ident: str, name: str, gross: str, code: str | None, tax: str = "0", currency: str = "EUR") -> dict:
    """An order item as ``orderItems/getAll`` returns it (extended amount with breakdown)."""
    net = str(Decimal(gross) - Decimal(tax))
    return {
        "Id": ident,
        "BillingName": name,
        "AccountingState": "Closed",
        "Type": "ProductOrder",
        "Amount": {
            "Currency": currency,
            "NetValue": net,
            "GrossValue": gross,
            "TaxValues": [{"Code": code, "Value": tax}] if code else [],
            "Breakdown": {"Items": [{"TaxRateCode": code, "NetValue": net, "TaxValue": tax}]},
        },
    }


def payment(ident: str, paid: str, kind: str = "CashPayment", currency: str = "EUR") -> dict:
    """A payment as ``payments/getAll`` returns it: Mews books money received as negative."""
    return {
        "Id": ident,
        "Type": kind,
        "State": "Charged",
        "Amount": {
            "Currency": currency,
            "NetValue": str(-Decimal(paid)),
            "GrossValue": str(-Decimal(paid)),
            "TaxValues": [],
        },
    }


def bill(ident: str, number: str | None = None, **fields: Any) -> dict:
    """A closed bill (legacy ``Data.Bill``); pass OrderItems/PaymentItems to embed lines."""
    return {
        "Id": ident,
        "Number": number or ident,
        "State": "Closed",
        "Type": "Receipt",
        "AccountId": "acc-1",
        "CorrectionState": "Bill",
        "OwnerData": {"Discriminator": "BillCustomerData", "Value": {"Id": "c-1", "LastName": "Guest"}},
        **fields,
    }


def legacy_data(bill_data: dict) -> dict:
    return {"FiscalMachineId": "FM-1", "Bill": bill_data}


def flat_data(bill_data: dict) -> dict:
    """The 2025-06-23 fiscal command as the core hands it over (flat, ``Owner``, no item arrays)."""
    bill_data = {k: v for k, v in bill_data.items() if k not in ("OwnerData", "OrderItems", "PaymentItems")}
    bill_data |= {
        "Owner": {"Discriminator": "Customer", "Customer": {"LastName": "Guest"}},
        "AssociatedAccountsData": None,
    }
    return {
        "Id": "ignored",
        "FiscalMachineId": "FM-1",
        "ApiUrl": "https://fiscal.local",
        "FiscalMachineData": "{}",
        "Device": {"Id": "dev-1", "Type": "FiscalMachine", "Name": "Fiscal", "Identifier": None},
        "Bill": bill_data,
        "CommandData": None,
    }


def make_job(command_id: str, data: dict, *, interrupted: bool = False) -> CommandJob:
    command = DeviceCommand.model_validate(
        {
            "Id": command_id,
            "State": "Pending",
            "CreatedUtc": "2026-03-10T09:00:00Z",
            "Device": {"Id": "dev-1", "Name": "Fiscal", "Type": "FiscalMachine"},
            "Data": data,
        }
    )

    async def progress(_: float) -> None:
        return None

    validated = FiscalVirtualDriver.data_model().model_validate(data)
    return CommandJob(command, validated, progress, interrupted=interrupted)


class FakeMews:
    """The client calls the driver makes, answering typed models (as ``MewsClient`` does) from the
    Mews-shaped dicts in ``items`` and ``payments``, keyed by bill id."""

    def __init__(self) -> None:
        self.items: dict[str, list[dict]] = {}
        self.payments: dict[str, list[dict]] = {}
        self.calls: list[tuple[str, tuple[str, ...]]] = []
        self.fail: Exception | None = None

    async def get_bills(self, bill_ids: list[str]) -> list[Bill]:
        """Every bill is known (the bridge tests cover one Mews does not return)."""
        return [Bill(id=bill_id) for bill_id in bill_ids]

    async def get_order_items(self, *, bill_ids: list[str]) -> list[OrderItem]:
        self.calls.append(("orderItems/getAll", tuple(bill_ids)))
        if self.fail:
            raise self.fail
        return [OrderItem.model_validate(x) for b in bill_ids for x in self.items.get(b, [])]

    async def get_payments(self, *, bill_ids: list[str]) -> list[Payment]:
        self.calls.append(("payments/getAll", tuple(bill_ids)))
        if self.fail:
            raise self.fail
        return [Payment.model_validate(x) for b in bill_ids for x in self.payments.get(b, [])]


class FakeDevices(LocalDevices):
    def __init__(self) -> None:
        self.runs: list[tuple[str, dict]] = []
        self.fail: str | None = None
        self.printed = asyncio.Event()

    async def run(self, device_name: str, data: dict[str, Any]) -> str | None:
        self.runs.append((device_name, data))
        if self.fail:
            raise CommandFailed(self.fail)
        self.printed.set()
        return None

    def texts(self) -> list[str]:
        """The text of each printout sent (including those that failed)."""
        return [printed_text(data) for _, data in self.runs]


def printed_text(data: dict[str, Any]) -> str:
    """The text parts of Printer command data (plain text, or text around a QR image)."""
    raw = base64.b64decode(data["FileData"])
    if data["FileType"].startswith("text/plain"):
        return raw.decode()
    head = f"Content-Type: {data['FileType']}\r\n\r\n".encode()
    message = email.parser.BytesParser(policy=email.policy.default).parsebytes(head + raw)
    return "".join(
        part.get_content() for part in message.iter_parts() if part.get_content_type() == "text/plain"
    )


@dataclass
class Enterprise:
    timezone: ZoneInfo = field(default_factory=lambda: ZoneInfo("Europe/Vienna"))
    currency: str = "EUR"
    pricing: str = "Gross"
    name: str = "Hotel Sonne"
    address: tuple[str, ...] = ("Hauptplatz 1", "8010 Graz", "AT")
    tax_identifier: str | None = "ATU12345678"
    language_code: str | None = "de-AT"


class Clock:
    """A settable clock: drivers read it instead of the wall clock."""

    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> datetime:
        self.now += timedelta(**delta)
        return self.now


@dataclass
class Harness:
    tmp_path: Path
    clock: Clock
    mews: FakeMews = field(default_factory=FakeMews)
    devices: FakeDevices = field(default_factory=FakeDevices)
    enterprise: Enterprise | Exception = field(default_factory=Enterprise)
    drivers: list[FiscalVirtualDriver] = field(default_factory=list)

    def context(self, name: str = "Fiscal") -> InstanceContext:
        async def enterprise() -> Enterprise:
            if isinstance(self.enterprise, Exception):
                raise self.enterprise
            return self.enterprise

        return instance_context(
            self.tmp_path / "instances" / name.lower(),
            name,
            mews=self.mews,  # type: ignore[arg-type]  # a fake with the three reads the driver makes
            devices=self.devices,
            enterprise=enterprise,
        )

    async def driver(self, name: str = "Fiscal", **overrides: Any) -> FiscalVirtualDriver:
        """A set-up driver; ``profile_options`` picks the base options (RKSV by default)."""
        base = overrides.pop("profile_options", RKSV_OPTIONS)
        options = FiscalVirtualDriver.Options.model_validate({**base, **overrides})
        driver = FiscalVirtualDriver(self.context(name), options)
        driver.clock = self.clock
        self.drivers.append(driver)
        await driver.setup()
        return driver

    async def shutdown(self) -> None:
        for driver in self.drivers:
            await driver.unload()
            await driver.ctx.close()
        self.drivers.clear()


@pytest.fixture
async def harness(tmp_path: Path):
    h = Harness(tmp_path, Clock(datetime(2026, 3, 10, 9, 0, tzinfo=UTC)))
    yield h
    await h.shutdown()


@pytest.fixture
def mk() -> SimpleNamespace:
    """Builders of Mews data: items, payments, bills, both command shapes, jobs."""
    return SimpleNamespace(
        item=item,
        payment=payment,
        bill=bill,
        legacy=legacy_data,
        flat=flat_data,
        job=make_job,
        options=RKSV_OPTIONS,
        generic=GENERIC_PL_OPTIONS,
    )


@pytest.fixture
def sale_bill():
    """A paid bill with a 20 % and a 10 % item, embedded the legacy way."""

    def make(ident: str = "bill-1", number: str = "1001") -> dict:
        return bill(
            ident,
            number,
            OrderItems=[
                item(f"{ident}-i1", "Dinner", "12.00", "AT-20", "2.00"),
                item(f"{ident}-i2", "Room", "5.50", "AT-10", "0.50"),
            ],
            PaymentItems=[payment(f"{ident}-p1", "17.50")],
        )

    return make

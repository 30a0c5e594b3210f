"""The simulated hotel: enterprise configuration and every entity the operations read and write.

Entities are stored as Mews-shaped dicts (what the API returns), so operations hand them out as
they are and tests can seed them from Mews' own examples. Every change Mews would announce over
the WebSocket goes through ``_emit``, which the simulator routes to the connected sockets.
"""

from __future__ import annotations

import copy
import itertools
import unicodedata
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from .money import TaxRate, extended_amount, to_decimal
from .table import Row, Table
from .timestamps import format_duration, format_utc, to_utc, utc_now

DEVICE_TYPES = ("Printer", "PaymentTerminal", "KeyCutter", "FiscalMachine", "PassportScanner")
COMMAND_STATES = ("Pending", "Received", "Processing", "Processed", "Cancelled", "Error")
ACTIVE_COMMAND_STATES = frozenset({"Pending", "Received"})
FINAL_COMMAND_STATES = frozenset({"Processed", "Cancelled", "Error"})
# "Enquired" is the older spelling of "Inquired" that some Mews payloads still use.
RESERVATION_STATES = (
    "Inquired",
    "Enquired",
    "Requested",
    "Optional",
    "Confirmed",
    "Started",
    "Processed",
    "Canceled",
)
UPCOMING_RESERVATION_STATES = ("Inquired", "Enquired", "Requested", "Optional", "Confirmed")
RESOURCE_STATES = ("Dirty", "Clean", "Inspected", "OutOfService", "OutOfOrder")
SERVICE_TYPES = ("Bookable", "Additional")
PRICING_MODES = ("Gross", "Net")
BILL_STATES = ("Open", "Closed")
BILL_TYPES = ("Receipt", "Invoice")
EXTERNAL_PAYMENT_TYPES = ("Cash", "Invoice", "GiftCard", "Unspecified")
ENABLED_CURRENCIES = ("EUR", "USD", "CHF")
NO_PROMOTIONS = dict.fromkeys(
    ("BeforeCheckIn", "AfterCheckIn", "DuringStay", "BeforeCheckOut", "AfterCheckOut", "DuringCheckOut"),
    False,
)


def new_id() -> str:
    return str(uuid.uuid4())


def _known(table: Table, row_id: str | None, what: str) -> None:
    if row_id is not None and row_id not in table:
        raise KeyError(f"unknown {what} {row_id}")


def _ascii(text: str | None) -> str | None:
    """Mews' "normalized" names: diacritics dropped (Müller -> Muller)."""
    if text is None:
        return None
    return unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()


@dataclass(frozen=True)
class LineItem:
    """One line of a bill (``add_bill``) or of an order; prices are per unit.

    Give ``gross`` for Gross-pricing enterprises or ``net`` for Net pricing; mappings with the same
    keys are accepted wherever a ``LineItem`` is.
    """

    name: str
    gross: Decimal | float | None = None
    net: Decimal | float | None = None
    unit_count: int = 1
    tax_codes: Sequence[str] = ("AT-S",)
    accounting_category_id: str | None = None
    currency: str | None = None
    external_identifier: str | None = None
    product_id: str | None = None


@dataclass(frozen=True)
class BillPayment:
    """Money received on a bill: a positive ``amount`` (Mews stores it as a negative one)."""

    amount: Decimal | float
    type: str = "CashPayment"
    currency: str | None = None


@dataclass
class _CommandLog:
    progress: float | None = None
    notes: str | None = None
    history: list[tuple[str, float | None, str | None]] = field(default_factory=list)


class World:
    """One enterprise (property) and its devices, commands, guests, rooms, services and accounting."""

    def __init__(
        self, *, pricing: str = "Gross", currency: str = "EUR", timezone: str = "Europe/Vienna"
    ) -> None:
        if pricing not in PRICING_MODES:
            raise ValueError(f"pricing must be one of {PRICING_MODES}")
        self.enterprise_id = new_id()
        self.chain_id = new_id()
        self.enterprise_name = "Hotel Simulator"
        self.pricing = pricing
        self.currency = currency
        self.timezone = timezone
        self.accounting_editable_history = timedelta(days=7)
        # Mews documents no transition rules; a careful server refuses updates to finished commands.
        self.reject_updates_after_final_state = True
        self.tax_environment_code = "AT-2020"
        self.tax_environments: list[Row] = []
        self.taxations: list[Row] = []
        self.tax_rates: dict[str, Row] = {}
        self.profile_id = new_id()  # the "user" behind everything the simulator creates
        self.rate_id = new_id()
        self.resource_category_id = new_id()
        self.adult_age_category_id = new_id()
        self.devices = Table()
        self.commands = Table()
        self.customers = Table()
        self.resources = Table()
        self.reservations = Table()
        self.services = Table()
        self.accounting_categories = Table()
        self.products = Table()
        self.bills = Table()
        self.order_items = Table()
        self.payments = Table()
        self.companies = Table()
        self.companionships = Table()
        """Who stays in a reservation: one row per guest (the owner customer too), as Mews keeps them."""
        self.company_billing = True
        """Whether the integration may post to company accounts (Mews answers 403 when it may not)."""
        self.tasks = Table()
        """Tasks for staff (``tasks/add``): Name, Description, DeadlineUtc, DepartmentId, ServiceOrderId."""
        self._orders = Table()
        self.departments = Table()
        self._command_logs: dict[str, _CommandLog] = {}
        self._numbers = {
            "customer": itertools.count(1),
            "reservation": itertools.count(1001),
            "bill": itertools.count(1),
        }

    # -- events ---------------------------------------------------------------------------------

    def _emit(self, event: Row, device_id: str | None = None) -> None:
        """Announce a change; ``device_id`` scopes DeviceCommand events to sockets that know the device."""

    # -- configuration and taxes ----------------------------------------------------------------

    def set_tax_environment(
        self, code: str, country_code: str, taxation_code: str, taxation_name: str, rates: Mapping[str, float]
    ) -> None:
        """Replace the tax setup with one environment holding one taxation with relative ``rates``."""
        self.tax_environment_code = code
        self.tax_environments = [
            {
                "Code": code,
                "CountryCode": country_code,
                "ValidityStartUtc": None,
                "ValidityEndUtc": None,
                "TaxationCodes": [taxation_code],
            }
        ]
        self.taxations = [{"Code": taxation_code, "Name": taxation_name, "LocalName": taxation_name}]
        self.tax_rates = {
            rate_code: {
                "Code": rate_code,
                "TaxationCode": taxation_code,
                "Value": value,
                "ValidityInvervalsUtc": None,  # sic: Mews' spelling
                "Strategy": {"Discriminator": "Relative", "Value": {"Value": value}},
            }
            for rate_code, value in rates.items()
        }

    def rates_for(self, tax_codes: Iterable[str]) -> list[TaxRate]:
        """(code, fraction) per tax code; KeyError for a code the enterprise does not know."""
        return [(code, to_decimal(self.tax_rates[code]["Value"])) for code in tax_codes]

    def currencies(self) -> list[str]:
        return [self.currency, *(code for code in ENABLED_CURRENCIES if code != self.currency)]

    def configuration(self) -> Row:
        """The body of ``configuration/get``."""
        created = "2020-01-01T00:00:00Z"
        history = format_duration(self.accounting_editable_history)
        enterprise = {
            "Id": self.enterprise_id,
            "ExternalIdentifier": None,
            "HoldingKey": None,
            "ChainId": self.chain_id,
            "ChainName": "Simulator Hotels",
            "CreatedUtc": created,
            "UpdatedUtc": created,
            "Name": self.enterprise_name,
            "ShortName": "HotelSim",
            "TimeZoneIdentifier": self.timezone,
            "LegalEnvironmentCode": "AT",
            "AccommodationEnvironmentCode": "AT",
            "AccountingEnvironmentCode": "AT",
            "TaxEnvironmentCode": self.tax_environment_code,
            "DefaultLanguageCode": "de-AT",
            "EditableHistoryInterval": history,
            "AccountingEditableHistoryInterval": history,
            "OperationalEditableHistoryInterval": "P0M5DT0H0M0S",
            "BusinessDayClosingOffset": None,
            "WebsiteUrl": None,
            "Email": "frontdesk@hotel-simulator.invalid",
            "Phone": "+43 1 0000000",
            "LogoImageId": None,
            "CoverImageId": None,
            "Pricing": self.pricing,
            "TaxPrecision": None,
            "AddressId": None,
            "Address": {
                "Line1": "Simulatorgasse 1",
                "Line2": None,
                "City": "Wien",
                "PostalCode": "1010",
                "CountryCode": "AT",
                "CountrySubdivisionCode": None,
            },
            "GroupNames": [],
            "Subscription": {"TaxIdentifier": "ATU00000000"},
            "Currencies": [
                {"Currency": code, "IsDefault": code == self.currency, "IsEnabled": True}
                for code in self.currencies()
            ],
            "AccountingConfiguration": {
                "EnabledExternalPaymentTypes": list(EXTERNAL_PAYMENT_TYPES),
                "Options": [],
                "SurchargeConfiguration": None,
            },
            "IsPortfolio": False,
        }
        return {
            "NowUtc": format_utc(utc_now()),
            "Enterprise": enterprise,
            "Service": None,
            "PaymentCardStorage": None,
            "IsIdentityDocumentNumberRequired": False,
        }

    # -- devices and commands -------------------------------------------------------------------

    def add_device(self, name: str, type: str, identifier: str | None = None) -> str:
        if type not in DEVICE_TYPES:
            raise ValueError(f"device type must be one of {DEVICE_TYPES}")
        return self.devices.add({"Id": new_id(), "Name": name, "Type": type, "Identifier": identifier})

    def add_command(
        self,
        device_id: str,
        data: Mapping[str, Any],
        state: str = "Pending",
        created_utc: datetime | str | None = None,
    ) -> str:
        """Queue a command for a device, as Mews does when staff print, cut a key or close a bill."""
        if state not in COMMAND_STATES:
            raise ValueError(f"command state must be one of {COMMAND_STATES}")
        device = self.devices[device_id]
        command_id = self.commands.add(
            {
                "Id": new_id(),
                "State": state,
                "CreatedUtc": format_utc(to_utc(created_utc) if created_utc else utc_now()),
                "Creator": {"FirstName": "Sim", "LastName": "Receptionist", "ImageUrl": None},
                "Device": dict(device),
                "Data": copy.deepcopy(dict(data)),
            }
        )
        self._command_logs[command_id] = _CommandLog()
        self._emit_command(command_id)
        return command_id

    def add_printer_command(self, printer_id: str, file_data: str, copy_count: int = 1) -> str:
        """What ``commands/addPrinter`` creates: a PDF print job for a Printer device."""
        printer = self.devices[printer_id]
        data = {
            "CopyCount": copy_count,
            "FileType": "application/pdf",
            "FileData": file_data,
            "PrinterName": printer["Identifier"] or printer["Name"],
            "PrinterDriverName": "",
            "PrinterPortName": "",
        }
        return self.add_command(printer_id, data)

    def add_key_cutter_command(self, key_cutter_id: str, reservation_id: str, key_count: int = 1) -> str:
        """What ``commands/addKeyCutter`` creates; names, dates and locks come from the reservation.

        ValueError when the reservation has no room assigned (there is no lock to encode).
        """
        key_cutter = self.devices[key_cutter_id]
        reservation = self.reservations[reservation_id]
        room = self.resources.get(reservation["AssignedResourceId"])
        if room is None:
            raise ValueError("The reservation has no space assigned, so there is no lock to encode.")
        guest = self.customers[reservation["AccountId"]]
        data = {
            "KeyCutterId": key_cutter["Identifier"],
            "ApiUrl": None,
            "KeyCutterData": None,
            "KeyCount": key_count,
            "LockIds": [room["Name"]],
            "StartUtc": reservation["StartUtc"],
            "EndUtc": reservation["EndUtc"],
            "FirstName": guest["FirstName"],
            "LastName": guest["LastName"],
            "NormalizedFirstName": _ascii(guest["FirstName"]),
            "NormalizedLastName": _ascii(guest["LastName"]),
            "Telephone": guest["Phone"],
            "Email": guest["Email"],
            "ReservationId": reservation_id,
            "ReservationNumber": reservation["Number"],
        }
        return self.add_command(key_cutter_id, data)

    def add_fiscal_command(self, fiscal_machine_id: str, bill_id: str) -> str:
        """What Mews queues for a FiscalMachine device when a bill is issued: the legacy ``Data`` with
        the bill as ``bills/getAll`` returns it (its deprecated item arrays empty: read them by bill id).

        ValueError when the bill is still open: only issued bills are fiscalised.
        """
        fiscal_machine = self.devices[fiscal_machine_id]
        bill = self.bill(bill_id)
        if bill["State"] != "Closed":
            raise ValueError("The bill is still open; only closed bills are fiscalised.")
        data = {
            "FiscalMachineId": fiscal_machine["Identifier"],
            "ApiUrl": None,
            "FiscalMachineData": None,
            "TaxIdentifier": None,
            "Bill": bill,
            "BillFiscalMachineData": None,
            "PayloadData": None,
        }
        return self.add_command(fiscal_machine_id, data)

    def update_command(
        self, command_id: str, state: str, progress: float | None = None, notes: str | None = None
    ) -> None:
        """Apply a state change as ``commands/update`` does: Progress only counts while Processing,
        Notes only in a final state. Every update is announced, even one that keeps the state."""
        command = self.commands[command_id]
        log = self._command_logs[command_id]
        kept_progress = progress if state == "Processing" else None
        kept_notes = notes if state in FINAL_COMMAND_STATES else None
        command["State"] = state
        log.progress = kept_progress
        if kept_notes is not None:
            log.notes = kept_notes
        log.history.append((state, kept_progress, kept_notes))
        self._emit_command(command_id)

    def cancel_command(self, command_id: str, notes: str | None = None) -> None:
        """A user cancels the command in Mews; ValueError if it already ended."""
        if self.commands[command_id]["State"] in FINAL_COMMAND_STATES:
            raise ValueError("the command is already in a final state")
        self.update_command(command_id, "Cancelled", notes=notes)

    def command(self, command_id: str) -> Row:
        """The command as the API shows it plus ``Progress``, ``Notes`` and ``History`` of
        (state, progress, notes) updates."""
        log = self._command_logs[command_id]
        return {
            **copy.deepcopy(self.commands[command_id]),
            "Progress": log.progress,
            "Notes": log.notes,
            "History": list(log.history),
        }

    def _emit_command(self, command_id: str) -> None:
        command = self.commands[command_id]
        event = {"Type": "DeviceCommand", "Id": command_id, "State": command["State"]}
        device = command.get("Device")  # a test may have mangled it: Mews announces to nobody then
        self._emit(event, device_id=device.get("Id") if isinstance(device, dict) else "")

    # -- guests, rooms and reservations ---------------------------------------------------------

    def add_customer(
        self,
        last_name: str,
        first_name: str | None = None,
        classifications: Iterable[str] = (),
        language_code: str | None = "en-US",
        *,
        email: str | None = None,
        phone: str | None = None,
    ) -> str:
        now = format_utc(utc_now())
        return self.customers.add(
            {
                "Id": new_id(),
                "ChainId": self.chain_id,
                "Number": str(next(self._numbers["customer"])),
                "Title": None,
                "Sex": None,
                "FirstName": first_name,
                "LastName": last_name,
                "SecondLastName": None,
                "NationalityCode": None,
                "PreferredLanguageCode": language_code,
                "LanguageCode": language_code,
                "BirthDate": None,
                "BirthCountryCode": None,
                "BirthCountrySubdivisionCode": None,
                "BirthPlace": None,
                "Occupation": None,
                "Email": email,
                "HasOtaEmail": False,
                "Phone": phone,
                "TaxIdentificationNumber": None,
                "LoyaltyCode": None,
                "AccountingCode": None,
                "BillingCode": None,
                "Notes": "",
                "CarRegistrationNumber": None,
                "DietaryRequirements": None,
                "CreatedUtc": now,
                "UpdatedUtc": now,
                "AddressId": None,
                "Classifications": list(classifications),
                "Options": [],
                "ItalianDestinationCode": None,
                "ItalianFiscalCode": None,
                "ItalianLotteryCode": None,
                "CompanyId": None,
                "MergeTargetId": None,
                "IsActive": True,
                "PreferredSpaceFeatures": [],
                "CreatorProfileId": self.profile_id,
                "UpdaterProfileId": self.profile_id,
            }
        )

    def add_resource(self, name: str, state: str = "Clean") -> str:
        """A room; its floor is read from the name (``"201"`` is on floor 2)."""
        if state not in RESOURCE_STATES:
            raise ValueError(f"resource state must be one of {RESOURCE_STATES}")
        now = format_utc(utc_now())
        floor = name[:-2] if len(name) > 2 and name[:-2].isdigit() else "0"
        resource_id = self.resources.add(
            {
                "Id": new_id(),
                "EnterpriseId": self.enterprise_id,
                "IsActive": True,
                "ParentResourceId": None,
                "Name": name,
                "State": state,
                "Descriptions": {},
                "CreatedUtc": now,
                "UpdatedUtc": now,
                "Data": {"Discriminator": "Space", "Value": {"FloorNumber": floor, "LocationNotes": None}},
                "ExternalNames": {"en-US": f"Room {name}"},
                "Directions": {},
            }
        )
        self._emit_resource(resource_id)
        return resource_id

    def set_resource_state(self, resource_id: str, state: str) -> None:
        if state not in RESOURCE_STATES:
            raise ValueError(f"resource state must be one of {RESOURCE_STATES}")
        resource = self.resources[resource_id]
        resource["State"] = state
        resource["UpdatedUtc"] = format_utc(utc_now())
        self._emit_resource(resource_id)

    def update_resource(self, resource_id: str, changes: Row) -> None:
        """What ``resources/update`` does once the request is valid (``changes``: field → new value)."""
        resource = self.resources[resource_id]
        resource.update(changes)
        resource["UpdatedUtc"] = format_utc(utc_now())
        self._emit_resource(resource_id)

    def resource_id(self, name: str) -> str:
        """The id of the room called ``name``; KeyError if there is none."""
        return next(row["Id"] for row in self.resources if row["Name"] == name)

    def _emit_resource(self, resource_id: str) -> None:
        self._emit({"Type": "Resource", "Id": resource_id, "State": self.resources[resource_id]["State"]})

    def add_company(self, name: str) -> str:
        """A company (an account that can own reservations and be billed)."""
        now = format_utc(utc_now())
        return self.companies.add(
            {"Id": new_id(), "ChainId": self.chain_id, "Name": name, "IsActive": True, "CreatedUtc": now}
        )

    def add_companion(self, reservation_id: str, customer_id: str) -> str:
        """Another guest staying in the reservation."""
        _known(self.customers, customer_id, "customer")
        reservation = self.reservations[reservation_id]
        return self.companionships.add(
            {
                "Id": new_id(),
                "CustomerId": customer_id,
                "ReservationGroupId": reservation["GroupId"],
                "ReservationId": reservation_id,
            }
        )

    def add_reservation(
        self,
        customer_id: str,
        resource_id: str | None = None,
        state: str = "Confirmed",
        start_utc: datetime | str | None = None,
        end_utc: datetime | str | None = None,
        *,
        company_id: str | None = None,
    ) -> str:
        """A stay of ``customer_id``; by default from now (to the hour) for two nights. With
        ``company_id`` the company owns it (its account) and the customer is the guest staying.

        ``Started`` and ``Processed`` reservations get actual check-in (and check-out) times.
        """
        if state not in RESERVATION_STATES:
            raise ValueError(f"reservation state must be one of {RESERVATION_STATES}")
        _known(self.customers, customer_id, "customer")
        _known(self.resources, resource_id, "resource")
        if company_id is not None:
            _known(self.companies, company_id, "company")
        now = utc_now()
        start = to_utc(start_utc) if start_utc else now.replace(minute=0, second=0)
        end = to_utc(end_utc) if end_utc else start + timedelta(days=2)
        reservation = {
            "Id": new_id(),
            "ServiceId": self.accommodation_service_id(),
            "AccountId": company_id or customer_id,
            "AccountType": "Company" if company_id else "Customer",
            "CreatorProfileId": self.profile_id,
            "UpdaterProfileId": self.profile_id,
            "BookerId": None,
            "Number": str(next(self._numbers["reservation"])),
            "State": state,
            "Origin": "Commander",
            "CommanderOrigin": "InPerson",
            "OriginDetails": None,
            "CreatedUtc": format_utc(now),
            "UpdatedUtc": format_utc(now),
            "CancelledUtc": format_utc(now) if state == "Canceled" else None,
            "VoucherId": None,
            "BusinessSegmentId": None,
            "Options": {
                "OwnerCheckedIn": state == "Started",
                "AllCompanionsCheckedIn": state == "Started",
                "AnyCompanionCheckedIn": state == "Started",
                "ConnectorCheckIn": False,
            },
            "RateId": self.rate_id,
            "CreditCardId": None,
            "GroupId": new_id(),
            "RequestedResourceCategoryId": self.resource_category_id,
            "AssignedResourceId": resource_id,
            "AvailabilityBlockId": None,
            "PartnerCompanyId": None,
            "TravelAgencyId": None,
            "AssignedResourceLocked": False,
            "ChannelNumber": None,
            "ChannelManagerNumber": None,
            "CancellationReason": "RequestedByGuest" if state == "Canceled" else None,
            "ReleasedUtc": None,
            "ScheduledStartUtc": format_utc(start),
            "ActualStartUtc": format_utc(start) if state in ("Started", "Processed") else None,
            "ScheduledEndUtc": format_utc(end),
            "ActualEndUtc": format_utc(end) if state == "Processed" else None,
            "Purpose": "Leisure",
            "QrCodeData": None,
            "PersonCounts": [{"AgeCategoryId": self.adult_age_category_id, "Count": 1}],
        }
        reservation_id = self.reservations.add(reservation)
        self.add_companion(reservation_id, customer_id)
        self._touch_reservation(reservation_id)
        return reservation_id

    def reservation(self, reservation_id: str) -> Row:
        return copy.deepcopy(self.reservations[reservation_id])

    def check_in(self, reservation_id: str) -> None:
        reservation = self._reservation_in(reservation_id, UPCOMING_RESERVATION_STATES)
        reservation["State"] = "Started"
        reservation["ActualStartUtc"] = format_utc(utc_now())
        reservation["Options"].update(
            OwnerCheckedIn=True, AllCompanionsCheckedIn=True, AnyCompanionCheckedIn=True
        )
        self._touch_reservation(reservation_id)

    def check_out(self, reservation_id: str) -> None:
        """The guest leaves: the reservation is Processed and the room turns Dirty."""
        reservation = self._reservation_in(reservation_id, ("Started",))
        reservation["State"] = "Processed"
        reservation["ActualEndUtc"] = format_utc(utc_now())
        self._touch_reservation(reservation_id)
        if reservation["AssignedResourceId"] is not None:
            self.set_resource_state(reservation["AssignedResourceId"], "Dirty")

    def cancel_reservation(self, reservation_id: str) -> None:
        reservation = self._reservation_in(reservation_id, UPCOMING_RESERVATION_STATES)
        reservation["State"] = "Canceled"
        reservation["CancelledUtc"] = format_utc(utc_now())
        reservation["CancellationReason"] = "RequestedByGuest"
        self._touch_reservation(reservation_id)

    def move_reservation(self, reservation_id: str, resource_id: str) -> None:
        """Assign another room (a room move, also while the guest is in house)."""
        _known(self.resources, resource_id, "resource")
        self.reservations[reservation_id]["AssignedResourceId"] = resource_id
        self._touch_reservation(reservation_id)

    def _reservation_in(self, reservation_id: str, states: Sequence[str]) -> Row:
        reservation = self.reservations[reservation_id]
        if reservation["State"] not in states:
            raise ValueError(f"reservation is {reservation['State']}, expected one of {', '.join(states)}")
        return reservation

    def _touch_reservation(self, reservation_id: str) -> None:
        """Refresh the derived fields and announce the change."""
        reservation = self.reservations[reservation_id]
        reservation["UpdatedUtc"] = format_utc(utc_now())
        # Deprecated but still returned: StartUtc is the scheduled start or an earlier check-in.
        actual_start = reservation["ActualStartUtc"]
        reservation["StartUtc"] = min(
            reservation["ScheduledStartUtc"], actual_start or reservation["ScheduledStartUtc"]
        )
        reservation["EndUtc"] = reservation["ActualEndUtc"] or reservation["ScheduledEndUtc"]
        self._emit(
            {
                "Type": "Reservation",
                "Id": reservation_id,
                "State": reservation["State"],
                "StartUtc": reservation["StartUtc"],
                "EndUtc": reservation["EndUtc"],
                "AssignedResourceId": reservation["AssignedResourceId"],
            }
        )

    # -- staff tasks ------------------------------------------------------------------------------

    def add_department(self, name: str) -> str:
        now = format_utc(utc_now())
        return self.departments.add(
            {
                "Id": new_id(),
                "EnterpriseId": self.enterprise_id,
                "IsActive": True,
                "Name": name,
                "CreatedUtc": now,
                "UpdatedUtc": now,
            }
        )

    def department_id(self, name: str) -> str:
        return next(row["Id"] for row in self.departments if row["Name"] == name)

    def add_task(
        self,
        name: str,
        deadline_utc: datetime,
        *,
        description: str | None = None,
        department_id: str | None = None,
        service_order_id: str | None = None,
    ) -> str:
        """What ``tasks/add`` does once the request is valid: an open task for staff in Mews."""
        _known(self.departments, department_id, "department")
        _known(self.reservations, service_order_id, "reservation")
        return self.tasks.add(
            {
                "Id": new_id(),
                "EnterpriseId": self.enterprise_id,
                "Name": name,
                "State": "Open",
                "Description": description,
                "DepartmentId": department_id,
                "ServiceOrderId": service_order_id,
                "CreatedUtc": format_utc(utc_now()),
                "DeadlineUtc": format_utc(deadline_utc),
                "ClosedUtc": None,
            }
        )

    # -- services, products and accounting ------------------------------------------------------

    def add_service(self, name: str, type: str = "Additional") -> str:
        if type not in SERVICE_TYPES:
            raise ValueError(f"service type must be one of {SERVICE_TYPES}")
        if type == "Bookable":
            offsets = {"StartOffset": "P0M0DT15H0M0S", "EndOffset": "P0M0DT11H0M0S"}
            value: Row = {
                **offsets,
                "OccupancyStartOffset": offsets["StartOffset"],
                "OccupancyEndOffset": offsets["EndOffset"],
                "TimeUnitPeriod": "Day",
            }
        else:
            value = {"Promotions": dict(NO_PROMOTIONS)}
        now = format_utc(utc_now())
        return self.services.add(
            {
                "Id": new_id(),
                "EnterpriseId": self.enterprise_id,
                "IsActive": True,
                "Name": name,
                "Names": {"en-US": name},
                "Options": {"BillAsPackage": False},
                "Ordering": len(self.services),
                "Data": {"Discriminator": type, "Value": value},
                "ExternalIdentifier": None,
                "CreatedUtc": now,
                "UpdatedUtc": now,
            }
        )

    def accommodation_service_id(self) -> str:
        """The first bookable service: the one reservations belong to."""
        return next(row["Id"] for row in self.services if row["Data"]["Discriminator"] == "Bookable")

    def service_id(self, name: str) -> str:
        return next(row["Id"] for row in self.services if row["Name"] == name)

    def add_accounting_category(self, name: str, code: str | None = None) -> str:
        now = format_utc(utc_now())
        return self.accounting_categories.add(
            {
                "Id": new_id(),
                "EnterpriseId": self.enterprise_id,
                "IsActive": True,
                "Name": name,
                "Code": code,
                "ExternalCode": None,
                "LedgerAccountCode": None,
                "PostingAccountCode": None,
                "CostCenterCode": None,
                "Classification": None,
                "CreatedUtc": now,
                "UpdatedUtc": now,
            }
        )

    def accounting_category_id(self, name: str) -> str:
        return next(row["Id"] for row in self.accounting_categories if row["Name"] == name)

    def add_product(
        self,
        service_id: str,
        name: str,
        price: Decimal | float,
        tax_codes: Sequence[str] = ("AT-S",),
        accounting_category_id: str | None = None,
    ) -> str:
        """A product of ``service_id``; ``price`` is gross or net per the enterprise's pricing."""
        _known(self.services, service_id, "service")
        value = to_decimal(price)
        if self.pricing == "Gross":
            amount = self._amount(self.currency, tax_codes, gross=value)
        else:
            amount = self._amount(self.currency, tax_codes, net=value)
        now = format_utc(utc_now())
        text = {"en-US": name}
        return self.products.add(
            {
                "Id": new_id(),
                "ServiceId": service_id,
                "CategoryId": None,
                "AccountingCategoryId": accounting_category_id,
                "IsActive": True,
                "Names": text,
                "ExternalNames": text,
                "ShortNames": text,
                "Descriptions": {},
                "ChargingMode": "Once",
                "PostingMode": "Once",
                "Options": {"BillAsPackage": False, "ExcludePriceFromOffer": False},
                "Promotions": dict(NO_PROMOTIONS),
                "Classifications": dict.fromkeys(("Food", "Beverage", "Wellness", "CityTax", "Fee"), False),
                "Price": amount,
                "ImageIds": [],
                "Ordering": len(self.products),
                "ExternalIdentifier": None,
                "CreatedUtc": now,
                "UpdatedUtc": now,
            }
        )

    def _amount(
        self,
        currency: str,
        tax_codes: Iterable[str],
        *,
        gross: Decimal | None = None,
        net: Decimal | None = None,
    ) -> Row:
        return extended_amount(currency, self.rates_for(tax_codes), gross=gross, net=net)

    # -- orders, bills and payments -------------------------------------------------------------

    def post_order(
        self,
        service_id: str,
        account_id: str,
        items: Iterable[LineItem],
        *,
        consumed_utc: datetime | None = None,
        linked_reservation_id: str | None = None,
        bill_id: str | None = None,
        notes: str | None = None,
    ) -> str:
        """What ``orders/add`` does once the request is valid: an order with open items."""
        order_id = new_id()
        now = utc_now()
        consumed = consumed_utc or now
        rows = [
            self._order_item(
                item,
                order_id=order_id,
                service_id=service_id,
                account_id=account_id,
                bill_id=bill_id,
                consumed=consumed,
                accounting_state="Open",
                notes=notes,
            )
            for item in items
        ]
        self._orders.add(
            {
                "Id": order_id,
                "EnterpriseId": self.enterprise_id,
                "ServiceId": service_id,
                "AccountId": account_id,
                "LinkedReservationId": linked_reservation_id,
                "BillId": bill_id,
                "ConsumptionUtc": format_utc(consumed),
                "Notes": notes,
                "CreatedUtc": format_utc(now),
                "Items": rows,
            }
        )
        return order_id

    @property
    def orders(self) -> list[Row]:
        """Orders posted through ``orders/add``, oldest first, each with its ``Items`` (order items)."""
        return copy.deepcopy(list(self._orders))

    def _order_item(
        self,
        item: LineItem,
        *,
        order_id: str,
        service_id: str,
        account_id: str,
        bill_id: str | None,
        consumed: datetime,
        accounting_state: str,
        notes: str | None = None,
    ) -> Row:
        currency = item.currency or self.currency
        gross = None if item.gross is None else to_decimal(item.gross)
        net = None if item.net is None else to_decimal(item.net)
        count = item.unit_count
        unit_amount = self._amount(currency, item.tax_codes, gross=gross, net=net)
        amount = self._amount(
            currency,
            item.tax_codes,
            gross=None if gross is None else gross * count,
            net=None if net is None else net * count,
        )
        now = format_utc(utc_now())
        revenue_type = (
            "Service" if self.services[service_id]["Data"]["Discriminator"] == "Bookable" else "Additional"
        )
        row = {
            "Id": new_id(),
            "EnterpriseId": self.enterprise_id,
            "AccountId": account_id,
            "AccountType": "Customer",
            "Notes": notes,
            "ServiceId": service_id,
            "ServiceOrderId": order_id,
            "BillId": bill_id,
            "AccountingCategoryId": item.accounting_category_id,
            "BillingName": item.name,
            "ExternalIdentifier": item.external_identifier,
            "UnitCount": count,
            "UnitAmount": unit_amount,
            "Amount": amount,
            "OriginalAmount": amount,
            "RevenueType": "Product" if item.product_id else revenue_type,
            "CreatorProfileId": self.profile_id,
            "UpdaterProfileId": self.profile_id,
            "CreatedUtc": now,
            "UpdatedUtc": now,
            "ConsumedUtc": format_utc(consumed),
            "CanceledUtc": None,
            "ClosedUtc": format_utc(consumed) if accounting_state == "Closed" else None,
            "StartUtc": format_utc(consumed),
            "AccountingState": accounting_state,
            "Type": "ProductOrder" if item.product_id else "CustomItem",
            "Options": {"CanceledWithReservation": False},
            "Data": (
                {
                    "Discriminator": "Product",
                    "Rebate": None,
                    "Product": {"ProductId": item.product_id, "AgeCategoryId": None},
                }
                if item.product_id
                else None
            ),
        }
        self.order_items.add(row)
        return row

    def add_bill(
        self,
        account_id: str,
        items: Iterable[LineItem | Mapping[str, Any]] = (),
        payments: Iterable[BillPayment | Mapping[str, Any]] = (),
        *,
        state: str = "Closed",
        type: str = "Receipt",
        number: str | None = None,
        issued_utc: datetime | str | None = None,
        notes: str | None = None,
        service_id: str | None = None,
    ) -> str:
        """A bill of a guest with its items and payments, queryable through ``bills/getAll``,
        ``orderItems/getAll`` and ``payments/getAll`` (filter ``BillIds``).

        Closed bills get a number (counting up unless given) and closed items and payments; items
        belong to ``service_id`` (default: accommodation).
        """
        if state not in BILL_STATES or type not in BILL_TYPES:
            raise ValueError(f"state must be one of {BILL_STATES} and type one of {BILL_TYPES}")
        guest = self.customers[account_id]
        closed = state == "Closed"
        now = utc_now()
        issued = (to_utc(issued_utc) if issued_utc else now) if closed else None
        bill_id = new_id()
        accounting_state = "Closed" if closed else "Open"
        service = service_id or self.accommodation_service_id()
        order_id = new_id()  # bill items are posted as one order, like a folio's charges
        consumed = issued or now
        for item in items:
            line = item if isinstance(item, LineItem) else LineItem(**item)
            self._order_item(
                line,
                order_id=order_id,
                service_id=service,
                account_id=account_id,
                bill_id=bill_id,
                consumed=consumed,
                accounting_state=accounting_state,
            )
        for payment in payments:
            paid = payment if isinstance(payment, BillPayment) else BillPayment(**payment)
            self._payment(
                account_id,
                to_decimal(paid.amount),
                paid.currency or self.currency,
                paid.type,
                bill_id=bill_id,
                accounting_state=accounting_state,
            )
        self.bills.add(
            {
                "Id": bill_id,
                "Name": None,
                "EnterpriseId": self.enterprise_id,
                "AccountId": account_id,
                "AccountType": "Customer",
                "CustomerId": account_id,
                "CompanyId": None,
                "AssociatedAccountIds": [],
                "CounterId": None,
                "State": state,
                "Type": type,
                "Number": number or (str(next(self._numbers["bill"])) if closed else None),
                "VariableSymbol": None,
                "CreatedUtc": format_utc(now),
                "IssuedUtc": format_utc(issued) if issued else None,
                "TaxedUtc": format_utc(issued) if issued else None,
                "PaidUtc": format_utc(issued) if issued and type == "Receipt" else None,
                "DueUtc": None,
                "LastReminderDateUtc": None,
                "UpdatedUtc": format_utc(now),
                "PurchaseOrderNumber": None,
                "Notes": notes,
                "Options": {
                    "DisplayCustomer": True,
                    "DisplayTaxation": True,
                    "TrackReceivable": False,
                    "DisplayCid": False,
                    "Rebated": False,
                },
                "Revenue": [],
                "Payments": [],
                "OrderItems": [],
                "PaymentItems": [],
                "AssigneeData": None,
                "OwnerData": {"Discriminator": "BillCustomerData", "Value": self._bill_customer_data(guest)}
                if closed
                else None,
                "CompanyDetails": None,
                "AssociatedAccountData": [],
                "EnterpriseData": {
                    "AdditionalTaxIdentifier": None,
                    "CompanyName": "Hotel Simulator GmbH",
                    "BankAccount": None,
                    "BankName": None,
                    "Iban": "AT000000000000000000",
                    "Bic": None,
                },
                "CorrectionState": "Bill",
                "CorrectionType": None,
                "CorrectedBillId": None,
            }
        )
        return bill_id

    @staticmethod
    def _bill_customer_data(guest: Row) -> Row:
        """The owner as frozen on a closed bill."""
        return {
            "Id": guest["Id"],
            "Address": None,
            "LegalIdentifiers": {},
            "BillingCode": guest["BillingCode"],
            "LastName": guest["LastName"],
            "FirstName": guest["FirstName"],
            "SecondLastName": guest["SecondLastName"],
            "TitlePrefix": None,
            "TaxIdentifier": guest["TaxIdentificationNumber"],
        }

    def bill(self, bill_id: str) -> Row:
        return copy.deepcopy(self.bills[bill_id])

    def add_external_payment(
        self,
        account_id: str,
        amount: Decimal,
        currency: str,
        *,
        type: str | None = None,
        bill_id: str | None = None,
        reservation_id: str | None = None,
        accounting_category_id: str | None = None,
        external_identifier: str | None = None,
        notes: str | None = None,
    ) -> str:
        """What ``payments/addExternal`` records: money taken outside Mews (positive ``amount``)."""
        return self._payment(
            account_id,
            amount,
            currency,
            "ExternalPayment",
            bill_id=bill_id,
            reservation_id=reservation_id,
            accounting_category_id=accounting_category_id,
            notes=notes,
            origin="Connector",
            data={
                "Discriminator": "External",
                "External": {"Type": type or "Unspecified", "ExternalIdentifier": external_identifier},
            },
        )

    def _payment(
        self,
        account_id: str,
        amount: Decimal,
        currency: str,
        payment_type: str,
        *,
        bill_id: str | None = None,
        reservation_id: str | None = None,
        accounting_category_id: str | None = None,
        accounting_state: str = "Open",
        notes: str | None = None,
        origin: str = "PointOfSales",
        data: Row | None = None,
    ) -> str:
        now = format_utc(utc_now())
        value = self._amount(currency, (), gross=-amount)  # payments are negative amounts
        return self.payments.add(
            {
                "Id": new_id(),
                "EnterpriseId": self.enterprise_id,
                "AccountId": account_id,
                "AccountType": "Customer",
                "PaymentRequestId": None,
                "BillId": bill_id,
                "ReservationId": reservation_id,
                "AccountingCategoryId": accounting_category_id,
                "Amount": value,
                "OriginalAmount": value,
                "Notes": notes,
                "SettlementId": None,
                "ConsumedUtc": now,
                "ClosedUtc": now if accounting_state == "Closed" else None,
                "ChargedUtc": now,
                "CreatedUtc": now,
                "UpdatedUtc": now,
                "SettlementUtc": None,
                "AccountingState": accounting_state,
                "State": "Charged",
                "Identifier": None,
                "Type": payment_type,
                "Kind": "Payment",
                "Data": data,
                "PaymentOrigin": origin,
            }
        )

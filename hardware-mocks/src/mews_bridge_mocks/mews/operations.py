"""The Connector API operations: request validation and the answer, one handler per path.

Each handler takes the world and the request body (envelope already checked) and returns the
response body, or raises ``ApiError``. Paths are relative to ``/api/connector/v1/``.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime
from decimal import Decimal

from .errors import ApiError, bad_request, invalid
from .money import to_decimal
from .query import AnyOf, Equals, Filter, Predicate, Within, paginate, require_any_filter, select
from .state import (
    ACTIVE_COMMAND_STATES,
    BILL_STATES,
    BILL_TYPES,
    COMMAND_STATES,
    EXTERNAL_PAYMENT_TYPES,
    FINAL_COMMAND_STATES,
    RESERVATION_STATES,
    RESOURCE_STATES,
    SERVICE_TYPES,
    LineItem,
    World,
)
from .table import Row, Table
from .timestamps import parse_utc, utc_now
from .validation import Params

Handler = Callable[[World, Params], Row]
OPERATIONS: dict[str, Handler] = {}

MAX_IDENTIFIER = 255
MAX_ACCOUNT_IDS = 100
MAX_TEXT = 2000


def operation(path: str) -> Callable[[Handler], Handler]:
    def register(handler: Handler) -> Handler:
        OPERATIONS[path] = handler
        return handler

    return register


def _lookup(params: Params, key: str, row_id: str, table: Table) -> Row:
    row = table.get(row_id)
    if row is None:
        raise invalid(params.name(key), "no such entity")
    return row


def _entity(params: Params, key: str, table: Table) -> Row:
    """The entity a required ``...Id`` parameter names; ``Invalid X`` when it names nothing."""
    return _lookup(params, key, params.require(params.guid, key), table)


def _optional_entity(params: Params, key: str, table: Table) -> Row | None:
    row_id = params.guid(key)
    return None if row_id is None else _lookup(params, key, row_id, table)


def _optional_entity_id(params: Params, key: str, table: Table) -> str | None:
    row = _optional_entity(params, key, table)
    return None if row is None else row["Id"]


def _activity(params: Params) -> Predicate:
    """The ``ActivityStates`` filter (default: active only)."""
    states = params.strings("ActivityStates", options=("Active", "Deleted")) or ["Active"]
    return lambda row: ("Active" if row["IsActive"] else "Deleted") in states


def _query(
    world: World,
    params: Params,
    table: Table,
    key: str,
    filters: dict[str, Filter],
    *,
    keep: Predicate | None = None,
    extent: bool = True,
) -> Row:
    """A paginated ``getAll``: filter by ``filters`` and ``keep``, then answer one page under ``key``.

    With the extent switched off no entities come back, yet the cursor still moves (reference 1.8).
    """
    limitation = params.require(params.limitation, "Limitation")
    rows = select(table, params, filters, world.enterprise_id)
    page, cursor = paginate([row for row in rows if keep is None or keep(row)], limitation, table)
    return {key: page if extent else [], "Cursor": cursor}


# -- devices and commands -------------------------------------------------------------------------


@operation("devices/getAll")
def get_devices(world: World, params: Params) -> Row:
    return {"Devices": list(world.devices)}


@operation("commands/getAllActive")
def get_active_commands(world: World, params: Params) -> Row:
    return {"Commands": [row for row in world.commands if row["State"] in ACTIVE_COMMAND_STATES]}


@operation("commands/getAllByIds")
def get_commands_by_ids(world: World, params: Params) -> Row:
    command_ids = params.require(params.guids, "CommandIds")
    limitation = params.limitation()
    # Unknown ids are left out: Mews documents nothing else for them.
    rows = [
        world.commands[command_id]
        for command_id in dict.fromkeys(command_ids)
        if command_id in world.commands
    ]
    page, cursor = paginate(rows, limitation, world.commands)
    return {"Commands": page, "Cursor": cursor}


@operation("commands/update")
def update_command(world: World, params: Params) -> Row:
    command = _entity(params, "CommandId", world.commands)
    state = params.require(params.choice, "State", options=COMMAND_STATES)
    progress = params.number("Progress")
    notes = params.string("Notes")
    if world.reject_updates_after_final_state and command["State"] in FINAL_COMMAND_STATES:
        raise invalid("CommandId", f"the command is already {command['State']}")
    world.update_command(command["Id"], state, None if progress is None else float(progress), notes)
    return {}


def _device(world: World, params: Params, key: str, device_type: str) -> Row:
    device = _entity(params, key, world.devices)
    if device["Type"] != device_type:
        raise invalid(key, f"not a {device_type} device")
    return device


@operation("commands/addPrinter")
def add_printer_command(world: World, params: Params) -> Row:
    params.guid("EnterpriseId")  # portfolio tokens only; a single-enterprise token ignores it
    printer = _device(world, params, "PrinterId", "Printer")
    data = params.require(params.string, "Data")
    copy_count = params.require(params.integer, "CopyCount", minimum=1)
    try:
        base64.b64decode(data, validate=True)
    except binascii.Error:
        raise invalid("Data", "expected base64") from None
    return {"CommandId": world.add_printer_command(printer["Id"], data, copy_count)}


@operation("commands/addKeyCutter")
def add_key_cutter_command(world: World, params: Params) -> Row:
    params.guid("EnterpriseId")
    key_cutter = _device(world, params, "KeyCutterId", "KeyCutter")
    reservation = _entity(params, "ReservationId", world.reservations)
    key_count = params.require(params.integer, "KeyCount", minimum=1)
    try:
        command_id = world.add_key_cutter_command(key_cutter["Id"], reservation["Id"], key_count)
    except ValueError as error:
        raise ApiError(403, str(error)) from None  # a business rule, worded for hotel staff
    return {"CommandId": command_id}


# -- configuration and catalogues -----------------------------------------------------------------


@operation("configuration/get")
def get_configuration(world: World, params: Params) -> Row:
    params.guid("EnterpriseId")
    return world.configuration()


@operation("taxEnvironments/getAll")
def get_tax_environments(world: World, params: Params) -> Row:
    return {"TaxEnvironments": world.tax_environments}


@operation("taxations/getAll")
def get_taxations(world: World, params: Params) -> Row:
    return {"Taxations": world.taxations, "TaxRates": list(world.tax_rates.values())}


@operation("services/getAll")
def get_services(world: World, params: Params) -> Row:
    service_type = params.choice("ServiceType", SERVICE_TYPES)
    return _query(
        world,
        params,
        world.services,
        "Services",
        {"ServiceIds": AnyOf("Id"), "UpdatedUtc": Within("UpdatedUtc")},
        keep=lambda row: service_type in (None, row["Data"]["Discriminator"]),
    )


@operation("accountingCategories/getAll")
def get_accounting_categories(world: World, params: Params) -> Row:
    return _query(
        world,
        params,
        world.accounting_categories,
        "AccountingCategories",
        {"AccountingCategoryIds": AnyOf("Id"), "UpdatedUtc": Within("UpdatedUtc")},
        keep=_activity(params),
    )


@operation("products/getAll")
def get_products(world: World, params: Params) -> Row:
    params.require(params.guids, "ServiceIds")
    result = _query(
        world,
        params,
        world.products,
        "Products",
        {"ServiceIds": AnyOf("ServiceId"), "ProductIds": AnyOf("Id"), "UpdatedUtc": Within("UpdatedUtc")},
    )
    return {**result, "CustomerProducts": result["Products"]}


@operation("resources/getAll")
def get_resources(world: World, params: Params) -> Row:
    extent = params.require(params.nested, "Extent")
    with_inactive = bool(extent.boolean("Inactive"))
    result = _query(
        world,
        params,
        world.resources,
        "Resources",
        {
            "ResourceIds": AnyOf("Id"),
            "Names": AnyOf("Name", guids=False),
            "CreatedUtc": Within("CreatedUtc"),
            "UpdatedUtc": Within("UpdatedUtc"),
        },
        keep=lambda row: with_inactive or row["IsActive"],
        extent=bool(extent.boolean("Resources")),
    )
    return {
        **result,
        "ResourceCategories": None,
        "ResourceCategoryAssignments": None,
        "ResourceCategoryImageAssignments": None,
        "ResourceFeatures": None,
        "ResourceFeatureAssignments": None,
    }


RESOURCE_UPDATE_FIELDS = frozenset({"ResourceId", "Name", "ParentResourceId", "Data", "State", "StateReason"})


def _update_value(update: Params, key: str) -> tuple[bool, object]:
    """A Mews "update value" (``{"Value": …}``): (False, None) when absent, meaning leave it as it is."""
    wrapper = update.nested(key)
    if wrapper is None:
        return False, None
    if "Value" not in wrapper.fields():
        raise bad_request(f"Missing required field '{wrapper.name('Value')}'")
    return True, wrapper.raw("Value")


@operation("resources/update")
def update_resources(world: World, params: Params) -> Row:
    """Room state (housekeeping) and the like. Every update is checked before any is applied."""
    params.guid("EnterpriseId")
    updates = params.nested_list("ResourceUpdates")
    if not updates:
        raise bad_request("Missing required field 'ResourceUpdates': at least one update")
    planned: list[tuple[str, Row]] = []
    for update in updates:
        unknown = sorted(set(update.fields()) - RESOURCE_UPDATE_FIELDS)
        if unknown:
            raise invalid(update.name(unknown[0]), "not a field of a resource update")
        resource = _entity(update, "ResourceId", world.resources)
        changes: Row = {}
        present, state = _update_value(update, "State")
        if present:
            if state not in RESOURCE_STATES:
                raise invalid(update.name("State.Value"), f"one of {', '.join(RESOURCE_STATES)}")
            changes["State"] = state
        present, reason = _update_value(update, "StateReason")
        if present:
            if reason is not None and not isinstance(reason, str):
                raise invalid(update.name("StateReason.Value"), "expected a string")
            changes["StateReason"] = reason
        present, name = _update_value(update, "Name")
        if present:
            if not isinstance(name, str) or not name.strip():
                raise invalid(update.name("Name.Value"), "a non-empty string")
            changes["Name"] = name
        present, parent = _update_value(update, "ParentResourceId")
        if present:
            if parent is not None and (not isinstance(parent, str) or parent not in world.resources):
                raise invalid(update.name("ParentResourceId.Value"), "no such resource")
            changes["ParentResourceId"] = parent
        if update.has("Data"):
            raise invalid(update.name("Data"), "not supported by the simulator")
        planned.append((resource["Id"], changes))
    for resource_id, changes in planned:
        world.update_resource(resource_id, changes)
    return {}


@operation("departments/getAll")
def get_departments(world: World, params: Params) -> Row:
    return _query(
        world,
        params,
        world.departments,
        "Departments",
        {"DepartmentIds": AnyOf("Id"), "UpdatedUtc": Within("UpdatedUtc")},
    )


@operation("tasks/add")
def add_task(world: World, params: Params) -> Row:
    """A task for staff in Mews ("Wake-up call for room 101 at 07:00 not answered", "a call charge was
    refused"): the department and the reservation must be the property's."""
    params.guid("EnterpriseId")
    name = params.require(params.string, "Name", max_length=MAX_IDENTIFIER)
    if not name.strip():
        raise invalid("Name", "must not be empty")
    deadline = params.require(params.timestamp, "DeadlineUtc")
    task_id = world.add_task(
        name,
        deadline,
        description=params.string("Description", max_length=MAX_TEXT),
        department_id=_optional_entity_id(params, "DepartmentId", world.departments),
        service_order_id=_optional_entity_id(params, "ServiceOrderId", world.reservations),
    )
    return {"TaskId": task_id}


# -- reservations and customers -------------------------------------------------------------------

RESERVATION_FILTERS: dict[str, Filter] = {
    "ReservationIds": AnyOf("Id"),
    "ServiceIds": AnyOf("ServiceId"),
    "ReservationGroupIds": AnyOf("GroupId"),
    "AccountIds": AnyOf("AccountId"),
    "PartnerCompanyIds": AnyOf("PartnerCompanyId", max_items=100),
    "TravelAgencyIds": AnyOf("TravelAgencyId", max_items=100),
    "Numbers": AnyOf("Number", guids=False),
    "ChannelNumbers": AnyOf("ChannelNumber", max_items=100, guids=False),
    "AssignedResourceIds": AnyOf("AssignedResourceId"),
    "AvailabilityBlockIds": AnyOf("AvailabilityBlockId", max_items=100),
    "States": AnyOf("State", guids=False, options=RESERVATION_STATES),
    "CreatedUtc": Within("CreatedUtc"),
    "UpdatedUtc": Within("UpdatedUtc"),
    "ScheduledStartUtc": Within("ScheduledStartUtc"),
    "ActualStartUtc": Within("ActualStartUtc"),
    "ScheduledEndUtc": Within("ScheduledEndUtc"),
    "ActualEndUtc": Within("ActualEndUtc"),
}


@operation("reservations/getAll/2023-06-06")
def get_reservations(world: World, params: Params) -> Row:
    for scheduled, actual in (("ScheduledStartUtc", "ActualStartUtc"), ("ScheduledEndUtc", "ActualEndUtc")):
        if params.has(scheduled) and params.has(actual):
            raise invalid(actual, f"cannot be combined with {scheduled}")
    colliding = params.interval("CollidingUtc")
    return _query(
        world,
        params,
        world.reservations,
        "Reservations",
        RESERVATION_FILTERS,
        keep=lambda row: (
            colliding is None
            or (
                parse_utc(row["ScheduledStartUtc"]) < colliding.end
                and parse_utc(row["ScheduledEndUtc"]) > colliding.start
            )
        ),
    )


CUSTOMER_FILTERS: dict[str, Filter] = {
    "ChainIds": AnyOf("ChainId"),
    "CustomerIds": AnyOf("Id"),
    "CompanyIds": AnyOf("CompanyId", max_items=1),
    "Emails": AnyOf("Email", guids=False),
    "FirstNames": AnyOf("FirstName", guids=False),
    "LastNames": AnyOf("LastName", guids=False),
    "LoyaltyCodes": AnyOf("LoyaltyCode", guids=False),
    "CreatedUtc": Within("CreatedUtc"),
    "UpdatedUtc": Within("UpdatedUtc"),
    "DeletedUtc": Within("DeletedUtc"),
}


@operation("customers/getAll")
def get_customers(world: World, params: Params) -> Row:
    extent = params.require(params.nested, "Extent")
    require_any_filter(params, CUSTOMER_FILTERS)
    result = _query(
        world,
        params,
        world.customers,
        "Customers",
        CUSTOMER_FILTERS,
        keep=_activity(params),
        extent=bool(extent.boolean("Customers")),
    )
    return {"Customers": result["Customers"], "Documents": None, "Cursor": result["Cursor"]}


COMPANIONSHIP_FILTERS: dict[str, Filter] = {
    "CompanionshipIds": AnyOf("Id"),
    "CustomerIds": AnyOf("CustomerId"),
    "ReservationIds": AnyOf("ReservationId"),
    "ReservationGroupIds": AnyOf("ReservationGroupId"),
}


@operation("companionships/getAll")
def get_companionships(world: World, params: Params) -> Row:
    """Who stays in which reservation (the extents' entities are not simulated: always null)."""
    params.nested("Extent")
    require_any_filter(params, COMPANIONSHIP_FILTERS)
    result = _query(world, params, world.companionships, "Companionships", COMPANIONSHIP_FILTERS)
    return {**result, "Customers": None, "Reservations": None, "ReservationGroups": None}


# -- accounting -----------------------------------------------------------------------------------

BILL_FILTERS: dict[str, Filter] = {
    "BillIds": AnyOf("Id"),
    "CustomerIds": AnyOf("AccountId"),
    "State": Equals("State", BILL_STATES),
    "Type": Equals("Type", BILL_TYPES),
    "CorrectionState": AnyOf("CorrectionState", guids=False, options=("Bill", "CorrectiveBill")),
    "IssuedUtc": Within("IssuedUtc"),
    "ClosedUtc": Within("IssuedUtc"),  # deprecated name of IssuedUtc
    "PaidUtc": Within("PaidUtc"),
    "DueUtc": Within("DueUtc"),
    "CreatedUtc": Within("CreatedUtc"),
    "UpdatedUtc": Within("UpdatedUtc"),
}

ORDER_ITEM_FILTERS: dict[str, Filter] = {
    "OrderItemIds": AnyOf("Id"),
    "AccountIds": AnyOf("AccountId", max_items=MAX_ACCOUNT_IDS),
    "ServiceOrderIds": AnyOf("ServiceOrderId"),
    "ServiceIds": AnyOf("ServiceId"),
    "BillIds": AnyOf("BillId"),
    "CreatedUtc": Within("CreatedUtc"),
    "UpdatedUtc": Within("UpdatedUtc"),
    "ConsumedUtc": Within("ConsumedUtc"),
    "CanceledUtc": Within("CanceledUtc"),
    "ClosedUtc": Within("ClosedUtc"),
}

PAYMENT_FILTERS: dict[str, Filter] = {
    "PaymentIds": AnyOf("Id"),
    "AccountIds": AnyOf("AccountId", max_items=MAX_ACCOUNT_IDS),
    "BillIds": AnyOf("BillId"),
    "ReservationIds": AnyOf("ReservationId"),
    "CreatedUtc": Within("CreatedUtc"),
    "UpdatedUtc": Within("UpdatedUtc"),
    "ChargedUtc": Within("ChargedUtc"),
    "ClosedUtc": Within("ClosedUtc"),
    "SettlementUtc": Within("SettlementUtc"),
}


@operation("bills/getAll")
def get_bills(world: World, params: Params) -> Row:
    require_any_filter(params, BILL_FILTERS)
    return _query(world, params, world.bills, "Bills", BILL_FILTERS)


ACCOUNTING_STATES = ("Open", "Closed", "Inactive", "Canceled")
PAYMENT_STATES = ("Charged", "Canceled", "Pending", "Failed", "Verifying")


def _accounting_query(
    world: World,
    params: Params,
    table: Table,
    key: str,
    filters: dict[str, Filter],
    *,
    narrowing: dict[str, Filter],
) -> Row:
    """Order items and payments: one of ``filters`` is required; the others only narrow."""
    require_any_filter(params, filters)
    currency = params.string("Currency")
    return _query(
        world,
        params,
        table,
        key,
        {
            **filters,
            **narrowing,
            "AccountingStates": AnyOf("AccountingState", guids=False, options=ACCOUNTING_STATES),
        },
        keep=lambda row: currency in (None, row["Amount"]["Currency"]),
    )


@operation("orderItems/getAll")
def get_order_items(world: World, params: Params) -> Row:
    narrowing: dict[str, Filter] = {"Types": AnyOf("Type", guids=False)}
    return _accounting_query(
        world, params, world.order_items, "OrderItems", ORDER_ITEM_FILTERS, narrowing=narrowing
    )


@operation("payments/getAll")
def get_payments(world: World, params: Params) -> Row:
    narrowing: dict[str, Filter] = {
        "States": AnyOf("State", guids=False, options=PAYMENT_STATES),
        "Type": Equals("Type"),
    }
    return _accounting_query(world, params, world.payments, "Payments", PAYMENT_FILTERS, narrowing=narrowing)


# -- postings -------------------------------------------------------------------------------------


def _tax_codes(world: World, amount: Params, consumed: datetime) -> tuple[str, ...]:
    codes = amount.require(amount.strings, "TaxCodes")
    for code in codes:
        rate = world.tax_rates.get(code)
        if rate is None:
            raise invalid(amount.name("TaxCodes"), f"unknown tax code {code}")
        validity = rate["ValidityInvervalsUtc"]
        if validity is not None and not any(
            (start is None or parse_utc(start) <= consumed) and (end is None or consumed < parse_utc(end))
            for start, end in ((interval["StartUtc"], interval["EndUtc"]) for interval in validity)
        ):
            raise invalid(amount.name("TaxCodes"), f"tax code {code} is not valid at the consumption time")
    return tuple(codes)


def _currency(world: World, params: Params) -> str:
    currency = params.require(params.string, "Currency")
    if currency not in world.currencies():
        raise invalid(params.name("Currency"), "not enabled for the enterprise")
    return currency


@dataclass(frozen=True)
class _Price:
    """A unit price: exactly one of ``gross`` and ``net`` is set."""

    currency: str
    gross: Decimal | None
    net: Decimal | None
    tax_codes: tuple[str, ...]


def _price(world: World, amount: Params, consumed: datetime) -> _Price:
    """Read "amount parameters": Gross enterprises price with GrossValue, Net ones with NetValue;
    several tax codes need NetValue, since one gross value cannot be split between taxes."""
    currency = _currency(world, amount)
    codes = _tax_codes(world, amount, consumed)
    if len(codes) > 1 and amount.has("GrossValue"):
        raise invalid(amount.name("TaxCodes"), "several tax codes need NetValue, not GrossValue")
    if world.pricing == "Gross" and len(codes) <= 1:
        return _Price(currency, amount.require(amount.number, "GrossValue"), None, codes)
    return _Price(currency, None, amount.require(amount.number, "NetValue"), codes)


def _product_price(world: World, product: Row) -> _Price:
    price = product["Price"]
    codes = tuple(tax["Code"] for tax in price["TaxValues"])
    if world.pricing == "Gross":
        return _Price(price["Currency"], to_decimal(price["GrossValue"]), None, codes)
    return _Price(price["Currency"], None, to_decimal(price["NetValue"]), codes)


def _line(name: str, count: int, price: _Price, category_id: str | None, params: Params) -> LineItem:
    return LineItem(
        name=name,
        gross=price.gross,
        net=price.net,
        unit_count=count,
        tax_codes=price.tax_codes,
        accounting_category_id=category_id,
        currency=price.currency,
        external_identifier=params.string("ExternalIdentifier", max_length=MAX_IDENTIFIER),
    )


def _item(world: World, item: Params, consumed: datetime) -> LineItem:
    name = item.require(item.string, "Name")
    if not name.strip():
        raise invalid(item.name("Name"), "must not be empty")
    unit_count = item.require(item.integer, "UnitCount", minimum=1)
    price = _price(world, item.require(item.nested, "UnitAmount"), consumed)
    category_id = _optional_entity_id(item, "AccountingCategoryId", world.accounting_categories)
    return _line(name, unit_count, price, category_id, item)


def _product_order(world: World, order: Params, service_id: str, consumed: datetime) -> LineItem:
    product = _entity(order, "ProductId", world.products)
    if product["ServiceId"] != service_id:
        raise invalid(order.name("ProductId"), "the product belongs to another service")
    if not product["IsActive"]:
        raise invalid(order.name("ProductId"), "the product is inactive")
    count = order.integer("Count", minimum=1) or 1
    override = order.nested("UnitAmount")
    price = _product_price(world, product) if override is None else _price(world, override, consumed)
    line = _line(product["Names"]["en-US"], count, price, product["AccountingCategoryId"], order)
    return replace(line, product_id=product["Id"])


def _open_bill_of(world: World, params: Params, account_id: str) -> str | None:
    bill = _optional_entity(params, "BillId", world.bills)
    if bill is None:
        return None
    if bill["State"] != "Open" or bill["AccountId"] != account_id:
        raise invalid("BillId", "not an open bill of the account")
    return bill["Id"]


@operation("orders/add")
def add_order(world: World, params: Params) -> Row:
    """Post charges (e.g. a phone call) to a guest. Cashlist ("No Post") is deliberately not checked:
    Mews leaves that to the integration."""
    params.guid("EnterpriseId")
    service = _entity(params, "ServiceId", world.services)
    account_id = params.require(params.guid, "AccountId")
    account = world.companies.get(account_id)
    if account is not None and not world.company_billing:
        raise ApiError(403, "Posting to company accounts is not enabled for this integration.")
    account = account or _lookup(params, "AccountId", account_id, world.customers)
    now = utc_now()
    consumed = params.timestamp("ConsumptionUtc") or now
    if consumed < now - world.accounting_editable_history:
        raise invalid("ConsumptionUtc", "before the editable history window of the enterprise")
    reservation_id = _optional_entity_id(params, "LinkedReservationId", world.reservations)
    bill_id = _open_bill_of(world, params, account["Id"])
    options = params.nested("Options")
    if options is not None:
        options.boolean("DisableItemGrouping")
    params.guid("BusinessSegmentId")
    lines = [_item(world, item, consumed) for item in params.nested_list("Items")]
    lines += [
        _product_order(world, order, service["Id"], consumed) for order in params.nested_list("ProductOrders")
    ]
    if not lines:
        raise bad_request(
            "Missing required field 'Items' (or 'ProductOrders'): an order needs something to charge"
        )
    order_id = world.post_order(
        service["Id"],
        account["Id"],
        lines,
        consumed_utc=consumed,
        linked_reservation_id=reservation_id,
        bill_id=bill_id,
        notes=params.string("Notes"),
    )
    return {"OrderId": order_id}


@operation("payments/addExternal")
def add_external_payment(world: World, params: Params) -> Row:
    params.guid("EnterpriseId")
    account = _entity(params, "AccountId", world.customers)
    amount = params.require(params.nested, "Amount")
    currency = _currency(world, amount)
    # No tax on a payment, so either value will do; Mews' own example sends GrossValue.
    value_key = "NetValue" if amount.has("NetValue") and not amount.has("GrossValue") else "GrossValue"
    value = amount.require(amount.number, value_key)
    amount.strings("TaxCodes")
    payment_type = params.choice("Type", EXTERNAL_PAYMENT_TYPES)
    payment_id = world.add_external_payment(
        account["Id"],
        value,
        currency,
        type=payment_type,
        bill_id=_open_bill_of(world, params, account["Id"]),
        reservation_id=_optional_entity_id(params, "ReservationId", world.reservations),
        accounting_category_id=_optional_entity_id(
            params, "AccountingCategoryId", world.accounting_categories
        ),
        external_identifier=params.string("ExternalIdentifier", max_length=MAX_IDENTIFIER),
        notes=params.string("Notes"),
    )
    return {"ExternalPaymentId": payment_id}

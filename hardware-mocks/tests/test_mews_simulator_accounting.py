"""The Mews simulator's hotel and accounting operations: configuration, reservations, orders, bills."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import httpx
import pytest

from mews_bridge_mocks.mews import DEMO_ACCESS_TOKEN, DEMO_CLIENT_TOKEN, BillPayment, LineItem, MewsSimulator

ENVELOPE = {"ClientToken": DEMO_CLIENT_TOKEN, "AccessToken": DEMO_ACCESS_TOKEN, "Client": "tests 1.0"}
PAGE = {"Count": 100}


@pytest.fixture
async def sim():
    async with MewsSimulator() as simulator:
        yield simulator


@pytest.fixture
async def api(sim: MewsSimulator):
    async with httpx.AsyncClient(base_url=f"{sim.platform_url}/api/connector/v1/") as client:
        yield client


async def call(api: httpx.AsyncClient, operation: str, **params) -> httpx.Response:
    return await api.post(operation, json={**ENVELOPE, **params})


def assert_error(response: httpx.Response, status: int, message_start: str) -> None:
    assert response.status_code == status, response.text
    assert response.json()["Message"].startswith(message_start), response.json()["Message"]


def charge(sim: MewsSimulator, account_id: str, **overrides) -> dict:
    """An orders/add body for one 2.40 EUR phone call."""
    item = {
        "Name": "Phone call +44 1234 567890",
        "UnitCount": 1,
        "UnitAmount": {"Currency": "EUR", "GrossValue": 2.40, "TaxCodes": ["AT-S"]},
        "AccountingCategoryId": sim.accounting_category_id("Telephone international"),
        "ExternalIdentifier": "cdr-1.42",
    }
    return {"ServiceId": sim.service_id("Telephone"), "AccountId": account_id, "Items": [item], **overrides}


def in_house_guest(
    sim: MewsSimulator, room: str = "101", classifications: tuple[str, ...] = ()
) -> tuple[str, str]:
    guest = sim.add_customer("Huber", "Anna", classifications)
    return guest, sim.add_reservation(guest, sim.resource_id(room), state="Started")


# -- configuration and catalogues -----------------------------------------------------------------


async def test_default_world(api, sim):
    enterprise = (await call(api, "configuration/get")).json()["Enterprise"]
    environments = (await call(api, "taxEnvironments/getAll")).json()["TaxEnvironments"]
    taxations = (await call(api, "taxations/getAll")).json()
    services = (await call(api, "services/getAll", ServiceType="Additional", Limitation=PAGE)).json()[
        "Services"
    ]
    categories = (await call(api, "accountingCategories/getAll", Limitation=PAGE)).json()[
        "AccountingCategories"
    ]
    rooms = (await call(api, "resources/getAll", Extent={"Resources": True}, Limitation=PAGE)).json()[
        "Resources"
    ]
    products = (await call(api, "products/getAll", ServiceIds=[services[0]["Id"]], Limitation=PAGE)).json()

    assert enterprise["TimeZoneIdentifier"] == "Europe/Vienna"
    assert (enterprise["Pricing"], enterprise["TaxEnvironmentCode"]) == ("Gross", "AT-2020")
    assert enterprise["AccountingEditableHistoryInterval"] == "P0M7DT0H0M0S"
    assert {"Currency": "EUR", "IsDefault": True, "IsEnabled": True} in enterprise["Currencies"]
    assert environments[0]["TaxationCodes"] == ["AT-2020"]
    assert {rate["Code"]: rate["Value"] for rate in taxations["TaxRates"]} == {
        "AT-S": 0.2,
        "AT-R": 0.1,
        "AT-Z": 0.0,
    }
    assert [service["Name"] for service in services] == ["Telephone"]
    assert {"Telephone local", "Telephone international", "Telephone premium"} <= {
        c["Name"] for c in categories
    }
    assert {"101", "102", "201"} <= {room["Name"] for room in rooms}
    assert products["Products"][0]["Price"]["GrossValue"] == 1.0


async def test_resources_by_name(api, sim):
    body = (
        await call(api, "resources/getAll", Names=["102"], Extent={"Resources": True}, Limitation=PAGE)
    ).json()
    assert [room["Id"] for room in body["Resources"]] == [sim.resource_id("102")]
    assert body["Resources"][0]["Data"]["Value"]["FloorNumber"] == "1"


async def test_reservation_filters(api, sim):
    guest, in_house = in_house_guest(sim)
    arriving = sim.add_reservation(guest, sim.resource_id("102"))
    cancelled = sim.add_reservation(guest)
    sim.cancel_reservation(cancelled)

    async def ids(**filters) -> list[str]:
        body = (await call(api, "reservations/getAll/2023-06-06", Limitation=PAGE, **filters)).json()
        return [reservation["Id"] for reservation in body["Reservations"]]

    assert await ids(States=["Started"]) == [in_house]
    assert await ids(AssignedResourceIds=[sim.resource_id("102")]) == [arriving]
    assert await ids(AccountIds=[guest]) == [cancelled, arriving, in_house]
    assert await ids(ReservationIds=[cancelled], States=["Canceled"]) == [cancelled]


async def test_reservation_interval_filters_are_half_open(api, sim):
    guest = sim.add_customer("Novak")
    stay = sim.add_reservation(guest, start_utc="2030-01-10T14:00:00Z", end_utc="2030-01-12T10:00:00Z")

    async def found(interval: dict) -> bool:
        body = (
            await call(api, "reservations/getAll/2023-06-06", ScheduledStartUtc=interval, Limitation=PAGE)
        ).json()
        return stay in [reservation["Id"] for reservation in body["Reservations"]]

    assert await found({"StartUtc": "2030-01-10T00:00:00Z", "EndUtc": "2030-01-11T00:00:00Z"})
    assert await found({"StartUtc": "2030-01-10T14:00:00Z", "EndUtc": "2030-01-10T14:00:00Z"})
    assert not await found({"StartUtc": "2030-01-09T00:00:00Z", "EndUtc": "2030-01-10T14:00:00Z"})


async def test_guest_lifecycle_helpers(sim):
    _, stay = in_house_guest(sim)
    sim.move_reservation(stay, sim.resource_id("103"))
    sim.check_out(stay)

    reservation = sim.reservation(stay)
    assert reservation["State"] == "Processed"
    assert reservation["AssignedResourceId"] == sim.resource_id("103")
    assert reservation["ActualEndUtc"] is not None
    with pytest.raises(ValueError, match="Processed"):
        sim.check_in(stay)


async def test_customers_show_cashlist(api, sim):
    guest, _ = in_house_guest(sim, classifications=("Cashlist",))
    body = (
        await call(api, "customers/getAll", CustomerIds=[guest], Extent={"Customers": True}, Limitation=PAGE)
    ).json()
    assert body["Customers"][0]["Classifications"] == ["Cashlist"]
    assert body["Customers"][0]["LastName"] == "Huber"


# -- orders/add -----------------------------------------------------------------------------------


async def test_order_is_stored_with_taxed_items(api, sim):
    guest, stay = in_house_guest(sim)
    response = await call(api, "orders/add", **charge(sim, guest, LinkedReservationId=stay, Notes="3m12s"))

    order_id = response.json()["OrderId"]
    [order] = sim.orders
    [item] = order["Items"]
    listed = (await call(api, "orderItems/getAll", ServiceOrderIds=[order_id], Limitation=PAGE)).json()
    assert (order["Id"], order["LinkedReservationId"], order["Notes"]) == (order_id, stay, "3m12s")
    assert (item["BillingName"], item["UnitCount"], item["AccountingState"]) == (
        "Phone call +44 1234 567890",
        1,
        "Open",
    )
    assert item["Amount"]["GrossValue"] == 2.4
    assert item["Amount"]["NetValue"] == 2.0
    assert item["Amount"]["TaxValues"] == [{"Code": "AT-S", "Value": 0.4}]
    assert item["AccountingCategoryId"] == sim.accounting_category_id("Telephone international")
    assert [listed_item["Id"] for listed_item in listed["OrderItems"]] == [item["Id"]]


async def test_cashlist_is_not_enforced_by_mews(api, sim):
    guest, stay = in_house_guest(sim, classifications=("Cashlist",))
    response = await call(api, "orders/add", **charge(sim, guest, LinkedReservationId=stay))
    assert response.status_code == 200
    assert len(sim.orders) == 1


async def test_net_pricing_needs_net_values():
    async with (
        MewsSimulator(pricing="Net") as net_sim,
        httpx.AsyncClient(base_url=f"{net_sim.platform_url}/api/connector/v1/") as client,
    ):
        guest = net_sim.add_customer("Smith")
        gross_only = await call(client, "orders/add", **charge(net_sim, guest))
        body = charge(net_sim, guest)
        body["Items"][0]["UnitAmount"] = {"Currency": "EUR", "NetValue": 2, "TaxCodes": ["AT-S"]}
        net = await call(client, "orders/add", **body)

        assert_error(gross_only, 400, "Missing required field 'Items[0].UnitAmount.NetValue'")
        assert net.status_code == 200
        assert net_sim.orders[0]["Items"][0]["Amount"]["GrossValue"] == 2.4


@pytest.mark.parametrize(
    ("item_changes", "message"),
    [
        ({"UnitCount": 1.5}, "Invalid Items[0].UnitCount"),
        ({"UnitCount": "1"}, "Invalid Items[0].UnitCount"),
        ({"Name": None}, "Missing required field 'Items[0].Name'"),
        ({"Name": "  "}, "Invalid Items[0].Name"),
        ({"UnitAmount": {"Currency": "EUR", "NetValue": 2, "TaxCodes": ["AT-S"]}}, "Missing required field"),
        (
            {"UnitAmount": {"Currency": "EUR", "GrossValue": 2}},
            "Missing required field 'Items[0].UnitAmount.TaxCodes'",
        ),
        (
            {"UnitAmount": {"Currency": "GBP", "GrossValue": 2, "TaxCodes": ["AT-S"]}},
            "Invalid Items[0].UnitAmount.Currency",
        ),
        (
            {"UnitAmount": {"Currency": "EUR", "GrossValue": 2, "TaxCodes": ["UK-S"]}},
            "Invalid Items[0].UnitAmount.TaxCodes",
        ),
        (
            {"UnitAmount": {"Currency": "EUR", "GrossValue": 2, "TaxCodes": ["AT-S", "AT-R"]}},
            "Invalid Items[0].UnitAmount.TaxCodes",
        ),
        (
            {"UnitAmount": {"Currency": "EUR", "GrossValue": True, "TaxCodes": ["AT-S"]}},
            "Invalid Items[0].UnitAmount",
        ),
        (
            {"AccountingCategoryId": "aa20961f-6d9e-4b35-ad25-071213530aec"},
            "Invalid Items[0].AccountingCategoryId",
        ),
    ],
)
async def test_invalid_order_items_are_400(api, sim, item_changes, message):
    guest, _ = in_house_guest(sim)
    body = charge(sim, guest)
    body["Items"][0] = {
        key: value for key, value in {**body["Items"][0], **item_changes}.items() if value is not None
    }
    assert_error(await call(api, "orders/add", **body), 400, message)
    assert sim.orders == []


async def test_invalid_orders_are_400(api, sim):
    guest, _ = in_house_guest(sim)
    unknown = "aa20961f-6d9e-4b35-ad25-071213530aec"
    too_old = (datetime.now(UTC) - timedelta(days=30)).strftime("%Y-%m-%dT%H:%M:%SZ")

    cases = [
        (charge(sim, guest, ServiceId=unknown), "Invalid ServiceId"),
        (charge(sim, guest, AccountId=unknown), "Invalid AccountId"),
        (charge(sim, guest, LinkedReservationId=unknown), "Invalid LinkedReservationId"),
        (charge(sim, guest, ConsumptionUtc=too_old), "Invalid ConsumptionUtc"),
        (charge(sim, guest, Items=[]), "Missing required field 'Items'"),
        ({"AccountId": guest, "Items": []}, "Missing required field 'ServiceId'"),
    ]
    for body, message in cases:
        assert_error(await call(api, "orders/add", **body), 400, message)


async def test_product_orders_use_the_product_price(api, sim):
    guest, _ = in_house_guest(sim)
    telephone = sim.service_id("Telephone")
    product = sim.add_product(telephone, "Wake-up call", 0.5, ("AT-S",))
    response = await call(
        api,
        "orders/add",
        ServiceId=telephone,
        AccountId=guest,
        ProductOrders=[{"ProductId": product, "Count": 2}],
    )
    [item] = sim.orders[0]["Items"]
    assert response.status_code == 200
    assert (item["Type"], item["BillingName"], item["Amount"]["GrossValue"]) == (
        "ProductOrder",
        "Wake-up call",
        1.0,
    )


async def test_invalid_product_orders_are_400(api, sim):
    guest, stay = in_house_guest(sim)
    telephone = sim.service_id("Telephone")
    water = sim.add_product(telephone, "Mineral water", 3.5, ("AT-R",))
    elsewhere = sim.add_product(sim.service_id("Accommodation"), "Breakfast", 18)
    retired = sim.add_product(telephone, "Old fax", 2)
    sim.products[retired]["IsActive"] = False
    unknown = "aa20961f-6d9e-4b35-ad25-071213530aec"

    def order(**product_order) -> dict:
        return {"ServiceId": telephone, "AccountId": guest, "ProductOrders": [product_order]}

    cases = [
        (order(ProductId=unknown), "Invalid ProductOrders[0].ProductId"),
        (order(ProductId=elsewhere), "Invalid ProductOrders[0].ProductId"),
        (order(ProductId=retired), "Invalid ProductOrders[0].ProductId"),
        (order(ProductId=water, Count=0), "Invalid ProductOrders[0].Count"),
        (order(ProductId=water, Count=1.5), "Invalid ProductOrders[0].Count"),
        (order(ProductId=water, Count="2"), "Invalid ProductOrders[0].Count"),
        (order(Count=2), "Missing required field 'ProductOrders[0].ProductId'"),
        ({**order(ProductId=water), "LinkedReservationId": unknown}, "Invalid LinkedReservationId"),
    ]
    for body, message in cases:
        assert_error(await call(api, "orders/add", **body), 400, message)
    assert sim.orders == []

    posted = await call(
        api,
        "orders/add",
        **order(ProductId=water, Count=2, ExternalIdentifier="item-1"),
        LinkedReservationId=stay,
    )
    assert posted.status_code == 200
    [item] = sim.orders[0]["Items"]
    assert (item["UnitCount"], item["Amount"]["GrossValue"], item["ExternalIdentifier"]) == (2, 7.0, "item-1")


# -- bills and payments ---------------------------------------------------------------------------


async def test_bill_items_and_payments_by_bill_id(api, sim):
    guest, _ = in_house_guest(sim)
    bill_id = sim.add_bill(
        guest,
        items=[
            LineItem("Night 12 Mar", gross=110, tax_codes=("AT-R",)),
            {"name": "Minibar", "gross": 6, "unit_count": 2},
        ],
        payments=[BillPayment(122)],
    )

    bills = (await call(api, "bills/getAll", BillIds=[bill_id], Limitation=PAGE)).json()["Bills"]
    items = (await call(api, "orderItems/getAll", BillIds=[bill_id], Limitation=PAGE)).json()["OrderItems"]
    payments = (await call(api, "payments/getAll", BillIds=[bill_id], Limitation=PAGE)).json()["Payments"]

    assert (bills[0]["State"], bills[0]["Type"], bills[0]["Number"]) == ("Closed", "Receipt", "1")
    assert bills[0]["OwnerData"]["Value"]["LastName"] == "Huber"
    assert [(item["BillingName"], item["Amount"]["GrossValue"]) for item in items] == [
        ("Minibar", 12.0),
        ("Night 12 Mar", 110.0),
    ]
    assert items[1]["Amount"]["TaxValues"] == [{"Code": "AT-R", "Value": 10.0}]
    assert {item["AccountingState"] for item in items} == {"Closed"}
    assert [payment["Amount"]["GrossValue"] for payment in payments] == [-122.0]


async def test_a_fiscal_command_carries_the_bill_as_bills_get_all_returns_it(api, sim):
    fiscal_machine = sim.add_device("Fiscal machine", "FiscalMachine", identifier="fiscal-1")
    guest, _ = in_house_guest(sim)
    bill_id = sim.add_bill(guest, items=[LineItem("Night", gross=110)], payments=[BillPayment(110)])
    open_bill = sim.add_bill(guest, state="Open")

    command_id = sim.add_fiscal_command(fiscal_machine, bill_id)
    with pytest.raises(ValueError, match="still open"):
        sim.add_fiscal_command(fiscal_machine, open_bill)

    [command] = (await call(api, "commands/getAllByIds", CommandIds=[command_id])).json()["Commands"]
    [bill] = (await call(api, "bills/getAll", BillIds=[bill_id], Limitation=PAGE)).json()["Bills"]
    assert (command["State"], command["Device"]["Type"]) == ("Pending", "FiscalMachine")
    assert command["Data"]["FiscalMachineId"] == "fiscal-1"
    assert command["Data"]["Bill"] == bill
    assert bill["OrderItems"] == bill["PaymentItems"] == []  # deprecated: the items come by bill id
    assert [c["Id"] for c in (await call(api, "commands/getAllActive")).json()["Commands"]] == [command_id]


async def test_open_items_of_an_account(api, sim):
    guest, _ = in_house_guest(sim)
    await call(api, "orders/add", **charge(sim, guest))
    sim.add_bill(guest, items=[LineItem("Old night", gross=90)])

    open_items = (
        await call(api, "orderItems/getAll", AccountIds=[guest], AccountingStates=["Open"], Limitation=PAGE)
    ).json()["OrderItems"]
    assert [item["BillingName"] for item in open_items] == ["Phone call +44 1234 567890"]


async def test_external_payment(api, sim):
    guest, stay = in_house_guest(sim)
    bill_id = sim.add_bill(guest, state="Open")
    response = await call(
        api,
        "payments/addExternal",
        AccountId=guest,
        Amount={"Currency": "EUR", "GrossValue": 1.2},
        Type="Cash",
        BillId=bill_id,
        ReservationId=stay,
        Notes="coin phone",
    )
    wrong_type = await call(
        api, "payments/addExternal", AccountId=guest, Amount={"Currency": "EUR", "GrossValue": 1}, Type="Visa"
    )

    payment_id = response.json()["ExternalPaymentId"]
    [payment] = (await call(api, "payments/getAll", PaymentIds=[payment_id], Limitation=PAGE)).json()[
        "Payments"
    ]
    assert (payment["BillId"], payment["ReservationId"], payment["Type"]) == (
        bill_id,
        stay,
        "ExternalPayment",
    )
    assert payment["Amount"]["GrossValue"] == -1.2
    assert payment["Data"]["External"]["Type"] == "Cash"
    assert_error(wrong_type, 400, "Invalid Type")


# -- tasks, companies and who stays ----------------------------------------------------------------


async def test_a_task_is_stored_and_needs_a_name_and_a_deadline(api, sim):
    _, stay = in_house_guest(sim)
    added = await call(
        api, "tasks/add", Name="Call charge refused", DeadlineUtc="2030-01-01T08:00:00Z", ServiceOrderId=stay
    )
    nameless = await call(api, "tasks/add", DeadlineUtc="2030-01-01T08:00:00Z")
    [task] = sim.tasks
    assert added.json() == {"TaskId": task["Id"]}
    assert (task["Name"], task["ServiceOrderId"], task["State"]) == ("Call charge refused", stay, "Open")
    assert_error(nameless, 400, "Missing required field 'Name'")


async def test_a_company_stay_lists_its_guests_and_its_orders_need_company_billing(api, sim):
    company = sim.add_company("Travel Agency")
    anna, franz = sim.add_customer("Huber", "Anna"), sim.add_customer("Gruber", "Franz")
    stay = sim.add_reservation(anna, sim.resource_id("101"), "Started", company_id=company)
    sim.add_companion(stay, franz)
    guests = await call(api, "companionships/getAll", ReservationIds=[stay], Limitation=PAGE)
    billed = await call(api, "orders/add", **charge(sim, company, LinkedReservationId=stay))
    sim.company_billing = False
    refused = await call(api, "orders/add", **charge(sim, company, LinkedReservationId=stay))
    assert sim.reservation(stay)["AccountType"] == "Company"
    assert {c["CustomerId"] for c in guests.json()["Companionships"]} == {anna, franz}
    assert billed.status_code == 200 and sim.orders[0]["AccountId"] == company
    assert_error(refused, 403, "Posting to company accounts is not enabled")

"""The Mews simulator over real HTTP: protocol rules, devices and commands, faults, call records."""

from __future__ import annotations

import base64

import httpx
import pytest

from mews_bridge_mocks.mews import DEMO_ACCESS_TOKEN, DEMO_CLIENT_TOKEN, MewsSimulator

ENVELOPE = {"ClientToken": DEMO_CLIENT_TOKEN, "AccessToken": DEMO_ACCESS_TOKEN, "Client": "tests 1.0"}
PDF = base64.b64encode(b"%PDF-1.7 test").decode()
STATES = ("Pending", "Received", "Processing", "Processed", "Cancelled", "Error")


@pytest.fixture
def sim(mews_simulator: MewsSimulator) -> MewsSimulator:
    return mews_simulator


@pytest.fixture
async def api(sim: MewsSimulator):
    async with httpx.AsyncClient(base_url=f"{sim.platform_url}/api/connector/v1/") as client:
        yield client


async def call(
    api: httpx.AsyncClient, operation: str, headers: dict | None = None, **params
) -> httpx.Response:
    return await api.post(operation, json={**ENVELOPE, **params}, headers=headers)


def assert_error(response: httpx.Response, status: int, message_start: str) -> None:
    assert response.status_code == status, response.text
    body = response.json()
    assert body["Message"].startswith(message_start), body["Message"]
    assert body["RequestId"] == response.headers["Request-Id"]
    assert body["Details"] is None


# -- protocol -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("POST", "devices/getAll/"),  # trailing slash
        ("POST", "Devices/getAll"),  # case
        ("POST", "devices/getall"),
        ("POST", "devices/nothing"),
        ("GET", "devices/getAll"),
        ("POST", "reservations/getAll/2023-06-07"),
    ],
)
async def test_wrong_path_or_method_is_404(api, method, path):
    response = await api.request(method, path, json=ENVELOPE)
    assert_error(response, 404, "Not found")


async def test_every_response_has_a_unique_request_id(api):
    first = await call(api, "devices/getAll")
    second = await call(api, "devices/getAll")
    assert first.status_code == second.status_code == 200
    assert first.headers["Request-Id"] != second.headers["Request-Id"]


@pytest.mark.parametrize(
    ("envelope", "message"),
    [
        ({**ENVELOPE, "AccessToken": "wrong"}, "Invalid AccessToken"),
        ({**ENVELOPE, "ClientToken": "wrong"}, "Invalid ClientToken"),
        ({"AccessToken": DEMO_ACCESS_TOKEN, "Client": "x"}, "Invalid ClientToken"),
    ],
)
async def test_bad_tokens_are_401(api, envelope, message):
    assert_error(await api.post("devices/getAll", json=envelope), 401, message)


async def test_client_name_is_required(api):
    envelope = {key: value for key, value in ENVELOPE.items() if key != "Client"}
    assert_error(await api.post("devices/getAll", json=envelope), 400, "Missing required field 'Client'")


@pytest.mark.parametrize(
    "content",
    [
        b'{"ClientToken": "a",}',  # trailing comma
        b'{"Count": NaN}',
        b"[]",
        b"",
        b"\xff\xfe",
    ],
)
async def test_malformed_json_is_400(api, content):
    response = await api.post("devices/getAll", content=content, headers={"Content-Type": "application/json"})
    assert_error(response, 400, "Invalid JSON")


@pytest.mark.parametrize(
    ("operation", "params", "message"),
    [
        ("commands/getAllByIds", {}, "Missing required field 'CommandIds'"),
        ("commands/getAllByIds", {"CommandIds": "abc"}, "Invalid CommandIds"),
        ("commands/getAllByIds", {"CommandIds": ["not-a-guid"]}, "Invalid CommandIds"),
        (
            "commands/getAllByIds",
            {"CommandIds": ["aa20961f-6d9e-4b35-ad25-071213530aec"] * 1001},
            "Invalid CommandIds",
        ),
        ("commands/update", {"State": "Processed"}, "Missing required field 'CommandId'"),
        ("services/getAll", {}, "Missing required field 'Limitation'"),
        ("services/getAll", {"Limitation": {"Count": 0}}, "Invalid Limitation.Count"),
        ("services/getAll", {"Limitation": {"Count": 1001}}, "Invalid Limitation.Count"),
        ("services/getAll", {"Limitation": {"Count": "10"}}, "Invalid Limitation.Count"),
        ("services/getAll", {"Limitation": {}}, "Missing required field 'Limitation.Count'"),
        ("resources/getAll", {"Limitation": {"Count": 10}}, "Missing required field 'Extent'"),
        ("customers/getAll", {"Limitation": {"Count": 10}}, "Missing required field 'Extent'"),
        (
            "customers/getAll",
            {"Extent": {"Customers": True}, "Limitation": {"Count": 10}},
            "Missing filter",
        ),
        (
            "reservations/getAll/2023-06-06",
            {
                "UpdatedUtc": {"StartUtc": "2025-01-01T00:00:00Z", "EndUtc": "2025-04-02T00:00:00Z"},
                "Limitation": {"Count": 10},
            },
            "Invalid UpdatedUtc",
        ),
        (
            "reservations/getAll/2023-06-06",
            {"UpdatedUtc": {"StartUtc": "2025-01-01T00:00:00Z"}, "Limitation": {"Count": 10}},
            "Missing required field 'UpdatedUtc.EndUtc'",
        ),
        ("orderItems/getAll", {"Limitation": {"Count": 10}}, "Missing filter"),
    ],
)
async def test_invalid_parameters_are_400(api, operation, params, message):
    assert_error(await call(api, operation, **params), 400, message)


async def test_limit_then_429_with_retry_after():
    async with (
        MewsSimulator(rate_limit=3, rate_window_s=30.0) as sim,
        httpx.AsyncClient(base_url=sim.platform_url) as client,
    ):
        statuses = [
            (await client.post("/api/connector/v1/devices/getAll", json=ENVELOPE)).status_code
            for _ in range(3)
        ]
        limited = await client.post("/api/connector/v1/devices/getAll", json=ENVELOPE)
        assert statuses == [200, 200, 200]
        assert_error(limited, 429, "Too many requests")
        assert 1 <= int(limited.headers["Retry-After"]) <= 30

        sim.rate_limiter.limit = None  # settable at runtime
        assert (await client.post("/api/connector/v1/devices/getAll", json=ENVELOPE)).status_code == 200


async def test_prefer_minimal_gives_204_for_empty_results(api, sim):
    minimal = {"Prefer": "return=minimal"}
    printer = sim.add_device("Printer", "Printer")
    command_id = sim.add_command(printer, {"CopyCount": 1})

    updated = await call(api, "commands/update", minimal, CommandId=command_id, State="Received")
    empty_page = await call(api, "bills/getAll", minimal, BillIds=[command_id], Limitation={"Count": 5})
    full_page = await call(api, "services/getAll", minimal, Limitation={"Count": 5})
    without_header = await call(api, "commands/update", CommandId=command_id, State="Processing")

    assert (updated.status_code, updated.content, updated.headers.get("Content-Type")) == (204, b"", None)
    assert empty_page.status_code == 204
    assert full_page.status_code == 200
    assert (without_header.status_code, without_header.json()) == (200, {})


# -- pagination -----------------------------------------------------------------------------------


async def test_pages_run_newest_to_oldest_and_the_cursor_is_the_last_id(api, sim):
    ids = [sim.add_customer(f"Guest {number}") for number in range(5)]

    pages, cursor = [], None
    while True:
        response = await call(
            api,
            "customers/getAll",
            CustomerIds=ids,
            Extent={"Customers": True},
            Limitation={"Count": 2, "Cursor": cursor},
        )
        body = response.json()
        if body["Cursor"] is None:
            assert body["Customers"] == []
            break
        pages.append([customer["Id"] for customer in body["Customers"]])
        assert body["Cursor"] == pages[-1][-1]
        cursor = body["Cursor"]

    assert pages == [ids[4:2:-1], ids[2:0:-1], ids[:1]]


async def test_switched_off_extent_returns_no_entities_but_a_cursor(api, sim):
    customer = sim.add_customer("Hidden")
    response = await call(
        api, "customers/getAll", CustomerIds=[customer], Extent={"Customers": False}, Limitation={"Count": 5}
    )
    assert response.json() == {"Customers": [], "Documents": None, "Cursor": customer}


async def test_unknown_cursor_is_400(api):
    response = await call(
        api, "services/getAll", Limitation={"Count": 5, "Cursor": "aa20961f-6d9e-4b35-ad25-071213530aec"}
    )
    assert_error(response, 400, "Invalid Limitation.Cursor")


# -- devices and commands -------------------------------------------------------------------------


async def test_devices_and_the_active_queue(api, sim):
    printer = sim.add_device("Reception printer", "Printer", identifier="reception")
    by_state = {state: sim.add_command(printer, {"CopyCount": 1}, state=state) for state in STATES}

    devices = (await call(api, "devices/getAll")).json()["Devices"]
    active = (await call(api, "commands/getAllActive")).json()["Commands"]

    assert devices == [
        {"Id": printer, "Name": "Reception printer", "Type": "Printer", "Identifier": "reception"}
    ]
    assert [command["Id"] for command in active] == [by_state["Pending"], by_state["Received"]]
    assert active[0]["Device"]["Id"] == printer
    assert active[0]["Data"] == {"CopyCount": 1}


async def test_get_all_by_ids_leaves_out_unknown_ids(api, sim):
    printer = sim.add_device("Printer", "Printer")
    known = sim.add_command(printer, {}, state="Processing")
    unknown = "aa20961f-6d9e-4b35-ad25-071213530aec"

    body = (await call(api, "commands/getAllByIds", CommandIds=[unknown, known])).json()
    paged = (await call(api, "commands/getAllByIds", CommandIds=[known], Limitation={"Count": 1})).json()

    assert [command["Id"] for command in body["Commands"]] == [known]
    assert body["Cursor"] is None
    assert paged["Cursor"] == known


async def test_command_lifecycle_keeps_progress_and_final_notes(api, sim):
    printer = sim.add_device("Printer", "Printer")
    command_id = sim.add_command(printer, {"CopyCount": 1})

    for update in (
        {"State": "Received", "Notes": "ignored before the end"},
        {"State": "Processing", "Progress": 42.5},
        {"State": "Error", "Notes": "Paper out", "Progress": 99},
    ):
        assert (await call(api, "commands/update", CommandId=command_id, **update)).status_code == 200
    again = await call(api, "commands/update", CommandId=command_id, State="Processed")

    command = sim.command(command_id)
    assert (command["State"], command["Notes"]) == ("Error", "Paper out")
    assert command["History"] == [
        ("Received", None, None),
        ("Processing", 42.5, None),
        ("Error", None, "Paper out"),
    ]
    assert_error(again, 400, "Invalid CommandId")


async def test_updates_after_a_final_state_can_be_allowed(api, sim):
    sim.reject_updates_after_final_state = False
    command_id = sim.add_command(sim.add_device("Printer", "Printer"), {}, state="Processed")
    response = await call(api, "commands/update", CommandId=command_id, State="Error", Notes="reprint failed")
    assert response.status_code == 200
    assert sim.command(command_id)["State"] == "Error"


@pytest.mark.parametrize(
    ("update", "message"),
    [
        ({"CommandId": "aa20961f-6d9e-4b35-ad25-071213530aec", "State": "Processed"}, "Invalid CommandId"),
        ({"State": "Done"}, "Invalid State"),
        ({"State": "Processing", "Progress": "half"}, "Invalid Progress"),
    ],
)
async def test_invalid_updates_are_400(api, sim, update, message):
    command_id = sim.add_command(sim.add_device("Printer", "Printer"), {})
    assert_error(await call(api, "commands/update", **{"CommandId": command_id, **update}), 400, message)


async def test_add_printer_creates_a_pdf_command(api, sim):
    printer = sim.add_device("Bar printer", "Printer")
    response = await call(api, "commands/addPrinter", PrinterId=printer, Data=PDF, CopyCount=2)
    wrong_device = await call(
        api, "commands/addPrinter", PrinterId=sim.add_device("Cutter", "KeyCutter"), Data=PDF, CopyCount=1
    )
    not_base64 = await call(api, "commands/addPrinter", PrinterId=printer, Data="%%%", CopyCount=1)

    data = sim.command(response.json()["CommandId"])["Data"]
    assert data == {
        "CopyCount": 2,
        "FileType": "application/pdf",
        "FileData": PDF,
        "PrinterName": "Bar printer",
        "PrinterDriverName": "",
        "PrinterPortName": "",
    }
    assert_error(wrong_device, 400, "Invalid PrinterId")
    assert_error(not_base64, 400, "Invalid Data")


async def test_add_key_cutter_derives_the_key_from_the_reservation(api, sim):
    cutter = sim.add_device("Encoder", "KeyCutter", identifier="enc-1")
    guest = sim.add_customer("Müller", "Zoë", email="z@example.invalid", phone="+43 1")
    room = sim.resource_id("201")
    stay = sim.add_reservation(guest, room, start_utc="2030-05-01T14:00:00Z", end_utc="2030-05-03T10:00:00Z")
    roomless = sim.add_reservation(guest)

    response = await call(api, "commands/addKeyCutter", KeyCutterId=cutter, ReservationId=stay, KeyCount=2)
    refused = await call(api, "commands/addKeyCutter", KeyCutterId=cutter, ReservationId=roomless, KeyCount=1)

    data = sim.command(response.json()["CommandId"])["Data"]
    assert data["LockIds"] == ["201"]
    assert (data["StartUtc"], data["EndUtc"]) == ("2030-05-01T14:00:00Z", "2030-05-03T10:00:00Z")
    assert (data["FirstName"], data["LastName"]) == ("Zoë", "Müller")
    assert (data["NormalizedFirstName"], data["NormalizedLastName"]) == ("Zoe", "Muller")
    assert (data["KeyCount"], data["KeyCutterId"], data["ReservationId"]) == (2, "enc-1", stay)
    assert data["ReservationNumber"] == sim.reservation(stay)["Number"]
    assert_error(refused, 403, "The reservation has no space assigned")


# -- faults ---------------------------------------------------------------------------------------


async def test_error_and_timeout_ratios(api, sim):
    sim.faults.error_ratio = 1.0
    sim.faults.error_status = 503
    unavailable = await call(api, "devices/getAll")
    sim.faults.error_ratio, sim.faults.timeout_ratio = 0.0, 1.0
    timed_out = await call(api, "devices/getAll")
    unauthorized = await api.post("devices/getAll", json={**ENVELOPE, "AccessToken": "wrong"})
    sim.faults.clear()

    assert_error(unavailable, 503, "An unexpected error occurred")
    assert_error(timed_out, 408, "The request took too long")
    assert unauthorized.status_code == 401
    assert (await call(api, "devices/getAll")).status_code == 200


async def test_error_ratio_is_a_share_of_calls(api, sim):
    sim.faults.rng.seed(7)
    sim.faults.error_ratio = 0.5
    statuses = {(await call(api, "devices/getAll")).status_code for _ in range(20)}
    assert statuses == {200, 500}


async def test_failing_one_operation_a_number_of_times(api, sim):
    command_id = sim.add_command(sim.add_device("Printer", "Printer"), {})
    sim.faults.fail_operation("commands/update", times=2, status=502)

    statuses = [
        (await call(api, "commands/update", CommandId=command_id, State="Received")).status_code
        for _ in range(3)
    ]
    other = await call(api, "devices/getAll")

    assert statuses == [502, 502, 200]
    assert other.status_code == 200


async def test_rate_limit_storm(api, sim):
    sim.faults.rate_limit_storm(60)
    stormed = await call(api, "devices/getAll")
    sim.faults.clear()
    assert_error(stormed, 429, "Too many requests")
    assert 59 <= int(stormed.headers["Retry-After"]) <= 60
    assert (await call(api, "devices/getAll")).status_code == 200


# -- call records ---------------------------------------------------------------------------------


async def test_calls_are_recorded(api, sim):
    command_id = sim.add_command(sim.add_device("Printer", "Printer"), {})
    response = await call(api, "commands/update", CommandId=command_id, State="Received")
    await api.post("nowhere", json=ENVELOPE)

    [update] = sim.calls_to("commands/update")
    assert (update["method"], update["path"]) == ("POST", "/api/connector/v1/commands/update")
    assert update["body"]["CommandId"] == command_id
    assert (update["status"], update["response"]) == (200, {})
    assert update["request_id"] == response.headers["Request-Id"]
    assert update["time"].tzinfo is not None
    assert (sim.calls[-1]["operation"], sim.calls[-1]["status"]) == (None, 404)

"""The Mews simulator's housekeeping and staff operations over real HTTP: resources/update, tasks/add."""

from __future__ import annotations

import httpx
import pytest

from mews_bridge_mocks.mews import DEMO_ACCESS_TOKEN, DEMO_CLIENT_TOKEN, MewsSimulator

ENVELOPE = {"ClientToken": DEMO_CLIENT_TOKEN, "AccessToken": DEMO_ACCESS_TOKEN, "Client": "tests 1.0"}
UNKNOWN_ID = "00000000-0000-4000-8000-000000000000"


@pytest.fixture
def sim(mews_simulator: MewsSimulator) -> MewsSimulator:
    return mews_simulator


@pytest.fixture
async def api(sim: MewsSimulator):
    async with httpx.AsyncClient(base_url=f"{sim.platform_url}/api/connector/v1/") as client:
        yield client


async def call(api: httpx.AsyncClient, operation: str, **params) -> httpx.Response:
    return await api.post(operation, json={**ENVELOPE, **params})


def refused(response: httpx.Response, message_start: str) -> None:
    assert response.status_code == 400, response.text
    assert response.json()["Message"].startswith(message_start), response.json()["Message"]


async def test_resources_update_sets_the_housekeeping_state(api, sim):
    room = sim.resource_id("101")
    response = await call(
        api,
        "resources/update",
        ResourceUpdates=[
            {"ResourceId": room, "State": {"Value": "OutOfService"}, "StateReason": {"Value": "TV broken"}}
        ],
    )
    assert response.status_code == 200, response.text
    assert response.json() == {}
    assert sim.resources[room]["State"] == "OutOfService"
    assert sim.resources[room]["StateReason"] == "TV broken"
    listed = await call(api, "resources/getAll", Extent={"Resources": True}, Limitation={"Count": 100})
    assert {r["Id"]: r["State"] for r in listed.json()["Resources"]}[room] == "OutOfService"


@pytest.mark.parametrize(
    ("update", "message"),
    [
        ({"State": "Clean"}, "Invalid ResourceUpdates[0].State: expected an object"),
        ({"State": {}}, "Missing required field 'ResourceUpdates[0].State.Value'"),
        ({"State": {"Value": "Tidy"}}, "Invalid ResourceUpdates[0].State.Value"),
        ({"State": {"Value": None}}, "Invalid ResourceUpdates[0].State.Value"),
        ({"Status": {"Value": "Clean"}}, "Invalid ResourceUpdates[0].Status: not a field"),
        ({"StateReason": {"Value": 7}}, "Invalid ResourceUpdates[0].StateReason.Value"),
    ],
)
async def test_resources_update_is_validated(api, sim, update, message):
    room = sim.resource_id("101")
    refused(await call(api, "resources/update", ResourceUpdates=[{"ResourceId": room, **update}]), message)
    assert sim.resources[room]["State"] == "Clean"


async def test_resources_update_applies_all_or_nothing(api, sim):
    first, second = sim.resource_id("101"), sim.resource_id("102")
    response = await call(
        api,
        "resources/update",
        ResourceUpdates=[
            {"ResourceId": first, "State": {"Value": "Dirty"}},
            {"ResourceId": UNKNOWN_ID, "State": {"Value": "Dirty"}},
        ],
    )
    refused(response, "Invalid ResourceUpdates[1].ResourceId")
    refused(
        await call(api, "resources/update", ResourceUpdates=[]), "Missing required field 'ResourceUpdates'"
    )
    assert sim.resources[first]["State"] == sim.resources[second]["State"] == "Clean"


async def test_tasks_add_creates_an_open_task(api, sim):
    reservation = sim.add_reservation(sim.add_customer("Huber", "Anna"), sim.resource_id("101"), "Started")
    response = await call(
        api,
        "tasks/add",
        Name="Wake-up call for room 101 at 07:00 not answered",
        Description="Three tries, none answered.",
        DeadlineUtc="2026-12-07T06:15:00Z",
        DepartmentId=sim.department_id("Reception"),
        ServiceOrderId=reservation,
    )
    assert response.status_code == 200, response.text
    task = sim.tasks[response.json()["TaskId"]]
    assert task["Name"] == "Wake-up call for room 101 at 07:00 not answered"
    assert task["State"] == "Open"
    assert task["DeadlineUtc"] == "2026-12-07T06:15:00Z"
    assert task["DepartmentId"] == sim.department_id("Reception")
    assert task["ServiceOrderId"] == reservation


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"DeadlineUtc": "2026-12-07T06:15:00Z"}, "Missing required field 'Name'"),
        ({"Name": "Call the guest"}, "Missing required field 'DeadlineUtc'"),
        ({"Name": " ", "DeadlineUtc": "2026-12-07T06:15:00Z"}, "Invalid Name"),
        ({"Name": "x", "DeadlineUtc": "tomorrow"}, "Invalid DeadlineUtc"),
        (
            {"Name": "x", "DeadlineUtc": "2026-12-07T06:15:00Z", "DepartmentId": UNKNOWN_ID},
            "Invalid DepartmentId",
        ),
        (
            {"Name": "x", "DeadlineUtc": "2026-12-07T06:15:00Z", "ServiceOrderId": "7"},
            "Invalid ServiceOrderId",
        ),
    ],
)
async def test_tasks_add_is_validated(api, sim, params, message):
    refused(await call(api, "tasks/add", **params), message)
    assert len(sim.tasks) == 0


async def test_departments_are_listed(api, sim):
    response = await call(api, "departments/getAll", Limitation={"Count": 10})
    assert response.status_code == 200, response.text
    names = {d["Name"]: d["Id"] for d in response.json()["Departments"]}
    assert names == {
        "Reception": sim.department_id("Reception"),
        "Housekeeping": sim.department_id("Housekeeping"),
    }
    refused(await call(api, "departments/getAll"), "Missing required field 'Limitation'")

"""The "lost response" fault: the simulator applies a call, then loses its answer."""

from __future__ import annotations

import httpx
import pytest

from mews_bridge_mocks.mews import DEMO_ACCESS_TOKEN, DEMO_CLIENT_TOKEN, MewsSimulator
from mews_bridge_mocks.mews.cli import run_console_command

ENVELOPE = {"ClientToken": DEMO_CLIENT_TOKEN, "AccessToken": DEMO_ACCESS_TOKEN, "Client": "tests 1.0"}


@pytest.fixture
async def sim():
    async with MewsSimulator() as simulator:
        yield simulator


def order(sim: MewsSimulator, external_id: str = "cdr-1.1") -> dict:
    guest = sim.add_customer("Huber", "Anna")
    item = {
        "Name": "Phone call",
        "UnitCount": 1,
        "UnitAmount": {"Currency": "EUR", "GrossValue": 2.40, "TaxCodes": ["AT-S"]},
        "ExternalIdentifier": external_id,
    }
    return {**ENVELOPE, "ServiceId": sim.service_id("Telephone"), "AccountId": guest, "Items": [item]}


async def post(sim: MewsSimulator, body: dict, timeout_s: float = 5.0) -> httpx.Response:
    async with httpx.AsyncClient(base_url=f"{sim.platform_url}/api/connector/v1/", timeout=timeout_s) as api:
        return await api.post("orders/add", json=body)


@pytest.mark.parametrize("status", ["500", "504"])
async def test_an_error_after_the_commit_leaves_the_order_in_place(sim, status):
    sim.faults.lose_responses("orders/add", mode=status)
    response = await post(sim, order(sim))
    assert response.status_code == int(status)
    assert len(sim.orders) == 1
    assert sim.calls_to("orders/add")[0]["lost"] == status


async def test_a_dropped_connection_leaves_the_order_in_place(sim):
    sim.faults.lose_responses("orders/add", mode="drop")
    with pytest.raises(httpx.RemoteProtocolError):
        await post(sim, order(sim))
    assert len(sim.orders) == 1
    assert sim.faults.lost_responses == [("orders/add", "drop")]


async def test_an_answer_delayed_past_the_client_timeout_leaves_the_order_in_place(sim):
    sim.faults.lose_responses("orders/add", mode="delay", delay_s=2.0)
    with pytest.raises(httpx.ReadTimeout):
        await post(sim, order(sim), timeout_s=0.3)
    assert len(sim.orders) == 1


async def test_a_count_limits_the_losses_and_other_operations_are_untouched(sim):
    assert await run_console_command(sim, "lose orders/add 1 2 504") == "ok"
    statuses = [(await post(sim, order(sim, f"cdr-{n}"))).status_code for n in range(4)]
    async with httpx.AsyncClient(base_url=f"{sim.platform_url}/api/connector/v1/") as api:
        devices = await api.post("devices/getAll", json=ENVELOPE)
    assert statuses == [504, 504, 200, 200]
    assert devices.status_code == 200
    assert len(sim.orders) == 4


async def test_a_ratio_loses_about_that_share_and_refused_calls_are_never_lost(sim):
    sim.faults.rng.seed(7)
    sim.faults.lose_responses("orders/add", 0.25, mode="500")
    statuses = [(await post(sim, order(sim, f"cdr-{n}"))).status_code for n in range(40)]
    refused = await post(sim, {**order(sim), "AccountId": "00000000-0000-0000-0000-000000000000"})
    assert 3 <= statuses.count(500) <= 20
    assert statuses.count(500) == len(sim.faults.lost_responses)
    assert len(sim.orders) == 40
    assert refused.status_code == 400


@pytest.mark.parametrize(
    ("line", "answer"),
    [
        ("lose orders/add 2", "bad argument: ratio must be between 0 and 1"),
        ("lose orders/add 0.5 1 sometimes", "bad argument: mode must be one of drop, 500, 504, delay, any"),
        ("lose orders/add 0", "ok"),
    ],
)
async def test_the_console_checks_its_arguments(line, answer):
    assert await run_console_command(MewsSimulator(), line) == answer

"""The Connector API client against the Mews simulator: errors by status, retries, paging, the rate window."""

from __future__ import annotations

import pytest

from mews_bridge.mews.client import MewsClient
from mews_bridge.mews.errors import MewsAuthError, MewsRequestError, MewsUnavailable
from mews_bridge.mews.models import NewOrder, OrderItemParameters
from mews_bridge.settings import MewsSettings


def client_for(sim, retry_budget_s=5.0, **settings) -> MewsClient:
    return MewsClient(
        MewsSettings(
            platform_url=sim.platform_url,
            client_token=sim.client_token,
            access_token=settings.pop("access_token", sim.access_token),
            max_retry_s=0.2,
            **settings,
        ),
        retry_budget_s=retry_budget_s,
    )


async def test_wrong_tokens_raise_an_auth_error_without_retrying(mews_simulator):
    async with client_for(mews_simulator, access_token="WRONG-0000") as client:
        with pytest.raises(MewsAuthError, match=r"check mews\.client_token and mews\.access_token"):
            await client.get_devices()
    assert [call["status"] for call in mews_simulator.calls] == [401]


async def test_a_refusal_carries_mews_message_and_is_not_retried(mews_simulator):
    order = NewOrder(
        service_id=mews_simulator.service_id("Telephone"),
        account_id="00000000-0000-0000-0000-000000000000",
        items=[
            OrderItemParameters(
                name="Call",
                unit_count=1,
                unit_amount={"Currency": "EUR", "GrossValue": 1, "TaxCodes": ["AT-S"]},
            )
        ],
    )
    async with client_for(mews_simulator) as client:
        with pytest.raises(MewsRequestError) as error:
            await client.add_order(order)
    assert error.value.status == 400
    assert "AccountId" in error.value.message
    assert error.value.request_id == mews_simulator.calls[-1]["request_id"]
    assert len(mews_simulator.calls_to("orders/add")) == 1


@pytest.mark.parametrize("status", [500, 503, 408])
async def test_server_faults_and_timeouts_are_retried(mews_simulator, status):
    mews_simulator.faults.fail_operation("devices/getAll", times=2, status=status)
    async with client_for(mews_simulator) as client:
        devices = await client.get_devices()
    assert isinstance(devices, list)
    assert [call["status"] for call in mews_simulator.calls_to("devices/getAll")] == [status, status, 200]


async def test_an_outage_longer_than_the_budget_raises_unavailable(mews_simulator):
    mews_simulator.faults.fail_operation("devices/getAll", times=1000, status=502)
    async with client_for(mews_simulator, retry_budget_s=0.5) as client:
        with pytest.raises(MewsUnavailable):
            await client.get_devices()


async def test_a_429_waits_for_retry_after_and_then_succeeds(mews_simulator):
    mews_simulator.faults.rate_limit_storm(0.5)
    async with client_for(mews_simulator) as client:
        await client.get_devices()
    statuses = [call["status"] for call in mews_simulator.calls_to("devices/getAll")]
    assert statuses[0] == 429 and statuses[-1] == 200


async def test_pages_follow_the_cursor_to_the_end(mews_simulator):
    async with client_for(mews_simulator) as client:
        everything = await client.pages("resources/getAll", {"Extent": {"Resources": True}}, "Resources")
        paged = await client.pages("resources/getAll", {"Extent": {"Resources": True}}, "Resources", count=2)
    assert len(everything) > 2
    assert [r["Id"] for r in paged] == [r["Id"] for r in everything]
    assert len(mews_simulator.calls_to("resources/getAll")) - 1 >= len(everything) // 2


async def test_the_shared_limiter_keeps_a_burst_inside_the_window(mews_simulator):
    mews_simulator.rate_limiter.limit, mews_simulator.rate_limiter.window_s = 20, 1.0
    async with (
        client_for(mews_simulator, rate_limit=20, rate_window_s=1.0) as first,
        client_for(mews_simulator, rate_limit=20, rate_window_s=1.0) as second,
    ):
        for _ in range(15):
            await first.get_devices()
            await second.get_devices()
    assert all(call["status"] == 200 for call in mews_simulator.calls)
    assert len(mews_simulator.calls) == 30

"""The Connector API client against the Mews simulator: errors by status, retries, paging, the rate window."""

from __future__ import annotations

import itertools
import socket

import pytest

from mews_bridge.mews.client import MIN_PAGE, MewsClient, is_repeatable
from mews_bridge.mews.errors import MewsAuthError, MewsOutcomeUnknown, MewsRequestError, MewsUnavailable
from mews_bridge.mews.models import NewOrder, OrderItemParameters
from mews_bridge.mews.ratelimit import SlidingWindowLimiter
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


def call_order(sim, account_id: str = "00000000-0000-0000-0000-000000000000") -> NewOrder:
    return NewOrder(
        service_id=sim.service_id("Telephone"),
        account_id=account_id,
        items=[
            OrderItemParameters(
                name="Call",
                unit_count=1,
                unit_amount={"Currency": "EUR", "GrossValue": 1, "TaxCodes": ["AT-S"]},
                external_identifier="cdr-1.1",
            )
        ],
    )


async def test_a_refusal_carries_mews_message_and_is_not_retried(mews_simulator):
    async with client_for(mews_simulator) as client:
        with pytest.raises(MewsRequestError) as error:
            await client.add_order(call_order(mews_simulator))
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
        client_for(mews_simulator, requests_per_30s=19, rate_window_s=1.0) as first,
        client_for(mews_simulator, requests_per_30s=19, rate_window_s=1.0) as second,
    ):
        for _ in range(15):
            await first.get_devices()
            await second.get_devices()
    assert all(call["status"] == 200 for call in mews_simulator.calls)
    assert len(mews_simulator.calls) == 30


@pytest.mark.parametrize(
    ("operation", "repeatable"),
    [
        ("commands/getAllByIds", True),
        ("reservations/getAll/2023-06-06", True),
        ("configuration/get", True),
        ("commands/update", True),
        ("orders/add", False),
        ("tasks/add", False),
        ("payments/addExternal", False),
        ("commands/addPrinter", False),
    ],
)
def test_every_operation_is_classed_as_safe_to_repeat_or_not(operation, repeatable):
    assert is_repeatable(operation) is repeatable


@pytest.mark.parametrize("mode", ["500", "504", "drop", "delay"])
async def test_an_order_whose_answer_is_lost_is_never_sent_again(mews_simulator, mode):
    guest = mews_simulator.add_customer("Huber", "Anna")
    mews_simulator.faults.lose_responses("orders/add", mode=mode, delay_s=2.0)
    async with client_for(mews_simulator, request_timeout_s=0.5) as client:
        with pytest.raises(MewsOutcomeUnknown):
            await client.add_order(call_order(mews_simulator, guest))
    assert len(mews_simulator.calls_to("orders/add")) == 1
    assert len(mews_simulator.orders) == 1


@pytest.mark.parametrize("status", [408, 500, 502, 503, 504])
async def test_an_order_answered_with_an_unknown_outcome_is_not_retried(mews_simulator, status):
    guest = mews_simulator.add_customer("Huber", "Anna")
    mews_simulator.faults.fail_operation("orders/add", times=1, status=status)
    async with client_for(mews_simulator) as client:
        with pytest.raises(MewsOutcomeUnknown) as error:
            await client.add_order(call_order(mews_simulator, guest))
    assert error.value.status == status
    assert len(mews_simulator.calls_to("orders/add")) == 1


async def test_an_order_answered_429_is_sent_again_and_lands_once(mews_simulator):
    guest = mews_simulator.add_customer("Huber", "Anna")
    mews_simulator.faults.rate_limit_storm(0.5)
    async with client_for(mews_simulator) as client:
        await client.add_order(call_order(mews_simulator, guest))
    assert [call["status"] for call in mews_simulator.calls_to("orders/add")][-1] == 200
    assert len(mews_simulator.orders) == 1


async def test_an_order_that_never_left_is_retried_until_the_budget_ends(mews_simulator):
    with socket.socket() as closed:  # a port nobody listens on: connection refused
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
    settings = MewsSettings(
        platform_url=f"http://127.0.0.1:{port}", client_token="c", access_token="a", max_retry_s=0.05
    )
    async with MewsClient(settings, retry_budget_s=0.3) as client:
        with pytest.raises(MewsUnavailable) as error:
            await client.add_order(call_order(mews_simulator))
        assert client.requests_sent > 1
    assert not isinstance(error.value, MewsOutcomeUnknown)


async def test_a_command_update_whose_answer_is_lost_is_sent_again(mews_simulator):
    device = mews_simulator.add_device("Reception printer", "Printer")
    command = mews_simulator.add_command(device, {"CopyCount": 1})
    mews_simulator.faults.lose_responses("commands/update", times=2, mode="drop")
    async with client_for(mews_simulator) as client:
        await client.update_command(command, "Processing", progress=0.5)
    assert [call["lost"] for call in mews_simulator.calls_to("commands/update")] == ["drop", "drop", None]
    assert mews_simulator.command(command)["State"] == "Processing"


async def test_a_paged_read_answered_408_asks_for_smaller_pages_then_grows_back(mews_simulator):
    mews_simulator.faults.fail_operation("resources/getAll", times=2, status=408)
    extent = {"Extent": {"Resources": True}}
    async with client_for(mews_simulator) as client:
        first = await client.pages("resources/getAll", extent, "Resources", count=100)
        for _ in range(10):
            await client.pages("resources/getAll", extent, "Resources", count=100)
    counts = [call["body"]["Limitation"]["Count"] for call in mews_simulator.calls_to("resources/getAll")]
    assert counts[:3] == [100, 50, 25]
    assert first and counts[-1] == 100
    assert min(counts) >= MIN_PAGE


async def test_a_429_without_retry_after_pauses_the_shared_window_longer_each_time():
    limiter = SlidingWindowLimiter(10, 30.0)
    pauses = [limiter.throttled(None, 60.0) for _ in range(4)]
    limiter.answered()
    assert all(later > earlier for earlier, later in itertools.pairwise(pauses))
    assert limiter.throttled(None, 60.0) < pauses[-1]
    assert limiter.throttled(5.0, 60.0) == 5.0


async def test_clients_with_one_access_token_share_one_budget(mews_simulator):
    async with (
        client_for(mews_simulator, requests_per_30s=100) as core,
        client_for(mews_simulator, requests_per_30s=40) as other,
        client_for(mews_simulator, requests_per_30s=100, access_token="OTHER-TOKEN") as elsewhere,
    ):
        assert core.limiter is other.limiter
        assert core.limiter.limit == 40
        assert elsewhere.limiter is not core.limiter

"""The Mews simulator's WebSocket over a real `websockets` client: auth, events, socket faults."""

from __future__ import annotations

import asyncio
import json

import httpx
import pytest
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, ConnectionClosedError, InvalidStatus

from mews_bridge_mocks.mews import DEMO_ACCESS_TOKEN, DEMO_CLIENT_TOKEN, MewsSimulator

ENVELOPE = {"ClientToken": DEMO_CLIENT_TOKEN, "AccessToken": DEMO_ACCESS_TOKEN, "Client": "tests 1.0"}
COOKIE = f"ClientToken={DEMO_CLIENT_TOKEN}; AccessToken={DEMO_ACCESS_TOKEN}"
WAIT_S = 2.0  # upper bound only; events normally arrive within milliseconds


@pytest.fixture
async def sim():
    async with MewsSimulator() as simulator:
        yield simulator


def open_socket(sim: MewsSimulator, cookie: str = COOKIE, **options) -> connect:
    return connect(f"{sim.websocket_url}/ws/connector", additional_headers={"Cookie": cookie}, **options)


async def events(socket: ClientConnection) -> list[dict]:
    """The events of the next frame."""
    return json.loads(await asyncio.wait_for(socket.recv(), WAIT_S))["Events"]


async def test_device_command_events_on_create_and_update(sim):
    printer = sim.add_device("Printer", "Printer")
    async with (
        open_socket(sim) as socket,
        httpx.AsyncClient(base_url=f"{sim.platform_url}/api/connector/v1/") as api,
    ):
        command_id = sim.add_command(printer, {"CopyCount": 1})
        created = await events(socket)
        await api.post("commands/update", json={**ENVELOPE, "CommandId": command_id, "State": "Processed"})
        updated = await events(socket)

    assert created == [{"Type": "DeviceCommand", "Id": command_id, "State": "Pending"}]
    assert updated == [{"Type": "DeviceCommand", "Id": command_id, "State": "Processed"}]


async def test_changes_of_one_moment_share_a_frame(sim):
    guest = sim.add_customer("Huber")
    room = sim.resource_id("101")
    stay = sim.add_reservation(guest, room, state="Started")
    async with open_socket(sim) as socket:
        sim.check_out(stay)
        frame = await events(socket)

    reservation = sim.reservation(stay)
    assert frame == [
        {
            "Type": "Reservation",
            "Id": stay,
            "State": "Processed",
            "StartUtc": reservation["StartUtc"],
            "EndUtc": reservation["EndUtc"],
            "AssignedResourceId": room,
        },
        {"Type": "Resource", "Id": room, "State": "Dirty"},
    ]


async def test_new_devices_need_a_reconnect(sim):
    async with open_socket(sim) as socket:
        printer = sim.add_device("Late printer", "Printer")
        sim.add_command(printer, {})
        sim.cancel_command(sim.add_command(printer, {}))
        await sim.push_events([{"Type": "Resource", "Id": "marker", "State": "Clean"}])
        assert await events(socket) == [{"Type": "Resource", "Id": "marker", "State": "Clean"}]
    async with open_socket(sim) as socket:
        command_id = sim.add_command(printer, {})
        assert await events(socket) == [{"Type": "DeviceCommand", "Id": command_id, "State": "Pending"}]
    assert sim.websocket_connects == 2


@pytest.mark.parametrize(
    "cookie",
    [
        "",
        f"ClientToken={DEMO_CLIENT_TOKEN}",
        f"ClientToken = {DEMO_CLIENT_TOKEN}; AccessToken = {DEMO_ACCESS_TOKEN}",
        f"ClientToken={DEMO_CLIENT_TOKEN}; AccessToken=wrong",
    ],
)
async def test_bad_cookies_are_refused_with_401(sim, cookie):
    with pytest.raises(InvalidStatus) as refused:
        async with open_socket(sim, cookie):
            pass
    assert refused.value.response.status_code == 401
    assert "Request-Id" in refused.value.response.headers
    assert sim.websocket_connects == 0


async def test_refused_for_a_while(sim):
    sim.faults.refuse_websockets_for(60)
    with pytest.raises(InvalidStatus) as refused:
        async with open_socket(sim):
            pass
    sim.faults.clear()
    async with open_socket(sim):
        assert sim.websocket_connections == 1
    assert refused.value.response.status_code == 503


async def test_pings_are_answered(sim):
    async with open_socket(sim) as socket:
        pong = await socket.ping()
        await asyncio.wait_for(pong, WAIT_S)
        assert sim.websocket_connections == 1


async def test_a_silent_socket_is_found_by_the_ping_timeout(sim):
    async with open_socket(sim, ping_interval=0.05, ping_timeout=0.1, close_timeout=0.1) as socket:
        sim.faults.silent_websockets = True
        sim.add_command(sim.add_device("Printer", "Printer"), {})  # not delivered: the socket is mute
        with pytest.raises(ConnectionClosedError) as closed:
            await asyncio.wait_for(socket.recv(), WAIT_S)
    assert "keepalive ping timeout" in str(closed.value)


@pytest.mark.parametrize("abrupt", [False, True])
async def test_drop_all_sockets(sim, abrupt):
    async with open_socket(sim) as first, open_socket(sim) as second:
        dropped = await sim.faults.drop_websockets(abrupt=abrupt)
        for socket in (first, second):
            with pytest.raises(ConnectionClosed) as closed:
                await asyncio.wait_for(socket.recv(), WAIT_S)
            assert (closed.value.rcvd is None) is abrupt
    assert dropped == 2


async def test_stop_closes_open_sockets():
    sim = MewsSimulator()
    await sim.start()
    async with open_socket(sim) as socket:
        await sim.stop()
        with pytest.raises(ConnectionClosed) as closed:
            await asyncio.wait_for(socket.recv(), WAIT_S)
    assert closed.value.rcvd.code == 1001
    assert sim.websocket_connections == 0

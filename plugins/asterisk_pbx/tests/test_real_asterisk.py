"""The service against a real Asterisk 22 running the sample dialplan (deploy/asterisk/
run-real-asterisk.sh), with calls placed and codes dialled through AMI Originate on Local channels,
and wake-up calls to fake room phones ([fake-phones]) that answer or not.

Opt-in: runs only with ``MEWS_BRIDGE_REAL_ASTERISK=1`` (``.ci/real-asterisk`` sets it after starting
Asterisk). Once opted in, an Asterisk that cannot be reached fails the test rather than skipping it.
"""

from __future__ import annotations

import asyncio
import os
import re
from datetime import UTC, datetime, timedelta

import pytest

from mews_bridge.testing import bridge_settings, running_bridge, service, wait_for
from mews_bridge_asterisk_pbx.actions import AmiClient
from mews_bridge_asterisk_pbx.codec import Message

pytestmark = [
    pytest.mark.skipif(
        os.environ.get("MEWS_BRIDGE_REAL_ASTERISK") != "1",
        reason="needs a real Asterisk: deploy/asterisk/run-real-asterisk.sh start, then MEWS_BRIDGE_REAL_ASTERISK=1",
    ),
    pytest.mark.timeout(90),
]
PORT = int(os.environ.get("MEWS_BRIDGE_ASTERISK_AMI_PORT", "5038"))
SECRET = os.environ.get("MEWS_BRIDGE_ASTERISK_SECRET", "mews-bridge-test")
GUARD_S = 30.0  # a call rings 1 s and talks 3 s; Congestion lasts 5 s


async def originate(ami: AmiClient, room: str, dialled: str) -> None:
    """The room's phone dials ``dialled``: the Local channel's ;2 half plays the handset
    (docs/reference/asterisk-ami.md, section 7)."""
    await ami.action(
        "Originate",
        {
            "Channel": f"Local/{dialled}@from-rooms",
            "CallerID": f"<{room}>",
            "Application": "Wait",
            "Data": "30",
            "Timeout": "30000",
            "Async": "true",
        },
    )


async def test_guests_calls_through_a_real_asterisk_are_charged(hotel, pbx_options, tmp_path):
    ami = AmiClient("127.0.0.1", PORT, username="mewsbridge", secret=SECRET)
    cdrs: list[Message] = []
    ami.subscribe(cdrs.append, "Cdr")
    await ami.connect()
    try:
        await ami.action("DBDelTree", {"Family": "hotel"}, check=False)  # a clean PBX
        await ami.db_put("test", "talk", "3")
        await _scenario(hotel, pbx_options, tmp_path, ami, cdrs)
    finally:
        await ami.close()


async def _scenario(hotel, pbx_options, tmp_path, ami, cdrs):
    anna = hotel.add_customer("Müller", "Jürgen", language_code="de-DE")
    reservation = hotel.add_reservation(anna, hotel.resource_id("101"), "Started")
    franz = hotel.add_customer("Gruber", "Franz", classifications=("Cashlist",))
    hotel.add_reservation(franz, hotel.resource_id("102"), "Started")
    # A credit limit below the first call: room 101 is barred once it is posted.
    options = {**pbx_options, "port": PORT, "username": "mewsbridge", "secret": SECRET, "credit_limit": 1}
    settings = bridge_settings(hotel, tmp_path / "state", services=[service("PBX", "asterisk_pbx", options)])

    async with running_bridge(settings, entry_points=True) as bridge:
        managed = bridge.instances[0]
        await managed.wait_loaded()
        assert await ami.db_get("hotel/101", "outside") == "1"
        assert await ami.db_get("hotel/101", "name") == "Jürgen Müller"
        assert await ami.db_get("hotel/101", "language") == "de"
        assert await ami.db_get("hotel/103", "outside") == "0"

        started = datetime.now(UTC)
        await originate(ami, "103", "0221234567")  # vacant: the dialplan bars the outside line
        await originate(ami, "102", "000442071234567")  # No Post guest
        await originate(ami, "101", "000442071234567")  # 0 for the line, then 0044 20 7123 4567
        await wait_for(lambda: hotel.orders, GUARD_S, "the order of room 101")
        ledger = managed.instance._ledger
        await wait_for(lambda: ledger.outcomes["refused"] == 1, GUARD_S, "the refused call of room 102")
        await wait_for(
            lambda: any(c.get("UserField") == "blocked" for c in cdrs), GUARD_S, "the barred call of 103"
        )

        # Over the credit limit: the next outside call is refused with a prompt, 112 still goes out.
        async def barred() -> bool:
            return await ami.db_get("hotel/101", "outside") == "0"

        await wait_until(barred, "room 101 barred for credit")
        assert "over the credit limit of 1.00 PLN" in (await ami.db_get("hotel/101", "barred") or "")
        await originate(ami, "101", "000442071234567")
        await originate(ami, "101", "112")

        def from_101(cdr: Message) -> bool:
            return cdr.get("Source") == "101" or cdr.get("Room") == "101"

        await wait_for(
            lambda: any(from_101(c) and c.get("UserField") == "blocked" for c in cdrs), GUARD_S, "the refusal"
        )
        await wait_for(
            lambda: any(from_101(c) and c.get("Destination") == "112" for c in cdrs), GUARD_S, "the 112 call"
        )
        charges = await managed.ctx.store.items("charge:")

    [order] = hotel.orders
    [item] = order["Items"]
    assert order["AccountId"] == anna
    assert order["LinkedReservationId"] == reservation
    assert re.fullmatch(r"Call to \+44 20 7123 4567 \([1-9] s\)", item["BillingName"])
    assert item["UnitAmount"]["GrossValue"] == 2.5  # 1.00 set-up + the first minute at 1.50
    assert item["AccountingCategoryId"] == hotel.accounting_category_id("Telephone international")
    # CDR times are Warsaw time on the PBX; the order has the call's start in UTC.
    consumed = datetime.fromisoformat(order["ConsumptionUtc"])
    assert started - timedelta(seconds=5) <= consumed <= started + timedelta(seconds=30)
    rated = next(c for c in cdrs if c.get("Room") == "101" and c.get("LastApplication") == "Dial")
    assert item["ExternalIdentifier"] == f"cdr-{rated['UniqueID']}-{rated['Sequence']}"
    assert sorted(c["state"] for c in charges.values()) == ["posted", "refused"]
    refusal = next(c for c in cdrs if from_101(c) and c.get("UserField") == "blocked")
    assert refusal["Disposition"] != "ANSWERED"  # the prompt plays without answering
    emergency = [c for c in cdrs if from_101(c) and c.get("Destination") == "112"]
    assert any(c["Disposition"] == "ANSWERED" for c in emergency)  # it went out, and was not charged


async def dial(ami: AmiClient, room: str, code: str) -> None:
    """The room's phone dials ``code``; the ;2 half of the Local channel runs [from-rooms] as the handset."""
    await originate(ami, room, code)


async def consumed_replies(ami: AmiClient) -> bool:
    """True once the dialplan has read and deleted every answer the bridge gave (DB_DELETE)."""
    return not await ami.db_get_tree("hotel/reply")


async def wait_until(check, what: str, timeout_s: float = GUARD_S) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    while not await check():
        if loop.time() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.2)


async def test_codes_and_wake_up_calls_through_a_real_asterisk(hotel, pbx_options, tmp_path):
    ami = AmiClient("127.0.0.1", PORT, username="mewsbridge", secret=SECRET, events="user,call")
    events: list[Message] = []
    ami.subscribe(events.append, "UserEvent", "OriginateResponse")
    await ami.connect()
    try:
        for family in ("hotel", "test"):
            await ami.action("DBDelTree", {"Family": family}, check=False)
        await ami.db_put("test/noanswer", "102", "1")  # the phone in 102 only rings
        await _codes_and_wakeups(hotel, pbx_options, tmp_path, ami, events)
    finally:
        await ami.close()


async def _codes_and_wakeups(hotel, pbx_options, tmp_path, ami, events):
    anna = hotel.add_customer("Müller", "Anna", language_code="de-AT")
    hotel.add_reservation(anna, hotel.resource_id("101"), "Started")
    franz = hotel.add_customer("Gruber", "Franz")
    late_riser = hotel.add_reservation(franz, hotel.resource_id("102"), "Started")
    hotel.set_resource_state(hotel.resource_id("103"), "Dirty")
    water = hotel.add_product(hotel.service_id("Telephone"), "Mineral water 0.5 l", 3.5, ("AT-R",))
    options = {
        **pbx_options,
        "port": PORT,
        "username": "mewsbridge",
        "secret": SECRET,
        "housekeeping": {"staff": {"Maria Novak": "4711"}},
        "products": {"12": water},
        "wakeup": {"channel": "Local/{extension}@fake-phones", "ring_s": 4, "retries": 0, "reception": "100"},
    }
    settings = bridge_settings(hotel, tmp_path / "state", services=[service("PBX", "asterisk_pbx", options)])

    async with running_bridge(settings, entry_points=True) as bridge:
        managed = bridge.instances[0]
        await managed.wait_loaded()
        wakeups = managed.instance._wakeups

        # Room status: a housekeeper in 103, then a wrong PIN in 101.
        await dial(ami, "103", "*52*4711*1")
        await wait_for(
            lambda: hotel.resources[hotel.resource_id("103")]["State"] == "Clean", GUARD_S, "103 clean"
        )
        await dial(ami, "101", "*52*1234*3")

        def codes() -> list[Message]:
            return [e for e in events if e.get("UserEvent") == "HotelCode"]

        await wait_for(lambda: len(codes()) == 2, GUARD_S, "both codes handed to the bridge")
        await wait_until(lambda: consumed_replies(ami), "the dialplan to take the answers")
        assert [(e["Room"], e["Code"]) for e in codes()] == [("103", "*52*4711*1"), ("101", "*52*1234*3")]
        assert len(hotel.calls_to("resources/update")) == 1
        assert hotel.resources[hotel.resource_id("101")]["State"] == "Clean"

        # Minibar: two waters from 101, one from the vacant 103 (recorded, not posted).
        await dial(ami, "101", "*51*12*2")
        await dial(ami, "103", "*51*12")
        await wait_for(lambda: len(codes()) == 4, GUARD_S, "both orders handed to the bridge")
        await wait_for(lambda: hotel.orders, GUARD_S, "the minibar order")
        await wait_until(lambda: consumed_replies(ami), "the dialplan to take the answers")
        articles = {c["room"]: c for c in (await managed.ctx.store.items("charge:item-")).values()}
        assert {room: c["state"] for room, c in articles.items()} == {"101": "posted", "103": "unassigned"}
        [order] = hotel.orders
        assert (order["AccountId"], order["Items"][0]["UnitCount"]) == (anna, 2)
        assert order["Items"][0]["ExternalIdentifier"] == articles["101"]["key"]

        # Wake-up calls from both rooms; the scheduler's clock jumps to the time instead of waiting.
        await dial(ami, "101", "*55*0630")
        await dial(ami, "102", "*55*0630")
        await wait_for(lambda: len(wakeups.records) == 2, GUARD_S, "two wake-up calls set")
        await wait_until(lambda: consumed_replies(ami), "the dialplan to take the answers")
        due = max(r.due_utc for r in wakeups.records)
        wakeups.clock = lambda: due + timedelta(seconds=1)
        wakeups.poke()
        expected = {"101": "answered", "102": "unanswered"}
        await wait_for(
            lambda: {r.room: r.state for r in wakeups.records} == expected, GUARD_S, "one answered, one not"
        )
        await wait_for(lambda: hotel.tasks, GUARD_S, "the Mews task")
        await wait_for(lambda: len(_originate_responses(events)) == 3, GUARD_S, "the reception call")

    [task] = hotel.tasks
    assert task["Name"] == "Wake-up call for room 102 at 06:30 not answered"
    assert task["ServiceOrderId"] == late_riser
    outcomes = {
        re.sub(r"-[0-9a-f]+;\d$", "", e["Channel"]): e["Response"] for e in _originate_responses(events)
    }
    assert outcomes == {
        "Local/101@fake-phones": "Success",
        "Local/102@fake-phones": "Failure",
        "Local/100@fake-phones": "Success",
    }
    assert await ami.db_get_tree("hotel/wakeup") == {}  # the answered mark was read and removed


def _originate_responses(events: list[Message]) -> list[Message]:
    """The outcomes of the bridge's wake-up calls (the test's own Originates are not among them)."""
    return [e for e in events if e.name == "OriginateResponse" and (e.action_id or "").startswith("wakeup-")]

"""The service against a real Asterisk 22 running the sample dialplan (deploy/asterisk/
run-real-asterisk.sh), with calls placed through AMI Originate on Local channels.

Opt-in: runs only with ``MEWS_BRIDGE_REAL_ASTERISK=1`` (``.ci/real-asterisk`` sets it after starting
Asterisk). Once opted in, an Asterisk that cannot be reached fails the test rather than skipping it.
"""

from __future__ import annotations

import os
import re
from datetime import UTC, datetime, timedelta

import pytest

from mews_bridge.testing import bridge_settings, running_bridge, service, wait_for
from mews_bridge_asterisk_pbx.ami import AmiClient
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
    options = {**pbx_options, "port": PORT, "username": "mewsbridge", "secret": SECRET}
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

"""The pieces together, short of Mews: PBX call → Cdr event → record → rules → price → bill line."""

import asyncio
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from mews_bridge_asterisk_pbx.actions import AmiClient
from mews_bridge_asterisk_pbx.cdr import charge_item_name, consumption_utc, not_billable_reason, parse_cdr
from mews_bridge_asterisk_pbx.codec import Message
from mews_bridge_asterisk_pbx.rooms import Guest, RoomMap, check_in
from mews_bridge_asterisk_pbx.tariff import Tariff
from mews_bridge_mocks.ami import AmiSimulator

# Tasks first: its check runs after every other fixture has closed its sockets.
pytestmark = pytest.mark.usefixtures("verify_no_lingering_tasks", "verify_cleanup")
TARIFF = Tariff.load(Path(__file__).parents[1] / "docs" / "tariff.sample.toml")
WARSAW = ZoneInfo("Europe/Warsaw")


async def test_a_guest_call_becomes_a_priced_bill_line():
    rooms = RoomMap.from_option("{room}", resources=["101", "102"])
    async with AmiSimulator(secret="s", timezone="Europe/Warsaw", gate_outside_line=True) as sim:
        ami = AmiClient("127.0.0.1", sim.port, username="mewsbridge", secret="s")
        cdrs: asyncio.Queue[Message] = asyncio.Queue()
        ami.subscribe(cdrs.put_nowait, "Cdr")
        await ami.connect()

        await sim.place_call("101", "221234567", billsec=192)  # before check-in: barred
        for write in check_in("101", Guest("Jürgen Müller", "de")):
            if write.value is not None:
                await ami.db_put(write.family, write.key, write.value)
        start = datetime(2026, 11, 23, 10, 15, 0)
        await sim.place_call("101", "221234567", billsec=192, duration=200, start=start)

        async with asyncio.timeout(5):
            barred, call = [parse_cdr(await cdrs.get(), WARSAW) for _ in range(2)]
        await ami.close()

    assert not_billable_reason(barred, rooms.is_room) == "not answered (CONGESTION)"
    assert not_billable_reason(call, rooms.is_room) is None
    assert call.caller_id == '"Jürgen Müller" <101>'
    assert call.custom["GuestLanguage"] == "de"
    rating = TARIFF.rate(call.destination, call.billable_seconds)
    assert (rating.call_class, rating.amount) == ("local", Decimal("1.20"))
    assert charge_item_name(rating.display, call.billable_seconds) == "Call to +48 22 123 45 67 (3 min 12 s)"
    assert consumption_utc(call) == "2026-11-23T09:15:00Z"
    assert rooms.resource_for(call.extension or "") == "101"

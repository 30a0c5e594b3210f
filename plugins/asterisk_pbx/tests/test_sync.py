"""Keeping room phones in line with Mews at scale: the catch-up after a Mews reconnect reads only
what changed, and AstDB writes are pipelined (real bridge, Mews and AMI simulators over loopback)."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest

from mews_bridge.testing import running_bridge, wait_for

pytestmark = pytest.mark.timeout(60)


def room(pbx, name):
    prefix = f"/hotel/{name}/"
    return {k.removeprefix(prefix): v for k, v in pbx.astdb.items() if k.startswith(prefix)}


def last_changed_yesterday(hotel):
    """Everything seeded so far was last changed a day ago, as at a hotel that has been running."""
    yesterday = (datetime.now(UTC) - timedelta(days=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
    for table in (hotel.resources, hotel.customers, hotel.reservations):
        for row in table:
            row["UpdatedUtc"] = yesterday


async def test_a_reconnect_reads_only_what_changed_while_the_stream_was_down(pbx, hotel, settings):
    rooms = ["101", "102", "103", "201", "202"]
    stays = {
        name: hotel.add_reservation(
            hotel.add_customer(f"Guest{name}", "Anna"), hotel.resource_id(name), "Started"
        )
        for name in rooms[:4]
    }
    renamed = hotel.add_customer("Novak", "Jiri", language_code="cs-CZ")
    arriving = hotel.add_reservation(renamed, hotel.resource_id("202"))
    last_changed_yesterday(hotel)

    async with running_bridge(settings, entry_points=True) as bridge:
        await bridge.instances[0].wait_loaded()
        assert room(pbx, "101")["outside"] == "1"
        await hotel.faults.drop_websockets()
        await wait_for(lambda: hotel.websocket_connections == 0, what="the socket to drop")
        hotel.check_out(stays["101"])  # missed: no event reaches the bridge while it is down
        hotel.move_reservation(stays["102"], hotel.resource_id("201"))
        hotel.check_out(stays["201"])
        hotel.check_in(arriving)
        before = len(hotel.calls)
        await wait_for(
            lambda: (
                room(pbx, "101")["outside"] == "0"
                and room(pbx, "201").get("name") == "Anna Guest102"
                and room(pbx, "202").get("name") == "Jiri Novak"
            ),
            what="the missed changes in AstDB",
        )
        await asyncio.sleep(0.3)  # nothing else on its way
        calls = [c for c in hotel.calls[before:] if not c["operation"].startswith("commands/")]

    assert room(pbx, "102")["outside"] == "0"
    assert room(pbx, "103").get("name") == "Anna Guest103"  # unchanged, and not read again
    [reservations] = [c for c in calls if c["operation"].startswith("reservations/getAll")]
    assert "UpdatedUtc" in reservations["body"] and "States" not in reservations["body"]
    assert sorted(r["Id"] for r in reservations["response"]["Reservations"]) == sorted(
        [stays["101"], stays["102"], stays["201"], arriving]
    )
    assert len(calls) <= 4

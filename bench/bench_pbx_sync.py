"""The PBX service at hotel scale (prints figures; asserts nothing).

    .venv/bin/python bench/bench_pbx_sync.py [--rooms 300 2000] [--occupancy 0.9]

For each size: a property with that many rooms (extension = room number) and the share in house,
each guest a Mews customer with a language; a bridge with the ``asterisk_pbx`` service against the
Mews and AMI simulators.

* start-up sync: from start until every room phone is in AstDB, its Mews API calls (target ≤ 20
  calls and ≤ 10 s at 2,000 rooms) and AMI actions;
* catch-up after a WebSocket reconnect: while the socket is down 10 guests check out, 10 check in
  and 5 move rooms; from the reconnect until AstDB shows all of it, the API calls it took (target
  ≤ 5) and the reservations they carried (only what changed, not every guest in house).
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from mews_bridge.testing import bridge_settings, running_bridge, service, wait_for
from mews_bridge_mocks.ami import AmiSimulator
from mews_bridge_mocks.mews import MewsSimulator

TARIFF = Path(__file__).parents[1] / "plugins" / "asterisk_pbx" / "docs" / "tariff.sample.toml"
FAMILY = "/hotel"


def furnish(hotel: MewsSimulator, rooms: int, occupancy: float) -> tuple[list[str], list[str]]:
    """Rooms 1000…, all last changed yesterday; returns (reservations in house, reservations
    arriving today in empty rooms)."""
    ids = [hotel.add_resource(str(1000 + n)) for n in range(rooms)]
    staying, guests = [], []
    for n, rid in enumerate(ids[: int(rooms * occupancy)]):
        guests.append(hotel.add_customer(f"Guest{n}", "Anna", language_code="de-DE"))
        staying.append(hotel.add_reservation(guests[-1], rid, "Started"))
    arriving = []
    for n, rid in enumerate(ids[int(rooms * occupancy) :][:10]):
        guests.append(hotel.add_customer(f"Arrival{n}", "Jan"))
        arriving.append(hotel.add_reservation(guests[-1], rid, "Confirmed"))
    yesterday = (datetime.now(UTC) - timedelta(days=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
    for table, keys in (
        (hotel.resources, ids),
        (hotel.customers, guests),
        (hotel.reservations, staying + arriving),
    ):
        for key in keys:
            table[key]["UpdatedUtc"] = yesterday
    return staying, arriving


def pbx_options(hotel: MewsSimulator, pbx: AmiSimulator) -> dict[str, Any]:
    """The ``asterisk_pbx`` service on the two simulators (as set up by this module's benches)."""
    return {
        "port": pbx.port,
        "username": "mewsbridge",
        "secret": "b",
        "service_id": hotel.service_id("Telephone"),
        "tariff": str(TARIFF),
        "timezone": "Europe/Warsaw",
        "rooms": "{room}",
    }


def outside(pbx: AmiSimulator, room: str) -> str | None:
    return pbx.astdb.get(f"{FAMILY}/{room}/outside")


async def one_size(rooms: int, occupancy: float) -> None:
    async with (
        MewsSimulator(currency="PLN", timezone="Europe/Warsaw", rate_limit=None) as hotel,
        AmiSimulator(secret="b", auth_failure_delay=0, timezone="Europe/Warsaw") as pbx,
    ):
        staying, arriving = furnish(hotel, rooms, occupancy)
        options = pbx_options(hotel, pbx)
        with tempfile.TemporaryDirectory() as state_dir:
            settings = bridge_settings(
                hotel, Path(state_dir), services=[service("PBX", "asterisk_pbx", options)]
            )
            hotel.calls.clear()
            pbx.received.clear()
            t0 = time.perf_counter()
            async with running_bridge(settings, entry_points=True) as bridge:
                await asyncio.wait_for(bridge.instances[0].wait_loaded(), 120)
                await wait_for(lambda: outside(pbx, str(999 + rooms)) is not None, 120)
                startup = time.perf_counter() - t0
                calls = len(hotel.calls)
                actions = len(pbx.received)
                in_house = sum(1 for n in range(rooms) if outside(pbx, str(1000 + n)) == "1")
                print(f"{rooms} rooms, {in_house} guests in house:")
                print(
                    f"  start-up sync {startup:.2f} s, {calls} Mews API calls "
                    f"({', '.join(sorted({c['operation'] for c in hotel.calls}))}), {actions} AMI actions"
                )

                await hotel.faults.drop_websockets()
                await wait_for(lambda: hotel.websocket_connections == 0, 10)
                leaving, moving = staying[:10], staying[10:15]
                for rid in leaving:
                    hotel.check_out(rid)
                for rid in arriving:
                    hotel.check_in(rid)
                free = [hotel.resource_id(str(1000 + n)) for n in range(rooms)][len(staying) + 10 :][:5]
                for rid, room in zip(moving, free, strict=False):
                    hotel.move_reservation(rid, room)
                names = {hotel.resource_id(str(1000 + n)): str(1000 + n) for n in range(rooms)}

                def room(reservation_id: str) -> str:
                    return names[hotel.reservation(reservation_id)["AssignedResourceId"]]

                expected = [(room(rid), "0") for rid in leaving] + [
                    (room(rid), "1") for rid in [*arriving, *moving[: len(free)]]
                ]
                before = len(hotel.calls)
                t1 = time.perf_counter()
                await wait_for(lambda: hotel.websocket_connections == 1, 30)
                await wait_for(lambda: all(outside(pbx, name) == value for name, value in expected), 60)
                catch_up = time.perf_counter() - t1
                await asyncio.sleep(1)  # anything still on its way
                catch_calls = hotel.calls[before:]
                carried = sum(
                    len(c["response"].get("Reservations") or [])
                    for c in catch_calls
                    if isinstance(c.get("response"), dict)
                )
                print(
                    f"  catch-up after a reconnect (25 changes missed): {catch_up:.2f} s, "
                    f"{len(catch_calls)} Mews API calls "
                    f"({', '.join(c['operation'] for c in catch_calls)}), {carried} reservations read"
                )


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rooms", type=int, nargs="+", default=[300, 2000])
    parser.add_argument("--occupancy", type=float, default=0.9)
    args = parser.parse_args()
    for rooms in args.rooms:
        await one_size(rooms, args.occupancy)


if __name__ == "__main__":
    asyncio.run(main())

"""AMI benchmark: how fast the bridge reads Asterisk, next to panoramisk on the same bytes.

    .venv/bin/python bench/bench_ami.py [--events 100000]

1. Parsing: one capture (Cdr events with a UTF-8 guest name, UserEvents, Ping answers, DBGet lists)
   fed in 64 KiB reads to (a) our codec alone, (b) our client's receive path (parse, ActionID
   lookup, queueing for subscribers) and (c) panoramisk's AMIProtocol.data_received with a
   dispatcher that counts, as its Manager would.
2. Loopback: a server streams the same capture after login; time until the last Cdr reached a
   subscriber (which reads a field) of our AmiClient, and of panoramisk's Manager.
3. Latency: simulator places a call → Cdr event → our client → parse, rules, tariff, item name;
   next to the simulator's Ping round trip.
4. Posting: a bridge with the asterisk_pbx service; a call is placed on the AMI simulator, and the
   time until its ``orders/add`` reaches the Mews simulator is set beside the simulator's own
   ``orders/add`` round trip. On the way: the journal write, a fresh No Post check
   (``customers/getAll``) and the durable mark before sending.

panoramisk is only a comparison: ``pip install panoramisk`` into the venv; without it its rows are
skipped with the reason.
"""

from __future__ import annotations

import argparse
import asyncio
import socket
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from zoneinfo import ZoneInfo

from bench_pbx_sync import pbx_options

from mews_bridge.testing import bridge_settings, running_bridge, service, wait_for
from mews_bridge_asterisk_pbx.actions import AmiClient
from mews_bridge_asterisk_pbx.cdr import charge_item_name, not_billable_reason, parse_cdr
from mews_bridge_asterisk_pbx.codec import AmiParser, Message
from mews_bridge_asterisk_pbx.link import _Session
from mews_bridge_asterisk_pbx.tariff import Tariff
from mews_bridge_mocks.ami import AmiSimulator, captures
from mews_bridge_mocks.mews import MewsSimulator

try:
    from panoramisk import Manager
    from panoramisk.ami_protocol import AMIProtocol

    PANORAMISK: str | None = None
except ImportError as exc:
    PANORAMISK = f"panoramisk is not installed ({exc}); pip install panoramisk to compare"

READ = 64 * 1024
TARIFF = Path(__file__).parents[1] / "plugins" / "asterisk_pbx" / "docs" / "tariff.sample.toml"
USER_EVENT = (
    b"Event: UserEvent\r\nPrivilege: user,all\r\nUserEvent: RoomStatus\r\nRoom: 101\r\nCode: 2\r\n\r\n"
)
# Ten messages: 6 Cdr, 1 UserEvent, 1 Ping answer, 1 DBGet list (3 messages).
BLOCK = captures.CDR_UTF8 * 3 + USER_EVENT + captures.CDR_ANSWERED * 3 + captures.PING + captures.DBGET
PER_BLOCK = 10
CDRS_PER_BLOCK = 6


def capture(messages: int) -> bytes:
    return BLOCK * (messages // PER_BLOCK)


def chunks(data: bytes) -> list[bytes]:
    return [data[i : i + READ] for i in range(0, len(data), READ)]


def best_of(runs: int, work: Callable[[], int]) -> tuple[float, int]:
    """Fastest of ``runs`` timings (seconds) and the count the work returned."""
    timings = []
    count = 0
    for _ in range(runs):
        start = time.perf_counter()
        count = work()
        timings.append(time.perf_counter() - start)
    return min(timings), count


# 1. Parsing


def ours_codec(pieces: list[bytes], every_field: bool) -> int:
    """Parse, and tell events from answers by ActionID as the client's reader does; with
    ``every_field`` also split every message into fields, as a consumer reading them would."""
    parser = AmiParser()
    events = answers = 0
    for piece in pieces:
        for message in parser.feed(piece):
            if message.action_id is not None and message.kind == "Response":
                answers += 1
            elif message.kind == "Event":
                events += 1
            if every_field:
                message.get("Privilege")
    return events


class _NullTransport:
    def is_closing(self) -> bool:
        return False


async def ours_client_path(pieces: list[bytes], runs: int) -> float:
    client = AmiClient("127.0.0.1", 0, username="bench", secret="bench", backlog_warning=len(pieces) * 1000)
    subscription = client.subscribe(lambda message: None, "Cdr")
    timings = []
    for _ in range(runs):
        session = _Session(client)
        session.connection_made(_NullTransport())  # type: ignore[arg-type]
        start = time.perf_counter()
        for piece in pieces:
            session.data_received(piece)
        timings.append(time.perf_counter() - start)
        await subscription.drain()
    subscription.cancel()
    return min(timings)


def panoramisk_protocol(pieces: list[bytes]) -> int:
    class Dispatcher:
        save_stream = None
        count = 0

        def dispatch(self, event: object) -> None:
            self.count += 1

    protocol = AMIProtocol()
    protocol.connection_made(_NullTransport())
    protocol.encoding = "utf8"
    protocol.factory = Dispatcher()
    for piece in pieces:
        protocol.data_received(piece)
    return protocol.factory.count


# 2. Loopback


class StreamServer:
    """Sends the banner, accepts the login, then the whole capture: from a thread with a blocking
    socket, so that sending costs the measured event loop nothing."""

    def __init__(self, data: bytes) -> None:
        self._data = data
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = self._listener.getsockname()[1]
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        connection, _ = self._listener.accept()
        with connection, self._listener:
            connection.sendall(captures.BANNER)
            received = b""
            while b"\r\n\r\n" not in received:
                received += connection.recv(4096)
            [login] = AmiParser(expect_banner=False).feed(received[: received.index(b"\r\n\r\n") + 4])
            reply = f"Response: Success\r\nActionID: {login.action_id}\r\nMessage: Authentication accepted\r\n\r\n"
            connection.sendall(reply.encode() + self._data)
            while connection.recv(4096):  # until the client hangs up
                pass

    def join(self) -> None:
        self._thread.join(timeout=5)


async def loopback_ours(data: bytes, expected: int) -> float:
    server = StreamServer(data)
    done = asyncio.Event()
    seen = 0

    def count(message: Message) -> None:
        nonlocal seen
        seen += bool(message["UniqueID"])  # a subscriber reads fields: the message is split
        if seen == expected:
            done.set()

    client = AmiClient("127.0.0.1", server.port, username="b", secret="b", backlog_warning=expected)
    client.subscribe(count, "Cdr")
    start = time.perf_counter()
    await client.connect()
    await done.wait()
    elapsed = time.perf_counter() - start
    await client.close(drain_timeout=0)
    server.join()
    return elapsed


async def loopback_panoramisk(data: bytes, expected: int) -> float:
    server = StreamServer(data)
    done = asyncio.Event()
    seen = 0

    def count(manager: object, message: dict[str, str]) -> None:
        nonlocal seen
        seen += bool(message["UniqueID"])
        if seen == expected:
            done.set()

    manager = Manager(
        host="127.0.0.1",
        port=server.port,
        username="b",
        secret="b",
        ping_delay=3600,
        loop=asyncio.get_running_loop(),
    )
    manager.register_event("Cdr", count)
    start = time.perf_counter()
    await manager.connect()
    await done.wait()
    elapsed = time.perf_counter() - start
    manager.close()
    server.join()
    return elapsed


# 3. Latency


async def latency(calls: int) -> tuple[list[float], list[float]]:
    tariff = Tariff.load(TARIFF)
    zone = ZoneInfo("UTC")
    async with AmiSimulator(secret="b", auth_failure_delay=0) as sim:
        client = AmiClient("127.0.0.1", sim.port, username="mewsbridge", secret="b")
        rated: asyncio.Queue[str] = asyncio.Queue()

        def rate(message: Message) -> None:
            record = parse_cdr(message, zone)
            if not_billable_reason(record, {"101"}.__contains__) is None:
                rating = tariff.rate(record.destination, record.billable_seconds)
                rated.put_nowait(charge_item_name(rating.display, record.billable_seconds))

        client.subscribe(rate, "Cdr")
        await client.connect()
        cdr_times, ping_times = [], []
        for _ in range(calls):
            start = time.perf_counter()
            await sim.place_call("101", "221234567", billsec=192)
            await rated.get()
            cdr_times.append(time.perf_counter() - start)
            start = time.perf_counter()
            await client.ping()
            ping_times.append(time.perf_counter() - start)
        await client.close()
    return cdr_times, ping_times


# 4. Posting


async def posting(calls: int) -> tuple[list[float], list[float], float]:
    """(CDR → orders/add arrives, orders/add round trips, Mews requests per charge)."""
    async with (
        MewsSimulator(currency="PLN", timezone="Europe/Warsaw", rate_limit=None) as hotel,
        AmiSimulator(secret="b", auth_failure_delay=0, timezone="Europe/Warsaw") as pbx,
    ):
        guest = hotel.add_customer("Huber", "Anna")
        hotel.add_reservation(guest, hotel.resource_id("101"), "Started")
        options = pbx_options(hotel, pbx)
        with tempfile.TemporaryDirectory() as state_dir:
            settings = bridge_settings(
                hotel,
                Path(state_dir),
                services=[service("PBX", "asterisk_pbx", options)],
                mews={"requests_per_30s": 1_000_000},
            )
            async with running_bridge(settings, entry_points=True) as bridge:
                await bridge.instances[0].wait_loaded()
                to_mews = []
                requests_before = len(hotel.calls)
                for _ in range(calls):
                    seen = len(hotel.calls)
                    start = time.time()
                    await pbx.place_call("101", "221234567", billsec=60)
                    # The request's own arrival time is measured, not when this poll notices it.
                    posted = await wait_for(
                        lambda seen=seen: next(
                            (c for c in hotel.calls[seen:] if c["operation"] == "orders/add"), None
                        )
                    )
                    to_mews.append(posted["time"].timestamp() - start)
                per_charge = (len(hotel.calls) - requests_before) / calls
                assert bridge.mews is not None
                body = {k: v for k, v in hotel.calls_to("orders/add")[-1]["body"].items() if k[0] != "C"}
                round_trips = []
                for _ in range(calls):
                    start = time.perf_counter()
                    await bridge.mews.call("orders/add", body)
                    round_trips.append(time.perf_counter() - start)
    return to_mews, round_trips, per_charge


def row(label: str, value: float, unit: str) -> None:
    print(f"   {label:<40}{value:>10,.0f} {unit}")


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * share))]


async def main(messages: int, runs: int, calls: int) -> None:
    data = capture(messages)
    pieces = chunks(captures.BANNER + data)
    total = messages // PER_BLOCK * PER_BLOCK
    events = messages // PER_BLOCK * (CDRS_PER_BLOCK + 3)  # Cdr, UserEvent and DBGet's two events
    print(
        f"Capture: {total} messages ({events} events), {len(data) / 1e6:.1f} MB, read in {READ // 1024} KiB pieces"
    )
    print(f"Python {sys.version.split()[0]}; best of {runs} runs\n")

    print("1. Parsing (no sockets)")
    for label, every_field in (("framing + ActionID", False), ("all fields", True)):
        seconds, count = best_of(runs, lambda every_field=every_field: ours_codec(pieces, every_field))
        row(f"mews-bridge codec, {label.strip()}", count / seconds, "events/s")
    seconds = await ours_client_path(pieces, runs)
    row("mews-bridge client read path", events / seconds, "events/s")
    if PANORAMISK:
        print(f"   panoramisk skipped: {PANORAMISK}")
    else:
        seconds, count = best_of(runs, lambda: panoramisk_protocol(pieces))
        row("panoramisk AMIProtocol", count / seconds, "events/s")

    cdrs = messages // PER_BLOCK * CDRS_PER_BLOCK
    print(f"\n2. Loopback TCP, {cdrs} Cdr events to a subscriber (runs alternate)")
    ours, theirs = [], []
    for _ in range(runs):
        ours.append(await loopback_ours(data, cdrs))
        if not PANORAMISK:
            theirs.append(await loopback_panoramisk(data, cdrs))
    row("mews-bridge AmiClient", cdrs / min(ours), "Cdr/s")
    if PANORAMISK:
        print(f"   panoramisk skipped: {PANORAMISK}")
    else:
        row("panoramisk Manager", cdrs / min(theirs), "Cdr/s")

    print(f"\n3. Latency over {calls} calls (simulator → rated bill line)")
    cdr_times, ping_times = await latency(calls)
    for label, values in (("Cdr → rated line", cdr_times), ("Ping round trip ", ping_times)):
        print(
            f"   {label}  median {statistics.median(values) * 1e6:7.0f} µs"
            f"   p99 {percentile(values, 0.99) * 1e6:7.0f} µs"
        )
    extra = statistics.median(cdr_times) - statistics.median(ping_times)
    print(f"   above the round trip: {extra * 1e6:.0f} µs (median)")

    posts = max(10, calls // 20)
    print(f"\n4. Posting over {posts} calls (simulator call → orders/add reaches the Mews simulator)")
    to_mews, round_trips, per_charge = await posting(posts)
    for label, values in (("Cdr → orders/add in Mews", to_mews), ("orders/add round trip  ", round_trips)):
        print(
            f"   {label}  median {statistics.median(values) * 1e3:6.2f} ms"
            f"   p99 {percentile(values, 0.99) * 1e3:6.2f} ms"
        )
    extra = statistics.median(to_mews) - statistics.median(round_trips)
    print(
        f"   above the round trip: {extra * 1e3:.2f} ms (median); {per_charge:.1f} Mews requests per charge"
    )


if __name__ == "__main__":
    arguments = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    arguments.add_argument("--events", type=int, default=100_000, help="messages in the capture")
    arguments.add_argument("--runs", type=int, default=5)
    arguments.add_argument("--calls", type=int, default=1000)
    options = arguments.parse_args()
    asyncio.run(main(options.events, options.runs, options.calls))

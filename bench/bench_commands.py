"""Benchmarks of the command pipeline against the Mews simulator (prints figures; asserts nothing).

    python bench/bench_commands.py [--commands 200] [--drain 1000]

* dispatch overhead: DeviceCommand event received → driver starts, p50/p99, next to the simulator's
  own round trip for ``commands/getAllByIds`` (target: p50 ≤ 3 ms and p99 ≤ 15 ms above it);
* API calls per command in steady state;
* draining a backlog of queued commands, next to the floor the rate limit sets (the limit is scaled to
  200 requests per 3 s so the run is short; the ratio is what counts; target ≤ 1.1 times the floor, no 429);
* idle memory (RSS) of ``mews-bridge run`` with every plugin installed, and cold start to connected
  (targets ≤ 60 MB and ≤ 1.5 s).
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

import mews_bridge
from mews_bridge.mews.models import FINAL_STATES
from mews_bridge.testing import bridge_settings, device, running_bridge, wait_for
from mews_bridge_mocks.mews import MewsSimulator

started: dict[str, float] = {}


class BenchPrinter(mews_bridge.DeviceDriver):
    """Does nothing but note when it was handed each command."""

    name = "bench_printer"
    device_type = "Printer"
    replay_safe = True

    async def execute(self, job: mews_bridge.CommandJob[Any]) -> str | None:
        started[job.id] = time.perf_counter()
        return None


class BenchPlugin:
    @mews_bridge.hookimpl
    def register_drivers(self, register: Any) -> None:
        register(BenchPrinter)


DATA = {
    "CopyCount": 1,
    "FileType": "application/pdf",
    "FileData": base64.b64encode(b"%PDF-1.4").decode(),
    "PrinterName": "",
    "PrinterDriverName": "",
    "PrinterPortName": "",
}


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


async def round_trip_ms(sim: MewsSimulator, samples: int = 200) -> list[float]:
    body = {
        "ClientToken": sim.client_token,
        "AccessToken": sim.access_token,
        "Client": "bench",
        "CommandIds": [],
    }
    async with httpx.AsyncClient(base_url=f"{sim.platform_url}/api/connector/v1/") as client:
        times = []
        for _ in range(samples):
            t0 = time.perf_counter()
            (await client.post("commands/getAllByIds", json=body)).raise_for_status()
            times.append((time.perf_counter() - t0) * 1000)
    return times


async def dispatch(count: int, state_dir: Path) -> None:
    async with MewsSimulator(rate_limit=None) as sim:
        printer = sim.add_device("Bench printer", "Printer")
        # No rate limit here: this measures the bridge's own overhead, not Mews' window.
        settings = bridge_settings(
            sim,
            state_dir,
            devices=[device("Bench printer", printer, "bench_printer")],
            mews={"requests_per_30s": 1_000_000},
        )
        received: dict[str, float] = {}
        async with running_bridge(settings, {"bench": BenchPlugin()}) as bridge:
            on_event = bridge.pipeline.on_command_event

            def timed(command_id: str, state: str | None) -> None:
                received.setdefault(command_id, time.perf_counter())
                on_event(command_id, state)

            bridge.pipeline.on_command_event = timed  # type: ignore[method-assign]
            calls_before = len(sim.calls)
            ids = []
            for _ in range(count):
                command_id = sim.add_command(printer, DATA)
                ids.append(command_id)
                await wait_for(lambda cid=command_id: sim.command(cid)["State"] in FINAL_STATES, 10)
            calls = len(sim.calls) - calls_before
        latency = [(started[cid] - received[cid]) * 1000 for cid in ids]
        trip = await round_trip_ms(sim)
    p50, p99, trip50 = percentile(latency, 0.5), percentile(latency, 0.99), statistics.median(trip)
    print(f"dispatch (event received -> driver starts), {count} commands one at a time:")
    print(
        f"  p50 {p50:.2f} ms, p99 {p99:.2f} ms; simulator round trip p50 {trip50:.2f} ms, p99 {percentile(trip, 0.99):.2f} ms"
    )
    print(
        f"  overhead above the round trip: p50 {p50 - trip50:.2f} ms, p99 {p99 - trip50:.2f} ms (target 3 / 15 ms)"
    )
    print(f"API calls per command in steady state: {calls / count:.2f} (a fetch and the final update)")


async def drain(count: int, state_dir: Path) -> None:
    limit, window = 200, 3.0
    async with MewsSimulator(rate_limit=limit, rate_window_s=window) as sim:
        printer = sim.add_device("Bench printer", "Printer")
        ids = [sim.add_command(printer, DATA) for _ in range(count)]
        settings = bridge_settings(
            sim,
            state_dir,
            devices=[device("Bench printer", printer, "bench_printer")],
            mews={
                "requests_per_30s": limit * 95 // 100,
                "rate_window_s": window,
                "ping_interval_s": 20,
                "ping_timeout_s": 20,
            },
        )
        t0 = time.perf_counter()
        async with running_bridge(settings, {"bench": BenchPlugin()}, wait_connected=False):
            await wait_for(lambda: all(sim.command(cid)["State"] in FINAL_STATES for cid in ids[-5:]), 600)
            await wait_for(lambda: all(sim.command(cid)["State"] in FINAL_STATES for cid in ids), 600)
            elapsed = time.perf_counter() - t0
        calls = len(sim.calls)
        throttled = sum(1 for call in sim.calls if call["status"] == 429)
    floor = (count + 1) / limit * window  # one final update each, plus the catch-up that carries the data
    print(f"drain {count} queued commands at {limit} requests / {window:g} s:")
    print(
        f"  {elapsed:.1f} s for {calls} API calls; floor {floor:.1f} s; ratio {elapsed / floor:.2f} (target 1.1); 429s: {throttled}"
    )


DEVICES = """
[[devices]]
name = "Printer"
mews_device = "Printer"
driver = "escpos_printer"
options = { connection = "tcp://127.0.0.1:9" }
[[devices]]
name = "Encoder"
mews_device = "Encoder"
driver = "serial_keycutter"
options = { port = "socket://127.0.0.1:9", dialect = "salto", encoder = "Encoder1" }
[[devices]]
name = "Fiscal"
mews_device = "Fiscal"
driver = "fiscal_virtual"
options = { profile = "generic", register_id = "BENCH-1", currency = "EUR", timezone = "Europe/Vienna", tax_map = { "AT-S" = "A" } }
"""


async def idle_process(state_dir: Path, devices: str) -> tuple[float, float]:
    """Cold start to connected, and RSS after 5 s idle, of a ``mews-bridge run`` process."""
    async with MewsSimulator() as sim:
        for name, kind in [("Printer", "Printer"), ("Encoder", "KeyCutter"), ("Fiscal", "FiscalMachine")]:
            sim.add_device(name, kind)
        config = _write_config(
            state_dir,
            f"""
[mews]
platform_url = "{sim.platform_url}"
websocket_url = "{sim.websocket_url}"
client_token = "{sim.client_token}"
access_token = "{sim.access_token}"
[bridge]
state_dir = "{state_dir / "state"}"
http = "127.0.0.1:0"  # the status server on, on a free port
{devices}""",
        )
        t0 = time.perf_counter()
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "mews_bridge",
            "--config",
            str(config),
            "--log-level",
            "ERROR",
            "run",
            stderr=asyncio.subprocess.DEVNULL,
        )
        try:
            await wait_for(lambda: sim.websocket_connections, 30)
            cold = time.perf_counter() - t0
            await asyncio.sleep(5)
            rss = _rss_mb(process.pid)
        finally:
            process.terminate()
            await process.wait()
    return cold, rss


def _write_config(state_dir: Path, text: str) -> Path:
    state_dir.mkdir(parents=True, exist_ok=True)
    config = state_dir / "config.toml"
    config.write_text(text)
    return config


def _rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--commands", type=int, default=200)
    parser.add_argument("--drain", type=int, default=1000)
    args = parser.parse_args()
    os.environ.setdefault("PYTHONDONTWRITEBYTECODE", "1")
    with tempfile.TemporaryDirectory() as tmp:
        await dispatch(args.commands, Path(tmp) / "dispatch")
        await drain(args.drain, Path(tmp) / "drain")
        for label, devices in [
            ("every plugin installed, no devices", ""),
            ("a device of each plugin", DEVICES),
        ]:
            cold, rss = await idle_process(Path(tmp) / label.replace(" ", "-"), devices)
            print(
                f"mews-bridge run, {label}: cold start to connected {cold:.2f} s (target 1.5 s); idle RSS {rss:.1f} MB (target 60 MB)"
            )


if __name__ == "__main__":
    asyncio.run(main())

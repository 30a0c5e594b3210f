"""Benchmarks of the command pipeline against the Mews simulator (prints figures; asserts nothing).

    python bench/bench_commands.py [--commands 200] [--drain 1000]

* dispatch overhead: DeviceCommand event received → driver starts, p50/p99, next to the simulator's
  own round trip for ``commands/getAllByIds`` (target: p50 ≤ 3 ms and p99 ≤ 15 ms above it);
* API calls per command in steady state;
* draining a backlog of queued commands, next to the floor the rate limit sets (the limit is scaled to
  200 requests per 3 s so the run is short; the ratio is what counts; target ≤ 1.1 times the floor, no 429);
* idle memory (RSS of the process tree) of ``mews-bridge run`` with a device of every plugin and the
  PBX service configured, and cold start to connected (targets ≤ 50 MB and ≤ 1.5 s).
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
from bench_pbx_sync import pbx_options

import mews_bridge
from mews_bridge.mews.models import FINAL_STATES
from mews_bridge.settings import Settings
from mews_bridge.testing import (
    bridge_settings,
    device,
    running_bridge,
    service,
    wait_for,
    write_settings_file,
)
from mews_bridge_mocks.ami import AmiSimulator
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


NOWHERE = "127.0.0.1:9"  # refused: the devices stay "not ready", retrying, as at a hotel with one unplugged


def every_plugin(sim: MewsSimulator, pbx: AmiSimulator, state_dir: Path, ipp: bool) -> Settings:
    """A receipt printer, an encoder, a fiscal machine and the PBX (and an IPP printer if ``ipp``)."""
    options = {
        "Printer": ("escpos_printer", {"connection": f"tcp://{NOWHERE}"}),
        "Encoder": ("serial_keycutter", {"port": f"socket://{NOWHERE}", "dialect": "salto", "encoder": "E1"}),
        "Fiscal": (
            "fiscal_virtual",
            {
                "profile": "generic",
                "register_id": "B1",
                "currency": "PLN",
                "timezone": "Europe/Warsaw",
                "tax_map": {"PL-S": "A"},
            },
        ),
    }
    if ipp:
        options["Office"] = ("ipp_printer", {"uri": f"ipp://{NOWHERE}/ipp/print"})
    kinds = {"Printer": "Printer", "Encoder": "KeyCutter", "Fiscal": "FiscalMachine", "Office": "Printer"}
    devices = [device(name, sim.add_device(name, kinds[name]), *driver) for name, driver in options.items()]
    return bridge_settings(
        sim, state_dir, devices=devices, services=[service("PBX", "asterisk_pbx", pbx_options(sim, pbx))]
    )


async def idle_process(state_dir: Path, ipp: bool) -> tuple[float, float]:
    """Cold start to connected, and the process tree's RSS after 5 s idle, of ``mews-bridge run``
    with every plugin configured."""
    async with (
        MewsSimulator(currency="PLN", timezone="Europe/Warsaw") as sim,
        AmiSimulator(secret="b", auth_failure_delay=0, timezone="Europe/Warsaw") as pbx,
    ):
        await asyncio.to_thread(state_dir.mkdir, parents=True, exist_ok=True)
        config = write_settings_file(every_plugin(sim, pbx, state_dir, ipp), state_dir / "config.toml")
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
            await wait_for(lambda: sim.websocket_connections and pbx.sessions, 30)
            cold = time.perf_counter() - t0
            await asyncio.sleep(5)
            rss = sum(_rss_mb(pid) for pid in _tree(process.pid))
        finally:
            process.terminate()
            await process.wait()
    return cold, rss


def _tree(pid: int) -> list[int]:
    """``pid`` and its descendants."""
    pids = [pid]
    for task in Path(f"/proc/{pid}/task").iterdir():
        for child in (task / "children").read_text().split():
            pids += _tree(int(child))
    return pids


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
        for label, ipp in [("printer, encoder, fiscal machine, PBX", False), ("and an IPP printer", True)]:
            cold, rss = await idle_process(Path(tmp) / f"idle-{ipp}", ipp)
            print(
                f"mews-bridge run, {label}: cold start to connected {cold:.2f} s (target 1.5 s); "
                f"idle RSS of the process tree {rss:.1f} MB (target 50 MB)"
            )


if __name__ == "__main__":
    asyncio.run(main())

"""Benchmarks of the command pipeline against the Mews simulator (prints figures; asserts nothing).

    python bench/bench_commands.py [--commands 200] [--drain 1000] [--profile] [--only dispatch]
                                   [--python /opt/mews-bridge/bin/python]

* dispatch, as a device sees it: from the moment the Mews simulator writes the frame with the
  ``DeviceCommand`` event to the first byte reaching a key-card encoder (the encoder simulator on
  TCP), key cards one after another, p50/p99 above the median round trip of a
  ``commands/getAllByIds`` of one command straight from httpx, sampled between the cards with the
  bridge idle (target: p50 ≤ 2 ms and p99 ≤ 10 ms above it); with the p50 of each step on the way
  (event handler, fetch, journal on receipt, running mark, driver) and, with ``--profile``, the
  bridge's functions that took the most time (cProfile; it slows the run, so read it for shares);
* API calls per command in steady state;
* draining a backlog of queued commands, next to the floor the rate limit sets (the limit is scaled to
  200 requests per 3 s so the run is short; the ratio is what counts; target ≤ 1.1 times the floor, no 429);
* idle memory (RSS of the process tree) of ``mews-bridge run`` with a device of every plugin and the
  PBX service configured, and cold start to connected (targets ≤ 50 MB and ≤ 1.5 s). ``--python``
  measures the bridge another venv installed (one set up as on the Pi: the wheels, none of the
  development tools) instead of this one's.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import cProfile
import io
import itertools
import os
import pstats
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
from bench_pbx_sync import pbx_options

import mews_bridge
from mews_bridge import FINAL_STATES
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
from mews_bridge_mocks.bridge_process import BridgeProcess
from mews_bridge_mocks.keycutter import EncoderSimulator
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


class RoundTrip:
    """``commands/getAllByIds`` straight from httpx: the floor under a fetch, sampled between the
    commands so that it sees the same machine as they do."""

    def __init__(self, sim: MewsSimulator) -> None:
        self._sim = sim
        self._client = httpx.AsyncClient(base_url=f"{sim.platform_url}/api/connector/v1/")
        self.times: list[float] = []

    async def sample(self, command_ids: list[str]) -> None:
        body = {
            "ClientToken": self._sim.client_token,
            "AccessToken": self._sim.access_token,
            "Client": "bench",
            "CommandIds": command_ids,
        }
        t0 = time.perf_counter()
        (await self._client.post("commands/getAllByIds", json=body)).raise_for_status()
        self.times.append((time.perf_counter() - t0) * 1000)

    async def aclose(self) -> None:
        await self._client.aclose()


async def dispatch(count: int, state_dir: Path, profile: bool) -> None:
    """Key cards one after another, timed as the encoder sees them, with where the time goes."""
    marks: dict[str, list[float]] = {stage: [] for stage in STAGES}
    first_byte: list[float] = []
    waiting = [False]  # for the first byte of the next card

    def arrived(_: bytes) -> None:
        if waiting[0]:
            first_byte.append(time.perf_counter())
            waiting[0] = False

    sent: list[float] = []

    def sending(frame: str) -> None:
        if waiting[0] and '"Pending"' in frame and len(sent) < len(first_byte) + 1:
            sent.append(time.perf_counter())

    async with (
        MewsSimulator(rate_limit=None, on_frame=sending) as sim,
        EncoderSimulator(pty=False, on_bytes=arrived) as encoder,
    ):
        cutter = sim.add_device("Encoder", "KeyCutter", identifier="E1")
        guest = sim.add_customer("Huber", "Anna")
        stay = sim.add_reservation(guest, sim.resource_id("101"), "Started")
        options = {"port": encoder.tcp_url, "dialect": "salto", "encoder": "E1"}
        settings = bridge_settings(
            sim,
            state_dir,
            devices=[device("Encoder", cutter, "serial_keycutter", options)],
            mews={"requests_per_30s": 1_000_000},  # the bridge's own overhead, not Mews' window
        )
        async with running_bridge(settings, entry_points=True) as bridge:
            pipeline, mews = bridge.pipeline, bridge.mews
            assert mews is not None
            [slot] = pipeline.workers
            await slot.managed.wait_settled()
            driver = slot.managed.driver
            _stamp(pipeline, "on_command_event", marks["event"], when=lambda _, state: state == "Pending")
            _stamp(mews, "get_commands_by_ids", marks["fetched"], after=True)
            _stamp(bridge.journal, "add", marks["journalled"], after=True)
            _stamp(driver, "execute", marks["driver"])
            profiler = cProfile.Profile() if profile else None
            acknowledged: list[float] = []
            _stamp(bridge.journal, "mark_acknowledged", acknowledged, after=True)
            trip = RoundTrip(sim)
            calls_before = len(sim.calls)
            for _ in range(count):
                if profiler:
                    profiler.enable()
                waiting[0] = True
                command_id = sim.add_key_cutter_command(cutter, stay)
                await wait_for(lambda: not waiting[0], 10)
                if profiler:
                    profiler.disable()
                await wait_for(lambda cid=command_id: sim.command(cid)["State"] in FINAL_STATES, 10)
                # The bridge idle again (the outcome journalled as acknowledged), as for the next card.
                done = len(sent)
                await wait_for(lambda done=done: len(acknowledged) == done, 10)
                await trip.sample([command_id])
            calls = len(sim.calls) - calls_before - count
            await trip.aclose()
    latency = [(byte - start) * 1000 for byte, start in zip(first_byte, sent, strict=True)]
    p50, p99, trip50 = percentile(latency, 0.5), percentile(latency, 0.99), statistics.median(trip.times)
    print(f"dispatch (Mews sends the event -> first byte at a key-card encoder on TCP), {count} commands:")
    print(f"  p50 {p50:.2f} ms, p99 {p99:.2f} ms; commands/getAllByIds round trip p50 {trip50:.2f} ms")
    print(f"  above the round trip: p50 {p50 - trip50:.2f} ms, p99 {p99 - trip50:.2f} ms (target 2 / 10 ms)")
    stages = {"sent": sent, **marks, "first byte": first_byte}
    names = list(stages)
    print("  where it goes (p50 of each step):")
    for earlier, later in itertools.pairwise(names):
        step = [(b - a) * 1000 for a, b in zip(stages[earlier], stages[later], strict=False)]
        print(
            f"    {earlier:>10} -> {later:<10} {statistics.median(step):6.2f} ms  ({STAGES.get(later, 'the driver')})"
        )
    print(f"API calls per command in steady state: {calls / count:.2f} (a fetch and the final update)")
    if profiler:
        _print_profile(profiler)


STAGES = {
    "event": "WebSocket frame to the bridge's event handler",
    "fetched": "commands/getAllByIds: the round trip, plus fetch coalescing",
    "journalled": "data validated, receipt and start journalled in one write (SQLite, fsync)",
    "driver": "the driver is handed the job",
}
"""The steps timed between the simulator sending the event and the encoder's first byte."""


def _stamp(
    owner: Any, name: str, into: list[float], *, after: bool = False, when: Any = lambda *args: True
) -> None:
    """Note the time of each call of ``owner.name`` (at its start, or ``after`` it returned) whose
    arguments satisfy ``when``."""
    original = getattr(owner, name)

    if asyncio.iscoroutinefunction(original):

        async def timed(*args: Any, **kwargs: Any) -> Any:
            if not after:
                into.append(time.perf_counter())
            result = await original(*args, **kwargs)
            if after:
                into.append(time.perf_counter())
            return result
    else:

        def timed(*args: Any, **kwargs: Any) -> Any:  # type: ignore[misc]
            if when(*args):
                into.append(time.perf_counter())
            return original(*args, **kwargs)

    setattr(owner, name, timed)


def _print_profile(profiler: cProfile.Profile, sort: str = "tottime") -> None:
    """The bridge's own functions that took the most time between event and first byte."""
    out = io.StringIO()
    stats = pstats.Stats(profiler, stream=out).sort_stats(sort)
    stats.print_stats(r"mews_bridge(?!_mocks)", 15)
    print("  cProfile, the bridge's and its plugins' functions by own time (the simulators left out):")
    print("\n".join("    " + line for line in out.getvalue().splitlines()[6:] if line.strip()))


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


async def idle_process(state_dir: Path, ipp: bool, python: str) -> tuple[float, float]:
    """Cold start to connected, and the process tree's RSS after 5 s idle, of ``mews-bridge run``
    (``python -m mews_bridge``) with every plugin configured."""
    async with (
        MewsSimulator(currency="PLN", timezone="Europe/Warsaw") as sim,
        AmiSimulator(secret="b", auth_failure_delay=0, timezone="Europe/Warsaw") as pbx,
    ):
        await asyncio.to_thread(state_dir.mkdir, parents=True, exist_ok=True)
        config = write_settings_file(every_plugin(sim, pbx, state_dir, ipp), state_dir / "config.toml")
        bridge = BridgeProcess(config, state_dir / "bridge.log", python=python)
        t0 = time.perf_counter()
        await bridge.start()
        try:
            await wait_for(lambda: sim.websocket_connections and pbx.sessions, 30)
            cold = time.perf_counter() - t0
            await asyncio.sleep(5)
            assert bridge.process is not None
            rss = sum(_rss_mb(pid) for pid in _tree(bridge.process.pid))
        finally:
            await bridge.stop()
    return cold, rss


def _has_module(python: str, name: str) -> bool:
    probe = f"import importlib.util as u; raise SystemExit(u.find_spec({name!r}) is None)"
    return subprocess.run([python, "-c", probe], check=False).returncode == 0


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
    parser.add_argument("--profile", action="store_true", help="cProfile the dispatch runs")
    parser.add_argument("--only", choices=["dispatch", "drain", "idle"], help="run one part")
    parser.add_argument(
        "--python",
        default=sys.executable,
        help="the interpreter of the venv whose bridge the idle figures measure",
    )
    args = parser.parse_args()
    os.environ.setdefault("PYTHONDONTWRITEBYTECODE", "1")
    with tempfile.TemporaryDirectory() as tmp:
        if args.only in (None, "dispatch"):
            await dispatch(args.commands, Path(tmp) / "dispatch", args.profile)
        if args.only in (None, "drain"):
            await drain(args.drain, Path(tmp) / "drain")
        for label, ipp in [("printer, encoder, fiscal machine, PBX", False), ("and an IPP printer", True)]:
            if args.only not in (None, "idle"):
                break
            if ipp and not _has_module(args.python, "mews_bridge_ipp_printer"):
                print(f"mews-bridge run, {label}: the IPP plugin is not installed for {args.python}")
                continue
            cold, rss = await idle_process(Path(tmp) / f"idle-{ipp}", ipp, args.python)
            print(
                f"mews-bridge run, {label}: cold start to connected {cold:.2f} s (target 1.5 s); "
                f"idle RSS of the process tree {rss:.1f} MB (target 50 MB)"
            )


if __name__ == "__main__":
    asyncio.run(main())

"""pytest fixture ``bridge_harness``: a driver under test in a real bridge, wired to the Mews simulator.

What a driver's vendor needs to test it the way a hotel runs it, without the cloud::

    async def test_a_command_is_processed(bridge_harness, device_simulator):
        bridge_harness.add_device("Desk printer", AcmeDriver, {"host": "127.0.0.1", "port": ...})
        await bridge_harness.start()  # the installed plugins, found by their entry points
        command_id = bridge_harness.push_command("Desk printer", example_command_data("Printer"))
        final = await bridge_harness.wait_final(command_id)
        assert (final["State"], final["Notes"]) == ("Processed", None)

The bridge is :func:`mews_bridge.testing.running_bridge` with quick retry timings; it is stopped when
the test ends. ``async with bridge_harness.running() as bridge:`` starts it for a block instead (stop and
start again to test a restart). ``example_command_data`` gives Mews-shaped ``Data`` for each device type.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import uuid
from collections.abc import AsyncIterator, Mapping
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest_asyncio

from mews_bridge import DeviceDriver, Service, Settings
from mews_bridge.bridge import Bridge
from mews_bridge.testing import bridge_settings, device, running_bridge, service, wait_for_final_state

from .mews import MewsSimulator


def _utc(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


def _receipt_pdf(lines: list[str]) -> bytes:
    """A one-page PDF, 80 mm wide, with ``lines`` of Helvetica text (ASCII, no parentheses).

    Written here rather than taken from ``escpos.samples``, whose package needs the ``escpos`` extra.
    """
    text = b"BT /F1 10 Tf 12 TL 14 280 Td " + b" ".join(b"(%s) '" % line.encode() for line in lines) + b" ET"
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 227 300] /Contents 4 0 R "
        b"/Resources << /Font << /F1 5 0 R >> >> >>",
        b"<< /Length %d >>\nstream\n%s\nendstream" % (len(text), text),
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
    ]
    pdf = bytearray(b"%PDF-1.4\n")
    offsets = []
    for number, body in enumerate(objects, 1):
        offsets.append(len(pdf))
        pdf += b"%d 0 obj\n%s\nendobj\n" % (number, body)
    xref = len(pdf)
    pdf += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    pdf += b"".join(b"%010d 00000 n \n" % offset for offset in offsets)
    pdf += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (len(objects) + 1, xref)
    return bytes(pdf)


def example_command_data(device_type: str) -> dict[str, Any]:
    """The ``Data`` of a command as Mews sends it to a device of ``device_type``.

    Printer: a one-page receipt (PDF). KeyCutter: one key for room 101 from now to two days
    later. FiscalMachine: a closed receipt. PaymentTerminal: a 10 EUR payment. PassportScanner: a scan
    for a guest's reservation. Each is valid against the core's model of that type; change the copy
    to test other cases.
    """
    now = datetime.now(UTC).replace(microsecond=0)
    examples: dict[str, dict[str, Any]] = {
        "Printer": {
            "CopyCount": 1,
            "FileType": "application/pdf",
            "FileData": base64.b64encode(_receipt_pdf(["Hotel Simulator", "Room 101", "Thank you"])).decode(),
            "PrinterName": "Reception printer",
            "PrinterDriverName": "",
            "PrinterPortName": "",
        },
        "KeyCutter": {
            "KeyCount": 1,
            "LockIds": ["101"],
            "StartUtc": _utc(now),
            "EndUtc": _utc(now + timedelta(days=2)),
            "FirstName": "Anna",
            "LastName": "Huber",
            "ReservationId": str(uuid.uuid4()),
            "ReservationNumber": "1001",
        },
        "FiscalMachine": {
            "FiscalMachineId": "fiscal-1",
            "Bill": {
                "Id": str(uuid.uuid4()),
                "Number": "2024-0001",
                "State": "Closed",
                "Type": "Receipt",
                "AccountId": str(uuid.uuid4()),
                "CorrectionState": "Bill",
                "IssuedUtc": _utc(now),
            },
        },
        "PaymentTerminal": {
            "PaymentTerminalId": "terminal-1",
            "AccountId": str(uuid.uuid4()),
            "Amount": {"Currency": "EUR", "NetValue": 10.0, "GrossValue": 10.0, "TaxValues": []},
        },
        "PassportScanner": {
            "PassportScannerId": "scanner-1",
            "CustomerId": str(uuid.uuid4()),
            "ReservationId": str(uuid.uuid4()),
        },
    }
    if device_type not in examples:
        raise ValueError(f"unknown device type {device_type!r}; known: {', '.join(examples)}")
    return examples[device_type]


class BridgeHarness:
    """A Mews simulator, the devices configured on it, and a bridge started on demand.

    Add devices, then :meth:`start` the bridge: Mews announces a device's commands only on sockets
    opened after the device existed, as the real Mews does.
    """

    def __init__(self, sim: MewsSimulator, state_dir: Path) -> None:
        self.sim = sim
        self.state_dir = state_dir
        """The bridge's ``state_dir``: the journal survives a :meth:`stop` and the next :meth:`start`."""
        self.bridge: Bridge | None = None
        """The running bridge (None before :meth:`start` and after :meth:`stop`)."""
        self._devices: list[dict[str, Any]] = []
        self._services: list[dict[str, Any]] = []
        self._running: contextlib.AsyncExitStack | None = None

    def add_device(
        self,
        name: str,
        driver: type[DeviceDriver[Any]],
        options: Mapping[str, Any] | None = None,
        *,
        mews_name: str | None = None,
        identifier: str | None = None,
    ) -> str:
        """Create a Mews device of the driver's type and a ``[[devices]]`` entry called ``name`` serving
        it with ``driver`` and ``options``; return the Mews device Id. The Mews device is called
        ``mews_name`` (``name`` by default) and has the ``identifier`` if given."""
        if self._running is not None:
            raise RuntimeError("add devices before start(): Mews would not announce this device's commands")
        self._devices.append(device(name, mews_name or name, driver.name, options))
        return self.sim.add_device(mews_name or name, driver.device_type, identifier)

    def change_device(self, name: str, options: Mapping[str, Any]) -> None:
        """New ``options`` for the device called ``name``, from the next :meth:`start` (a setting fixed
        between two runs)."""
        if self._running is not None:
            raise RuntimeError("change devices between runs: stop() the bridge first")
        entry = next((e for e in self._devices if e["name"] == name), None)
        if entry is None:
            raise LookupError(f"no configured device called {name!r}")
        entry["options"] = dict(options)

    def add_service(
        self, name: str, cls: type[Service[Any]], options: Mapping[str, Any] | None = None
    ) -> None:
        """A ``[[services]]`` entry called ``name`` running ``cls`` with ``options``."""
        if self._running is not None:
            raise RuntimeError("add services before start()")
        self._services.append(service(name, cls.name, options))

    async def start(
        self, plugins: Mapping[str, object] | None = None, *, bridge: Mapping[str, Any] | None = None
    ) -> Bridge:
        """Start a bridge connected to the simulator and return it.

        ``plugins`` (name -> module or object with hookimpls) are the only plugins it loads; without
        them it loads the installed ones by their entry points, as ``mews-bridge run`` does. ``bridge``
        overrides ``[bridge]`` settings, e.g. ``{"shutdown_grace_s": 0}``.
        """
        if self._running is not None:
            raise RuntimeError("the bridge is already running; stop() it first")
        settings = self.settings(bridge)
        stack = contextlib.AsyncExitStack()
        self.bridge = await stack.enter_async_context(
            running_bridge(settings, plugins, entry_points=plugins is None)
        )
        self._running = stack
        return self.bridge

    def settings(self, bridge: Mapping[str, Any] | None = None) -> Settings:
        """The settings :meth:`start` runs the bridge with (``write_settings_file`` makes them a file for
        the command line)."""
        return bridge_settings(
            self.sim, self.state_dir, devices=self._devices, services=self._services, bridge=bridge
        )

    @contextlib.asynccontextmanager
    async def running(
        self, plugins: Mapping[str, object] | None = None, *, bridge: Mapping[str, Any] | None = None
    ) -> AsyncIterator[Bridge]:
        """:meth:`start` for the block, :meth:`stop` after it."""
        started = await self.start(plugins, bridge=bridge)
        try:
            yield started
        finally:
            await self.stop()

    async def stop(self) -> None:
        """Stop the bridge as a shutdown does: running commands get ``shutdown_grace_s``, then are cut off."""
        running, self._running, self.bridge = self._running, None, None
        if running is not None:
            await running.aclose()

    async def wait_loaded(self, name: str, timeout_s: float = 10.0) -> None:
        """Wait until the device called ``name`` is set up (after ``DeviceNotReady`` retries)."""
        if self.bridge is None:
            raise RuntimeError("the bridge is not running; start() it first")
        managed = next((m for m in self.bridge.instances if m.name == name), None)
        if managed is None:
            raise LookupError(f"no configured device called {name!r}")
        await asyncio.wait_for(managed.wait_loaded(), timeout_s)

    def push_command(self, device: str, data: Mapping[str, Any]) -> str:
        """Queue a command in Mews for ``device`` (its Mews Id or Name) and return the command's Id."""
        return self.sim.add_command(self._mews_device_id(device), data)

    async def wait_final(self, command_id: str, timeout_s: float = 10.0) -> dict[str, Any]:
        """Wait until Mews holds a final state for the command; return it as the simulator shows it
        (``State``, ``Notes`` and the ``History`` of (state, progress, notes) updates)."""
        return await wait_for_final_state(self.sim, command_id, timeout_s)

    def _mews_device_id(self, wanted: str) -> str:
        if wanted in self.sim.devices:
            return wanted
        for row in self.sim.devices:
            if row["Name"].casefold() == wanted.casefold():
                return row["Id"]
        known = ", ".join(repr(row["Name"]) for row in self.sim.devices) or "none"
        raise LookupError(f"no Mews device with the Id or Name {wanted!r} (known: {known})")


@pytest_asyncio.fixture
async def bridge_harness(mews_simulator: MewsSimulator, tmp_path: Path) -> AsyncIterator[BridgeHarness]:
    """A :class:`BridgeHarness` on the ``mews_simulator``; its bridge is stopped after the test."""
    harness = BridgeHarness(mews_simulator, tmp_path / "bridge-state")
    yield harness
    await harness.stop()

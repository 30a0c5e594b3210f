"""A seeded storm of malformed input against a bridge with every plugin, interleaved with valid work.

Each round sends one command to a printer, a key encoder or a fiscal machine whose ``Data`` (and now
and then the command itself) is mangled, garbage bytes or a mangled CDR on the AMI connection, and a
garbage frame on the Mews WebSocket; every few rounds a valid command goes in between. At the end a
valid command per device and a valid call must still be carried out. :func:`run_fuzz` checks what the
bridge did against the limits and returns a :class:`FuzzReport`; the test suite runs it small,
``bench/fuzz.py`` large.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import copy
import json
import random
import re
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

from mews_bridge.bridge import Bridge
from mews_bridge.testing import bridge_settings, device, running_bridge, service, wait_for

from .ami import AmiSimulator
from .bridge_fixtures import example_command_data
from .escpos.simulator import PrinterSimulator
from .keycutter import EncoderSimulator
from .mews import BillPayment, LineItem, MewsSimulator

EXCEPTION_WORDS = re.compile(
    r"[A-Z]\w*(?:Error|Exception)\b|Traceback|pydantic|input_value|\[type=|errors\.pydantic|<class "
)
"""What must never reach front-desk Notes: Python's own words."""
TARIFF = Path(__file__).parent / "demo" / "tariff.toml"
AMI_USER, AMI_SECRET = "fuzz", "fuzz-secret"
DEVICES = {"Printer": "Fuzz printer", "KeyCutter": "Fuzz encoder", "FiscalMachine": "Fuzz fiscal"}
_FINAL = ("Processed", "Error", "Cancelled")
MAX_COPIES = 5
MAX_BILL = Decimal(10_000)
MAX_CALL_CHARGE = Decimal(50)
MAX_CALL_SECONDS = 4 * 3600
_GARBAGE: list[Any] = [
    None,
    [],
    {},
    "",
    "text",
    "\ud800",
    "x\udfffy",
    "x" * 5000,
    0,
    -1,
    10**30,
    1e308,
    float("nan"),
    float("inf"),
    True,
    [1, "a", None],
    {"a": {"b": [{}]}},
    "9999-12-31T23:59:59Z",
    "2200-01-01T00:00:00Z",
    "0001-01-01T00:00:00Z",
    "1999-12-31T23:00:00Z",
    "not a date",
    "NaN",
    "1e15",
    '{"mode": "twice"}',
    "{mode: new",
]
_CDR_GARBAGE = [
    "99999999999999999999",
    "-5",
    "9999-12-31 23:59:59",
    "0001-01-01 00:00:00",
    "",
    "x" * 3000,
    "\ufffd\ufffd",
    "ANSWERED",
    "Dial",
    "00442071234567",
    "1.5",
    "nine",
]


@dataclass
class FuzzReport:
    seed: int
    rounds: int
    commands: Counter[str] = field(default_factory=Counter)
    """``Printer Processed``, ``KeyCutter Error``, … for the mangled and interleaved commands."""
    not_final: list[str] = field(default_factory=list)
    exception_notes: list[str] = field(default_factory=list)
    crashes: list[str] = field(default_factory=list)
    """Commands a driver crashed on ("failed unexpectedly"): plain words, but a driver to harden."""
    violations: list[str] = field(default_factory=list)
    """Effects beyond the limits: too many copies, a key beyond two-digit years, a large receipt, …"""
    ami_garbage: int = 0
    cdr_garbage: int = 0
    websocket_garbage: int = 0
    charges: Counter[str] = field(default_factory=Counter)
    final_checks: dict[str, str] = field(default_factory=dict)
    """The valid command per device and the valid call at the end: their outcome."""

    @property
    def ok(self) -> bool:
        return (
            not self.not_final
            and not self.exception_notes
            and not self.violations
            and all(state in ("Processed", "posted") for state in self.final_checks.values())
        )

    def lines(self) -> list[str]:
        return [
            f"seed {self.seed}, {self.rounds} rounds",
            "commands: " + ", ".join(f"{key} {count}" for key, count in sorted(self.commands.items())),
            f"garbage: {self.ami_garbage} AMI frames, {self.cdr_garbage} mangled CDRs, "
            f"{self.websocket_garbage} WebSocket frames",
            "charges: " + ", ".join(f"{key} {count}" for key, count in sorted(self.charges.items())),
            f"not final: {len(self.not_final)}, Notes with exception words: {len(self.exception_notes)}, "
            f"driver crashes: {len(self.crashes)}, effects beyond the limits: {len(self.violations)}",
            "valid work at the end: " + ", ".join(f"{k} {v}" for k, v in self.final_checks.items()),
        ]


def _paths(value: Any) -> list[tuple[Any, Any]]:
    """Every (container, key) in ``value``, so one can be replaced or removed."""
    found: list[tuple[Any, Any]] = []
    stack = [value]
    while stack:
        item = stack.pop()
        pairs = item.items() if isinstance(item, dict) else enumerate(item) if isinstance(item, list) else ()
        for key, child in pairs:
            found.append((item, key))
            stack.append(child)
    return found


def mutate(rng: random.Random, data: dict[str, Any]) -> Any:
    """``data`` with one to three fields replaced by garbage, removed or added; sometimes all garbage."""
    if rng.random() < 0.08:
        return copy.deepcopy(rng.choice(_GARBAGE))
    data = copy.deepcopy(data)
    for _ in range(rng.randint(1, 3)):
        paths = _paths(data)
        if not paths:
            break
        parent, key = rng.choice(paths)
        roll = rng.random()
        if roll < 0.15 and isinstance(parent, dict):
            del parent[key]
        elif roll < 0.25 and isinstance(parent, dict):
            parent[rng.choice(["Extra", "\ud800", "CopyCount", "mode"])] = copy.deepcopy(rng.choice(_GARBAGE))
        else:
            parent[key] = copy.deepcopy(rng.choice(_GARBAGE))
    return data


def _websocket_garbage(rng: random.Random) -> str:
    choice = rng.randrange(8)
    if choice == 0:
        return "[" * 50_000 + "]" * 50_000
    if choice == 1:
        return rng.randbytes(rng.randint(1, 300)).decode("latin-1")
    if choice == 2:
        return json.dumps({"Events": rng.choice(_GARBAGE)})
    if choice == 3:
        events = [
            {"Type": rng.choice(["DeviceCommand", "Reservation", "Resource"]), "Id": rng.choice(_GARBAGE)}
        ]
        return json.dumps({"Events": events})
    if choice == 4:
        nested: Any = {"Type": "Reservation"}
        for _ in range(200):
            nested = {"Type": "Reservation", "Inner": nested}
        return json.dumps({"Events": [nested]})
    if choice == 5:
        return json.dumps({"Events": [{"Type": "Reservation", "Id": "\ud800", "State": "Started"}]})
    if choice == 6:
        return '{"Events": [' + '"x",' * rng.randint(10, 400_000) + '"x"]}'  # sometimes over 1 MiB
    return "not json at all"


class Fuzzer:
    def __init__(self, seed: int, out: Path) -> None:
        self.rng = random.Random(seed)
        self.out = out
        self.report = FuzzReport(seed, 0)
        self.sent: dict[str, tuple[str, Any]] = {}
        """Command id → (device type, the Data sent)."""
        self.sim: MewsSimulator
        self.encoder: EncoderSimulator
        self.printer: PrinterSimulator
        self.pbx: AmiSimulator
        self.bridge: Bridge
        self.ids: dict[str, str] = {}
        self.guest = ""

    async def run(self, rounds: int) -> FuzzReport:
        self.report.rounds = rounds
        async with contextlib.AsyncExitStack() as stack:
            self.sim = await stack.enter_async_context(MewsSimulator(rate_limit=None))
            self.encoder = await stack.enter_async_context(EncoderSimulator("salto", tcp=False))
            self.printer = await stack.enter_async_context(PrinterSimulator(self.out / "receipts"))
            self.pbx = await stack.enter_async_context(
                AmiSimulator(username=AMI_USER, secret=AMI_SECRET, timezone="Europe/Vienna")
            )
            self.ids = {kind: self.sim.add_device(name, kind) for kind, name in DEVICES.items()}
            self.guest = self.sim.add_customer("Fuzz", "Guest")
            self.sim.check_in(self.sim.add_reservation(self.guest, self.sim.resource_id("101")))
            self.bridge = await stack.enter_async_context(running_bridge(self._settings(), entry_points=True))
            for managed in self.bridge.instances:
                await managed.wait_loaded()
            await wait_for(lambda: self.pbx.astdb.get("/hotel/101/outside") == "1", 10, "room 101's phone")
            template = await self.pbx.place_call("102", "00442079460000", billsec=30)  # an empty room
            for number in range(rounds):
                await self._round(number, template.pairs[2:])
            await self._settle()
            await self._final_checks()
            self._check_limits()
        return self.report

    def _settings(self) -> Any:
        options = {
            "host": "127.0.0.1",
            "port": self.pbx.port,
            "username": AMI_USER,
            "secret": AMI_SECRET,
            "service_id": self.sim.service_id("Telephone"),
            "tariff": str(TARIFF),
            "timezone": "Europe/Vienna",
            "max_call_seconds": MAX_CALL_SECONDS,
            "max_call_charge": str(MAX_CALL_CHARGE),
            "retry_max_s": 0.5,
        }
        return bridge_settings(
            self.sim,
            self.out / "state",
            devices=[
                device(
                    DEVICES["Printer"], DEVICES["Printer"], "escpos_printer", {"connection": self.printer.url}
                ),
                device(
                    DEVICES["KeyCutter"],
                    DEVICES["KeyCutter"],
                    "serial_keycutter",
                    {"port": self.encoder.port_url, "dialect": "salto", "encoder": "Encoder1"},
                ),
                device(
                    DEVICES["FiscalMachine"],
                    DEVICES["FiscalMachine"],
                    "fiscal_virtual",
                    {
                        "profile": "generic",
                        "register_id": "FUZZ-1",
                        "tax_map": {"AT-S": "A", "AT-R": "B"},
                        "max_bill_amount": str(MAX_BILL),
                    },
                ),
            ],
            services=[service("Telephone exchange", "asterisk_pbx", options)],
            mews={"requests_per_30s": 100_000, "sweep_interval_s": 2.0},
            bridge={"unknown_devices": "error", "max_parallel_devices": 4},
        )

    # -- valid work --------------------------------------------------------------------------------

    def valid_data(self, kind: str) -> dict[str, Any]:
        if kind == "Printer":
            text = f"Fuzz receipt {self.rng.randrange(10**6)}".encode()
            return {"CopyCount": 1, "FileType": "text/plain", "FileData": base64.b64encode(text).decode()}
        if kind == "KeyCutter":
            data = example_command_data("KeyCutter")
            data["LockIds"] = [self.rng.choice(["101", "102", "103"])]
            return data
        amount = self.rng.choice([12, 55.5, 120])
        items = [LineItem("Dinner", gross=amount)]
        if self.rng.random() < 0.2:  # a line Mews itself got wrong: far too large, or not a number
            items.append(LineItem("Glitch", gross=self.rng.choice([10**9, 5 * 10**6])))
        bill = self.sim.add_bill(
            self.guest, items=items, payments=[BillPayment(sum(i.gross or 0 for i in items))]
        )
        data = copy.deepcopy(self.sim.bill(bill))
        if self.rng.random() < 0.1:
            data["Id"] = "2f0c54d3-0000-4000-8000-" + f"{self.rng.randrange(16**12):012x}"  # unknown to Mews
        return {"FiscalMachineId": "fiscal-1", "Bill": data}

    def command(self, kind: str, data: Any, *, envelope: dict[str, Any] | None = None) -> str:
        command_id = self.sim.add_command(self.ids[kind], {})
        row = self.sim.commands[command_id]
        row["Data"] = data  # as Mews would return it, whatever it is
        row.update(envelope or {})
        self.sent[command_id] = (kind, data)
        return command_id

    # -- the storm ---------------------------------------------------------------------------------

    async def _round(self, number: int, cdr_template: list[tuple[str, str]]) -> None:
        rng = self.rng
        kind = rng.choice(list(DEVICES))
        envelope: dict[str, Any] = {}
        if rng.random() < 0.05:
            envelope["CreatedUtc"] = rng.choice(["yesterday", 5, None, "9999-12-31T23:59:59Z"])
        if rng.random() < 0.03:
            envelope["Device"] = rng.choice([None, "printer", {"Id": 1}])
        self.command(kind, mutate(rng, self.valid_data(kind)), envelope=envelope)
        if number % 4 == 0:
            valid = rng.choice(list(DEVICES))
            self.command(valid, self.valid_data(valid))
        if rng.random() < 0.5:
            garbage = rng.randbytes(rng.randint(1, 200)) + rng.choice([b"\r\n\r\n", b"\r\n", b""])
            self.pbx.send_raw(garbage + b"\r\n\r\n")
            self.report.ami_garbage += 1
        if rng.random() < 0.4:
            fields = dict(cdr_template) | {
                "UniqueID": f"{1_700_000_000 + number}.{rng.randrange(10**6)}",
                "Room": "101",
                "Channel": "PJSIP/101-00000abc",
            }
            pairs = [
                (key, rng.choice(_CDR_GARBAGE) if rng.random() < 0.1 else value)
                for key, value in fields.items()
            ]
            self.pbx.emit("Cdr", pairs, category="cdr")
            self.report.cdr_garbage += 1
        if rng.random() < 0.5:
            await self.sim.push_frame(_websocket_garbage(rng))
            self.report.websocket_garbage += 1
        await asyncio.sleep(rng.choice([0, 0, 0.01, 0.05]))

    async def _settle(self) -> None:
        with contextlib.suppress(AssertionError, TimeoutError):
            await wait_for(
                lambda: all(self.sim.command(cid)["State"] in _FINAL for cid in self.sent),
                30 + len(self.sent) * 0.2,
                "every command to be final",
            )
        for command_id, (kind, _) in self.sent.items():
            final = self.sim.command(command_id)
            if final["State"] not in _FINAL:
                self.report.not_final.append(f"{kind} {command_id}: {final['State']}")
                continue
            self.report.commands[f"{kind} {final['State']}"] += 1
            if final["Notes"] and EXCEPTION_WORDS.search(final["Notes"]):
                self.report.exception_notes.append(f"{kind}: {final['Notes']}")
            if final["Notes"] and "failed unexpectedly" in final["Notes"]:
                self.report.crashes.append(f"{kind} {command_id}")

    async def _final_checks(self) -> None:
        for kind in DEVICES:
            command_id = self.command(
                kind, self.valid_data(kind) if kind != "FiscalMachine" else self._clean_bill()
            )
            final = await self._final(command_id)
            self.report.final_checks[kind] = final["State"] if final else "not final"
            if final and final["State"] != "Processed":
                self.report.final_checks[kind] += f" ({final['Notes']})"
        await wait_for(self._ami_connected, 20, "the AMI connection")
        call = await self.pbx.place_call("101", "00442079460000", billsec=60)
        store = self.bridge.instances[-1].ctx.store
        key = f"charge:cdr-{call['UniqueID']}"
        charge = None
        for _ in range(500):
            charge = await store.get(key)
            if charge and charge["state"] != "pending":
                break
            await asyncio.sleep(0.02)
        self.report.final_checks["Call"] = charge["state"] if charge else "never recorded"
        for value in (await store.items("charge:")).values():
            self.report.charges[value["state"]] += 1
            if value.get("error") and EXCEPTION_WORDS.search(value["error"]):
                self.report.exception_notes.append(f"charge {value['key']}: {value['error']}")

    def _clean_bill(self) -> dict[str, Any]:
        bill = self.sim.add_bill(self.guest, items=[LineItem("Tea", gross=4)], payments=[BillPayment(4)])
        return {"FiscalMachineId": "fiscal-1", "Bill": copy.deepcopy(self.sim.bill(bill))}

    def _ami_connected(self) -> bool:
        service = self.bridge.instances[-1].instance
        ami = getattr(service, "_ami", None)
        return bool(ami is not None and ami.connected)

    async def _final(self, command_id: str) -> dict[str, Any] | None:
        with contextlib.suppress(AssertionError, TimeoutError):
            await wait_for(lambda: self.sim.command(command_id)["State"] in ("Processed", "Error"), 30)
        final = self.sim.command(command_id)
        return final if final["State"] in ("Processed", "Error") else None

    # -- what was done ------------------------------------------------------------------------------

    def _check_limits(self) -> None:
        violations = self.report.violations
        processed_copies = 0
        for command_id, (kind, data) in self.sent.items():
            if kind != "Printer" or self.sim.command(command_id)["State"] != "Processed":
                continue
            copies = data.get("CopyCount") if isinstance(data, dict) else None
            if not isinstance(copies, int) or not 1 <= copies <= MAX_COPIES:
                violations.append(f"printer command {command_id} with CopyCount {copies!r} was printed")
            else:
                processed_copies += copies
        if len(self.printer.receipts) > processed_copies:
            violations.append(f"{len(self.printer.receipts)} receipts for {processed_copies} copies asked")
        now = datetime.now(UTC).replace(tzinfo=None)
        for card in self.encoder.encoded_cards:
            writable = 2000 <= card.start.year <= 2099 and 2000 <= card.end.year <= 2099
            if not writable or card.end <= card.start or card.end < now - timedelta(days=1):
                violations.append(f"a key valid {card.start} to {card.end} was cut")
        bills = {bill["Id"] for bill in self.sim.bills}  # every bill Mews has
        fiscal = next(m for m in self.bridge.instances if m.name == DEVICES["FiscalMachine"])
        for entry in fiscal.driver.register.store.entries() if fiscal.driver.register else ():
            bill = entry.payload.get("bill") or {}
            if bill and bill.get("id") not in bills:
                violations.append(f"receipt {entry.receipt_number} signed for a bill Mews does not have")
            for totals in (entry.payload.get("totals") or {}).values():
                if abs(totals["gross"]) > MAX_BILL * 100:
                    violations.append(f"receipt {entry.receipt_number} of {totals['gross']} minor units")
        for order in self.sim.orders:
            consumed = datetime.fromisoformat(order["ConsumptionUtc"].replace("Z", "+00:00"))
            if (
                not now.replace(tzinfo=UTC) - timedelta(days=8)
                <= consumed
                <= datetime.now(UTC) + timedelta(minutes=6)
            ):
                violations.append(f"a call consumed at {order['ConsumptionUtc']} was posted")
            for item in order["Items"]:
                if Decimal(str(item["UnitAmount"].get("GrossValue") or 0)) > MAX_CALL_CHARGE:
                    violations.append(f"a call of {item['UnitAmount']} was posted")


async def run_fuzz(seed: int, rounds: int, out: Path) -> FuzzReport:
    """Run ``rounds`` rounds of the storm with ``seed``, writing state and receipts under ``out``."""
    return await Fuzzer(seed, out).run(rounds)

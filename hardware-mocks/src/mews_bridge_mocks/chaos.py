"""A seeded chaos run: a real bridge process with all four plugins against the simulators while Mews
loses answers, fails in bursts and throttles, sockets drop, Asterisk's AMI drops and the bridge is
killed with SIGKILL and started again. Afterwards it counts what must never happen.

The suite runs it small (``tests/test_chaos.py``); ``bench/chaos.py`` runs it longer and prints the
counts. Everything random comes from one seed, so a failing run can be replayed.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import random
import re
import signal
import sqlite3
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from mews_bridge.bridge import instance_state_dir
from mews_bridge.testing import bridge_settings, service, write_settings_file

from .ami import AmiSimulator
from .bridge_process import BridgeProcess
from .demo.scenario import AMI_SECRET, AMI_USER, front_desk, telephone_options
from .escpos.samples import registration_card_pdf
from .escpos.simulator import PrinterSimulator
from .keycutter import EncoderSimulator
from .mews import BillPayment, LineItem, MewsSimulator

FINAL = ("Processed", "Error", "Cancelled")
EXCEPTION_WORDS = re.compile(r"Traceback|Exception|[a-z]Error\b|\bNone\b")
KEY_ROOMS = ("201", "202", "203", "301", "302")
CALL_ROOMS = {
    "101": ("Huber", "Anna", ()),
    "102": ("Gruber", "Franz", ("Cashlist",)),
    "103": ("Novak", "Jiri", ()),
}
NO_POST_ROOM = "102"
JOURNALED_WITHIN_S = 5.0
"""Before a kill or an AMI drop, every CDR sent must be in the bridge's journal (or this long must pass).
A CDR on the wire when Asterisk's link dies is gone (Asterisk keeps it in its own CDR store, not for
the AMI client): that loss is Asterisk's, not what is measured."""


@dataclass
class ChaosReport:
    """What happened and what went wrong; every ``duplicate_``/``missing_``/``not_`` count must be 0."""

    seed: int
    steps: int
    elapsed_s: float = 0.0
    actions: Counter[str] = field(default_factory=Counter)
    lost_answers: Counter[str] = field(default_factory=Counter)
    commands: int = 0
    final_states: Counter[str] = field(default_factory=Counter)
    not_final: list[str] = field(default_factory=list)
    notes_missing_or_technical: list[str] = field(default_factory=list)
    new_keys: int = 0
    duplicate_new_keys: int = 0
    receipts: int = 0
    duplicate_receipts: int = 0
    calls: int = 0
    charges_posted: int = 0
    duplicate_charges: int = 0
    missing_charges: int = 0
    posted_for_no_post: int = 0

    @property
    def faults(self) -> dict[str, int]:
        """Every count that must be zero."""
        return {
            "commands not final": len(self.not_final),
            "Error Notes missing or technical": len(self.notes_missing_or_technical),
            "duplicate new keys": self.duplicate_new_keys,
            "duplicate fiscal receipts": self.duplicate_receipts,
            "duplicate charges": self.duplicate_charges,
            "missing charges": self.missing_charges,
            "posted for No Post guests": self.posted_for_no_post,
        }

    def lines(self) -> list[str]:
        return [
            f"seed {self.seed}, {self.steps} steps, {self.elapsed_s:.1f} s",
            "injected: " + ", ".join(f"{k} {v}" for k, v in sorted(self.actions.items())),
            "lost answers: " + ", ".join(f"{k} {v}" for k, v in sorted(self.lost_answers.items())),
            f"commands: {self.commands} ("
            + ", ".join(f"{k} {v}" for k, v in sorted(self.final_states.items()))
            + f"); new keys {self.new_keys}, fiscal receipts {self.receipts}; "
            f"calls {self.calls}, charges posted {self.charges_posted}",
            "must be 0: " + ", ".join(f"{k} {v}" for k, v in self.faults.items()),
        ]


async def _until(predicate: Callable[[], Any], timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while not predicate():
        if time.monotonic() > deadline:
            raise TimeoutError(f"chaos: {what} did not happen within {timeout_s:g} s")
        await asyncio.sleep(0.05)


class _Run:
    def __init__(self, seed: int, steps: int, workdir: Path, step_s: float) -> None:
        self.rng = random.Random(seed)
        self.report = ChaosReport(seed, steps)
        workdir.mkdir(parents=True, exist_ok=True)
        self.workdir = workdir
        self.step_s = step_s
        self.command_ids: list[str] = []
        self.call_keys: dict[str, str] = {}
        """ExternalIdentifier → room of every billable call placed."""
        self.pdf = base64.b64encode(registration_card_pdf(1)).decode()

    async def run(self) -> ChaosReport:
        started = time.monotonic()
        async with contextlib.AsyncExitStack() as stack:
            # Mews' own window is off: each restart starts a fresh budget, and a burst of restarts would
            # otherwise spend most of the run waiting out Retry-After (429 storms are injected instead).
            self.hotel = await stack.enter_async_context(MewsSimulator(rate_limit=None))
            self.printer = await stack.enter_async_context(PrinterSimulator(self.workdir / "receipts"))
            self.encoder = await stack.enter_async_context(EncoderSimulator("salto", pty=False))
            self.pbx = await stack.enter_async_context(
                AmiSimulator(username=AMI_USER, secret=AMI_SECRET, timezone="Europe/Vienna")
            )
            self.hotel.faults.rng.seed(self.rng.random())
            self._world()
            self.bridge = BridgeProcess(self._config(), self.workdir / "bridge.log")
            try:
                await self.bridge.start()
                await self._bridge_ready(timeout_s=30)
                for operation in ("orders/add", "commands/update"):
                    self.hotel.faults.lose_responses(operation, self.rng.uniform(0.2, 0.3), delay_s=1.5)
                for _ in range(self.report.steps):
                    await self._step()
                    await asyncio.sleep(self.step_s * self.rng.uniform(0.5, 1.5))
                if not self.bridge.running:
                    await self.bridge.start()
                self.report.lost_answers.update(op for op, _ in self.hotel.faults.lost_responses)
                self.hotel.faults.clear()
                await self._converged(timeout_s=40)
            finally:
                if self.bridge.running:
                    await self.bridge.stop()
            self._count()
        self.report.elapsed_s = time.monotonic() - started
        return self.report

    def _world(self) -> None:
        hotel = self.hotel
        self.printer_id = hotel.add_device("Reception printer", "Printer")
        self.encoder_id = hotel.add_device("Reception encoder", "KeyCutter")
        self.fiscal_id = hotel.add_device("Fiscal machine", "FiscalMachine")
        for room, (last, first, classes) in CALL_ROOMS.items():
            guest = hotel.add_customer(last, first, classifications=classes)
            hotel.add_reservation(guest, hotel.resource_id(room), "Started")

    def _config(self) -> Path:
        pbx = telephone_options(self.hotel, self.pbx.port) | {"retry_max_s": 0.3}
        settings = bridge_settings(
            self.hotel,
            self.workdir / "state",
            devices=front_desk(self.printer.url, self.encoder.tcp_url),
            services=[service("Telephone exchange", "asterisk_pbx", pbx)],
            # Short timeouts: an answer delayed past 1 s is a lost one; a sweep every 2 s.
            mews={"request_timeout_s": 1.0, "max_retry_s": 0.3, "sweep_interval_s": 2},
            bridge={"shutdown_grace_s": 1},
        )
        return write_settings_file(settings, self.workdir / "config.toml")

    def _phones_ready(self) -> bool:
        return self.pbx.listeners("cdr") > 0 and self.pbx.astdb.get("/hotel/101/outside") == "1"

    async def _bridge_ready(self, timeout_s: float) -> None:
        await _until(
            lambda: self.hotel.websocket_connections > 0 and self._phones_ready(),
            timeout_s,
            "the bridge start",
        )

    # -- one step: work or a fault ---------------------------------------------------------------

    async def _step(self) -> None:
        actions: dict[str, tuple[int, Callable[[], Any]]] = {
            "print": (3, self._print),
            "key": (3, self._key),
            "fiscal": (3, self._fiscal),
            "call": (12, self._call),
            "5xx burst": (1, self._burst),
            "429 storm": (1, self._storm),
            "websocket drop": (1, self._websocket_drop),
            "AMI drop": (1, self._ami_drop),
            "kill -9": (2, self._kill),
        }
        if not self.bridge.running:
            await self.bridge.start()
            self.report.actions["restart"] += 1
        name = self.rng.choices(list(actions), weights=[w for w, _ in actions.values()])[0]
        if await actions[name][1]() is not False:
            self.report.actions[name] += 1

    async def _print(self) -> None:
        self.command_ids.append(self.hotel.add_printer_command(self.printer_id, self.pdf))

    async def _key(self) -> None:
        n = len(self.command_ids)
        guest = self.hotel.add_customer(f"Guest{n}", "Key")
        # A start of its own, so that each command's card can be told apart at the encoder.
        start = datetime.now(UTC).replace(minute=0, second=0, microsecond=0) - timedelta(hours=n + 1)
        room = self.hotel.resource_id(self.rng.choice(KEY_ROOMS))
        reservation = self.hotel.add_reservation(
            guest, room, start_utc=start, end_utc=start + timedelta(days=9)
        )
        self.command_ids.append(self.hotel.add_key_cutter_command(self.encoder_id, reservation))

    async def _fiscal(self) -> None:
        n = len(self.command_ids)
        guest = self.hotel.add_customer(f"Guest{n}", "Bill")
        amount = 50 + n
        bill = self.hotel.add_bill(
            guest, items=[LineItem("Accommodation", gross=amount)], payments=[BillPayment(amount)]
        )
        self.command_ids.append(self.hotel.add_fiscal_command(self.fiscal_id, bill))

    async def _call(self) -> bool:
        # Only while the bridge holds its AMI link, and not in the second after it (re)connected.
        if not (self.bridge.running and self._phones_ready()):
            return False
        if time.monotonic() - self.bridge.started_at < 1.0:
            return False
        room = self.rng.choice(list(CALL_ROOMS))
        event = await self.pbx.place_call(room, "00442079460000", billsec=self.rng.randint(20, 400))
        self.call_keys[f"cdr-{event['UniqueID']}"] = room
        return True

    async def _burst(self) -> None:
        self.hotel.faults.error_status = self.rng.choice((500, 502, 503, 504))
        self.hotel.faults.error_ratio = 0.5
        asyncio.get_running_loop().call_later(1.0, setattr, self.hotel.faults, "error_ratio", 0.0)

    async def _storm(self) -> None:
        self.hotel.faults.rate_limit_storm(0.5)

    async def _websocket_drop(self) -> None:
        await self.hotel.faults.drop_websockets(abrupt=self.rng.random() < 0.5)

    async def _quiet(self) -> None:
        """Wait until the bridge has journaled every CDR it was sent."""
        with contextlib.suppress(TimeoutError):  # a CDR the bridge lost shows as a missing charge
            await _until(lambda: set(self.call_keys) <= self._journaled_charges(), JOURNALED_WITHIN_S, "")

    def _journaled_charges(self) -> set[str]:
        path = self.workdir / "state" / "journal.sqlite3"
        try:
            with contextlib.closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True)) as db:
                rows = db.execute("SELECT key FROM kv WHERE key LIKE 'charge:%'").fetchall()
        except sqlite3.Error:  # not created yet, or busy: ask again
            return set()
        return {key.removeprefix("charge:") for (key,) in rows}

    async def _ami_drop(self) -> None:
        await self._quiet()
        self.pbx.drop_connections()

    async def _kill(self) -> bool:
        if not self.bridge.running:
            return False
        await self._quiet()
        await asyncio.sleep(self.rng.uniform(0, self.step_s))  # a random moment
        await self.bridge.stop(signal.SIGKILL)
        await asyncio.sleep(self.rng.uniform(0.1, 0.6))
        await self.bridge.start()
        return True

    # -- the end ---------------------------------------------------------------------------------

    def _settled(self) -> bool:
        posted = {o["Items"][0].get("ExternalIdentifier") for o in self.hotel.orders}
        billable = {key for key, room in self.call_keys.items() if room != NO_POST_ROOM}
        commands_final = all(self.hotel.command(c)["State"] in FINAL for c in self.command_ids)
        return commands_final and billable <= posted

    async def _converged(self, timeout_s: float) -> None:
        with contextlib.suppress(TimeoutError):  # what is left over is counted, not hidden
            await _until(self._settled, timeout_s, "convergence")
        await asyncio.sleep(1.0)  # anything still in flight lands (and would show as a duplicate)

    def _count(self) -> None:
        report, hotel = self.report, self.hotel
        report.commands = len(self.command_ids)
        for command_id in self.command_ids:
            command = hotel.command(command_id)
            state, notes = command["State"], command.get("Notes") or ""
            report.final_states[state] += 1
            if state not in FINAL:
                report.not_final.append(command_id)
            elif state == "Error" and (not notes or EXCEPTION_WORDS.search(notes)):
                report.notes_missing_or_technical.append(f"{command_id}: {notes!r}")
        new_cards = Counter(
            (card.rooms, card.start, card.end) for card in self.encoder.encoded_cards if card.mode == "new"
        )
        report.new_keys = sum(new_cards.values())
        report.duplicate_new_keys = sum(count - 1 for count in new_cards.values())
        receipts = self._receipts_by_bill()
        report.receipts = sum(receipts.values())
        report.duplicate_receipts = sum(count - 1 for count in receipts.values())
        orders = Counter(o["Items"][0].get("ExternalIdentifier") for o in hotel.orders)
        report.calls = len(self.call_keys)
        report.charges_posted = sum(orders.values())
        report.duplicate_charges = sum(count - 1 for count in orders.values())
        report.missing_charges = sum(
            1 for key, room in self.call_keys.items() if room != NO_POST_ROOM and key not in orders
        )
        report.posted_for_no_post = sum(
            1 for key, room in self.call_keys.items() if room == NO_POST_ROOM and key in orders
        )

    def _receipts_by_bill(self) -> Counter[str]:
        path = instance_state_dir(self.workdir / "state", "Fiscal machine") / "fiscal-journal.sqlite3"
        if not path.exists():
            return Counter()
        with contextlib.closing(sqlite3.connect(path)) as db:
            rows = db.execute(
                "SELECT source_bill_id FROM fiscal_entries WHERE receipt_counter IS NOT NULL "
                "AND source_bill_id IS NOT NULL"
            ).fetchall()
        return Counter(bill_id for (bill_id,) in rows)


async def run_chaos(seed: int, steps: int, workdir: Path, *, step_s: float = 0.25) -> ChaosReport:
    """Run ``steps`` random steps (work or a fault) about ``step_s`` apart, then let everything
    settle, and count. ``workdir`` receives the bridge's state, its log and the printed receipts."""
    return await _Run(seed, steps, workdir, step_s).run()

"""The demo's story: simulators up, a bridge wired to them, commands played and narrated, a summary."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import logging
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import click

from mews_bridge.bridge import instance_state_dir
from mews_bridge.testing import bridge_settings, device, running_bridge, wait_for_final_state

from ..escpos.samples import registration_card_pdf
from ..escpos.simulator import PrinterSimulator
from ..keycutter import EncoderSimulator
from ..mews import BillPayment, LineItem, MewsSimulator

FISCAL_OPTIONS = {
    "profile": "rksv",
    "register_id": "DEMO-1",
    "key_id": "U:ATU12345678-DEMO",
    "tax_map": {"AT-S": "Normal", "AT-R": "Erm1"},
    "receipt_printer": "Reception printer",
}


@dataclass
class Row:
    what: str
    device: str
    state: str
    notes: str


class Demo:
    def __init__(self, out: Path) -> None:
        self.out = out
        self.rows: list[Row] = []
        self.written: list[Path] = []
        self.sim: MewsSimulator
        self.encoder: EncoderSimulator
        self.printer: PrinterSimulator

    def say(self, text: str) -> None:
        click.echo(click.style("▸ ", fg="cyan") + text)

    async def command(self, what: str, device_name: str, command_id: str) -> dict[str, Any]:
        final = await wait_for_final_state(self.sim, command_id, timeout_s=30)
        self.rows.append(Row(what, device_name, final["State"], final.get("Notes") or ""))
        colour = "green" if final["State"] == "Processed" else "red"
        click.echo(f"    {click.style(final['State'], fg=colour)}: {final.get('Notes') or ''}")
        return final

    async def run(self, keep_running: bool) -> int:
        async with contextlib.AsyncExitStack() as stack:
            self.sim = await stack.enter_async_context(MewsSimulator())
            self.encoder = await stack.enter_async_context(EncoderSimulator("salto", tcp=False))
            self.printer = await stack.enter_async_context(PrinterSimulator(self.out / "receipts"))
            self.say(f"Mews simulator on {self.sim.platform_url}")
            self.say(f"ESC/POS printer on {self.printer.url}; SALTO encoder on {self.encoder.port_url}")
            printer_id = self.sim.add_device("Reception printer", "Printer")
            encoder_id = self.sim.add_device("Reception encoder", "KeyCutter")
            fiscal_id = self.sim.add_device("Fiscal machine", "FiscalMachine")
            settings = bridge_settings(
                self.sim,
                self.out / "state",
                devices=[
                    device(
                        "Reception printer",
                        "Reception printer",
                        "escpos_printer",
                        {"connection": self.printer.url},
                    ),
                    device(
                        "Reception encoder",
                        "Reception encoder",
                        "serial_keycutter",
                        {"port": self.encoder.port_url, "dialect": "salto", "encoder": "Encoder1"},
                    ),
                    device("Fiscal machine", "Fiscal machine", "fiscal_virtual", FISCAL_OPTIONS),
                ],
            )
            bridge = await stack.enter_async_context(running_bridge(settings, entry_points=True))
            self.say(
                f"Bridge connected with {len(bridge.instances)} devices; journal in {self.out / 'state'}"
            )
            await self.registration_card(printer_id)
            await self.keys(encoder_id)
            await self.outage(encoder_id)
            await self.bill(fiscal_id)
            self.summary()
            if keep_running:
                self.say("Everything stays up; press Ctrl-C to stop.")
                with contextlib.suppress(asyncio.CancelledError):
                    await asyncio.Event().wait()
        return 0 if all(row.state == "Processed" for row in self.rows) else 1

    async def registration_card(self, printer_id: str) -> None:
        self.say(
            "Reception prints Anna Novak's registration card (a two-page A4 PDF) on the receipt printer."
        )
        pdf = base64.b64encode(registration_card_pdf(2, guest="Anna Novak")).decode()
        await self.command(
            "Registration card", "Reception printer", self.sim.add_printer_command(printer_id, pdf)
        )
        for receipt in self.printer.receipts:
            self.written.append(receipt.png_path)
        self.say(
            f"The printer cut {len(self.printer.receipts)} receipt(s); the picture is {self.written[-1]}"
        )

    async def bill(self, fiscal_id: str) -> None:
        guest = self.sim.add_customer("Novak", "Anna")
        bill_id = self.sim.add_bill(
            guest,
            items=[
                LineItem("Accommodation", gross=180),
                LineItem("Breakfast", gross=22, tax_codes=("AT-R",)),
            ],
            payments=[BillPayment(202)],
        )
        self.say("Anna pays her bill (EUR 202.00); Mews sends it to the fiscal machine.")
        await self.command(
            "Fiscalise bill", "Fiscal machine", self.sim.add_fiscal_command(fiscal_id, bill_id)
        )
        export = self.out / "fiscal-export.zip"
        state = instance_state_dir(self.out / "state", "Fiscal machine")
        await self.cli("fiscal", "export", "--state-dir", str(state), "--output", str(export))
        self.written.append(export)
        verified = await self.cli("fiscal", "verify", str(export))
        self.say(
            f"The export verifies offline: {verified.strip().splitlines()[-1] if verified.strip() else 'ok'}"
        )

    async def cli(self, *args: str) -> str:
        """Run ``mews-bridge ARGS`` as an installer would; its output, or an error."""
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "mews_bridge",
            *args,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
        )
        out, _ = await process.communicate()
        if process.returncode:
            raise RuntimeError(f"mews-bridge {' '.join(args)} failed: {out.decode()}")
        return out.decode()

    async def keys(self, encoder_id: str) -> None:
        guest = self.sim.add_customer("Novak", "Anna")
        room = self.sim.resource_id("101")
        reservation = self.sim.add_reservation(guest, room)
        self.say("Anna Novak arrives for room 101; reception asks Mews for two keys.")
        await self.command(
            "2 keys, room 101",
            "Reception encoder",
            self.sim.add_key_cutter_command(encoder_id, reservation, 2),
        )
        self.say("In the evening she asks for a third key: a copy, so her first cards keep working.")
        await self.command(
            "1 more key, room 101",
            "Reception encoder",
            self.sim.add_key_cutter_command(encoder_id, reservation, 1),
        )
        valid = self.encoder.valid_cards("101")
        self.say(
            f"The encoder made {len(self.encoder.encoded_cards)} cards for room 101; {len(valid)} open the door."
        )

    async def outage(self, encoder_id: str) -> None:
        guest = self.sim.add_customer("Keller", "Tom")
        reservation = self.sim.add_reservation(guest, self.sim.resource_id("102"))
        self.say("Mews has an outage: every request fails for a moment while a key for room 102 is cut.")
        self.sim.faults.error_ratio = 1.0
        command_id = self.sim.add_key_cutter_command(encoder_id, reservation, 1)
        await asyncio.sleep(1.5)
        self.sim.faults.error_ratio = 0.0
        self.say("Mews is back; the bridge delivers what it kept.")
        await self.command("1 key, room 102, during an outage", "Reception encoder", command_id)

    def summary(self) -> None:
        click.echo()
        widths = [
            max(len(getattr(r, f)) for r in [Row("Command", "Device", "State", "Notes"), *self.rows])
            for f in ("what", "device", "state")
        ]
        header = Row("Command", "Device", "State", "Notes")
        for row in [header, *self.rows]:
            click.echo(
                f"{row.what:<{widths[0]}}  {row.device:<{widths[1]}}  {row.state:<{widths[2]}}  {row.notes}"
            )
        click.echo(f"\nWritten to {self.out}:")
        for path in [*(receipt.png_path for receipt in self.printer.receipts), *self.written]:
            click.echo(f"  {path}")


def run_demo(out: str | None, keep_running: bool) -> int:
    target = Path(out) if out else Path(tempfile.mkdtemp(prefix="mews-bridge-demo-"))
    target.mkdir(parents=True, exist_ok=True)
    # The story is told by the narration; the bridge's own log stays for warnings.
    logging.getLogger("mews_bridge").setLevel(logging.WARNING)
    logging.getLogger("mews_bridge_mocks").setLevel(logging.WARNING)
    return asyncio.run(Demo(target).run(keep_running))

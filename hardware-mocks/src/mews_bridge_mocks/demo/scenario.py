"""The demo's story: simulators up, a bridge wired to them, commands played and narrated, a summary."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import logging
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import click

from mews_bridge.bridge import Bridge, instance_state_dir
from mews_bridge.testing import (
    bridge_settings,
    device,
    run_cli,
    running_bridge,
    service,
    wait_for,
    wait_for_final_state,
)

from ..ami import AmiSimulator
from ..escpos.samples import registration_card_pdf
from ..escpos.simulator import PrinterSimulator
from ..ipp.simulator import IppPrinterSimulator
from ..keycutter import EncoderSimulator
from ..mews import BillPayment, LineItem, MewsSimulator

TARIFF = Path(__file__).with_name("tariff.toml")
AMI_USER, AMI_SECRET = "mewsbridge", "demo-secret"
FISCAL_OPTIONS = {
    "profile": "rksv",
    "register_id": "DEMO-1",
    "key_id": "U:ATU12345678-DEMO",
    "tax_map": {"AT-S": "Normal", "AT-R": "Erm1"},
    "receipt_printer": "Reception printer",
}


def front_desk(printer_url: str, encoder_port: str) -> list[dict[str, Any]]:
    """``[[devices]]`` of a front desk: a receipt printer, a SALTO encoder and a fiscal machine."""
    return [
        device("Reception printer", "Reception printer", "escpos_printer", {"connection": printer_url}),
        device(
            "Reception encoder",
            "Reception encoder",
            "serial_keycutter",
            {"port": encoder_port, "dialect": "salto", "encoder": "Encoder1"},
        ),
        device("Fiscal machine", "Fiscal machine", "fiscal_virtual", FISCAL_OPTIONS),
    ]


MINIBAR_ARTICLE = "12"
MINIBAR_PRODUCT = "Mineral water 0.5 l"


def telephone_options(sim: MewsSimulator, ami_port: int) -> dict[str, Any]:
    """Options of an asterisk_pbx service on the AMI simulator, charging under the sample tariff;
    minibar article 12 is a product of the Telephone service (added to the simulator if missing)."""
    telephone = sim.service_id("Telephone")
    water = next(
        (
            p["Id"]
            for p in sim.products
            if p["ServiceId"] == telephone and p["Names"]["en-US"] == MINIBAR_PRODUCT
        ),
        None,
    ) or sim.add_product(telephone, MINIBAR_PRODUCT, 3.5, ("AT-R",))
    categories = {
        call_class: sim.accounting_category_id(f"Telephone {call_class}")
        for call_class in ("local", "national", "mobile", "international", "premium")
    }
    return {
        "host": "127.0.0.1",
        "port": ami_port,
        "username": AMI_USER,
        "secret": AMI_SECRET,
        "service_id": sim.service_id("Telephone"),
        "tariff": str(TARIFF),
        "rooms": "{room}",
        "timezone": "Europe/Vienna",
        "accounting_categories": categories,
        "products": {MINIBAR_ARTICLE: water},
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
        self.office: IppPrinterSimulator
        self.pbx: AmiSimulator
        self.bridge: Bridge

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
            self.office = await stack.enter_async_context(IppPrinterSimulator(self.out / "a4-printer"))
            self.pbx = await stack.enter_async_context(
                AmiSimulator(username=AMI_USER, secret=AMI_SECRET, timezone="Europe/Vienna")
            )
            self.say(f"Mews simulator on {self.sim.platform_url}")
            self.say(f"ESC/POS printer on {self.printer.url}; SALTO encoder on {self.encoder.port_url}")
            self.say(
                f"Asterisk AMI on 127.0.0.1:{self.pbx.port}; A4 office printer (IPP) on {self.office.uri}"
            )
            self.sim.add_device("Reception printer", "Printer")
            office_id = self.sim.add_device("Office printer", "Printer")
            encoder_id = self.sim.add_device("Reception encoder", "KeyCutter")
            fiscal_id = self.sim.add_device("Fiscal machine", "FiscalMachine")
            settings = bridge_settings(
                self.sim,
                self.out / "state",
                devices=[
                    *front_desk(self.printer.url, self.encoder.port_url),
                    device("Office printer", "Office printer", "ipp_printer", {"uri": self.office.uri}),
                ],
                services=[
                    service("Telephone exchange", "asterisk_pbx", telephone_options(self.sim, self.pbx.port))
                ],
            )
            self.bridge = await stack.enter_async_context(running_bridge(settings, entry_points=True))
            for managed in self.bridge.instances:
                await managed.wait_loaded()
            self.say(f"Bridge connected: {len(self.bridge.instances)} devices and services ready")
            if self.bridge.http is not None and self.bridge.http.url:
                self.say(f"Its status page: {self.bridge.http.url}/ (metrics at /metrics)")
            (start,) = await self.printer.wait_for_receipts(1, within_s=30)
            self.say(f"The new fiscal machine printed its start receipt (Startbeleg): {start.png_path}")
            await self.registration_card(office_id)
            await self.keys(encoder_id)
            await self.outage(encoder_id)
            await self.bill(fiscal_id)
            await self.phones()
            self.summary()
            if keep_running:
                self.say("Everything stays up; press Ctrl-C to stop.")
                with contextlib.suppress(asyncio.CancelledError):
                    await asyncio.Event().wait()
        expected = {"Call from room 202 (No Post)": "Refused"}
        return 0 if all(row.state == expected.get(row.what, "Processed") for row in self.rows) else 1

    async def registration_card(self, printer_id: str) -> None:
        self.say(
            "Reception prints Anna Novak's registration card (a two-page A4 PDF) on the A4 office printer."
        )
        pdf = base64.b64encode(registration_card_pdf(2, guest="Anna Novak")).decode()
        await self.command(
            "Registration card", "Office printer", self.sim.add_printer_command(printer_id, pdf)
        )
        job = self.office.jobs[-1]
        self.say(f"The A4 printer printed {job.pages} pages; its first page is {job.png_path}")

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
        self.say(f"Anna's receipt, with its QR code: {self.printer.receipts[-1].png_path}")
        export = self.out / "fiscal-export.zip"
        state = instance_state_dir(self.out / "state", "Fiscal machine")
        await self.cli("fiscal", "export", "--state-dir", str(state), "--output", str(export))
        self.written.append(export)
        verified = await self.cli("fiscal", "verify", str(export))
        self.say(
            f"The export verifies offline: {verified.strip().splitlines()[0] if verified.strip() else 'ok'}"
        )

    def phone(self, room: str) -> dict[str, str]:
        prefix = f"/hotel/{room}/"
        return {
            key.removeprefix(prefix): value for key, value in self.pbx.astdb.items() if key.startswith(prefix)
        }

    async def call(self, what: str, room: str, number: str, seconds: int) -> dict[str, Any]:
        """Place a call from ``room`` and wait until the bridge has settled its charge."""
        event = await self.pbx.place_call(room, number, billsec=seconds, duration=seconds + 8)
        store = self.bridge.instances[-1].ctx.store
        key = f"charge:cdr-{event['UniqueID']}"

        async def settled() -> dict[str, Any] | None:
            charge = await store.get(key)
            return charge if charge and charge["state"] != "pending" else None

        charge: dict[str, Any] | None = None
        for _ in range(1000):
            if charge := await settled():
                break
            await asyncio.sleep(0.02)
        assert charge is not None, f"the call from {room} was never settled"
        state = {"posted": "Processed", "refused": "Refused"}.get(charge["state"], charge["state"])
        notes = f"{charge['item']}: {charge['currency']} {charge['amount']}"
        if charge["state"] == "posted":
            notes += f" on {charge['guest']}'s bill"
        elif charge.get("error"):
            notes += f", not charged: {charge['error']}"
        self.rows.append(Row(what, "Telephone exchange", state, notes))
        colour = "green" if state == "Processed" else "yellow"
        click.echo(f"    {click.style(state, fg=colour)}: {notes}")
        return charge

    async def phones(self) -> None:
        guest = self.sim.add_customer("Horak", "Jana", language_code="cs-CZ")
        reservation = self.sim.add_reservation(guest, self.sim.resource_id("201"))
        self.say("Jana Horak checks in to room 201: her phone gets an outside line and her name.")
        self.sim.check_in(reservation)
        await wait_for(lambda: self.phone("201").get("outside") == "1", 10, "room 201's outside line")
        self.say(f"    AstDB hotel/201: {self.phone('201')}")
        self.say("She calls London for 3 min 12 s; the charge goes to her bill in Mews.")
        await self.call("Call from room 201", "201", "00442079460000", 192)
        order = self.sim.orders[-1]
        item, amount = order["Items"][0], order["Items"][0]["Amount"]
        self.say(
            f"    Mews order item: {item['BillingName']}, {amount['Currency']} {amount['GrossValue']} gross, "
            f"linked to reservation {order['LinkedReservationId']}"
        )
        await self.minibar("201")
        await self.wakeup("201")
        no_post = self.sim.add_customer("Weber", "Karl", classifications=("Cashlist",))
        self.sim.check_in(self.sim.add_reservation(no_post, self.sim.resource_id("202")))
        await wait_for(lambda: self.phone("202").get("outside") == "1", 10, "room 202's outside line")
        self.say("Karl Weber in room 202 is a No Post guest; his call must not reach his bill.")
        await self.call("Call from room 202 (No Post)", "202", "00436641234567", 45)
        self.say("Jana checks out: her phone closes and her name is cleared.")
        self.sim.check_out(reservation)
        await wait_for(lambda: self.phone("201") == {"outside": "0"}, 10, "room 201 to be cleared")
        self.say(f"    AstDB hotel/201: {self.phone('201')}")

    async def minibar(self, room: str) -> None:
        code = f"*51*{MINIBAR_ARTICLE}*2"
        self.say(
            f"She takes two bottles of water from the minibar and dials {code} on the phone in room {room}."
        )
        answer = await self.pbx.dial_code(room, code)
        self.say(f"    The bridge answers the dialplan: {answer!r}; she hears a confirmation.")
        charges = await self.bridge.instances[-1].ctx.store.items("charge:item-")
        [charge] = [c for c in charges.values() if c["room"] == room]
        order = self.sim.orders[-1]
        notes = (
            f"{charge['item']}: {charge['currency']} {charge['amount']}, {charge['state']} as a product order "
            f"(Mews item {order['Items'][0]['Type']}, {order['Items'][0]['UnitCount']} units)"
        )
        state = "Processed" if charge["state"] == "posted" else charge["state"]
        self.rows.append(Row(f"Minibar from room {room}", "Telephone exchange", state, notes))
        click.echo(f"    {click.style(state, fg='green' if state == 'Processed' else 'yellow')}: {notes}")

    async def wakeup(self, room: str) -> None:
        self.say(f"In the evening she dials *55*0700 on the phone in room {room} for a wake-up call.")
        answer = await self.pbx.dial_code(room, "*55*0700")
        self.say(f"    The bridge answers the dialplan: {answer!r}; she hears a confirmation.")
        wakeups = self.bridge.instances[-1].instance._wakeups
        [record] = [r for r in wakeups.records if r.room == room]
        self.say("The night passes (the demo moves the bridge's clock to 07:00): the bridge rings her phone.")
        wakeups.clock = lambda: record.due_utc
        wakeups.poke()
        await wait_for(lambda: record.state == "answered" or wakeups.records == [], 10, "the wake-up call")
        [call] = self.pbx.originates[-1:]
        language = next((v.split("=")[1] for v in call.get_all("Variable") if v.startswith("CHANNEL(")), "en")
        notes = f"Originate to {call['Channel']} at {record.time}, prompt in '{language}': {record.state}"
        self.rows.append(Row(f"Wake-up call, room {room}", "Telephone exchange", "Processed", notes))
        click.echo(f"    {click.style(record.state, fg='green')}: {notes}")

    async def cli(self, *args: str) -> str:
        """Run ``mews-bridge ARGS`` as an installer would; its output, or an error."""
        result = await run_cli(*args)
        if result.code:
            raise RuntimeError(f"mews-bridge {' '.join(args)} failed: {result.out}{result.err}")
        return result.out

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
        pages = [job.png_path for job in self.office.jobs if job.png_path]
        for path in [*pages, *(receipt.png_path for receipt in self.printer.receipts), *self.written]:
            click.echo(f"  {path}")


def run_demo(out: str | None, keep_running: bool) -> int:
    target = Path(out) if out else Path(tempfile.mkdtemp(prefix="mews-bridge-demo-"))
    target.mkdir(parents=True, exist_ok=True)
    # The story is told by the narration; the bridge's own log stays for warnings.
    logging.getLogger("mews_bridge").setLevel(logging.WARNING)
    logging.getLogger("mews_bridge_mocks").setLevel(logging.WARNING)
    return asyncio.run(Demo(target).run(keep_running))

"""Issue 6 acceptance: Mews ``FiscalMachine`` commands through a real bridge, which finds the fiscal and
printer plugins by their entry points, with the Mews and printer simulators over real sockets; checked on
what Mews recorded, the fiscal journal, the receipts the printer cut and the command line's export."""

from __future__ import annotations

import base64
import contextlib
import json
import re
import uuid
import zipfile

import pytest
import zxingcpp

from mews_bridge.bridge import instance_state_dir
from mews_bridge.testing import (
    bridge_settings,
    device,
    run_cli,
    running_bridge,
    wait_for,
    wait_for_final_state,
    write_settings_file,
)
from mews_bridge_escpos_printer.driver import EscposPrinterDriver
from mews_bridge_fiscal_virtual.driver import FiscalVirtualDriver
from mews_bridge_fiscal_virtual.profiles.base import qr_string, short_code
from mews_bridge_fiscal_virtual.register import FiscalRegister
from mews_bridge_mocks.escpos import PrinterSimulator
from mews_bridge_mocks.escpos.samples import registration_card_pdf
from mews_bridge_mocks.mews import BillPayment, LineItem

FISCAL = "Fiscal"
FISCAL_MEWS = "Fiscal machine"
PRINTER = "Receipt printer"
PRINTER_MEWS = "Reception receipt printer"
FISCAL_OPTIONS = {
    "profile": "rksv",
    "register_id": "AT-REG1",
    "key_id": "U:ATU12345678-K1",
    "tax_map": {"AT-S": "Normal", "AT-R": "Erm1"},
    "receipt_printer": PRINTER,
}
NOTES = re.compile(r"^Receipt (AT-REG1-\d+) · code ([A-Za-z0-9_-]{11})")


# -- set-up ---------------------------------------------------------------------------------------


@pytest.fixture
def printer_options() -> dict:
    """Options of the receipt printer beyond its connection; a test parametrizes it to change them."""
    return {}


@pytest.fixture
def fiscal_id(bridge_harness, printer_simulator, printer_options):
    """The fiscal machine and its receipt printer, in Mews and in the settings; the fiscal machine's Id."""
    printer = {"connection": printer_simulator.url, "profile": "TM-T20II", **printer_options}
    bridge_harness.add_device(PRINTER, EscposPrinterDriver, printer, mews_name=PRINTER_MEWS)
    return bridge_harness.add_device(
        FISCAL, FiscalVirtualDriver, FISCAL_OPTIONS, mews_name=FISCAL_MEWS, identifier="fiscal-1"
    )


@pytest.fixture
def state_dir(bridge_harness):
    return bridge_harness.state_dir


@pytest.fixture
def guest(mews_simulator):
    return mews_simulator.add_customer("Huber", "Anna")


@pytest.fixture
def paid_bill(mews_simulator, guest):
    """A closed receipt bill: wine at 20 % and breakfast at 10 %, paid in cash."""

    def make(*extra: LineItem, paid: float = 17.5):
        items = [LineItem("Wine", gross=12), LineItem("Breakfast", gross=5.5, tax_codes=("AT-R",)), *extra]
        return mews_simulator.add_bill(guest, items=items, payments=[BillPayment(paid)])

    return make


def flat_command(sim, fiscal_id, bill_id):
    """The bill as a 2025-06-23 fiscal command: flat, ``Owner`` instead of ``OwnerData``, no item arrays."""
    legacy = sim.bill(bill_id)
    deprecated = ("CustomerId", "CompanyId", "Revenue", "Payments", "OrderItems", "PaymentItems")
    renamed = ("OwnerData", "AssociatedAccountData", "AssigneeData", "CompanyDetails")
    bill = {key: value for key, value in legacy.items() if key not in deprecated + renamed}
    bill |= {
        "Owner": {"Discriminator": "Customer", "Customer": legacy["OwnerData"]["Value"]},
        "AssociatedAccountsData": None,
    }
    return {
        "FiscalMachineId": "fiscal-1",
        "ApiUrl": "https://fiscal.invalid/api",
        "FiscalMachineData": "{}",
        "TaxIdentifier": None,
        "Device": sim.devices[fiscal_id],
        "Bill": bill,
        "CommandData": None,
    }


def order_item_id(sim, bill_id, name):
    return next(i["Id"] for i in sim.order_items if i["BillId"] == bill_id and i["BillingName"] == name)


def instance(bridge, name):
    return next(managed for managed in bridge.instances if managed.name == name)


def slot_status(bridge, name):
    return bridge.pipeline.status()["devices"][name]


@contextlib.contextmanager
def fiscal_journal(state_dir):
    """The fiscal machine's register, opened from its state directory as the command line does."""
    register = FiscalRegister.open(instance_state_dir(state_dir, FISCAL))
    try:
        yield register
    finally:
        register.close()


async def start_receipt_printed(bridge, printer_simulator):
    """Wait until the start receipt is out and the printer's job has ended."""
    await printer_simulator.wait_for_receipts(1)
    await wait_for(lambda: not slot_status(bridge, PRINTER)["busy"], what="the start receipt's job to end")


def fiscal_entry(state_dir, command_id):
    with fiscal_journal(state_dir) as register:
        return register.entry_for_command(command_id)


def sales(register):
    return sum(entry.kind == "SALE" for entry in register.store.entries())


# -- the printed QR code --------------------------------------------------------------------------


def words(receipt):
    """The printed text lines of a receipt, without the spaces that align them."""
    return [line.strip() for line in receipt.text.splitlines()]


def read_qr(receipt):
    """The content of the one QR code on a printed receipt, read from the simulator's image by a QR
    decoder (zxing-cpp), as a phone app or the BMF Belegcheck would read it."""
    found = zxingcpp.read_barcodes(receipt.image().convert("L"), formats=zxingcpp.BarcodeFormat.QRCode)
    (text,) = {barcode.text for barcode in found}  # one code on the paper (found twice, it counts once)
    return text


# -- commands -------------------------------------------------------------------------------------


@pytest.mark.parametrize("shape", ["legacy Data", "2025-06-23"])
async def test_a_closed_bill_becomes_a_signed_receipt_acknowledged_in_mews_and_printed_with_its_qr_code(
    mews_simulator, printer_simulator, fiscal_id, bridge_harness, state_dir, paid_bill, shape
):
    sim = mews_simulator
    bill_id = paid_bill()
    async with bridge_harness.running():
        command_id = (
            sim.add_fiscal_command(fiscal_id, bill_id)
            if shape == "legacy Data"
            else sim.add_command(fiscal_id, flat_command(sim, fiscal_id, bill_id))
        )
        final = await wait_for_final_state(sim, command_id)

    assert final["State"] == "Processed"
    number, code = NOTES.fullmatch(final["Notes"]).groups()
    # Neither shape carries the lines: they were read from Mews by bill id.
    for operation in ("orderItems/getAll", "payments/getAll"):
        assert [call["body"]["BillIds"] for call in sim.calls_to(operation)] == [[bill_id]]
    with fiscal_journal(state_dir) as register:
        entry = register.entry_for_command(command_id)
        evidence = json.dumps(register.store.by_command(command_id, raw=True).raw)
    assert (entry.kind, entry.receipt_number, entry.payload["bill"]["id"]) == ("SALE", number, bill_id)
    assert entry.payload["totals"] == {
        "Erm1": {"gross": 550, "net": 500, "tax": 50},
        "Normal": {"gross": 1200, "net": 1000, "tax": 200},
    }
    assert entry.payload["payments"] == {"CashPayment": 1750}
    assert order_item_id(sim, bill_id, "Wine") in evidence
    assert "Huber" not in evidence  # the guest's name stays in Mews
    # The code in Mews is the hash of the signed receipt data, and that data is the QR code on paper.
    signed = qr_string(entry.profile_code)
    assert short_code(entry.profile_code) == code
    start, receipt = printer_simulator.receipts  # the start receipt was printed at first start
    assert "START RECEIPT" in words(start)
    assert read_qr(receipt) == signed
    assert receipt.cut == "full"
    assert receipt.text.splitlines()[:14] == [
        "",
        "Hotel Simulator".center(48).rstrip(),
        "Simulatorgasse 1".center(48).rstrip(),
        "1010 Wien".center(48).rstrip(),
        "AT".center(48).rstrip(),
        "VAT ID ATU00000000".center(48).rstrip(),
        "=" * 48,
        "RECEIPT".center(48).rstrip(),
        "-" * 48,
        f"Register AT-REG1{'No. ' + number:>32}",
        f"Bill {sim.bill(bill_id)['Number']:<10}{entry.payload['ts_local'].replace('T', ' '):>33}",
        "-" * 48,
        f"Breakfast{'€ 5,50 B':>39}",
        f"Wine{'€ 12,00 A':>44}",
    ]


async def test_a_58_mm_roll_gets_a_32_column_receipt_with_long_names_wrapped_and_the_footer(
    mews_simulator, fiscal_id, guest, state_dir, tmp_path
):
    sim = mews_simulator
    suite = "Doppelzimmer Superior mit Balkon und Blick auf den Schlossberg"
    items = [LineItem(suite, gross=120, unit_count=2, tax_codes=("AT-R",)), LineItem("Wine", gross=12)]
    bill_id = sim.add_bill(guest, items=items, payments=[BillPayment(252)])
    fiscal = {**FISCAL_OPTIONS, "paper_width_mm": 58, "receipt_footer": ["Danke für Ihren Besuch!"]}
    async with PrinterSimulator(tmp_path / "roll-58", dots=384) as printer:
        narrow = {"connection": printer.url, "profile": "TM-T20II", "paper_width_mm": 58}
        devices = [
            device(FISCAL, FISCAL_MEWS, "fiscal_virtual", fiscal),
            device(PRINTER, PRINTER_MEWS, "escpos_printer", narrow),
        ]
        async with running_bridge(bridge_settings(sim, state_dir, devices=devices), entry_points=True):
            final = await wait_for_final_state(sim, sim.add_fiscal_command(fiscal_id, bill_id))
            _, receipt = await printer.wait_for_receipts(2)

    assert final["State"] == "Processed"
    with fiscal_journal(state_dir) as register:
        entry = register.entry_for_command(final["Id"])
    lines = receipt.text.splitlines()
    assert max(map(len, lines)) == 32
    assert receipt.image().width == 384
    assert f"Wine{'€ 12,00 A':>28}" in lines
    suite_at = lines.index(f"{'2 x Doppelzimmer':<22}€ 240,00 B")  # amount and VAT letter on its first line
    assert lines[suite_at + 1 : suite_at + 3] == [
        "  Superior mit Balkon und Blick",
        "  auf den Schlossberg @ 120,00",
    ]
    assert f"{'TOTAL':<24}{'€ 252,00':>8}" in lines
    assert lines[lines.index(f"{'TOTAL':<24}{'€ 252,00':>8}") + 1 :][:3] == [
        "VAT          Net     Tax   Gross",
        "A 20%      10,00    2,00   12,00",
        "B 10%     218,18   21,82  240,00",
    ]
    assert words(receipt)[-2:] == [
        f"Verification code {short_code(entry.profile_code)}",
        "Danke für Ihren Besuch!",
    ]
    assert read_qr(receipt) == qr_string(entry.profile_code)


async def test_a_redelivered_command_or_another_command_for_the_bill_never_makes_a_second_receipt(
    mews_simulator, printer_simulator, fiscal_id, bridge_harness, state_dir, paid_bill
):
    sim = mews_simulator
    bill_id = paid_bill()
    async with bridge_harness.running() as bridge:
        first = sim.add_fiscal_command(fiscal_id, bill_id)
        event = {"Type": "DeviceCommand", "Id": first, "State": "Pending"}
        await sim.push_events([event, event])
        done = await wait_for_final_state(sim, first)
        await sim.push_events([event])
        await bridge.pipeline.catch_up()
        again = await wait_for_final_state(sim, sim.add_fiscal_command(fiscal_id, bill_id))

    assert (done["State"], again["State"]) == ("Processed", "Processed")
    assert NOTES.fullmatch(done["Notes"])
    assert again["Notes"] == done["Notes"] + " · fiscalised earlier"
    assert len(printer_simulator.receipts) == 2  # the start receipt and this one
    with fiscal_journal(state_dir) as register:
        assert sales(register) == 1


async def test_a_restart_between_signing_and_printing_prints_the_receipt_once_marked_copy(
    mews_simulator, printer_simulator, fiscal_id, bridge_harness, state_dir, paid_bill
):
    sim = mews_simulator
    bill_id = paid_bill()
    async with bridge_harness.running(bridge={"shutdown_grace_s": 0}) as bridge:
        await start_receipt_printed(bridge, printer_simulator)
        printer_simulator.silent = True  # the receipt is signed, then printing hangs
        command_id = sim.add_fiscal_command(fiscal_id, bill_id)
        await wait_for(lambda: slot_status(bridge, PRINTER)["busy"], what="the receipt to be printing")
    # The bridge stopped in the middle of the command: Mews has no result yet.
    assert sim.command(command_id)["State"] in ("Pending", "Processing")
    with fiscal_journal(state_dir) as register:
        signed = register.entry_for_command(command_id)
        assert register.store.print_job(signed.seq).state == "printing"

    printer_simulator.silent = False
    async with bridge_harness.running():
        final = await wait_for_final_state(sim, command_id)
        await printer_simulator.wait_for_receipts(2)
        with fiscal_journal(state_dir) as register:
            await wait_for(lambda: not register.store.prints_in_doubt(), what="the print queue to empty")

    assert final["State"] == "Processed"
    assert NOTES.fullmatch(final["Notes"]).group(1) == signed.receipt_number
    _, receipt = printer_simulator.receipts  # the start receipt, and exactly one print of this one
    assert f"No. {signed.receipt_number}" in receipt.text
    # The first attempt may have reached paper: this one says it is a copy, at its head and foot.
    assert words(receipt).count("*** COPY ***") == 2
    assert read_qr(receipt) == qr_string(signed.profile_code)
    with fiscal_journal(state_dir) as register:
        assert sales(register) == 1


async def test_receipts_a_printer_could_not_print_come_out_marked_copy_once_it_works_again(
    mews_simulator, printer_simulator, fiscal_id, bridge_harness, state_dir, paid_bill, monkeypatch
):
    monkeypatch.setattr(FiscalVirtualDriver, "print_retry_s", 0.2)
    sim = mews_simulator
    printer_simulator.status = "paper_out"
    async with bridge_harness.running() as bridge:
        final = await wait_for_final_state(sim, sim.add_fiscal_command(fiscal_id, paid_bill()))
        diagnostics = await instance(bridge, FISCAL).driver.diagnostics()
        printer_simulator.status = "online"  # a new roll
        start, receipt = await printer_simulator.wait_for_receipts(2)

    assert final["Notes"].endswith(f"not printed: Paper out on {PRINTER}. Load a new roll and print again.")
    assert [job["state"] for job in diagnostics["prints_in_doubt"]] == ["failed", "failed"]
    assert "START RECEIPT" in words(start) and "RECEIPT" in words(receipt)
    assert words(receipt).count("*** COPY ***") == 2  # the bridge cannot tell whether a first one came out
    assert read_qr(receipt) == qr_string(fiscal_entry(state_dir, final["Id"]).profile_code)


@pytest.mark.parametrize(
    "problem",
    [
        "unmapped tax code",
        "item that does not add up",
        "unpaid balance",
        "bill Mews does not know",
        "amount beyond the limit",
        "amount that is not a number",
    ],
)
async def test_a_bill_that_cannot_be_fiscalised_ends_in_error_saying_why_and_leaves_no_receipt(
    mews_simulator, printer_simulator, fiscal_id, bridge_harness, state_dir, paid_bill, problem
):
    sim = mews_simulator
    add_command = sim.add_fiscal_command
    if problem == "bill Mews does not know":
        bill_id = paid_bill()

        def add_command(fiscal_id, bill_id):
            command_id = sim.add_fiscal_command(fiscal_id, bill_id)
            sim.commands[command_id]["Data"]["Bill"]["Id"] = str(uuid.uuid4())
            return command_id

        notes = (
            f"Mews does not know Bill {sim.bill(bill_id)['Number']}, so there is nothing to fiscalise; "
            "nothing was signed."
        )
    elif problem == "amount beyond the limit":
        bill_id = paid_bill(LineItem("Suite", gross=5_000_000), paid=5_000_017.5)
        notes = (
            f"Bill {sim.bill(bill_id)['Number']} has an amount of 5000017.50 EUR, above the limit "
            "of 1000000.00 EUR per bill; nothing was signed. Please check the bill in Mews."
        )
    elif problem == "amount that is not a number":
        bill_id = paid_bill()
        sim.order_items[order_item_id(sim, bill_id, "Wine")]["Amount"]["GrossValue"] = float("nan")
        notes = (
            f"Mews sent Bill {sim.bill(bill_id)['Number']} with a line that cannot be fiscalised: "
            "Field `Line.Amount.GrossValue` is not a valid amount. Nothing was signed."
        )
    elif problem == "unmapped tax code":
        bill_id = paid_bill(LineItem("Newspaper", gross=3, tax_codes=("AT-Z",)), paid=20.5)
        notes = (
            f'Item "Newspaper" ({order_item_id(sim, bill_id, "Newspaper")}) has tax code "AT-Z", '
            "which tax_map does not map to a tax bucket."
        )
    elif problem == "item that does not add up":
        bill_id = paid_bill()
        wine = sim.order_items[order_item_id(sim, bill_id, "Wine")]
        wine["Amount"]["Breakdown"]["Items"][0]["NetValue"] = 9.0  # Mews sends 9.00 + 2.00 tax for 12.00
        notes = f'Item "Wine" ({wine["Id"]}): its tax breakdown adds up to 11.00, not to its amount 12.00.'
    else:
        bill_id = paid_bill(paid=15)
        notes = (
            f"Bill {sim.bill(bill_id)['Number']} does not balance: "
            "its items total 17.50 EUR but its payments 15.00 EUR."
        )
    async with bridge_harness.running():
        refused = await wait_for_final_state(sim, add_command(fiscal_id, bill_id))
        after = await wait_for_final_state(sim, sim.add_fiscal_command(fiscal_id, paid_bill()))

    assert (refused["State"], refused["Notes"]) == ("Error", notes)
    assert after["State"] == "Processed"  # the bridge and the fiscal machine carry on
    assert len(printer_simulator.receipts) == 2  # the start receipt and the good bill's
    with fiscal_journal(state_dir) as register:
        assert register.entry_for_command(refused["Id"]) is None
        assert register.receipt_for_bill(bill_id) is None
        assert sales(register) == 1


@pytest.mark.parametrize("fault", ["paper out", "not reachable"])
@pytest.mark.parametrize("printer_options", [{"timeout_s": 0.2}])
async def test_a_receipt_printer_that_fails_is_a_warning_in_the_notes_and_the_receipt_stays(
    mews_simulator, printer_simulator, fiscal_id, bridge_harness, state_dir, paid_bill, fault
):
    sim = mews_simulator
    if fault == "paper out":
        printer_simulator.status = "paper_out"
        warning = f"Paper out on {PRINTER}. Load a new roll and print again."
    else:
        printer_simulator.silent = True
        warning = f"{PRINTER} is not available: {PRINTER} is not reachable at {printer_simulator.url}:"
    async with bridge_harness.running():
        final = await wait_for_final_state(sim, sim.add_fiscal_command(fiscal_id, paid_bill()))

    assert final["State"] == "Processed"
    number, code = NOTES.match(final["Notes"]).groups()
    assert final["Notes"].startswith(f"Receipt {number} · code {code} · not printed: {warning}")
    assert printer_simulator.receipts == []
    assert printer_simulator.printer.held == []  # nothing comes out late when the paper is refilled
    with fiscal_journal(state_dir) as register:
        assert register.entry_for_command(final["Id"]).receipt_number == number


async def test_a_bridge_running_one_device_at_a_time_still_prints_each_receipt(
    mews_simulator, printer_simulator, fiscal_id, bridge_harness, paid_bill
):
    sim = mews_simulator
    # The fiscal machine waits for its printer while it holds the only place to run.
    async with bridge_harness.running(bridge={"max_parallel_devices": 1}):
        final = await wait_for_final_state(sim, sim.add_fiscal_command(fiscal_id, paid_bill()))

    assert final["State"] == "Processed"
    assert NOTES.fullmatch(final["Notes"])
    assert len(printer_simulator.receipts) == 2


async def test_cancelling_a_command_whose_receipt_waits_for_the_printer_keeps_the_receipt_and_the_printer(
    mews_simulator, printer_simulator, fiscal_id, bridge_harness, state_dir, paid_bill
):
    sim = mews_simulator
    printer_id = sim.add_device(PRINTER_MEWS, "Printer")
    card = base64.b64encode(registration_card_pdf(pages=1)).decode()
    bill_id = paid_bill()
    async with bridge_harness.running() as bridge:
        await start_receipt_printed(bridge, printer_simulator)
        printer_simulator.silent = True  # a registration card is printing, slowly
        printing = sim.add_printer_command(printer_id, card)
        await wait_for(lambda: slot_status(bridge, PRINTER)["busy"], what="the card to be printing")
        command_id = sim.add_fiscal_command(fiscal_id, bill_id)
        await wait_for(lambda: slot_status(bridge, PRINTER)["queued"], what="the receipt to wait its turn")
        sim.cancel_command(command_id)
        await wait_for(lambda: not slot_status(bridge, FISCAL)["busy"], what="the fiscal machine to stop")
        printer_simulator.silent = False
        printed = await wait_for_final_state(sim, printing)
        next_card = await wait_for_final_state(sim, sim.add_printer_command(printer_id, card))
        again = await wait_for_final_state(sim, sim.add_fiscal_command(fiscal_id, bill_id))

    assert sim.command(command_id)["State"] == "Cancelled"
    assert (printed["State"], next_card["State"]) == ("Processed", "Processed")  # the printer works on
    # The receipt exists although Mews cancelled its command: it is printed all the same.
    start, *others = printer_simulator.receipts
    assert "START RECEIPT" in words(start)
    cards = [receipt for receipt in others if not receipt.text]  # the cards are PDF images
    (receipt,) = [receipt for receipt in others if receipt.text]
    assert len(cards) == 2
    assert "RECEIPT" in words(receipt) and "*** COPY ***" not in words(receipt)
    assert again["Notes"].endswith(" · fiscalised earlier")  # the signed receipt was kept
    with fiscal_journal(state_dir) as register:
        assert sales(register) == 1


# -- the command line -----------------------------------------------------------------------------


def tampered(export, command_id):
    """A copy of ``export`` in which the receipt of ``command_id`` records 10.00 more wine, and where
    that record is: its line in ``entries.jsonl`` and its seq."""
    with zipfile.ZipFile(export) as archive:
        files = {name: archive.read(name) for name in archive.namelist()}
    lines = files["entries.jsonl"].decode().splitlines(keepends=True)
    line, record = next(
        (number, record)
        for number, record in enumerate(map(json.loads, lines), start=1)
        if record.get("raw", {}).get("command_id") == command_id
    )
    record["payload"]["totals"]["Normal"]["gross"] += 1000
    lines[line - 1] = json.dumps(record, ensure_ascii=False, sort_keys=True, separators=(",", ":")) + "\n"
    files["entries.jsonl"] = "".join(lines).encode()
    out = export.with_name("tampered.zip")
    with zipfile.ZipFile(out, "w") as archive:
        for name, content in files.items():
            archive.writestr(name, content)
    return out, line, record["payload"]["seq"]


async def test_the_journal_exports_and_verifies_from_the_command_line_and_tampering_is_named(
    mews_simulator, fiscal_id, bridge_harness, state_dir, paid_bill, tmp_path
):
    sim = mews_simulator
    async with bridge_harness.running():
        finals = [
            await wait_for_final_state(sim, sim.add_fiscal_command(fiscal_id, paid_bill())) for _ in range(2)
        ]
    assert [final["State"] for final in finals] == ["Processed", "Processed"]
    config = write_settings_file(
        bridge_harness.settings(), tmp_path / "config.toml"
    )  # what the bridge ran with
    export = tmp_path / "fiscal-export.zip"

    exported = await run_cli("--config", config, "fiscal", "export", "-o", export)
    verified = await run_cli("--config", config, "fiscal", "verify", export)
    broken, line, seq = tampered(export, finals[1]["Id"])
    refused = await run_cli("--config", config, "fiscal", "verify", broken)

    assert exported[0] == 0, exported[2]
    assert f"Wrote {export}" in exported[1]
    assert verified[0] == 0, verified[2]
    assert "is intact: register AT-REG1 (rksv)" in verified[1]
    receipt = NOTES.match(finals[1]["Notes"]).group(1)
    assert refused[0] != 0
    assert f"{broken} is NOT intact: entries.jsonl line {line} (seq {seq}, receipt {receipt})" in refused[2]


async def test_a_reprint_and_a_daily_closing_from_the_command_line_are_printed_by_the_running_bridge(
    mews_simulator, printer_simulator, fiscal_id, bridge_harness, state_dir, paid_bill, tmp_path
):
    sim = mews_simulator
    config = write_settings_file(bridge_harness.settings(), tmp_path / "config.toml")
    async with bridge_harness.running():
        final = await wait_for_final_state(sim, sim.add_fiscal_command(fiscal_id, paid_bill()))
        number = NOTES.match(final["Notes"]).group(1)
        await printer_simulator.wait_for_receipts(2)
        reprinted = await run_cli("--config", config, "fiscal", "reprint", number)
        unknown = await run_cli("--config", config, "fiscal", "reprint", "AT-REG1-99")
        closed = await run_cli("--config", config, "fiscal", "z-report", "--print")
    export = tmp_path / "export.zip"
    exported = await run_cli("--config", config, "fiscal", "export", "-o", export)
    verified = await run_cli("--config", config, "fiscal", "verify", export)

    assert reprinted.code == 0, reprinted.err
    assert reprinted.out.splitlines() == [f"Reprint of {number} recorded (record 3).", "Printed."]
    assert (unknown.code, unknown.err.strip()) == (
        1,
        "Error: There is no receipt AT-REG1-99 in this journal.",
    )
    assert closed.code == 0, closed.err
    assert closed.out.splitlines()[-1] == "Printed."
    _, original, copy, report = printer_simulator.receipts
    copy_marks = ["*** COPY ***", next(line for line in words(copy) if line.startswith("Reprinted "))]
    assert [line for line in words(copy) if line in copy_marks] == [*copy_marks, "*** COPY ***"]
    assert [line for line in words(copy) if line not in copy_marks] == words(original)  # the same receipt
    assert read_qr(copy) == read_qr(original)
    assert {"DAILY CLOSING (Z) #1", "reprint                                      1"} <= set(words(report))
    with fiscal_journal(state_dir) as register:
        kinds = [entry.kind for entry in register.store.entries()]
        assert register.store.last_receipt().receipt_number == number  # a reprint is not a receipt
    assert kinds == ["START", "SALE", "REPRINT", "Z"]
    assert exported.code == 0 and verified.code == 0, verified.err

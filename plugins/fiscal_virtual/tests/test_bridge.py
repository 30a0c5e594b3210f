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
import qrcode
from PIL import ImageOps

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
from mews_bridge_fiscal_virtual.profiles.base import qr_string, short_code
from mews_bridge_fiscal_virtual.register import FiscalRegister
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
def fiscal_id(mews_simulator):
    # Mews announces commands only for devices that existed when the bridge's socket connected.
    return mews_simulator.add_device(FISCAL_MEWS, "FiscalMachine", identifier="fiscal-1")


@pytest.fixture
def state_dir(tmp_path):
    return tmp_path / "state"


@pytest.fixture
def devices(printer_simulator):
    """``[[devices]]``: the fiscal machine and its receipt printer (``printer`` options added)."""

    def make(**printer):
        return [
            device(FISCAL, FISCAL_MEWS, "fiscal_virtual", FISCAL_OPTIONS),
            device(
                PRINTER,
                PRINTER_MEWS,
                "escpos_printer",
                {"connection": printer_simulator.url, "profile": "TM-T20II", **printer},
            ),
        ]

    return make


@pytest.fixture
def settings(mews_simulator, fiscal_id, devices, state_dir):
    def make(printer=None, **bridge):
        return bridge_settings(mews_simulator, state_dir, devices=devices(**(printer or {})), bridge=bridge)

    return make


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


def sales(register):
    return sum(entry.kind == "SALE" for entry in register.store.entries())


# -- the printed QR code --------------------------------------------------------------------------


def qr_modules(text):
    """The modules of the QR code of ``text`` (dark = True) at level M, as receipts carry it, without
    the quiet zone."""
    code = qrcode.QRCode(error_correction=qrcode.constants.ERROR_CORRECT_M, border=0)
    code.add_data(text)
    code.make(fit=True)
    return code.get_matrix()


def printed_qr(receipt, size):
    """The modules of the ``size`` x ``size`` QR code at the foot of a printed receipt (dark = True).

    The symbol is the last thing printed, and its bottom-left finder pattern (7 modules of ink) gives
    its left and bottom edges and the size of a module.
    """
    page = receipt.image()
    bottom = ImageOps.invert(page.convert("L")).getbbox()[3] - 1
    row = [page.getpixel((x, bottom)) == 0 for x in range(page.width)]
    left = row.index(True)
    module = (row.index(False, left) - left) / 7
    top = bottom + 1 - size * module

    def dark(column, line):
        return page.getpixel((int(left + (column + 0.5) * module), int(top + (line + 0.5) * module))) == 0

    return [[dark(column, line) for column in range(size)] for line in range(size)]


# -- commands -------------------------------------------------------------------------------------


@pytest.mark.parametrize("shape", ["legacy Data", "2025-06-23"])
async def test_a_closed_bill_becomes_a_signed_receipt_acknowledged_in_mews_and_printed_with_its_qr_code(
    mews_simulator, printer_simulator, fiscal_id, settings, state_dir, paid_bill, shape
):
    sim = mews_simulator
    bill_id = paid_bill()
    async with running_bridge(settings(), entry_points=True):
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
    [receipt] = printer_simulator.receipts
    expected = qr_modules(signed)
    assert printed_qr(receipt, len(expected)) == expected
    assert receipt.cut == "full"


async def test_a_redelivered_command_or_another_command_for_the_bill_never_makes_a_second_receipt(
    mews_simulator, printer_simulator, fiscal_id, settings, state_dir, paid_bill
):
    sim = mews_simulator
    bill_id = paid_bill()
    async with running_bridge(settings(), entry_points=True) as bridge:
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
    assert len(printer_simulator.receipts) == 1
    with fiscal_journal(state_dir) as register:
        assert sales(register) == 1


async def test_a_command_cut_off_after_its_receipt_was_signed_gets_that_receipt_at_the_next_start(
    mews_simulator, printer_simulator, fiscal_id, settings, state_dir, paid_bill
):
    sim = mews_simulator
    bill_id = paid_bill()
    async with running_bridge(settings(shutdown_grace_s=0), entry_points=True) as bridge:
        await instance(bridge, PRINTER).wait_loaded()
        printer_simulator.silent = True  # the receipt is signed, then printing hangs
        command_id = sim.add_fiscal_command(fiscal_id, bill_id)
        await wait_for(lambda: slot_status(bridge, PRINTER)["busy"], what="the receipt to be printing")
    # The bridge stopped in the middle of the command: Mews has no result yet.
    assert sim.command(command_id)["State"] in ("Pending", "Processing")
    with fiscal_journal(state_dir) as register:
        signed = register.entry_for_command(command_id).receipt_number

    printer_simulator.silent = False
    async with running_bridge(settings(), entry_points=True):
        final = await wait_for_final_state(sim, command_id)

    assert final["State"] == "Processed"
    assert NOTES.fullmatch(final["Notes"]).group(1) == signed
    with fiscal_journal(state_dir) as register:
        assert sales(register) == 1


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
    mews_simulator, printer_simulator, fiscal_id, settings, state_dir, paid_bill, problem
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
    async with running_bridge(settings(), entry_points=True):
        refused = await wait_for_final_state(sim, add_command(fiscal_id, bill_id))
        after = await wait_for_final_state(sim, sim.add_fiscal_command(fiscal_id, paid_bill()))

    assert (refused["State"], refused["Notes"]) == ("Error", notes)
    assert after["State"] == "Processed"  # the bridge and the fiscal machine carry on
    assert len(printer_simulator.receipts) == 1
    with fiscal_journal(state_dir) as register:
        assert register.entry_for_command(refused["Id"]) is None
        assert register.receipt_for_bill(bill_id) is None
        assert sales(register) == 1


@pytest.mark.parametrize("fault", ["paper out", "not reachable"])
async def test_a_receipt_printer_that_fails_is_a_warning_in_the_notes_and_the_receipt_stays(
    mews_simulator, printer_simulator, fiscal_id, settings, state_dir, paid_bill, fault
):
    sim = mews_simulator
    if fault == "paper out":
        printer_simulator.status = "paper_out"
        warning = f"Paper out on {PRINTER}. Load a new roll and print again."
    else:
        printer_simulator.silent = True
        warning = f"{PRINTER} is not available: {PRINTER} is not reachable at {printer_simulator.url}:"
    async with running_bridge(settings(printer={"timeout_s": 0.2}), entry_points=True):
        final = await wait_for_final_state(sim, sim.add_fiscal_command(fiscal_id, paid_bill()))

    assert final["State"] == "Processed"
    number, code = NOTES.match(final["Notes"]).groups()
    assert final["Notes"].startswith(f"Receipt {number} · code {code} · not printed: {warning}")
    assert printer_simulator.receipts == []
    assert printer_simulator.printer.held == []  # nothing comes out late when the paper is refilled
    with fiscal_journal(state_dir) as register:
        assert register.entry_for_command(final["Id"]).receipt_number == number


async def test_a_bridge_running_one_device_at_a_time_still_prints_each_receipt(
    mews_simulator, printer_simulator, fiscal_id, settings, paid_bill
):
    sim = mews_simulator
    # The fiscal machine waits for its printer while it holds the only place to run.
    async with running_bridge(settings(max_parallel_devices=1), entry_points=True):
        final = await wait_for_final_state(sim, sim.add_fiscal_command(fiscal_id, paid_bill()))

    assert final["State"] == "Processed"
    assert NOTES.fullmatch(final["Notes"])
    assert len(printer_simulator.receipts) == 1


async def test_cancelling_a_command_whose_receipt_waits_for_the_printer_keeps_the_receipt_and_the_printer(
    mews_simulator, printer_simulator, fiscal_id, settings, state_dir, paid_bill
):
    sim = mews_simulator
    printer_id = sim.add_device(PRINTER_MEWS, "Printer")
    card = base64.b64encode(registration_card_pdf(pages=1)).decode()
    bill_id = paid_bill()
    async with running_bridge(settings(), entry_points=True) as bridge:
        await instance(bridge, PRINTER).wait_loaded()
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
    assert len(printer_simulator.receipts) == 2  # no receipt nobody waits for any more, printed late
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
    mews_simulator, fiscal_id, settings, devices, state_dir, paid_bill, tmp_path
):
    sim = mews_simulator
    async with running_bridge(settings(), entry_points=True):
        finals = [
            await wait_for_final_state(sim, sim.add_fiscal_command(fiscal_id, paid_bill())) for _ in range(2)
        ]
    assert [final["State"] for final in finals] == ["Processed", "Processed"]
    config = write_settings_file(settings(), tmp_path / "config.toml")  # what the bridge ran with
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

"""The driver on a fake context: both payload shapes, redelivery, errors, printing, setup and options."""

from __future__ import annotations

import asyncio
import base64
import re
import sqlite3
import stat
import subprocess
import sys
import threading
from datetime import datetime
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families
from pydantic import ValidationError

from mews_bridge import CommandFailed, CommandRejected, DeviceConfigError, DeviceNotReady, metrics
from mews_bridge.mews.errors import MewsUnavailable
from mews_bridge.testing import wait_for
from mews_bridge_fiscal_virtual.driver import FiscalVirtualDriver
from mews_bridge_fiscal_virtual.journal import JOURNAL_FILE
from mews_bridge_fiscal_virtual.keys import AES_KEY_FILE, SIGNING_KEY_FILE
from mews_bridge_fiscal_virtual.options import FiscalOptions
from mews_bridge_fiscal_virtual.profiles.base import short_code

NOTES = re.compile(r"^Receipt AT-REG1-(\d+) · code [A-Za-z0-9_-]{11}$")


async def test_setup_makes_owner_only_keys_and_the_start_receipt(harness):
    driver = await harness.driver()
    state_dir = driver.ctx.state_dir
    for name in (SIGNING_KEY_FILE, AES_KEY_FILE, JOURNAL_FILE):
        assert stat.S_IMODE((state_dir / name).stat().st_mode) == 0o600
    start = driver.register.store.first()
    assert (start.kind, start.receipt_number) == ("START", "AT-REG1-1")
    assert start.payload["start"]["aes_key_check"]
    assert start.payload["start"]["public_key"] == driver.register.keys.public_key_b64


async def test_diagnostics_never_show_keys(harness):
    driver = await harness.driver()
    shown = repr(await driver.diagnostics()) + repr(driver.register.keys)
    pem = (driver.ctx.state_dir / SIGNING_KEY_FILE).read_text()
    aes = (driver.ctx.state_dir / AES_KEY_FILE).read_text().strip()
    secret_body = "".join(pem.splitlines()[1:-1])
    assert secret_body[:40] not in shown and aes not in shown and aes[:20] not in shown
    assert (await driver.diagnostics())["last_receipt"] == "AT-REG1-1"


async def test_legacy_bill_with_embedded_items_is_fiscalised(harness, mk, sale_bill):
    driver = await harness.driver()
    notes = await driver.execute(mk.job("cmd-1", mk.legacy(sale_bill())))
    assert NOTES.match(notes).group(1) == "2"
    assert harness.mews.calls == []
    entry = driver.register.store.by_command("cmd-1", raw=True)
    assert entry.payload["totals"] == {
        "Erm1": {"gross": 550, "net": 500, "tax": 50},
        "Normal": {"gross": 1200, "net": 1000, "tax": 200},
    }
    assert entry.payload["turnover_counter"] == 1750
    assert entry.payload["bill"]["number"] == "1001"
    assert "Guest" not in repr(entry.raw)  # guest data minimised, ids kept
    assert [i["Id"] for i in entry.raw["order_items"]] == ["bill-1-i1", "bill-1-i2"]
    assert entry.raw["data"]["Bill"]["AccountId"] == "acc-1"


async def test_flat_2025_command_fetches_items_by_bill_id(harness, mk):
    harness.mews.items["bill-9"] = [mk.item("i1", "Dinner", "12.00", "AT-20", "2.00")]
    harness.mews.payments["bill-9"] = [mk.payment("p1", "12.00")]
    driver = await harness.driver()
    notes = await driver.execute(mk.job("cmd-9", mk.flat(mk.bill("bill-9", "1009"))))
    assert NOTES.match(notes)
    assert harness.mews.calls == [("orderItems/getAll", ("bill-9",)), ("payments/getAll", ("bill-9",))]
    assert driver.register.entry_for_command("cmd-9").payload["turnover_counter"] == 1200


async def test_redelivered_command_returns_the_same_receipt(harness, mk, sale_bill):
    driver = await harness.driver()
    first = await driver.execute(mk.job("cmd-1", mk.legacy(sale_bill())))
    harness.clock.advance(minutes=5)
    assert await driver.execute(mk.job("cmd-1", mk.legacy(sale_bill()))) == first
    again = await driver.execute(mk.job("cmd-2", mk.legacy(sale_bill())))  # a new command for the same bill
    assert again == first + " · fiscalised earlier"
    assert driver.register.store.last().seq == 2


async def test_unmapped_tax_rejects_the_command_and_leaves_no_gap(harness, mk, sale_bill):
    driver = await harness.driver()
    odd = mk.bill(
        "bill-x",
        OrderItems=[mk.item("ix", "Spa", "30.00", "AT-99", "3.00")],
        PaymentItems=[mk.payment("p", "30.00")],
    )
    with pytest.raises(CommandRejected, match=r'Item "Spa" \(ix\) has tax code "AT-99"'):
        await driver.execute(mk.job("cmd-x", mk.legacy(odd)))
    assert driver.register.store.last().seq == 1
    assert NOTES.match(await driver.execute(mk.job("cmd-1", mk.legacy(sale_bill())))).group(1) == "2"


async def test_bill_that_does_not_balance_is_rejected(harness, mk):
    driver = await harness.driver()
    short = mk.bill(
        "b",
        "77",
        OrderItems=[mk.item("i", "Dinner", "12.00", "AT-20", "2.00")],
        PaymentItems=[mk.payment("p", "2.00")],
    )
    with pytest.raises(CommandRejected, match="Bill 77 does not balance"):
        await driver.execute(mk.job("cmd-1", mk.legacy(short)))


async def test_mews_failure_while_fetching_fails_the_command(harness, mk):
    harness.mews.fail = MewsUnavailable("orderItems/getAll", "timed out")
    driver = await harness.driver()
    with pytest.raises(
        CommandFailed, match=r"items of Bill 5 could not be read from Mews \(orderItems/getAll: timed out\)"
    ):
        await driver.execute(mk.job("cmd-1", mk.flat(mk.bill("b5", "5"))))
    assert driver.register.store.last().seq == 1


async def test_receipt_is_printed_as_text_around_its_qr_code(harness, mk, sale_bill):
    driver = await harness.driver(receipt_printer="Front desk printer")
    notes = await driver.execute(mk.job("cmd-1", mk.legacy(sale_bill())))
    assert NOTES.match(notes)
    texts = harness.devices.texts()
    index = next(i for i, text in enumerate(texts) if "AT-REG1-2" in text)
    printer, data = harness.devices.runs[index]
    assert printer == "Front desk printer" and data["CopyCount"] == 1
    assert data["FileType"].startswith("multipart/mixed; boundary=")
    assert b"Content-Type: image/png" in base64.b64decode(data["FileData"])
    lines = [line.strip() for line in texts[index].splitlines()]
    assert {"Hotel Sonne", "Hauptplatz 1", "8010 Graz", "VAT ID ATU12345678", "RECEIPT"} <= set(lines)
    assert "COPY" not in texts[index]


async def test_a_failed_print_is_printed_marked_copy_when_the_printer_works_again(
    harness, mk, sale_bill, monkeypatch
):
    monkeypatch.setattr(FiscalVirtualDriver, "print_poll_s", 0.01)
    harness.devices.fail = "Paper out on Front desk printer"
    driver = await harness.driver(receipt_printer="Front desk printer")
    notes = await driver.execute(mk.job("cmd-1", mk.legacy(sale_bill())))
    assert notes.endswith(" · not printed: Paper out on Front desk printer")
    assert driver.register.entry_for_command("cmd-1").receipt_number == "AT-REG1-2"
    assert await driver.execute(mk.job("cmd-1", mk.legacy(sale_bill()))) == notes.split(" · not printed")[0]
    assert {job.state for job in driver.register.store.prints_in_doubt()} == {"failed"}

    harness.devices.fail = None
    failed = len(harness.devices.runs)
    driver._print_wanted.set()  # what a successful print does: the printer works again
    await wait_for(lambda: not driver.register.store.prints_in_doubt(), what="the printouts")

    start, sale = harness.devices.texts()[failed:]

    assert "No. AT-REG1-1" in start and "No. AT-REG1-2" in sale
    assert "*** COPY ***" in start and "*** COPY ***" in sale  # the earlier attempts may be on paper


async def test_recover_returns_the_recorded_receipt_or_runs_the_command(harness, mk, sale_bill):
    driver = await harness.driver()
    done = await driver.execute(mk.job("cmd-1", mk.legacy(sale_bill())))
    assert await driver.recover(mk.job("cmd-1", mk.legacy(sale_bill()), interrupted=True)) == done
    fresh = await driver.recover(mk.job("cmd-2", mk.legacy(sale_bill("bill-2", "1002")), interrupted=True))
    assert NOTES.match(fresh).group(1) == "3"


async def test_cancelled_while_signing_still_reports_the_receipt(harness, mk, sale_bill):
    """Mews cancelling the command cannot take back a receipt being signed: it is finished and reported."""
    driver = await harness.driver(receipt_printer="Front desk printer")
    started, release = threading.Event(), threading.Event()
    record = driver.register.record

    def slow_record(*args, **kwargs):
        started.set()
        release.wait(5)
        return record(*args, **kwargs)

    driver.register.record = slow_record
    task = asyncio.create_task(driver.execute(mk.job("cmd-1", mk.legacy(sale_bill()))))
    assert await asyncio.to_thread(started.wait, 5)
    task.cancel()
    await asyncio.sleep(0.01)
    release.set()
    assert NOTES.match(await task).group(1) == "2"
    # The command was cancelled, but its receipt exists: it is printed all the same.
    await wait_for(lambda: any("AT-REG1-2" in text for text in harness.devices.texts()), what="the receipt")


async def test_time_never_goes_backwards(harness, mk, sale_bill):
    driver = await harness.driver()
    await driver.execute(mk.job("cmd-1", mk.legacy(sale_bill())))
    harness.clock.advance(minutes=-10)
    await driver.execute(mk.job("cmd-2", mk.legacy(sale_bill("bill-2", "1002"))))
    first, second = (driver.register.entry_for_command(c).payload for c in ("cmd-1", "cmd-2"))
    assert second["ts_utc"] == first["ts_utc"]
    assert second["flags"] == ["clock_behind"]


async def test_journal_rows_cannot_be_changed_or_deleted(harness):
    driver = await harness.driver()
    db = sqlite3.connect(driver.register.store.path)
    for statement in ("UPDATE fiscal_entries SET turnover_counter = 5", "DELETE FROM fiscal_entries"):
        with pytest.raises(sqlite3.DatabaseError, match="append-only"):
            db.execute(statement)
    db.close()


async def test_register_settings_cannot_change_under_a_journal(harness):
    await harness.driver()
    await harness.shutdown()
    with pytest.raises(DeviceConfigError, match=r"register_id 'AT-REG1' → 'AT-REG2'"):
        await harness.driver(register_id="AT-REG2")


def another_signing_key() -> bytes:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    return ec.generate_private_key(ec.SECP256R1()).private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


@pytest.mark.parametrize(
    ("key", "message"),
    [
        (None, r"The register's keys cannot be used: the signing key .*signing-key.pem is missing"),
        (
            b"-----BEGIN PRIVATE KEY-----\ngarbage\n-----END PRIVATE KEY-----\n",
            r"signing-key.pem cannot be read",
        ),
        (another_signing_key, r"The signing key in .* is not the one this journal started with"),
    ],
)
async def test_a_missing_unreadable_or_foreign_signing_key_stops_the_setup(harness, key, message):
    driver = await harness.driver()
    pem = driver.ctx.state_dir / SIGNING_KEY_FILE
    await harness.shutdown()
    pem.unlink()
    if key is not None:
        pem.write_bytes(key() if callable(key) else key)
        pem.chmod(0o600)
    with pytest.raises(DeviceConfigError, match=message):
        await harness.driver()


async def test_a_signing_key_replaced_after_setup_fails_the_command_in_plain_words(harness, mk, sale_bill):
    driver = await harness.driver()
    pem = driver.ctx.state_dir / SIGNING_KEY_FILE
    original = pem.read_bytes()
    pem.write_bytes(another_signing_key())  # the key is read at the first signature, after set-up
    with pytest.raises(CommandFailed, match=r"^Fiscal cannot sign receipts: its signing key cannot be used"):
        await driver.execute(mk.job("cmd-1", mk.legacy(sale_bill())))
    assert driver.register.store.last().kind == "START"  # nothing was recorded
    pem.write_bytes(original)
    assert NOTES.match(await driver.execute(mk.job("cmd-1", mk.legacy(sale_bill()))))


IN_A_FRESH_PROCESS = """
import asyncio, sys
from datetime import UTC, datetime
from pathlib import Path
from conftest import Clock, Harness, bill, item, legacy_data, make_job, payment

async def main():
    harness = Harness(Path(sys.argv[1]), Clock(datetime(2026, 3, 10, 9, 0, tzinfo=UTC)))
    await harness.driver()  # the first start: keys made, start receipt signed
    loaded = ["cryptography" in sys.modules]
    await harness.shutdown()
    driver = await harness.driver()  # a restart: the keys checked against the journal
    loaded.append("cryptography" in sys.modules)
    sale = bill("b-1", OrderItems=[item("i-1", "Room", "5.50", "AT-10", "0.50")], PaymentItems=[payment("p-1", "5.50")])
    await driver.execute(make_job("cmd-1", legacy_data(sale)))
    loaded.append("cryptography" in sys.modules)
    await harness.shutdown()
    print(loaded)

asyncio.run(main())
"""


def test_setup_leaves_cryptography_to_a_child_and_the_first_signature_loads_it(tmp_path):
    run = subprocess.run(
        [sys.executable, "-c", IN_A_FRESH_PROCESS, str(tmp_path)],
        cwd=Path(__file__).parent,
        capture_output=True,
        text=True,
        check=True,
    )
    assert run.stdout.split() == ["[False,", "False,", "True]"]


async def test_property_settings_come_from_mews_then_from_the_journal(harness):
    options = {k: v for k, v in harness_options().items() if k not in ("timezone", "currency")}
    driver = await harness.driver(profile_options=options)
    assert (driver.register.config.timezone, driver.register.config.currency) == ("Europe/Vienna", "EUR")
    await harness.shutdown()
    harness.enterprise = RuntimeError("Mews is down")
    driver = await harness.driver(profile_options=options)  # offline restart: the journal knows
    assert driver.register.config.timezone == "Europe/Vienna"


async def test_mews_down_at_first_start_retries_later(harness):
    harness.enterprise = RuntimeError("Mews is down")
    options = {k: v for k, v in harness_options().items() if k != "timezone"}
    with pytest.raises(DeviceNotReady, match="Mews is down"):
        await harness.driver(profile_options=options)


async def test_rksv_refuses_a_property_in_another_currency(harness):
    harness.enterprise.currency = "CZK"
    options = {k: v for k, v in harness_options().items() if k != "currency"}
    with pytest.raises(DeviceConfigError, match="records EUR, but the property's currency is CZK"):
        await harness.driver(profile_options=options)


def harness_options() -> dict:
    return {
        "profile": "rksv",
        "register_id": "AT-REG1",
        "timezone": "Europe/Vienna",
        "currency": "EUR",
        "key_id": "U:ATU12345678-K1",
        "tax_map": {"AT-20": "Normal"},
    }


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"key_id": None}, "needs key_id"),
        ({"currency": "PLN"}, "EUR only"),
        ({"tax_map": {"AT-20": "A"}}, "not an RKSV tax bucket"),
        ({"register_id": "AT_REG"}, "register_id"),
        ({"timezone": "Mars/Base"}, "unknown time zone"),
        ({"profile": "generic", "tax_map": {"PL-23": "A b"}}, "not a bucket name"),
    ],
)
def test_option_mistakes_are_explained(change, message):
    with pytest.raises(ValidationError, match=message):
        FiscalOptions.model_validate(harness_options() | change)


def test_options_normalise_bucket_spelling():
    options = FiscalOptions.model_validate(harness_options() | {"tax_map": {"AT-20": "normal", "10": "ERM1"}})
    assert options.tax_map == {"AT-20": "Normal", "10": "Erm1"}


def fiscal_samples():
    """The fiscal figures of device "Fiscal" in /metrics' exposition."""
    return {
        sample.name: sample.value
        for family in text_string_to_metric_families(metrics.exposition().decode())
        for sample in family.samples
        if sample.name.startswith("mews_bridge_fiscal_") and sample.labels.get("device") == "Fiscal"
    }


def exposed(status):
    """The fiscal gauges, once ``status`` was taken."""
    assert status
    return fiscal_samples()


async def test_status_tells_the_last_receipt_the_last_closing_and_the_chain(harness, mk, sale_bill):
    def receipts_counted():
        return fiscal_samples().get("mews_bridge_fiscal_receipts_total", 0)

    driver = await harness.driver()
    assert (await driver.status())["chain_verified"].startswith("intact (checked ")
    assert (await driver.status())["last_closing"] == "none yet"
    counted = receipts_counted()
    await driver.execute(mk.job("cmd-1", mk.legacy(sale_bill())))
    await driver.execute(mk.job("cmd-1", mk.legacy(sale_bill())))  # redelivered: no second receipt
    assert receipts_counted() == counted + 1
    assert exposed(await driver.status())["mews_bridge_fiscal_unclosed_since_timestamp_seconds"] > 0
    closings = await driver.z_report()
    found = await driver.status()
    assert found["last_receipt"] == "AT-REG1-2"
    assert found["last_closing"] == f"Z #1 for {closings[-1].payload['closing']['period']}"
    gauges = exposed(found)
    assert gauges["mews_bridge_fiscal_last_closing_timestamp_seconds"] == (
        datetime.fromisoformat(found["last_closing_at"]).timestamp()
    )
    assert gauges["mews_bridge_fiscal_unclosed_since_timestamp_seconds"] == 0


async def test_a_tampered_journal_shows_a_broken_chain(harness, mk, sale_bill):
    driver = await harness.driver()
    await driver.execute(mk.job("cmd-1", mk.legacy(sale_bill())))
    path = driver.ctx.state_dir / JOURNAL_FILE
    await driver.unload()
    db = sqlite3.connect(path)
    triggers = [name for (name,) in db.execute("SELECT name FROM sqlite_master WHERE type = 'trigger'")]
    for name in triggers:  # what someone editing the file by hand would do first
        db.execute(f"DROP TRIGGER {name}")
    db.execute("UPDATE fiscal_entries SET payload_canonical = replace(payload_canonical, '1750', '1749')")
    db.commit()
    db.close()
    driver = await harness.driver()
    assert (await driver.status())["chain_verified"].startswith("BROKEN: entry 2")


async def test_a_generic_receipt_prints_its_verification_code_without_a_qr_code(harness, mk):
    harness.enterprise = type(harness.enterprise)(
        currency="PLN", language_code="pl-PL", tax_identifier="PL123"
    )
    driver = await harness.driver("Kasa", profile_options=mk.generic, receipt_printer="Drukarka")
    items = [mk.item("i1", "Nocleg", "216.00", "PL-8", "16.00", "PLN")]
    paid = [mk.payment("p1", "216.00", "CashPayment", "PLN")]
    await driver.execute(mk.job("k1", mk.legacy(mk.bill("pl-1", "F/1", OrderItems=items, PaymentItems=paid))))

    _, data = harness.devices.runs[-1]
    assert data["FileType"] == "text/plain; charset=utf-8"  # nothing to scan: no image
    lines = [line.strip() for line in harness.devices.texts()[-1].splitlines()]
    code = driver.register.entry_for_command("k1").profile_code
    assert f"Verification code {short_code(code)}" in lines
    assert f"{'Nocleg':<37}216,00 zł B" in lines
    assert f"{'B':<8}{'200,00':>13}{'16,00':>13}{'216,00':>13}" in lines  # a letter bucket is its own letter

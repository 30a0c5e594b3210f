"""Exports of business days, and the month closings (RKSV Monatsbeleg) written across a month boundary."""

from __future__ import annotations

import io
import json
import zipfile
from datetime import UTC, date, datetime

import pytest
from click.testing import CliRunner

from mews_bridge.testing import wait_for
from mews_bridge_fiscal_virtual.cli import fiscal
from mews_bridge_fiscal_virtual.driver import FiscalVirtualDriver
from mews_bridge_fiscal_virtual.export import ExportError, write_export
from mews_bridge_fiscal_virtual.keys import load_public_key
from mews_bridge_fiscal_virtual.profiles.base import open_jws
from mews_bridge_fiscal_virtual.profiles.rksv import decrypt_turnover
from mews_bridge_fiscal_virtual.verify import VerificationError, verify_export

# Europe/Vienna is UTC+2 from 29 March 2026: midnight there is 22:00 UTC.
DAYS = [datetime(2026, 3, day, 8, 0, tzinfo=UTC) for day in (30, 31)] + [
    datetime(2026, 4, day, 8, 0, tzinfo=UTC) for day in (1, 2)
]


@pytest.fixture
async def four_days(harness, mk, sale_bill):
    """An RKSV register with one sale (17,50) a day from 30 March to 2 April, each day closed."""
    harness.clock.now = DAYS[0]
    driver = await harness.driver()
    for index, moment in enumerate(DAYS):
        harness.clock.now = moment
        await driver.execute(mk.job(f"c{index}", mk.legacy(sale_bill(f"b{index}", str(index)))))
    harness.clock.now = datetime(2026, 4, 2, 20, 0, tzinfo=UTC)
    await driver.z_report()
    return driver


def export(driver, tmp_path, start: date, end: date) -> bytes:
    path = tmp_path / f"{start}-{end}.zip"
    write_export(driver.register, path, datetime(2026, 4, 3, tzinfo=UTC), (start, end))
    return path.read_bytes()


def kinds_and_days(data: bytes) -> list[tuple[str, str]]:
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        records = [json.loads(line)["payload"] for line in archive.read("entries.jsonl").splitlines()]
    return [(p["kind"], (p["closing"] or {}).get("period") or p["business_day"]) for p in records]


async def test_a_day_export_holds_its_records_and_the_month_closing_that_ends_with_it(four_days, tmp_path):
    data = export(four_days, tmp_path, date(2026, 3, 31), date(2026, 3, 31))

    assert kinds_and_days(data) == [("SALE", "2026-03-31"), ("Z", "2026-03-31"), ("MONTH", "2026-03")]
    report = verify_export(io.BytesIO(data))
    assert report.period["from"] == report.period["to"] == "2026-03-31"
    assert (report.receipts, report.first_receipt, report.last_receipt) == (2, "AT-REG1-3", "AT-REG1-4")
    assert report.turnover == 2 * 1750  # the counter continues from the records before the export
    # The month closing began on 30 March, outside this export: its totals cannot be recomputed here.
    assert (report.closings, report.closings_not_recomputed) == (2, 1)


async def test_a_month_export_recomputes_every_closing_and_a_later_one_carries_on(four_days, tmp_path):
    march = verify_export(io.BytesIO(export(four_days, tmp_path, date(2026, 3, 1), date(2026, 3, 31))))
    april_data = export(four_days, tmp_path, date(2026, 4, 1), date(2026, 4, 30))
    april = verify_export(io.BytesIO(april_data))

    assert march.period["first_seq"] == 1 and march.closings_not_recomputed == 0  # from the start entry
    assert (march.first_receipt, march.last_receipt, march.turnover) == ("AT-REG1-1", "AT-REG1-4", 3500)
    # April's records start after the last Z of March: its MONTH closing of March comes along.
    assert kinds_and_days(april_data)[:2] == [("MONTH", "2026-03"), ("SALE", "2026-04-01")]
    assert (april.first_receipt, april.last_receipt, april.turnover) == ("AT-REG1-4", "AT-REG1-6", 7000)
    assert april.closings_not_recomputed == 1


async def test_a_period_without_records_is_refused(four_days, tmp_path):
    with pytest.raises(ExportError, match="no records of business days 2026-05-01 to 2026-05-31"):
        export(four_days, tmp_path, date(2026, 5, 1), date(2026, 5, 31))


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        ("no anchors", "the period export lacks anchors.jsonl"),
        ("forged anchor", r"anchors.jsonl line \d: its contents do not match its entry hash"),
        ("period widened", r"anchors.jsonl: the record before the export is of its period \(2026-03-31\)"),
        ("record removed", r"entries.jsonl line 2 .*seq 8 follows seq 6"),
    ],
)
async def test_a_damaged_period_export_is_refused(four_days, tmp_path, damage, message):
    with zipfile.ZipFile(
        io.BytesIO(export(four_days, tmp_path, date(2026, 4, 1), date(2026, 4, 1)))
    ) as archive:
        files = {name: archive.read(name) for name in archive.namelist()}
    if damage == "no anchors":
        del files["anchors.jsonl"]
    elif damage == "forged anchor":
        lines = files["anchors.jsonl"].decode().splitlines(keepends=True)
        record = json.loads(lines[-1])
        record["payload"]["turnover_counter"] += 100  # the counter the export continues from
        lines[-1] = json.dumps(record, sort_keys=True, separators=(",", ":")) + "\n"
        files["anchors.jsonl"] = "".join(lines).encode()
    elif damage == "period widened":
        metadata = json.loads(files["METADATA.json"])
        metadata["period"]["from"] = "2026-03-31"
        files["METADATA.json"] = json.dumps(metadata).encode()
    else:
        lines = files["entries.jsonl"].splitlines(keepends=True)
        files["entries.jsonl"] = b"".join(lines[:1] + lines[2:])
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        for name, content in files.items():
            archive.writestr(name, content)
    out.seek(0)
    with pytest.raises(VerificationError, match=message):
        verify_export(out)


async def test_scheduled_closings_across_a_month_boundary_make_and_print_the_month_null_receipt(
    harness, mk, sale_bill, monkeypatch
):
    monkeypatch.setattr(FiscalVirtualDriver, "schedule_margin_s", 0.0)
    monkeypatch.setattr(FiscalVirtualDriver, "print_poll_s", 0.01)
    harness.clock.now = datetime(2026, 3, 31, 21, 59, 59, 900000, tzinfo=UTC)  # 0.1 s before April in Vienna
    driver = await harness.driver(receipt_printer="Front desk printer", print_closings=True)
    await driver.execute(mk.job("c1", mk.legacy(sale_bill())))
    harness.clock.now = datetime(2026, 3, 31, 22, 0, 1, tzinfo=UTC)
    store = driver.register.store
    await wait_for(lambda: store.last_of_kind("MONTH") is not None, what="the month closing")
    await wait_for(lambda: not store.prints_in_doubt(), what="the closings to be printed")

    z, month = store.last_of_kind("Z"), store.last_of_kind("MONTH")
    assert (z.payload["closing"]["period"], month.payload["closing"]["period"]) == ("2026-03-31", "2026-03")
    assert month.seq == z.seq + 1 and month.receipt_number == "AT-REG1-3"  # a receipt: the Monatsbeleg
    fields = open_jws(month.profile_code, load_public_key(driver.register.keys.public_key_b64)).split("_")
    assert fields[5:10] == ["0,00"] * 5  # a null receipt
    assert decrypt_turnover(fields[10], driver.register.keys.aes_key, "AT-REG1", "3") == 1750
    texts = harness.devices.texts()
    (z_text,) = [text for text in texts if "DAILY CLOSING (Z) #1" in text]
    (month_text,) = [text for text in texts if "MONTHLY NULL RECEIPT 2026-03" in text]
    assert "Monatsbeleg" in month_text and "MONTHLY CLOSING #1" in month_text
    assert "TURNOVER" in z_text and "€ 17,50" in z_text
    data = export(driver, harness.tmp_path, date(2026, 3, 1), date(2026, 3, 31))
    assert verify_export(io.BytesIO(data)).closings == 2


async def test_cli_exports_a_period_and_verify_prints_the_auditor_figures(four_days, tmp_path, monkeypatch):
    monkeypatch.setattr("mews_bridge_fiscal_virtual.cli._now", lambda: datetime(2026, 4, 3, tzinfo=UTC))
    state = str(four_days.ctx.state_dir)
    out = tmp_path / "april.zip"
    runner = CliRunner()

    exported = runner.invoke(
        fiscal, ["export", "--state-dir", state, "--from", "2026-04-01", "--to", "2026-04-02", "-o", str(out)]
    )
    verified = runner.invoke(fiscal, ["verify", str(out)])
    empty = runner.invoke(
        fiscal,
        [
            "export",
            "--state-dir",
            state,
            "--from",
            "2026-05-01",
            "--to",
            "2026-05-31",
            "-o",
            str(tmp_path / "x.zip"),
        ],
    )

    assert exported.exit_code == 0, exported.output
    assert verified.exit_code == 0, verified.output
    assert verified.output.splitlines()[:5] == [
        f"{out} is intact: register AT-REG1 (rksv), business days 2026-04-01 to 2026-04-02 (records 6 to 10).",
        "  Records:  5",
        "  Receipts: 3, numbers AT-REG1-4 to AT-REG1-6",
        "  Turnover counter: 70,00 EUR",
        "  Closings: 3 (1 begun before this export: numbering and counter checked only)",
    ]
    assert empty.exit_code == 1
    assert (
        "Nothing exported: the journal holds no records of business days 2026-05-01 to 2026-05-31"
        in empty.output
    )


async def test_the_yearly_null_receipt_is_printed_even_when_closings_are_not(
    harness, mk, sale_bill, monkeypatch
):
    monkeypatch.setattr(FiscalVirtualDriver, "print_poll_s", 0.01)
    harness.clock.now = datetime(2026, 12, 31, 10, 0, tzinfo=UTC)
    driver = await harness.driver(receipt_printer="Front desk printer")
    await driver.execute(mk.job("c1", mk.legacy(sale_bill())))
    harness.clock.now = datetime(2027, 1, 1, 10, 0, tzinfo=UTC)
    await driver.close_due()
    store = driver.register.store
    await wait_for(lambda: not store.prints_in_doubt(), what="the printouts")

    year = store.last_of_kind("YEAR")
    assert year.payload["closing"]["period"] == "2026" and year.receipt_number == "AT-REG1-4"
    texts = harness.devices.texts()
    (year_text,) = [text for text in texts if "Jahresbeleg" in text]  # RKSV: printed, checked with the app
    assert "YEARLY NULL RECEIPT 2026" in year_text and "YEARLY CLOSING #1" in year_text
    assert not [text for text in texts if "DAILY CLOSING" in text or "MONTHLY NULL RECEIPT" in text]


async def test_a_reprint_of_a_receipt_before_the_period_verifies_in_its_export(four_days, tmp_path):
    four_days.register.reprint("AT-REG1-2", datetime(2026, 4, 2, 21, 0, tzinfo=UTC))
    data = export(four_days, tmp_path, date(2026, 4, 2), date(2026, 4, 2))

    assert kinds_and_days(data)[-1] == ("REPRINT", "2026-04-02")
    report = verify_export(io.BytesIO(data))
    assert (report.receipts, report.last_receipt) == (1, "AT-REG1-6")  # a reprint is not a receipt

"""Closings: business days in the property's time zone, Z/MONTH/YEAR, catch-up, schedule, on demand."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, time
from zoneinfo import ZoneInfo

import pytest

from mews_bridge_fiscal_virtual.closing import business_day, next_day_change
from mews_bridge_fiscal_virtual.driver import FiscalVirtualDriver
from mews_bridge_fiscal_virtual.profiles.base import b64url_decode
from mews_bridge_fiscal_virtual.profiles.rksv import decrypt_turnover

VIENNA = ZoneInfo("Europe/Vienna")


def kinds(driver) -> list[tuple[str, str | None]]:
    """(kind, closing period) of every entry, in order."""
    return [
        (e.kind, e.payload["closing"]["period"] if e.payload["closing"] else None)
        for e in driver.register.store.entries()
    ]


async def test_z_closes_the_property_day_not_the_utc_day(harness, mk, sale_bill):
    harness.clock.now = datetime(2026, 3, 10, 22, 30, tzinfo=UTC)  # 23:30 in Vienna, 10 March
    driver = await harness.driver()
    await driver.execute(mk.job("cmd-1", mk.legacy(sale_bill("b1", "1"))))
    harness.clock.now = datetime(
        2026, 3, 10, 23, 10, tzinfo=UTC
    )  # same UTC date, 00:10 on 11 March in Vienna
    await driver.execute(mk.job("cmd-2", mk.legacy(sale_bill("b2", "2"))))

    assert kinds(driver) == [("START", None), ("SALE", None), ("Z", "2026-03-10"), ("SALE", None)]
    z = driver.register.store.last_of_kind("Z").payload
    assert z["z_number"] == 1 and z["receipt_counter"] is None and z["profile_code"] is None
    assert z["closing"]["counts"] == {"SALE": 1, "START": 1}
    assert z["closing"]["totals"] == {
        "Erm1": {"gross": 550, "net": 500, "tax": 50},
        "Normal": {"gross": 1200, "net": 1000, "tax": 200},
    }
    assert (z["closing"]["first_seq"], z["closing"]["last_seq"]) == (1, 2)
    assert (z["closing"]["turnover_before"], z["closing"]["turnover_after"]) == (0, 1750)
    assert z["closing"]["payments"] == {"CashPayment": 1750}
    assert driver.register.entry_for_command("cmd-2").payload["business_day"] == "2026-03-11"


async def test_cutoff_keeps_the_night_in_the_previous_business_day(harness, mk, sale_bill):
    harness.clock.now = datetime(2026, 3, 10, 20, 0, tzinfo=UTC)
    driver = await harness.driver(day_cutoff="04:00")
    harness.clock.now = datetime(2026, 3, 11, 1, 30, tzinfo=UTC)  # 02:30 local: still the 10th's business day
    await driver.execute(mk.job("cmd-1", mk.legacy(sale_bill("b1", "1"))))
    assert driver.register.entry_for_command("cmd-1").payload["business_day"] == "2026-03-10"
    harness.clock.now = datetime(2026, 3, 11, 3, 10, tzinfo=UTC)  # 04:10 local
    await driver.execute(mk.job("cmd-2", mk.legacy(sale_bill("b2", "2"))))
    assert kinds(driver)[-2:] == [("Z", "2026-03-10"), ("SALE", None)]


async def test_year_end_writes_z_month_and_year_null_receipts(harness, mk, sale_bill):
    harness.clock.now = datetime(2026, 12, 31, 11, 0, tzinfo=UTC)
    driver = await harness.driver()
    await driver.execute(mk.job("cmd-1", mk.legacy(sale_bill())))
    harness.clock.now = datetime(2026, 12, 31, 23, 30, tzinfo=UTC)  # 00:30 on 1 January in Vienna
    written = await driver.close_due()

    assert [(e.kind, e.payload["closing"]["period"]) for e in written] == [
        ("Z", "2026-12-31"),
        ("MONTH", "2026-12"),
        ("YEAR", "2026"),
    ]
    _, month, year = written
    assert (month.receipt_number, year.receipt_number) == ("AT-REG1-3", "AT-REG1-4")  # Monats-, Jahresbeleg
    assert year.payload["closing"]["counts"] == {"MONTH": 1, "SALE": 1, "START": 1, "Z": 1}
    assert year.payload["closing"]["totals"]["Normal"]["gross"] == 1200
    fields = b64url_decode(year.profile_code.split(".")[1]).decode().split("_")
    assert fields[5:10] == ["0,00"] * 5
    assert decrypt_turnover(fields[10], driver.register.keys.aes_key, "AT-REG1", "4") == 1750
    assert await driver.close_due() == []


async def test_missed_closings_are_written_at_start_up(harness, mk, sale_bill):
    driver = await harness.driver()
    await driver.execute(mk.job("cmd-1", mk.legacy(sale_bill())))
    await harness.shutdown()
    harness.clock.now = datetime(2026, 5, 2, 8, 0, tzinfo=UTC)  # the bridge was off for seven weeks
    driver = await harness.driver()
    assert kinds(driver)[2:] == [("Z", "2026-03-10"), ("MONTH", "2026-03"), ("MONTH", "2026-04")]
    march, april = (e.payload["closing"] for e in list(driver.register.store.entries())[3:])
    assert march["counts"] == {"SALE": 1, "START": 1, "Z": 1} and april["counts"] == {}
    assert april["turnover_before"] == april["turnover_after"] == 1750


async def test_z_report_on_demand_closes_what_is_open(harness, mk, sale_bill):
    driver = await harness.driver()
    await driver.execute(mk.job("cmd-1", mk.legacy(sale_bill("b1", "1"))))
    (z1,) = await driver.z_report()
    assert (z1.kind, z1.payload["closing"]["period"], z1.payload["z_number"]) == ("Z", "2026-03-10", 1)
    assert await driver.z_report() == []
    harness.clock.advance(hours=2)
    await driver.execute(mk.job("cmd-2", mk.legacy(sale_bill("b2", "2"))))
    (z2,) = await driver.z_report()
    assert z2.payload["z_number"] == 2
    assert z2.payload["closing"]["counts"] == {"SALE": 1}
    assert (z2.payload["closing"]["turnover_before"], z2.payload["closing"]["turnover_after"]) == (1750, 3500)


async def test_scheduled_closing_runs_when_the_business_day_changes(harness, mk, sale_bill, monkeypatch):
    monkeypatch.setattr(FiscalVirtualDriver, "schedule_margin_s", 0.0)
    harness.clock.now = datetime(
        2026, 3, 10, 22, 59, 59, 900000, tzinfo=UTC
    )  # 0.1 s before midnight in Vienna
    driver = await harness.driver()
    await driver.execute(mk.job("cmd-1", mk.legacy(sale_bill())))
    harness.clock.now = datetime(2026, 3, 10, 23, 0, 1, tzinfo=UTC)
    for _ in range(200):
        if driver.register.store.last_of_kind("Z") is not None:
            break
        await asyncio.sleep(0.01)
    assert kinds(driver)[-1] == ("Z", "2026-03-10")


@pytest.mark.parametrize(
    ("now", "cutoff", "expected"),
    [
        ("2026-03-10T12:00:00+00:00", "00:00", "2026-03-10T23:00:00+00:00"),  # CET
        ("2026-03-28T12:00:00+00:00", "04:00", "2026-03-29T02:00:00+00:00"),  # 04:00 CEST on the DST day
        (
            "2026-03-28T12:00:00+00:00",
            "02:30",
            "2026-03-29T01:30:00+00:00",
        ),  # 02:30 does not exist that night
        ("2026-10-24T12:00:00+00:00", "04:00", "2026-10-25T03:00:00+00:00"),  # back to CET
        (
            "2026-03-10T23:00:00+00:00",
            "00:00",
            "2026-03-11T23:00:00+00:00",
        ),  # exactly at a change: the next one
    ],
)
def test_next_day_change_in_the_property_zone(now, cutoff, expected):
    assert next_day_change(
        datetime.fromisoformat(now), VIENNA, time.fromisoformat(cutoff)
    ) == datetime.fromisoformat(expected)


def test_business_day_uses_the_property_zone_and_cutoff():
    moment = datetime(2026, 7, 1, 1, 30, tzinfo=UTC)  # 03:30 in Vienna (CEST), still 30 June in UTC-3
    assert business_day(moment, VIENNA, time(0, 0)).isoformat() == "2026-07-01"
    assert business_day(moment, VIENNA, time(4, 0)).isoformat() == "2026-06-30"
    assert business_day(moment, ZoneInfo("America/Sao_Paulo"), time(0, 0)).isoformat() == "2026-06-30"

"""Call credit (credit_policy, credit_limit): balances read from the Mews simulator, bars written to
the AMI simulator's AstDB, in a real bridge."""

from __future__ import annotations

import contextlib
import json
from decimal import Decimal
from pathlib import Path

import pytest

from mews_bridge.settings import load_settings
from mews_bridge.testing import bridge_settings, run_cli, running_bridge, service, wait_for
from mews_bridge_asterisk_pbx.credit import Balance, bar_reason, with_credit_bars
from mews_bridge_asterisk_pbx.rooms import AstDbWrite
from mews_bridge_mocks.mews import LineItem

pytestmark = pytest.mark.timeout(30)


def astdb_room(pbx, room):
    prefix = f"/hotel/{room}/"
    return {k.removeprefix(prefix): v for k, v in pbx.astdb.items() if k.startswith(prefix)}


@contextlib.asynccontextmanager
async def bridge(hotel, pbx_options, tmp_path, **options):
    settings = bridge_settings(
        hotel, tmp_path / "state", services=[service("PBX", "asterisk_pbx", {**pbx_options, **options})]
    )
    async with running_bridge(settings, entry_points=True) as running:
        await running.instances[0].wait_loaded()
        running.instances[0].instance._credit.recheck_s = 0.3  # "every few minutes", quickly
        yield running


def test_policies():
    owing = Balance(Decimal("120.50"), Decimal("100"), "EUR")
    assert bar_reason("limit", Decimal(50), owing) is None
    assert bar_reason("limit", Decimal(20), owing) == (
        "open balance 20.50 EUR is over the credit limit of 20.00 EUR"
    )
    assert bar_reason("prepaid", Decimal(0), owing) == (
        "payments of 100.00 EUR do not cover charges of 120.50 EUR"
    )
    assert bar_reason("prepaid", Decimal(0), Balance(Decimal(80), Decimal(100), "EUR")) is None


def test_bars_are_laid_over_the_room_phones():
    current = {"/hotel/101/outside": "1", "/hotel/102/outside": "0", "/hotel/102/barred": "old"}
    writes = [AstDbWrite("hotel/103", "outside", "1")]
    phones = {"101": True, "102": False, "103": True}
    result = with_credit_bars(writes, current, phones, {"101": "over", "102": "over"}, "hotel")
    assert sorted((w.path, w.value) for w in result) == [
        ("/hotel/101/barred", "over"),
        ("/hotel/101/outside", "0"),
        ("/hotel/102/barred", None),  # vacant: no bar to keep
        ("/hotel/103/outside", "1"),
    ]
    # Barred already: nothing to write, even though the plan alone would open the line.
    again = {"/hotel/101/outside": "0", "/hotel/101/barred": "over"}
    assert (
        with_credit_bars(
            [AstDbWrite("hotel/101", "outside", "1")], again, {"101": True}, {"101": "over"}, "hotel"
        )
        == []
    )


async def test_a_guest_over_the_limit_is_barred_until_a_deposit(pbx, hotel, pbx_options, tmp_path):
    anna = hotel.add_customer("Huber", "Anna")
    hotel.add_reservation(anna, hotel.resource_id("101"), "Started")
    eva = hotel.add_customer("Weiss", "Eva")
    hotel.add_reservation(eva, hotel.resource_id("102"), "Started")
    async with bridge(hotel, pbx_options, tmp_path, credit_limit=5) as running:
        await pbx.place_call("101", "00442071234567", billsec=192)  # 7.00 PLN
        await pbx.place_call("102", "221234567", billsec=60)  # 0.30 PLN
        await wait_for(lambda: astdb_room(pbx, "101").get("outside") == "0", what="the bar")
        assert (
            astdb_room(pbx, "101")["barred"] == "open balance 7.00 PLN is over the credit limit of 5.00 PLN"
        )
        await wait_for(lambda: len(hotel.calls_to("payments/getAll")) >= 2, what="both guests checked")
        assert astdb_room(pbx, "102")["outside"] == "1"
        assert "barred" not in astdb_room(pbx, "102")
        stored = await running.instances[0].ctx.store.items("credit:")
        assert [v["room"] for v in stored.values()] == ["101"]

        hotel.add_external_payment(anna, Decimal(10), "PLN")  # a deposit at the desk
        await wait_for(lambda: astdb_room(pbx, "101").get("outside") == "1", what="the line open again")
        assert "barred" not in astdb_room(pbx, "101")
        assert await running.instances[0].ctx.store.items("credit:") == {}
    requests = [c["body"] for c in hotel.calls_to("orderItems/getAll") if "AccountIds" in c["body"]]
    assert all(body["AccountingStates"] == ["Open"] for body in requests)
    assert {body["AccountIds"][0] for body in requests} == {anna, eva}


async def test_prepaid_guests_need_payments_covering_their_charges(pbx, hotel, pbx_options, tmp_path):
    anna = hotel.add_customer("Huber", "Anna")
    stay = hotel.add_reservation(anna, hotel.resource_id("101"), "Started")
    hotel.add_external_payment(anna, Decimal(3), "PLN")
    async with bridge(hotel, pbx_options, tmp_path, credit_policy="prepaid"):
        await pbx.place_call("101", "221234567", billsec=60)  # 0.30: covered
        await wait_for(
            lambda: len(hotel.calls_to("payments/getAll")) >= 2, what="at start and after the call"
        )
        assert astdb_room(pbx, "101")["outside"] == "1"
        await pbx.place_call("101", "00442071234567", billsec=192)  # 7.00: not covered
        await wait_for(lambda: astdb_room(pbx, "101").get("outside") == "0", what="the bar")
        assert astdb_room(pbx, "101")["barred"] == "payments of 3.00 PLN do not cover charges of 7.30 PLN"
        pbx.astdb["/hotel/101/outside"] = "1"  # someone opens it by hand: the next resync bars it again
        pbx.drop_connections()
        await wait_for(lambda: astdb_room(pbx, "101").get("outside") == "0", what="the bar after a resync")
        hotel.check_out(stay)
        await wait_for(lambda: astdb_room(pbx, "101") == {"outside": "0"}, what="check-out clears the bar")


@pytest.fixture
def credit_config(write_config):
    return write_config(credit_limit=5)


async def test_the_command_line_shows_the_credit_and_resync_keeps_the_bar(pbx, hotel, credit_config):
    anna = hotel.add_customer("Huber", "Anna")
    hotel.add_reservation(anna, hotel.resource_id("101"), "Started")
    async with running_bridge(load_settings(Path(credit_config)), entry_points=True) as running:
        await running.instances[0].wait_loaded()
        await pbx.place_call("101", "00442071234567", billsec=192)
        await wait_for(lambda: astdb_room(pbx, "101").get("outside") == "0", what="the bar")

    code, out, err = await run_cli("--config", credit_config, "pbx", "credit", "101")
    assert code == 0, err
    assert "Room 101: Anna Huber" in out
    assert "Open balance: 7.00 PLN (charges 7.00, payments 0.00)" in out
    assert "Credit: limit of 5.00 PLN" in out
    assert "State: barred since " in out and "open balance 7.00 PLN is over the credit limit" in out

    pbx.astdb["/hotel/101/outside"] = "1"
    code, out, err = await run_cli("--config", credit_config, "pbx", "resync")
    assert code == 0, err
    assert astdb_room(pbx, "101")["outside"] == "0"

    hotel.add_external_payment(anna, Decimal(10), "PLN")
    code, out, _ = await run_cli("--config", credit_config, "pbx", "credit", "101", "--json")
    report = json.loads(out)
    assert (report["balance"], report["barred"]) == ("-3.00", True)
    assert report["state"].endswith("(covered now: the bridge opens the line at its next check)")
    code, _, err = await run_cli("--config", credit_config, "pbx", "credit", "102")
    assert code != 0 and "Nobody is in room 102" in err


async def test_a_guest_over_the_limit_at_start_is_barred_and_stays_barred_across_a_restart(
    pbx, hotel, pbx_options, tmp_path
):
    anna = hotel.add_customer("Huber", "Anna")
    hotel.add_reservation(anna, hotel.resource_id("101"), "Started")
    hotel.post_order(
        hotel.service_id("Accommodation"), anna, [LineItem("Night 5 Dec", gross=120, tax_codes=("AT-R",))]
    )
    async with bridge(hotel, pbx_options, tmp_path, credit_policy="prepaid"):
        await wait_for(lambda: astdb_room(pbx, "101").get("outside") == "0", what="barred before any call")
    assert astdb_room(pbx, "101")["barred"] == "payments of 0.00 PLN do not cover charges of 120.00 PLN"

    pbx.astdb["/hotel/101/outside"] = "1"  # opened by hand while the bridge was stopped
    async with bridge(hotel, pbx_options, tmp_path, credit_policy="prepaid"):
        assert astdb_room(pbx, "101")["outside"] == "0"  # the kept bar
    hotel.add_external_payment(anna, Decimal(150), "PLN")  # a deposit while the bridge was stopped
    async with bridge(hotel, pbx_options, tmp_path, credit_policy="prepaid"):
        await wait_for(
            lambda: astdb_room(pbx, "101").get("outside") == "1", what="the deposit opens the line"
        )
    assert "barred" not in astdb_room(pbx, "101")

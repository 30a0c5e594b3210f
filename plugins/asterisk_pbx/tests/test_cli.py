"""``mews-bridge pbx setup`` and ``mews-bridge pbx charges`` as an installer runs them: a settings file
and a subprocess."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from mews_bridge.settings import load_settings
from mews_bridge.testing import (
    run_cli,
    running_bridge,
    wait_for,
)

pytestmark = pytest.mark.timeout(30)


async def test_setup_lists_the_property_and_checks_the_pbx(config_file, hotel, pbx):
    code, out, err = await run_cli("--config", config_file, "pbx", "setup")
    assert code == 0, err
    telephone = hotel.service_id("Telephone")
    international = hotel.accounting_category_id("Telephone international")
    assert "Property: Hotel Simulator (PLN, Gross prices, time zone Europe/Warsaw" in out
    assert (
        "Standard tax code: AT-S: the highest relative rate (20%) of tax environment AT-2020 valid now" in out
    )
    assert f"{telephone}  Telephone (Additional)  <- service_id" in out
    assert f"{international}  Telephone international [TEL-INT]  <- international" in out
    assert "  101: extension 101" in out
    assert "Tariff classes without an accounting category: local, mobile, national, premium" in out
    local = hotel.accounting_category_id("Telephone local")
    assert f'  local = "{local}"  # Telephone local' in out
    assert f"  {hotel.department_id('Reception')}  Reception\n" in out
    assert f"Asterisk: logged in at 127.0.0.1:{pbx.port} (AMI 11.0.0)" in out
    assert "s3cret" not in out + err


async def test_resync_brings_the_room_phones_in_line_on_demand(config_file, hotel, pbx):
    anna = hotel.add_customer("Huber", "Anna", language_code="de-AT")
    hotel.add_reservation(anna, hotel.resource_id("101"), "Started")
    pbx.astdb.update({"/hotel/101/outside": "0", "/hotel/102/outside": "1", "/hotel/102/name": "Old Guest"})
    code, out, err = await run_cli("--config", config_file, "pbx", "resync")
    assert code == 0, err
    assert (pbx.astdb["/hotel/101/outside"], pbx.astdb["/hotel/101/name"]) == ("1", "Anna Huber")
    assert pbx.astdb["/hotel/102/outside"] == "0"
    assert "/hotel/102/name" not in pbx.astdb
    assert "/hotel/102/name deleted" in out
    assert "8 room phones, 1 occupied: " in out


async def test_charges_lists_every_state(config_file, hotel, pbx):
    anna = hotel.add_customer("Huber", "Anna")
    hotel.add_reservation(anna, hotel.resource_id("101"), "Started")
    gruber = hotel.add_customer("Gruber", "Franz", classifications=("Cashlist",))
    hotel.add_reservation(gruber, hotel.resource_id("102"), "Started")

    async with running_bridge(load_settings(Path(config_file)), entry_points=True) as bridge:
        managed = bridge.instances[0]
        await managed.wait_loaded()
        await pbx.place_call("101", "00442071234567", billsec=192)
        await pbx.place_call("102", "00442071234567", billsec=60)
        await pbx.place_call("103", "221234567", billsec=60)
        await wait_for(lambda: managed.instance._ledger.outcomes.total() == 3, what="three charges settled")

    code, out, err = await run_cli("--config", config_file, "pbx", "charges")
    assert code == 0, err
    lines = out.splitlines()
    posted = next(line for line in lines if "posted" in line and "order" in line)
    assert "room 101" in posted and "Call to +44 20 7123 4567 (3 min 12 s)" in posted and "7.00 PLN" in posted
    assert "Anna Huber" in posted and hotel.orders[0]["Id"] in posted
    assert posted.startswith(pbx.cdrs[0]["StartTime"] + "  ")  # property time (Warsaw), as the PBX wrote it
    assert any("room 102" in line and "refused" in line and "Cashlist" in line for line in lines)
    assert any("room 103" in line and "unassigned" in line for line in lines)
    assert lines[-1] == "posted: 1 (7.00 PLN); refused (No Post): 1 (2.50 PLN); unassigned: 1 (0.30 PLN)"

    code, out, _ = await run_cli("--config", config_file, "pbx", "charges", "--state", "refused", "--json")
    assert code == 0
    [refused] = json.loads(out)
    assert (refused["state"], refused["account_id"]) == ("refused", gruber)


async def test_a_refused_charge_is_listed_and_queued_again_from_the_command_line(config_file, hotel, pbx):
    anna = hotel.add_customer("Huber", "Anna")
    hotel.add_reservation(anna, hotel.resource_id("101"), "Started")
    hotel.faults.fail_operation("orders/add", times=1, status=400, message="Invalid TaxCodes.")
    async with running_bridge(load_settings(Path(config_file)), entry_points=True) as bridge:
        managed = bridge.instances[0]
        await managed.wait_loaded()
        call = await pbx.place_call("101", "00442071234567", billsec=192)
        key = f"cdr-{call['UniqueID']}"
        await wait_for(lambda: hotel.tasks, what="the Mews task")
        _, listed, _ = await run_cli("--config", config_file, "pbx", "charges", "--failed")
        code, queued, err = await run_cli("--config", config_file, "pbx", "charges", "--retry", key)
        await wait_for(lambda: hotel.orders, what="the order after the retry")
        again, _, refused = await run_cli("--config", config_file, "pbx", "charges", "--retry", key)
        unknown, _, missing = await run_cli("--config", config_file, "pbx", "charges", "--retry", "cdr-0")
    [line] = [line for line in listed.splitlines() if "room 101" in line]
    assert "failed" in line and "Invalid TaxCodes." in line and key in line
    assert listed.splitlines()[-1] == "failed: 1 (7.00 PLN)"
    assert code == 0, err
    assert f"Queued {key} again" in queued
    assert len(hotel.orders) == 1
    assert (again, unknown) == (1, 1)
    assert f"the charge {key} is posted" in refused
    assert "No charge with the key 'cdr-0'" in missing


async def test_setup_says_why_the_configured_service_and_category_would_be_refused(config_file, hotel, pbx):
    telephone = hotel.service_id("Telephone")
    international = hotel.accounting_category_id("Telephone international")
    hotel.services[telephone]["IsActive"] = False
    hotel.accounting_categories[international]["IsActive"] = False
    code, out, err = await run_cli("--config", config_file, "pbx", "setup")
    assert code == 0, err
    assert (
        f"{telephone}  Telephone (Additional, inactive)  <- service_id: refused, it is 'Telephone', which is inactive"
        in out
    )
    assert f"{international}  Telephone international [TEL-INT] (inactive: refused)  <- international" in out

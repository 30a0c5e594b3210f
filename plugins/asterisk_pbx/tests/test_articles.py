"""Minibar and extras from the room phone (*51*ARTICLE*QTY): a real bridge between the AMI simulator,
which dials the codes as the sample dialplan hands them over, and the Mews simulator."""

from __future__ import annotations

import contextlib
import logging
from pathlib import Path

import pytest

from mews_bridge.settings import load_settings
from mews_bridge.testing import bridge_settings, run_cli, running_bridge, service, wait_for
from mews_bridge_asterisk_pbx.phonecodes import ArticleCode, CodeError, parse_code

pytestmark = pytest.mark.timeout(30)


@pytest.fixture
def water(hotel):
    return hotel.add_product(hotel.service_id("Telephone"), "Mineral water 0.5 l", 3.5, ("AT-R",))


@contextlib.asynccontextmanager
async def bridge(hotel, pbx_options, tmp_path, products):
    options = {**pbx_options, "products": products, "max_article_count": 10}
    settings = bridge_settings(hotel, tmp_path / "state", services=[service("PBX", "asterisk_pbx", options)])
    async with running_bridge(settings, entry_points=True) as running:
        await running.instances[0].wait_loaded()
        yield running


async def charges(running):
    return list((await running.instances[0].ctx.store.items("charge:item-")).values())


def test_article_codes_are_parsed():
    assert parse_code("*51*12*2") == ArticleCode("12", 2)
    assert parse_code("*51*12") == ArticleCode("12", 1)
    for wrong in ("*51*", "*51**2", "*51*12*0", "*51*12*", "*51*1234567", "*51*12*2*3"):
        with pytest.raises(CodeError):
            parse_code(wrong)


async def test_an_article_is_posted_once_as_a_product_order(pbx, hotel, pbx_options, tmp_path, water):
    anna = hotel.add_customer("Huber", "Anna")
    stay = hotel.add_reservation(anna, hotel.resource_id("101"), "Started")
    async with bridge(hotel, pbx_options, tmp_path, {"12": water}) as running:
        assert await pbx.dial_code("101", "*51*12*2") == "ok 2 x Mineral water 0.5 l posted to room 101"
        assert await pbx.dial_code("101", "*51*012") == "ok 1 x Mineral water 0.5 l posted to room 101"
        recorded = sorted(await charges(running), key=lambda c: c["count"])
    assert pbx.prompts == [("101", "confirmation")] * 2
    first, second = hotel.calls_to("orders/add")
    body = first["body"]
    assert "Items" not in body
    assert body["ProductOrders"] == [
        {"ProductId": water, "Count": 2, "ExternalIdentifier": recorded[1]["key"]}
    ]
    assert (body["AccountId"], body["LinkedReservationId"]) == (anna, stay)
    assert second["body"]["ProductOrders"][0]["Count"] == 1
    assert [(c["state"], c["amount"], c["guest"]) for c in recorded] == [
        ("posted", "3.50", "Anna Huber"),
        ("posted", "7.00", "Anna Huber"),
    ]
    item = hotel.orders[0]["Items"][0]
    assert (item["Type"], item["UnitCount"], item["ExternalIdentifier"]) == (
        "ProductOrder",
        2,
        recorded[1]["key"],
    )


async def test_no_post_empty_rooms_and_unknown_articles_get_an_error_prompt(
    pbx, hotel, pbx_options, tmp_path, water, caplog
):
    caplog.set_level(logging.INFO)
    gruber = hotel.add_customer("Gruber", "Franz", classifications=("Cashlist",))
    hotel.add_reservation(gruber, hotel.resource_id("102"), "Started")
    anna = hotel.add_customer("Huber", "Anna")
    hotel.add_reservation(anna, hotel.resource_id("101"), "Started")
    unknown = "aa20961f-6d9e-4b35-ad25-071213530aec"
    async with bridge(hotel, pbx_options, tmp_path, {"12": water, "13": unknown}) as running:
        answers = [
            await pbx.dial_code("102", "*51*12"),
            await pbx.dial_code("103", "*51*12*3"),
            await pbx.dial_code("101", "*51*99"),
            await pbx.dial_code("101", "*51*13"),
            await pbx.dial_code("101", "*51*12*11"),
        ]
        recorded = {c["room"]: c for c in await charges(running)}
    assert answers == [
        "error room 102 may not charge to the room; please pay at the reception",
        "error room 103 has no guest in house",
        "error article 99 is not on the list",
        "error article 13 cannot be ordered now",
        "error at most 10 of an article at once, not 11",
    ]
    assert [prompt for _, prompt in pbx.prompts] == ["error"] * 5
    assert hotel.orders == []
    assert (recorded["102"]["state"], recorded["102"]["error"]) == (
        "refused",
        "the guest is on the Cashlist (No Post)",
    )
    assert (recorded["103"]["state"], recorded["103"]["amount"]) == ("unassigned", "10.50")
    assert "101" not in recorded
    assert f"products: article 13 = {unknown} is not a product of the service" in caplog.text
    assert "3 x Mineral water 0.5 l from room 103 is unassigned" in caplog.text


async def test_an_order_whose_answer_is_lost_is_looked_up_never_sent_twice(
    pbx, hotel, pbx_options, tmp_path, water
):
    anna = hotel.add_customer("Huber", "Anna")
    hotel.add_reservation(anna, hotel.resource_id("101"), "Started")
    hotel.faults.lose_responses("orders/add", times=1, mode="504")
    async with bridge(hotel, pbx_options, tmp_path, {"12": water}) as running:
        answer = await pbx.dial_code("101", "*51*12*2")
        [charge] = await charges(running)
        await wait_for(
            lambda: running.instances[0].instance._ledger.outcomes["posted"] == 1, what="the order settled"
        )
        [settled] = await charges(running)
    assert answer in (
        "ok 2 x Mineral water 0.5 l recorded for room 101",
        "ok 2 x Mineral water 0.5 l posted to room 101",
    )
    assert len(hotel.calls_to("orders/add")) == 1
    assert len(hotel.orders) == 1
    assert hotel.calls_to("orderItems/getAll")
    assert (settled["state"], settled["order_id"]) == ("posted", hotel.orders[0]["Id"])
    assert charge["key"] == settled["key"]


async def test_a_refused_order_fails_tells_staff_and_is_listed(
    pbx, hotel, pbx_options, tmp_path, water, config_file
):
    anna = hotel.add_customer("Huber", "Anna")
    hotel.add_reservation(anna, hotel.resource_id("101"), "Started")
    hotel.faults.fail_operation(
        "orders/add", times=1, status=400, message="Invalid ProductOrders[0].ProductId."
    )
    async with bridge(hotel, pbx_options, tmp_path, {"12": water}):
        answer = await pbx.dial_code("101", "*51*12*2")
        [task] = await wait_for(lambda: list(hotel.tasks), what="the Mews task")
    assert answer == "error 2 x Mineral water 0.5 l not posted; the reception was told"
    assert task["Name"] == "Room phone order not posted: room 101"
    assert "2 x Mineral water 0.5 l from room 101 (Anna Huber)" in task["Description"]
    assert hotel.orders == []


@pytest.fixture
def config_with_article(write_config, water):
    return write_config(products={"12": water})


async def test_charges_and_setup_show_articles(pbx, hotel, water, config_with_article):
    config_file = config_with_article
    anna = hotel.add_customer("Huber", "Anna")
    hotel.add_reservation(anna, hotel.resource_id("101"), "Started")
    code, out, err = await run_cli("--config", config_file, "pbx", "setup")
    assert code == 0, err
    assert f"  {water}  Mineral water 0.5 l, 3.5 PLN  <- article 12" in out
    assert "  (none)" not in out

    async with running_bridge(load_settings(Path(config_file)), entry_points=True) as running:
        await running.instances[0].wait_loaded()
        assert (await pbx.dial_code("101", "*51*12*2")).startswith("ok")
    code, out, err = await run_cli("--config", config_file, "pbx", "charges")
    assert code == 0, err
    line = next(line for line in out.splitlines() if "Mineral water" in line)
    assert (
        "room 101" in line and "2 x Mineral water 0.5 l" in line and "7.00 PLN" in line and "posted" in line
    )


async def test_products_mews_will_not_list_stop_only_the_articles(pbx, hotel, pbx_options, tmp_path, water):
    anna = hotel.add_customer("Huber", "Anna")
    hotel.add_reservation(anna, hotel.resource_id("101"), "Started")
    hotel.faults.fail_operation("products/getAll", times=1, status=403, message="Not permitted.")
    async with bridge(hotel, pbx_options, tmp_path, {"12": water}):
        assert await pbx.dial_code("101", "*51*12") == "error article 12 cannot be ordered now"
        await pbx.place_call("101", "221234567", billsec=60)
        await wait_for(lambda: hotel.orders, what="the call still posted")
    assert hotel.orders[0]["Items"][0]["Type"] == "CustomItem"

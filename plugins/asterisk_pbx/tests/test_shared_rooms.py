"""Who pays for a call from a room with several guests (option shared_room_charge), and whose No Post
flag counts: a real bridge between the AMI and Mews simulators."""

from __future__ import annotations

import asyncio
import contextlib

import pytest

from mews_bridge.testing import bridge_settings, running_bridge, service

pytestmark = pytest.mark.timeout(30)


@contextlib.asynccontextmanager
async def bridge(hotel, pbx_options, tmp_path, **options):
    settings = bridge_settings(
        hotel, tmp_path / "state", services=[service("PBX", "asterisk_pbx", {**pbx_options, **options})]
    )
    async with running_bridge(settings, entry_points=True) as running:
        await running.instances[0].wait_loaded()
        yield running


async def settled(running, call):
    """The charge of ``call`` once it is no longer pending."""
    store = running.instances[0].ctx.store
    key = f"charge:cdr-{call['UniqueID']}"
    for _ in range(1000):
        value = await store.get(key)
        if value and value["state"] != "pending":
            return value
        await asyncio.sleep(0.01)
    raise AssertionError("the charge did not settle")


def company_stay(hotel, room, guest):
    """A reservation owned by a company, ``guest`` staying."""
    company = hotel.add_company("Travel Agency")
    return company, hotel.add_reservation(guest, hotel.resource_id(room), "Started", company_id=company)


async def test_first_charges_the_guest_not_the_company_and_checks_only_them(
    pbx, hotel, pbx_options, tmp_path
):
    anna = hotel.add_customer("Huber", "Anna")
    gruber = hotel.add_customer("Gruber", "Franz", classifications=("Cashlist",))
    _, stay = company_stay(hotel, "101", anna)
    _, no_post = company_stay(hotel, "102", gruber)
    async with bridge(hotel, pbx_options, tmp_path, shared_room_charge="first") as running:
        charged = await settled(running, await pbx.place_call("101", "00442071234567", billsec=60))
        refused = await settled(running, await pbx.place_call("102", "00442071234567", billsec=60))
    [order] = hotel.orders
    assert (order["AccountId"], order["LinkedReservationId"]) == (anna, stay)
    assert (charged["state"], charged["account_id"]) == ("posted", anna)
    assert (refused["state"], refused["account_id"], refused["reservation_id"]) == (
        "refused",
        gruber,
        no_post,
    )


async def test_owner_charges_the_owner_and_checks_who_stays_under_a_company(
    pbx, hotel, pbx_options, tmp_path
):
    anna = hotel.add_customer("Huber", "Anna")
    company, stay = company_stay(hotel, "101", anna)
    hotel.add_companion(stay, hotel.add_customer("Gruber", "Franz", classifications=("Cashlist",)))
    owner = hotel.add_customer("Weiss", "Eva")
    no_post_companion = hotel.add_customer("Kral", "Jan", classifications=("Cashlist",))
    own = hotel.add_reservation(owner, hotel.resource_id("102"), "Started")
    hotel.add_companion(own, no_post_companion)
    async with bridge(hotel, pbx_options, tmp_path) as running:
        company_call = await pbx.place_call("101", "00442071234567", billsec=60)
        own_call = await pbx.place_call("102", "00442071234567", billsec=60)
        refused = await settled(running, company_call)
        posted = await settled(running, own_call)
    assert (refused["state"], refused["error"]) == ("refused", "the guest is on the Cashlist (No Post)")
    assert refused["account_id"] == company
    # Eva owns her reservation and is charged: her companion's No Post flag is not hers.
    assert posted["state"] == "posted"
    [order] = hotel.orders
    assert (order["AccountId"], order["LinkedReservationId"]) == (owner, own)

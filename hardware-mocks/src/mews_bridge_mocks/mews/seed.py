"""The default world (an Austrian "Hotel Simulator") and the extras of ``--seed-demo``."""

from __future__ import annotations

from .state import World

TAX_RATES = {"AT-S": 0.2, "AT-R": 0.1, "AT-Z": 0.0}  # standard, reduced, zero VAT
TELEPHONE_CATEGORIES = (
    ("Telephone local", "TEL-LOC"),
    ("Telephone national", "TEL-NAT"),
    ("Telephone mobile", "TEL-MOB"),
    ("Telephone international", "TEL-INT"),
    ("Telephone premium", "TEL-PRM"),
)
DEPARTMENTS = ("Reception", "Housekeeping")
ROOMS = ("101", "102", "103", "201", "202", "203", "301", "302")


def seed_world(world: World) -> None:
    """Taxes, an Accommodation and a Telephone service, telephone accounting categories, rooms and
    departments."""
    world.set_tax_environment("AT-2020", "AUT", "AT-2020", "VAT", TAX_RATES)
    world.add_service("Accommodation", "Bookable")
    telephone = world.add_service("Telephone", "Additional")
    world.add_accounting_category("Accommodation", "ACC")
    for name, code in TELEPHONE_CATEGORIES:
        world.add_accounting_category(name, code)
    world.add_product(
        telephone, "Telephone line fee", 1, ("AT-S",), world.accounting_category_id("Telephone local")
    )
    for room in ROOMS:
        world.add_resource(room)
    for department in DEPARTMENTS:
        world.add_department(department)


def seed_demo(world: World) -> dict[str, str]:
    """One device of each kind the bridge drives and three guests (one on the Cashlist, "No Post").

    Returns the ids worth showing to a person, by label.
    """
    huber = world.add_customer("Huber", "Anna", email="anna.huber@example.invalid", phone="+43 660 0000001")
    gruber = world.add_customer("Gruber", "Franz", classifications=("Cashlist",), language_code="de-AT")
    novak = world.add_customer("Novák", "Jiří", language_code="cs-CZ")
    return {
        "Printer": world.add_device("Reception printer", "Printer", "reception-printer"),
        "KeyCutter": world.add_device("Reception key cutter", "KeyCutter", "encoder-1"),
        "FiscalMachine": world.add_device("Fiscal machine", "FiscalMachine", "fiscal-1"),
        "Reservation 101 (in house)": world.add_reservation(huber, world.resource_id("101"), "Started"),
        "Reservation 102 (in house, Cashlist)": world.add_reservation(
            gruber, world.resource_id("102"), "Started"
        ),
        "Reservation 201 (arriving)": world.add_reservation(novak, world.resource_id("201")),
    }

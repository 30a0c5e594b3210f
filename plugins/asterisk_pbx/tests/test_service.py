"""The asterisk_pbx service in a real bridge, against the Mews simulator and the AMI simulator over
loopback: guests onto room phones, calls onto guests' bills."""

from __future__ import annotations

import asyncio
import contextlib
import json
from datetime import UTC, datetime, timedelta

import pytest

from mews_bridge.lifecycle import InstanceState
from mews_bridge.testing import running_bridge, wait_for
from mews_bridge_asterisk_pbx.charges import queue_again
from mews_bridge_mocks.ami.fixtures import SECRET

pytestmark = pytest.mark.timeout(30)


@contextlib.asynccontextmanager
async def bridge_with_pbx(settings):
    """A running bridge whose asterisk_pbx service (its only instance) has finished setting up."""
    async with running_bridge(settings, entry_points=True) as bridge:
        await bridge.instances[0].wait_loaded()
        yield bridge


def astdb_room(pbx, room):
    prefix = f"/hotel/{room}/"
    return {k.removeprefix(prefix): v for k, v in pbx.astdb.items() if k.startswith(prefix)}


async def charge(bridge, event):
    """The journal record of the charge for a Cdr event."""
    return await bridge.instances[0].ctx.store.get(f"charge:cdr-{event['UniqueID']}")


async def wait_for_charge(bridge, event, state, timeout_s=10.0):
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    while True:
        found = await charge(bridge, event)
        if found is not None and found["state"] == state:
            return found
        if loop.time() > deadline:
            raise AssertionError(f"the charge is {found and found['state']}, not {state}")
        await asyncio.sleep(0.01)


async def test_rooms_follow_check_in_moves_and_check_out(pbx, hotel, settings):
    anna = hotel.add_customer("Huber", "Anna", language_code="de-AT")
    hotel.add_reservation(anna, hotel.resource_id("101"), "Started")
    dnd_guest = hotel.add_customer("Weiss", "Eva", language_code="en-GB")
    hotel.add_reservation(dnd_guest, hotel.resource_id("103"), "Started")
    # Left over from an earlier guest while the bridge was not running.
    pbx.astdb.update({"/hotel/102/outside": "1", "/hotel/102/name": "Old Guest", "/hotel/102/dnd": "1"})
    pbx.astdb["/hotel/103/dnd"] = "1"  # set by the guest in 103 with *78

    async with bridge_with_pbx(settings) as bridge:
        assert astdb_room(pbx, "101") == {"outside": "1", "name": "Anna Huber", "language": "de"}
        assert astdb_room(pbx, "102") == {"outside": "0"}
        assert astdb_room(pbx, "103") == {"outside": "1", "name": "Eva Weiss", "language": "en", "dnd": "1"}

        jiri = hotel.add_customer("Novák", "Jiří", language_code="cs-CZ")
        stay = hotel.add_reservation(jiri, hotel.resource_id("201"))
        pbx.astdb["/hotel/201/dnd"] = "1"  # the last guest's do-not-disturb
        hotel.check_in(stay)
        arrived = {"outside": "1", "name": "Jiří Novák", "language": "cs"}
        await wait_for(lambda: astdb_room(pbx, "201") == arrived, what="check-in in AstDB")

        hotel.move_reservation(stay, hotel.resource_id("202"))
        await wait_for(lambda: astdb_room(pbx, "202") == arrived, what="the new room")
        await wait_for(lambda: astdb_room(pbx, "201") == {"outside": "0"}, what="the old room")

        pbx.astdb["/hotel/202/dnd"] = "1"
        hotel.check_out(stay)
        await wait_for(lambda: astdb_room(pbx, "202") == {"outside": "0"}, what="check-out in AstDB")

        later = hotel.add_reservation(anna, hotel.resource_id("301"))
        hotel.cancel_reservation(later)
        diagnostics = json.dumps(await bridge.diagnostics(), default=str)

    assert astdb_room(pbx, "301") == {"outside": "0"}
    assert astdb_room(pbx, "103")["dnd"] == "1"
    assert SECRET not in diagnostics
    [service] = json.loads(diagnostics)["instances"]
    assert service["state"] == "loaded"
    assert service["instance"]["in_house"] == 2
    assert service["instance"]["tax_code"] == "AT-S"


async def test_the_pbx_is_resynced_after_it_restarts(pbx, hotel, settings):
    anna = hotel.add_customer("Huber", "Anna", language_code="de-AT")
    hotel.add_reservation(anna, hotel.resource_id("101"), "Started")
    async with bridge_with_pbx(settings):
        assert astdb_room(pbx, "101")["outside"] == "1"
        pbx.astdb.clear()  # a PBX rebuilt from scratch
        pbx.drop_connections()
        await wait_for(lambda: astdb_room(pbx, "101").get("name") == "Anna Huber", what="resync")
    assert pbx.logins == 2


@pytest.mark.parametrize("hotel", ["Gross", "Net"], indirect=True)
async def test_a_call_abroad_is_posted_once_to_the_guest_in_the_room(pbx, hotel, settings):
    anna = hotel.add_customer("Huber", "Anna", language_code="de-AT")
    reservation = hotel.add_reservation(anna, hotel.resource_id("101"), "Started")
    start = datetime.now(pbx.timezone).replace(microsecond=0, tzinfo=None) - timedelta(minutes=5)

    async with bridge_with_pbx(settings) as bridge:
        call = await pbx.place_call("101", "00442071234567", billsec=192, start=start)
        await wait_for(lambda: len(hotel.orders) == 1, what="the order")
        pbx.emit("Cdr", call.pairs[2:], category="cdr")  # Asterisk sends the same CDR again
        second = await pbx.place_call("101", "221234567", billsec=30)
        await wait_for(lambda: len(hotel.orders) == 2, what="the second order")
        record = await charge(bridge, call)

    order = hotel.orders[0]
    expected_start = start.replace(tzinfo=pbx.timezone).astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    assert order["AccountId"] == anna
    assert order["ServiceId"] == hotel.service_id("Telephone")
    assert order["LinkedReservationId"] == reservation
    assert order["ConsumptionUtc"] == expected_start
    [item] = order["Items"]
    assert item["BillingName"] == "Call to +44 20 7123 4567 (3 min 12 s)"
    # +44: international at 1.50 a minute, 1.00 set-up; 192 s are 4 started minutes.
    value = "GrossValue" if hotel.pricing == "Gross" else "NetValue"
    assert item["UnitAmount"][value] == 7.0
    assert item["UnitAmount"]["Currency"] == "PLN"
    assert [tax["Code"] for tax in item["UnitAmount"]["TaxValues"]] == ["AT-S"]
    assert item["AccountingCategoryId"] == hotel.accounting_category_id("Telephone international")
    assert item["ExternalIdentifier"] == f"cdr-{call['UniqueID']}"
    assert hotel.orders[1]["Items"][0]["ExternalIdentifier"] == f"cdr-{second['UniqueID']}"
    assert len(hotel.calls_to("orders/add")) == 2
    assert record["state"] == "posted"
    assert record["order_id"] == order["Id"]


async def test_a_call_is_charged_to_whoever_held_the_room_when_it_started(pbx, hotel, settings):
    anna = hotel.add_customer("Huber", "Anna")
    reservation = hotel.add_reservation(anna, hotel.resource_id("101"), "Started")
    async with bridge_with_pbx(settings) as bridge:
        before_move = datetime.now(pbx.timezone).replace(microsecond=0, tzinfo=None) - timedelta(seconds=30)
        hotel.move_reservation(reservation, hotel.resource_id("102"))
        # Both rooms: 102 reads {"outside": "0"} before the move too, so the check-out below could
        # otherwise seem done before it was.
        await wait_for(
            lambda: (
                astdb_room(pbx, "101") == {"outside": "0"} and astdb_room(pbx, "102").get("outside") == "1"
            ),
            what="the move",
        )
        # The CDR of a call from the old room, begun before the move, ends after it.
        await pbx.place_call("101", "221234567", billsec=40, start=before_move)
        during_stay = datetime.now(pbx.timezone).replace(microsecond=0, tzinfo=None) - timedelta(seconds=2)
        hotel.check_out(reservation)
        await wait_for(lambda: astdb_room(pbx, "102") == {"outside": "0"}, what="the check-out")
        await pbx.place_call("102", "221234567", billsec=50, start=during_stay)
        after = await pbx.place_call("102", "221234567", billsec=60, start=during_stay + timedelta(minutes=5))
        await wait_for(lambda: len(hotel.orders) == 2, what="both orders")
        unassigned = await wait_for_charge(bridge, after, "unassigned")
    assert [o["LinkedReservationId"] for o in hotel.orders] == [reservation, reservation]
    assert [o["Items"][0]["BillingName"] for o in hotel.orders] == [
        "Call to +48 22 123 45 67 (40 s)",
        "Call to +48 22 123 45 67 (50 s)",
    ]
    assert unassigned["error"] == "nobody was in room 102 when the call started"


async def test_no_post_guests_and_empty_rooms_are_recorded_not_charged(pbx, hotel, settings):
    gruber = hotel.add_customer("Gruber", "Franz", classifications=("Cashlist",))
    hotel.add_reservation(gruber, hotel.resource_id("102"), "Started")
    async with bridge_with_pbx(settings) as bridge:
        refused_call = await pbx.place_call("102", "00442071234567", billsec=60)
        empty_call = await pbx.place_call("103", "221234567", billsec=60)
        unanswered = await pbx.place_call("102", "221234567", answered=False)
        refused = await wait_for_charge(bridge, refused_call, "refused")
        unassigned = await wait_for_charge(bridge, empty_call, "unassigned")
        assert await charge(bridge, unanswered) is None
    assert hotel.orders == []
    assert refused["error"] == "the guest is on the Cashlist (No Post)"
    assert refused["account_id"] == gruber
    assert (unassigned["room"], unassigned["amount"]) == ("103", "0.30")


async def test_a_mews_outage_is_ridden_out_and_a_refusal_is_not_retried(pbx, hotel, settings):
    anna = hotel.add_customer("Huber", "Anna")
    hotel.add_reservation(anna, hotel.resource_id("101"), "Started")
    async with bridge_with_pbx(settings) as bridge:
        hotel.faults.fail_operation("orders/add", times=3, status=503)
        call = await pbx.place_call("101", "00442071234567", billsec=60)
        await wait_for(lambda: len(hotel.orders) == 1, what="the order after the outage")

        hotel.faults.fail_operation("orders/add", times=1, status=400, message="Invalid ServiceId.")
        refused = await pbx.place_call("101", "00442071234567", billsec=61)
        failed = await wait_for_charge(bridge, refused, "failed")
        posted = await charge(bridge, call)
    assert len(hotel.orders) == 1
    assert hotel.orders[0]["Items"][0]["ExternalIdentifier"] == posted["key"]
    assert posted["attempts"] > 1  # sent again, after looking the order up first
    assert hotel.calls_to("orderItems/getAll")
    assert failed["error"] == "Invalid ServiceId."
    assert len(hotel.calls_to("orders/add")) == 4 + 1


async def test_a_charge_pending_at_shutdown_is_posted_once_after_the_restart(pbx, hotel, settings):
    anna = hotel.add_customer("Huber", "Anna")
    hotel.add_reservation(anna, hotel.resource_id("101"), "Started")
    hotel.faults.fail_operation("orders/add", times=10**6, status=503)
    async with bridge_with_pbx(settings) as bridge:
        call = await pbx.place_call("101", "00442071234567", billsec=60)
        await wait_for(lambda: hotel.calls_to("orders/add"), what="a first try")
        assert (await charge(bridge, call))["state"] == "pending"
    hotel.faults.clear()

    async with bridge_with_pbx(settings) as bridge:
        await wait_for(lambda: hotel.orders, what="the order after the restart")
        await wait_for_charge(bridge, call, "posted")  # Mews has it a moment before the journal says so
    assert len(hotel.orders) == 1


async def test_calls_beyond_the_limits_are_held_as_failed_never_posted(pbx, hotel, settings):
    anna = hotel.add_customer("Huber", "Anna")
    hotel.add_reservation(anna, hotel.resource_id("101"), "Started")
    async with bridge_with_pbx(settings) as bridge:
        real = await pbx.place_call("101", "00442071234567", billsec=60)
        await wait_for(lambda: len(hotel.orders) == 1, what="the real call's order")

        def variant(number, **fields):
            """The real call's CDR with ``fields`` changed, as a corrupted or misconfigured PBX sends it."""
            changed = {"UniqueID": f"{real['UniqueID']}{number}", **fields}
            pairs = [(key, changed.get(key, value)) for key, value in real.pairs[2:]]
            pbx.emit("Cdr", pairs, category="cdr")
            return dict(pairs)

        long_ago = (datetime.now(pbx.timezone) - timedelta(days=30)).strftime("%Y-%m-%d %H:%M:%S")
        endless = "99999999999999999999"
        calls = {
            "endless": variant(1, BillableSeconds=endless, Duration=endless),
            "day": variant(2, BillableSeconds="86401", Duration="86405"),
            "future": variant(
                3,
                StartTime="9999-12-31 23:59:59",
                AnswerTime="9999-12-31 23:59:59",
                EndTime="9999-12-31 23:59:59",
            ),
            "old": variant(4, StartTime=long_ago, AnswerTime=long_ago, EndTime=long_ago),
            "pricey": variant(5, Destination="700123456", BillableSeconds="7000", Duration="7004"),  # premium
        }
        failed = {name: await wait_for_charge(bridge, call, "failed") for name, call in calls.items()}
    assert len(hotel.orders) == 1 and len(hotel.calls_to("orders/add")) == 1
    assert failed["endless"]["error"] == (
        "99999999999999999999 billable seconds is longer than the limit of 24 h for one call"
    )
    assert failed["day"]["error"].startswith("86401 billable seconds is longer")
    assert failed["future"]["error"] == "the call starts in the future (9999-12-31 22:59 UTC)"
    assert "before the period Mews still lets the bridge post to" in failed["old"]["error"]
    assert failed["pricey"]["error"].endswith("PLN is above the limit of 500 PLN per call")
    assert float(failed["pricey"]["amount"]) > 500


# Exactly once against a Mews that loses answers


def guest_in(hotel, room="101"):
    anna = hotel.add_customer("Huber", "Anna")
    return anna, hotel.add_reservation(anna, hotel.resource_id(room), "Started")


@pytest.mark.parametrize("mode", ["drop", "500", "504"])
async def test_an_order_whose_answer_is_lost_is_looked_up_not_sent_again(pbx, hotel, settings, mode):
    guest_in(hotel)
    hotel.faults.lose_responses("orders/add", times=1, mode=mode)
    async with bridge_with_pbx(settings) as bridge:
        call = await pbx.place_call("101", "00442071234567", billsec=60)
        posted = await wait_for_charge(bridge, call, "posted")
    assert len(hotel.orders) == 1
    assert len(hotel.calls_to("orders/add")) == 1
    assert hotel.calls_to("orderItems/getAll")
    assert posted["order_id"] == hotel.orders[0]["Id"]


async def test_the_look_up_finds_an_order_moved_to_another_account(pbx, hotel, settings):
    guest_in(hotel)
    company = hotel.add_customer("Travel Agency")
    hotel.faults.lose_responses("orders/add", times=1, mode="504")
    async with bridge_with_pbx(settings) as bridge:
        # Routing moves the item before the look-up runs; the look-up must still find it.
        hotel.faults.fail_operation("orderItems/getAll", times=10**6, status=400)
        call = await pbx.place_call("101", "00442071234567", billsec=60)
        await wait_for(lambda: hotel.orders, what="the order")
        for item in hotel.order_items:
            item["AccountId"] = company
        hotel.faults.fail_operation("orderItems/getAll", times=0)
        await wait_for_charge(bridge, call, "posted")
    assert len(hotel.orders) == 1
    lookups = [c["body"] for c in hotel.calls_to("orderItems/getAll")]
    assert all("AccountIds" not in body and body["ServiceIds"] for body in lookups)


async def test_nothing_is_sent_while_the_look_up_fails(pbx, hotel, settings):
    guest_in(hotel)
    hotel.faults.lose_responses("orders/add", times=1, mode="500")
    hotel.faults.fail_operation("orderItems/getAll", times=4, status=400, message="Invalid ConsumedUtc.")
    async with bridge_with_pbx(settings) as bridge:
        call = await pbx.place_call("101", "00442071234567", billsec=60)
        await wait_for_charge(bridge, call, "posted")
    statuses = [c["status"] for c in hotel.calls_to("orderItems/getAll")]
    assert statuses == [400, 400, 400, 400, 200]
    assert len(hotel.calls_to("orders/add")) == 1
    assert len(hotel.orders) == 1


async def test_a_refused_charge_is_kept_told_to_staff_and_posted_when_queued_again(pbx, hotel, settings):
    _, reservation = guest_in(hotel)
    message = "Company billing is not enabled for the integration."
    hotel.faults.fail_operation("orders/add", times=1, status=403, message=message)
    async with bridge_with_pbx(settings) as bridge:
        call = await pbx.place_call("101", "00442071234567", billsec=60)
        failed = await wait_for_charge(bridge, call, "failed")
        [task] = await wait_for(lambda: list(hotel.tasks), what="the Mews task")
        ledger = bridge.instances[0].instance._ledger
        await wait_for(lambda: not ledger._untold, what="the task's id kept with the charge")
        stored = await charge(bridge, call)
        await queue_again(bridge.instances[0].ctx.store, failed["key"])
        posted = await wait_for_charge(bridge, call, "posted")
    assert failed["error"] == message
    assert task["ServiceOrderId"] == reservation
    assert "room 101" in task["Name"]
    for words in ("Anna Huber", "Call to +44 20 7123 4567", failed["key"], message):
        assert words in task["Description"]
    assert stored["task"] == task["Id"]
    assert len(hotel.orders) == 1
    assert posted["order_id"] == hotel.orders[0]["Id"]


async def test_a_401_on_orders_add_stops_the_service_with_the_reason(pbx, hotel, settings):
    guest_in(hotel)
    async with bridge_with_pbx(settings) as bridge:
        hotel.faults.fail_operation(
            "orders/add", times=1, status=401, message="No permission for orders/add."
        )
        call = await pbx.place_call("101", "00442071234567", billsec=60)
        instance = bridge.instances[0]
        await wait_for(lambda: instance.state is InstanceState.SETUP_ERROR, what="the service to stop")
        store = instance.ctx.store
        record = await store.get(f"charge:cdr-{call['UniqueID']}")
    assert "No permission for orders/add." in instance.reason
    assert record["state"] == "pending"
    assert len(hotel.calls_to("orders/add")) == 1


# Who is charged, and at which tax rate


async def test_a_company_owned_stay_is_checked_for_no_post_on_the_guests_in_the_room(pbx, hotel, settings):
    company = hotel.add_company("Travel Agency")
    anna = hotel.add_customer("Huber", "Anna")
    gruber = hotel.add_customer("Gruber", "Franz", classifications=("Cashlist",))
    billed = hotel.add_reservation(anna, hotel.resource_id("101"), "Started", company_id=company)
    no_post = hotel.add_reservation(anna, hotel.resource_id("102"), "Started", company_id=company)
    hotel.add_companion(no_post, gruber)
    async with bridge_with_pbx(settings) as bridge:
        charged = await pbx.place_call("101", "00442071234567", billsec=60)
        refused_call = await pbx.place_call("102", "00442071234567", billsec=60)
        await wait_for_charge(bridge, charged, "posted")
        refused = await wait_for_charge(bridge, refused_call, "refused")
    [order] = hotel.orders
    assert (order["AccountId"], order["LinkedReservationId"]) == (company, billed)
    assert refused["error"] == "the guest is on the Cashlist (No Post)"


async def test_a_company_mews_will_not_bill_gets_a_failed_charge_and_a_task(pbx, hotel, settings):
    company = hotel.add_company("Travel Agency")
    anna = hotel.add_customer("Huber", "Anna")
    hotel.add_reservation(anna, hotel.resource_id("101"), "Started", company_id=company)
    hotel.company_billing = False
    async with bridge_with_pbx(settings) as bridge:
        call = await pbx.place_call("101", "00442071234567", billsec=60)
        failed = await wait_for_charge(bridge, call, "failed")
        await wait_for(lambda: hotel.tasks, what="the Mews task")
    assert hotel.orders == []
    assert "company accounts is not enabled" in failed["error"]


async def test_each_call_gets_the_standard_tax_rate_valid_when_it_started(pbx, hotel, settings):
    change = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=1)
    old, new = hotel.tax_rates["AT-S"], dict(hotel.tax_rates["AT-S"])
    old["ValidityInvervalsUtc"] = [{"StartUtc": None, "EndUtc": change.strftime("%Y-%m-%dT%H:%M:%SZ")}]
    new.update(
        Code="AT-N",
        Value=0.21,
        Strategy={"Discriminator": "Relative", "Value": {"Value": 0.21}},
        ValidityInvervalsUtc=[{"StartUtc": change.strftime("%Y-%m-%dT%H:%M:%SZ"), "EndUtc": None}],
    )
    hotel.tax_rates["AT-N"] = new
    anna = hotel.add_customer("Huber", "Anna")
    hotel.add_reservation(
        anna, hotel.resource_id("101"), "Started", start_utc=datetime.now(UTC) - timedelta(days=1)
    )
    before = (change - timedelta(minutes=30)).astimezone(pbx.timezone).replace(tzinfo=None)
    async with bridge_with_pbx(settings):
        await pbx.place_call("101", "00442071234567", billsec=60, start=before)
        await pbx.place_call("101", "00442071234567", billsec=61)
        await wait_for(lambda: len(hotel.orders) == 2, what="both orders")
    codes = [order["Items"][0]["UnitAmount"]["TaxValues"][0]["Code"] for order in hotel.orders]
    assert sorted(codes) == ["AT-N", "AT-S"]


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ("inactive service", "which is inactive"),
        ("bookable service", "a Bookable service; charges need an Additional one"),
        ("inactive category", "international = "),
        ("unknown tax code", "tax_code 'XX-1' is not a tax rate code Mews knows"),
    ],
)
async def test_settings_mews_would_refuse_stop_the_service_at_start(pbx, hotel, settings, change, reason):
    options = settings.services[0].options
    if change == "inactive service":
        hotel.services[options["service_id"]]["IsActive"] = False
    elif change == "bookable service":
        options["service_id"] = hotel.accommodation_service_id()
    elif change == "inactive category":
        hotel.accounting_categories[options["accounting_categories"]["international"]]["IsActive"] = False
    else:
        options["tax_code"] = "XX-1"
    async with running_bridge(settings, entry_points=True) as bridge:
        instance = bridge.instances[0]
        await instance.wait_settled()
    assert instance.reason is not None and reason in instance.reason
    if change == "inactive category":
        assert "(inactive)" in instance.reason


@pytest.mark.parametrize(
    ("status", "recorded"),
    [(503, "unknown: Mews' answer was lost, the task may exist"), (403, "not created: No tasks for you.")],
)
async def test_a_task_mews_fails_to_take_is_never_added_twice(pbx, hotel, settings, status, recorded):
    guest_in(hotel)
    hotel.faults.fail_operation("orders/add", times=1, status=400, message="Invalid TaxCodes.")
    hotel.faults.fail_operation("tasks/add", times=1, status=status, message="No tasks for you.")
    async with bridge_with_pbx(settings) as bridge:
        call = await pbx.place_call("101", "00442071234567", billsec=60)
        failed = await wait_for_charge(bridge, call, "failed")
        while failed["task"] is None:  # the ledger records what became of the task
            await asyncio.sleep(0.02)
            failed = await charge(bridge, call)
    assert failed["task"] == recorded
    assert len(hotel.calls_to("tasks/add")) == 1
    assert not list(hotel.tasks)  # an injected failure applies nothing


async def test_only_a_failed_charge_can_be_retried_and_it_is_posted_once(pbx, hotel, settings):
    anna = hotel.add_customer("Huber", "Anna")
    hotel.add_reservation(anna, hotel.resource_id("101"), "Started")
    async with bridge_with_pbx(settings) as bridge:
        service = bridge.instances[0].instance
        hotel.faults.fail_operation("orders/add", times=1, status=400, message="Invalid ServiceId.")
        call = await pbx.place_call("101", "00442071234567", billsec=60)
        failed = await wait_for_charge(bridge, call, "failed")
        facts = await service.status()
        assert (facts["pbx_link"], facts["last_call_record_from"]) == ("up", "101")
        book = await service.charge_book()
        assert [(line.key, line.state, line.retryable) for line in book.lines] == [
            (failed["key"], "failed", True)
        ]

        assert "posted again" in await service.retry_charge(failed["key"])
        await wait_for_charge(bridge, call, "posted")
        with pytest.raises(ValueError, match="only a failed one"):
            await service.retry_charge(failed["key"])
        with pytest.raises(LookupError):
            await service.retry_charge("cdr-unknown")
        book = await service.charge_book()
    assert len(hotel.orders) == 1
    assert book.lines == [] and book.counts["posted"] == 1
    assert book.since_start == {"failed": 1, "posted": 1}


async def test_a_retry_while_the_staff_task_is_being_added_is_not_undone(pbx, hotel, settings):
    anna = hotel.add_customer("Huber", "Anna")
    hotel.add_reservation(anna, hotel.resource_id("101"), "Started")
    async with bridge_with_pbx(settings) as bridge:
        service = bridge.instances[0].instance
        hotel.faults.fail_operation("orders/add", times=1, status=400, message="Invalid ServiceId.")
        hotel.faults.latency_s = 0.3  # the task for the front desk is still on its way when staff retry
        call = await pbx.place_call("101", "00442071234567", billsec=60)
        failed = await wait_for_charge(bridge, call, "failed")
        assert not hotel.calls_to("tasks/add")
        await service.retry_charge(failed["key"])
        posted = await wait_for_charge(bridge, call, "posted")
    assert len(hotel.orders) == 1
    assert posted["task"] and len(hotel.calls_to("tasks/add")) == 1

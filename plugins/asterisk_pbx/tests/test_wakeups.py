"""Wake-up calls through a real bridge: set with *55*HHMM from the room phone (the AMI simulator dials
the code as the sample dialplan hands it over), rung with Originate at the time, retried, reception
and a Mews task when nobody answers. The service's clock is moved instead of waiting for 07:00."""

from __future__ import annotations

import contextlib
from datetime import UTC, datetime, time
from zoneinfo import ZoneInfo

import pytest

from mews_bridge.testing import (
    bridge_settings,
    run_cli,
    running_bridge,
    service,
    wait_for,
    write_settings_file,
)
from mews_bridge_asterisk_pbx.wakeups import first_ring

from .conftest import PBX_TIMEZONE

pytestmark = pytest.mark.timeout(20)
ZONE = ZoneInfo(PBX_TIMEZONE)
WAKEUP = {"ring_s": 20, "retries": 2, "retry_minutes": 5, "reception": "100"}


class Clock:
    """The wake-up scheduler's time, moved by the test."""

    def __init__(self, local: str) -> None:
        self.now = datetime.fromisoformat(local).replace(tzinfo=ZONE).astimezone(UTC)

    def __call__(self) -> datetime:
        return self.now


def wakeup_settings(hotel, pbx_options, tmp_path, **wakeup):
    options = {**pbx_options, "wakeup": {**WAKEUP, **wakeup}}
    return bridge_settings(hotel, tmp_path / "state", services=[service("PBX", "asterisk_pbx", options)])


@contextlib.asynccontextmanager
async def bridge(hotel, pbx_options, tmp_path, clock, **wakeup):
    settings = wakeup_settings(hotel, pbx_options, tmp_path, **wakeup)
    async with running_bridge(settings, entry_points=True) as running:
        await running.instances[0].wait_loaded()
        running.instances[0].instance._wakeups.clock = clock
        yield running


def wakeups_of(running):
    return running.instances[0].instance._wakeups


async def at(running, clock, local: str) -> None:
    """Move the clock to ``local`` (property time) and let the scheduler look."""
    clock.now = datetime.fromisoformat(local).replace(tzinfo=ZONE).astimezone(UTC)
    wakeups_of(running).poke()


def state(running, room):
    return next((r for r in wakeups_of(running).records if r.room == room), None)


def test_the_first_ring_is_the_next_such_time_in_property_time():
    evening = datetime(2026, 12, 6, 22, 30, tzinfo=ZONE)
    assert first_ring(time(7, 0), evening, ZONE) == ("2026-12-07", datetime(2026, 12, 7, 6, 0, tzinfo=UTC))
    early = datetime(2026, 12, 7, 5, 0, tzinfo=ZONE)
    assert first_ring(time(7, 0), early, ZONE)[0] == "2026-12-07"
    assert first_ring(time(7, 0), datetime(2026, 12, 7, 7, 0, tzinfo=ZONE), ZONE)[0] == "2026-12-08"
    # Clocks go forward on 2027-03-28 in Warsaw: 07:00 is then 05:00 UTC.
    assert first_ring(time(7, 0), datetime(2027, 3, 27, 23, 0, tzinfo=ZONE), ZONE)[1].hour == 5


async def test_an_answered_wake_up_call_rings_once_in_the_guests_language_despite_dnd(
    pbx, hotel, pbx_options, tmp_path
):
    anna = hotel.add_customer("Huber", "Anna", language_code="de-AT")
    hotel.add_reservation(anna, hotel.resource_id("101"), "Started")
    clock = Clock("2026-12-06T22:30:00")
    async with bridge(hotel, pbx_options, tmp_path, clock) as running:
        pbx.astdb["/hotel/101/dnd"] = "1"
        assert await pbx.dial_code("101", "*55*0700") == "ok wake-up call at 07:00 on 2026-12-07"
        await at(running, clock, "2026-12-07T06:59:59")
        assert pbx.originates == []
        await at(running, clock, "2026-12-07T07:00:00")
        await wait_for(lambda: state(running, "101").state == "answered", what="the answered call")
        [call] = pbx.originates
        assert call["Channel"] == "PJSIP/101"
        assert call["Context"] == "hotel-wakeup"
        assert call["Async"] == "true"
        variables = call.get_all("Variable")
        assert "CHANNEL(language)=de" in variables and "WAKEUP_TIME=07:00" in variables
        assert f"WAKEUP_ID={call['ActionID']}" in variables
        await wait_for(lambda: not any("/wakeup/" in k for k in pbx.astdb), what="the answered mark removed")
        await at(running, clock, "2026-12-07T08:00:00")
    assert len(pbx.originates) == 1
    assert len(hotel.tasks) == 0


async def test_unanswered_tries_again_then_calls_reception_and_adds_a_mews_task(
    pbx, hotel, pbx_options, tmp_path, caplog
):
    franz = hotel.add_customer("Gruber", "Franz")
    reservation = hotel.add_reservation(franz, hotel.resource_id("102"), "Started")
    pbx.originate_outcomes["PJSIP/102"] = "no answer"
    clock = Clock("2026-12-06T23:00:00")
    reception = hotel.department_id("Reception")
    async with bridge(hotel, pbx_options, tmp_path, clock, department_id=reception) as running:
        assert (await pbx.dial_code("102", "*55*0700")).startswith("ok")
        for minute, tries in (("07:00", 1), ("07:05", 2), ("07:10", 3)):
            await at(running, clock, f"2026-12-07T{minute}:00")
            await wait_for(
                lambda tries=tries: (
                    sum(o["Channel"] == "PJSIP/102" for o in pbx.originates) == tries
                    and state(running, "102").state != "calling"
                ),
                what=f"try {tries}",
            )
            assert state(running, "102").outcomes[-1] == "no answer"
        await wait_for(lambda: len(hotel.tasks) == 1, what="the Mews task")
        await at(running, clock, "2026-12-07T07:30:00")
        record = state(running, "102")
    rooms = [o["Channel"] for o in pbx.originates]
    assert rooms == ["PJSIP/102"] * 3 + ["PJSIP/100"]
    assert pbx.originates[-1]["Context"] == "hotel-wakeup-alert"
    assert "WAKEUP_ROOM=102" in pbx.originates[-1].get_all("Variable")
    [task] = hotel.tasks
    assert task["Name"] == "Wake-up call for room 102 at 07:00 not answered"
    assert (task["ServiceOrderId"], task["DepartmentId"]) == (reservation, reception)
    assert record.state == "unanswered" and record.reception == "called" and record.task == "created"
    assert "not answered after 3 tries" in caplog.text


async def test_an_originate_whose_answer_was_lost_is_looked_up_not_sent_again(
    pbx, hotel, pbx_options, tmp_path
):
    hotel.add_reservation(hotel.add_customer("Huber", "Anna"), hotel.resource_id("101"), "Started")
    hotel.add_reservation(hotel.add_customer("Weiss", "Eva"), hotel.resource_id("103"), "Started")
    pbx.originate_outcomes["PJSIP/103"] = "no answer"
    pbx.originate_delay = 0.2
    clock = Clock("2026-12-06T23:00:00")
    async with bridge(hotel, pbx_options, tmp_path, clock) as running:
        ami = running.instances[0].instance._ami
        for room in ("101", "103"):
            assert (await pbx.dial_code(room, "*55*0630")).startswith("ok")
        await at(running, clock, "2026-12-07T06:30:00")
        await wait_for(lambda: len(pbx.originates) == 2, what="both calls")
        pbx.stall()  # the OriginateResponses are lost on the way ...
        await wait_for(lambda: len(pbx.originate_responses) == 2, what="the calls' outcomes")
        pbx.drop_connections()  # ... and the bridge reconnects
        await wait_for(lambda: ami.connects == 2, what="the AMI reconnect")
        await at(running, clock, "2026-12-07T06:30:20")  # within the ring time and its grace
        assert {r.state for r in wakeups_of(running).records} == {"calling"}
        await at(running, clock, "2026-12-07T06:31:00")
        await wait_for(lambda: state(running, "101").state == "answered", what="101 found answered in AstDB")
        await wait_for(lambda: state(running, "103").state == "scheduled", what="103 found unanswered")
        assert len(pbx.originates) == 2  # nobody rung twice for one try
        assert state(running, "103").outcomes == ["no answer (looked up in AstDB)"]
        await at(running, clock, "2026-12-07T06:36:00")
        await wait_for(lambda: len(pbx.originates) == 3, what="103's second try")
    assert pbx.originates[2]["Channel"] == "PJSIP/103"


async def test_wake_ups_survive_a_restart_follow_a_move_and_end_at_check_out(
    pbx, hotel, pbx_options, tmp_path
):
    stay = hotel.add_reservation(hotel.add_customer("Novák", "Jiří"), hotel.resource_id("201"), "Started")
    other = hotel.add_reservation(hotel.add_customer("Weiss", "Eva"), hotel.resource_id("202"), "Started")
    clock = Clock("2026-12-06T21:00:00")
    async with bridge(hotel, pbx_options, tmp_path, clock):
        assert (await pbx.dial_code("201", "*55*0645")).startswith("ok")
        assert (await pbx.dial_code("202", "*55*0800")).startswith("ok")
        assert (await pbx.dial_code("203", "*55*0800")).startswith("error")  # vacant
        assert (await pbx.dial_code("202", "*56")) == "ok wake-up call at 08:00 cancelled"
        assert (await pbx.dial_code("202", "*56")).startswith("error")
    hotel.move_reservation(stay, hotel.resource_id("301"))
    async with bridge(hotel, pbx_options, tmp_path, clock) as running:
        [record] = wakeups_of(running).records
        assert (record.room, record.time, record.date) == ("301", "06:45", "2026-12-07")
        await at(running, clock, "2026-12-07T06:45:00")
        await wait_for(lambda: record.state == "answered", what="the call in the new room")
        assert [o["Channel"] for o in pbx.originates] == ["PJSIP/301"]
        assert (await pbx.dial_code("301", "*55*0700")).startswith("ok")
        hotel.check_out(stay)
        await wait_for(lambda: not wakeups_of(running).records, what="the wake-up removed at check-out")
        assert await running.instances[0].ctx.store.items("wakeup:") == {}
    assert other


async def test_a_task_whose_answer_was_lost_is_not_added_again(pbx, hotel, pbx_options, tmp_path, caplog):
    hotel.add_reservation(hotel.add_customer("Huber", "Anna"), hotel.resource_id("101"), "Started")
    pbx.originate_outcomes["PJSIP/101"] = "busy"
    hotel.faults.fail_operation("tasks/add", times=5, status=504)
    clock = Clock("2026-12-06T23:00:00")
    async with bridge(hotel, pbx_options, tmp_path, clock, retries=0, reception=None) as running:
        assert (await pbx.dial_code("101", "*55*0700")).startswith("ok")
        await at(running, clock, "2026-12-07T07:00:00")
        await wait_for(lambda: state(running, "101").task == "unknown", what="the task's unknown outcome")
        await at(running, clock, "2026-12-07T07:10:00")
        await at(running, clock, "2026-12-07T07:20:00")
    assert len(hotel.calls_to("tasks/add")) == 1
    assert len(pbx.originates) == 1  # no reception configured
    assert state(running, "101").outcomes == ["busy"]
    assert "is not sent again: check the tasks in Mews" in caplog.text


async def test_staff_set_list_and_cancel_wake_ups_from_the_command_line(pbx, hotel, pbx_options, tmp_path):
    hotel.add_reservation(hotel.add_customer("Huber", "Anna"), hotel.resource_id("101"), "Started")
    config = write_settings_file(wakeup_settings(hotel, pbx_options, tmp_path), tmp_path / "config.toml")
    clock = Clock("2026-12-06T21:00:00")
    async with bridge(hotel, pbx_options, tmp_path, clock) as running:
        code, out, err = await run_cli("--config", config, "pbx", "wakeup", "101", "6:30")
        assert (code, out) == (0, "Room 101: wake-up call at 06:30 on 2026-12-07\n"), err
        [record] = wakeups_of(running).records
        assert record.set_by == "staff"
        code, out, err = await run_cli("--config", config, "pbx", "wakeup", "102", "06:30")
        assert code == 1 and "Room 102: room 102 has no guest in house" in err
        code, out, err = await run_cli("--config", config, "pbx", "wakeup", "101", "25:00")
        assert code == 2 and "is not a time such as 07:00" in err
        code, out, _ = await run_cli("--config", config, "pbx", "wakeups")
        assert out == "room 101    06:30  2026-12-07  scheduled   set by staff\n"
        code, out, err = await run_cli("--config", config, "pbx", "wakeup", "101", "--cancel")
        assert (code, out) == (0, "Room 101: wake-up call at 06:30 cancelled\n"), err
        assert wakeups_of(running).records == []
    code, out, _ = await run_cli("--config", config, "pbx", "wakeups")
    assert out == "No wake-up calls.\n"
    assert [prompt for _, prompt in pbx.prompts] == []  # nobody dialled: the codes came from staff


async def test_a_wake_up_far_too_late_is_not_rung_and_reception_is_told(pbx, hotel, pbx_options, tmp_path):
    hotel.add_reservation(hotel.add_customer("Huber", "Anna"), hotel.resource_id("101"), "Started")
    clock = Clock("2026-12-06T23:00:00")
    async with bridge(hotel, pbx_options, tmp_path, clock) as running:
        assert (await pbx.dial_code("101", "*55*0700")).startswith("ok")
        await at(running, clock, "2026-12-07T09:00:00")  # Asterisk was down until now
        await wait_for(lambda: len(hotel.tasks) == 1, what="the Mews task")
        record = state(running, "101")
    assert [o["Channel"] for o in pbx.originates] == ["PJSIP/100"]  # reception only: no guest woken at 09:00
    assert record.outcomes == ["not made: Asterisk or the bridge was down"]
    [task] = hotel.tasks
    assert task["Name"] == "Wake-up call for room 101 at 07:00 not answered"


async def test_leftovers_in_astdb_are_tidied_at_start(pbx, hotel, pbx_options, tmp_path):
    pbx.astdb.update(
        {"/hotel/reply/1796000000.7": "ok room 101 Clean", "/hotel/wakeup/wakeup-old-1": "answered"}
    )
    async with bridge(hotel, pbx_options, tmp_path, Clock("2026-12-06T21:00:00")):
        assert not any(key.startswith(("/hotel/reply/", "/hotel/wakeup/")) for key in pbx.astdb)


async def test_a_department_that_is_not_the_propertys_stops_the_service(hotel, pbx_options, tmp_path):
    settings = wakeup_settings(
        hotel, pbx_options, tmp_path, department_id="00000000-0000-4000-8000-000000000000"
    )
    async with running_bridge(settings, entry_points=True) as running:
        with pytest.raises(RuntimeError, match=r"wakeup\.department_id 00000000-.* is not a department"):
            await running.instances[0].wait_loaded()

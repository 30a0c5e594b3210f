"""Room status from the room phone (*52*PIN*STATUS): a real bridge between the AMI simulator, which
dials the codes as the sample dialplan hands them over, and the Mews simulator."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging

import pytest

from mews_bridge.testing import bridge_settings, running_bridge, service, wait_for
from mews_bridge_asterisk_pbx.housekeeping import HousekeepingOptions, RoomStatusRefused, resolve
from mews_bridge_asterisk_pbx.phonecodes import (
    CodeError,
    RoomStatusCode,
    WakeupCancel,
    WakeupCode,
    parse_code,
)

pytestmark = pytest.mark.timeout(20)

HOUSEKEEPING = {
    "staff": {
        "Maria Novak": "4711",
        "Eva Kral": {"pin": "9000", "states": ["Clean", "Dirty", "Inspected"]},
    }
}


@contextlib.asynccontextmanager
async def bridge(hotel, pbx_options, tmp_path):
    options = {**pbx_options, "housekeeping": HOUSEKEEPING}
    settings = bridge_settings(hotel, tmp_path / "state", services=[service("PBX", "asterisk_pbx", options)])
    async with running_bridge(settings, entry_points=True) as running:
        await running.instances[0].wait_loaded()
        yield running


def test_codes_are_parsed():
    assert parse_code("*52*4711*1") == RoomStatusCode("4711", "1")
    assert parse_code("*55*0715").at.strftime("%H:%M") == "07:15"
    assert isinstance(parse_code("*55*0715"), WakeupCode)
    assert parse_code("*56") == WakeupCancel()
    for wrong in ("*52*4711", "*52**1", "*55*2460", "*55*715", "*57", "*5612"):
        with pytest.raises(CodeError):
            parse_code(wrong)
    assert "4711" not in repr(parse_code("*52*4711*1"))


def test_pins_and_statuses_come_from_the_options():
    options = HousekeepingOptions.model_validate(HOUSEKEEPING)
    assert resolve(options, "4711", "1") == ("Maria Novak", "Clean")
    assert resolve(options, "4711", "5") == ("Maria Novak", "OutOfOrder")
    assert resolve(options, "9000", "3") == ("Eva Kral", "Inspected")
    with pytest.raises(RoomStatusRefused, match="unknown PIN"):
        resolve(options, "1234", "1")
    with pytest.raises(RoomStatusRefused, match="unknown status 9"):
        resolve(options, "4711", "9")
    with pytest.raises(RoomStatusRefused, match="Eva Kral may not set rooms OutOfService"):
        resolve(options, "9000", "4")
    custom = HousekeepingOptions.model_validate({"statuses": {"7": "Clean"}, "staff": {"Jo": "123"}})
    assert resolve(custom, "123", "7") == ("Jo", "Clean")
    with pytest.raises(ValueError, match="the same PIN"):
        HousekeepingOptions.model_validate({"staff": {"A": "1111", "B": "1111"}})
    with pytest.raises(ValueError, match="Tidy"):
        HousekeepingOptions.model_validate({"statuses": {"1": "Tidy"}})


async def test_housekeeping_sets_the_room_state_in_mews(pbx, hotel, pbx_options, tmp_path, caplog):
    caplog.set_level(logging.INFO)
    room = hotel.resource_id("101")
    hotel.set_resource_state(room, "Dirty")
    async with bridge(hotel, pbx_options, tmp_path) as running:
        assert (await pbx.dial_code("101", "*52*4711*1")).startswith("ok")
        assert hotel.resources[room]["State"] == "Clean"
        assert (await pbx.dial_code("101", "*52*9000*3")).startswith("ok")
        assert hotel.resources[room]["State"] == "Inspected"
        assert (await pbx.dial_code("102", "*52*4711*4")).startswith("ok")
        assert hotel.resources[hotel.resource_id("102")]["State"] == "OutOfService"
        [update] = hotel.calls_to("resources/update")[-1]["body"]["ResourceUpdates"]
        assert update["StateReason"] == {"Value": "Reported by Maria Novak from the room phone"}
        diagnostics = json.dumps(await running.diagnostics(), default=str)
        assert '"Maria Novak": {"pin": "***"' in diagnostics
        assert '"4711"' not in diagnostics and '"9000"' not in diagnostics
    assert pbx.prompts == [("101", "confirmation"), ("101", "confirmation"), ("102", "confirmation")]
    assert "Room 101 is Inspected in Mews (set by Eva Kral" in caplog.text


async def test_a_wrong_pin_or_status_gets_an_error_prompt_and_nothing_is_sent(
    pbx, hotel, pbx_options, tmp_path, caplog
):
    room = hotel.resource_id("101")
    async with bridge(hotel, pbx_options, tmp_path):
        for code in ("*52*1234*3", "*52*4711*9", "*52*9000*5", "*52*4711"):
            assert (await pbx.dial_code("101", code)).startswith("error")
        assert (await pbx.dial_code("trunk", "*52*4711*2")).startswith("error")
    assert hotel.calls_to("resources/update") == []
    assert hotel.resources[room]["State"] == "Clean"
    assert [prompt for _, prompt in pbx.prompts] == ["error"] * 5
    assert "Refused a code dialled on extension 101: unknown PIN" in caplog.text
    assert "extension trunk is not a room phone" in caplog.text
    assert "1234" not in caplog.text and "4711" not in caplog.text


async def test_a_state_mews_did_not_take_is_sent_again(pbx, hotel, pbx_options, tmp_path):
    room = hotel.resource_id("103")
    async with bridge(hotel, pbx_options, tmp_path) as running:
        hotel.faults.fail_operation("resources/update", times=1000, status=503)
        assert (await pbx.dial_code("103", "*52*4711*2")).startswith("ok")
        assert hotel.resources[room]["State"] == "Clean"
        store = running.instances[0].ctx.store
        assert [v["state"] for v in (await store.items("roomstatus:")).values()] == ["Dirty"]
        hotel.faults.fail_operation("resources/update", times=0)
        running.instances[0].instance._room_status.retry_now()
        await wait_for(lambda: hotel.resources[room]["State"] == "Dirty", what="the state sent again")
        for _ in range(200):
            if not await store.items("roomstatus:"):
                break
            await asyncio.sleep(0.01)
        assert await store.items("roomstatus:") == {}


async def test_guessing_pins_locks_that_phone_out(pbx, hotel, pbx_options, tmp_path, caplog):
    async with bridge(hotel, pbx_options, tmp_path):
        for guess in ("1000", "1001", "1002", "1003", "1004"):
            assert (await pbx.dial_code("101", f"*52*{guess}*3")).startswith("error unknown PIN")
        assert (await pbx.dial_code("101", "*52*4711*3")) == (
            "error 5 wrong PINs in a row from this phone; try again later"
        )
        assert (await pbx.dial_code("102", "*52*4711*1")).startswith("ok")  # other phones still work
    assert [
        call["body"]["ResourceUpdates"][0]["ResourceId"] for call in hotel.calls_to("resources/update")
    ] == [hotel.resource_id("102")]

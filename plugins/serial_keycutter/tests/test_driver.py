"""The whole path: a Mews KeyCutter command through the driver, a pty or TCP line, the simulated encoder."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta

import pytest

from mews_bridge import CommandFailed, CommandRejected, DeviceConfigError, DeviceNotReady
from mews_bridge_mocks.keycutter import EncoderSimulator
from mews_bridge_serial_keycutter.codec import parse_frame
from mews_bridge_serial_keycutter.dialects import KeyMode, get_dialect


async def test_first_command_two_keys_one_new_one_copy(
    make_driver, encoder_simulator, key_data, make_job, stay_dates
):
    driver = await make_driver(encoder_simulator.port_url)
    notes = await driver.execute(make_job(key_data(KeyCount=2)))

    assert notes == "2 keys for room 101 (1 new, 1 copy)"
    cards = encoder_simulator.encoded_cards
    assert [card.mode for card in cards] == [KeyMode.NEW, KeyMode.COPY]
    assert all(card.valid for card in cards)
    assert {card.name for card in cards} == {"Jane Doe"}
    start, end = stay_dates()
    # 05:00 UTC is 14:00 in Tokyo, 02:00 UTC is 11:00.
    assert cards[0].start == datetime(start.year, start.month, start.day, 14, 0)
    assert cards[0].end == datetime(end.year, end.month, end.day, 11, 0)


async def test_request_fields_on_the_wire(make_driver, encoder_simulator, key_data, make_job, stay_dates):
    driver = await make_driver(encoder_simulator.port_url)
    await driver.execute(make_job(key_data(KeyCount=2, LockIds=["101", "Pool"])))
    start, end = stay_dates()
    dates = [f"1400{start:%d%m%y}", f"1100{end:%d%m%y}"]
    new, copy = (parse_frame(frame) for frame in encoder_simulator.requests)
    assert new == [
        "CN",
        "Encoder1",
        "E",
        "101",
        "Pool",
        "",
        "",
        "",
        "",
        *dates,
        "MewsBridge",
        "Jane Doe",
        "",
        "",
        "0",
    ]
    assert copy == ["CC", *new[1:]]


async def test_second_command_for_the_reservation_gives_copies(
    make_driver, encoder_simulator, key_data, make_job
):
    driver = await make_driver(encoder_simulator.port_url)
    await driver.execute(make_job(key_data()))
    notes = await driver.execute(make_job(key_data(KeyCount=2)))

    assert notes == "2 keys for room 101 (2 copies)"
    assert [card.mode for card in encoder_simulator.encoded_cards] == [
        KeyMode.NEW,
        KeyMode.COPY,
        KeyMode.COPY,
    ]
    # The guest's first key still opens the door.
    assert len(encoder_simulator.valid_cards("101")) == 3


async def test_journal_survives_a_restart(
    make_driver, encoder_simulator, store, make_ctx, key_data, make_job
):
    first = await make_driver(encoder_simulator.port_url)
    await first.execute(make_job(key_data()))
    await first.unload()
    second = await make_driver(encoder_simulator.port_url, ctx=make_ctx(store))
    assert await second.execute(make_job(key_data())) == "1 key for room 101 (1 copy)"


async def test_another_reservation_takes_the_room_over(make_driver, encoder_simulator, key_data, make_job):
    driver = await make_driver(encoder_simulator.port_url)
    await driver.execute(make_job(key_data(ReservationId="res-1")))
    assert await driver.execute(make_job(key_data(ReservationId="res-2"))) == "1 key for room 101 (1 new)"
    # res-1's key was voided by res-2's new key: a copy now would copy res-2's card.
    assert await driver.execute(make_job(key_data(ReservationId="res-1"))) == "1 key for room 101 (1 new)"
    assert [card.valid for card in encoder_simulator.encoded_cards] == [False, False, True]


async def test_other_rooms_need_a_new_key(make_driver, encoder_simulator, key_data, make_job):
    driver = await make_driver(encoder_simulator.port_url)
    await driver.execute(make_job(key_data(LockIds=["101"])))
    notes = await driver.execute(make_job(key_data(LockIds=["101", "102"])))
    assert notes == "1 key for rooms 101, 102 (1 new)"


async def test_without_a_reservation_every_command_starts_new(
    make_driver, encoder_simulator, key_data, make_job
):
    driver = await make_driver(encoder_simulator.port_url)
    data = key_data(KeyCount=2)
    del data["ReservationId"]
    await driver.execute(make_job(data))
    await driver.execute(make_job(data))
    assert [card.mode for card in encoder_simulator.encoded_cards] == [KeyMode.NEW, KeyMode.COPY] * 2


@pytest.mark.parametrize(
    ("override", "modes", "notes"),
    [
        ({"mode": "new"}, [KeyMode.NEW], "1 key for room 101 (1 new)"),
        ({"Mode": "copy", "Type": "IndustryStandard"}, [KeyMode.COPY], "1 key for room 101 (1 copy)"),
    ],
)
async def test_key_cutter_data_forces_the_mode(
    make_driver, encoder_simulator, override, modes, notes, key_data, make_job
):
    driver = await make_driver(encoder_simulator.port_url)
    await driver.execute(make_job(key_data()))
    assert await driver.execute(make_job(key_data(KeyCutterData=json.dumps(override)))) == notes
    assert [card.mode for card in encoder_simulator.encoded_cards[1:]] == modes


async def test_key_cutter_data_sets_encoder_and_authorisations(
    make_driver, encoder_simulator, key_data, make_job
):
    driver = await make_driver(encoder_simulator.port_url)
    extras = {"encoder": "Encoder2", "eject": "R", "granted": "36", "denied": "1"}
    await driver.execute(make_job(key_data(KeyCutterData=json.dumps(extras))))
    fields = parse_frame(encoder_simulator.requests[0])
    assert (fields[1], fields[2], fields[7], fields[8]) == ("Encoder2", "R", "36", "1")


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"KeyCutterData": "{mode: new"}, "KeyCutterData is not valid JSON"),
        ({"KeyCutterData": '{"mode": "twice"}'}, '"mode" must be "new", "copy" or "auto"'),
        ({"LockIds": ["101", "102", "103", "104", "105"]}, "5 rooms requested (101, 102, 103, 104, 105)"),
        ({"LockIds": ["101", " "]}, "A lock id (LockIds) is empty"),
        ({"LockIds": ["10\u00b31"]}, "Lock id '10³1' cannot be sent to the encoder"),
        ({"KeyCount": 10}, "10 keys requested; at most 9"),
        ({"EndUtc": "2020-01-01T10:00:00Z"}, "The stay ended at 2020-01-01 10:00 UTC"),
        ({"EndUtc": "2200-01-01T10:00:00Z"}, "cards hold dates from 2000 to 2099 only, not 2200-01-01"),
        ({"StartUtc": "1999-12-01T10:00:00Z"}, "cards hold dates from 2000 to 2099 only, not 1999-12-01"),
        ({"EndUtc": "9999-12-31T23:59:59Z"}, "cards hold dates from 2000 to 2099 only, not 9999-12-31"),
    ],
)
async def test_commands_that_cannot_be_cut(make_driver, encoder_simulator, data, message, key_data, make_job):
    driver = await make_driver(encoder_simulator.port_url)
    with pytest.raises(CommandRejected) as caught:
        await driver.execute(make_job(key_data(**data)))
    assert message in caught.value.notes
    assert encoder_simulator.requests == []


async def test_start_after_end_is_rejected(make_driver, encoder_simulator, key_data, make_job, stay_dates):
    driver = await make_driver(encoder_simulator.port_url)
    start, end = stay_dates()
    with pytest.raises(CommandRejected, match="the end must be later than the start"):
        await driver.execute(make_job(key_data(StartUtc=end.isoformat(), EndUtc=start.isoformat())))


async def test_configured_key_limit(make_driver, encoder_simulator, key_data, make_job):
    driver = await make_driver(encoder_simulator.port_url, max_keys=2)
    with pytest.raises(CommandRejected, match="3 keys requested; at most 2 per command"):
        await driver.execute(make_job(key_data(KeyCount=3)))


async def test_unknown_room(make_driver, encoder_simulator, store, key_data, make_job, device_name):
    encoder_simulator.rooms = {"101"}
    driver = await make_driver(encoder_simulator.port_url)
    with pytest.raises(CommandRejected) as caught:
        await driver.execute(make_job(key_data(LockIds=["999"])))
    assert caught.value.notes == f"{device_name}: Room not found in lock system (TD), room 999"


@pytest.mark.parametrize("code", ["ES", "NC", "NF", "OV", "EP", "EF", "ED", "EA", "EO", "EV", "EG"])
async def test_every_salto_error_code_becomes_plain_words(
    make_driver, encoder_simulator, code, key_data, make_job, device_name
):
    encoder_simulator.error_code = code
    driver = await make_driver(encoder_simulator.port_url)
    with pytest.raises(CommandFailed) as caught:
        await driver.execute(make_job(key_data()))
    words = get_dialect("salto").errors[code]
    assert caught.value.notes.startswith(f"{device_name}: {words}")
    assert f"({code}), room 101" in caught.value.notes
    assert encoder_simulator.encoded_cards == []


@pytest.mark.parametrize("encoder_simulator", ["onity"], indirect=True)
@pytest.mark.parametrize("code", ["EN", "ET", "OS"])
async def test_onity_error_codes(make_driver, encoder_simulator, code, key_data, make_job):
    encoder_simulator.error_code = code
    driver = await make_driver(encoder_simulator.port_url, dialect="onity", encoder="1")
    with pytest.raises((CommandFailed, CommandRejected)) as caught:
        await driver.execute(make_job(key_data()))
    assert get_dialect("onity").errors[code] in caught.value.notes


async def test_no_card_in_the_encoder_reads_as_such(make_driver, encoder_simulator, key_data, make_job):
    encoder_simulator.error_code = "EP"
    driver = await make_driver(encoder_simulator.port_url)
    with pytest.raises(CommandFailed, match="No card in the encoder"):
        await driver.execute(make_job(key_data()))


async def test_failed_new_key_keeps_the_earlier_holder(make_driver, encoder_simulator, key_data, make_job):
    driver = await make_driver(encoder_simulator.port_url)
    await driver.execute(make_job(key_data()))
    encoder_simulator.error_code = "EP"
    with pytest.raises(CommandFailed):
        await driver.execute(make_job(key_data(KeyCutterData='{"mode": "new"}')))
    encoder_simulator.error_code = None
    # The encoder refused outright, so the first key is still current: copies are safe.
    assert await driver.execute(make_job(key_data())) == "1 key for room 101 (1 copy)"


async def test_partial_failure_says_what_was_cut(
    make_driver, encoder_simulator, key_data, make_job, device_name
):
    driver = await make_driver(encoder_simulator.port_url)
    encoder_simulator.on_card = lambda card: setattr(encoder_simulator, "error_code", "EP")
    with pytest.raises(CommandFailed) as caught:
        await driver.execute(make_job(key_data(KeyCount=3)))
    assert caught.value.notes == (
        f"{device_name}: No card in the encoder (or it is inserted the wrong way) (EP), room 101. "
        "Cut before that: 1 key for room 101 (1 new); issue a new command for the 2 missing keys"
    )
    encoder_simulator.error_code = None
    encoder_simulator.on_card = None
    assert await driver.execute(make_job(key_data(KeyCount=2))) == "2 keys for room 101 (2 copies)"


async def test_copy_refused_by_the_lock_system_becomes_a_new_key(make_driver, store, key_data, make_job):
    # The journal says res-1 holds room 101, but the lock system (a fresh encoder) has no guest there.
    async with EncoderSimulator(pty=True, tcp=False) as first:
        driver = await make_driver(first.port_url)
        await driver.execute(make_job(key_data()))
    async with EncoderSimulator(pty=True, tcp=False) as second:
        driver = await make_driver(second.port_url)
        assert await driver.execute(make_job(key_data(KeyCount=2))) == "2 keys for room 101 (2 new)"
        assert [card.mode for card in second.encoded_cards] == [KeyMode.NEW, KeyMode.NEW]
        assert [parse_frame(frame)[0] for frame in second.requests] == ["CC2", "CN2"]


async def test_progress_while_waiting_for_cards(make_driver, encoder_simulator, key_data, make_job):
    encoder_simulator.slow = 0.4  # the driver reports every 0.25 s
    driver = await make_driver(encoder_simulator.port_url)
    job = make_job(key_data(KeyCount=2))
    await driver.execute(job)
    reports = job.progress_reports
    assert len(reports) >= 2
    assert reports == sorted(reports)
    assert all(0 < fraction < 1 for fraction in reports)
    # The copy's wait comes after the new key: its reports start from one key of two done.
    assert reports[-1] > 0.5


async def test_garbled_reply_is_not_taken_as_nothing_cut(make_driver, encoder_simulator, key_data, make_job):
    driver = await make_driver(encoder_simulator.port_url)
    await driver.execute(make_job(key_data()))
    encoder_simulator.garbage = True
    with pytest.raises(CommandFailed) as caught:
        await driver.execute(make_job(key_data(KeyCutterData='{"mode": "new"}')))
    assert "may have been cut anyway" in caught.value.notes
    encoder_simulator.garbage = False
    # Unsure whether the new key exists, the driver no longer makes copies of the old one.
    assert await driver.execute(make_job(key_data())) == "1 key for room 101 (1 new)"


async def test_no_reply_in_time(make_driver, encoder_simulator, key_data, make_job):
    encoder_simulator.slow = 5
    driver = await make_driver(encoder_simulator.port_url, card_timeout_s=0.2)
    with pytest.raises(
        CommandFailed, match=r"No reply from the encoder within 0\.2 s\. A key for room 101 may"
    ):
        await driver.execute(make_job(key_data()))


async def test_encoder_gone_silent_after_setup(
    make_driver, encoder_simulator, key_data, make_job, device_name
):
    driver = await make_driver(encoder_simulator.port_url, attempts=1)
    encoder_simulator.silent = True
    with pytest.raises(CommandFailed, match="The encoder does not answer; no key was cut for room 101"):
        await driver.execute(make_job(key_data()))
    assert (await driver.diagnostics())["last_error"].startswith(device_name)


async def test_over_tcp(make_driver, encoder_simulator, key_data, make_job):
    driver = await make_driver(encoder_simulator.tcp_url)
    assert await driver.execute(make_job(key_data(KeyCount=2))) == "2 keys for room 101 (1 new, 1 copy)"


@pytest.mark.parametrize("encoder_simulator", ["onity"], indirect=True)
async def test_onity_whole_path(make_driver, encoder_simulator, key_data, make_job, stay_dates):
    driver = await make_driver(encoder_simulator.port_url, dialect="onity", encoder="2")
    _, end = stay_dates()
    data = key_data(KeyCount=2, EndUtc=(end + timedelta(minutes=45)).isoformat())
    assert await driver.execute(make_job(data)) == "2 keys for room 101 (1 new, 1 copy)"
    new, copy = encoder_simulator.encoded_cards
    assert (new.mode, copy.mode) == (KeyMode.NEW, KeyMode.COPY)
    assert new.name == ""  # Onity prints nothing on the card
    # 11:45 local rounds down to 11:00: a key never outlasts the stay.
    assert new.end == datetime(end.year, end.month, end.day, 11, 0)
    assert parse_frame(encoder_simulator.requests[0])[:3] == ["CN", "2", "E"]


async def test_property_time_zone_by_default(
    make_driver, encoder_simulator, make_ctx, store, key_data, make_job, stay_dates
):
    driver = await make_driver(
        encoder_simulator.port_url, timezone=None, ctx=make_ctx(store, enterprise_timezone="Asia/Kolkata")
    )
    await driver.execute(make_job(key_data()))
    start, _ = stay_dates()
    # 05:00 UTC is 10:30 in India (UTC+05:30, no daylight saving time).
    assert encoder_simulator.encoded_cards[0].start == datetime(start.year, start.month, start.day, 10, 30)


async def test_guest_names_are_normalised(make_driver, encoder_simulator, key_data, make_job):
    driver = await make_driver(encoder_simulator.port_url)
    await driver.execute(make_job(key_data(FirstName="Zoë", LastName="Čapková-Ü")))
    await driver.execute(
        make_job(
            key_data(
                ReservationId="res-2",
                LockIds=["102"],
                FirstName="Łukasz",
                LastName="Żółw",
                NormalizedFirstName="Lukasz",
                NormalizedLastName="Zolw",
            )
        )
    )
    await driver.execute(make_job(key_data(ReservationId="res-3", LockIds=["103"], LastName="X" * 40)))
    await driver.execute(
        make_job(key_data(ReservationId="res-4", LockIds=["104"], FirstName="Søren", LastName="Groß"))
    )
    assert [card.name for card in encoder_simulator.encoded_cards] == [
        "Zoe Capkova-U",
        "Lukasz Zolw",
        "Jane " + "X" * 19,
        "Soren Gross",
    ]


class TestRecovery:
    async def test_completed_command_reports_its_notes(
        self, make_driver, encoder_simulator, key_data, make_job
    ):
        driver = await make_driver(encoder_simulator.port_url)
        job = make_job(key_data(KeyCount=2))
        notes = await driver.execute(job)
        assert await driver.recover(job) == notes
        assert len(encoder_simulator.encoded_cards) == 2  # nothing cut again

    async def test_failed_command_fails_again_without_cutting(
        self, make_driver, encoder_simulator, key_data, make_job
    ):
        encoder_simulator.error_code = "EP"
        driver = await make_driver(encoder_simulator.port_url)
        job = make_job(key_data())
        with pytest.raises(CommandFailed) as first:
            await driver.execute(job)
        with pytest.raises(CommandFailed) as again:
            await driver.recover(job)
        assert again.value.notes == first.value.notes
        assert len(encoder_simulator.requests) == 1

    async def test_unknown_command_asks_staff_to_reissue(
        self, make_driver, encoder_simulator, key_data, make_job
    ):
        driver = await make_driver(encoder_simulator.port_url)
        with pytest.raises(CommandFailed, match="issue the command again"):
            await driver.recover(make_job(key_data()))
        assert encoder_simulator.requests == []

    async def test_command_cut_off_while_waiting_for_a_card(
        self, make_driver, encoder_simulator, key_data, make_job, device_name
    ):
        driver = await make_driver(encoder_simulator.port_url)
        await driver.execute(make_job(key_data()))
        encoder_simulator.slow = 5
        waiting = asyncio.Event()
        job = make_job(key_data(KeyCutterData='{"mode": "new"}'), reported=waiting)
        task = asyncio.create_task(driver.execute(job))
        await waiting.wait()  # the encoder took the request and waits for a card
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

        with pytest.raises(CommandFailed) as caught:
            await driver.recover(job)
        assert caught.value.notes == (
            f"{device_name} was interrupted while cutting 1 key(s) for room 101; 0 were confirmed. "
            "Try the cards at the door and issue the command again for any missing key."
        )
        # The new key may exist, so the earlier one is no longer a safe source of copies.
        assert not driver._ledger.can_copy("res-1", ("101",), datetime.now(UTC))


class TestSetup:
    async def test_silent_encoder_is_not_ready(self, make_driver, encoder_simulator, device_name):
        encoder_simulator.silent = True
        with pytest.raises(DeviceNotReady, match=f"{device_name}: The encoder does not answer"):
            await make_driver(encoder_simulator.port_url, attempts=1)

    async def test_missing_port_is_not_ready(self, make_driver, tmp_path):
        with pytest.raises(DeviceNotReady, match="is not working"):
            await make_driver(str(tmp_path / "ttyUSB9"))

    async def test_unknown_url_scheme_is_a_configuration_error(self, make_driver):
        with pytest.raises(DeviceConfigError, match="protocol 'bogus' not known"):
            await make_driver("bogus://encoder")

    async def test_unload_closes_the_port(self, make_driver, encoder_simulator):
        driver = await make_driver(encoder_simulator.port_url)
        assert (await driver.diagnostics())["port_open"]
        await driver.unload()
        diagnostics = await driver.diagnostics()
        assert not diagnostics["port_open"]
        assert diagnostics["dialect"] == "salto"


async def test_status_tells_whether_the_encoder_link_is_open(
    make_driver, encoder_simulator, key_data, make_job
):
    driver = await make_driver(encoder_simulator.port_url)
    await driver.execute(make_job(key_data()))
    assert await driver.status() == {"encoder_link": "open", "encoder_last_error": None}
    await driver.unload()
    assert (await driver.status())["encoder_link"] == "closed"

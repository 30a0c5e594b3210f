"""Issue 5 acceptance: Mews ``KeyCutter`` commands through a real bridge, which finds the plugin by its
entry point, over a pty to the encoder simulator; checked on what Mews recorded and on the cards."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from mews_bridge.testing import wait_for_final_state
from mews_bridge_serial_keycutter.dialects import KeyMode
from mews_bridge_serial_keycutter.driver import SerialKeycutterDriver

NAME = "Reception encoder"
MEWS_NAME = "Reception key encoder"


@pytest.fixture
def add_cutter(bridge_harness, encoder_simulator):
    """``add_cutter(**options)``: the encoder on its simulator, in Mews and in the settings; its Mews Id."""

    def add(**options):
        options = {"port": encoder_simulator.port_url, "dialect": "salto", "encoder": "Encoder1", **options}
        return bridge_harness.add_device(
            NAME, SerialKeycutterDriver, options, mews_name=MEWS_NAME, identifier="Encoder1"
        )

    return add


@pytest.fixture
def stay():
    """Tomorrow 05:00 UTC to the day after next 02:00 UTC."""
    start = (datetime.now(UTC) + timedelta(days=1)).replace(hour=5, minute=0, second=0, microsecond=0)
    return start, start + timedelta(days=1, hours=21)


@pytest.fixture
def reservation_id(mews_simulator, stay):
    guest = mews_simulator.add_customer("Nováková", "Zoë")
    start, end = stay
    return mews_simulator.add_reservation(
        guest, mews_simulator.resource_id("101"), start_utc=start, end_utc=end
    )


async def cut_keys(sim, cutter_id, reservation_id, key_count):
    return await wait_for_final_state(sim, sim.add_key_cutter_command(cutter_id, reservation_id, key_count))


@pytest.mark.parametrize(
    "timezone", ["Asia/Tokyo", None], ids=["configured time zone", "property's time zone"]
)
async def test_a_mews_command_cuts_a_new_key_and_a_copy_for_the_guest(
    mews_simulator, encoder_simulator, bridge_harness, add_cutter, reservation_id, stay, timezone
):
    cutter_id = add_cutter(timezone=timezone)
    async with bridge_harness.running():
        final = await cut_keys(mews_simulator, cutter_id, reservation_id, key_count=2)

    assert (final["State"], final["Notes"]) == ("Processed", "2 keys for room 101 (1 new, 1 copy)")
    new, copy = encoder_simulator.encoded_cards
    assert (new.mode, copy.mode) == (KeyMode.NEW, KeyMode.COPY)
    # Without the option, the property's time zone as Mews' configuration/get gives it.
    zone = ZoneInfo(timezone or mews_simulator.timezone)
    start, end = (moment.astimezone(zone).replace(tzinfo=None) for moment in stay)
    for card in (new, copy):
        assert (card.rooms, card.start, card.end) == (("101",), start, end)
        assert card.name == "Zoe Novakova"  # Mews' normalised names, printed on the card
        assert card.encoder == "Encoder1"
        assert card.valid


async def test_a_second_command_for_the_reservation_gives_copies_after_a_restart(
    mews_simulator, encoder_simulator, bridge_harness, add_cutter, reservation_id, stay
):
    cutter_id = add_cutter()
    async with bridge_harness.running() as bridge:
        first = await cut_keys(mews_simulator, cutter_id, reservation_id, key_count=1)
        assert first["Notes"] == "1 key for room 101 (1 new)"
        # Who holds room 101's current key is kept in the bridge's journal, under the device's name.
        store = bridge.instances[0].ctx.store
        assert await store.items("room:") == {
            "room:101": {"reservation_id": reservation_id, "valid_until": stay[1].isoformat()}
        }

    async with bridge_harness.running():
        second = await cut_keys(mews_simulator, cutter_id, reservation_id, key_count=2)

    assert (second["State"], second["Notes"]) == ("Processed", "2 keys for room 101 (2 copies)")
    modes = [card.mode for card in encoder_simulator.encoded_cards]
    assert modes == [KeyMode.NEW, KeyMode.COPY, KeyMode.COPY]
    assert len(encoder_simulator.valid_cards("101")) == 3  # the guest's first key still opens the door


@pytest.mark.parametrize(
    ("code", "words"),
    [
        ("EP", "No card in the encoder (or it is inserted the wrong way)"),
        ("TD", "Room not found in lock system"),
    ],
)
async def test_an_encoder_error_ends_in_error_with_plain_words_and_the_next_command_cuts(
    mews_simulator, encoder_simulator, bridge_harness, add_cutter, reservation_id, code, words
):
    cutter_id = add_cutter()
    async with bridge_harness.running():
        encoder_simulator.error_code = code
        failed = await cut_keys(mews_simulator, cutter_id, reservation_id, key_count=1)
        assert (failed["State"], failed["Notes"]) == ("Error", f"{NAME}: {words} ({code}), room 101")
        assert encoder_simulator.encoded_cards == []

        encoder_simulator.error_code = None
        done = await cut_keys(mews_simulator, cutter_id, reservation_id, key_count=1)
    assert (done["State"], done["Notes"]) == ("Processed", "1 key for room 101 (1 new)")

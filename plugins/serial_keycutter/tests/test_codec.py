"""Frames byte for byte, without any I/O."""

from __future__ import annotations

from datetime import datetime

import pytest

from mews_bridge_serial_keycutter.codec import (
    ACK,
    ENQ,
    NAK,
    Control,
    FieldError,
    Frame,
    FrameError,
    FrameScanner,
    Noise,
    build_frame,
    lrc,
    parse_frame,
)
from mews_bridge_serial_keycutter.dialects import KeyMode, KeyRequest, Reply, get_dialect

# docs/reference/key-cutters.md, section 5: two new cards for room 101 on Encoder1,
# 14:00 23-11-2026 -> 11:00 25-11-2026.
WORKED_EXAMPLE = bytes.fromhex(
    "02 b3 43 4e 32 b3 45 6e 63 6f 64 65 72 31 b3 45 b3 31 30 31 b3 b3 b3 b3 b3 b3"
    "31 34 30 30 32 33 31 31 32 36 b3 31 31 30 30 32 35 31 31 32 36 b3 4d 65 77 73"
    "42 72 69 64 67 65 b3 4a 61 6e 65 20 44 6f 65 b3 b3 b3 30 b3 03 f1"
)
# The same stay as an Onity copy for encoder 3 opening rooms 101 and 102 (HHddMMyy, two empty tracks).
ONITY_COPY = bytes.fromhex(
    "02 b3 43 43 b3 33 b3 45 b3 31 30 31 b3 31 30 32 b3 b3 b3 b3 b3 31 34 32 33 31 31 32 36 b3"
    "31 31 32 35 31 31 32 36 b3 4d 65 77 73 42 72 69 64 67 65 b3 b3 b3 03 d5"
)
# Error reply "TD" (unknown room): LRC = B3 ^ 'T' ^ 'D' ^ B3 ^ ETX = 0x13.
TD_REPLY = bytes.fromhex("02 b3 54 44 b3 03 13")

START = datetime(2026, 11, 23, 14, 0)
END = datetime(2026, 11, 25, 11, 0)


def salto_example() -> KeyRequest:
    return KeyRequest(
        mode=KeyMode.NEW,
        count=2,
        encoder="Encoder1",
        rooms=("101",),
        start=START,
        end=END,
        eject="E",
        operator="MewsBridge",
        print_lines=("Jane Doe",),
    )


def onity_copy() -> KeyRequest:
    return KeyRequest(
        mode=KeyMode.COPY,
        count=1,
        encoder="3",
        rooms=("101", "102"),
        start=START,
        end=END,
        operator="MewsBridge",
    )


def test_worked_example_is_encoded_byte_for_byte():
    frame = get_dialect("salto").encode_request(salto_example())
    assert frame == WORKED_EXAMPLE
    assert len(frame) == 74


def test_worked_example_decodes_back_to_the_request():
    assert get_dialect("salto").decode_request(WORKED_EXAMPLE) == salto_example()


def test_onity_frame_byte_for_byte():
    onity = get_dialect("onity")
    assert onity.encode_request(onity_copy()) == ONITY_COPY
    assert onity.decode_request(ONITY_COPY) == onity_copy()


def test_single_key_command_has_no_count():
    frame = get_dialect("salto").encode_request(KeyRequest(**{**salto_example().__dict__, "count": 1}))
    assert parse_frame(frame)[0] == "CN"


def test_error_reply_golden_frame():
    salto = get_dialect("salto")
    assert salto.encode_reply(Reply("TD")) == TD_REPLY
    reply = salto.decode_reply(TD_REPLY)
    assert reply == Reply("TD")
    assert salto.error_text(reply) == "Room not found in lock system"


def test_success_reply_is_not_an_error():
    salto = get_dialect("salto")
    assert salto.error_text(Reply("CN2", ("Encoder1",))) is None
    assert salto.error_text(Reply("CC", ("Encoder1",))) is None


def test_general_error_carries_the_lock_systems_words():
    text = get_dialect("salto").error_text(Reply("EG", ("Encoder1", "Database locked")))
    assert text == "The lock system reported an error: Database locked"


def test_unknown_reply_code_is_reported():
    assert get_dialect("onity").error_text(Reply("ZZ")) == "The encoder gave an unknown answer 'ZZ'"


@pytest.mark.parametrize(
    ("dialect", "code", "words"),
    [
        ("salto", "EP", "No card in the encoder"),
        ("salto", "EA", "checked out"),
        ("onity", "EA", "one-shot"),
        ("onity", "ET", "jammed"),
    ],
)
def test_error_words_per_dialect(dialect, code, words):
    assert words in get_dialect(dialect).error_text(Reply(code))


def test_lrc_covers_everything_after_stx_through_etx():
    assert lrc(WORKED_EXAMPLE[1:-1]) == 0xF1
    assert lrc(b"") == 0


def test_parse_frame_rejects_a_wrong_lrc():
    broken = WORKED_EXAMPLE[:-1] + b"\x00"
    with pytest.raises(FrameError):
        parse_frame(broken)


def test_parse_frame_rejects_fields_without_separators():
    body = b"CN\x03"
    with pytest.raises(FrameError):
        parse_frame(b"\x02" + body + bytes([lrc(body)]))


@pytest.mark.parametrize("text", ["a\xb3b", "line\r", "\x02", "Jiří"])
def test_fields_refuse_what_the_line_cannot_carry(text):
    with pytest.raises(FieldError):
        build_frame(["CN", text])


def test_salto_keeps_minutes_and_onity_drops_them():
    moment = datetime(2026, 11, 25, 11, 45, 30)
    assert get_dialect("salto").card_time(moment) == datetime(2026, 11, 25, 11, 45)
    assert get_dialect("onity").card_time(moment) == datetime(2026, 11, 25, 11, 0)


@pytest.mark.parametrize("dialect", ["salto", "onity"])
def test_early_morning_dates_round_trip(dialect):
    codec = get_dialect(dialect)
    request = KeyRequest(
        mode=KeyMode.NEW,
        count=1,
        encoder="1",
        rooms=("7",),
        start=datetime(2027, 1, 2, 0),
        end=datetime(2027, 1, 3, 9),
    )
    assert codec.decode_request(codec.encode_request(request)) == request


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"rooms": ("1", "2", "3", "4", "5")}, "1 to 4 rooms"),
        ({"count": 10}, "1 to 9 cards"),
        ({"print_lines": ("x" * 25,)}, "at most 3 lines of 24"),
    ],
)
def test_salto_limits(change, message):
    with pytest.raises(ValueError, match=message):
        get_dialect("salto").encode_request(KeyRequest(**{**salto_example().__dict__, **change}))


def test_onity_prints_nothing_and_numbers_encoders():
    onity = get_dialect("onity")
    with pytest.raises(ValueError, match="at most 0 lines"):
        onity.encode_request(KeyRequest(**{**onity_copy().__dict__, "print_lines": ("Jane Doe",)}))
    with pytest.raises(ValueError, match="numbered"):
        onity.encode_request(KeyRequest(**{**onity_copy().__dict__, "encoder": "Encoder1"}))


def test_decode_request_refuses_a_frame_of_the_other_dialect():
    with pytest.raises(ValueError, match="16"):
        get_dialect("salto").decode_request(ONITY_COPY)


class TestFrameScanner:
    def test_control_bytes_frames_and_noise(self):
        scanner = FrameScanner()
        events = scanner.feed(bytes([ENQ]) + b"zz" + WORKED_EXAMPLE + bytes([ACK, NAK]))
        assert events == [Control(ENQ), Noise(b"zz"), Frame(WORKED_EXAMPLE), Control(ACK), Control(NAK)]

    def test_a_frame_split_over_many_reads(self):
        scanner = FrameScanner()
        events = []
        for index in range(len(WORKED_EXAMPLE)):
            events += scanner.feed(WORKED_EXAMPLE[index : index + 1])
            assert scanner.in_frame == (index < len(WORKED_EXAMPLE) - 1)
        assert events == [Frame(WORKED_EXAMPLE)]

    def test_control_bytes_inside_a_frame_are_data(self):
        # The LRC may take any value: "AD" gives an LRC equal to ACK, "@A" one equal to STX.
        ack_lrc, stx_lrc = build_frame(["AD"]), build_frame(["@A"])
        assert (ack_lrc[-1], stx_lrc[-1]) == (ACK, 0x02)
        assert FrameScanner().feed(ack_lrc + stx_lrc + TD_REPLY) == [
            Frame(ack_lrc),
            Frame(stx_lrc),
            Frame(TD_REPLY),
        ]

    def test_runaway_frame_becomes_noise(self):
        scanner = FrameScanner()
        events = scanner.feed(b"\x02" + b"x" * 2000)
        assert all(isinstance(event, Noise) for event in events)
        assert sum(len(event.data) for event in events) == 2001
        assert not scanner.in_frame

    def test_reset_forgets_a_partial_frame(self):
        scanner = FrameScanner()
        scanner.feed(WORKED_EXAMPLE[:10])
        scanner.reset()
        assert scanner.feed(TD_REPLY) == [Frame(TD_REPLY)]

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest

from mews_bridge_asterisk_pbx.cdr import (
    CdrError,
    charge_item_name,
    consumption_utc,
    format_duration,
    not_billable_reason,
    parse_cdr,
)
from mews_bridge_asterisk_pbx.codec import AmiParser, Message
from mews_bridge_mocks.ami import captures

UTC_ZONE = ZoneInfo("UTC")
WARSAW = ZoneInfo("Europe/Warsaw")
ROOMS = {"101", "102"}


def captured(data: bytes = captures.CDR_ANSWERED) -> Message:
    [message] = AmiParser(expect_banner=False).feed(data)
    return message


def cdr(drop: tuple[str, ...] = (), **changes: str) -> Message:
    """The captured answered CDR with some fields changed (same order) or dropped."""
    pairs = [(k, changes.pop(k, v)) for k, v in captured().pairs if k not in drop]
    return Message(pairs + list(changes.items()))


def reason(message: Message, **options):
    return not_billable_reason(parse_cdr(message, UTC_ZONE), ROOMS.__contains__, **options)


# Parsing


def test_captured_answered_call():
    record = parse_cdr(captured(), UTC_ZONE)
    assert record.start == datetime(2026, 11, 23, 9, 2, 11, tzinfo=UTC)
    assert record.answer == datetime(2026, 11, 23, 9, 2, 15, tzinfo=UTC)
    assert record.end == datetime(2026, 11, 23, 9, 2, 20, tzinfo=UTC)
    assert (record.duration, record.billable_seconds, record.disposition) == (9, 5, "ANSWERED")
    assert record.destination == "00442071234567"
    assert record.caller_id == '"Room 101" <101>'
    assert record.custom == {"Room": "101", "GuestLanguage": "fr"}
    assert record.extension == "101"
    assert record.dedupe_key == "cdr-1795424531.48"


def test_captured_unanswered_call_has_no_answer_time():
    record = parse_cdr(captured(captures.CDR_NO_ANSWER), UTC_ZONE)
    assert record.answer is None
    assert record.billable_seconds == 0


def test_times_are_converted_from_the_pbx_zone():
    record = parse_cdr(captured(), WARSAW)  # CET in November: UTC+1
    assert record.start == datetime(2026, 11, 23, 8, 2, 11, tzinfo=UTC)
    assert consumption_utc(record) == "2026-11-23T08:02:11Z"


@pytest.mark.parametrize(
    ("unique_id", "utc_hour"),
    [("1792888200.7", 0), ("1792891800.7", 1)],  # 00:30 UTC (CEST) and 01:30 UTC (CET)
)
def test_the_repeated_hour_is_told_apart_by_the_unique_id(unique_id, utc_hour):
    # 2026-10-25 02:30 happens twice in Warsaw; UniqueID holds the channel's creation time.
    message = cdr(
        StartTime="2026-10-25 02:30:00",
        AnswerTime="2026-10-25 02:30:04",
        EndTime="2026-10-25 02:30:09",
        UniqueID=unique_id,
    )
    record = parse_cdr(message, WARSAW)
    assert record.start == datetime(2026, 10, 25, utc_hour, 30, tzinfo=UTC)
    assert record.end == datetime(2026, 10, 25, utc_hour, 30, 9, tzinfo=UTC)


def test_sequence_makes_split_calls_distinct():
    record = parse_cdr(cdr(LinkedID="1795424531.48", Sequence="37"), UTC_ZONE)
    assert record.dedupe_key == "cdr-1795424531.48-37"
    assert record.linked_id == "1795424531.48"


def test_room_from_the_channel_when_not_mapped():
    record = parse_cdr(cdr(drop=("Room", "GuestLanguage")), UTC_ZONE)
    assert record.extension == "101"
    local = parse_cdr(cdr(drop=("Room",), Channel="Local/009981234@from-rooms-0000000d;2"), UTC_ZONE)
    assert local.extension is None


@pytest.mark.parametrize(
    ("message", "error"),
    [
        (cdr(drop=("BillableSeconds",)), "without BillableSeconds"),
        (cdr(Duration="nine"), "Duration is not a whole number"),
        (cdr(StartTime="23/11/2026 09:02"), "not YYYY-MM-DD HH:MM:SS"),
        (Message([("Event", "UserEvent")]), "Not a Cdr event"),
        (cdr(Destination="0044\ufffd207"), "Destination is not valid text"),
        (cdr(UniqueID="1795424531.48\x07"), "UniqueID is not valid text"),
        (cdr(Room="10\ud8001"), "Room is not valid text"),
        (cdr(BillableSeconds="9" * 5000), "BillableSeconds is not a whole number"),
    ],
)
def test_malformed_events(message, error):
    with pytest.raises(CdrError, match=error):
        parse_cdr(message, UTC_ZONE)


def test_times_beyond_the_calendar_are_refused_not_raised():
    new_york = ZoneInfo("America/New_York")
    with pytest.raises(CdrError, match="out of range"):
        parse_cdr(cdr(StartTime="9999-12-31 23:59:59"), new_york)


def test_garbage_bytes_on_the_wire_never_become_text_that_breaks_later():
    """Bytes that are not UTF-8 (a CESU-encoded surrogate here) decode to U+FFFD, which the CDR refuses."""
    raw = captures.CDR_ANSWERED.replace(b"Destination: 0044", b"Destination: \xed\xa0\x80")
    with pytest.raises(CdrError, match="Destination is not valid text"):
        parse_cdr(captured(raw), UTC_ZONE)
    record = parse_cdr(captured(captures.CDR_ANSWERED.replace(b"Room 101", b"Room \xff")), UTC_ZONE)
    assert record.caller_id.encode("utf-8")  # a garbled caller name is kept: it decides nothing


# Which CDRs to rate


def test_the_guests_answered_outside_call_is_billable():
    assert reason(captured()) is None


@pytest.mark.parametrize(
    ("changes", "why"),
    [
        ({"Disposition": "NO ANSWER", "BillableSeconds": "0", "AnswerTime": ""}, "not answered (NO ANSWER)"),
        ({"Disposition": "BUSY", "BillableSeconds": "0", "Duration": "0"}, "not answered (BUSY)"),
        # Answer() before Dial: billable seconds although nobody picked up
        ({"Disposition": "NO ANSWER", "BillableSeconds": "30"}, "not answered (NO ANSWER)"),
        ({"BillableSeconds": "0"}, "no billable seconds"),
        ({"LastApplication": "Hangup"}, "not a Dial (Hangup)"),
        ({"LastApplication": "Wait"}, "not a Dial (Wait)"),
        ({"DestinationChannel": ""}, "no called channel"),
        ({"Room": "999"}, "not from a room phone"),
        ({"Destination": "102", "DestinationChannel": "PJSIP/102-00000003"}, "call to another room"),
    ],
)
def test_what_is_not_billed(changes, why):
    assert reason(cdr(**changes)) == why


def test_local_channel_scenario_rates_exactly_one_cdr():
    """Answered call through Local channels (docs/reference/asterisk-ami.md, section 4): three CDRs,
    one to rate."""
    pstn_leg = cdr(
        drop=("Room", "GuestLanguage"),
        Channel="Local/0221234567@fake-pstn-00000002;2",
        DestinationChannel="",
        LastApplication="Hangup",
        DestinationContext="fake-pstn",
    )
    dialling = cdr(
        Channel="Local/00221234567@from-rooms-00000000;2",
        DestinationChannel="Local/0221234567@fake-pstn-00000002;1",
        BillableSeconds="3",
        Duration="3",
    )
    originator = cdr(
        drop=("Room", "GuestLanguage"),
        Channel="Local/00221234567@from-rooms-00000000;1",
        DestinationChannel="",
        LastApplication="Wait",
    )
    assert [reason(m) for m in (pstn_leg, dialling, originator)] == [
        "not a Dial (Hangup)",
        None,
        "not a Dial (Wait)",
    ]


def test_a_trunk_call_without_room_field_is_not_a_room_call():
    message = cdr(drop=("Room",), Channel="PJSIP/trunk-00000004", AccountCode="101")
    assert reason(message) == "not from a room phone"  # AccountCode alone proves nothing


def test_outbound_contexts_when_configured():
    assert reason(captured(), outbound_contexts={"outbound"}) is None
    assert reason(cdr(DestinationContext="from-rooms"), outbound_contexts={"outbound"}) == (
        "not dialled in an outbound context (from-rooms)"
    )


# On the bill


@pytest.mark.parametrize(
    ("seconds", "text"),
    [(0, "0 s"), (45, "45 s"), (60, "1 min"), (192, "3 min 12 s"), (3600, "1 h"), (3725, "1 h 2 min 5 s")],
)
def test_durations(seconds, text):
    assert format_duration(seconds) == text


def test_charge_item_name():
    assert charge_item_name("+48 22 123 45 67", 192) == "Call to +48 22 123 45 67 (3 min 12 s)"

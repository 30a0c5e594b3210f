import pytest

from mews_bridge_asterisk_pbx.codec import AmiParser, AmiProtocolError, Message, encode_message, make_message
from mews_bridge_mocks.ami import captures


def feed_in_pieces(data: bytes, size: int, banner: bool = True) -> tuple[AmiParser, list[Message]]:
    parser = AmiParser(expect_banner=banner)
    messages = []
    for offset in range(0, len(data), size):
        messages += parser.feed(data[offset : offset + size])
    return parser, messages


def test_banner_then_messages_in_one_read():
    parser = AmiParser()
    messages = parser.feed(captures.BANNER + captures.LOGIN_OK + captures.FULLY_BOOTED)
    assert parser.banner == "Asterisk Call Manager/11.0.0"
    assert [(m.kind, m.name) for m in messages] == [("Response", "Success"), ("Event", "FullyBooted")]
    assert messages[0].action_id == "1"
    assert messages[0]["Message"] == "Authentication accepted"


def test_captured_cdr_keeps_every_field_in_wire_order():
    parser = AmiParser(expect_banner=False)
    [cdr] = parser.feed(captures.CDR_ANSWERED)
    assert cdr.is_event and cdr.name == "Cdr"
    assert [k for k, _ in cdr.pairs][:4] == ["Event", "Privilege", "AccountCode", "Source"]
    assert cdr["CallerID"] == '"Room 101" <101>'
    assert cdr["UserField"] == ""  # sent as "UserField: " with the trailing space
    assert cdr["GuestLanguage"] == "fr"
    assert cdr.encode() == captures.CDR_ANSWERED  # parse → encode is lossless


@pytest.mark.parametrize("size", [1, 2, 3, 7, 64])
def test_any_split_gives_the_same_messages(size):
    data = captures.BANNER + captures.LOGIN_OK + captures.CDR_UTF8 + captures.DBGET + captures.COMMAND
    _, whole = feed_in_pieces(data, len(data))
    parser, pieces = feed_in_pieces(data, size)
    assert pieces == whole
    assert parser.banner == "Asterisk Call Manager/11.0.0"
    assert len(whole) == 6


def test_utf8_character_split_between_reads_survives():
    parser = AmiParser(expect_banner=False)
    cut = captures.CDR_UTF8.index("ü".encode()) + 1  # between the two bytes of "ü"
    assert parser.feed(captures.CDR_UTF8[:cut]) == []
    [cdr] = parser.feed(captures.CDR_UTF8[cut:])
    assert cdr["CallerID"] == '"Jürgen Müller" <101>'


def test_invalid_utf8_is_replaced_not_dropped():
    [message] = AmiParser(expect_banner=False).feed(b"Event: UserEvent\r\nName: J\xfcrgen\r\n\r\n")
    assert message["Name"] == "J\ufffdrgen"


def test_command_output_lines_are_kept_in_order():
    [reply] = AmiParser(expect_banner=False).feed(captures.COMMAND)
    assert reply.get_all("Output") == [
        "/hotel/101/outside".ljust(50) + ": " + "1".ljust(25),
        "1 results found.",
    ]


def test_pre_14_follows_output_becomes_output_pairs():
    old = (
        b"Response: Follows\r\nPrivilege: Command\r\nActionID: 9\r\n"
        b"Name/username: 101\n\nKey: not a header\n--END COMMAND--\r\n\r\n"
        b"Event: FullyBooted\r\nPrivilege: system,all\r\n\r\n"
    )
    _, messages = feed_in_pieces(old, 5, banner=False)
    reply, event = messages
    assert reply.name == "Follows" and reply.action_id == "9"
    assert reply.get_all("Output") == ["Name/username: 101", "", "Key: not a header"]
    assert event.name == "FullyBooted"


def test_event_list_response_and_items_share_the_action_id():
    messages = AmiParser(expect_banner=False).feed(captures.DBGET)
    assert [m.get("EventList") for m in messages] == ["start", None, "Complete"]
    assert {m.action_id for m in messages} == {"3"}  # DBGetResponse carries it last
    assert messages[1]["Val"] == "1"


def test_repeated_keys_first_wins_and_all_are_kept():
    message = Message([("Action", "Originate"), ("Variable", "A=1"), ("variable", "B=2")])
    assert message["Variable"] == "A=1"
    assert message.get_all("VARIABLE") == ["A=1", "B=2"]


def test_lookup_is_case_insensitive():
    [cdr] = AmiParser(expect_banner=False).feed(captures.CDR_ANSWERED)
    assert cdr.get("uniqueid") == "1795424531.48"
    assert "BILLABLESECONDS" in cdr
    assert cdr.get("Nope") is None
    with pytest.raises(KeyError):
        cdr["Nope"]


def test_stray_blank_lines_between_messages_are_ignored():
    data = b"\r\n\r\n" + captures.PING + b"\r\n" + captures.SHUTDOWN
    messages = AmiParser(expect_banner=False).feed(data)
    assert [m.name for m in messages] == ["Success", "Shutdown"]


def test_a_peer_that_never_ends_a_message_is_cut_off():
    parser = AmiParser(expect_banner=False, max_message_size=1000)
    parser.feed(b"Event: X\r\n")
    with pytest.raises(AmiProtocolError, match="larger than 1000 bytes"):
        parser.feed(b"Junk: " + b"x" * 1000)


def test_encoding_an_action_puts_action_id_second():
    message = make_message(
        "Action",
        "Originate",
        {"Channel": "PJSIP/101", "Async": True, "Timeout": 20000, "Variable": ["A=1", "B=2"]},
        action_id="7",
    )
    assert message.encode() == (
        b"Action: Originate\r\nActionID: 7\r\nChannel: PJSIP/101\r\nAsync: true\r\nTimeout: 20000\r\n"
        b"Variable: A=1\r\nVariable: B=2\r\n\r\n"
    )


@pytest.mark.parametrize("value", ["John\r\nAction: Originate", "line\nbreak", "cr\r"])
def test_line_breaks_cannot_inject_headers(value):
    with pytest.raises(ValueError, match="line break"):
        encode_message([("Action", "DBPut"), ("Val", value)])


@pytest.mark.parametrize("key", ["", "Bad:Key", "Bad\nKey"])
def test_invalid_keys_are_refused(key):
    with pytest.raises(ValueError):
        encode_message([(key, "x")])


def test_repr_never_shows_the_secret():
    login = make_message("Action", "Login", {"Username": "u", "Secret": "hunter2"})
    md5 = make_message("Action", "Login", {"Username": "u", "AuthType": "MD5", "Key": "abc123"})
    dbput = make_message("Action", "DBPut", {"Family": "hotel/101", "Key": "outside"})
    assert "hunter2" not in repr(login)
    assert "abc123" not in repr(md5)
    assert "outside" in repr(dbput)


def test_action_id_is_found_without_splitting_the_message():
    response, item, done = AmiParser(expect_banner=False).feed(captures.DBGET)
    assert (item.action_id, item.kind, item.name) == ("3", "Event", "DBGetResponse")  # ActionID last
    assert (response.action_id, done.action_id) == ("3", "3")
    assert item["Val"] == "1" and item.action_id == "3"  # the same once split


def test_answers_find_an_oddly_spelled_action_id_events_do_not():
    answer, event = AmiParser(expect_banner=False).feed(
        b"Response: Success\r\nactionid: 5\r\n\r\nEvent: Odd\r\nactionid: 6\r\n\r\n"
    )
    assert answer.action_id == "5"
    assert event.action_id is None  # Asterisk spells it ActionID; events skip the slow lookup
    assert event.get("ActionID") == "6"

"""The AMI simulator speaks as Asterisk 22 does: checked byte for byte with a raw TCP client."""

import asyncio
import contextlib
from datetime import datetime

import pytest
from click.testing import CliRunner

from mews_bridge_asterisk_pbx.cdr import STANDARD_FIELDS
from mews_bridge_asterisk_pbx.codec import AmiParser, Message
from mews_bridge_mocks.ami import AmiSimulator, captures
from mews_bridge_mocks.ami.cli import command

# Tasks first: its check runs after every other fixture has closed its sockets.
pytestmark = pytest.mark.usefixtures("verify_no_lingering_tasks", "verify_cleanup")
GUARD = 5.0


@pytest.fixture
async def sim():
    async with AmiSimulator(secret="s3cret", auth_failure_delay=0.0) as simulator:
        yield simulator


class Raw:
    """A bare AMI client: sends bytes, reads whole messages."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer

    @classmethod
    async def open(cls, sim: AmiSimulator) -> "Raw":
        return cls(*await asyncio.open_connection("127.0.0.1", sim.port))

    async def banner(self) -> bytes:
        return await self.reader.readline()

    async def read(self) -> bytes:
        async with asyncio.timeout(GUARD):
            return await self.reader.readuntil(b"\r\n\r\n")

    async def message(self) -> Message:
        [message] = AmiParser(expect_banner=False).feed(await self.read())
        return message

    async def send(self, data: bytes) -> None:
        self.writer.write(data)
        await self.writer.drain()

    async def login(self, secret: str = "s3cret", events: str = "") -> bytes:
        await self.banner()
        extra = f"Events: {events}\r\n".encode() if events else b""
        await self.send(
            b"Action: Login\r\nActionID: 1\r\nUsername: mewsbridge\r\nSecret: "
            + secret.encode()
            + b"\r\n"
            + extra
            + b"\r\n"
        )
        return await self.read()

    async def at_eof(self) -> bool:
        async with asyncio.timeout(GUARD):
            return await self.reader.read() == b""

    def close(self) -> None:
        self.writer.close()


async def test_banner_is_the_asterisk_22_line(sim):
    raw = await Raw.open(sim)
    assert await raw.banner() == captures.BANNER
    raw.close()


async def test_login_success_then_fully_booted(sim):
    raw = await Raw.open(sim)
    assert await raw.login() == captures.LOGIN_OK
    booted = await raw.message()
    assert [k for k, _ in booted.pairs] == ["Event", "Privilege", "Uptime", "LastReload", "Status"]
    assert booted["Status"] == "Fully Booted"
    raw.close()


async def test_login_without_system_class_gets_no_fully_booted(sim):
    raw = await Raw.open(sim)
    await raw.login(events="cdr")
    await raw.send(b"Action: Ping\r\nActionID: 2\r\n\r\n")
    assert (await raw.message()).get("Ping") == "Pong"
    raw.close()


async def test_login_failure_answers_then_hangs_up(sim):
    raw = await Raw.open(sim)
    reply = await raw.login(secret="wrong")
    assert reply == b"Response: Error\r\nActionID: 1\r\nMessage: Authentication failed\r\n\r\n"
    assert await raw.at_eof()
    assert sim.failed_logins == 1 and sim.logins == 0


async def test_garbage_without_end_is_cut_off():
    async with AmiSimulator() as simulator:
        raw = await Raw.open(simulator)
        await raw.banner()
        await raw.send(b"x" * (1 << 20) + b"y" * 10)  # a megabyte and no blank line
        with contextlib.suppress(ConnectionResetError):  # RST if our bytes were still unread
            assert await raw.at_eof()
        assert simulator.sessions == 0


async def test_actions_before_login_are_denied(sim):
    raw = await Raw.open(sim)
    await raw.banner()
    await raw.send(b"Action: DBGet\r\nActionID: 5\r\nFamily: hotel/101\r\nKey: outside\r\n\r\n")
    assert await raw.read() == b"Response: Error\r\nActionID: 5\r\nMessage: Permission denied\r\n\r\n"
    raw.close()


async def test_unauthenticated_connections_time_out():
    async with AmiSimulator(auth_timeout=0.05) as simulator:
        raw = await Raw.open(simulator)
        await raw.banner()
        assert await raw.at_eof()


async def test_unknown_action(sim):
    raw = await Raw.open(sim)
    await raw.login(events="off")
    await raw.send(b"Action: Bogus\r\nActionID: 2\r\n\r\n")
    assert await raw.read() == (
        b"Response: Error\r\nActionID: 2\r\nMessage: Invalid/unknown command: Bogus. "
        b"Use Action: ListCommands to show available commands.\r\n\r\n"
    )
    raw.close()


async def test_ping_answer_has_asterisks_fields(sim):
    raw = await Raw.open(sim)
    await raw.login(events="off")
    await raw.send(b"Action: Ping\r\nActionID: 2\r\n\r\n")
    pong = await raw.message()
    assert [k for k, _ in pong.pairs] == ["Response", "ActionID", "Ping", "Timestamp"]
    raw.close()


async def test_dbget_is_a_list_with_action_id_after_val(sim):
    sim.astdb["/hotel/101/outside"] = "1"
    raw = await Raw.open(sim)
    await raw.login(events="off")
    await raw.send(b"Action: DBGet\r\nActionID: 3\r\nFamily: hotel/101\r\nKey: outside\r\n\r\n")
    assert b"".join([await raw.read() for _ in range(3)]) == captures.DBGET
    await raw.send(b"Action: DBGet\r\nActionID: 4\r\nFamily: hotel/101\r\nKey: nope\r\n\r\n")
    assert await raw.read() == b"Response: Error\r\nActionID: 4\r\nMessage: Database entry not found\r\n\r\n"
    raw.close()


async def test_astdb_put_tree_and_delete(sim):
    raw = await Raw.open(sim)
    await raw.login(events="off")
    await raw.send(
        b"Action: DBPut\r\nActionID: 2\r\nFamily: hotel/101\r\nKey: name\r\nVal: J\xc3\xbcrgen\r\n\r\n"
    )
    assert (await raw.message())["Message"] == "Updated database successfully"
    assert sim.astdb == {"/hotel/101/name": "Jürgen"}
    await raw.send(b"Action: DBGetTree\r\nActionID: 3\r\nFamily: hotel\r\n\r\n")
    start, item, done = [await raw.message() for _ in range(3)]
    assert start.get("EventList") == "start"
    assert item.pairs == [
        ("Event", "DBGetTreeResponse"),
        ("Key", "/hotel/101/name"),
        ("Val", "Jürgen"),
        ("ActionID", "3"),
    ]
    assert (done.name, done["ListItems"]) == ("DBGetTreeComplete", "1")
    await raw.send(b"Action: DBDel\r\nActionID: 4\r\nFamily: hotel/101\r\nKey: name\r\n\r\n")
    assert (await raw.message())["Message"] == "Key deleted successfully"
    await raw.send(b"Action: DBDel\r\nActionID: 5\r\nFamily: hotel/101\r\nKey: name\r\n\r\n")
    assert (await raw.message())["Message"] == "Database entry could not be deleted"
    sim.astdb.update({"/hotel/101/outside": "1", "/hotel/1010/outside": "1"})
    await raw.send(b"Action: DBDelTree\r\nActionID: 6\r\nFamily: hotel\r\nKey: 101\r\n\r\n")
    assert (await raw.message())["Message"] == "Key tree deleted successfully"
    assert sim.astdb == {"/hotel/1010/outside": "1"}  # a tree, not a prefix of names
    await raw.send(b"Action: DBDelTree\r\nActionID: 7\r\nFamily: hotel\r\nKey: 101\r\n\r\n")
    assert (await raw.message())["Message"] == "Database entry not found"
    raw.close()


async def test_cdr_matches_the_captured_event(sim):
    sim.astdb["/hotel/101/language"] = "fr"
    raw = await Raw.open(sim)
    await raw.login(events="cdr")
    cdr = await sim.place_call(
        "101", "00442071234567", billsec=5, duration=9, start=datetime(2026, 11, 23, 9, 2, 11)
    )
    sent = await raw.read()
    assert sent == cdr.encode()
    assert sent == captures.CDR_ANSWERED.replace(b"1795424531.48", cdr["UniqueID"].encode())
    keys = [k for k, _ in cdr.pairs]
    assert keys == ["Event", "Privilege", *STANDARD_FIELDS, "Room", "GuestLanguage"]
    raw.close()


async def test_cdr_times_are_pbx_local_time():
    async with AmiSimulator(timezone="Europe/Warsaw") as simulator:
        cdr = await simulator.place_call(
            "101", "0221234567", billsec=192, duration=200, start=datetime(2026, 7, 1, 10, 0, 0)
        )
    assert (cdr["StartTime"], cdr["AnswerTime"], cdr["EndTime"]) == (
        "2026-07-01 10:00:00",
        "2026-07-01 10:00:08",
        "2026-07-01 10:03:20",
    )
    assert cdr["UniqueID"].startswith("1782892800.")  # 08:00 UTC


async def test_unanswered_and_busy_calls(sim):
    no_answer = await sim.place_call("101", "0998", answered=False)
    assert (no_answer["Disposition"], no_answer["AnswerTime"], no_answer["BillableSeconds"]) == (
        "NO ANSWER",
        "",
        "0",
    )
    assert no_answer["Duration"] == "30"
    busy = await sim.place_call("101", "0999", answered=False, disposition="BUSY", duration=0)
    assert busy["Disposition"] == "BUSY"


async def test_outside_line_gate_as_in_the_sample_dialplan():
    async with AmiSimulator(gate_outside_line=True) as simulator:
        blocked = await simulator.place_call("101", "0221234567", billsec=60)
        simulator.astdb["/hotel/101/outside"] = "1"
        simulator.astdb["/hotel/101/name"] = "Jürgen Müller"
        allowed = await simulator.place_call("101", "0221234567", billsec=60)
    assert (blocked["LastApplication"], blocked["Disposition"], blocked["UserField"]) == (
        "Congestion",
        "CONGESTION",
        "blocked",
    )
    assert blocked["BillableSeconds"] == "0" and blocked["DestinationChannel"] == ""
    assert (allowed["LastApplication"], allowed["Disposition"]) == ("Dial", "ANSWERED")
    assert allowed["CallerID"] == '"Jürgen Müller" <101>'


async def test_manager_conf_eventfilter_spares_list_answers():
    async with AmiSimulator(secret="s3cret", eventfilter=["Event: Cdr"]) as simulator:
        simulator.astdb["/hotel/101/outside"] = "1"
        raw = await Raw.open(simulator)
        await raw.login()  # FullyBooted is not an event through the filter: always sent
        assert (await raw.message()).name == "FullyBooted"
        simulator.user_event("RoomStatus", {"Room": "101", "Code": "2"})
        await simulator.place_call("101", "0221234567", billsec=5)
        assert (await raw.message()).name == "Cdr"
        await raw.send(b"Action: DBGet\r\nActionID: 2\r\nFamily: hotel/101\r\nKey: outside\r\n\r\n")
        names = [(await raw.message()).name for _ in range(3)]
        assert names == ["Success", "DBGetResponse", "DBGetComplete"]
        raw.close()


async def test_events_action_and_session_filter(sim):
    raw = await Raw.open(sim)
    await raw.login(events="cdr,user")
    await raw.send(b"Action: Filter\r\nActionID: 2\r\nOperation: Add\r\nFilter: !UserEvent: Noise\r\n\r\n")
    assert await raw.read() == b"Response: Success\r\nActionID: 2\r\nMessage: Success\r\n\r\n"
    sim.user_event("Noise", {})
    sim.user_event("RoomStatus", {"Room": "101"})
    assert (await raw.message())["UserEvent"] == "RoomStatus"
    await raw.send(b"Action: Events\r\nActionID: 3\r\nEventMask: off\r\n\r\n")
    assert await raw.read() == b"Response: Success\r\nActionID: 3\r\nEvents: Off\r\n\r\n"
    await sim.place_call("101", "0221234567", billsec=5)
    await raw.send(b"Action: Ping\r\nActionID: 4\r\n\r\n")
    assert (await raw.message()).get("Ping") == "Pong"  # and no Cdr before it
    raw.close()


async def test_async_originate_reports_with_originate_response(sim):
    sim.originate_answered = False
    raw = await Raw.open(sim)
    await raw.login(events="call")
    await raw.send(
        b"Action: Originate\r\nActionID: 7\r\nChannel: PJSIP/101\r\nContext: wakeup-msg\r\nExten: s\r\n"
        b'Priority: 1\r\nCallerID: "Wake-up" <700>\r\nTimeout: 20000\r\nAsync: true\r\n\r\n'
    )
    assert (
        await raw.read()
        == b"Response: Success\r\nActionID: 7\r\nMessage: Originate successfully queued\r\n\r\n"
    )
    assert await raw.read() == (
        b"Event: OriginateResponse\r\nPrivilege: call,all\r\nActionID: 7\r\nResponse: Failure\r\n"
        b"Channel: PJSIP/101\r\nContext: wakeup-msg\r\nExten: s\r\nReason: 3\r\nUniqueid: <unknown>\r\n"
        b"CallerIDNum: 700\r\nCallerIDName: Wake-up\r\n\r\n"
    )
    assert [o["Channel"] for o in sim.originates] == ["PJSIP/101"]
    raw.close()


async def test_setvar_getvar_and_db_function(sim):
    sim.astdb["/hotel/101/outside"] = "1"
    raw = await Raw.open(sim)
    await raw.login(events="off")
    await raw.send(b"Action: Setvar\r\nActionID: 2\r\nVariable: GLOBAL(TRUNK)\r\nValue: Local\r\n\r\n")
    assert (await raw.message())["Message"] == "Variable Set"
    await raw.send(b"Action: Getvar\r\nActionID: 3\r\nVariable: TRUNK\r\n\r\n")
    assert await raw.read() == b"Response: Success\r\nActionID: 3\r\nVariable: TRUNK\r\nValue: Local\r\n\r\n"
    await raw.send(b"Action: Getvar\r\nActionID: 4\r\nVariable: DB(hotel/101/outside)\r\n\r\n")
    assert (await raw.message())["Value"] == "1"
    raw.close()


async def test_user_event_action(sim):
    raw = await Raw.open(sim)
    await raw.login(events="user")
    await raw.send(
        b"Action: UserEvent\r\nActionID: 2\r\nUserEvent: RoomStatus\r\nRoom: 101\r\nCode: 2\r\n\r\n"
    )
    assert (await raw.message())["Message"] == "Event Sent"
    event = await raw.message()
    assert event.pairs == [
        ("Event", "UserEvent"),
        ("Privilege", "user,all"),
        ("UserEvent", "RoomStatus"),
        ("ActionID", "2"),
        ("Room", "101"),
        ("Code", "2"),
    ]
    raw.close()


async def test_write_permissions_are_enforced():
    async with AmiSimulator(secret="s3cret", write="system,call") as simulator:
        raw = await Raw.open(simulator)
        await raw.login(events="off")
        await raw.send(b"Action: Command\r\nActionID: 2\r\nCommand: core show version\r\n\r\n")
        assert (await raw.message())["Message"] == "Permission denied"
        raw.close()


async def test_logoff_says_goodbye_and_hangs_up(sim):
    raw = await Raw.open(sim)
    await raw.login(events="off")
    await raw.send(b"Action: Logoff\r\nActionID: 9\r\n\r\n")
    assert (
        await raw.read() == b"Response: Goodbye\r\nActionID: 9\r\nMessage: Thanks for all the fish.\r\n\r\n"
    )
    assert await raw.at_eof()


async def test_shutdown_event_then_eof(sim):
    raw = await Raw.open(sim)
    await raw.login(events="system")
    await raw.message()  # FullyBooted
    await sim.shutdown()
    assert await raw.read() == captures.SHUTDOWN
    assert await raw.at_eof()


async def test_a_client_that_stops_reading_is_dropped():
    """Asterisk's writetimeout: the negative control for the client's slow-subscriber test."""
    async with AmiSimulator(secret="s3cret", write_timeout=0.2, send_buffer=16384) as simulator:
        raw = await Raw.open(simulator)
        await raw.login(events="cdr")
        for _ in range(2000):  # as in the client's test; this client reads none of it
            await simulator.place_call("101", "0221234567", billsec=5)
        async with asyncio.timeout(GUARD):
            while simulator.slow_reader_drops == 0:  # noqa: ASYNC110 - no event to wait on
                await asyncio.sleep(0.01)
        raw.close()


async def test_stall_silences_open_connections_only(sim):
    stalled = await Raw.open(sim)
    await stalled.login(events="off")
    sim.stall()
    await stalled.send(b"Action: Ping\r\nActionID: 2\r\n\r\n")
    fresh = await Raw.open(sim)
    await fresh.login(events="off")
    await fresh.send(b"Action: Ping\r\nActionID: 3\r\n\r\n")
    assert (await fresh.message()).get("Ping") == "Pong"
    with pytest.raises(TimeoutError):
        async with asyncio.timeout(0.1):
            await stalled.reader.readuntil(b"\r\n\r\n")
    sim.resume()
    assert (await stalled.message()).action_id == "2"
    stalled.close()
    fresh.close()


async def test_drop_connections_closes_everyone_at_once(sim):
    raw = await Raw.open(sim)
    await raw.login(events="off")
    sim.drop_connections()
    assert await raw.at_eof()
    assert sim.sessions == 0


def test_cli_is_a_click_command():
    result = CliRunner().invoke(command, ["--help"])
    assert result.exit_code == 0
    assert "--call-every" in result.output

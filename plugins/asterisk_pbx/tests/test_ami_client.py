"""The AMI client against the simulator, over real TCP on loopback."""

import asyncio
import contextlib
import socket

import pytest

from mews_bridge import DeviceAuthFailed, DeviceConfigError, DeviceNotReady
from mews_bridge.testing import wait_for
from mews_bridge_asterisk_pbx.actions import AmiClient
from mews_bridge_asterisk_pbx.codec import Message
from mews_bridge_asterisk_pbx.link import (
    AmiActionError,
    AmiAuthError,
    AmiBannerError,
    AmiConnectionError,
    AmiTimeoutError,
)
from mews_bridge_mocks.ami import AmiSimulator, captures
from mews_bridge_mocks.ami.fixtures import SECRET, USERNAME

# Tasks first: its check runs after every other fixture has closed its sockets.
pytestmark = pytest.mark.usefixtures("verify_no_lingering_tasks", "verify_cleanup")
GUARD = 5.0  # seconds; only to stop a broken test from hanging
BLAST = 2000  # Cdr events, about 1.3 MB: far beyond the socket buffers of a non-reading client


def make_client(sim, **options) -> AmiClient:
    settings = {
        "username": USERNAME,
        "secret": SECRET,
        "ping_interval": 30.0,
        "backoff_min": 0.01,
        "backoff_max": 0.05,
    }
    settings.update(options)
    return AmiClient("127.0.0.1", sim.port, **settings)


@pytest.fixture
async def client(ami_simulator):
    ami = make_client(ami_simulator)
    await ami.connect()
    yield ami
    await ami.close()


class Logins:
    """Counts logins through the client's connected callback."""

    def __init__(self, ami: AmiClient) -> None:
        self.count = 0
        self._changed = asyncio.Event()
        ami.add_connected_callback(self._seen)

    def _seen(self) -> None:
        self.count += 1
        self._changed.set()

    async def reach(self, count: int) -> None:
        async with asyncio.timeout(GUARD):
            while self.count < count:
                self._changed.clear()
                await self._changed.wait()


class Inbox:
    def __init__(self) -> None:
        self.messages: list[Message] = []
        self._arrived = asyncio.Event()

    def __call__(self, message: Message) -> None:
        self.messages.append(message)
        self._arrived.set()

    async def wait_for(self, count: int) -> list[Message]:
        async with asyncio.timeout(GUARD):
            while len(self.messages) < count:
                self._arrived.clear()
                await self._arrived.wait()
        return self.messages


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


# Connecting and logging in


async def test_login_reads_the_banner(client, ami_simulator):
    assert client.connected
    assert client.ami_version == "11.0.0"
    assert ami_simulator.logins == 1
    login = next(m for m in ami_simulator.received if m.name == "Login")
    assert login["Username"] == USERNAME and login["Secret"] == SECRET


async def test_md5_login_sends_no_secret(ami_simulator):
    ami = make_client(ami_simulator, auth="md5")
    await ami.connect()
    await ami.close()
    login = next(m for m in ami_simulator.received if m.name == "Login")
    assert login["AuthType"] == "MD5" and "Secret" not in login
    assert ami_simulator.logins == 1


async def test_wrong_secret_is_an_auth_failure(ami_simulator):
    ami = make_client(ami_simulator, secret="wrong")
    with pytest.raises(AmiAuthError, match="refused the AMI login of user 'mewsbridge'") as caught:
        await ami.connect()
    assert isinstance(caught.value, DeviceAuthFailed)
    assert "wrong" not in str(caught.value)
    assert ami_simulator.failed_logins == 1


async def test_connection_refused_means_not_ready():
    ami = AmiClient("127.0.0.1", free_port(), username="u", secret="s")
    with pytest.raises(AmiConnectionError, match="refused") as caught:
        await ami.connect()
    assert isinstance(caught.value, DeviceNotReady)


async def test_a_port_that_is_not_ami_is_a_config_error():
    finished = asyncio.Event()

    async def ssh_like(reader, writer):
        writer.write(b"SSH-2.0-OpenSSH_9.2\r\n")
        with contextlib.suppress(ConnectionError):
            await reader.read()  # until the client gives up
        writer.close()
        finished.set()

    server = await asyncio.start_server(ssh_like, "127.0.0.1", 0)
    async with server:
        ami = AmiClient("127.0.0.1", server.sockets[0].getsockname()[1], username="u", secret="s")
        with pytest.raises(AmiBannerError, match="not an Asterisk manager interface") as caught:
            await ami.connect()
        await finished.wait()
    assert isinstance(caught.value, DeviceConfigError)


async def test_login_events_header_limits_event_classes(ami_simulator):
    ami = make_client(ami_simulator, events="cdr")
    inbox = Inbox()
    ami.subscribe(inbox)
    await ami.connect()
    ami_simulator.user_event("RoomStatus", {"Room": "101", "Code": "2"})
    await ami_simulator.place_call("101", "0221234567", billsec=10)
    [cdr] = await inbox.wait_for(1)
    await ami.ping()  # anything else sent before it has arrived by now
    await ami.close()
    assert [m.name for m in inbox.messages] == ["Cdr"]
    assert cdr["BillableSeconds"] == "10"


# Actions


async def test_astdb_round_trip(client, ami_simulator):
    await client.db_put("hotel/101", "name", "Jürgen Müller")
    assert ami_simulator.astdb == {"/hotel/101/name": "Jürgen Müller"}
    assert await client.db_get("hotel/101", "name") == "Jürgen Müller"
    assert await client.db_get("hotel/101", "missing") is None
    assert await client.db_get_tree("hotel") == {"/hotel/101/name": "Jürgen Müller"}
    tree = await client.action("DBGetTree", {"Family": "hotel"})
    assert [e.name for e in tree.events] == ["DBGetTreeResponse"]
    assert tree.complete is not None and tree.complete["ListItems"] == "1"
    assert await client.db_del("hotel/101", "name") is True
    assert await client.db_del("hotel/101", "name") is False
    assert ami_simulator.astdb == {}


async def test_astdb_writes_are_pipelined_not_one_round_trip_each(client, ami_simulator):
    """All of a batch goes out before Asterisk answers any of it."""
    ami_simulator.astdb["/hotel/103/dnd"] = "1"
    ami_simulator.stall()
    writes = asyncio.ensure_future(
        client.db_write(
            [("hotel/101", "name", "Anna"), ("hotel/102", "outside", "0"), ("hotel/103", "dnd", None)]
        )
    )
    await wait_for(lambda: client.diagnostics()["actions_waiting"] == 3, what="three actions in flight")
    ami_simulator.resume()
    await writes
    assert ami_simulator.astdb == {"/hotel/101/name": "Anna", "/hotel/102/outside": "0"}
    await client.db_write([("hotel/103", "dnd", None)])  # already gone: fine
    assert await client.db_get_trees(["hotel/101", "hotel/102"]) == ami_simulator.astdb


async def test_variables(client, ami_simulator):
    await client.setvar("GLOBAL(TRUNK)", "Local")
    assert ami_simulator.variables == {"TRUNK": "Local"}
    assert await client.getvar("TRUNK") == "Local"
    with pytest.raises(AmiActionError, match="No such channel"):
        await client.setvar("X", "1", channel="PJSIP/101-00000001")


async def test_command_output(client):
    await client.db_put("hotel/101", "outside", "1")
    output = await client.command("database show hotel")
    assert [line.rstrip() for line in output] == [
        "/hotel/101/outside".ljust(50) + ": 1",
        "1 results found.",
    ]
    with pytest.raises(AmiActionError, match="Command output follows") as caught:
        await client.command("no such thing")
    assert caught.value.reply.response.get_all("Output")[0].startswith("No such command")


async def test_unknown_action_is_an_action_error(client):
    with pytest.raises(AmiActionError, match="Invalid/unknown command: Bogus"):
        await client.action("Bogus")
    reply = await client.action("Bogus", check=False)
    assert not reply.ok


async def test_async_originate_answers_at_once_and_reports_later(client):
    inbox = Inbox()
    client.subscribe(inbox, "OriginateResponse")
    reply = await client.action(
        "Originate",
        {
            "Channel": "PJSIP/101",
            "Context": "wakeup-msg",
            "Exten": "s",
            "Priority": 1,
            "CallerID": '"Wake-up" <700>',
            "Timeout": 20000,
            "Async": True,
            "Variable": "CHANNEL(language)=de",
        },
    )
    assert reply.message == "Originate successfully queued"
    [result] = await inbox.wait_for(1)
    assert result["Response"] == "Success" and result["Reason"] == "4"
    assert result.action_id == reply.get("ActionID")  # echoed, yet delivered as an event
    assert result["CallerIDName"] == "Wake-up"


async def test_actions_are_matched_by_action_id_not_order(client, ami_simulator):
    await client.db_put("hotel/101", "outside", "1")
    inbox = Inbox()
    client.subscribe(inbox, "Cdr")
    results = await asyncio.gather(
        client.db_get("hotel/101", "outside"),
        client.ping(),
        ami_simulator.place_call("101", "0221234567", billsec=5),
        client.db_get("hotel/101", "nope"),
        client.command("core show version"),
    )
    assert results[0] == "1"
    assert results[1].get("Ping") == "Pong"
    assert results[3] is None
    assert "Asterisk 22" in results[4][0]
    await inbox.wait_for(1)


async def test_action_when_disconnected_fails_fast(ami_simulator):
    ami = make_client(ami_simulator)
    with pytest.raises(AmiConnectionError, match="Not connected"):
        await ami.ping()


# Events


async def test_utf8_split_across_tcp_reads():
    """A server that pauses in the middle of "ü": the name must arrive whole."""
    finished = asyncio.Event()

    async def asterisk(reader, writer):
        writer.write(captures.BANNER)
        login = await reader.readuntil(b"\r\n\r\n")
        action_id = login.split(b"ActionID: ")[1].split(b"\r\n")[0]
        writer.write(
            b"Response: Success\r\nActionID: " + action_id + b"\r\nMessage: Authentication accepted\r\n\r\n"
        )
        cut = captures.CDR_UTF8.index("ü".encode()) + 1
        writer.write(captures.CDR_UTF8[:cut])
        await writer.drain()
        await asyncio.sleep(0.05)  # the first half is read on its own
        writer.write(captures.CDR_UTF8[cut:])
        await writer.drain()
        await reader.readuntil(b"\r\n\r\n")  # Logoff
        writer.close()
        finished.set()

    server = await asyncio.start_server(asterisk, "127.0.0.1", 0)
    async with server:
        ami = AmiClient("127.0.0.1", server.sockets[0].getsockname()[1], username="u", secret="s")
        inbox = Inbox()
        ami.subscribe(inbox, "Cdr")
        await ami.connect()
        [cdr] = await inbox.wait_for(1)
        await ami.close()
        await finished.wait()
    assert cdr["CallerID"] == '"Jürgen Müller" <101>'


async def test_a_slow_subscriber_does_not_stop_reading():
    """Asterisk drops a client that does not drain its socket within writetimeout; a subscriber that
    is stuck must not make us that client. (Same settings drop a client that stops reading: see
    test_ami_simulator.py::test_a_client_that_stops_reading_is_dropped.)"""
    async with AmiSimulator(secret=SECRET, auth_failure_delay=0, write_timeout=0.2, send_buffer=16384) as sim:
        ami = make_client(sim)
        release = asyncio.Event()
        delivered: list[str] = []

        async def stuck(message: Message) -> None:
            await release.wait()
            delivered.append(message["UniqueID"])

        ami.subscribe(stuck, "Cdr")
        await ami.connect()
        calls = [await sim.place_call("101", "0221234567", billsec=5) for _ in range(BLAST)]
        assert (await ami.ping()).get("Ping") == "Pong"  # answered while the events wait
        assert sim.slow_reader_drops == 0 and ami.connects == 1
        assert ami.diagnostics()["event_backlog"] >= BLAST - 1
        release.set()
        await ami.close()  # delivers what is queued before it returns
    assert delivered == [c["UniqueID"] for c in calls]


async def test_a_failing_subscriber_does_not_stop_others(client, ami_simulator):
    def broken(message: Message) -> None:
        raise RuntimeError("bug in a handler")

    inbox = Inbox()
    client.subscribe(broken, "Cdr")
    client.subscribe(inbox, "Cdr")
    await ami_simulator.place_call("101", "0221234567", billsec=5)
    await ami_simulator.place_call("102", "0221234567", billsec=5)
    messages = await inbox.wait_for(2)
    assert [m["Source"] for m in messages] == ["101", "102"]


async def test_cancelled_subscription_gets_nothing_more(client, ami_simulator):
    inbox, other = Inbox(), Inbox()
    subscription = client.subscribe(inbox, "Cdr")
    client.subscribe(other, "Cdr")
    subscription.cancel()
    await ami_simulator.place_call("101", "0221234567", billsec=5)
    await other.wait_for(1)
    assert inbox.messages == []


# Keeping the connection


async def test_reconnects_after_the_connection_drops(ami_simulator):
    ami = make_client(ami_simulator)
    logins = Logins(ami)
    await ami.connect()
    ami_simulator.drop_connections()
    await logins.reach(2)
    assert ami.connected
    assert (await ami.ping()).ok
    await ami.close()
    assert ami_simulator.logins == 2


async def test_reconnects_after_asterisk_restarts(ami_simulator):
    ami = make_client(ami_simulator, events="system,cdr")
    logins = Logins(ami)
    inbox = Inbox()
    ami.subscribe(inbox, "Shutdown")
    await ami.connect()
    await ami_simulator.shutdown(restart=True)
    [shutdown] = await inbox.wait_for(1)
    await logins.reach(2)
    await ami.close()
    assert shutdown["Restart"] == "True"


async def test_a_stalled_asterisk_is_noticed_by_ping(ami_simulator, caplog):
    ami = make_client(ami_simulator, ping_interval=0.02, ping_timeout=0.1)
    logins = Logins(ami)
    await ami.connect()
    ami_simulator.stall()  # the open connection neither reads nor answers; new ones are fine
    await logins.reach(2)
    await ami.close()
    assert "no answer to Ping within 0.1 s" in caplog.text


async def test_an_action_to_a_stalled_asterisk_times_out(ami_simulator):
    ami = make_client(ami_simulator, action_timeout=0.1)
    await ami.connect()
    ami_simulator.stall()
    with pytest.raises(AmiTimeoutError, match=r"did not answer DBGet within 0\.1 s"):
        await ami.db_get("hotel/101", "outside")
    await ami.close()


async def test_pending_actions_fail_when_the_connection_drops(ami_simulator):
    ami = make_client(ami_simulator)
    await ami.connect()
    ami_simulator.stall()
    pending = asyncio.ensure_future(ami.db_get("hotel/101", "outside"))
    await asyncio.sleep(0.01)
    ami_simulator.drop_connections()
    with pytest.raises(AmiConnectionError):
        await pending
    await ami.close()


async def test_a_changed_secret_is_retried_slowly_until_fixed(ami_simulator):
    ami = make_client(ami_simulator, backoff_max=0.2)
    logins = Logins(ami)
    await ami.connect()
    ami_simulator.secret = "rotated"
    ami_simulator.drop_connections()
    async with asyncio.timeout(GUARD):
        while ami_simulator.failed_logins < 2:  # noqa: ASYNC110 - the simulator has no event for it
            await asyncio.sleep(0.01)
    assert not ami.connected and "refused the AMI login" in (ami.last_error or "")
    ami_simulator.secret = SECRET
    await logins.reach(2)
    await ami.close()


async def test_connected_callbacks_can_push_state_again(ami_simulator):
    ami = make_client(ami_simulator)
    pushed = asyncio.Event()

    async def resync() -> None:
        await ami.db_put("hotel/101", "outside", "1")
        pushed.set()

    ami.add_connected_callback(resync)
    logins = Logins(ami)
    await ami.connect()
    await logins.reach(1)
    ami_simulator.astdb.clear()
    pushed.clear()
    ami_simulator.drop_connections()
    async with asyncio.timeout(GUARD):
        await pushed.wait()
    assert ami_simulator.astdb == {"/hotel/101/outside": "1"}
    await ami.close()


async def test_close_logs_off(ami_simulator):
    async with make_client(ami_simulator) as ami:
        assert ami.connected
    assert ami_simulator.received[-1].name == "Logoff"
    assert not ami.connected
    await asyncio.sleep(0)
    assert ami_simulator.sessions == 0

"""An Asterisk 22 manager interface on loopback, built from the bridge's own AMI codec.

It answers as ``main/manager.c``, ``main/db.c`` and ``cdr/cdr_manager.c`` of Asterisk 22 do (same
headers, same order, same messages), runs the part of the sample hotel dialplan that matters for
billing (``place_call``), and injects the faults a bridge must survive: dropped connections, a
stalled peer, a refused login, and Asterisk's own slow-reader cut-off (``writetimeout``).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import itertools
import random
import re
import socket
import time
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from mews_bridge_asterisk_pbx.codec import AmiParser, AmiProtocolError, Message, encode_message

from ..running import Simulator

AMI_VERSION = "11.0.0"  # Asterisk 22
ASTERISK_VERSION = "22.10.1"

# manager.c ``perms``: event and action classes.
CLASSES = (
    "system",
    "call",
    "log",
    "verbose",
    "command",
    "agent",
    "user",
    "config",
    "dtmf",
    "reporting",
    "cdr",
    "dialplan",
    "originate",
    "agi",
    "cc",
    "aoc",
    "test",
    "security",
    "message",
)
# Write class of each action (from their registrations); None: any logged-in user.
ACTION_CLASSES: dict[str, frozenset[str] | None] = {
    "dbget": frozenset({"system", "reporting"}),
    "dbgettree": frozenset({"system", "reporting"}),
    "dbput": frozenset({"system"}),
    "dbdel": frozenset({"system"}),
    "dbdeltree": frozenset({"system"}),
    "setvar": frozenset({"call"}),
    "getvar": frozenset({"call", "reporting"}),
    "originate": frozenset({"originate"}),
    "command": frozenset({"command"}),
    "filter": frozenset({"system"}),
    "userevent": frozenset({"user"}),
    "ping": None,
    "events": None,
    "login": None,
    "logoff": None,
    "challenge": None,
}


def parse_classes(text: str) -> frozenset[str]:
    """``"cdr,user"`` → classes; ``all``/``on``/``yes`` → every class; ``off``/``no`` → none."""
    words = {w.strip().lower() for w in text.split(",") if w.strip()}
    if words & {"all", "on", "yes", "true"}:
        return frozenset(CLASSES)
    return frozenset(words & set(CLASSES))


class _Session(asyncio.Protocol):
    """One AMI client connected to the simulator."""

    def __init__(self, sim: AmiSimulator) -> None:
        self.sim = sim
        self.parser = AmiParser(expect_banner=False)
        self.transport: asyncio.Transport | None = None
        self.authenticated = False
        self.username = ""
        self.send_events: frozenset[str] = frozenset()
        self.include: list[re.Pattern[str]] = []
        self.exclude: list[re.Pattern[str]] = []
        self.challenge = ""
        self.stalled = False
        self.inbox: asyncio.Queue[Message] = asyncio.Queue()
        self.worker: asyncio.Task[None] | None = None
        self._auth_timer: asyncio.TimerHandle | None = None
        self._slow_timer: asyncio.TimerHandle | None = None

    # asyncio.Protocol

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        transport.set_write_buffer_limits(high=64 * 1024)
        if self.sim.send_buffer is not None:
            sock = transport.get_extra_info("socket")
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, self.sim.send_buffer)
        self.sim._sessions.add(self)
        self.sim.connections += 1
        loop = asyncio.get_running_loop()
        self._auth_timer = loop.call_later(self.sim.auth_timeout, self._auth_expired)
        self.worker = loop.create_task(self._work(), name="AMI simulator session")
        self.write(f"Asterisk Call Manager/{self.sim.version}\r\n".encode())

    def data_received(self, data: bytes) -> None:
        try:
            messages = self.parser.feed(data)
        except AmiProtocolError:
            self.abort()
            return
        for message in messages:
            self.inbox.put_nowait(message)

    def pause_writing(self) -> None:
        # Asterisk gives up on a client that does not drain its socket within writetimeout.
        if self.sim.write_timeout is not None:
            loop = asyncio.get_running_loop()
            self._slow_timer = loop.call_later(self.sim.write_timeout, self._slow_reader)

    def resume_writing(self) -> None:
        if self._slow_timer is not None:
            self._slow_timer.cancel()
            self._slow_timer = None

    def connection_lost(self, exc: Exception | None) -> None:
        self.sim._sessions.discard(self)
        for timer in (self._auth_timer, self._slow_timer):
            if timer is not None:
                timer.cancel()
        if self.worker is not None:
            self.worker.cancel()

    # Output

    def write(self, data: bytes) -> None:
        if self.transport is not None and not self.stalled and not self.transport.is_closing():
            self.transport.write(data)

    def send(self, pairs: Iterable[tuple[str, str]]) -> None:
        self.write(encode_message(pairs))

    def respond(
        self,
        action: Message,
        response: str,
        message: str | None = None,
        *,
        extra: Sequence[tuple[str, str]] = (),
        list_flag: str | None = None,
    ) -> None:
        """``astman_send_response_full``: Response, ActionID, EventList, Message, then ``extra``."""
        pairs = [("Response", response)]
        action_id = action.get("ActionID")
        if action_id:
            pairs.append(("ActionID", action_id))
        if list_flag:
            pairs.append(("EventList", list_flag))
        if message is not None:
            pairs.append(("Message", message))
        pairs.extend(extra)
        self.send(pairs)

    def close(self) -> None:
        if self.transport is not None:
            self.transport.close()

    def abort(self) -> None:
        if self.transport is not None:
            self.transport.abort()

    def wants(self, category: str, text: str) -> bool:
        if not self.authenticated or category not in self.send_events:
            return False
        if self.include and not any(p.search(text) for p in self.include):
            return False
        return not any(p.search(text) for p in self.exclude)

    def _auth_expired(self) -> None:
        if not self.authenticated:
            self.close()

    def _slow_reader(self) -> None:
        self.sim.slow_reader_drops += 1
        self.abort()

    # Input

    async def _work(self) -> None:
        while True:
            action = await self.inbox.get()
            self.sim.received.append(action)
            if await self.sim._handle(self, action):
                self.close()
                return


class AmiSimulator(Simulator):
    """A scriptable Asterisk 22 AMI server.

    ``async with AmiSimulator(secret="s3cret") as sim:`` listens on ``127.0.0.1`` and a free port
    (``sim.port``). One manager user (``username``/``secret``) with ``read``/``write`` classes as in
    ``manager.conf``; ``eventfilter`` takes legacy ``eventfilter=`` regexes (``!`` excludes).
    ``timezone`` is the PBX host's, used for CDR times. ``write_timeout`` is Asterisk's per-user
    ``writetimeout`` in seconds (default 100 ms), None to never drop slow readers; ``send_buffer``
    shrinks the kernel's send buffer so that a slow reader is caught after kilobytes, not megabytes.

    For assertions: ``astdb`` (``"/hotel/101/outside"`` → ``"1"``), ``variables`` (globals),
    ``received`` (every action), ``originates`` and ``originate_responses``, ``cdrs``, ``prompts``
    (what callers heard after :meth:`dial_code`), ``connections``, ``logins``, ``slow_reader_drops``.
    ``originate_outcomes`` decides per channel whether an async Originate is answered.
    """

    def __init__(
        self,
        *,
        username: str = "mewsbridge",
        secret: str = "mewsbridge",
        read: str = "all",
        write: str = "all",
        eventfilter: Sequence[str] = (),
        timezone: str = "UTC",
        version: str = AMI_VERSION,
        auth_failure_delay: float = 1.0,
        auth_timeout: float = 30.0,
        write_timeout: float | None = 0.1,
        send_buffer: int | None = None,
        cdr_mappings: Sequence[str] = ("Room", "GuestLanguage"),
        astdb_family: str = "hotel",
        gate_outside_line: bool = False,
        originate_answered: bool = True,
        originate_delay: float = 0.0,
    ) -> None:
        self.username = username
        self.secret = secret
        self.read = parse_classes(read)
        self.write = parse_classes(write)
        self.eventfilter = list(eventfilter)
        self.timezone = ZoneInfo(timezone)
        self.version = version
        self.auth_failure_delay = auth_failure_delay
        self.auth_timeout = auth_timeout
        self.write_timeout = write_timeout
        self.send_buffer = send_buffer
        """Kernel send buffer (SO_SNDBUF) of each connection; small makes slow readers show sooner."""
        self.cdr_mappings = tuple(cdr_mappings)
        self.astdb_family = astdb_family
        self.gate_outside_line = gate_outside_line
        """Act as the sample dialplan: outside calls need ``/hotel/<room>/outside`` = ``1``."""
        self.originate_answered = originate_answered
        self.originate_delay = originate_delay
        self.originate_outcomes: dict[str, str] = {}
        """Channel (``PJSIP/101``) → ``answered``, ``no answer``, ``busy`` or ``congestion`` for async
        Originates to it; others follow ``originate_answered``."""
        self.host = "127.0.0.1"
        self.port = 0
        self.astdb: dict[str, str] = {}
        self.variables: dict[str, str] = {}
        self.received: list[Message] = []
        self.originates: list[Message] = []
        self.originate_responses: list[Message] = []
        self.cdrs: list[Message] = []
        self.prompts: list[tuple[str, str]] = []
        """(extension, ``confirmation``/``error``) for each code dialled with :meth:`dial_code`."""
        self.connections = 0
        self.logins = 0
        self.failed_logins = 0
        self.slow_reader_drops = 0
        self._sessions: set[_Session] = set()
        self._watched: dict[str, asyncio.Future[None]] = {}
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[Any]] = set()
        self._started = time.monotonic()
        self._channels = itertools.count()
        self._unique = itertools.count(1)

    # Lifecycle

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> AmiSimulator:
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(lambda: _Session(self), host, port)
        self.host, self.port = self._server.sockets[0].getsockname()[:2]
        return self

    async def stop(self) -> None:
        """Stop listening and drop every connection."""
        server, self._server = self._server, None
        if server is not None:
            server.close()
        workers = [s.worker for s in self._sessions if s.worker is not None]
        for session in list(self._sessions):
            session.abort()
        for task in [*self._tasks, *workers]:
            task.cancel()
        await asyncio.gather(*self._tasks, *workers, return_exceptions=True)
        if server is not None:
            await server.wait_closed()

    @property
    def sessions(self) -> int:
        """Connections open right now."""
        return len(self._sessions)

    # Faults

    def listeners(self, category: str) -> int:
        """Logged-in connections that receive events of ``category`` (``"cdr"``) now."""
        return sum(
            1 for session in self._sessions if session.authenticated and category in session.send_events
        )

    def drop_connections(self) -> None:
        """Close every open connection at once, unsent output discarded: Asterisk crashed."""
        for session in list(self._sessions):
            session.abort()

    def stall(self) -> None:
        """Open connections stop reading and answering: a hung Asterisk or a half-open link.

        New connections are served normally, so a client that notices can reconnect.
        """
        for session in self._sessions:
            session.stalled = True
            if session.transport is not None:
                session.transport.pause_reading()

    def resume(self) -> None:
        """Undo :meth:`stall` for connections still open."""
        for session in self._sessions:
            session.stalled = False
            if session.transport is not None:
                session.transport.resume_reading()

    async def shutdown(self, restart: bool = False) -> None:
        """``core stop``/``core restart``: a Shutdown event to ``system`` listeners, then EOF."""
        self.emit(
            "Shutdown",
            [("Shutdown", "Cleanly"), ("Restart", "True" if restart else "False")],
            category="system",
        )
        for session in list(self._sessions):
            session.close()
        await asyncio.sleep(0)

    # Events

    def send_raw(self, data: bytes) -> int:
        """Write ``data`` as it is (garbage included) to every connected client; returns how many."""
        sessions = list(self._sessions)
        for session in sessions:
            session.write(data)
        return len(sessions)

    def emit(self, event: str, headers: Iterable[tuple[str, str]], *, category: str) -> Message:
        """Send an event to every session whose class mask and filters let it through."""
        message = Message([("Event", event), ("Privilege", f"{category},all"), *headers])
        data = message.encode()
        filtered = any(s.include or s.exclude for s in self._sessions)
        text = data.decode() if filtered else ""
        for session in list(self._sessions):
            if session.wants(category, text):
                session.write(data)
        return message

    def user_event(self, name: str, headers: Mapping[str, str]) -> Message:
        """What dialplan ``UserEvent(name,Key: Value,…)`` sends (without channel headers)."""
        return self.emit("UserEvent", [("UserEvent", name), *headers.items()], category="user")

    async def dial_code(self, extension: str, code: str, *, wait: float = 10.0) -> str | None:
        """A room phone dials a code the sample dialplan hands to the bridge (``*52*4711*1``, ``*55*0700``).

        As ``[hotel-code]`` does: a ``HotelCode`` UserEvent, then up to ``wait`` seconds for the
        bridge's answer in AstDB ``<family>/reply/<Request>``, which is read and deleted. Returns the
        answer (``ok …``/``error …``), None if the bridge did not answer; ``prompts`` records what the
        caller heard.
        """
        request = f"{int(time.time())}.{next(self._unique)}"
        self.user_event("HotelCode", {"Room": extension, "Code": code, "Request": request})
        key = f"/{self.astdb_family}/reply/{request}"
        written = self._watched[key] = asyncio.get_running_loop().create_future()
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(wait):
                await written
        del self._watched[key]
        answer = self.astdb.pop(key, None)
        self.prompts.append((extension, "confirmation" if (answer or "").startswith("ok") else "error"))
        return answer

    async def place_call(
        self,
        src_extension: str,
        destination: str,
        *,
        answered: bool = True,
        billsec: int = 60,
        duration: int | None = None,
        start: datetime | None = None,
        disposition: str | None = None,
        caller_name: str | None = None,
        trunk: str = "trunk",
        context: str = "outbound",
        sequence: int | None = None,
        linked_id: str | None = None,
    ) -> Message:
        """A room phone dials ``destination`` (outside-line digit already stripped) on the trunk.

        Emits the one Cdr event Asterisk sends for a real PJSIP call, in ``cdr_manager.c`` order with
        the ``cdr_mappings`` custom fields (``Room``, ``GuestLanguage`` from AstDB). ``start`` is
        naive PBX local time or aware; default now. ``duration`` defaults to 4 s of ringing plus the
        talk time (30 s of ringing when unanswered). With ``gate_outside_line`` and no outside line
        for the room, the call is refused with Congestion as the sample dialplan does.
        """
        family = f"/{self.astdb_family}/{src_extension}"
        when = self._local(start)
        name = caller_name or self.astdb.get(f"{family}/name") or f"Room {src_extension}"
        blocked = self.gate_outside_line and self.astdb.get(f"{family}/outside") != "1"
        if blocked:
            answered, billsec, duration, disposition = False, 0, 0, "CONGESTION"
        if not answered:
            billsec = 0
        if duration is None:
            duration = billsec + 4 if answered else 30
        if billsec > duration:
            raise ValueError("billsec cannot exceed duration")
        disposition = disposition or ("ANSWERED" if answered else "NO ANSWER")
        channel = next(self._channels)
        custom = {
            "Room": src_extension,
            "GuestLanguage": self.astdb.get(f"{family}/language", ""),
            "LinkedID": linked_id or "",
            "Sequence": "" if sequence is None else str(sequence),
        }
        unique_id = f"{int(when.timestamp())}.{next(self._unique)}"
        if "LinkedID" in self.cdr_mappings and not linked_id:
            custom["LinkedID"] = unique_id
        pairs = [
            ("AccountCode", src_extension),
            ("Source", src_extension),
            ("Destination", destination),
            ("DestinationContext", context),
            ("CallerID", f'"{name}" <{src_extension}>'),
            ("Channel", f"PJSIP/{src_extension}-{channel:08x}"),
            ("DestinationChannel", "" if blocked else f"PJSIP/{trunk}-{channel + 1:08x}"),
            ("LastApplication", "Congestion" if blocked else "Dial"),
            ("LastData", "" if blocked else f"PJSIP/{destination}@{trunk},30"),
            ("StartTime", _stamp(when)),
            ("AnswerTime", _stamp(when + timedelta(seconds=duration - billsec)) if answered else ""),
            ("EndTime", _stamp(when + timedelta(seconds=duration))),
            ("Duration", str(duration)),
            ("BillableSeconds", str(billsec)),
            ("Disposition", disposition),
            ("AMAFlags", "DOCUMENTATION"),
            ("UniqueID", unique_id),
            ("UserField", "blocked" if blocked else ""),
            *((label, custom.get(label, "")) for label in self.cdr_mappings),
        ]
        next(self._channels)  # the trunk leg used the next channel number
        event = self.emit("Cdr", pairs, category="cdr")
        self.cdrs.append(event)
        await asyncio.sleep(0)
        return event

    def _local(self, start: datetime | None) -> datetime:
        if start is None:
            return datetime.now(self.timezone).replace(microsecond=0)
        if start.tzinfo is None:
            return start.replace(tzinfo=self.timezone)
        return start.astimezone(self.timezone)

    # Actions

    async def _handle(self, session: _Session, action: Message) -> bool:
        """Answer one action; True closes the connection afterwards."""
        name = (action.get("Action") or "").strip()
        key = name.lower()
        if not name:
            session.respond(action, "Error", "Missing action in request")
            return False
        if not session.authenticated and key not in ("login", "logoff", "challenge"):
            session.respond(action, "Error", "Permission denied")
            return False
        handler = getattr(self, f"_action_{key}", None)
        if handler is None:
            session.respond(
                action,
                "Error",
                f"Invalid/unknown command: {name}. Use Action: ListCommands to show available commands.",
            )
            return False
        needed = ACTION_CLASSES.get(key)
        if needed is not None and not needed & self.write:
            session.respond(action, "Error", "Permission denied")
            return False
        return bool(await handler(session, action))

    async def _action_login(self, session: _Session, action: Message) -> bool:
        if session.authenticated:
            session.respond(action, "Success", "Already authenticated")
            return False
        if not self._authenticate(session, action):
            self.failed_logins += 1
            await asyncio.sleep(self.auth_failure_delay)
            session.respond(action, "Error", "Authentication failed")
            return True
        session.authenticated = True
        session.username = self.username
        events = action.get("Events")
        session.send_events = self.read & parse_classes(events) if events else self.read
        for expression in self.eventfilter:
            _add_filter(session, expression)
        self.logins += 1
        session.respond(action, "Success", "Authentication accepted")
        if "system" in session.send_events:
            uptime = int(time.monotonic() - self._started)
            session.send(
                [
                    ("Event", "FullyBooted"),
                    ("Privilege", "system,all"),
                    ("Uptime", str(uptime)),
                    ("LastReload", str(uptime)),
                    ("Status", "Fully Booted"),
                ]
            )
        return False

    def _authenticate(self, session: _Session, action: Message) -> bool:
        if action.get("Username") != self.username:
            return False
        if (action.get("AuthType") or "").lower() == "md5":
            digest = hashlib.md5((session.challenge + self.secret).encode(), usedforsecurity=False)
            return bool(session.challenge) and action.get("Key") == digest.hexdigest()
        return action.get("Secret") == self.secret

    async def _action_challenge(self, session: _Session, action: Message) -> None:
        if (action.get("AuthType") or "").lower() != "md5":
            session.respond(action, "Error", "Must specify AuthType")
            return
        session.challenge = session.challenge or str(random.randrange(1, 2**31))
        session.respond(action, "Success", extra=[("Challenge", session.challenge)])

    async def _action_logoff(self, session: _Session, action: Message) -> bool:
        session.respond(action, "Goodbye", "Thanks for all the fish.")
        return True

    async def _action_ping(self, session: _Session, action: Message) -> None:
        session.respond(action, "Success", extra=[("Ping", "Pong"), ("Timestamp", f"{time.time():.6f}")])

    async def _action_events(self, session: _Session, action: Message) -> None:
        session.send_events = self.read & parse_classes(action.get("EventMask") or "")
        session.respond(action, "Success", extra=[("Events", "On" if session.send_events else "Off")])

    async def _action_filter(self, session: _Session, action: Message) -> None:
        if (action.get("Operation") or "").lower() != "add":
            session.respond(action, "Error", "Unknown operation")
            return
        try:
            _add_filter(session, action.get("Filter") or "")
        except re.error:
            session.respond(action, "Error", "Filter did not compile.  Check the syntax of the filter given.")
            return
        session.respond(action, "Success", "Success")

    async def _action_dbput(self, session: _Session, action: Message) -> None:
        family, key = action.get("Family"), action.get("Key")
        if not family:
            session.respond(action, "Error", "No family specified")
        elif not key:
            session.respond(action, "Error", "No key specified")
        else:
            path = f"/{family}/{key}"
            self.astdb[path] = action.get("Val") or ""
            session.respond(action, "Success", "Updated database successfully")
            watcher = self._watched.get(path)
            if watcher is not None and not watcher.done():
                watcher.set_result(None)

    async def _action_dbget(self, session: _Session, action: Message) -> None:
        family, key = action.get("Family"), action.get("Key")
        if not family:
            session.respond(action, "Error", "No family specified.")
            return
        if not key:
            session.respond(action, "Error", "No key specified.")
            return
        value = self.astdb.get(f"/{family}/{key}")
        if value is None:
            session.respond(action, "Error", "Database entry not found")
            return
        session.respond(action, "Success", "Result will follow", list_flag="start")
        session.send(
            [
                ("Event", "DBGetResponse"),
                ("Family", family),
                ("Key", key),
                ("Val", value),
                *_action_id(action),
            ]
        )
        session.send(_list_complete("DBGetComplete", action, 1))

    async def _action_dbgettree(self, session: _Session, action: Message) -> None:
        prefix = "/".join(p for p in ("", action.get("Family") or "", action.get("Key") or "") if p)
        found = sorted(
            (k, v) for k, v in self.astdb.items() if not prefix or (k + "/").startswith(f"/{prefix}/")
        )
        session.respond(action, "Success", "Result will follow", list_flag="start")
        for key, value in found:
            session.send([("Event", "DBGetTreeResponse"), ("Key", key), ("Val", value), *_action_id(action)])
        session.send(_list_complete("DBGetTreeComplete", action, len(found)))

    async def _action_dbdel(self, session: _Session, action: Message) -> None:
        family, key = action.get("Family"), action.get("Key")
        if not family:
            session.respond(action, "Error", "No family specified.")
        elif not key:
            session.respond(action, "Error", "No key specified.")
        elif self.astdb.pop(f"/{family}/{key}", None) is None:
            session.respond(action, "Error", "Database entry could not be deleted")
        else:
            session.respond(action, "Success", "Key deleted successfully")

    async def _action_dbdeltree(self, session: _Session, action: Message) -> None:
        family = action.get("Family")
        if not family:
            session.respond(action, "Error", "No family specified.")
            return
        prefix = "/" + "/".join(p for p in (family, action.get("Key") or "") if p) + "/"
        doomed = [k for k in self.astdb if (k + "/").startswith(prefix)]
        for key in doomed:
            del self.astdb[key]
        if doomed:
            session.respond(action, "Success", "Key tree deleted successfully")
        else:
            session.respond(action, "Error", "Database entry not found")

    async def _action_setvar(self, session: _Session, action: Message) -> None:
        variable = action.get("Variable")
        if not variable:
            session.respond(action, "Error", "No variable specified")
        elif action.get("Channel"):
            session.respond(action, "Error", "No such channel")
        else:
            self.variables[_global_name(variable)] = action.get("Value") or ""
            session.respond(action, "Success", "Variable Set")

    async def _action_getvar(self, session: _Session, action: Message) -> None:
        variable = action.get("Variable")
        if not variable:
            session.respond(action, "Error", "No variable specified")
            return
        if action.get("Channel"):
            session.respond(action, "Error", "No such channel")
            return
        if variable.upper().startswith("DB(") and variable.endswith(")"):
            value = self.astdb.get("/" + variable[3:-1], "")
        else:
            value = self.variables.get(_global_name(variable), "")
        session.respond(action, "Success", extra=[("Variable", variable), ("Value", value)])

    async def _action_userevent(self, session: _Session, action: Message) -> None:
        # Like action_userevent: every header but Action and UserEvent (ActionID too) goes along.
        session.respond(action, "Success", "Event Sent")
        body = [(k, v) for k, v in action.pairs if k.lower() not in ("action", "userevent")]
        self.emit("UserEvent", [("UserEvent", action.get("UserEvent") or ""), *body], category="user")

    async def _action_originate(self, session: _Session, action: Message) -> None:
        channel = action.get("Channel")
        if not channel:
            session.respond(action, "Error", "Channel not specified")
            return
        self.originates.append(action)
        if (action.get("Async") or "").lower() in ("true", "yes", "1", "on"):
            session.respond(action, "Success", "Originate successfully queued")
            task = asyncio.create_task(self._originate_result(action, channel))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
            return
        await asyncio.sleep(self.originate_delay)
        if self.originate_answered:
            session.respond(action, "Success", "Originate successfully queued")
        else:
            session.respond(action, "Error", "Originate failed")

    async def _originate_result(self, action: Message, channel: str) -> None:
        await asyncio.sleep(self.originate_delay)
        number, name = _split_caller_id(action.get("CallerID") or "")
        outcome = self.originate_outcomes.get(channel, "answered" if self.originate_answered else "no answer")
        answered = outcome == "answered"
        variables = dict(v.partition("=")[::2] for v in action.get_all("Variable"))
        if answered and action.get("Context") == "hotel-wakeup" and variables.get("WAKEUP_ID"):
            # What [hotel-wakeup] of the sample dialplan does first once the guest picks up.
            self.astdb[f"/{self.astdb_family}/wakeup/{variables['WAKEUP_ID']}"] = "answered"
        headers = [
            *_action_id(action),
            ("Response", "Success" if answered else "Failure"),
            ("Channel", f"{channel}-{next(self._channels):08x}" if answered else channel),
        ]
        if action.get("Application"):
            headers += [("Application", action.get("Application") or ""), ("Data", action.get("Data") or "")]
        else:
            headers += [("Context", action.get("Context") or ""), ("Exten", action.get("Exten") or "")]
        headers += [
            ("Reason", _ORIGINATE_REASONS[outcome]),
            ("Uniqueid", f"{int(time.time())}.{next(self._unique)}" if answered else "<unknown>"),
            ("CallerIDNum", number or "<unknown>"),
            ("CallerIDName", name or "<unknown>"),
        ]
        self.originate_responses.append(self.emit("OriginateResponse", headers, category="call"))

    async def _action_command(self, session: _Session, action: Message) -> None:
        command = " ".join((action.get("Command") or "").split())
        if not command:
            session.respond(action, "Error", "No command provided")
            return
        output = self._cli(command)
        status = "Success"
        if output is None:
            status = "Error"
            output = [
                f"No such command '{command}' (type 'core show help {command}' for other possible commands)"
            ]
        session.respond(action, status, "Command output follows", extra=[("Output", line) for line in output])

    def _cli(self, command: str) -> list[str] | None:
        words = command.split(" ")
        if words[:3] == ["core", "show", "version"]:
            return [f"Asterisk {ASTERISK_VERSION} (simulated by mews-bridge-hardware-mocks)"]
        if words[:2] == ["database", "show"]:
            prefix = "/" + "/".join(words[2:]) if len(words) > 2 else ""
            found = sorted((k, v) for k, v in self.astdb.items() if (k + "/").startswith(prefix + "/"))
            return [f"{k:<50}: {v:<25}" for k, v in found] + [f"{len(found)} results found."]
        return None


# AST_CONTROL_* codes in OriginateResponse's Reason.
_ORIGINATE_REASONS = {"answered": "4", "no answer": "3", "busy": "5", "congestion": "8"}


def _stamp(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%d %H:%M:%S")


def _action_id(action: Message) -> list[tuple[str, str]]:
    action_id = action.get("ActionID")
    return [("ActionID", action_id)] if action_id else []


def _list_complete(event: str, action: Message, count: int) -> list[tuple[str, str]]:
    return [("Event", event), *_action_id(action), ("EventList", "Complete"), ("ListItems", str(count))]


def _global_name(variable: str) -> str:
    if variable.upper().startswith("GLOBAL(") and variable.endswith(")"):
        return variable[7:-1]
    return variable


def _split_caller_id(text: str) -> tuple[str, str]:
    """``"Wake-up" <700>`` → (``700``, ``Wake-up``)."""
    match = re.fullmatch(r'\s*"?([^"<]*?)"?\s*<([^>]*)>\s*', text)
    if match:
        return match.group(2), match.group(1)
    return text.strip(), ""


def _add_filter(session: _Session, expression: str) -> None:
    if expression.startswith("!"):
        session.exclude.append(re.compile(expression[1:]))
    else:
        session.include.append(re.compile(expression))

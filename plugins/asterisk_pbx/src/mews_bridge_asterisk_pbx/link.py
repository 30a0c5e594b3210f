"""The AMI link: one long-lived connection to Asterisk's manager interface with login, ActionID
correlation, event lists, events to subscribers, Ping watchdog and reconnect with capped backoff.

It frames with :mod:`.codec` and knows no action beyond the few it needs itself (Login, Challenge,
Ping, Logoff); the typed actions the plugin sends are in :mod:`.actions`.

Reading happens in ``data_received``, which never waits for anyone: responses complete futures and
events go to one queue per subscriber, so a slow subscriber cannot make Asterisk drop us as a slow
reader (its ``writetimeout`` defaults to 100 ms). AMI delivers at most once; events sent while we
are disconnected are lost, which is why the CDR path keeps its own journal.

Actions are never re-sent after a reconnect: an Originate sent twice rings a guest twice.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import inspect
import itertools
import logging
import random
from collections import deque
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Literal, Self

from tenacity import AsyncRetrying, RetryCallState, retry_if_exception_type

from mews_bridge import DeviceAuthFailed, DeviceConfigError, DeviceNotReady, MewsBridgeError

from .codec import BANNER_PREFIX, AmiParser, AmiProtocolError, HeaderValue, Message, make_message

EventCallback = Callable[[Message], Awaitable[None] | None]
Headers = Mapping[str, HeaderValue] | Iterable[tuple[str, HeaderValue]]

_OK_RESPONSES = frozenset({"Success", "Goodbye", "Follows"})
_LIST_DONE = frozenset({"complete", "cancelled"})
PIPELINE_WINDOW = 64
"""Actions :meth:`AmiLink.pipeline` keeps unanswered at once: enough to hide the round trip, few
enough not to flood Asterisk's manager queue."""
_ids = itertools.count(1)


class AmiError(MewsBridgeError):
    """Base of the AMI client's errors."""


class AmiConnectionError(AmiError, DeviceNotReady):
    """Asterisk cannot be reached, or the connection was lost."""


class AmiAuthError(AmiError, DeviceAuthFailed):
    """Asterisk refused the username or secret."""


class AmiBannerError(AmiError, DeviceConfigError):
    """The configured host and port answer, but not as an Asterisk manager interface."""


class AmiTimeoutError(AmiError, TimeoutError):
    """Asterisk did not answer an action in time."""


class AmiActionError(AmiError):
    """Asterisk answered an action with ``Response: Error``."""

    def __init__(self, action: str, reply: Reply) -> None:
        super().__init__(f"Asterisk refused {action}: {reply.message or reply.response.name}")
        self.action = action
        self.reply = reply


@dataclass(frozen=True, slots=True)
class Reply:
    """The answer to one action: the response, and for list actions the events in between."""

    response: Message
    events: tuple[Message, ...] = ()
    """The list's items (``DBGetResponse`` …), without the closing ``…Complete`` event."""
    complete: Message | None = None
    """The closing event of a list (``EventList: Complete``, ``ListItems: N``)."""

    @property
    def ok(self) -> bool:
        return self.response.name in _OK_RESPONSES

    @property
    def message(self) -> str:
        return self.response.get("Message") or ""

    def get(self, key: str, default: str | None = None) -> str | None:
        return self.response.get(key, default)


class _Pending:
    """Collects the answer to one ActionID."""

    __slots__ = ("events", "future", "response")

    def __init__(self, future: asyncio.Future[Reply]) -> None:
        self.future = future
        self.response: Message | None = None
        self.events: list[Message] = []

    def take(self, message: Message) -> bool:
        """Consume ``message`` if it belongs to this action; False lets it through as an event."""
        if message.kind == "Response":
            if (message.get("EventList") or "").lower() == "start":
                self.response = message
            else:
                self._finish(Reply(message))
            return True
        if self.response is None:
            # E.g. OriginateResponse after an async Originate: an event for subscribers.
            return False
        if (message.get("EventList") or "").lower() in _LIST_DONE:
            self._finish(Reply(self.response, tuple(self.events), message))
        else:
            self.events.append(message)
        return True

    def _finish(self, reply: Reply) -> None:
        if not self.future.done():
            self.future.set_result(reply)


class _Session(asyncio.Protocol):
    """One TCP connection to Asterisk."""

    def __init__(self, client: AmiLink) -> None:
        loop = asyncio.get_running_loop()
        self._client = client
        self._parser = AmiParser()
        self._transport: asyncio.Transport | None = None
        self._abort_reason: AmiError | None = None
        self.pending: dict[str, _Pending] = {}
        self.banner: asyncio.Future[str | None] = loop.create_future()
        self.closed: asyncio.Future[AmiError] = loop.create_future()
        self.keepalive: asyncio.Task[None] | None = None

    # asyncio.Protocol

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = transport  # type: ignore[assignment]  # TCP: always a Transport

    def data_received(self, data: bytes) -> None:
        try:
            messages = self._parser.feed(data)
        except AmiProtocolError as exc:
            self.abort(AmiConnectionError(str(exc)))
            return
        if not self.banner.done() and self._parser.banner is not None:
            self.banner.set_result(self._parser.banner)
        pending = self.pending
        for message in messages:
            action_id = message.action_id
            if action_id is not None:
                waiter = pending.get(action_id)
                if waiter is not None and waiter.take(message):
                    if waiter.future.done():
                        del pending[action_id]
                    continue
            if message.kind == "Event":
                self._client._dispatch(message)

    def connection_lost(self, exc: Exception | None) -> None:
        reason = self._abort_reason or AmiConnectionError(
            f"Asterisk closed the AMI connection ({exc})" if exc else "Asterisk closed the AMI connection"
        )
        if not self.banner.done():
            self.banner.set_result(None)
        for waiter in self.pending.values():
            if not waiter.future.done():
                waiter.future.set_exception(reason)
        self.pending.clear()
        if self.keepalive is not None:
            self.keepalive.cancel()
        if not self.closed.done():
            self.closed.set_result(reason)

    # Used by the link

    @property
    def usable(self) -> bool:
        return self._transport is not None and not self._transport.is_closing()

    def abort(self, reason: AmiError) -> None:
        """Drop the connection now (no FIN handshake wait); ``closed`` reports ``reason``."""
        if self._abort_reason is None:
            self._abort_reason = reason
        if self._transport is not None:
            self._transport.abort()

    async def request(
        self, name: str, headers: Headers, limit: float, check: bool, action_id: str | None = None
    ) -> Reply:
        if not self.usable:
            raise AmiConnectionError(f"Not connected to Asterisk AMI at {self._client.where}")
        assert self._transport is not None
        action_id = action_id or f"mb-{next(_ids)}"
        if action_id in self.pending:
            raise ValueError(f"ActionID {action_id} is already waiting for an answer")
        data = make_message("Action", name, headers, action_id=action_id).encode()
        future: asyncio.Future[Reply] = asyncio.get_running_loop().create_future()
        self.pending[action_id] = _Pending(future)
        self._transport.write(data)
        try:
            async with asyncio.timeout(limit):
                reply = await future
        except TimeoutError:
            raise AmiTimeoutError(f"Asterisk did not answer {name} within {limit:g} s") from None
        finally:
            self.pending.pop(action_id, None)
        if check and not reply.ok:
            raise AmiActionError(name, reply)
        return reply


class Subscription:
    """Delivers matching events to one callback, in order, from its own queue and task."""

    def __init__(
        self,
        client: AmiLink,
        callback: EventCallback,
        names: frozenset[str] | None,
        backlog_warning: int,
    ) -> None:
        self._client = client
        self._callback = callback
        self.names = names
        # A deque and two flags rather than asyncio.Queue: a third of the cost per event.
        self._pending: deque[Message] = deque()
        self._wakeup = asyncio.Event()
        self._idle = asyncio.Event()
        self._idle.set()
        self._backlog_warning = backlog_warning
        self._warned = False
        self._task = asyncio.create_task(self._run(), name=f"AMI events to {callback!r}")

    @property
    def backlog(self) -> int:
        return len(self._pending)

    def put(self, message: Message) -> None:
        self._pending.append(message)
        if not self._wakeup.is_set():
            self._idle.clear()
            self._wakeup.set()
        if not self._warned and len(self._pending) >= self._backlog_warning:
            self._warned = True
            self._client.logger.warning(
                "%d AMI events are waiting for %r; it is slower than Asterisk", self.backlog, self._callback
            )

    async def drain(self) -> None:
        """Return once every event put so far has been handled."""
        await self._idle.wait()

    def cancel(self) -> None:
        """Stop delivering; events not yet delivered are dropped."""
        self._client._subscriptions.discard(self)
        self._task.cancel()

    async def _run(self) -> None:
        pending = self._pending
        callback = self._callback
        while True:
            await self._wakeup.wait()
            handled = 0
            while pending:
                message = pending.popleft()
                try:
                    result = callback(message)
                    if result is not None and inspect.isawaitable(result):
                        await result
                except Exception:
                    self._client.logger.exception("AMI event handler %r failed on %s", callback, message.name)
                handled += 1
                if handled % 100 == 0:
                    # Working through a backlog of quick handlers: let the loop read meanwhile.
                    await asyncio.sleep(0)
            if self._warned and len(pending) < self._backlog_warning // 2:
                self._warned = False
            self._wakeup.clear()
            self._idle.set()


class AmiLink:
    """A long-lived AMI connection.

    ``await connect()`` connects and logs in once, raising :class:`AmiConnectionError` (not ready:
    refused, unreachable), :class:`AmiAuthError` or :class:`AmiBannerError`. From then on the client
    keeps itself connected: a lost connection or a Ping left unanswered for ``ping_timeout`` seconds
    leads to reconnecting with exponential backoff from ``backoff_min`` to ``backoff_max`` seconds
    (with jitter); a refused login waits ``backoff_max`` between tries so a wrong secret is not
    hammered. Callbacks added with :meth:`add_connected_callback` run after every login, so state
    can be pushed again after an outage.

    ``events`` is sent as the Login ``Events:`` header (``"cdr,user,system"``, ``"off"``); None leaves
    the user's ``read=`` classes of ``manager.conf`` in force.
    """

    def __init__(
        self,
        host: str,
        port: int = 5038,
        *,
        username: str,
        secret: str,
        auth: Literal["plain", "md5"] = "plain",
        events: str | None = None,
        connect_timeout: float = 5.0,
        action_timeout: float = 10.0,
        ping_interval: float = 15.0,
        ping_timeout: float = 5.0,
        backoff_min: float = 1.0,
        backoff_max: float = 60.0,
        backlog_warning: int = 1000,
        logger: logging.Logger | None = None,
    ) -> None:
        self.host = host
        self.port = port
        self.username = username
        self._secret = secret
        self._auth = auth
        self._events = events
        self._connect_timeout = connect_timeout
        self._action_timeout = action_timeout
        self._ping_interval = ping_interval
        self._ping_timeout = ping_timeout
        self._backoff_min = backoff_min
        self._backoff_max = backoff_max
        self._backlog_warning = backlog_warning
        self.logger = logger or logging.getLogger(__name__)
        self._session: _Session | None = None
        self._supervisor: asyncio.Task[None] | None = None
        self._subscriptions: set[Subscription] = set()
        self._connected_callbacks: list[Callable[[], Awaitable[Any] | Any]] = []
        self._tasks: set[asyncio.Task[Any]] = set()
        self._auth_failure_logged = False
        self.ami_version: str | None = None
        """From the banner, e.g. ``11.0.0`` for Asterisk 22."""
        self.connects = 0
        """Successful logins so far (1 after :meth:`connect`, +1 per reconnect)."""
        self.last_error: str | None = None

    @property
    def where(self) -> str:
        return f"{self.host}:{self.port}"

    @property
    def connected(self) -> bool:
        return self._session is not None and self._session.usable

    # Lifecycle

    async def connect(self) -> None:
        """Connect and log in, then keep the connection up until :meth:`close`."""
        if self._supervisor is not None:
            raise RuntimeError(f"{type(self).__name__}.connect() called twice")
        session = await self._open()
        self._supervisor = asyncio.create_task(self._supervise(session), name=f"AMI {self.where}")

    async def close(self, drain_timeout: float = 5.0) -> None:
        """Log off, close the connection and deliver what subscribers still have queued."""
        if self._supervisor is not None:
            self._supervisor.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._supervisor
            self._supervisor = None
        session, self._session = self._session, None
        if session is not None:
            if session.usable:
                with contextlib.suppress(AmiError):
                    await session.request("Logoff", (), min(self._action_timeout, 1.0), check=False)
            session.abort(AmiConnectionError("AMI client closed"))
            await session.closed
        subscriptions = list(self._subscriptions)
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(drain_timeout):
                await asyncio.gather(*(s.drain() for s in subscriptions))
        for subscription in subscriptions:
            subscription.cancel()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    async def __aenter__(self) -> Self:
        await self.connect()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    # Events

    def subscribe(self, callback: EventCallback, *names: str) -> Subscription:
        """Call ``callback(message)`` (sync or async) for each event named in ``names`` (all if none).

        Names compare case-insensitively (``"Cdr"``, ``"UserEvent"``). Each subscription has its own
        queue: a slow callback delays only itself. Call from a running event loop.
        """
        subscription = Subscription(
            self, callback, frozenset(n.lower() for n in names) or None, self._backlog_warning
        )
        self._subscriptions.add(subscription)
        return subscription

    def add_connected_callback(self, callback: Callable[[], Awaitable[Any] | Any]) -> None:
        """Run ``callback()`` (sync or async) in its own task after every successful login."""
        self._connected_callbacks.append(callback)

    def _dispatch(self, message: Message) -> None:
        name = message.name.lower()
        for subscription in self._subscriptions:
            if subscription.names is None or name in subscription.names:
                subscription.put(message)

    # Actions

    async def action(
        self, name: str, headers: Headers = (), *, check: bool = True, action_id: str | None = None
    ) -> Reply:
        """Send one action and wait for its answer (the whole list, for list actions).

        ``action_id`` chooses the ActionID (default: a fresh one), for actions whose later events are
        tracked across reconnects and restarts, such as an async ``Originate``. Raises :class:`AmiActionError` on ``Response: Error`` unless ``check`` is false,
        :class:`AmiTimeoutError` after ``action_timeout`` seconds, and :class:`AmiConnectionError`
        when not connected. Never retried automatically.
        """
        session = self._session
        if session is None:
            raise AmiConnectionError(
                f"Not connected to Asterisk AMI at {self.where}"
                + (f" ({self.last_error})" if self.last_error else "")
            )
        return await session.request(name, headers, self._action_timeout, check, action_id)

    async def pipeline(
        self, actions: Iterable[tuple[str, Headers]], *, check: bool = True, window: int = PIPELINE_WINDOW
    ) -> list[Reply]:
        """Send many actions without waiting for each answer before the next (at most ``window``
        unanswered at a time): a batch costs about one round trip, not one per action. The answers
        come back in the order of ``actions``; the first failure is raised once every action has
        finished, so none is left running behind the caller's back."""
        room = asyncio.Semaphore(window)

        async def one(name: str, headers: Headers) -> Reply:
            async with room:
                return await self.action(name, headers, check=check)

        results = await asyncio.gather(
            *(one(name, headers) for name, headers in actions), return_exceptions=True
        )
        for result in results:
            if isinstance(result, BaseException):
                raise result
        return results  # type: ignore[return-value]  # no exceptions left

    def diagnostics(self) -> dict[str, Any]:
        return {
            "host": self.host,
            "port": self.port,
            "username": self.username,
            "connected": self.connected,
            "ami_version": self.ami_version,
            "connects": self.connects,
            "last_error": self.last_error,
            "event_backlog": sum(s.backlog for s in self._subscriptions),
            "actions_waiting": len(self._session.pending) if self._session else 0,
        }

    # Connection management

    async def _open(self) -> _Session:
        loop = asyncio.get_running_loop()
        try:
            async with asyncio.timeout(self._connect_timeout):
                _, session = await loop.create_connection(lambda: _Session(self), self.host, self.port)
        except TimeoutError:
            raise AmiConnectionError(
                f"Asterisk AMI at {self.where} did not accept a connection within {self._connect_timeout:g} s"
            ) from None
        except ConnectionRefusedError:
            raise AmiConnectionError(
                f"Cannot connect to Asterisk AMI at {self.where}: connection refused "
                "(is Asterisk running, with the manager enabled on this port?)"
            ) from None
        except OSError as exc:
            raise AmiConnectionError(
                f"Cannot connect to Asterisk AMI at {self.where}: {exc.strerror or exc}"
            ) from exc
        try:
            await self._greet(session)
            await self._login(session)
        except BaseException:
            session.abort(AmiConnectionError("login did not complete"))
            raise
        self._session = session
        self.connects += 1
        self.last_error = None
        self._auth_failure_logged = False
        session.keepalive = asyncio.create_task(self._keepalive(session), name=f"AMI ping {self.where}")
        for callback in self._connected_callbacks:
            self._spawn(callback)
        return session

    async def _greet(self, session: _Session) -> None:
        try:
            async with asyncio.timeout(self._connect_timeout):
                banner = await session.banner
        except TimeoutError:
            raise AmiBannerError(
                f"{self.where} accepted a connection but sent no AMI banner within "
                f"{self._connect_timeout:g} s; is this the Asterisk manager port (5038)?"
            ) from None
        if banner is None:
            raise AmiConnectionError(f"Asterisk AMI at {self.where} closed the connection before its banner")
        if not banner.startswith(BANNER_PREFIX):
            raise AmiBannerError(
                f"{self.where} is not an Asterisk manager interface (it sent {banner[:60]!r})"
            )
        self.ami_version = banner[len(BANNER_PREFIX) :].strip()

    async def _login(self, session: _Session) -> None:
        headers: dict[str, HeaderValue] = {"Username": self.username}
        if self._auth == "md5":
            challenge = await session.request("Challenge", {"AuthType": "MD5"}, self._action_timeout, False)
            if not challenge.ok:
                raise AmiAuthError(f"Asterisk refused an MD5 challenge: {challenge.message}")
            digest = hashlib.md5(usedforsecurity=False)
            digest.update(((challenge.get("Challenge") or "") + self._secret).encode())
            headers.update({"AuthType": "MD5", "Key": digest.hexdigest()})
        else:
            headers["Secret"] = self._secret
        if self._events is not None:
            headers["Events"] = self._events
        # Asterisk waits 1 s before it refuses a login, hence the full action timeout.
        reply = await session.request("Login", headers, self._action_timeout, False)
        if not reply.ok:
            raise AmiAuthError(
                f"Asterisk at {self.where} refused the AMI login of user {self.username!r} "
                f"({reply.message}); check the username and secret in manager.conf"
            )

    async def _keepalive(self, session: _Session) -> None:
        while session.usable:
            await asyncio.sleep(self._ping_interval)
            try:
                await session.request("Ping", (), self._ping_timeout, False)
            except AmiTimeoutError:
                # TCP alone does not notice a half-open link or a stalled Asterisk.
                session.abort(AmiConnectionError(f"no answer to Ping within {self._ping_timeout:g} s"))
            except AmiConnectionError:
                return

    async def _supervise(self, session: _Session) -> None:
        while True:
            reason = await asyncio.shield(session.closed)
            self._session = None
            self.last_error = str(reason)
            self.logger.warning("Lost the AMI connection to %s: %s; reconnecting", self.where, reason)
            session = await self._reconnect()
            self.logger.info("AMI connection to %s is back (AMI %s)", self.where, self.ami_version)

    async def _reconnect(self) -> _Session:
        # Any failure is retried: a bridge that runs for years must not stop on a surprise.
        retrying = AsyncRetrying(
            retry=retry_if_exception_type(Exception),
            wait=self._backoff,
            before_sleep=self._note_failure,
            reraise=True,
        )
        return await retrying(self._open)

    def _backoff(self, state: RetryCallState) -> float:
        error = state.outcome.exception() if state.outcome else None
        if isinstance(error, AmiAuthError | AmiBannerError):
            return self._backoff_max
        # Exponent capped: years of outage must not overflow a float.
        delay = min(self._backoff_max, self._backoff_min * 2 ** min(state.attempt_number - 1, 30))
        return delay * random.uniform(0.5, 1.0)

    def _note_failure(self, state: RetryCallState) -> None:
        error = state.outcome.exception() if state.outcome else None
        self.last_error = str(error)
        if isinstance(error, AmiAuthError) and not self._auth_failure_logged:
            self._auth_failure_logged = True
            self.logger.error("%s; retrying every %g s", error, self._backoff_max)
        elif not isinstance(error, AmiError):
            self.logger.warning(
                "Unexpected error while reconnecting to AMI at %s", self.where, exc_info=error
            )
        else:
            self.logger.debug("AMI reconnect attempt %d failed: %s", state.attempt_number, error)

    def _spawn(self, callback: Callable[[], Awaitable[Any] | Any]) -> None:
        async def run() -> None:
            try:
                result = callback()
                if inspect.isawaitable(result):
                    await result
            except Exception:
                self.logger.exception("AMI connected callback %r failed", callback)

        task = asyncio.create_task(run(), name=f"AMI connected callback {callback!r}")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

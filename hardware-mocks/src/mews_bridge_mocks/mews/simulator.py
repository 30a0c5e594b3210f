"""``MewsSimulator``: the simulated hotel (``World``) served as the Mews Connector API + WebSocket."""

from __future__ import annotations

from collections.abc import Callable

from ..running import Simulator
from .auth import DEMO_ACCESS_TOKEN, DEMO_CLIENT_TOKEN, Credentials
from .calls import RecordedCall
from .faults import Faults
from .ratelimit import SlidingWindowLimiter
from .seed import seed_world
from .server import ConnectorServer
from .state import World
from .table import Row
from .websocket import EventHub


class MewsSimulator(World, Simulator):
    """A fake Mews on loopback for tests, benchmarks and demos.

    The world helpers (``add_device``, ``add_command``, ``check_in`` ...) come from ``World`` and
    push the WebSocket events Mews would. As in Mews, a socket hears DeviceCommand events only for
    devices that existed when it connected: reconnect after ``add_device``. ``seed=False`` starts
    from an empty world (no taxes, services or rooms; reservations then need a Bookable service).

    Runtime knobs: ``faults``, ``rate_limiter.limit`` / ``.window_s``,
    ``reject_updates_after_final_state``; ``calls`` grows with every request (clear it in long runs).
    """

    def __init__(
        self,
        *,
        client_token: str = DEMO_CLIENT_TOKEN,
        access_token: str = DEMO_ACCESS_TOKEN,
        rate_limit: int | None = 200,
        rate_window_s: float = 30.0,
        pricing: str = "Gross",
        currency: str = "EUR",
        timezone: str = "Europe/Vienna",
        seed: bool = True,
        on_frame: Callable[[str], None] | None = None,
    ) -> None:
        """``on_frame(frame)`` is called as each WebSocket frame goes out (for timing)."""
        super().__init__(pricing=pricing, currency=currency, timezone=timezone)
        self._credentials = Credentials(client_token, access_token)
        self.rate_limiter = SlidingWindowLimiter(rate_limit, rate_window_s)
        self._hub = EventHub(
            self._credentials, lambda: (device["Id"] for device in self.devices), on_frame=on_frame
        )
        self.faults = Faults(self._hub)
        self.calls: list[RecordedCall] = []
        self._server = ConnectorServer(
            self,
            credentials=self._credentials,
            limiter=self.rate_limiter,
            faults=self.faults,
            hub=self._hub,
            calls=self.calls,
        )
        self._address: tuple[str, int] | None = None
        if seed:
            seed_world(self)

    def _emit(self, event: Row, device_id: str | None = None) -> None:
        self._hub.publish(event, device_id)

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> None:
        if self._address is not None:
            raise RuntimeError("the simulator is already running")
        self._address = (host, await self._server.start(host, port))

    async def stop(self) -> None:
        await self._server.stop()
        self._address = None

    def _base(self, scheme: str) -> str:
        if self._address is None:
            raise RuntimeError("the simulator is not running; await start() first")
        host, port = self._address
        return f"{scheme}://{host}:{port}"

    @property
    def client_token(self) -> str:
        return self._credentials.client_token

    @property
    def access_token(self) -> str:
        return self._credentials.access_token

    @property
    def platform_url(self) -> str:
        """``PlatformAddress``: ``http://127.0.0.1:PORT`` (operations live under ``/api/connector/v1/``)."""
        return self._base("http")

    @property
    def websocket_url(self) -> str:
        """``WebSocketAddress``: ``ws://127.0.0.1:PORT`` (the socket is at ``/ws/connector``)."""
        return self._base("ws")

    def calls_to(self, operation: str) -> list[RecordedCall]:
        """Recorded calls of one operation, e.g. ``"commands/update"``, oldest first."""
        return [call for call in self.calls if call["operation"] == operation]

    async def push_events(self, events: list[Row]) -> None:
        """Send raw ``events`` in one frame to every open socket; returns once written."""
        await self._hub.push(events)

    async def push_frame(self, frame: str) -> None:
        """Send a raw text frame (not necessarily JSON) to every open socket; returns once written."""
        await self._hub.push_frame(frame)

    @property
    def websocket_connections(self) -> int:
        """Sockets open right now."""
        return self._hub.open_count

    @property
    def websocket_connects(self) -> int:
        """Sockets accepted since the simulator was created (reconnects count again)."""
        return self._hub.connects

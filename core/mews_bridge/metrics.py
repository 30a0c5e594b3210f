"""Prometheus metrics and the Mews link's recent history, for ``/metrics``, the status page and
``mews-bridge status``.

Counters and histograms are process-wide (one bridge per process, like its access token) and are
moved by one-line calls from the code that does the work. Gauges that describe the present (device
up, queue depth, journal size) are read from the running bridge when ``/metrics`` is scraped. Every
metric and its labels is listed in ``docs/deploy/fleet.md``.

The figures are kept here in plain numbers; :mod:`.exposition` turns them into Prometheus' text
format with prometheus_client, which (with the HTTP server modules it imports, about 1 MB) is
imported at the first scrape, not at start.

Label values are configured names (devices, services), Connector API operation names, HTTP statuses
and command states: never anything from a guest or a secret.
"""

from __future__ import annotations

import time
from bisect import bisect_left
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import TYPE_CHECKING, Literal

from .redaction import redactor

if TYPE_CHECKING:
    from .status import BridgeStatus


@dataclass
class Family:
    """One metric's values by label values (a counter's total, a gauge's value, or a histogram's
    count per bucket, the last one above every bound, and its sum)."""

    kind: Literal["counter", "gauge", "histogram"]
    name: str
    documentation: str
    labels: tuple[str, ...] = ()
    buckets: tuple[float, ...] = ()
    values: dict[tuple[str, ...], float] = field(default_factory=dict)
    counts: dict[tuple[str, ...], list[int]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        FAMILIES.append(self)
        if not self.labels and self.kind == "counter":
            self.values[()] = 0.0  # an unlabelled counter is exposed from the start, at 0

    def inc(self, *labels: str) -> None:
        self.values[labels] = self.values.get(labels, 0.0) + 1

    def set(self, value: float, *labels: str) -> None:
        self.values[labels] = value

    def observe(self, value: float, *labels: str) -> None:
        counts = self.counts.setdefault(labels, [0] * (len(self.buckets) + 1))
        counts[bisect_left(self.buckets, value)] += 1  # a bucket's bound is "less than or equal"
        self.values[labels] = self.values.get(labels, 0.0) + value


FAMILIES: list[Family] = []
"""What ``/metrics`` exposes besides the process' own figures and the present state of the bridge."""
COMMANDS = Family(
    "counter",
    "mews_bridge_commands",
    "Mews device commands that reached a final state, by configured device and state",
    ("device", "state"),
)
COMMAND_DURATION = Family(
    "histogram",
    "mews_bridge_command_duration_seconds",
    "Time a driver spent on a command, from start to final state",
    ("device",),
    buckets=(0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600),
)
DISPATCH_DELAY = Family(
    "histogram",
    "mews_bridge_dispatch_delay_seconds",
    "Time a command waited in the bridge, from intake to its driver starting it",
    ("device",),
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300),
)
MEWS_REQUESTS = Family(
    "counter",
    "mews_bridge_mews_requests",
    'Connector API requests by operation and HTTP status ("network" when no answer came)',
    ("operation", "status"),
)
MEWS_THROTTLED = Family("counter", "mews_bridge_mews_throttled", "429 Too Many Requests answers from Mews")
WEBSOCKET_RECONNECTS = Family(
    "counter",
    "mews_bridge_websocket_reconnects",
    "Times the bridge had to reconnect the Mews event stream (lost, or could not be opened)",
)
FISCAL_RECEIPTS = Family(
    "counter",
    "mews_bridge_fiscal_receipts",
    "Fiscal receipts signed, by configured fiscal device",
    ("device",),
)
FISCAL_LAST_CLOSING = Family(
    "gauge",
    "mews_bridge_fiscal_last_closing_timestamp_seconds",
    "When the fiscal device last closed a business day (Unix time)",
    ("device",),
)
FISCAL_UNCLOSED_SINCE = Family(
    "gauge",
    "mews_bridge_fiscal_unclosed_since_timestamp_seconds",
    "The oldest fiscal entry no daily closing covers yet (Unix time; 0 when all are closed)",
    ("device",),
)


@dataclass
class MewsLink:
    """What the status page tells about the connection to Mews beyond the counters."""

    connected_since: datetime | None = None
    last_event_at: datetime | None = None
    last_error: str | None = None
    last_error_at: datetime | None = None
    throttled_day: date | None = None
    throttled_today: int = 0

    def error(self, text: str) -> None:
        self.last_error, self.last_error_at = redactor.redact(text), datetime.now(UTC)


LINK = MewsLink()


def mews_answered(operation: str, status: int | str, error: str | None = None) -> None:
    """A Connector API request ended: ``status`` is the HTTP status or ``"network"``."""
    MEWS_REQUESTS.inc(operation, str(status))
    if status == 429:
        MEWS_THROTTLED.inc()
        today = datetime.now(UTC).date()
        if LINK.throttled_day != today:
            LINK.throttled_day, LINK.throttled_today = today, 0
        LINK.throttled_today += 1
    if error is not None:
        LINK.error(f"{operation}: {status if isinstance(status, int) else ''} {error}".replace("  ", " "))


def stream_connected() -> None:
    LINK.connected_since = datetime.now(UTC)


def stream_event() -> None:
    LINK.last_event_at = datetime.now(UTC)


def stream_down() -> None:
    """The event stream closed or could not be opened, and the bridge reconnects."""
    if LINK.connected_since is not None:
        LINK.error("the event stream was lost")
    LINK.connected_since = None
    WEBSOCKET_RECONNECTS.inc()


def command_started(device: str, queued_at: float) -> float:
    """A driver starts a command that entered the bridge at ``queued_at`` (``time.monotonic()``);
    returns now, for :func:`command_finished`."""
    now = time.monotonic()
    DISPATCH_DELAY.observe(max(0.0, now - queued_at), device)
    return now


def command_finished(device: str, state: str, started_at: float | None = None) -> None:
    """A command reached ``state``; ``started_at`` (monotonic) when its driver ran it."""
    COMMANDS.inc(device, state)
    if started_at is not None:
        COMMAND_DURATION.observe(max(0.0, time.monotonic() - started_at), device)


def fiscal_receipt(device: str) -> None:
    FISCAL_RECEIPTS.inc(device)


def fiscal_closings(device: str, last_closing: datetime | None, unclosed_since: datetime | None) -> None:
    """When the device last closed a day, and since when it holds entries no closing covers yet."""
    if last_closing is not None:
        FISCAL_LAST_CLOSING.set(last_closing.timestamp(), device)
    FISCAL_UNCLOSED_SINCE.set(unclosed_since.timestamp() if unclosed_since else 0, device)


def exposition(status: BridgeStatus | None = None) -> bytes:
    """``/metrics``: the process-wide metrics and, with ``status``, the present state of the bridge."""
    from .exposition import text  # prometheus_client is imported at the first scrape: see the docstring

    return text(FAMILIES, status)

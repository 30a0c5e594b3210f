"""Prometheus metrics and the Mews link's recent history, for ``/metrics``, the status page and
``mews-bridge status``.

Counters and histograms are process-wide (one bridge per process, like its access token) and are
moved by one-line calls from the code that does the work. Gauges that describe the present (device
up, queue depth, journal size) are read from the running bridge when ``/metrics`` is scraped, by
:class:`BridgeCollector`. Every metric and its labels is listed in ``docs/deploy/fleet.md``.

Label values are configured names (devices, services), Connector API operation names, HTTP statuses
and command states: never anything from a guest or a secret.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import TYPE_CHECKING

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    disable_created_metrics,
    generate_latest,
)
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.platform_collector import PlatformCollector
from prometheus_client.process_collector import ProcessCollector
from prometheus_client.registry import Collector

from .redaction import redactor

if TYPE_CHECKING:
    from .status import BridgeStatus

# "_created" series double what /metrics says and no alert needs them.
disable_created_metrics()  # type: ignore[no-untyped-call]  # prometheus_client leaves it unannotated
REGISTRY = CollectorRegistry()
"""What ``/metrics`` exposes (not prometheus_client's global registry, which a plugin might fill)."""
ProcessCollector(registry=REGISTRY)
PlatformCollector(registry=REGISTRY)

COMMANDS = Counter(
    "mews_bridge_commands",
    "Mews device commands that reached a final state, by configured device and state",
    ["device", "state"],
    registry=REGISTRY,
)
COMMAND_DURATION = Histogram(
    "mews_bridge_command_duration_seconds",
    "Time a driver spent on a command, from start to final state",
    ["device"],
    buckets=(0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600),
    registry=REGISTRY,
)
DISPATCH_DELAY = Histogram(
    "mews_bridge_dispatch_delay_seconds",
    "Time a command waited in the bridge, from intake to its driver starting it",
    ["device"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300),
    registry=REGISTRY,
)
MEWS_REQUESTS = Counter(
    "mews_bridge_mews_requests",
    'Connector API requests by operation and HTTP status ("network" when no answer came)',
    ["operation", "status"],
    registry=REGISTRY,
)
MEWS_THROTTLED = Counter(
    "mews_bridge_mews_throttled", "429 Too Many Requests answers from Mews", registry=REGISTRY
)
WEBSOCKET_RECONNECTS = Counter(
    "mews_bridge_websocket_reconnects",
    "Times the bridge had to reconnect the Mews event stream (lost, or could not be opened)",
    registry=REGISTRY,
)
FISCAL_RECEIPTS = Counter(
    "mews_bridge_fiscal_receipts",
    "Fiscal receipts signed, by configured fiscal device",
    ["device"],
    registry=REGISTRY,
)
FISCAL_LAST_CLOSING = Gauge(
    "mews_bridge_fiscal_last_closing_timestamp_seconds",
    "When the fiscal device last closed a business day (Unix time)",
    ["device"],
    registry=REGISTRY,
)
FISCAL_UNCLOSED_SINCE = Gauge(
    "mews_bridge_fiscal_unclosed_since_timestamp_seconds",
    "The oldest fiscal entry no daily closing covers yet (Unix time; 0 when all are closed)",
    ["device"],
    registry=REGISTRY,
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
    MEWS_REQUESTS.labels(operation, str(status)).inc()
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
    DISPATCH_DELAY.labels(device).observe(max(0.0, now - queued_at))
    return now


def command_finished(device: str, state: str, started_at: float | None = None) -> None:
    """A command reached ``state``; ``started_at`` (monotonic) when its driver ran it."""
    COMMANDS.labels(device, state).inc()
    if started_at is not None:
        COMMAND_DURATION.labels(device).observe(max(0.0, time.monotonic() - started_at))


def fiscal_receipt(device: str) -> None:
    FISCAL_RECEIPTS.labels(device).inc()


def fiscal_closings(device: str, last_closing: datetime | None, unclosed_since: datetime | None) -> None:
    """When the device last closed a day, and since when it holds entries no closing covers yet."""
    if last_closing is not None:
        FISCAL_LAST_CLOSING.labels(device).set(last_closing.timestamp())
    FISCAL_UNCLOSED_SINCE.labels(device).set(unclosed_since.timestamp() if unclosed_since else 0)


def exposition(status: BridgeStatus) -> bytes:
    """``/metrics``: the process-wide metrics and the present state of the bridge in ``status``."""
    present = CollectorRegistry(auto_describe=False)
    present.register(BridgeCollector(status))
    return generate_latest(REGISTRY) + generate_latest(present)


class BridgeCollector(Collector):
    """The present state of one bridge, from a :class:`~mews_bridge.status.BridgeStatus`."""

    def __init__(self, status: BridgeStatus) -> None:
        self.status = status

    def collect(self) -> Iterator[Metric]:
        status = self.status
        yield _gauge(
            "mews_bridge_ready",
            "1 when Mews is connected and every device and service is set up",
            status.ready,
        )
        yield _gauge(
            "mews_bridge_websocket_connected", "1 while the Mews event stream is open", status.mews.connected
        )
        yield _gauge(
            "mews_bridge_mews_window_requests",
            "Requests in the current rate-limit window (all users of the access token)",
            status.mews.window_requests,
        )
        yield _gauge(
            "mews_bridge_results_waiting_for_mews",
            "Final states Mews has not taken yet (kept and re-sent)",
            status.waiting_for_mews,
        )
        yield _gauge(
            "mews_bridge_journal_bytes", "Size of the SQLite journal with its WAL", status.journal_bytes
        )
        up = GaugeMetricFamily(
            "mews_bridge_device_up",
            "1 when the configured device or service is set up, else 0",
            labels=["device", "kind", "implementation"],
        )
        queue = GaugeMetricFamily(
            "mews_bridge_queue_depth", "Commands waiting for the device, by device", labels=["device"]
        )
        for instance in status.instances:
            up.add_metric(
                [instance.name, instance.kind, instance.implementation],
                1 if instance.state == "loaded" else 0,
            )
            if instance.kind == "device":
                queue.add_metric([instance.name], instance.queued)
        yield up
        yield queue
        charges = CounterMetricFamily(
            "mews_bridge_charges",
            "Charges by service and outcome since the bridge started",
            labels=["service", "outcome"],
        )
        pending = GaugeMetricFamily(
            "mews_bridge_charges_pending", "Charges waiting to be posted", labels=["service"]
        )
        for book in status.charges:
            for outcome, count in sorted(book.since_start.items()):
                charges.add_metric([book.service, outcome], count)
            pending.add_metric([book.service], book.counts.get("pending", 0))
        yield charges
        yield pending


def _gauge(name: str, documentation: str, value: float) -> GaugeMetricFamily:
    return GaugeMetricFamily(name, documentation, value=float(value))

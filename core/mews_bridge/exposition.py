"""``/metrics`` in Prometheus' text format, written by prometheus_client.

Imported at the first scrape (see :mod:`.metrics`): the counters and histograms kept by
:mod:`.metrics`, the process' own figures (memory, CPU, open files, Python version) and the present
state of the bridge (devices up, queues, the Mews link) read from a :class:`~.status.BridgeStatus`.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from itertools import accumulate
from typing import TYPE_CHECKING

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.platform_collector import PlatformCollector
from prometheus_client.process_collector import ProcessCollector
from prometheus_client.registry import Collector
from prometheus_client.utils import floatToGoString

if TYPE_CHECKING:
    from .metrics import Family
    from .status import BridgeStatus

_PROCESS = CollectorRegistry()
ProcessCollector(registry=_PROCESS)
PlatformCollector(registry=_PROCESS)


def text(families: Iterable[Family], status: BridgeStatus | None) -> bytes:
    """The process' figures, then ``families``, then the present state in ``status`` if given."""
    kept = CollectorRegistry(auto_describe=False)
    kept.register(KeptCollector(families))
    if status is not None:
        kept.register(BridgeCollector(status))
    return generate_latest(_PROCESS) + generate_latest(kept)


class KeptCollector(Collector):
    """The counters, gauges and histograms :mod:`.metrics` keeps."""

    def __init__(self, families: Iterable[Family]) -> None:
        self.families = list(families)

    def collect(self) -> Iterator[Metric]:
        for family in self.families:
            labels = list(family.labels)
            if family.kind == "counter":
                counter = CounterMetricFamily(family.name, family.documentation, labels=labels)
                for values, value in family.values.items():
                    counter.add_metric(list(values), value)
                yield counter
            elif family.kind == "gauge":
                gauge = GaugeMetricFamily(family.name, family.documentation, labels=labels)
                for values, value in family.values.items():
                    gauge.add_metric(list(values), value)
                yield gauge
            else:
                histogram = HistogramMetricFamily(family.name, family.documentation, labels=labels)
                bounds = [*map(floatToGoString, family.buckets), "+Inf"]
                for values, counts in family.counts.items():
                    cumulative = [float(count) for count in accumulate(counts)]
                    histogram.add_metric(
                        list(values), list(zip(bounds, cumulative, strict=True)), family.values[values]
                    )
                yield histogram


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

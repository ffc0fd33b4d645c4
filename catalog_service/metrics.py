"""The catalog's Prometheus metrics: the scheduler's event stream and the reconciler
(docs/metrics.md).

The event consumer and the reconciler keep plain counters; this collector reads them at
scrape time, so applying an event costs an integer addition, not a metric update.
"""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client import CollectorRegistry
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

from catalog_service.event_consumer import EventConsumer
from catalog_service.reconciler import Reconciler


class CatalogCollector(Collector):
    """Reports the event consumer's and the reconciler's state."""

    def __init__(self, consumer: EventConsumer, reconciler: Reconciler) -> None:
        self._consumer = consumer
        self._reconciler = reconciler

    def collect(self) -> Iterator[CounterMetricFamily | GaugeMetricFamily]:
        """The current values (called by the registry at each scrape)."""
        consumer, reconciler = self._consumer, self._reconciler
        yield GaugeMetricFamily(
            "glue_catalog_event_stream_connected",
            "1 while the scheduler's run-event stream is connected (the catalog is SERVING)",
            value=1 if consumer.connected else 0,
        )
        yield CounterMetricFamily(
            "glue_catalog_event_stream_connects",
            "Times the run-event stream connected (the first time and each reconnection)",
            value=consumer.connects,
        )
        yield CounterMetricFamily(
            "glue_catalog_events_applied",
            "Run events applied to the run history (each once)",
            value=consumer.events_applied,
        )
        yield GaugeMetricFamily(
            "glue_catalog_event_applied_sequence",
            "Sequence of the last run event applied (the catalog's cursor)",
            value=consumer.applied_through,
        )
        yield GaugeMetricFamily(
            "glue_catalog_event_head_sequence",
            "The scheduler's newest event sequence, as of the last event received",
            value=consumer.head_sequence,
        )
        yield GaugeMetricFamily(
            "glue_catalog_event_stream_lag_events",
            "Events the scheduler has written that the catalog has not applied yet, as of the "
            "last event received (frozen while disconnected)",
            value=max(0, consumer.head_sequence - consumer.applied_through),
        )
        yield CounterMetricFamily(
            "glue_catalog_reconcile_passes",
            "Reconciler passes completed",
            value=reconciler.passes,
        )
        yield CounterMetricFamily(
            "glue_catalog_reconcile_repairs",
            "Registrations the reconciler pushed because the scheduler's differed",
            value=reconciler.repaired,
        )
        yield CounterMetricFamily(
            "glue_catalog_reconcile_failures",
            "Reconciler passes that failed (retried at the next interval)",
            value=reconciler.failures,
        )


def register(registry: CollectorRegistry, consumer: EventConsumer, reconciler: Reconciler) -> None:
    """Add the catalog's metrics to ``registry``."""
    registry.register(CatalogCollector(consumer, reconciler))

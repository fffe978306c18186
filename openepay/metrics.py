"""Prometheus metrics, one registry per gateway.

Counters and histograms are counted where they happen. Under ``openepay serve`` every process
it starts (the web processes and its notification worker) writes them to files in one shared
directory, and a scrape of any web process sums them all (prometheus-client's multiprocess
mode): otherwise a scrape would see only the process that happened to answer it, and the
counters would jump about from scrape to scrape. A lone ``openepay worker`` keeps its own and
serves them with ``--metrics-port``. The backlog, the age of the oldest due notification and
the number of live workers are read from the database at scrape time, the same figures in every
process, so they are reported as read, never summed.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from datetime import timedelta

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest, values
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.registry import Collector
from sqlalchemy import func, select

from openepay.db import Database
from openepay.db.models import FAILED_NOTIFICATION, PENDING_NOTIFICATION, NotifyTask, NotifyWorkerBeat
from openepay.db.types import utcnow

WORKER_ALIVE = timedelta(seconds=30)
_LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10)
_DELAY_BUCKETS = (0.1, 0.5, 1, 2, 5, 15, 60, 300, 1800, 3600, 21600, 86400)
SHARED_DIRECTORY_ENV = "PROMETHEUS_MULTIPROC_DIR"


def share_between_processes(directory: str) -> None:
    """Count in files under ``directory`` from now on, in this process and every one forked from it.

    prometheus-client picks where values live once, when it is imported, from this environment
    variable; ``serve`` has imported it by the time it knows it will fork, so the choice is made again.
    """
    os.environ[SHARED_DIRECTORY_ENV] = directory
    values.ValueClass = values.get_value_class()


class OutboxFigures(Collector):
    """The outbox as the database last said at a scrape: global figures, reported as they are."""

    def __init__(self) -> None:
        self.backlog = 0
        self.oldest_due_age = 0.0
        self.failed = 0
        self.workers = 0

    def collect(self) -> Iterator[Metric]:
        yield GaugeMetricFamily(
            "openepay_notify_backlog", "Notifications due now and not yet delivered", value=self.backlog
        )
        yield GaugeMetricFamily(
            "openepay_notify_oldest_due_age_seconds",
            "How long the oldest due notification has waited",
            value=self.oldest_due_age,
        )
        yield GaugeMetricFamily(
            "openepay_notify_failed", "Notifications that gave up and wait for a resend", value=self.failed
        )
        yield GaugeMetricFamily(
            "openepay_notify_workers", "Notification workers seen alive in the last 30 seconds", value=self.workers
        )


# The methods counted by name in ``openepay_http_requests``; any other is ``OTHER``.
HTTP_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "CONNECT", "TRACE"})


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.http_requests = Counter(
            "openepay_http_requests", "HTTP requests served", ["method", "route", "status"], registry=r
        )
        self.http_duration = Histogram(
            "openepay_http_request_duration_seconds", "Time to answer", ["route"], buckets=_LATENCY_BUCKETS, registry=r
        )
        self.notify_attempts = Counter(
            "openepay_notify_attempts",
            "Notification attempts by outcome (delivered, or why not)",
            ["outcome"],
            registry=r,
        )
        self.notify_attempt_duration = Histogram(
            "openepay_notify_attempt_duration_seconds",
            "Time a merchant endpoint took to answer",
            buckets=_LATENCY_BUCKETS,
            registry=r,
        )
        self.notify_delivery_delay = Histogram(
            "openepay_notify_delivery_delay_seconds",
            "From the notification being due for the first time to its delivery",
            buckets=_DELAY_BUCKETS,
            registry=r,
        )
        self.outbox = OutboxFigures()
        r.register(self.outbox)
        self._http_series: dict[tuple[str, str, int], tuple[Counter, Histogram]] = {}

    def request_served(self, method: str, route: str, status: int, seconds: float) -> None:
        """Count one answered request and its time.

        Its two labelled series are looked up (``labels``, a fifth of the cost of a ``/healthz``)
        once per set of labels and kept. The labels are bounded: ``route`` is a route's template,
        ``status`` a status code, and a method outside ``HTTP_METHODS`` (any token a client makes
        up) is counted as ``OTHER``, so neither the series nor this cache grow with what clients send.
        """
        method = method if method in HTTP_METHODS else "OTHER"
        key = (method, route, status)
        series = self._http_series.get(key)
        if series is None:
            series = self.http_requests.labels(method, route, str(status)), self.http_duration.labels(route)
            self._http_series[key] = series
        series[0].inc()
        series[1].observe(seconds)

    async def refresh(self, db: Database) -> None:
        now = utcnow()
        due = (PENDING_NOTIFICATION, NotifyTask.next_attempt_at <= now)
        async with db.reading() as session:
            backlog, oldest = (
                await session.execute(select(func.count(), func.min(NotifyTask.next_attempt_at)).where(*due))
            ).one()
            failed = await session.scalar(select(func.count()).select_from(NotifyTask).where(FAILED_NOTIFICATION))
            workers = await session.scalar(
                select(func.count()).where(NotifyWorkerBeat.last_seen_at > now - WORKER_ALIVE)
            )
        if oldest is not None and oldest.tzinfo is None:
            oldest = oldest.replace(tzinfo=now.tzinfo)
        self.outbox.backlog = backlog
        self.outbox.oldest_due_age = (now - oldest).total_seconds() if oldest else 0.0
        self.outbox.failed = failed or 0
        self.outbox.workers = workers or 0

    def render(self) -> bytes:
        """This process's metrics or, under ``serve``, every process's summed, with the outbox figures."""
        directory = os.environ.get(SHARED_DIRECTORY_ENV)
        if directory is None:
            return generate_latest(self.registry)
        registry = CollectorRegistry()
        MultiProcessCollector(registry, path=directory)
        registry.register(self.outbox)
        return generate_latest(registry)

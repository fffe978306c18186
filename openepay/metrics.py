"""Prometheus metrics, one registry per gateway.

Counters and histograms are per process (each ``openepay worker`` can expose its own with
``--metrics-port``); the backlog, the age of the oldest due notification and the number of
live workers are read from the database at scrape time, so every web process reports the
same, global figures.
"""

from __future__ import annotations

from datetime import timedelta

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from sqlalchemy import func, select

from openepay.core.states import NotifyStatus
from openepay.db import Database
from openepay.db.models import NotifyTask, NotifyWorkerBeat
from openepay.db.types import utcnow

WORKER_ALIVE = timedelta(seconds=30)
_LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10)
_DELAY_BUCKETS = (0.1, 0.5, 1, 2, 5, 15, 60, 300, 1800, 3600, 21600, 86400)


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
        self.notify_backlog = Gauge(
            "openepay_notify_backlog", "Notifications due now and not yet delivered", registry=r
        )
        self.notify_oldest_due_age = Gauge(
            "openepay_notify_oldest_due_age_seconds", "How long the oldest due notification has waited", registry=r
        )
        self.notify_failed = Gauge(
            "openepay_notify_failed", "Notifications that gave up and wait for a resend", registry=r
        )
        self.notify_workers = Gauge(
            "openepay_notify_workers", "Notification workers seen alive in the last 30 seconds", registry=r
        )

    async def refresh(self, db: Database) -> None:
        now = utcnow()
        due = (NotifyTask.status == NotifyStatus.PENDING, NotifyTask.next_attempt_at <= now)
        async with db.session() as session:
            backlog, oldest = (
                await session.execute(select(func.count(), func.min(NotifyTask.next_attempt_at)).where(*due))
            ).one()
            failed = await session.scalar(select(func.count()).where(NotifyTask.status == NotifyStatus.FAILED))
            workers = await session.scalar(
                select(func.count()).where(NotifyWorkerBeat.last_seen_at > now - WORKER_ALIVE)
            )
        self.notify_backlog.set(backlog)
        if oldest is not None and oldest.tzinfo is None:
            oldest = oldest.replace(tzinfo=now.tzinfo)
        self.notify_oldest_due_age.set((now - oldest).total_seconds() if oldest else 0)
        self.notify_failed.set(failed or 0)
        self.notify_workers.set(workers or 0)

    def render(self) -> bytes:
        return generate_latest(self.registry)

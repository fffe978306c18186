"""The notification worker: claims due outbox rows, delivers them, records every attempt.

It also runs the periodic housekeeping that must happen even when nobody visits a page:
closing expired orders (and their upstream payments).
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import secrets
import time
from datetime import timedelta

from sqlalchemy import select

from openepay.core.orders import channel_view, close_expired
from openepay.db.models import Merchant, Order
from openepay.db.types import utcnow
from openepay.gateway import Gateway
from openepay.notify.http import ErrorClass, HttpOutcome, SafeHttpClient
from openepay.notify.outbox import AttemptRecord, ClaimedTask, claim, record_attempt

log = logging.getLogger(__name__)

BODY_HEAD_CHARS = 200


def worker_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(3)}"


class NotifyWorker:
    def __init__(self, gateway: Gateway, name: str | None = None) -> None:
        self.gateway = gateway
        self.name = name or worker_name()
        settings = gateway.settings
        self.http = SafeHttpClient(
            allow_private=settings.notify_allow_private,
            connect_timeout=settings.notify_connect_timeout,
            total_timeout=settings.notify_timeout,
            max_body_bytes=settings.notify_max_body_bytes,
        )
        self._slots = asyncio.Semaphore(settings.notify_concurrency)
        self._last_sweep = 0.0

    async def aclose(self) -> None:
        await self.http.aclose()

    async def run(self, stop: asyncio.Event) -> None:
        settings = self.gateway.settings
        log.info("notify worker started", extra={"worker": self.name})
        while not stop.is_set():
            try:
                await self.sweep_if_due()
                handled = await self.run_once()
            except Exception:
                log.exception("notify worker cycle failed; retrying")
                handled = 0
            if handled == 0:
                try:
                    await asyncio.wait_for(stop.wait(), timeout=settings.worker_poll_interval)
                except TimeoutError:
                    pass
        log.info("notify worker stopped", extra={"worker": self.name})

    async def run_once(self) -> int:
        settings = self.gateway.settings
        tasks = await claim(
            self.gateway.db,
            self.name,
            limit=settings.notify_batch_size,
            lease=timedelta(seconds=settings.notify_lease_seconds),
        )
        if tasks:
            await asyncio.gather(*(self._deliver_bounded(task) for task in tasks))
        return len(tasks)

    async def _deliver_bounded(self, task: ClaimedTask) -> None:
        async with self._slots:
            try:
                await self.deliver(task)
            except Exception:
                log.exception("delivery of notification %s failed unexpectedly", task.id)

    async def deliver(self, task: ClaimedTask) -> None:
        gateway = self.gateway
        async with gateway.db.session() as session:
            order = await session.scalar(select(Order).where(Order.id == task.order_id))
            merchant = await session.get(Merchant, task.merchant_pid)
        assert order is not None and merchant is not None, "outbox rows reference existing orders"
        dialect = gateway.dialects.for_order(order)
        message = dialect.notification(order, gateway.merchants.key_of(merchant))
        started_at = utcnow()
        result = await self.http.send(message)
        delivered = result.error_class is None and dialect.acknowledged(result.body)
        attempt = _attempt_record(started_at, result, delivered)
        status = await record_attempt(gateway.db, task, self.name, attempt, gateway.settings.notify_retry_delays)
        log.info(
            "notification attempt",
            extra={
                "trade_no": order.trade_no,
                "merchant": order.merchant_pid,
                "attempt": task.attempts + 1,
                "target_host": result.target_host,
                "http_status": result.status,
                "latency_ms": result.latency_ms,
                "error_class": attempt.error_class,
                "outcome": status.value,
            },
        )

    async def sweep_if_due(self) -> None:
        now = time.monotonic()
        if now - self._last_sweep < self.gateway.settings.worker_sweep_interval:
            return
        self._last_sweep = now
        await self.sweep()

    async def sweep(self) -> int:
        """Close expired orders, then tell their channels to stop taking money for them."""
        closed = await close_expired(self.gateway.db)
        for order in closed:
            channel = self.gateway.channels.get(order.channel)
            if channel is None:
                continue
            try:
                await channel.close(channel_view(order))
            except Exception:
                log.exception("channel %s could not close %s upstream", order.channel, order.trade_no)
        if closed:
            log.info("closed expired orders", extra={"count": len(closed)})
        return len(closed)


def _attempt_record(started_at, result: HttpOutcome, delivered: bool) -> AttemptRecord:  # type: ignore[no-untyped-def]
    error_class = result.error_class
    if error_class is None and not delivered:
        error_class = ErrorClass.BAD_BODY
    return AttemptRecord(
        started_at=started_at,
        target_host=result.target_host,
        latency_ms=result.latency_ms,
        delivered=delivered,
        http_status=result.status,
        body_head=result.body.decode("utf-8", "replace")[:BODY_HEAD_CHARS] if result.status is not None else None,
        error_class=error_class.value if error_class else None,
        error_detail=result.error_detail,
    )

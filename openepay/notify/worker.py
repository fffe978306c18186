"""The notification worker: claims due outbox rows, delivers them, records every attempt.

It also runs the housekeeping that must happen even when nobody visits a page: asking
upstreams about orders still paying (reconciliation), closing expired orders (and their
upstream payments, giving their amounts back to the accounts' daily caps), each channel's
own housekeeping (personal-code amounts whose hold has passed), pruning old attempt logs,
and saying it is alive so operators can count workers.
"""

from __future__ import annotations

import asyncio
import logging
import os
import secrets
import socket
import time
from datetime import datetime, timedelta
from typing import cast

from sqlalchemy import delete, update

from openepay.admin.signin_settings import SignInSettings
from openepay.admin.users import prune_login_attempts
from openepay.core.orders import close_expired
from openepay.core.reconciliation import reconcile, reconcile_refunds
from openepay.core.replay import forget_expired
from openepay.core.states import NotifyStatus
from openepay.core.usage import release_closed
from openepay.db.models import AdminLoginAttempt, MerchantLoginAttempt, NotifyWorkerBeat, Order
from openepay.db.types import utcnow
from openepay.gateway import Gateway
from openepay.notify.breaker import BreakerPolicy
from openepay.notify.http import ErrorClass, HttpOutcome, SafeHttpClient
from openepay.notify.outbox import (
    AttemptRecord,
    ClaimedDelivery,
    Outcome,
    claim_deliveries,
    prune_attempts,
    record_attempt,
    record_attempts,
)

log = logging.getLogger(__name__)

BODY_HEAD_CHARS = 200
HEARTBEAT_SECONDS = 5.0
FORGET_WORKERS_AFTER = timedelta(days=1)
CYCLE_BACKOFF_MAX = 5.0
KEY_CACHE_SIZE = 10_000


def worker_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(3)}"


def claim_at(concurrency: int) -> int:
    """Free slots a busy worker waits for before it claims again: half of them.

    What PostgreSQL spends on a claim and on recording its batch is mostly per statement, not
    per notification (``bench/notify_db_cost.py``: 0.62-0.81 ms of its CPU per notification in
    batches of 8, 0.32 in batches of 32). Claiming once a quarter of 32 slots were free made
    batches of about 8; waiting for half of them, two workers delivered 15 % more
    (``bench/notify_load.py``, ``pg:2``) for 18 % less of PostgreSQL's CPU per notification. A
    busy worker whose deliveries hang on slow merchants claims anyway once a poll interval
    has passed.
    """
    return max(concurrency // 2, 1)


class NotifyWorker:
    def __init__(self, gateway: Gateway, name: str | None = None) -> None:
        self.gateway = gateway
        self.name = name or worker_name()
        settings = gateway.settings
        self.http = SafeHttpClient.for_settings(settings)
        self.breaker = BreakerPolicy(
            threshold=settings.notify_breaker_threshold,
            cooldown=settings.notify_breaker_cooldown,
            max_cooldown=settings.notify_breaker_max_cooldown,
        )
        self._in_flight: set[asyncio.Task[None]] = set()
        self._slot_freed = asyncio.Event()
        # Finished attempts waiting to be recorded, and the task recording the previous ones.
        self._finished_attempts: list[tuple[Outcome, ClaimedDelivery]] = []
        self._recording: asyncio.Task[None] | None = None
        self._keys: dict[tuple[int, str], str] = {}
        self._last_sweep = 0.0
        self._last_claim = 0.0
        self._last_beat = 0.0
        self._started_at = utcnow()
        # Load the dialects' message code and the metrics now, not while the first batch's leases run.
        _ = gateway.dialects, gateway.metrics

    async def aclose(self) -> None:
        await self.http.aclose()

    async def run(self, stop: asyncio.Event) -> None:
        """Claim whenever a delivery slot is free, so one slow merchant never holds up a batch."""
        settings = self.gateway.settings
        log.info("notify worker started", extra={"worker": self.name})
        failures = 0
        try:
            while not stop.is_set():
                try:
                    await self.beat_if_due()
                    await self.sweep_if_due()
                    claimed = await self.dispatch()
                except Exception:
                    failures += 1
                    log.exception("notify worker cycle failed; retrying")
                    await self._idle(stop, _backoff(settings.worker_poll_interval, failures))
                    continue
                if failures:
                    log.warning("notify worker recovered after %d failed cycles", failures)
                    failures = 0
                if claimed == 0:
                    await self._idle(stop, settings.worker_poll_interval)
            await self._drain()
        finally:
            await self._forget_beat()
        log.info("notify worker stopped", extra={"worker": self.name})

    async def _idle(self, stop: asyncio.Event, seconds: float) -> None:
        """Wait for the poll interval, a delivery slot freeing up, or the stop signal."""
        self._slot_freed.clear()
        waiters = [asyncio.ensure_future(stop.wait()), asyncio.ensure_future(self._slot_freed.wait())]
        try:
            await asyncio.wait(waiters, timeout=seconds, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for waiter in waiters:
                waiter.cancel()

    def _key(self, pid: int, sealed: str) -> str:
        """The merchant's opened key, opened once per sealed value: a changed key is a new entry."""
        key = self._keys.get((pid, sealed))
        if key is None:
            if len(self._keys) >= KEY_CACHE_SIZE:
                self._keys.clear()
            key = self._keys[(pid, sealed)] = self.gateway.merchants.open_key(pid, sealed)
        return key

    def _finished(self, task: asyncio.Task[None]) -> None:
        """Wake the claim loop only when it would claim: half the slots free, or none busy."""
        self._in_flight.discard(task)
        concurrency = self.gateway.settings.notify_concurrency
        if not self._in_flight or concurrency - len(self._in_flight) >= claim_at(concurrency):
            self._slot_freed.set()

    async def dispatch(self) -> int:
        """Claim as many due notifications as there are free slots and start delivering them.

        While deliveries are running, a claim waits until ``claim_at`` slots are free (or a poll
        interval has passed), so that under load one claim (which also reads the orders) serves
        several deliveries.
        """
        settings = self.gateway.settings
        free = settings.notify_concurrency - len(self._in_flight)
        if free <= 0:
            return 0
        waited = time.monotonic() - self._last_claim
        if self._in_flight and free < claim_at(settings.notify_concurrency) and waited < settings.worker_poll_interval:
            return 0
        self._last_claim = time.monotonic()
        claimed = await claim_deliveries(
            self.gateway.db,
            self.name,
            limit=min(free, settings.notify_batch_size),
            lease=timedelta(seconds=settings.notify_lease_seconds),
            merchant_cap=settings.notify_merchant_max_in_flight,
            breaker_threshold=settings.notify_breaker_threshold,
        )
        for delivery in claimed:
            running = asyncio.create_task(self._deliver_guarded(delivery))
            self._in_flight.add(running)
            running.add_done_callback(self._finished)
        return len(claimed)

    async def run_once(self) -> int:
        """Claim one round and wait for it to finish and be recorded (tests and one-shot tools)."""
        claimed = await self.dispatch()
        await self._drain()
        return claimed

    async def _drain(self) -> None:
        """Wait for the deliveries in flight, then for every attempt to be recorded."""
        if self._in_flight:
            await asyncio.gather(*self._in_flight, return_exceptions=True)
        while self._recording is not None:
            await self._recording

    async def _deliver_guarded(self, delivery: ClaimedDelivery) -> None:
        try:
            await self.deliver(delivery)
        except Exception:
            log.exception("delivery of notification %s failed unexpectedly", delivery.task.id)

    async def deliver(self, delivery: ClaimedDelivery) -> None:
        """Send one notification; its attempt is recorded with the others that finish meanwhile."""
        gateway = self.gateway
        # The dialects read an order's columns by name; the claim's plain tuple has them all.
        order = cast(Order, delivery.order)
        dialect = gateway.dialects.for_order(order)
        message = await dialect.notification(order, self._key(order.merchant_pid, delivery.key_sealed))
        started_at = utcnow()
        result = await self.http.send(message)
        delivered = result.error_class is None and dialect.acknowledged(result.body)
        attempt = _attempt_record(started_at, result, delivered)
        delays = delivery.retry_delays or gateway.settings.notify_retry_delays
        self._finished_attempts.append((Outcome(delivery.task, attempt, delays), delivery))
        if self._recording is None:
            self._recording = asyncio.create_task(self._record())

    async def _record(self) -> None:
        """Record what has finished, in one transaction, until nothing is left; then stop.

        Attempts that finish while a transaction runs wait for the next one, so the number of
        transactions follows the database's speed, not the number of deliveries. If a batch
        cannot be written, each attempt is tried on its own, so one bad row loses only itself
        (its lease then runs out and it is delivered again).
        """
        try:
            while self._finished_attempts:
                batch, self._finished_attempts = self._finished_attempts, []
                outcomes = [outcome for outcome, _ in batch]
                try:
                    statuses = await record_attempts(self.gateway.db, self.name, outcomes, self.breaker)
                except Exception:
                    log.exception("recording %d notification attempts at once failed; recording each", len(batch))
                    statuses = [await self._record_one(outcome) for outcome in outcomes]
                for (outcome, delivery), status in zip(batch, statuses, strict=True):
                    if status is not None:
                        self._report(outcome, delivery, status)
        finally:
            self._recording = None

    async def _record_one(self, outcome: Outcome) -> NotifyStatus | None:
        try:
            return await record_attempt(
                self.gateway.db, outcome.task, self.name, outcome.attempt, outcome.retry_delays, self.breaker
            )
        except Exception:
            log.exception("could not record the attempt of notification %s", outcome.task.id)
            return None

    def _report(self, outcome: Outcome, delivery: ClaimedDelivery, status: NotifyStatus) -> None:
        attempt, order = outcome.attempt, delivery.order
        self._observe(attempt, delivery.first_due)
        if not log.isEnabledFor(logging.INFO):
            return  # the line's fields are not even gathered: a busy worker logs at WARNING
        log.info(
            "notification attempt",
            extra={
                "trade_no": order.trade_no,
                "merchant": order.merchant_pid,
                "attempt": outcome.task.attempts + 1,
                "target_host": attempt.target_host,
                "http_status": attempt.http_status,
                "latency_ms": attempt.latency_ms,
                "error_class": attempt.error_class,
                "outcome": status.value,
            },
        )

    def _observe(self, attempt: AttemptRecord, first_due: datetime | None) -> None:
        metrics = self.gateway.metrics
        metrics.notify_attempts.labels("delivered" if attempt.delivered else attempt.error_class).inc()
        metrics.notify_attempt_duration.observe(attempt.latency_ms / 1000)
        if attempt.delivered and first_due is not None:
            metrics.notify_delivery_delay.observe(max(0.0, (utcnow() - first_due).total_seconds()))

    async def beat_if_due(self) -> None:
        now = time.monotonic()
        if now - self._last_beat < HEARTBEAT_SECONDS:
            return
        self._last_beat = now
        async with self.gateway.db.session() as session:
            seen = await session.execute(
                update(NotifyWorkerBeat).where(NotifyWorkerBeat.name == self.name).values(last_seen_at=utcnow())
            )
            if seen.rowcount == 0:
                session.add(NotifyWorkerBeat(name=self.name, started_at=self._started_at, last_seen_at=utcnow()))

    async def _forget_beat(self) -> None:
        try:
            async with self.gateway.db.session() as session:
                await session.execute(delete(NotifyWorkerBeat).where(NotifyWorkerBeat.name == self.name))
        except Exception:
            log.warning("could not remove the heartbeat of %s", self.name)

    async def sweep_if_due(self) -> None:
        now = time.monotonic()
        if now - self._last_sweep < self.gateway.settings.worker_sweep_interval:
            return
        self._last_sweep = now
        await self.sweep()

    async def sweep(self) -> int:
        """Reconcile, close expired orders (and tell their channels), run the channels' housekeeping,
        prune console sign-in attempts past the lock window, old attempt logs and dead workers."""
        gateway = self.gateway
        upstreams = [channel.name for channel in gateway.channels.all() if channel.queries_upstream]
        # One instant for the last look and the closing: an order that expired between two clock
        # readings would be closed without the look that finds a payment made just before expiry.
        now = utcnow()
        reconciled = await reconcile(gateway.db, gateway, upstreams, gateway.settings, now)
        if reconciled.credited:
            log.info("reconciliation credited payments upstream had taken", extra={"count": reconciled.credited})
        refunds = await reconcile_refunds(gateway.db, gateway, gateway.settings, utcnow())
        if refunds.credited:
            log.info("reconciliation settled refunds the channels had not confirmed", extra={"count": refunds.credited})
        closed = await close_expired(gateway.db, now)
        for order in closed:
            await gateway.after_close(order)
        if closed:
            log.info("closed expired orders", extra={"count": len(closed)})
        # Orders closed elsewhere (on sight by the cashier, by the merchant) give their caps back too.
        await release_closed(gateway.db)
        await forget_expired(gateway.db)
        for channel in gateway.channels.housekeepers():
            done = await channel.housekeep(utcnow())
            if done:
                log.info("channel housekeeping", extra={"channel": channel.name, "count": done})
        # The console's sign-in attempts, and the merchant portal's, each older than its own lock window.
        for attempts, area in ((AdminLoginAttempt, "admin"), (MerchantLoginAttempt, "merchant")):
            older_than = utcnow() - timedelta(minutes=SignInSettings.of(gateway.settings, area).lock_minutes)
            forgotten = await prune_login_attempts(gateway.db, older_than=older_than, table=attempts)
            if forgotten:
                log.info(
                    "pruned sign-in attempts older than the lock window",
                    extra={"count": forgotten, "table": attempts.__tablename__},
                )
        retention = timedelta(days=gateway.settings.notify_attempt_retention_days)
        pruned = await prune_attempts(gateway.db, older_than=utcnow() - retention)
        if pruned:
            log.info("pruned old notification attempts", extra={"count": pruned})
        async with gateway.db.session() as session:
            await session.execute(
                delete(NotifyWorkerBeat).where(NotifyWorkerBeat.last_seen_at < utcnow() - FORGET_WORKERS_AFTER)
            )
        return len(closed)


def _backoff(poll_interval: float, failures: int) -> float:
    """Retry a failing cycle sooner at first, then less often, so workers do not hammer a restarting database."""
    return min(poll_interval * 2 ** (failures - 1), max(poll_interval, CYCLE_BACKOFF_MAX))


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

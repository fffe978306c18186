"""The notification outbox: rows written with the payment, claimed by workers under a lease.

A worker claims due rows by stamping a lease on them (on PostgreSQL after selecting them
``FOR UPDATE SKIP LOCKED``, so any number of workers on any number of machines share the
work), delivers outside any transaction, then records the attempt. A worker that dies leaves
its lease to run out, and the row is claimed again: delivery is at least once.
"""

from __future__ import annotations

from collections import namedtuple
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import (
    BigInteger,
    ColumnElement,
    CompoundSelect,
    Integer,
    Select,
    String,
    Text,
    TextClause,
    TextualSelect,
    Update,
    all_,
    and_,
    any_,
    bindparam,
    delete,
    exists,
    func,
    insert,
    literal_column,
    or_,
    select,
    text,
    union_all,
    update,
)
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.engine import Row
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from openepay.core.states import NotifyStatus
from openepay.db import Database
from openepay.db.direct import DirectStatements
from openepay.db.models import (
    FAILED_NOTIFICATION,
    PENDING_NOTIFICATION,
    Merchant,
    NotifyAttempt,
    NotifyBreaker,
    NotifyTask,
    Order,
)
from openepay.db.types import UTCDateTime, utcnow
from openepay.notify.breaker import BreakerPolicy, close_breakers, record_outcome

PAID_EVENT = "paid"
# Any constant works; it only has to be the same in every worker.
CLAIM_LOCK = 0x6F70656E65706179
# On PostgreSQL a claim's transaction begins with it, in the same round trip.
_TAKE_CLAIM_LOCK = f"SELECT pg_advisory_xact_lock({CLAIM_LOCK})"
# On SQLite a claim reads this many due rows per slot it still has to fill, per pass over the
# index. A merchant that fills up within a pass is left out of the next one, so a pass that
# cannot use every row it read is followed by one that can.
CLAIM_WINDOW = 1


async def enqueue(session: AsyncSession, *, order_id: int, merchant_pid: int, event: str, now: datetime) -> None:
    session.add(
        NotifyTask(
            order_id=order_id,
            merchant_pid=merchant_pid,
            event=event,
            status=NotifyStatus.PENDING,
            attempts=0,
            next_attempt_at=now,
        )
    )
    await session.flush()


@dataclass(frozen=True)
class ClaimedTask:
    id: int
    order_id: int
    merchant_pid: int
    event: str
    attempts: int


def _listed(column: ColumnElement, name: str, arrays: bool, *, excluded: bool = False) -> ColumnElement[bool]:
    """``column`` is (or with ``excluded``, is not) one of the list ``name``: on PostgreSQL an array
    (``= ANY(:name)``), so the SQL stays the same whatever the list's length; elsewhere an expanding ``IN``."""
    if arrays:
        listed = bindparam(name, type_=ARRAY(column.type))
        return column != all_(listed) if excluded else column == any_(listed)
    expanding = bindparam(name, expanding=True)
    return column.not_in(expanding) if excluded else column.in_(expanding)


def _claim_statements() -> tuple[CompoundSelect, Select, Update]:
    """SQLite's claim statements, built once: each claim only binds its values (and hits the compiled cache).

    - in one statement, the leases held per merchant (``probe`` 0) and the half-open breakers
      (``probe`` 1: one probe each);
    - a window of due notifications in claim order after a (due, id) position, leaving out open
      breakers and merchants with no free slot;
    - the lease itself.
    """
    tasks = NotifyTask.__table__
    breakers = NotifyBreaker.__table__
    earlier = tasks.alias("earlier")
    now = bindparam("now", type_=UTCDateTime())
    held_and_probing = union_all(
        select(tasks.c.merchant_pid, func.count(), literal_column("0").label("probe"))
        .where(tasks.c.lease_expires_at > now)
        .group_by(tasks.c.merchant_pid),
        select(breakers.c.merchant_pid, literal_column("0"), literal_column("1")).where(
            breakers.c.consecutive_failures >= bindparam("threshold"),
            or_(breakers.c.open_until.is_(None), breakers.c.open_until <= now),
        ),
    )
    after = bindparam("after", type_=UTCDateTime())
    due = (
        select(tasks.c.id, tasks.c.merchant_pid, tasks.c.next_attempt_at)
        .where(
            PENDING_NOTIFICATION,
            tasks.c.next_attempt_at <= now,
            or_(
                tasks.c.next_attempt_at > after,
                and_(tasks.c.next_attempt_at == after, tasks.c.id > bindparam("after_id")),
            ),
            or_(tasks.c.lease_expires_at.is_(None), tasks.c.lease_expires_at <= now),
            tasks.c.merchant_pid.not_in(select(breakers.c.merchant_pid).where(breakers.c.open_until > now)),
            _listed(tasks.c.merchant_pid, "full", arrays=False, excluded=True),
            ~exists().where(
                earlier.c.order_id == tasks.c.order_id,
                earlier.c.id < tasks.c.id,
                earlier.c.status == NotifyStatus.PENDING.value,
            ),
        )
        .order_by(tasks.c.next_attempt_at, tasks.c.id)
        .limit(bindparam("window"))
    )
    return held_and_probing, due, _lease_statement(arrays=False)


def _lease_statement(arrays: bool) -> Update:
    """The lease of the chosen notifications; with ``arrays`` (PostgreSQL) the ids are bound as an array,
    so ``DirectStatements`` can send it."""
    tasks = NotifyTask.__table__
    return (
        update(tasks)
        .where(_listed(tasks.c.id, "chosen", arrays))
        .values(lease_owner=bindparam("owner"), lease_expires_at=bindparam("until", type_=UTCDateTime()))
        .returning(*_TASK_COLUMNS)
    )


def _choose_statement() -> TextualSelect:
    """PostgreSQL's choice, in one statement: the ids to lease, locked ``FOR UPDATE SKIP LOCKED``.

    Each merchant with a free slot (its cap, or one probe while its breaker is half-open, less
    the leases held; none while it is open) reads its own earliest due notifications, at most
    its free slots, from ``ix_notify_tasks_merchant_due``; of those, the ``limit`` earliest due
    are chosen. So a claim reads at most one short run of rows per merchant: not the rows of
    merchants at their cap, nor the backlog behind the rows it takes, and every read is in index
    order whatever the planner's statistics say (a bitmap scan and a sort would read a
    merchant's whole backlog). The leases are counted from ``ix_notify_tasks_lease_expires_at``:
    bounded on both sides (every lease ends before ``infinity``), the range looks narrow to a
    planner without statistics, which otherwise scans the whole table, delivered rows and all.
    Only the chosen rows are locked (a row lock is a write), by primary key alone: with the
    claim's conditions beside it the planner, misled by stale statistics, walked every due
    notification instead. A row changed between the choice and its lock (a worker whose lease
    ran out recording its attempt) is returned as locked, so the caller checks it again
    (``_still_due``). ``'pending'`` is written as a literal, not bound: the indexes read hold only
    the pending notifications, and a generic plan cannot prove a bound value is that one.
    """
    return (
        text(
            """
            WITH held AS (
                SELECT merchant_pid, count(*) AS leased FROM notify_tasks
                WHERE lease_expires_at > :now AND lease_expires_at < 'infinity' GROUP BY merchant_pid
            ), room AS (
                SELECT merchants.pid,
                    CASE WHEN notify_breakers.consecutive_failures >= :threshold THEN 1 ELSE :cap END
                        - coalesce(held.leased, 0) AS free
                FROM merchants
                LEFT JOIN held ON held.merchant_pid = merchants.pid
                LEFT JOIN notify_breakers ON notify_breakers.merchant_pid = merchants.pid
                WHERE notify_breakers.open_until IS NULL OR notify_breakers.open_until <= :now
            )
            SELECT notify_tasks.id, notify_tasks.status, notify_tasks.next_attempt_at, notify_tasks.lease_expires_at
            FROM notify_tasks
            WHERE notify_tasks.id = ANY(ARRAY(
                SELECT due.id FROM room CROSS JOIN LATERAL (
                    SELECT notify_tasks.id, notify_tasks.next_attempt_at FROM notify_tasks
                    WHERE notify_tasks.merchant_pid = room.pid
                        AND notify_tasks.status = 'pending'
                        AND notify_tasks.next_attempt_at <= :now
                        AND (notify_tasks.lease_expires_at IS NULL OR notify_tasks.lease_expires_at <= :now)
                        AND NOT EXISTS (
                            SELECT FROM notify_tasks AS earlier
                            WHERE earlier.order_id = notify_tasks.order_id
                                AND earlier.id < notify_tasks.id
                                AND earlier.status = 'pending'
                        )
                    ORDER BY notify_tasks.next_attempt_at, notify_tasks.id
                    LIMIT least(greatest(room.free, 0), :limit)
                ) AS due
                WHERE room.free > 0
                ORDER BY due.next_attempt_at, due.id
                LIMIT :limit
            ))
            FOR UPDATE SKIP LOCKED
            """
        )
        .bindparams(
            bindparam("now", type_=UTCDateTime()),
            bindparam("threshold", type_=Integer),
            bindparam("cap", type_=Integer),
            bindparam("limit", type_=Integer),
        )
        .columns(*(NotifyTask.__table__.c[name] for name in ("id", "status", "next_attempt_at", "lease_expires_at")))
    )


def _delivery_statements() -> tuple[Update, Select]:
    """What a worker needs to deliver what it leased, as ``_DELIVERY_COLUMNS`` after the task's own.

    On PostgreSQL the lease returns it (``UPDATE ... FROM``: no round trip of its own); SQLite's
    ``RETURNING`` cannot name another table, so there it is read in the claim's transaction.

    On PostgreSQL the lease also names the orders it joins by key (``= ANY(ARRAY(...))`` of the
    chosen notifications'), and joins the merchant through the notification (its ``merchant_pid``
    is its order's, and the one its cap counts), so no join condition but a primary key's reaches
    ``orders``. A planner that thinks the tables are as empty as when they were last analyzed (the
    migrations end with ``ANALYZE``) otherwise read every order of every merchant, through
    ``ix_orders_merchant_pid_created_at``, for each batch: the lease cost what the orders table
    costs, not what the batch costs. The merchants are not named the same way: on fresh statistics
    that made the planner probe the merchants' key once per merchant named for every order row (512
    merchant rows for a batch of 32 over 32 merchants), where the join reads one row per notification.
    """
    tasks, orders, merchants = NotifyTask.__table__, Order.__table__, Merchant.__table__
    joined = and_(orders.c.id == tasks.c.order_id, merchants.c.pid == tasks.c.merchant_pid)
    chosen = tasks.alias("chosen")
    # ``orders.id = ANY(ARRAY(SELECT order_id FROM notify_tasks AS chosen WHERE chosen.id = ANY(:chosen)))``:
    # the array is computed once.
    chosen_orders = select(chosen.c.order_id).where(_listed(chosen.c.id, "chosen", arrays=True))
    by_key = orders.c.id == any_(func.array(chosen_orders.scalar_subquery()))
    lease_returning = _LEASE_ARRAYS.where(joined, by_key).returning(*_DELIVERY_COLUMNS)
    read = select(*_TASK_COLUMNS, *_DELIVERY_COLUMNS).where(tasks.c.id.in_(bindparam("chosen", expanding=True)), joined)
    return lease_returning, read


_TASK_COLUMNS = tuple(NotifyTask.__table__.c[name] for name in ("id", "order_id", "merchant_pid", "event", "attempts"))
_ORDER_COLUMNS = tuple(Order.__table__.columns)
_DELIVERY_COLUMNS = (
    NotifyTask.__table__.c.created_at,
    Merchant.__table__.c.key_sealed,
    Merchant.__table__.c.notify_retry_delays,
    *_ORDER_COLUMNS,
)
_HELD_AND_PROBING, _DUE, _LEASE = _claim_statements()
_LEASE_ARRAYS = _lease_statement(arrays=True)
_CHOOSE = _choose_statement()
_LEASE_DELIVERIES, _READ_DELIVERIES = _delivery_statements()
# Before any due time: the first window starts at the beginning.
_START = datetime(1970, 1, 1, tzinfo=UTC)
# A claimed order's columns, by name, as the dialects read them: a plain tuple, not an ORM object.
ClaimedOrder = namedtuple("ClaimedOrder", [column.key for column in _ORDER_COLUMNS])  # type: ignore[misc]


@dataclass(frozen=True)
class ClaimedDelivery:
    """A leased notification with everything delivering it needs, read in the claim's transaction."""

    task: ClaimedTask
    order: ClaimedOrder
    key_sealed: str
    retry_delays: list[float] | None
    first_due: datetime

    @classmethod
    def from_row(cls, row: Row) -> ClaimedDelivery:
        task, (first_due, key_sealed, retry_delays), order = row[:5], row[5:8], row[8:]
        return cls(ClaimedTask(*task), ClaimedOrder._make(order), key_sealed, retry_delays, first_due)


async def claim(
    db: Database,
    owner: str,
    *,
    limit: int,
    lease: timedelta,
    merchant_cap: int,
    breaker_threshold: int,
    now: datetime | None = None,
) -> list[ClaimedTask]:
    """Lease up to ``limit`` due notifications, fairly, earliest due first.

    - at most ``merchant_cap`` in flight per merchant (counting leases other workers hold),
      and only one probe while its breaker is half-open; none while it is open;
    - a notification waits while an earlier one for the same order is still pending, so a
      later event never overtakes an earlier one;
    - on PostgreSQL the claim runs under a transaction-scoped advisory lock, so two workers
      cannot both fill the same merchant's last free slot, and rows are taken
      ``FOR UPDATE SKIP LOCKED``.

    A claim costs what its batch costs, not what the backlog costs, and a merchant with a long
    backlog due first cannot hold the others back. On PostgreSQL each merchant with a free slot
    reads only its own earliest due notifications (``_choose_statement``): one statement, and no
    row of a merchant at its cap is read. On SQLite the due notifications are read in claim
    order from ``ix_notify_tasks_due`` a window at a time, leaving out merchants with no free
    slot, until ``limit`` are chosen or none are left; a merchant whose slots fill up within a
    window is left out of the next one. It runs on a Core connection: no unit of work.
    This is ``claim_deliveries`` (the worker's claim) without what delivering needs.
    """
    claimed = await claim_deliveries(
        db, owner, limit=limit, lease=lease, merchant_cap=merchant_cap, breaker_threshold=breaker_threshold, now=now
    )
    return [delivery.task for delivery in claimed]


async def claim_deliveries(
    db: Database,
    owner: str,
    *,
    limit: int,
    lease: timedelta,
    merchant_cap: int,
    breaker_threshold: int,
    now: datetime | None = None,
) -> list[ClaimedDelivery]:
    """``claim``, with each notification's order, merchant key and retry schedule (the worker's claim).

    One transaction: on PostgreSQL the lease itself returns them, so claiming a batch and
    reading what it needs costs no more round trips than claiming it. A notification whose
    order is gone is not handed over: on PostgreSQL it is not even leased, on SQLite its lease
    runs out. On PostgreSQL the claim goes straight to asyncpg (``DirectStatements.transaction``):
    the advisory lock is taken in the ``BEGIN``'s round trip, and with no SQLAlchemy execution
    around each statement the claim costs the worker a fraction of the CPU.

    ``now`` is the claim's moment (the clock's when not given): leases and cooldowns that end
    at it are over, which only a caller choosing the moment can put to the microsecond.
    """
    now = utcnow() if now is None else now
    if db.direct is not None:
        return await _claim_directly(db.direct, owner, now, limit, lease, merchant_cap, breaker_threshold)
    async with db.engine.begin() as conn:

        async def rows(statement: Select | CompoundSelect, params: dict[str, object]) -> Sequence[Sequence]:
            return (await conn.execute(statement, params)).all()

        chosen = await _choose(rows, now, limit, merchant_cap, breaker_threshold)
        if not chosen:
            return []
        await conn.execute(_LEASE, {"chosen": chosen, "owner": owner, "until": now + lease})
        leased = (await conn.execute(_READ_DELIVERIES, {"chosen": chosen})).all()
    return _in_claim_order(leased)


async def _claim_directly(
    direct: DirectStatements,
    owner: str,
    now: datetime,
    limit: int,
    lease: timedelta,
    merchant_cap: int,
    breaker_threshold: int,
) -> list[ClaimedDelivery]:
    """``claim_deliveries`` on PostgreSQL: under the advisory lock, ``FOR UPDATE SKIP LOCKED``, two statements."""
    async with direct.transaction(_TAKE_CLAIM_LOCK) as transaction:
        params = {"now": now, "threshold": breaker_threshold, "cap": merchant_cap, "limit": limit}
        chosen = [row[0] for row in await transaction.rows(_CHOOSE, params) if _still_due(row, now)]
        if not chosen:
            return []
        params = {"chosen": chosen, "owner": owner, "until": now + lease}
        leased = await transaction.rows(_LEASE_DELIVERIES, params)
    return _in_claim_order(leased)


def _still_due(row: Sequence, now: datetime) -> bool:
    """A row ``_CHOOSE`` locked (id, status, due time, lease end) is still pending, due and not leased."""
    _, status, due, lease_end = row
    return status == NotifyStatus.PENDING.value and due <= now and (lease_end is None or lease_end <= now)


def _in_claim_order(rows: Sequence[Sequence]) -> list[ClaimedDelivery]:
    return sorted((ClaimedDelivery.from_row(row) for row in rows), key=lambda claimed: claimed.task.id)


Rows = Callable[[Select | CompoundSelect, dict[str, object]], Awaitable[Sequence[Sequence]]]


async def _choose(rows: Rows, now: datetime, limit: int, merchant_cap: int, breaker_threshold: int) -> list[int]:
    """The ids to lease on SQLite, in claim order (see ``claim``); ``rows`` runs a statement in the
    claim's transaction, which holds SQLite's one write lock (``BEGIN IMMEDIATE``) from its start."""
    slots = await rows(_HELD_AND_PROBING, {"now": now, "threshold": breaker_threshold})
    held = {pid: count for pid, count, probe in slots if not probe}
    room = {pid: merchant_cap - count for pid, count in held.items()}
    for pid, _, probe in slots:
        if probe:
            room[pid] = 1 - held.get(pid, 0)
    chosen: list[int] = []
    after, after_id = _START, 0
    while len(chosen) < limit:
        window = (limit - len(chosen)) * CLAIM_WINDOW
        full = sorted(pid for pid, free in room.items() if free <= 0)
        params = {"now": now, "after": after, "after_id": after_id, "full": full, "window": window}
        found = await rows(_DUE, params)
        for task_id, merchant_pid, _ in found:
            free = room.get(merchant_pid, merchant_cap)
            if free > 0 and len(chosen) < limit:
                chosen.append(task_id)
                room[merchant_pid] = free - 1
        if len(found) < window:
            break
        after_id, _, after = found[-1]
    return chosen


@dataclass(frozen=True)
class AttemptRecord:
    started_at: datetime
    target_host: str
    latency_ms: int
    delivered: bool
    http_status: int | None = None
    body_head: str | None = None
    error_class: str | None = None
    error_detail: str | None = None


@dataclass(frozen=True)
class Outcome:
    """One finished delivery attempt, waiting to be recorded, and the retry schedule it falls under."""

    task: ClaimedTask
    attempt: AttemptRecord
    retry_delays: Sequence[float]


async def record_attempt(
    db: Database,
    task: ClaimedTask,
    owner: str,
    attempt: AttemptRecord,
    retry_delays: Sequence[float],
    breaker: BreakerPolicy,
) -> NotifyStatus:
    """Log the attempt, schedule the next one (or give up after the last delay), update the breaker."""
    [status] = await record_attempts(db, owner, [Outcome(task, attempt, retry_delays)], breaker)
    return status


def _record_statements() -> tuple[Select, Update, Update, Update]:
    """The statements that record attempts, built once (only values change from batch to batch)."""
    tasks = NotifyTask.__table__
    attempts = NotifyAttempt.__table__
    logged = (
        select(attempts.c.task_id, func.count())
        .where(attempts.c.task_id.in_(bindparam("ids", expanding=True)))
        .group_by(attempts.c.task_id)
    )
    ours = tasks.c.lease_owner == bindparam("owner")
    released = {"attempts": tasks.c.attempts + 1, "lease_owner": None, "lease_expires_at": None}
    now = bindparam("now", type_=UTCDateTime())
    delivered = (
        update(tasks)
        .where(tasks.c.id.in_(bindparam("ids", expanding=True)), ours)
        .values(status=NotifyStatus.SUCCEEDED.value, delivered_at=now, last_error=None, **released)
    )
    retry = (
        update(tasks)
        .where(tasks.c.id == bindparam("task"), ours)
        .values(next_attempt_at=bindparam("due", type_=UTCDateTime()), last_error=bindparam("error"), **released)
    )
    given_up = (
        update(tasks)
        .where(tasks.c.id == bindparam("task"), ours)
        .values(status=NotifyStatus.FAILED.value, failed_at=now, last_error=bindparam("error"), **released)
    )
    return logged, delivered, retry, given_up


_LOGGED, _DELIVERED, _RETRY, _GIVEN_UP = _record_statements()
_LOG = insert(NotifyAttempt.__table__)


def _all_delivered_statement() -> TextClause:
    """A batch whose deliveries all went through, recorded in one statement (PostgreSQL).

    Its parts are what ``record_attempts`` does for such a batch in five round trips: the
    notifications held under this worker's lease succeed, every attempt is logged numbered after
    the ones its notification already has (all parts see the database as it was before the
    statement), and the merchants' breakers close. A lone statement is its own transaction: no
    ``BEGIN`` or ``COMMIT`` either.
    """
    return text(
        """
        WITH outcome AS (
            SELECT * FROM unnest(
                :task_ids, :started_at, :target_host, :http_status, :body_head, :latency_ms,
                :error_class, :error_detail
            ) WITH ORDINALITY AS outcome (
                task_id, started_at, target_host, http_status, body_head, latency_ms,
                error_class, error_detail, position
            )
        ), settled AS (
            UPDATE notify_tasks SET
                status = :succeeded, delivered_at = :now, last_error = NULL,
                attempts = notify_tasks.attempts + 1, lease_owner = NULL, lease_expires_at = NULL
            WHERE notify_tasks.id = ANY(:task_ids) AND notify_tasks.lease_owner = :owner
        ), logged AS (
            INSERT INTO notify_attempts (
                task_id, number, started_at, target_host, http_status, body_head, latency_ms,
                error_class, error_detail, delivered
            )
            SELECT
                outcome.task_id,
                (SELECT count(*) FROM notify_attempts WHERE notify_attempts.task_id = outcome.task_id)
                    + row_number() OVER (PARTITION BY outcome.task_id ORDER BY outcome.position),
                outcome.started_at, outcome.target_host, outcome.http_status, outcome.body_head,
                outcome.latency_ms, outcome.error_class, outcome.error_detail, true
            FROM outcome
        )
        UPDATE notify_breakers SET consecutive_failures = 0, open_until = NULL, cooldown_seconds = 0
        WHERE merchant_pid = ANY(:merchant_pids) AND (consecutive_failures > 0 OR open_until IS NOT NULL)
        """
    ).bindparams(
        bindparam("task_ids", type_=ARRAY(BigInteger)),
        bindparam("started_at", type_=ARRAY(UTCDateTime())),
        bindparam("target_host", type_=ARRAY(String)),
        bindparam("http_status", type_=ARRAY(Integer)),
        bindparam("body_head", type_=ARRAY(Text)),
        bindparam("latency_ms", type_=ARRAY(Integer)),
        bindparam("error_class", type_=ARRAY(String)),
        bindparam("error_detail", type_=ARRAY(Text)),
        bindparam("merchant_pids", type_=ARRAY(Integer)),
        bindparam("succeeded", NotifyStatus.SUCCEEDED.value, type_=String),
        bindparam("now", type_=UTCDateTime()),
        bindparam("owner", type_=String),
    )


_ALL_DELIVERED = _all_delivered_statement()


async def record_attempts(
    db: Database, owner: str, outcomes: Sequence[Outcome], breaker: BreakerPolicy
) -> list[NotifyStatus]:
    """``record_attempt`` for many attempts in one short transaction (their statuses, in order).

    A worker records what finished while its previous write was running, so under load one
    transaction of a handful of statements records dozens of deliveries: the attempt logs in one
    multi-row insert, the notifications in one update per outcome kind (delivered, retry later,
    given up), and the breakers of merchants whose deliveries all went through in one update.
    A notification whose lease this worker no longer holds (it was re-queued meanwhile) keeps
    its fresh schedule; only the attempt is logged. The statements are built once and run on
    the transaction's Core connection; only a failed delivery's breaker goes through the ORM.
    On PostgreSQL a batch whose deliveries all went through (the common batch) is one statement
    sent straight to asyncpg (``_ALL_DELIVERED``).
    """
    now = utcnow()
    delivered: list[int] = []
    retries: list[dict[str, object]] = []
    given_up: list[dict[str, object]] = []
    statuses: list[NotifyStatus] = []
    for outcome in outcomes:
        attempts = outcome.task.attempts + 1
        if outcome.attempt.delivered:
            delivered.append(outcome.task.id)
            statuses.append(NotifyStatus.SUCCEEDED)
        elif attempts > len(outcome.retry_delays):
            given_up.append({"task": outcome.task.id, "error": _describe(outcome.attempt), "owner": owner, "now": now})
            statuses.append(NotifyStatus.FAILED)
        else:
            due = now + timedelta(seconds=outcome.retry_delays[attempts - 1])
            retries.append({"task": outcome.task.id, "error": _describe(outcome.attempt), "due": due, "owner": owner})
            statuses.append(NotifyStatus.PENDING)
    if db.direct is not None and len(delivered) == len(outcomes):
        await _record_all_delivered(db.direct, owner, outcomes, now)
        return statuses
    async with db.engine.begin() as conn:
        await _log_attempts(conn, outcomes)
        if delivered:
            await conn.execute(_DELIVERED, {"ids": delivered, "owner": owner, "now": now})
        if retries:
            await conn.execute(_RETRY, retries)
        if given_up:
            await conn.execute(_GIVEN_UP, given_up)
        await _update_breakers(conn, outcomes, now, breaker)
    return statuses


async def _record_all_delivered(
    direct: DirectStatements, owner: str, outcomes: Sequence[Outcome], now: datetime
) -> None:
    attempts = [outcome.attempt for outcome in outcomes]
    params = {
        "task_ids": [outcome.task.id for outcome in outcomes],
        "started_at": [attempt.started_at for attempt in attempts],
        "target_host": [attempt.target_host[:255] for attempt in attempts],
        "http_status": [attempt.http_status for attempt in attempts],
        "body_head": [attempt.body_head for attempt in attempts],
        "latency_ms": [attempt.latency_ms for attempt in attempts],
        "error_class": [attempt.error_class for attempt in attempts],
        "error_detail": [attempt.error_detail for attempt in attempts],
        "merchant_pids": sorted({outcome.task.merchant_pid for outcome in outcomes}),
        "now": now,
        "owner": owner,
    }
    compiled = direct.compiled(_ALL_DELIVERED, params)
    assert compiled is not None, "every parameter of _ALL_DELIVERED is given or a constant"
    await direct.first(compiled, params)


async def _log_attempts(conn: AsyncConnection, outcomes: Sequence[Outcome]) -> None:
    """One ``notify_attempts`` row per attempt, numbered after the ones its notification already has."""
    ids = sorted({outcome.task.id for outcome in outcomes})
    logged = dict((await conn.execute(_LOGGED, {"ids": ids})).all())
    rows = []
    for outcome in outcomes:
        attempt = outcome.attempt
        logged[outcome.task.id] = logged.get(outcome.task.id, 0) + 1
        rows.append(
            {
                "task_id": outcome.task.id,
                "number": logged[outcome.task.id],
                "started_at": attempt.started_at,
                "target_host": attempt.target_host[:255],
                "http_status": attempt.http_status,
                "body_head": attempt.body_head,
                "latency_ms": attempt.latency_ms,
                "error_class": attempt.error_class,
                "error_detail": attempt.error_detail,
                "delivered": attempt.delivered,
            }
        )
    await conn.execute(_LOG, rows)


async def _update_breakers(
    conn: AsyncConnection, outcomes: Sequence[Outcome], now: datetime, policy: BreakerPolicy
) -> None:
    """Merchants whose attempts all went through: one update closes any of their breakers. A merchant
    with a failure among them: each of its outcomes in the order they finished, as one by one, in a
    session joined to the same transaction (made only then: the common batch has no failure)."""
    by_merchant: dict[int, list[Outcome]] = {}
    for outcome in outcomes:
        by_merchant.setdefault(outcome.task.merchant_pid, []).append(outcome)
    all_delivered = sorted(pid for pid, theirs in by_merchant.items() if all(o.attempt.delivered for o in theirs))
    if all_delivered:
        await close_breakers(conn, all_delivered)
    failing = sorted(set(by_merchant) - set(all_delivered))
    if not failing:
        return
    async with AsyncSession(bind=conn, expire_on_commit=False) as session:
        for pid in failing:
            for outcome in by_merchant[pid]:
                await record_outcome(
                    session,
                    pid,
                    delivered=outcome.attempt.delivered,
                    started_at=outcome.attempt.started_at,
                    now=now,
                    policy=policy,
                )


def _describe(attempt: AttemptRecord) -> str:
    """One line an operator can act on: why, and what the merchant answered when it answered."""
    parts = [attempt.error_class or "not delivered"]
    if attempt.error_detail:
        parts.append(attempt.error_detail)
    if attempt.http_status is not None:
        parts.append(f"HTTP {attempt.http_status} {attempt.body_head or ''!r}")
    return ": ".join(parts)[:300]


def _requeue() -> Update:
    """Pending again, due now, a fresh retry schedule, and no lease.

    The lease is dropped too: "now" must not wait for a stuck worker's lease to run out, and a
    worker still delivering must not overwrite the fresh schedule when it records its attempt.
    """
    return update(NotifyTask).values(
        status=NotifyStatus.PENDING,
        attempts=0,
        next_attempt_at=utcnow(),
        failed_at=None,
        lease_owner=None,
        lease_expires_at=None,
    )


async def resend(db: Database, trade_no: str) -> int:
    """Queue every notification of an order again."""
    order_id = select(Order.id).where(Order.trade_no == trade_no).scalar_subquery()
    async with db.session() as session:
        return (await session.execute(_requeue().where(NotifyTask.order_id == order_id))).rowcount or 0


async def resend_failed(db: Database, *, since: datetime, merchant_pid: int | None = None) -> int:
    """Queue again every notification that gave up at or after ``since`` (optionally one merchant's)."""
    query = _requeue().where(FAILED_NOTIFICATION, NotifyTask.failed_at >= since)
    if merchant_pid is not None:
        query = query.where(NotifyTask.merchant_pid == merchant_pid)
    async with db.session() as session:
        return (await session.execute(query)).rowcount or 0


async def prune_attempts(db: Database, *, older_than: datetime, batch: int = 5000) -> int:
    """Forget attempt logs past the retention; the notifications themselves are kept."""
    old = select(NotifyAttempt.id).where(NotifyAttempt.started_at < older_than).limit(batch)
    async with db.session() as session:
        return (await session.execute(delete(NotifyAttempt).where(NotifyAttempt.id.in_(old)))).rowcount or 0


async def first_sent_at(db: Database, order_id: int) -> datetime | None:
    """When a notification of the order was first sent and answered (None if not yet)."""
    async with db.reading() as session:
        attempts = (
            await session.execute(
                select(NotifyAttempt.started_at, NotifyAttempt.latency_ms)
                .join(NotifyTask, NotifyTask.id == NotifyAttempt.task_id)
                .where(NotifyTask.order_id == order_id)
            )
        ).all()
    return min((started + timedelta(milliseconds=latency) for started, latency in attempts), default=None)

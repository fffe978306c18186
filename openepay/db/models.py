"""Tables. Amounts are integer fen; strings a merchant sent are kept verbatim beside them."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    UniqueConstraint,
    false,
    text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, declared_attr, mapped_column

from openepay.core.states import UNPAID, MerchantStatus, NotifyStatus, OrderStatus
from openepay.db.types import BigIntPK, UTCDateTime, utcnow

NAMING = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)


USAGE_TO_RELEASE = text("usage_day IS NOT NULL AND status = 'closed'")
# Orders that can still be paid (``UNPAID``), spelled with literals: SQLite uses a partial index
# only for a query whose WHERE repeats its condition, and never for an ``IN`` of bound parameters.
UNPAID_ORDER = text(f"status IN ({', '.join(repr(str(status)) for status in UNPAID)})")
# Orders that were paid: the only ones the per-day sums over ``paid_at`` ever look at.
PAID_AT_SET = text("paid_at IS NOT NULL")
# Notifications still to deliver, the ones that gave up, and the ones under a lease: each partial
# index of ``notify_tasks`` holds only its kind, so a delivered notification's final version is
# written to none of them. The queries repeat the condition with literals (``PENDING_NOTIFICATION``,
# ``FAILED_NOTIFICATION``): PostgreSQL's generic plan (a prepared statement's) cannot see a bound value.
PENDING_NOTIFICATION = text(f"status = '{NotifyStatus.PENDING}'")
FAILED_NOTIFICATION = text(f"status = '{NotifyStatus.FAILED}'")
LEASED_NOTIFICATION = text("lease_expires_at IS NOT NULL")


class Merchant(Base):
    __tablename__ = "merchants"

    pid: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    name: Mapped[str] = mapped_column(String(100))
    key_sealed: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(16), default=MerchantStatus.ACTIVE)
    refund_enabled: Mapped[bool] = mapped_column(Boolean, default=False)
    balance_fen: Mapped[int] = mapped_column(BigInteger, default=0)
    settle_type: Mapped[int] = mapped_column(Integer, default=1)
    settle_account: Mapped[str] = mapped_column(String(128), default="")
    settle_name: Mapped[str] = mapped_column(String(128), default="")
    # Seconds between notification attempts for this merchant; None means the gateway's default.
    notify_retry_delays: Mapped[list[float] | None] = mapped_column(JSON)
    # epay V2: the merchant's RSA public key (PEM), and whether MD5 signatures are refused.
    rsa_public_key: Mapped[str | None] = mapped_column(Text)
    rsa_only: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    # The dialects (``openepay.protocols.*.DIALECT``) the merchant's requests may use; None: every one.
    dialects: Mapped[list[str] | None] = mapped_column(JSON)
    # Routing overrides: the pay types this merchant may use and the channel accounts (ids) that
    # serve it; None means every one. ``mapi_answer`` "payurl" makes mapi.php answer our cashier.
    pay_types: Mapped[list[str] | None] = mapped_column(JSON)
    channel_accounts: Mapped[list[int] | None] = mapped_column(JSON)
    mapi_answer: Mapped[str] = mapped_column(String(16), default="channel", server_default="channel")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class CacheVersion(Base):
    """A token that changes whenever the rows a process keeps in memory change.

    Database triggers (migration ``0009_hotpath``) write a new random token for ``merchants`` on every
    insert, delete and update of anything but the balance, whoever writes: the CLI, another
    server process, an operator's SQL. Processes poll the token and drop their copy when it
    differs (``openepay.core.merchant_cache``).
    """

    __tablename__ = "cache_versions"

    name: Mapped[str] = mapped_column(String(32), primary_key=True)
    token: Mapped[int] = mapped_column(BigInteger)


class Order(Base):
    __tablename__ = "orders"
    __table_args__ = (
        UniqueConstraint("merchant_pid", "out_trade_no"),
        # The unpaid orders, by expiry: the sweeper's and the reconciliation's; few at any time.
        Index("ix_orders_unpaid_expires_at", "expires_at", sqlite_where=UNPAID_ORDER, postgresql_where=UNPAID_ORDER),
        Index("ix_orders_merchant_pid_created_at", "merchant_pid", "created_at"),
        # Closed orders still counted against an account's daily caps: few, found by the sweeper.
        Index("ix_orders_usage_to_release", "id", sqlite_where=USAGE_TO_RELEASE, postgresql_where=USAGE_TO_RELEASE),
    )

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    trade_no: Mapped[str] = mapped_column(String(32), unique=True)
    merchant_pid: Mapped[int] = mapped_column(ForeignKey("merchants.pid"))
    dialect: Mapped[str] = mapped_column(String(16))
    out_trade_no: Mapped[str] = mapped_column(String(64))
    pay_type: Mapped[str | None] = mapped_column(String(16))
    channel: Mapped[str | None] = mapped_column(String(32))
    # The stored account that serves the order (None: the channel's built-in account), and how
    # routing chose it: the accounts considered, what became of each, the usage day counted.
    channel_account_id: Mapped[int | None] = mapped_column(ForeignKey("channel_accounts.id"))
    routing: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    # The business day whose usage of the account counts this order; cleared when the order
    # closes unpaid and its amount is given back to the account's daily caps.
    usage_day: Mapped[str | None] = mapped_column(String(10))
    # When reconciliation last asked the upstream about this unpaid order.
    checked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # What the merchant asked for, and what the buyer must pay (they differ only on channels
    # that tell payments apart by amount).
    amount_fen: Mapped[int] = mapped_column(BigInteger)
    pay_amount_fen: Mapped[int] = mapped_column(BigInteger)
    money: Mapped[str] = mapped_column(String(32))
    name: Mapped[str] = mapped_column(Text)
    notify_url: Mapped[str] = mapped_column(Text)
    return_url: Mapped[str | None] = mapped_column(Text)
    param: Mapped[str | None] = mapped_column(Text)
    sitename: Mapped[str | None] = mapped_column(Text)
    clientip: Mapped[str | None] = mapped_column(String(64))
    device: Mapped[str | None] = mapped_column(String(16))
    attrs: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    status: Mapped[str] = mapped_column(String(24), default=OrderStatus.CREATED)
    paid_late: Mapped[bool] = mapped_column(Boolean, default=False)
    pay_url: Mapped[str | None] = mapped_column(Text)
    qrcode: Mapped[str | None] = mapped_column(Text)
    # The QR content takes any amount (a generic personal code): never handed out raw.
    qrcode_any_amount: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    urlscheme: Mapped[str | None] = mapped_column(Text)
    # The JSON parameters a page in the buyer's app hands to the upstream's JS bridge (WeChat JSAPI).
    pay_info: Mapped[str | None] = mapped_column(Text)
    channel_trade_no: Mapped[str | None] = mapped_column(String(64))
    buyer: Mapped[str | None] = mapped_column(String(128))
    paid_fen: Mapped[int | None] = mapped_column(BigInteger)
    refunded_fen: Mapped[int] = mapped_column(BigInteger, default=0)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    paid_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    closed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class NotifyTask(Base):
    """The transactional outbox: one row per message the merchant must receive."""

    __tablename__ = "notify_tasks"
    __table_args__ = (
        # Also an order's notifications, by ``order_id``: the console's and the CLI's.
        UniqueConstraint("order_id", "event"),
        # The claim reads due notifications in this order and stops when it has enough.
        Index(
            "ix_notify_tasks_due",
            "next_attempt_at",
            "id",
            sqlite_where=PENDING_NOTIFICATION,
            postgresql_where=PENDING_NOTIFICATION,
        ),
        # PostgreSQL's claim reads each merchant's own due notifications, in claim order.
        Index(
            "ix_notify_tasks_merchant_due",
            "merchant_pid",
            "next_attempt_at",
            "id",
            sqlite_where=PENDING_NOTIFICATION,
            postgresql_where=PENDING_NOTIFICATION,
        ),
        # The claim's "no earlier pending notification for this order" check.
        Index(
            "ix_notify_tasks_pending_order_id",
            "order_id",
            "id",
            sqlite_where=PENDING_NOTIFICATION,
            postgresql_where=PENDING_NOTIFICATION,
        ),
        # The leases held, counted per merchant by the claim.
        Index(
            "ix_notify_tasks_lease_expires_at",
            "lease_expires_at",
            sqlite_where=LEASED_NOTIFICATION,
            postgresql_where=LEASED_NOTIFICATION,
        ),
        # The notifications that gave up, by when: the resend of the failed ones.
        Index(
            "ix_notify_tasks_failed_at",
            "failed_at",
            sqlite_where=FAILED_NOTIFICATION,
            postgresql_where=FAILED_NOTIFICATION,
        ),
    )

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    order_id: Mapped[int] = mapped_column(ForeignKey("orders.id"))
    merchant_pid: Mapped[int] = mapped_column(Integer)
    event: Mapped[str] = mapped_column(String(32))
    status: Mapped[str] = mapped_column(String(16), default=NotifyStatus.PENDING)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(UTCDateTime)
    lease_owner: Mapped[str | None] = mapped_column(String(64))
    lease_expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    delivered_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    failed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class NotifyBreaker(Base):
    """Per-merchant circuit breaker, shared by every worker through the database."""

    __tablename__ = "notify_breakers"

    merchant_pid: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    consecutive_failures: Mapped[int] = mapped_column(Integer, default=0)
    open_until: Mapped[datetime | None] = mapped_column(UTCDateTime)
    cooldown_seconds: Mapped[float] = mapped_column(Float, default=0.0)


class NotifyWorkerBeat(Base):
    """Workers say they are alive here, so an operator (and /metrics) can count them."""

    __tablename__ = "notify_workers"

    name: Mapped[str] = mapped_column(String(128), primary_key=True)
    started_at: Mapped[datetime] = mapped_column(UTCDateTime)
    last_seen_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)


class NotifyAttempt(Base):
    __tablename__ = "notify_attempts"

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    task_id: Mapped[int] = mapped_column(ForeignKey("notify_tasks.id"), index=True)
    number: Mapped[int] = mapped_column(Integer)
    started_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    target_host: Mapped[str] = mapped_column(String(255))
    http_status: Mapped[int | None] = mapped_column(Integer)
    body_head: Mapped[str | None] = mapped_column(Text)
    latency_ms: Mapped[int] = mapped_column(Integer)
    error_class: Mapped[str | None] = mapped_column(String(32))
    error_detail: Mapped[str | None] = mapped_column(Text)
    delivered: Mapped[bool] = mapped_column(Boolean)


class Refund(Base):
    __tablename__ = "refunds"
    __table_args__ = (UniqueConstraint("merchant_pid", "out_refund_no"),)

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    refund_no: Mapped[str] = mapped_column(String(32), unique=True)
    order_id: Mapped[int] = mapped_column(ForeignKey("orders.id"), index=True)
    merchant_pid: Mapped[int] = mapped_column(Integer)
    out_refund_no: Mapped[str | None] = mapped_column(String(64))
    amount_fen: Mapped[int] = mapped_column(BigInteger)
    # processing (reserved, the channel's answer not yet sure), succeeded or failed.
    status: Mapped[str] = mapped_column(String(16), index=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    # When reconciliation last asked the channel about this refund still processing.
    checked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class BalanceEntry(Base):
    """Journal of every change to a merchant's balance; ``(kind, ref)`` posts at most once."""

    __tablename__ = "balance_entries"
    __table_args__ = (UniqueConstraint("kind", "ref"),)

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    merchant_pid: Mapped[int] = mapped_column(ForeignKey("merchants.pid"), index=True)
    kind: Mapped[str] = mapped_column(String(16))
    ref: Mapped[str] = mapped_column(String(64))
    delta_fen: Mapped[int] = mapped_column(BigInteger)
    balance_after_fen: Mapped[int] = mapped_column(BigInteger)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class Settlement(Base):
    __tablename__ = "settlements"

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    merchant_pid: Mapped[int] = mapped_column(ForeignKey("merchants.pid"), index=True)
    settle_type: Mapped[int] = mapped_column(Integer)
    account: Mapped[str] = mapped_column(String(128))
    username: Mapped[str] = mapped_column(String(128))
    amount_fen: Mapped[int] = mapped_column(BigInteger)
    status: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class ChannelCallback(Base):
    """Every upstream confirmation we received, with what we decided about it and why."""

    __tablename__ = "channel_callbacks"

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    channel: Mapped[str] = mapped_column(String(32))
    trade_no: Mapped[str | None] = mapped_column(String(32), index=True)
    received_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    verified: Mapped[bool] = mapped_column(Boolean)
    decision: Mapped[str] = mapped_column(String(32))
    detail: Mapped[str | None] = mapped_column(Text)
    payload: Mapped[str] = mapped_column(Text)


class ChannelAccountRecord(Base):
    """One account of a channel: its configuration (secrets sealed), routing rules and health."""

    __tablename__ = "channel_accounts"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    channel: Mapped[str] = mapped_column(String(32))
    name: Mapped[str] = mapped_column(String(64), unique=True)
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    config: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    # Field name -> value sealed with OPENEPAY_SECRET_KEY, bound to this account and field.
    secrets: Mapped[dict[str, str]] = mapped_column(JSON, default=dict)
    # Routing rules; None means no limit.
    pay_types: Mapped[list[str] | None] = mapped_column(JSON)
    devices: Mapped[list[str] | None] = mapped_column(JSON)
    min_fen: Mapped[int | None] = mapped_column(BigInteger)
    max_fen: Mapped[int | None] = mapped_column(BigInteger)
    daily_amount_fen: Mapped[int | None] = mapped_column(BigInteger)
    daily_count: Mapped[int | None] = mapped_column(Integer)
    priority: Mapped[int] = mapped_column(Integer, default=0)
    weight: Mapped[int] = mapped_column(Integer, default=1)
    # Health: upstream failures in a row, and until when routing leaves the account alone.
    failures: Mapped[int] = mapped_column(Integer, default=0)
    paused_until: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class ChannelAccountUsage(Base):
    """What an account has taken on one business day: the amount and number of its orders
    that are paid or still payable. The daily caps are guards on this row's UPDATE."""

    __tablename__ = "channel_account_usage"

    account_id: Mapped[int] = mapped_column(ForeignKey("channel_accounts.id"), primary_key=True)
    day: Mapped[str] = mapped_column(String(10), primary_key=True)
    amount_fen: Mapped[int] = mapped_column(BigInteger, default=0)
    count: Mapped[int] = mapped_column(Integer, default=0)


class PlatformKey(Base):
    """The gateway's own key pairs (epay V2 signs responses and notifications with one)."""

    __tablename__ = "platform_keys"

    name: Mapped[str] = mapped_column(String(32), primary_key=True)
    public_pem: Mapped[str] = mapped_column(Text)
    private_sealed: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class RequestNonce(Base):
    """Requests already seen inside a replay window (scope says which API and merchant)."""

    __tablename__ = "request_nonces"

    scope: Mapped[str] = mapped_column(String(64), primary_key=True)
    nonce: Mapped[str] = mapped_column(String(128), primary_key=True)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)


class AuthFailure(Base):
    """Failed key and signature checks, counted per client address or merchant and per time bucket.

    Every web process adds its own counts about once a second and reads back who is over the
    limit (``openepay.core.lockout``), so a lockout holds in all processes.
    """

    __tablename__ = "auth_failures"

    scope: Mapped[str] = mapped_column(String(16), primary_key=True)  # "address" or "merchant"
    subject: Mapped[str] = mapped_column(String(64), primary_key=True)
    # Start of the bucket, Unix milliseconds.
    bucket: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False, index=True)
    failures: Mapped[int] = mapped_column(Integer)


# -- personal QR codes matched by amount (channel "qrpool") ------------------------------------

NOT_RELEASED = text("state != 'released'")


class QrAccount(Base):
    """One receiving identity (a personal WeChat Pay, Alipay or QQ wallet) whose codes buyers scan."""

    __tablename__ = "qrpool_accounts"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    pay_type: Mapped[str] = mapped_column(String(16))
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class QrCode(Base):
    """A receive code as its decoded content: fixed to one amount, or generic (the payer types it)."""

    __tablename__ = "qrpool_codes"
    __table_args__ = (
        UniqueConstraint("account_id", "amount_fen"),
        # At most one generic code per account (NULL amounts are not caught by the constraint above).
        Index(
            "uq_qrpool_codes_generic",
            "account_id",
            unique=True,
            sqlite_where=text("amount_fen IS NULL"),
            postgresql_where=text("amount_fen IS NULL"),
        ),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("qrpool_accounts.id"))
    amount_fen: Mapped[int | None] = mapped_column(BigInteger)
    content: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class QrDevice(Base):
    """A phone watching one account's incoming payments; its key is its own, never a merchant's."""

    __tablename__ = "qrpool_devices"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("qrpool_accounts.id"), index=True)
    name: Mapped[str] = mapped_column(String(64))
    key_sealed: Mapped[str] = mapped_column(Text)
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    last_heartbeat_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_push_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class AmountReservation(Base):
    """An amount held on an account for one order, so that a payment of it means that order.

    ``held`` until the order's expiry plus the late-payment grace, ``paid`` until the cooldown
    after payment, then ``released`` by the sweeper. The partial unique index is what makes two
    orders on one account never share an amount, whatever the concurrency.
    """

    __tablename__ = "qrpool_reservations"
    __table_args__ = (
        Index(
            "uq_qrpool_reservations_account_id_amount_fen",
            "account_id",
            "amount_fen",
            unique=True,
            sqlite_where=NOT_RELEASED,
            postgresql_where=NOT_RELEASED,
        ),
        Index("ix_qrpool_reservations_state_hold_until", "state", "hold_until"),
    )

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("qrpool_accounts.id"))
    order_id: Mapped[int] = mapped_column(ForeignKey("orders.id"), index=True)
    amount_fen: Mapped[int] = mapped_column(BigInteger)
    state: Mapped[str] = mapped_column(String(16), default="held")
    hold_until: Mapped[datetime] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class PaymentEvent(Base):
    """One report of money received (a phone's push, a device batch entry, an operator's entry),
    stored with what was decided and why, whatever the decision."""

    __tablename__ = "qrpool_events"
    __table_args__ = (Index("ix_qrpool_events_decision_received_at", "decision", "received_at"),)

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    # Unique: the same report arriving twice (a replay, a retry) is recognised, never counted twice.
    event_key: Mapped[str] = mapped_column(String(64), unique=True)
    source: Mapped[str] = mapped_column(String(16))
    account_id: Mapped[int | None] = mapped_column(ForeignKey("qrpool_accounts.id"))
    device_id: Mapped[int | None] = mapped_column(ForeignKey("qrpool_devices.id"))
    pay_type: Mapped[str | None] = mapped_column(String(16))
    amount_fen: Mapped[int | None] = mapped_column(BigInteger)
    amount_text: Mapped[str | None] = mapped_column(String(32))
    occurred_at: Mapped[datetime] = mapped_column(UTCDateTime)
    received_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    decision: Mapped[str] = mapped_column(String(24))
    reason: Mapped[str] = mapped_column(Text, default="")
    order_id: Mapped[int | None] = mapped_column(ForeignKey("orders.id"), index=True)
    payload: Mapped[str] = mapped_column(Text, default="")


class AuditEntry(Base):
    """Who did what by hand, when and why: manual payments, attached events, resends, every console write."""

    __tablename__ = "audit_log"

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)
    actor: Mapped[str] = mapped_column(String(64))
    action: Mapped[str] = mapped_column(String(32))
    trade_no: Mapped[str | None] = mapped_column(String(32), index=True)
    event_id: Mapped[int | None] = mapped_column(BigInteger)
    reason: Mapped[str] = mapped_column(Text)
    details: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    # Console writes (openepay.admin.audit): from where, on what (``merchant:1001``), before and after.
    address: Mapped[str | None] = mapped_column(String(64))
    target: Mapped[str | None] = mapped_column(String(96), index=True)
    before: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    after: Mapped[dict[str, Any] | None] = mapped_column(JSON)


# -- the operator's safety nets -----------------------------------------------------------------


class KeyCheck(Base):
    """A known text sealed with ``OPENEPAY_SECRET_KEY``: opening it proves a process holds the key
    the database was written with, before that process seals or answers anything."""

    __tablename__ = "key_checks"

    name: Mapped[str] = mapped_column(String(32), primary_key=True)
    sealed: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class HealthProbe(Base):
    """The one row ``/readyz`` rewrites to prove the database still takes writes (it never grows)."""

    __tablename__ = "health_probes"

    name: Mapped[str] = mapped_column(String(32), primary_key=True)
    probed_at: Mapped[datetime] = mapped_column(UTCDateTime)


# The console's dashboard and the merchants' figures sum payments per day (openepay.admin.dashboard);
# a range over ``paid_at`` implies it is set, so both planners use the index without being told.
Index("ix_orders_paid_at", Order.paid_at, sqlite_where=PAID_AT_SET, postgresql_where=PAID_AT_SET)


class SignInAccount:
    """The columns an account that signs in has, in the console and in the portal alike.

    The password is an argon2id hash; the TOTP secret, when set up, is sealed with the
    gateway's secret key.
    """

    # First, before the columns of the kind of account.
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True, sort_order=-1)
    username: Mapped[str] = mapped_column(String(64), unique=True)
    password_hash: Mapped[str] = mapped_column(String(255))
    totp_sealed: Mapped[str | None] = mapped_column(Text)
    # The last 30-second step whose code was accepted: a code works once.
    totp_last_step: Mapped[int | None] = mapped_column(BigInteger)
    disabled: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class SignInSession:
    """A signed-in browser. The cookie holds a random token; only its SHA-256 is stored,
    so deleting a user's rows logs them out everywhere and a copy of the table logs nobody in."""

    # The table of the accounts the sessions belong to.
    accounts_table: str

    token_hash: Mapped[str] = mapped_column(String(64), primary_key=True)

    @declared_attr
    def user_id(cls) -> Mapped[int]:
        return mapped_column(ForeignKey(f"{cls.accounts_table}.id"), index=True)

    # "ok" once signed in; "totp" while the second factor is owed; "enroll" while TOTP must be set up.
    stage: Mapped[str] = mapped_column(String(8))
    csrf_token: Mapped[str] = mapped_column(String(64))
    address: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    last_seen_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)


class SignInAttempt:
    """A sign-in attempt: the login history, and what lockout counts by name and by address."""

    @declared_attr.directive
    def __table_args__(cls) -> tuple[Index, ...]:
        return (
            Index(f"ix_{cls.__tablename__}_address_at", "address", "at"),
            Index(f"ix_{cls.__tablename__}_username_at", "username", "at"),
        )

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    address: Mapped[str] = mapped_column(String(64))
    username: Mapped[str] = mapped_column(String(64))
    succeeded: Mapped[bool] = mapped_column(Boolean)


class AdminUser(SignInAccount, Base):
    """Someone who signs in to the operator console (``/admin``), with one role.

    Failed sign-ins are counted in ``admin_login_attempts``, by the name typed, so an account
    that exists and one that does not are locked alike.
    """

    __tablename__ = "admin_users"

    role: Mapped[str] = mapped_column(String(16))


class AdminSession(SignInSession, Base):
    """A browser signed in to the operator console."""

    __tablename__ = "admin_sessions"
    accounts_table = "admin_users"


class AdminLoginAttempt(SignInAttempt, Base):
    """Every console sign-in attempt."""

    __tablename__ = "admin_login_attempts"


class MerchantUser(SignInAccount, Base):
    """Someone who signs in to the merchant portal (``/merchant``) for one merchant, with the
    e-mail address (or a name) as ``username``.

    Made by the operator (``openepay merchant login``) or, when the gateway allows it, by
    signing up (the merchant then starts disabled until an operator reviews it). Passwords,
    TOTP and lockout work as for console users; the tables are separate so that no merchant
    session can ever be taken for an operator's.
    """

    __tablename__ = "merchant_users"

    merchant_pid: Mapped[int] = mapped_column(ForeignKey("merchants.pid"), index=True)


class MerchantSession(SignInSession, Base):
    """A browser signed in to the merchant portal."""

    __tablename__ = "merchant_sessions"
    accounts_table = "merchant_users"


class MerchantLoginAttempt(SignInAttempt, Base):
    """Every merchant portal sign-in attempt, counted for lockout by name and by address."""

    __tablename__ = "merchant_login_attempts"

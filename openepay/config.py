"""Settings, read from ``OPENEPAY_*`` environment variables.

Settings are an explicit object handed to whatever needs them (the app, the worker, the CLI),
never a module-level global, so tests and several gateways in one process cannot leak into
each other.
"""

from __future__ import annotations

import os
import secrets
from decimal import Decimal
from functools import cached_property
from pathlib import Path
from typing import Literal
from zoneinfo import ZoneInfo

from pydantic import Field, SecretStr, ValidationInfo, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from openepay.core.money import MAX_AMOUNT_FEN, format_yuan
from openepay.db.urls import normalize, sqlite_file

DEFAULT_DATABASE_URL = "sqlite+aiosqlite:///./openepay.db"

# Seconds to wait after each failed delivery: with the immediate first attempt this is ten
# attempts over about 22 hours, close to what Alipay and WeChat Pay merchants are used to.
DEFAULT_NOTIFY_RETRY_DELAYS = (15, 60, 180, 600, 1800, 3600, 7200, 21600, 43200)


class ConfigurationError(RuntimeError):
    """The settings cannot work; the message says what to change."""


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="OPENEPAY_", extra="ignore")

    database_url: str = DEFAULT_DATABASE_URL
    # PostgreSQL connections per process. Requests and deliveries queue for them instead of
    # opening extra ones, so N processes never hold more than N x this many, plus N x
    # ``engine.DIRECT_CONNECTIONS`` for the lone statements of the hot paths.
    db_pool_size: int = 10
    public_url: str | None = Field(
        default=None,
        description="Base URL buyers and merchants reach us at; derived from each request when unset.",
    )
    secret_key: SecretStr | None = None
    secret_key_file: Path = Path("openepay.secret")

    # Slow clients: the request headers must arrive within this many seconds of the connection
    # (or of the request's first byte), and the body within this many of the headers.
    http_header_timeout: float = Field(default=10.0, gt=0)
    http_body_timeout: float = Field(default=20.0, gt=0)

    sandbox: bool = False
    order_timeout_seconds: int = 1800
    pay_min_money: Decimal = Decimal("0.01")
    # A cap on any one order (yuan), so that a typo or a forged amount never becomes a huge balance.
    pay_max_money: Decimal = Decimal("50000")

    notify_allow_private: bool = False
    notify_retry_delays: tuple[float, ...] = DEFAULT_NOTIFY_RETRY_DELAYS
    notify_connect_timeout: float = 3.0
    notify_timeout: float = 5.0
    notify_max_body_bytes: int = 4096
    notify_lease_seconds: float = 60.0
    notify_batch_size: int = 50
    notify_concurrency: int = 32
    # Fairness: a merchant whose endpoint hangs holds at most this many delivery slots, and
    # after this many failures in a row it is left alone for a cooldown (doubling up to the max)
    # before one probe tries again. Its notifications wait; none is dropped.
    notify_merchant_max_in_flight: int = 4
    notify_breaker_threshold: int = 5
    notify_breaker_cooldown: float = 30.0
    notify_breaker_max_cooldown: float = 600.0
    notify_attempt_retention_days: float = 30.0

    worker_poll_interval: float = 1.0
    worker_sweep_interval: float = 15.0

    epay_refund_success_code: int = 1

    # Lockout after failed key and signature checks (``openepay.core.lockout``): this many within
    # the window from one client IP, or against one merchant, and further attempts are refused
    # unchecked until the oldest failures leave the window. Processes share their counts through
    # the database every ``auth_failure_sync_interval`` seconds.
    auth_failure_window: float = Field(default=60.0, gt=0)
    auth_failures_per_ip: int = Field(default=30, gt=0)
    auth_failures_per_merchant: int = Field(default=60, gt=0)
    auth_failure_sync_interval: float = Field(default=1.0, gt=0)
    # How often each process checks whether merchants changed (a key rotated, a merchant
    # disabled) and how long it trusts its copy of them without a check: a change made by any
    # process is acted on everywhere within ``merchant_cache_trust_seconds``. 0 keeps no copy.
    merchant_cache_check_interval: float = Field(default=0.4, ge=0)
    merchant_cache_trust_seconds: float = Field(default=1.0, gt=0)
    # Routing across channel accounts (docs/channels.md): how accounts of one priority are
    # ordered, how long this process trusts its copy of accounts and merchants' allowances,
    # and when an account whose upstream keeps failing is left alone for a while.
    routing_strategy: Literal["priority", "weighted", "round_robin"] = "priority"
    routing_cache_seconds: float = 1.0
    channel_failure_threshold: int = 3
    channel_pause_seconds: float = 60.0
    # Upstream HTTP calls (create, query, refund): connect and total timeouts in seconds.
    upstream_connect_timeout: float = 3.0
    upstream_timeout: float = 10.0
    # Reconciliation (in the notification worker): ask the upstream about an order still
    # paying this long after it was offered, then again at most this often, until it expires.
    reconcile_after_seconds: float = 60.0
    reconcile_interval_seconds: float = 120.0
    reconcile_batch_size: int = 50

    # Personal QR codes matched by amount (channel "qrpool", see docs/qrpool.md).
    qrpool: bool = False
    qrpool_heartbeat_timeout: float = 90.0
    # Unique amounts: step away from the requested amount one fen at a time, "up" or "down",
    # at most this many fen (never to zero or below).
    qrpool_amount_direction: Literal["up", "down"] = "up"
    qrpool_max_offset_fen: int = 99
    # A reservation outlives its order by the grace (late payments) and its payment by the
    # cooldown (duplicated phone notifications), so neither can be credited to another order.
    qrpool_late_grace_seconds: float = 600.0
    qrpool_paid_cooldown_seconds: float = 600.0
    qrpool_accept_late_payments: bool = True
    qrpool_push_window_seconds: float = 300.0
    qrpool_device_rate_per_minute: int = 60
    # V免签's merchant API has no merchant id: the merchant whose key signs requests to the
    # root paths (``/createOrder``...); ``/vmq/{pid}/createOrder`` works for any merchant.
    vmq_default_pid: int | None = None
    # Business days (today's orders) and the local times api.php reports are in this zone.
    timezone: str = "Asia/Shanghai"
    log_format: str = "text"
    # One line per request (``openepay.access``): method, route, shortened path, status, latency.
    access_log: bool = True
    log_level: str = "INFO"
    # A failure logged with a traceback (a database outage fails every request the same way) is
    # logged in full once; repeats of it are counted and summed up once per this many seconds.
    log_repeat_interval: float = 60.0
    # /readyz fails when the disk holding the SQLite database has less free space than this.
    ready_min_free_mb: int = 16
    # The operator console (/admin, docs/admin.md): every console user must use a TOTP app when
    # this is on; a session lasts this long; this many wrong passwords in a row lock an account for
    # the lock time, and this many failed sign-ins from one address within it refuse that address.
    admin_require_totp: bool = False
    admin_session_hours: float = Field(default=12.0, gt=0)
    admin_failures_per_user: int = Field(default=5, gt=0)
    admin_failures_per_ip: int = Field(default=20, gt=0)
    admin_lock_minutes: float = Field(default=15.0, gt=0)
    # The merchant portal (/merchant, docs/merchant-portal.md): its session length and lockout,
    # each the console's unless set. With signup on, anyone can sign up for a merchant account at
    # /merchant/signup; it starts disabled until an operator enables it.
    merchant_session_hours: float | None = Field(default=None, gt=0)
    merchant_failures_per_user: int | None = Field(default=None, gt=0)
    merchant_failures_per_ip: int | None = Field(default=None, gt=0)
    merchant_lock_minutes: float | None = Field(default=None, gt=0)
    merchant_signup: bool = False

    @field_validator("database_url")
    @classmethod
    def _spell_out_driver(cls, value: str) -> str:
        return normalize(value)

    @field_validator("public_url")
    @classmethod
    def _strip_trailing_slash(cls, value: str | None) -> str | None:
        return value.rstrip("/") if value else value

    @field_validator("pay_min_money", "pay_max_money")
    @classmethod
    def _an_amount(cls, value: Decimal, info: ValidationInfo) -> Decimal:
        if not 0 < value * 100 <= MAX_AMOUNT_FEN:
            raise ValueError(f"{info.field_name} must be positive and at most {format_yuan(MAX_AMOUNT_FEN)} yuan")
        return value

    @model_validator(mode="after")
    def _min_below_max(self) -> Settings:
        if self.pay_min_money > self.pay_max_money:
            raise ValueError("pay_min_money must not be above pay_max_money")
        return self

    @cached_property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")

    @property
    def sqlite_file(self) -> Path | None:
        """The SQLite database file (absolute), or None on PostgreSQL."""
        return sqlite_file(self.database_url)

    @property
    def secret_key_source(self) -> str:
        """Where the secret key comes from, for messages: the variable, or the file's absolute path."""
        if self.secret_key is not None and self.secret_key.get_secret_value():
            return "OPENEPAY_SECRET_KEY"
        return str(self.secret_key_file.resolve())

    def resolve_secret_key(self) -> str:
        """The key that encrypts merchant secrets at rest: ``OPENEPAY_SECRET_KEY``, else the key file.

        Never made up here: a new key belongs to a new gateway only (``create_secret_key_file``),
        and a key invented beside an existing database would lock its secrets away.
        """
        if self.secret_key is not None and self.secret_key.get_secret_value():
            return self.secret_key.get_secret_value()
        if not self.is_sqlite:
            raise ConfigurationError(
                "OPENEPAY_SECRET_KEY must be set when the database is not the embedded SQLite default"
            )
        try:
            key = self.secret_key_file.read_text().strip()
        except FileNotFoundError:
            raise ConfigurationError(
                f"no secret key: OPENEPAY_SECRET_KEY is not set and {self.secret_key_file.resolve()} does not exist; "
                "set OPENEPAY_SECRET_KEY (or OPENEPAY_SECRET_KEY_FILE) to the key this gateway was created with"
            ) from None
        except OSError as exc:
            raise ConfigurationError(f"cannot read the secret key file: {exc}") from None
        if not key:
            raise ConfigurationError(f"the secret key file {self.secret_key_file.resolve()} is empty")
        return key

    def create_secret_key_file(self) -> None:
        """A new random key in ``secret_key_file``, readable by this user only (the embedded SQLite default).

        On the embedded default a key file is made beside the database so that ``openepay demo``
        works with no setup; a PostgreSQL deployment sets ``OPENEPAY_SECRET_KEY`` itself, because
        its data outlives any one machine.
        """
        descriptor = os.open(self.secret_key_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(descriptor, "w") as file:
            file.write(secrets.token_urlsafe(48) + "\n")

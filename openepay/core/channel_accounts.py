"""Channel accounts: stored, validated by their channel's schema, secrets sealed, cached per process.

An account's configuration is checked by its channel's ``config_schema`` when it is added or
changed and again when it is opened. Secret fields are sealed with ``OPENEPAY_SECRET_KEY``,
each bound to its account and field, and only ever opened to hand to the channel.

Routing reads accounts on every order, so this process keeps them in memory and reloads them
at most once per ``OPENEPAY_ROUTING_CACHE_SECONDS``; a change made here is seen at once, a change
made by another process (the CLI) within that time.
"""

from __future__ import annotations

import json
import logging
import time
import tomllib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from pydantic import ValidationError
from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError

from openepay.channels.base import DEVICES, PAY_TYPE_NAMES, ChannelAccount, RoutingRules
from openepay.channels.registry import ChannelRegistry, channel_classes
from openepay.db import Database
from openepay.db.models import ChannelAccountRecord
from openepay.db.types import utcnow
from openepay.secretbox import SecretBox, SecretBoxError

log = logging.getLogger(__name__)

MAX_NAME = 64
DEFAULT_REF = "default"
_ALL_RECORDS = select(ChannelAccountRecord.__table__).order_by(ChannelAccountRecord.id)
RULE_FIELDS = (
    "pay_types",
    "devices",
    "min_fen",
    "max_fen",
    "daily_amount_fen",
    "daily_count",
    "priority",
    "weight",
)


class AccountError(Exception):
    """An operator's request about channel accounts that cannot be done; ``message`` says why."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


@dataclass(frozen=True)
class Health:
    failures: int = 0
    paused_until: datetime | None = None

    def paused(self, now: datetime) -> bool:
        return self.paused_until is not None and self.paused_until > now


# The health of an account with no failures on record, shared (a ``Health`` is never changed).
HEALTHY = Health()


def read_config_file(path: Path) -> dict[str, Any]:
    """An account's configuration from a JSON file, or TOML when the name ends in ``.toml``."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise AccountError(f"cannot read {path}: {exc}") from None
    try:
        values = tomllib.loads(text) if path.suffix.lower() == ".toml" else json.loads(text)
    except (ValueError, tomllib.TOMLDecodeError) as exc:
        raise AccountError(
            f"{path} is not valid {'TOML' if path.suffix.lower() == '.toml' else 'JSON'}: {exc}"
        ) from None
    if not isinstance(values, dict):
        raise AccountError(f"{path} must hold one object of field names and values")
    return values


def _secret_context(record: ChannelAccountRecord | tuple[str, str], field: str) -> str:
    channel, name = (record.channel, record.name) if isinstance(record, ChannelAccountRecord) else record
    return f"channel-account:{channel}:{name}:{field}"


def _validation_message(exc: ValidationError) -> str:
    problems = []
    for error in exc.errors():
        where = ".".join(str(part) for part in error["loc"]) or "config"
        problems.append(f"{where}: {error['msg']}")
    return "; ".join(problems)


def check_rules(values: Mapping[str, Any]) -> dict[str, Any]:
    """Routing rules as an operator gives them, checked; raises ``AccountError`` with what is wrong."""
    checked: dict[str, Any] = {}
    for name, value in values.items():
        if name not in RULE_FIELDS:
            raise AccountError(f"unknown routing rule {name!r}")
        if name == "pay_types" and value is not None:
            unknown = sorted(set(value) - set(PAY_TYPE_NAMES))
            if unknown or not value:
                raise AccountError(f"pay types must be among {', '.join(PAY_TYPE_NAMES)} (got {', '.join(unknown)})")
            value = sorted(set(value))
        elif name == "devices" and value is not None:
            unknown = sorted(set(value) - set(DEVICES))
            if unknown or not value:
                raise AccountError(f"devices must be among {', '.join(DEVICES)} (got {', '.join(unknown)})")
            value = sorted(set(value))
        elif name == "weight" and (value is None or value < 1):
            raise AccountError("the weight must be a whole number of at least 1")
        elif name == "priority" and value is None:
            value = 0
        elif name in ("min_fen", "max_fen", "daily_amount_fen") and value is not None and value <= 0:
            raise AccountError(f"{name.removesuffix('_fen')} must be more than 0")
        elif name == "daily_count" and value is not None and value < 1:
            raise AccountError("the daily count cap must be at least 1")
        checked[name] = value
    return checked


def check_range(low: int | None, high: int | None) -> None:
    if low is not None and high is not None and low > high:
        raise AccountError("the minimum amount is above the maximum")


class ChannelAccounts:
    """Stored accounts of every channel, plus the built-in account of each running implicit channel."""

    def __init__(self, db: Database, box: SecretBox, channels: ChannelRegistry, cache_seconds: float) -> None:
        self.db = db
        self.box = box
        self.channels = channels
        self.cache_seconds = cache_seconds
        self._loaded_at: float | None = None
        self._accounts: list[ChannelAccount] = []
        self._by_id: dict[int, ChannelAccount] = {}
        self._health: dict[int, Health] = {}
        self._reloading = False

    # --- reading, for routing and callbacks -----------------------------------------------------

    async def all(self) -> list[ChannelAccount]:
        """Every account routing may consider (enabled or not), from this process's cache."""
        await self._refresh_if_stale()
        return self._accounts

    def health(self, account: ChannelAccount) -> Health:
        return self._health.get(account.id, HEALTHY) if account.id is not None else HEALTHY

    async def find(self, channel: str, ref: str) -> ChannelAccount | None:
        """The account a callback URL or an order names: ``default`` for the built-in one, else its id."""
        await self._refresh_if_stale()
        if ref == DEFAULT_REF:
            return next((a for a in self._accounts if a.channel == channel and a.id is None), None)
        if not ref.isdigit():
            return None
        account = self._by_id.get(int(ref))
        if account is None:
            # Added by another process since the last load.
            self.invalidate()
            await self._refresh_if_stale()
            account = self._by_id.get(int(ref))
        return account if account is not None and account.channel == channel else None

    async def of_order(self, channel: str | None, account_id: int | None) -> ChannelAccount | None:
        if channel is None:
            return None
        return await self.find(channel, str(account_id) if account_id is not None else DEFAULT_REF)

    def invalidate(self) -> None:
        self._loaded_at = None

    async def _refresh_if_stale(self) -> None:
        """Reload when the copy is older than ``cache_seconds``. While one request reloads, the others
        go on with the copy they have (a moment older), rather than each reading the same rows."""
        now = time.monotonic()
        if self._loaded_at is not None and (now - self._loaded_at < self.cache_seconds or self._reloading):
            return
        self._reloading = True
        try:
            rows = await self.db.rows(_ALL_RECORDS)
        finally:
            self._reloading = False
        records = [ChannelAccountRecord(**row._mapping) for row in rows]
        accounts, health = [], {}
        for record in records:
            opened = self._open_quietly(record)
            if opened is not None:
                accounts.append(opened)
                health[record.id] = Health(record.failures, record.paused_until)
        stored_channels = {record.channel for record in records}
        for channel in self.channels.all():
            if channel.implicit_account and channel.name not in stored_channels:
                accounts.append(channel.implicit())
        self._accounts = accounts
        self._by_id = {account.id: account for account in accounts if account.id is not None}
        self._health = health
        self._loaded_at = now

    def _open_quietly(self, record: ChannelAccountRecord) -> ChannelAccount | None:
        try:
            return self.open(record)
        except (AccountError, SecretBoxError) as exc:
            log.error("channel account %s cannot be used: %s", record.name, getattr(exc, "message", exc))
            return None

    def open(self, record: ChannelAccountRecord) -> ChannelAccount:
        """The account with its secrets opened and its configuration validated by the channel's schema."""
        schema = self._schema(record.channel)
        values = dict(record.config)
        for field, sealed in record.secrets.items():
            values[field] = self.box.open(sealed, _secret_context(record, field))
        try:
            config = schema.model_validate(values)
        except ValidationError as exc:
            raise AccountError(f"the stored configuration no longer fits: {_validation_message(exc)}") from None
        return ChannelAccount(
            id=record.id,
            channel=record.channel,
            name=record.name,
            config=config,
            rules=rules_of(record),
            enabled=record.enabled,
        )

    def _schema(self, channel: str):  # type: ignore[no-untyped-def]
        cls = channel_classes().get(channel)
        if cls is None:
            raise AccountError(f"there is no channel {channel!r} (channels: {', '.join(channel_classes())})")
        return cls.config_schema

    # --- operator's changes ---------------------------------------------------------------------

    async def add(self, channel: str, name: str, values: Mapping[str, Any]) -> ChannelAccountRecord:
        if not name.strip() or len(name) > MAX_NAME or "\x00" in name or name.isdigit() or name == DEFAULT_REF:
            raise AccountError(f"an account name is 1 to {MAX_NAME} characters, not only digits, and not 'default'")
        public, secrets = self._checked(channel, values, (channel, name))
        record = ChannelAccountRecord(
            channel=channel,
            name=name,
            enabled=True,
            config=public,
            secrets=secrets,
            priority=0,
            weight=1,
            failures=0,
        )
        try:
            async with self.db.session() as session:
                session.add(record)
        except IntegrityError:
            raise AccountError(f"there is already an account named {name!r}") from None
        self.invalidate()
        return record

    async def reconfigure(self, name: str, values: Mapping[str, Any]) -> ChannelAccountRecord:
        """Change an account's configuration: the fields given replace the stored ones, the rest stay."""
        record = await self.record(name)
        stored = dict(record.config)
        stored.update(
            {field: self.box.open(sealed, _secret_context(record, field)) for field, sealed in record.secrets.items()}
        )
        public, secrets = self._checked(record.channel, {**stored, **values}, (record.channel, record.name))
        return await self._update(name, config=public, secrets=secrets)

    def _checked(
        self, channel: str, values: Mapping[str, Any], owner: tuple[str, str]
    ) -> tuple[dict[str, Any], dict[str, str]]:
        schema = self._schema(channel)
        try:
            config = schema.model_validate(dict(values))
        except ValidationError as exc:
            raise AccountError(
                f"the configuration does not fit the {channel} channel: {_validation_message(exc)}"
            ) from None
        sealed = {
            field: self.box.seal(value, _secret_context(owner, field))
            for field, value in config.secret_values().items()
        }
        return config.public_values(), sealed

    async def set_enabled(self, name: str, enabled: bool) -> ChannelAccountRecord:
        values: dict[str, Any] = {"enabled": enabled}
        if enabled:
            values.update(failures=0, paused_until=None)
        return await self._update(name, **values)

    async def set_rules(self, name: str, rules: Mapping[str, Any]) -> ChannelAccountRecord:
        checked = check_rules(rules)
        record = await self.record(name)
        check_range(checked.get("min_fen", record.min_fen), checked.get("max_fen", record.max_fen))
        return await self._update(name, **checked)

    async def _update(self, name: str, **values: Any) -> ChannelAccountRecord:
        async with self.db.session() as session:
            record = await session.scalar(
                update(ChannelAccountRecord)
                .where(ChannelAccountRecord.name == name)
                .values(**values, updated_at=utcnow())
                .returning(ChannelAccountRecord)
                .execution_options(populate_existing=True)
            )
        if record is None:
            raise AccountError(f"no channel account named {name!r}")
        self.invalidate()
        return record

    async def record(self, name: str) -> ChannelAccountRecord:
        async with self.db.session() as session:
            record = await session.scalar(select(ChannelAccountRecord).where(ChannelAccountRecord.name == name))
        if record is None:
            raise AccountError(f"no channel account named {name!r}")
        return record

    async def records(self) -> list[ChannelAccountRecord]:
        async with self.db.session() as session:
            return list((await session.scalars(select(ChannelAccountRecord).order_by(ChannelAccountRecord.id))).all())

    async def ids_of(self, names: Iterable[str]) -> list[int]:
        """The ids of accounts named by an operator; raises ``AccountError`` for a name that is not one."""
        wanted = list(dict.fromkeys(names))
        async with self.db.session() as session:
            found = dict(
                (
                    await session.execute(
                        select(ChannelAccountRecord.name, ChannelAccountRecord.id).where(
                            ChannelAccountRecord.name.in_(wanted)
                        )
                    )
                ).all()
            )
        missing = [name for name in wanted if name not in found]
        if missing:
            raise AccountError(f"no channel account named {', '.join(missing)}")
        return [found[name] for name in wanted]

    async def names_of(self, ids: Iterable[int]) -> list[str]:
        """The names of accounts by id, in the order given (``#id`` for one no longer stored)."""
        wanted = list(ids)
        async with self.db.session() as session:
            rows = dict(
                (
                    await session.execute(
                        select(ChannelAccountRecord.id, ChannelAccountRecord.name).where(
                            ChannelAccountRecord.id.in_(wanted)
                        )
                    )
                ).all()
            )
        return [rows.get(account_id, f"#{account_id}") for account_id in wanted]

    # --- health ---------------------------------------------------------------------------------

    async def record_failure(self, account: ChannelAccount, threshold: int, pause: timedelta) -> Health:
        """One more upstream failure in a row; at ``threshold`` the account is paused for ``pause``."""
        if account.id is None:
            return Health()
        now = utcnow()
        async with self.db.session() as session:
            failures = await session.scalar(
                update(ChannelAccountRecord)
                .where(ChannelAccountRecord.id == account.id)
                .values(failures=ChannelAccountRecord.failures + 1)
                .returning(ChannelAccountRecord.failures)
            )
            paused_until = None
            if failures is not None and failures >= threshold:
                paused_until = now + pause
                await session.execute(
                    update(ChannelAccountRecord)
                    .where(ChannelAccountRecord.id == account.id)
                    .values(paused_until=paused_until, failures=0)
                )
                log.warning(
                    "channel account %s failed %d times in a row: left alone until %s",
                    account.name,
                    failures,
                    paused_until.isoformat(timespec="seconds"),
                )
        health = Health(0 if paused_until else failures or 0, paused_until)
        self._health[account.id] = health
        return health

    async def record_success(self, account: ChannelAccount) -> None:
        """Forget earlier failures; costs nothing while the account is healthy."""
        if account.id is None or self._health.get(account.id, HEALTHY).failures == 0:
            return
        async with self.db.session() as session:
            await session.execute(
                update(ChannelAccountRecord).where(ChannelAccountRecord.id == account.id).values(failures=0)
            )
        self._health[account.id] = Health()


def rules_of(record: ChannelAccountRecord) -> RoutingRules:
    return RoutingRules(
        pay_types=frozenset(record.pay_types) if record.pay_types is not None else None,
        devices=frozenset(record.devices) if record.devices is not None else None,
        min_fen=record.min_fen,
        max_fen=record.max_fen,
        daily_amount_fen=record.daily_amount_fen,
        daily_count=record.daily_count,
        priority=record.priority,
        weight=record.weight,
    )

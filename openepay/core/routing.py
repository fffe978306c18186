"""Which channel account serves an order.

For a merchant and a pay type, the candidates are the accounts of running channels that serve
the type, filtered by the merchant's own allowances, the account's switch, its amount range,
the buyer's device and its health (an account whose upstream keeps failing is left alone for
a while). They are ranked by priority, highest first; within one priority the strategy
(``OPENEPAY_ROUTING_STRATEGY``) orders them: ``priority`` (the oldest account first),
``weighted`` (random, in proportion to the weights) or ``round_robin`` (in turn, per process).
``core.checkout`` then tries them in that order, counting each against its daily caps. Every
decision is written down (``RoutingLog``) and kept on the order.

All of it runs from this process's caches (accounts and merchants' allowances), so routing
costs no query beyond the one that counts the caps.
"""

from __future__ import annotations

import random
import time
from collections import defaultdict
from dataclasses import dataclass, field
from enum import StrEnum
from itertools import groupby
from typing import Any

from sqlalchemy import bindparam, select

from openepay.channels.base import PAY_TYPE_NAMES, Channel, ChannelAccount
from openepay.channels.registry import ChannelRegistry
from openepay.core.channel_accounts import ChannelAccounts
from openepay.core.money import format_yuan
from openepay.db import Database
from openepay.db.models import Merchant
from openepay.db.types import utcnow


class Strategy(StrEnum):
    PRIORITY = "priority"
    WEIGHTED = "weighted"
    ROUND_ROBIN = "round_robin"


@dataclass(frozen=True)
class Candidate:
    channel: Channel
    account: ChannelAccount


@dataclass
class RoutingLog:
    """What routing considered for one payment and why it chose what it chose (``order show`` prints it)."""

    pay_type: str
    strategy: str
    considered: list[dict[str, Any]] = field(default_factory=list)

    def note(self, account: ChannelAccount, outcome: str, reason: str) -> None:
        self.considered.append(
            {
                "account": account.name,
                "channel": account.channel,
                "id": account.id,
                "outcome": outcome,
                "reason": reason,
            }
        )

    def as_json(self) -> dict[str, Any]:
        return {"pay_type": self.pay_type, "strategy": self.strategy, "considered": self.considered, "at": _now_text()}


def _now_text() -> str:
    return utcnow().isoformat(timespec="seconds")


@dataclass(frozen=True)
class MerchantAllowance:
    """A merchant's own limits on routing; None means no limit."""

    pay_types: frozenset[str] | None = None
    account_ids: frozenset[int] | None = None


_ALLOWANCE = select(Merchant.pay_types, Merchant.channel_accounts).where(Merchant.pid == bindparam("pid"))


class Router:
    def __init__(
        self,
        db: Database,
        channels: ChannelRegistry,
        accounts: ChannelAccounts,
        *,
        strategy: Strategy,
        cache_seconds: float,
        rng: random.Random | None = None,
    ) -> None:
        self.db = db
        self.channels = channels
        self.accounts = accounts
        self.strategy = strategy
        self.cache_seconds = cache_seconds
        self.rng = rng or random.Random()
        self._turns: dict[tuple[str, ...], int] = defaultdict(int)
        self._allowances: dict[int, tuple[float, MerchantAllowance]] = {}
        self._reading: set[int] = set()

    async def allowance(self, pid: int) -> MerchantAllowance:
        """The merchant's limits, read again once older than ``cache_seconds``; while one request reads
        them, the merchant's other requests go on with the copy they have (a moment older)."""
        cached = self._allowances.get(pid)
        now = time.monotonic()
        if cached is not None and (now - cached[0] < self.cache_seconds or pid in self._reading):
            return cached[1]
        self._reading.add(pid)
        try:
            rows = await self.db.rows(_ALLOWANCE, {"pid": pid})
        finally:
            self._reading.discard(pid)
        row = rows[0] if rows else None
        allowance = MerchantAllowance()
        if row is not None:
            allowance = MerchantAllowance(
                pay_types=frozenset(row.pay_types) if row.pay_types is not None else None,
                account_ids=frozenset(row.channel_accounts) if row.channel_accounts is not None else None,
            )
        self._allowances[pid] = (now, allowance)
        return allowance

    def forget_merchant(self, pid: int) -> None:
        self._allowances.pop(pid, None)

    async def candidates(
        self, pid: int, pay_type: str, amount_fen: int, device: str | None
    ) -> tuple[list[Candidate], RoutingLog]:
        """The accounts that may serve this payment, in the order to try them, and the log so far."""
        log = RoutingLog(pay_type=pay_type, strategy=self.strategy.value)
        allowance = await self.allowance(pid)
        if allowance.pay_types is not None and pay_type not in allowance.pay_types:
            return [], log
        eligible = []
        for account in await self.accounts.all():
            channel = self.channels.get(account.channel)
            if channel is None or pay_type not in channel.pay_types:
                continue
            reason = self._excluded(account, allowance, pay_type, amount_fen, device)
            if reason:
                log.note(account, "skipped", reason)
            else:
                eligible.append(Candidate(channel, account))
        return self._ordered(eligible), log

    def _excluded(
        self,
        account: ChannelAccount,
        allowance: MerchantAllowance,
        pay_type: str,
        amount_fen: int,
        device: str | None,
    ) -> str | None:
        rules = account.rules
        if allowance.account_ids is not None and account.id not in allowance.account_ids:
            return "not one of the merchant's accounts"
        if not account.enabled:
            return "disabled"
        if rules.pay_types is not None and pay_type not in rules.pay_types:
            return f"does not take {pay_type}"
        if rules.devices is not None and (device or "pc") not in rules.devices:
            return f"does not take device {device or 'pc'}"
        if rules.min_fen is not None and amount_fen < rules.min_fen:
            return f"below its minimum {format_yuan(rules.min_fen)}"
        if rules.max_fen is not None and amount_fen > rules.max_fen:
            return f"above its maximum {format_yuan(rules.max_fen)}"
        health = self.accounts.health(account)
        # The clock is read only for an account with a pause on record (most have none).
        if health.paused_until is not None and health.paused(utcnow()):
            assert health.paused_until is not None
            return f"upstream kept failing: left alone until {health.paused_until.isoformat(timespec='seconds')}"
        return None

    def _ordered(self, eligible: list[Candidate]) -> list[Candidate]:
        if len(eligible) < 2:
            # Nothing to rank (the usual case: one account serves the pay type), and no turn to
            # count: ranking a lone account cost a create more than deciding it was eligible.
            return eligible
        ranked = sorted(eligible, key=lambda c: (-c.account.rules.priority, _age(c.account)))
        ordered: list[Candidate] = []
        for _, tier_iter in groupby(ranked, key=lambda c: c.account.rules.priority):
            tier = list(tier_iter)
            if self.strategy == Strategy.WEIGHTED and len(tier) > 1:
                # Efraimidis-Spirakis: sorting by u^(1/w) draws without replacement in proportion to w.
                keys = {id(c): self.rng.random() ** (1 / c.account.rules.weight) for c in tier}
                tier.sort(key=lambda c: keys[id(c)], reverse=True)
            elif self.strategy == Strategy.ROUND_ROBIN and len(tier) > 1:
                turn_key = tuple(f"{c.account.channel}:{c.account.ref}" for c in tier)
                turn = self._turns[turn_key] % len(tier)
                self._turns[turn_key] += 1
                tier = tier[turn:] + tier[:turn]
            ordered.extend(tier)
        return ordered

    async def pay_types_for(self, pid: int) -> list[str]:
        """The pay types a buyer of this merchant can choose at the cashier, in a familiar order."""
        allowance = await self.allowance(pid)
        served: set[str] = set()
        for account in await self.accounts.all():
            channel = self.channels.get(account.channel)
            if channel is None or not account.enabled:
                continue
            if allowance.account_ids is not None and account.id not in allowance.account_ids:
                continue
            types = (
                channel.pay_types if account.rules.pay_types is None else channel.pay_types & account.rules.pay_types
            )
            served |= types
        if allowance.pay_types is not None:
            served &= allowance.pay_types
        known = list(PAY_TYPE_NAMES)
        return sorted(served, key=lambda t: (known.index(t) if t in known else len(known), t))


def _age(account: ChannelAccount) -> tuple[int, int]:
    """Stored accounts oldest first, then the built-in ones."""
    return (0, account.id) if account.id is not None else (1, 0)

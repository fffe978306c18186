"""Locking out whoever keeps failing key and signature checks: per client IP and per merchant.

The request path decides from this process's memory alone and never waits for the database:
a refusal costs no query. Failures are counted in memory, in time buckets (a sixth of the
window each); a background task (``run``) adds this process's new counts to ``auth_failures``
about once a second and reads back every IP and merchant over its limit across all processes,
so a lockout reached through one process holds in every process within about a second.

A subject is locked out while the failures counted inside the window reach its limit, and
unlocks by itself as they age out. Refused attempts are not counted, so a shop that got its
key wrong is back at most one window after it stops failing.

Anyone can send bad signatures in a merchant's name, so a merchant's lockout does not stop an
address that signed correctly for it in the last day (remembered by each process): the shop's
own server keeps working while strangers are locked out. An IP's own lockout has no such
exception: only traffic from that address can cause it.
"""

from __future__ import annotations

import asyncio
import functools
import ipaddress
import logging
import time
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Row, Select, delete, func, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from openepay.db import Database
from openepay.db.models import AuthFailure

log = logging.getLogger(__name__)

IP = "ip"
MERCHANT = "merchant"
BUCKETS_PER_WINDOW = 6
# Addresses counted per process; past this (a flood from very many addresses) a new address's
# failures still count against its merchant, so memory stays bounded and the merchant protected.
MAX_ADDRESSES = 100_000
PROVEN_SECONDS = 24 * 3600.0
MAX_PROVEN = 100_000
SWEEP_SECONDS = 60.0
# The last sync on the way out may not hold up a shutdown for long when the database is unreachable.
FINAL_SYNC_SECONDS = 5.0
ROWS_PER_STATEMENT = 500

Subject = tuple[str, str]


@dataclass(frozen=True)
class LockoutPolicy:
    window: float
    per_ip: int
    per_merchant: int
    sync_interval: float

    def limit(self, scope: str) -> int:
        return self.per_ip if scope == IP else self.per_merchant


@functools.lru_cache(maxsize=4096)
def address_key(address: str) -> str:
    """What one client is: an IPv4 address, an IPv6 address's /64 (one subscriber's network).

    Remembered for the addresses seen lately: every signed request asks twice (before and after
    its check), and parsing an address is a tenth of refusing a bad signature."""
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return address[:64]
    if ip.version == 6:
        if ip.ipv4_mapped is not None:
            return str(ip.ipv4_mapped)
        return str(ipaddress.IPv6Network((ip, 64), strict=False))
    return str(ip)


class _Tally:
    """One subject's failures counted by this process, per bucket, and their total from the bucket
    ``since`` on as last counted: every signed request asks for it, twice, and it changes only with
    a failure or when the window moves on to another bucket."""

    __slots__ = ("buckets", "since", "total")

    def __init__(self, buckets: dict[int, int]) -> None:
        self.buckets = buckets
        self.since: int | None = None
        self.total = 0

    def count(self, oldest: int) -> int:
        """The failures in the buckets from ``oldest`` on."""
        if self.since != oldest:
            self.total = sum(n for bucket, n in self.buckets.items() if bucket >= oldest)
            self.since = oldest
        return self.total

    def add(self, bucket: int) -> None:
        self.buckets[bucket] = self.buckets.get(bucket, 0) + 1
        if self.since is not None and bucket >= self.since:
            self.total += 1


class Lockout:
    def __init__(self, db: Database, policy: LockoutPolicy, clock: Callable[[], float] = time.time) -> None:
        self.db = db
        self.policy = policy
        self._clock = clock
        self._bucket_ms = max(1, round(policy.window * 1000 / BUCKETS_PER_WINDOW))
        self._own: dict[Subject, _Tally] = {}  # this process's failures, inside the window
        self._unsent: dict[tuple[str, str, int], int] = {}  # counted here, not yet added to the table
        self._shared: frozenset[Subject] = frozenset()  # over the limit across processes at the last sync
        self._shared_at = 0.0
        self._proven: OrderedDict[tuple[int, str], float] = OrderedDict()
        self._last_sweep = 0.0
        self._sync_failing = False

    def _buckets(self) -> tuple[int, int]:
        """The current bucket's start and the oldest start still inside the window, in Unix milliseconds."""
        now_ms = int(self._clock() * 1000)
        current = now_ms - now_ms % self._bucket_ms
        return current, current - (BUCKETS_PER_WINDOW - 1) * self._bucket_ms

    def _over(self, subject: Subject, oldest: int, limit: int) -> bool:
        if subject in self._shared:
            return True
        tally = self._own.get(subject)
        return (tally.count(oldest) if tally is not None else 0) >= limit

    def _proven_recently(self, pid: int, address: str) -> bool:
        since = self._proven.get((pid, address_key(address)))
        return since is not None and self._clock() - since < PROVEN_SECONDS

    def locked(self, address: str, pid: int) -> bool:
        """Whether a key check for merchant ``pid`` from ``address`` must be refused without looking."""
        _, oldest = self._buckets()
        if self._over((IP, address_key(address)), oldest, self.policy.per_ip):
            return True
        return self._over((MERCHANT, str(pid)), oldest, self.policy.per_merchant) and not self._proven_recently(
            pid, address
        )

    def failed(self, address: str, pid: int) -> None:
        current, _ = self._buckets()
        for subject in ((IP, address_key(address)), (MERCHANT, str(pid))):
            tally = self._own.get(subject)
            if tally is None:
                if subject[0] == IP and len(self._own) >= MAX_ADDRESSES:
                    continue
                tally = self._own[subject] = _Tally({})
            tally.add(current)
            key = (*subject, current)
            self._unsent[key] = self._unsent.get(key, 0) + 1

    def succeeded(self, address: str, pid: int) -> None:
        key = (pid, address_key(address))
        self._proven[key] = self._clock()
        self._proven.move_to_end(key)
        while len(self._proven) > MAX_PROVEN:
            self._proven.popitem(last=False)

    async def sync(self) -> None:
        """Add this process's new failures to the shared counts and learn who is locked out everywhere."""
        _, oldest = self._buckets()
        unsent, self._unsent = self._unsent, {}
        try:
            locked = await self._exchange(unsent, oldest)
        except Exception as exc:
            for key, count in unsent.items():
                if key[2] >= oldest:
                    self._unsent[key] = self._unsent.get(key, 0) + count
            if self._clock() - self._shared_at > self.policy.window:
                self._shared = frozenset()
            if not self._sync_failing:
                log.warning("cannot share failed signature checks through the database (%s); counting locally", exc)
            self._sync_failing = True
            return
        if self._sync_failing:
            log.warning("failed signature checks are shared through the database again")
        self._sync_failing = False
        for scope, subject in sorted(locked - self._shared):
            log.warning(
                "%s %s locked out: at least %d failed key or signature checks in %g s",
                scope,
                subject,
                self.policy.limit(scope),
                self.policy.window,
            )
        self._shared, self._shared_at = locked, self._clock()
        self._forget_before(oldest)

    async def _exchange(self, unsent: dict[tuple[str, str, int], int], oldest: int) -> frozenset[Subject]:
        total = func.sum(AuthFailure.failures)
        over_limit = (
            select(AuthFailure.scope, AuthFailure.subject, total)
            .where(AuthFailure.bucket >= oldest)
            .group_by(AuthFailure.scope, AuthFailure.subject)
            .having(total >= min(self.policy.per_ip, self.policy.per_merchant))
        )
        sweep = self._clock() - self._last_sweep >= SWEEP_SECONDS
        if not unsent and not sweep:
            # Nothing to write, the usual case: a read, which on SQLite takes no write lock from the
            # orders being created meanwhile (a session's transaction would, every second).
            over = await self.db.rows(over_limit)
        else:
            over = await self._write_and_read(unsent, oldest, over_limit, sweep)
        return frozenset((scope, subject) for scope, subject, count in over if count >= self.policy.limit(scope))

    async def _write_and_read(
        self, unsent: dict[tuple[str, str, int], int], oldest: int, over_limit: Select[Any], sweep: bool
    ) -> Sequence[Row[Any]]:
        insert = pg_insert if self.db.dialect == "postgresql" else sqlite_insert
        async with self.db.session() as session:
            rows = [
                {"scope": scope, "subject": subject, "bucket": bucket, "failures": failures}
                for (scope, subject, bucket), failures in unsent.items()
            ]
            for start in range(0, len(rows), ROWS_PER_STATEMENT):
                statement = insert(AuthFailure).values(rows[start : start + ROWS_PER_STATEMENT])
                await session.execute(
                    statement.on_conflict_do_update(
                        index_elements=["scope", "subject", "bucket"],
                        set_={"failures": AuthFailure.failures + statement.excluded.failures},
                    )
                )
            if sweep:
                await session.execute(delete(AuthFailure).where(AuthFailure.bucket < oldest))
                self._last_sweep = self._clock()
            return (await session.execute(over_limit)).all()

    def _forget_before(self, oldest: int) -> None:
        for subject in list(self._own):
            counts = {bucket: n for bucket, n in self._own[subject].buckets.items() if bucket >= oldest}
            if counts:
                self._own[subject] = _Tally(counts)
            else:
                del self._own[subject]

    async def run(self, stop: asyncio.Event) -> None:
        """Sync every ``sync_interval`` seconds until ``stop``, and once more (briefly) on the way out."""
        while not stop.is_set():
            try:
                await asyncio.wait_for(stop.wait(), self.policy.sync_interval)
            except TimeoutError:
                await self.sync()
        try:
            await asyncio.wait_for(self.sync(), FINAL_SYNC_SECONDS)
        except TimeoutError:
            log.warning("the last failed signature checks were not shared: the database did not answer")

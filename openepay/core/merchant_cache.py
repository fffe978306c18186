"""This process's copy of the merchants requests act for, with their keys opened.

Every merchant request needs the merchant's key, state and dialects; reading them from the
database each time costs a round trip, and refusing a bad signature would cost one too. So
each process keeps what it read, and drops all of it when the merchants' version token
(``cache_versions``, written by triggers on every change, see migration ``0009_hotpath``) is no longer
the one it last saw. ``run`` reads the token every ``check_interval`` seconds.

The copy is trusted only while the token was confirmed by a check that *started* less than
``trust_seconds`` ago: a change committed by any process is therefore acted on within that
time. A request that finds its merchant in a copy no longer trusted (``run``'s check is late:
the event loop is busy, or nothing runs ``run``, as in the CLI) starts a check itself, or
waits for the one under way, and all such requests share it: one read of the token, where
each of them used to read its merchant's row. A check that started after the request arrived
confirms the copy for that request however long it took (it saw every change committed before
the request), so a stalled event loop (a long garbage collection, a burst) does not send every
waiting request to the database. Until the first check has ended every request waits for it: it
drops what was read while it ran. When the check fails (the database is unreachable) every
request reads through to the database.

Which merchant numbers are taken is kept too, so that a request naming a number no merchant has
is refused from memory, as a bad signature is: otherwise every such request would read the
database, and a flood of random numbers (which no memory of the numbers refused would catch)
would cost a read each. The numbers are read in one statement when a request first names an
unknown one, and dropped with the rest: a merchant created by another process (the CLI
included) can be used once this process sees the new token, within ``trust_seconds`` as a
rotated key is, and one created by this process at once (``forget``). They grow with the
merchants, never with the requests; past ``MAX_PIDS`` merchants they are not kept and unknown
numbers are read from the database again.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from sqlalchemy import bindparam, select

from openepay.db import Database
from openepay.db.models import CacheVersion, Merchant

log = logging.getLogger(__name__)

MAX_ENTRIES = 100_000
# As many numbers as merchants kept: 100,000 take about 7 MB in each process and a read of about
# 0.1 s after each change (SQLite, measured). An operator with more merchants has every unknown
# number read from the database.
MAX_PIDS = MAX_ENTRIES
_TOKEN = select(CacheVersion.token).where(CacheVersion.name == bindparam("name"))


@dataclass(frozen=True)
class Admission:
    """What letting a merchant in needs: its row (as read, never written back) and its opened key."""

    merchant: Merchant
    key: str


class MerchantCache:
    def __init__(
        self,
        db: Database,
        load: Callable[[int], Awaitable[Admission | None]],
        *,
        check_interval: float,
        trust_seconds: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.db = db
        self._load = load
        self.check_interval = check_interval
        self.trust_seconds = trust_seconds
        self._clock = clock
        self._entries: dict[int, Admission] = {}
        # Every merchant number, once read (None: not read since the last drop, or too many to keep).
        self._pids: frozenset[int] | None = None
        self._pids_read = False
        self._reading_pids: asyncio.Future[None] | None = None
        self._token: int | None = None
        self._confirmed_at: float | None = None
        # Bumped on every drop: a load that began before a drop must not store what it read.
        self._generation = 0
        self._check_failing = False
        self._checking: asyncio.Future[None] | None = None

    @property
    def enabled(self) -> bool:
        return self.check_interval > 0

    def _trusted(self) -> bool:
        return self._confirmed_at is not None and self._clock() - self._confirmed_at < self.trust_seconds

    def _confirmed_since(self, moment: float) -> bool:
        return self._confirmed_at is not None and self._confirmed_at >= moment

    async def get(self, pid: int) -> Admission | None:
        """The merchant ``pid`` from memory when the copy is trusted (confirming it first when it is no
        longer), else from the database."""
        trusted = self._trusted()
        # Never confirmed (a process just started): the first check, when it ends, drops whatever was
        # read while it ran, so this request waits for it rather than read its merchant twice.
        never_confirmed = self.enabled and self._confirmed_at is None
        if not trusted and (self._answers(pid) or never_confirmed):
            arrived = self._clock()
            await self.check()
            if not self._confirmed_since(arrived) and not self._check_failing:
                # The check joined began before this request arrived: the next one begins after.
                await self.check()
            trusted = self._confirmed_since(arrived)
        if trusted:
            cached = self._entries.get(pid)
            if cached is not None:
                return cached
            if self._pids is not None and pid not in self._pids:
                return None
        generation = self._generation
        admission = await self._load(pid)
        if not self.enabled or generation != self._generation:
            return admission
        if admission is None:
            if not self._pids_read:
                await self._read_pids()
        else:
            if len(self._entries) >= MAX_ENTRIES:
                self._entries.clear()
            self._entries[pid] = admission
        return admission

    def _answers(self, pid: int) -> bool:
        """Whether the copy has an answer for ``pid``: its merchant, or that no merchant has it."""
        return pid in self._entries or (self._pids is not None and pid not in self._pids)

    def forget(self, pid: int | None = None) -> None:
        """Drop one merchant (a change made by this process: one created is no longer unknown), or every one."""
        self._generation += 1
        self._pids = None
        self._pids_read = False
        if pid is None:
            self._entries.clear()
        else:
            self._entries.pop(pid, None)

    async def _read_pids(self) -> None:
        """Read every merchant number, or wait for the read under way: a burst of unknown numbers
        after a drop reads them once."""
        if self._reading_pids is None or self._reading_pids.done():
            self._reading_pids = asyncio.ensure_future(self._read_pids_once())
        await asyncio.shield(self._reading_pids)

    async def _read_pids_once(self) -> None:
        generation = self._generation
        rows = await self.db.rows(select(Merchant.pid).limit(MAX_PIDS + 1))
        if generation == self._generation:
            self._pids = frozenset(pid for (pid,) in rows) if len(rows) <= MAX_PIDS else None
            self._pids_read = True

    async def check(self) -> None:
        """Read the version token, or wait for the read under way (``run``'s or a request's): drop
        everything if it changed since the last check."""
        # A finished check whose done-callback has not run yet is not one to wait for: a request that
        # never yields to the loop (every read a synchronous SQLite one) would otherwise join it again
        # and again and get its stale confirmation.
        if self._checking is None or self._checking.done():
            self._checking = asyncio.ensure_future(self._check())
            self._checking.add_done_callback(self._checked)
        # Shielded: a request cancelled while it waits does not cancel the check the others wait for.
        await asyncio.shield(self._checking)

    def _checked(self, done: asyncio.Future[None]) -> None:
        if self._checking is done:
            self._checking = None

    async def _check(self) -> None:
        started = self._clock()
        try:
            row = await self.db.one(_TOKEN, {"name": "merchants"})
            token = None if row is None else row["token"]
        except Exception as exc:
            if not self._check_failing:
                log.warning("cannot check the merchants' version (%s); reading merchants from the database", exc)
            self._check_failing = True
            return
        if self._check_failing:
            log.warning("the merchants' version can be checked again; merchants are kept in memory again")
        self._check_failing = False
        if token != self._token or self._confirmed_at is None:
            self.forget()
            self._token = token
        self._confirmed_at = started

    async def run(self, stop: asyncio.Event) -> None:
        """Check every ``check_interval`` seconds until ``stop``; a disabled cache never checks."""
        if not self.enabled:
            return
        while not stop.is_set():
            await self.check()
            try:
                await asyncio.wait_for(stop.wait(), self.check_interval)
            except TimeoutError:
                pass

"""Merchant accounts: creation, keys, lookups.

A merchant's epay key is shown once when created or rotated; at rest it is sealed with the
gateway's secret key (see ``openepay.secretbox``). Requests read merchants through this
process's copy (``openepay.core.merchant_cache``): every change made here goes through
``_changed``, which drops this process's copy of the merchant at once; other processes drop
theirs when the database's triggers change the merchants' version token.
"""

from __future__ import annotations

import re
import secrets
import string
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from sqlalchemy import bindparam, func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from openepay.core.merchant_cache import Admission, MerchantCache
from openepay.core.states import MerchantStatus
from openepay.db import Database
from openepay.db.models import Merchant
from openepay.secretbox import SecretBox

FIRST_PID = 1000
# The largest pid a merchant can have: the column is a 32-bit integer, as Rainbow's ``uid`` is.
MAX_PID = 2**31 - 1
_KEY_ALPHABET = string.ascii_letters + string.digits
KEY_LENGTH = 32
# Keys an operator brings (a shop's key from Rainbow, which makes 32 letters and digits): letters
# and digits only, so every plugin's field and every signature string takes them unchanged, and
# long and varied enough that nobody guesses them.
MIN_KEY_LENGTH = 16
MAX_KEY_LENGTH = 64
MIN_DISTINCT_CHARACTERS = 8
_KEY_SHAPE = re.compile(r"[A-Za-z0-9]+")


# Built once: a merchant read for a request is one statement with its pid as the parameter.
_BY_PID = select(Merchant.__table__).where(Merchant.pid == bindparam("pid"))


class MerchantNotFound(LookupError):
    pass


class MerchantRefused(ValueError):
    """A pid or key an operator chose that cannot be used; the message says why."""


class _PidTaken(Exception):
    """The pid chosen for a new merchant was taken by another transaction in the meantime."""


# Rows written in a new merchant's transaction (its first sign-in, the audit entry), given its pid.
Along = Callable[[AsyncSession, int], Awaitable[None]]


def key_problem(key: str) -> str | None:
    """Why ``key`` cannot be a merchant key, or None when it can.

    Every key Rainbow Epay made passes (32 letters and digits); what is refused is what a
    person types: short keys, keys with punctuation a plugin would mangle, ``aaaa...``-style keys.
    """
    if not _KEY_SHAPE.fullmatch(key):
        return "a key is letters and digits only (A-Z, a-z, 0-9), like the 32-character keys Rainbow makes"
    if not MIN_KEY_LENGTH <= len(key) <= MAX_KEY_LENGTH:
        return f"a key is {MIN_KEY_LENGTH} to {MAX_KEY_LENGTH} characters long (this one has {len(key)})"
    if len(set(key)) < MIN_DISTINCT_CHARACTERS or key.isdigit():
        return "this key is too easy to guess: use the shop's random key, or omit --key to have one made"
    return None


def pid_problem(pid: int) -> str | None:
    """Why ``pid`` cannot be a merchant's number (taken or not, which only the database knows)."""
    if not 1 <= pid <= MAX_PID:
        return f"a pid is a whole number from 1 to {MAX_PID}"
    return None


@dataclass(frozen=True)
class MerchantCredentials:
    pid: int
    key: str


def new_key() -> str:
    """32 letters and digits, like Rainbow's keys, so every merchant plugin's field accepts it."""
    return "".join(secrets.choice(_KEY_ALPHABET) for _ in range(KEY_LENGTH))


def _key_context(pid: int) -> str:
    return f"merchant-key:{pid}"


class Merchants:
    """Merchant operations that need the secret box to seal and open keys."""

    def __init__(
        self, db: Database, box: SecretBox, *, cache_check_interval: float = 0.0, cache_trust_seconds: float = 1.0
    ) -> None:
        self.db = db
        self.box = box
        self.cache = MerchantCache(
            db, self._admission_from_db, check_interval=cache_check_interval, trust_seconds=cache_trust_seconds
        )

    def key_of(self, merchant: Merchant) -> str:
        return self.open_key(merchant.pid, merchant.key_sealed)

    def open_key(self, pid: int, sealed: str) -> str:
        """A merchant's key from its sealed form (for readers that have the column, not the row)."""
        return self.box.open(sealed, _key_context(pid))

    async def admission(self, pid: int) -> Admission | None:
        """The merchant ``pid`` and its key, for letting a request in (from this process's copy when it is fresh)."""
        return await self.cache.get(pid)

    async def _admission_from_db(self, pid: int) -> Admission | None:
        row = await self.db.one(_BY_PID, {"pid": pid})
        if row is None:
            return None
        merchant = Merchant(**row)
        return Admission(merchant, self.key_of(merchant))

    def _changed(self, pid: int) -> None:
        """The one place every change to a merchant passes: this process stops using its copy at once.

        Other processes learn of the change from the merchants' version token, which the
        database's triggers write in the same transaction as the change.
        """
        self.cache.forget(pid)

    async def create(
        self,
        name: str,
        *,
        refund_enabled: bool = False,
        pid: int | None = None,
        key: str | None = None,
        along: Along | None = None,
        **values: object,
    ) -> MerchantCredentials:
        """A new merchant; ``pid`` and ``key`` keep a shop's numbers from another gateway.

        Raises ``MerchantRefused`` for a pid or key that cannot be used, or a pid already taken.
        ``values`` are further settings (status, RSA key), as ``update`` takes them. ``along`` adds
        rows that must exist with the merchant or not at all: they commit in its transaction, and
        an ``IntegrityError`` they meet reaches the caller with nothing made.
        """
        if pid is not None and (problem := pid_problem(pid)):
            raise MerchantRefused(problem)
        if key is not None and (problem := key_problem(key)):
            raise MerchantRefused(problem)
        key = key if key is not None else new_key()
        values.setdefault("status", MerchantStatus.ACTIVE)
        for _ in range(5):
            try:
                async with self.db.session() as session:
                    chosen = pid if pid is not None else await _next_pid(session)
                    session.add(
                        Merchant(
                            pid=chosen,
                            name=name,
                            key_sealed=self.box.seal(key, _key_context(chosen)),
                            refund_enabled=refund_enabled,
                            balance_fen=0,
                            **values,
                        )
                    )
                    try:
                        await session.flush()
                    except IntegrityError as taken:
                        raise _PidTaken from taken
                    if along is not None:
                        await along(session, chosen)
            except _PidTaken:
                if pid is not None:
                    raise MerchantRefused(f"pid {pid} is taken by another merchant") from None
                continue
            self._changed(chosen)
            return MerchantCredentials(chosen, key)
        raise RuntimeError("could not allocate a merchant pid")

    async def rotate_key(self, pid: int) -> MerchantCredentials:
        """A new random key for the merchant; running gateways refuse the old one within a second."""
        return await self.set_key(pid, new_key())

    async def set_key(self, pid: int, key: str) -> MerchantCredentials:
        """Give the merchant ``key``: every change of a merchant's key goes through here."""
        if problem := key_problem(key):
            raise MerchantRefused(problem)
        async with self.db.session() as session:
            result = await session.execute(
                update(Merchant).where(Merchant.pid == pid).values(key_sealed=self.box.seal(key, _key_context(pid)))
            )
            if result.rowcount == 0:
                raise MerchantNotFound(pid)
        self._changed(pid)
        return MerchantCredentials(pid, key)

    async def set_status(self, pid: int, status: MerchantStatus) -> None:
        await self.update(pid, status=status)

    async def update(self, pid: int, **values: object) -> None:
        """Change settings that are not secrets (status, refund permission, retry schedule)."""
        async with self.db.session() as session:
            result = await session.execute(update(Merchant).where(Merchant.pid == pid).values(**values))
            if result.rowcount == 0:
                raise MerchantNotFound(pid)
        self._changed(pid)

    async def get(self, pid: int) -> Merchant:
        async with self.db.session() as session:
            merchant = await session.get(Merchant, pid)
        if merchant is None:
            raise MerchantNotFound(pid)
        return merchant

    async def list(self) -> list[Merchant]:
        async with self.db.reading() as session:
            return list((await session.scalars(select(Merchant).order_by(Merchant.pid))).all())


async def _next_pid(session: AsyncSession) -> int:
    highest = await session.scalar(select(func.max(Merchant.pid)))
    return FIRST_PID if highest is None else highest + 1

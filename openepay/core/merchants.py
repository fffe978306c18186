"""Merchant accounts: creation, keys, lookups.

A merchant's epay key is shown once when created or rotated; at rest it is sealed with the
gateway's secret key (see ``openepay.secretbox``). Requests read merchants through this
process's copy (``openepay.core.merchant_cache``): every change made here goes through
``_changed``, which drops this process's copy of the merchant at once; other processes drop
theirs when the database's triggers change the merchants' version token.
"""

from __future__ import annotations

import secrets
import string
from dataclasses import dataclass

from sqlalchemy import func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from openepay.core.merchant_cache import Admission, MerchantCache
from openepay.core.states import MerchantStatus
from openepay.db import Database
from openepay.db.models import Merchant
from openepay.secretbox import SecretBox

FIRST_PID = 1000
_KEY_ALPHABET = string.ascii_letters + string.digits
KEY_LENGTH = 32


class MerchantNotFound(LookupError):
    pass


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
        return self.box.open(merchant.key_sealed, _key_context(merchant.pid))

    async def admission(self, pid: int) -> Admission | None:
        """The merchant ``pid`` and its key, for letting a request in (from this process's copy when it is fresh)."""
        return await self.cache.get(pid)

    async def _admission_from_db(self, pid: int) -> Admission | None:
        async with self.db.engine.connect() as conn:
            row = (await conn.execute(select(Merchant.__table__).where(Merchant.pid == pid))).first()
        if row is None:
            return None
        merchant = Merchant(**row._mapping)
        return Admission(merchant, self.key_of(merchant))

    def _changed(self, pid: int) -> None:
        """The one place every change to a merchant passes: this process stops using its copy at once.

        Other processes learn of the change from the merchants' version token, which the
        database's triggers write in the same transaction as the change.
        """
        self.cache.forget(pid)

    async def create(self, name: str, *, refund_enabled: bool = False, pid: int | None = None) -> MerchantCredentials:
        key = new_key()
        for _ in range(5):
            try:
                async with self.db.session() as session:
                    chosen = pid if pid is not None else await _next_pid(session)
                    session.add(
                        Merchant(
                            pid=chosen,
                            name=name,
                            key_sealed=self.box.seal(key, _key_context(chosen)),
                            status=MerchantStatus.ACTIVE,
                            refund_enabled=refund_enabled,
                            balance_fen=0,
                        )
                    )
            except IntegrityError:
                if pid is not None:
                    raise
                continue
            self._changed(chosen)
            return MerchantCredentials(chosen, key)
        raise RuntimeError("could not allocate a merchant pid")

    async def rotate_key(self, pid: int) -> MerchantCredentials:
        key = new_key()
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
        async with self.db.session() as session:
            return list((await session.scalars(select(Merchant).order_by(Merchant.pid))).all())


async def _next_pid(session: AsyncSession) -> int:
    highest = await session.scalar(select(func.max(Merchant.pid)))
    return FIRST_PID if highest is None else highest + 1

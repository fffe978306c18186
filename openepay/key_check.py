"""Proving ``OPENEPAY_SECRET_KEY`` against the database before a process seals or answers anything.

A database remembers one key check (``key_checks``): a known text sealed with the key it was
created with. Every process that opens the gateway must open that check first; a wrong key
stops the process with one clear line instead of starting a gateway that answers every order
with 系统繁忙 and seals new secrets (a platform key, a rotated merchant key) that the right key
can never open again.

Databases from before the check existed hold sealed values but no check: the key is proven
against what is there (a merchant key, the platform key, a phone's key) and the check is
recorded then. A database with nothing sealed is new, and the first key to open it claims it;
processes racing to claim it agree on whichever check the database kept.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sqlalchemy import Select, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from openepay.db import Database
from openepay.db.models import KeyCheck
from openepay.db.types import utcnow
from openepay.secretbox import SecretBox, SecretBoxError

NAME = "secret_key"


class WrongSecretKey(RuntimeError):
    """``OPENEPAY_SECRET_KEY`` is not the key this database was written with."""


async def prove(db: Database, box: SecretBox) -> None:
    """Open the database's key check with ``box`` (recording one if there is none yet); raise ``WrongSecretKey``."""
    sealed = await _stored_check(db)
    if sealed is None:
        legacy = await _any_sealed_value(db)
        if legacy is not None:
            _open_or_refuse(box, *legacy)
        await _record(db, box.new_check())
        sealed = await _stored_check(db)
        assert sealed is not None
    _open_or_refuse(box, sealed)


async def holds_secrets(db: Database) -> bool:
    """Whether anything in the database was sealed with some key (a new database holds nothing)."""
    return await _stored_check(db) is not None or await _any_sealed_value(db) is not None


def _open_or_refuse(box: SecretBox, sealed: str, *context: str) -> None:
    try:
        box.prove(sealed, *context)
    except SecretBoxError:
        raise WrongSecretKey(
            "OPENEPAY_SECRET_KEY is not the key this database was written with: nothing was changed. "
            "Start again with the right key (or OPENEPAY_SECRET_KEY_FILE pointing at the right file)."
        ) from None


async def _stored_check(db: Database) -> str | None:
    async with db.session() as session:
        return await session.scalar(select(KeyCheck.sealed).where(KeyCheck.name == NAME))


async def _record(db: Database, sealed: str) -> None:
    insert = pg_insert if db.dialect == "postgresql" else sqlite_insert
    async with db.session() as session:
        await session.execute(
            insert(KeyCheck)
            .values(name=NAME, sealed=sealed, created_at=utcnow())
            .on_conflict_do_nothing(index_elements=["name"])
        )


async def _any_sealed_value(db: Database) -> tuple[str, str] | None:
    """One value sealed before key checks existed, and its context; None if nothing was ever sealed."""
    for query, context in _sealed_columns():
        async with db.session() as session:
            row = (await session.execute(query.limit(1))).first()
        if row is not None:
            return row[0], context(row[1])
    return None


def _sealed_columns() -> tuple[tuple[Select, Callable[[Any], str]], ...]:
    """Every column holding sealed values, with the context each row was sealed under."""
    from openepay.channels.qrpool.accounts import _device_key_context
    from openepay.core.merchants import _key_context
    from openepay.db.models import Merchant, PlatformKey, QrDevice
    from openepay.protocols.epay_v2 import platform_key

    return (
        (select(Merchant.key_sealed, Merchant.pid).order_by(Merchant.pid), _key_context),
        (
            select(PlatformKey.private_sealed, PlatformKey.name).where(PlatformKey.name == platform_key.NAME),
            lambda _: platform_key.SEAL_CONTEXT,
        ),
        (select(QrDevice.key_sealed, QrDevice.id).order_by(QrDevice.id), _device_key_context),
    )

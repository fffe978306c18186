"""Refusing a request seen before inside its replay window.

Signed requests with a timestamp (epay V2, monitor devices) are valid for a few minutes; a
captured one could be sent again within them. Each is remembered for the window by a nonce
(its signature, or an event key), under a UNIQUE key, so the second copy is recognised even
when two arrive at the same moment on different processes.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import delete
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from openepay.db import Database
from openepay.db.models import RequestNonce
from openepay.db.types import utcnow


async def first_sighting(db: Database, scope: str, nonce: str, window: timedelta) -> bool:
    """True the first time ``(scope, nonce)`` is seen within ``window``, False for a replay."""
    insert = pg_insert if db.dialect == "postgresql" else sqlite_insert
    now = utcnow()
    async with db.session() as session:
        await session.execute(
            delete(RequestNonce).where(
                RequestNonce.scope == scope, RequestNonce.nonce == nonce, RequestNonce.expires_at <= now
            )
        )
        result = await session.execute(
            insert(RequestNonce)
            .values(scope=scope, nonce=nonce[:128], expires_at=now + window)
            .on_conflict_do_nothing(index_elements=["scope", "nonce"])
        )
        return bool(result.rowcount)


async def forget_expired(db: Database, now: datetime | None = None) -> int:
    async with db.session() as session:
        result = await session.execute(delete(RequestNonce).where(RequestNonce.expires_at <= (now or utcnow())))
        return result.rowcount or 0

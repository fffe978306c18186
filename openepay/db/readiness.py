"""Whether the database can serve requests now: it answers, it takes a write, and its disk has room.

A database that still answers reads but refuses writes (a full disk, a read-only file, a
PostgreSQL standby or one set read-only) fails every order while ``SELECT 1`` succeeds; so
the probe writes too. It rewrites one row in place, so probing never grows a table.
"""

from __future__ import annotations

import asyncio
import logging
import shutil

from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from openepay.db.engine import Database
from openepay.db.models import HealthProbe
from openepay.db.types import utcnow
from openepay.db.urls import sqlite_file

log = logging.getLogger(__name__)
PROBE = "readyz"


async def unready_reason(db: Database, *, min_free_bytes: int, timeout: float = 1.0) -> str | None:
    """None when the database can serve requests; otherwise what is wrong, in a few words."""
    try:
        async with asyncio.timeout(timeout):
            await db.ping()
    except Exception as exc:
        log.warning("not ready: database unreachable", exc_info=exc)
        return "unreachable"
    path = sqlite_file(db.url)
    if path is not None:
        free = shutil.disk_usage(path.parent).free
        if free < min_free_bytes:
            log.warning("not ready: %d bytes free beside %s, below OPENEPAY_READY_MIN_FREE_MB", free, path)
            return "disk full"
    try:
        async with asyncio.timeout(timeout):
            await _write_probe(db)
    except Exception as exc:
        log.warning("not ready: the database refuses writes", exc_info=exc)
        return "not writable"
    return None


async def _write_probe(db: Database) -> None:
    insert = pg_insert if db.dialect == "postgresql" else sqlite_insert
    statement = insert(HealthProbe).values(name=PROBE, probed_at=utcnow())
    async with db.session() as session:
        await session.execute(
            statement.on_conflict_do_update(index_elements=["name"], set_={"probed_at": statement.excluded.probed_at})
        )

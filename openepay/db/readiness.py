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
    """None when the database can serve requests; otherwise what is wrong, in a few words.

    Answers within ``timeout`` even when the database hangs: a probe stuck behind a lock (and
    its clean-up, which waits for the same lock) is left to finish in the background.
    """
    stage = ["unreachable"]
    probe = asyncio.ensure_future(_probe(db, min_free_bytes, stage))
    done, _ = await asyncio.wait({probe}, timeout=timeout)
    if not done:
        probe.cancel()
        probe.add_done_callback(_forget)
        log.warning("not ready: database %s", stage[0], exc_info=TimeoutError(f"no answer within {timeout:g} s"))
        return stage[0]
    try:
        return probe.result()
    except Exception as exc:
        log.warning("not ready: database %s", stage[0], exc_info=exc)
        return stage[0]


async def _probe(db: Database, min_free_bytes: int, stage: list[str]) -> str | None:
    await db.ping()
    path = sqlite_file(db.url)
    if path is not None:
        free = shutil.disk_usage(path.parent).free
        if free < min_free_bytes:
            log.warning("not ready: %d bytes free beside %s, below OPENEPAY_READY_MIN_FREE_MB", free, path)
            return "disk full"
    stage[0] = "not writable"
    await _write_probe(db)
    return None


def _forget(probe: asyncio.Future[str | None]) -> None:
    """Collect a probe given up on, so its late error is not reported as never retrieved."""
    if not probe.cancelled():
        probe.exception()


async def _write_probe(db: Database) -> None:
    insert = pg_insert if db.dialect == "postgresql" else sqlite_insert
    statement = insert(HealthProbe).values(name=PROBE, probed_at=utcnow())
    async with db.session() as session:
        await session.execute(
            statement.on_conflict_do_update(index_elements=["name"], set_={"probed_at": statement.excluded.probed_at})
        )

"""``/readyz`` says "not ready" when the database cannot take a write, not only when it cannot be read.

A database that answers ``SELECT 1`` but refuses writes fails every order; a load balancer
must take such a gateway out of rotation. The probe rewrites one row, so probing never grows
a table. ``/healthz`` says only that the process answers, to ``GET`` and ``HEAD`` alike.
"""

from __future__ import annotations

import asyncio
import sqlite3

import asyncpg
import httpx
from sqlalchemy import func, select

from openepay.db import migrate
from openepay.db.models import HealthProbe
from openepay.gateway import Gateway
from tests.support.disk import fill, small_disk
from tests.support.gateways import own_server
from tests.support.postgres import PG_DSN, pg_url
from tests.support.settings import make_settings


async def readiness(url: str) -> tuple[int, dict[str, str]]:
    async with httpx.AsyncClient(base_url=url, timeout=10) as client:
        answer = await client.get("/readyz")
    return answer.status_code, answer.json()


async def test_readyz_writes_one_row_and_never_grows_a_table(server, gateway):
    for _ in range(5):
        assert await readiness(server.url) == (200, {"status": "ready", "database": "ok"})
    async with gateway.db.session() as session:
        assert await session.scalar(select(func.count()).select_from(HealthProbe)) == 1


async def test_healthz_answers_get_and_head_and_names_the_process(server):
    """Load balancers probe with either; a ``HEAD`` gets the same status and headers, no body."""
    async with httpx.AsyncClient(base_url=server.url, timeout=10) as client:
        got = await client.get("/healthz")
        head = await client.head("/healthz")
    assert (got.status_code, got.json()["status"]) == (200, "ok")
    assert isinstance(got.json()["pid"], int)
    assert (head.status_code, head.content) == (200, b"")
    assert head.headers["content-type"] == got.headers["content-type"] == "application/json"


async def test_a_read_only_postgresql_is_not_ready(pg_database):
    """As a standby, or a primary set read-only to stop a runaway disk, answers: reads work, writes fail."""
    gateway = await Gateway.open(make_settings(pg_url(pg_database)))
    await gateway.aclose()
    admin = await asyncpg.connect(PG_DSN)
    try:
        await admin.execute(f'ALTER DATABASE "{pg_database}" SET default_transaction_read_only = on')
    finally:
        await admin.close()
    with own_server(pg_url(pg_database)) as running:
        assert await readiness(running.url) == (503, {"status": "unavailable", "database": "not writable"})
        async with httpx.AsyncClient(base_url=running.url) as client:
            assert (await client.get("/healthz")).status_code == 200


async def test_sqlite_held_by_another_writer_is_not_ready_until_it_lets_go(tmp_path):
    """An operator's ``sqlite3`` shell (or a backup) holding the write lock stops every payment."""
    url = f"sqlite+aiosqlite:///{tmp_path / 'openepay.db'}"
    await asyncio.to_thread(migrate.upgrade, url)
    with own_server(url) as running:
        assert (await readiness(running.url))[0] == 200
        shell = sqlite3.connect(tmp_path / "openepay.db", isolation_level=None)
        try:
            shell.execute("BEGIN IMMEDIATE")
            assert await readiness(running.url) == (503, {"status": "unavailable", "database": "not writable"})
        finally:
            shell.execute("ROLLBACK")
            shell.close()
        assert (await readiness(running.url))[0] == 200


async def test_sqlite_on_a_full_disk_is_not_ready_until_space_is_freed(tmp_path):
    with small_disk(tmp_path / "disk") as disk:
        url = f"sqlite+aiosqlite:///{disk / 'openepay.db'}"
        await asyncio.to_thread(migrate.upgrade, url)
        with own_server(url, ready_min_free_mb=4) as running:
            assert (await readiness(running.url))[0] == 200
            filler = await asyncio.to_thread(fill, disk)
            assert await readiness(running.url) == (503, {"status": "unavailable", "database": "disk full"})
            filler.unlink()
            assert (await readiness(running.url))[0] == 200

"""Throwaway databases for the benchmarks: a temporary SQLite file, or a PostgreSQL database
(127.0.0.1:5432, user ``postgres``, trust auth) created for the run and dropped after it."""

from __future__ import annotations

import secrets
import tempfile
from contextlib import AsyncExitStack

PG_ADMIN = "postgresql://postgres@127.0.0.1:5432/postgres"
PG_URL = "postgresql+asyncpg://postgres@127.0.0.1:5432/{name}"
# The same server through its Unix-domain socket in ``{socket}`` (``SHOW unix_socket_directories``).
PG_SOCKET_URL = "postgresql+asyncpg://postgres@/{name}?host={socket}"


async def pg_database(action: str, name: str) -> None:
    """``create`` or drop the database ``name``; drop disconnects whoever is still on it."""
    import asyncpg

    conn = await asyncpg.connect(PG_ADMIN)
    try:
        if action == "create":
            await conn.execute(f'CREATE DATABASE "{name}"')
        else:
            await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await conn.close()


async def fresh_database(stack: AsyncExitStack, backend: str, pg_socket: str | None = None) -> str:
    """The URL of an empty database for ``backend`` ("sqlite" or "postgresql"), gone when ``stack`` closes;
    with ``pg_socket``, PostgreSQL's URL reaches it through its Unix-domain socket in that directory."""
    if backend == "sqlite":
        tmp = stack.enter_context(tempfile.TemporaryDirectory(prefix="openepay-bench-"))
        return f"sqlite+aiosqlite:///{tmp}/bench.db"
    name = f"openepay_bench_{secrets.token_hex(4)}"
    await pg_database("create", name)
    stack.push_async_callback(pg_database, "drop", name)
    return PG_URL.format(name=name) if pg_socket is None else PG_SOCKET_URL.format(name=name, socket=pg_socket)

"""Throwaway PostgreSQL databases for the benchmarks (127.0.0.1:5432, user ``postgres``, trust auth)."""

from __future__ import annotations

PG_ADMIN = "postgresql://postgres@127.0.0.1:5432/postgres"


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

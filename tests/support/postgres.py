"""The test PostgreSQL server: where it is, and databases of a test's own on it.

Every database a test creates gets a name no other run can hold, so two runs against one server
(two developers, two CI jobs) never drop each other's databases.
"""

from __future__ import annotations

import os
import secrets

import asyncpg

PG_DSN = os.environ.get("OPENEPAY_TEST_PG", "postgresql://postgres@127.0.0.1:5432/postgres")


def unique_name(purpose: str) -> str:
    """A database name of this run's own, e.g. ``openepay_fault_3f9a0c1d2e4b``."""
    return f"openepay_{purpose}_{secrets.token_hex(6)}"


def pg_url(name: str) -> str:
    """The SQLAlchemy URL of database ``name`` on the test server."""
    base = PG_DSN.rsplit("/", 1)[0].replace("postgresql://", "postgresql+asyncpg://", 1)
    return f"{base}/{name}"


async def create_database(name: str) -> None:
    conn = await asyncpg.connect(PG_DSN)
    try:
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()


async def drop_database(name: str) -> None:
    conn = await asyncpg.connect(PG_DSN)
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await conn.close()

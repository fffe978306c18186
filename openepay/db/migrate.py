"""Apply and inspect Alembic migrations from code (``openepay migrate`` and start-up).

Every command checks the schema before it opens the gateway, and almost always there is
nothing to do: so the check reads ``alembic_version`` with one query and takes the newest
revision from the migration files' text. Alembic itself (a few hundred milliseconds of
imports) is loaded only to migrate.
"""

from __future__ import annotations

import asyncio
import logging
import re
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import text

from openepay.db.engine import build_engine

if TYPE_CHECKING:
    from alembic.config import Config
    from sqlalchemy.ext.asyncio import AsyncConnection

MIGRATIONS = Path(__file__).parent / "migrations"
_ASSIGNMENT = re.compile(r"""^(revision|down_revision)\s*(?::[^=\n]*)?=\s*["']([^"']+)["']""", re.MULTILINE)


class UnknownRevision(RuntimeError):
    """The database was migrated by a newer (or different) version of OpenEpay."""


def alembic_config(database_url: str) -> Config:
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.set_main_option("sqlalchemy.url", database_url.replace("%", "%%"))
    return config


def upgrade(database_url: str) -> None:
    """Bring the schema to the newest revision, quietly, then refresh the planner's statistics.
    Call from synchronous code only."""
    quiet = logging.getLogger("alembic")
    level = quiet.level
    quiet.setLevel(logging.WARNING)
    try:
        from alembic import command

        command.upgrade(alembic_config(database_url), "head")
    finally:
        quiet.setLevel(level)
    asyncio.run(analyze(database_url))


async def analyze(database_url: str) -> None:
    """``ANALYZE``: the planner's statistics, after migrations and bulk loads.

    Without them PostgreSQL plans a freshly created or freshly filled table as if it held a
    few rows until autovacuum gets to it, and SQLite never has any. SQLite's is sampled
    (``analysis_limit``), so it stays quick on a large file.
    """
    engine = build_engine(database_url)
    try:
        async with engine.connect() as conn:
            if conn.dialect.name == "sqlite":
                await conn.exec_driver_sql("PRAGMA analysis_limit=1000")
            await conn.exec_driver_sql("ANALYZE")
            await conn.commit()
    finally:
        await engine.dispose()


@cache
def _revisions() -> tuple[str | None, frozenset[str]]:
    """The newest revision and every known one, read from the migration files' text."""
    revisions: set[str] = set()
    parents: set[str] = set()
    for path in (MIGRATIONS / "versions").glob("*.py"):
        found = dict(_ASSIGNMENT.findall(path.read_text()))
        if "revision" in found:
            revisions.add(found["revision"])
        if "down_revision" in found:
            parents.add(found["down_revision"])
    heads = revisions - parents
    if len(heads) == 1:
        return heads.pop(), frozenset(revisions)
    # A merge or an unusual file: ask Alembic, which reads the files properly.
    from alembic.script import ScriptDirectory

    script = ScriptDirectory.from_config(alembic_config("sqlite://"))
    return script.get_current_head(), frozenset(rev.revision for rev in script.walk_revisions())


def head_revision() -> str | None:
    return _revisions()[0]


def is_known(revision: str) -> bool:
    return revision in _revisions()[1]


async def stored_revision(conn: AsyncConnection) -> str | None:
    """The revision the database is at; None for a database without the gateway's tables."""
    if conn.dialect.name == "sqlite":
        query = "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = 'alembic_version'"
    else:
        query = "SELECT count(*) FROM pg_catalog.pg_tables WHERE tablename = 'alembic_version'"
        query += " AND schemaname = ANY (current_schemas(false))"
    if not await conn.scalar(text(query)):
        return None
    return await conn.scalar(text("SELECT version_num FROM alembic_version"))


async def current_revision(database_url: str) -> str | None:
    engine = build_engine(database_url)
    try:
        async with engine.connect() as conn:
            return await stored_revision(conn)
    finally:
        await engine.dispose()

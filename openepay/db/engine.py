"""Engine and session handling for SQLite (embedded default) and PostgreSQL."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import Executable, Row, event, text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine

from openepay.db.urls import check, sqlite_file

AUTOCOMMIT = "AUTOCOMMIT"


def _create_private(path: Path) -> None:
    """An empty database file only this user can read, if there is none yet.

    SQLite gives its ``-wal`` and ``-shm`` files the database file's permissions, so all three
    stay private: they hold every order and the sealed merchant keys.
    """
    try:
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
    except FileExistsError:
        pass


def _configure_sqlite(engine: AsyncEngine, path: Path | None) -> None:
    """WAL for concurrent readers, and ``BEGIN IMMEDIATE`` for every transaction.

    A deferred SQLite transaction that reads and then writes fails at once with
    SQLITE_BUSY if another connection committed in between; taking the write lock up front
    turns that into an ordinary wait (``busy_timeout``), which is what several web requests,
    the worker and a CLI command sharing one file need.
    """

    if path is not None:

        @event.listens_for(engine.sync_engine, "do_connect")
        def _before_connect(*_args) -> None:  # type: ignore[no-untyped-def]
            if not path.exists():
                _create_private(path)

    @event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_connection, _record) -> None:  # type: ignore[no-untyped-def]
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.close()

    @event.listens_for(engine.sync_engine, "begin")
    def _on_begin(conn) -> None:  # type: ignore[no-untyped-def]
        # A lone read (``Database.one``) runs in SQLite's own autocommit and takes no lock.
        if conn.get_execution_options().get("isolation_level") != AUTOCOMMIT:
            conn.exec_driver_sql("BEGIN IMMEDIATE")


def build_engine(database_url: str, **kwargs) -> AsyncEngine:  # type: ignore[no-untyped-def]
    url = check(database_url)
    if url.get_backend_name() == "sqlite":
        # SQLite runs one writer at a time anyway. One connection per process makes requests
        # queue for it on the event loop, instead of each taking its own connection and then
        # sleeping in SQLite's busy handler (naps of up to 100 ms) until the lock frees.
        kwargs.setdefault("pool_size", 1)
        kwargs.setdefault("max_overflow", 0)
        kwargs.setdefault("pool_timeout", 60)
        engine = create_async_engine(url, connect_args={"timeout": 30}, **kwargs)
        _configure_sqlite(engine, sqlite_file(database_url))
        return engine
    kwargs.setdefault("pool_size", 10)
    kwargs.setdefault("max_overflow", 0)
    kwargs.setdefault("pool_timeout", 60)
    # Every statement planned for its own parameters: asyncpg prepares and caches statements,
    # and PostgreSQL would otherwise switch a cached statement to a generic plan after five
    # runs, which for an order lookup made while the table was empty or unanalyzed can be the
    # wrong index for good.
    connect_args = kwargs.pop("connect_args", {})
    server_settings = connect_args.setdefault("server_settings", {})
    server_settings.setdefault("plan_cache_mode", "force_custom_plan")
    # No pre-ping: it costs a round trip on every checkout. When the server restarts, the
    # first statement on a dead connection fails, SQLAlchemy invalidates the whole pool, and
    # the unit of work that failed is retried by its caller (the worker's next cycle, the
    # merchant's next request).
    return create_async_engine(url, connect_args=connect_args, **kwargs)


class Database:
    """One engine and its session factory; ``async with db.session() as s`` is one transaction."""

    def __init__(self, database_url: str, **engine_kwargs) -> None:  # type: ignore[no-untyped-def]
        self.url = database_url
        self.engine = build_engine(database_url, **engine_kwargs)
        self._sessions = async_sessionmaker(self.engine, expire_on_commit=False)
        self._autocommit = self.engine.execution_options(isolation_level=AUTOCOMMIT)

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    @asynccontextmanager
    async def session(self) -> AsyncIterator[AsyncSession]:
        async with self._sessions() as session, session.begin():
            yield session

    async def one(self, statement: Executable, params: dict[str, Any] | None = None) -> Row | None:
        """The first row of one Core statement that is a transaction on its own (the hot paths: no
        session, no unit of work). On PostgreSQL it runs without ``BEGIN``/``COMMIT`` round trips;
        on SQLite a read takes no lock and a write takes the write lock like any transaction."""
        engine = self._autocommit if self.dialect != "sqlite" or statement.is_select else self.engine
        async with engine.begin() as conn:
            return (await conn.execute(statement, params)).first()

    async def rows(self, statement: Executable, params: dict[str, Any] | None = None) -> list[Row]:
        """Every row of one Core read outside any transaction (no ``BEGIN``/``COMMIT`` round trips, and
        on SQLite no lock), for readers that act on a snapshot they re-check when they write."""
        async with self._autocommit.connect() as conn:
            return list((await conn.execute(statement, params)).all())

    async def ping(self) -> None:
        """One round trip that reads. On SQLite it takes no lock, so a writer holding the lock does not
        make the database look unreachable (every transaction here begins with ``BEGIN IMMEDIATE``)."""
        async with self.engine.connect() as conn:
            if self.dialect != "sqlite":
                await conn.execute(text("SELECT 1"))
                return
            raw = await conn.get_raw_connection()
            cursor = await raw.driver_connection.execute("SELECT count(*) FROM sqlite_master")
            await cursor.close()

    async def read_value(self, query: str, **params: object) -> object:
        """The first column of the first row of one read, outside any transaction: on SQLite it
        takes no lock (every transaction here begins with ``BEGIN IMMEDIATE``)."""
        async with self.engine.connect() as conn:
            if self.dialect != "sqlite":
                return await conn.scalar(text(query), params)
            raw = await conn.get_raw_connection()
            cursor = await raw.driver_connection.execute(query, params)
            try:
                row = await cursor.fetchone()
            finally:
                await cursor.close()
            return row[0] if row is not None else None

    async def dispose(self) -> None:
        await self.engine.dispose()

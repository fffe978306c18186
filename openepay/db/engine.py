"""Engine and session handling for SQLite (embedded default) and PostgreSQL."""

from __future__ import annotations

import asyncio
import os
import sqlite3
import threading
from collections.abc import AsyncIterator, Iterator, Mapping, Sequence
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path
from typing import Any, NamedTuple

from sqlalchemy import Connection, Engine, Executable, Row, create_engine, event, exc, text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine
from sqlalchemy.pool import StaticPool

from openepay import json_text
from openepay.db.direct import Compiled, CompiledStatements, DirectStatements, announce
from openepay.db.sqlite_writes import Checkpoints, WriteTurn
from openepay.db.urls import check, sqlite_file

AUTOCOMMIT = "AUTOCOMMIT"
# How long a write on the ``SqliteLane`` waits between tries while a writer that takes no turn (a
# session, the worker, a CLI command) holds SQLite's lock; past them it waits in aiosqlite's thread.
LANE_RETRY_PAUSES = (0, 0.0005, 0.001, 0.002, 0.004, 0.008, 0.016)
# How long a write that finds the write turn taken waits for it with the event loop stopped,
# blocked in ``flock`` (``WriteTurn.take_within``), before it waits off the loop. The other
# process holds the turn for a write of about 0.1 ms, a checkpoint's last pass for 1 to 3.4 ms.
# Waiting on the loop, the kernel hands the turn over the moment it is free: pauses on a busy
# loop, then a thread's wake-up that the loop only sees when it comes round, let the other
# process's next writer take it first, again and again. Measured with ``bench/run_all.py``
# (``--workers 2``, SQLite, -c16): create p99 17-18 ms that way, 8.5 ms this way, at the same rate.
TURN_WAIT_ON_LOOP = 0.005
# PostgreSQL connections of each ``Database`` for its lone statements (``DirectStatements.first``: a create's
# insert, a lookup), besides the engine's pool; opened as needed. Each holds one short statement at a
# time, so a few keep up with many requests: more would only add PostgreSQL backends competing for
# the same cores.
DIRECT_CONNECTIONS = 4


def _create_private(path: Path) -> None:
    """An empty database file only this user can read, if there is none yet.

    SQLite gives its ``-wal`` and ``-shm`` files the database file's permissions, so all three
    stay private: they hold every order and the sealed merchant keys.
    """
    try:
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
    except FileExistsError:
        pass


def _configure_sqlite(
    engine: Engine,
    path: Path | None,
    *,
    busy_timeout_ms: int = 30000,
    begin: str | None = "BEGIN IMMEDIATE",
    autocheckpoint: bool = True,
    query_only: bool = False,
) -> None:
    """WAL for concurrent readers, and ``BEGIN IMMEDIATE`` for every transaction.

    ``synchronous=NORMAL`` in WAL mode: a commit is not flushed to the disk by itself, only the
    checkpoints are. A crash of the gateway (the process) loses nothing committed; a power
    failure or an operating-system crash may lose the last commits before the latest checkpoint,
    never the database's consistency. Without ``autocheckpoint`` the connection leaves the WAL's
    checkpoints to someone else (``SqliteLane``: ``sqlite_writes.Checkpoints``).

    A deferred SQLite transaction that reads and then writes fails at once with
    SQLITE_BUSY if another connection committed in between; taking the write lock up front
    turns that into an ordinary wait (``busy_timeout``), which is what several web requests,
    the worker and a CLI command sharing one file need. With no ``begin`` the caller sends its
    own (``SqliteLane``); the reads' engine begins with a plain ``BEGIN``, which takes no lock
    until the first read and never the write lock, on connections that are ``query_only``.
    """

    if path is not None:

        @event.listens_for(engine, "do_connect")
        def _before_connect(*_args) -> None:  # type: ignore[no-untyped-def]
            if not path.exists():
                _create_private(path)

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection, _record) -> None:  # type: ignore[no-untyped-def]
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute(f"PRAGMA busy_timeout={busy_timeout_ms}")
        if not autocheckpoint:
            cursor.execute("PRAGMA wal_autocheckpoint=0")
        if query_only:
            cursor.execute("PRAGMA query_only=ON")
        cursor.close()

    if begin is None:
        return

    @event.listens_for(engine, "begin")
    def _on_begin(conn) -> None:  # type: ignore[no-untyped-def]
        # A lone read (``Database.one``) runs in SQLite's own autocommit and takes no lock.
        if conn.get_execution_options().get("isolation_level") != AUTOCOMMIT:
            conn.exec_driver_sql(begin)


def build_engine(database_url: str, **kwargs) -> AsyncEngine:  # type: ignore[no-untyped-def]
    url = check(database_url)
    # JSON columns get ``json.dumps``' very text, from a C encoder made once (``json_text``).
    kwargs.setdefault("json_serializer", json_text.dumps)
    if url.get_backend_name() == "sqlite":
        # SQLite runs one writer at a time anyway. One connection per process makes requests
        # queue for it on the event loop, instead of each taking its own connection and then
        # sleeping in SQLite's busy handler (naps of up to 100 ms) until the lock frees.
        kwargs.setdefault("pool_size", 1)
        kwargs.setdefault("max_overflow", 0)
        kwargs.setdefault("pool_timeout", 60)
        engine = create_async_engine(url, connect_args={"timeout": 30}, **kwargs)
        _configure_sqlite(engine.sync_engine, sqlite_file(database_url))
        return engine
    kwargs.setdefault("pool_size", 10)
    kwargs.setdefault("max_overflow", 0)
    kwargs.setdefault("pool_timeout", 60)
    connect_args = postgresql_connect_args(kwargs.pop("connect_args", None))
    # No pre-ping: it costs a round trip on every checkout. When the server restarts, the
    # first statement on a dead connection fails, SQLAlchemy invalidates the whole pool, and
    # the unit of work that failed is retried by its caller (the worker's next cycle, the
    # merchant's next request).
    return create_async_engine(url, connect_args=connect_args, **kwargs)


def postgresql_connect_args(given: dict[str, Any] | None) -> dict[str, Any]:
    """asyncpg's connect arguments for every connection to PostgreSQL (the engine's and ``DirectStatements``'):
    ``given`` with each statement planned for its own parameters.

    asyncpg prepares and caches statements, and PostgreSQL would otherwise switch a cached
    statement to a generic plan after five runs, which for an order lookup made while the table
    was empty or unanalyzed can be the wrong index for good.
    """
    connect_args = dict(given or {})
    server_settings = connect_args["server_settings"] = dict(connect_args.get("server_settings", {}))
    server_settings.setdefault("plan_cache_mode", "force_custom_plan")
    return connect_args


class _LaneWrite(NamedTuple):
    """A write for the ``SqliteLane``: compiled for the driver (None: sent through the engine), with
    the driver's arguments."""

    statement: Executable
    params: dict[str, Any]
    compiled: Compiled | None
    args: list[Any]


class SqliteLane:
    """One-statement transactions run on the event loop's own thread, for an SQLite file.

    aiosqlite runs every call (cursor, execute, fetch, close, commit, the pool's reset) in its
    own thread, one handoff each, and each handoff waits for the event loop to let go of the
    GIL: up to 5 ms while it is busy with other requests. A create took about nine handoffs,
    with SQLite's write lock held across most of them, so the other web process slept in
    SQLite's busy handler meanwhile. A point read or a one-row write takes SQLite tens of
    microseconds, so the hot paths run it here, synchronously, on a connection of their own.

    Nothing here ever waits for a lock on the event loop: a write takes its ``turn`` first
    (``sqlite_writes.WriteTurn``, shared by the lane writers of every process; one that finds
    it taken tries again briefly, then is woken, off the loop, when it is free), and the
    connection's busy timeout is
    zero, so a write that still finds SQLite's lock taken (by a writer that takes no turn) gets
    ``None`` back at once, having done nothing; ``write`` tries again a few times, and
    ``Database.one`` then goes the usual way (aiosqlite's thread, which waits). Reads never
    wait in WAL mode. The connection never checkpoints the WAL itself
    (``sqlite_writes.Checkpoints`` does, in a thread). Statements are sent through a SQLAlchemy
    engine, so types, events and errors are the same as on the main engine.
    """

    def __init__(self, path: Path) -> None:
        self.engine = create_engine(
            f"sqlite:///{path}",
            poolclass=StaticPool,
            connect_args={"timeout": 0, "check_same_thread": False},
            json_serializer=json_text.dumps,
        )
        _configure_sqlite(self.engine, path, busy_timeout_ms=0, begin=None, autocheckpoint=False)
        self.turn = WriteTurn(path)
        self.checkpoints = Checkpoints(path, self.turn)
        # One connection, kept open: a second event loop's thread (tests, tools) waits its turn, briefly.
        self._turn = threading.Lock()
        self._conn: Connection | None = None
        self._compiled = CompiledStatements(self.engine.dialect, typed_rows_only=True)

    @contextmanager
    def _connection(self) -> Iterator[Connection]:
        """The lane's connection, outside any transaction; dropped after an error, opened again when needed."""
        with self._turn:
            if self._conn is None:
                self._conn = self.engine.connect()
            try:
                yield self._conn
            except BaseException:
                conn, self._conn = self._conn, None
                conn.close()
                raise

    def rows(self, statement: Executable, params: dict[str, Any] | None) -> Sequence[Row]:
        """Every row of one read (reads in WAL mode never wait for a lock)."""
        with self._connection() as conn:
            rows = conn.execute(statement, params).all()
            conn.rollback()
            return rows

    def first(self, statement: Executable, params: dict[str, Any] | None) -> Row | None:
        """The first row of one read (reads in WAL mode never wait for a lock)."""
        with self._connection() as conn:
            row = conn.execute(statement, params).first()
            conn.rollback()
            return row

    def read(self, statement: Executable, params: dict[str, Any]) -> Mapping[str, Any] | None:
        """``first``, by column name, with the read sent straight to ``sqlite3``, compiled once (a
        lookup): SQLAlchemy's execution of it (the context, the cursor's wrapper, the result) cost
        several times what SQLite spends on the read. The SQL, the conversions, the engine's
        ``before_cursor_execute`` listeners and the errors are the engine's, as in ``one``."""
        compiled = self._compiled.get(statement, params)
        if compiled is None:
            return _by_name(self.first(statement, params))
        record = self._fetchone(compiled, params)
        return None if record is None else compiled.mapping(record)

    def read_row(self, statement: Executable, params: dict[str, Any]) -> tuple[Any, ...] | None:
        """``read``'s row in column order, converted the same way (a lookup's, read once by position)."""
        compiled = self._compiled.get(statement, params)
        if compiled is None:
            row = self.first(statement, params)
            return None if row is None else tuple(row)
        record = self._fetchone(compiled, params)
        return None if record is None else compiled.row(record)

    def _fetchone(self, compiled: Compiled, params: dict[str, Any]) -> Any:
        """The driver's first record of a read sent straight to ``sqlite3``, errors raised as the engine's."""
        args = compiled.args(params)
        announce(self.engine, compiled.sql, args)
        with self._connection() as conn:
            try:
                # No transaction to end: the driver's connection is in autocommit, so the read is
                # its own, over once its cursor is closed.
                cursor = conn.connection.driver_connection.execute(compiled.sql, args)
                try:
                    return cursor.fetchone()
                finally:
                    cursor.close()
            except sqlite3.Error as error:
                raise self._engine_error(compiled, args, error) from error

    def one(self, statement: Executable, params: dict[str, Any] | None) -> tuple[Mapping[str, Any] | None] | None:
        """``(first row by column name,)`` of the write run as its own transaction; None when the write
        lock is taken.

        A statement that returns typed columns (a create's ``INSERT ... RETURNING``) goes straight to
        the driver, compiled once (``direct.compile_for_driver``: SQLAlchemy's SQL, parameter order
        and type conversions): the execution context, cursor adapter and result objects cost several
        times what SQLite spends on the write. Errors come out as SQLAlchemy's, and the engine's
        ``before_cursor_execute`` listeners see the statement as they see every other.
        """
        return self._written(self._prepared(statement, params))

    def _prepared(self, statement: Executable, params: dict[str, Any] | None) -> _LaneWrite:
        """The write compiled for the driver and its arguments converted (its JSON written, its times
        formatted): done once, before its turn is taken, however many tries it takes."""
        params = params or {}
        compiled = self._compiled.get(statement, params)
        return _LaneWrite(statement, params, compiled, [] if compiled is None else compiled.args(params))

    def _written(self, write: _LaneWrite) -> tuple[Mapping[str, Any] | None] | None:
        """``one``'s transaction, for a write already prepared."""
        statement, params, compiled, args = write
        with self._connection() as conn:
            driver = conn.connection.driver_connection
            try:
                # Straight to the driver: transaction control needs none of the statement machinery.
                driver.execute("BEGIN IMMEDIATE")
            except sqlite3.OperationalError as error:
                if error.sqlite_errorcode == sqlite3.SQLITE_BUSY:
                    return None
                raise
            if compiled is None:
                try:
                    row = _by_name(conn.execute(statement, params).first())
                except BaseException:
                    conn.rollback()
                    raise
                conn.commit()
                return (row,)
            announce(self.engine, compiled.sql, args)
            try:
                records = driver.execute(compiled.sql, args).fetchall()
            except BaseException as error:
                driver.rollback()
                if isinstance(error, sqlite3.Error):
                    raise self._engine_error(compiled, args, error) from error
                raise
            driver.commit()
            return (compiled.mapping(records[0]) if records else None,)

    def _engine_error(self, compiled: Compiled, args: list[Any], error: sqlite3.Error) -> exc.DBAPIError:
        """``error`` of a statement sent straight to ``sqlite3``, as the engine would have raised it."""
        return exc.DBAPIError.instance(compiled.sql, tuple(args), error, sqlite3.Error, dialect=self.engine.dialect)

    def _in_turn(self, write: _LaneWrite) -> tuple[Mapping[str, Any] | None] | bool:
        """``(first row,)`` of the write done in its turn; else whether the turn was free (so that SQLite's
        lock was taken by a writer that takes no turn)."""
        if not self.turn.take():
            return False
        return self._holding_turn(write)

    def _holding_turn(self, write: _LaneWrite) -> tuple[Mapping[str, Any] | None] | bool:
        """``_in_turn`` for a writer that has taken the turn, which it gives back."""
        try:
            done = self._written(write)
        finally:
            self.turn.give_back()
        if done is None:
            return True
        self.checkpoints.wrote()
        return done

    async def write(
        self, statement: Executable, params: dict[str, Any] | None
    ) -> tuple[Mapping[str, Any] | None] | None:
        """``one`` for a write, in its turn; None when a writer that takes no turn kept SQLite's lock
        through every try.

        A writer that finds the turn taken waits for it on the event loop for up to
        ``TURN_WAIT_ON_LOOP``, then off the loop, for as long as that takes (either way the kernel
        wakes it the moment the holder lets go). A writer that finds SQLite's lock taken by one
        that takes no turn tries again after each of ``LANE_RETRY_PAUSES`` before it gives up.

        The write is prepared once, before the first try (``_prepared``): the other process's
        writers wait while the turn is held, so it is held only for SQLite's own work."""
        write = self._prepared(statement, params)
        outcome: tuple[Mapping[str, Any] | None] | bool = False
        for pause in LANE_RETRY_PAUSES:
            if pause:
                await asyncio.sleep(pause)
            outcome = self._in_turn(write)
            if outcome is False and self.turn.take_within(TURN_WAIT_ON_LOOP):
                outcome = self._holding_turn(write)
            if outcome is not True:
                break
        while outcome is False:
            await self.turn.free()
            outcome = self._in_turn(write)
        return outcome if isinstance(outcome, tuple) else None

    def dispose(self) -> None:
        self.checkpoints.close()
        self.turn.close()
        with self._turn:
            if self._conn is not None:
                self._conn.close()
                self._conn = None
        self.engine.dispose()


def build_read_engine(database_url: str) -> AsyncEngine | None:
    """The engine of ``Database.reading`` on an SQLite file; None elsewhere (PostgreSQL reads share the pool).

    The main engine has one connection, and every transaction on it holds SQLite's write lock
    from its ``BEGIN IMMEDIATE`` on: a page of the console or an ``api.php`` query sent through it
    waits for every write queued before it, and holds up every write queued after it. In WAL mode
    a reader needs neither: it reads the last commit while a writer writes. So reads get a pool
    of their own, two connections that begin with a plain ``BEGIN`` (a snapshot, taken at the
    first read, never the write lock) and are ``query_only``, so a read that tries to write fails
    instead of taking the lock behind the lane's back.
    """
    path = sqlite_file(database_url)
    if path is None:
        return None
    engine = create_async_engine(
        check(database_url),
        connect_args={"timeout": 30},
        pool_size=2,
        max_overflow=0,
        pool_timeout=60,
        json_serializer=json_text.dumps,
    )
    _configure_sqlite(engine.sync_engine, path, begin="BEGIN", query_only=True)
    return engine


def _by_name(row: Row | None) -> Mapping[str, Any] | None:
    return None if row is None else row._mapping


class Database:
    """One engine and its session factory; ``async with db.session() as s`` is one transaction."""

    def __init__(self, database_url: str, **engine_kwargs) -> None:  # type: ignore[no-untyped-def]
        self.url = database_url
        self.engine = build_engine(database_url, **engine_kwargs)
        self._sessions = async_sessionmaker(self.engine, expire_on_commit=False)
        self._autocommit = self.engine.execution_options(isolation_level=AUTOCOMMIT)
        path = sqlite_file(database_url) if self.dialect == "sqlite" else None
        self.lane = SqliteLane(path) if path is not None else None
        self.direct = (
            DirectStatements(
                self.engine,
                postgresql_connect_args(engine_kwargs.get("connect_args")),
                # A pool kept small (a test's, a command's) keeps these as small.
                min(DIRECT_CONNECTIONS, engine_kwargs.get("pool_size", DIRECT_CONNECTIONS)),
            )
            if self.dialect == "postgresql"
            else None
        )
        self.read_engine = build_read_engine(database_url) if self.dialect == "sqlite" else None
        if self.read_engine is not None:
            self._reads = async_sessionmaker(self.read_engine, expire_on_commit=False)
        elif self.dialect == "postgresql":
            # asyncpg begins each of these transactions with ``BEGIN ISOLATION LEVEL REPEATABLE READ
            # READ ONLY``: one round trip, as a plain ``BEGIN``.
            readonly = self.engine.execution_options(isolation_level="REPEATABLE READ", postgresql_readonly=True)
            self._reads = async_sessionmaker(readonly, expire_on_commit=False)
        else:
            # An in-memory SQLite database lives in its one connection: reads share it.
            self._reads = self._sessions

    @property
    def engines(self) -> tuple[Engine, ...]:
        """Every engine that sends statements (the main one, the lane's, the reads'), for whoever watches them."""
        lanes = (self.lane.engine,) if self.lane is not None else ()
        reads = (self.read_engine.sync_engine,) if self.read_engine is not None else ()
        return (self.engine.sync_engine, *lanes, *reads)

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    @asynccontextmanager
    async def session(self) -> AsyncIterator[AsyncSession]:
        async with self._sessions() as session, session.begin():
            yield session

    @asynccontextmanager
    async def reading(self) -> AsyncIterator[AsyncSession]:
        """A read-only transaction: every statement in it sees the same snapshot, and none may write.

        On SQLite it runs on the reads' own connections (``build_read_engine``), so it never waits
        for the writes queued on the main connection nor holds them up; on PostgreSQL it is a
        ``REPEATABLE READ READ ONLY`` transaction on the shared pool (a page of several counts
        adds up). A statement in it that writes fails.
        """
        async with self._reads() as session, session.begin():
            yield session

    async def one(self, statement: Executable, params: dict[str, Any] | None = None) -> Mapping[str, Any] | None:
        """The first row, by column name, of one Core statement that is a transaction on its own (the
        hot paths: no session, no unit of work). On PostgreSQL it goes straight to asyncpg
        (``DirectStatements``, on connections of its own) without ``BEGIN``/``COMMIT`` round trips. On
        SQLite it runs on the ``SqliteLane``: a read at once (it takes no lock), a write in its turn
        among the lane writers of every process; only when a writer that takes no turn holds SQLite's
        lock through the lane's tries does the write wait for the lock like any transaction, holding
        the turn."""
        params = params or {}
        if self.direct is not None and (compiled := self.direct.compiled(statement, params)) is not None:
            return await self.direct.first(compiled, params)
        if self.lane is not None and statement.is_select:
            return self.lane.read(statement, params)
        if self.lane is not None:
            done = await self.lane.write(statement, params)
            if done is not None:
                return done[0]
            async with self.lane.turn.held(), self.engine.begin() as conn:
                return _by_name((await conn.execute(statement, params)).first())
        engine = self._autocommit if self.dialect != "sqlite" or statement.is_select else self.engine
        async with engine.begin() as conn:
            return _by_name((await conn.execute(statement, params)).first())

    async def row(self, statement: Executable, params: dict[str, Any]) -> tuple[Any, ...] | None:
        """``one``'s row, of a read, in column order (a lookup read once by position: making a dict of
        it, then the caller's object from that, cost more than SQLite's own work on the read)."""
        if self.direct is not None and (compiled := self.direct.compiled(statement, params)) is not None:
            if compiled.keys:
                return await self.direct.first_row(compiled, params)
        elif self.lane is not None and statement.is_select:
            return self.lane.read_row(statement, params)
        row = await self.one(statement, params)
        return None if row is None else tuple(row.values())

    async def rows(self, statement: Executable, params: dict[str, Any] | None = None) -> Sequence[Row]:
        """Every row of one small read that is a transaction on its own (the caches' reloads): no
        ``BEGIN``/``COMMIT``, and on SQLite no write lock and no trip to aiosqlite's thread."""
        if self.lane is not None:
            return self.lane.rows(statement, params)
        async with self._autocommit.connect() as conn:
            return (await conn.execute(statement, params)).all()

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

    async def dispose(self) -> None:
        if self.lane is not None:
            self.lane.dispose()
        if self.direct is not None:
            await self.direct.close()
        if self.read_engine is not None:
            await self.read_engine.dispose()
        await self.engine.dispose()

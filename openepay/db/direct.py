"""One statement straight to asyncpg: PostgreSQL's hot paths.

A create's ``INSERT`` and a lookup's ``SELECT`` sent through SQLAlchemy's async engine cost
about 0.6 ms of CPU each (the ``AsyncConnection``, a greenlet per call, the execution context,
the cursor adapter, the result objects), three to five times what asyncpg itself spends on the
same statement. ``DirectStatements`` compiles each Core statement once with the engine's own
dialect, so the SQL, the parameter order and the type conversions are SQLAlchemy's, and then
sends it with asyncpg's ``fetchrow`` on one of a few connections of its own
(``driver_pool.DriverConnections``: the engine's pool cost a lone statement some 30 µs more):
asyncpg keeps it prepared per connection, and no ``BEGIN``/``COMMIT`` is sent (a lone
statement is its own transaction).

Errors come out as SQLAlchemy's (an ``IntegrityError`` for a unique violation), and a
connection that died or was left mid-statement is closed, not reused; one the server cut also
marks the engine's pool for renewal, as SQLAlchemy does when one of its own dies.
Listeners of the engine's ``before_cursor_execute`` see each statement, as they see every other.
A statement that needs what only SQLAlchemy's execution does (a Python-side default for a
column not given, an expanding ``IN``) goes through the engine as before; a value written into
the statement (``status == "pending"``) is sent as the constant it is.

``transaction`` runs several such statements in one transaction on one connection of the
engine's pool (the notification worker's claim): ``BEGIN`` goes out together with the first
statement that needs no parameters, so a transaction costs one round trip per statement plus
its ``COMMIT``. Lists are sent as arrays (``= ANY(:ids)``), so a statement's SQL, and asyncpg's
prepared statement, does not change with the length of a list.

``CompiledStatements`` (the compiling, remembered, without the sending) is also how SQLite's lane
sends a create's write and a lookup straight to ``sqlite3`` (``engine.SqliteLane``).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from operator import itemgetter
from typing import Any, NoReturn

from sqlalchemy import Engine, Executable, Insert, exc
from sqlalchemy.dialects.postgresql.asyncpg import AsyncAdapt_asyncpg_connection
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlalchemy.util import greenlet_spawn

from openepay.db.driver_pool import DriverConnections

# In ``Compiled.constants``: the value of this parameter is given with each execution.
_GIVEN = object()


@dataclass(frozen=True)
class Compiled:
    sql: str
    names: tuple[str, ...]
    constants: tuple[Any, ...]
    # The bind conversions, by parameter position, of the parameters that have one (most have none).
    binds: tuple[tuple[int, Callable[[Any], Any]], ...]
    # The parameters' values in order, in one call, when every one is given with each execution.
    pick: Callable[[Mapping[str, Any]], tuple[Any, ...]] | None
    keys: tuple[str, ...]
    # The result conversions, by column position, of the columns that have one (most have none).
    results: tuple[tuple[int, Callable[[Any], Any]], ...]
    # An ``INSERT ... VALUES``: a plan with nothing to choose, made once (``DirectStatements``).
    plans_nothing: bool = False

    def args(self, params: Mapping[str, Any]) -> list[Any]:
        """The positional arguments asyncpg takes, converted as SQLAlchemy would convert them.

        Only the few parameters with a conversion are visited one by one: a create's ``INSERT``
        has some thirty, nine with a conversion."""
        if self.pick is not None:
            args = list(self.pick(params))
        else:
            args = [
                params[name] if constant is _GIVEN else constant
                for name, constant in zip(self.names, self.constants, strict=True)
            ]
        for position, bind in self.binds:
            args[position] = bind(args[position])
        return args

    def row(self, record: Any) -> tuple[Any, ...]:
        """A returned row with SQLAlchemy's result conversions applied, in column order."""
        if not self.results:
            return tuple(record)
        values = list(record)
        for position, result in self.results:
            value = values[position]
            if value is not None:
                values[position] = result(value)
        return tuple(values)

    def mapping(self, record: Any) -> dict[str, Any]:
        """A returned row by column name, converted as SQLAlchemy would (the statement's columns are known)."""
        return dict(zip(self.keys, self.row(record), strict=True))


def compile_for_driver(statement: Executable, params: Mapping[str, Any], dialect: Any) -> Compiled | None:
    """``statement`` compiled with ``dialect`` for these parameter names, to be sent with the driver's
    own positional calls; None when it must go through the engine (a Python-side default for a column
    not given, an expanding ``IN``, a parameter given by no one)."""
    compiled = statement.compile(dialect=dialect, column_keys=list(params))  # type: ignore[attr-defined]
    names = tuple(compiled.positiontup or ())
    constants = tuple(
        _GIVEN if name in params or compiled.binds[name].required else compiled.binds[name].effective_value
        for name in names
    )
    direct = not (
        any(constant is _GIVEN and name not in params for name, constant in zip(names, constants, strict=True))
        or compiled.insert_prefetch
        or compiled.post_compile_params
        or compiled.literal_execute_params
    )
    if not direct:
        return None
    processors = compiled._bind_processors
    return Compiled(
        sql=str(compiled),
        names=names,
        constants=constants,
        binds=tuple(
            (position, bind) for position, name in enumerate(names) if (bind := processors.get(name)) is not None
        ),
        # ``itemgetter`` of one name gives the value itself, not a tuple of it.
        pick=itemgetter(*names) if len(names) > 1 and all(constant is _GIVEN for constant in constants) else None,
        keys=tuple(column.keyname for column in compiled._result_columns),
        results=tuple(
            (position, result)
            for position, column in enumerate(compiled._result_columns)
            if (result := column.type._cached_result_processor(dialect, None)) is not None
        ),
        plans_nothing=isinstance(statement, Insert) and statement.select is None,
    )


class CompiledStatements:
    """Statements compiled for the driver (``compile_for_driver``), once per statement and parameter names."""

    def __init__(self, dialect: Any, *, typed_rows_only: bool = False) -> None:
        self.dialect = dialect
        # Also None for a statement that returns no typed columns (a textual statement, a ``DELETE``):
        # SQLite's lane sends those through the engine.
        self._typed_rows_only = typed_rows_only
        self._known: dict[tuple[Executable, frozenset[str]], Compiled | None] = {}

    def get(self, statement: Executable, params: Mapping[str, Any]) -> Compiled | None:
        """The statement compiled for these parameter names; None when it must go through the engine."""
        key = (statement, frozenset(params))
        try:
            return self._known[key]
        except KeyError:
            pass
        compiled = compile_for_driver(statement, params, self.dialect)
        if compiled is not None and self._typed_rows_only and not compiled.keys:
            compiled = None
        self._known[key] = compiled
        return compiled


def announce(engine: Engine, sql: str, args: Sequence[Any]) -> None:
    """Tell the engine's ``before_cursor_execute`` listeners of a statement sent past it, as the engine would."""
    if engine.dispatch.before_cursor_execute:
        engine.dispatch.before_cursor_execute(None, None, sql, tuple(args), None, False)


# The settings of the connections that send only ``INSERT ... VALUES`` (``DirectStatements``).
PLANNED_ONCE = {"plan_cache_mode": "force_generic_plan", "enable_seqscan": "off"}


class DirectStatements:
    """Lone statements sent straight to asyncpg, on connections of their own.

    Every connection plans each statement for its own parameters (``plan_cache_mode`` is
    ``force_custom_plan``, see ``engine.postgresql_connect_args``), except those that send only
    ``INSERT ... VALUES`` (a create's order). Planning the insert again each time, with its
    foreign keys' checks, doubled what PostgreSQL spent on a create (about 0.33 ms of its CPU
    against 0.2 on a loaded machine), and such a plan has nothing to choose: rows are not found
    but given, and each check of a parent row can only use that table's primary key once
    sequential scans are off (with them on, a plan made while ``merchants`` was one page would
    scan it for good). So those connections keep one plan per statement (``PLANNED_ONCE``).
    A lookup's plan does choose (an order by ``out_trade_no`` on an empty table would be read
    through ``ix_orders_merchant_pid_created_at`` for as long as the plan is kept), so reads
    stay planned each time.
    """

    def __init__(self, engine: AsyncEngine, connect_args: dict[str, Any], connections: int) -> None:
        self.engine = engine.sync_engine
        self.dialect = self.engine.dialect
        self._connections = DriverConnections(self.engine, connect_args, connections)
        settings = {**connect_args.get("server_settings", {}), **PLANNED_ONCE}
        self._inserts = DriverConnections(
            self.engine, {**connect_args, "server_settings": settings}, max(connections // 2, 1)
        )
        self._compiled = CompiledStatements(self.dialect)

    def compiled(self, statement: Executable, params: Mapping[str, Any]) -> Compiled | None:
        """The statement compiled for these parameter names, once; None when it must go through the engine."""
        return self._compiled.get(statement, params)

    async def first(self, compiled: Compiled, params: Mapping[str, Any]) -> dict[str, Any] | None:
        """The first row of the statement, by column name (None when it returned none), sent on one
        of the ``DriverConnections`` (a transaction of its own)."""
        record = await self._fetchrow(compiled, params)
        if record is None:
            return None
        if not compiled.keys:
            # A textual statement: SQLAlchemy knows neither its columns nor their types, so the
            # engine too would hand back the row as the driver read it.
            return dict(record.items())
        return compiled.mapping(record)

    async def first_row(self, compiled: Compiled, params: Mapping[str, Any]) -> tuple[Any, ...] | None:
        """``first``'s row in column order, converted the same way, for a statement whose columns are typed
        (a lookup read once by position: a dict of it was a tenth of the statement's own CPU)."""
        record = await self._fetchrow(compiled, params)
        return None if record is None else compiled.row(record)

    async def _fetchrow(self, compiled: Compiled, params: Mapping[str, Any]) -> Any:
        """The driver's first record of the statement (None when it returned none), errors raised as the engine's."""
        args = compiled.args(params)
        announce(self.engine, compiled.sql, args)
        connections = self._inserts if compiled.plans_nothing else self._connections
        connection = await self._acquire(connections)
        try:
            record = await connection.fetchrow(compiled.sql, *args)
        except Exception as error:
            if connection.is_closed():
                connections.drop(connection)
                # The server went away: the other connections, here and in the engine's pool, are dead too.
                self._connections.drop_idle()
                self._inserts.drop_idle()
                self.engine.pool._invalidate(None, error)
            else:
                connections.release(connection)
            raise self._as_sqlalchemy(compiled.sql, args, error, connection.is_closed()) from error
        except BaseException:
            # Cancelled mid-statement: the connection's state is unknown, so it is not reused.
            connections.drop(connection)
            raise
        connections.release(connection)
        return record

    async def close(self) -> None:
        await self._connections.close()
        await self._inserts.close()

    @asynccontextmanager
    async def transaction(self, opening: str) -> AsyncIterator[DirectTransaction]:
        """One transaction on one pooled connection; ``opening`` (SQL without parameters, such as
        taking an advisory lock) is sent with the ``BEGIN``, in the same round trip.

        It commits when the block ends and rolls back when the block raises. A connection whose
        state is unknown (cancelled mid-statement, or the ``ROLLBACK`` itself failed) is dropped
        from the pool rather than handed to the next user with a transaction still open.
        """
        fairy = await self._checkout()
        try:
            transaction = DirectTransaction(self, fairy)
            await transaction.send(f"BEGIN; {opening}")
            yield transaction
            await transaction.send("COMMIT")
        except Exception:
            if fairy.dbapi_connection is not None:
                try:
                    await fairy.driver_connection.execute("ROLLBACK")
                except Exception:
                    fairy.invalidate()
            raise
        except BaseException:
            fairy.invalidate()
            raise
        finally:
            if fairy.dbapi_connection is not None:
                fairy.close()

    async def _checkout(self) -> Any:
        """A connection of the engine's pool (its ``_ConnectionFairy``)."""
        try:
            return await greenlet_spawn(self.engine.pool.connect)
        except self.dialect.loaded_dbapi.Error as error:
            raise self._refused(error) from error

    async def _acquire(self, connections: DriverConnections) -> Any:
        """One of ``connections``, its failure to connect raised as the engine's would be."""
        try:
            return await connections.acquire()
        except Exception as error:
            adapted = self._adapted(error)
            if isinstance(adapted, self.dialect.loaded_dbapi.Error):
                raise self._refused(adapted) from error
            raise

    def _refused(self, error: Exception) -> exc.DBAPIError:
        """As the engine's connections raise it: the database refused or could not be reached."""
        return exc.DBAPIError.instance(None, None, error, self.dialect.loaded_dbapi.Error, dialect=self.dialect)

    def _adapted(self, error: Exception) -> Exception:
        """An asyncpg error as the dialect's DBAPI adapter raises it (others as they are)."""
        try:
            AsyncAdapt_asyncpg_connection._handle_exception_no_connection(self.dialect.loaded_dbapi, error)
        except Exception as adapted:
            return adapted
        return error

    def _as_sqlalchemy(self, sql: str, args: list[Any], error: Exception, closed: bool) -> exc.DBAPIError:
        """``error`` of a statement as the SQLAlchemy exception the engine would have raised; ``closed``:
        whether it left the connection closed (a database error then says the connection was invalidated)."""
        adapted = self._adapted(error)
        return exc.DBAPIError.instance(
            sql,
            tuple(args),
            adapted,
            self.dialect.loaded_dbapi.Error,
            connection_invalidated=closed and isinstance(adapted, self.dialect.loaded_dbapi.Error),
            dialect=self.dialect,
        )

    def _raise_as_sqlalchemy(self, fairy: Any, sql: str, args: list[Any], error: Exception) -> NoReturn:
        """Raise ``error`` as the SQLAlchemy exception the engine would have raised, dropping a dead connection."""
        closed = fairy.driver_connection.is_closed()
        if closed:
            self.engine.pool._invalidate(fairy, error)
        raise self._as_sqlalchemy(sql, args, error, closed) from error


class DirectTransaction:
    """The statements of one ``DirectStatements.transaction``, each one round trip."""

    def __init__(self, direct: DirectStatements, fairy: Any) -> None:
        self._direct = direct
        self._fairy = fairy

    async def rows(self, statement: Executable, params: Mapping[str, Any]) -> list[tuple[Any, ...]]:
        """Every row of a Core statement, converted as SQLAlchemy would, in column order.

        Only statements that can go straight to asyncpg belong here (no expanding ``IN``: an array
        and ``any_``/``all_`` instead); any other is a mistake in the code, refused at once.
        """
        compiled = self._direct.compiled(statement, params)
        if compiled is None:
            raise ValueError(f"not a statement asyncpg can run as compiled: {statement}")
        args = compiled.args(params)
        announce(self._direct.engine, compiled.sql, args)
        try:
            records = await self._fairy.driver_connection.fetch(compiled.sql, *args)
        except Exception as error:
            self._direct._raise_as_sqlalchemy(self._fairy, compiled.sql, args, error)
        return [compiled.row(record) for record in records]

    async def send(self, sql: str) -> None:
        """SQL without parameters, possibly several statements: one round trip (the simple protocol)."""
        announce(self._direct.engine, sql, [])
        try:
            await self._fairy.driver_connection.execute(sql)
        except Exception as error:
            self._direct._raise_as_sqlalchemy(self._fairy, sql, [], error)

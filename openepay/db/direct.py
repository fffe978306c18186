"""One statement straight to asyncpg, on a connection of the SQLAlchemy pool: PostgreSQL's hot paths.

A create's ``INSERT`` and a lookup's ``SELECT`` sent through SQLAlchemy's async engine cost
about 0.6 ms of CPU each (the ``AsyncConnection``, a greenlet per call, the execution context,
the cursor adapter, the result objects), three to five times what asyncpg itself spends on the
same statement. ``DirectStatements`` compiles each Core statement once with the engine's own
dialect, so the SQL, the parameter order and the type conversions are SQLAlchemy's, and then
sends it with the pooled connection's asyncpg ``fetchrow``: asyncpg keeps it prepared per
connection, and no ``BEGIN``/``COMMIT`` is sent (a lone statement is its own transaction).

Errors come out as SQLAlchemy's (an ``IntegrityError`` for a unique violation), and a
connection that died or was left mid-statement is dropped from the pool as SQLAlchemy would.
Listeners of the engine's ``before_cursor_execute`` see each statement, as they see every other.
A statement that needs what only SQLAlchemy's execution does (a Python-side default for a
column not given, an expanding ``IN``) goes through the engine as before.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Executable, exc
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlalchemy.util import greenlet_spawn

Processor = Callable[[Any], Any] | None


@dataclass(frozen=True)
class _Compiled:
    sql: str
    names: tuple[str, ...]
    binds: tuple[Processor, ...]
    keys: tuple[str, ...]
    results: tuple[Processor, ...]


class DirectStatements:
    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine.sync_engine
        self.dialect = self.engine.dialect
        self._compiled: dict[tuple[Executable, frozenset[str]], _Compiled | None] = {}

    def compiled(self, statement: Executable, params: Mapping[str, Any]) -> _Compiled | None:
        """The statement compiled for these parameter names, once; None when it must go through the engine."""
        key = (statement, frozenset(params))
        try:
            return self._compiled[key]
        except KeyError:
            pass
        compiled = statement.compile(dialect=self.dialect, column_keys=list(params))  # type: ignore[attr-defined]
        names = tuple(compiled.positiontup or ())
        direct = not (
            set(names) - set(params)
            or compiled.insert_prefetch
            or compiled.post_compile_params
            or compiled.literal_execute_params
        )
        processors = compiled._bind_processors
        self._compiled[key] = found = (
            _Compiled(
                sql=str(compiled),
                names=names,
                binds=tuple(processors.get(name) for name in names),
                keys=tuple(column.keyname for column in compiled._result_columns),
                results=tuple(
                    column.type._cached_result_processor(self.dialect, None) for column in compiled._result_columns
                ),
            )
            if direct
            else None
        )
        return found

    async def first(self, compiled: _Compiled, params: Mapping[str, Any]) -> dict[str, Any] | None:
        """The first row of the statement, by column name (None when it returned none)."""
        args = [
            params[name] if bind is None else bind(params[name])
            for name, bind in zip(compiled.names, compiled.binds, strict=True)
        ]
        if self.engine.dispatch.before_cursor_execute:
            self.engine.dispatch.before_cursor_execute(None, None, compiled.sql, tuple(args), None, False)
        try:
            fairy = await greenlet_spawn(self.engine.pool.connect)
        except self.dialect.loaded_dbapi.Error as error:
            # As the engine's connections raise it: the database refused or could not be reached.
            raise exc.DBAPIError.instance(
                None, None, error, self.dialect.loaded_dbapi.Error, dialect=self.dialect
            ) from error
        try:
            record = await fairy.driver_connection.fetchrow(compiled.sql, *args)  # type: ignore[union-attr]
        except Exception as error:
            self._raise_as_sqlalchemy(fairy, compiled, args, error)
        except BaseException:
            # Cancelled mid-statement: the connection's state is unknown, so it is not reused.
            fairy.invalidate()
            raise
        finally:
            if fairy.dbapi_connection is not None:
                fairy.close()
        if record is None:
            return None
        if not compiled.keys:
            # A textual statement: SQLAlchemy knows neither its columns nor their types, so the
            # engine too would hand back the row as the driver read it.
            return dict(record.items())
        return {
            key: value if result is None or value is None else result(value)
            for key, result, value in zip(compiled.keys, compiled.results, record, strict=True)
        }

    def _raise_as_sqlalchemy(self, fairy: Any, compiled: _Compiled, args: list[Any], error: Exception) -> None:
        """Raise ``error`` as the SQLAlchemy exception the engine would have raised, dropping a dead connection."""
        try:
            fairy.dbapi_connection._handle_exception(error)
        except Exception as adapted:
            error = adapted
        disconnect = isinstance(error, self.dialect.loaded_dbapi.Error) and self.dialect.is_disconnect(
            error, fairy.dbapi_connection, None
        )
        if disconnect:
            self.engine.pool._invalidate(fairy, error)
        raise exc.DBAPIError.instance(
            compiled.sql,
            tuple(args),
            error,
            self.dialect.loaded_dbapi.Error,
            connection_invalidated=disconnect,
            dialect=self.dialect,
        ) from error

"""A few asyncpg connections of their own for ``DirectStatements.first``: PostgreSQL's one-statement hot paths.

Taking a connection from SQLAlchemy's pool and giving it back cost a lone statement (a create's
``INSERT``, a lookup's ``SELECT``) some 30 µs of CPU: a greenlet for the checkout, the
connection record's bookkeeping, the reset on return (a rollback call even when nothing began)
and the pool's queue. Here taking one is popping it from a list and giving it back is appending
it, or handing it to the first request waiting.

The connections are opened as the engine opens its own: the engine's URL and connect arguments
(the ``server_settings`` included, so plans are made as on every other connection), and
SQLAlchemy's JSON codecs, set by the dialect's own setup, so values go and come back as through
the engine. At most ``size`` are opened, on demand; a request finding all of them busy waits for
the first one given back, in turn.
"""

from __future__ import annotations

import asyncio
from collections import deque
from types import SimpleNamespace
from typing import Any

import asyncpg
from sqlalchemy import Engine

# SQLAlchemy's own connect arguments, which asyncpg does not take (the engine's adapter reads them).
_SQLALCHEMY_ONLY = ("prepared_statement_cache_size", "prepared_statement_name_func")


class DriverConnections:
    def __init__(self, engine: Engine, connect_args: dict[str, Any], size: int) -> None:
        self._dialect: Any = engine.dialect
        cargs, cparams = self._dialect.create_connect_args(engine.url)
        self._cargs = cargs
        self._cparams = {**cparams, **connect_args}
        for name in _SQLALCHEMY_ONLY:
            self._cparams.pop(name, None)
        self._creator = self._cparams.pop("async_creator_fn", asyncpg.connect)
        self._size = size
        self._opened = 0
        self._idle: list[asyncpg.Connection] = []
        # Each gets a connection given back, or None: the one who may open a connection in a closed one's place.
        self._waiters: deque[asyncio.Future[asyncpg.Connection | None]] = deque()

    async def acquire(self) -> asyncpg.Connection:
        """An idle connection, a new one while fewer than ``size`` are open, else the next one given back."""
        while True:
            if self._idle:
                return self._idle.pop()
            if self._opened < self._size:
                self._opened += 1
                try:
                    return await self._open()
                except BaseException:
                    self._opened -= 1
                    self._pass_on(None)
                    raise
            waiter = asyncio.get_running_loop().create_future()
            self._waiters.append(waiter)
            try:
                connection = await waiter
            except asyncio.CancelledError:
                if waiter.done() and not waiter.cancelled():
                    self._pass_on(waiter.result())
                raise
            if connection is not None:
                return connection

    def release(self, connection: asyncpg.Connection) -> None:
        """Give back a connection fit for the next statement."""
        self._pass_on(connection)

    def drop(self, connection: asyncpg.Connection) -> None:
        """Close a connection whose state is unknown or that is dead; a waiting request may open another."""
        self._opened -= 1
        connection.terminate()
        self._pass_on(None)

    def drop_idle(self) -> None:
        """Close every idle connection (the server went away: they are dead too)."""
        idle, self._idle = self._idle, []
        for connection in idle:
            self.drop(connection)

    async def close(self) -> None:
        idle, self._idle = self._idle, []
        self._opened -= len(idle)
        await asyncio.gather(*(connection.close() for connection in idle), return_exceptions=True)

    async def _open(self) -> asyncpg.Connection:
        connection = await self._creator(*self._cargs, **self._cparams)
        try:
            # The dialect's setup reads the asyncpg connection from its adapter's ``_connection``.
            adapted = SimpleNamespace(_connection=connection)
            await self._dialect.setup_asyncpg_json_codec(adapted)
            await self._dialect.setup_asyncpg_jsonb_codec(adapted)
            if self._dialect._native_inet_types is False:
                await self._dialect._disable_asyncpg_inet_codecs(adapted)
        except BaseException:
            connection.terminate()
            raise
        return connection

    def _pass_on(self, connection: asyncpg.Connection | None) -> None:
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_result(connection)
                return
        if connection is not None:
            self._idle.append(connection)

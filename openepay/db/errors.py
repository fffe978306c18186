"""What went wrong reaching the database, in one line an operator can act on.

A mistyped port or database name is the most common first-day mistake; it deserves a
sentence, not the hundreds of lines of a driver's traceback. Anything not recognised here is
left to propagate with its traceback, because then it is probably a bug.
"""

from __future__ import annotations

import socket
import sqlite3
from collections.abc import Iterator

from sqlalchemy.engine import make_url

from openepay.db.urls import normalize, shown, sqlite_file


def explain(exc: BaseException, database_url: str) -> str | None:
    """One line saying what is wrong and what to change, or None if ``exc`` is no connection failure."""
    url = make_url(normalize(database_url))
    if url.get_backend_name() == "sqlite":
        return _explain_sqlite(exc, sqlite_file(database_url))
    where = f"PostgreSQL at {url.host or 'localhost'}:{url.port or 5432}"
    for cause in _chain(exc):
        name = type(cause).__name__
        if name == "InvalidCatalogNameError":
            return (
                f'{where} has no database "{url.database}": create it (createdb {url.database}) '
                "or correct the database name in OPENEPAY_DATABASE_URL"
            )
        if name in ("InvalidPasswordError", "InvalidAuthorizationSpecificationError"):
            return f"{where} refused the login ({cause}): check the user and password in OPENEPAY_DATABASE_URL"
        if name == "CannotConnectNowError":
            return f"{where} is starting up or shutting down ({cause}): try again in a moment"
        if name == "TooManyConnectionsError":
            return f"{where} has no free connections ({cause}): lower OPENEPAY_DB_POOL_SIZE or raise max_connections"
        if isinstance(cause, socket.gaierror):
            return f"cannot find the database host {url.host!r} ({cause.strerror}): check OPENEPAY_DATABASE_URL"
        if isinstance(cause, ConnectionRefusedError):
            return f"{where} refused the connection: is PostgreSQL running there, and is the port right?"
        if isinstance(cause, TimeoutError):
            return f"{where} did not answer in time: is the host right, and does a firewall let us through?"
        if isinstance(cause, OSError) and not isinstance(cause, FileNotFoundError):
            return f"cannot reach {where} ({cause}): check the host and port in {shown(database_url)}"
    return None


def _explain_sqlite(exc: BaseException, path: object) -> str | None:
    for cause in _chain(exc):
        if isinstance(cause, FileNotFoundError | NotADirectoryError):
            return f"cannot create the SQLite database {path}: its directory does not exist"
        if isinstance(cause, PermissionError):
            return f"cannot open the SQLite database {path}: permission denied"
        if isinstance(cause, sqlite3.DatabaseError):
            if "unable to open" in str(cause):
                return f"cannot open the SQLite database {path}: does its directory exist, and may this user write it?"
            if "not a database" in str(cause):
                return f"{path} is not an SQLite database (is OPENEPAY_DATABASE_URL pointing at the right file?)"
    return None


def _chain(exc: BaseException) -> Iterator[BaseException]:
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        yield current
        current = current.__cause__ or current.__context__

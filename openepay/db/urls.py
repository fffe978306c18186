"""Database URLs as operators write them: the spellings we accept, and one clear line for the rest.

``postgresql://`` and ``postgres://`` (what PostgreSQL's own tools and most hosting panels
print) mean asyncpg here, the only PostgreSQL driver the gateway runs on; ``sqlite://`` means
aiosqlite. Messages never repeat a URL with its password in it.
"""

from __future__ import annotations

import difflib
from pathlib import Path

from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError

EXAMPLES = "sqlite+aiosqlite:///path/to/openepay.db or postgresql://user:password@host:5432/database"
_DRIVERS = {"postgresql": "postgresql+asyncpg", "postgres": "postgresql+asyncpg", "sqlite": "sqlite+aiosqlite"}
_SCHEMES = ("postgresql+asyncpg", "sqlite+aiosqlite")


class DatabaseUrlError(ValueError):
    """``OPENEPAY_DATABASE_URL`` cannot work; the message says what to write instead."""


def normalize(url: str) -> str:
    """``url`` with the driver the gateway uses spelled out; anything unusable is left for ``check``."""
    scheme, separator, rest = url.partition("://")
    driver = _DRIVERS.get(scheme.lower())
    return f"{driver}://{rest}" if separator and driver else url


def check(url: str) -> URL:
    """The parsed URL, or ``DatabaseUrlError`` saying in one line what is wrong with it."""
    scheme, separator, _ = url.partition("://")
    if not separator:
        raise DatabaseUrlError(f"OPENEPAY_DATABASE_URL is not a database URL; write {EXAMPLES}")
    scheme = normalize(f"{scheme}://").removesuffix("://").lower()
    if scheme not in _SCHEMES:
        backend = scheme.split("+", 1)[0]
        if backend in _DRIVERS:
            raise DatabaseUrlError(
                f"OPENEPAY_DATABASE_URL asks for the driver {scheme!r}; OpenEpay runs on "
                f"{_DRIVERS[backend]} only: write {backend}://..."
            )
        guess = difflib.get_close_matches(backend, ("postgresql", "sqlite"), n=1, cutoff=0.6)
        hint = f" (did you mean {guess[0]}://?)" if guess else ""
        raise DatabaseUrlError(f"OPENEPAY_DATABASE_URL has an unknown scheme {scheme!r}{hint}; write {EXAMPLES}")
    try:
        return make_url(normalize(url))
    except (ArgumentError, ValueError):
        raise DatabaseUrlError(f"OPENEPAY_DATABASE_URL cannot be read as a URL; write {EXAMPLES}") from None


def shown(url: str) -> str:
    """The URL as it may be printed: with its password hidden."""
    try:
        return make_url(normalize(url)).render_as_string(hide_password=True)
    except (ArgumentError, ValueError):
        return "(unreadable OPENEPAY_DATABASE_URL)"


def sqlite_file(url: str) -> Path | None:
    """The absolute path of an SQLite database file; None for in-memory databases and PostgreSQL."""
    parsed = make_url(normalize(url))
    if parsed.get_backend_name() != "sqlite" or not parsed.database or parsed.database == ":memory:":
        return None
    database = parsed.database
    if parsed.query.get("uri") == "true":
        if parsed.query.get("mode") == "memory":
            return None
        database = database.removeprefix("file:").split("?", 1)[0]
    return Path(database).resolve()

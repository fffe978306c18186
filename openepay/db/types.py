"""Column types that behave the same on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import BigInteger, DateTime, Integer
from sqlalchemy.types import TypeDecorator

# SQLite only auto-increments INTEGER PRIMARY KEY; PostgreSQL gets a real BIGINT.
BigIntPK = BigInteger().with_variant(Integer(), "sqlite")


class UTCDateTime(TypeDecorator[datetime]):
    """Aware UTC datetimes in Python, whatever the database stores.

    SQLite has no time zones, so values are stored as naive UTC there; PostgreSQL stores
    ``timestamptz``. Either way, code only ever sees aware UTC datetimes.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def bind_processor(self, dialect):  # type: ignore[no-untyped-def]
        """On SQLite, ``process_bind_param`` and SQLite's own ``DATETIME`` text in one step (the two
        together were a tenth of the conversions of a create's ``INSERT``)."""
        if dialect.name != "sqlite":
            return super().bind_processor(dialect)
        return _sqlite_text

    def process_bind_param(self, value: datetime | None, dialect):  # type: ignore[override]
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect):  # type: ignore[override]
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _sqlite_text(value: datetime | None) -> str | None:
    """What SQLite stores for a UTC column: the UTC time as ``YYYY-MM-DD HH:MM:SS.ffffff``, the text
    SQLAlchemy's SQLite ``DATETIME`` writes (an aware datetime's ISO text, its ``+00:00`` cut off)."""
    if value is None:
        return None
    if value.tzinfo is None:
        raise ValueError("naive datetime given to a UTC column")
    return value.astimezone(UTC).isoformat(" ", "microseconds")[:-6]


def storable(text: str) -> bool:
    """Whether both databases can hold ``text``.

    PostgreSQL refuses a NUL character in any text, and neither driver can encode a lone
    surrogate (what Python makes of bytes that are not UTF-8 in a command line or a JSON
    ``\\ud800``). Text from outside is checked with this at the edge, so a query never fails on it.
    """
    if "\x00" in text:
        return False
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def utcnow() -> datetime:
    return datetime.now(UTC)

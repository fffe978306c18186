"""``UTCDateTime`` on SQLite: its one-step text is exactly what SQLAlchemy's own conversions write."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from sqlalchemy import DateTime
from sqlalchemy.dialects import postgresql, sqlite

from openepay.db.types import UTCDateTime

SQLITE = sqlite.dialect()
CHINA = timezone(timedelta(hours=8))


def sqlalchemy_text(value: datetime | None) -> str | None:
    """The decorator's own conversion, then SQLite's ``DATETIME`` bind processor."""
    impl = DateTime(timezone=True).dialect_impl(SQLITE).bind_processor(SQLITE)
    return impl(UTCDateTime().process_bind_param(value, SQLITE))


@pytest.mark.parametrize(
    "value",
    [
        datetime(2026, 12, 4, 17, 0, 0, 123456, tzinfo=UTC),
        datetime(2026, 12, 4, 17, 0, 0, tzinfo=UTC),  # no microseconds: still written
        datetime(2026, 1, 1, 7, 59, 59, 1, tzinfo=CHINA),  # another zone: the day before in UTC
        datetime(999, 3, 5, 1, 2, 3, 40, tzinfo=UTC),  # a year of three digits: padded
        datetime(9999, 12, 31, 23, 59, 59, 999999, tzinfo=UTC),
        None,
    ],
)
def test_sqlite_text_is_sqlalchemys(value: datetime | None) -> None:
    process = UTCDateTime().dialect_impl(SQLITE).bind_processor(SQLITE)
    assert process(value) == sqlalchemy_text(value)


def test_naive_datetime_refused_on_sqlite() -> None:
    process = UTCDateTime().dialect_impl(SQLITE).bind_processor(SQLITE)
    with pytest.raises(ValueError, match="naive"):
        process(datetime(2026, 12, 4, 17, 0, 0))


def test_postgresql_keeps_the_aware_utc_value() -> None:
    dialect = postgresql.dialect()
    process = UTCDateTime().dialect_impl(dialect).bind_processor(dialect)
    value = datetime(2026, 1, 1, 8, 0, tzinfo=CHINA)
    converted = process(value) if process is not None else value
    assert converted == value and converted.utcoffset() == timedelta(0)

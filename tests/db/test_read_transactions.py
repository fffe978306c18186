"""``Database.reading``: a read-only transaction that never waits for the writes and never writes."""

from __future__ import annotations

import pytest
from sqlalchemy import select, text, update
from sqlalchemy.exc import DBAPIError

from openepay.core.merchants import MerchantCredentials
from openepay.db.models import Merchant
from openepay.gateway import Gateway


async def _name(gateway: Gateway, pid: int) -> str:
    async with gateway.db.reading() as session:
        return await session.scalar(select(Merchant.name).where(Merchant.pid == pid))


async def test_a_read_that_tries_to_write_is_refused_and_changes_nothing(
    gateway: Gateway, merchant: MerchantCredentials
):
    with pytest.raises(DBAPIError, match="read-only transaction|readonly database"):
        async with gateway.db.reading() as session:
            await session.execute(update(Merchant).where(Merchant.pid == merchant.pid).values(name="Renamed"))

    assert await _name(gateway, merchant.pid) == "Test Shop"


async def test_a_read_answers_while_a_write_transaction_holds_the_database(
    gateway: Gateway, merchant: MerchantCredentials
):
    # On SQLite the writer holds the main connection (the only one) and the write lock.
    async with gateway.db.session() as writing:
        await writing.execute(update(Merchant).where(Merchant.pid == merchant.pid).values(name="Being renamed"))
        assert await _name(gateway, merchant.pid) == "Test Shop"

    assert await _name(gateway, merchant.pid) == "Being renamed"


async def test_a_write_commits_while_a_read_is_open(gateway: Gateway, merchant: MerchantCredentials):
    async with gateway.db.reading() as reading:
        assert await reading.scalar(select(Merchant.name).where(Merchant.pid == merchant.pid)) == "Test Shop"
        async with gateway.db.session() as writing:
            await writing.execute(update(Merchant).where(Merchant.pid == merchant.pid).values(name="Renamed"))

    assert await _name(gateway, merchant.pid) == "Renamed"


async def test_a_read_sees_one_snapshot_from_its_first_statement_on(gateway: Gateway, merchant: MerchantCredentials):
    async with gateway.db.reading() as reading:
        before = await reading.scalar(select(Merchant.name).where(Merchant.pid == merchant.pid))
        async with gateway.db.session() as writing:
            await writing.execute(update(Merchant).where(Merchant.pid == merchant.pid).values(name="Renamed"))
        after = await reading.scalar(text("SELECT name FROM merchants WHERE pid = :pid"), {"pid": merchant.pid})

    assert before == after == "Test Shop"


async def test_a_textual_statement_answers_by_column_name(gateway: Gateway, merchant: MerchantCredentials):
    row = await gateway.db.one(text("SELECT pid, name FROM merchants WHERE pid = :pid"), {"pid": merchant.pid})

    assert row is not None and dict(row) == {"pid": merchant.pid, "name": "Test Shop"}

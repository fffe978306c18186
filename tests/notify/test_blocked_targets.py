"""Every dialect's notification goes through the client's checks, whatever its order says.

An order placed before a stricter creation check may hold a notify_url that would be refused
today; its delivery must be refused just the same. Orders are placed and paid over HTTP in
each dialect, their stored notify_url is then set as such an old order's would be, and a
worker delivers it.
"""

from __future__ import annotations

import secrets

import pytest
from sqlalchemy import update

from openepay.db.models import Order
from openepay.gateway import Gateway
from openepay.notify.worker import NotifyWorker
from tests.support.dialects import EVERY_DIALECT, DialectOrders
from tests.support.epay_v2 import V2Merchant
from tests.support.links import sandbox_path
from tests.support.notify import delivery_log
from tests.support.settings import make_settings
from tests.support.shop import RecordingShop

NON_ASCII_ADDRESS = "the host is an IP address written with non-ASCII characters"


@pytest.fixture
def loopback_shop():  # type: ignore[no-untyped-def]
    shop = RecordingShop().start()
    yield shop
    shop.stop()


async def paid_with_old_notify_url(server, dialect: DialectOrders, merchant: V2Merchant, notify_url: str) -> str:  # type: ignore[no-untyped-def]
    """An order of ``dialect``, paid, whose stored notify_url is ``notify_url``."""
    async with server.client() as client:
        response = await dialect.place(client, merchant, f"OLD-{secrets.token_hex(4)}", "https://shop.example.com/n")
        trade_no = dialect.trade_no(response)
        assert (await client.post(sandbox_path(trade_no))).status_code == 303
    async with server.gateway.db.session() as session:
        await session.execute(update(Order).where(Order.trade_no == trade_no).values(notify_url=notify_url))
    return trade_no


async def deliver_all(database_url: str, *, allow_private: bool) -> None:
    """One round of a worker of a gateway with ``allow_private`` (each test's orders fit in one round)."""
    gateway = Gateway.from_settings(make_settings(database_url, notify_allow_private=allow_private))
    worker = NotifyWorker(gateway, name="old-orders")
    try:
        assert await worker.run_once() >= 1
    finally:
        await worker.aclose()
        await gateway.aclose()


@pytest.mark.parametrize("allow_private", [False, True], ids=["default", "private-allowed"])
@pytest.mark.parametrize("dialect", EVERY_DIALECT, ids=str)
async def test_a_notification_to_loopback_spelt_in_unicode_is_never_sent(
    server, database_url, v2, loopback_shop, dialect, allow_private
):
    trade_nos = [
        await paid_with_old_notify_url(server, dialect, v2, f"http://{host}:{loopback_shop.port}/notify")
        for host in ("127。0。0。1", "127．0．0．1", "127｡0｡0｡1", "１２７.０.０.１")
    ]
    await deliver_all(database_url, allow_private=allow_private)

    for trade_no in trade_nos:
        task, [attempt] = await delivery_log(server.gateway, trade_no)
        assert (attempt.error_class, attempt.error_detail) == ("blocked_address", NON_ASCII_ADDRESS)
        assert attempt.delivered is False and attempt.http_status is None
        assert task.last_error == f"blocked_address: {NON_ASCII_ADDRESS}"
    assert loopback_shop.received == []


@pytest.mark.parametrize("dialect", EVERY_DIALECT, ids=str)
async def test_a_numeric_spelling_of_loopback_is_refused_as_loopback(server, database_url, v2, loopback_shop, dialect):
    url = f"http://0x7f.1:{loopback_shop.port}/notify"
    trade_no = await paid_with_old_notify_url(server, dialect, v2, url)
    await deliver_all(database_url, allow_private=False)

    _, [attempt] = await delivery_log(server.gateway, trade_no)
    assert (attempt.error_class, attempt.error_detail) == ("blocked_address", "127.0.0.1 is not a public address")
    assert attempt.target_host == "127.0.0.1"
    assert loopback_shop.received == []

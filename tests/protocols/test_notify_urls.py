"""What a ``notify_url`` may be, held alike in every dialect at order creation.

Each dialect refuses with its own code and text; the reason behind it is the one reading of the
URL that the client shares (``openepay/notify/targets.py``), so an order is never accepted for a
URL the client would later read as a private address.
"""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest
from sqlalchemy import func, select

from openepay.db.models import Order
from openepay.notify.targets import url_block_reason
from tests.support.dialects import EPAY_SUBMIT, EVERY_DIALECT, DialectOrders
from tests.support.epay_v2 import V2Merchant
from tests.support.gateways import own_server
from tests.support.servers import ServerThread

DIALECTS = [*EVERY_DIALECT, EPAY_SUBMIT]
DIALECT_IDS = ["epay-mapi", "epay_v2", "pay_mapi", "payfor", "vmq", "epay-submit"]

# Loopback, the metadata service and the office network, spelt so that the old creation check
# (``urlsplit().hostname``) saw neither an address nor a local name.
PRIVATE_BY_ANOTHER_NAME = [
    "http://127。0。0。1:8080/notify",
    "http://127．0．0．1/notify",
    "http://127｡0｡0｡1/notify",
    "http://１２７.０.０.１/notify",
    "http://169。254。169。254/latest/meta-data/",
    "http://10。0。0。1/",
    "http://2130706433/notify",
    "http://0x7f.1/notify",
    "http://127.1/notify",
    "http://0177.0.0.1/notify",
    "http://127.0.0.1./notify",
    "http://0xa9fea9fe/latest/meta-data/",
    "http://%31%32%37.0.0.1/notify",
    "http://[fe80::1%25eth0]/notify",
    "http://ｌｏｃａｌｈｏｓｔ/notify",
]
WITH_CONTROL_CHARACTERS = [
    "https://shop.example.com/notify\r\nX-Injected: 1",
    "https://shop.example.com/no\ntify",
    "https://shop.example.com/notify\t",
    "https://shop.exa\tmple.com/notify",
    "https://shop.example.com/notify?a=1\r",
]


@pytest.fixture
def public_only(database_url, gateway) -> Iterator[ServerThread]:  # type: ignore[no-untyped-def]
    with own_server(database_url, notify_allow_private=False) as thread:
        yield thread


async def stored_orders(gateway, pid: int) -> int:  # type: ignore[no-untyped-def]
    async with gateway.db.session() as session:
        return await session.scalar(select(func.count()).select_from(Order).where(Order.merchant_pid == pid))


async def refusals(url: str, dialect: DialectOrders, merchant: V2Merchant, notify_urls: list[str]) -> dict:
    async with httpx.AsyncClient(base_url=url, timeout=10) as client:
        return {
            notify_url: dialect.refusal(await dialect.place(client, merchant, f"U-{number}", notify_url))
            for number, notify_url in enumerate(notify_urls)
        }


@pytest.mark.parametrize("dialect", DIALECTS, ids=DIALECT_IDS)
async def test_a_private_address_under_another_spelling_is_refused_at_creation(public_only, gateway, v2, dialect):
    reasons = {url: url_block_reason(url, allow_private=False) for url in PRIVATE_BY_ANOTHER_NAME}
    assert all(reasons.values()), reasons
    answers = await refusals(public_only.url, dialect, v2, PRIVATE_BY_ANOTHER_NAME)
    assert answers == {url: dialect.notify_url_refused(reason) for url, reason in reasons.items()}
    assert await stored_orders(gateway, v2.pid) == 0


@pytest.mark.parametrize("dialect", DIALECTS, ids=DIALECT_IDS)
async def test_a_notify_url_with_cr_lf_or_tab_is_refused_at_creation(server, gateway, v2, dialect):
    reason = "control characters (CR, LF, TAB...) are not allowed in a URL"
    answers = await refusals(server.url, dialect, v2, WITH_CONTROL_CHARACTERS)
    assert answers == {url: dialect.notify_url_refused(reason) for url in WITH_CONTROL_CHARACTERS}
    assert await stored_orders(gateway, v2.pid) == 0


@pytest.mark.parametrize("dialect", DIALECTS, ids=DIALECT_IDS)
async def test_an_international_shop_domain_is_still_accepted(public_only, gateway, v2, dialect):
    async with httpx.AsyncClient(base_url=public_only.url, timeout=10) as client:
        response = await dialect.place(client, v2, "IDN-1", "https://商店.例子.中国/notify.php?站=1")
        trade_no = dialect.trade_no(response)
    async with gateway.db.session() as session:
        order = await session.scalar(select(Order).where(Order.trade_no == trade_no))
    assert order is not None and order.notify_url == "https://商店.例子.中国/notify.php?站=1"


# The longest notify_url each dialect stores: payFor keeps the seed's varchar(255), the others 2048.
LONGEST = {"epay": 2048, "epay_v2": 2048, "pay_mapi": 2048, "payfor": 255, "vmq": 2048}


def notify_url_of(length: int) -> str:
    start = "https://shop.example.com/notify?pad="
    return start + "a" * (length - len(start))


def too_long_refusal(dialect: DialectOrders) -> object:
    if dialect.name == "payfor":
        return (-3, "通知地址(notify_url)不能超过255个字符")
    return dialect.notify_url_refused(f"longer than {LONGEST[dialect.name]} characters")


@pytest.mark.parametrize("dialect", DIALECTS, ids=DIALECT_IDS)
async def test_the_longest_notify_url_is_stored_and_one_character_more_is_refused(server, gateway, v2, dialect):
    longest = notify_url_of(LONGEST[dialect.name])
    async with server.client() as client:
        trade_no = dialect.trade_no(await dialect.place(client, v2, "LONG-1", longest))
        refusal = dialect.refusal(await dialect.place(client, v2, "LONG-2", longest + "a"))
    async with gateway.db.session() as session:
        order = await session.scalar(select(Order).where(Order.trade_no == trade_no))
    assert order is not None and order.notify_url == longest
    assert refusal == too_long_refusal(dialect)
    assert await stored_orders(gateway, v2.pid) == 1


@pytest.mark.parametrize("dialect", DIALECTS, ids=DIALECT_IDS)
async def test_an_operator_who_allows_private_addresses_gets_orders_notifying_one(server, gateway, v2, dialect):
    """The tests' usual settings allow them (their shops listen on loopback); ``public_only`` above does not."""
    assert server.settings.notify_allow_private
    async with server.client() as client:
        trade_no = dialect.trade_no(await dialect.place(client, v2, "LAN-1", "http://10.0.0.5/notify"))
    async with gateway.db.session() as session:
        order = await session.scalar(select(Order).where(Order.trade_no == trade_no))
    assert order is not None and order.notify_url == "http://10.0.0.5/notify"

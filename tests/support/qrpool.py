"""Personal-code test setups: gateways with the qrpool channel, accounts with codes and phones, the CLI."""

from __future__ import annotations

import asyncio
import subprocess
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import datetime, timedelta

from sqlalchemy import select

from openepay.channels.qrpool import accounts
from openepay.channels.qrpool.matching import Outcome, PaymentReport, event_key, record_payment
from openepay.config import Settings
from openepay.core.money import format_yuan
from openepay.core.orders import place_order
from openepay.db.models import Order, QrAccount, QrDevice
from openepay.db.types import utcnow
from openepay.gateway import Gateway
from tests.support.cli import clean_env, run_cli
from tests.support.orders import new_order
from tests.support.settings import TEST_SECRET, make_settings

GENERIC = "wxp://f2f0GENERICxxxxxxxxxxxxxxxxxxxxxxx"
BASE_URL = "http://gateway.test"


def qrpool_settings(database_url: str, **overrides: object) -> Settings:
    """The tests' usual settings with personal codes on and the sandbox off, so qrpool takes every order."""
    return make_settings(database_url, **{"qrpool": True, "sandbox": False, **overrides})


@asynccontextmanager
async def qrpool_gateway(database_url: str, **overrides: object) -> AsyncIterator[Gateway]:
    gateway = await Gateway.open(qrpool_settings(database_url, **overrides))
    try:
        yield gateway
    finally:
        await gateway.aclose()


async def receiving_account(
    gateway: Gateway,
    name: str = "wx-main",
    pay_type: str = "wxpay",
    *,
    generic: str | None = GENERIC,
    fixed: dict[int, str] | None = None,
    live: bool = True,
) -> QrAccount:
    """An account with its codes and one phone, which sent a heartbeat just now when ``live``."""
    account = await accounts.create_account(gateway.db, name, pay_type)
    if generic is not None:
        await accounts.add_code(gateway.db, account.id, generic, None)
    for amount_fen, content in (fixed or {}).items():
        await accounts.add_code(gateway.db, account.id, content, amount_fen)
    device, _key = await accounts.add_device(gateway.db, gateway.box, account.id, "phone")
    if live:
        await accounts.record_heartbeat(gateway.db, device.id, utcnow())
    return account


async def placed(gateway: Gateway, pid: int, out_trade_no: str, amount_fen: int = 100) -> Order:
    """An order stored with no payment yet, as a dialect leaves it before asking a channel."""
    order = new_order(pid, out_trade_no, amount_fen=amount_fen, money=format_yuan(amount_fen))
    return (await place_order(gateway.db, order, timeout=timedelta(minutes=30), reopen_identical=True)).order


async def offered(
    gateway: Gateway, pid: int, out_trade_no: str, amount_fen: int = 100, pay_type: str = "wxpay"
) -> Order:
    """An order with the channel's offer, as ``mapi.php`` leaves it (or the ``ChannelRefused``)."""
    order = await placed(gateway, pid, out_trade_no, amount_fen)
    return await gateway.start_payment(order, pay_type=pay_type, device="pc", request_base_url=BASE_URL)


async def qrpool_cli(database_url: str, *args: str, **env: str) -> subprocess.CompletedProcess:
    """``openepay qrpool ARGS`` as an operator runs it (in this process: ``tests.support.cli.run_cli``)."""
    environment = clean_env(
        OPENEPAY_DATABASE_URL=database_url, OPENEPAY_SECRET_KEY=TEST_SECRET, OPENEPAY_LOG_LEVEL="WARNING", **env
    )
    return await asyncio.to_thread(run_cli, ["qrpool", *args], environment)


async def phone_of(gateway: Gateway, account: QrAccount) -> QrDevice:
    """The one phone ``receiving_account`` paired with the account."""
    async with gateway.db.session() as session:
        return (await session.scalars(select(QrDevice).where(QrDevice.account_id == account.id))).one()


async def reported(
    gateway: Gateway,
    device: QrDevice,
    name: str,
    amount_fen: int | None,
    occurred_at: datetime | None = None,
    pay_type: str = "wxpay",
) -> Outcome:
    """A payment the phone reports through the matcher, in this process: ``name`` makes it a report of its own."""
    report = PaymentReport(
        event_key=event_key("reported", name),
        source="device",
        device=device,
        pay_type=pay_type,
        amount_fen=amount_fen,
        amount_text="" if amount_fen is None else format_yuan(amount_fen),
        occurred_at=occurred_at or utcnow(),
        payload="{}",
    )
    return await record_payment(gateway.db, gateway.settings, report)

"""The V免签 monitor app (``szvone/vmqApk`` v1.8.1), as it talks to the server, written from its source.

Paired with ``host/key``, it sends plain-HTTP GETs built by string concatenation, nothing
URL-encoded:

- ``http://{host}/appHeart?t={ms}&sign=md5(t+key)`` every 30 s;
- ``http://{host}/appPush?t={ms}&type={1|2}&price={price}&sign=md5(type+price+t+key)`` for each
  payment notification, where ``price`` is Java's ``Double.toString`` of the amount it read
  (``9.91``, ``0.1``, ``10.0``). It never retries and only logs the answer.

Signatures are computed here with hashlib, independently of the gateway's signing code.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

import httpx
from sqlalchemy import select

from openepay.app import create_app
from openepay.channels.qrpool import accounts
from openepay.db.models import AmountReservation, AuditEntry, NotifyTask, Order, PaymentEvent, QrAccount, QrDevice
from openepay.db.types import utcnow
from openepay.gateway import Gateway
from tests.support.qrpool import GENERIC, qrpool_settings
from tests.support.servers import ServerThread

WXPAY, ALIPAY = 1, 2


def md5(text: str) -> str:
    return hashlib.md5(text.encode("utf-8")).hexdigest()


def java_double(fen: int) -> str:
    """``Double.toString(fen / 100.0)``: the shortest digits that read back as the same double,
    at least one after the point. Java writes plain decimals from 10^-3 up to 10^7, which is
    where Python's ``repr`` of a float agrees with it."""
    value = fen / 100
    if not 1e-3 <= value < 1e7:
        raise ValueError(f"Java would write {value} in E notation")
    return repr(value)


def now_ms() -> str:
    return str(int(time.time() * 1000))


class VmqPhone:
    """One paired phone: ``pairing`` is the ``host/key`` string the admin's QR encodes."""

    def __init__(self, pairing: str) -> None:
        self.host, _, self.key = pairing.partition("/")

    def heartbeat_path(self, t: str | None = None) -> str:
        t = t or now_ms()
        return f"/appHeart?t={t}&sign={md5(t + self.key)}"

    def push_path(self, pay_type: int, price: str, t: str | None = None) -> str:
        t = t or now_ms()
        return f"/appPush?t={t}&type={pay_type}&price={price}&sign={md5(str(pay_type) + price + t + self.key)}"

    async def get(self, path: str) -> dict:
        """Send one request as the app does and return the JSON it would log."""
        async with httpx.AsyncClient(base_url=f"http://{self.host}", timeout=10) as client:
            response = await client.get(path)
        assert response.status_code == 200, response.text
        return response.json()

    async def heartbeat(self, t: str | None = None) -> dict:
        return await self.get(self.heartbeat_path(t))

    async def push(self, pay_type: int, price: str, t: str | None = None) -> dict:
        return await self.get(self.push_path(pay_type, price, t))

    async def paid(self, pay_type: int, fen: int, t: str | None = None) -> dict:
        """Report a payment of ``fen`` the way the app renders it."""
        return await self.push(pay_type, java_double(fen), t)


@dataclass
class QrPoolServer:
    """A gateway with the qrpool channel over real HTTP, and our own handle on it with the same settings."""

    url: str
    gateway: Gateway

    @property
    def host(self) -> str:
        return self.url.removeprefix("http://")

    def client(self) -> httpx.AsyncClient:
        return httpx.AsyncClient(base_url=self.url, timeout=10)

    async def pair(
        self, account_name: str = "wx-main", pay_type: str = "wxpay", *, generic: str | None = GENERIC
    ) -> tuple[QrAccount, QrDevice, VmqPhone]:
        """A receiving account (made if missing) with a newly paired phone that just sent a heartbeat."""
        db = self.gateway.db
        try:
            account = await accounts.find_account(db, account_name)
        except accounts.QrPoolError:
            account = await accounts.create_account(db, account_name, pay_type)
            if generic is not None:
                await accounts.add_code(db, account.id, generic, None)
        device, key = await accounts.add_device(db, self.gateway.box, account.id, f"phone-{account_name}")
        await accounts.record_heartbeat(db, device.id, utcnow())
        return account, device, VmqPhone(accounts.pairing_string(self.host, key))


@asynccontextmanager
async def qrpool_server(database_url: str, **overrides: object) -> AsyncIterator[QrPoolServer]:
    """The app as ``openepay serve`` runs it with ``OPENEPAY_QRPOOL=1`` (the sandbox off), on loopback."""
    settings = qrpool_settings(database_url, **overrides)
    thread = ServerThread(create_app(settings)).start()
    gateway = await Gateway.open(settings)
    try:
        yield QrPoolServer(thread.url, gateway)
    finally:
        thread.stop()
        await gateway.aclose()


# What a test looks at after a phone spoke: the orders, the notifications, the reservations, the events.


async def reload(gateway: Gateway, order: Order) -> Order:
    async with gateway.db.session() as session:
        stored = await session.get(Order, order.id, populate_existing=True)
    assert stored is not None
    return stored


async def notifications(gateway: Gateway) -> dict[str, int]:
    """How many notifications the outbox holds per order (by our trade number)."""
    async with gateway.db.session() as session:
        rows = (await session.execute(select(Order.trade_no, NotifyTask.id).join(Order))).all()
    counts: dict[str, int] = {}
    for trade_no, _ in rows:
        counts[trade_no] = counts.get(trade_no, 0) + 1
    return counts


async def reservation_of(gateway: Gateway, order: Order) -> AmountReservation:
    async with gateway.db.session() as session:
        return (await session.scalars(select(AmountReservation).where(AmountReservation.order_id == order.id))).one()


async def stored_events(gateway: Gateway) -> list[PaymentEvent]:
    async with gateway.db.session() as session:
        return list((await session.scalars(select(PaymentEvent).order_by(PaymentEvent.id))).all())


async def audit_log(gateway: Gateway) -> list[AuditEntry]:
    async with gateway.db.session() as session:
        return list((await session.scalars(select(AuditEntry).order_by(AuditEntry.id))).all())

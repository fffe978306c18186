"""An order as V免签 describes it: found by our number, its state code, its QR kind, and closing it.

V免签's ``getOrder``, ``checkOrder`` and ``closeOrder`` name orders by ``orderId``, which the
first two take without any signature; ours is the order's buyer handle (``core.buyer_links``),
so order numbers cannot be walked there. They only ever see orders this dialect created for the
merchant of the path, so they cannot be used to read other dialects' orders or to have their
messages signed in V免签's format.
"""

from __future__ import annotations

import re

from sqlalchemy import exists, select

from openepay.channels.qrpool.channel import QrPoolChannel
from openepay.core.orders import close_if_expired, find_merchant_order
from openepay.core.states import SETTLED_PAID, UNPAID, NotifyStatus
from openepay.db import Database
from openepay.db.models import NotifyTask, Order, QrCode
from openepay.notify.outbox import PAID_EVENT
from openepay.protocols.vmq import DIALECT

# V免签's ``state``: -1 expired (or closed), 0 waiting, 1 paid, 2 paid but the notification failed.
STATE_CLOSED = -1
STATE_WAITING = 0
STATE_PAID = 1
STATE_NOTIFY_FAILED = 2

TRADE_NO = re.compile(r"[0-9]{1,32}")


async def find_order(db: Database, merchant_pid: int, trade_no: str) -> Order | None:
    """The merchant's V免签 order ``trade_no``, closed first if its time ran out (as V免签's sweeper would)."""
    if not TRADE_NO.fullmatch(trade_no):
        return None
    order = await find_merchant_order(db, merchant_pid, trade_no=trade_no)
    if order is None or order.dialect != DIALECT:
        return None
    return await close_if_expired(db, order)


async def state_code(db: Database, order: Order) -> int:
    if order.status in UNPAID:
        return STATE_WAITING
    if order.status not in SETTLED_PAID:
        return STATE_CLOSED
    async with db.reading() as session:
        failed = await session.scalar(
            select(
                exists().where(
                    NotifyTask.order_id == order.id,
                    NotifyTask.event == PAID_EVENT,
                    NotifyTask.status == NotifyStatus.FAILED,
                )
            )
        )
    return STATE_NOTIFY_FAILED if failed else STATE_PAID


async def is_fixed_amount_code(db: Database, order: Order) -> bool:
    """Whether the buyer scans a code fixed to the amount (V免签 ``isAuto`` 0) rather than typing it in.

    Only the personal-code pool has fixed-amount codes: the order's QR content is one of them
    when the pool holds that content for exactly the amount the buyer must pay. An order of any
    other channel is answered without asking the database (a create stays one statement).
    """
    content = order.qrcode or order.pay_url
    if order.channel != QrPoolChannel.name or not content:
        return False
    async with db.reading() as session:
        return bool(
            await session.scalar(
                select(exists().where(QrCode.content == content, QrCode.amount_fen == order.pay_amount_fen))
            )
        )

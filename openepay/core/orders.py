"""Placing orders, attaching upstream payments, closing, and the guarded transitions between.

Every state change is one ``UPDATE ... WHERE id = :id AND status IN (...)``; when it matches
no row somebody else got there first, and the caller re-reads instead of carrying on.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, NamedTuple, TypeVar

from sqlalchemy import ColumnElement, Select, bindparam, delete, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import configure_mappers

from openepay.channels.base import ChannelOrder, PaymentOffer
from openepay.core import usage
from openepay.core.ids import trade_numbers
from openepay.core.states import SETTLED_PAID, UNPAID, OrderStatus
from openepay.db import Database
from openepay.db.models import UNPAID_ORDER, Order
from openepay.db.types import utcnow


class OrderRejected(Exception):
    """A request for an order that cannot be placed; dialects map each kind to their own error."""

    def __init__(self, out_trade_no: str) -> None:
        super().__init__(out_trade_no)
        self.out_trade_no = out_trade_no


class OrderAlreadyPaid(OrderRejected):
    pass


class OrderTermsChanged(OrderRejected):
    pass


class DuplicateOutTradeNo(OrderRejected):
    pass


class OrderNotPayable(Exception):
    """The order left the unpaid states while a payment was being started for it."""

    def __init__(self, status: str) -> None:
        super().__init__(status)
        self.status = status


@dataclass(frozen=True)
class NewOrder:
    merchant_pid: int
    dialect: str
    out_trade_no: str
    amount_fen: int
    money: str
    name: str
    notify_url: str
    pay_type: str | None = None
    return_url: str | None = None
    param: str | None = None
    sitename: str | None = None
    clientip: str | None = None
    device: str | None = None
    attrs: dict[str, Any] = field(default_factory=dict)

    def same_terms_as(self, order: Order) -> bool:
        """Rainbow's rule for a repeated ``out_trade_no``: same money, name, URLs and param; and
        the same dialect, since an order is notified only in the dialect it was created with."""
        return (
            order.dialect == self.dialect
            and order.amount_fen == self.amount_fen
            and order.name == self.name
            and order.notify_url == self.notify_url
            and (order.return_url or "") == (self.return_url or "")
            and (order.param or "") == (self.param or "")
            and order.attrs == self.attrs
        )


@dataclass(frozen=True)
class PlacedOrder:
    order: Order
    reused: bool


async def place_order(
    db: Database, new: NewOrder, *, timeout: timedelta, reopen_identical: bool, now: datetime | None = None
) -> PlacedOrder:
    """Create the order, or hand back the existing one for the same ``out_trade_no``.

    With ``reopen_identical`` an unpaid order repeated with the same terms is the same order
    (merchant plugins re-post when the buyer refreshes), reopened if it had expired;
    otherwise any repeat is refused. The UNIQUE constraint, not a lookup, is the guard: a new
    order is one ``INSERT ... ON CONFLICT DO NOTHING``, and two identical requests racing both
    end up with one order. ``now`` is the moment of the request (the clock's when not given):
    the new order counts its expiry from it, and a repeat decides by it whether the order expired.
    """
    for _ in range(5):
        moment = now or utcnow()
        try:
            inserted = await insert_order(db, order_values(new, trade_numbers.next(), moment, timeout))
        except IntegrityError:
            continue  # our number was taken: draw another
        if inserted is not None:
            return PlacedOrder(inserted, reused=False)
        async with db.session() as session:
            existing = await _find(session, new.merchant_pid, new.out_trade_no)
            if existing is not None:
                order = await _reuse(session, existing, new, moment, timeout, reopen_identical)
                return PlacedOrder(order, reused=True)
    raise RuntimeError(f"could not place order {new.out_trade_no!r}")


def order_values(new: NewOrder, trade_no: str, now: datetime, timeout: timedelta) -> dict[str, Any]:
    """The columns of a new order, before any payment offer."""
    return {
        "trade_no": trade_no,
        "merchant_pid": new.merchant_pid,
        "dialect": new.dialect,
        "out_trade_no": new.out_trade_no,
        "pay_type": new.pay_type,
        "amount_fen": new.amount_fen,
        "pay_amount_fen": new.amount_fen,
        "money": new.money,
        "name": new.name,
        "notify_url": new.notify_url,
        "return_url": new.return_url,
        "param": new.param,
        "sitename": new.sitename,
        "clientip": new.clientip,
        "device": new.device,
        "attrs": new.attrs,
        "status": OrderStatus.CREATED,
        "refunded_fen": 0,
        "paid_late": False,
        "qrcode_any_amount": False,
        "created_at": now,
        "expires_at": now + timeout,
    }


async def insert_order(db: Database, values: dict[str, Any]) -> Order | None:
    """Write a new order in one statement; None when the merchant already has an order with its ``out_trade_no``.

    The order handed back is the row as written: the columns ``values`` names and the database's
    ``id`` (the only column it fills in itself: every column with a server default is in
    ``order_values``), the others empty. Returning the whole row would have the driver and
    SQLAlchemy decode some thirty columns (two of them JSON) that are already at hand.
    """
    row = await db.one(_INSERT[db.dialect == "postgresql"], values)
    if row is None:
        return None
    return detached_order({**_EMPTY_ORDER, **values, "attrs": dict(values["attrs"]), "id": row["id"]})


def _insert(dialect_insert: Any) -> Any:
    # Built once: the values come as parameters, so each order costs no statement building.
    return (
        dialect_insert(Order)
        .on_conflict_do_nothing(index_elements=["merchant_pid", "out_trade_no"])
        .returning(Order.id)
    )


_EMPTY_ORDER: dict[str, Any] = dict.fromkeys(Order.__table__.c.keys())
_INSERT = {True: _insert(postgresql.insert), False: _insert(sqlite.insert)}


async def _find(session: AsyncSession, merchant_pid: int, out_trade_no: str) -> Order | None:
    return await session.scalar(select(Order).where(*_by_out_trade_no(merchant_pid, out_trade_no)))


def _by_out_trade_no(merchant_pid: int, out_trade_no: str) -> tuple[ColumnElement[bool], ...]:
    return (Order.merchant_pid == merchant_pid, Order.out_trade_no == out_trade_no)


async def _reuse(
    session: AsyncSession,
    existing: Order,
    new: NewOrder,
    now: datetime,
    timeout: timedelta,
    reopen_identical: bool,
) -> Order:
    if existing.status in SETTLED_PAID:
        raise OrderAlreadyPaid(new.out_trade_no)
    if not reopen_identical:
        raise DuplicateOutTradeNo(new.out_trade_no)
    if not new.same_terms_as(existing):
        raise OrderTermsChanged(new.out_trade_no)
    if existing.status in UNPAID and existing.expires_at > now:
        return existing
    reopened = await session.scalar(
        update(Order)
        .where(Order.id == existing.id, Order.status.in_((*UNPAID, OrderStatus.CLOSED)))
        .values(
            status=OrderStatus.CREATED,
            expires_at=now + timeout,
            closed_at=None,
            pay_url=None,
            qrcode=None,
            urlscheme=None,
        )
        .returning(Order)
        .execution_options(populate_existing=True)
    )
    if reopened is None:
        raise OrderAlreadyPaid(new.out_trade_no)
    return reopened


async def attach_payment(
    db: Database,
    order_id: int,
    *,
    channel: str,
    pay_type: str,
    device: str | None,
    offer: PaymentOffer,
    account_id: int | None = None,
    usage_day: str | None = None,
    routing: dict[str, Any] | None = None,
) -> Order:
    """Record the channel account's offer and move the order to ``paying``.

    An earlier offer's account stops counting the order (the buyer switched pay types) in the
    same transaction that the new account starts to.
    """
    values = offer_values(
        channel=channel,
        account_id=account_id,
        usage_day=usage_day,
        routing=routing,
        pay_type=pay_type,
        device=device,
        offer=offer,
    )
    async with db.session() as session:
        await usage.release_order(session, order_id, only_closed=False)
        order = await session.scalar(
            update(Order)
            .where(Order.id == order_id, Order.status.in_(UNPAID))
            .values(**values)
            .returning(Order)
            .execution_options(populate_existing=True)
        )
        if order is None:
            current = await session.get(Order, order_id)
            raise OrderNotPayable(current.status if current else "missing")
        return order


def offer_values(
    *,
    channel: str,
    account_id: int | None,
    usage_day: str | None,
    routing: dict[str, Any] | None,
    pay_type: str,
    device: str | None,
    offer: PaymentOffer,
) -> dict[str, Any]:
    """The columns that record a channel account's offer and make the order ``paying``."""
    values: dict[str, Any] = {
        "channel": channel,
        "channel_account_id": account_id,
        "usage_day": usage_day,
        "routing": routing,
        "pay_type": pay_type,
        "device": device,
        "pay_url": offer.pay_url,
        "qrcode": offer.qrcode,
        "urlscheme": offer.urlscheme,
        "pay_info": offer.pay_info,
        "channel_trade_no": offer.channel_trade_no,
        "qrcode_any_amount": offer.any_amount,
        "status": OrderStatus.PAYING,
    }
    if offer.pay_amount_fen is not None:
        values["pay_amount_fen"] = offer.pay_amount_fen
    return values


async def discard_unoffered(db: Database, order_id: int) -> bool:
    """Forget an order no channel would take, so the merchant can try the same number again.

    Only an order that never got a payment offer can go: nobody has seen a QR code or a pay
    page for it, and nothing else refers to it.
    """
    async with db.session() as session:
        result = await session.execute(
            delete(Order).where(
                Order.id == order_id,
                Order.status == OrderStatus.CREATED,
                Order.channel.is_(None),
                Order.pay_url.is_(None),
                Order.qrcode.is_(None),
                Order.urlscheme.is_(None),
                Order.pay_info.is_(None),
            )
        )
        return bool(result.rowcount)


async def close_expired(db: Database, now: datetime | None = None, limit: int = 500) -> list[Order]:
    """Close unpaid orders past their expiry; returns them so their channels can close upstream."""
    now = now or utcnow()
    due = select(Order.id).where(UNPAID_ORDER, Order.expires_at <= now).limit(limit)
    async with db.session() as session:
        result = await session.scalars(
            update(Order)
            .where(Order.id.in_(due), Order.status.in_(UNPAID))
            .values(status=OrderStatus.CLOSED, closed_at=now)
            .returning(Order)
            .execution_options(populate_existing=True)
        )
        return list(result.all())


async def close_if_expired(db: Database, order: Order, now: datetime | None = None) -> Order:
    """Close one order on sight (the cashier must not show a live QR past expiry): from the very
    moment ``now`` (the clock's when not given) reaches its expiry."""
    now = now or utcnow()
    if order.status not in UNPAID or order.expires_at > now:
        return order
    async with db.session() as session:
        closed = await session.scalar(
            update(Order)
            .where(Order.id == order.id, Order.status.in_(UNPAID), Order.expires_at <= now)
            .values(status=OrderStatus.CLOSED, closed_at=now)
            .returning(Order)
            .execution_options(populate_existing=True)
        )
        return closed or await session.get(Order, order.id, populate_existing=True) or order


async def close_order(db: Database, order: Order) -> Order | None:
    """Close an order nobody has paid yet, at the merchant's request; None when it had left the unpaid states.

    Only the status changes: the expiry stays, so whatever the channel holds for the order (a
    personal-code pool keeps the amount until expiry plus its grace) is released on its usual
    schedule, never early, and a late payment still finds its order.
    """
    async with db.session() as session:
        return await session.scalar(
            update(Order)
            .where(Order.id == order.id, Order.status.in_(UNPAID))
            .values(status=OrderStatus.CLOSED, closed_at=utcnow())
            .returning(Order)
            .execution_options(populate_existing=True)
        )


async def get_order(db: Database, trade_no: str) -> Order | None:
    return await _one_order(db, _BY_TRADE_NO, trade_no=trade_no)


async def find_merchant_order(
    db: Database, merchant_pid: int, *, trade_no: str | None = None, out_trade_no: str | None = None
) -> Order | None:
    """Look an order up for its merchant by our number or theirs (ours wins when both are given)."""
    row = await _merchant_order_row(db.one, _MERCHANT_LOOKUPS, merchant_pid, trade_no, out_trade_no)
    return None if row is None else detached_order(row)


# A row as ``Database.one`` (by column name) or ``Database.row`` (in column order) reads it.
_Row = TypeVar("_Row")


async def _merchant_order_row(
    read: Callable[[Select[Any], dict[str, Any]], Awaitable[_Row | None]],
    lookups: tuple[Select[Any], Select[Any]],
    merchant_pid: int,
    trade_no: str | None,
    out_trade_no: str | None,
) -> _Row | None:
    """The row ``lookups`` (by our number, by theirs) read for the merchant with ``read`` (``Database.one``
    by column name, or ``Database.row`` in column order); ours wins when both are given."""
    by_trade_no, by_out_trade_no = lookups
    if trade_no:
        return await read(by_trade_no, {"pid": merchant_pid, "trade_no": trade_no})
    if out_trade_no:
        return await read(by_out_trade_no, {"pid": merchant_pid, "out_trade_no": out_trade_no})
    return None


# The lookups, built once with their parameters named. The one by the merchant's number can
# only use the UNIQUE (merchant_pid, out_trade_no) index for both conditions; PostgreSQL plans it
# for its own values every time (``plan_cache_mode``, ``openepay.db.engine``).
_ORDER = select(*Order.__table__.c)
_BY_TRADE_NO = _ORDER.where(Order.trade_no == bindparam("trade_no"))
_MERCHANTS_BY_TRADE_NO = _BY_TRADE_NO.where(Order.merchant_pid == bindparam("pid"))
_BY_OUT_TRADE_NO = _ORDER.where(Order.merchant_pid == bindparam("pid"), Order.out_trade_no == bindparam("out_trade_no"))
_MERCHANT_LOOKUPS = (_MERCHANTS_BY_TRADE_NO, _BY_OUT_TRADE_NO)


class OrderSummary(NamedTuple):
    """What a merchant's order lookup answers with (``api.php?act=order``): a third of an order's columns.

    Read with one narrow statement, because a lookup's own work is mostly the row: every column
    the driver decodes (two of them JSON) and converts was a third of a lookup's CPU, and an
    ``Order`` object adds more."""

    trade_no: str
    out_trade_no: str
    channel_trade_no: str | None
    pay_type: str | None
    merchant_pid: int
    created_at: datetime
    paid_at: datetime | None
    name: str
    amount_fen: int
    param: str | None
    buyer: str | None
    status: str
    pay_url: str | None


# The merchant's lookups with only the summary's columns: the same conditions, so the same index.
_SUMMARY_COLUMNS = tuple(Order.__table__.c[name] for name in OrderSummary._fields)
_SUMMARY_LOOKUPS = (
    _MERCHANTS_BY_TRADE_NO.with_only_columns(*_SUMMARY_COLUMNS),
    _BY_OUT_TRADE_NO.with_only_columns(*_SUMMARY_COLUMNS),
)


async def find_merchant_order_summary(
    db: Database, merchant_pid: int, *, trade_no: str | None = None, out_trade_no: str | None = None
) -> OrderSummary | None:
    """``find_merchant_order``, reading only what a lookup answers with (the same statement otherwise)."""
    row = await _merchant_order_row(db.row, _SUMMARY_LOOKUPS, merchant_pid, trade_no, out_trade_no)
    return None if row is None else OrderSummary._make(row)


async def _one_order(db: Database, statement: Select[Any], **params: object) -> Order | None:
    """One order read with one Core statement (no unit of work), as a detached ``Order``."""
    row = await db.one(statement, params)
    return None if row is None else detached_order(row)


def detached_order(row: Mapping[str, Any]) -> Order:
    """The order of a row read with Core (or of the columns of one not written yet), not in any session:
    its columns set directly (the constructor would record each of some thirty columns as a change,
    a tenth of a lookup's work)."""
    order: Order = _ORDER_MANAGER.new_instance()
    order.__dict__.update(row)
    return order


_ORDER_MANAGER = Order.__mapper__.class_manager
# ``detached_order`` skips the constructor, which is what sets the mappers up on first use: a
# process whose first order is a create's draft or a lookup would otherwise find no attributes.
configure_mappers()


def channel_view(order: Order) -> ChannelOrder:
    return payment_view(order, order.pay_type or "", order.device)


def draft_view(values: Mapping[str, Any], pay_type: str, device: str | None) -> ChannelOrder:
    """``payment_view`` of an order not written yet, from its columns (``order_values``): reading them
    through a draft ``Order``'s attributes cost a create more than the view itself."""
    return _view(values.get, pay_type, device)


def payment_view(order: Order, pay_type: str, device: str | None) -> ChannelOrder:
    """``channel_view`` of the order as it is being paid, with this pay type on this device (built at
    once: a copy with them replaced costs a create a second view)."""
    return _view(order.__getattribute__, pay_type, device)


def _view(column: Callable[[str], Any], pay_type: str, device: str | None) -> ChannelOrder:
    """The channel's view of an order whose columns ``column`` reads by name."""
    attrs = column("attrs") or {}
    return ChannelOrder(
        trade_no=column("trade_no"),
        pay_type=pay_type,
        pay_amount_fen=column("pay_amount_fen"),
        name=column("name"),
        created_at=column("created_at"),
        expires_at=column("expires_at"),
        device=device,
        clientip=column("clientip"),
        channel_trade_no=column("channel_trade_no"),
        openid=attrs.get("sub_openid"),
        appid=attrs.get("sub_appid"),
    )

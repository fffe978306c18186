"""The signed V2 merchant API: ``pay/query``, ``pay/refund``, ``pay/refundquery``, ``merchant/info``
and ``merchant/orders``.

Every request goes through ``authenticate`` (Rainbow's ``ApiHelper::verify``); every success
is ``code: 0`` plus ``timestamp``, ``sign_type=RSA`` and the platform's signature over the
answer's scalar fields. Fields Rainbow leaves out when empty are left out here too.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta

from fastapi import APIRouter
from sqlalchemy import func, select
from starlette.requests import Request
from starlette.responses import Response

from openepay.core.money import MoneyError, format_yuan, parse_yuan
from openepay.core.orders import find_merchant_order
from openepay.core.refunds import RefundError, refund_order
from openepay.core.replay import first_sighting
from openepay.core.states import SETTLED_PAID, MerchantStatus
from openepay.db.models import Merchant, Order, Refund
from openepay.gateway import Gateway
from openepay.protocols.epay.merchant_api import REFUND_MESSAGES, REPEATED_REFUND, STATUSES_FOR, local_time
from openepay.protocols.epay.merchant_api import order_fields as v1_order_fields
from openepay.protocols.epay.routes import BUSY
from openepay.protocols.epay_v2.pay import ANY_METHOD, NO_PARAMETERS
from openepay.protocols.epay_v2.platform_key import platform_key
from openepay.protocols.epay_v2.signing import PHP_TRIM
from openepay.protocols.epay_v2.verification import (
    API_BANNED,
    API_DOOR,
    TIMESTAMP_WINDOW,
    V2Error,
    authenticate,
    body_params,
)
from openepay.protocols.params import php_empty, php_intval
from openepay.web.deps import client_address, gateway_of
from openepay.web.responses import JSONResponse, error_answer

log = logging.getLogger(__name__)
router = APIRouter()

PAGE_LIMIT = 50
MAX_NUMBER = 64  # no order or refund number of ours or a merchant's is longer
# A request is fresh for 300 s either side of its timestamp, so a copy can come back for 600 s.
REPLAY_WINDOW = timedelta(seconds=2 * TIMESTAMP_WINDOW)
REPLAYED = "请求重复，请勿重复提交"
REFUND_STATUS = {"succeeded": 1}  # Rainbow: 1 成功, 0 失败 (and anything not finished)

Fields = dict[str, object]


def _number(params: dict[str, str], name: str) -> str | None:
    """A lookup number as Rainbow reads it (PHP ``empty()`` means absent); "" for one that can match nothing."""
    value = params.get(name)
    if value is None or php_empty(value):
        return None
    if len(value) > MAX_NUMBER:
        return ""
    return value


def _without_empty(fields: Fields) -> Fields:
    """Rainbow's ``array_filter(..., !isEmpty)``: missing and blank values go, zeros stay."""
    return {name: value for name, value in fields.items() if value is not None and str(value).strip(PHP_TRIM)}


def order_fields(gateway: Gateway, order: Order) -> Fields:
    """V1's order fields without ``trade_status`` (V2 has only the number), plus ``clientip`` and ``refundmoney``."""
    fields: Fields = {name: value for name, value in v1_order_fields(gateway, order).items() if name != "trade_status"}
    fields["clientip"] = order.clientip
    fields["refundmoney"] = format_yuan(order.refunded_fen) if order.refunded_fen else None
    return fields


async def _find_order(gateway: Gateway, merchant: Merchant, params: dict[str, str]) -> Order | None:
    trade_no, out_trade_no = _number(params, "trade_no"), _number(params, "out_trade_no")
    if trade_no is None and out_trade_no is None:
        raise V2Error("订单号不能为空")
    if trade_no == "" or (trade_no is None and out_trade_no == ""):
        return None
    return await find_merchant_order(gateway.db, merchant.pid, trade_no=trade_no, out_trade_no=out_trade_no)


async def pay_query(gateway: Gateway, merchant: Merchant, params: dict[str, str]) -> Fields:
    order = await _find_order(gateway, merchant, params)
    if order is None:
        raise V2Error("订单号不存在")
    return _without_empty({"code": 0, **order_fields(gateway, order)})


async def refuse_replay(gateway: Gateway, merchant: Merchant, endpoint: str, signed: str) -> None:
    """A request that moves money is accepted once within its replay window.

    It is recognised by the content its signature covers, never by how the signature or the
    unsigned rest is spelled: a signature has many spellings a verifier accepts (hex in
    capitals, ``+`` sent as a space), and blank fields are not signed, so only the signed
    content is the same for every copy of one request.
    """
    nonce = hashlib.sha256(signed.encode()).hexdigest()
    if not await first_sighting(gateway.db, f"epay_v2:{endpoint}:{merchant.pid}", nonce, REPLAY_WINDOW):
        raise V2Error(REPLAYED, -3)


async def pay_refund(gateway: Gateway, merchant: Merchant, params: dict[str, str]) -> Fields:
    if not merchant.refund_enabled:
        raise V2Error("商户未开启订单退款API接口", -2)
    try:
        amount_fen = parse_yuan(params.get("money", "").strip(PHP_TRIM))
    except MoneyError:
        raise V2Error("金额输入错误") from None
    order = await _find_order(gateway, merchant, params)
    out_refund_no = params.get("out_refund_no") or None
    if out_refund_no is not None and len(out_refund_no) > MAX_NUMBER:
        raise V2Error("退款单号不合法")
    try:
        result = await refund_order(gateway.db, gateway, order, amount_fen, out_refund_no=out_refund_no)
    except RefundError as error:
        raise V2Error(REFUND_MESSAGES[error.problem]) from None
    refund = result.refund
    money = format_yuan(refund.amount_fen)
    message = f"{REPEATED_REFUND if result.repeated else '退款成功！'}退款金额￥{money}"
    return _without_empty(
        {
            "code": 0,
            "refund_no": refund.refund_no,
            "out_refund_no": refund.out_refund_no,
            "trade_no": result.order.trade_no,
            "out_trade_no": result.order.out_trade_no,
            "money": money,
            "reducemoney": money,  # the whole refund comes off the merchant's balance
            "msg": message,
        }
    )


async def pay_refundquery(gateway: Gateway, merchant: Merchant, params: dict[str, str]) -> Fields:
    refund_no, out_refund_no = _number(params, "refund_no"), _number(params, "out_refund_no")
    if refund_no is None and out_refund_no is None:
        raise V2Error("商户退款单号不能为空")
    wanted = Refund.refund_no == refund_no if refund_no is not None else Refund.out_refund_no == out_refund_no
    async with gateway.db.reading() as session:
        found = (
            await session.execute(
                select(Refund, Order.trade_no, Order.out_trade_no)
                .join(Order, Order.id == Refund.order_id)
                .where(Refund.merchant_pid == merchant.pid, wanted)
            )
        ).first()
    if found is None:
        raise V2Error("退款记录不存在")
    refund, trade_no, out_trade_no = found
    money = format_yuan(refund.amount_fen)
    return _without_empty(
        {
            "code": 0,
            "refund_no": refund.refund_no,
            "out_refund_no": refund.out_refund_no,
            "trade_no": trade_no,
            "out_trade_no": out_trade_no,
            "money": money,
            "reducemoney": money,
            "status": REFUND_STATUS.get(refund.status, 0),
            "addtime": local_time(gateway, refund.created_at),
        }
    )


def _business_day(gateway: Gateway, days_ago: int) -> tuple[datetime, datetime]:
    zone = gateway.settings.zone
    start = datetime.now(zone).replace(hour=0, minute=0, second=0, microsecond=0) - timedelta(days=days_ago)
    return start, start + timedelta(days=1)


async def merchant_info(gateway: Gateway, merchant: Merchant, params: dict[str, str]) -> Fields:
    mine = Order.merchant_pid == merchant.pid
    paid = Order.status.in_(SETTLED_PAID)
    day_figures: list[tuple[int, int]] = []
    async with gateway.db.reading() as session:
        # The admitted merchant is this process's copy, which keeps no balance: payments change it.
        balance_fen = await session.scalar(select(Merchant.balance_fen).where(Merchant.pid == merchant.pid))
        order_num = await session.scalar(select(func.count()).where(mine))
        for days_ago in (0, 1):
            start, end = _business_day(gateway, days_ago)
            count, total = (
                await session.execute(
                    select(func.count(), func.coalesce(func.sum(Order.amount_fen), 0)).where(
                        mine, paid, Order.paid_at >= start, Order.paid_at < end
                    )
                )
            ).one()
            day_figures.append((count, total))
    (today_count, today_fen), (lastday_count, lastday_fen) = day_figures
    active = 1 if merchant.status == MerchantStatus.ACTIVE else 0
    return _without_empty(
        {
            "code": 0,
            "pid": merchant.pid,
            "status": active,
            "pay_status": active,
            "settle_status": active,
            "money": format_yuan(balance_fen or 0),
            "settle_type": merchant.settle_type,
            "settle_account": merchant.settle_account,
            "settle_name": merchant.settle_name,
            "order_num": order_num or 0,
            "order_num_today": today_count,
            "order_num_lastday": lastday_count,
            "order_money_today": format_yuan(int(today_fen)),
            "order_money_lastday": format_yuan(int(lastday_fen)),
        }
    )


async def merchant_orders(gateway: Gateway, merchant: Merchant, params: dict[str, str]) -> Fields:
    """Newest first; ``data`` is a list, so it is not part of the signed content (Rainbow's rule)."""
    limit = php_intval(params["limit"]) if "limit" in params else 10
    limit, offset = max(0, min(limit, PAGE_LIMIT)), max(0, php_intval(params.get("offset")))
    query = select(Order).where(Order.merchant_pid == merchant.pid)
    if "status" in params:  # Rainbow reads this one from the query string by mistake; the body is meant
        query = query.where(Order.status.in_(STATUSES_FOR.get(php_intval(params["status"]), ())))
    async with gateway.db.reading() as session:
        orders = (await session.scalars(query.order_by(Order.trade_no.desc()).limit(limit).offset(offset))).all()
    return {"code": 0, "data": [order_fields(gateway, order) for order in orders]}


Endpoint = Callable[[Gateway, Merchant, dict[str, str]], Awaitable[Fields]]
ENDPOINTS: dict[str, Endpoint] = {
    "pay/query": pay_query,
    "pay/refund": pay_refund,
    "pay/refundquery": pay_refundquery,
    "merchant/info": merchant_info,
    "merchant/orders": merchant_orders,
}
# Endpoints that move money: each signed request to them is carried out once.
ONCE_ONLY = frozenset({"pay/refund"})


@router.api_route("/api/{endpoint:path}", methods=ANY_METHOD)
async def api(request: Request, endpoint: str) -> Response:
    handler = ENDPOINTS.get(endpoint)
    if handler is None:
        return error_answer(-5, "接口方法不存在")
    gateway = gateway_of(request)
    try:
        params = await body_params(request)
        if "pid" not in params:
            return error_answer(*NO_PARAMETERS)
        merchant, signed = await authenticate(gateway, params, client_address(request), API_DOOR, API_BANNED)
        if endpoint in ONCE_ONLY:
            await refuse_replay(gateway, merchant, endpoint, signed)
        answer = await handler(gateway, merchant, params)
        return JSONResponse((await platform_key(gateway.db, gateway.box)).signed(answer))
    except V2Error as error:
        return error_answer(error.code, error.msg)
    except Exception:
        log.exception("api/%s failed", endpoint)
        return error_answer(-1, BUSY)

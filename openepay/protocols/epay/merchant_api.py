"""``api.php``: the V1 merchant API (``act=query|settle|order|orders|refund``).

Authenticated with the plain merchant key, as Rainbow does. JSON numbers are real integers
(Go clients decode ``status`` into an int), empty lists are ``[]``, and POST bodies are read
for every act because some clients send them that way.
"""

from __future__ import annotations

import hmac
import logging
from datetime import datetime, timedelta

from fastapi import APIRouter
from sqlalchemy import bindparam, func, select, true
from starlette.requests import Request
from starlette.responses import Response

from openepay.core.gate import Door, Refusal, Refused, Verifier
from openepay.core.money import MoneyError, format_yuan, parse_yuan
from openepay.core.orders import OrderSummary, find_merchant_order, find_merchant_order_summary
from openepay.core.refunds import RefundError, RefundProblem, refund_order
from openepay.core.states import SETTLED_PAID, MerchantStatus, OrderStatus
from openepay.db.models import Merchant, Order, Settlement
from openepay.gateway import Gateway
from openepay.protocols.epay import DIALECT
from openepay.protocols.epay.signing import verify
from openepay.protocols.epay.validation import unreadable
from openepay.protocols.lockout_messages import too_many
from openepay.protocols.params import UnreadableParameter, merged, php_intval
from openepay.protocols.refusals import REFUND_REFUSED
from openepay.web.deps import client_address, gateway_of
from openepay.web.responses import JSONResponse, error_answer

log = logging.getLogger(__name__)
router = APIRouter()

PAGE_LIMIT = 50

# Rainbow's status numbers: 0 unpaid, 1 paid, 2 refunded. Looked up by the status as read (a ``str``,
# which finds its ``OrderStatus`` key): no enum made per order, and an unknown status still raises.
EPAY_STATUS = {
    OrderStatus.CREATED: 0,
    OrderStatus.PAYING: 0,
    OrderStatus.CLOSED: 0,
    OrderStatus.PAID: 1,
    OrderStatus.PARTIALLY_REFUNDED: 2,
    OrderStatus.REFUNDED: 2,
}
STATUSES_FOR = {
    0: (OrderStatus.CREATED, OrderStatus.PAYING, OrderStatus.CLOSED),
    1: (OrderStatus.PAID,),
    2: (OrderStatus.PARTIALLY_REFUNDED, OrderStatus.REFUNDED),
}
TRADE_STATUS = {0: "WAIT_BUYER_PAY", 1: "TRADE_SUCCESS", 2: "TRADE_REFUND"}

REFUND_MESSAGES = {
    RefundProblem.ORDER_NOT_FOUND: "当前订单不存在！",
    RefundProblem.NOT_PAID: "只支持退款已支付状态的订单",
    RefundProblem.EXCEEDS_ORDER: "退款金额不能大于订单金额",
    RefundProblem.INSUFFICIENT_BALANCE: "商户余额不足，请先充值",
    RefundProblem.OUT_REFUND_NO_REUSED: "退款单号已被其他退款使用",
    RefundProblem.EARLIER_IN_PROGRESS: "该退款单号的退款正在处理中，请稍后查询",
    RefundProblem.EARLIER_FAILED: "该退款单号的退款未成功，请更换退款单号(out_refund_no)后重试",
    **REFUND_REFUSED,
}
# Rainbow V2's answer to a refund number it has already refunded (followed by the amount).
REPEATED_REFUND = "已存在相同退款单号！"


# The key first: only its holder learns that the merchant is banned or not on V1.
DOOR = Door(DIALECT, permissions_first=False)
REFUSALS = {
    Refusal.NO_SUCH_MERCHANT: "商户ID不存在",
    Refusal.BAD_SIGNATURE: "商户密钥错误",
    Refusal.DISABLED: "商户已封禁",
    Refusal.DIALECT_NOT_ENABLED: "商户未开通易支付V1接口",
}
AUTH_ERROR = -3


class ApiError(Exception):
    def __init__(self, code: int, msg: str) -> None:
        super().__init__(msg)
        self.code = code
        self.msg = msg


def local_time(gateway: Gateway, moment: datetime | None) -> str | None:
    """``YYYY-MM-DD HH:MM:SS`` in the gateway's zone, as Rainbow writes its times.

    Cut from ``isoformat``, which writes the same digits at half the cost of ``strftime`` (a
    lookup writes one or two); they differ only before the year 1000, which no order has."""
    if moment is None:
        return None
    return moment.astimezone(gateway.settings.zone).isoformat(" ", "seconds")[:19]


def _key_or_signature(params: dict[str, str]) -> Verifier:
    """The plain key, as Rainbow takes it; a merchant-signed request without the key also passes."""
    given = params.get("key")

    def check(merchant: Merchant, key: str) -> bool:
        if given is not None:
            return hmac.compare_digest(given.encode(), key.encode())
        return bool(params.get("sign")) and verify(params, key)

    return check


async def _authenticate(gateway: Gateway, params: dict[str, str], client: str) -> tuple[Merchant, str]:
    pid = php_intval(params.get("pid"))
    try:
        admission = await gateway.gate.admit_with_key(DOOR, pid, client, _key_or_signature(params))
    except Refused as refused:
        if refused.reason == Refusal.LOCKED_OUT:
            raise ApiError(AUTH_ERROR, too_many("商户密钥错误", refused.retry_after)) from None
        raise ApiError(AUTH_ERROR, REFUSALS[refused.reason]) from None
    return admission.merchant, admission.key


def order_fields(gateway: Gateway, order: Order | OrderSummary) -> dict[str, object]:
    status = EPAY_STATUS[order.status]
    return {
        "trade_no": order.trade_no,
        "out_trade_no": order.out_trade_no,
        "api_trade_no": order.channel_trade_no,
        "type": order.pay_type,
        "pid": order.merchant_pid,
        "addtime": local_time(gateway, order.created_at),
        "endtime": local_time(gateway, order.paid_at),
        "name": order.name,
        "money": format_yuan(order.amount_fen),
        "param": order.param,
        "buyer": order.buyer,
        "status": status,
        "trade_status": TRADE_STATUS[status],
    }


# ``act=query`` in one statement, so one snapshot and one round trip: the balance (the admitted
# merchant is this process's copy, which keeps no balance: payments change it), every order of the
# merchant, and its orders paid today and yesterday counted in one pass over the orders paid since
# yesterday (each was a statement of its own, in a transaction of its own).
_PAID_SINCE_YESTERDAY = (
    select(
        func.count().filter(Order.paid_at >= bindparam("today")).label("today"),
        func.count().filter(Order.paid_at < bindparam("today")).label("yesterday"),
    )
    .where(
        Order.merchant_pid == bindparam("pid"),
        Order.status.in_(SETTLED_PAID),
        Order.paid_at >= bindparam("yesterday"),
    )
    .subquery()
)
_ALL_ORDERS = select(func.count().label("orders")).where(Order.merchant_pid == bindparam("pid")).subquery()
_QUERY = select(
    select(Merchant.balance_fen).where(Merchant.pid == bindparam("pid")).scalar_subquery().label("balance_fen"),
    _ALL_ORDERS.c.orders,
    _PAID_SINCE_YESTERDAY.c.today,
    _PAID_SINCE_YESTERDAY.c.yesterday,
).select_from(_ALL_ORDERS.join(_PAID_SINCE_YESTERDAY, true()))  # one row each: joined as they are


async def act_query(gateway: Gateway, merchant: Merchant, key: str, params: dict[str, str]) -> dict[str, object]:
    today = datetime.now(gateway.settings.zone).replace(hour=0, minute=0, second=0, microsecond=0)
    async with gateway.db.reading() as session:
        counts = (
            await session.execute(_QUERY, {"pid": merchant.pid, "today": today, "yesterday": today - timedelta(days=1)})
        ).one()
    return {
        "code": 1,
        "pid": merchant.pid,
        "key": key,
        "active": 1 if merchant.status == MerchantStatus.ACTIVE else 0,
        "money": format_yuan(counts.balance_fen or 0),
        "type": merchant.settle_type,
        "account": merchant.settle_account,
        "username": merchant.settle_name,
        "orders": counts.orders,
        "orders_today": counts.today,
        "orders_lastday": counts.yesterday,
        "order_today": counts.today,
        "order_lastday": counts.yesterday,
    }


def _page(params: dict[str, str]) -> tuple[int, int]:
    limit = php_intval(params["limit"]) if "limit" in params else 10
    return max(0, min(limit, PAGE_LIMIT)), max(0, php_intval(params.get("offset")))


async def act_settle(gateway: Gateway, merchant: Merchant, key: str, params: dict[str, str]) -> dict[str, object]:
    limit, offset = _page(params)
    async with gateway.db.reading() as session:
        rows = (
            await session.scalars(
                select(Settlement)
                .where(Settlement.merchant_pid == merchant.pid)
                .order_by(Settlement.id.desc())
                .limit(limit)
                .offset(offset)
            )
        ).all()
    data = [
        {
            "id": row.id,
            "uid": row.merchant_pid,
            "type": row.settle_type,
            "account": row.account,
            "username": row.username,
            "money": format_yuan(row.amount_fen),
            "addtime": local_time(gateway, row.created_at),
            "endtime": local_time(gateway, row.finished_at),
            "status": row.status,
        }
        for row in rows
    ]
    return {"code": 1, "msg": "查询结算记录成功！", "data": data}


async def act_order(gateway: Gateway, merchant: Merchant, key: str, params: dict[str, str]) -> dict[str, object]:
    trade_no, out_trade_no = params.get("trade_no"), params.get("out_trade_no")
    if not trade_no and not out_trade_no:
        raise ApiError(-4, "订单号不能为空")
    order = await find_merchant_order_summary(gateway.db, merchant.pid, trade_no=trade_no, out_trade_no=out_trade_no)
    if order is None:
        raise ApiError(-1, "订单号不存在")
    return {"code": 1, "msg": "succ", **order_fields(gateway, order), "payurl": order.pay_url}


async def act_orders(gateway: Gateway, merchant: Merchant, key: str, params: dict[str, str]) -> dict[str, object]:
    limit, offset = _page(params)
    query = select(Order).where(Order.merchant_pid == merchant.pid)
    if "status" in params:
        query = query.where(Order.status.in_(STATUSES_FOR.get(php_intval(params["status"]), ())))
    async with gateway.db.reading() as session:
        orders = (await session.scalars(query.order_by(Order.trade_no.desc()).limit(limit).offset(offset))).all()
    data = [order_fields(gateway, order) for order in orders]
    return {"code": 1, "msg": "查询订单记录成功！", "count": len(data), "data": data}


async def act_refund(gateway: Gateway, merchant: Merchant, key: str, params: dict[str, str]) -> dict[str, object]:
    """Rainbow's refund, plus the merchant's own refund number, which makes a retry safe.

    ``api.php`` requests carry no timestamp and no nonce, so nothing tells a retry from a
    second refund of the same amount: without a number, every request refunds (as Rainbow
    does). With ``out_refund_no`` (or ``refund_no``, which Rainbow's own upstream plugin
    sends) a repeat, even one racing the first, answers the first refund and moves nothing.
    """
    if not merchant.refund_enabled:
        raise ApiError(-2, "商户未开启订单退款API接口")
    money = params.get("money", "").strip()
    try:
        amount_fen = parse_yuan(money)
    except MoneyError:
        raise ApiError(-1, "金额输入错误") from None
    trade_no, out_trade_no = params.get("trade_no"), params.get("out_trade_no")
    if not trade_no and not out_trade_no:
        raise ApiError(-4, "订单号不能为空")
    order = await find_merchant_order(gateway.db, merchant.pid, trade_no=trade_no, out_trade_no=out_trade_no)
    try:
        # Rainbow's own upstream plugin sends its refund number; a retry with it refunds once.
        out_refund_no = params.get("out_refund_no") or params.get("refund_no") or None
        if out_refund_no is not None and len(out_refund_no) > 64:
            raise ApiError(-1, "退款单号不合法")
        result = await refund_order(gateway.db, gateway, order, amount_fen, out_refund_no=out_refund_no)
    except RefundError as error:
        raise ApiError(-1, REFUND_MESSAGES[error.problem]) from None
    refunded = format_yuan(result.refund.amount_fen)
    answer: dict[str, object] = {
        "code": gateway.settings.epay_refund_success_code,
        "msg": f"{REPEATED_REFUND if result.repeated else '退款成功！'}退款金额￥{refunded}",
        "money": refunded,
        "trade_no": result.order.trade_no,
        "refund_no": result.refund.refund_no,
    }
    if result.refund.out_refund_no:
        answer["out_refund_no"] = result.refund.out_refund_no
    return answer


ACTS = {
    "query": act_query,
    "settle": act_settle,
    "order": act_order,
    "orders": act_orders,
    "refund": act_refund,
}


async def _params(request: Request) -> dict[str, str]:
    try:
        return await merged(request)
    except UnreadableParameter as error:
        raise ApiError(-1, unreadable(error).msg) from None


# A plain Starlette route, like ``mapi.php``'s: no FastAPI dependency solving on every lookup.
@router.route("/api.php", methods=["GET", "POST"])
async def api(request: Request) -> Response:
    gateway = gateway_of(request)
    try:
        params = await _params(request)
        act = ACTS.get(params.get("act", ""))
        if act is None:
            raise ApiError(-5, "No Act!")
        merchant, key = await _authenticate(gateway, params, client_address(request))
        return JSONResponse(await act(gateway, merchant, key, params))
    except ApiError as error:
        return error_answer(error.code, error.msg)
    except Exception:
        log.exception("api.php failed")
        return error_answer(-1, "系统繁忙，请稍后再试")

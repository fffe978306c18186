"""V免签's merchant endpoints: ``createOrder``, ``getOrder``, ``checkOrder``, ``closeOrder``.

V免签 has no merchant id, so each endpoint is served twice: at the site root for the merchant
configured as ``OPENEPAY_VMQ_DEFAULT_PID``, and under ``/vmq/{pid}/`` for any merchant. Plugins
join their configured gateway address and the endpoint name both ways, ``$gateway . 'createOrder'``
(dujiaoka's Vpay) and ``"$gateway/createOrder"`` (SSPanel, most Java clients), so a missing or
doubled slash between the two is accepted as well. Parameters come from the query string and
the form body together, the body winning, as ThinkPHP's ``input()`` reads them, on GET or POST.
Every answer is V免签's ``{"code", "msg", "data"}``, HTTP 200, except the browser jump of
``createOrder`` with ``isHtml=1``.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

from fastapi import APIRouter
from fastapi.responses import JSONResponse, RedirectResponse, Response
from starlette.requests import Request

from openepay.channels.base import PAY_TYPE_NAMES, ChannelRefused, RefusalReason
from openepay.core.checkout import NoChannel
from openepay.core.money import format_yuan
from openepay.core.orders import (
    NewOrder,
    OrderRejected,
)
from openepay.core.orders import (
    close_order as close_unpaid_order,
)
from openepay.core.states import SETTLED_PAID, UNPAID, OrderStatus
from openepay.db.models import Merchant, Order
from openepay.gateway import Gateway
from openepay.protocols.params import UnreadableParameter, form_params, query_params
from openepay.protocols.vmq.orders import find_order, is_fixed_amount_code, state_code
from openepay.protocols.vmq.validation import (
    BAD_CLOSE_SIGN,
    BUSY,
    DUPLICATE_PAY_ID,
    EXPIRED,
    NO_SUCH_ORDER,
    NOT_CLOSABLE,
    NOT_PAID,
    REFUNDED,
    SUCCESS,
    SUCCESS_MSG,
    VmqError,
    admit,
    close_signature_ok,
    create_signature_ok,
    unreadable,
    validate_create,
)
from openepay.web.deps import base_url, client_address, gateway_of
from openepay.web.templating import is_mobile

log = logging.getLogger(__name__)
router = APIRouter()

ROOT_PREFIXES = ("/", "//")
MERCHANT_PREFIXES = ("/vmq/{pid}/", "/vmq/{pid}//", "/vmq/{pid}")
REFUSALS = {
    RefusalReason.PAUSED: "监控端状态异常，请检查",
    RefusalReason.NO_CODE_FOR_AMOUNT: "订单超出负荷，请稍后重试",
    RefusalReason.UPSTREAM_ERROR: "支付通道下单失败，请稍后重试",
    RefusalReason.NOT_SERVED: "支付通道下单失败，请稍后重试",
}

Answer = dict[str, object]


def success(data: object = None) -> Answer:
    return {"code": SUCCESS, "msg": SUCCESS_MSG, "data": data}


async def request_params(request: Request) -> dict[str, str]:
    """Query string and body together (the body wins), or the ``VmqError`` for an unreadable parameter."""
    try:
        return {**query_params(request), **await form_params(request)}
    except UnreadableParameter as error:
        raise unreadable(error) from None


def _path_pid(request: Request) -> str | None:
    """The ``pid`` of ``/vmq/{pid}/...``; None on the root paths."""
    return request.path_params.get("pid")


async def _answer(endpoint: str, work: Callable[[], Awaitable[Answer]]) -> JSONResponse:
    try:
        return JSONResponse(await work())
    except VmqError as error:
        return JSONResponse(error.answer())
    except Exception:
        log.exception("V免签 %s failed", endpoint)
        return JSONResponse(VmqError(BUSY).answer())


# --- createOrder ------------------------------------------------------------------------------------


async def _create(gateway: Gateway, request: Request, new: NewOrder) -> Order:
    """The new order with its offer, written once where the channel allows it (``place_and_start_payment``).

    Every reuse of a payId is refused (V免签: "商户订单号已存在"); an order no channel would take
    is not kept, so the merchant may retry the same payId."""
    pay_type = new.pay_type or ""
    try:
        return await gateway.place_and_start_payment(
            new,
            pay_type=pay_type,
            device=new.device,
            request_base_url=base_url(request),
            reopen_identical=False,
            keep_unoffered=False,
        )
    except OrderRejected:
        raise VmqError(DUPLICATE_PAY_ID) from None
    except NoChannel:
        raise VmqError(f"暂无可用的{PAY_TYPE_NAMES.get(pay_type, pay_type)}收款通道，请稍后再试") from None
    except ChannelRefused as refused:
        raise VmqError(REFUSALS[refused.reason]) from None


def _minutes(order: Order) -> int:
    """V免签's ``timeOut``, whole minutes (rounded down, so a pay page never counts past the real expiry)."""
    return max(1, int((order.expires_at - order.created_at).total_seconds()) // 60)


async def order_data(gateway: Gateway, request: Request, order: Order) -> dict[str, object]:
    """createOrder's and getOrder's ``data``: what a pay page needs, never the merchant's URLs or key."""
    cashier_url = gateway.pay_context(base_url(request)).cashier_url(order.trade_no)
    return {
        "payId": order.out_trade_no,
        "orderId": gateway.links.handle(order.trade_no),
        "payType": int(order.attrs["type"]),
        "price": order.money,
        "reallyPrice": format_yuan(order.pay_amount_fen),
        "payUrl": order.qrcode or order.pay_url or cashier_url,
        "isAuto": 0 if await is_fixed_amount_code(gateway.db, order) else 1,
        "state": await state_code(gateway.db, order),
        "timeOut": _minutes(order),
        "date": int(order.created_at.timestamp()),
    }


async def create_order(request: Request) -> Response:
    gateway = gateway_of(request)
    try:
        params = await request_params(request)
        merchant = await admit(
            gateway, _path_pid(request), client_address(request), lambda _, key: create_signature_ok(params, key)
        )
        # With isHtml=1 the buyer's browser is the caller (the plugin redirected it here).
        as_html = params.get("isHtml", "").strip() == "1"
        mobile = as_html and is_mobile(request.headers.get("user-agent"))
        buyer_ip = client_address(request) if as_html else None
        new = validate_create(gateway, merchant, params, device="mobile" if mobile else "pc", clientip=buyer_ip)
        order = await _create(gateway, request, new)
        if as_html:
            return RedirectResponse(gateway.links.cashier_path(order.trade_no), status_code=302)
        return JSONResponse(success(await order_data(gateway, request, order)))
    except VmqError as error:
        return JSONResponse(error.answer())
    except Exception:
        log.exception("V免签 createOrder failed")
        return JSONResponse(VmqError(BUSY).answer())


# --- getOrder, checkOrder, closeOrder --------------------------------------------------------------


async def _order_of(gateway: Gateway, merchant: Merchant, trade_no: str | None) -> Order:
    order = await find_order(gateway.db, merchant.pid, trade_no) if trade_no else None
    if order is None:
        raise VmqError(NO_SUCH_ORDER)
    return order


async def _paths_order(gateway: Gateway, request: Request, params: dict[str, str]) -> Order:
    """The order ``orderId`` names for the path's merchant.

    No signature (V免签's pay page reads these from the buyer's browser), so ``orderId`` must be
    the buyer handle createOrder gave out: a bare order number is unknown here.
    """
    merchant = await admit(gateway, _path_pid(request), client_address(request), None)
    return await _order_of(gateway, merchant, gateway.links.trade_no_of(params.get("orderId", "")))


async def get_order(request: Request) -> Response:
    gateway = gateway_of(request)

    async def work() -> Answer:
        order = await _paths_order(gateway, request, await request_params(request))
        return success(await order_data(gateway, request, order))

    return await _answer("getOrder", work)


async def check_order(request: Request) -> Response:
    """The pay page's poll: once paid, ``data`` is where to send the buyer (the signed return URL)."""
    gateway = gateway_of(request)

    async def work() -> Answer:
        order = await _paths_order(gateway, request, await request_params(request))
        if order.status in UNPAID:
            raise VmqError(NOT_PAID)
        if order.status == OrderStatus.REFUNDED:
            raise VmqError(REFUNDED)
        if order.status not in SETTLED_PAID:
            raise VmqError(EXPIRED)
        merchant = await gateway.merchants.get(order.merchant_pid)
        target = await gateway.dialects.for_order(order).return_url(order, gateway.merchants.key_of(merchant))
        # Without a returnUrl the buyer lands on our own "paid" page.
        paid_page = gateway.pay_context(base_url(request)).cashier_url(order.trade_no) + "/return"
        return success(target or paid_page)

    return await _answer("checkOrder", work)


async def close_order(request: Request) -> Response:
    """Close an unpaid order (``sign = md5(orderId + key)``) through the guarded transition, then tell its channel."""
    gateway = gateway_of(request)

    async def work() -> Answer:
        params = await request_params(request)
        merchant = await admit(
            gateway,
            _path_pid(request),
            client_address(request),
            lambda _, key: close_signature_ok(params, key),
            bad_signature=BAD_CLOSE_SIGN,
        )
        order_id = params.get("orderId", "")
        # Signed by the merchant, so the bare number (what shops stored before orderId became a handle) will do.
        order = await _order_of(gateway, merchant, gateway.links.trade_no_of(order_id) or order_id)
        closed = await close_unpaid_order(gateway.db, order)
        if closed is None:
            raise VmqError(NOT_CLOSABLE)
        await gateway.after_close(closed)
        return success()

    return await _answer("closeOrder", work)


ENDPOINTS = {
    "createOrder": create_order,
    "getOrder": get_order,
    "checkOrder": check_order,
    "closeOrder": close_order,
}


def _register() -> None:
    for name, endpoint in ENDPOINTS.items():
        for prefix in (*ROOT_PREFIXES, *MERCHANT_PREFIXES):
            router.add_api_route(prefix + name, endpoint, methods=["GET", "POST"], include_in_schema=False)


_register()

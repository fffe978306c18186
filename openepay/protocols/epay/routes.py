"""``submit.php`` (browser jump) and ``mapi.php`` (server-to-server), answering as Rainbow does.

``submit.php`` errors are HTML pages with Rainbow's texts; ``mapi.php`` answers JSON with
``code`` 1 on success and exactly one of ``payurl``, ``qrcode``, ``urlscheme``.
"""

from __future__ import annotations

import logging

from fastapi import APIRouter
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from starlette.requests import Request

from openepay.channels.base import ChannelRefused
from openepay.core.checkout import NoChannel
from openepay.core.orders import (
    OrderAlreadyPaid,
    OrderNotPayable,
    OrderRejected,
    PlacedOrder,
    place_order,
)
from openepay.db.models import Order
from openepay.gateway import Gateway
from openepay.protocols.epay.validation import (
    MOBILE_APPS,
    EpayError,
    PayRequest,
    already_paid,
    terms_changed,
    unreadable,
    validate_pay_request,
)
from openepay.protocols.params import UnreadableParameter, get_or_post
from openepay.protocols.refusals import FOR_MERCHANT
from openepay.web.cashier.routes import message_page
from openepay.web.deps import base_url, client_address, gateway_of
from openepay.web.responses import JSONResponse, error_answer
from openepay.web.templating import is_mobile

log = logging.getLogger(__name__)
router = APIRouter()

BUSY = "系统繁忙，请稍后再试"
NOT_CONFIGURED = "你还未配置支付接口商户！"


async def pay_params(request: Request) -> dict[str, str] | None:
    """The request's parameters by Rainbow's rule (None without a ``pid``), or the ``EpayError`` to answer."""
    try:
        return await get_or_post(request, "pid")
    except UnreadableParameter as error:
        raise unreadable(error) from None


async def place_epay_order(gateway: Gateway, pay: PayRequest) -> PlacedOrder:
    try:
        return await place_order(gateway.db, pay.order, timeout=gateway.order_timeout, reopen_identical=True)
    except OrderAlreadyPaid as exc:
        raise EpayError(already_paid(exc.out_trade_no)) from None
    except OrderRejected as exc:
        raise EpayError(terms_changed(exc.out_trade_no)) from None


async def place_and_start_epay_payment(
    gateway: Gateway, request_base_url: str, pay: PayRequest, pay_type: str, device: str | None = None
) -> Order:
    """A new order written once with its offer (repeats follow ``place_epay_order``'s rules); raises
    ``NoChannel`` carrying the kept order when no channel serves the pay type. ``device`` is the
    request's own ``device`` unless given; ``request_base_url`` is ``base_url`` of the request."""
    try:
        return await gateway.place_and_start_payment(
            pay.order,
            pay_type=pay_type,
            device=device or pay.device,
            request_base_url=request_base_url,
            reopen_identical=True,
            keep_unoffered=True,
        )
    except OrderAlreadyPaid as exc:
        raise EpayError(already_paid(exc.out_trade_no)) from None
    except OrderRejected as exc:
        raise EpayError(terms_changed(exc.out_trade_no)) from None
    except ChannelRefused as refused:
        raise EpayError(FOR_MERCHANT[refused.reason], code=-2) from None
    except OrderNotPayable:
        raise EpayError(already_paid(pay.order.out_trade_no)) from None


async def cashier_target(gateway: Gateway, request: Request, pay: PayRequest) -> str:
    """Where ``submit`` sends the browser: the cashier, at the chosen pay type's offer when a channel serves it
    (the order then written once, with its offer)."""
    if not pay.pay_type:
        order = (await place_epay_order(gateway, pay)).order
        return gateway.links.cashier_path(order.trade_no)
    device = "mobile" if is_mobile(request.headers.get("user-agent")) else "pc"
    try:
        order = await place_and_start_epay_payment(gateway, base_url(request), pay, pay.pay_type, device)
    except NoChannel as no_channel:
        assert no_channel.order is not None
        return gateway.links.cashier_path(no_channel.order.trade_no) + "?other=1"
    return gateway.links.cashier_path(order.trade_no)


@router.api_route("/submit.php", methods=["GET", "POST"], response_class=HTMLResponse)
async def submit(request: Request) -> Response:
    gateway = gateway_of(request)
    try:
        params = await pay_params(request)
        if params is None:
            return HTMLResponse(NOT_CONFIGURED)
        target = await cashier_target(
            gateway, request, await validate_pay_request(gateway, params, client_address(request), api=False)
        )
    except EpayError as error:
        return message_page(request, "站点提示信息", error.msg)
    except Exception:
        log.exception("submit.php failed")
        return message_page(request, "站点提示信息", BUSY, status_code=503)
    return RedirectResponse(target, status_code=302)


def mapi_success(order: Order, device: str, cashier_url: str, *, answer: str = "channel") -> dict[str, object]:
    """Exactly one of ``payurl``, ``qrcode``, ``urlscheme``, chosen for the buyer's device.

    A code that takes any amount (a generic personal code) is never handed out: the buyer
    would pay the shop's price rather than the amount this order must be paid with, so such
    orders answer our cashier, which shows the exact amount. A merchant set to the ``payurl``
    answer (plugins such as SSPanel-UIM's, which read nothing else) always gets a ``payurl``.
    """
    reply: dict[str, object] = {"code": 1, "trade_no": order.trade_no}
    qrcode = None if order.qrcode_any_amount else order.qrcode
    if answer == "payurl":
        reply["payurl"] = order.pay_url or cashier_url
    elif device == "wechat" and order.urlscheme:
        reply["urlscheme"] = order.urlscheme
    elif device == "pc":
        if qrcode:
            reply["qrcode"] = qrcode
        elif order.pay_url:
            reply["payurl"] = order.pay_url
        elif order.urlscheme:
            reply["urlscheme"] = order.urlscheme
        else:
            reply["payurl"] = cashier_url
    elif order.pay_url:
        reply["payurl"] = order.pay_url
    elif device in MOBILE_APPS and order.urlscheme:
        reply["urlscheme"] = order.urlscheme
    else:
        reply["payurl"] = cashier_url
    return reply


# A plain Starlette route: the endpoint reads its own parameters, so FastAPI's dependency solving
# and response handling would be work for nothing on the gateway's busiest path.
@router.route("/mapi.php", methods=["GET", "POST"])
async def mapi(request: Request) -> Response:
    gateway = gateway_of(request)
    try:
        params = await pay_params(request)
        if params is None:
            return error_answer(-4, "未传入任何参数")
        pay = await validate_pay_request(gateway, params, client_address(request), api=True)
        assert pay.pay_type is not None
        request_base_url = base_url(request)
        context = gateway.pay_context(request_base_url)
        try:
            started = await place_and_start_epay_payment(gateway, request_base_url, pay, pay.pay_type)
        except NoChannel as no_channel:
            assert no_channel.order is not None
            cashier_url = context.cashier_url(no_channel.order.trade_no)
            return JSONResponse({"code": 1, "trade_no": no_channel.order.trade_no, "payurl": f"{cashier_url}?other=1"})
        cashier_url = context.cashier_url(started.trade_no)
        if pay.device == "jump":
            # Rainbow picks the channel first and then hands out its own jump page, so the
            # buyer lands on the pay type the merchant asked for, not on a chooser.
            return JSONResponse({"code": 1, "trade_no": started.trade_no, "payurl": cashier_url})
        return JSONResponse(mapi_success(started, pay.device, cashier_url, answer=pay.merchant.mapi_answer))
    except EpayError as error:
        return error_answer(error.code, error.msg)
    except Exception:
        log.exception("mapi.php failed")
        return error_answer(-1, BUSY)

"""``/Home/Pay/payFor``: the browser jump to our payment page, or JSON with ``format=json``.

The parameters come from the query string if it carries ``uid``, else from the form body
(never both: the key covers exactly one set). ``format=json`` may sit in either place. Errors
are ``{"code": <non-positive>, "msg": ...}`` in JSON mode and a readable page in the browser.
"""

from __future__ import annotations

import logging

from fastapi import APIRouter
from fastapi.responses import JSONResponse, RedirectResponse, Response
from starlette.requests import Request

from openepay.channels.base import ChannelRefused
from openepay.core.checkout import NoChannel
from openepay.core.money import format_yuan
from openepay.core.orders import (
    OrderAlreadyPaid,
    OrderNotPayable,
    OrderRejected,
)
from openepay.db.models import Order
from openepay.gateway import Gateway
from openepay.protocols.params import UnreadableParameter, form_params, get_or_post, query_params
from openepay.protocols.payfor.validation import (
    BUSY,
    Code,
    PayForError,
    PayForRequest,
    already_paid,
    terms_changed,
    unreadable,
    validate_pay_request,
)
from openepay.protocols.refusals import FOR_MERCHANT
from openepay.web.cashier.routes import message_page
from openepay.web.deps import base_url, client_address, gateway_of
from openepay.web.templating import is_mobile

log = logging.getLogger(__name__)
router = APIRouter()

PATH = "/Home/Pay/payFor"
ERROR_TITLE = "支付失败"
CREATED = "下单成功"
NO_CHANNEL = "没有可用的支付通道"


async def _wants_json(request: Request) -> bool:
    """``format=json`` in the query string or the body; a request with an unreadable parameter
    still hears about it in the format it asked for."""
    try:
        query = query_params(request)
    except UnreadableParameter as error:
        query = error.params
    try:
        form = await form_params(request)
    except UnreadableParameter as error:
        form = error.params
    return any(params.get("format", "").strip().lower() == "json" for params in (query, form))


async def _params(request: Request) -> dict[str, str]:
    try:
        return await get_or_post(request, "uid") or await form_params(request)
    except UnreadableParameter as error:
        raise unreadable(error) from None


async def _place_and_start(gateway: Gateway, request: Request, pay: PayForRequest, device: str) -> Order:
    """A new order written once with its offer (repeats follow ``place_order``'s rules); a brand-new
    order no channel took is not kept, so the number can be retried."""
    try:
        return await gateway.place_and_start_payment(
            pay.order,
            pay_type=pay.pay_type,
            device=device,
            request_base_url=base_url(request),
            reopen_identical=True,
            keep_unoffered=False,
        )
    except OrderAlreadyPaid:
        raise already_paid() from None
    except OrderRejected:
        raise terms_changed() from None
    except OrderNotPayable:
        raise already_paid() from None
    except NoChannel:
        raise PayForError(Code.CHANNEL, NO_CHANNEL) from None
    except ChannelRefused as refused:
        raise PayForError(Code.CHANNEL, FOR_MERCHANT[refused.reason]) from None


def _success(gateway: Gateway, request: Request, order: Order, pay: PayForRequest) -> dict[str, object]:
    payurl = gateway.pay_context(base_url(request)).cashier_url(order.trade_no)
    return {
        "code": 1,
        "msg": CREATED,
        "data": {
            "pay_num": order.trade_no,
            "qrcode": payurl if order.qrcode_any_amount else (order.qrcode or order.pay_url),
            "payurl": payurl,
            "price": order.money,
            "realprice": format_yuan(order.pay_amount_fen),
            "type": pay.type_code,
            "expire_time": order.expires_at.astimezone(gateway.settings.zone).strftime("%Y-%m-%d %H:%M:%S"),
        },
    }


@router.api_route(PATH, methods=["GET", "POST"])
async def pay_for(request: Request) -> Response:
    gateway = gateway_of(request)
    as_json = False
    try:
        as_json = await _wants_json(request)
        params = await _params(request)
        # In the browser mode the buyer is the one calling (channels such as WeChat H5 want the IP).
        buyer_ip = None if as_json or request.client is None else request.client.host
        pay = await validate_pay_request(gateway, params, client_address(request), clientip=buyer_ip, as_json=as_json)
        mobile = not as_json and is_mobile(request.headers.get("user-agent"))
        order = await _place_and_start(gateway, request, pay, "mobile" if mobile else "pc")
        if as_json:
            return JSONResponse(_success(gateway, request, order, pay))
        return RedirectResponse(gateway.links.cashier_path(order.trade_no), status_code=303)
    except PayForError as error:
        return _failure(request, as_json, error.code, error.msg)
    except Exception:
        log.exception("payFor failed")
        return _failure(request, as_json, Code.BUSY, BUSY, status_code=503)


def _failure(request: Request, as_json: bool, code: int, msg: str, status_code: int = 200) -> Response:
    if as_json:
        return JSONResponse({"code": code, "msg": msg})
    return message_page(request, ERROR_TITLE, msg, status_code=status_code)

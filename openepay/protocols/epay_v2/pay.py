"""``api/pay/submit`` (the buyer's browser) and ``api/pay/create`` (the merchant's server).

Both check the request themselves, as Rainbow's ``Pay::submit``/``Pay::create`` do: the
merchant, then the signature (V2 rules), then the ban, then the order fields with exactly
the V1 texts. ``pay/submit`` answers HTML like ``submit.php``; ``pay/create`` answers JSON,
signed with the platform key when it succeeds.
"""

from __future__ import annotations

import dataclasses
import logging
import re

from fastapi import APIRouter
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from starlette.requests import Request

from openepay.core.checkout import NoChannel
from openepay.db.models import Merchant, Order
from openepay.gateway import Gateway
from openepay.protocols.epay.routes import (
    BUSY,
    NOT_CONFIGURED,
    cashier_target,
    mapi_success,
    pay_params,
    place_and_start_epay_payment,
)
from openepay.protocols.epay.validation import EpayError, PayRequest, check_order_fields
from openepay.protocols.epay_v2 import DIALECT
from openepay.protocols.epay_v2.platform_key import platform_key
from openepay.protocols.epay_v2.verification import PAY_BANNED, PAY_DOOR, V2Error, authenticate, body_params
from openepay.web.cashier.routes import message_page
from openepay.web.deps import base_url, client_address, gateway_of
from openepay.web.responses import JSONResponse, error_answer

log = logging.getLogger(__name__)
router = APIRouter()

# Every method reaches the handler, so a GET to a POST endpoint gets the dialect's own
# answer ("no parameters") rather than a 405 or the unknown-endpoint error.
ANY_METHOD = ["GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]
NO_PARAMETERS = (-4, "未传入任何参数")
UNSUPPORTED_METHOD = "不支持的支付方式(method)"
NO_OPENID = "JSAPI支付必须传入用户openid(sub_openid)"
BAD_OPENID = "sub_openid或sub_appid格式错误"
NO_JSAPI_CHANNEL = "该支付方式没有支持JSAPI支付的通道"
# WeChat's openids and AppIDs: letters, digits, "-" and "_" (openids are 28 characters, AppIDs 18).
WECHAT_ID = re.compile(r"[A-Za-z0-9_-]{1,128}")
# What the V1 mapi answer would carry, as V2's pay_type.
PAY_TYPE_OF = {"payurl": "jump", "qrcode": "qrcode", "urlscheme": "urlscheme"}


def _order_fields(gateway: Gateway, merchant: Merchant, params: dict[str, str], *, api: bool) -> PayRequest:
    """V1's field checks (same order, same texts) on a request that passed V2's signature check."""
    pay = check_order_fields(gateway, merchant, params, api=api)
    device = "mobile" if params.get("device") == "app" else pay.device  # V2 adds device=app
    return dataclasses.replace(pay, device=device, order=dataclasses.replace(pay.order, dialect=DIALECT, device=device))


def _web_offer(order: Order, device: str, cashier_url: str, mapi_answer: str) -> tuple[str, str]:
    """What V1's mapi.php would hand this device, as V2's ``pay_type`` and ``pay_info``."""
    answer = mapi_success(order, device, cashier_url, answer=mapi_answer)
    for field, pay_type in PAY_TYPE_OF.items():
        if answer.get(field):
            return pay_type, str(answer[field])
    return "jump", cashier_url


def _method(params: dict[str, str]) -> str:
    """``web``, ``jump`` or ``jsapi``; the other V2 methods need channel features we do not have."""
    if params.get("device") == "jump":
        return "jump"
    method = params.get("method", "")
    if method in ("", "web"):
        return "web"
    if method in ("jump", "jsapi"):
        return method
    raise V2Error(UNSUPPORTED_METHOD)


def _in_app(pay: PayRequest, params: dict[str, str]) -> PayRequest:
    """A ``jsapi`` order: the buyer's openid (and the app it belongs to) kept with the order for the channel.

    The buyer is inside WeChat, which is what routing's device rules see.
    """
    openid, appid = params.get("sub_openid", "").strip(), params.get("sub_appid", "").strip()
    if not openid:
        raise V2Error(NO_OPENID)
    if not WECHAT_ID.fullmatch(openid) or (appid and not WECHAT_ID.fullmatch(appid)):
        raise V2Error(BAD_OPENID)
    buyer = {"sub_openid": openid, **({"sub_appid": appid} if appid else {})}
    order = dataclasses.replace(pay.order, device="wechat", attrs={**pay.order.attrs, **buyer})
    return dataclasses.replace(pay, device="wechat", order=order)


@router.api_route("/api/pay/submit", methods=ANY_METHOD, response_class=HTMLResponse)
async def submit(request: Request) -> Response:
    gateway = gateway_of(request)
    try:
        params = await pay_params(request)
        if params is None:
            return HTMLResponse(NOT_CONFIGURED)
        merchant, _ = await authenticate(gateway, params, client_address(request), PAY_DOOR, PAY_BANNED)
        target = await cashier_target(gateway, request, _order_fields(gateway, merchant, params, api=False))
    except (V2Error, EpayError) as error:
        return message_page(request, "站点提示信息", error.msg)
    except Exception:
        log.exception("api/pay/submit failed")
        return message_page(request, "站点提示信息", BUSY, status_code=503)
    return RedirectResponse(target, status_code=302)


@router.api_route("/api/pay/create", methods=ANY_METHOD)
async def create(request: Request) -> Response:
    gateway = gateway_of(request)
    try:
        params = await body_params(request)
        if "pid" not in params:
            return error_answer(*NO_PARAMETERS)
        merchant, _ = await authenticate(gateway, params, client_address(request), PAY_DOOR, PAY_BANNED)
        method = _method(params)
        pay = _order_fields(gateway, merchant, params, api=True)
        if method == "jsapi":
            pay = _in_app(pay, params)
        assert pay.pay_type is not None
        started: Order | None
        request_base_url = base_url(request)
        try:
            order = started = await place_and_start_epay_payment(gateway, request_base_url, pay, pay.pay_type)
        except NoChannel as no_channel:
            assert no_channel.order is not None
            order, started = no_channel.order, None
        cashier_url = gateway.pay_context(request_base_url).cashier_url(order.trade_no)
        if method == "jsapi":
            if started is None or not started.pay_info:
                raise V2Error(NO_JSAPI_CHANNEL)
            pay_type, pay_info = "jsapi", started.pay_info
        elif started is None:  # no channel serves the type: the buyer chooses another at the cashier
            pay_type, pay_info = "jump", f"{cashier_url}?other=1"
        elif method == "jump":
            pay_type, pay_info = "jump", cashier_url
        else:
            pay_type, pay_info = _web_offer(started, pay.device, cashier_url, merchant.mapi_answer)
        answer = {"code": 0, "trade_no": order.trade_no, "pay_type": pay_type, "pay_info": pay_info}
        return JSONResponse((await platform_key(gateway.db, gateway.box)).signed(answer))
    except (V2Error, EpayError) as error:
        return error_answer(error.code, error.msg)
    except Exception:
        log.exception("api/pay/create failed")
        return error_answer(-1, BUSY)

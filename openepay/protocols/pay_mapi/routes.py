"""``/pay/mapi.php`` (JSON, server to server) and ``/pay/submit.php`` (browser jump to the cashier).

Both read the query string if it carries ``pid``, else the form body (Rainbow's rule), check the
request the same way and place the order the same way. Every reuse of an ``out_trade_no`` is
705; an order no channel would take is forgotten again, so the merchant may retry the same
number (with another amount after a 703, say).
"""

from __future__ import annotations

import logging

from fastapi import APIRouter
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from starlette.requests import Request

from openepay.channels.base import ChannelRefused, RefusalReason
from openepay.core.checkout import NoChannel
from openepay.core.money import format_yuan
from openepay.core.orders import OrderRejected
from openepay.db.models import Order
from openepay.gateway import Gateway
from openepay.protocols.params import UnreadableParameter, get_or_post
from openepay.protocols.pay_mapi.validation import MESSAGES, Code, PayMapiError, unreadable, validate_pay_request
from openepay.web.cashier.routes import message_page
from openepay.web.deps import base_url, client_address, gateway_of
from openepay.web.templating import is_mobile

log = logging.getLogger(__name__)
router = APIRouter()

REFUSALS = {
    RefusalReason.PAUSED: Code.CHANNEL_MAINTENANCE,
    RefusalReason.NO_CODE_FOR_AMOUNT: Code.NO_CODE_FOR_AMOUNT,
    RefusalReason.UPSTREAM_ERROR: Code.CHANNEL_MAINTENANCE,
    RefusalReason.NOT_SERVED: Code.CHANNEL_MAINTENANCE,
}
# The seed has no code for "our fault"; 702 tells the merchant to try again later, which is the
# right advice, and the detail keeps it apart from a real channel refusal.
INTERNAL = PayMapiError(Code.CHANNEL_MAINTENANCE, "internal error, please try again later")
ERROR_TITLE = "Payment failed"


async def create_payment(gateway: Gateway, request: Request, device: str) -> Order:
    """The new order with the channel's offer, or the ``PayMapiError`` to answer.

    An order no channel took is not kept, so the merchant may retry the same number."""
    try:
        params = await get_or_post(request, "pid")
    except UnreadableParameter as error:
        raise unreadable(error) from None
    if params is None:
        raise PayMapiError(Code.MISSING_PARAMETERS, "pid is required")
    pay = await validate_pay_request(gateway, params, client_address(request), device=device)
    try:
        return await gateway.place_and_start_payment(
            pay.order,
            pay_type=pay.pay_type,
            device=pay.order.device,
            request_base_url=base_url(request),
            reopen_identical=False,
            keep_unoffered=False,
        )
    except OrderRejected:
        raise PayMapiError(Code.DUPLICATE_ORDER, "out_trade_no was already used; every order needs a new one") from None
    except NoChannel:
        raise PayMapiError(Code.NO_CHANNEL, f"no channel serves {pay.pay_type} at the moment") from None
    except ChannelRefused as refused:
        raise PayMapiError(REFUSALS[refused.reason]) from None


def success(order: Order, cashier_url: str) -> dict[str, object]:
    return {
        "code": int(Code.SUCCESS),
        "msg": MESSAGES[Code.SUCCESS],
        "money": format_yuan(order.pay_amount_fen),
        "type": order.pay_type,
        # A code that takes any amount would let the buyer pay the wrong amount: our cashier shows the exact one.
        "qrcode": cashier_url if order.qrcode_any_amount else (order.qrcode or order.pay_url or cashier_url),
        "trade_no": order.trade_no,
        "out_trade_no": order.out_trade_no,
        "payurl": cashier_url,
    }


@router.api_route("/pay/mapi.php", methods=["GET", "POST"])
async def mapi(request: Request) -> JSONResponse:
    gateway = gateway_of(request)
    try:
        order = await create_payment(gateway, request, device="pc")
        cashier_url = gateway.pay_context(base_url(request)).cashier_url(order.trade_no)
        return JSONResponse(success(order, cashier_url))
    except PayMapiError as error:
        return JSONResponse(error.answer())
    except Exception:
        log.exception("/pay/mapi.php failed")
        return JSONResponse(INTERNAL.answer())


def _error_page(request: Request, error: PayMapiError, status_code: int = 200) -> HTMLResponse:
    text = f"{int(error.code)}: {error.msg}"
    if error.detail:
        text += f" ({error.detail})"
    return message_page(request, ERROR_TITLE, text, status_code=status_code)


@router.api_route("/pay/submit.php", methods=["GET", "POST"], response_class=HTMLResponse)
async def submit(request: Request) -> Response:
    gateway = gateway_of(request)
    device = "mobile" if is_mobile(request.headers.get("user-agent")) else "pc"
    try:
        order = await create_payment(gateway, request, device=device)
    except PayMapiError as error:
        return _error_page(request, error)
    except Exception:
        log.exception("/pay/submit.php failed")
        return _error_page(request, INTERNAL, status_code=503)
    return RedirectResponse(gateway.links.cashier_path(order.trade_no), status_code=302)

"""``/cashier/{trade_no}`` and its status poll, pay-type choice and return redirect."""

from __future__ import annotations

import logging
from datetime import timedelta
from urllib.parse import urlsplit

from fastapi import APIRouter, Form
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from starlette.requests import Request

from openepay.channels.base import ChannelRefused, RefusalReason
from openepay.core.checkout import NoChannel, cashier_path, has_live_offer
from openepay.core.orders import OrderNotPayable, close_if_expired, get_order
from openepay.core.states import SETTLED_PAID, OrderStatus
from openepay.db.models import Order
from openepay.db.types import utcnow
from openepay.notify.outbox import first_sent_at
from openepay.web.deps import base_url, gateway_of
from openepay.web.templating import is_mobile, templates

log = logging.getLogger(__name__)
router = APIRouter()

UNAVAILABLE_TYPE = "该支付方式暂不可用，请选择其他支付方式"
# What a buyer reads when the channel refuses; its own message is for the operator's log.
REFUSED_FOR_BUYER = {
    RefusalReason.PAUSED: "该支付方式正在维护，请选择其他支付方式或稍后再试",
    RefusalReason.NO_CODE_FOR_AMOUNT: "该支付方式暂时无法收取这个金额，请选择其他支付方式或稍后再试",
    RefusalReason.UPSTREAM_ERROR: "支付通道暂时无法下单，请选择其他支付方式或稍后再试",
}


def message_page(request: Request, title: str, message: str, status_code: int = 200, **extra) -> HTMLResponse:  # type: ignore[no-untyped-def]
    return templates.TemplateResponse(
        request, "message.html", {"title": title, "message": message, **extra}, status_code=status_code
    )


async def _site_name(request: Request, order: Order) -> str:
    if order.sitename:
        return order.sitename[:100]
    return (await gateway_of(request).merchants.get(order.merchant_pid)).name


async def _load(request: Request, trade_no: str) -> Order | None:
    order = await get_order(gateway_of(request).db, trade_no)
    if order is None:
        return None
    return await close_if_expired(gateway_of(request).db, order)


def _not_found(request: Request) -> HTMLResponse:
    return message_page(request, "订单不存在", "找不到这笔订单，请返回商户网站重新下单。", status_code=404)


def _unpayable_page(request: Request, order: Order) -> HTMLResponse:
    if order.status == OrderStatus.REFUNDED:
        return message_page(request, "订单已退款", f"订单 {order.trade_no} 已退款。")
    return message_page(request, "订单已关闭", f"订单 {order.trade_no} 已过期或已关闭，请返回商户网站重新下单。")


async def choose_type_page(request: Request, order: Order, note: str | None = None) -> HTMLResponse:
    gateway = gateway_of(request)
    return templates.TemplateResponse(
        request,
        "choose_type.html",
        {
            "order": order,
            "site_name": await _site_name(request, order),
            "pay_types": await gateway.router.pay_types_for(order.merchant_pid),
            "choose_url": f"{cashier_path(order.trade_no)}/type",
            "note": note,
        },
    )


@router.get("/cashier/{trade_no}", response_class=HTMLResponse)
async def cashier(request: Request, trade_no: str) -> Response:
    order = await _load(request, trade_no)
    if order is None:
        return _not_found(request)
    if order.status in SETTLED_PAID:
        return RedirectResponse(f"{cashier_path(trade_no)}/return", status_code=302)
    if order.status == OrderStatus.CLOSED:
        return _unpayable_page(request, order)
    if not (order.pay_type and has_live_offer(order, order.pay_type)):
        note = UNAVAILABLE_TYPE if request.query_params.get("other") else None
        return await choose_type_page(request, order, note=note)
    mobile = is_mobile(request.headers.get("user-agent"))
    pay_link = order.pay_url or order.urlscheme
    if pay_link and urlsplit(pay_link).path == cashier_path(trade_no):
        # Channels with nothing to open (personal codes) point at this very page: the code is all there is.
        pay_link = None
    return templates.TemplateResponse(
        request,
        "cashier.html",
        {
            "order": order,
            "site_name": await _site_name(request, order),
            "mobile": mobile,
            "qr_content": order.qrcode or order.pay_url or order.urlscheme,
            "pay_link": pay_link,
            "status_url": f"{cashier_path(trade_no)}/status",
            "return_path": f"{cashier_path(trade_no)}/return",
            "expires_in": max(0, int((order.expires_at - utcnow()).total_seconds())),
        },
        headers={"Cache-Control": "no-store"},
    )


@router.post("/cashier/{trade_no}/type")
async def choose_type(request: Request, trade_no: str, type: str = Form("")) -> Response:  # noqa: A002
    gateway = gateway_of(request)
    order = await _load(request, trade_no)
    if order is None:
        return _not_found(request)
    if order.status not in (OrderStatus.CREATED, OrderStatus.PAYING):
        return RedirectResponse(cashier_path(trade_no), status_code=303)
    try:
        await gateway.start_payment(
            order,
            pay_type=type,
            device="mobile" if is_mobile(request.headers.get("user-agent")) else "pc",
            request_base_url=base_url(request),
        )
    except NoChannel:
        return await choose_type_page(request, order, note=UNAVAILABLE_TYPE)
    except ChannelRefused as refused:
        log.info("channel refused order %s: %s", order.trade_no, refused.message)
        return await choose_type_page(request, order, note=REFUSED_FOR_BUYER[refused.reason])
    except OrderNotPayable:
        pass
    return RedirectResponse(cashier_path(trade_no), status_code=303)


@router.get("/cashier/{trade_no}/status")
async def order_status(request: Request, trade_no: str) -> JSONResponse:
    order = await _load(request, trade_no)
    if order is None:
        return JSONResponse({"status": "not_found", "paid": False}, status_code=404)
    return JSONResponse(
        {"status": order.status, "paid": order.status in SETTLED_PAID},
        headers={"Cache-Control": "no-store"},
    )


@router.get("/cashier/{trade_no}/return")
async def return_to_merchant(request: Request, trade_no: str) -> Response:
    """Send the buyer back to the shop, with signed parameters only once the order is paid."""
    gateway = gateway_of(request)
    order = await _load(request, trade_no)
    if order is None:
        return _not_found(request)
    if order.status == OrderStatus.REFUNDED:
        return _unpayable_page(request, order)
    if order.status not in SETTLED_PAID:
        return RedirectResponse(cashier_path(trade_no), status_code=302)
    messages = gateway.dialects.for_order(order)
    merchant = await gateway.merchants.get(order.merchant_pid)
    target = await messages.return_url(order, gateway.merchants.key_of(merchant))
    if target is None:
        return templates.TemplateResponse(request, "paid.html", {"order": order})
    if messages.return_after_notify is not None:
        sent_at = await first_sent_at(gateway.db, order.id)
        if sent_at is None or utcnow() < sent_at + timedelta(seconds=messages.return_after_notify):
            return templates.TemplateResponse(
                request, "returning.html", {"order": order}, headers={"Cache-Control": "no-store"}
            )
    return RedirectResponse(target, status_code=302)

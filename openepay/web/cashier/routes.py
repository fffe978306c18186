"""``/cashier/{handle}`` and its status poll, pay-type choice and return redirect.

Every address here names the order by its buyer handle (``core.buyer_links``); a bare or
forged handle is answered exactly like an order that does not exist, before any lookup.
"""

from __future__ import annotations

import logging
from datetime import timedelta
from urllib.parse import urlsplit

from fastapi import APIRouter, Form
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from starlette.requests import Request

from openepay.channels.base import ChannelRefused
from openepay.core.checkout import NoChannel, has_live_offer
from openepay.core.orders import OrderNotPayable, close_if_expired, get_order
from openepay.core.states import SETTLED_PAID, OrderStatus
from openepay.db.models import Order
from openepay.db.types import utcnow
from openepay.notify.outbox import first_sent_at
from openepay.protocols.refusals import FOR_BUYER
from openepay.web.deps import base_url, gateway_of
from openepay.web.templating import is_mobile, templates

log = logging.getLogger(__name__)
router = APIRouter()

UNAVAILABLE_TYPE = "该支付方式暂不可用，请选择其他支付方式"
IN_APP_ONLY = "该订单需在商户的微信页面内完成支付，请返回商户页面继续。"


def message_page(request: Request, title: str, message: str, status_code: int = 200, **extra) -> HTMLResponse:  # type: ignore[no-untyped-def]
    return templates.TemplateResponse(
        request, "message.html", {"title": title, "message": message, **extra}, status_code=status_code
    )


async def _site_name(request: Request, order: Order) -> str:
    if order.sitename:
        return order.sitename[:100]
    return (await gateway_of(request).merchants.get(order.merchant_pid)).name


async def _load(request: Request, handle: str) -> Order | None:
    gateway = gateway_of(request)
    trade_no = gateway.links.trade_no_of(handle)
    if trade_no is None:
        return None
    order = await get_order(gateway.db, trade_no)
    if order is None:
        return None
    return await close_if_expired(gateway.db, order)


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
            "choose_url": f"{gateway.links.cashier_path(order.trade_no)}/type",
            "note": note,
        },
    )


@router.get("/cashier/{handle}", response_class=HTMLResponse)
async def cashier(request: Request, handle: str) -> Response:
    order = await _load(request, handle)
    if order is None:
        return _not_found(request)
    here = gateway_of(request).links.cashier_path(order.trade_no)
    if order.status in SETTLED_PAID:
        return RedirectResponse(f"{here}/return", status_code=302)
    if order.status == OrderStatus.CLOSED:
        return _unpayable_page(request, order)
    if not (order.pay_type and has_live_offer(order, order.pay_type)):
        note = UNAVAILABLE_TYPE if request.query_params.get("other") else None
        return await choose_type_page(request, order, note=note)
    if not (order.qrcode or order.pay_url or order.urlscheme):
        # An in-app (JSAPI) payment is made on the merchant's own page inside WeChat, never here.
        return message_page(request, "请在商户页面内支付", IN_APP_ONLY)
    mobile = is_mobile(request.headers.get("user-agent"))
    pay_link = order.pay_url or order.urlscheme
    if pay_link and urlsplit(pay_link).path == here:
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
            "status_url": f"{here}/status",
            "return_path": f"{here}/return",
            "expires_in": max(0, int((order.expires_at - utcnow()).total_seconds())),
        },
        headers={"Cache-Control": "no-store"},
    )


@router.post("/cashier/{handle}/type")
async def choose_type(request: Request, handle: str, type: str = Form("")) -> Response:  # noqa: A002
    gateway = gateway_of(request)
    order = await _load(request, handle)
    if order is None:
        return _not_found(request)
    here = gateway.links.cashier_path(order.trade_no)
    if order.status not in (OrderStatus.CREATED, OrderStatus.PAYING):
        return RedirectResponse(here, status_code=303)
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
        return await choose_type_page(request, order, note=FOR_BUYER[refused.reason])
    except OrderNotPayable:
        pass
    return RedirectResponse(here, status_code=303)


@router.get("/cashier/{handle}/status")
async def order_status(request: Request, handle: str) -> JSONResponse:
    order = await _load(request, handle)
    if order is None:
        return JSONResponse({"status": "not_found", "paid": False}, status_code=404)
    return JSONResponse(
        {"status": order.status, "paid": order.status in SETTLED_PAID},
        headers={"Cache-Control": "no-store"},
    )


@router.get("/cashier/{handle}/return")
async def return_to_merchant(request: Request, handle: str) -> Response:
    """Send the buyer back to the shop, with signed parameters only once the order is paid."""
    gateway = gateway_of(request)
    order = await _load(request, handle)
    if order is None:
        return _not_found(request)
    if order.status == OrderStatus.REFUNDED:
        return _unpayable_page(request, order)
    if order.status not in SETTLED_PAID:
        return RedirectResponse(gateway.links.cashier_path(order.trade_no), status_code=302)
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

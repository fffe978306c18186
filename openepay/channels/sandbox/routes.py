"""The simulated upstream's pay page: shows the order and plays the buyer paying.

Named by the buyer's handle, like the cashier: a bare order number finds nothing here either.
"""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from starlette.requests import Request

from openepay.channels.base import channel_host, render_page
from openepay.channels.sandbox.channel import pay_page_path
from openepay.channels.sandbox.simulator import (
    SandboxPaymentFailed,
    SandboxRefusal,
    refusal_reason,
    simulate_buyer_payment,
)
from openepay.core.orders import close_if_expired, get_order

router = APIRouter()


def _message(request: Request, message: str, status_code: int) -> Response:
    return render_page(request, "message.html", {"title": "Sandbox", "message": message}, status_code=status_code)


@router.get("/sandbox/pay/{handle}", response_class=HTMLResponse)
async def sandbox_pay_page(request: Request, handle: str) -> Response:
    host = channel_host(request)
    trade_no = host.links.trade_no_of(handle)
    order = await get_order(host.db, trade_no) if trade_no is not None else None
    if order is not None:
        order = await close_if_expired(host.db, order)
    reason = refusal_reason(host, order)
    if order is None:
        return _message(request, reason or "", status_code=404)
    return render_page(
        request,
        "sandbox/pay.html",
        {
            "order": order,
            "payable": reason is None,
            "reason": reason,
            "pay_url": pay_page_path(handle),
            "cashier_url": host.links.cashier_path(order.trade_no),
        },
    )


@router.post("/sandbox/pay/{handle}")
async def sandbox_pay(request: Request, handle: str) -> Response:
    host = channel_host(request)
    trade_no = host.links.trade_no_of(handle)
    try:
        if trade_no is None:  # refused like an order that does not exist, without looking
            raise SandboxRefusal(refusal_reason(host, None))
        await simulate_buyer_payment(host, trade_no)
    except SandboxRefusal as refusal:
        return _message(request, str(refusal), status_code=409)
    except SandboxPaymentFailed as failure:
        return _message(request, str(failure), status_code=503)
    return RedirectResponse(host.links.cashier_path(trade_no), status_code=303)

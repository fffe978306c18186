"""The simulated upstream's pay page: shows the order and plays the buyer paying."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from starlette.requests import Request

from openepay.channels.base import channel_host, render_page
from openepay.channels.sandbox.simulator import SandboxRefusal, refusal_reason, simulate_buyer_payment
from openepay.core.orders import close_if_expired, get_order

router = APIRouter()


@router.get("/sandbox/pay/{trade_no}", response_class=HTMLResponse)
async def sandbox_pay_page(request: Request, trade_no: str) -> Response:
    host = channel_host(request)
    order = await get_order(host.db, trade_no)
    if order is not None:
        order = await close_if_expired(host.db, order)
    reason = refusal_reason(host, order)
    if order is None:
        return render_page(request, "message.html", {"title": "Sandbox", "message": reason}, status_code=404)
    return render_page(
        request,
        "sandbox/pay.html",
        {
            "order": order,
            "payable": reason is None,
            "reason": reason,
            "pay_url": f"/sandbox/pay/{trade_no}",
            "cashier_url": host.cashier_path(trade_no),
        },
    )


@router.post("/sandbox/pay/{trade_no}")
async def sandbox_pay(request: Request, trade_no: str) -> Response:
    host = channel_host(request)
    try:
        await simulate_buyer_payment(host, trade_no)
    except SandboxRefusal as refusal:
        return render_page(request, "message.html", {"title": "Sandbox", "message": str(refusal)}, status_code=409)
    return RedirectResponse(host.cashier_path(trade_no), status_code=303)

"""A tiny merchant shop inside the demo, so ``openepay demo`` works end to end by itself.

It receives the gateway's notifications and the buyer's return exactly as a merchant plugin
would, verifies the signature with the merchant's key, and shows what it got. Mounted only
while the sandbox channel is enabled.
"""

from __future__ import annotations

import logging
import time
from urllib.parse import urlencode

from fastapi import APIRouter
from fastapi.responses import HTMLResponse, PlainTextResponse
from starlette.requests import Request

from openepay.core.merchants import MerchantNotFound
from openepay.protocols.epay.signing import make_sign, verify
from openepay.protocols.params import php_intval
from openepay.web.deps import gateway_of
from openepay.web.templating import templates

log = logging.getLogger(__name__)
router = APIRouter()


def signed_submit_link(base_url: str, pid: int, key: str) -> str:
    """A ready ``submit.php`` link for a 0.01 yuan test order."""
    params = {
        "pid": str(pid),
        "type": "alipay",
        "out_trade_no": f"DEMO{int(time.time() * 1000)}",
        "notify_url": f"{base_url}/demo-shop/notify",
        "return_url": f"{base_url}/demo-shop/return",
        "name": "OpenEpay 测试商品",
        "money": "0.01",
        "sitename": "Demo Shop",
    }
    params["sign"] = make_sign(params, key)
    params["sign_type"] = "MD5"
    return f"{base_url}/submit.php?{urlencode(params)}"


async def _verified(request: Request) -> bool:
    params = dict(request.query_params)
    try:
        merchant = await gateway_of(request).merchants.get(php_intval(params.get("pid")))
    except MerchantNotFound:
        return False
    return verify(params, gateway_of(request).merchants.key_of(merchant))


@router.get("/demo-shop/notify")
async def demo_notify(request: Request) -> PlainTextResponse:
    if await _verified(request) and request.query_params.get("trade_status") == "TRADE_SUCCESS":
        log.info("demo shop received a verified notification", extra={"trade_no": request.query_params.get("trade_no")})
        return PlainTextResponse("success")
    return PlainTextResponse("fail")


@router.get("/demo-shop/return", response_class=HTMLResponse)
async def demo_return(request: Request) -> HTMLResponse:
    ok = await _verified(request) and request.query_params.get("trade_status") == "TRADE_SUCCESS"
    params = request.query_params
    order = f"订单 {params.get('out_trade_no')}（网关单号 {params.get('trade_no')}）"
    message = (
        f"{order}支付成功，¥{params.get('money')}，签名验证通过。" if ok else "签名验证失败：这不是网关签发的支付结果。"
    )
    return templates.TemplateResponse(
        request,
        "message.html",
        {"title": "Demo Shop", "message": message, "tone": "success" if ok else "error"},
        status_code=200 if ok else 400,
    )

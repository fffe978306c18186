"""The integration page: this gateway's endpoints for every dialect, with examples for the merchant's pid."""

from __future__ import annotations

from fastapi import APIRouter, Depends
from starlette.requests import Request
from starlette.responses import Response

from openepay.admin.sessions import Current
from openepay.portal.integration import KEY_PLACEHOLDER, dialects
from openepay.web.merchant.auth import PREFIX, signed_in
from openepay.web.merchant.pages import render
from openepay.web.merchant.portal import portal_of

router = APIRouter()


def base_url(request: Request) -> str:
    """Where merchants reach the gateway: OPENEPAY_PUBLIC_URL when set, else the address this page came from."""
    configured = portal_of(request).gateway.settings.public_url
    return (configured or str(request.base_url)).rstrip("/")


@router.get(PREFIX + "/integration")
async def integration(request: Request, me: Current = Depends(signed_in)) -> Response:
    pid = me.user.merchant_pid
    context = {"dialects": dialects(base_url(request), pid), "pid": pid, "placeholder": KEY_PLACEHOLDER}
    return render(request, "integration.html", context, me)

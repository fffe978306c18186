"""The merchant's own integration tools: a test notification to its URL with a plain-language
diagnosis, and the signature checker. The console's (``openepay.web.admin.merchant_tools``),
always with the session's merchant and its own key, which no page shows.
"""

from __future__ import annotations

from fastapi import APIRouter, Depends
from starlette.requests import Request
from starlette.responses import Response

from openepay.admin.sessions import Current
from openepay.db.models import Merchant
from openepay.web.admin.merchant_tools import signature_run, signature_start, test_notify_run, test_notify_start
from openepay.web.merchant.auth import PREFIX, signed_in
from openepay.web.merchant.pages import render
from openepay.web.merchant.portal import actor_of, portal_of

router = APIRouter()
TEST_NOTIFY = "admin/merchant_test_notify.html"
SIGNATURE = "admin/merchant_signature.html"


async def _mine(request: Request, me: Current) -> Merchant:
    return await portal_of(request).gateway.merchants.get(me.user.merchant_pid)


@router.get(PREFIX + "/test-notify")
async def test_notify_form(request: Request, me: Current = Depends(signed_in)) -> Response:
    context = await test_notify_start(portal_of(request).gateway, await _mine(request, me))
    return render(request, TEST_NOTIFY, {**context, "tool_base": PREFIX}, me)


@router.post(PREFIX + "/test-notify")
async def test_notify_send(request: Request, me: Current = Depends(signed_in)) -> Response:
    form = await request.form()
    gateway = portal_of(request).gateway
    context, status = await test_notify_run(gateway, await _mine(request, me), form, actor_of(request, me))
    return render(request, TEST_NOTIFY, {**context, "tool_base": PREFIX}, me, status=status)


@router.get(PREFIX + "/signature")
async def signature_form(request: Request, me: Current = Depends(signed_in)) -> Response:
    return render(request, SIGNATURE, {**signature_start(await _mine(request, me)), "tool_base": PREFIX}, me)


@router.post(PREFIX + "/signature")
async def signature_check(request: Request, me: Current = Depends(signed_in)) -> Response:
    form = await request.form()
    gateway = portal_of(request).gateway
    context, status = await signature_run(gateway, await _mine(request, me), form, actor_of(request, me))
    return render(request, SIGNATURE, {**context, "tool_base": PREFIX}, me, status=status)

"""The merchant's own orders: search, one order with its notifications and the answers, and resend.

Every query is the session's merchant's: another merchant's order is "not found", exactly
like one that does not exist.
"""

from __future__ import annotations

from dataclasses import replace
from urllib.parse import urlencode

from fastapi import APIRouter, Depends
from starlette.requests import Request
from starlette.responses import Response

from openepay.admin import orders as order_queries
from openepay.admin.order_actions import ActionRefused, resend_notification
from openepay.admin.sessions import Current
from openepay.channels.base import PAY_TYPE_NAMES
from openepay.core.states import OrderStatus
from openepay.web.admin.orders import BadFilter, read_filter
from openepay.web.merchant.auth import PREFIX, PortalRefusal, signed_in
from openepay.web.merchant.pages import render
from openepay.web.merchant.portal import actor_of, portal_of
from openepay.web.signin.pages import see_other

router = APIRouter()

# What a merchant sees of an order's timeline: not the routing between channel accounts, nor
# who in the operator's team did what.
MERCHANT_EVENTS = {"ev_created", "ev_paid", "ev_paid_late", "ev_closed", "ev_attempt"}
NOTICES = {"resent"}


@router.get(PREFIX)
async def order_list(request: Request, me: Current = Depends(signed_in)) -> Response:
    choices = {"statuses": [str(status) for status in OrderStatus], "pay_types": list(PAY_TYPE_NAMES)}
    try:
        wanted, typed = read_filter(request)
    except BadFilter as bad:
        context = {"typed": {}, "bad": str(bad), "result": None, "query": "", **choices}
        return render(request, "orders.html", context, me, status=400)
    try:
        page = int(request.query_params.get("page", "1"))
    except ValueError:
        page = 1
    gateway = portal_of(request).gateway
    mine = replace(wanted, merchant=me.user.merchant_pid)
    result = await order_queries.search(gateway.db, mine, gateway.settings.zone, page)
    query = urlencode([(name, value) for name, value in request.query_params.multi_items() if name != "page"])
    context = {"typed": typed, "result": result, "query": query, "bad": None, **choices}
    return render(request, "orders.html", context, me)


async def _story(request: Request, me: Current, trade_no: str) -> order_queries.OrderStory:
    found = await order_queries.story(portal_of(request).gateway.db, trade_no)
    if found is None or found.order.merchant_pid != me.user.merchant_pid:
        raise PortalRefusal("not_found", status=404)
    return replace(found, events=[event for event in found.events if event.kind in MERCHANT_EVENTS])


@router.get(PREFIX + "/orders/{trade_no}")
async def order_detail(request: Request, trade_no: str, me: Current = Depends(signed_in)) -> Response:
    found = await _story(request, me, trade_no)
    notice = request.query_params.get("notice")
    context = {"s": found, "notice": notice if notice in NOTICES else None, "error": None}
    return render(request, "order.html", context, me)


@router.post(PREFIX + "/orders/{trade_no}/resend")
async def order_resend(request: Request, trade_no: str, me: Current = Depends(signed_in)) -> Response:
    """Send the paid notification again, through the outbox like the console's resend."""
    found = await _story(request, me, trade_no)
    try:
        await resend_notification(portal_of(request).gateway, trade_no, actor_of(request, me))
    except ActionRefused as refused:
        return render(request, "order.html", {"s": found, "notice": None, "error": refused.key}, me, status=409)
    return see_other(f"{PREFIX}/orders/{trade_no}?notice=resent")

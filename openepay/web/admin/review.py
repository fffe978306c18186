"""Personal-code payments nobody's order was credited with, and attaching one to the order it pays.

The decisions are the qrpool channel's own (``openepay.channels.qrpool.review``), as ``openepay
qrpool review`` makes them: the console adds only who did it, from the session.
"""

from __future__ import annotations

from fastapi import APIRouter, Depends
from starlette.requests import Request
from starlette.responses import Response

from openepay.admin.roles import Role
from openepay.admin.sessions import Current
from openepay.channels.qrpool.review import ReviewRefused, attach_event, review_queue
from openepay.web.admin.auth import PREFIX, needs
from openepay.web.admin.console import console_of
from openepay.web.admin.pages import render
from openepay.web.signin.pages import see_other

router = APIRouter()
QUEUE_LENGTH = 100


async def _queue_page(request: Request, me: Current, *, error: str | None = None, status: int = 200) -> Response:
    items = await review_queue(console_of(request).gateway.db, limit=QUEUE_LENGTH)
    notice = request.query_params.get("notice")
    context = {"items": items, "refusal": error, "notice": notice if notice == "attached" else None}
    return render(request, "review.html", context, me, status=status)


@router.get(PREFIX + "/qrpool/review")
async def review_list(request: Request, me: Current = Depends(needs(Role.VIEWER))) -> Response:
    return await _queue_page(request, me)


@router.post(PREFIX + "/qrpool/review/{event_id}/attach")
async def review_attach(request: Request, event_id: int, me: Current = Depends(needs(Role.OPERATOR))) -> Response:
    gateway = console_of(request).gateway
    form = await request.form()
    trade_no = str(form.get("trade_no") or "").strip()
    reason = str(form.get("reason") or "")
    try:
        await attach_event(gateway.db, gateway.settings, event_id, trade_no, actor=me.user.username, reason=reason)
    except ReviewRefused as refused:
        return await _queue_page(request, me, error=refused.message, status=409)
    return see_other(f"{PREFIX}/qrpool/review?notice=attached")

"""Orders in the console: search with totals, CSV export, one order's timeline, and its actions."""

from __future__ import annotations

import csv
import io
from collections.abc import AsyncIterator
from datetime import date
from urllib.parse import urlencode

from fastapi import APIRouter, Depends
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse

from openepay.admin import orders as order_queries
from openepay.admin.order_actions import (
    REFUND_DONE,
    REFUND_PROCESSING,
    ActionRefused,
    close,
    confirm_by_hand,
    refund,
    resend_notification,
)
from openepay.admin.roles import Role
from openepay.admin.sessions import Current
from openepay.channels.base import PAY_TYPE_NAMES
from openepay.core.money import MoneyError, format_yuan, parse_yuan
from openepay.core.states import OrderStatus
from openepay.db.types import storable
from openepay.web.admin.auth import PREFIX, Refusal, needs
from openepay.web.admin.console import actor_of, console_of
from openepay.web.admin.pages import render
from openepay.web.signin.pages import TIME_FORMAT, see_other

router = APIRouter()

FILTER_FIELDS = ("trade_no", "out_trade_no", "merchant", "status", "channel", "pay_type", "date_from", "date_to")
# What an action may report back on the order's page (never text from the request itself).
NOTICES = {"resent", "closed_done", "confirmed_done", REFUND_DONE, REFUND_PROCESSING}


class BadFilter(ValueError):
    pass


def read_filter(request: Request) -> tuple[order_queries.OrderFilter, dict[str, str]]:
    """The filter from the query string, and the values as typed (to show them again in the form)."""
    typed = {name: request.query_params.get(name, "").strip() for name in FILTER_FIELDS}
    unreadable = next((name for name, value in typed.items() if not storable(value)), None)
    if unreadable is not None:
        raise BadFilter(unreadable)
    try:
        merchant = int(typed["merchant"]) if typed["merchant"] else None
    except ValueError:
        raise BadFilter("merchant") from None
    if typed["status"] and typed["status"] not in set(OrderStatus):
        raise BadFilter("status")
    dates: dict[str, date | None] = {}
    for name in ("date_from", "date_to"):
        try:
            dates[name] = date.fromisoformat(typed[name]) if typed[name] else None
        except ValueError:
            raise BadFilter(name) from None
    wanted = order_queries.OrderFilter(
        trade_no=typed["trade_no"] or None,
        out_trade_no=typed["out_trade_no"] or None,
        merchant=merchant,
        status=typed["status"] or None,
        channel=typed["channel"] or None,
        pay_type=typed["pay_type"] or None,
        date_from=dates["date_from"],
        date_to=dates["date_to"],
    )
    return wanted, typed


def _choices(request: Request) -> dict[str, object]:
    gateway = console_of(request).gateway
    return {
        "statuses": [str(status) for status in OrderStatus],
        "channels": sorted(channel.name for channel in gateway.channels.all()),
        "pay_types": list(PAY_TYPE_NAMES),
    }


@router.get(PREFIX + "/orders")
async def order_list(request: Request, me: Current = Depends(needs(Role.VIEWER))) -> Response:
    try:
        wanted, typed = read_filter(request)
    except BadFilter as bad:
        context = {"typed": {}, "bad": str(bad), "result": None, "query": "", **_choices(request)}
        return render(request, "orders.html", context, me, status=400)
    try:
        page = int(request.query_params.get("page", "1"))
    except ValueError:
        page = 1
    gateway = console_of(request).gateway
    result = await order_queries.search(gateway.db, wanted, gateway.settings.zone, page)
    query = urlencode([(name, value) for name, value in request.query_params.multi_items() if name != "page"])
    context = {"typed": typed, "result": result, "query": query, "bad": None, **_choices(request)}
    return render(request, "orders.html", context, me)


CSV_COLUMNS = (
    "trade_no",
    "out_trade_no",
    "merchant",
    "status",
    "channel",
    "pay_type",
    "amount",
    "pay_amount",
    "paid",
    "created_at",
    "paid_at",
    "name",
)


def _cell(value: str) -> str:
    """A spreadsheet must not run what a buyer typed: text starting like a formula is quoted."""
    return "'" + value if value[:1] in ("=", "+", "-", "@", "\t", "\r") else value


@router.get(PREFIX + "/orders.csv")
async def order_export(request: Request, me: Current = Depends(needs(Role.VIEWER))) -> Response:
    try:
        wanted, _ = read_filter(request)
    except BadFilter as bad:
        return Response(f"bad filter: {bad}\n", status_code=400, media_type="text/plain")
    gateway = console_of(request).gateway
    zone = gateway.settings.zone

    def local(moment) -> str:  # type: ignore[no-untyped-def]
        return moment.astimezone(zone).strftime(TIME_FORMAT) if moment else ""

    async def lines() -> AsyncIterator[str]:
        buffer = io.StringIO()
        writer = csv.writer(buffer)
        writer.writerow(CSV_COLUMNS)
        async for order in order_queries.export(gateway.db, wanted, zone):
            writer.writerow(
                [
                    order.trade_no,
                    _cell(order.out_trade_no),
                    order.merchant_pid,
                    order.status,
                    order.channel or "",
                    order.pay_type or "",
                    format_yuan(order.amount_fen),
                    format_yuan(order.pay_amount_fen),
                    format_yuan(order.paid_fen) if order.paid_fen is not None else "",
                    local(order.created_at),
                    local(order.paid_at),
                    _cell(order.name),
                ]
            )
            if buffer.tell() > 65536:
                yield buffer.getvalue()
                buffer.seek(0)
                buffer.truncate()
        yield buffer.getvalue()

    return StreamingResponse(
        lines(),
        media_type="text/csv; charset=utf-8",
        headers={"content-disposition": 'attachment; filename="orders.csv"', "cache-control": "no-store"},
    )


async def _order_page(
    request: Request,
    me: Current,
    trade_no: str,
    *,
    notice: str | None = None,
    error: str | None = None,
    status: int = 200,
) -> Response:
    found = await order_queries.story(console_of(request).gateway.db, trade_no)
    if found is None:
        raise Refusal("not_found", status=404)
    return render(request, "order.html", {"s": found, "notice": notice, "error": error}, me, status=status)


@router.get(PREFIX + "/orders/{trade_no}")
async def order_detail(request: Request, trade_no: str, me: Current = Depends(needs(Role.VIEWER))) -> Response:
    notice = request.query_params.get("notice")
    return await _order_page(request, me, trade_no, notice=notice if notice in NOTICES else None)


async def _act(request: Request, me: Current, trade_no: str, action, done: str) -> Response:  # type: ignore[no-untyped-def]
    try:
        await action()
    except ActionRefused as refused:
        if refused.key == "not_found":
            raise Refusal("not_found", status=404) from None
        return await _order_page(request, me, trade_no, error=refused.key, status=409)
    return see_other(f"{PREFIX}/orders/{trade_no}?notice={done}")


@router.post(PREFIX + "/orders/{trade_no}/resend")
async def order_resend(request: Request, trade_no: str, me: Current = Depends(needs(Role.OPERATOR))) -> Response:
    gateway = console_of(request).gateway
    return await _act(
        request, me, trade_no, lambda: resend_notification(gateway, trade_no, actor_of(request, me)), "resent"
    )


@router.post(PREFIX + "/orders/{trade_no}/close")
async def order_close(request: Request, trade_no: str, me: Current = Depends(needs(Role.OPERATOR))) -> Response:
    gateway = console_of(request).gateway
    return await _act(request, me, trade_no, lambda: close(gateway, trade_no, actor_of(request, me)), "closed_done")


@router.post(PREFIX + "/orders/{trade_no}/confirm")
async def order_confirm(request: Request, trade_no: str, me: Current = Depends(needs(Role.OPERATOR))) -> Response:
    gateway = console_of(request).gateway
    reason = str((await request.form()).get("reason") or "")
    return await _act(
        request,
        me,
        trade_no,
        lambda: confirm_by_hand(gateway, trade_no, actor_of(request, me), reason),
        "confirmed_done",
    )


@router.post(PREFIX + "/orders/{trade_no}/refund")
async def order_refund(request: Request, trade_no: str, me: Current = Depends(needs(Role.OPERATOR))) -> Response:
    form = await request.form()
    try:
        amount_fen = parse_yuan(str(form.get("amount") or "").strip())
    except MoneyError:
        return await _order_page(request, me, trade_no, error="refund_amount_invalid", status=400)
    gateway = console_of(request).gateway
    try:
        outcome = await refund(gateway, trade_no, amount_fen, actor_of(request, me), str(form.get("reason") or ""))
    except ActionRefused as refused:
        if refused.key == "not_found":
            raise Refusal("not_found", status=404) from None
        return await _order_page(request, me, trade_no, error=refused.key, status=409)
    return see_other(f"{PREFIX}/orders/{trade_no}?notice={outcome}")

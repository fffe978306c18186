"""A merchant's integration tools in the console: send a test notification, check a signature.

Both act with the merchant's key, which never reaches a page: the test message is signed on the
server, and the checker shows the signed string with the key masked. The checker answers with
our signature for whatever is pasted, so it is a signing tool for that merchant's key: both tools
are for operators and above, and every use is in the audit log.
"""

from __future__ import annotations

from fastapi import APIRouter, Depends
from sqlalchemy import select
from starlette.requests import Request
from starlette.responses import Response

from openepay.admin import audit
from openepay.admin.roles import Role
from openepay.admin.sessions import Current
from openepay.db.models import Merchant, Order
from openepay.notify.diagnosis import send_test_notification
from openepay.notify.http import SafeHttpClient
from openepay.notify.targets import UnusableUrl, read_target
from openepay.protocols.inspect import DIALECTS, UnreadableInput, check_signature
from openepay.web.admin.auth import PREFIX, Refusal, needs
from openepay.web.admin.console import actor_of, console_of
from openepay.web.admin.pages import render

router = APIRouter()
MAX_URL = 1024
MAX_PASTED = 20000


async def _merchant(request: Request, pid: int) -> Merchant:
    async with console_of(request).gateway.db.session() as session:
        merchant = await session.get(Merchant, pid)
    if merchant is None:
        raise Refusal("not_found", status=404)
    return merchant


def _dialects(merchant: Merchant, offered: list[str]) -> list[str]:
    return [name for name in offered if merchant.dialects is None or name in merchant.dialects]


async def _last_order(request: Request, pid: int) -> tuple[str, str] | None:
    """The notify URL and dialect of the merchant's latest order: what a test most likely wants."""
    async with console_of(request).gateway.db.session() as session:
        row = (
            await session.execute(
                select(Order.notify_url, Order.dialect)
                .where(Order.merchant_pid == pid)
                .order_by(Order.id.desc())
                .limit(1)
            )
        ).first()
    return (row[0], row[1]) if row else None


@router.get(PREFIX + "/merchants/{pid}/test-notify")
async def test_notify_form(request: Request, pid: int, me: Current = Depends(needs(Role.OPERATOR))) -> Response:
    merchant = await _merchant(request, pid)
    dialects = _dialects(merchant, console_of(request).gateway.dialects.names())
    last = await _last_order(request, pid)
    context = {
        "m": merchant,
        "dialects": dialects,
        "url": last[0] if last else "",
        "dialect": last[1] if last and last[1] in dialects else dialects[0] if dialects else "",
        "result": None,
        "error": None,
    }
    return render(request, "merchant_test_notify.html", context, me)


@router.post(PREFIX + "/merchants/{pid}/test-notify")
async def test_notify_send(request: Request, pid: int, me: Current = Depends(needs(Role.OPERATOR))) -> Response:
    merchant = await _merchant(request, pid)
    gateway = console_of(request).gateway
    dialects = _dialects(merchant, gateway.dialects.names())
    form = await request.form()
    url, dialect = str(form.get("url") or "").strip(), str(form.get("dialect") or "")
    context = {"m": merchant, "dialects": dialects, "url": url[:MAX_URL], "dialect": dialect, "result": None}
    if dialect not in dialects:
        return render(request, "merchant_test_notify.html", {**context, "error": "dialect_invalid"}, me, status=400)
    try:
        target = read_target(url) if len(url) <= MAX_URL else None
    except UnusableUrl:
        target = None
    if target is None:
        return render(request, "merchant_test_notify.html", {**context, "error": "url_invalid"}, me, status=400)
    http = SafeHttpClient.for_settings(gateway.settings)
    try:
        result = await send_test_notification(
            gateway.dialects.named(dialect),
            http,
            dialect=dialect,
            pid=pid,
            key=gateway.merchants.key_of(merchant),
            url=url,
        )
    finally:
        await http.aclose()
    await audit.record(
        gateway.db,
        actor_of(request, me),
        "merchant.test_notify",
        f"merchant:{pid}",
        after={
            "dialect": dialect,
            "host": result.target_host,
            "status": result.status,
            "diagnosis": result.diagnosis.code,
        },
    )
    return render(request, "merchant_test_notify.html", {**context, "result": result, "error": None}, me)


@router.get(PREFIX + "/merchants/{pid}/signature")
async def signature_form(request: Request, pid: int, me: Current = Depends(needs(Role.OPERATOR))) -> Response:
    merchant = await _merchant(request, pid)
    dialects = _dialects(merchant, list(DIALECTS))
    context = {"m": merchant, "dialects": dialects, "dialect": dialects[0] if dialects else "", "text": ""}
    return render(request, "merchant_signature.html", {**context, "check": None, "error": None}, me)


@router.post(PREFIX + "/merchants/{pid}/signature")
async def signature_check(request: Request, pid: int, me: Current = Depends(needs(Role.OPERATOR))) -> Response:
    merchant = await _merchant(request, pid)
    gateway = console_of(request).gateway
    dialects = _dialects(merchant, list(DIALECTS))
    form = await request.form()
    text, dialect = str(form.get("text") or ""), str(form.get("dialect") or "")
    context = {"m": merchant, "dialects": dialects, "dialect": dialect, "text": text[:MAX_PASTED], "check": None}
    if dialect not in dialects:
        return render(request, "merchant_signature.html", {**context, "error": "dialect_invalid"}, me, status=400)
    try:
        if len(text) > MAX_PASTED:
            raise UnreadableInput("too_long")
        check = check_signature(dialect, text, gateway.merchants.key_of(merchant))
    except UnreadableInput as unreadable:
        return render(
            request, "merchant_signature.html", {**context, "error": "sig_" + unreadable.code}, me, status=400
        )
    await audit.record(
        gateway.db,
        actor_of(request, me),
        "merchant.check_signature",
        f"merchant:{pid}",
        after={"dialect": dialect, "message": check.message, "matches": check.matches},
    )
    return render(request, "merchant_signature.html", {**context, "check": check, "error": None}, me)

"""A merchant's integration tools in the console: send a test notification, check a signature.

Both act with the merchant's key, which never reaches a page: the test message is signed on the
server, and the checker shows the signed string with the key masked. The checker answers with
our signature for whatever is pasted, so it is a signing tool for that merchant's key: both tools
are for operators and above, and every use is in the audit log. The merchant portal offers both to
a merchant for its own key (``openepay.web.merchant.tools``), through the functions below.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from fastapi import APIRouter, Depends
from sqlalchemy import select
from starlette.requests import Request
from starlette.responses import Response

from openepay.admin import audit
from openepay.admin.roles import Role
from openepay.admin.sessions import Current
from openepay.db.models import Merchant, Order
from openepay.gateway import Gateway
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


async def _last_order(gateway: Gateway, pid: int) -> tuple[str, str] | None:
    """The notify URL and dialect of the merchant's latest order: what a test most likely wants."""
    async with gateway.db.session() as session:
        row = (
            await session.execute(
                select(Order.notify_url, Order.dialect)
                .where(Order.merchant_pid == pid)
                .order_by(Order.id.desc())
                .limit(1)
            )
        ).first()
    return (row[0], row[1]) if row else None


async def test_notify_start(gateway: Gateway, merchant: Merchant) -> dict[str, Any]:
    """The test form, filled in from the merchant's latest order (the merchant portal shares it)."""
    dialects = _dialects(merchant, gateway.dialects.names())
    last = await _last_order(gateway, merchant.pid)
    return {
        "m": merchant,
        "dialects": dialects,
        "url": last[0] if last else "",
        "dialect": last[1] if last and last[1] in dialects else dialects[0] if dialects else "",
        "result": None,
        "error": None,
    }


async def test_notify_run(
    gateway: Gateway, merchant: Merchant, form: Mapping[str, Any], actor: audit.Actor
) -> tuple[dict[str, Any], int]:
    """Send the test the form asks for and diagnose it: the page's values and its status."""
    dialects = _dialects(merchant, gateway.dialects.names())
    url, dialect = str(form.get("url") or "").strip(), str(form.get("dialect") or "")
    context = {"m": merchant, "dialects": dialects, "url": url[:MAX_URL], "dialect": dialect, "result": None}
    if dialect not in dialects:
        return {**context, "error": "dialect_invalid"}, 400
    try:
        target = read_target(url) if len(url) <= MAX_URL else None
    except UnusableUrl:
        target = None
    if target is None:
        return {**context, "error": "url_invalid"}, 400
    http = SafeHttpClient.for_settings(gateway.settings)
    try:
        result = await send_test_notification(
            gateway.dialects.named(dialect),
            http,
            dialect=dialect,
            pid=merchant.pid,
            key=gateway.merchants.key_of(merchant),
            url=url,
        )
    finally:
        await http.aclose()
    await audit.record(
        gateway.db,
        actor,
        "merchant.test_notify",
        f"merchant:{merchant.pid}",
        after={
            "dialect": dialect,
            "host": result.target_host,
            "status": result.status,
            "diagnosis": result.diagnosis.code,
        },
    )
    return {**context, "result": result, "error": None}, 200


def signature_start(merchant: Merchant) -> dict[str, Any]:
    dialects = _dialects(merchant, list(DIALECTS))
    context = {"m": merchant, "dialects": dialects, "dialect": dialects[0] if dialects else "", "text": ""}
    return {**context, "check": None, "error": None}


async def signature_run(
    gateway: Gateway, merchant: Merchant, form: Mapping[str, Any], actor: audit.Actor
) -> tuple[dict[str, Any], int]:
    """Check the pasted text's signature with the merchant's key: the page's values and its status."""
    dialects = _dialects(merchant, list(DIALECTS))
    text, dialect = str(form.get("text") or ""), str(form.get("dialect") or "")
    context = {"m": merchant, "dialects": dialects, "dialect": dialect, "text": text[:MAX_PASTED], "check": None}
    if dialect not in dialects:
        return {**context, "error": "dialect_invalid"}, 400
    try:
        if len(text) > MAX_PASTED:
            raise UnreadableInput("too_long")
        check = check_signature(dialect, text, gateway.merchants.key_of(merchant))
    except UnreadableInput as unreadable:
        return {**context, "error": "sig_" + unreadable.code}, 400
    await audit.record(
        gateway.db,
        actor,
        "merchant.check_signature",
        f"merchant:{merchant.pid}",
        after={"dialect": dialect, "message": check.message, "matches": check.matches},
    )
    return {**context, "check": check, "error": None}, 200


@router.get(PREFIX + "/merchants/{pid}/test-notify")
async def test_notify_form(request: Request, pid: int, me: Current = Depends(needs(Role.OPERATOR))) -> Response:
    context = await test_notify_start(console_of(request).gateway, await _merchant(request, pid))
    return render(request, "merchant_test_notify.html", context, me)


@router.post(PREFIX + "/merchants/{pid}/test-notify")
async def test_notify_send(request: Request, pid: int, me: Current = Depends(needs(Role.OPERATOR))) -> Response:
    merchant = await _merchant(request, pid)
    form = await request.form()
    context, status = await test_notify_run(console_of(request).gateway, merchant, form, actor_of(request, me))
    return render(request, "merchant_test_notify.html", context, me, status=status)


@router.get(PREFIX + "/merchants/{pid}/signature")
async def signature_form(request: Request, pid: int, me: Current = Depends(needs(Role.OPERATOR))) -> Response:
    return render(request, "merchant_signature.html", signature_start(await _merchant(request, pid)), me)


@router.post(PREFIX + "/merchants/{pid}/signature")
async def signature_check(request: Request, pid: int, me: Current = Depends(needs(Role.OPERATOR))) -> Response:
    merchant = await _merchant(request, pid)
    form = await request.form()
    context, status = await signature_run(console_of(request).gateway, merchant, form, actor_of(request, me))
    return render(request, "merchant_signature.html", context, me, status=status)

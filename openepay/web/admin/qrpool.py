"""Personal codes in the console: receiving accounts, their codes, and the phones that watch them.

Every write is ``openepay.admin.qrpool_actions``, which ``openepay qrpool`` calls too. Who may
do what follows the CLI's help: a viewer reads; an operator does the day-to-day work (switching
an account on or off, uploading and deleting codes, revoking a lost phone at once); adding an
account or a phone is for administrators, because a new phone is a new key that can credit
orders.
"""

from __future__ import annotations

import segno
from fastapi import APIRouter, Depends
from starlette.datastructures import UploadFile
from starlette.requests import Request
from starlette.responses import Response

from openepay.admin import qrpool_actions
from openepay.admin.roles import Role
from openepay.admin.sessions import Current
from openepay.channels.qrpool import accounts as qr
from openepay.channels.qrpool.accounts import QrPoolError
from openepay.channels.qrpool.qrdecode import decode_qr_bytes
from openepay.core.money import MoneyError, parse_yuan
from openepay.db.models import QrAccount
from openepay.web.admin.auth import PREFIX, Refusal, needs
from openepay.web.admin.console import actor_of, console_of
from openepay.web.admin.pages import render
from openepay.web.signin.guard import UPLOAD_FIELD
from openepay.web.signin.pages import see_other

router = APIRouter()
HOME = PREFIX + "/qrpool"
# A screenshot of a receive code is far smaller; anything bigger is not one.
MAX_IMAGE_BYTES = 5 * 1024 * 1024


def _text(form: object, name: str) -> str:
    value = form.get(name)  # type: ignore[attr-defined]
    return value.strip() if isinstance(value, str) else ""


async def _accounts_page(
    request: Request, me: Current, *, error: str | None = None, status: int = 200, name: str = ""
) -> Response:
    gateway = console_of(request).gateway
    accounts = await qr.list_accounts(gateway.db)
    phones = await qrpool_actions.phones(gateway)
    rows = []
    for account in accounts:
        own = [view for view in phones if view.account.id == account.id]
        codes = await qr.list_codes(gateway.db, account.id)
        rows.append({"account": account, "codes": len(codes), "phones": own, "live": any(v.online for v in own)})
    context = {"rows": rows, "pay_types": qr.PAY_TYPES, "error": error, "name": name}
    return render(request, "qrpool_accounts.html", context, me, status=status)


@router.get(HOME)
async def account_list(request: Request, me: Current = Depends(needs(Role.VIEWER))) -> Response:
    return await _accounts_page(request, me)


@router.post(HOME + "/accounts")
async def account_add(request: Request, me: Current = Depends(needs(Role.ADMINISTRATOR))) -> Response:
    form = await request.form()
    name, pay_type = _text(form, "name"), _text(form, "pay_type")
    try:
        account = await qrpool_actions.add_account(console_of(request).gateway, name, pay_type, actor_of(request, me))
    except QrPoolError as refused:
        return await _accounts_page(request, me, error=refused.message, status=400, name=name)
    return see_other(f"{HOME}/accounts/{account.id}")


async def _account(request: Request, account_id: int) -> QrAccount:
    try:
        return await qr.find_account(console_of(request).gateway.db, str(account_id))
    except QrPoolError:
        raise Refusal("not_found", status=404) from None


async def _account_page(
    request: Request,
    me: Current,
    account_id: int,
    *,
    error: str | None = None,
    status: int = 200,
) -> Response:
    gateway = console_of(request).gateway
    account = await _account(request, account_id)
    codes = await qr.list_codes(gateway.db, account.id)
    added = request.query_params.get("added")
    context = {
        "account": account,
        "codes": codes,
        "added": next((code for code in codes if str(code.id) == added), None),
        "phones": await qrpool_actions.phones(gateway, account.id),
        "timeout": gateway.settings.qrpool_heartbeat_timeout,
        "error": error,
        "upload_field": UPLOAD_FIELD,
    }
    return render(request, "qrpool_account.html", context, me, status=status)


@router.get(HOME + "/accounts/{account_id}")
async def account_detail(request: Request, account_id: int, me: Current = Depends(needs(Role.VIEWER))) -> Response:
    return await _account_page(request, me, account_id)


async def _switch(request: Request, me: Current, account_id: int, enabled: bool) -> Response:
    await _account(request, account_id)
    await qrpool_actions.set_account_enabled(console_of(request).gateway, account_id, enabled, actor_of(request, me))
    return see_other(f"{HOME}/accounts/{account_id}")


@router.post(HOME + "/accounts/{account_id}/enable")
async def account_enable(request: Request, account_id: int, me: Current = Depends(needs(Role.OPERATOR))) -> Response:
    return await _switch(request, me, account_id, True)


@router.post(HOME + "/accounts/{account_id}/disable")
async def account_disable(request: Request, account_id: int, me: Current = Depends(needs(Role.OPERATOR))) -> Response:
    return await _switch(request, me, account_id, False)


async def _uploaded_content(form: object) -> str:
    """The code's text: decoded from the uploaded picture, else as typed."""
    upload = form.get(UPLOAD_FIELD)  # type: ignore[attr-defined]
    if isinstance(upload, UploadFile) and upload.filename:
        data = await upload.read(MAX_IMAGE_BYTES + 1)
        if len(data) > MAX_IMAGE_BYTES:
            raise QrPoolError(f"{upload.filename}: larger than {MAX_IMAGE_BYTES // (1024 * 1024)} MB")
        return decode_qr_bytes(data, upload.filename)
    content = _text(form, "content")
    if not content:
        raise QrPoolError("upload a picture of the code, or paste its content")
    return content


@router.post(HOME + "/accounts/{account_id}/codes")
async def code_add(request: Request, account_id: int, me: Current = Depends(needs(Role.OPERATOR))) -> Response:
    await _account(request, account_id)
    form = await request.form()
    amount = _text(form, "amount")
    try:
        amount_fen = parse_yuan(amount) if amount else None
    except MoneyError as exc:
        return await _account_page(request, me, account_id, error=f"amount: {exc}", status=400)
    try:
        content = await _uploaded_content(form)
        code = await qrpool_actions.add_code(
            console_of(request).gateway, account_id, content, amount_fen, actor_of(request, me)
        )
    except QrPoolError as refused:
        return await _account_page(request, me, account_id, error=refused.message, status=400)
    return see_other(f"{HOME}/accounts/{account_id}?added={code.id}")


@router.post(HOME + "/accounts/{account_id}/codes/{code_id}/delete")
async def code_delete(
    request: Request, account_id: int, code_id: int, me: Current = Depends(needs(Role.OPERATOR))
) -> Response:
    try:
        await qrpool_actions.delete_code(console_of(request).gateway, account_id, code_id, actor_of(request, me))
    except QrPoolError:
        raise Refusal("not_found", status=404) from None
    return see_other(f"{HOME}/accounts/{account_id}")


@router.post(HOME + "/accounts/{account_id}/phones")
async def phone_add(request: Request, account_id: int, me: Current = Depends(needs(Role.ADMINISTRATOR))) -> Response:
    """The one page that shows a phone's key and pairing code: the answer to this POST, never stored or cached."""
    gateway = console_of(request).gateway
    account = await _account(request, account_id)
    form = await request.form()
    name = _text(form, "name") or "phone"
    try:
        # The public URL's host, else the one this console was reached at, unless the form names one.
        host = qr.pairing_host(gateway.settings.public_url or request.url.netloc, _text(form, "host") or None)
        device, key = await qrpool_actions.add_device(gateway, account.id, name, actor_of(request, me))
    except QrPoolError as refused:
        return await _account_page(request, me, account_id, error=refused.message, status=400)
    pairing = qr.pairing_string(host, key)
    context = {
        "account": account,
        "device": device,
        "key": key,
        "pairing": pairing,
        "host": host,
        "qr_svg": segno.make_qr(pairing).svg_inline(scale=5, border=2, omitsize=True),
    }
    return render(request, "qrpool_pairing.html", context, me)


@router.get(HOME + "/phones")
async def phone_list(request: Request, me: Current = Depends(needs(Role.VIEWER))) -> Response:
    gateway = console_of(request).gateway
    context = {"phones": await qrpool_actions.phones(gateway), "timeout": gateway.settings.qrpool_heartbeat_timeout}
    return render(request, "qrpool_phones.html", context, me)


@router.post(HOME + "/phones/{device_id}/revoke")
async def phone_revoke(request: Request, device_id: int, me: Current = Depends(needs(Role.OPERATOR))) -> Response:
    try:
        device = await qrpool_actions.revoke_device(console_of(request).gateway, device_id, actor_of(request, me))
    except QrPoolError:
        raise Refusal("not_found", status=404) from None
    back = request.query_params.get("back")
    return see_other(f"{HOME}/phones" if back == "phones" else f"{HOME}/accounts/{device.account_id}")

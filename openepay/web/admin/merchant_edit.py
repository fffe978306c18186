"""A merchant's settings in the console (administrators): dialects, pay types, the channel accounts that
serve it, the mapi.php answer, the notification schedule, refunds, and its RSA public key.

Each field is read by ``openepay.admin.merchant_settings``, the reader ``openepay merchant set`` uses,
so a mistake gets the CLI's words, next to its field; nothing is saved while any field is wrong.
"""

from __future__ import annotations

from collections.abc import Mapping

from fastapi import APIRouter, Depends
from starlette.requests import Request
from starlette.responses import Response

from openepay.admin import merchant_actions
from openepay.admin import merchant_settings as read
from openepay.admin.roles import Role
from openepay.admin.sessions import Current
from openepay.channels.base import PAY_TYPE_NAMES
from openepay.core.channel_accounts import AccountError
from openepay.core.merchants import MerchantNotFound
from openepay.db.models import Merchant
from openepay.gateway import Gateway
from openepay.protocols import DIALECT_NAMES
from openepay.web.admin.auth import PREFIX, Refusal, needs
from openepay.web.admin.console import actor_of, console_of
from openepay.web.admin.pages import render
from openepay.web.signin.pages import see_other

router = APIRouter()

TEXT_FIELDS = ("dialects", "pay_types", "channel_accounts", "mapi_answer", "notify_retry_delays", "rsa_public_key")


def _listed(values: list[str] | None) -> str:
    return ",".join(values) if values is not None else read.ALL


async def _typed_from(gateway: Gateway, merchant: Merchant) -> dict[str, str]:
    """The form as the stored settings fill it (the RSA key box starts empty: a key given replaces the stored one)."""
    ids = merchant.channel_accounts
    return {
        "dialects": _listed(merchant.dialects),
        "pay_types": _listed(merchant.pay_types),
        "channel_accounts": _listed(await gateway.accounts.names_of(ids) if ids is not None else None),
        "mapi_answer": merchant.mapi_answer,
        "notify_retry_delays": read.delays_text(merchant.notify_retry_delays),
        "rsa_public_key": "",
        "allow_refund": "on" if merchant.refund_enabled else "",
        "rsa_only": "on" if merchant.rsa_only else "",
    }


async def read_form(
    gateway: Gateway, merchant: Merchant, form: Mapping[str, str]
) -> tuple[dict[str, object], dict[str, str]]:
    """The settings the form asks for, and a message per field that cannot be used."""
    typed = {name: str(form.get(name) or "").strip() for name in TEXT_FIELDS}
    values: dict[str, object] = {}
    errors: dict[str, str] = {}
    readers = {
        "dialects": read.dialect_list,
        "pay_types": read.pay_type_list,
        "mapi_answer": read.mapi_answer,
        "notify_retry_delays": read.retry_delays,
    }
    for name, reader in readers.items():
        try:
            values[name] = reader(typed[name])
        except read.SettingRefused as refusal:
            errors[name] = str(refusal)
    try:
        values["channel_accounts"] = await read.account_ids(gateway, typed["channel_accounts"])
    except AccountError as exc:
        errors["channel_accounts"] = exc.message
    if typed["rsa_public_key"]:
        try:
            values["rsa_public_key"] = read.rsa_public_key(typed["rsa_public_key"])
        except read.SettingRefused as refusal:
            errors["rsa_public_key"] = str(refusal)
    values["refund_enabled"] = form.get("allow_refund") == "on"
    values["rsa_only"] = form.get("rsa_only") == "on"
    has_key = values.get("rsa_public_key") or merchant.rsa_public_key or "rsa_public_key" in errors
    if values["rsa_only"] and not has_key:
        errors["rsa_only"] = "rsa_only_needs_key"
    return values, errors


def _page(
    request: Request, me: Current, merchant: Merchant, typed: dict[str, str], errors: dict[str, str], status: int = 200
) -> Response:
    key = read.fingerprint(merchant.rsa_public_key) if merchant.rsa_public_key else None
    context = {
        "m": merchant,
        "typed": typed,
        "errors": errors,
        "fingerprint": key,
        "mapi_answers": read.MAPI_ANSWERS,
        "dialect_names": DIALECT_NAMES,
        "pay_type_names": list(PAY_TYPE_NAMES),
    }
    return render(request, "merchant_edit.html", context, me, status=status)


async def _merchant(gateway: Gateway, pid: int) -> Merchant:
    try:
        return await gateway.merchants.get(pid)
    except MerchantNotFound:
        raise Refusal("not_found", status=404) from None


@router.get(PREFIX + "/merchants/{pid}/edit")
async def merchant_edit_form(request: Request, pid: int, me: Current = Depends(needs(Role.ADMINISTRATOR))) -> Response:
    gateway = console_of(request).gateway
    merchant = await _merchant(gateway, pid)
    return _page(request, me, merchant, await _typed_from(gateway, merchant), {})


@router.post(PREFIX + "/merchants/{pid}/edit")
async def merchant_edit(request: Request, pid: int, me: Current = Depends(needs(Role.ADMINISTRATOR))) -> Response:
    gateway = console_of(request).gateway
    merchant = await _merchant(gateway, pid)
    form = {name: str(value) for name, value in (await request.form()).items()}
    values, errors = await read_form(gateway, merchant, form)
    if errors:
        typed = {name: form.get(name, "") for name in (*TEXT_FIELDS, "allow_refund", "rsa_only")}
        return _page(request, me, merchant, typed, errors, status=400)
    await merchant_actions.change_settings(gateway, pid, values, actor_of(request, me))
    return see_other(f"{PREFIX}/merchants/{pid}?notice=settings_saved")

"""Adding and editing channel accounts in the console (administrators), with forms generated from each
channel's config schema (``openepay.admin.account_form``), and checking an account's credentials live.

A secret is never put in a page: its input is always empty, and left empty it keeps the stored value.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends
from starlette.requests import Request
from starlette.responses import Response

from openepay.admin import account_actions, account_form
from openepay.admin.roles import Role
from openepay.admin.sessions import Current
from openepay.channels.base import PAY_TYPE_NAMES, CredentialCheck
from openepay.channels.registry import channel_classes
from openepay.core.channel_accounts import AccountError
from openepay.db.models import ChannelAccountRecord
from openepay.web.admin.auth import PREFIX, Refusal, needs
from openepay.web.admin.console import actor_of, console_of
from openepay.web.admin.pages import render
from openepay.web.signin.pages import see_other

router = APIRouter()


def _page(
    request: Request,
    me: Current,
    channel: str,
    record: ChannelAccountRecord | None,
    *,
    name: str = "",
    typed: dict[str, str] | None = None,
    rules: dict[str, str] | None = None,
    errors: dict[str, str] | None = None,
    problem: str | None = None,
    check: CredentialCheck | None = None,
    status: int = 200,
) -> Response:
    fields = account_form.form_fields(channel)
    context: dict[str, Any] = {
        "channel": channel,
        "record": record,
        "name": record.name if record is not None else name,
        "fields": fields,
        "typed": typed if typed is not None else account_form.typed_config(fields, record),
        "rules": rules if rules is not None else account_form.rule_inputs(record),
        "errors": errors or {},
        "problem": problem,
        "check": check,
        "pay_type_names": list(PAY_TYPE_NAMES),
        "secrets_set": set(record.secrets) if record is not None else set(),
    }
    return render(request, "channel_form.html", context, me, status=status)


def _typed(request_form: dict[str, str], fields: list[account_form.FormField]) -> tuple[dict[str, str], dict[str, str]]:
    """What was typed, to show again after a mistake: secrets never (the browser is asked to type them again)."""
    typed = {field.name: "" if field.secret else request_form.get(field.input_name, "") for field in fields}
    rules = {name: request_form.get(name, "") for name in (*account_form.RULE_INPUTS, "enabled")}
    return typed, rules


async def _form(request: Request) -> dict[str, str]:
    return {name: str(value) for name, value in (await request.form()).items()}


@router.get(PREFIX + "/channels/new")
async def account_new(request: Request, me: Current = Depends(needs(Role.ADMINISTRATOR))) -> Response:
    channel = request.query_params.get("channel", "")
    if channel not in channel_classes():
        return render(request, "channel_choose.html", {"channels": sorted(channel_classes())}, me)
    return _page(request, me, channel, None)


@router.post(PREFIX + "/channels/new")
async def account_add(request: Request, me: Current = Depends(needs(Role.ADMINISTRATOR))) -> Response:
    form = await _form(request)
    channel = form.get("channel", "")
    if channel not in channel_classes():
        raise Refusal("not_found", status=404)
    fields = account_form.form_fields(channel)
    name = form.get("name", "").strip()
    rules, errors = account_form.read_rules(form)
    problem = None
    if not errors:
        try:
            config = account_form.config_values(fields, form, editing=False)
            await account_actions.add(
                console_of(request).gateway,
                channel,
                name,
                config,
                rules,
                form.get("enabled") == "on",
                actor_of(request, me),
            )
        except AccountError as exc:
            problem = exc.message
        else:
            return see_other(f"{PREFIX}/channels?notice=account_added")
    typed, typed_rules = _typed(form, fields)
    return _page(
        request,
        me,
        channel,
        None,
        name=name,
        typed=typed,
        rules=typed_rules,
        errors=errors,
        problem=problem,
        status=400,
    )


async def _record(request: Request, name: str) -> ChannelAccountRecord:
    try:
        return await console_of(request).gateway.accounts.record(name)
    except AccountError:
        raise Refusal("not_found", status=404) from None


@router.get(PREFIX + "/channels/{name}/edit")
async def account_edit_form(request: Request, name: str, me: Current = Depends(needs(Role.ADMINISTRATOR))) -> Response:
    record = await _record(request, name)
    return _page(request, me, record.channel, record)


@router.post(PREFIX + "/channels/{name}/edit")
async def account_edit(request: Request, name: str, me: Current = Depends(needs(Role.ADMINISTRATOR))) -> Response:
    record = await _record(request, name)
    form = await _form(request)
    fields = account_form.form_fields(record.channel)
    rules, errors = account_form.read_rules(form)
    problem = None
    if not errors:
        config = account_form.config_values(fields, form, editing=True)
        replaced = [field.name for field in fields if field.secret and field.name in config]
        try:
            await account_actions.change(
                console_of(request).gateway,
                name,
                config,
                replaced,
                rules,
                form.get("enabled") == "on",
                actor_of(request, me),
            )
        except AccountError as exc:
            problem = exc.message
        else:
            return see_other(f"{PREFIX}/channels?notice=account_saved")
    typed, typed_rules = _typed(form, fields)
    return _page(
        request, me, record.channel, record, typed=typed, rules=typed_rules, errors=errors, problem=problem, status=400
    )


@router.post(PREFIX + "/channels/{name}/test")
async def account_test(request: Request, name: str, me: Current = Depends(needs(Role.ADMINISTRATOR))) -> Response:
    record = await _record(request, name)
    try:
        result = await account_actions.check(console_of(request).gateway, name, actor_of(request, me))
    except AccountError as exc:
        result = CredentialCheck(False, exc.message)
    return _page(request, me, record.channel, record, check=result)

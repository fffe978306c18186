"""Console users, for administrators: add one, disable or enable one, reset a lost TOTP."""

from __future__ import annotations

from fastapi import APIRouter, Depends
from starlette.requests import Request
from starlette.responses import Response

from openepay.admin.passwords import WeakPassword
from openepay.admin.roles import Role
from openepay.admin.sessions import Current
from openepay.admin.users import UserError
from openepay.db.models import AdminUser
from openepay.web.admin.auth import PREFIX, Refusal, needs
from openepay.web.admin.console import actor_of, console_of
from openepay.web.admin.pages import render
from openepay.web.signin.pages import see_other

router = APIRouter()


async def _users_page(request: Request, me: Current, *, error: str | None = None, status: int = 200) -> Response:
    users = await console_of(request).users.list()
    return render(request, "users.html", {"users": users, "roles": list(Role), "error": error}, me, status=status)


@router.get(PREFIX + "/users")
async def user_list(request: Request, me: Current = Depends(needs(Role.ADMINISTRATOR))) -> Response:
    return await _users_page(request, me)


@router.post(PREFIX + "/users")
async def user_create(request: Request, me: Current = Depends(needs(Role.ADMINISTRATOR))) -> Response:
    form = await request.form()
    role = str(form.get("role") or "")
    if role not in set(Role):
        return await _users_page(request, me, error="role_invalid", status=400)
    try:
        await console_of(request).users.create(
            str(form.get("username") or "").strip(), str(form.get("password") or ""), Role(role), actor_of(request, me)
        )
    except (UserError, WeakPassword) as refused:
        return await _users_page(request, me, error=str(refused), status=400)
    return see_other(f"{PREFIX}/users")


def _done(user: AdminUser | None) -> Response:
    if user is None:
        raise Refusal("not_found", status=404)
    return see_other(f"{PREFIX}/users")


@router.post(PREFIX + "/users/{user_id}/disable")
async def user_disable(request: Request, user_id: int, me: Current = Depends(needs(Role.ADMINISTRATOR))) -> Response:
    if user_id == me.user.id:
        return await _users_page(request, me, error="not_yourself", status=409)
    return _done(await console_of(request).users.set_disabled(user_id, True, actor_of(request, me)))


@router.post(PREFIX + "/users/{user_id}/enable")
async def user_enable(request: Request, user_id: int, me: Current = Depends(needs(Role.ADMINISTRATOR))) -> Response:
    return _done(await console_of(request).users.set_disabled(user_id, False, actor_of(request, me)))


@router.post(PREFIX + "/users/{user_id}/reset-totp")
async def user_reset_totp(request: Request, user_id: int, me: Current = Depends(needs(Role.ADMINISTRATOR))) -> Response:
    return _done(await console_of(request).users.reset_totp(user_id, actor_of(request, me)))

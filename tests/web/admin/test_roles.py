"""Every console route checks its role: read from the app's own routes, so a new route cannot be forgotten."""

from __future__ import annotations

from sqlalchemy import select

from openepay.admin.roles import Role
from openepay.channels.qrpool import accounts as qr
from openepay.core.states import MerchantStatus, OrderStatus
from openepay.db.models import AuditEntry, ChannelAccountRecord, Merchant, Order, QrAccount, QrCode, QrDevice, Refund
from tests.support.admin import ConsoleClient, console_routes, fill, make_user
from tests.support.orders import sandbox_order

# Routes anyone may reach (signing in, the language switch), and the sign-in steps between the
# password and the second factor, which check their own half-made session.
OPEN = {("GET", "/admin/login"), ("POST", "/admin/login"), ("GET", "/admin/lang")}
SECOND_FACTOR = {
    ("GET", "/admin/login/totp"),
    ("POST", "/admin/login/totp"),
    ("GET", "/admin/totp/setup"),
    ("POST", "/admin/totp/setup"),
}
# What the walk sends to every route above the role: enough that each form would act if it let the role in.
ROLE_CHECK_FORM = {
    "reason": "role check",
    "name": "Role Check Shop",
    "amount": "0.01",
    "dialects": "epay",
    "pay_types": "alipay",
    "channel_accounts": "all",
    "mapi_answer": "payurl",
    "notify_retry_delays": "1",
    "channel": "epay_upstream",
    "cfg_api_url": "https://role.example/",
    "cfg_pid": "8",
    "cfg_key": "r" * 32,
    "weight": "9",
    "priority": "9",
}
# The only writes a viewer may make: about their own session.
OWN_SESSION = {("POST", "/admin/logout"), ("POST", "/admin/logout-everywhere")}


def test_every_console_route_declares_a_role_and_only_session_writes_are_open_to_viewers(settings):
    routes = console_routes(settings)
    assert len(routes) > 15
    undeclared = {(method, path) for method, path, role in routes if role is None}
    assert undeclared == OPEN | SECOND_FACTOR
    viewer_writes = {(method, path) for method, path, role in routes if method == "POST" and role is Role.VIEWER}
    assert viewer_writes == OWN_SESSION


async def test_viewers_and_operators_are_refused_every_route_above_them_and_nothing_changes(server, gateway, merchant):
    order = await sandbox_order(gateway, merchant.pid, "R-1")
    await gateway.accounts.add("epay_upstream", "up-1", {"api_url": "https://up.example/", "pid": "7", "key": "k" * 32})
    account = await qr.create_account(gateway.db, "wx-main", "wxpay")
    code = await qr.add_code(gateway.db, account.id, "wxp://f2f0role", None)
    device, _ = await qr.add_device(gateway.db, gateway.box, account.id, "phone")
    values = {
        "{account_id}": str(account.id),
        "{code_id}": str(code.id),
        "{device_id}": str(device.id),
        "{trade_no}": order.trade_no,
        "{pid}": str(merchant.pid),
        "{name}": "up-1",
        "{event_id}": "1",
        "{user_id}": "1",
    }
    users = {role: await make_user(gateway, f"user-{role}", role) for role in Role}
    checked = 0
    for role, user in users.items():
        async with ConsoleClient(server.url) as browser:
            await browser.sign_in(user)
            for method, template, needed in console_routes(server.settings):
                # Signing out is everyone's (tests/web/admin/test_login.py) and would end this walk.
                if needed is None or (method, template) in OWN_SESSION:
                    continue
                path = template
                for name, value in values.items():
                    path = path.replace(name, value)
                if role.may(needed):
                    # What a role may do is tested with each page; here it may read every page it is allowed.
                    if method == "GET":
                        assert (await browser.get(path)).status_code == 200, (role, path)
                    continue
                if method == "GET":
                    answer = await browser.get(path)
                else:
                    answer = await browser.post(path, ROLE_CHECK_FORM)
                assert answer.status_code == 403, (role, method, path, answer.status_code)
                assert 'data-refusal="role"' in answer.text and f"此操作需要角色：{_name(needed)}" in answer.text
                checked += 1
    assert checked >= 10
    async with gateway.db.session() as session:
        assert (await session.get(Merchant, merchant.pid)).status == MerchantStatus.ACTIVE
        assert (await session.scalar(select(Order).where(Order.id == order.id))).status == OrderStatus.PAYING
        assert (await session.scalar(select(Merchant).where(Merchant.name == "Role Check Shop"))) is None
        [channel_account] = (await session.scalars(select(ChannelAccountRecord))).all()
        assert (channel_account.enabled, channel_account.weight, channel_account.config["pid"]) == (True, 1, "7")
        stored = await session.get(Merchant, merchant.pid)
        assert (stored.dialects, stored.mapi_answer) == (None, "channel")
        assert (await session.scalar(select(Refund))) is None
        assert (await session.get(QrAccount, account.id)).enabled is True
        assert (await session.get(QrDevice, device.id)).enabled is True
        assert (await session.get(QrCode, code.id)) is not None
        assert [name for name in (await session.scalars(select(QrAccount.name))).all()] == ["wx-main"]
        actors = set((await session.scalars(select(AuditEntry.actor))).all())
    assert actors == {"test"}


async def test_without_a_session_every_route_sends_the_browser_to_sign_in(server, gateway, merchant):
    for method, template, needed in console_routes(server.settings):
        if needed is None:
            continue
        path = fill(
            template,
            trade_no="1",
            pid=str(merchant.pid),
            name="up-1",
            event_id="1",
            user_id="1",
            account_id="1",
            code_id="1",
            device_id="1",
        )
        async with ConsoleClient(server.url) as stranger:
            answer = await (stranger.get(path) if method == "GET" else stranger.post(path, {"csrf": "x"}))
        assert answer.status_code == 303 and answer.headers["location"].startswith("/admin/login"), (method, path)


def _name(role: Role) -> str:
    return {Role.OPERATOR: "运营", Role.ADMINISTRATOR: "管理员", Role.VIEWER: "只读"}[role]

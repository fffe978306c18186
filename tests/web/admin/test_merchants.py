"""Merchants in the console: created with a key shown once, disabled and enabled, key rotated, notifications
resumed, merchant portal sign-ins given with a password shown once."""

from __future__ import annotations

import re
from datetime import timedelta

from sqlalchemy import select, update

from openepay.admin.roles import Role
from openepay.core.states import NotifyStatus
from openepay.db.models import AuditEntry, NotifyBreaker, NotifyTask, Order
from openepay.db.types import utcnow
from tests.support.admin import ConsoleClient, make_user
from tests.support.epay import order_params, signed
from tests.support.notify import paid_order
from tests.support.portal import PortalClient, PortalUser

KEY = re.compile(r'id="new-key">([A-Za-z0-9]{32})<')
PID = re.compile(r'id="new-pid">(\d+)<')


async def _order_answer(server, pid: int, key: str, out_trade_no: str) -> dict:
    params = order_params(pid, "http://shop.example", out_trade_no, clientip="203.0.113.9")
    async with server.client() as client:
        return (await client.post("/mapi.php", data=signed(params, key))).json()


async def test_an_administrator_creates_a_merchant_whose_key_works_and_is_shown_only_once(server, gateway):
    admin = await make_user(gateway, "ada", Role.ADMINISTRATOR)
    async with ConsoleClient(server.url) as browser:
        await browser.sign_in(admin)
        await browser.get("/admin/merchants/new")
        empty = await browser.post("/admin/merchants", {"name": " "})
        assert empty.status_code == 400 and "请填写商户名称" in empty.text
        created = await browser.post("/admin/merchants", {"name": "小李的杂货铺", "allow_refund": "on"})
        assert created.status_code == 200 and "密钥只显示这一次" in created.text
        assert created.headers["cache-control"] == "no-store"
        key, pid = KEY.search(created.text).group(1), int(PID.search(created.text).group(1))
        assert (await _order_answer(server, pid, key, "M-1"))["code"] == 1

        for path in ("/admin/merchants", f"/admin/merchants/{pid}", "/admin/audit"):
            page = await browser.get(path)
            assert page.status_code == 200 and "小李的杂货铺" in page.text or path == "/admin/audit"
            assert key not in page.text

        rotated = await browser.post(f"/admin/merchants/{pid}/rotate-key")
        new_key = KEY.search(rotated.text).group(1)
        assert new_key != key and "旧密钥立即失效" in rotated.text
        assert (await _order_answer(server, pid, key, "M-2"))["code"] != 1
        assert (await _order_answer(server, pid, new_key, "M-3"))["code"] == 1

        assert (await browser.post(f"/admin/merchants/{pid}/disable")).status_code == 303
        assert "已停用" in (await browser.get(f"/admin/merchants/{pid}")).text
        assert (await _order_answer(server, pid, new_key, "M-4"))["code"] != 1
        assert (await browser.post(f"/admin/merchants/{pid}/enable")).status_code == 303
        assert (await _order_answer(server, pid, new_key, "M-5"))["code"] == 1
        assert (await browser.post("/admin/merchants/999999/disable")).status_code == 404

    async with gateway.db.session() as session:
        entries = (await session.scalars(select(AuditEntry).order_by(AuditEntry.id))).all()
    assert [entry.action for entry in entries if entry.actor == "ada"] == [
        "merchant.create",
        "merchant.rotate_key",
        "merchant.disable",
        "merchant.enable",
    ]
    assert all(key not in str(entry.after) and new_key not in str(entry.after) for entry in entries)


async def test_the_dashboard_shows_takings_and_paused_merchants_and_an_operator_resumes_them(server, gateway, merchant):
    trade_no = await paid_order(server, merchant, "http://127.0.0.1:9/notify", "D-1", money="8.88")
    earlier = await paid_order(server, merchant, "http://127.0.0.1:9/notify", "D-0", money="20.00")
    async with gateway.db.session() as session:
        await session.execute(
            update(Order)
            .where(Order.trade_no == earlier)
            .values(paid_at=utcnow() - timedelta(days=3), created_at=utcnow() - timedelta(days=3))
        )
    until = utcnow() + timedelta(minutes=10)
    today = utcnow().astimezone(server.settings.zone).date()
    async with gateway.db.session() as session:
        session.add(
            NotifyBreaker(merchant_pid=merchant.pid, consecutive_failures=7, open_until=until, cooldown_seconds=600)
        )
    operator = await make_user(gateway, "olga", Role.OPERATOR)
    async with ConsoleClient(server.url) as browser:
        dashboard = await browser.sign_in(operator)
        assert "¥8.88" in dashboard.text and '<div class="value paid-count">1<' in dashboard.text
        assert '<div class="value success-rate">100.0%<' in dashboard.text
        assert 'id="backlog">2<' in dashboard.text
        bars = re.findall(r'data-day="([\d-]+)" data-fen="(\d+)"', dashboard.text)
        assert len(bars) == 30 and bars[-1] == (today.isoformat(), "888")
        assert bars[-4] == ((today - timedelta(days=3)).isoformat(), "2000")
        assert sum(int(fen) for _, fen in bars) == 2888 and "最高单日 ¥20.00" in dashboard.text
        local_until = until.astimezone(server.settings.zone).strftime("%Y-%m-%d %H:%M:%S")
        assert 'id="paused"' in dashboard.text and local_until in dashboard.text and "Test Shop" in dashboard.text
        resumed = await browser.post(f"/admin/merchants/{merchant.pid}/resume")
        assert resumed.status_code == 303
        after = await browser.get("/admin")
        assert 'id="paused-none"' in after.text
    async with gateway.db.session() as session:
        breaker = await session.get(NotifyBreaker, merchant.pid)
        tasks = (await session.scalars(select(NotifyTask))).all()
    assert breaker.open_until is None and breaker.consecutive_failures == 0
    assert all(task.status == NotifyStatus.PENDING and task.next_attempt_at <= utcnow() for task in tasks)
    assert trade_no


async def test_an_administrator_disables_a_channel_account_and_its_secret_is_only_named(server, gateway):
    await gateway.accounts.add(
        "epay_upstream", "up-1", {"api_url": "https://up.example/", "pid": "7", "key": "SecretKey" * 4}
    )
    admin = await make_user(gateway, "ada", Role.ADMINISTRATOR)
    async with ConsoleClient(server.url) as browser:
        await browser.sign_in(admin)
        page = await browser.get("/admin/channels")
        assert "https://up.example/" in page.text and "已设置（不显示）" in page.text
        assert "SecretKey" not in page.text
        assert (await browser.post("/admin/channels/up-1/disable")).status_code == 303
        assert 'class="account-state">已停用' in (await browser.get("/admin/channels")).text
        assert (await browser.post("/admin/channels/no-such/enable")).status_code == 404
        assert (await browser.post("/admin/channels/up-1/enable")).status_code == 303
    record = await gateway.accounts.record("up-1")
    assert record.enabled is True
    async with gateway.db.session() as session:
        actions = (await session.scalars(select(AuditEntry.action).where(AuditEntry.actor == "ada"))).all()
    assert list(actions) == ["channel.disable", "channel.enable"]


async def test_an_administrator_gives_a_merchant_a_portal_sign_in_whose_password_is_shown_once(
    server, gateway, merchant
):
    admin = await make_user(gateway, "ada", Role.ADMINISTRATOR)
    async with ConsoleClient(server.url) as browser:
        await browser.sign_in(admin)
        page = await browser.get(f"/admin/merchants/{merchant.pid}")
        assert 'id="no-portal-logins"' in page.text
        bad = await browser.post(f"/admin/merchants/{merchant.pid}/logins", {"username": "has space"})
        assert bad.status_code == 400 and 'id="error"' in bad.text
        made = await browser.post(f"/admin/merchants/{merchant.pid}/logins", {"username": "owner@shop.cn"})
        assert made.status_code == 200 and made.headers["cache-control"] == "no-store"
        password = re.search(r'id="login-password">([^<]+)<', made.text).group(1)
        page = await browser.get(f"/admin/merchants/{merchant.pid}")
        assert "owner@shop.cn" in page.text and password not in page.text
        taken = await browser.post(f"/admin/merchants/{merchant.pid}/logins", {"username": "owner@shop.cn"})
        assert taken.status_code == 400
        assert (await browser.post("/admin/merchants/999999/logins", {"username": "x@shop.cn"})).status_code == 404
    async with PortalClient(server.url) as shop, ConsoleClient(server.url) as browser:
        orders = await shop.sign_in(PortalUser(merchant.pid, "owner@shop.cn", password))
        assert f"pid {merchant.pid}" in orders.text
        # The person leaves the shop: the administrator disables the sign-in and its session ends.
        await browser.sign_in(admin)
        page = await browser.get(f"/admin/merchants/{merchant.pid}")
        disable = re.search(rf'action="(/admin/merchants/{merchant.pid}/logins/\d+/disable)"', page.text).group(1)
        other = await gateway.merchants.create("Other Shop")
        elsewhere = disable.replace(f"/merchants/{merchant.pid}/", f"/merchants/{other.pid}/")
        assert (await browser.post(elsewhere)).status_code == 404
        assert (await shop.get("/merchant")).status_code == 200
        assert (await browser.post(disable)).status_code == 303
        assert (await shop.get("/merchant")).status_code == 303
        assert (await shop.submit_login("owner@shop.cn", password)).status_code == 401
        assert (await browser.post(disable.replace("/disable", "/enable"))).status_code == 303
        assert (await shop.submit_login("owner@shop.cn", password)).status_code == 303

"""Signing in to the console: passwords, lockouts, TOTP, cookies, CSRF, logging out everywhere."""

from __future__ import annotations

import asyncio
import time

import httpx
from sqlalchemy import func, select

from openepay.admin import totp
from openepay.admin.roles import Role
from openepay.db.models import AdminSession
from tests.support.admin import ConsoleClient, ConsoleUser, make_user, stored_user
from tests.support.cli import openepay
from tests.support.gateways import own_server
from tests.support.orders import sandbox_order
from tests.support.signin import csrf_of, where_next_leads


async def test_a_user_signs_in_with_a_password_and_gets_a_session_cookie_scripts_cannot_read(server, gateway):
    user = await make_user(gateway, "alice", Role.VIEWER)
    async with ConsoleClient(server.url) as browser:
        first = await browser.get("/admin")
        assert first.status_code == 303 and first.headers["location"] == "/admin/login?next=/admin"
        answer = await browser.submit_login(user.username, user.password)
        assert answer.status_code == 303
        cookie = next(v for k, v in answer.headers.multi_items() if k == "set-cookie" and "openepay_admin=" in v)
        assert "HttpOnly" in cookie and "SameSite=lax" in cookie and "Path=/admin" in cookie
        assert "Secure" not in cookie  # plain HTTP here: a Secure cookie would never come back
        dashboard = await browser.get("/admin")
        assert dashboard.status_code == 200
        assert 'id="whoami">alice' in dashboard.text and "只读" in dashboard.text
        assert dashboard.headers["cache-control"] == "no-store"


async def test_cookies_are_secure_when_the_gateway_is_reached_over_https(gateway, database_url):
    user = await make_user(gateway, "alice", Role.VIEWER)
    with own_server(database_url, public_url="https://pay.example.com") as running:
        async with httpx.AsyncClient(base_url=running.url) as client:
            form = await client.get("/admin/login")
            token = csrf_of(form)
            # The client keeps no Secure cookie over plain HTTP; a browser on https would send it back.
            sent = {"username": user.username, "password": user.password, "csrf": token}
            answer = await client.post("/admin/login", data=sent, headers={"cookie": f"openepay_admin_login={token}"})
    assert answer.status_code == 303
    for page, name in ((form, "openepay_admin_login="), (answer, "openepay_admin=")):
        [cookie] = [v for k, v in page.headers.multi_items() if k == "set-cookie" and v.startswith(name)]
        assert "Secure" in cookie and "HttpOnly" in cookie


async def test_wrong_passwords_lock_the_account_and_an_unknown_name_reads_the_same(server, gateway):
    user = await make_user(gateway, "alice", Role.OPERATOR)
    async with ConsoleClient(server.url) as browser:
        unknown = await browser.submit_login("mallory", "whatever-it-is")
        assert unknown.status_code == 401 and "用户名或密码错误" in unknown.text
        for _ in range(server.settings.admin_failures_per_user):
            wrong = await browser.submit_login(user.username, "not the password")
            assert wrong.status_code == 401
            assert wrong.text.count("用户名或密码错误") == 1
        locked = await browser.submit_login(user.username, user.password)
        assert locked.status_code == 429 and "登录失败次数过多" in locked.text
        assert (await browser.get("/admin")).status_code == 303
    # A name with no account is locked the same way: the lock tells nobody which names exist.
    async with ConsoleClient(server.url) as browser:
        for _ in range(server.settings.admin_failures_per_user - 1):
            assert (await browser.submit_login("mallory", "whatever-it-is")).status_code == 401
        assert (await browser.submit_login("mallory", "whatever-it-is")).status_code == 429


async def test_an_address_that_keeps_failing_is_refused_for_every_account(gateway, database_url):
    user = await make_user(gateway, "alice", Role.OPERATOR)
    with own_server(database_url, admin_failures_per_ip=3) as running:
        async with ConsoleClient(running.url) as browser:
            for name in ("bob", "carol", "dave"):
                assert (await browser.submit_login(name, "guessing-password")).status_code == 401
            refused = await browser.submit_login(user.username, user.password)
            assert refused.status_code == 429
        # The account itself was never guessed at: from another address it signs in.
        async with ConsoleClient(running.url, address="203.0.113.7") as elsewhere:
            assert (await elsewhere.submit_login(user.username, user.password)).status_code == 303


async def test_a_right_password_does_not_wipe_the_count_of_wrong_totp_codes(server, gateway):
    user = await make_user(gateway, "olga", Role.OPERATOR, with_totp=True)
    code = totp.code_at(user.totp_secret, time.time())
    wrong = f"{(int(code) + 500_000) % 1_000_000:06d}"
    async with ConsoleClient(server.url) as guesser:
        for _ in range(server.settings.admin_failures_per_user):
            assert (await guesser.submit_login(user.username, user.password)).status_code == 303
            await guesser.get("/admin/login/totp")
            assert (await guesser.post("/admin/login/totp", {"code": wrong})).status_code == 401
        assert (await guesser.submit_login(user.username, user.password)).status_code == 429


async def test_every_form_needs_its_csrf_token(server, gateway):
    user = await make_user(gateway, "alice", Role.ADMINISTRATOR)
    async with ConsoleClient(server.url) as browser:
        await browser.get("/admin/login")
        no_token = await browser.post(
            "/admin/login", {"username": user.username, "password": user.password}, csrf=False
        )
        assert no_token.status_code == 403 and 'data-refusal="csrf"' in no_token.text
        await browser.sign_in(user)
        forged = await browser.post("/admin/logout", {"csrf": "not-the-token"})
        assert forged.status_code == 403 and 'data-refusal="csrf"' in forged.text
        assert (await browser.get("/admin")).status_code == 200  # still signed in
        assert (await browser.post("/admin/logout")).status_code == 303
        assert (await browser.get("/admin")).status_code == 303


async def test_a_user_with_totp_needs_the_code_and_each_code_works_once(server, gateway):
    user = await make_user(gateway, "olga", Role.OPERATOR, with_totp=True)
    async with ConsoleClient(server.url) as browser:
        answer = await browser.submit_login(user.username, user.password)
        assert answer.headers["location"] == "/admin/login/totp"
        # Past the password but not the code: no console page yet.
        assert (await browser.get("/admin")).headers["location"] == "/admin/login/totp"
        await browser.get("/admin/login/totp")
        code = totp.code_at(user.totp_secret, time.time())
        wrong = await browser.post("/admin/login/totp", {"code": f"{(int(code) + 500_000) % 1_000_000:06d}"})
        assert wrong.status_code == 401 and "验证码不正确" in wrong.text
        assert (await browser.post("/admin/login/totp", {"code": code})).status_code == 303
        assert (await browser.get("/admin")).status_code == 200
    async with ConsoleClient(server.url) as replayer:
        await replayer.submit_login(user.username, user.password)
        await replayer.get("/admin/login/totp")
        replayed = await replayer.post("/admin/login/totp", {"code": code})
        assert replayed.status_code == 401
        assert (await replayer.get("/admin")).headers["location"] == "/admin/login/totp"


async def test_when_the_gateway_requires_totp_a_user_without_it_sets_it_up_before_anything_else(gateway, database_url):
    user = await make_user(gateway, "otto", Role.OPERATOR)
    with own_server(database_url, admin_require_totp=True) as running:
        async with ConsoleClient(running.url) as browser:
            answer = await browser.submit_login(user.username, user.password)
            assert answer.headers["location"] == "/admin/totp/setup"
            assert (await browser.get("/admin")).headers["location"] == "/admin/totp/setup"
            setup = await browser.get("/admin/totp/setup")
            assert setup.status_code == 200 and "<svg" in setup.text
            secret = setup.text.split('id="totp-secret" class="secret">')[1].split("<")[0]
            sealed = setup.text.split('name="sealed" value="')[1].split('"')[0]
            wrong = await browser.post("/admin/totp/setup", {"sealed": sealed, "code": "12345"})
            assert wrong.status_code == 401
            done = await browser.post(
                "/admin/totp/setup", {"sealed": sealed, "code": totp.code_at(secret, time.time())}
            )
            assert done.status_code == 303
            assert (await browser.get("/admin")).status_code == 200
        user.totp_secret = secret
        async with ConsoleClient(running.url) as again:
            await again.sign_in(user, code_at=time.time() + 30)
    assert (await stored_user(gateway, "otto")).totp_sealed is not None


async def test_logging_out_everywhere_ends_every_session_of_the_user(server, gateway):
    user = await make_user(gateway, "alice", Role.VIEWER)
    other = await make_user(gateway, "bob", Role.VIEWER)
    async with (
        ConsoleClient(server.url) as laptop,
        ConsoleClient(server.url) as phone,
        ConsoleClient(server.url) as colleague,
    ):
        await laptop.sign_in(user)
        await phone.sign_in(user)
        await colleague.sign_in(other)
        assert (await phone.post("/admin/logout-everywhere")).status_code == 303
        assert (await laptop.get("/admin")).status_code == 303
        assert (await phone.get("/admin")).status_code == 303
        assert (await colleague.get("/admin")).status_code == 200


async def test_the_first_user_is_made_on_the_command_line_with_a_password_it_never_invents(
    server, gateway, database_url
):
    made = await openepay(
        database_url,
        "admin",
        "create",
        "root",
        "--role",
        "administrator",
        "--password-stdin",
        input_text="long enough pw\n",
    )
    assert made.returncode == 0, made.stderr
    assert "root" in made.stdout and "long enough pw" not in made.stdout + made.stderr
    short = await openepay(
        database_url, "admin", "create", "shorty", "--role", "viewer", "--password-stdin", input_text="short\n"
    )
    assert short.returncode == 1 and "at least 10 characters" in short.stderr
    empty = await openepay(
        database_url, "admin", "create", "blank", "--role", "viewer", "--password-stdin", input_text=""
    )
    assert empty.returncode == 1
    again = await openepay(
        database_url, "admin", "create", "root", "--role", "viewer", "--password-stdin", input_text="long enough pw\n"
    )
    assert again.returncode == 1 and "already a user 'root'" in again.stderr
    listed = await openepay(database_url, "admin", "list")
    assert "root" in listed.stdout and "administrator" in listed.stdout and "shorty" not in listed.stdout
    async with ConsoleClient(server.url) as browser:
        dashboard = await browser.sign_in(ConsoleUser("root", "long enough pw", Role.ADMINISTRATOR))
        assert "管理员" in dashboard.text


async def test_pages_are_in_chinese_unless_the_browser_prefers_english_or_the_switch_says_otherwise(server, gateway):
    async with ConsoleClient(server.url) as browser:
        assert '<html lang="zh-CN">' in (await browser.get("/admin/login")).text
        english = await browser.get("/admin/login", headers={"accept-language": "en-US,en;q=0.9,zh;q=0.5"})
        assert '<html lang="en">' in english.text and "Sign in" in english.text
        chinese_first = await browser.get("/admin/login", headers={"accept-language": "zh-CN,zh;q=0.9,en;q=0.8"})
        assert "登录" in chinese_first.text
        switched = await browser.get("/admin/lang", params={"to": "en", "next": "/admin/login"})
        assert switched.status_code == 303 and switched.headers["location"] == "/admin/login"
        assert "Sign in" in (await browser.get("/admin/login")).text
        elsewhere = await browser.get("/admin/lang", params={"to": "zh", "next": "//evil.example/admin"})
        assert elsewhere.headers["location"] == "/admin"
        assert "登录" in (await browser.get("/admin/login", headers={"accept-language": "en"})).text


async def test_a_session_ends_when_its_time_is_up_and_is_swept_by_the_next_sign_in(gateway, database_url):
    user = await make_user(gateway, "alice", Role.VIEWER)
    with own_server(database_url, admin_session_hours=0.0015) as running:  # 5.4 seconds
        async with ConsoleClient(running.url) as browser:
            await browser.sign_in(user)
            await asyncio.sleep(6)
            assert (await browser.get("/admin")).status_code == 303
            await browser.sign_in(user)
    async with gateway.db.session() as session:
        assert await session.scalar(select(func.count()).select_from(AdminSession)) == 1


async def test_text_no_database_can_store_is_refused_plainly_never_a_server_error(server, gateway, merchant):
    user = await make_user(gateway, "olga", Role.OPERATOR)
    order = await sandbox_order(gateway, merchant.pid, "N-1")
    async with ConsoleClient(server.url) as browser:
        nul_name = await browser.submit_login("olga\x00", user.password)
        assert nul_name.status_code == 401
        await browser.sign_in(user)
        for field in ("trade_no", "out_trade_no", "channel", "pay_type"):
            listed = await browser.get("/admin/orders", params={field: "A\x00B"})
            assert listed.status_code == 400 and "无法识别的筛选条件" in listed.text
            assert (await browser.get("/admin/orders.csv", params={field: "A\x00B"})).status_code == 400
        await browser.get(f"/admin/orders/{order.trade_no}")
        refused = await browser.post(f"/admin/orders/{order.trade_no}/confirm", {"reason": "paid\x00"})
        assert refused.status_code == 400 and 'data-refusal="input"' in refused.text
        attach = await browser.post("/admin/qrpool/review/1/attach", {"trade_no": "1\x00"})
        assert attach.status_code == 400
        assert 'data-status="paying"' in (await browser.get(f"/admin/orders/{order.trade_no}")).text


async def test_after_signing_in_next_may_lead_only_to_the_console_itself(server, gateway):
    user = await make_user(gateway, "alice", Role.VIEWER)
    kept = ["/admin", "/admin/orders?status=paid"]
    refused = ["/adminfoo", "/admin.evil.example", "//evil.example/admin", "/merchant", "/admin\\x"]
    where = await where_next_leads(ConsoleClient, server.url, user, kept + refused)
    assert where == {
        f"{how}{target}": target if target in kept else "/admin" for target in kept + refused for how in ("", "lang ")
    }

"""No console page shows a secret after it was first displayed: merchant keys, channel secrets, TOTP secrets,
personal-code phones' keys."""

from __future__ import annotations

import re
import time

from sqlalchemy import select

from openepay.admin.roles import Role
from openepay.core.merchants import MerchantCredentials
from openepay.db.models import AdminUser, ChannelAccountRecord, Merchant, QrDevice
from tests.support.admin import ConsoleClient, console_routes, fill, make_user
from tests.support.notify import paid_order
from tests.support.orders import sandbox_order

UPSTREAM_KEY = "UpstreamKey0123456789abcdefABCDEF"
# Typed into the console's generated account form, then never seen again.
FORM_KEY = "FormTypedKey9876543210zyxwvuZYXWVU"


async def test_a_walk_through_every_page_finds_no_key_and_no_secret(server, gateway):
    admin = await make_user(gateway, "ada", Role.ADMINISTRATOR, with_totp=True)
    await gateway.accounts.add(
        "epay_upstream", "up-1", {"api_url": "https://upstream.example/", "pid": "77", "key": UPSTREAM_KEY}
    )
    async with ConsoleClient(server.url) as browser:
        await browser.sign_in(admin)
        created = await browser.post("/admin/merchants", {"name": "Secret Shop"})
        first_key = re.search(r'id="new-key">(\w+)<', created.text).group(1)
        pid = int(re.search(r'id="new-pid">(\d+)<', created.text).group(1))
        rotated = await browser.post(f"/admin/merchants/{pid}/rotate-key")
        key = re.search(r'id="new-key">(\w+)<', rotated.text).group(1)
        await browser.get("/admin/channels/new?channel=epay_upstream")
        typed = {
            "channel": "epay_upstream",
            "name": "up-2",
            "cfg_api_url": "http://127.0.0.1:9/",
            "cfg_pid": "78",
            "priority": "0",
        }
        added = await browser.post("/admin/channels/new", {**typed, "cfg_key": FORM_KEY, "weight": "1"})
        assert added.status_code == 303
        answers = [
            await browser.post("/admin/channels/new", {**typed, "name": "up-3", "cfg_key": FORM_KEY, "weight": "0"}),
            await browser.post("/admin/channels/up-2/edit", {**typed, "cfg_key": FORM_KEY, "cfg_pid": ""}),
            await browser.post("/admin/channels/up-2/test"),
        ]
        assert [answer.status_code for answer in answers] == [400, 400, 200]
        trade_no = await paid_order(server, MerchantCredentials(pid, key), "http://127.0.0.1:9/notify", "S-1")
        await sandbox_order(gateway, pid, "S-2")
        await browser.post("/admin/qrpool/accounts", {"name": "wx-main", "pay_type": "wxpay"})
        paired = await browser.post("/admin/qrpool/accounts/1/phones", {"name": "phone"})
        device_key = re.search(r'id="device-key">(\w+)<', paired.text).group(1)
        pairing = re.search(r'id="pairing-string">([^<]+)<', paired.text).group(1)

        async with gateway.db.session() as session:
            sealed = [
                (await session.get(Merchant, pid)).key_sealed,
                *(record.secrets["key"] for record in (await session.scalars(select(ChannelAccountRecord))).all()),
                (await session.scalar(select(AdminUser).where(AdminUser.username == "ada"))).totp_sealed,
                (await session.get(QrDevice, 1)).key_sealed,
            ]
        secrets = [
            first_key,
            key,
            UPSTREAM_KEY,
            FORM_KEY,
            admin.totp_secret,
            admin.password,
            device_key,
            pairing,
            *sealed,
        ]
        assert all(secrets) and len(sealed) == 5
        for answer in answers:
            for secret in secrets:
                assert secret not in answer.text, (answer.url, secret[:4])

        pages = []
        for method, template, needed in console_routes(server.settings):
            if method == "GET" and needed is not None:
                pages.append(fill(template, pid=str(pid), trade_no=trade_no, name="up-1", account_id="1"))
                if "{name}" in template:
                    pages.append(fill(template, name="up-2"))
        pages += [
            "/admin/channels/new?channel=epay_upstream",
            f"/admin/orders?merchant={pid}",
            f"/admin/orders.csv?merchant={pid}",
            "/admin/audit?page=1",
        ]
        for path in pages:
            page = await browser.get(path)
            assert page.status_code == 200, path
            for secret in secrets:
                assert secret not in page.text, (path, secret[:4])
        assert len(pages) >= 8
    # The TOTP setup page shows a new secret to whoever sets it up, never the one in use.
    async with ConsoleClient(server.url) as again:
        await again.sign_in(admin, code_at=time.time() + 30)
        setup = await again.get("/admin/totp/setup")
        assert setup.status_code == 200 and admin.totp_secret not in setup.text

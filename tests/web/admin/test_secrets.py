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
        secrets = [first_key, key, UPSTREAM_KEY, admin.totp_secret, admin.password, device_key, pairing, *sealed]
        assert all(secrets)

        pages = []
        for method, template, needed in console_routes(server.settings):
            if method == "GET" and needed is not None:
                pages.append(fill(template, pid=str(pid), trade_no=trade_no, name="up-1", account_id="1"))
        pages += [f"/admin/orders?merchant={pid}", f"/admin/orders.csv?merchant={pid}", "/admin/audit?page=1"]
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

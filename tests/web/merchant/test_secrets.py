"""No portal page shows a secret after it was first displayed, and none opens without a session."""

from __future__ import annotations

import re
import time

from sqlalchemy import select

from openepay.core.merchants import MerchantCredentials
from openepay.db.models import ChannelAccountRecord, Merchant, MerchantUser
from tests.support.admin import fill, routes_under
from tests.support.notify import paid_order
from tests.support.portal import PortalClient, make_portal_user

UPSTREAM_KEY = "UpstreamKey0123456789abcdefABCDEF"
# The pages anyone may open: signing in and up, and the language switch.
PUBLIC = {"/merchant/login", "/merchant/signup", "/merchant/lang"}


async def test_a_walk_through_every_portal_page_finds_no_key_and_no_secret(server, gateway, merchant):
    user = await make_portal_user(gateway, merchant.pid, "shop@example.com", with_totp=True)
    await gateway.accounts.add(
        "epay_upstream", "up-1", {"api_url": "https://upstream.example/", "pid": "77", "key": UPSTREAM_KEY}
    )
    async with PortalClient(server.url) as browser:
        await browser.sign_in(user)
        rotated = await browser.post("/merchant/credentials/rotate-key")
        key = re.search(r'id="new-key">(\w+)<', rotated.text).group(1)
        trade_no = await paid_order(server, MerchantCredentials(merchant.pid, key), "http://127.0.0.1:9/notify", "S-1")
        async with gateway.db.session() as session:
            sealed = [
                (await session.get(Merchant, merchant.pid)).key_sealed,
                *(record.secrets["key"] for record in (await session.scalars(select(ChannelAccountRecord))).all()),
                (await session.scalar(select(MerchantUser))).totp_sealed,
                (await session.scalar(select(MerchantUser))).password_hash,
            ]
        secrets = [merchant.key, key, UPSTREAM_KEY, user.totp_secret, user.password, *sealed]
        assert all(secrets)

        pages = [
            fill(path, trade_no=trade_no)
            for method, path, _ in routes_under(server.settings, "/merchant")
            if method == "GET" and path not in PUBLIC | {"/merchant/totp/setup", "/merchant/login/totp"}
        ]
        pages += [f"/merchant?trade_no={trade_no}", "/merchant?status=paid&page=2"]
        assert len(pages) >= 6
        for path in pages:
            page = await browser.get(path)
            assert page.status_code == 200, path
            for secret in secrets:
                assert secret not in page.text, (path, secret[:4])
    # The TOTP setup page shows a new secret to whoever sets it up, never the one in use.
    async with PortalClient(server.url) as again:
        await again.sign_in(user, code_at=time.time() + 30)
        setup = await again.get("/merchant/totp/setup")
        assert setup.status_code == 200 and user.totp_secret not in setup.text


async def test_every_portal_route_but_signing_in_needs_a_session(server, gateway, merchant):
    async with PortalClient(server.url) as anonymous:
        await anonymous.get("/merchant/login")
        checked = 0
        for method, path, _ in routes_under(server.settings, "/merchant"):
            if path in PUBLIC:
                continue
            target = fill(path, trade_no="20261203000000000000000000")
            answer = await (anonymous.get(target) if method == "GET" else anonymous.post(target))
            assert answer.status_code == 303, (method, path)
            assert answer.headers["location"].startswith("/merchant/login"), (method, path)
            checked += 1
        assert checked >= 10

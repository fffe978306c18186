"""The credentials page: a rotated key shown once and working at once, an RSA key checked before it is
kept, the platform's public key; and the integration page, which names the pid but never the key."""

from __future__ import annotations

import html
import re

import httpx

from openepay.protocols.epay_v2.platform_key import platform_key
from tests.support.epay import order_params, signed
from tests.support.epay_v2 import bare_body, pem_of
from tests.support.portal import PortalClient, make_portal_user

NEW_KEY = re.compile(r'id="new-key">(\w+)<')


async def test_a_rotated_key_is_shown_once_works_at_once_and_the_old_one_stops(server, gateway, merchant):
    user = await make_portal_user(gateway, merchant.pid, "shop@example.com")
    async with PortalClient(server.url) as browser:
        await browser.sign_in(user)
        before = await browser.get("/merchant/credentials")
        assert merchant.key not in before.text
        rotated = await browser.post("/merchant/credentials/rotate-key")
        assert rotated.status_code == 200 and rotated.headers["cache-control"] == "no-store"
        key = NEW_KEY.search(rotated.text).group(1)
        assert key != merchant.key and len(key) == 32
        for path in ("/merchant/credentials", "/merchant", "/merchant/integration"):
            assert key not in (await browser.get(path)).text, path
    async with httpx.AsyncClient(base_url=server.url) as shop:
        params = order_params(merchant.pid, "http://127.0.0.1:9", "K-1")
        old = await shop.post(
            "/mapi.php", data=signed({**params, "type": "alipay", "clientip": "127.0.0.1"}, merchant.key)
        )
        new = await shop.post("/mapi.php", data=signed({**params, "type": "alipay", "clientip": "127.0.0.1"}, key))
    assert old.json()["code"] != 1 and "签名" in old.json()["msg"], old.text
    assert new.json()["code"] == 1, new.text


async def test_an_rsa_key_is_checked_before_it_is_kept(server, gateway, merchant, merchant_private_key):
    user = await make_portal_user(gateway, merchant.pid, "shop@example.com")
    async with PortalClient(server.url) as browser:
        await browser.sign_in(user)
        page = await browser.get("/merchant/credentials")
        assert 'id="rsa-unset"' in page.text
        refused = await browser.post("/merchant/credentials/rsa", {"public_key": "-----BEGIN PUBLIC KEY-----\nAAAA\n"})
        assert refused.status_code == 400 and 'id="error"' in refused.text
        assert (await gateway.merchants.get(merchant.pid)).rsa_public_key is None
        pem = pem_of(merchant_private_key.public_key())
        saved = await browser.post("/merchant/credentials/rsa", {"public_key": bare_body(pem)})
        assert saved.status_code == 303
        assert (await gateway.merchants.get(merchant.pid)).rsa_public_key == pem
        page = await browser.get(saved.headers["location"])
        assert 'id="rsa-set"' in page.text and 'id="notice"' in page.text
        platform = await platform_key(gateway.db, gateway.box)
        assert html.escape(platform.public_pem.strip()) in page.text


async def test_the_integration_page_gives_every_dialects_endpoints_for_this_merchant_and_no_key(
    server, gateway, merchant
):
    user = await make_portal_user(gateway, merchant.pid, "shop@example.com")
    async with PortalClient(server.url) as browser:
        await browser.sign_in(user)
        page = await browser.get("/merchant/integration")
    assert page.status_code == 200
    for dialect in ("epay", "pay_mapi", "payfor", "epay_v2", "vmq"):
        assert f'id="dialect-{dialect}"' in page.text
    for endpoint in ("/submit.php", "/mapi.php", "/pay/mapi.php", "/Home/Pay/payFor", "/api/pay/create"):
        assert f"{server.url}{endpoint}" in page.text, endpoint
    assert f"{server.url}/vmq/{merchant.pid}/createOrder" in page.text
    assert f"&#39;pid&#39; =&gt; &#39;{merchant.pid}&#39;" in page.text
    assert merchant.key not in page.text and "YOUR_MERCHANT_KEY" in page.text

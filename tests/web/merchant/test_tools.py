"""The merchant's own tools in the portal: a test notification to its URL with the answer and a
plain-language diagnosis, and the signature checker, both with its own key, which no page shows."""

from __future__ import annotations

from urllib.parse import urlencode

from sqlalchemy import select

from openepay.db.models import AuditEntry
from tests.support.epay import order_params, signed
from tests.support.merchant import ScriptedShop
from tests.support.orders import sandbox_order
from tests.support.portal import PortalClient, make_portal_user
from tests.support.shop import Answer


async def test_a_merchant_sends_itself_a_test_notification_and_reads_why_it_did_not_count(server, gateway, merchant):
    other = await gateway.merchants.create("Other Shop")
    user = await make_portal_user(gateway, merchant.pid, "shop@example.com")
    shop = ScriptedShop(merchant.key, [Answer(body=b"fail")]).start()
    try:
        await sandbox_order(gateway, merchant.pid, "T-1", notify_url=f"{shop.url}/notify.php")
        async with PortalClient(server.url) as browser:
            browser.http.cookies.set("openepay_lang", "en")
            await browser.sign_in(user)
            form = await browser.get("/merchant/test-notify")
            assert f'value="{shop.url}/notify.php"' in form.text and 'action="/merchant/test-notify"' in form.text
            sent = await browser.post("/merchant/test-notify", {"url": f"{shop.url}/notify.php", "dialect": "epay"})
            assert sent.status_code == 200
            assert 'data-diagnosis="bad_body"' in sent.text and "the body is not success" in sent.text
            assert '<pre id="test-body">fail</pre>' in sent.text
            assert merchant.key not in sent.text and other.key not in sent.text
            bad = await browser.post("/merchant/test-notify", {"url": "ftp://x/", "dialect": "epay"})
            assert bad.status_code == 400
            forged = await browser.post(
                "/merchant/test-notify", {"url": f"{shop.url}/n", "dialect": "epay"}, csrf=False
            )
            assert forged.status_code == 403
        [received] = shop.notifications("/notify.php")
        # Signed with this merchant's key, not another's: the shop's own check passes.
        assert received.signature_ok is True and received.params["pid"] == str(merchant.pid)
    finally:
        shop.stop()
    async with gateway.db.session() as session:
        [entry] = (await session.scalars(select(AuditEntry).where(AuditEntry.action == "merchant.test_notify"))).all()
    assert (entry.actor, entry.target) == ("merchant:shop@example.com", f"merchant:{merchant.pid}")


async def test_the_signature_checker_uses_the_merchants_own_key_and_masks_it(server, gateway, merchant):
    other = await gateway.merchants.create("Other Shop")
    user = await make_portal_user(gateway, merchant.pid, "shop@example.com")
    mine = signed(order_params(merchant.pid, "https://shop.example", "S-1"), merchant.key)
    theirs = signed(order_params(other.pid, "https://shop.example", "S-1"), other.key)
    async with PortalClient(server.url) as browser:
        await browser.sign_in(user)
        page = await browser.get("/merchant/signature")
        assert 'action="/merchant/signature"' in page.text
        good = await browser.post("/merchant/signature", {"dialect": "epay", "text": urlencode(mine)})
        assert good.status_code == 200 and 'data-matches="yes"' in good.text
        assert "type=alipay****</pre>" in good.text and f'<code id="sig-ours">{mine["sign"]}</code>' in good.text
        # Another merchant's signed request does not match: the check is with this merchant's key only.
        foreign = await browser.post("/merchant/signature", {"dialect": "epay", "text": urlencode(theirs)})
        assert 'data-matches="no"' in foreign.text
        for answer in (good, foreign):
            assert merchant.key not in answer.text and other.key not in answer.text

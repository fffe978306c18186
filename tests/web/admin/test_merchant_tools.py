"""A merchant's page in the console: send a test notification and read the diagnosis, check a pasted signature.

The shop is a real server on loopback (the test settings allow private targets), checking the
signature the way merchant plugins do; the key never appears on a page.
"""

from __future__ import annotations

import socket
from urllib.parse import urlencode

from sqlalchemy import select

from openepay.admin.roles import Role
from openepay.db.models import AuditEntry
from tests.support.admin import ConsoleClient, make_user
from tests.support.epay import order_params, signed
from tests.support.merchant import ScriptedShop
from tests.support.orders import sandbox_order
from tests.support.shop import Answer


async def _audit(gateway, action: str) -> list[AuditEntry]:  # type: ignore[no-untyped-def]
    async with gateway.db.session() as session:
        return list((await session.scalars(select(AuditEntry).where(AuditEntry.action == action))).all())


async def test_an_operator_sends_a_test_notification_the_shop_verifies_and_reads_the_diagnosis(
    server, gateway, merchant
):
    operator = await make_user(gateway, "olga", Role.OPERATOR)
    shop = ScriptedShop(merchant.key, [Answer(body=b"success")]).start()
    try:
        await sandbox_order(gateway, merchant.pid, "T-1", notify_url=f"{shop.url}/notify.php")
        async with ConsoleClient(server.url) as browser:
            await browser.sign_in(operator)
            detail = await browser.get(f"/admin/merchants/{merchant.pid}")
            assert 'id="test-notify"' in detail.text and 'id="signature-checker"' in detail.text
            form = await browser.get(f"/admin/merchants/{merchant.pid}/test-notify")
            assert f'value="{shop.url}/notify.php"' in form.text  # the latest order's notify URL, ready to send
            sent = await browser.post(
                f"/admin/merchants/{merchant.pid}/test-notify", {"url": f"{shop.url}/notify.php", "dialect": "epay"}
            )
            assert sent.status_code == 200
            assert 'data-diagnosis="delivered"' in sent.text and "商户服务器已确认收到" in sent.text
            assert merchant.key not in sent.text
        [received] = shop.notifications("/notify.php")
        assert received.signature_ok is True and received.params["trade_status"] == "TEST_NOTIFY"
    finally:
        shop.stop()
    [entry] = await _audit(gateway, "merchant.test_notify")
    assert (entry.actor, entry.target, entry.after["diagnosis"]) == ("olga", f"merchant:{merchant.pid}", "delivered")


async def test_a_refused_connection_is_explained_in_english_and_a_bad_url_is_refused(server, gateway, merchant):
    operator = await make_user(gateway, "olga", Role.OPERATOR)
    with socket.socket() as spare:
        spare.bind(("127.0.0.1", 0))
        port = spare.getsockname()[1]
    async with ConsoleClient(server.url) as browser:
        browser.http.cookies.set("openepay_lang", "en")
        await browser.sign_in(operator)
        await browser.get(f"/admin/merchants/{merchant.pid}/test-notify")
        sent = await browser.post(
            f"/admin/merchants/{merchant.pid}/test-notify", {"url": f"http://127.0.0.1:{port}/n", "dialect": "vmq"}
        )
        assert 'data-diagnosis="refused"' in sent.text and "Connection refused: nothing listens" in sent.text
        bad = await browser.post(f"/admin/merchants/{merchant.pid}/test-notify", {"url": "ftp://x/", "dialect": "epay"})
        assert bad.status_code == 400 and "Give a valid http:// or https:// URL." in bad.text
        forged = await browser.post(
            f"/admin/merchants/{merchant.pid}/test-notify",
            {"url": "http://127.0.0.1:9/", "dialect": "epay"},
            csrf=False,
        )
        assert forged.status_code == 403 and 'data-refusal="csrf"' in forged.text
        assert (await browser.get("/admin/merchants/999999/test-notify")).status_code == 404
    assert len(await _audit(gateway, "merchant.test_notify")) == 1


async def test_the_signature_checker_shows_the_masked_string_both_signatures_and_a_hint(server, gateway, merchant):
    operator = await make_user(gateway, "olga", Role.OPERATOR)
    params = signed(order_params(merchant.pid, "https://shop.example", "S-1"), merchant.key)
    async with ConsoleClient(server.url) as browser:
        await browser.sign_in(operator)
        await browser.get(f"/admin/merchants/{merchant.pid}/signature")
        good = await browser.post(
            f"/admin/merchants/{merchant.pid}/signature",
            {"dialect": "epay", "text": f"https://gw.example/submit.php?{urlencode(params)}"},
        )
        assert good.status_code == 200 and 'data-matches="yes"' in good.text and "签名一致" in good.text
        assert "type=alipay****</pre>" in good.text
        assert f'<code id="sig-ours">{params["sign"]}</code>' in good.text
        assert merchant.key not in good.text
        wrong = await browser.post(
            f"/admin/merchants/{merchant.pid}/signature",
            {"dialect": "epay", "text": urlencode({**params, "sign": "0" * 32})},
        )
        assert 'data-matches="no"' in wrong.text and 'data-hint="unexplained"' in wrong.text
        assert merchant.key not in wrong.text
        empty = await browser.post(f"/admin/merchants/{merchant.pid}/signature", {"dialect": "epay", "text": " "})
        assert empty.status_code == 400 and "请粘贴要检查的内容" in empty.text
    entries = await _audit(gateway, "merchant.check_signature")
    assert [entry.after["matches"] for entry in entries] == [True, False]

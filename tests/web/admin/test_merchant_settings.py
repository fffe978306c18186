"""A merchant's settings edited in the console: read as ``openepay merchant set`` reads them, refused with
the CLI's words next to the field (nothing saved), saved and audited, the RSA key shown by fingerprint."""

from __future__ import annotations

import html

from cryptography.hazmat.primitives import serialization
from sqlalchemy import select

from openepay.admin.roles import Role
from openepay.db.models import AuditEntry
from tests.support.admin import ConsoleClient, make_user
from tests.support.epay import order_params, signed

GOOD = {
    "dialects": "epay_v2, vmq",
    "pay_types": "wxpay,alipay",
    "channel_accounts": "up-1",
    "mapi_answer": "payurl",
    "notify_retry_delays": "5,30,120",
    "allow_refund": "on",
}


def _public_pem(private_key) -> str:  # type: ignore[no-untyped-def]
    return (
        private_key.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )


def _field_error(page, name: str) -> str:  # type: ignore[no-untyped-def]
    start = page.text.index(f'id="error-{name}">') + len(f'id="error-{name}">')
    return html.unescape(page.text[start : page.text.index("<", start)])


async def test_an_administrator_edits_a_merchant_mistakes_get_the_cli_words_and_save_nothing(
    server, gateway, merchant, merchant_private_key
):
    await gateway.accounts.add("epay_upstream", "up-1", {"api_url": "https://up.example/", "pid": "7", "key": "k" * 32})
    admin = await make_user(gateway, "ada", Role.ADMINISTRATOR)
    pem = _public_pem(merchant_private_key)
    async with ConsoleClient(server.url) as browser:
        await browser.sign_in(admin)
        form = await browser.get(f"/admin/merchants/{merchant.pid}/edit")
        assert form.status_code == 200 and 'id="dialects" value="all"' in form.text
        assert 'id="notify-retry-delays" value="default"' in form.text and "未设置" in form.text

        wrong = await browser.post(
            f"/admin/merchants/{merchant.pid}/edit",
            {
                **GOOD,
                "dialects": "epay,rainbow",
                "pay_types": "alipay,cash",
                "channel_accounts": "up-1,nope",
                "mapi_answer": "json",
                "notify_retry_delays": "5,soon",
                "rsa_public_key": "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----",
            },
        )
        assert wrong.status_code == 400 and "未保存任何更改" in wrong.text
        assert _field_error(wrong, "dialects").startswith("unknown dialect rainbow: choose from epay,")
        assert _field_error(wrong, "pay_types").endswith("(or 'all'), not cash")
        assert _field_error(wrong, "channel_accounts") == "no channel account named nope"
        assert _field_error(wrong, "mapi_answer") == "--mapi-answer is 'channel' or 'payurl'"
        assert _field_error(wrong, "notify_retry_delays") == (
            "--notify-retry-delays takes numbers of seconds separated by commas"
        )
        assert _field_error(wrong, "rsa_public_key").startswith("key refused: this is a private key")
        # What was typed stays in the form to be corrected.
        assert 'value="5,soon"' in wrong.text
        stored = await gateway.merchants.get(merchant.pid)
        assert (stored.dialects, stored.pay_types, stored.mapi_answer, stored.rsa_public_key) == (
            None,
            None,
            "channel",
            None,
        )
        only_rsa = await browser.post(f"/admin/merchants/{merchant.pid}/edit", {**GOOD, "rsa_only": "on"})
        assert only_rsa.status_code == 400 and "需要先设置商户的 RSA 公钥" in only_rsa.text

        saved = await browser.post(
            f"/admin/merchants/{merchant.pid}/edit", {**GOOD, "rsa_public_key": pem, "rsa_only": "on"}
        )
        assert saved.status_code == 303
        page = await browser.get(saved.headers["location"])
        assert "商户设置已保存" in page.text
        assert 'id="merchant-dialects">epay_v2, vmq<' in page.text and 'id="merchant-accounts">up-1<' in page.text
        assert 'id="merchant-delays">5,30,120<' in page.text
        body = "".join(pem.strip().splitlines()[1:-1])
        assert "SHA256:" in page.text and body[:40] not in page.text
        again = await browser.get(f"/admin/merchants/{merchant.pid}/edit")
        assert 'id="channel-accounts" value="up-1"' in again.text and "SHA256:" in again.text
        assert body[:40] not in again.text

    stored = await gateway.merchants.get(merchant.pid)
    up = await gateway.accounts.record("up-1")
    assert stored.dialects == ["epay_v2", "vmq"] and stored.pay_types == ["alipay", "wxpay"]
    assert stored.channel_accounts == [up.id] and stored.mapi_answer == "payurl"
    assert stored.notify_retry_delays == [5, 30, 120] and stored.refund_enabled is True
    assert stored.rsa_only is True and "BEGIN PUBLIC KEY" in stored.rsa_public_key
    # The dialects now allowed leave out the MD5 epay one: its mapi.php refuses the merchant.
    async with server.client() as client:
        params = order_params(merchant.pid, "http://shop.example", "E-1", clientip="203.0.113.9")
        assert (await client.post("/mapi.php", data=signed(params, merchant.key))).json()["code"] != 1
    async with gateway.db.session() as session:
        [entry] = (await session.scalars(select(AuditEntry).where(AuditEntry.action == "merchant.settings"))).all()
    assert entry.actor == "ada" and entry.before["dialects"] is None and entry.after["dialects"] == ["epay_v2", "vmq"]
    assert entry.before["rsa_public_key"] is None and entry.after["rsa_public_key"].startswith("SHA256:")
    assert "refund_enabled" not in entry.after


async def test_the_settings_form_refuses_a_missing_token_and_lower_roles(server, gateway, merchant):
    admin = await make_user(gateway, "ada", Role.ADMINISTRATOR)
    operator = await make_user(gateway, "olga", Role.OPERATOR)
    async with ConsoleClient(server.url) as browser:
        await browser.sign_in(admin)
        forged = await browser.post(f"/admin/merchants/{merchant.pid}/edit", {**GOOD, "csrf": "forged"})
        assert forged.status_code == 403 and 'data-refusal="csrf"' in forged.text
        assert (await browser.post("/admin/merchants/999999/edit", GOOD)).status_code == 404
    async with ConsoleClient(server.url) as browser:
        await browser.sign_in(operator)
        assert (await browser.get(f"/admin/merchants/{merchant.pid}/edit")).status_code == 403
        assert (await browser.post(f"/admin/merchants/{merchant.pid}/edit", GOOD)).status_code == 403
        assert 'id="edit-merchant"' not in (await browser.get(f"/admin/merchants/{merchant.pid}")).text
    assert (await gateway.merchants.get(merchant.pid)).dialects is None

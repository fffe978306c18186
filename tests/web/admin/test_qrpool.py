"""Personal codes in the console: accounts, codes decoded from uploaded pictures, phones paired and revoked."""

from __future__ import annotations

import re
from datetime import timedelta

from sqlalchemy import select

from openepay.admin.roles import Role
from openepay.channels.qrpool import accounts as qr
from openepay.db.models import AuditEntry, QrAccount, QrCode, QrDevice
from openepay.db.types import utcnow
from tests.support.admin import ConsoleClient, make_user
from tests.support.qrcodes import code_png, plain_png

WECHAT = "wxp://f2f0hXkQ9bA3cD4eF5gH6iJ7kL8mN9oP0qR"
FIXED = "wxp://f2f1FixedNineNinetyxxxxxxxxxxxxxxxxx"


async def _audit(gateway) -> list[AuditEntry]:  # type: ignore[no-untyped-def]
    async with gateway.db.session() as session:
        return list((await session.scalars(select(AuditEntry).order_by(AuditEntry.id))).all())


async def test_an_account_gets_codes_from_uploaded_pictures_and_every_write_is_audited(server, gateway):
    admin = await make_user(gateway, "ada", Role.ADMINISTRATOR)
    operator = await make_user(gateway, "olga", Role.OPERATOR)
    async with ConsoleClient(server.url) as browser:
        await browser.sign_in(admin)
        await browser.get("/admin/qrpool")
        created = await browser.post("/admin/qrpool/accounts", {"name": "wx-main", "pay_type": "wxpay"})
        assert created.status_code == 303
        twice = await browser.post("/admin/qrpool/accounts", {"name": "wx-main", "pay_type": "wxpay"})
        assert twice.status_code == 400 and "already exists" in twice.text
        wrong_type = await browser.post("/admin/qrpool/accounts", {"name": "x", "pay_type": "bitcoin"})
        assert wrong_type.status_code == 400 and "pay type must be one of" in wrong_type.text
    account_path = created.headers["location"]
    async with gateway.db.session() as session:
        account = await session.scalar(select(QrAccount).where(QrAccount.name == "wx-main"))
    assert account_path == f"/admin/qrpool/accounts/{account.id}"

    async with ConsoleClient(server.url) as browser:
        await browser.sign_in(operator)
        page = await browser.get(account_path)
        assert 'id="add-code"' in page.text and 'id="add-phone"' not in page.text
        generic = await browser.upload(
            f"{account_path}/codes", {"amount": ""}, {"image": ("收款码.png", code_png(WECHAT), "image/png")}
        )
        assert generic.status_code == 303
        shown = await browser.get(generic.headers["location"])
        added = re.search(r'<p class="notice" id="added">(.*?)</p>', shown.text, re.S).group(1)
        assert "通用码" in added and WECHAT in added
        fixed = await browser.upload(
            f"{account_path}/codes", {"amount": "9.90"}, {"image": ("nine.png", code_png(FIXED), "image/png")}
        )
        shown = await browser.get(fixed.headers["location"])
        added = re.search(r'<p class="notice" id="added">(.*?)</p>', shown.text, re.S).group(1)
        assert "固定金额 ¥9.90" in added and FIXED in added
        assert shown.text.count('class="code-row"') == 2

        refused = await browser.upload(
            f"{account_path}/codes", {"amount": ""}, {"image": ("cat.png", plain_png(), "image/png")}
        )
        assert refused.status_code == 400
        assert "cat.png: no QR code found in the image" in refused.text
        not_image = await browser.upload(
            f"{account_path}/codes", {"amount": "1.00"}, {"image": ("notes.txt", b"hello", "text/plain")}
        )
        assert not_image.status_code == 400 and "notes.txt: not an image we can read" in not_image.text
        same_again = await browser.upload(
            f"{account_path}/codes", {"amount": ""}, {"image": ("again.png", code_png(WECHAT), "image/png")}
        )
        assert same_again.status_code == 400 and "already has a generic code" in same_again.text
        bad_amount = await browser.upload(f"{account_path}/codes", {"amount": "9.999", "content": FIXED}, {})
        assert bad_amount.status_code == 400 and "amount:" in bad_amount.text

        codes = await qr.list_codes(gateway.db, account.id)
        assert [(code.amount_fen, code.content) for code in codes] == [(None, WECHAT), (990, FIXED)]
        deleted = await browser.post(f"{account_path}/codes/{codes[1].id}/delete")
        assert deleted.status_code == 303
        assert (await browser.post(f"{account_path}/codes/{codes[1].id}/delete")).status_code == 404
        assert (await browser.post(f"{account_path}/disable")).status_code == 303
        listed = await browser.get("/admin/qrpool")
        assert re.search(r'id="account-\d+">.*?已停用', listed.text, re.S)

    async with gateway.db.session() as session:
        remaining = (await session.scalars(select(QrCode))).all()
        assert [code.content for code in remaining] == [WECHAT]
        assert (await session.get(QrAccount, account.id)).enabled is False
    entries = [
        (e.actor, e.action, e.target, e.before, e.after) for e in await _audit(gateway) if e.action != "user.create"
    ]
    target = f"qrpool-account:{account.id}"
    assert entries == [
        ("ada", "qrpool.account_add", target, None, {"name": "wx-main", "pay_type": "wxpay", "enabled": True}),
        ("olga", "qrpool.code_add", target, None, {"code": codes[0].id, "amount": "generic", "content": WECHAT}),
        ("olga", "qrpool.code_add", target, None, {"code": codes[1].id, "amount": "9.90", "content": FIXED}),
        ("olga", "qrpool.code_delete", target, {"code": codes[1].id, "amount": "9.90", "content": FIXED}, None),
        ("olga", "qrpool.account_disable", target, {"enabled": True}, {"enabled": False}),
    ]


async def test_a_paired_phone_shows_its_key_once_goes_offline_by_the_routing_rule_and_is_revoked(server, gateway):
    admin = await make_user(gateway, "ada", Role.ADMINISTRATOR)
    account = await qr.create_account(gateway.db, "ali-1", "alipay")
    async with ConsoleClient(server.url) as browser:
        await browser.sign_in(admin)
        await browser.get(f"/admin/qrpool/accounts/{account.id}")
        pairing = await browser.post(f"/admin/qrpool/accounts/{account.id}/phones", {"name": "红米", "host": ""})
        assert pairing.status_code == 200 and pairing.headers["cache-control"] == "no-store"
        key = re.search(r'id="device-key">([0-9a-f]{32})<', pairing.text).group(1)
        host = server.url.removeprefix("http://")
        assert re.search(rf'id="pairing-string">{re.escape(host)}/{key}<', pairing.text)
        assert '<div class="pairing-qr" id="pairing-qr"><svg' in pairing.text
        with_host = await browser.post(
            f"/admin/qrpool/accounts/{account.id}/phones", {"name": "spare", "host": "pay.example.com/sub"}
        )
        assert with_host.status_code == 400 and "has a path" in with_host.text

        [(device, stored_key)] = await qr.device_keys(gateway.db, gateway.box, account.id)
        assert stored_key == key and device.name == "红米"
        await qr.record_heartbeat(gateway.db, device.id, utcnow() - timedelta(seconds=20))
        phones = await browser.get("/admin/qrpool/phones")
        row = re.search(rf'<tr class="phone-row online" id="phone-{device.id}">(.*?)</tr>', phones.text, re.S)
        assert row and "在线" in row.group(1) and "ali-1" in row.group(1)
        assert key not in phones.text

        # Past the heartbeat timeout (90 s in the tests' settings) the phone is offline, as routing sees it.
        async with gateway.db.session() as session:
            (await session.get(QrDevice, device.id)).last_heartbeat_at = utcnow() - timedelta(seconds=400)
        phones = await browser.get("/admin/qrpool/phones")
        row = re.search(rf'<tr class="phone-row offline" id="phone-{device.id}">(.*?)</tr>', phones.text, re.S)
        assert row and "离线" in row.group(1) and re.search(r"\(6m 4\d+s 前\)", row.group(1))
        assert await qr.live_accounts(gateway.db, "alipay", timedelta(seconds=90)) == []

        revoked = await browser.post(f"/admin/qrpool/phones/{device.id}/revoke?back=phones")
        assert revoked.status_code == 303 and revoked.headers["location"] == "/admin/qrpool/phones"
        assert await qr.device_keys(gateway.db, gateway.box, account.id) == []
        account_page = await browser.get(f"/admin/qrpool/accounts/{account.id}")
        assert "已吊销" in account_page.text and key not in account_page.text
        assert (await browser.post("/admin/qrpool/phones/999/revoke")).status_code == 404
    entries = {e.action: (e.target, e.before, e.after) for e in await _audit(gateway)}
    assert entries["qrpool.device_add"] == (
        f"qrpool-device:{device.id}",
        None,
        {"account": account.id, "name": "红米", "enabled": True},
    )
    assert entries["qrpool.device_revoke"] == (f"qrpool-device:{device.id}", {"enabled": True}, {"enabled": False})
    assert all(key not in str(entry.after) for entry in await _audit(gateway))


async def test_qrpool_forms_need_their_csrf_token_and_a_viewer_sees_no_forms(server, gateway):
    viewer = await make_user(gateway, "vic", Role.VIEWER)
    admin = await make_user(gateway, "ada", Role.ADMINISTRATOR)
    account = await qr.create_account(gateway.db, "wx-main", "wxpay")
    async with ConsoleClient(server.url) as browser:
        await browser.sign_in(admin)
        forged = await browser.post("/admin/qrpool/accounts", {"name": "forged", "pay_type": "wxpay", "csrf": "x"})
        assert forged.status_code == 403 and 'data-refusal="csrf"' in forged.text
        no_token = await browser.http.post(
            f"/admin/qrpool/accounts/{account.id}/codes",
            data={"amount": ""},
            files={"image": ("c.png", code_png(WECHAT), "image/png")},
        )
        assert no_token.status_code == 403 and 'data-refusal="csrf"' in no_token.text
        # A file is taken only where a picture is expected.
        stray = await browser.upload(
            "/admin/qrpool/accounts", {"pay_type": "wxpay"}, {"name": ("n.png", b"x", "image/png")}
        )
        assert stray.status_code == 400
    async with ConsoleClient(server.url) as reader:
        await reader.sign_in(viewer)
        for path in ("/admin/qrpool", f"/admin/qrpool/accounts/{account.id}", "/admin/qrpool/phones"):
            page = await reader.get(path)
            assert page.status_code == 200 and '<form method="post" action="/admin/qrpool' not in page.text
        assert (await reader.get("/admin/qrpool/accounts/999")).status_code == 404
    assert await qr.list_codes(gateway.db, account.id) == []
    assert [account.name for account in await qr.list_accounts(gateway.db)] == ["wx-main"]


async def test_the_dashboard_lists_offline_phones_with_their_last_heartbeat_and_how_long_ago(server, gateway):
    viewer = await make_user(gateway, "vic", Role.VIEWER)
    async with ConsoleClient(server.url) as browser:
        await browser.sign_in(viewer)
        assert "离线手机" not in (await browser.get("/admin")).text
        account = await qr.create_account(gateway.db, "wx-main", "wxpay")
        live, _ = await qr.add_device(gateway.db, gateway.box, account.id, "live-phone")
        silent, _ = await qr.add_device(gateway.db, gateway.box, account.id, "silent-phone")
        never, _ = await qr.add_device(gateway.db, gateway.box, account.id, "new-phone")
        revoked, _ = await qr.add_device(gateway.db, gateway.box, account.id, "lost-phone")
        await qr.record_heartbeat(gateway.db, live.id, utcnow())
        await qr.record_heartbeat(gateway.db, silent.id, utcnow() - timedelta(hours=2, minutes=5))
        await qr.set_device_enabled(gateway.db, revoked.id, False)
        page = (await browser.get("/admin")).text
    assert "离线手机" in page
    rows = re.findall(r'<tr class="offline-phone" id="offline-(\d+)"><td>([^<]+)</td>(.*?)</tr>', page, re.S)
    found = [(int(device_id), name) for device_id, name, _ in rows]
    assert found == [(silent.id, "silent-phone"), (never.id, "new-phone")]
    assert re.search(r'class="silent-for">2h 0[5-9]m<', rows[0][2]) and "wx-main" in rows[0][2]
    assert "从未" in rows[1][2] and 'class="silent-for">—<' in rows[1][2]

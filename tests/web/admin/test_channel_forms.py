"""Channel accounts added and edited in the console through forms generated from each channel's schema:
secrets write-only and sealed, routing rules read as ``openepay channel set`` reads them, credentials
checked live against an upstream on loopback."""

from __future__ import annotations

import html
from collections.abc import Iterator

import pytest
from sqlalchemy import select

from openepay.admin.roles import Role
from openepay.channels.registry import channel_classes
from openepay.db.models import AuditEntry, ChannelAccountRecord
from tests.support.admin import ConsoleClient, make_user
from tests.support.fake_epay import FakeEpay


@pytest.fixture
def upstream() -> Iterator[FakeEpay]:
    fake = FakeEpay().start()
    yield fake
    fake.stop()


def _account_form(upstream: FakeEpay, **changes: str) -> dict[str, str]:
    return {
        "channel": "epay_upstream",
        "name": "up-1",
        "cfg_api_url": upstream.url,
        "cfg_pid": upstream.pid,
        "cfg_key": upstream.key,
        "cfg_mode": "mapi",
        "cfg_paid_status": "1",
        "cfg_refund_success_code": "0",
        "pay_types": "alipay",
        "min": "1.00",
        "max": "500",
        "daily_amount": "1000.00",
        "daily_count": "20",
        "priority": "5",
        "weight": "3",
        "enabled": "on",
        **changes,
    }


def _field_error(page, name: str) -> str:  # type: ignore[no-untyped-def]
    start = page.text.index(f'id="error-{name}">') + len(f'id="error-{name}">')
    return html.unescape(page.text[start : page.text.index("<", start)])


async def test_an_administrator_adds_edits_and_tests_an_upstream_account_whose_key_is_never_shown(
    server, gateway, upstream
):
    admin = await make_user(gateway, "ada", Role.ADMINISTRATOR)
    async with ConsoleClient(server.url) as browser:
        await browser.sign_in(admin)
        assert 'id="choose-epay_upstream"' in (await browser.get("/admin/channels/new")).text
        form = await browser.get("/admin/channels/new", params={"channel": "epay_upstream"})
        assert form.status_code == 200 and "商户密钥" in form.text
        assert '<input type="password" name="cfg_key"' in form.text
        assert (
            '<option value="submit"' in form.text
            and 'name="cfg_paid_status" id="cfg-paid_status" value="1"' in form.text
        )

        wrong = await browser.post(
            "/admin/channels/new", _account_form(upstream, cfg_api_url="ftp://up.example", min="abc", weight="0")
        )
        assert wrong.status_code == 400 and "未保存任何更改" in wrong.text
        assert _field_error(wrong, "min") == "min: 'abc' is not an amount in yuan such as 100.00"
        assert _field_error(wrong, "weight") == "the weight must be a whole number of at least 1"
        refused = await browser.post("/admin/channels/new", _account_form(upstream, cfg_api_url="ftp://up.example"))
        assert refused.status_code == 400
        assert "api_url: Value error, must be an http(s) address" in html.unescape(refused.text)
        missing = await browser.post("/admin/channels/new", _account_form(upstream, cfg_key=""))
        assert "key: Field required" in missing.text
        above = await browser.post("/admin/channels/new", _account_form(upstream, min="600"))
        assert _field_error(above, "max") == "the minimum amount is above the maximum"
        for page in (wrong, refused, missing, above):
            assert upstream.key not in page.text
        assert await gateway.accounts.records() == []

        added = await browser.post("/admin/channels/new", _account_form(upstream))
        assert added.status_code == 303
        listing = await browser.get(added.headers["location"])
        assert "通道账户已添加" in listing.text and upstream.key not in listing.text
        record = await gateway.accounts.record("up-1")
        assert (record.priority, record.weight, record.min_fen, record.max_fen) == (5, 3, 100, 50000)
        assert (record.daily_amount_fen, record.daily_count, record.pay_types) == (100000, 20, ["alipay"])
        assert upstream.key not in str(record.config) and upstream.key not in record.secrets["key"]
        assert gateway.accounts.open(record).config.key.get_secret_value() == upstream.key

        edit = await browser.get("/admin/channels/up-1/edit")
        assert edit.status_code == 200 and upstream.key not in edit.text and "留空则保持不变" in edit.text
        assert 'id="rule-weight" inputmode="numeric" value="3"' in edit.text
        kept = await browser.post(
            "/admin/channels/up-1/edit", _account_form(upstream, cfg_key="", cfg_mode="submit", weight="2", max="")
        )
        assert kept.status_code == 303
        tested = await browser.post("/admin/channels/up-1/test")
        assert 'data-ok="yes"' in tested.text and "accepted" in tested.text and upstream.key not in tested.text

        await browser.get("/admin/channels/up-1/edit")
        changed = await browser.post(
            "/admin/channels/up-1/edit",
            _account_form(upstream, cfg_key="0" * 32, cfg_mode="submit", max="", weight="2", enabled=""),
        )
        assert changed.status_code == 303
        failed = await browser.post("/admin/channels/up-1/test")
        assert 'data-ok="no"' in failed.text and "凭据测试失败" in failed.text

    record = await gateway.accounts.record("up-1")
    assert record.config["mode"] == "submit" and (record.weight, record.max_fen, record.enabled) == (2, None, False)
    assert gateway.accounts.open(record).config.key.get_secret_value() == "0" * 32
    async with gateway.db.session() as session:
        entries = (await session.scalars(select(AuditEntry).where(AuditEntry.actor == "ada"))).all()
    assert [entry.action for entry in entries] == [
        "channel.add",
        "channel.change",
        "channel.test",
        "channel.change",
        "channel.test",
    ]
    assert entries[1].before["weight"] == 3 and entries[1].after["secrets_replaced"] == []
    assert entries[3].after["secrets_replaced"] == ["key"] and entries[3].after["enabled"] is False
    assert all(upstream.key not in f"{entry.before}{entry.after}" for entry in entries)


async def test_account_forms_refuse_a_missing_token_lower_roles_and_unknown_accounts(server, gateway, upstream):
    await gateway.accounts.add("epay_upstream", "up-1", upstream.account_config())
    admin = await make_user(gateway, "ada", Role.ADMINISTRATOR)
    operator = await make_user(gateway, "olga", Role.OPERATOR)
    async with ConsoleClient(server.url) as browser:
        await browser.sign_in(admin)
        # Every channel's schema makes a form; keys and certificates are pasted into text boxes.
        for channel in channel_classes():
            assert (await browser.get("/admin/channels/new", params={"channel": channel})).status_code == 200
        alipay = await browser.get("/admin/channels/new", params={"channel": "alipay"})
        assert '<textarea name="cfg_app_private_key" id="cfg-app_private_key"' in alipay.text
        assert "应用私钥 *" in alipay.text
        forged = await browser.post("/admin/channels/new", _account_form(upstream, name="up-2", csrf="forged"))
        assert forged.status_code == 403 and 'data-refusal="csrf"' in forged.text
        forged_edit = await browser.post("/admin/channels/up-1/edit", _account_form(upstream, weight="9", csrf="x"))
        assert forged_edit.status_code == 403
        assert (await browser.get("/admin/channels/nope/edit")).status_code == 404
        assert (await browser.post("/admin/channels/nope/test")).status_code == 404
        assert (await browser.post("/admin/channels/new", _account_form(upstream, channel="nope"))).status_code == 404
    async with ConsoleClient(server.url) as browser:
        await browser.sign_in(operator)
        assert (await browser.get("/admin/channels/new")).status_code == 403
        assert (await browser.post("/admin/channels/new", _account_form(upstream, name="up-2"))).status_code == 403
        assert (await browser.post("/admin/channels/up-1/edit", _account_form(upstream, weight="9"))).status_code == 403
        assert (await browser.post("/admin/channels/up-1/test")).status_code == 403
        assert 'class="edit-account"' not in (await browser.get("/admin/channels")).text
    async with gateway.db.session() as session:
        records = (await session.scalars(select(ChannelAccountRecord))).all()
    assert [(record.name, record.weight) for record in records] == [("up-1", 1)]

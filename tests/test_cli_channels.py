"""``openepay channel ...`` and the routing options of ``merchant set``, run as an operator runs them."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
from sqlalchemy import select

from openepay.db.models import ChannelAccountRecord
from tests.support.cli import openepay
from tests.support.epay import order_params, signed
from tests.support.fake_epay import FakeEpay


@pytest.fixture
def upstream() -> Iterator[FakeEpay]:
    fake = FakeEpay().start()
    yield fake
    fake.stop()


async def test_an_account_is_added_checked_shown_without_its_secret_and_tuned(
    gateway, database_url, tmp_path, upstream
):
    schema = await openepay(database_url, "channel", "schema", "epay_upstream")
    assert schema.returncode == 0, schema.stderr
    assert "商户密钥 / Merchant key (required, secret)" in schema.stdout
    described = json.loads((await openepay(database_url, "channel", "schema", "epay_upstream", "--json")).stdout)
    assert {field["name"]: field["secret"] for field in described}["key"] is True

    toml = tmp_path / "up.toml"
    toml.write_text(f'api_url = "{upstream.url}"\npid = "{upstream.pid}"\nkey = "{upstream.key}"\n')
    added = await openepay(database_url, "channel", "add", "epay_upstream", "up-1", "--config", str(toml))
    assert added.returncode == 0, added.stderr
    assert "/channels/epay_upstream/" in added.stdout

    incomplete = tmp_path / "incomplete.json"
    incomplete.write_text(json.dumps({"api_url": upstream.url, "pid": upstream.pid}))
    refused = await openepay(database_url, "channel", "add", "epay_upstream", "up-2", "--config", str(incomplete))
    assert refused.returncode == 1 and "key: Field required" in refused.stderr

    shown = await openepay(database_url, "channel", "show", "up-1")
    assert "config key: set" in shown.stdout and f"config api_url: {upstream.url}" in shown.stdout
    listed = await openepay(database_url, "channel", "list")
    for output in (added.stdout, shown.stdout, listed.stdout, shown.stderr):
        assert upstream.key not in output
    async with gateway.db.session() as session:
        row = await session.scalar(select(ChannelAccountRecord).where(ChannelAccountRecord.name == "up-1"))
    assert upstream.key not in json.dumps(row.config) + json.dumps(row.secrets)

    tested = await openepay(database_url, "channel", "test", "up-1")
    assert (tested.returncode, tested.stdout.split(":")[0]) == (0, "ok"), tested.stdout + tested.stderr

    tuned = await openepay(
        database_url,
        "channel",
        "set",
        "up-1",
        "--pay-types",
        "alipay,wxpay",
        "--min",
        "1.00",
        "--daily-amount",
        "500",
        "--daily-count",
        "20",
        "--priority",
        "3",
        "--weight",
        "2",
    )
    assert tuned.returncode == 0, tuned.stderr
    shown = (await openepay(database_url, "channel", "show", "up-1")).stdout
    assert "pay types: alipay,wxpay" in shown
    assert "amount range: 1.00 to -" in shown
    assert "daily caps: 500.00, 20 orders" in shown
    assert "priority: 3, weight: 2" in shown
    bogus = await openepay(database_url, "channel", "set", "up-1", "--pay-types", "bitcoin")
    assert bogus.returncode == 1 and "bitcoin" in bogus.stderr

    # Settings given replace the stored ones, the rest (the key here) stay; a wrong key fails the live check.
    (tmp_path / "moved.json").write_text(json.dumps({"api_url": upstream.url, "pid": upstream.pid}))
    moved = await openepay(database_url, "channel", "set", "up-1", "--config", str(tmp_path / "moved.json"))
    assert moved.returncode == 0, moved.stderr
    assert (await openepay(database_url, "channel", "test", "up-1")).returncode == 0
    (tmp_path / "wrong.json").write_text(json.dumps({"key": "0" * 32}))
    rekeyed = await openepay(database_url, "channel", "set", "up-1", "--config", str(tmp_path / "wrong.json"))
    assert rekeyed.returncode == 0, rekeyed.stderr
    failed = await openepay(database_url, "channel", "test", "up-1")
    assert failed.returncode == 1 and failed.stdout.startswith("FAILED: the upstream refused the pid and key")

    assert "disabled" in (await openepay(database_url, "channel", "disable", "up-1")).stdout
    assert " disabled " in (await openepay(database_url, "channel", "list")).stdout
    assert "enabled" in (await openepay(database_url, "channel", "enable", "up-1")).stdout


async def test_merchant_routing_options_and_order_show_prints_the_routing(
    server, gateway, merchant, shop, database_url
):
    await gateway.accounts.add("sandbox", "sb-1", {})
    await gateway.accounts.add("sandbox", "sb-2", {})
    changed = await openepay(
        database_url,
        "merchant",
        "set",
        str(merchant.pid),
        "--pay-types",
        "alipay,wxpay",
        "--channel-accounts",
        "sb-2",
        "--mapi-answer",
        "payurl",
    )
    assert changed.returncode == 0, changed.stderr
    shown = (await openepay(database_url, "merchant", "show", str(merchant.pid))).stdout
    assert "pay_types: alipay,wxpay" in shown
    assert "channel_accounts: sb-2" in shown
    assert "mapi_answer: payurl" in shown
    unknown = await openepay(database_url, "merchant", "set", str(merchant.pid), "--channel-accounts", "nope")
    assert unknown.returncode == 1 and "no channel account named nope" in unknown.stderr

    async with server.client() as client:
        params = order_params(merchant.pid, shop.url, "SHOW-1", clientip="203.0.113.9")
        answer = (await client.post("/mapi.php", data=signed(params, merchant.key))).json()
    assert answer["code"] == 1 and "payurl" in answer and "qrcode" not in answer
    order_show = (await openepay(database_url, "order", "show", answer["trade_no"])).stdout
    assert "channel: sandbox (account sb-2)" in order_show
    assert "routing: alipay by priority" in order_show
    assert "skipped  sb-1 (sandbox): not one of the merchant's accounts" in order_show
    assert "chosen   sb-2 (sandbox): priority 0, priority" in order_show

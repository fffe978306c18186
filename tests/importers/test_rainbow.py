"""``openepay import rainbow`` on a Rainbow database in the machine's MariaDB, then shops paying with their old keys."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta

from cryptography.hazmat.primitives.asymmetric import rsa
from sqlalchemy import select

from openepay.db.models import AuditEntry, Merchant
from openepay.protocols.epay_v2.platform_key import forget_loaded
from tests.support.epay import order_params, signed
from tests.support.epay_v2 import V2Merchant, bare_body, order_fields
from tests.support.rainbow import openepay_in_process, rainbow_database

SHOP_KEY = "Hn4QeR8tYu2IoP6aSd0FgJ3kLz7XcV5b"
RSA_SHOP_KEY = "Mq2WnE6rTy0UiO4pAs8DfG1hJk5LzX9c"
BANNED_KEY = "Bn7VcX3zLk9JhG5fDs1AqW8eRt4YuI2o"
REVIEW_KEY = "Rv5TgB1nHy7UjM3kIo9LpQ2wEa6SdF4z"


def rainbow_time(ago: timedelta) -> str:
    """A time as Rainbow writes it: its server's local time (Asia/Shanghai), no zone."""
    return (datetime.utcnow() + timedelta(hours=8) - ago).strftime("%Y-%m-%d %H:%M:%S")


async def run(database_url: str, *args: str):
    return await asyncio.to_thread(openepay_in_process, database_url, *args)


async def merchants(gateway) -> dict[int, Merchant]:
    return {merchant.pid: merchant for merchant in await gateway.merchants.list()}


async def test_merchants_come_over_and_their_shops_keep_their_keys(server, gateway, database_url):
    forget_loaded()
    rsa_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    v2 = V2Merchant(1001, RSA_SHOP_KEY, rsa_key)
    with rainbow_database() as rainbow:
        rainbow.add_user(1000, SHOP_KEY, codename="小卖部", refund=1)
        rainbow.add_user(
            1001, RSA_SHOP_KEY, username="RSA 商户", keytype=1, publickey=bare_body(v2.public_pem), refund=0
        )
        rainbow.add_user(1002, BANNED_KEY, status=0)
        rainbow.add_user(1003, REVIEW_KEY, pay=2)
        rainbow.add_user(1004, "123456")
        rainbow.add_order(
            "2025120112000000001", 1000, "https://shop.example.com/notify.php", rainbow_time(timedelta(days=2))
        )
        rainbow.add_order(
            "2025120112000000002", 1000, "https://shop.example.com/n.php?x=1", rainbow_time(timedelta(hours=3))
        )
        rainbow.add_order("2025120112000000003", 1001, "http://10.0.0.8/notify", rainbow_time(timedelta(days=1)))
        rainbow.add_order(
            "2023120112000000004", 1000, "https://old.example.com/notify", rainbow_time(timedelta(days=400))
        )
        paid_at = rainbow_time(timedelta(days=2, minutes=-1))
        rainbow.add_order(
            "2025120112000000005", 1000, "https://shop.example.com/notify.php", rainbow_time(timedelta(days=2)),
            out_trade_no="SHOP-PAID-1", status=1, money="12.50", realmoney="12.50", endtime=paid_at,
            type=2, api_trade_no="4200001234", buyer="o_buyer", param="uid=42",
        )  # fmt: skip
        rainbow.add_order(
            "2025120112000000006", 1000, "https://shop.example.com/notify.php", rainbow_time(timedelta(days=1)),
            out_trade_no="SHOP-REFUNDED-1", status=2, money="3.00", realmoney="3.00", refundmoney="1.00",
        )  # fmt: skip
        rainbow.add_order(
            "2025120112000000008", 1000, "https://shop.example.com/notify.php", rainbow_time(timedelta(hours=20)),
            out_trade_no="SHOP-PAID-1", status=1, money="12.50",
        )  # fmt: skip
        rainbow.add_order(
            "2025120112000000007", 1004, "https://shop.example.com/notify.php", rainbow_time(timedelta(days=1)),
            status=1, money="1.00",
        )  # fmt: skip
        every_key = (SHOP_KEY, RSA_SHOP_KEY, BANNED_KEY, REVIEW_KEY)

        dry = await run(database_url, "import", "rainbow", "--mysql-url", rainbow.url, "--dry-run")
        assert dry.exit_code == 0, dry.output
        assert "dry run: nothing is written" in dry.stdout
        assert "1000  小卖部: would create (enabled, refunds)" in dry.stdout
        assert "1001  RSA 商户: would create (enabled, RSA only: V2 API only)" in dry.stdout
        assert (
            "1002  Rainbow merchant 1002: would create (disabled: banned in Rainbow (status 0), refunds)" in dry.stdout
        )
        assert "would create (disabled: awaiting review in Rainbow (pay 2), refunds)" in dry.stdout
        assert "1004  Rainbow merchant 1004: skipped: a key is 16 to 64 characters long" in dry.stdout
        assert "summary: 4 to create, 0 already here (0 same key, 0 another key), 1 skipped" in dry.stdout
        assert await merchants(gateway) == {}

        done = await run(database_url, "import", "rainbow", "--mysql-url", rainbow.url, "--orders-since", "30d")
        assert done.exit_code == 0, done.output
        assert "summary: 4 created, 0 already here (0 same key, 0 another key), 1 skipped" in done.stdout
        assert "notification addresses of the 7 order(s) since" in done.stdout
        assert "1000  https://shop.example.com (5 order(s)): ok" in done.stdout
        assert (
            "paid orders kept as history: 2 imported, 0 already here, 1 of merchants not imported, "
            "1 repeating an earlier order's out_trade_no"
        ) in done.stdout
        assert "1001  http://10.0.0.8 (1 order(s)): REFUSED here" in done.stdout
        assert "old.example.com" not in done.stdout
        assert not any(key in dry.output + done.output for key in every_key)

        again = await run(database_url, "import", "rainbow", "--mysql-url", rainbow.url, "--orders-since", "30d")
        assert "summary: 0 created, 4 already here (4 same key, 0 another key), 1 skipped" in again.stdout
        assert "paid orders kept as history: 0 imported, 2 already here" in again.stdout

    async with gateway.db.session() as session:
        imports = (await session.scalars(select(AuditEntry).order_by(AuditEntry.id))).all()
    # The dry run wrote nothing, the import and its repeat one entry each, by the OS user.
    assert [(entry.action, entry.actor.startswith("cli:")) for entry in imports] == [("import.rainbow", True)] * 2
    assert [entry.after["merchants_created"] for entry in imports] == [[1000, 1001, 1002, 1003], []]
    stored = await merchants(gateway)
    assert sorted(stored) == [1000, 1001, 1002, 1003]
    assert [stored[pid].status for pid in sorted(stored)] == ["active", "active", "disabled", "disabled"]
    assert stored[1000].refund_enabled and not stored[1001].refund_enabled
    assert stored[1001].rsa_only and stored[1001].rsa_public_key.strip() == v2.public_pem.strip()
    assert stored[1001].dialects == ["epay_v2"] and stored[1000].dialects is None

    async with server.client() as client:
        v1 = await client.post(
            "/mapi.php",
            data=signed(order_params(1000, "https://shop.example.com", "R-1", clientip="1.2.3.4"), SHOP_KEY),
        )
        assert v1.json()["code"] == 1, v1.text
        rsa_signed = await client.post(
            "/api/pay/create", data=v2.request(order_fields("https://shop.example.com", "R-2"))
        )
        assert rsa_signed.json()["code"] == 0, rsa_signed.text
        md5_signed = await client.post(
            "/mapi.php",
            data=signed(order_params(1001, "https://shop.example.com", "R-4", clientip="1.2.3.4"), RSA_SHOP_KEY),
        )
        assert md5_signed.json()["code"] != 1
        # The shop asks about an order it was paid for on Rainbow, and gets Rainbow's answer.
        history = await client.get(
            "/api.php", params={"act": "order", "pid": "1000", "key": SHOP_KEY, "out_trade_no": "SHOP-PAID-1"}
        )
        fields = history.json()
        assert (fields["code"], fields["status"], fields["trade_no"]) == (1, 1, "2025120112000000005"), fields
        assert (fields["money"], fields["type"], fields["api_trade_no"], fields["param"]) == (
            "12.50",
            "wxpay",
            "4200001234",
            "uid=42",
        )
        assert fields["endtime"] == paid_at
        refunded = await client.get(
            "/api.php", params={"act": "order", "pid": "1000", "key": SHOP_KEY, "trade_no": "2025120112000000006"}
        )
        assert refunded.json()["status"] == 2, refunded.text
        reused = await client.post(
            "/mapi.php",
            data=signed(order_params(1000, "https://shop.example.com", "SHOP-PAID-1", clientip="1.2.3.4"), SHOP_KEY),
        )
        assert reused.json()["code"] != 1, reused.text
        banned = await client.post(
            "/mapi.php",
            data=signed(order_params(1002, "https://shop.example.com", "R-3", clientip="1.2.3.4"), BANNED_KEY),
        )
        assert banned.json()["code"] != 1


async def test_a_merchant_here_with_another_key_is_left_alone(gateway, database_url):
    await gateway.merchants.create("Here first", pid=1000, key="Ot8HeR5kEy2FoR7tHe4SaMe9PiD1xyzw")
    with rainbow_database() as rainbow:
        rainbow.add_user(1000, SHOP_KEY)
        result = await run(database_url, "import", "rainbow", "--mysql-url", rainbow.url)
    assert result.exit_code == 0, result.output
    assert "already here with ANOTHER key: left as it is" in result.stdout
    assert "summary: 0 created, 1 already here (0 same key, 1 another key), 0 skipped" in result.stdout
    here = (await merchants(gateway))[1000]
    assert here.name == "Here first" and gateway.merchants.key_of(here) != SHOP_KEY


async def test_an_older_install_with_its_own_table_prefix(gateway, database_url):
    with rainbow_database("epay_", legacy=True) as rainbow:
        rainbow.add_user(2000, SHOP_KEY, email="shop@example.com")
        rainbow.add_user(2001, RSA_SHOP_KEY, codename="Evil\x1b[2J\x00 Shop")
        wrong = await run(database_url, "import", "rainbow", "--mysql-url", rainbow.url)
        assert wrong.exit_code == 1
        assert "no table pay_user in this database" in wrong.stderr and "--table-prefix" in wrong.stderr
        result = await run(database_url, "import", "rainbow", "--mysql-url", rainbow.url, "--table-prefix", "epay_")
    assert result.exit_code == 0, result.output
    assert "2000  shop@example.com: created (enabled)" in result.stdout
    assert "2001  Evil [2J Shop: created (enabled)" in result.stdout and "\x1b" not in result.stdout
    merchant = (await merchants(gateway))[2000]
    assert gateway.merchants.key_of(merchant) == SHOP_KEY and merchant.rsa_public_key is None


async def test_a_database_that_cannot_be_read_is_named_without_its_password(gateway, database_url):
    unreachable = await run(database_url, "import", "rainbow", "--mysql-url", "mysql://root:s3cret@127.0.0.1:1/epay")
    assert unreachable.exit_code == 1 and "cannot connect to the Rainbow database" in unreachable.stderr
    assert "s3cret" not in unreachable.output
    missing = await run(database_url, "import", "rainbow", "--mysql-url", "mysql://root@127.0.0.1:3306/")
    assert missing.exit_code == 1 and "name the Rainbow database in the URL" in missing.stderr
    wrong_scheme = await run(database_url, "import", "rainbow", "--mysql-url", "postgresql://root@127.0.0.1/epay")
    assert wrong_scheme.exit_code == 1 and "starts with mysql://" in wrong_scheme.stderr

"""The ``openepay`` command as an operator uses it, against the test databases (servers in processes of their own)."""

from __future__ import annotations

import asyncio
import hashlib
import json
import re
import sqlite3
import subprocess
import sys
from datetime import timedelta

import httpx
import pytest
from sqlalchemy import select, update

from openepay.core.states import MerchantStatus, NotifyStatus
from openepay.db.models import Merchant, NotifyAttempt, NotifyTask, Order
from openepay.db.types import utcnow
from tests.support.cli import clean_env, cli_env, openepay
from tests.support.database import refused_writes, stored_order
from tests.support.epay import order_params, signed
from tests.support.links import sandbox_path
from tests.support.merchant import FakeMerchant
from tests.support.notify import Answer, paid_order
from tests.support.orders import sandbox_order
from tests.support.postgres import create_database, drop_database, pg_url, unique_name
from tests.support.servers import free_port
from tests.support.waiting import answering, eventually


async def test_merchant_lifecycle(gateway, database_url):
    created = await openepay(database_url, "merchant", "create", "--name", "Acme 商店", "--json")
    assert created.returncode == 0, created.stderr
    credentials = json.loads(created.stdout)
    assert set(credentials) == {"pid", "key"} and re.fullmatch(r"[A-Za-z0-9]{32}", credentials["key"])
    pid = credentials["pid"]

    listed = await openepay(database_url, "merchant", "list")
    assert str(pid) in listed.stdout and "Acme 商店" in listed.stdout

    shown = await openepay(database_url, "merchant", "show", str(pid))
    assert "name: Acme 商店" in shown.stdout and "status: active" in shown.stdout
    assert credentials["key"] not in shown.stdout + listed.stdout

    rotated = await openepay(database_url, "merchant", "rotate-key", str(pid))
    new_key = re.search(r"key: (\w+)", rotated.stdout).group(1)
    assert new_key != credentials["key"]
    assert gateway.merchants.key_of(await gateway.merchants.get(pid)) == new_key

    assert (await openepay(database_url, "merchant", "disable", str(pid))).returncode == 0
    assert (await gateway.merchants.get(pid)).status == MerchantStatus.DISABLED
    assert (await openepay(database_url, "merchant", "enable", str(pid))).returncode == 0
    assert (await gateway.merchants.get(pid)).status == MerchantStatus.ACTIVE

    missing = await openepay(database_url, "merchant", "show", "999999")
    assert missing.returncode == 1 and "no merchant 999999" in missing.stderr


async def test_a_merchant_chooses_the_dialects_it_uses(gateway, merchant, database_url):
    pid = str(merchant.pid)
    assert "dialects: all" in (await openepay(database_url, "merchant", "show", pid)).stdout

    limited = await openepay(database_url, "merchant", "set", pid, "--dialects", "epay_v2, epay")
    assert limited.returncode == 0, limited.stderr
    assert (await gateway.merchants.get(merchant.pid)).dialects == ["epay", "epay_v2"]
    assert "dialects: epay,epay_v2" in (await openepay(database_url, "merchant", "show", pid)).stdout

    for wrong, says in (("epay,rainbow", "unknown dialect rainbow"), (",", "needs at least one dialect")):
        refused = await openepay(database_url, "merchant", "set", pid, "--dialects", wrong)
        assert refused.returncode == 1 and says in refused.stderr, refused.stderr
    assert (await gateway.merchants.get(merchant.pid)).dialects == ["epay", "epay_v2"]

    assert (await openepay(database_url, "merchant", "set", pid, "--dialects", "all")).returncode == 0
    assert (await gateway.merchants.get(merchant.pid)).dialects is None
    assert "dialects: all" in (await openepay(database_url, "merchant", "show", pid)).stdout


async def test_order_pay_show_list_and_resend(server, gateway, merchant, shop, worker, database_url):
    async with server.client() as client:
        answer = (
            await client.post(
                "/mapi.php",
                data=signed(order_params(merchant.pid, shop.url, "CLI-1", clientip="1.2.3.4"), merchant.key),
            )
        ).json()
    trade_no = answer["trade_no"]

    paid = await openepay(database_url, "order", "pay", trade_no)
    assert paid.returncode == 0, paid.stderr
    assert f"{trade_no} is paid" in paid.stdout
    await eventually(lambda: shop.notifications())
    assert shop.notifications()[0].signature_ok

    again = await openepay(database_url, "order", "pay", trade_no)
    assert again.returncode == 1 and "已支付" in again.stderr

    async def delivered() -> bool:
        async with gateway.db.session() as session:
            return bool(await session.scalar(select(NotifyAttempt.id).where(NotifyAttempt.delivered.is_(True))))

    await eventually(delivered)
    shown = (await openepay(database_url, "order", "show", trade_no)).stdout
    assert "status: paid" in shown and "notification paid: succeeded" in shown
    assert re.search(r"#1 \S+ 127\.0\.0\.1 HTTP 200 \d+ms delivered 'success'", shown)

    listed = await openepay(database_url, "order", "list", "--merchant", str(merchant.pid), "--status", "paid")
    assert trade_no in listed.stdout
    assert trade_no not in (await openepay(database_url, "order", "list", "--status", "closed")).stdout

    resent = await openepay(database_url, "notify", "resend", trade_no)
    assert resent.returncode == 0 and "queued 1" in resent.stdout
    await eventually(lambda: len(shop.notifications()) == 2)


async def test_order_pay_refuses_unknown_orders(gateway, database_url):
    refused = await openepay(database_url, "order", "pay", "123")
    assert refused.returncode == 1 and "订单不存在" in refused.stderr


async def test_order_pay_reports_a_payment_the_database_did_not_record(gateway, database_url, merchant, shop):
    order = await sandbox_order(gateway, merchant.pid, "CLI-F", notify_url=f"{shop.url}/notify")
    paid_by_trade_no = f"NEW.status = 'paid' AND NEW.trade_no = '{order.trade_no}'"
    async with refused_writes(gateway, "UPDATE", "orders", paid_by_trade_no):
        refused = await openepay(database_url, "order", "pay", order.trade_no)
    assert refused.returncode == 1 and "支付未能记录" in refused.stderr and "订单仍未支付" in refused.stderr
    assert (await stored_order(gateway, order.trade_no)).status == "paying"


async def test_serve_runs_web_and_worker_on_a_fresh_sqlite_file(tmp_path):
    """`openepay serve` migrates a new SQLite database itself and delivers notifications in-process."""
    database_url = f"sqlite+aiosqlite:///{tmp_path / 'fresh.db'}"
    port = free_port()
    env = cli_env(database_url, OPENEPAY_NOTIFY_ALLOW_PRIVATE="1", OPENEPAY_WORKER_POLL_INTERVAL="0.1")
    process = subprocess.Popen(
        [sys.executable, "-m", "openepay", "serve", "--port", str(port)], env=env, stderr=subprocess.PIPE
    )
    shop = None
    try:
        base = f"http://127.0.0.1:{port}"
        await answering(f"{base}/readyz")
        created = await openepay(
            database_url, "merchant", "create", "--name", "Fresh", "--json", OPENEPAY_NOTIFY_ALLOW_PRIVATE="1"
        )
        credentials = json.loads(created.stdout)
        shop = FakeMerchant(key=credentials["key"]).start()
        # The epay V2 key pair exists from the first start, before any V2 request needed it.
        with sqlite3.connect(tmp_path / "fresh.db") as db:
            assert db.execute("SELECT name FROM platform_keys").fetchall() == [("epay_v2",)]
        params = signed(order_params(credentials["pid"], shop.url, "SERVE-1", clientip="1.2.3.4"), credentials["key"])
        async with httpx.AsyncClient(base_url=base) as client:
            trade_no = (await client.post("/mapi.php", data=params)).json()["trade_no"]
            assert (await client.post(sandbox_path(trade_no))).status_code == 303
        [notification] = await eventually(lambda: shop.notifications())
        assert notification.signature_ok and notification.params["trade_no"] == trade_no
    finally:
        if shop is not None:
            shop.stop()
        process.terminate()
        process.wait(timeout=20)


@pytest.mark.postgresql
async def test_postgres_needs_migrate_before_serve():
    name = unique_name("cli_migrate")
    await create_database(name)
    url = pg_url(name)
    try:
        refused = await openepay(url, "serve", "--port", str(free_port()))
        assert refused.returncode == 1 and "openepay migrate" in refused.stderr
        migrated = await openepay(url, "migrate")
        assert migrated.returncode == 0 and "revision" in migrated.stdout
        created = await openepay(url, "merchant", "create", "--name", "PG", "--json")
        assert created.returncode == 0 and json.loads(created.stdout)["pid"] == 1000
    finally:
        await drop_database(name)


async def test_postgres_without_secret_key_is_refused_with_a_clear_message(tmp_path):
    refused = await openepay(pg_url("postgres"), "merchant", "list", cwd=tmp_path, OPENEPAY_SECRET_KEY="")
    assert refused.returncode == 1 and "OPENEPAY_SECRET_KEY must be set" in refused.stderr


async def test_demo_prints_a_working_signed_link(tmp_path):
    """The README's quick start: `openepay demo` in an empty directory, then the printed link."""
    host, port = "127.0.0.1", free_port()
    env = clean_env(OPENEPAY_WORKER_POLL_INTERVAL="0.1")
    process = subprocess.Popen(
        [sys.executable, "-m", "openepay", "demo", "--host", host, "--port", str(port)],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        lines = [await asyncio.to_thread(process.stdout.readline) for _ in range(6)]
        printed = dict((part.strip() for part in line.split(":", 1)) for line in lines[1:6])
        assert printed["gateway URL"] == f"http://{host}:{port}"
        assert printed["merchant pid"] == "1000" and len(printed["merchant key"]) == 32
        link = printed["test link"]
        assert link.startswith(f"http://{host}:{port}/submit.php?pid=1000&")
        assert (tmp_path / "openepay.db").exists() and (tmp_path / "openepay.secret").exists()

        async def ready() -> bool:
            try:
                async with httpx.AsyncClient() as client:
                    return (await client.get(f"http://{host}:{port}/readyz")).status_code == 200
            except httpx.TransportError:
                return False

        await eventually(ready, interval=0.2)
        async with httpx.AsyncClient(follow_redirects=True) as client:
            cashier = await client.get(link)
            # The demo's own secret makes the handle: the page names the order by the handle the link led to.
            handle = cashier.url.path.removeprefix("/cashier/")
            trade_no = handle.partition("-")[0]
            assert "Demo Shop" in cashier.text and f"/sandbox/pay/{handle}" in cashier.text
            landing = await client.post(f"http://{host}:{port}/sandbox/pay/{handle}")
            assert landing.url.path == "/demo-shop/return", landing.url
            assert "签名验证通过" in landing.text

            # A V免签 plugin pointed at the printed address creates orders for the demo merchant.
            assert printed["V免签 URL"].startswith(f"http://{host}:{port}/ ")
            pay_id, param, type_code, price, key = "DEMO-VMQ-1", "", "2", "0.01", printed["merchant key"]
            sign = hashlib.md5((pay_id + param + type_code + price + key).encode()).hexdigest()
            fields = {"payId": pay_id, "type": type_code, "price": price, "notifyUrl": f"http://{host}:{port}/n"}
            created = (await client.post(f"http://{host}:{port}/createOrder", data={**fields, "sign": sign})).json()
            assert created["code"] == 1, created
            assert (created["data"]["payId"], created["data"]["reallyPrice"]) == (pay_id, price)

        async def delivered() -> bool:
            shown = await openepay(
                f"sqlite+aiosqlite:///{tmp_path / 'openepay.db'}",
                "order",
                "show",
                trade_no,
                OPENEPAY_SECRET_KEY=(tmp_path / "openepay.secret").read_text().strip(),
            )
            return "delivered 'success'" in shown.stdout

        await eventually(delivered, interval=0.5)
    finally:
        process.terminate()
        process.wait(timeout=20)


async def test_merchant_set_changes_the_retry_schedule_and_refund_permission(gateway, database_url):
    created = json.loads((await openepay(database_url, "merchant", "create", "--name", "S", "--json")).stdout)
    pid = str(created["pid"])
    changed = await openepay(
        database_url, "merchant", "set", pid, "--notify-retry-delays", "5,30,120", "--allow-refund"
    )
    assert changed.returncode == 0, changed.stderr
    merchant = await gateway.merchants.get(created["pid"])
    assert merchant.notify_retry_delays == [5, 30, 120] and merchant.refund_enabled
    assert "notify_retry_delays: 5,30,120" in (await openepay(database_url, "merchant", "show", pid)).stdout

    back = await openepay(database_url, "merchant", "set", pid, "--notify-retry-delays", "default", "--no-refund")
    assert back.returncode == 0
    merchant = await gateway.merchants.get(created["pid"])
    assert merchant.notify_retry_delays is None and not merchant.refund_enabled

    wrong = await openepay(database_url, "merchant", "set", pid, "--notify-retry-delays", "soon")
    assert wrong.returncode == 1 and "separated by commas" in wrong.stderr
    assert (await openepay(database_url, "merchant", "set", pid)).returncode == 1


async def test_failed_notifications_are_resent_in_bulk(server, gateway, merchant, scripted_shop, database_url):
    failing = scripted_shop(Answer(200, b"fail"))
    trade_nos = [await paid_order(server, merchant, f"{failing.url}/notify", f"BULK-{n}") for n in range(3)]
    other = await gateway.merchants.create("Other shop")
    async with gateway.db.session() as session:
        await session.execute(
            update(NotifyTask).values(status=NotifyStatus.FAILED, failed_at=utcnow() - timedelta(hours=3))
        )
        order_ids = select(Order.id).where(Order.trade_no == trade_nos[0]).scalar_subquery()
        await session.execute(update(NotifyTask).where(NotifyTask.order_id == order_ids).values(failed_at=utcnow()))
        await session.execute(
            update(NotifyTask)
            .where(NotifyTask.order_id == select(Order.id).where(Order.trade_no == trade_nos[1]).scalar_subquery())
            .values(merchant_pid=other.pid, failed_at=utcnow())
        )

    recent = await openepay(database_url, "notify", "resend", "--failed-since", "1h", "--merchant", str(merchant.pid))
    assert recent.returncode == 0 and "queued 1 failed notification(s)" in recent.stdout
    everything = await openepay(database_url, "notify", "resend", "--failed-since", "2020-01-01T00:00")
    assert "queued 2 failed notification(s)" in everything.stdout
    async with gateway.db.session() as session:
        statuses = (await session.scalars(select(NotifyTask.status))).all()
    assert sorted(statuses) == [NotifyStatus.PENDING] * 3

    assert (await openepay(database_url, "notify", "resend")).returncode == 1
    unreadable = await openepay(database_url, "notify", "resend", "--failed-since", "yesterday")
    assert unreadable.returncode == 1 and "cannot read the time" in unreadable.stderr


async def test_notify_test_sends_a_marked_signed_message_and_reports_the_answer(gateway, merchant, database_url):
    shop = FakeMerchant(key=merchant.key).start()
    try:
        result = await openepay(
            database_url, "notify", "test", str(merchant.pid), f"{shop.url}/notify", OPENEPAY_NOTIFY_ALLOW_PRIVATE="1"
        )
        assert result.returncode == 0, result.stderr
        assert "HTTP status: 200" in result.stdout and "acknowledged" in result.stdout
        [received] = shop.notifications()
        assert received.signature_ok
        assert received.params["trade_status"] == "TEST_NOTIFY"
        assert received.params["out_trade_no"].startswith("OPENEPAY-TEST-")

        shop.reply = b"fail"
        refused = await openepay(
            database_url, "notify", "test", str(merchant.pid), f"{shop.url}/notify", OPENEPAY_NOTIFY_ALLOW_PRIVATE="1"
        )
        assert refused.returncode == 1 and "NOT acknowledged" in refused.stdout
        assert "diagnosis  : The server answered 2xx, but the answer does not count as received" in refused.stdout
    finally:
        shop.stop()
    blocked = await openepay(database_url, "notify", "test", str(merchant.pid), "http://127.0.0.1:9/notify")
    assert blocked.returncode == 1 and "blocked_address" in blocked.stdout


async def test_notify_test_never_reaches_loopback_spelt_with_unicode_dots(gateway, merchant, database_url):
    shop = FakeMerchant(key=merchant.key).start()
    url = f"http://127。0。0。1:{shop.url.rsplit(':', 1)[1]}/notify"
    try:
        results = {
            dialect: await openepay(database_url, "notify", "test", str(merchant.pid), url, "--dialect", dialect)
            for dialect in ("epay", "epay_v2", "pay_mapi", "payfor", "vmq")
        }
    finally:
        shop.stop()
    assert shop.received == []
    for result in results.values():
        assert result.returncode == 1, result.stderr
        assert "blocked_address: the host is an IP address written with non-ASCII characters" in result.stdout


async def test_an_argument_that_is_not_utf8_is_refused_before_anything_is_stored(gateway, database_url):
    """Bytes that are not UTF-8 reach Python as lone surrogates, which no database driver can encode."""

    def run() -> subprocess.CompletedProcess:
        return subprocess.run(
            [sys.executable.encode(), b"-m", b"openepay", b"merchant", b"create", b"--name", b"Shop \xff\xfe"],
            env=cli_env(database_url),
            capture_output=True,
            timeout=60,
        )

    refused = await asyncio.to_thread(run)
    assert refused.returncode == 2
    assert refused.stderr.decode().strip() == r"openepay: this argument is not UTF-8 text: 'Shop \udcff\udcfe'"
    async with gateway.db.session() as session:
        assert (await session.scalars(select(Merchant))).all() == []

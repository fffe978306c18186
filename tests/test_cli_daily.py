"""The operator's daily questions on the command line: one shop's order, a day's orders and totals, paused merchants."""

from __future__ import annotations

import re
from datetime import timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import update

from openepay.db.models import NotifyBreaker, Order
from openepay.db.types import utcnow
from tests.support.cli import openepay_cli
from tests.support.notify import paid_order
from tests.support.orders import sandbox_order

# The tests allow private notify targets; nothing listens on port 9, and no worker runs here anyway.
NOWHERE = "http://127.0.0.1:9/notify"


async def test_order_show_finds_an_order_by_the_shops_own_number(gateway, merchant, database_url):
    order = await sandbox_order(gateway, merchant.pid, "SHOP-42")
    other = await gateway.merchants.create("Other shop")
    await sandbox_order(gateway, other.pid, "SHOP-42", amount_fen=990, money="9.90")

    shown = await openepay_cli(database_url, "order", "show", "SHOP-42", "--merchant", str(merchant.pid))
    assert shown.returncode == 0, shown.stderr
    assert f"trade_no: {order.trade_no}" in shown.stdout and "out_trade_no: SHOP-42" in shown.stdout
    assert "money: 1.00" in shown.stdout

    unknown = await openepay_cli(database_url, "order", "show", "SHOP-43", "--merchant", str(merchant.pid))
    assert unknown.returncode == 1 and f"merchant {merchant.pid} has no order SHOP-43" in unknown.stderr
    by_ours_only = await openepay_cli(database_url, "order", "show", "SHOP-42")
    assert by_ours_only.returncode == 1 and "add --merchant PID" in by_ours_only.stderr


async def test_order_list_takes_a_date_range_and_totals_every_match(server, gateway, merchant, database_url):
    paid = await paid_order(server, merchant, NOWHERE, "DAY-1")
    await sandbox_order(gateway, merchant.pid, "DAY-2", amount_fen=250, money="2.50")
    old = await sandbox_order(gateway, merchant.pid, "OLD-1", amount_fen=5000, money="50.00")
    async with gateway.db.session() as session:
        await session.execute(update(Order).where(Order.id == old.id).values(created_at=utcnow() - timedelta(days=3)))

    recent = await openepay_cli(database_url, "order", "list", "--since", "1d")
    assert recent.returncode == 0, recent.stderr
    lines = recent.stdout.strip().splitlines()
    assert lines[0].split() == ["trade_no", "status", "to", "pay", "pid", "out_trade_no"]
    assert paid in recent.stdout and old.trade_no not in recent.stdout
    assert lines[-1] == "total: 2 order(s), 3.50 yuan; paid: 1 order(s), 1.00 yuan"

    three_days_ago = (utcnow() - timedelta(days=3)).astimezone(ZoneInfo("Asia/Shanghai")).date()
    day = await openepay_cli(
        database_url,
        "order", "list",
        "--since", three_days_ago.isoformat(),
        "--until", (three_days_ago + timedelta(days=1)).isoformat(),
    )  # fmt: skip
    assert old.trade_no in day.stdout and paid not in day.stdout
    assert day.stdout.strip().splitlines()[-1] == "total: 1 order(s), 50.00 yuan; paid: 0 order(s), 0.00 yuan"

    newest = await openepay_cli(database_url, "order", "list", "--limit", "1")
    assert newest.stdout.count(f"  {merchant.pid}  ") == 1
    assert newest.stdout.strip().endswith(
        "total: 3 order(s), 53.50 yuan; paid: 1 order(s), 1.00 yuan (showing the newest 1)"
    )

    unreadable = await openepay_cli(database_url, "order", "list", "--since", "last tuesday")
    assert unreadable.returncode == 1 and "cannot read the time 'last tuesday'" in unreadable.stderr


async def test_notify_status_shows_the_backlog_and_paused_merchants(server, gateway, merchant, database_url):
    quiet = await openepay_cli(database_url, "notify", "status")
    assert quiet.returncode == 0, quiet.stderr
    assert "due now    : 0" in quiet.stdout and "paused merchants: none" in quiet.stdout

    await paid_order(server, merchant, NOWHERE, "WAIT-1")
    until = utcnow() + timedelta(minutes=10)
    async with gateway.db.session() as session:
        session.add(
            NotifyBreaker(merchant_pid=merchant.pid, consecutive_failures=5, open_until=until, cooldown_seconds=600)
        )

    status = await openepay_cli(database_url, "notify", "status", OPENEPAY_TIMEZONE="Asia/Shanghai")
    assert status.returncode == 0, status.stderr
    assert re.search(r"due now    : 1, the oldest due since \d{4}-\d\d-\d\d \d\d:\d\d:\d\d", status.stdout)
    shown_until = until.astimezone(ZoneInfo("Asia/Shanghai")).strftime("%Y-%m-%d %H:%M:%S")
    assert "paused merchants (Asia/Shanghai):" in status.stdout
    assert (
        f"{merchant.pid}  until {shown_until}  after 5 failure(s) in a row, 1 notification(s) waiting" in status.stdout
    )

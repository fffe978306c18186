"""The ``openepay`` command: run the gateway and its workers, and operate merchants and orders.

Commands start in a fraction of a second: this module imports only what every command needs,
and each command imports the rest of the gateway (the web app, the HTTP client, the dialects)
when it runs.
"""

from __future__ import annotations

import json
import os
import sys
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

import typer
from sqlalchemy import select

from openepay.channels.qrpool.cli import qrpool_app
from openepay.channels.qrpool.review_cli import review_app
from openepay.cli_admin import admin_app
from openepay.cli_audit import audited
from openepay.cli_channels import channel_app
from openepay.cli_import import import_app
from openepay.cli_portal import merchant_login, merchant_logins
from openepay.cli_refunds import refund_app
from openepay.cli_runtime import fail, with_gateway
from openepay.config import Settings
from openepay.core.channel_accounts import AccountError
from openepay.core.merchants import MerchantNotFound
from openepay.core.money import format_yuan
from openepay.core.orders import get_order
from openepay.core.states import MerchantStatus, OrderStatus
from openepay.db.models import Merchant, NotifyAttempt, NotifyTask, Order
from openepay.db.types import storable, utcnow
from openepay.protocols import DIALECT_NAMES

if TYPE_CHECKING:
    from openepay.gateway import Gateway

app = typer.Typer(help="OpenEpay: a self-hosted payment gateway for 易支付/epay merchants.", no_args_is_help=True)
merchant_app = typer.Typer(help="Merchant accounts.", no_args_is_help=True)
order_app = typer.Typer(help="Orders.", no_args_is_help=True)
notify_app = typer.Typer(help="Notifications to merchants.", no_args_is_help=True)
platform_app = typer.Typer(help="The gateway's own keys.", no_args_is_help=True)
app.add_typer(merchant_app, name="merchant")
merchant_app.command("login")(merchant_login)
merchant_app.command("logins")(merchant_logins)
app.add_typer(order_app, name="order")
app.add_typer(notify_app, name="notify")
app.add_typer(platform_app, name="platform")
app.add_typer(channel_app, name="channel")
qrpool_app.add_typer(review_app, name="review")
app.add_typer(qrpool_app, name="qrpool")
app.add_typer(import_app, name="import")
app.add_typer(admin_app, name="admin")
app.add_typer(refund_app, name="refund")

DEMO_MERCHANT = "Demo Shop"
# What the audit log says of a new merchant key: never the key, nor anything derived from it.
REPLACED = {"key": "replaced"}


async def _platform_key(gateway: Gateway) -> None:
    """Make the epay V2 key pair now, not on the first V2 request (and prove the stored one opens)."""
    from openepay.protocols.epay_v2.platform_key import platform_key
    from openepay.secretbox import SecretBoxError

    try:
        await platform_key(gateway.db, gateway.box)
    except SecretBoxError as exc:
        raise fail(f"cannot open the stored epay V2 platform key: {exc}") from None


def _listen(
    settings: Settings,
    host: str,
    port: int,
    *,
    workers: int | None,
    notify_worker: bool,
    forwarded_allow_ips: str | None = None,
) -> None:
    from openepay.web.processes import WebOptions, listening_sockets, serve

    workers = workers or os.cpu_count() or 1
    try:
        sockets = listening_sockets(host, port, workers)
    except OSError as exc:
        raise fail(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None
    options = WebOptions(forwarded_allow_ips=forwarded_allow_ips)
    raise typer.Exit(serve(settings, sockets, notify_worker=notify_worker, options=options))


@app.command()
def serve(
    host: str = typer.Option("127.0.0.1", help="Address to listen on."),
    port: int = typer.Option(8000, help="Port to listen on."),
    workers: int | None = typer.Option(
        None, "--workers", min=1, help="Web processes sharing the port (default: the number of cores)."
    ),
    worker: bool = typer.Option(
        True, "--worker/--no-worker", help="Also run the notification worker (its own process)."
    ),
    access_log: bool | None = typer.Option(
        None, "--access-log/--no-access-log", help="One log line per request (default: $OPENEPAY_ACCESS_LOG, on)."
    ),
    forwarded_allow_ips: str | None = typer.Option(
        None,
        help="Proxies whose X-Forwarded-For names the client (comma-separated IPs or networks, '*' for any);"
        " default 127.0.0.1, or $FORWARDED_ALLOW_IPS.",
    ),
) -> None:
    """Run the web processes (and, unless --no-worker, the notification worker)."""
    settings = Settings()
    if access_log is not None:
        settings = settings.model_copy(update={"access_log": access_log})
    with_gateway(settings, _platform_key, creates=True, service=True)
    _listen(settings, host, port, workers=workers, notify_worker=worker, forwarded_allow_ips=forwarded_allow_ips)


@app.command()
def worker(
    metrics_port: int | None = typer.Option(None, help="Serve this worker's Prometheus metrics on this port."),
) -> None:
    """Run the notification worker alone (start as many as you like, on any machine)."""
    from openepay.web.processes import run_notify_worker

    with_gateway(Settings(), lambda gateway: run_notify_worker(gateway, metrics_port), service=True)


@app.command("migrate")
def migrate_command() -> None:
    """Create or upgrade the database schema (SQLite is also migrated automatically on start)."""
    from openepay.cli_runtime import prepare
    from openepay.db import migrate

    prepare(Settings(), creates=True, needs_key=False)
    typer.echo(f"database is at revision {migrate.head_revision()}")


@app.command()
def demo(
    host: str = typer.Option("127.0.0.1", help="Address to listen on."),
    port: int = typer.Option(8000, help="Port to listen on."),
    pid: int | None = typer.Option(None, help="The demo merchant's pid, e.g. 1001 as in docs/dialects.md."),
    key: str | None = typer.Option(None, help="The demo merchant's key (16-64 letters and digits)."),
) -> None:
    """Start the gateway with a demo merchant and the sandbox channel, and print a signed test link."""
    from openepay.core.merchants import MerchantRefused, key_problem, pid_problem

    problem = (pid_problem(pid) if pid is not None else None) or (key_problem(key) if key is not None else None)
    if problem:
        raise fail(f"refused: {problem}")
    settings = Settings(sandbox=True, notify_allow_private=True)
    base = settings.public_url or f"http://{'127.0.0.1' if host in ('0.0.0.0', '::') else host}:{port}"

    async def ensure_demo_merchant(gateway: Gateway) -> tuple[int, str]:
        await _platform_key(gateway)
        query = select(Merchant).order_by(Merchant.pid)
        query = query.where(Merchant.pid == pid) if pid is not None else query.where(Merchant.name == DEMO_MERCHANT)
        async with gateway.db.session() as session:
            merchant = await session.scalar(query)
        if merchant is None:
            created = await gateway.merchants.create(DEMO_MERCHANT, refund_enabled=True, pid=pid, key=key)
            return created.pid, created.key
        if key is not None and gateway.merchants.key_of(merchant) != key:
            await gateway.merchants.set_key(merchant.pid, key)
        return merchant.pid, gateway.merchants.key_of(await gateway.merchants.get(merchant.pid))

    try:
        pid, key = with_gateway(settings, ensure_demo_merchant, creates=True, service=True)
    except MerchantRefused as refusal:
        raise fail(f"refused: {refusal}") from None
    # V免签 plugins know only an address and a key: the root paths serve the demo merchant.
    settings = settings.model_copy(update={"vmq_default_pid": settings.vmq_default_pid or pid})
    from openepay.web.demo_shop import signed_submit_link

    typer.echo("OpenEpay demo (SQLite, sandbox channel: payments are simulated)")
    typer.echo(f"  gateway URL : {base}")
    typer.echo(f"  merchant pid: {pid}")
    typer.echo(f"  merchant key: {key}")
    typer.echo(f"  test link   : {signed_submit_link(base, pid, key)}")
    typer.echo(f"  V免签 URL   : {base}/ (for V免签 plugins, with the same key)")
    typer.echo("Open the test link, press the sandbox pay button, and you land back on the demo shop.")
    _listen(settings, host, port, workers=1, notify_worker=True)


def _merchant_row(merchant: Merchant, account_list: list[str] | None = None) -> dict[str, Any]:
    delays = merchant.notify_retry_delays
    return {
        "pid": merchant.pid,
        "name": merchant.name,
        "status": merchant.status,
        "refund_api": merchant.refund_enabled,
        "dialects": ",".join(merchant.dialects) if merchant.dialects is not None else "all",
        "notify_retry_delays": ",".join(f"{d:g}" for d in delays) if delays else "default",
        "pay_types": ",".join(merchant.pay_types) if merchant.pay_types is not None else "all",
        "channel_accounts": ",".join(account_list) if account_list is not None else "all",
        "mapi_answer": merchant.mapi_answer,
        "balance": format_yuan(merchant.balance_fen),
        "created_at": merchant.created_at.isoformat(timespec="seconds"),
    }


@merchant_app.command("create")
def merchant_create(
    name: str | None = typer.Option(None, help="The merchant's name, shown on the cashier (default: Merchant PID)."),
    pid: int | None = typer.Option(None, help="Keep the shop's pid from its old gateway (default: the next free one)."),
    key: str | None = typer.Option(
        None, help="Keep the shop's key from its old gateway: 16-64 letters and digits (default: a new random key)."
    ),
    allow_refund: bool = typer.Option(False, "--allow-refund", help="Let the merchant refund through api.php."),
    as_json: bool = typer.Option(False, "--json", help='Print {"pid": ..., "key": ...} (no key when --key gave it).'),
) -> None:
    """Create a merchant and print its pid and key (the key is shown this once)."""
    from openepay.core.merchants import MerchantRefused, key_problem, pid_problem

    # Checked before the database is opened, so a typo costs nothing.
    problem = (pid_problem(pid) if pid is not None else None) or (key_problem(key) if key is not None else None)
    if problem:
        raise fail(f"refused: {problem}")

    async def create(gateway: Gateway) -> Any:
        chosen_name = name or (f"Merchant {pid}" if pid is not None else "Merchant")
        return await gateway.merchants.create(chosen_name, refund_enabled=allow_refund, pid=pid, key=key)

    try:
        credentials = with_gateway(Settings(), audited("merchant.create", lambda made: f"merchant:{made.pid}", create))
    except MerchantRefused as refusal:
        raise fail(f"refused: {refusal}") from None
    if key is not None:
        # The operator typed the key: it is not printed back.
        typer.echo(json.dumps({"pid": credentials.pid}) if as_json else f"pid: {credentials.pid}\nkey: as given")
    elif as_json:
        typer.echo(json.dumps({"pid": credentials.pid, "key": credentials.key}))
    else:
        typer.echo(f"pid: {credentials.pid}\nkey: {credentials.key}")


@merchant_app.command("list")
def merchant_list() -> None:
    """List merchants."""
    for merchant in with_gateway(Settings(), lambda gw: gw.merchants.list()):
        row = _merchant_row(merchant)
        typer.echo(f"{row['pid']:>6}  {row['status']:<8}  {row['balance']:>12}  {row['name']}")


@merchant_app.command("show")
def merchant_show(pid: int) -> None:
    """Show one merchant (never its key)."""

    async def load(gateway: Gateway) -> tuple[Merchant, list[str] | None]:
        merchant = await gateway.merchants.get(pid)
        ids = merchant.channel_accounts
        return merchant, await gateway.accounts.names_of(ids) if ids is not None else None

    try:
        merchant, account_list = with_gateway(Settings(), load)
    except MerchantNotFound:
        raise fail(f"no merchant {pid}") from None
    for field, value in _merchant_row(merchant, account_list).items():
        typer.echo(f"{field}: {value}")


@merchant_app.command("set")
def merchant_set(
    pid: int,
    notify_retry_delays: str | None = typer.Option(
        None, help="Seconds between notification attempts, e.g. 15,60,180,600; 'default' for the gateway's."
    ),
    refund: bool | None = typer.Option(None, "--allow-refund/--no-refund", help="Refunds through api.php."),
    dialects: str | None = typer.Option(
        None,
        help=f"Dialects the merchant may use, others refused: 'all', or some of {','.join(DIALECT_NAMES)}.",
    ),
    pay_types: str | None = typer.Option(None, help="Pay types the merchant may use, e.g. alipay,wxpay; 'all'."),
    channel_accounts: str | None = typer.Option(
        None, help="Channel accounts (names) that serve the merchant, e.g. up-1,up-2; 'all'."
    ),
    mapi_answer: str | None = typer.Option(
        None, help="mapi.php answers: 'channel' (what the channel offers) or 'payurl' (always a payurl; SSPanel-UIM)."
    ),
) -> None:
    """Change a merchant's settings."""
    from openepay.admin import merchant_settings as read
    from openepay.admin.merchant_settings import SettingRefused

    values: dict[str, Any] = {}
    try:
        if dialects is not None:
            values["dialects"] = read.dialect_list(dialects)
        if pay_types is not None:
            values["pay_types"] = read.pay_type_list(pay_types)
        if mapi_answer is not None:
            values["mapi_answer"] = read.mapi_answer(mapi_answer)
        if notify_retry_delays is not None:
            values["notify_retry_delays"] = read.retry_delays(notify_retry_delays)
    except SettingRefused as refusal:
        raise fail(str(refusal)) from None
    if refund is not None:
        values["refund_enabled"] = refund
    if not values and channel_accounts is None:
        raise fail("nothing to change")

    async def change(gateway: Gateway) -> None:
        if channel_accounts is not None:
            values["channel_accounts"] = await read.account_ids(gateway, channel_accounts)
        await gateway.merchants.update(pid, **values)

    try:
        with_gateway(Settings(), audited("merchant.set", f"merchant:{pid}", change))
    except MerchantNotFound:
        raise fail(f"no merchant {pid}") from None
    except AccountError as exc:
        raise fail(exc.message) from None
    typer.echo(f"merchant {pid} updated")


@merchant_app.command("rotate-key")
def merchant_rotate_key(pid: int) -> None:
    """Replace the merchant's key and print the new one (running gateways refuse the old one within a second)."""
    _change_key(pid, None)


@merchant_app.command("set-key")
def merchant_set_key(
    pid: int,
    key: str | None = typer.Option(
        None, help="The key the shop already has: 16-64 letters and digits. Omitted: a new random key, shown once."
    ),
) -> None:
    """Set the merchant's key (running gateways refuse the old one within a second)."""
    _change_key(pid, key)


def _change_key(pid: int, key: str | None) -> None:
    from openepay.core.merchants import MerchantRefused, key_problem, new_key

    if key is not None and (problem := key_problem(key)):
        raise fail(f"refused: {problem}")
    chosen = key if key is not None else new_key()
    try:
        action = "merchant.rotate_key" if key is None else "merchant.set_key"
        replace = audited(action, f"merchant:{pid}", lambda gw: gw.merchants.set_key(pid, chosen), note=REPLACED)
        with_gateway(Settings(), replace)
    except MerchantNotFound:
        raise fail(f"no merchant {pid}") from None
    except MerchantRefused as refusal:
        raise fail(f"refused: {refusal}") from None
    typer.echo(f"pid: {pid}\nkey: {'as given' if key is not None else chosen}")


@merchant_app.command("set-rsa")
def merchant_set_rsa(
    pid: int,
    public_key: Path = typer.Option(
        ..., "--public-key", help="The merchant's RSA public key: a PEM file, or the bare base64 Rainbow shows."
    ),
    rsa_only: bool | None = typer.Option(
        None, "--rsa-only/--allow-md5", help="Refuse (or accept again) MD5-signed epay V2 requests."
    ),
) -> None:
    """Set the RSA public key that checks the merchant's epay V2 (/api/...) signatures."""
    from openepay.admin.merchant_settings import SettingRefused, rsa_public_key
    from openepay.protocols.epay_v2.signing import stored_public_key

    try:
        text = public_key.read_text()
    except (OSError, UnicodeDecodeError) as exc:
        raise fail(f"cannot read {public_key}: {exc}") from None
    try:
        pem = rsa_public_key(text)
    except SettingRefused as refusal:
        raise fail(str(refusal)) from None
    key = stored_public_key(pem)
    values: dict[str, Any] = {"rsa_public_key": pem}
    if rsa_only is not None:
        values["rsa_only"] = rsa_only

    async def store(gateway: Gateway) -> Merchant:
        await gateway.merchants.update(pid, **values)
        return await gateway.merchants.get(pid)

    try:
        merchant = with_gateway(Settings(), audited("merchant.set_rsa", f"merchant:{pid}", store))
    except MerchantNotFound:
        raise fail(f"no merchant {pid}") from None
    typer.echo(f"merchant {pid}: RSA public key set ({key.key_size} bits)")
    typer.echo(f"MD5-signed V2 requests: {'refused (RSA only)' if merchant.rsa_only else 'accepted'}")


@platform_app.command("public-key")
def platform_public_key(
    as_base64: bool = typer.Option(False, "--base64", help="Only the base64 body, as Rainbow's SDK config takes it."),
) -> None:
    """Print the gateway's epay V2 public key (created on first use), for merchants to verify our signatures."""
    from openepay.protocols.epay_v2.platform_key import platform_key
    from openepay.secretbox import SecretBoxError

    try:
        key = with_gateway(Settings(), lambda gw: platform_key(gw.db, gw.box))
    except SecretBoxError as exc:
        raise fail(f"cannot open the stored epay V2 platform key: {exc}") from None
    typer.echo(key.public_base64 if as_base64 else key.public_pem.rstrip("\n"))


def _set_status(pid: int, status: MerchantStatus) -> None:
    from openepay.admin import merchant_actions
    from openepay.admin.audit import CLI

    try:
        with_gateway(Settings(), lambda gw: merchant_actions.set_status(gw, pid, status, CLI))
    except MerchantNotFound:
        raise fail(f"no merchant {pid}") from None
    typer.echo(f"merchant {pid} is {status}")


@merchant_app.command("disable")
def merchant_disable(pid: int) -> None:
    """Stop the merchant from taking payments."""
    _set_status(pid, MerchantStatus.DISABLED)


@merchant_app.command("enable")
def merchant_enable(pid: int) -> None:
    """Let a disabled merchant take payments again."""
    _set_status(pid, MerchantStatus.ACTIVE)


def _order_summary(order: Order) -> str:
    return (
        f"{order.trade_no}  {order.status:<18}  {format_yuan(order.pay_amount_fen):>10}  "
        f"{order.merchant_pid:>6}  {order.out_trade_no}"
    )


@order_app.command("show")
def order_show(
    number: str = typer.Argument(..., metavar="TRADE_NO", help="Our trade number, or with --merchant the shop's own."),
    merchant: int | None = typer.Option(
        None, help="Read NUMBER as this merchant's order number (out_trade_no), as the shop shows it."
    ),
) -> None:
    """Show an order, its notifications and every delivery attempt."""
    from openepay.core.orders import find_merchant_order

    async def load(gateway: Gateway) -> tuple[Order | None, list[NotifyTask], list[NotifyAttempt], str]:
        if merchant is None:
            order = await get_order(gateway.db, number)
        else:
            order = await find_merchant_order(gateway.db, merchant, out_trade_no=number)
        if order is None:
            return None, [], [], ""
        account = (
            "built-in"
            if order.channel_account_id is None
            else (await gateway.accounts.names_of([order.channel_account_id]))[0]
        )
        async with gateway.db.session() as session:
            tasks = list((await session.scalars(select(NotifyTask).where(NotifyTask.order_id == order.id))).all())
            attempts = list(
                (
                    await session.scalars(
                        select(NotifyAttempt)
                        .where(NotifyAttempt.task_id.in_([task.id for task in tasks]))
                        .order_by(NotifyAttempt.started_at)
                    )
                ).all()
            )
        return order, tasks, attempts, account

    order, tasks, attempts, account = with_gateway(Settings(), load)
    if order is None and merchant is not None:
        raise fail(f"merchant {merchant} has no order {number}")
    if order is None:
        raise fail(f"no order {number} (for the shop's own order number add --merchant PID)")
    fields = {
        "trade_no": order.trade_no,
        "out_trade_no": order.out_trade_no,
        "merchant": order.merchant_pid,
        "dialect": order.dialect,
        "status": order.status + (" (paid late)" if order.paid_late else ""),
        "type": order.pay_type,
        "channel": f"{order.channel} (account {account})" if order.channel else None,
        "money": f"{order.money} (amount {format_yuan(order.amount_fen)}, to pay {format_yuan(order.pay_amount_fen)})",
        "refunded": format_yuan(order.refunded_fen),
        "name": order.name,
        "notify_url": order.notify_url,
        "return_url": order.return_url,
        "created_at": order.created_at.isoformat(timespec="seconds"),
        "expires_at": order.expires_at.isoformat(timespec="seconds"),
        "paid_at": order.paid_at.isoformat(timespec="seconds") if order.paid_at else None,
        "channel_trade_no": order.channel_trade_no,
        "buyer": order.buyer,
    }
    for field, value in fields.items():
        typer.echo(f"{field}: {value if value is not None else ''}")
    for line in _routing_lines(order.routing):
        typer.echo(line)
    for task in tasks:
        typer.echo(
            f"notification {task.event}: {task.status}, {task.attempts} attempt(s) this round, "
            f"next at {task.next_attempt_at.isoformat(timespec='seconds')}"
            + (f", last error: {task.last_error}" if task.last_error else "")
        )
    for attempt in attempts:
        outcome = "delivered" if attempt.delivered else (attempt.error_class or "failed")
        typer.echo(
            f"  #{attempt.number} {attempt.started_at.isoformat(timespec='seconds')} {attempt.target_host} "
            f"HTTP {attempt.http_status or '-'} {attempt.latency_ms}ms {outcome} {attempt.body_head or ''!r}"
        )


def _routing_lines(routing: dict[str, Any] | None) -> list[str]:
    """What routing considered for the order's payment, and what became of each account."""
    if not routing:
        return []
    lines = [f"routing: {routing.get('pay_type')} by {routing.get('strategy')} at {routing.get('at')}"]
    for entry in routing.get("considered", []):
        lines.append(f"  {entry['outcome']:<8} {entry['account']} ({entry['channel']}): {entry['reason']}")
    return lines


@order_app.command("list")
def order_list(
    merchant: int | None = typer.Option(None, help="Only this merchant's orders (pid)."),
    status: OrderStatus | None = typer.Option(None, help="Only orders in this status."),
    since: str | None = typer.Option(None, help="Created at or after: 2026-11-21, 2026-11-21 08:00, or 6h, 2d ago."),
    until: str | None = typer.Option(None, help="Created before: a date (its start), a time, or 6h, 2d ago."),
    limit: int = typer.Option(50, help="Show at most this many, newest first (the totals count every match)."),
) -> None:
    """List orders, newest first, with the count and amounts of every order that matches."""
    from sqlalchemy import func

    settings = Settings()
    conditions = []
    if merchant is not None:
        conditions.append(Order.merchant_pid == merchant)
    if status is not None:
        conditions.append(Order.status == status)
    for text, column_test in ((since, Order.created_at.__ge__), (until, Order.created_at.__lt__)):
        if text is None:
            continue
        try:
            conditions.append(column_test(parse_moment(text, settings.zone)))
        except ValueError:
            raise fail(f"cannot read the time {text!r}: give 2026-11-21, 2026-11-21 08:00, or 6h, 2d") from None

    async def load(gateway: Gateway) -> tuple[list[Order], tuple[int, int | None, int, int | None]]:
        paid = Order.paid_at.is_not(None)
        async with gateway.db.session() as session:
            orders = list(
                (await session.scalars(select(Order).where(*conditions).order_by(Order.id.desc()).limit(limit))).all()
            )
            totals = (
                await session.execute(
                    select(
                        func.count(),
                        func.sum(Order.amount_fen),
                        func.count().filter(paid),
                        func.sum(Order.paid_fen).filter(paid),
                    ).where(*conditions)
                )
            ).one()
        return orders, tuple(totals)

    # PostgreSQL sums BIGINT as NUMERIC: a Decimal of whole fen.
    orders, (count, amount, paid_count, paid_amount) = with_gateway(settings, load)
    typer.echo(f"{'trade_no':<26}  {'status':<18}  {'to pay':>10}  {'pid':>6}  out_trade_no")
    for order in orders:
        typer.echo(_order_summary(order))
    shown = f" (showing the newest {len(orders)})" if len(orders) < count else ""
    typer.echo(
        f"total: {count} order(s), {format_yuan(int(amount or 0))} yuan; "
        f"paid: {paid_count} order(s), {format_yuan(int(paid_amount or 0))} yuan{shown}"
    )


@order_app.command("pay")
def order_pay(trade_no: str) -> None:
    """Pay a sandbox order, through the same path a real upstream confirmation takes."""
    from openepay.channels.sandbox.simulator import SandboxPaymentFailed, SandboxRefusal, simulate_buyer_payment

    async def pay(gateway: Gateway) -> Order:
        return await simulate_buyer_payment(gateway, trade_no)

    try:
        order = with_gateway(Settings(), audited("order.sandbox_pay", f"order:{trade_no}", pay))
    except (SandboxRefusal, SandboxPaymentFailed) as refusal:
        raise fail(str(refusal)) from None
    typer.echo(f"{order.trade_no} is {order.status}")


def parse_moment(text: str, zone: ZoneInfo) -> datetime:
    """``2026-11-21 08:00`` (in OPENEPAY_TIMEZONE unless it says otherwise) or ``90m``, ``6h``, ``2d`` ago."""
    units = {"s": 1, "m": 60, "h": 3600, "d": 86400}
    if text[-1:] in units and text[:-1].isdigit():
        return utcnow() - timedelta(seconds=int(text[:-1]) * units[text[-1]])
    moment = datetime.fromisoformat(text)
    return moment if moment.tzinfo else moment.replace(tzinfo=zone)


@notify_app.command("resend")
def notify_resend(
    trade_no: str | None = typer.Argument(None, help="One order's notification."),
    failed_since: str | None = typer.Option(
        None, help="Every notification that gave up since then: an ISO time or 90m, 6h, 2d."
    ),
    merchant: int | None = typer.Option(None, help="With --failed-since: only this merchant's (pid)."),
) -> None:
    """Queue notifications again, now, with a fresh retry schedule."""
    from openepay.admin.audit import CLI
    from openepay.admin.order_actions import ActionRefused, resend_notification
    from openepay.notify.outbox import resend_failed

    settings = Settings()
    if (trade_no is None) == (failed_since is None):
        raise fail("give either a TRADE_NO or --failed-since")
    if trade_no is not None:
        try:
            count = with_gateway(settings, lambda gw: resend_notification(gw, trade_no, CLI))
        except ActionRefused:
            raise fail(f"order {trade_no} has no notification to resend (is it paid?)") from None
        typer.echo(f"queued {count} notification(s) for {trade_no}")
        return
    try:
        since = parse_moment(failed_since, settings.zone)
    except ValueError:
        raise fail(f"cannot read the time {failed_since!r}") from None
    again = audited(
        "notify.resend_failed",
        "notify:failed",
        lambda gw: resend_failed(gw.db, since=since, merchant_pid=merchant),
        note=lambda queued: {"since": since.isoformat(), "merchant": merchant, "queued": queued},
    )
    count = with_gateway(settings, again)
    typer.echo(f"queued {count} failed notification(s) again")


@notify_app.command("status")
def notify_status() -> None:
    """What the notification queue holds, and which merchants are paused (breaker open) and until when."""
    from openepay.notify.status import notify_overview

    settings = Settings()
    overview = with_gateway(settings, lambda gw: notify_overview(gw.db))
    now = utcnow()

    def local(moment: datetime) -> str:
        moment = moment if moment.tzinfo else moment.replace(tzinfo=now.tzinfo)
        return moment.astimezone(settings.zone).strftime("%Y-%m-%d %H:%M:%S")

    oldest = ""
    if overview.oldest_due is not None:
        waited = now - (
            overview.oldest_due if overview.oldest_due.tzinfo else overview.oldest_due.replace(tzinfo=now.tzinfo)
        )
        oldest = f", the oldest due since {local(overview.oldest_due)} ({int(waited.total_seconds())}s)"
    typer.echo(f"due now    : {overview.due}{oldest}")
    typer.echo(f"retry later: {overview.scheduled}")
    typer.echo(f"gave up    : {overview.failed} (openepay notify resend --failed-since 1d sends them again)")
    typer.echo(f"workers    : {overview.workers} alive")
    if not overview.paused:
        typer.echo("paused merchants: none")
        return
    typer.echo(f"paused merchants ({settings.timezone}):")
    for paused in overview.paused:
        typer.echo(
            f"  {paused.pid:>6}  until {local(paused.until)}  after {paused.consecutive_failures} failure(s) in a row,"
            f" {paused.waiting} notification(s) waiting"
        )


@notify_app.command("test")
def notify_test(
    pid: int = typer.Argument(..., help="The merchant whose key signs the message."),
    url: str = typer.Argument(..., help="The endpoint to test, e.g. https://shop.example.com/notify.php"),
    dialect: str = typer.Option("epay", help="The merchant's protocol."),
) -> None:
    """Send one signed, clearly marked test message, show what the endpoint answered and what that means."""
    from openepay.notify.diagnosis import TestNotificationResult, send_test_notification
    from openepay.notify.http import SafeHttpClient

    async def send(gateway: Gateway) -> TestNotificationResult:
        merchant_row = await gateway.merchants.get(pid)
        messages = gateway.dialects.named(dialect)
        client = SafeHttpClient.for_settings(gateway.settings)
        try:
            return await send_test_notification(
                messages, client, dialect=dialect, pid=pid, key=gateway.merchants.key_of(merchant_row), url=url
            )
        finally:
            await client.aclose()

    try:
        result = with_gateway(Settings(), send)
    except MerchantNotFound:
        raise fail(f"no merchant {pid}") from None
    except KeyError:
        raise fail(f"unknown dialect {dialect!r}") from None
    typer.echo(f"target     : {result.target_host}")
    typer.echo(f"HTTP status: {result.status if result.status is not None else '-'}")
    typer.echo(f"latency    : {result.latency_ms} ms")
    typer.echo(f"answer     : '{result.body_head}'")
    if result.error_class:
        typer.echo(f"error      : {result.error_class}: {result.error_detail}")
    typer.echo(
        "result     : "
        + ("acknowledged (the answer counts as received)" if result.acknowledged else "NOT acknowledged")
    )
    typer.echo(f"diagnosis  : {result.diagnosis.en}")
    if not result.acknowledged:
        raise typer.Exit(1)


def main() -> None:
    # Every text argument may end up in the database; bytes that are not UTF-8 reach Python as
    # lone surrogates, which no database driver can encode (NUL cannot be in an argument at all).
    unreadable = next((argument for argument in sys.argv[1:] if not storable(argument)), None)
    if unreadable is not None:
        typer.secho(f"openepay: this argument is not UTF-8 text: {unreadable!r}", fg=typer.colors.RED, err=True)
        raise SystemExit(2)
    from pydantic import ValidationError

    try:
        app()
    except ValidationError as exc:
        # Settings from the environment that cannot be read: name them, never echo their values.
        for error in exc.errors(include_input=False, include_url=False):
            field = ".".join(str(part) for part in error["loc"])
            typer.secho(f"OPENEPAY_{field.upper()}: {error['msg']}", fg=typer.colors.RED, err=True)
        raise SystemExit(1) from None

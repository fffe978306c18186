"""``openepay qrpool``: receiving accounts, their codes, and the phones that watch them.

Every write goes through ``openepay.admin.qrpool_actions``, as the console's do, and is written
to the audit log as ``cli:<OS user>``.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar
from urllib.parse import urlsplit

import typer

from openepay.admin import qrpool_actions
from openepay.admin.audit import CLI
from openepay.channels.qrpool import accounts as qr
from openepay.channels.qrpool.accounts import QrPoolError
from openepay.cli_runtime import fail, with_gateway
from openepay.config import Settings
from openepay.core.money import MoneyError, format_yuan, parse_yuan
from openepay.db.models import QrAccount, QrCode, QrDevice
from openepay.db.types import utcnow

if TYPE_CHECKING:
    from openepay.gateway import Gateway

qrpool_app = typer.Typer(
    help="Personal QR codes matched by amount: receiving accounts, codes and phones.", no_args_is_help=True
)
account_app = typer.Typer(help="Receiving accounts (one personal wallet each).", no_args_is_help=True)
code_app = typer.Typer(help="An account's receive codes.", no_args_is_help=True)
device_app = typer.Typer(help="The phones that report an account's incoming payments.", no_args_is_help=True)
qrpool_app.add_typer(account_app, name="account")
qrpool_app.add_typer(code_app, name="code")
qrpool_app.add_typer(device_app, name="device")

T = TypeVar("T")


def _run(action: Callable[[Gateway], Awaitable[T]]) -> T:
    try:
        return with_gateway(Settings(), action)
    except QrPoolError as exc:
        raise fail(exc.message) from None


def _moment(at: datetime | None, settings: Settings, now: datetime) -> str:
    if at is None:
        return "never"
    local = at.astimezone(settings.zone).strftime("%Y-%m-%d %H:%M:%S")
    return f"{local} ({int((now - at).total_seconds())} s ago)"


def _device_line(device: QrDevice, settings: Settings, now: datetime) -> str:
    state = "" if device.enabled else "  DISABLED"
    return (
        f"device {device.id} {device.name!r}: last heartbeat {_moment(device.last_heartbeat_at, settings, now)}, "
        f"last push {_moment(device.last_push_at, settings, now)}{state}"
    )


@account_app.command("add")
def account_add(
    name: str,
    pay_type: str = typer.Option(..., "--type", help="wxpay, alipay or qqpay."),
) -> None:
    """Add a receiving account; give it codes and a phone before it takes orders."""
    account = _run(lambda gw: qrpool_actions.add_account(gw, name, pay_type, CLI))
    typer.echo(f"account {account.id} {account.name!r} ({account.pay_type}) added")


@account_app.command("list")
def account_list() -> None:
    """List accounts, whether each takes orders now, and when its phones were last heard from."""

    async def load(gw: Gateway) -> tuple[Settings, list[QrAccount], list[QrDevice], list[QrCode]]:
        accounts = await qr.list_accounts(gw.db)
        codes = [code for account in accounts for code in await qr.list_codes(gw.db, account.id)]
        return gw.settings, accounts, await qr.list_devices(gw.db), codes

    settings, accounts, devices, codes = _run(load)
    now = utcnow()
    timeout = timedelta(seconds=settings.qrpool_heartbeat_timeout)
    for account in accounts:
        own = [device for device in devices if device.account_id == account.id]
        if not account.enabled:
            state = "disabled"
        elif any(qr.is_live(device, timeout, now) for device in own):
            state = "live"
        else:
            state = f"paused (no phone heard from in the last {int(timeout.total_seconds())} s)"
        code_count = sum(1 for code in codes if code.account_id == account.id)
        typer.echo(f"{account.id:>4}  {account.name}  {account.pay_type}  {code_count} code(s)  {state}")
        for device in own:
            typer.echo("      " + _device_line(device, settings, now))


def _set_account(name: str, enabled: bool) -> None:
    async def change(gw: Gateway) -> QrAccount:
        account = await qr.find_account(gw.db, name)
        return await qrpool_actions.set_account_enabled(gw, account.id, enabled, CLI)

    account = _run(change)
    typer.echo(f"account {account.name!r} {'enabled' if enabled else 'disabled'}")


@account_app.command("disable")
def account_disable(name: str) -> None:
    """Stop giving the account's codes to new orders (amounts already held keep matching payments)."""
    _set_account(name, False)


@account_app.command("enable")
def account_enable(name: str) -> None:
    """Give the account's codes to new orders again."""
    _set_account(name, True)


@code_app.command("add")
def code_add(
    account: str,
    content: str | None = typer.Option(None, help="The code's decoded text (wxp://…, https://qr.alipay.com/…)."),
    image: Path | None = typer.Option(None, help="A picture of the code (a screenshot of the wallet's 收款码)."),
    amount: str | None = typer.Option(
        None, help="The amount fixed in the code, e.g. 9.90; leave out for the generic code (payer types it)."
    ),
) -> None:
    """Add a receive code to an account, as its content or as an image to decode."""
    from openepay.channels.qrpool.qrdecode import decode_qr_image

    if (content is None) == (image is None):
        raise fail("give exactly one of --content or --image")
    try:
        amount_fen = parse_yuan(amount) if amount is not None else None
    except MoneyError as exc:
        raise fail(f"--amount: {exc}") from None
    try:
        text = content if content is not None else decode_qr_image(image)  # type: ignore[arg-type]
    except QrPoolError as exc:
        raise fail(exc.message) from None

    async def add(gw: Gateway) -> tuple[QrAccount, QrCode]:
        found = await qr.find_account(gw.db, account)
        return found, await qrpool_actions.add_code(gw, found.id, text, amount_fen, CLI)

    found, code = _run(add)
    kind = "generic code" if code.amount_fen is None else f"code for {format_yuan(code.amount_fen)}"
    typer.echo(f"{kind} added to {found.name!r}: {code.content}")


@code_app.command("delete")
def code_delete(
    account: str,
    amount: str | None = typer.Option(None, help="The amount of the fixed code to delete, e.g. 9.90."),
    generic: bool = typer.Option(False, "--generic", help="Delete the account's generic code instead."),
) -> None:
    """Delete one of an account's codes (orders already shown it keep their amount until they end)."""
    if (amount is None) == (not generic):
        raise fail("give exactly one of --amount or --generic")
    try:
        amount_fen = parse_yuan(amount) if amount is not None else None
    except MoneyError as exc:
        raise fail(f"--amount: {exc}") from None

    async def delete(gw: Gateway) -> tuple[QrAccount, QrCode]:
        found = await qr.find_account(gw.db, account)
        code = next((code for code in await qr.list_codes(gw.db, found.id) if code.amount_fen == amount_fen), None)
        if code is None:
            raise QrPoolError(f"{found.name!r} has no {'generic code' if generic else f'code for {amount}'}")
        return found, await qrpool_actions.delete_code(gw, found.id, code.id, CLI)

    found, code = _run(delete)
    kind = "generic code" if code.amount_fen is None else f"code for {format_yuan(code.amount_fen)}"
    typer.echo(f"{kind} deleted from {found.name!r}")


@code_app.command("list")
def code_list(account: str) -> None:
    """List an account's codes: the generic one first, then fixed amounts."""

    async def load(gw: Gateway) -> list[QrCode]:
        found = await qr.find_account(gw.db, account)
        return await qr.list_codes(gw.db, found.id)

    for code in _run(load):
        amount = "generic" if code.amount_fen is None else format_yuan(code.amount_fen)
        typer.echo(f"{amount:>10}  {code.content}")


@device_app.command("add")
def device_add(
    account: str,
    name: str = typer.Option("phone", help="A name to tell the account's phones apart."),
    host: str | None = typer.Option(
        None, help="The host the phone reaches us at (host or host:port), if not OPENEPAY_PUBLIC_URL's."
    ),
) -> None:
    """Add a phone to an account and print its key and the pairing code the V免签 app scans (shown once)."""

    async def add(gw: Gateway) -> tuple[str, QrAccount, QrDevice, str, str | None]:
        paired_host = qr.pairing_host(gw.settings.public_url, host)
        found = await qr.find_account(gw.db, account)
        device, key = await qrpool_actions.add_device(gw, found.id, name, CLI)
        return paired_host, found, device, key, gw.settings.public_url

    paired_host, found, device, key, public_url = _run(add)
    pairing = qr.pairing_string(paired_host, key)
    typer.echo(f"device {device.id} {device.name!r} added to {found.name!r}")
    typer.echo(f"key: {key}")
    typer.echo(f"pairing: {pairing}")
    import segno

    segno.make_qr(pairing).terminal(compact=True)
    typer.echo("Scan this in the V免签 monitor app (扫码配置). The key is shown this once.")
    typer.echo(f"The app calls http://{paired_host}/appHeart and /appPush in plain HTTP: that host must answer them.")
    if host is None and public_url and urlsplit(public_url).scheme == "https":
        typer.echo("OPENEPAY_PUBLIC_URL is https: make sure plain HTTP on that host reaches the gateway too.")


@device_app.command("list")
def device_list(account: str) -> None:
    """List an account's phones and when each was last heard from (never their keys)."""

    async def load(gw: Gateway) -> tuple[Settings, list[QrDevice]]:
        found = await qr.find_account(gw.db, account)
        return gw.settings, await qr.list_devices(gw.db, found.id)

    settings, devices = _run(load)
    now = utcnow()
    for device in devices:
        typer.echo(_device_line(device, settings, now))


@device_app.command("disable")
def device_disable(device_id: int) -> None:
    """Revoke a phone's key at once (a lost or replaced phone); its reports are refused from now on."""
    _run(lambda gw: qrpool_actions.revoke_device(gw, device_id, CLI))
    typer.echo(f"device {device_id} disabled")

"""``openepay merchant login``: a merchant's sign-in for the merchant portal (/merchant)."""

from __future__ import annotations

import secrets
from typing import TYPE_CHECKING

import typer

from openepay.cli_runtime import fail, with_gateway
from openepay.cli_signins import make_sign_in, strong_password
from openepay.config import Settings

if TYPE_CHECKING:
    from openepay.db.models import MerchantUser
    from openepay.gateway import Gateway


def merchant_login(
    pid: int = typer.Argument(..., help="The merchant the sign-in is for."),
    username: str = typer.Option(..., "--username", "--email", help="What the merchant signs in with (an e-mail)."),
    password_stdin: bool = typer.Option(
        False, "--password-stdin", help="Read the password from the first line of standard input."
    ),
) -> None:
    """Give a merchant a portal sign-in. Without --password-stdin a one-time password is made and
    printed this once: hand it over and let the merchant keep it (there is no default password)."""
    from openepay.admin.audit import CLI
    from openepay.core.merchants import MerchantNotFound
    from openepay.web.merchant.portal import Portal

    password = strong_password(password_stdin, lambda: secrets.token_urlsafe(12))

    async def create(gateway: Gateway) -> MerchantUser:
        return await Portal.for_gateway(gateway).users.create(pid, username, password, CLI)

    try:
        user = make_sign_in(create)
    except MerchantNotFound:
        raise fail(f"no merchant {pid}") from None
    typer.echo(f"merchant {pid}: portal sign-in {user.username} created; sign in at /merchant/login")
    if not password_stdin:
        typer.echo(f"password (shown this once): {password}")


def merchant_logins(pid: int = typer.Argument(..., help="The merchant whose sign-ins to list.")) -> None:
    """List a merchant's portal sign-ins and whether they use TOTP."""
    from openepay.web.merchant.portal import Portal

    for user in with_gateway(Settings(), lambda gw: Portal.for_gateway(gw).users.of_merchant(pid)):
        state = "disabled" if user.disabled else "active"
        typer.echo(f"{user.username:<32} {state:<9} totp={'on' if user.totp_sealed else 'off'}")

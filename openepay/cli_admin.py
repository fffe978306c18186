"""``openepay admin``: the operator console's users, from the command line (the first one can only be made here)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import typer

from openepay.admin.roles import Role
from openepay.cli_runtime import with_gateway
from openepay.cli_signins import make_sign_in, strong_password
from openepay.config import Settings

if TYPE_CHECKING:
    from openepay.db.models import AdminUser
    from openepay.gateway import Gateway

admin_app = typer.Typer(help="Operator console users (the web console at /admin).", no_args_is_help=True)


@admin_app.command("create")
def admin_create(
    username: str = typer.Argument(..., help="The name to sign in with."),
    role: Role = typer.Option(..., help="administrator, operator or viewer."),
    password_stdin: bool = typer.Option(
        False, "--password-stdin", help="Read the password from the first line of standard input instead of asking."
    ),
) -> None:
    """Create a console user; the password is asked for (or read with --password-stdin), never made up."""
    from openepay.admin.audit import CLI
    from openepay.web.admin.console import Console

    password = strong_password(
        password_stdin, lambda: typer.prompt("Password", hide_input=True, confirmation_prompt=True)
    )

    async def create(gateway: Gateway) -> AdminUser:
        return await Console.for_gateway(gateway).users.create(username, password, role, CLI)

    user = make_sign_in(create)
    typer.echo(f"console user {user.username} created ({user.role}); sign in at /admin/login")


@admin_app.command("list")
def admin_list() -> None:
    """List console users, their roles and whether they use TOTP."""
    from openepay.web.admin.console import Console

    for user in with_gateway(Settings(), lambda gw: Console.for_gateway(gw).users.list()):
        state = "disabled" if user.disabled else "active"
        typer.echo(f"{user.username:<24} {user.role:<14} {state:<9} totp={'on' if user.totp_sealed else 'off'}")

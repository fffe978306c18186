"""What every ``openepay`` command needs: a clear failure, a ready database, a gateway for one action.

Shared by the main CLI and the sub-commands that live with their channel (``openepay qrpool``).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TypeVar

import typer
import uvloop

from openepay import logs
from openepay.config import ConfigurationError, Settings
from openepay.gateway import Gateway

T = TypeVar("T")


def fail(message: str) -> typer.Exit:
    typer.secho(message, fg=typer.colors.RED, err=True)
    return typer.Exit(1)


def prepare(settings: Settings) -> None:
    """Migrate SQLite on start; on other databases insist the schema is current."""
    from openepay.db import migrate

    logs.configure(settings.log_level, settings.log_format)
    try:
        settings.resolve_secret_key()
    except ConfigurationError as exc:
        raise fail(str(exc)) from None
    if settings.is_sqlite:
        migrate.upgrade(settings.database_url)
    elif not migrate.is_current(settings.database_url):
        raise fail("the database schema is not current: run `openepay migrate` first")


def with_gateway(settings: Settings, action: Callable[[Gateway], Awaitable[T]]) -> T:
    prepare(settings)

    async def run() -> T:
        gateway = Gateway.from_settings(settings)
        try:
            return await action(gateway)
        finally:
            await gateway.aclose()

    return uvloop.run(run())

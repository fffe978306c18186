"""What every ``openepay`` command needs before it acts: the right gateway, a current schema, a proven key.

Shared by the main CLI and the sub-commands that live with their channel (``openepay qrpool``).
Each step fails with one line that says what to change, never a traceback:

- the database URL is checked, and each command says which database and secret key it uses;
- only ``serve``, ``demo`` and ``migrate`` may create a gateway (a new SQLite file and its
  key file), and they say so; any other command run where there is none refuses, instead of
  quietly creating an empty gateway in whatever directory it was started from;
- the schema is checked with one query and migrated (SQLite) only when it is behind;
- ``OPENEPAY_SECRET_KEY`` is proven against the database before anything is sealed or answered.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, TypeVar

import typer

from openepay import logs
from openepay.config import ConfigurationError, Settings

if TYPE_CHECKING:
    from openepay.gateway import Gateway

T = TypeVar("T")
log = logging.getLogger("openepay")


def fail(message: str) -> typer.Exit:
    typer.secho(message, fg=typer.colors.RED, err=True)
    return typer.Exit(1)


def prepare(settings: Settings, *, creates: bool = False, service: bool = False, needs_key: bool = True) -> None:
    """Check the database and the secret key, migrating SQLite if it is behind.

    ``creates``: the command may make a new gateway (serve, demo, migrate). ``service``: a
    long-running process, which reports through the log rather than plain lines.
    ``needs_key``: ``migrate`` on PostgreSQL needs no secret key.
    """
    from openepay.db.urls import DatabaseUrlError, check, shown

    logs.configure(settings.log_level, settings.log_format, repeat_interval=settings.log_repeat_interval)
    try:
        check(settings.database_url)
        if needs_key and not settings.is_sqlite:
            settings.resolve_secret_key()
    except (ConfigurationError, DatabaseUrlError) as exc:
        raise fail(str(exc)) from None
    path = settings.sqlite_file
    new = path is not None and not path.exists()
    if new and not creates:
        raise fail(
            f"no gateway here: {path} does not exist. Run this where the gateway's database is, "
            "point OPENEPAY_DATABASE_URL at it, or create a new gateway with `openepay migrate`"
        )
    say = log.info if service else _note
    say(
        f"database: {f'{path} (SQLite)' if path else shown(settings.database_url)}{', new' if new else ''}"
        + (f"; secret key: {settings.secret_key_source}" if needs_key or settings.is_sqlite else "")
    )

    async def checks() -> None:
        await _bring_schema_up(settings, migrate_postgres=not needs_key, say=say)
        if settings.is_sqlite:
            await _ensure_secret_key(settings, creates=creates, required=needs_key, say=say)

    asyncio.run(_opened(settings, checks()))


def with_gateway(
    settings: Settings, action: Callable[[Gateway], Awaitable[T]], *, creates: bool = False, service: bool = False
) -> T:
    """Run ``action`` on a gateway whose database is ready and whose secret key is proven."""
    prepare(settings, creates=creates, service=service)

    async def run() -> T:
        from openepay.gateway import Gateway

        gateway = await _opened(settings, Gateway.open(settings))
        try:
            return await action(gateway)
        finally:
            await gateway.aclose()

    if service:
        import uvloop

        return uvloop.run(run())
    return asyncio.run(run())


def _note(line: str) -> None:
    typer.secho(line, err=True, dim=True)


async def _opened(settings: Settings, opening: Awaitable[T]) -> T:
    from openepay.db.errors import explain
    from openepay.key_check import WrongSecretKey

    try:
        return await opening
    except WrongSecretKey:
        raise fail(
            f"the secret key ({settings.secret_key_source}) is not the one this database was written with; "
            "nothing was changed: start again with the key it was created with "
            "(OPENEPAY_SECRET_KEY, or OPENEPAY_SECRET_KEY_FILE)"
        ) from None
    except ConfigurationError as exc:
        raise fail(str(exc)) from None
    except Exception as exc:
        line = explain(exc, settings.database_url)
        if line is None:
            raise
        raise fail(line) from None


async def _bring_schema_up(settings: Settings, *, migrate_postgres: bool, say: Callable[[str], None]) -> None:
    from openepay.db import migrate

    revision = await migrate.current_revision(settings.database_url)
    head = migrate.head_revision()
    if revision == head:
        return
    if revision is not None and not migrate.is_known(revision):
        raise ConfigurationError(
            f"the database is at revision {revision}, which this version of OpenEpay does not know: "
            "it was migrated by a newer version; run that version"
        )
    if not settings.is_sqlite and not migrate_postgres:
        state = f"is at revision {revision}" if revision else "has no OpenEpay tables yet"
        raise ConfigurationError(
            f"the database {state} and this version needs {head}: run `openepay migrate` first"
            + ("" if revision else " (or is OPENEPAY_DATABASE_URL pointing at the wrong database?)")
        )
    await asyncio.to_thread(migrate.upgrade, settings.database_url)
    say(f"database migrated from {revision or 'nothing'} to revision {head}")


async def _ensure_secret_key(settings: Settings, *, creates: bool, required: bool, say: Callable[[str], None]) -> None:
    """On SQLite, a new gateway gets a new key file; an existing one must have its own."""
    from openepay.db import Database
    from openepay.key_check import holds_secrets

    try:
        settings.resolve_secret_key()
        return
    except ConfigurationError:
        if not creates or settings.secret_key_file.exists():
            raise
    db = Database(settings.database_url)
    try:
        if await holds_secrets(db):
            if not required:
                return
            raise ConfigurationError(
                f"no secret key for the gateway in {settings.sqlite_file}: {settings.secret_key_file.resolve()} "
                "is missing; set OPENEPAY_SECRET_KEY (or OPENEPAY_SECRET_KEY_FILE) to the key it was created with"
            )
    finally:
        await db.dispose()
    settings.create_secret_key_file()
    say(f"created a new secret key in {settings.secret_key_file.resolve()}: keep it with the database")

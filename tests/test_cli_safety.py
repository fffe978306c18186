"""The operator's mistakes are safe: a wrong secret key, a wrong database URL, the wrong directory.

Every command runs with only the settings the test gives it (a server in a process of its own). A
refused command prints one line saying what to change (never a traceback) and leaves the
database as it was.
"""

from __future__ import annotations

import asyncio
import json
import secrets
import sqlite3
import stat
import subprocess
import sys

import pytest
from alembic import command
from sqlalchemy import func, select, text
from sqlalchemy.engine import make_url

from openepay.app import create_app
from openepay.config import Settings
from openepay.db import Database, migrate
from openepay.db.models import KeyCheck, Merchant, PlatformKey
from openepay.key_check import WrongSecretKey
from openepay.secretbox import CHECK_CONTEXT, SecretBox
from tests.support.operator import error_lines, operator_env, run_openepay, run_openepay_process
from tests.support.postgres import pg_url
from tests.support.servers import free_port
from tests.support.settings import make_settings

RIGHT = "the-key-this-gateway-was-created-with"
WRONG = "a-key-typed-from-memory"
WRONG_KEY_LINE = "is not the one this database was written with"


async def rows(database_url: str, model: type) -> int:
    db = Database(database_url)
    try:
        async with db.session() as session:
            return await session.scalar(select(func.count()).select_from(model))
    finally:
        await db.dispose()


async def stored_check(database_url: str) -> str | None:
    db = Database(database_url)
    try:
        async with db.session() as session:
            return await session.scalar(select(KeyCheck.sealed))
    finally:
        await db.dispose()


def refused_in_one_line(result, expected: str) -> None:  # type: ignore[no-untyped-def]
    assert result.returncode == 1, (result.stdout, result.stderr)
    assert "Traceback" not in result.stderr
    [line] = error_lines(result)
    assert expected in line, line


async def test_a_wrong_secret_key_starts_nothing_and_changes_nothing(empty_database_url, tmp_path):
    url = empty_database_url
    assert (await run_openepay("migrate", cwd=tmp_path, database_url=url, secret_key=RIGHT)).returncode == 0
    created = await run_openepay(
        "merchant", "create", "--name", "Shop", "--json", cwd=tmp_path, database_url=url, secret_key=RIGHT
    )
    credentials = json.loads(created.stdout)
    check = await stored_check(url)
    assert check is not None

    for args in (
        ("merchant", "list"),
        ("merchant", "create", "--name", "Another"),
        ("merchant", "rotate-key", str(credentials["pid"])),
        ("platform", "public-key"),
        ("serve", "--port", str(free_port())),
        ("worker",),
        ("demo", "--port", str(free_port())),
    ):
        refused = await run_openepay(*args, cwd=tmp_path, database_url=url, secret_key=WRONG)
        refused_in_one_line(refused, WRONG_KEY_LINE)
        assert "OPENEPAY_SECRET_KEY" in refused.stderr

    # Nothing was sealed with the wrong key: no platform key pair, no new merchant, the same check.
    assert await rows(url, PlatformKey) == 0
    assert await rows(url, Merchant) == 1
    assert await stored_check(url) == check

    # ... so the right key still opens everything, and makes the V2 key pair now.
    listed = await run_openepay("merchant", "list", cwd=tmp_path, database_url=url, secret_key=RIGHT)
    assert listed.returncode == 0 and "Shop" in listed.stdout
    public = await run_openepay("platform", "public-key", cwd=tmp_path, database_url=url, secret_key=RIGHT)
    assert public.returncode == 0 and "BEGIN PUBLIC KEY" in public.stdout


async def test_a_database_from_before_key_checks_is_proven_against_its_secrets_then_remembered(
    empty_database_url, tmp_path
):
    """An install made by an earlier version: merchants and a platform key sealed, no key check."""
    url = empty_database_url
    assert (await run_openepay("migrate", cwd=tmp_path, database_url=url, secret_key=RIGHT)).returncode == 0
    for args in (("merchant", "create", "--name", "Old Shop"), ("platform", "public-key")):
        assert (await run_openepay(*args, cwd=tmp_path, database_url=url, secret_key=RIGHT)).returncode == 0
    db = Database(url)
    try:
        async with db.session() as session:
            await session.execute(KeyCheck.__table__.delete())
    finally:
        await db.dispose()
    await asyncio.to_thread(command.downgrade, migrate.alembic_config(url), "0003")

    # The upgrade itself needs no key; the first command after it proves the key it is given.
    assert (await run_openepay("migrate", cwd=tmp_path, database_url=url, secret_key=WRONG)).returncode == 0
    refused = await run_openepay("merchant", "list", cwd=tmp_path, database_url=url, secret_key=WRONG)
    refused_in_one_line(refused, WRONG_KEY_LINE)
    assert await stored_check(url) is None

    listed = await run_openepay("merchant", "list", cwd=tmp_path, database_url=url, secret_key=RIGHT)
    assert listed.returncode == 0 and "Old Shop" in listed.stdout
    remembered = await stored_check(url)
    assert remembered is not None
    SecretBox(RIGHT).prove(remembered, CHECK_CONTEXT)


async def test_two_keys_racing_to_claim_a_new_database_cannot_both_win(empty_database_url, tmp_path):
    url = empty_database_url
    assert (await run_openepay("migrate", cwd=tmp_path, database_url=url, secret_key=RIGHT)).returncode == 0
    # Two processes: one process runs its commands one at a time.
    results = await asyncio.gather(
        run_openepay_process("merchant", "create", "--name", "A", cwd=tmp_path, database_url=url, secret_key=RIGHT),
        run_openepay_process("merchant", "create", "--name", "B", cwd=tmp_path, database_url=url, secret_key=WRONG),
    )
    assert sorted(result.returncode for result in results) == [0, 1], [result.stderr for result in results]
    assert await rows(url, Merchant) == 1


async def test_a_wrong_secret_key_stops_the_web_app_before_it_answers(gateway, merchant, database_url):
    """However the app is started (``openepay serve``, or an ASGI server given ``create_app``)."""
    app = create_app(make_settings(database_url, secret_key=WRONG))
    with pytest.raises(WrongSecretKey):
        async with app.router.lifespan_context(app):
            pytest.fail("the app started with a wrong secret key")


async def test_a_command_where_there_is_no_gateway_creates_nothing_and_says_where_to_look(tmp_path):
    for args in (("merchant", "list"), ("order", "list"), ("platform", "public-key"), ("qrpool", "account", "list")):
        refused = await run_openepay(*args, cwd=tmp_path)
        refused_in_one_line(refused, f"no gateway here: {tmp_path / 'openepay.db'} does not exist")
        assert "OPENEPAY_DATABASE_URL" in refused.stderr and "openepay migrate" in refused.stderr
    assert list(tmp_path.iterdir()) == []


async def test_migrate_creates_a_new_gateway_with_private_files_and_says_so(tmp_path):
    created = await run_openepay("migrate", cwd=tmp_path)
    assert created.returncode == 0, created.stderr
    database, key_file = tmp_path / "openepay.db", tmp_path / "openepay.secret"
    assert f"database: {database} (SQLite), new; secret key: {key_file}" in created.stderr
    assert f"created a new secret key in {key_file}" in created.stderr
    assert stat.S_IMODE(database.stat().st_mode) == 0o600
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600

    # Every later command says which gateway it works on.
    listed = await run_openepay("merchant", "list", cwd=tmp_path)
    assert listed.returncode == 0
    assert listed.stderr.splitlines() == [f"database: {database} (SQLite); secret key: {key_file}"]


async def test_a_gateway_whose_key_file_is_missing_is_never_given_a_new_key(tmp_path):
    assert (await run_openepay("migrate", cwd=tmp_path)).returncode == 0
    assert (await run_openepay("merchant", "create", "--name", "Shop", cwd=tmp_path)).returncode == 0
    key_file = tmp_path / "openepay.secret"
    key_file.unlink()
    for args in (("merchant", "list"), ("serve", "--port", str(free_port())), ("migrate",)):
        refused = await run_openepay(*args, cwd=tmp_path)
        if args == ("migrate",):
            assert refused.returncode == 0, refused.stderr  # migrating needs no key, and makes none
        else:
            refused_in_one_line(refused, "no secret key")
            assert f"{key_file} " in refused.stderr and "OPENEPAY_SECRET_KEY" in refused.stderr
        assert not key_file.exists()


async def test_an_empty_secret_key_file_is_refused(tmp_path):
    assert (await run_openepay("migrate", cwd=tmp_path)).returncode == 0
    (tmp_path / "openepay.secret").write_text("\n")
    refused = await run_openepay("merchant", "list", cwd=tmp_path)
    refused_in_one_line(refused, "is empty")


def _pg(name: str, scheme: str = "postgresql", port: int | None = None, password: str | None = None) -> str:
    """The test server's URL for database ``name``, spelled as an operator might."""
    url = make_url(pg_url(name)).set(drivername=scheme, password=password)
    return url.set(port=port or url.port).render_as_string(hide_password=False)


async def test_postgres_urls_work_as_postgres_tools_write_them(pg_database, tmp_path):
    for scheme in ("postgresql", "postgres"):
        url = _pg(pg_database, scheme, password="hunter2")
        assert (await run_openepay("migrate", cwd=tmp_path, database_url=url)).returncode == 0
        made = await run_openepay(
            "merchant", "create", "--name", scheme, cwd=tmp_path, database_url=url, secret_key=RIGHT
        )
        assert made.returncode == 0, made.stderr
        assert "hunter2" not in made.stderr and f"@{url.split('@', 1)[1]}" in made.stderr
    assert await rows(pg_url(pg_database), Merchant) == 2
    assert Settings(database_url=_pg(pg_database)).database_url.startswith("postgresql+asyncpg://")


@pytest.mark.parametrize(
    ("mistake", "expected"),
    [
        ("wrong port", "refused the connection: is PostgreSQL running there, and is the port right?"),
        pytest.param("missing database", 'has no database "openepay_missing_', marks=pytest.mark.postgresql),
        ("typo in the scheme", "unknown scheme 'postgresq' (did you mean postgresql://?)"),
        ("another driver", "asks for the driver 'postgresql+psycopg2'; OpenEpay runs on postgresql+asyncpg only"),
        ("not a URL", "OPENEPAY_DATABASE_URL is not a database URL"),
        ("unknown host", "cannot find the database host 'db.invalid'"),
    ],
)
async def test_database_mistakes_are_one_actionable_line(mistake, expected, tmp_path):
    urls = {
        "wrong port": _pg("postgres", port=free_port()),
        "missing database": _pg(f"openepay_missing_{secrets.token_hex(4)}"),
        "typo in the scheme": _pg("postgres", "postgresq"),
        "another driver": _pg("postgres", "postgresql+psycopg2"),
        "not a URL": "localhost:5432/openepay",
        "unknown host": "postgresql://openepay@db.invalid/openepay",
    }
    commands = [("merchant", "list")]
    if mistake == "wrong port":
        commands += [("migrate",), ("serve", "--port", str(free_port())), ("worker",)]
    for args in commands:
        refused = await run_openepay(*args, cwd=tmp_path, database_url=urls[mistake], secret_key=RIGHT)
        refused_in_one_line(refused, expected)


async def test_an_sqlite_file_in_a_missing_directory_is_one_line(tmp_path):
    url = f"sqlite+aiosqlite:///{tmp_path / 'nowhere' / 'openepay.db'}"
    refused = await run_openepay("migrate", cwd=tmp_path, database_url=url, secret_key=RIGHT)
    refused_in_one_line(refused, "its directory does not exist")


async def test_unreadable_settings_name_the_variable_without_echoing_it(tmp_path):
    refused = await run_openepay("merchant", "list", cwd=tmp_path, db_pool_size="twelve-secret-ish")
    refused_in_one_line(refused, "OPENEPAY_DB_POOL_SIZE")
    assert "twelve-secret-ish" not in refused.stderr


async def test_commands_print_no_migration_chatter_and_load_no_web_stack(tmp_path):
    assert (await run_openepay("migrate", cwd=tmp_path)).returncode == 0
    database = tmp_path / "openepay.db"
    said = f"database: {database} (SQLite); secret key: {tmp_path / 'openepay.secret'}"
    listed = await run_openepay("merchant", "list", cwd=tmp_path)
    assert listed.returncode == 0 and listed.stderr.splitlines() == [said]

    # An older database is brought up to date with one line, not Alembic's.
    await asyncio.to_thread(command.downgrade, migrate.alembic_config(f"sqlite+aiosqlite:///{database}"), "0003")
    upgraded = await run_openepay("merchant", "list", cwd=tmp_path)
    assert upgraded.stderr.splitlines() == [said, f"database migrated from 0003 to revision {migrate.head_revision()}"]

    # Nothing to migrate: the command never imports Alembic, the web framework or the HTTP client.
    imports = await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-X", "importtime", "-m", "openepay", "merchant", "list"],
        cwd=tmp_path,
        env=operator_env(),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert imports.returncode == 0, imports.stderr
    loaded = {line.rsplit("|", 1)[-1].strip() for line in imports.stderr.splitlines() if "|" in line}
    assert "openepay.cli" in loaded
    assert not {"alembic", "fastapi", "starlette", "httpx", "uvicorn", "openepay.app"} & loaded


def test_the_newest_revision_is_read_from_the_files_as_alembic_reads_it():
    from alembic.script import ScriptDirectory

    script = ScriptDirectory.from_config(migrate.alembic_config("sqlite://"))
    assert migrate.head_revision() == script.get_current_head()
    assert all(migrate.is_known(revision.revision) for revision in script.walk_revisions())
    assert not migrate.is_known("9999_from_the_future")


async def test_a_database_migrated_by_a_newer_version_is_refused_in_one_line(tmp_path):
    assert (await run_openepay("migrate", cwd=tmp_path)).returncode == 0
    with sqlite3.connect(tmp_path / "openepay.db") as db:
        db.execute("UPDATE alembic_version SET version_num = '9999_from_the_future'")
    refused = await run_openepay("merchant", "list", cwd=tmp_path)
    refused_in_one_line(refused, "at revision 9999_from_the_future, which this version of OpenEpay does not know")


async def test_sqlite_database_and_its_wal_and_shm_files_are_private(tmp_path):
    """Created 0600 whatever the umask: they hold every order and the sealed merchant keys."""
    import os

    from openepay.db import Database

    url = f"sqlite+aiosqlite:///{tmp_path / 'gateway.db'}"
    previous = os.umask(0o022)
    try:
        await asyncio.to_thread(migrate.upgrade, url)
        db = Database(url)
        try:
            async with db.session() as session:
                await session.execute(text("INSERT INTO health_probes (name, probed_at) VALUES ('x', '2026-01-01')"))
            async with db.engine.connect() as conn:  # holds the WAL and shared memory open
                await conn.execute(text("SELECT 1"))
                files = {path.name: stat.S_IMODE(path.stat().st_mode) for path in tmp_path.iterdir()}
        finally:
            await db.dispose()
    finally:
        os.umask(previous)
    assert files == {"gateway.db": 0o600, "gateway.db-wal": 0o600, "gateway.db-shm": 0o600}

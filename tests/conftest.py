"""Shared fixtures: every database test runs on SQLite and on PostgreSQL, against real servers.

``--backend`` picks one backend; the default runs both, and a PostgreSQL that cannot be
reached is an error, never a skip.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
import pytest_asyncio
from cryptography.hazmat.primitives.asymmetric import rsa
from sqlalchemy import text

from openepay.app import create_app
from openepay.config import Settings
from openepay.core.merchants import MerchantCredentials
from openepay.db import migrate
from openepay.db.models import Base
from openepay.gateway import Gateway
from openepay.notify.worker import NotifyWorker
from openepay.web.server import http_protocol
from tests.support.epay_v2 import V2Merchant
from tests.support.fake_alipay import FakeAlipay
from tests.support.gateways import own_server
from tests.support.merchant import FakeMerchant
from tests.support.notify import Answer, ScriptedShop
from tests.support.postgres import create_database, drop_database, pg_url, unique_name
from tests.support.servers import ServerThread
from tests.support.settings import make_settings

BACKENDS = ("sqlite", "postgresql")


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--backend", choices=(*BACKENDS, "all"), default="all", help="database backend(s) to run DB tests on"
    )


def pytest_configure(config: pytest.Config) -> None:
    # Test processes started by pytest-xdist inherit the environment: every one draws from the seed
    # the header shows.
    from tests.support.fuzz import FUZZ_SEED

    os.environ.setdefault("OPENEPAY_FUZZ_SEED", str(FUZZ_SEED))


def pytest_report_header() -> str:
    from tests.support.fuzz import FUZZ_SEED

    return f"fuzz seed: {FUZZ_SEED} (OPENEPAY_FUZZ_SEED={FUZZ_SEED} draws the same fuzz requests again)"


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter, exitstatus: int) -> None:
    if exitstatus != 0:
        terminalreporter.write_line(pytest_report_header())


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Tests of PostgreSQL itself (marked ``postgresql``, or given a ``pg_database`` of their own) follow
    ``--backend`` like every other database test: ``--backend sqlite`` leaves them out and needs no server."""
    for item in items:
        if "pg_database" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.postgresql)
    if config.getoption("backend") != "sqlite":
        return
    kept = [item for item in items if item.get_closest_marker("postgresql") is None]
    left_out = [item for item in items if item.get_closest_marker("postgresql") is not None]
    if left_out:
        config.hook.pytest_deselected(items=left_out)
        items[:] = kept


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "backend" in metafunc.fixturenames:
        chosen = metafunc.config.getoption("backend")
        backends = BACKENDS if chosen == "all" else (chosen,)
        metafunc.parametrize("backend", backends, scope="session")


@pytest.fixture(scope="session")
def database_url(backend: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A freshly migrated database for the whole session, per backend."""
    if backend == "sqlite":
        url = f"sqlite+aiosqlite:///{tmp_path_factory.mktemp('db') / 'openepay.db'}"
        migrate.upgrade(url)
        yield url
        return
    name = unique_name("test")
    asyncio.run(create_database(name))
    try:
        migrate.upgrade(pg_url(name))
        yield pg_url(name)
    finally:
        asyncio.run(drop_database(name))


@pytest.fixture
def empty_database_url(backend: str, tmp_path: Path) -> Iterator[str]:
    """A database with no schema at all, for tests of the migrations themselves."""
    if backend == "sqlite":
        yield f"sqlite+aiosqlite:///{tmp_path / 'empty.db'}"
        return
    name = unique_name("empty")
    asyncio.run(create_database(name))
    try:
        yield pg_url(name)
    finally:
        asyncio.run(drop_database(name))


@pytest.fixture
def pg_database() -> Iterator[str]:
    """A migrated PostgreSQL database of the test's own, for tests that do things to the database itself
    (make it read-only, take it away) that must touch no other test's."""
    name = unique_name("own")
    asyncio.run(create_database(name))
    try:
        migrate.upgrade(pg_url(name))
        yield name
    finally:
        asyncio.run(drop_database(name))


@pytest.fixture(scope="session")
def settings(database_url: str) -> Settings:
    return make_settings(database_url)


@pytest_asyncio.fixture(scope="session")
async def _session_gateway(settings: Settings) -> AsyncIterator[Gateway]:
    gateway = await Gateway.open(settings)
    yield gateway
    await gateway.aclose()


async def _empty_tables(gateway: Gateway) -> None:
    tables = [table.name for table in reversed(Base.metadata.sorted_tables)]
    async with gateway.db.session() as session:
        if gateway.db.dialect == "postgresql":
            await session.execute(text(f"TRUNCATE {', '.join(tables)} RESTART IDENTITY CASCADE"))
        else:
            for table in tables:
                await session.execute(text(f"DELETE FROM {table}"))


@pytest_asyncio.fixture
async def gateway(_session_gateway: Gateway) -> Gateway:
    """The test's own view of the database (empty at the start of every test)."""
    await _empty_tables(_session_gateway)
    return _session_gateway


@dataclass
class RunningGateway:
    url: str
    settings: Settings
    gateway: Gateway

    def client(self, **kwargs: object) -> httpx.AsyncClient:
        return httpx.AsyncClient(base_url=self.url, timeout=10, **kwargs)  # type: ignore[arg-type]


@pytest.fixture(scope="session")
def _session_server(settings: Settings) -> Iterator[ServerThread]:
    thread = ServerThread(create_app(settings), http=http_protocol(settings)).start()
    yield thread
    thread.stop()


@pytest_asyncio.fixture
async def server(_session_server: ServerThread, gateway: Gateway, settings: Settings) -> RunningGateway:
    """The gateway's web app over real HTTP on loopback (notifications are not sent unless ``worker`` runs)."""
    return RunningGateway(_session_server.url, settings, gateway)


@pytest.fixture
def channelless_server(database_url: str, gateway: Gateway) -> Iterator[ServerThread]:
    """The app with no channel at all (the sandbox off) over real HTTP, on the session's database."""
    with own_server(database_url, sandbox=False) as thread:
        yield thread


@pytest_asyncio.fixture
async def worker(gateway: Gateway) -> AsyncIterator[NotifyWorker]:
    """A notification worker running in the background for the length of the test."""
    notify_worker = NotifyWorker(gateway, name="test-worker")
    stop = asyncio.Event()
    task = asyncio.create_task(notify_worker.run(stop))
    yield notify_worker
    stop.set()
    await task
    await notify_worker.aclose()


@pytest_asyncio.fixture
async def merchant(gateway: Gateway) -> MerchantCredentials:
    return await gateway.merchants.create("Test Shop", refund_enabled=True)


@pytest.fixture(scope="session")
def merchant_private_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@pytest_asyncio.fixture
async def v2(gateway: Gateway, merchant: MerchantCredentials, merchant_private_key: rsa.RSAPrivateKey) -> V2Merchant:
    """The ``merchant`` fixture with its RSA public key registered for epay V2 (MD5 still accepted)."""
    v2_merchant = V2Merchant(merchant.pid, merchant.key, merchant_private_key)
    await gateway.merchants.update(merchant.pid, rsa_public_key=v2_merchant.public_pem)
    return v2_merchant


@pytest.fixture
def shop(merchant: MerchantCredentials) -> Iterator[FakeMerchant]:
    """The merchant's own server, checking our signatures with the merchant's key."""
    fake = FakeMerchant(key=merchant.key).start()
    yield fake
    fake.stop()


@pytest.fixture
def scripted_shop(merchant: MerchantCredentials) -> Iterator:
    """Start merchant endpoints that answer from a script (the last answer repeats)."""
    shops: list[ScriptedShop] = []

    def start(*answers: Answer, delay: float = 0.0) -> ScriptedShop:
        shop = ScriptedShop(merchant.key, list(answers), delay).start()
        shops.append(shop)
        return shop

    yield start
    for shop in shops:
        shop.stop()


@pytest.fixture(scope="session")
def alipay_keys() -> tuple[rsa.RSAPrivateKey, rsa.RSAPrivateKey]:
    """An Alipay application's private key and the fake Alipay's own, made once per run."""
    return (
        rsa.generate_private_key(public_exponent=65537, key_size=2048),
        rsa.generate_private_key(public_exponent=65537, key_size=2048),
    )


@pytest.fixture
def fake_alipay(alipay_keys: tuple[rsa.RSAPrivateKey, rsa.RSAPrivateKey]) -> Iterator[FakeAlipay]:
    """Alipay's OpenAPI gateway on loopback, checking our RSA2 signatures and signing its answers and notifications."""
    fake = FakeAlipay(*alipay_keys).start()
    yield fake
    fake.stop()

"""Each process's copy of merchants: changes made anywhere are acted on everywhere, refusals cost no
query, and a create or a lookup is one statement.

These tests run the copies as shipped (the shared test settings keep none).
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest
import pytest_asyncio
from sqlalchemy import event

from openepay.app import create_app
from openepay.core import merchant_cache
from openepay.core.merchant_cache import Admission, MerchantCache
from openepay.core.merchants import MerchantCredentials, Merchants
from openepay.db import Database
from openepay.gateway import Gateway
from openepay.web.server import http_protocol
from tests.support.cli import openepay
from tests.support.epay import order_params, signed
from tests.support.payfor import keyed, payfor_params, send
from tests.support.processes import ServeProcess, worker_env, worker_processes
from tests.support.servers import ServerThread
from tests.support.settings import make_settings
from tests.support.vmq import create as vmq_create
from tests.support.vmq import data_of
from tests.support.vmq import order_params as vmq_order_params
from tests.support.vmq import signed as vmq_signed
from tests.support.waiting import answering, eventually

# Longer than the slowest round of requests on a loaded machine, short enough to prove that the
# other process dropped its copy (which by design happens within a second).
CHANGE_SEEN_WITHIN = 5.0


async def _query_answer(url: str, pid: int, key: str) -> dict:
    async with httpx.AsyncClient(base_url=url, timeout=10) as client:
        response = await client.get("/api.php", params={"act": "query", "pid": pid, "key": key})
    return response.json()


async def _codes_of_every_process(url: str, pid: int, key: str) -> set[int]:
    """The codes of a round of queries, each on a new connection, so that every web process of
    ``serve`` answers some: one process having seen a change says nothing of the other."""
    return {(await _query_answer(url, pid, key))["code"] for _ in range(8)}


@pytest.fixture
def serve(database_url: str, tmp_path: Path) -> Iterator[ServeProcess]:
    """One ``openepay serve`` process with the merchants' copy as shipped."""
    env = worker_env(database_url, auth_failures_per_ip=1_000_000, auth_failures_per_merchant=1_000_000)
    with worker_processes(env, tmp_path, ServeProcess) as servers:
        (server,) = servers.start()
        assert isinstance(server, ServeProcess)
        yield server


async def test_a_key_rotated_by_the_cli_is_taken_by_a_running_server_and_the_old_one_refused(
    gateway: Gateway, database_url: str, serve: ServeProcess
):
    merchant = await gateway.merchants.create("Shop")
    await answering(f"{serve.url}/healthz")
    assert (await _query_answer(serve.url, merchant.pid, merchant.key))["code"] == 1

    rotated = await openepay(database_url, "merchant", "rotate-key", str(merchant.pid))
    assert rotated.returncode == 0, rotated.stderr
    new_key = re.search(r"key: (\w+)", rotated.stdout).group(1)  # type: ignore[union-attr]

    async def new_key_taken_everywhere() -> bool:
        new = await _codes_of_every_process(serve.url, merchant.pid, new_key)
        return new == {1} and await _codes_of_every_process(serve.url, merchant.pid, merchant.key) == {-3}

    await eventually(new_key_taken_everywhere, timeout=CHANGE_SEEN_WITHIN)
    refused = await _query_answer(serve.url, merchant.pid, merchant.key)
    assert refused == {"code": -3, "msg": "商户密钥错误"}


async def test_a_merchant_disabled_by_the_cli_is_refused_by_a_running_server(
    gateway: Gateway, database_url: str, serve: ServeProcess
):
    merchant = await gateway.merchants.create("Shop")
    await answering(f"{serve.url}/healthz")
    assert (await _query_answer(serve.url, merchant.pid, merchant.key))["code"] == 1

    disabled = await openepay(database_url, "merchant", "disable", str(merchant.pid))
    assert disabled.returncode == 0, disabled.stderr

    async def refused_everywhere() -> bool:
        return 1 not in await _codes_of_every_process(serve.url, merchant.pid, merchant.key)

    await eventually(refused_everywhere, timeout=CHANGE_SEEN_WITHIN)
    assert (await _query_answer(serve.url, merchant.pid, merchant.key))["code"] != 1


@pytest.fixture
def cached_app(database_url: str) -> Iterator[tuple[ServerThread, Gateway]]:
    """The web app in this process with the copy as shipped, no background work due during a test
    (the copy's check and the lockout's sync run once at start and then not for a minute), and a
    lockout of three failures per address. Channel accounts are kept for a minute too."""
    settings = make_settings(
        database_url,
        merchant_cache_check_interval=60,
        merchant_cache_trust_seconds=120,
        auth_failure_sync_interval=60,
        auth_failures_per_ip=3,
        routing_cache_seconds=60,
    )
    app = create_app(settings)
    thread = ServerThread(app, http=http_protocol(settings)).start()
    yield thread, app.state.gateway
    thread.stop()


def _statements(db: Database) -> list[str]:
    """Every statement ``db``'s engines send from now on (SQLite's BEGIN IMMEDIATE is transaction control)."""
    seen: list[str] = []

    def record(conn, cursor, statement: str, *args: object) -> None:  # type: ignore[no-untyped-def]
        if not statement.startswith("BEGIN"):
            seen.append(statement)

    for engine in db.engines:
        event.listen(engine, "before_cursor_execute", record)
    return seen


async def test_a_bad_signature_is_refused_without_a_query_and_still_counts_towards_the_lockout(
    gateway: Gateway, merchant: MerchantCredentials, cached_app: tuple[ServerThread, Gateway]
):
    thread, app_gateway = cached_app
    async with httpx.AsyncClient(base_url=thread.url, timeout=10) as client:
        good = signed(order_params(merchant.pid, "http://shop.example", "GOOD-1", clientip="203.0.113.7"), merchant.key)
        first = (await client.post("/mapi.php", data=good)).json()
        assert first["code"] == 1, first

        statements = _statements(app_gateway.db)
        bad = signed(order_params(merchant.pid, "http://shop.example", "BAD-1", clientip="203.0.113.7"), "not-the-key")
        answers = [(await client.post("/mapi.php", data=bad)).json() for _ in range(4)]

    assert answers[:3] == [{"code": -1, "msg": "签名校验失败，请返回重试！"}] * 3
    assert answers[3] == {"code": -1, "msg": "签名校验失败次数过多，请1分钟后再试"}
    assert statements == []


async def test_a_create_is_one_insert_and_a_lookup_one_select(
    gateway: Gateway, merchant: MerchantCredentials, cached_app: tuple[ServerThread, Gateway]
):
    thread, app_gateway = cached_app
    async with httpx.AsyncClient(base_url=thread.url, timeout=10) as client:
        warm = signed(order_params(merchant.pid, "http://shop.example", "WARM-1", clientip="203.0.113.7"), merchant.key)
        assert (await client.post("/mapi.php", data=warm)).json()["code"] == 1

        statements = _statements(app_gateway.db)
        new = signed(order_params(merchant.pid, "http://shop.example", "ONE-1", clientip="203.0.113.7"), merchant.key)
        created = (await client.post("/mapi.php", data=new)).json()
        create_statements = list(statements)
        statements.clear()
        query = {"act": "order", "pid": merchant.pid, "key": merchant.key, "out_trade_no": "ONE-1"}
        found = (await client.get("/api.php", params=query)).json()

    assert created["code"] == 1 and created["qrcode"].startswith(thread.url)
    assert [sql.split()[:3] for sql in create_statements] == [["INSERT", "INTO", "orders"]]
    assert found["code"] == 1 and found["trade_no"] == created["trade_no"] and found["status"] == 0
    assert [sql.split()[0] for sql in statements] == ["SELECT"] and "FROM orders" in statements[0]


async def test_a_merchant_query_is_one_select(
    gateway: Gateway, merchant: MerchantCredentials, cached_app: tuple[ServerThread, Gateway]
):
    thread, app_gateway = cached_app
    query = {"act": "query", "pid": merchant.pid, "key": merchant.key}
    async with httpx.AsyncClient(base_url=thread.url, timeout=10) as client:
        assert (await client.get("/api.php", params=query)).json()["code"] == 1
        statements = _statements(app_gateway.db)
        answer = (await client.get("/api.php", params=query)).json()

    assert (answer["code"], answer["orders"], answer["orders_today"], answer["orders_lastday"]) == (1, 0, 0, 0)
    assert [sql.split()[0] for sql in statements] == ["SELECT"]


async def test_a_payfor_create_is_one_insert(
    gateway: Gateway, merchant: MerchantCredentials, cached_app: tuple[ServerThread, Gateway]
):
    thread, app_gateway = cached_app
    async with httpx.AsyncClient(base_url=thread.url, timeout=10) as client:
        warm = keyed(payfor_params(merchant.pid, "http://shop.example", "PF-WARM"), merchant.key)
        assert (await send(client, warm, as_json=True)).json()["code"] == 1

        statements = _statements(app_gateway.db)
        new = keyed(payfor_params(merchant.pid, "http://shop.example", "PF-1"), merchant.key)
        created = (await send(client, new, as_json=True)).json()

    assert created["code"] == 1 and created["data"]["pay_num"]
    assert [sql.split()[:3] for sql in statements] == [["INSERT", "INTO", "orders"]]


async def test_a_vmq_create_is_one_insert(
    gateway: Gateway, merchant: MerchantCredentials, cached_app: tuple[ServerThread, Gateway]
):
    thread, app_gateway = cached_app
    async with httpx.AsyncClient(base_url=thread.url, timeout=10) as client:
        warm = vmq_signed(vmq_order_params("VMQ-WARM"), merchant.key)
        assert data_of(await vmq_create(client, warm, merchant.pid))["state"] == 0

        statements = _statements(app_gateway.db)
        created = data_of(await vmq_create(client, vmq_signed(vmq_order_params("VMQ-1"), merchant.key), merchant.pid))

    assert created["payId"] == "VMQ-1" and created["state"] == 0 and created["payUrl"].startswith(thread.url)
    assert [sql.split()[:3] for sql in statements] == [["INSERT", "INTO", "orders"]]


async def test_a_merchant_read_from_the_database_is_one_select_without_a_write_lock(
    gateway: Gateway, merchant: MerchantCredentials
):
    """Without a trusted copy (the shared test settings keep none) every request reads its merchant:
    on SQLite that read must not take the write lock from the orders being created meanwhile."""
    sent: list[str] = []
    for engine in gateway.db.engines:
        event.listen(engine, "before_cursor_execute", lambda *args: sent.append(args[2]))

    admission = await gateway.merchants.admission(merchant.pid)

    assert admission is not None and admission.merchant.pid == merchant.pid and admission.key == merchant.key
    assert [sql.split()[0] for sql in sent] == ["SELECT"]


class _StallingClock:
    """A clock on an event loop so busy that every reading is ``step`` seconds after the last."""

    def __init__(self, step: float) -> None:
        self.now = 0.0
        self.step = step

    def __call__(self) -> float:
        self.now += self.step
        return self.now


def _counting_cache(gateway: Gateway, clock: _StallingClock) -> tuple[MerchantCache, list[int]]:
    """A copy on a stalling clock, and the numbers it read from the database, in order."""
    loads: list[int] = []

    async def load(pid: int) -> Admission | None:
        loads.append(pid)
        return await gateway.merchants.admission(pid)

    return MerchantCache(gateway.db, load, check_interval=0.4, trust_seconds=1.0, clock=clock), loads


async def test_a_request_that_waited_for_a_fresh_check_uses_the_copy_however_long_the_check_took(
    gateway: Gateway, merchant: MerchantCredentials
):
    """A stalled event loop (a long garbage collection, a burst) makes every check outlast the trust
    window; the requests that waited for a check begun after they arrived must still be answered from
    the copy, not each read their merchant from the database."""
    cache, loads = _counting_cache(gateway, _StallingClock(step=1.5))
    await cache.check()
    first = await cache.get(merchant.pid)
    again = [await cache.get(merchant.pid) for _ in range(3)]

    assert loads == [merchant.pid]
    assert first is not None and first.key == merchant.key
    assert again == [first] * 3


async def test_a_merchant_read_while_the_first_check_runs_is_not_read_again(
    gateway: Gateway, merchant: MerchantCredentials
):
    """A process's first requests arrive while its first version check is under way (its start-up
    task); the check drops what was read before it ended, so the requests wait for it, and the
    merchant is read once, not once more by the next request."""
    loads: list[int] = []

    async def load(pid: int) -> Admission | None:
        await asyncio.sleep(0)  # a read's round trip, during which the first check runs
        loads.append(pid)
        return await gateway.merchants.admission(pid)

    cache = MerchantCache(gateway.db, load, check_interval=60, trust_seconds=120)
    first_check = asyncio.ensure_future(cache.check())
    first = await cache.get(merchant.pid)
    again = await cache.get(merchant.pid)
    await first_check

    assert loads == [merchant.pid]
    assert first is not None and first.key == merchant.key
    assert again == first


async def test_a_key_rotated_while_the_copy_was_distrusted_is_read_again_after_the_check(
    gateway: Gateway, merchant: MerchantCredentials
):
    """The same stalled loop must not keep a key that changed: the check a request waits for sees the
    new version and the request reads its merchant again."""
    cache = MerchantCache(
        gateway.db, gateway.merchants.admission, check_interval=0.4, trust_seconds=1.0, clock=_StallingClock(step=1.5)
    )
    await cache.check()
    before = await cache.get(merchant.pid)

    rotated = await gateway.merchants.rotate_key(merchant.pid)
    after = await cache.get(merchant.pid)

    assert before is not None and before.key == merchant.key
    assert after is not None and after.key == rotated.key != merchant.key


async def test_a_burst_of_requests_on_a_distrusted_copy_reads_no_merchant_from_the_database(
    gateway: Gateway, merchant: MerchantCredentials
):
    """Requests that arrive while a check finishes, before its clean-up has run (on SQLite a request may
    never yield to the loop), must start a check of their own rather than take the finished one's stale
    confirmation and read their merchant."""
    cache, loads = _counting_cache(gateway, _StallingClock(step=0.3))
    await cache.check()
    await cache.get(merchant.pid)
    for _ in range(5):
        answers = await asyncio.gather(*(cache.get(merchant.pid) for _ in range(16)))
        assert {answer.key for answer in answers if answer is not None} == {merchant.key}

    assert loads == [merchant.pid]


# -- numbers no merchant has ----------------------------------------------------------------------


@pytest_asyncio.fixture
async def web_process(gateway: Gateway, database_url: str) -> AsyncIterator[Merchants]:
    """A web process's merchants on an engine of its own, its copy confirmed and trusted for two
    minutes (the tests run the checks ``run`` would); ``gateway`` plays every other process, the CLI
    among them."""
    db = Database(database_url)
    merchants = Merchants(db, gateway.merchants.box, cache_check_interval=60, cache_trust_seconds=120)
    await merchants.cache.check()
    yield merchants
    await db.dispose()


def _merchant_reads(statements: list[str]) -> list[str]:
    assert all(sql.split()[0] == "SELECT" and "FROM merchants" in sql for sql in statements), statements
    return statements


async def test_unknown_numbers_are_read_once_a_version_and_leave_the_known_merchants_in_memory(
    gateway: Gateway, merchant: MerchantCredentials, web_process: Merchants
):
    assert (await web_process.admission(merchant.pid)) is not None
    sent = _statements(web_process.db)
    repeated = [await web_process.admission(merchant.pid + 1) for _ in range(5)]
    flood = [await web_process.admission(pid) for pid in range(10**8, 10**8 + 500)]
    known = await web_process.admission(merchant.pid)

    assert repeated == [None] * 5 and flood == [None] * 500
    assert known is not None and known.key == merchant.key
    # The first unknown number's row, then every merchant's number; nothing for the other 504.
    assert len(_merchant_reads(sent)) == 2

    await gateway.merchants.update(merchant.pid, name="Renamed")  # another process changes a merchant
    await web_process.cache.check()
    sent.clear()
    again = [await web_process.admission(merchant.pid + 1) for _ in range(5)]

    assert again == [None] * 5
    assert len(_merchant_reads(sent)) == 2


async def test_a_merchant_created_elsewhere_after_its_number_was_refused_is_let_in_once_the_change_is_seen(
    gateway: Gateway, web_process: Merchants
):
    assert await web_process.admission(4242) is None

    created = await gateway.merchants.create("Moved from Rainbow", pid=4242)
    await web_process.cache.check()
    admitted = await web_process.admission(4242)

    assert admitted is not None and admitted.merchant.name == "Moved from Rainbow" and admitted.key == created.key


async def test_a_merchant_created_by_this_process_after_its_number_was_refused_is_let_in_at_once(
    web_process: Merchants,
):
    assert await web_process.admission(4242) is None

    created = await web_process.create("Moved from Rainbow", pid=4242)
    admitted = await web_process.admission(4242)

    assert admitted is not None and admitted.key == created.key


async def test_past_the_bound_unknown_numbers_are_read_each_time_and_known_merchants_kept(
    gateway: Gateway, merchant: MerchantCredentials, web_process: Merchants, monkeypatch: pytest.MonkeyPatch
):
    """More merchants than the numbers kept: no set of numbers that would grow with them, so every
    unknown number is read, and the known merchants are still answered from memory."""
    monkeypatch.setattr(merchant_cache, "MAX_PIDS", 1)
    await gateway.merchants.create("Second Shop")
    await web_process.cache.check()
    assert await web_process.admission(merchant.pid) is not None

    sent = _statements(web_process.db)
    first = await web_process.admission(10**8)
    read_first = len(sent)
    rest = [await web_process.admission(pid) for pid in range(10**8 + 1, 10**8 + 11)]
    read_rest = len(sent) - read_first
    sent.clear()
    known = await web_process.admission(merchant.pid)

    assert first is None and rest == [None] * 10
    assert (read_first, read_rest) == (2, 10), "its row and the numbers (too many), then one row each"
    assert known is not None and known.key == merchant.key and sent == []


async def test_a_burst_of_unknown_numbers_on_a_distrusted_copy_shares_its_checks(
    gateway: Gateway, merchant: MerchantCredentials
):
    """As for known merchants, unknown numbers on a copy no longer trusted wait for a check rather
    than each read its row."""
    cache, loads = _counting_cache(gateway, _StallingClock(step=0.3))
    await cache.check()
    await cache.get(10**8)
    for round_ in range(5):
        answers = await asyncio.gather(*(cache.get(10**8 + 16 * round_ + i) for i in range(16)))
        assert answers == [None] * 16

    assert loads == [10**8]


async def test_a_flood_of_unknown_numbers_costs_no_query_and_locks_out_nobody(
    gateway: Gateway, merchant: MerchantCredentials, cached_app: tuple[ServerThread, Gateway]
):
    """Refused unknown numbers are not failed signatures: the address that sent them (three failures
    lock it out here) still gets in for its own merchant."""
    thread, app_gateway = cached_app
    async with httpx.AsyncClient(base_url=thread.url, timeout=10) as client:

        def order(pid: int, key: str, number: str) -> dict[str, str]:
            return signed(order_params(pid, "http://shop.example", number, clientip="203.0.113.7"), key)

        assert (await client.post("/mapi.php", data=order(merchant.pid, merchant.key, "WARM-1"))).json()["code"] == 1
        statements = _statements(app_gateway.db)
        unknown = [
            (await client.post("/mapi.php", data=order(pid, merchant.key, f"U-{pid}"))).json()
            for pid in range(10**8, 10**8 + 20)
        ]
        bad = (await client.post("/mapi.php", data=order(merchant.pid, "not-the-key", "BAD-1"))).json()
        flood_statements = list(statements)
        good = (await client.post("/mapi.php", data=order(merchant.pid, merchant.key, "GOOD-1"))).json()

    assert unknown == [{"code": -1, "msg": "商户不存在！"}] * 20
    assert bad == {"code": -1, "msg": "签名校验失败，请返回重试！"}
    assert len(_merchant_reads(flood_statements)) == 2
    assert good["code"] == 1, good

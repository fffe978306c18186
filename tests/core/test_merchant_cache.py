"""Each process's copy of merchants: changes made anywhere are acted on everywhere, refusals cost no query.

These tests run the copy as shipped (the shared test settings keep none).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from sqlalchemy import event

from openepay.app import create_app
from openepay.core.merchants import MerchantCredentials
from openepay.gateway import Gateway
from openepay.web.server import http_protocol
from tests.conftest import make_settings
from tests.support.cli import openepay_cli
from tests.support.epay import order_params, signed
from tests.support.processes import ServeProcess, worker_env, worker_processes
from tests.support.servers import ServerThread
from tests.support.waiting import answering, eventually

# Longer than the slowest round of requests on a loaded machine, short enough to prove that the
# other process dropped its copy (which by design happens within a second).
CHANGE_SEEN_WITHIN = 5.0


async def _query_answer(url: str, pid: int, key: str) -> dict:
    async with httpx.AsyncClient(base_url=url, timeout=10) as client:
        response = await client.get("/api.php", params={"act": "query", "pid": pid, "key": key})
    return response.json()


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

    rotated = await openepay_cli(database_url, "merchant", "rotate-key", str(merchant.pid))
    assert rotated.returncode == 0, rotated.stderr
    new_key = re.search(r"key: (\w+)", rotated.stdout).group(1)  # type: ignore[union-attr]

    async def new_key_taken() -> bool:
        return (await _query_answer(serve.url, merchant.pid, new_key))["code"] == 1

    await eventually(new_key_taken, timeout=CHANGE_SEEN_WITHIN)
    refused = await _query_answer(serve.url, merchant.pid, merchant.key)
    assert refused == {"code": -3, "msg": "商户密钥错误"}


async def test_a_merchant_disabled_by_the_cli_is_refused_by_a_running_server(
    gateway: Gateway, database_url: str, serve: ServeProcess
):
    merchant = await gateway.merchants.create("Shop")
    await answering(f"{serve.url}/healthz")
    assert (await _query_answer(serve.url, merchant.pid, merchant.key))["code"] == 1

    disabled = await openepay_cli(database_url, "merchant", "disable", str(merchant.pid))
    assert disabled.returncode == 0, disabled.stderr

    async def refused() -> bool:
        return (await _query_answer(serve.url, merchant.pid, merchant.key))["code"] != 1

    await eventually(refused, timeout=CHANGE_SEEN_WITHIN)
    assert (await _query_answer(serve.url, merchant.pid, merchant.key))["code"] != 1


@pytest.fixture
def cached_app(database_url: str) -> Iterator[tuple[ServerThread, Gateway]]:
    """The web app in this process with the copy as shipped, no background work due during a test
    (the copy's check and the lockout's sync run once at start and then not for a minute), and a
    lockout of three failures per address."""
    settings = make_settings(
        database_url,
        merchant_cache_check_interval=60,
        merchant_cache_trust_seconds=120,
        auth_failure_sync_interval=60,
        auth_failures_per_ip=3,
    )
    app = create_app(settings)
    thread = ServerThread(app, http=http_protocol(settings)).start()
    yield thread, app.state.gateway
    thread.stop()


def _statements(gateway: Gateway) -> list[str]:
    seen: list[str] = []
    event.listen(gateway.db.engine.sync_engine, "before_cursor_execute", lambda *args: seen.append(args[2]))
    return seen


async def test_a_bad_signature_is_refused_without_a_query_and_still_counts_towards_the_lockout(
    gateway: Gateway, merchant: MerchantCredentials, cached_app: tuple[ServerThread, Gateway]
):
    thread, app_gateway = cached_app
    async with httpx.AsyncClient(base_url=thread.url, timeout=10) as client:
        good = signed(order_params(merchant.pid, "http://shop.example", "GOOD-1", clientip="203.0.113.7"), merchant.key)
        first = (await client.post("/mapi.php", data=good)).json()
        assert first["code"] == 1, first

        statements = _statements(app_gateway)
        bad = signed(order_params(merchant.pid, "http://shop.example", "BAD-1", clientip="203.0.113.7"), "not-the-key")
        answers = [(await client.post("/mapi.php", data=bad)).json() for _ in range(4)]

    assert answers[:3] == [{"code": -1, "msg": "签名校验失败，请返回重试！"}] * 3
    assert answers[3] == {"code": -1, "msg": "签名校验失败次数过多，请1分钟后再试"}
    assert statements == []

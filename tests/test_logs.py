"""Logs an operator can read through a database outage: one full traceback per kind of failure, then counts.

The end-to-end tests take a PostgreSQL database of their own away from a running ``openepay``
process (connections refused, existing ones cut) and read what the process logged, as JSON.
"""

from __future__ import annotations

import asyncio
import io
import json
import logging
import re
import subprocess
import sys
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import asyncpg
import httpx
import pytest

from openepay.db import migrate
from openepay.gateway import Gateway
from openepay.logs import QuietRepeats, TextFormatter
from tests.support.disk import fill, small_disk
from tests.support.epay import order_params, signed
from tests.support.operator import operator_env
from tests.support.postgres import PG_DSN, pg_url
from tests.support.servers import free_port
from tests.support.settings import TEST_SECRET, make_settings
from tests.support.waiting import eventually


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def quiet_log() -> Iterator[tuple[logging.Logger, io.StringIO, Clock, QuietRepeats]]:
    stream, clock = io.StringIO(), Clock()
    target = logging.StreamHandler(stream)
    target.setFormatter(TextFormatter("%(levelname)s %(name)s: %(message)s"))
    handler = QuietRepeats(target, interval=60, clock=clock)
    logger = logging.Logger("openepay.test_outage")
    logger.addHandler(handler)
    yield logger, stream, clock, handler
    handler.close()


def fail(logger: logging.Logger, exc: Exception, message: str = "mapi.php failed", **extra: object) -> None:
    try:
        raise exc
    except Exception:
        logger.exception(message, extra=extra)


def test_a_failure_repeated_a_thousand_times_is_one_traceback_then_one_line_per_interval(quiet_log):
    logger, stream, clock, handler = quiet_log
    for _ in range(1000):
        fail(logger, ConnectionRefusedError("Connect call failed"))
    assert stream.getvalue().count("Traceback") == 1
    assert stream.getvalue().count("mapi.php failed") == 1

    fail(logger, TimeoutError("no answer"))  # another kind of failure: its own traceback
    assert stream.getvalue().count("Traceback") == 2

    clock.now += 61
    fail(logger, ConnectionRefusedError("Connect call failed"))
    lines = stream.getvalue().splitlines()
    assert lines[-1] == (
        "ERROR openepay.test_outage: mapi.php failed (ConnectionRefusedError: Connect call failed); "
        "happened 999 more times in 61 s, traceback shown once count=999"
    )
    handler.close()  # at shutdown, what was still held back is counted too
    assert stream.getvalue().splitlines()[-1].endswith("happened 1 more times in 0 s, traceback shown once count=1")
    assert stream.getvalue().count("Traceback") == 2


def test_a_failure_back_after_a_quiet_interval_is_one_line_and_other_records_pass(quiet_log):
    logger, stream, clock, _ = quiet_log
    fail(logger, ConnectionRefusedError("down"))
    logger.warning("an ordinary warning")
    logger.warning("an ordinary warning")
    clock.now += 3600
    fail(logger, ConnectionRefusedError("down again"))
    lines = stream.getvalue().splitlines()
    assert lines[-3:] == [
        "WARNING openepay.test_outage: an ordinary warning",
        "WARNING openepay.test_outage: an ordinary warning",
        "ERROR openepay.test_outage: mapi.php failed (ConnectionRefusedError: down again); "
        "its traceback was logged earlier",
    ]


def test_a_failure_about_one_order_is_never_held_back(quiet_log):
    """A payment that could not be recorded must stay findable by its order number."""
    logger, stream, _, _ = quiet_log
    for n in range(3):
        fail(logger, ConnectionRefusedError("down"), "could not record a payment", trade_no=f"T{n}")
    text = stream.getvalue()
    assert text.count("Traceback") == 1
    assert re.findall(r"trade_no=(T\d)", text) == ["T0", "T1", "T2"]


async def take_away(name: str) -> None:
    """The database goes away: new connections are refused and open ones are cut."""
    admin = await asyncpg.connect(PG_DSN)
    try:
        await admin.execute(f'ALTER DATABASE "{name}" WITH ALLOW_CONNECTIONS false')
        await admin.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1", name)
    finally:
        await admin.close()


def records(log_path: Path) -> list[dict[str, object]]:
    return [json.loads(line) for line in log_path.read_text().splitlines() if line.startswith("{")]


_RAISED = re.compile(r"^([A-Za-z_][\w.]*(?:Error|Exception|Exit))(?::|$)", re.MULTILINE)


def assert_one_traceback_per_kind(logged: list[dict[str, object]]) -> None:
    """No two full tracebacks from the same place for the same exception class."""
    kinds = Counter(
        (record["logger"], record["message"], _RAISED.findall(str(record["exception"]))[-1])
        for record in logged
        if "exception" in record
    )
    assert kinds and all(count == 1 for count in kinds.values()), kinds


def held_back(logged: list[dict[str, object]]) -> int:
    return sum(int(record.get("count", 0)) for record in logged if "more times" in str(record["message"]))


class Process:
    def __init__(self, args: list[str], log_path: Path, **settings: object) -> None:
        env = operator_env(secret_key=TEST_SECRET, log_format="json", log_repeat_interval=0.5, **settings)
        with open(log_path, "wb") as log:
            self.popen = subprocess.Popen(
                [sys.executable, "-m", "openepay", *args],
                env=env,
                cwd=log_path.parent,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
            )

    def stop(self) -> int:
        self.popen.terminate()
        try:
            return self.popen.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.popen.kill()
            return self.popen.wait(timeout=20)


async def test_a_worker_through_a_database_outage_logs_one_traceback_per_kind(pg_database, tmp_path):
    log_path = tmp_path / "worker.log"
    worker = Process(["worker"], log_path, database_url=pg_url(pg_database), worker_poll_interval=0.05)
    try:
        await eventually(lambda: "notify worker started" in log_path.read_text())
        await take_away(pg_database)
        await eventually(lambda: held_back(records(log_path)) >= 5, timeout=60, interval=0.2)
    finally:
        worker.stop()
    logged = records(log_path)
    assert_one_traceback_per_kind(logged)
    assert any(record["message"] == "notify worker cycle failed; retrying" for record in logged)


async def create_orders(base: str, pid: int, key: str, count: int, *, prefix: str) -> list[dict[str, object]]:
    """What ``/mapi.php`` answered to ``count`` new orders (always the dialect's JSON, never a 500).

    Each order on a new connection: taking the database away can take longer than the server keeps
    an idle connection open, and a request sent on one the server is closing at that instant is
    lost on the wire (any HTTP server's keep-alive race), which is not what this checks. The
    servers here run one web process, since each process holds back its own repeated tracebacks."""
    answers = []
    fresh = httpx.Limits(max_keepalive_connections=0)
    async with httpx.AsyncClient(base_url=base, timeout=30, limits=fresh) as client:
        for n in range(count):
            params = signed(order_params(pid, "http://shop.example/n", f"{prefix}-{n}", clientip="1.2.3.4"), key)
            answer = await client.post("/mapi.php", data=params)
            assert answer.status_code == 200, answer.text
            answers.append(answer.json())
    return answers


async def serving(base: str) -> bool:
    try:
        async with httpx.AsyncClient(base_url=base) as client:
            return (await client.get("/readyz")).status_code == 200
    except httpx.TransportError:
        return False


async def shop_on(url: str) -> tuple[int, str]:
    gateway = await Gateway.open(make_settings(url))
    try:
        merchant = await gateway.merchants.create("Outage Shop")
    finally:
        await gateway.aclose()
    return merchant.pid, merchant.key


async def test_a_server_through_a_postgresql_outage_answers_its_dialect_and_logs_one_traceback_per_kind(
    pg_database, tmp_path
):
    url = pg_url(pg_database)
    pid, key = await shop_on(url)
    base, log_path = f"http://127.0.0.1:{(port := free_port())}", tmp_path / "serve.log"
    server = Process(
        ["serve", "--port", str(port), "--no-worker", "--workers", "1"], log_path, database_url=url, sandbox=1
    )
    try:
        await eventually(lambda: serving(base), interval=0.2)
        [before] = await create_orders(base, pid, key, 1, prefix="BEFORE")
        await take_away(pg_database)
        during = await create_orders(base, pid, key, 40, prefix="DURING")
    finally:
        server.stop()  # uvicorn ends by re-raising SIGTERM: the app's shutdown reports what was held back
    assert before["code"] == 1, before
    assert all(answer["code"] != 1 for answer in during), during
    logged = records(log_path)
    assert_one_traceback_per_kind(logged)
    assert held_back(logged) >= 30


async def test_a_server_on_a_full_sqlite_disk_answers_its_dialect_and_logs_one_traceback_per_kind(tmp_path):
    log_path = tmp_path / "serve.log"
    with small_disk(tmp_path / "disk") as disk:
        url = f"sqlite+aiosqlite:///{disk / 'openepay.db'}"
        await asyncio.to_thread(migrate.upgrade, url)
        pid, key = await shop_on(url)
        port = free_port()
        base = f"http://127.0.0.1:{port}"
        server = Process(
            ["serve", "--port", str(port), "--no-worker", "--workers", "1"],
            log_path,
            database_url=url,
            sandbox=1,
            ready_min_free_mb=4,
        )
        try:
            await eventually(lambda: serving(base), interval=0.2)
            [before] = await create_orders(base, pid, key, 1, prefix="BEFORE")
            await asyncio.to_thread(fill, disk)
            during = await create_orders(base, pid, key, 40, prefix="DURING")
        finally:
            server.stop()
    assert before["code"] == 1, before
    assert all(answer["code"] != 1 for answer in during), during
    logged = records(log_path)
    assert_one_traceback_per_kind(logged)
    assert held_back(logged) >= 30

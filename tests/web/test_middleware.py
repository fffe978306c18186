"""What happens to a request before any route sees it: its path, its body, and how it is logged and counted."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from urllib.parse import urlsplit

import httpx

from tests.support.answers import json_answer, page_message
from tests.support.gateways import own_server
from tests.support.metrics import requests_counted
from tests.support.waiting import eventually

ACCESS = "openepay.access"


def errors_logged(caplog) -> list[logging.LogRecord]:  # type: ignore[no-untyped-def]
    return [record for record in caplog.records if record.levelno >= logging.ERROR]


async def counted(url: str) -> dict[tuple[str, str, int], float]:
    async with httpx.AsyncClient(base_url=url, timeout=10) as client:
        return await requests_counted(client)


def statuses(series: dict[tuple[str, str, int], float]) -> set[int]:
    return {status for _, _, status in series}


@asynccontextmanager
async def raw_connection(url: str) -> AsyncIterator[tuple[asyncio.StreamReader, asyncio.StreamWriter]]:
    parts = urlsplit(url)
    reader, writer = await asyncio.open_connection(parts.hostname, parts.port)
    try:
        yield reader, writer
    finally:
        writer.close()


def access_lines(caplog) -> list[logging.LogRecord]:  # type: ignore[no-untyped-def]
    """The request log lines (the test must have called ``caplog.set_level(logging.INFO, ACCESS)``)."""
    return [record for record in caplog.records if record.name == ACCESS]


# --- Paths ------------------------------------------------------------------------------------------


async def test_a_nul_in_the_path_gets_the_routes_own_not_found(server, merchant, caplog):
    """``/cashier/%00`` was a 500 and a traceback on PostgreSQL; each route now says "not found" its own way."""
    async with server.client() as client:
        assert page_message(await client.get("/cashier/%00"), status=404) == "找不到这笔订单，请返回商户网站重新下单。"
        status = await client.get("/cashier/1%00/status")
        assert (status.status_code, status.json()) == (404, {"status": "not_found", "paid": False})
        assert (await client.get("/cashier/%00/return")).status_code == 404
        assert (await client.get("/sandbox/pay/%00")).status_code == 404
        assert json_answer(await client.get(f"/vmq/{merchant.pid}%00/getOrder"))["msg"] == "商户不存在或已停用"
        assert json_answer(await client.get("/api/pay%00/query")) == {"code": -5, "msg": "接口方法不存在"}
        callback = await client.post("/channels/sandbox%00/notify")
        assert (callback.status_code, callback.text) == (404, "unknown channel account")
    assert not errors_logged(caplog)


# --- Bodies over the limit --------------------------------------------------------------------------


async def test_a_body_over_the_limit_is_counted_and_logged_as_413_not_500(database_url, caplog):
    caplog.set_level(logging.INFO, ACCESS)
    big = b"param=" + b"x" * 1_100_000

    async def pieces():  # type: ignore[no-untyped-def]
        for start in range(0, len(big), 65536):
            yield big[start : start + 65536]

    with own_server(database_url) as gateway:
        async with httpx.AsyncClient(base_url=gateway.url, timeout=30) as client:
            headers = {"Content-Type": "application/x-www-form-urlencoded"}
            declared = await client.post("/mapi.php", content=big, headers=headers)
            chunked = await client.post("/mapi.php", content=pieces(), headers=headers)
        series = await counted(gateway.url)
    assert (declared.status_code, chunked.status_code) == (413, 413)
    assert series[("POST", "unmatched", 413)] == 2
    assert 500 not in statuses(series)
    assert [record.status for record in access_lines(caplog)].count(413) == 2
    assert not errors_logged(caplog)


async def test_a_client_that_asks_to_continue_is_refused_before_it_sends_a_big_body(database_url):
    with own_server(database_url) as gateway:
        async with raw_connection(gateway.url) as (reader, writer):
            writer.write(
                b"POST /mapi.php HTTP/1.1\r\nHost: x\r\nContent-Length: 5000000\r\nExpect: 100-continue\r\n\r\n"
            )
            answer = await asyncio.wait_for(reader.read(), timeout=30)
    assert answer.startswith(b"HTTP/1.1 413 ")
    assert b"100 Continue" not in answer


# --- Clients that go away or send slowly ------------------------------------------------------------


async def test_a_client_gone_before_its_body_arrived_is_recorded_as_499_and_nothing_fails(database_url, caplog):
    caplog.set_level(logging.INFO, ACCESS)
    with own_server(database_url) as gateway:
        async with raw_connection(gateway.url) as (_, writer):
            writer.write(b"POST /mapi.php HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\npid=10")
            await writer.drain()

        async def recorded() -> dict[str, float] | None:
            series = await counted(gateway.url)
            return series if ("POST", "unmatched", 499) in series else None

        series = await eventually(recorded)
    assert 500 not in statuses(series)
    assert [record.status for record in access_lines(caplog) if record.path == "/mapi.php"] == [499]
    assert not errors_logged(caplog)


async def test_a_body_sent_too_slowly_is_answered_408_and_the_connection_closed(database_url, caplog):
    with own_server(database_url, http_body_timeout=0.5) as gateway:
        async with raw_connection(gateway.url) as (reader, writer):
            writer.write(b"POST /mapi.php HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\npid=10")
            await writer.drain()
            # Nothing more is sent: the server must answer and close by itself (bounded here, not timed).
            answer = await asyncio.wait_for(reader.read(), timeout=30)
        series = await counted(gateway.url)
    assert answer.startswith(b"HTTP/1.1 408 ")
    assert answer.endswith(b"request body timed out")
    assert series[("POST", "unmatched", 408)] == 1
    assert not errors_logged(caplog)


async def test_a_whole_body_still_reaches_the_route(database_url):
    """Reading the body first changes nothing for a client that sends it: the dialect reads it as before."""
    with own_server(database_url, http_body_timeout=0.5) as gateway:
        async with raw_connection(gateway.url) as (reader, writer):
            body = b"pid=abc"
            writer.write(
                b"POST /mapi.php HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-www-form-urlencoded\r\n"
                b"Connection: close\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body)
            )
            answer = await asyncio.wait_for(reader.read(), timeout=30)
    assert answer.startswith(b"HTTP/1.1 200 ")
    assert answer.endswith('{"code":-1,"msg":"商户ID不能为空"}'.encode())

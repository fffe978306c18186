"""The request log: one structured line per request when on, none when off, never a buyer's handle."""

from __future__ import annotations

import logging

import httpx

from openepay.web.middleware import logged_path
from tests.support.gateways import own_server
from tests.support.links import LINKS, cashier_path, sandbox_path
from tests.support.orders import sandbox_order

ACCESS = "openepay.access"


def access_lines(caplog) -> list[logging.LogRecord]:  # type: ignore[no-untyped-def]
    return [record for record in caplog.records if record.name == ACCESS]


async def test_a_request_line_names_the_route_and_keeps_no_handle(gateway, merchant, database_url, caplog):
    caplog.set_level(logging.INFO, ACCESS)
    order = await sandbox_order(gateway, merchant.pid, "LOG-1")
    handle = LINKS.handle(order.trade_no)
    with own_server(database_url) as server:
        async with httpx.AsyncClient(base_url=server.url, timeout=30) as client:
            assert (await client.get(cashier_path(order.trade_no))).status_code == 200
            assert (await client.get(sandbox_path(order.trade_no))).status_code == 200
            assert (await client.get(f"/cashier/{handle}/no/such/page")).status_code == 404
            assert (await client.get("/healthz")).status_code == 200
    lines = access_lines(caplog)
    assert [(line.method, line.route, line.status) for line in lines] == [
        ("GET", "/cashier/{handle}", 200),
        ("GET", "/sandbox/pay/{handle}", 200),
        ("GET", "unmatched", 404),
        ("GET", "/healthz", 200),
    ]
    assert lines[0].path == f"/cashier/{handle[:8]}…" and lines[3].path == "/healthz"
    mac = handle.partition("-")[2]
    assert not [line for line in caplog.records if mac in line.getMessage() or mac in str(vars(line))]


async def test_without_the_access_log_requests_are_still_counted_but_not_logged(gateway, database_url, caplog):
    caplog.set_level(logging.INFO, ACCESS)
    with own_server(database_url, access_log=False) as server:
        async with httpx.AsyncClient(base_url=server.url, timeout=30) as client:
            assert (await client.get("/healthz")).status_code == 200
            metrics = (await client.get("/metrics")).text
    assert access_lines(caplog) == []
    assert 'openepay_http_requests_total{method="GET",route="/healthz",status="200"} 1.0' in metrics


def test_long_path_segments_are_cut_short_and_short_paths_kept():
    assert logged_path("/mapi.php") == "/mapi.php"
    assert logged_path("/vmq/1000/createOrder") == "/vmq/1000/createOrder"
    assert logged_path("/a/" + "x" * 25 + "/b") == "/a/xxxxxxxx…/b"


async def test_the_hot_endpoints_are_counted_and_logged_by_their_own_names(gateway, database_url, caplog):
    """``mapi.php`` and ``api.php`` are plain Starlette routes (no FastAPI work per request); they
    are still named in the metrics and the log, not lumped in with paths no route matches."""
    caplog.set_level(logging.INFO, ACCESS)
    with own_server(database_url) as server:
        async with httpx.AsyncClient(base_url=server.url, timeout=30) as client:
            assert (await client.post("/mapi.php", data={})).status_code == 200
            assert (await client.get("/api.php", params={"act": "query"})).status_code == 200
            metrics = (await client.get("/metrics")).text
    assert [(line.method, line.route) for line in access_lines(caplog)][:2] == [
        ("POST", "/mapi.php"),
        ("GET", "/api.php"),
    ]
    assert 'openepay_http_requests_total{method="POST",route="/mapi.php",status="200"} 1.0' in metrics
    assert 'openepay_http_requests_total{method="GET",route="/api.php",status="200"} 1.0' in metrics

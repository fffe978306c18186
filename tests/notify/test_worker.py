"""The notification worker, seen from the merchant's endpoint and the delivery log.

Orders are created and paid through the real gateway over HTTP; the merchant's endpoint is
a real server on loopback that checks our signatures the way merchant plugins do. The test
settings retry after (0.3, 0.6, 1.0) seconds.
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator
from dataclasses import replace
from datetime import UTC, datetime

import pytest
import pytest_asyncio

from openepay.core.states import NotifyStatus
from openepay.gateway import Gateway
from openepay.notify.worker import NotifyWorker
from tests.support.merchant import plugin_sign
from tests.support.notify import Answer, delivery_log, paid_order, settled
from tests.support.settings import make_settings
from tests.support.waiting import eventually

DELAYS = (0.3, 0.6, 1.0)


@pytest_asyncio.fixture
async def strict_gateway(database_url: str) -> AsyncIterator[Gateway]:
    """The gateway as deployed by default: merchant URLs on private networks are refused."""
    gateway = Gateway.from_settings(make_settings(database_url, notify_allow_private=False))
    yield gateway
    await gateway.aclose()


async def test_a_paid_order_is_delivered_to_the_merchant_once_the_worker_runs(server, merchant, shop, worker):
    before = datetime.now(UTC)
    trade_no = await paid_order(server, merchant, f"{shop.url}/notify", "W-1", money="9.90", param="uid=7")

    [notification] = await eventually(shop.notifications)
    assert notification.signature_ok is True
    assert notification.params == {
        "pid": str(merchant.pid),
        "trade_no": trade_no,
        "out_trade_no": "W-1",
        "type": "alipay",
        "name": "VIP会员",
        "money": "9.90",
        "trade_status": "TRADE_SUCCESS",
        "param": "uid=7",
        "sign": plugin_sign(notification.params, merchant.key),
        "sign_type": "MD5",
    }
    task, [attempt] = await eventually(settled(server.gateway, trade_no, NotifyStatus.SUCCEEDED))
    assert task.attempts == 1 and task.last_error is None
    assert task.delivered_at is not None and task.delivered_at >= before
    assert attempt.delivered is True
    assert attempt.http_status == 200 and attempt.body_head == "success" and attempt.error_class is None
    assert shop.notifications() == [notification]


@pytest.mark.parametrize(
    "answer",
    [
        Answer(200, b"success"),
        Answer(200, b"SUCCESS"),
        Answer(200, b"Success"),
        Answer(200, '{"state":"success","msg":"支付成功"}'.encode()),
        Answer(200, b"<html><body><p>notify handled: success</p></body></html>"),
        Answer(500, b"success"),
        Answer(404, b"SUCCESS"),
    ],
    ids=["success", "SUCCESS", "Success", "sspanel-json", "html-page", "500-success", "404-SUCCESS"],
)
async def test_bodies_containing_success_count_as_delivered_whatever_the_status(
    server, merchant, scripted_shop, worker, answer
):
    shop = scripted_shop(answer)
    trade_no = await paid_order(server, merchant, f"{shop.url}/notify", "ACK-1")

    task, [attempt] = await eventually(settled(server.gateway, trade_no, NotifyStatus.SUCCEEDED))
    assert task.attempts == 1
    assert attempt.delivered is True
    assert attempt.http_status == answer.status
    assert attempt.body_head == answer.body.decode()
    assert len(shop.received) == 1 and shop.received[0].signature_ok is True


@pytest.mark.parametrize(
    ("answer", "error_class"),
    [
        (Answer(200, b"fail"), "non_success_body"),
        (Answer(200, b""), "non_success_body"),
        (Answer(200, b"sUccess"), "non_success_body"),
        (Answer(200, b"ok"), "non_success_body"),
        (
            Answer(302, b"<a href='https://s.example/notify'>Found</a>", (("Location", "https://s.example/notify"),)),
            "redirect",
        ),
        (Answer(302, b"success", (("Location", "/notify/success"),)), "redirect"),
    ],
    ids=["fail", "empty", "sUccess", "ok", "302-to-https", "302-with-success-body"],
)
async def test_other_answers_are_not_delivered_and_are_retried(
    server, merchant, scripted_shop, worker, answer, error_class
):
    shop = scripted_shop(answer, Answer(200, b"success"))
    trade_no = await paid_order(server, merchant, f"{shop.url}/notify", "NACK-1")

    task, attempts = await eventually(settled(server.gateway, trade_no, NotifyStatus.SUCCEEDED))
    first, second = attempts
    assert first.delivered is False
    assert first.error_class == error_class
    assert first.http_status == answer.status
    assert first.body_head == answer.body.decode()
    assert second.delivered is True
    assert task.attempts == 2
    assert [entry.path for entry in shop.received] == ["/notify", "/notify"]


async def test_retries_follow_the_configured_delays_until_the_merchant_acknowledges(
    server, merchant, scripted_shop, worker
):
    assert server.settings.notify_retry_delays == DELAYS
    shop = scripted_shop(Answer(200, b"fail"), Answer(503, b"busy"), Answer(200, b"success"))
    trade_no = await paid_order(server, merchant, f"{shop.url}/notify", "RETRY-1")

    task, attempts = await eventually(settled(server.gateway, trade_no, NotifyStatus.SUCCEEDED))
    assert task.attempts == 3
    assert [a.number for a in attempts] == [1, 2, 3]
    assert [a.delivered for a in attempts] == [False, False, True]
    assert [a.http_status for a in attempts] == [200, 503, 200]
    assert len(shop.received) == 3
    arrivals = [entry.at for entry in shop.received]
    assert arrivals[1] - arrivals[0] >= DELAYS[0]
    assert arrivals[2] - arrivals[1] >= DELAYS[1]
    starts = [a.started_at for a in attempts]
    assert (starts[1] - starts[0]).total_seconds() >= DELAYS[0]
    assert (starts[2] - starts[1]).total_seconds() >= DELAYS[1]
    assert all(entry.signature_ok for entry in shop.received)
    assert len({entry.params["sign"] for entry in shop.received}) == 1


async def test_a_merchant_that_never_acknowledges_gets_every_retry_then_the_task_fails(
    server, merchant, scripted_shop, worker
):
    shop = scripted_shop(Answer(200, b"fail"))
    trade_no = await paid_order(server, merchant, f"{shop.url}/notify", "GIVEUP-1")

    task, attempts = await eventually(settled(server.gateway, trade_no, NotifyStatus.FAILED))
    assert task.attempts == 1 + len(DELAYS)
    assert [a.number for a in attempts] == [1, 2, 3, 4]
    assert not any(a.delivered for a in attempts)
    assert task.last_error is not None
    assert "non_success_body" in task.last_error and "HTTP 200" in task.last_error and "fail" in task.last_error
    assert task.delivered_at is None
    arrivals = [entry.at for entry in shop.received]
    assert len(arrivals) == 4
    for gap, delay in zip((b - a for a, b in zip(arrivals, arrivals[1:], strict=False)), DELAYS, strict=True):
        assert gap >= delay
    # A failed task is never claimed again: the worker, idle, leaves it alone.
    assert await NotifyWorker(server.gateway, name="idle").run_once() == 0


async def test_every_attempt_is_logged(server, merchant, scripted_shop, worker):
    long_body = ("fail: " + "x" * 500).encode()
    shop = scripted_shop(Answer(500, long_body), Answer(200, b"success"), delay=0.15)
    before = datetime.now(UTC)
    trade_no = await paid_order(server, merchant, f"{shop.url}/notify", "LOG-1")

    task, (failed, delivered) = await eventually(settled(server.gateway, trade_no, NotifyStatus.SUCCEEDED))
    after = datetime.now(UTC)
    assert failed.number == 1
    assert before <= failed.started_at <= delivered.started_at <= after
    assert failed.target_host == "127.0.0.1"
    assert failed.http_status == 500
    assert failed.body_head == long_body.decode()[:200]
    assert 150 <= failed.latency_ms < 3000
    assert failed.error_class == "non_success_body"
    assert failed.delivered is False
    assert delivered.number == 2
    assert delivered.target_host == "127.0.0.1"
    assert delivered.http_status == 200 and delivered.body_head == "success"
    assert 150 <= delivered.latency_ms < 3000
    assert delivered.error_class is None and delivered.delivered is True
    assert task.last_error is None


async def test_an_unreachable_merchant_is_logged_as_connection_refused(server, merchant, worker):
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    trade_no = await paid_order(server, merchant, f"http://127.0.0.1:{port}/notify", "DOWN-1")

    async def first_attempt():  # type: ignore[no-untyped-def]
        task, attempts = await delivery_log(server.gateway, trade_no)
        return (task, attempts[0]) if attempts else None

    task, attempt = await eventually(first_attempt)
    assert attempt.error_class == "connection_refused"
    assert attempt.error_detail == f"connection to 127.0.0.1:{port} refused"
    assert attempt.http_status is None and attempt.body_head is None
    assert attempt.delivered is False
    assert task.last_error == f"connection_refused: connection to 127.0.0.1:{port} refused"


async def test_a_host_that_cannot_be_looked_up_is_logged_as_a_dns_failure(server, merchant, worker):
    # A well-formed name nobody answers for (RFC 6761); a malformed one is refused at creation.
    trade_no = await paid_order(server, merchant, "http://no-such-shop.invalid/notify", "DNS-1")

    async def first_attempt():  # type: ignore[no-untyped-def]
        task, attempts = await delivery_log(server.gateway, trade_no)
        return (task, attempts[0]) if attempts else None

    task, attempt = await eventually(first_attempt)
    assert attempt.error_class == "dns_failure"
    assert attempt.error_detail.startswith("cannot resolve no-such-shop.invalid")
    assert attempt.target_host == "no-such-shop.invalid"
    assert attempt.delivered is False and attempt.http_status is None
    assert task.status == NotifyStatus.PENDING and task.last_error.startswith("dns_failure: cannot resolve")


async def test_a_private_target_is_refused_by_a_default_gateway_and_logged(server, merchant, shop, strict_gateway):
    trade_no = await paid_order(server, merchant, f"{shop.url}/notify", "SSRF-1")
    strict_worker = NotifyWorker(strict_gateway, name="strict")
    try:
        assert await strict_worker.run_once() == 1
    finally:
        await strict_worker.aclose()

    task, [attempt] = await delivery_log(server.gateway, trade_no)
    assert attempt.error_class == "blocked_address"
    assert attempt.error_detail == "127.0.0.1 is not a public address"
    assert attempt.target_host == "127.0.0.1"
    assert attempt.http_status is None and attempt.delivered is False
    assert task.status == NotifyStatus.PENDING and task.attempts == 1
    assert task.last_error == "blocked_address: 127.0.0.1 is not a public address"
    assert shop.received == []


async def test_messages_are_signed_at_send_time_so_a_retry_uses_a_rotated_key(server, gateway, merchant, scripted_shop):
    shop = scripted_shop(Answer(200, b"fail"), Answer(200, b"success"))
    trade_no = await paid_order(server, merchant, f"{shop.url}/notify", "ROTATE-1")
    manual = NotifyWorker(gateway, name="manual")
    try:
        assert await manual.run_once() == 1
        [first] = shop.received
        assert first.signature_ok is True  # checked with the key in use at the time

        rotated = await gateway.merchants.rotate_key(merchant.pid)
        assert rotated.key != merchant.key
        shop.key = rotated.key

        await eventually(manual.run_once)
    finally:
        await manual.aclose()
    _, second = shop.received
    assert second.signature_ok is True
    assert second.params["sign"] == plugin_sign(second.params, rotated.key)
    assert second.params["sign"] != first.params["sign"]
    assert {k: v for k, v in second.params.items() if k != "sign"} == {
        k: v for k, v in first.params.items() if k != "sign"
    }
    task, _ = await delivery_log(gateway, trade_no)
    assert task.status == NotifyStatus.SUCCEEDED


async def test_the_worker_stops_promptly_when_asked(gateway):
    idle = NotifyWorker(gateway, name="stopper")
    stop = asyncio.Event()
    running = asyncio.create_task(idle.run(stop))
    await asyncio.sleep(0)
    stop.set()
    await asyncio.wait_for(running, timeout=1.0)
    await idle.aclose()


async def test_a_busy_worker_claims_again_once_half_its_slots_are_free(server, gateway, merchant, shop, database_url):
    """Each claim, and the record of its batch, costs the database about as much for one
    notification as for many: while deliveries run, the worker waits for half its slots."""
    settings = make_settings(database_url, notify_concurrency=8, worker_poll_interval=60)
    busy_worker = NotifyWorker(replace(gateway, settings=settings), name="half-busy")
    busy = {asyncio.create_task(asyncio.Event().wait()) for _ in range(5)}
    try:
        assert await busy_worker.dispatch() == 0  # nothing due yet: the last claim is now
        for n in range(6):
            await paid_order(server, merchant, f"{shop.url}/notify", f"HALF-{n}")
        busy_worker._in_flight.update(busy)

        three_free = await busy_worker.dispatch()
        busy_worker._in_flight.discard(busy.pop())
        four_free = await busy_worker.dispatch()
    finally:
        for task in busy:
            task.cancel()
            busy_worker._in_flight.discard(task)
        await busy_worker._drain()
        await busy_worker.aclose()

    assert three_free == 0
    # Four slots of eight, and the merchant's cap of four in flight.
    assert four_free == 4

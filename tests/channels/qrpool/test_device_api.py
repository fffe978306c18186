"""Our own device API: signed JSON batches, a nonce and a timestamp, an answer per event, safe retries."""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import secrets
import time
from dataclasses import dataclass, replace

import httpx
from sqlalchemy import select

from openepay.channels.qrpool import signing
from openepay.core.states import OrderStatus
from openepay.db.models import QrDevice
from openepay.db.types import utcnow
from tests.support.qrpool import offered
from tests.support.vmq_phone import notifications, qrpool_server, reload, stored_events

EVENTS = "/qrpool/device/v1/events"
HEARTBEAT = "/qrpool/device/v1/heartbeat"


@dataclass
class Device:
    """A device of our own API, signing as the documentation says (written here with hmac, not the gateway's code)."""

    url: str
    device_id: int
    key: str
    clock_offset: float = 0.0

    def envelope(self, events: list | None = None, **overrides: object) -> dict:
        body: dict = {
            "device_id": self.device_id,
            "nonce": secrets.token_hex(16),
            "timestamp": int(time.time() + self.clock_offset),
        }
        if events is not None:
            body["events"] = events
        body.update(overrides)
        return body

    def event(self, event_id: str, amount: object, pay_type: str = "wxpay", ago: float = 5) -> dict:
        return {
            "id": event_id,
            "type": pay_type,
            "amount": amount,
            "occurred_at": int(time.time() + self.clock_offset - ago),
        }

    async def post(
        self, path: str, body: dict | bytes, *, key: str | None = None, upper_case: bool = False
    ) -> httpx.Response:
        raw = body if isinstance(body, bytes) else json.dumps(body).encode()
        signature = hmac.new((key or self.key).encode(), raw, hashlib.sha256).hexdigest()
        signature = signature.upper() if upper_case else signature
        async with httpx.AsyncClient(base_url=self.url, timeout=10) as client:
            return await client.post(
                path, content=raw, headers={"Content-Type": "application/json", "X-Signature": signature}
            )

    async def send(self, *events: dict) -> list[dict]:
        response = await self.post(EVENTS, self.envelope(list(events)))
        assert response.status_code == 200, response.text
        return response.json()["results"]


async def paired_device(qr, account_name: str = "wx-main", pay_type: str = "wxpay", **kwargs) -> Device:  # type: ignore[no-untyped-def]
    _, device, phone = await qr.pair(account_name, pay_type)
    return Device(qr.url, device.id, phone.key, **kwargs)


def test_the_documented_signature_vector():
    body = (
        b'{"device_id":3,"nonce":"abcdef0123456789","timestamp":1704067200,'
        b'"events":[{"id":"n-1042","type":"wxpay","amount":"9.91","occurred_at":1704067195}]}'
    )
    expected = "bccb78d5c99d35d5d68ea86f2bd156750344c54b987ec3bc8ee91ed4f5945e06"
    assert signing.body_sign(body, "0123456789abcdef0123456789abcdef") == expected
    assert hmac.new(b"0123456789abcdef0123456789abcdef", body, hashlib.sha256).hexdigest() == expected


def statuses(results: list[dict]) -> list[tuple]:
    return [(result["id"], result["status"], result["decision"]) for result in results]


async def test_a_batch_is_acknowledged_event_by_event_and_a_retry_matches_nothing_twice(
    gateway, merchant, database_url
):
    async with qrpool_server(database_url) as qr:
        device = await paired_device(qr)
        first = await offered(qr.gateway, merchant.pid, "B-1", 1000)
        second = await offered(qr.gateway, merchant.pid, "B-2", 1000)
        third = await offered(qr.gateway, merchant.pid, "B-3", 2000)

        batch = [device.event("n-1", "10.00"), device.event("n-2", "5.55"), device.event("n-3", "9.999")]
        answered = await device.send(*batch)
        # Our answer was lost: the device sends the same events again, with one more, in a new request.
        retried = await device.send(*batch, device.event("n-4", "10.01"), device.event("n-5", "20"))

    assert statuses(answered) == [
        ("n-1", "accepted", "paid"),
        ("n-2", "accepted", "unmatched"),
        ("n-3", "rejected", "rejected"),
    ]
    assert answered[0]["reason"] == f"10.00 paid order {first.trade_no}"
    assert statuses(retried) == [
        ("n-1", "duplicate", "paid"),
        ("n-2", "duplicate", "unmatched"),
        ("n-3", "duplicate", "rejected"),
        ("n-4", "accepted", "paid"),
        ("n-5", "accepted", "paid"),
    ]
    assert retried[:3] == [{**result, "status": "duplicate"} for result in answered]
    for order in (first, second, third):
        assert (await reload(gateway, order)).status == OrderStatus.PAID
    assert await notifications(gateway) == {first.trade_no: 1, second.trade_no: 1, third.trade_no: 1}
    events = await stored_events(gateway)
    assert [event.decision for event in events] == ["paid", "unmatched", "rejected", "paid", "paid"]
    assert {event.source for event in events} == {"device"}
    assert (await qr.gateway.merchants.get(merchant.pid)).balance_fen == 1000 + 1001 + 2000


async def test_the_same_event_id_twice_in_one_batch_is_one_event(gateway, merchant, database_url):
    async with qrpool_server(database_url) as qr:
        device = await paired_device(qr)
        order = await offered(qr.gateway, merchant.pid, "SAME-1", 300)
        results = await device.send(device.event("x", "3.00"), device.event("x", "3.00"))
    assert statuses(results) == [("x", "accepted", "paid"), ("x", "duplicate", "paid")]
    assert await notifications(gateway) == {order.trade_no: 1}


async def test_event_ids_are_per_device(gateway, merchant, database_url):
    async with qrpool_server(database_url) as qr:
        one = await paired_device(qr)
        other = await paired_device(qr)
        first = await offered(qr.gateway, merchant.pid, "PER-1", 100)
        second = await offered(qr.gateway, merchant.pid, "PER-2", 100)
        assert statuses(await one.send(one.event("e-1", "1.00"))) == [("e-1", "accepted", "paid")]
        assert statuses(await other.send(other.event("e-1", "1.01"))) == [("e-1", "accepted", "paid")]
    assert await notifications(gateway) == {first.trade_no: 1, second.trade_no: 1}


async def test_requests_that_are_not_signed_by_the_device_are_refused(gateway, merchant, database_url):
    async with qrpool_server(database_url) as qr:
        device = await paired_device(qr)
        other = await paired_device(qr, "wx-other")
        order = await offered(qr.gateway, merchant.pid, "SIG-1", 100)
        body = device.envelope([device.event("s-1", "1.00")])
        raw = json.dumps(body).encode()
        signature = hmac.new(device.key.encode(), raw, hashlib.sha256).hexdigest()
        tampered = raw.replace(b'"1.00"', b'"1.01"')
        async with httpx.AsyncClient(base_url=qr.url) as client:
            answers = [
                await device.post(EVENTS, body, key="not-the-key"),
                await device.post(EVENTS, body, key=other.key),
                await client.post(EVENTS, content=tampered, headers={"X-Signature": signature}),
                await client.post(EVENTS, content=raw),
                await device.post(EVENTS, {**body, "device_id": 999}),
                await device.post(EVENTS, b"not json"),
                await device.post(EVENTS, b'["a list"]'),
            ]
    assert [answer.status_code for answer in answers] == [401, 401, 401, 401, 401, 400, 400]
    assert all("error" in answer.json() for answer in answers)
    assert (await reload(gateway, order)).status == OrderStatus.PAYING
    assert await stored_events(gateway) == []


async def test_a_request_is_accepted_once_and_only_while_fresh(gateway, merchant, database_url):
    async with qrpool_server(database_url, qrpool_push_window_seconds=300) as qr:
        device = await paired_device(qr)
        order = await offered(qr.gateway, merchant.pid, "NONCE-1", 100)
        body = device.envelope([device.event("r-1", "1.00")])
        first = await device.post(EVENTS, body)
        replayed = await device.post(EVENTS, body)
        # The nonce is inside the signed body: the signature spelled in capitals is the same request.
        respelled = await device.post(EVENTS, body, upper_case=True)
        stale = await device.post(
            EVENTS, device.envelope([device.event("r-2", "1.00")], timestamp=int(time.time()) - 305)
        )
        future = await device.post(
            EVENTS, device.envelope([device.event("r-3", "1.00")], timestamp=int(time.time()) + 305)
        )
        short_nonce = await device.post(EVENTS, device.envelope([device.event("r-4", "1.00")], nonce="abc"))

    assert first.status_code == 200
    assert replayed.status_code == respelled.status_code == 409 and "nonce" in replayed.json()["error"]
    assert stale.status_code == future.status_code == 401 and "timestamp" in stale.json()["error"]
    assert (short_nonce.status_code, short_nonce.json()) == (
        400,
        {"error": "nonce must be 8 to 64 letters, digits, '-' or '_'"},
    )
    assert [event.decision for event in await stored_events(gateway)] == ["paid"]
    assert await notifications(gateway) == {order.trade_no: 1}


async def test_a_device_whose_clock_is_off_still_matches_its_payments(gateway, merchant, database_url):
    async with qrpool_server(database_url) as qr:
        device = await paired_device(qr, clock_offset=-240)
        order = await offered(qr.gateway, merchant.pid, "CLOCK-1", 700)
        # By its own clock the payment came 5 s ago, which is 4 minutes before the order existed by ours.
        results = await device.send(device.event("c-1", "7.00", ago=5))
    assert statuses(results) == [("c-1", "accepted", "paid")]
    assert (await reload(gateway, order)).status == OrderStatus.PAID


async def test_events_it_cannot_use_are_rejected_one_by_one(gateway, merchant, database_url):
    async with qrpool_server(database_url) as qr:
        device = await paired_device(qr)
        order = await offered(qr.gateway, merchant.pid, "REJ-1", 100)
        results = await device.send(
            "not an object",
            {"type": "wxpay", "amount": "1.00", "occurred_at": int(time.time())},
            {**device.event("bad-amount", 1.0)},
            {**device.event("bad-type", "1.00"), "type": "bank"},
            {**device.event("no-time", "1.00"), "occurred_at": "yesterday"},
            device.event("future", "1.00", ago=-600),
            device.event("good", "1.00"),
        )
    assert statuses(results) == [
        (None, "rejected", None),
        (None, "rejected", None),
        ("bad-amount", "rejected", "rejected"),
        ("bad-type", "rejected", "rejected"),
        ("no-time", "rejected", "rejected"),
        ("future", "rejected", "rejected"),
        ("good", "accepted", "paid"),
    ]
    assert "string" in results[2]["reason"] and "in the future" in results[5]["reason"]
    assert (await reload(gateway, order)).status == OrderStatus.PAID
    assert await notifications(gateway) == {order.trade_no: 1}


async def test_batches_must_hold_one_to_a_hundred_events(gateway, database_url):
    async with qrpool_server(database_url) as qr:
        device = await paired_device(qr)
        empty = await device.post(EVENTS, device.envelope([]))
        too_many = await device.post(EVENTS, device.envelope([device.event(f"m-{i}", "1.00") for i in range(101)]))
        missing = await device.post(EVENTS, device.envelope())
    for refused in (empty, too_many, missing):
        assert (refused.status_code, refused.json()) == (400, {"error": "events must be a list of 1 to 100 events"})
    assert await stored_events(gateway) == []


async def test_heartbeats_keep_the_account_taking_orders(gateway, database_url):
    async with qrpool_server(database_url) as qr:
        device = await paired_device(qr)
        before = utcnow()
        answer = await device.post(HEARTBEAT, device.envelope())
        unsigned = await device.post(HEARTBEAT, device.envelope(), key="wrong")
        async with gateway.db.session() as session:
            seen = (await session.scalars(select(QrDevice).where(QrDevice.id == device.device_id))).one()
    assert answer.status_code == 200
    assert answer.json()["status"] == "ok" and abs(answer.json()["server_time"] - time.time()) < 5
    assert (unsigned.status_code, unsigned.json()) == (401, {"error": "X-Signature does not verify for this device_id"})
    assert seen.last_heartbeat_at >= before


async def test_the_rate_limit_answers_429_and_the_retry_goes_through(gateway, merchant, database_url):
    """A refused request leaves nothing behind, not even its nonce: the device sends the very same signed
    bytes again where its minute is fresh and they pay the order. The limit is counted per process, so a
    second server on the same database (as a second ``serve`` worker) is where the minute is fresh
    without the test waiting one out."""
    async with qrpool_server(database_url, qrpool_device_rate_per_minute=2) as qr:
        device = await paired_device(qr)
        order = await offered(qr.gateway, merchant.pid, "RATE-1", 100)
        assert (await device.post(HEARTBEAT, device.envelope())).status_code == 200
        assert (await device.post(HEARTBEAT, device.envelope())).status_code == 200
        batch = device.envelope([device.event("l-1", "1.00")])
        limited = await device.post(EVENTS, batch)
        still_limited = await device.post(EVENTS, batch)
        assert await stored_events(gateway) == []
        assert (await reload(gateway, order)).status == OrderStatus.PAYING
        async with qrpool_server(database_url, qrpool_device_rate_per_minute=2) as fresh:
            retried = await replace(device, url=fresh.url).post(EVENTS, batch)
    refusal = {"error": "too many requests from this device: retry in a minute"}
    assert (limited.status_code, limited.json()) == (still_limited.status_code, still_limited.json()) == (429, refusal)
    assert retried.status_code == 200, retried.text
    assert statuses(retried.json()["results"]) == [("l-1", "accepted", "paid")]
    assert (await reload(gateway, order)).status == OrderStatus.PAID
    assert await notifications(gateway) == {order.trade_no: 1}


async def test_the_documented_signature_example_works(gateway, merchant, database_url):
    async with qrpool_server(database_url) as qr:
        device = await paired_device(qr)
        order = await offered(qr.gateway, merchant.pid, "DOC-1", 991)
        # As in the operator's documentation: sign the exact bytes sent.
        body = json.dumps(
            {
                "device_id": device.device_id,
                "nonce": secrets.token_hex(16),
                "timestamp": int(time.time()),
                "events": [{"id": "n-1042", "type": "wxpay", "amount": "9.91", "occurred_at": int(time.time())}],
            },
            separators=(",", ":"),
        ).encode()
        signature = hmac.new(device.key.encode(), body, hashlib.sha256).hexdigest()
        async with httpx.AsyncClient(base_url=qr.url) as client:
            response = await client.post(
                EVENTS, content=body, headers={"Content-Type": "application/json", "X-Signature": signature}
            )
    assert response.json() == {
        "results": [
            {"id": "n-1042", "status": "accepted", "decision": "paid", "reason": f"9.91 paid order {order.trade_no}"}
        ]
    }


async def test_text_no_database_can_store_is_refused_before_anything_is_recorded(gateway, database_url, caplog):
    """JSON can spell a NUL (``\\u0000``) and a lone surrogate (``\\ud800``): no database takes them."""
    async with qrpool_server(database_url) as qr:
        device = await paired_device(qr)
        bodies = [
            device.envelope([device.event("nul-amount", "1.00\x00")]),
            device.envelope([{**device.event("nul-type", "1.00"), "type": "wxpay\x00"}]),
            device.envelope([{**device.event("nul-key", "1.00"), "\x00": 1}]),
            device.envelope(nonce="\ud800" * 8),
        ]
        responses = [await device.post(EVENTS, body) for body in bodies]
        responses.append(await device.post(HEARTBEAT, device.envelope(note="\x00")))
    for response in responses:
        assert response.status_code == 400, response.text
        assert "NUL" in response.json()["error"]
    assert await stored_events(gateway) == []
    assert not [record for record in caplog.records if record.levelno >= logging.ERROR]


async def test_a_body_nested_past_any_parser_is_refused_as_not_json(gateway, database_url):
    async with qrpool_server(database_url) as qr:
        device = await paired_device(qr)
        response = await device.post(EVENTS, b"[" * 200_000 + b"]" * 200_000)
    assert (response.status_code, response.json()) == (400, {"error": "the body is not JSON"})

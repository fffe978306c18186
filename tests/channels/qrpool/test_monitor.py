"""V免签's ``/appHeart`` and ``/appPush`` as the stock monitor app calls them, with what we added to them."""

from __future__ import annotations

import logging
import re
import time
from datetime import timedelta

import pytest
from sqlalchemy import select

from openepay.channels.qrpool import signing
from openepay.channels.qrpool.accounts import set_device_enabled
from openepay.channels.qrpool.reservations import release_expired
from openepay.core.states import OrderStatus
from openepay.db.models import QrDevice
from openepay.db.types import utcnow
from tests.support.qrpool import offered
from tests.support.vmq_phone import (
    ALIPAY,
    WXPAY,
    md5,
    notifications,
    qrpool_server,
    reload,
    reservation_of,
    stored_events,
)

OK = {"code": 1, "msg": "成功"}
VECTOR_KEY = "k3y-example"
VECTOR_T = "1704067200000"


def ms(offset_seconds: float = 0) -> str:
    return str(int((time.time() + offset_seconds) * 1000))


# -- §7.4 of the reference: V免签's monitor signatures ---------------------------------------------


def test_heartbeat_vector():
    assert signing.heartbeat_sign(VECTOR_T, VECTOR_KEY) == "88b26e353285fc81061271e1a2fc774d"


@pytest.mark.parametrize(
    ("pay_type", "price", "sign"),
    [
        ("1", "9.91", "0e5e23b6549bae3421a56c4320ee136e"),
        ("1", "10.0", "e1a79be4bcb2208887329ccd311e2662"),
        ("1", "10.00", "101338e283d93032927ff716fa51bd4e"),
        ("1", "10", "795c4837a20d32b5092cdd1320226bcf"),
        ("2", "0.01", "006c47c74d26ea571eaba7f764e4ece9"),
    ],
)
def test_push_vectors(pay_type, price, sign):
    assert signing.push_sign(pay_type, price, VECTOR_T, VECTOR_KEY) == sign
    assert signing.same_sign(signing.push_sign(pay_type, price, VECTOR_T, VECTOR_KEY), sign)
    assert signing.same_sign(sign, sign.upper())


def test_the_three_renderings_of_ten_yuan_are_three_signatures():
    signs = {signing.push_sign("1", price, VECTOR_T, VECTOR_KEY) for price in ("10.0", "10.00", "10")}
    assert len(signs) == 3
    assert not signing.same_sign(
        signing.push_sign("1", "10.0", VECTOR_T, VECTOR_KEY), "795c4837a20d32b5092cdd1320226bcf"
    )


# -- heartbeats ------------------------------------------------------------------------------------


async def last_seen(gateway, device_id: int) -> QrDevice:
    async with gateway.db.session() as session:
        return (await session.scalars(select(QrDevice).where(QrDevice.id == device_id))).one()


async def test_a_heartbeat_is_answered_like_vmq_and_makes_the_account_take_orders(gateway, merchant, database_url):
    async with qrpool_server(database_url) as qr:
        account, device, phone = await qr.pair()
        async with qr.gateway.db.session() as session:
            (await session.get(QrDevice, device.id)).last_heartbeat_at = utcnow() - timedelta(hours=1)
        before = utcnow()
        assert await phone.heartbeat() == OK
        seen = await last_seen(gateway, device.id)
        assert before <= seen.last_heartbeat_at <= utcnow()
        order = await offered(qr.gateway, merchant.pid, "HB-1")
        assert order.channel == "qrpool" and order.status == OrderStatus.PAYING


async def test_heartbeats_with_a_wrong_key_a_stale_clock_or_a_replay_are_refused(gateway, database_url):
    async with qrpool_server(database_url) as qr:
        _, device, phone = await qr.pair()
        marked = (await last_seen(gateway, device.id)).last_heartbeat_at

        t = ms()
        wrong = await phone.get(f"/appHeart?t={t}&sign={md5(t + 'not-the-key')}")
        # 10 s beyond the window: far enough that no scheduling delay brings them back inside.
        stale = await phone.heartbeat(ms(-310))
        future = await phone.heartbeat(ms(+310))
        assert wrong["code"] == -1 and "签名" in wrong["msg"]
        assert stale["code"] == -1 and re.search(r"31[01] s behind", stale["msg"])
        assert future["code"] == -1 and "ahead of" in future["msg"]
        assert (await last_seen(gateway, device.id)).last_heartbeat_at == marked

        t = ms()
        assert await phone.heartbeat(t) == OK
        replayed = await phone.heartbeat(t)
        assert replayed["code"] == -1 and "already received" in replayed["msg"]


async def test_a_disabled_phone_is_no_longer_recognised(gateway, database_url):
    async with qrpool_server(database_url) as qr:
        _, device, phone = await qr.pair()
        await set_device_enabled(qr.gateway.db, device.id, False)
        answer = await phone.heartbeat()
    assert answer["code"] == -1 and "签名" in answer["msg"]


# -- payment pushes --------------------------------------------------------------------------------


async def test_a_push_pays_the_order_holding_the_amount(gateway, merchant, database_url):
    async with qrpool_server(database_url, qrpool_paid_cooldown_seconds=600) as qr:
        _, device, phone = await qr.pair()
        first = await offered(qr.gateway, merchant.pid, "P-1", 991)
        second = await offered(qr.gateway, merchant.pid, "P-2", 991)
        assert (first.pay_amount_fen, second.pay_amount_fen) == (991, 992)

        before = utcnow()
        assert await phone.push(WXPAY, "9.92") == OK

        paid, waiting = await reload(gateway, second), await reload(gateway, first)
        assert (paid.status, paid.paid_fen, paid.paid_late, paid.channel_trade_no) == ("paid", 992, False, "QR1")
        assert waiting.status == OrderStatus.PAYING
        assert await notifications(gateway) == {second.trade_no: 1}
        reservation = await reservation_of(gateway, second)
        assert reservation.state == "paid"
        assert before + timedelta(seconds=600) <= reservation.hold_until <= utcnow() + timedelta(seconds=600)
        assert (await reservation_of(gateway, first)).state == "held"
        [event] = await stored_events(gateway)
        assert (event.source, event.decision, event.order_id) == ("vmq", "paid", second.id)
        assert (event.amount_fen, event.amount_text, event.pay_type, event.device_id) == (
            992,
            "9.92",
            "wxpay",
            device.id,
        )
        assert event.reason == f"9.92 paid order {second.trade_no}"
        assert (await last_seen(gateway, device.id)).last_push_at >= before
        assert (await qr.gateway.merchants.get(merchant.pid)).balance_fen == 992


@pytest.mark.parametrize("price", ["10.0", "10.00", "10"])
async def test_any_rendering_of_the_reserved_amount_matches_and_is_verified_as_sent(
    gateway, merchant, database_url, price
):
    async with qrpool_server(database_url) as qr:
        _, _, phone = await qr.pair()
        order = await offered(qr.gateway, merchant.pid, "F-1", 1000)

        t = ms()
        other = {"10.0": "10.00", "10.00": "10", "10": "10.0"}[price]
        forged = await phone.get(f"/appPush?t={t}&type=1&price={price}&sign={md5('1' + other + t + phone.key)}")
        assert forged["code"] == -1 and "签名" in forged["msg"]
        assert await stored_events(gateway) == []

        assert await phone.push(WXPAY, price, t) == OK
        assert (await reload(gateway, order)).status == OrderStatus.PAID
        [event] = await stored_events(gateway)
        assert (event.amount_text, event.amount_fen, event.decision) == (price, 1000, "paid")


async def test_a_replayed_push_is_refused_and_credits_nothing_more(gateway, merchant, database_url):
    async with qrpool_server(database_url, qrpool_paid_cooldown_seconds=600) as qr:
        _, _, phone = await qr.pair()
        order = await offered(qr.gateway, merchant.pid, "R-1", 500)
        captured = phone.push_path(WXPAY, "5.0")
        assert await phone.get(captured) == OK

        # Once the cooldown is over and a new order takes 5.00 again, the captured URL must not pay it.
        assert await release_expired(qr.gateway.db, utcnow() + timedelta(seconds=601)) == 1
        newer = await offered(qr.gateway, merchant.pid, "R-2", 500)
        assert newer.pay_amount_fen == 500
        replayed = await phone.get(captured)

        assert replayed["code"] == -1 and "重复推送" in replayed["msg"]
        assert (await reload(gateway, newer)).status == OrderStatus.PAYING
        assert await notifications(gateway) == {order.trade_no: 1}
        assert [event.decision for event in await stored_events(gateway)] == ["paid"]
        assert (await qr.gateway.merchants.get(merchant.pid)).balance_fen == 500


async def test_a_push_split_differently_between_its_fields_is_the_same_push(gateway, merchant, database_url):
    """``md5(type + price + t + key)`` has nothing between its fields, so ``10.10`` then ``t`` signs exactly
    like ``10.1`` then ``0t``: one captured push must not become a second payment by moving a digit.
    (The stock app writes ``10.1``; apps that write two decimals exist.)"""
    async with qrpool_server(database_url, qrpool_paid_cooldown_seconds=600) as qr:
        _, _, phone = await qr.pair()
        order = await offered(qr.gateway, merchant.pid, "S-1", 1010)
        t = ms()
        assert await phone.push(WXPAY, "10.10", t) == OK
        assert await release_expired(qr.gateway.db, utcnow() + timedelta(seconds=601)) == 1
        newer = await offered(qr.gateway, merchant.pid, "S-2", 1010)
        assert newer.pay_amount_fen == 1010

        sign = md5(f"{WXPAY}10.10{t}{phone.key}")
        assert sign == md5(f"{WXPAY}10.1{'0' + t}{phone.key}")
        respelled = await phone.get(f"/appPush?t=0{t}&type={WXPAY}&price=10.1&sign={sign.upper()}")

        assert respelled["code"] == -1 and "重复推送" in respelled["msg"]
        assert (await reload(gateway, newer)).status == OrderStatus.PAYING
        assert await notifications(gateway) == {order.trade_no: 1}
        assert [event.decision for event in await stored_events(gateway)] == ["paid"]


async def test_a_timestamp_written_with_a_leading_zero_is_refused(gateway, merchant, database_url):
    """The app writes ``System.currentTimeMillis()``; a leading zero is another spelling of a signed string."""
    async with qrpool_server(database_url) as qr:
        _, device, phone = await qr.pair()
        marked = (await last_seen(gateway, device.id)).last_heartbeat_at
        heartbeat = await phone.heartbeat("0" + ms())
        assert heartbeat["code"] == -1 and "时间戳无效" in heartbeat["msg"]
        assert (await last_seen(gateway, device.id)).last_heartbeat_at == marked

        order = await offered(qr.gateway, merchant.pid, "Z-1", 500)
        push = await phone.push(WXPAY, "5.0", "0" + ms())
        assert push["code"] == -1 and "时间戳无效" in push["msg"]
        assert (await reload(gateway, order)).status == OrderStatus.PAYING


async def test_two_reports_of_one_payment_credit_it_once_and_never_the_next_order(gateway, merchant, database_url):
    async with qrpool_server(database_url) as qr:
        _, _, phone = await qr.pair()
        order = await offered(qr.gateway, merchant.pid, "D-1", 1990)
        assert await phone.paid(WXPAY, 1990) == OK
        # The next buyer of the same price must not be given 19.90 while the cooldown lasts.
        newer = await offered(qr.gateway, merchant.pid, "D-2", 1990)
        assert newer.pay_amount_fen == 1991

        # WeChat shows "微信支付" and "微信收款助手" for one payment: the app pushes twice, moments apart.
        second = await phone.paid(WXPAY, 1990, ms(+1))

        assert second["code"] == 1 and "just paid by order" in second["msg"]
        assert (await reload(gateway, order)).status == OrderStatus.PAID
        assert (await reload(gateway, newer)).status == OrderStatus.PAYING
        assert await notifications(gateway) == {order.trade_no: 1}
        first_event, duplicate = await stored_events(gateway)
        assert (first_event.decision, duplicate.decision) == ("paid", "suspected_duplicate")
        assert duplicate.order_id == order.id and order.trade_no in duplicate.reason
        assert (await qr.gateway.merchants.get(merchant.pid)).balance_fen == 1990


async def test_a_push_for_an_amount_nobody_holds_goes_to_the_unmatched_queue(gateway, merchant, database_url):
    async with qrpool_server(database_url) as qr:
        _, _, phone = await qr.pair()
        order = await offered(qr.gateway, merchant.pid, "U-1", 1000)
        answer = await phone.push(WXPAY, "10.01")

    assert answer["code"] == 1 and "recorded for review" in answer["msg"]
    assert (await reload(gateway, order)).status == OrderStatus.PAYING
    assert await notifications(gateway) == {}
    [event] = await stored_events(gateway)
    assert (event.decision, event.order_id, event.amount_fen) == ("unmatched", None, 1001)
    assert event.reason == "no order is waiting for 10.01 on account 'wx-main'"


async def test_a_phone_of_another_account_cannot_pay_this_accounts_orders(gateway, merchant, database_url):
    async with qrpool_server(database_url) as qr:
        await qr.pair("wx-a")
        order = await offered(qr.gateway, merchant.pid, "A-1", 1234)
        _, _, other_wx = await qr.pair("wx-b")
        _, _, alipay_phone = await qr.pair("ali-a", "alipay")
        from_other_account = await other_wx.push(WXPAY, "12.34")
        wrong_type = await alipay_phone.push(WXPAY, "12.34")

    assert from_other_account["code"] == 1 and wrong_type["code"] == 1
    assert (await reload(gateway, order)).status == OrderStatus.PAYING
    assert await notifications(gateway) == {}
    other, mistyped = await stored_events(gateway)
    assert other.decision == "unmatched" and other.reason == "no order is waiting for 12.34 on account 'wx-b'"
    assert mistyped.decision == "unmatched"
    assert mistyped.reason == "a wxpay payment of 12.34 reported for account 'ali-a', which takes alipay"


async def test_an_alipay_phone_pays_alipay_orders_with_type_2(gateway, merchant, database_url):
    async with qrpool_server(database_url) as qr:
        await qr.pair("wx-main")
        _, _, phone = await qr.pair("ali-main", "alipay")
        wx_order = await offered(qr.gateway, merchant.pid, "T-1", 1, pay_type="wxpay")
        ali_order = await offered(qr.gateway, merchant.pid, "T-2", 1, pay_type="alipay")
        assert await phone.push(ALIPAY, "0.01") == OK
    assert (await reload(gateway, ali_order)).status == OrderStatus.PAID
    assert (await reload(gateway, wx_order)).status == OrderStatus.PAYING


async def test_a_wrong_key_is_refused_and_nothing_is_stored(gateway, merchant, database_url):
    async with qrpool_server(database_url) as qr:
        _, _, phone = await qr.pair()
        order = await offered(qr.gateway, merchant.pid, "K-1", 100)
        t = ms()
        answers = [
            await phone.get(f"/appPush?t={t}&type=1&price=1.0&sign={md5('11.0' + t + 'guessed-key')}"),
            await phone.get(f"/appPush?t={t}&type=1&price=1.0&sign={md5('11.0' + t + merchant.key)}"),
            await phone.get(f"/appPush?t={t}&type=1&price=1.0&sign={md5('11.0' + t + phone.key)[:-1]}"),
        ]
    assert all(answer["code"] == -1 and "签名" in answer["msg"] for answer in answers)
    assert (await reload(gateway, order)).status == OrderStatus.PAYING
    assert await stored_events(gateway) == []


@pytest.mark.parametrize("offset", [-310, +310])
async def test_a_push_outside_the_window_is_kept_for_review_but_pays_nothing(gateway, merchant, database_url, offset):
    async with qrpool_server(database_url, qrpool_push_window_seconds=300) as qr:
        _, _, phone = await qr.pair()
        order = await offered(qr.gateway, merchant.pid, "W-1", 100)
        answer = await phone.push(WXPAY, "1.0", ms(offset))
        inside = await phone.push(WXPAY, "1.0", ms(offset * 0.9))

    assert answer["code"] == -1 and "时间戳超出允许范围" in answer["msg"] and "kept for review" in answer["msg"]
    assert inside == OK
    stale, fresh = await stored_events(gateway)
    assert (stale.decision, stale.order_id, stale.amount_fen) == ("rejected", None, 100)
    assert fresh.decision == "paid" and fresh.order_id == order.id
    assert await notifications(gateway) == {order.trade_no: 1}


async def test_the_rate_limit_is_per_device(gateway, merchant, database_url):
    async with qrpool_server(database_url, qrpool_device_rate_per_minute=3) as qr:
        _, _, phone = await qr.pair()
        _, _, other = await qr.pair()
        order = await offered(qr.gateway, merchant.pid, "L-1", 100)
        answers = [await phone.heartbeat(ms(i / 100)) for i in range(3)]
        limited = await phone.push(WXPAY, "1.0")
        others = await other.push(WXPAY, "1.0")

    assert answers == [OK] * 3
    assert limited["code"] == -1 and "请求过于频繁" in limited["msg"] and "kept for review" in limited["msg"]
    assert others == OK
    # The push over the limit pays nothing, but it is not lost: it waits in the review queue.
    kept, paid = await stored_events(gateway)
    assert (kept.decision, kept.order_id, kept.amount_fen) == ("rejected", None, 100)
    assert "请求过于频繁" in kept.reason
    assert paid.decision == "paid" and paid.order_id == order.id


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("type=1&price=1.0", "t, type, price and sign are required"),
        ("t=&type=1&price=1.0", "t, type, price and sign are required"),
        ("t=1&type=1&price=1.0&sign=" + "a" * 65, "t, type, price and sign are required"),
        ("t=abc&type=1&price=1.0&sign=0", "签名校验不通过"),
    ],
)
async def test_incomplete_pushes_are_refused_plainly(gateway, database_url, query, message):
    async with qrpool_server(database_url) as qr:
        _, _, phone = await qr.pair()
        answer = await phone.get(f"/appPush?{query}")
    assert answer["code"] == -1 and message in answer["msg"]


@pytest.mark.parametrize(
    ("type_code", "price", "message"),
    [
        ("3", "1.0", "type='3'"),
        ("1", "1.0E7", "price='1.0E7'"),
        ("1", "9.999", "price='9.999'"),
        ("1", "0.0", "price='0.0'"),
        ("1", "-1.0", "price='-1.0'"),
        ("1", "1,160.00", "price='1,160.00'"),
    ],
)
async def test_authentic_pushes_we_cannot_read_are_kept_for_review(gateway, database_url, type_code, price, message):
    async with qrpool_server(database_url) as qr:
        _, _, phone = await qr.pair()
        t = ms()
        answer = await phone.get(
            f"/appPush?t={t}&type={type_code}&price={price}&sign={md5(type_code + price + t + phone.key)}"
        )
    assert answer["code"] == -1 and message in answer["msg"] and "kept for review" in answer["msg"]
    [event] = await stored_events(gateway)
    assert (event.decision, event.amount_text, event.order_id) == ("rejected", price, None)


async def test_odd_requests_never_get_an_error_page(gateway, database_url):
    async with qrpool_server(database_url) as qr, qr.client() as client:
        _, _, phone = await qr.pair()
        t = ms()
        odd = [
            f"/appPush?t={t}&type=1&price=%00&sign={md5('1' + chr(0) + t + phone.key)}",
            f"/appPush?t={t}&type=%E4%BD%A0&price=1&sign={md5('你1' + t + phone.key)}",
            f"/appHeart?t=9{'9' * 20}&sign={md5('9' * 21 + phone.key)}",
            f"/appHeart?t={'9' * 16}&sign={md5('9' * 16 + phone.key)}",
            "/appHeart?t=1&t=2&sign=x&sign=y",
            "/appPush?price=%ZZ",
        ]
        responses = [await client.get(path) for path in odd]
    for response in responses:
        assert response.status_code == 200
        assert response.json()["code"] == -1, response.text


async def test_a_buyer_who_switched_pay_types_and_paid_the_first_code_is_credited(gateway, merchant, database_url):
    """The first offer's reservation still means this order, though the order now asks for another amount."""
    async with qrpool_server(database_url) as qr:
        _, _, wx_phone = await qr.pair("wx-main", "wxpay")
        _, _, ali_phone = await qr.pair("ali-main", "alipay")
        await offered(qr.gateway, merchant.pid, "SW-0", 100, pay_type="wxpay")  # holds 1.00 on WeChat Pay
        switched = await offered(qr.gateway, merchant.pid, "SW-1", 100, pay_type="wxpay")
        assert switched.pay_amount_fen == 101
        switched = await qr.gateway.start_payment(
            switched, pay_type="alipay", device="pc", request_base_url=qr.url
        )  # the buyer picked Alipay at the cashier: 1.00 there
        assert (switched.pay_type, switched.pay_amount_fen) == ("alipay", 100)

        assert await wx_phone.paid(WXPAY, 101) == OK  # but paid the WeChat code already on screen
        duplicate_elsewhere = await ali_phone.paid(ALIPAY, 100)

    assert (await reload(gateway, switched)).status == OrderStatus.PAID
    assert (await reload(gateway, switched)).paid_fen == 101
    assert duplicate_elsewhere["code"] == 1 and "recorded for review" in duplicate_elsewhere["msg"]
    assert [event.decision for event in await stored_events(gateway)] == ["paid", "suspected_duplicate"]
    assert await notifications(gateway) == {switched.trade_no: 1}


async def test_a_nul_byte_from_a_phone_is_refused_in_v_mianqians_words(gateway, database_url, caplog):
    """Even signed by the phone's key: nothing of a push with a NUL byte is stored, and nothing fails."""
    async with qrpool_server(database_url) as qr, qr.client() as client:
        _, _, phone = await qr.pair()
        t = ms()
        answers = [
            await client.get(f"/appPush?t={t}&type=1&price=1.00%00&sign={md5('11.00' + chr(0) + t + phone.key)}"),
            await client.get(f"/appHeart?t={t}%00&sign={md5(t + chr(0) + phone.key)}"),
            await client.get("/appHeart?t=1&sign=%00"),
        ]
    for answer in answers:
        assert answer.status_code == 200
        assert answer.json() == {"code": -1, "msg": "参数含有非法字符 / a parameter holds a NUL byte"}
    assert await stored_events(gateway) == []
    assert not [record for record in caplog.records if record.levelno >= logging.ERROR]

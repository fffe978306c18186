"""``getOrder``, ``checkOrder`` and ``closeOrder`` over real HTTP, through an order's whole life.

The first two take no signature in V免签 (its pay page calls them): they must show only what
a pay page needs, and only this dialect's orders of the path's merchant.
"""

from __future__ import annotations

import asyncio
from urllib.parse import parse_qsl, urlsplit

from sqlalchemy import update

from openepay.channels.qrpool.channel import QrPoolChannel
from openepay.core.states import NotifyStatus
from openepay.db.models import Order, QrAccount, QrCode
from tests.support.database import expire, stored_order
from tests.support.epay import order_params as epay_order_params
from tests.support.epay import signed as epay_signed
from tests.support.links import handle, trade_no_named
from tests.support.notify import settled
from tests.support.shop import Answer
from tests.support.vmq import (
    NOTIFY_FIELDS,
    close_sign,
    create,
    data_of,
    error_of,
    notify_sign,
    order_params,
    path,
    signed,
    vmq_answer,
)
from tests.support.waiting import eventually


async def new_order(client, merchant, pay_id: str, **overrides: str | None) -> dict:  # type: ignore[no-untyped-def]
    return data_of(await create(client, signed(order_params(pay_id, **overrides), merchant.key), merchant.pid))


async def get(client, merchant, endpoint: str, order_id: str, **extra: str):  # type: ignore[no-untyped-def]
    return await client.get(path(endpoint, merchant.pid), params={"orderId": order_id, **extra})


async def close(client, merchant, order_id: str, key: str | None = None):  # type: ignore[no-untyped-def]
    return await get(client, merchant, "closeOrder", order_id, sign=close_sign(order_id, key or merchant.key))


# --- getOrder -----------------------------------------------------------------------------------------


async def test_get_order_describes_the_order_as_create_order_did(server, merchant):
    async with server.client() as client:
        created = await new_order(client, merchant, "G-1", price="7.09", param="secret-param")
        response = await get(client, merchant, "getOrder", created["orderId"])
        posted = await client.post(path("getOrder", merchant.pid), data={"orderId": created["orderId"]})
    assert data_of(response) == created == data_of(posted)
    # Nothing a pay page does not need: not the merchant's URLs, param, key or the buyer.
    for secret in ("shop.example.com", "notify", "return", "secret-param", merchant.key):
        assert secret not in response.text


async def test_unknown_orders_and_other_merchants_orders_are_not_found(server, merchant, gateway):
    other = await gateway.merchants.create("Other Shop")
    epay_order = epay_order_params(merchant.pid, "https://shop.example.com", "E-1", clientip="203.0.113.9")
    epay = epay_signed(epay_order, merchant.key)
    async with server.client() as client:
        created = await new_order(client, merchant, "G-2")
        epay_trade_no = (await client.post("/mapi.php", data=epay)).json()
        assert epay_trade_no["code"] == 1
        epay_order_ids = (epay_trade_no["trade_no"], handle(epay_trade_no["trade_no"]))
        for order_id in ("", "123", "x" * 40, created["orderId"] + "0", "%00", *epay_order_ids):
            for endpoint in ("getOrder", "checkOrder"):
                assert error_of(await get(client, merchant, endpoint, order_id)) == "云端订单编号不存在", order_id
        for endpoint in ("getOrder", "checkOrder"):
            # A NUL byte is refused as the parameter it is in, before any lookup.
            assert error_of(await get(client, merchant, endpoint, "1\x00")) == "云端订单编号(orderId)含有非法字符"
        assert error_of(await get(client, other, "getOrder", created["orderId"])) == "云端订单编号不存在"
        assert error_of(await client.get(path("getOrder", merchant.pid))) == "云端订单编号不存在"


async def test_an_order_number_alone_finds_nothing_even_once_paid(server, merchant):
    """Order numbers can be walked; the unsigned endpoints take only the ``orderId`` createOrder handed out."""
    async with server.client() as client:
        created = await new_order(client, merchant, "G-4", param="buyer@example.com")
        assert (await client.post(f"/sandbox/pay/{created['orderId']}")).status_code == 303
        trade_no = trade_no_named(created["orderId"])
        walked = [await get(client, merchant, endpoint, trade_no) for endpoint in ("getOrder", "checkOrder")]
        genuine = vmq_answer(await get(client, merchant, "checkOrder", created["orderId"]))
    for answer in walked:
        assert vmq_answer(answer) == {"code": -1, "msg": "云端订单编号不存在", "data": None}
    assert genuine["code"] == 1 and "buyer%40example.com" in genuine["data"]


async def test_a_code_fixed_to_the_amount_is_not_auto(server, merchant, gateway):
    async with server.client() as client:
        created = await new_order(client, merchant, "G-3", price="7.09")
        async with gateway.db.session() as session:
            account = QrAccount(name="wx-1", pay_type="wxpay")
            session.add(account)
            await session.flush()
            # The pool holds this content, but for another amount: still a code the buyer types the amount into.
            session.add(QrCode(account_id=account.id, amount_fen=709, content=created["payUrl"]))
        assert data_of(await get(client, merchant, "getOrder", created["orderId"]))["isAuto"] == 1
        async with gateway.db.session() as session:
            session.add(QrCode(account_id=account.id, amount_fen=710, content=created["payUrl"] + "#fixed"))
        await _set_qrcode(gateway, trade_no_named(created["orderId"]), created["payUrl"] + "#fixed")
        data = data_of(await get(client, merchant, "getOrder", created["orderId"]))
    assert (data["isAuto"], data["payUrl"], data["reallyPrice"]) == (0, created["payUrl"] + "#fixed", "7.10")


async def _set_qrcode(gateway, trade_no: str, content: str) -> None:  # type: ignore[no-untyped-def]
    """The offer a pool channel would have made: its fixed-amount code as the QR, the pool as the channel."""
    async with gateway.db.session() as session:
        await session.execute(
            update(Order)
            .where(Order.trade_no == trade_no)
            .values(channel=QrPoolChannel.name, qrcode=content, pay_url=content)
        )


# --- checkOrder ---------------------------------------------------------------------------------------


async def test_check_order_through_payment(server, merchant):
    async with server.client() as client:
        created = await new_order(
            client, merchant, "C-1", price="7.09", returnUrl="https://shop.example.com/r?order_id=SN1"
        )
        order_id = created["orderId"]
        assert error_of(await get(client, merchant, "checkOrder", order_id)) == "订单未支付"
        assert (await client.post(f"/sandbox/pay/{order_id}")).status_code == 303
        answer = vmq_answer(await get(client, merchant, "checkOrder", order_id))
        cashier_return = await client.get(f"/cashier/{order_id}/return")
        state = data_of(await get(client, merchant, "getOrder", order_id))["state"]
    assert (answer["code"], answer["msg"]) == (1, "成功")
    target = urlsplit(answer["data"])
    assert f"{target.scheme}://{target.netloc}{target.path}" == "https://shop.example.com/r"
    pairs = parse_qsl(target.query, keep_blank_values=True)
    assert [name for name, _ in pairs] == ["order_id", *NOTIFY_FIELDS]
    returned = dict(pairs)
    assert returned == {
        "order_id": "SN1",
        "payId": "C-1",
        "param": "uid=42",
        "type": "1",
        "price": "7.09",
        "reallyPrice": "7.10",
        "sign": notify_sign(returned, merchant.key),
    }
    # The pay page's poll and our cashier send the buyer to the same place.
    assert (cashier_return.status_code, cashier_return.headers["location"]) == (302, answer["data"])
    assert state == 1


async def test_a_paid_order_without_return_url_returns_to_our_paid_page(server, merchant):
    async with server.client() as client:
        order_id = (await new_order(client, merchant, "C-2", returnUrl=None))["orderId"]
        assert (await client.post(f"/sandbox/pay/{order_id}")).status_code == 303
        answer = vmq_answer(await get(client, merchant, "checkOrder", order_id))
        assert answer["data"] == f"{server.url}/cashier/{order_id}/return"
        page = await client.get(answer["data"])
    assert page.status_code == 200 and "支付成功" in page.text


async def test_an_expired_order_is_expired_everywhere(server, merchant, gateway):
    async with server.client() as client:
        order_id = (await new_order(client, merchant, "C-3"))["orderId"]
        await expire(gateway, trade_no_named(order_id))
        assert error_of(await get(client, merchant, "checkOrder", order_id)) == "订单已过期"
        assert data_of(await get(client, merchant, "getOrder", order_id))["state"] == -1
        assert error_of(await close(client, merchant, order_id)) == "订单状态不允许关闭"
    assert (await stored_order(gateway, trade_no_named(order_id))).status == "closed"


async def test_a_refunded_order_is_not_returned_as_paid(server, merchant):
    async with server.client() as client:
        order_id = (await new_order(client, merchant, "C-4", price="1.00"))["orderId"]
        assert (await client.post(f"/sandbox/pay/{order_id}")).status_code == 303
        refund = {"pid": str(merchant.pid), "key": merchant.key, "trade_no": trade_no_named(order_id), "money": "1.00"}
        assert (await client.post("/api.php", params={"act": "refund"}, data=refund)).json()["code"] == 1
        assert error_of(await get(client, merchant, "checkOrder", order_id)) == "订单已退款"


async def test_a_failed_notification_is_state_2(server, merchant, gateway, vmq_shop, worker):
    shop = vmq_shop(Answer(status=500, body=b"error"))
    async with server.client() as client:
        order_id = (await new_order(client, merchant, "C-5", notifyUrl=f"{shop.url}/notify"))["orderId"]
        assert (await client.post(f"/sandbox/pay/{order_id}")).status_code == 303
        assert data_of(await get(client, merchant, "getOrder", order_id))["state"] in (1, 2)
        await eventually(settled(gateway, trade_no_named(order_id), NotifyStatus.FAILED))
        assert data_of(await get(client, merchant, "getOrder", order_id))["state"] == 2
        # Paid all the same: the buyer goes back to the shop.
        assert vmq_answer(await get(client, merchant, "checkOrder", order_id))["code"] == 1
    assert len(shop.notifications()) > 1


# --- closeOrder ---------------------------------------------------------------------------------------


async def test_close_order_closes_an_unpaid_order_and_keeps_its_expiry(server, merchant, gateway):
    async with server.client() as client:
        order_id = (await new_order(client, merchant, "X-1"))["orderId"]
        before = await stored_order(gateway, trade_no_named(order_id))
        assert vmq_answer(await close(client, merchant, order_id)) == {"code": 1, "msg": "成功", "data": None}
        assert data_of(await get(client, merchant, "getOrder", order_id))["state"] == -1
        assert error_of(await get(client, merchant, "checkOrder", order_id)) == "订单已过期"
        assert error_of(await close(client, merchant, order_id)) == "订单状态不允许关闭"
        cashier = await client.get(f"/cashier/{order_id}")
    assert "订单已关闭" in cashier.text
    order = await stored_order(gateway, trade_no_named(order_id))
    assert (order.status, order.expires_at) == ("closed", before.expires_at)
    assert order.closed_at is not None and order.closed_at < before.expires_at


async def test_close_order_needs_its_signature(server, merchant, gateway):
    other = await gateway.merchants.create("Other Shop")
    async with server.client() as client:
        order_id = (await new_order(client, merchant, "X-2"))["orderId"]
        assert error_of(await close(client, merchant, order_id, key=other.key)) == "签名校验不通过"
        assert error_of(await get(client, merchant, "closeOrder", order_id)) == "签名校验不通过"
        sign_of_another = close_sign(order_id + "1", merchant.key)
        assert error_of(await get(client, merchant, "closeOrder", order_id, sign=sign_of_another)) == "签名校验不通过"
        upper = close_sign(order_id, merchant.key).upper()
        # Another merchant's path cannot close it, even signed with that merchant's key.
        assert error_of(await close(client, other, order_id)) == "云端订单编号不存在"
        assert vmq_answer(await get(client, merchant, "closeOrder", order_id, sign=upper))["code"] == 1
        assert error_of(await close(client, merchant, "20240101120000123450000000")) == "云端订单编号不存在"


async def test_a_close_order_naming_no_order_is_signed_over_the_key_alone_and_finds_nothing(server, merchant):
    """V免签 reads a missing ``orderId`` as empty: ``md5("" + key)`` is its signature, and no order has that number."""
    async with server.client() as client:
        answer = await client.get(path("closeOrder", merchant.pid), params={"sign": close_sign("", merchant.key)})
    assert error_of(answer) == "云端订单编号不存在"


async def test_close_order_also_takes_the_bare_number_it_is_signed_over(server, merchant, gateway):
    """A shop that stored an orderId before it became a handle can still close that order: the sign proves it."""
    async with server.client() as client:
        trade_no = trade_no_named((await new_order(client, merchant, "X-5"))["orderId"])
        assert vmq_answer(await close(client, merchant, trade_no)) == {"code": 1, "msg": "成功", "data": None}
    assert (await stored_order(gateway, trade_no)).status == "closed"


async def test_a_paid_order_cannot_be_closed(server, merchant, gateway):
    async with server.client() as client:
        order_id = (await new_order(client, merchant, "X-3"))["orderId"]
        assert (await client.post(f"/sandbox/pay/{order_id}")).status_code == 303
        assert error_of(await close(client, merchant, order_id)) == "订单状态不允许关闭"
    assert (await stored_order(gateway, trade_no_named(order_id))).status == "paid"


async def test_concurrent_closes_close_once(server, merchant, gateway):
    async with server.client() as client:
        order_id = (await new_order(client, merchant, "X-4"))["orderId"]
        answers = [vmq_answer(r) for r in await asyncio.gather(*(close(client, merchant, order_id) for _ in range(6)))]
    assert sorted(answer["code"] for answer in answers) == [-1] * 5 + [1]
    assert {answer["msg"] for answer in answers if answer["code"] == -1} == {"订单状态不允许关闭"}

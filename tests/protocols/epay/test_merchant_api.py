"""``api.php`` over real HTTP, as merchant plugins and SDKs call it.

Orders are made the way a shop makes them (signed ``mapi.php``) and paid through the
sandbox's simulated upstream (``POST /sandbox/pay/{handle}``); every expectation below is
what the merchant reads in the JSON answer.
"""

from __future__ import annotations

import asyncio
import re
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import httpx
from sqlalchemy import select, update

from openepay.app import create_app
from openepay.core import ledger
from openepay.core.orders import NewOrder, close_expired, place_order
from openepay.db.models import BalanceEntry, Order, Refund, Settlement
from openepay.protocols.epay import DIALECT
from tests.support.epay import order_params, signed
from tests.support.links import sandbox_path
from tests.support.locks import meeting_at
from tests.support.merchant import plugin_sign
from tests.support.servers import ServerThread
from tests.support.settings import make_settings

SHANGHAI = ZoneInfo("Asia/Shanghai")
LOCAL_TIME = re.compile(r"^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}$")
ORDER_FIELDS = {
    "trade_no",
    "out_trade_no",
    "api_trade_no",
    "type",
    "pid",
    "addtime",
    "endtime",
    "name",
    "money",
    "param",
    "buyer",
    "status",
    "trade_status",
}
UNKNOWN_PID = {"code": -3, "msg": "商户ID不存在"}
WRONG_KEY = {"code": -3, "msg": "商户密钥错误"}
NO_ACT = {"code": -5, "msg": "No Act!"}


# -- helpers: what a shop does ------------------------------------------------------------


async def place(client: httpx.AsyncClient, merchant, shop_url: str, out_trade_no: str, **fields: str) -> str:
    params = order_params(merchant.pid, shop_url, out_trade_no, clientip="203.0.113.9", **fields)
    answer = (await client.post("/mapi.php", data=signed(params, merchant.key))).json()
    assert answer["code"] == 1, answer
    return answer["trade_no"]


async def place_directly(gateway, merchant, out_trade_no: str) -> str:
    new = NewOrder(
        merchant_pid=merchant.pid,
        dialect=DIALECT,
        out_trade_no=out_trade_no,
        amount_fen=100,
        money="1.00",
        name="VIP会员",
        notify_url="http://127.0.0.1:9/notify",
    )
    placed = await place_order(gateway.db, new, timeout=gateway.order_timeout, reopen_identical=True)
    return placed.order.trade_no


async def pay(client: httpx.AsyncClient, trade_no: str) -> None:
    response = await client.post(sandbox_path(trade_no))
    assert response.status_code == 303, response.text


async def api(client: httpx.AsyncClient, merchant, act: str, **params: str) -> dict:
    """A GET the way Rainbow documents it: everything in the query string, the plain key."""
    response = await client.get(
        "/api.php", params={"act": act, "pid": str(merchant.pid), "key": merchant.key, **params}
    )
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/json")
    return response.json()


async def refund(client: httpx.AsyncClient, merchant, money: str | None, **order: str) -> dict:
    """Rainbow's refund call: ``POST api.php?act=refund`` with the rest in the form body."""
    body = {"pid": str(merchant.pid), "key": merchant.key, **order}
    if money is not None:
        body["money"] = money
    response = await client.post("/api.php?act=refund", data=body)
    assert response.status_code == 200
    return response.json()


def shanghai(moment: str) -> datetime:
    assert LOCAL_TIME.match(moment), moment
    return datetime.strptime(moment, "%Y-%m-%d %H:%M:%S").replace(tzinfo=SHANGHAI)


def assert_local_time_between(moment: str, before: datetime, after: datetime) -> None:
    """A ``Y-m-d H:i:s`` string that, read as Beijing time, falls when the thing happened."""
    at = shanghai(moment)
    assert before - timedelta(seconds=1) <= at <= after + timedelta(seconds=1), (moment, before, after)


# -- authentication ---------------------------------------------------------------------


async def test_unknown_absent_or_non_numeric_pid_is_refused(server, merchant):
    async with server.client() as client:
        for pid in (str(merchant.pid + 1000), "abc", "", "0", "-1"):
            answer = (await client.get("/api.php", params={"act": "query", "pid": pid, "key": merchant.key})).json()
            assert answer == UNKNOWN_PID, pid
        answer = (await client.get("/api.php", params={"act": "query", "key": merchant.key})).json()
        assert answer == UNKNOWN_PID


async def test_wrong_key_is_refused_and_the_right_one_accepted(server, gateway, merchant):
    other = await gateway.merchants.create("Other Shop")
    wrong_keys = (
        merchant.key[:-1] + ("A" if merchant.key[-1] != "A" else "B"),
        merchant.key[:-1],
        merchant.key + "x",
        merchant.key.swapcase(),
        other.key,
        "",
    )
    async with server.client() as client:
        for key in wrong_keys:
            answer = (await client.get("/api.php", params={"act": "query", "pid": merchant.pid, "key": key})).json()
            assert answer == WRONG_KEY, key
        assert (await api(client, merchant, "query"))["code"] == 1
        assert (await api(client, other, "query"))["pid"] == other.pid


async def test_missing_or_unknown_act_answers_no_act(server, merchant):
    async with server.client() as client:
        credentials = {"pid": str(merchant.pid), "key": merchant.key}
        assert (await client.get("/api.php", params=credentials)).json() == NO_ACT
        assert (await client.post("/api.php", data=credentials)).json() == NO_ACT
        for act in ("", "apply", "change", "QUERY", "query "):
            answer = (await client.get("/api.php", params={"act": act, **credentials})).json()
            assert answer == NO_ACT, act
        # Like Rainbow, the act is looked at before the credentials.
        assert (await client.get("/api.php", params={"act": "nope", "pid": "x"})).json() == NO_ACT


async def test_acts_accept_a_post_body_as_sub2api_sends_it(server, merchant, shop):
    async with server.client() as client:
        trade_no = await place(client, merchant, shop.url, "BODY-1")
        body = {"act": "order", "pid": str(merchant.pid), "key": merchant.key, "out_trade_no": "BODY-1"}
        answer = (await client.post("/api.php", data=body)).json()
        assert answer["code"] == 1
        assert answer["trade_no"] == trade_no

        body = {"act": "query", "pid": str(merchant.pid), "key": merchant.key}
        answer = (await client.post("/api.php", data=body)).json()
        assert answer["code"] == 1
        assert answer["orders"] == 1

        body = {"act": "query", "pid": str(merchant.pid), "key": "wrong"}
        assert (await client.post("/api.php", data=body)).json() == WRONG_KEY


async def test_the_query_string_wins_over_the_body(server, merchant, shop):
    async with server.client() as client:
        first = await place(client, merchant, shop.url, "QS-1")
        second = await place(client, merchant, shop.url, "QS-2")

        answer = (
            await client.post(
                f"/api.php?act=order&trade_no={first}",
                data={"act": "orders", "pid": str(merchant.pid), "key": merchant.key, "trade_no": second},
            )
        ).json()
        assert answer["code"] == 1
        assert answer["trade_no"] == first

        # The right key in the body does not rescue a wrong one in the query string...
        answer = (
            await client.post(
                f"/api.php?act=query&pid={merchant.pid}&key=wrong",
                data={"key": merchant.key},
            )
        ).json()
        assert answer == WRONG_KEY
        # ...and a wrong one in the body does not spoil the right one in the query string.
        answer = (
            await client.post(
                f"/api.php?act=query&pid={merchant.pid}&key={merchant.key}",
                data={"key": "wrong", "pid": "999999"},
            )
        ).json()
        assert answer["code"] == 1
        assert answer["pid"] == merchant.pid


async def test_a_merchant_signed_request_without_key_is_accepted(server, merchant, shop):
    """PyPI ``epay-sdk`` queries with ``act=order&pid&out_trade_no&trade_no&sign&sign_type``, no key."""
    async with server.client() as client:
        trade_no = await place(client, merchant, shop.url, "SDK-1")
        params = {"act": "order", "pid": str(merchant.pid), "out_trade_no": "SDK-1", "trade_no": ""}
        query = {**params, "sign": plugin_sign(params, merchant.key), "sign_type": "MD5"}

        answer = (await client.get("/api.php", params=query)).json()
        assert answer["code"] == 1
        assert answer["trade_no"] == trade_no
        assert answer["trade_status"] == "WAIT_BUYER_PAY"

        answer = (await client.post("/api.php", data=query)).json()
        assert answer["trade_no"] == trade_no

        upper = {**query, "sign": query["sign"].upper()}
        assert (await client.get("/api.php", params=upper)).json()["trade_no"] == trade_no


async def test_a_bad_signature_without_key_is_refused(server, gateway, merchant, shop):
    other = await gateway.merchants.create("Other Shop")
    async with server.client() as client:
        await place(client, merchant, shop.url, "SDK-2")
        params = {"act": "order", "pid": str(merchant.pid), "out_trade_no": "SDK-2"}
        good = plugin_sign(params, merchant.key)

        attempts = [
            {**params, "sign": plugin_sign(params, other.key), "sign_type": "MD5"},
            {**params, "out_trade_no": "SDK-3", "sign": good, "sign_type": "MD5"},
            {**params, "sign": "", "sign_type": "MD5"},
            {**params, "sign": "0" * 32, "sign_type": "MD5"},
            dict(params),
        ]
        for query in attempts:
            assert (await client.get("/api.php", params=query)).json() == WRONG_KEY, query


# -- act=query --------------------------------------------------------------------------


async def test_query_reports_the_merchant_with_integer_fields(server, merchant):
    async with server.client() as client:
        answer = await api(client, merchant, "query")
    assert answer["code"] == 1
    assert answer["pid"] == merchant.pid
    assert answer["key"] == merchant.key
    assert answer["active"] == 1
    assert answer["money"] == "0.00"
    for field in ("code", "pid", "active", "type", "orders", "orders_today", "orders_lastday", "order_today"):
        assert type(answer[field]) is int, field
    assert (answer["orders"], answer["orders_today"], answer["order_today"]) == (0, 0, 0)


async def test_query_balance_grows_with_paid_orders_and_counts_them(server, gateway, merchant, shop):
    other = await gateway.merchants.create("Other Shop")
    async with server.client() as client:
        paid_a = await place(client, merchant, shop.url, "Q-1", money="12.5")
        paid_b = await place(client, merchant, shop.url, "Q-2", money="0.01")
        await place(client, merchant, shop.url, "Q-3", money="99.00")
        foreign = await place(client, other, shop.url, "Q-1", money="50.00")

        answer = await api(client, merchant, "query")
        assert (answer["money"], answer["orders"], answer["orders_today"], answer["order_today"]) == (
            "0.00",
            3,
            0,
            0,
        )

        await pay(client, paid_a)
        answer = await api(client, merchant, "query")
        assert answer["money"] == "12.50"
        assert (answer["orders"], answer["orders_today"], answer["order_today"]) == (3, 1, 1)

        await pay(client, paid_b)
        await pay(client, foreign)
        answer = await api(client, merchant, "query")
        assert answer["money"] == "12.51"
        assert (answer["orders"], answer["orders_today"], answer["order_today"]) == (3, 2, 2)
        assert (await api(client, other, "query"))["money"] == "50.00"

        # An order paid just before midnight, Beijing time, was paid yesterday.
        midnight = datetime.now(SHANGHAI).replace(hour=0, minute=0, second=0, microsecond=0)
        async with gateway.db.session() as session:
            await session.execute(
                update(Order).where(Order.trade_no == paid_a).values(paid_at=midnight - timedelta(minutes=1))
            )
        answer = await api(client, merchant, "query")
        assert (answer["orders"], answer["orders_today"], answer["order_today"], answer["orders_lastday"]) == (
            3,
            1,
            1,
            1,
        )
        assert answer["money"] == "12.51"


# -- act=order --------------------------------------------------------------------------


async def test_order_by_trade_no_or_out_trade_no_before_and_after_payment(server, merchant, shop):
    param = '{"uid":42} & <b>"more"</b>'
    async with server.client() as client:
        before = datetime.now(UTC)
        trade_no = await place(client, merchant, shop.url, "ORD-1", money="12.5", param=param, name="VIP会员 <1>")
        created = datetime.now(UTC)

        unpaid = await api(client, merchant, "order", trade_no=trade_no)
        assert set(unpaid) == {"code", "msg", "payurl", *ORDER_FIELDS}
        assert unpaid["code"] == 1 and unpaid["msg"] == "succ"
        assert unpaid["trade_no"] == trade_no
        assert unpaid["out_trade_no"] == "ORD-1"
        assert unpaid["type"] == "alipay"
        assert unpaid["pid"] == merchant.pid and type(unpaid["pid"]) is int
        assert unpaid["name"] == "VIP会员 <1>"
        assert unpaid["money"] == "12.50"
        assert unpaid["param"] == param
        assert unpaid["status"] == 0 and type(unpaid["status"]) is int
        assert unpaid["trade_status"] == "WAIT_BUYER_PAY"
        assert unpaid["endtime"] is None
        assert unpaid["api_trade_no"] is None
        assert_local_time_between(unpaid["addtime"], before, created)

        await pay(client, trade_no)
        paid_at = datetime.now(UTC)

        paid = await api(client, merchant, "order", out_trade_no="ORD-1")
        assert paid["trade_no"] == trade_no
        assert paid["status"] == 1 and type(paid["status"]) is int
        assert paid["trade_status"] == "TRADE_SUCCESS"
        assert paid["money"] == "12.50"
        assert paid["param"] == param
        assert paid["addtime"] == unpaid["addtime"]
        assert_local_time_between(paid["endtime"], created, paid_at)
        assert isinstance(paid["api_trade_no"], str) and paid["api_trade_no"]


async def test_order_trade_no_wins_over_out_trade_no(server, merchant, shop):
    async with server.client() as client:
        first = await place(client, merchant, shop.url, "WIN-1")
        await place(client, merchant, shop.url, "WIN-2")
        answer = await api(client, merchant, "order", trade_no=first, out_trade_no="WIN-2")
        assert answer["trade_no"] == first
        assert answer["out_trade_no"] == "WIN-1"
        # trade_no is used even when it finds nothing; out_trade_no is not a fallback.
        answer = await api(client, merchant, "order", trade_no="1" + first, out_trade_no="WIN-2")
        assert answer == {"code": -1, "msg": "订单号不存在"}
        # An empty trade_no counts as absent.
        answer = await api(client, merchant, "order", trade_no="", out_trade_no="WIN-2")
        assert answer["out_trade_no"] == "WIN-2"


async def test_order_without_any_order_number(server, merchant):
    async with server.client() as client:
        assert await api(client, merchant, "order") == {"code": -4, "msg": "订单号不能为空"}
        assert await api(client, merchant, "order", trade_no="", out_trade_no="") == {
            "code": -4,
            "msg": "订单号不能为空",
        }


async def test_order_unknown_or_of_another_merchant(server, gateway, merchant, shop):
    other = await gateway.merchants.create("Other Shop")
    not_found = {"code": -1, "msg": "订单号不存在"}
    async with server.client() as client:
        foreign = await place(client, other, shop.url, "FOREIGN-1")
        assert await api(client, merchant, "order", trade_no=foreign) == not_found
        assert await api(client, merchant, "order", out_trade_no="FOREIGN-1") == not_found
        assert await api(client, merchant, "order", trade_no="20990101000000000000") == not_found
        assert await api(client, merchant, "order", out_trade_no="NEVER") == not_found
        assert (await api(client, other, "order", trade_no=foreign))["trade_no"] == foreign

        # The same out_trade_no at two merchants: each sees only its own order.
        mine = await place(client, merchant, shop.url, "FOREIGN-1")
        assert (await api(client, merchant, "order", out_trade_no="FOREIGN-1"))["trade_no"] == mine
        assert (await api(client, other, "order", out_trade_no="FOREIGN-1"))["trade_no"] == foreign


# -- act=orders -------------------------------------------------------------------------


async def test_orders_empty_is_an_empty_list(server, merchant):
    async with server.client() as client:
        answer = await api(client, merchant, "orders")
        assert answer == {"code": 1, "msg": "查询订单记录成功！", "count": 0, "data": []}
        answer = await api(client, merchant, "orders", status="1", offset="20")
        assert answer == {"code": 1, "msg": "查询订单记录成功！", "count": 0, "data": []}


async def test_orders_paging_newest_first(server, gateway, merchant, shop):
    other = await gateway.merchants.create("Other Shop")
    async with server.client() as client:
        # Forty older orders placed straight through the core (HTTP would make this test slow),
        # then twelve newer ones through mapi.php.
        older = [await place_directly(gateway, merchant, f"OLD-{n}") for n in range(1, 41)]
        await place(client, other, shop.url, "PAGE-X")
        newer = [await place(client, merchant, shop.url, f"PAGE-{n}", money=f"{n}.00") for n in range(41, 53)]
        newest_first = list(reversed(older + newer))

        answer = await api(client, merchant, "orders")
        assert answer["code"] == 1 and answer["msg"] == "查询订单记录成功！"
        assert [row["trade_no"] for row in answer["data"]] == newest_first[:10]
        assert answer["count"] == 10 and type(answer["count"]) is int

        row = answer["data"][0]
        assert set(row) == ORDER_FIELDS
        assert row["out_trade_no"] == "PAGE-52"
        assert row["money"] == "52.00"
        assert row["pid"] == merchant.pid and type(row["pid"]) is int
        assert row["status"] == 0 and type(row["status"]) is int
        assert row["endtime"] is None
        assert LOCAL_TIME.match(row["addtime"])

        answer = await api(client, merchant, "orders", limit="100")
        assert [row["trade_no"] for row in answer["data"]] == newest_first[:50]
        assert answer["count"] == 50

        answer = await api(client, merchant, "orders", limit="50", offset="50")
        assert [row["trade_no"] for row in answer["data"]] == newest_first[50:]
        assert answer["count"] == 2

        answer = await api(client, merchant, "orders", limit="3", offset="4")
        assert [row["trade_no"] for row in answer["data"]] == newest_first[4:7]
        assert answer["count"] == 3

        answer = await api(client, merchant, "orders", offset="10")
        assert [row["trade_no"] for row in answer["data"]] == newest_first[10:20]


async def test_orders_status_filter(server, gateway, merchant, shop):
    other = await gateway.merchants.create("Other Shop", refund_enabled=True)
    async with server.client() as client:
        closed = await place(client, merchant, shop.url, "ST-CLOSED")
        await close_expired(gateway.db, now=datetime.now(UTC) + timedelta(days=1))
        unpaid = await place(client, merchant, shop.url, "ST-UNPAID")
        paid = await place(client, merchant, shop.url, "ST-PAID")
        partly = await place(client, merchant, shop.url, "ST-PART")
        fully = await place(client, merchant, shop.url, "ST-FULL")
        foreign = await place(client, other, shop.url, "ST-FOREIGN")
        for trade_no in (paid, partly, fully, foreign):
            await pay(client, trade_no)
        assert (await refund(client, merchant, "0.40", trade_no=partly))["code"] == 1
        assert (await refund(client, merchant, "1.00", trade_no=fully))["code"] == 1

        async def listed(status: str) -> list[str]:
            answer = await api(client, merchant, "orders", status=status)
            assert answer["count"] == len(answer["data"])
            assert {row["status"] for row in answer["data"]} <= {int(status)}
            return [row["trade_no"] for row in answer["data"]]

        assert await listed("0") == [unpaid, closed]
        assert await listed("1") == [paid]
        assert await listed("2") == [fully, partly]
        all_orders = await api(client, merchant, "orders")
        assert [row["trade_no"] for row in all_orders["data"]] == [fully, partly, paid, unpaid, closed]
        assert [row["status"] for row in all_orders["data"]] == [2, 2, 1, 0, 0]


# -- act=settle -------------------------------------------------------------------------


async def test_settle_empty(server, merchant):
    async with server.client() as client:
        assert await api(client, merchant, "settle") == {"code": 1, "msg": "查询结算记录成功！", "data": []}


async def test_settle_lists_the_merchants_settlements_newest_first(server, gateway, merchant):
    other = await gateway.merchants.create("Other Shop")
    start = datetime(2024, 1, 2, 16, 30, tzinfo=UTC)  # 2024-01-03 00:30 in Beijing
    async with gateway.db.session() as session:
        for n in range(3):
            session.add(
                Settlement(
                    merchant_pid=merchant.pid,
                    settle_type=1,
                    account=f"alipay-{n}@example.com",
                    username="张三",
                    amount_fen=10000 * (n + 1) + 5,
                    status=1 if n < 2 else 0,
                    created_at=start + timedelta(days=n),
                    finished_at=start + timedelta(days=n, hours=1) if n < 2 else None,
                )
            )
            await session.flush()
        session.add(
            Settlement(
                merchant_pid=other.pid,
                settle_type=2,
                account="other",
                username="李四",
                amount_fen=1,
                status=1,
                created_at=start + timedelta(days=9),
            )
        )

    async with server.client() as client:
        answer = await api(client, merchant, "settle")
        assert answer["code"] == 1 and answer["msg"] == "查询结算记录成功！"
        assert [row["account"] for row in answer["data"]] == [
            "alipay-2@example.com",
            "alipay-1@example.com",
            "alipay-0@example.com",
        ]
        newest, middle, oldest = answer["data"]
        assert newest["money"] == "300.05"
        assert newest["addtime"] == "2024-01-05 00:30:00"
        assert newest["endtime"] is None
        assert newest["status"] == 0 and type(newest["status"]) is int
        assert newest["username"] == "张三"
        assert newest["uid"] == merchant.pid
        assert oldest["money"] == "100.05"
        assert oldest["addtime"] == "2024-01-03 00:30:00"
        assert oldest["endtime"] == "2024-01-03 01:30:00"
        assert oldest["status"] == 1

        answer = await api(client, merchant, "settle", limit="2")
        assert [row["account"] for row in answer["data"]] == ["alipay-2@example.com", "alipay-1@example.com"]
        answer = await api(client, merchant, "settle", limit="1", offset="1")
        assert answer["data"] == [middle]
        answer = await api(client, merchant, "settle", offset="3")
        assert answer["data"] == []


# -- act=refund -------------------------------------------------------------------------


async def test_refund_needs_the_merchants_refund_permission(server, gateway, shop):
    closed_shop = await gateway.merchants.create("No Refunds", refund_enabled=False)
    async with server.client() as client:
        trade_no = await place(client, closed_shop, shop.url, "NR-1")
        await pay(client, trade_no)
        answer = await refund(client, closed_shop, "1.00", trade_no=trade_no)
        assert answer == {"code": -2, "msg": "商户未开启订单退款API接口"}
        assert (await api(client, closed_shop, "order", trade_no=trade_no))["status"] == 1
        assert (await api(client, closed_shop, "query"))["money"] == "1.00"


async def test_refund_refusals(server, gateway, merchant, shop):
    other = await gateway.merchants.create("Other Shop", refund_enabled=True)
    async with server.client() as client:
        unpaid = await place(client, merchant, shop.url, "RF-UNPAID")
        closed = await place(client, merchant, shop.url, "RF-CLOSED")
        await close_expired(gateway.db, now=datetime.now(UTC) + timedelta(days=1))
        paid = await place(client, merchant, shop.url, "RF-PAID", money="2.50")
        foreign = await place(client, other, shop.url, "RF-FOREIGN")
        await pay(client, paid)
        await pay(client, foreign)

        for money in ("abc", "", " ", "-1", "0", "0.00", "1.005", "1e2", "1,00", None):
            answer = await refund(client, merchant, money, trade_no=paid)
            assert answer == {"code": -1, "msg": "金额输入错误"}, money

        assert await refund(client, merchant, "1.00") == {"code": -4, "msg": "订单号不能为空"}
        assert await refund(client, merchant, "1.00", trade_no="", out_trade_no="") == {
            "code": -4,
            "msg": "订单号不能为空",
        }

        not_found = {"code": -1, "msg": "当前订单不存在！"}
        assert await refund(client, merchant, "1.00", trade_no="20990101000000000000") == not_found
        assert await refund(client, merchant, "1.00", out_trade_no="NEVER") == not_found
        assert await refund(client, merchant, "1.00", trade_no=foreign) == not_found
        assert await refund(client, merchant, "1.00", out_trade_no="RF-FOREIGN") == not_found

        not_paid = {"code": -1, "msg": "只支持退款已支付状态的订单"}
        assert await refund(client, merchant, "1.00", trade_no=unpaid) == not_paid
        assert await refund(client, merchant, "1.00", out_trade_no="RF-CLOSED") == not_paid
        assert await refund(client, merchant, "1.00", trade_no=closed) == not_paid

        too_much = {"code": -1, "msg": "退款金额不能大于订单金额"}
        assert await refund(client, merchant, "2.51", trade_no=paid) == too_much
        assert await refund(client, merchant, "100", out_trade_no="RF-PAID") == too_much

        # Nothing moved.
        assert (await api(client, merchant, "order", trade_no=paid))["status"] == 1
        assert (await api(client, merchant, "query"))["money"] == "2.50"
        assert (await api(client, other, "query"))["money"] == "1.00"


async def test_refund_succeeds_and_accumulates_up_to_the_paid_amount(server, merchant, shop):
    async with server.client() as client:
        trade_no = await place(client, merchant, shop.url, "RF-OK", money="1.00")
        await pay(client, trade_no)
        assert (await api(client, merchant, "query"))["money"] == "1.00"

        answer = await refund(client, merchant, "0.3", trade_no=trade_no)
        assert answer["code"] == 1
        assert answer["msg"] == "退款成功！退款金额￥0.30"
        assert answer["money"] == "0.30"
        assert (await api(client, merchant, "order", trade_no=trade_no))["status"] == 2
        assert (await api(client, merchant, "query"))["money"] == "0.70"

        too_much = await refund(client, merchant, "0.71", out_trade_no="RF-OK")
        assert too_much == {"code": -1, "msg": "退款金额不能大于订单金额"}
        assert (await api(client, merchant, "query"))["money"] == "0.70"

        answer = await refund(client, merchant, "0.70", out_trade_no="RF-OK")
        assert (answer["code"], answer["msg"], answer["money"]) == (1, "退款成功！退款金额￥0.70", "0.70")
        order = await api(client, merchant, "order", trade_no=trade_no)
        assert order["status"] == 2
        assert order["trade_status"] == "TRADE_REFUND"
        assert (await api(client, merchant, "query"))["money"] == "0.00"

        # Fully refunded: nothing left to refund.
        answer = await refund(client, merchant, "0.01", trade_no=trade_no)
        assert answer == {"code": -1, "msg": "只支持退款已支付状态的订单"}


async def test_refund_retried_with_the_callers_refund_number_refunds_once(server, merchant, shop):
    """Rainbow's own upstream plugin sends ``refund_no``; others may send ``out_refund_no``."""
    async with server.client() as client:
        trade_no = await place(client, merchant, shop.url, "RF-IDEM", money="2.00")
        await pay(client, trade_no)
        first = await refund(client, merchant, "0.50", trade_no=trade_no, refund_no="R-0001")
        retry = await refund(client, merchant, "0.50", trade_no=trade_no, refund_no="R-0001")
        assert first["code"] == retry["code"] == 1
        assert first["refund_no"] == retry["refund_no"]
        assert (await api(client, merchant, "query"))["money"] == "1.50"

        other = await refund(client, merchant, "0.50", trade_no=trade_no, out_refund_no="R-0002")
        assert other["code"] == 1 and other["refund_no"] != first["refund_no"]
        assert (await api(client, merchant, "query"))["money"] == "1.00"

        reused = await refund(client, merchant, "0.40", trade_no=trade_no, out_refund_no="R-0002")
        assert reused == {"code": -1, "msg": "退款单号已被其他退款使用"}
        too_long = await refund(client, merchant, "0.10", trade_no=trade_no, out_refund_no="R" * 65)
        assert too_long == {"code": -1, "msg": "退款单号不合法"}
        assert (await api(client, merchant, "query"))["money"] == "1.00"


async def test_a_refund_sent_three_times_refunds_once_with_a_refund_number(server, merchant, shop):
    """The risk ``docs/dialects.md`` names: without a number, ``api.php`` cannot tell a retry from a new refund."""
    async with server.client() as client:
        trade_no = await place(client, merchant, shop.url, "RF-THRICE", money="3.00")
        await pay(client, trade_no)

        answers = [await refund(client, merchant, "0.50", trade_no=trade_no, out_refund_no="SHOP-R-1") for _ in "abc"]
        first, *retries = answers
        assert first == {
            "code": 1,
            "msg": "退款成功！退款金额￥0.50",
            "money": "0.50",
            "trade_no": trade_no,
            "refund_no": first["refund_no"],
            "out_refund_no": "SHOP-R-1",
        }
        assert retries == [{**first, "msg": "已存在相同退款单号！退款金额￥0.50"}] * 2
        assert (await api(client, merchant, "query"))["money"] == "2.50"

        # The same request without a number: three refunds, as on Rainbow.
        for _ in "abc":
            assert (await refund(client, merchant, "0.50", trade_no=trade_no))["code"] == 1
        assert (await api(client, merchant, "query"))["money"] == "1.00"


async def test_a_refund_the_channel_refused_is_not_repeated_as_a_success(channelless_server, server, merchant, shop):
    """A retry with the number of a failed refund must not read "退款成功": the merchant would pay out twice."""
    async with server.client() as client:
        trade_no = await place(client, merchant, shop.url, "RF-FAILED", money="1.00")
        await pay(client, trade_no)
    async with httpx.AsyncClient(base_url=channelless_server.url, timeout=10) as client:
        refused = await refund(client, merchant, "1.00", trade_no=trade_no, out_refund_no="RF-FAILED-1")
        assert refused == {"code": -1, "msg": "退款失败：支付通道暂时无法退款，请稍后再试"}
        retry = await refund(client, merchant, "1.00", trade_no=trade_no, out_refund_no="RF-FAILED-1")
        assert retry == {"code": -1, "msg": "该退款单号的退款未成功，请更换退款单号(out_refund_no)后重试"}
    async with server.client() as client:
        assert (await api(client, merchant, "order", trade_no=trade_no))["status"] == 1
        done = await refund(client, merchant, "1.00", trade_no=trade_no, out_refund_no="RF-FAILED-2")
        assert (done["code"], done["msg"]) == (1, "退款成功！退款金额￥1.00")


async def test_refund_with_everything_in_the_body(server, merchant, shop):
    async with server.client() as client:
        trade_no = await place(client, merchant, shop.url, "RF-BODY", money="5.00")
        await pay(client, trade_no)
        body = {"act": "refund", "pid": str(merchant.pid), "key": merchant.key, "out_trade_no": "RF-BODY"}
        answer = (await client.post("/api.php", data={**body, "money": "5"})).json()
        assert (answer["code"], answer["msg"], answer["money"]) == (1, "退款成功！退款金额￥5.00", "5.00")
        assert (await api(client, merchant, "query"))["money"] == "0.00"

        answer = (await client.post("/api.php", data={**body, "money": "1", "key": "wrong"})).json()
        assert answer == WRONG_KEY


async def test_refund_is_refused_when_the_balance_is_short(server, gateway, merchant, shop):
    async with server.client() as client:
        trade_no = await place(client, merchant, shop.url, "RF-SHORT", money="1.00")
        await pay(client, trade_no)
        async with gateway.db.session() as session:  # 0.80 settled to the merchant's account
            await ledger.post(session, merchant.pid, -80, "settle", "SETTLE-RF-SHORT")
        assert (await api(client, merchant, "query"))["money"] == "0.20"

        answer = await refund(client, merchant, "0.50", trade_no=trade_no)
        assert answer == {"code": -1, "msg": "商户余额不足，请先充值"}
        assert (await api(client, merchant, "query"))["money"] == "0.20"
        assert (await api(client, merchant, "order", trade_no=trade_no))["status"] == 1

        answer = await refund(client, merchant, "0.20", trade_no=trade_no)
        assert (answer["code"], answer["money"]) == (1, "0.20")
        assert (await api(client, merchant, "query"))["money"] == "0.00"
        assert await refund(client, merchant, "0.01", trade_no=trade_no) == {
            "code": -1,
            "msg": "商户余额不足，请先充值",
        }


async def test_refund_success_code_zero_when_configured(server, database_url, merchant, shop):
    """Rainbow builds from 3065 on answer ``code:0``; Rainbow's own upstream plugin expects that."""
    zero = ServerThread(create_app(make_settings(database_url, epay_refund_success_code=0))).start()
    try:
        async with server.client() as client:
            trade_no = await place(client, merchant, shop.url, "RF-ZERO", money="3.00")
            await pay(client, trade_no)
        async with httpx.AsyncClient(base_url=zero.url, timeout=10) as client:
            answer = await refund(client, merchant, "1.50", trade_no=trade_no)
            assert (answer["code"], answer["msg"], answer["money"]) == (0, "退款成功！退款金额￥1.50", "1.50")
            # Errors keep their codes.
            assert await refund(client, merchant, "9.00", trade_no=trade_no) == {
                "code": -1,
                "msg": "退款金额不能大于订单金额",
            }
            assert (await api(client, merchant, "query"))["money"] == "1.50"
    finally:
        zero.stop()


# -- concurrency --------------------------------------------------------------------------


async def simultaneously(gateway, trade_no: str, attempt, copies: int) -> list[dict]:  # type: ignore[no-untyped-def]
    """``copies`` calls of ``attempt`` at once. On PostgreSQL the order's row is held locked until
    all of them are waiting on it, so each has read the order (and its refunds) before any acts."""
    locked_row = select(Order.id).where(Order.trade_no == trade_no)
    tasks = await meeting_at(gateway, locked_row, (attempt() for _ in range(copies)))
    return list(await asyncio.gather(*tasks))


async def test_concurrent_refunds_never_exceed_the_paid_amount(server, gateway, merchant, shop):
    """Ten refunds of 0.30 against a 1.00 order at once: three succeed, to the fen.

    The merchant's balance (6.00, from an earlier 5.00 order too) could cover them all, so
    only the order's own guard stops the fourth. On PostgreSQL the order row is held locked
    until all ten requests are waiting on it, so every one of them has read the order as
    untouched and they meet at the guarded UPDATE.
    """
    async with server.client() as client:
        earlier = await place(client, merchant, shop.url, "RF-EARLIER", money="5.00")
        await pay(client, earlier)
        trade_no = await place(client, merchant, shop.url, "RF-RACE", money="1.00")
        await pay(client, trade_no)
        assert (await api(client, merchant, "query"))["money"] == "6.00"

        async def attempt() -> dict:
            return await refund(client, merchant, "0.30", trade_no=trade_no)

        answers = await simultaneously(gateway, trade_no, attempt, 10)

        succeeded = [answer for answer in answers if answer["code"] == 1]
        refused = [answer for answer in answers if answer["code"] != 1]
        assert len(succeeded) == 3
        assert all(answer["msg"] == "退款成功！退款金额￥0.30" for answer in succeeded)
        assert refused == [{"code": -1, "msg": "退款金额不能大于订单金额"}] * 7

        assert (await api(client, merchant, "order", trade_no=trade_no))["status"] == 2
        assert (await api(client, merchant, "query"))["money"] == "5.10"

    async with gateway.db.session() as session:
        order = await session.scalar(select(Order).where(Order.trade_no == trade_no))
        refunds = (await session.scalars(select(Refund).where(Refund.order_id == order.id))).all()
        journal = (
            await session.scalars(
                select(BalanceEntry).where(BalanceEntry.merchant_pid == merchant.pid).order_by(BalanceEntry.id)
            )
        ).all()
    assert order.refunded_fen == 90
    assert sorted((r.amount_fen, r.status) for r in refunds) == [(30, "succeeded")] * 3
    assert {r.refund_no for r in refunds} == {answer["refund_no"] for answer in succeeded}
    assert [(e.kind, e.ref, e.delta_fen, e.balance_after_fen) for e in journal[:2]] == [
        ("payment", earlier, 500, 500),
        ("payment", trade_no, 100, 600),
    ]
    assert [(e.kind, e.delta_fen, e.balance_after_fen) for e in journal[2:]] == [
        ("refund", -30, 570),
        ("refund", -30, 540),
        ("refund", -30, 510),
    ]
    assert {e.ref for e in journal[2:]} == {r.refund_no for r in refunds}


async def test_concurrent_retries_with_one_refund_number_refund_once(server, gateway, merchant, shop):
    """Ten copies of one numbered refund at once (a plugin retrying on a timeout): one refund.

    Each copy is told either that refund (code 1, its ``refund_no``) or that it is still in
    progress, never a success of its own. On PostgreSQL every one of them has looked for the
    number and found nothing before any of them reserves the money.
    """
    async with server.client() as client:
        trade_no = await place(client, merchant, shop.url, "RF-RETRY", money="1.00")
        await pay(client, trade_no)

        async def attempt() -> dict:
            return await refund(client, merchant, "0.30", trade_no=trade_no, out_refund_no="SHOP-RETRY-1")

        answers = await simultaneously(gateway, trade_no, attempt, 10)

        succeeded = [answer for answer in answers if answer["code"] == 1]
        waiting = [answer for answer in answers if answer["code"] != 1]
        assert waiting == [{"code": -1, "msg": "该退款单号的退款正在处理中，请稍后查询"}] * len(waiting)
        assert len({answer["refund_no"] for answer in succeeded}) == 1
        assert [answer["msg"] for answer in succeeded].count("退款成功！退款金额￥0.30") == 1
        assert (await api(client, merchant, "query"))["money"] == "0.70"
        # Asked again once it is over, every copy gets the one refund.
        again = await refund(client, merchant, "0.30", trade_no=trade_no, out_refund_no="SHOP-RETRY-1")
        assert (again["code"], again["msg"]) == (1, "已存在相同退款单号！退款金额￥0.30")

    async with gateway.db.session() as session:
        order = await session.scalar(select(Order).where(Order.trade_no == trade_no))
        refunds = (await session.scalars(select(Refund).where(Refund.order_id == order.id))).all()
    assert order.refunded_fen == 30
    assert [(r.amount_fen, r.status, r.out_refund_no) for r in refunds] == [(30, "succeeded", "SHOP-RETRY-1")]
    assert {answer["refund_no"] for answer in succeeded} == {again["refund_no"]} == {refunds[0].refund_no}

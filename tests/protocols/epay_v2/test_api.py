"""The signed V2 API over real HTTP: who may ask (every error code), and what the answers say."""

from __future__ import annotations

import time
from datetime import datetime, timedelta

import httpx
import pytest

from openepay.core.states import MerchantStatus
from tests.support.epay import signed as md5_signed
from tests.support.epay_v2 import api, create, paid, platform_signed, sdk_content

VERIFIED_ENDPOINTS = ["pay/query", "pay/refund", "pay/refundquery", "merchant/info", "merchant/orders"]


def md5_request(merchant, fields: dict[str, str], *, timestamp: int | None = None) -> dict[str, str]:
    """A V2 request signed the V1 way, with the merchant's MD5 key."""
    now = str(int(time.time()) if timestamp is None else timestamp)
    return md5_signed({"pid": str(merchant.pid), "timestamp": now, **fields}, merchant.key)


@pytest.mark.parametrize(
    "path", ["/api/pay/nothing", "/api/transfer/submit", "/api/foo", "/api/", "/api/pay/query/more", "/api/pay/Query"]
)
async def test_unknown_endpoints(server, v2, path):
    async with server.client() as client:
        for response in (await client.post(path, data=v2.request({})), await client.get(path)):
            assert response.status_code == 200
            assert response.json() == {"code": -5, "msg": "接口方法不存在"}


@pytest.mark.parametrize("endpoint", [*VERIFIED_ENDPOINTS, "pay/create"])
async def test_without_pid_in_the_body_nothing_was_sent(server, v2, endpoint):
    nothing = {"code": -4, "msg": "未传入任何参数"}
    async with server.client() as client:
        assert (await client.post(f"/api/{endpoint}", data={"trade_no": "1"})).json() == nothing
        # Only the POST body counts, as in Rainbow: not the query string, not JSON.
        assert (await client.get(f"/api/{endpoint}", params=v2.request({}))).json() == nothing
        assert (await client.post(f"/api/{endpoint}", json=v2.request({}))).json() == nothing


@pytest.mark.parametrize("endpoint", VERIFIED_ENDPOINTS)
async def test_merchant_errors(server, gateway, v2, endpoint):
    async with server.client() as client:
        for pid in ("0", "abc", ""):
            answer = (await client.post(f"/api/{endpoint}", data={**v2.request({}), "pid": pid})).json()
            assert answer == {"code": -1, "msg": "商户ID不能为空"}
        answer = (await client.post(f"/api/{endpoint}", data={**v2.request({}), "pid": "987654"})).json()
        assert answer == {"code": -1, "msg": "商户不存在！"}
        await gateway.merchants.set_status(v2.pid, MerchantStatus.DISABLED)
        assert (await api(client, v2, endpoint)) == {"code": -1, "msg": "商户已被封禁"}


async def test_signature_errors_in_rainbows_order(server, gateway, v2):
    async def ask(params: dict[str, str]) -> dict:
        async with server.client() as client:
            return (await client.post("/api/merchant/info", data=params)).json()

    def off_by(seconds: int) -> int:
        """A timestamp that many seconds from the clock as the request is built, however slow the test runs."""
        return int(time.time()) + seconds

    good = v2.request({})
    assert (await ask(good))["code"] == 0
    no_timestamp = {k: v for k, v in good.items() if k != "timestamp"}
    assert await ask(no_timestamp) == {"code": -3, "msg": "时间戳(timestamp)字段不能为空"}
    assert await ask(v2.request({"timestamp": "0"})) == {"code": -3, "msg": "时间戳(timestamp)字段不能为空"}
    stale = {"code": -3, "msg": "时间戳字段不正确，请检查服务器时间"}
    for off in (-310, 310):
        assert await ask(v2.request({}, timestamp=off_by(off))) == stale, off
    for timestamp in ("abc", "1e3", "17212060721721206072"):
        assert await ask(v2.request({}, timestamp=timestamp)) == stale, timestamp  # type: ignore[arg-type]
    for off in (-290, 290):
        assert (await ask(v2.request({}, timestamp=off_by(off))))["code"] == 0, off
    assert await ask({k: v for k, v in good.items() if k != "sign"}) == {"code": -3, "msg": "缺少签名参数"}
    assert await ask({**good, "sign": ""}) == {"code": -3, "msg": "RSA签名校验失败"}
    assert await ask({**good, "extra": "field"}) == {"code": -3, "msg": "RSA签名校验失败"}
    other = v2.request({"pid": str(v2.pid)})
    assert await ask({**good, "sign": other["sign"][:-4] + "AAA="}) == {"code": -3, "msg": "RSA签名校验失败"}

    # MD5 with the V1 key: accepted, whatever sign_type says when it is not exactly "RSA".
    assert (await ask(md5_request(v2, {})))["code"] == 0
    assert (await ask({k: v for k, v in md5_request(v2, {}).items() if k != "sign_type"}))["code"] == 0
    assert (await ask({**md5_request(v2, {}), "sign_type": "rsa"}))["code"] == 0
    assert await ask({**md5_request(v2, {}), "sign": "0" * 32}) == {"code": -3, "msg": "MD5签名校验失败"}
    assert await ask(md5_request(v2, {}, timestamp=off_by(-400))) == stale

    await gateway.merchants.update(v2.pid, rsa_only=True)
    only_rsa = {"code": -3, "msg": "该商户只能使用RSA签名类型"}
    assert await ask(md5_request(v2, {})) == only_rsa
    assert await ask({k: v for k, v in md5_request(v2, {}).items() if k != "timestamp"}) == only_rsa
    assert (await ask(v2.request({})))["code"] == 0


async def test_rsa_without_a_usable_merchant_key(server, gateway, v2):
    refused = {"code": -3, "msg": "签名校验失败，商户公钥错误"}
    async with server.client() as client:
        await gateway.merchants.update(v2.pid, rsa_public_key=None)
        assert await api(client, v2, "merchant/info") == refused
        await gateway.merchants.update(v2.pid, rsa_public_key="-----BEGIN PUBLIC KEY-----\nnonsense\n-----END")
        assert await api(client, v2, "merchant/info") == refused
        # MD5 still works for such a merchant, unless it is RSA only.
        assert (await client.post("/api/merchant/info", data=md5_request(v2, {}))).json()["code"] == 0


async def test_answers_are_signed_with_the_platform_key_and_a_fresh_timestamp(server, v2, platform_public):
    async with server.client() as client:
        trade_no = await paid(client, v2, "SIGNED-1", param="a=1&b=2")
        refund = await api(client, v2, "pay/refund", trade_no=trade_no, money="0.10", out_refund_no="SIGNED-R1")
        answers = [
            await api(client, v2, "pay/query", trade_no=trade_no),
            refund,
            await api(client, v2, "pay/refundquery", out_refund_no="SIGNED-R1"),
            await api(client, v2, "merchant/info"),
            await api(client, v2, "merchant/orders"),
        ]
    for answer in answers:
        assert answer["code"] == 0, answer
        assert answer["sign_type"] == "RSA"
        assert isinstance(answer["timestamp"], str) and abs(int(answer["timestamp"]) - time.time()) <= 5
        assert platform_signed(platform_public, answer), answer
        assert not platform_signed(platform_public, {**answer, "code": 1})
        assert not platform_signed(platform_public, answer, now=time.time() + 400)


def local(server, text: str) -> datetime:
    return datetime.strptime(text, "%Y-%m-%d %H:%M:%S").replace(tzinfo=server.settings.zone)


async def test_pay_query(server, v2):
    started = datetime.now(server.settings.zone).replace(microsecond=0)
    async with server.client() as client:
        unpaid = (await create(client, v2, "Q-UNPAID"))["trade_no"]
        trade_no = await paid(client, v2, "Q-PAID", param="order=42&x=y", money="12.5")
        by_ours = await api(client, v2, "pay/query", trade_no=trade_no)
        by_theirs = await api(client, v2, "pay/query", out_trade_no="Q-PAID")
        # Our number wins when both are given.
        both = await api(client, v2, "pay/query", trade_no=trade_no, out_trade_no="Q-UNPAID")
        waiting = await api(client, v2, "pay/query", out_trade_no="Q-UNPAID")
        assert await api(client, v2, "pay/query") == {"code": -1, "msg": "订单号不能为空"}
        assert await api(client, v2, "pay/query", trade_no="0") == {"code": -1, "msg": "订单号不能为空"}
        for missing in ({"trade_no": "123"}, {"out_trade_no": "NOPE"}, {"trade_no": "x" * 100}):
            assert await api(client, v2, "pay/query", **missing) == {"code": -1, "msg": "订单号不存在"}
        # A NUL byte is refused as the parameter it is in, before any lookup.
        assert await api(client, v2, "pay/query", trade_no="a\x00") == {"code": -1, "msg": "参数(trade_no)不合法"}
    unsigned = {k: v for k, v in by_ours.items() if k not in ("timestamp", "sign", "sign_type")}
    assert unsigned == {
        "code": 0,
        "trade_no": trade_no,
        "out_trade_no": "Q-PAID",
        "api_trade_no": unsigned["api_trade_no"],
        "type": "alipay",
        "pid": v2.pid,
        "addtime": unsigned["addtime"],
        "endtime": unsigned["endtime"],
        "name": "VIP会员",
        "money": "12.50",
        "param": "order=42&x=y",
        "buyer": "sandbox-buyer",
        "clientip": "203.0.113.9",
        "status": 1,
    }
    assert unsigned["api_trade_no"].startswith("SB")
    for moment in ("addtime", "endtime"):
        assert started <= local(server, unsigned[moment]) <= started + timedelta(seconds=10)
    assert {k: v for k, v in by_theirs.items() if k not in ("timestamp", "sign")} == {
        k: v for k, v in by_ours.items() if k not in ("timestamp", "sign")
    }
    assert both["trade_no"] == trade_no
    # Empty fields are left out, as Rainbow's array_filter does; zero stays.
    assert waiting["status"] == 0 and waiting["trade_no"] == unpaid
    assert not {"endtime", "api_trade_no", "buyer", "param", "refundmoney"} & set(waiting)


async def test_another_merchants_orders_are_not_found(server, gateway, v2):
    other = await gateway.merchants.create("Other Shop")
    async with server.client() as client:
        trade_no = await paid(client, v2, "MINE-1")
        stranger = (
            await client.post(
                "/api/pay/query",
                data=md5_request(other, {"trade_no": trade_no}),
            )
        ).json()
    assert stranger == {"code": -1, "msg": "订单号不存在"}


async def test_refund_idempotent_on_out_refund_no_and_replays_refused(server, v2):
    async with server.client() as client:
        trade_no = await paid(client, v2, "R-1", money="2.00")
        first = await api(client, v2, "pay/refund", trade_no=trade_no, money="0.50", out_refund_no="REF-0001")
        assert {k: v for k, v in first.items() if k not in ("timestamp", "sign", "sign_type")} == {
            "code": 0,
            "refund_no": first["refund_no"],
            "out_refund_no": "REF-0001",
            "trade_no": trade_no,
            "out_trade_no": "R-1",
            "money": "0.50",
            "reducemoney": "0.50",
            "msg": "退款成功！退款金额￥0.50",
        }
        balance_after_first = (await api(client, v2, "merchant/info"))["money"]

        # The same out_refund_no again, in a new request: the first refund's answer, nothing refunded twice.
        again = await api(client, v2, "pay/refund", out_trade_no="R-1", money="0.50", out_refund_no="REF-0001")
        assert again["code"] == 0 and again["refund_no"] == first["refund_no"]
        assert again["msg"] == "已存在相同退款单号！退款金额￥0.50"
        assert (await api(client, v2, "merchant/info"))["money"] == balance_after_first
        assert (await api(client, v2, "pay/query", trade_no=trade_no))["refundmoney"] == "0.50"

        # The very same signed request sent again is a replay.
        request = v2.request({"trade_no": trade_no, "money": "0.25", "out_refund_no": "REF-0002"})
        assert (await client.post("/api/pay/refund", data=request)).json()["code"] == 0
        replayed = (await client.post("/api/pay/refund", data=request)).json()
        assert replayed == {"code": -3, "msg": "请求重复，请勿重复提交"}
        # Even without an out_refund_no, a replay refunds nothing.
        bare = v2.request({"trade_no": trade_no, "money": "0.05"})
        assert (await client.post("/api/pay/refund", data=bare)).json()["code"] == 0
        assert (await client.post("/api/pay/refund", data=bare)).json() == replayed
        # The same content signed the MD5 way is the same request; one second older it is a new one.
        same = md5_request(v2, {"trade_no": trade_no, "money": "0.05"}, timestamp=int(bare["timestamp"]))
        assert (await client.post("/api/pay/refund", data=same)).json() == replayed
        md5 = md5_request(v2, {"trade_no": trade_no, "money": "0.05"}, timestamp=int(bare["timestamp"]) - 1)
        assert (await client.post("/api/pay/refund", data=md5)).json()["code"] == 0
        assert (await client.post("/api/pay/refund", data=md5)).json() == replayed
        assert (await api(client, v2, "pay/query", trade_no=trade_no))["refundmoney"] == "0.85"

        reused = await api(client, v2, "pay/refund", trade_no=trade_no, money="0.30", out_refund_no="REF-0001")
        assert reused == {"code": -1, "msg": "退款单号已被其他退款使用"}
        rest = await api(client, v2, "pay/refund", trade_no=trade_no, money="1.15")
        assert rest["msg"] == "退款成功！退款金额￥1.15" and "out_refund_no" not in rest
        query = await api(client, v2, "pay/query", trade_no=trade_no)
        assert query["status"] == 2 and query["refundmoney"] == "2.00"


async def test_refund_refusals(server, gateway, v2):
    async with server.client() as client:
        trade_no = await paid(client, v2, "RR-1")
        unpaid = (await create(client, v2, "RR-UNPAID"))["trade_no"]

        def refund(**fields: str):  # type: ignore[no-untyped-def]
            return api(client, v2, "pay/refund", **fields)

        for money in ("", "abc", "-1", "0", "0.00", "1.005", "1,00"):
            assert await refund(trade_no=trade_no, money=money) == {"code": -1, "msg": "金额输入错误"}, money
        assert await refund(money="1.00") == {"code": -1, "msg": "订单号不能为空"}
        assert await refund(trade_no="404", money="1.00") == {"code": -1, "msg": "当前订单不存在！"}
        assert await refund(out_trade_no="NOPE", money="1.00") == {"code": -1, "msg": "当前订单不存在！"}
        assert await refund(trade_no=unpaid, money="1.00") == {"code": -1, "msg": "只支持退款已支付状态的订单"}
        assert await refund(trade_no=trade_no, money="1.01") == {"code": -1, "msg": "退款金额不能大于订单金额"}
        assert await refund(trade_no=trade_no, money="0.10", out_refund_no="x" * 65) == {
            "code": -1,
            "msg": "退款单号不合法",
        }
        await gateway.merchants.update(v2.pid, balance_fen=50)
        assert await refund(trade_no=trade_no, money="0.60") == {"code": -1, "msg": "商户余额不足，请先充值"}
        await gateway.merchants.update(v2.pid, refund_enabled=False)
        assert await refund(trade_no=trade_no, money="0.10") == {"code": -2, "msg": "商户未开启订单退款API接口"}
        # The balance check above left everything as it was.
        assert "refundmoney" not in await api(client, v2, "pay/query", trade_no=trade_no)


async def test_a_refund_the_channel_refused_is_not_repeated_as_a_success(channelless_server, server, gateway, v2):

    async with server.client() as client:
        trade_no = await paid(client, v2, "RF-1")
    async with httpx.AsyncClient(base_url=channelless_server.url, timeout=10) as client:
        refused = await api(client, v2, "pay/refund", trade_no=trade_no, money="1.00", out_refund_no="RFND-1")
        assert refused == {"code": -1, "msg": "退款失败：支付通道暂时无法退款，请稍后再试"}
        later = str(int(time.time()) + 1)  # a new request, not a copy of the first
        retry = await api(
            client, v2, "pay/refund", trade_no=trade_no, money="1.00", out_refund_no="RFND-1", timestamp=later
        )
        assert retry == {"code": -1, "msg": "该退款单号的退款未成功，请更换退款单号(out_refund_no)后重试"}
        failed = await api(client, v2, "pay/refundquery", out_refund_no="RFND-1")
    assert failed["code"] == 0 and failed["status"] == 0 and failed["money"] == "1.00"
    async with server.client() as client:
        assert (await api(client, v2, "pay/query", trade_no=trade_no))["status"] == 1
        done = await api(client, v2, "pay/refund", trade_no=trade_no, money="1.00", out_refund_no="RFND-2")
        assert done["msg"] == "退款成功！退款金额￥1.00"


async def test_refundquery(server, v2):
    started = datetime.now(server.settings.zone).replace(microsecond=0)
    async with server.client() as client:
        trade_no = await paid(client, v2, "RQ-1", money="3.00")
        refund = await api(client, v2, "pay/refund", trade_no=trade_no, money="1.20", out_refund_no="RQ-REFUND-1")
        by_theirs = await api(client, v2, "pay/refundquery", out_refund_no="RQ-REFUND-1")
        by_ours = await api(client, v2, "pay/refundquery", refund_no=refund["refund_no"])
        assert await api(client, v2, "pay/refundquery") == {"code": -1, "msg": "商户退款单号不能为空"}
        for missing in ({"refund_no": "1"}, {"out_refund_no": "NOPE"}):
            assert await api(client, v2, "pay/refundquery", **missing) == {"code": -1, "msg": "退款记录不存在"}
        refused = await api(client, v2, "pay/refundquery", out_refund_no="\x00")
        assert refused == {"code": -1, "msg": "参数(out_refund_no)不合法"}
    unsigned = {k: v for k, v in by_theirs.items() if k not in ("timestamp", "sign", "sign_type")}
    assert unsigned == {
        "code": 0,
        "refund_no": refund["refund_no"],
        "out_refund_no": "RQ-REFUND-1",
        "trade_no": trade_no,
        "out_trade_no": "RQ-1",
        "money": "1.20",
        "reducemoney": "1.20",
        "status": 1,
        "addtime": unsigned["addtime"],
    }
    assert started <= local(server, unsigned["addtime"]) <= started + timedelta(seconds=10)
    assert {k: v for k, v in by_ours.items() if k not in ("timestamp", "sign")} == {
        k: v for k, v in by_theirs.items() if k not in ("timestamp", "sign")
    }


async def test_merchant_info(server, gateway, v2):
    await gateway.merchants.update(v2.pid, settle_account="alipay@example.com", settle_name="张三")
    async with server.client() as client:
        before = await api(client, v2, "merchant/info")
        await paid(client, v2, "MI-1", money="1.50")
        await paid(client, v2, "MI-2", money="2")
        await create(client, v2, "MI-3")
        after = await api(client, v2, "merchant/info")
    assert before["order_num"] == 0 and before["order_money_today"] == "0.00" and before["money"] == "0.00"
    assert {k: v for k, v in after.items() if k not in ("timestamp", "sign", "sign_type")} == {
        "code": 0,
        "pid": v2.pid,
        "status": 1,
        "pay_status": 1,
        "settle_status": 1,
        "money": "3.50",
        "settle_type": 1,
        "settle_account": "alipay@example.com",
        "settle_name": "张三",
        "order_num": 3,
        "order_num_today": 2,
        "order_num_lastday": 0,
        "order_money_today": "3.50",
        "order_money_lastday": "0.00",
    }


async def test_merchant_orders(server, v2, platform_public):
    async with server.client() as client:
        first = await paid(client, v2, "MO-1")
        second = (await create(client, v2, "MO-2"))["trade_no"]
        third = await paid(client, v2, "MO-3")
        everything = await api(client, v2, "merchant/orders")
        two = await api(client, v2, "merchant/orders", limit="2")
        skipped = await api(client, v2, "merchant/orders", limit="2", offset="2")
        paid_only = await api(client, v2, "merchant/orders", status="1")
        unpaid_only = await api(client, v2, "merchant/orders", status="0")
        capped = await api(client, v2, "merchant/orders", limit="500")
        nothing = await api(client, v2, "merchant/orders", limit="-3", offset="-1")
    newest_first = [third, second, first]
    assert [row["trade_no"] for row in everything["data"]] == newest_first
    assert [row["trade_no"] for row in two["data"]] == newest_first[:2]
    assert [row["trade_no"] for row in skipped["data"]] == newest_first[2:]
    assert [row["trade_no"] for row in paid_only["data"]] == [third, first]
    assert [row["trade_no"] for row in unpaid_only["data"]] == [second]
    assert len(capped["data"]) == 3 and nothing["data"] == []
    row = everything["data"][0]
    assert set(row) == {
        "trade_no", "out_trade_no", "api_trade_no", "type", "pid", "addtime", "endtime", "name", "money",
        "param", "buyer", "clientip", "status", "refundmoney",
    }  # fmt: skip
    assert (row["out_trade_no"], row["status"], row["money"], row["pid"]) == ("MO-3", 1, "1.00", v2.pid)
    unpaid_row = everything["data"][1]
    assert unpaid_row["status"] == 0 and unpaid_row["endtime"] is None
    # The list is not part of what is signed: only code and timestamp are.
    assert set(everything) == {"code", "data", "timestamp", "sign_type", "sign"}
    assert sdk_content(everything) == f"code=0&timestamp={everything['timestamp']}"
    assert platform_signed(platform_public, everything)


async def test_a_multipart_body_in_utf7_is_a_failed_signature_not_a_server_error(server, v2):
    """``charset=utf-7`` turns ``+2AA-`` into a lone surrogate; no signature can cover it."""
    boundary = "charsetboundary"
    for sign_type, refused in (("RSA", "RSA签名校验失败"), ("MD5", "MD5签名校验失败")):
        fields = {**v2.request({"out_trade_no": "+2AA-"}), "sign_type": sign_type}
        body = (
            b"".join(
                f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n{value}\r\n'.encode()
                for name, value in fields.items()
            )
            + f"--{boundary}--\r\n".encode()
        )
        headers = {"Content-Type": f"multipart/form-data; charset=utf-7; boundary={boundary}"}
        async with server.client() as client:
            response = await client.post("/api/pay/query", content=body, headers=headers)
        assert response.status_code == 200
        assert response.json() == {"code": -3, "msg": refused}

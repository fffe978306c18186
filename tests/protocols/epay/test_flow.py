"""A merchant's whole journey over real HTTP: create, pay on the sandbox, get notified, return."""

from urllib.parse import parse_qsl, urlsplit

from tests.support.epay import order_params, signed
from tests.support.links import cashier_path, sandbox_path
from tests.support.merchant import plugin_sign
from tests.support.waiting import eventually


async def test_mapi_order_paid_on_sandbox_notifies_merchant_and_returns_buyer(server, merchant, shop, worker):
    params = order_params(
        merchant.pid,
        shop.url,
        "SHOP-1001",
        money="12.50",
        param='{"uid":42} & more',
        clientip="203.0.113.9",
        device="pc",
    )
    async with server.client() as client:
        answer = (await client.post("/mapi.php", data=signed(params, merchant.key))).json()
        assert answer["code"] == 1
        assert set(answer) == {"code", "trade_no", "qrcode"}
        assert answer["qrcode"].startswith("http://127.0.0.1:")
        trade_no = answer["trade_no"]
        assert trade_no.isdigit() and len(trade_no) <= 32

        paid = await client.post(sandbox_path(trade_no))
        assert paid.status_code == 303

        [notification] = await eventually(lambda: shop.notifications())
        assert notification.method == "GET"
        assert notification.signature_ok is True
        assert notification.params == {
            "pid": str(merchant.pid),
            "trade_no": trade_no,
            "out_trade_no": "SHOP-1001",
            "type": "alipay",
            "name": "VIP会员",
            "money": "12.50",
            "trade_status": "TRADE_SUCCESS",
            "param": '{"uid":42} & more',
            "sign": notification.params["sign"],
            "sign_type": "MD5",
        }

        back = await client.get(f"{cashier_path(trade_no)}/return")
        assert back.status_code == 302
        target = urlsplit(back.headers["location"])
        assert f"{target.scheme}://{target.netloc}{target.path}" == f"{shop.url}/return"
        returned = dict(parse_qsl(target.query))
        assert returned == notification.params
        assert plugin_sign(returned, merchant.key) == returned["sign"]

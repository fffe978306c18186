"""The buyer's cashier over real HTTP: what it shows, where it sends the buyer, and when."""

from __future__ import annotations

import re
from urllib.parse import parse_qsl, urlsplit

from sqlalchemy import select

from openepay.core.buyer_links import BuyerLinks
from openepay.db.models import Order
from openepay.web.templating import qr_svg
from tests.support.cashier import DESKTOP, IPHONE, Page, encodes, mapi_order, qr_matrix_of
from tests.support.database import expire, stored_order
from tests.support.epay import order_params, signed
from tests.support.links import cashier_path, sandbox_path, trade_no_of
from tests.support.merchant import plugin_sign
from tests.support.waiting import eventually


async def test_desktop_cashier_shows_the_shop_the_product_the_amount_and_the_channel_qr(server, merchant, shop):
    async with server.client(headers=DESKTOP) as client:
        answer = await mapi_order(
            client, merchant, shop, "C-1", name="<script>alert(1)</script>会员", money="12.50", sitename="小李的杂货铺"
        )
        response = await client.get(cashier_path(answer["trade_no"]))

    assert response.status_code == 200
    page = Page(response.text)
    assert page.text("site-name") == "小李的杂货铺"
    assert page.text("product-name") == "<script>alert(1)</script>会员"
    assert "<script>alert(1)" not in response.text
    assert page.text("amount") == "¥12.50"
    assert page.text("trade-no") == answer["trade_no"]
    assert "请使用支付宝扫一扫" in page.body_text
    assert not page.has("pay-button")
    assert encodes(qr_matrix_of(response.text), answer["qrcode"])
    assert 1790 <= int(page.attrs["pay-area"]["data-expires-in"] or 0) <= 1800


async def test_cashier_without_sitename_shows_the_merchant_name(server, merchant, shop):
    async with server.client(headers=DESKTOP) as client:
        answer = await mapi_order(client, merchant, shop, "C-2")
        page = Page((await client.get(cashier_path(answer["trade_no"]))).text)
    assert page.text("site-name") == "Test Shop"
    assert page.text("product-name") == "VIP会员"
    assert page.text("amount") == "¥1.00"


async def test_mobile_cashier_shows_a_pay_button_to_the_channel_page(server, merchant, shop):
    params = order_params(merchant.pid, shop.url, "C-3", money="0.50")
    async with server.client(headers=IPHONE) as client:
        jump = await client.get("/submit.php", params=signed(params, merchant.key))
        assert jump.status_code == 302
        trade_no = trade_no_of(jump.headers["location"])
        response = await client.get(jump.headers["location"])

    page = Page(response.text)
    assert page.text("site-name") == "Test Shop"
    assert page.text("amount") == "¥0.50"
    assert page.text("pay-button") == "支付宝 立即支付"
    assert page.attrs["pay-button"]["href"] == f"{server.url}{sandbox_path(trade_no)}"
    assert not page.has("qrcode")


async def test_status_answers_unpaid_then_paid_and_the_paid_cashier_moves_on_to_return(server, merchant, shop):
    async with server.client(headers=DESKTOP) as client:
        trade_no = (await mapi_order(client, merchant, shop, "C-4"))["trade_no"]
        before = await client.get(f"{cashier_path(trade_no)}/status")
        assert before.json() == {"status": "paying", "paid": False}

        assert (await client.post(sandbox_path(trade_no))).status_code == 303

        after = await client.get(f"{cashier_path(trade_no)}/status")
        assert after.json() == {"status": "paid", "paid": True}
        cashier = await client.get(cashier_path(trade_no))
        assert cashier.status_code == 302
        assert cashier.headers["location"] == f"{cashier_path(trade_no)}/return"


async def test_return_of_an_unpaid_order_goes_back_to_the_cashier_unsigned(server, merchant, shop):
    async with server.client(headers=DESKTOP) as client:
        trade_no = (await mapi_order(client, merchant, shop, "C-5"))["trade_no"]
        back = await client.get(f"{cashier_path(trade_no)}/return")
        assert back.status_code == 302
        assert back.headers["location"] == cashier_path(trade_no)
        followed = await client.get(f"{cashier_path(trade_no)}/return", follow_redirects=True)

    assert str(followed.url) == f"{server.url}{cashier_path(trade_no)}"
    assert "sign" not in back.headers["location"]
    assert "sign=" not in followed.text
    assert "TRADE_SUCCESS" not in followed.text
    assert shop.url not in followed.text


async def test_return_of_a_paid_order_redirects_to_the_shop_with_signed_parameters(server, merchant, shop):
    async with server.client(headers=DESKTOP) as client:
        trade_no = (await mapi_order(client, merchant, shop, "C-6", money="3.20", param="uid=7&x=y"))["trade_no"]
        await client.post(sandbox_path(trade_no))
        back = await client.get(f"{cashier_path(trade_no)}/return")

    assert back.status_code == 302
    target = urlsplit(back.headers["location"])
    assert f"{target.scheme}://{target.netloc}{target.path}" == f"{shop.url}/return"
    returned = dict(parse_qsl(target.query))
    assert returned["sign"] == plugin_sign(returned, merchant.key)
    assert returned["sign_type"] == "MD5"
    assert returned["trade_status"] == "TRADE_SUCCESS"
    assert (returned["pid"], returned["trade_no"], returned["out_trade_no"]) == (str(merchant.pid), trade_no, "C-6")
    assert (returned["money"], returned["name"], returned["param"]) == ("3.20", "VIP会员", "uid=7&x=y")


async def test_return_of_a_paid_order_without_return_url_shows_our_success_page(server, merchant, shop):
    async with server.client(headers=DESKTOP) as client:
        trade_no = (await mapi_order(client, merchant, shop, "C-7", return_url=None, money="2.00"))["trade_no"]
        await client.post(sandbox_path(trade_no))
        back = await client.get(f"{cashier_path(trade_no)}/return")

    assert back.status_code == 200
    page = Page(back.text)
    assert "支付成功" in page.body_text
    assert page.text("message") == f"订单 {trade_no} 已支付 ¥2.00，请返回商户网站查看。"
    assert "sign" not in back.text


async def test_return_and_cashier_of_a_fully_refunded_order_show_the_refunded_page(server, merchant, shop):
    async with server.client(headers=DESKTOP) as client:
        trade_no = (await mapi_order(client, merchant, shop, "C-8", money="5.00"))["trade_no"]
        await client.post(sandbox_path(trade_no))
        refund = await client.post(
            "/api.php",
            params={"act": "refund"},
            data={"pid": str(merchant.pid), "key": merchant.key, "trade_no": trade_no, "money": "5.00"},
        )
        assert refund.json()["msg"].startswith("退款成功"), refund.json()

        back = await client.get(f"{cashier_path(trade_no)}/return")
        cashier = await client.get(cashier_path(trade_no), follow_redirects=True)

    assert back.status_code == 200
    assert "订单已退款" in Page(back.text).body_text
    assert Page(back.text).text("message") == f"订单 {trade_no} 已退款。"
    assert "sign=" not in back.text
    assert "订单已退款" in Page(cashier.text).body_text


async def test_expired_order_is_closed_on_sight(server, merchant, shop, gateway):
    async with server.client(headers=DESKTOP) as client:
        trade_no = (await mapi_order(client, merchant, shop, "C-9"))["trade_no"]
        await expire(gateway, trade_no)

        cashier = await client.get(cashier_path(trade_no))
        status = await client.get(f"{cashier_path(trade_no)}/status")
        pay = await client.post(sandbox_path(trade_no))

    page = Page(cashier.text)
    assert cashier.status_code == 200
    assert "订单已关闭" in page.body_text
    assert page.text("message") == f"订单 {trade_no} 已过期或已关闭，请返回商户网站重新下单。"
    assert not page.has("qrcode")
    assert status.json() == {"status": "closed", "paid": False}
    assert pay.status_code == 409
    assert "订单已关闭，模拟上游拒绝收款" in Page(pay.text).body_text


async def test_expired_order_is_closed_by_the_worker_sweeper(server, merchant, shop, gateway, worker):
    async with server.client(headers=DESKTOP) as client:
        trade_no = (await mapi_order(client, merchant, shop, "C-10"))["trade_no"]
        await expire(gateway, trade_no)

        async def closed_in_database() -> bool:
            async with gateway.db.session() as session:
                order = await session.scalar(select(Order).where(Order.trade_no == trade_no))
            return order is not None and order.status == "closed" and order.closed_at is not None

        await eventually(closed_in_database)
        assert (await client.get(f"{cashier_path(trade_no)}/status")).json() == {"status": "closed", "paid": False}
        assert (await client.post(sandbox_path(trade_no))).status_code == 409


async def test_pay_type_chooser_lists_the_sandbox_types_and_choosing_one_creates_the_payment(server, merchant, shop):
    params = order_params(merchant.pid, shop.url, "C-11", type=None)
    async with server.client(headers=DESKTOP) as client:
        jump = await client.get("/submit.php", params=signed(params, merchant.key))
        assert jump.status_code == 302
        cashier_path = jump.headers["location"]
        trade_no = trade_no_of(cashier_path)

        chooser = await client.get(cashier_path)
        buttons = re.findall(r'<button[^>]*\bvalue="(\w+)"[^>]*>\s*([^<]*?)\s*</button>', chooser.text)
        assert buttons == [("alipay", "支付宝"), ("wxpay", "微信支付"), ("qqpay", "QQ钱包")]
        assert Page(chooser.text).text("site-name") == "Test Shop"
        assert (await client.get(f"{cashier_path}/status")).json() == {"status": "created", "paid": False}

        chosen = await client.post(f"{cashier_path}/type", data={"type": "wxpay"})
        assert chosen.status_code == 303
        assert chosen.headers["location"] == cashier_path
        cashier = await client.get(cashier_path)
        status = await client.get(f"{cashier_path}/status")

    page = Page(cashier.text)
    assert "请使用微信支付扫一扫" in page.body_text
    assert encodes(qr_matrix_of(cashier.text), f"{server.url}{sandbox_path(trade_no)}")
    assert status.json() == {"status": "paying", "paid": False}


async def test_a_pay_type_no_channel_serves_sends_the_buyer_to_the_chooser_with_a_note(server, merchant, shop):
    params = order_params(merchant.pid, shop.url, "C-12", type="bank")
    async with server.client(headers=DESKTOP) as client:
        jump = await client.get("/submit.php", params=signed(params, merchant.key))
        assert jump.status_code == 302
        chooser = Page((await client.get(jump.headers["location"])).text)
        assert chooser.text("note") == "该支付方式暂不可用，请选择其他支付方式"

        cashier_path = urlsplit(jump.headers["location"]).path
        again = Page((await client.post(f"{cashier_path}/type", data={"type": "jdpay"})).text)
        assert again.text("note") == "该支付方式暂不可用，请选择其他支付方式"
        assert (await client.get(f"{cashier_path}/status")).json() == {"status": "created", "paid": False}


async def test_a_channel_refusal_reads_as_advice_to_the_buyer_not_as_the_channel_log(server, merchant, shop):
    """The sandbox refuses 7.02 (paused) and 7.03 (no code for the amount); buyers read Chinese advice."""
    notes = {}
    async with server.client(headers=DESKTOP) as client:
        for money in ("7.02", "7.03"):
            params = order_params(merchant.pid, shop.url, f"C-R{money}", type=None, money=money)
            cashier_path = (await client.get("/submit.php", params=signed(params, merchant.key))).headers["location"]
            chooser = await client.post(f"{cashier_path}/type", data={"type": "alipay"})
            notes[money] = Page(chooser.text).text("note")
            assert (await client.get(f"{cashier_path}/status")).json() == {"status": "created", "paid": False}
    assert notes == {
        "7.02": "该支付方式正在维护，请选择其他支付方式或稍后再试",
        "7.03": "该支付方式暂时无法收取这个金额，请选择其他支付方式或稍后再试",
    }


async def test_an_order_number_alone_reveals_nothing_a_nonexistent_one_does_not(server, merchant, shop, gateway):
    """Order numbers can be walked: with one alone, a paid and an unpaid order look exactly like no order at all."""
    async with server.client(headers=DESKTOP) as client:
        paid = (await mapi_order(client, merchant, shop, "C-E1", param="buyer@example.com"))["trade_no"]
        assert (await client.post(sandbox_path(paid))).status_code == 303
        unpaid = (await mapi_order(client, merchant, shop, "C-E2"))["trade_no"]

        async def answers(name: str) -> list[tuple[int, str | None, str]]:
            responses = [
                await client.get(f"/cashier/{name}"),
                await client.get(f"/cashier/{name}/status"),
                await client.get(f"/cashier/{name}/return"),
                await client.post(f"/cashier/{name}/type", data={"type": "wxpay"}),
                await client.get(f"/sandbox/pay/{name}"),
                await client.post(f"/sandbox/pay/{name}"),
            ]
            return [(r.status_code, r.headers.get("location"), r.text) for r in responses]

        nowhere = await answers("20990101000000000000")
        for trade_no in (paid, unpaid):
            for guess in (trade_no, f"{trade_no}-{'0' * 32}", BuyerLinks("another secret").handle(trade_no)):
                assert await answers(guess) == nowhere, guess
        genuine = await client.get(f"{cashier_path(paid)}/return")

    assert [status for status, _, _ in nowhere] == [404, 404, 404, 404, 404, 409]
    assert "订单不存在" in Page(nowhere[0][2]).body_text
    assert genuine.status_code == 302 and "buyer%40example.com" in genuine.headers["location"]
    assert (await stored_order(gateway, unpaid)).status == "paying"


def test_short_qr_content_is_a_full_qr_code_that_payment_apps_can_scan():
    html = f'<div id="qrcode">{qr_svg("wxp://f2f0ab")}</div>'
    matrix = qr_matrix_of(html)
    assert len(matrix) >= 21  # a Micro QR code, which wallets cannot scan, is at most 17 modules wide
    assert encodes(matrix, "wxp://f2f0ab")

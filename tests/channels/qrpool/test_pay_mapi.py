"""Personal codes seen by a ``/pay/mapi.php`` merchant (seed 001) and by the buyer at the cashier, over HTTP."""

from __future__ import annotations

import httpx

from tests.support.cashier import DESKTOP, IPHONE, Page, encodes, qr_matrix_of
from tests.support.epay import signed
from tests.support.gateways import own_server
from tests.support.links import cashier_path
from tests.support.qrpool import GENERIC, receiving_account

SHOP = "https://shop.example.com"
PAUSED = (702, "Channel is under maintenance, please try again later")
NO_AMOUNT = (703, "No payment code matched for the corresponding amount, please change the amount and try again")


def pay_params(pid: int, out_trade_no: str, money: str = "1.00", pay_type: str = "wxpay") -> dict[str, str]:
    return {
        "pid": str(pid),
        "type": pay_type,
        "out_trade_no": out_trade_no,
        "notify_url": f"{SHOP}/notify",
        "return_url": f"{SHOP}/return",
        "name": "An Oreo",
        "money": money,
    }


async def mapi(client: httpx.AsyncClient, merchant, out_trade_no: str, **params: str) -> dict:  # type: ignore[no-untyped-def]
    response = await client.post(
        "/pay/mapi.php", data=signed(pay_params(merchant.pid, out_trade_no, **params), merchant.key)
    )
    assert response.status_code == 200
    return response.json()


async def test_paused_then_fluctuated_amounts_then_no_amount_free(gateway, merchant, database_url):
    with own_server(database_url, qrpool=True, sandbox=False, qrpool_max_offset_fen=1) as thread:
        async with httpx.AsyncClient(base_url=thread.url, timeout=10) as client:
            answer = await mapi(client, merchant, "A-1")
            assert (answer["code"], answer["msg"]) == PAUSED

            await receiving_account(gateway, "wx-silent", live=False)
            answer = await mapi(client, merchant, "A-1")
            assert (answer["code"], answer["msg"]) == PAUSED

            await receiving_account(gateway, "wx-main", fixed={101: "wxp://fixed-1.01"})
            first = await mapi(client, merchant, "A-1")
            second = await mapi(client, merchant, "A-2")
            assert (first["code"], first["money"], first["type"]) == (200, "1.00", "wxpay")
            # A generic code takes any amount: the merchant gets our cashier, which shows the exact one.
            assert first["qrcode"] == first["payurl"] == thread.url + cashier_path(first["trade_no"])
            assert GENERIC not in first.values()
            assert (second["code"], second["money"], second["qrcode"]) == (200, "1.01", "wxp://fixed-1.01")
            assert second["payurl"] == f"{thread.url}{cashier_path(second['trade_no'])}"

            refused = await mapi(client, merchant, "A-3")
            assert (refused["code"], refused["msg"]) == NO_AMOUNT
            # Another amount goes through under the same out_trade_no: the refused order was forgotten.
            other = await mapi(client, merchant, "A-3", money="2.00")
            assert (other["code"], other["money"]) == (200, "2.00")

            alipay = await mapi(client, merchant, "A-4", pay_type="alipay")
            assert (alipay["code"], alipay["msg"]) == PAUSED


async def test_the_cashier_shows_the_exact_amount_the_warning_the_code_and_the_countdown(
    gateway, merchant, database_url
):
    with own_server(database_url, qrpool=True, sandbox=False) as thread:
        await receiving_account(gateway, fixed={101: "wxp://fixed-1.01"})
        async with httpx.AsyncClient(base_url=thread.url, timeout=10) as client:
            exact = await mapi(client, merchant, "C-1")
            moved = await mapi(client, merchant, "C-2")
            exact_page = await client.get(cashier_path(exact["trade_no"]), headers=DESKTOP)
            desktop = await client.get(cashier_path(moved["trade_no"]), headers=DESKTOP)
            phone = await client.get(cashier_path(moved["trade_no"]), headers=IPHONE)

    assert Page(exact_page.text).text("amount") == "¥1.00"
    assert not Page(exact_page.text).has("amount-warning")
    assert encodes(qr_matrix_of(exact_page.text), GENERIC)

    for response in (desktop, phone):
        page = Page(response.text)
        assert page.text("amount") == "¥1.01"
        assert "请务必支付上面的准确金额（订单金额 ¥1.00）" in page.text("amount-warning")
        assert encodes(qr_matrix_of(response.text), "wxp://fixed-1.01")
        assert page.has("countdown") and 1790 <= int(page.attrs["pay-area"]["data-expires-in"] or 0) <= 1800
        # There is nothing to open on the phone: the code is the way to pay, never a link back to this page.
        assert not page.has("pay-button") and not page.has("open-pay-link")
    assert "截屏保存二维码" in Page(phone.text).body_text

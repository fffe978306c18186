"""What ``mapi.php`` hands a merchant: never a code that takes any amount; a ``payurl`` to those who want one."""

from __future__ import annotations

import httpx

from tests.support.epay import order_params, signed
from tests.support.gateways import own_server
from tests.support.links import cashier_path, sandbox_path
from tests.support.payfor import keyed, payfor_params
from tests.support.qrpool import GENERIC, receiving_account

SSPANEL_PARAMS = {"clientip": "203.0.113.9"}  # SSPanel-UIM's epay plugin sends no device


async def mapi(client: httpx.AsyncClient, merchant, out_trade_no: str, **overrides: str) -> dict:  # type: ignore[no-untyped-def]
    params = order_params(merchant.pid, "https://shop.example.com", out_trade_no, **SSPANEL_PARAMS, **overrides)
    answer = (await client.post("/mapi.php", data=signed(params, merchant.key))).json()
    assert answer["code"] == 1, answer
    return answer


async def test_a_merchant_set_to_payurl_always_gets_a_payurl(server, gateway, merchant):
    async with server.client() as client:
        channel_answer = await mapi(client, merchant, "SS-1")
        await gateway.merchants.update(merchant.pid, mapi_answer="payurl")
        payurl_answer = await mapi(client, merchant, "SS-2")
        mobile_answer = await mapi(client, merchant, "SS-3", device="mobile")
    # Without a device the channel's offer for a desktop is its QR: SSPanel-UIM shows nothing for it.
    assert "qrcode" in channel_answer and "payurl" not in channel_answer
    assert set(payurl_answer) == {"code", "trade_no", "payurl"}
    assert payurl_answer["payurl"].endswith(sandbox_path(payurl_answer["trade_no"]))
    assert set(mobile_answer) == {"code", "trade_no", "payurl"}


async def test_a_generic_personal_code_is_never_handed_out_raw(gateway, merchant, database_url):
    with own_server(database_url, qrpool=True, sandbox=False) as thread:
        await receiving_account(gateway, fixed={101: "wxp://fixed-1.01"})
        async with httpx.AsyncClient(base_url=thread.url, timeout=10) as client:
            generic = await mapi(client, merchant, "G-1", type="wxpay", device="pc")
            fixed = await mapi(client, merchant, "G-2", type="wxpay", device="pc")
            params = payfor_params(merchant.pid, "https://shop.example.com", "G-3", type="1", price="1.00")
            payfor = (
                await client.post("/Home/Pay/payFor", data={**keyed(params, merchant.key), "format": "json"})
            ).json()
    # The buyer of the generic code would type the shop's 1.00; our cashier asks for the exact amount.
    assert generic == {
        "code": 1,
        "trade_no": generic["trade_no"],
        "payurl": thread.url + cashier_path(generic["trade_no"]),
    }
    # A code fixed to the reserved amount (1.01) can only be paid with that amount: it may go out as it is.
    assert fixed["qrcode"] == "wxp://fixed-1.01"
    assert payfor["code"] == 1, payfor
    assert payfor["data"]["qrcode"] == payfor["data"]["payurl"] != GENERIC

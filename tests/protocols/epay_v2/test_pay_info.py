"""V2's ``pay_info`` follows V1's rules: never a generic personal code, and a page for merchants set to ``payurl``."""

from __future__ import annotations

import httpx

from tests.support.epay_v2 import create
from tests.support.gateways import own_server
from tests.support.links import cashier_path, sandbox_path
from tests.support.qrpool import receiving_account


async def test_pay_info_is_our_cashier_for_a_generic_personal_code(gateway, v2, database_url):
    with own_server(database_url, qrpool=True, sandbox=False) as thread:
        await receiving_account(gateway)
        async with httpx.AsyncClient(base_url=thread.url, timeout=10) as client:
            answer = await create(client, v2, "V2-G", type="wxpay")
    assert (answer["pay_type"], answer["pay_info"]) == ("jump", thread.url + cashier_path(answer["trade_no"]))


async def test_a_payurl_merchant_gets_a_page_to_open(server, gateway, v2):
    await gateway.merchants.update(v2.pid, mapi_answer="payurl")
    async with server.client() as client:
        answer = await create(client, v2, "V2-P")
    assert answer["pay_type"] == "jump"
    assert answer["pay_info"].endswith(sandbox_path(answer["trade_no"]))
